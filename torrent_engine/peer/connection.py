"""Async shell over one peer connection: moves bytes between an anyio ByteStream and the
sans-I/O cores (``mse.py`` for encryption, ``wire.py`` for messages).

``connect`` dials a peer as the initiator, ``accept`` answers an incoming stream; both return a
``PeerConnection`` whose peer handshake has been received. Keep-alives, choking and requests are
the caller's business. Every failure surfaces as a ``PeerError``: ``PeerConnectionClosed`` for
EOF, resets and read timeouts; ``PeerProtocolError`` when the peer broke the protocol
(``EncryptionError`` for MSE and policy failures).
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import Literal

import anyio
import anyio.abc

from ..errors import EncryptionError, PeerConnectionClosed, PeerError, PeerProtocolError
from .messages import PROTOCOL_HEADER, Handshake, Message, piece_header
from .mse import CRYPTO_PLAINTEXT, CRYPTO_RC4, MseInitiator, MseResponder, StreamCipher
from .wire import PeerWire

__all__ = [
    "BatchHandler", "EncryptionPolicy", "MessageHandler", "PeerConnection", "accept", "connect", "hand_over",
]

log = logging.getLogger(__name__)

EncryptionPolicy = Literal["prefer", "require", "disable"]
# run(): a read's messages, handled synchronously; returns how many (from the front) it handled
BatchHandler = Callable[[list[Message]], int]
MessageHandler = Callable[[Message], Awaitable[None]]
RECEIVE_SIZE = 256 * 1024  # bytes asked of the socket per read: bounds the receive buffer
DEFAULT_READ_TIMEOUT = 150.0  # BEP 3 peers send keep-alives every 2 minutes
DEFAULT_HANDSHAKE_TIMEOUT = 10.0
MSE_MAX_HANDSHAKE_BYTES = 96 + 512 + 20 + 20 + 14 + 512 + 2 + 65535  # Ya..IA, all at their maximum

_ENCRYPTION_POLICIES = ("prefer", "require", "disable")


class PeerConnection:
    """An open connection after both handshakes. ``receive()`` returns the next validated
    message; ``send``/``send_many`` write messages (serialized by a lock, so several tasks may
    send). ``read_timeout`` bounds each read and each write. ``close_reason`` says why it ended
    once it has."""

    def __init__(
        self,
        stream: anyio.abc.ByteStream,
        wire: PeerWire,
        *,
        remote: tuple[str, int] | None = None,
        encrypt: StreamCipher | None = None,
        decrypt: StreamCipher | None = None,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        mse: bool = False,
    ) -> None:
        self._stream = stream
        self.wire = wire
        self.remote = remote
        self._encrypt = encrypt
        self._decrypt = decrypt
        self.read_timeout = read_timeout
        self.mse = mse  # the handshake went through MSE (even if it then selected plaintext)
        self._send_lock = anyio.Lock()
        self._outbox: list[bytes] = []  # written by write(), sent by drain()
        self.close_reason: str | None = None
        self.bytes_received = 0
        self.bytes_sent = 0

    # -- what the handshakes told us -------------------------------------------------------

    @property
    def info_hash(self) -> bytes:
        """The torrent's info-hash agreed in the handshake."""
        assert self.wire.info_hash is not None
        return self.wire.info_hash

    @property
    def peer_handshake(self) -> Handshake:
        """The peer's handshake; ``PeerProtocolError`` before it is received."""
        hs = self.wire.peer_handshake
        if hs is None:
            raise PeerProtocolError("the peer's handshake has not been received")
        return hs

    @property
    def peer_id(self) -> bytes:
        """The peer's id from its handshake."""
        return self.peer_handshake.peer_id

    @property
    def encrypted(self) -> bool:
        """Whether the payload stream is RC4-encrypted (MSE with crypto_select RC4)."""
        return self._encrypt is not None

    @property
    def closed(self) -> bool:
        """Whether the connection is closed."""
        return self.close_reason is not None

    # -- I/O -------------------------------------------------------------------------------

    async def _fill(self) -> None:
        # A bare CancelScope rather than fail_after: this runs once per socket read, and
        # fail_after's two generator context managers cost a quarter of the scope's price.
        try:
            with anyio.CancelScope(deadline=anyio.current_time() + self.read_timeout) as scope:
                data = await self._stream.receive(RECEIVE_SIZE)
        except anyio.EndOfStream:
            raise self._fail(PeerConnectionClosed("connection closed by the peer")) from None
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            raise self._fail(PeerConnectionClosed(f"connection lost: {exc!r}")) from None
        if scope.cancelled_caught:
            raise self._fail(PeerConnectionClosed(f"no data for {self.read_timeout:g} s"))
        self.bytes_received += len(data)
        if self._decrypt is not None:
            data = self._decrypt.update(data)
        self.wire.receive_data(data)

    def _fail(self, exc: PeerError) -> PeerError:
        if self.close_reason is None:
            self.close_reason = str(exc)
            log.debug("peer %s: %s", self.remote, exc)
        return exc

    async def receive(self) -> Message:
        """The next message from the peer (waits up to ``read_timeout`` for each read)."""
        wire = self.wire
        while True:
            try:
                msg = wire.next_event()
            except PeerProtocolError as exc:
                raise self._fail(exc) from None
            if msg is not None:
                return msg
            await self._fill()

    def set_metadata(self, num_pieces: int, piece_size: Callable[[int], int]) -> None:
        """The torrent's piece count and sizes, once known: messages are checked against them."""
        self.wire.set_metadata(num_pieces, piece_size)

    def set_max_buffer(self, size: int) -> None:
        """The most bytes the receive buffer may grow to. Nothing here: this path reads
        ``RECEIVE_SIZE`` at a time (``ProtocolPeerConnection``'s buffer grows with its reads)."""

    def receive_nowait(self) -> Message | None:
        """The next message if one is already buffered, else ``None`` (no I/O)."""
        try:
            return self.wire.next_event()
        except PeerProtocolError as exc:
            raise self._fail(exc) from None

    async def run(self, fast: BatchHandler, slow: MessageHandler) -> None:
        """Hand the messages of each read to ``fast`` synchronously, in one list; the ones it
        leaves (it returns how many it handled from the front) go to ``slow``, in order. Bytes
        written by the handlers are sent after each read. Runs until the connection ends, then
        raises why (``PeerProtocolError``, or what a handler raised)."""
        wire = self.wire
        while True:
            batch: list[Message] = []
            try:
                while (msg := wire.next_event()) is not None:
                    batch.append(msg)
            except PeerProtocolError as exc:
                if not batch:
                    raise self._fail(exc) from None
            if batch:
                await hand_over(batch, fast, slow)
                await self.drain()
            else:
                await self._fill()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Queue protocol bytes; they go out with the next ``drain`` (or any send)."""
        self._outbox.append(bytes(data))

    def write_pieces(self, pieces: Iterable[tuple[int, int, bytes | memoryview]]) -> None:
        """Queue ``piece`` messages for ``(index, begin, block)`` as one write (no wait)."""
        parts: list[bytes | memoryview] = []
        for index, begin, block in pieces:
            parts.append(piece_header(index, begin, len(block)))
            parts.append(block)
        self.write(b"".join(parts))

    def write_many(self, msgs: Iterable[Message]) -> None:
        """Queue several messages as one write (no wait; see ``write``)."""
        send = self.wire.send
        data = b"".join([send(m) for m in msgs])
        if data:
            self.write(data)

    async def drain(self) -> None:
        """Send what ``write`` queued."""
        if self._outbox:
            data = b"".join(self._outbox)
            self._outbox.clear()
            await self.send_bytes(data)

    async def send(self, msg: Message) -> None:
        """Send one message."""
        await self.send_bytes(self.wire.send(msg))

    async def send_many(self, msgs: Iterable[Message]) -> None:
        """Send several messages in one write."""
        send = self.wire.send
        data = b"".join([send(m) for m in msgs])
        if data:
            await self.send_bytes(data)

    async def send_bytes(self, data: bytes) -> None:
        """Write raw protocol bytes (already encoded), encrypting when MSE selected RC4."""
        async with self._send_lock:
            if self._outbox:  # bytes written before go first
                data = b"".join([*self._outbox, data])
                self._outbox.clear()
            if self._encrypt is not None:
                data = self._encrypt.update(data)
            try:
                # A peer that reads nothing fills its TCP window: without a bound this send, and
                # every sender queued on the lock behind it, would wait forever.
                with anyio.fail_after(self.read_timeout):
                    await self._stream.send(data)
            except TimeoutError:
                raise self._fail(
                    PeerConnectionClosed(f"send blocked for {self.read_timeout:g} s: the peer reads nothing")
                ) from None
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
                raise self._fail(PeerConnectionClosed(f"send failed: {exc!r}")) from None
            self.bytes_sent += len(data)

    async def aclose(self, reason: str = "closed by us") -> None:
        """Close the connection (``reason`` is kept and logged)."""
        if self.close_reason is None:
            self.close_reason = reason
            log.debug("peer %s closed: %s", self.remote, reason)
        with anyio.CancelScope(shield=True):
            await self._stream.aclose()

    async def __aenter__(self) -> PeerConnection:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose(str(exc) if exc is not None else "closed by us")


async def hand_over(batch: list[Message], fast: BatchHandler, slow: MessageHandler) -> None:
    """``fast`` takes what it can from the front of ``batch``; the message it stopped at goes to
    ``slow``, then ``fast`` takes over again (a block that had to wait for a rate limit or for
    memory does not send the rest of the read down the slow path)."""
    i = fast(batch)
    n = len(batch)
    while i < n:
        await slow(batch[i])
        i += 1
        if i < n:
            i += fast(batch[i:])


def _remote_of(stream: anyio.abc.ByteStream) -> tuple[str, int] | None:
    try:
        addr = stream.extra(anyio.abc.SocketAttribute.remote_address)
    except (anyio.TypedAttributeLookupError, OSError):
        return None
    if isinstance(addr, tuple) and len(addr) >= 2:
        host = str(addr[0])
        if host.startswith("::ffff:"):  # an IPv4 peer on a dual-stack listener: one name per peer
            try:
                mapped = ipaddress.IPv6Address(host).ipv4_mapped
            except ValueError:
                mapped = None
            if mapped is not None:
                host = str(mapped)
        return (host, int(addr[1]))
    return None


async def _read(stream: anyio.abc.ByteStream) -> bytes:
    try:
        return await stream.receive(RECEIVE_SIZE)
    except anyio.EndOfStream:
        raise PeerConnectionClosed("connection closed during the handshake") from None
    except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
        raise PeerConnectionClosed(f"connection lost during the handshake: {exc!r}") from None


async def _write(stream: anyio.abc.ByteStream, data: bytes) -> None:
    try:
        await stream.send(data)
    except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
        raise PeerConnectionClosed(f"connection lost during the handshake: {exc!r}") from None


async def _await_handshake(
    stream: anyio.abc.ByteStream, wire: PeerWire, decrypt: StreamCipher | None
) -> Handshake:
    while True:
        event = wire.next_event()
        if event is not None:
            assert isinstance(event, Handshake)
            return event
        data = await _read(stream)
        wire.receive_data(decrypt.update(data) if decrypt is not None else data)


async def _mse_initiate(
    stream: anyio.abc.ByteStream, wire: PeerWire, provide: int, randbytes: Callable[[int], bytes]
) -> tuple[StreamCipher | None, StreamCipher | None]:
    assert wire.info_hash is not None
    mse = MseInitiator(
        wire.info_hash, crypto_provide=provide, initial_payload=wire.handshake(), randbytes=randbytes
    )
    await _write(stream, mse.start())
    while mse.result is None:
        try:
            data = await _read(stream)
        except PeerConnectionClosed as exc:  # what a peer that does not speak MSE does
            raise EncryptionError(f"the peer hung up during the encryption handshake ({exc})") from None
        out = mse.receive_data(data)
        if out:
            await _write(stream, out)
    wire.receive_data(mse.result.remaining)
    return mse.result.encrypt, mse.result.decrypt


async def connect(
    host: str,
    port: int,
    *,
    info_hash: bytes,
    peer_id: bytes,
    encryption: EncryptionPolicy = "prefer",
    reserved: bytes | None = None,
    timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
    num_pieces: int | None = None,
    piece_size: Callable[[int], int] | None = None,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
    randbytes: Callable[[int], bytes] = os.urandom,
    opener: Callable[[str, int, float], Awaitable[anyio.abc.ByteStream]] | None = None,
) -> PeerConnection:
    """Dial ``host:port`` and complete the handshakes as the initiator.

    ``opener(host, port, timeout)`` opens the byte stream (default: TCP; uTP passes its own).

    ``encryption``: "require" does MSE offering RC4 only; "prefer" does MSE offering RC4 and
    plaintext, and if the MSE handshake fails, reconnects once and speaks plaintext; "disable"
    speaks plaintext BitTorrent. ``timeout`` bounds each attempt (connect + handshakes)."""
    if encryption not in _ENCRYPTION_POLICIES:
        raise ValueError(f"encryption must be one of {_ENCRYPTION_POLICIES}")
    provide = (
        None
        if encryption == "disable"
        else CRYPTO_RC4
        if encryption == "require"
        else CRYPTO_RC4 | CRYPTO_PLAINTEXT
    )

    async def handshake(stream: anyio.abc.ByteStream, crypto_provide: int | None) -> PeerConnection:
        return await _initiate(
            stream, (host, port), crypto_provide, info_hash, peer_id, reserved, timeout,
            num_pieces, piece_size, read_timeout, randbytes,
        )

    open_stream = opener if opener is not None else _open
    stream = await open_stream(host, port, timeout)  # a peer we cannot reach is not dialed twice
    try:
        return await handshake(stream, provide)
    except PeerError as exc:
        if encryption != "prefer":
            raise
        log.debug("MSE with %s:%d failed (%s); retrying in plaintext", host, port, exc)
    return await handshake(await open_stream(host, port, timeout), None)


async def _open(host: str, port: int, timeout: float) -> anyio.abc.ByteStream:
    try:
        with anyio.fail_after(timeout):
            return await anyio.connect_tcp(host, port)
    except TimeoutError:
        raise PeerConnectionClosed(f"connecting to {host}:{port} timed out") from None
    except OSError as exc:
        raise PeerConnectionClosed(f"cannot connect to {host}:{port}: {exc}") from None


async def _initiate(
    stream: anyio.abc.ByteStream,
    remote: tuple[str, int],
    provide: int | None,
    info_hash: bytes,
    peer_id: bytes,
    reserved: bytes | None,
    timeout: float,
    num_pieces: int | None,
    piece_size: Callable[[int], int] | None,
    read_timeout: float,
    randbytes: Callable[[int], bytes],
) -> PeerConnection:
    """Handshakes as the initiator on an open stream (closed on failure)."""
    wire = PeerWire(
        info_hash=info_hash, peer_id=peer_id, reserved=reserved, num_pieces=num_pieces, piece_size=piece_size
    )
    encrypt: StreamCipher | None = None
    decrypt: StreamCipher | None = None
    try:
        with anyio.fail_after(timeout):
            if provide is None:
                await _write(stream, wire.handshake())
            else:
                encrypt, decrypt = await _mse_initiate(stream, wire, provide, randbytes)
            await _await_handshake(stream, wire, decrypt)
    except TimeoutError:
        await _close_quietly(stream)
        raise PeerConnectionClosed(f"handshake with {remote[0]}:{remote[1]} timed out") from None
    except BaseException:
        await _close_quietly(stream)
        raise
    return await _established(stream, wire, remote=remote, encrypt=encrypt, decrypt=decrypt,
                              read_timeout=read_timeout, mse=provide is not None)


async def _established(stream: anyio.abc.ByteStream, wire: PeerWire, *, remote: tuple[str, int] | None,
                       encrypt: StreamCipher | None, decrypt: StreamCipher | None, read_timeout: float,
                       mse: bool) -> PeerConnection:
    """The connection after both handshakes: over a ``PeerProtocol`` (``protocol.py``) for TCP and
    uTP on asyncio, over the anyio stream otherwise (memory streams)."""
    from .protocol import take_over  # (it builds on this module)

    fast = await take_over(stream, wire, remote=remote, encrypt=encrypt, decrypt=decrypt,
                           read_timeout=read_timeout, mse=mse)
    if fast is not None:
        return fast
    return PeerConnection(stream, wire, remote=remote, encrypt=encrypt, decrypt=decrypt,
                          read_timeout=read_timeout, mse=mse)


async def _close_quietly(stream: anyio.abc.ByteStream) -> None:
    with anyio.CancelScope(shield=True):
        try:
            await stream.aclose()
        except (OSError, anyio.BrokenResourceError):
            pass


async def accept(
    stream: anyio.abc.ByteStream,
    *,
    lookup: Callable[[bytes], object],
    peer_id: bytes,
    encryption: EncryptionPolicy = "prefer",
    info_hashes: Iterable[bytes] | Callable[[], Iterable[bytes]] | None = None,
    reserved: bytes | None = None,
    timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
    randbytes: Callable[[int], bytes] = os.urandom,
    prefer_rc4: bool = False,
) -> PeerConnection:
    """Answer an incoming connection: detect plaintext (``\\x13BitTorrent protocol``) or MSE
    from the first bytes, find the torrent, reply with our handshake.

    ``lookup(info_hash)`` must be truthy for a torrent we serve. An MSE initiator names its
    torrent only by HASH('req2', info_hash) (``mse.skey_hash``): the responder tries each of
    ``info_hashes`` when given, and asks ``lookup(skey_hash)`` too, which may return the
    20-byte info-hash it stands for (anything else means "not ours"). ``encryption`` "require"
    refuses plaintext peers, "disable" refuses MSE; under "prefer", an MSE peer that offers both
    gets a plaintext payload after the obfuscated handshake unless ``prefer_rc4``. The returned
    connection's ``info_hash`` is the torrent asked for; set its metadata with
    ``conn.wire.set_metadata(...)``.
    Failures raise a ``PeerError``: ``PeerProtocolError`` (``EncryptionError`` for policy and MSE
    failures) or ``PeerConnectionClosed`` (EOF or ``timeout``). The stream is not closed on failure: the
    caller owns it."""
    if encryption not in _ENCRYPTION_POLICIES:
        raise ValueError(f"encryption must be one of {_ENCRYPTION_POLICIES}")
    try:
        with anyio.fail_after(timeout):
            first = b""
            while len(first) < len(PROTOCOL_HEADER) and PROTOCOL_HEADER.startswith(first):
                first += await _read(stream)
            plaintext = first.startswith(PROTOCOL_HEADER)
            encrypt: StreamCipher | None = None
            decrypt: StreamCipher | None = None
            if plaintext:
                if encryption == "require":
                    raise EncryptionError("plaintext peer refused: encryption is required")
                wire = PeerWire(info_hash=None, peer_id=peer_id, reserved=reserved)
                wire.receive_data(first)
            else:
                if encryption == "disable":
                    raise EncryptionError("not a BitTorrent handshake and encryption is disabled")
                allowed = CRYPTO_RC4 if encryption == "require" else CRYPTO_RC4 | CRYPTO_PLAINTEXT

                def resolve(wanted: bytes) -> bytes | None:
                    found = lookup(wanted)
                    return found if isinstance(found, bytes) else None

                mse = MseResponder(info_hashes or (), resolve=resolve, crypto_allowed=allowed,
                                   randbytes=randbytes, prefer_rc4=prefer_rc4)
                data = first
                received = 0
                while mse.result is None:
                    received += len(data)
                    if received > MSE_MAX_HANDSHAKE_BYTES:
                        raise EncryptionError("MSE handshake too long")
                    out = mse.receive_data(data)
                    if out:
                        await _write(stream, out)
                    if mse.result is None:
                        data = await _read(stream)
                result = mse.result
                wire = PeerWire(info_hash=result.info_hash, peer_id=peer_id, reserved=reserved)
                wire.receive_data(result.initial_payload)
                wire.receive_data(result.remaining)
                encrypt, decrypt = result.encrypt, result.decrypt
            hs = await _await_handshake(stream, wire, decrypt)
            if not lookup(hs.info_hash):
                raise PeerProtocolError(f"handshake for a torrent we do not serve ({hs.info_hash.hex()})")
            our_handshake = wire.handshake()
            await _write(stream, encrypt.update(our_handshake) if encrypt is not None else our_handshake)
    except TimeoutError:
        raise PeerConnectionClosed(f"incoming handshake not completed within {timeout:g} s") from None
    return await _established(stream, wire, remote=_remote_of(stream), encrypt=encrypt, decrypt=decrypt,
                              read_timeout=read_timeout, mse=not plaintext)
