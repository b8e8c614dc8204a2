"""The handshakes of a peer connection, then the connection: ``connect`` dials a peer as the
initiator, ``accept`` answers an incoming stream (plaintext or MSE/PE, as the encryption policy
allows); both return a ``PeerConnection`` (``connection.py``), over a ``PeerProtocol``
(``protocol.py``) where asyncio runs the stream.

Every failure surfaces as a ``PeerError``: ``PeerConnectionClosed`` for EOF, resets and time-outs;
``PeerProtocolError`` when the peer broke the protocol (``EncryptionError`` for MSE and policy
failures).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Protocol

import anyio
import anyio.abc

from ...errors import EncryptionError, PeerConnectionClosed, PeerError, PeerProtocolError
from ...formats.compact import parse_ip
from ..netbind import NetBind, bound_socket, connect_socket
from .connection import DEFAULT_READ_TIMEOUT, RECEIVE_SIZE, EncryptionPolicy, PeerConnection
from .messages import PROTOCOL_HEADER, Handshake
from .mse import CRYPTO_PLAINTEXT, CRYPTO_RC4, MseInitiator, MseResponder, StreamCipher
from .protocol import PeerProtocol, ProtocolPeerConnection, adopt, detach, on_asyncio, take_over
from .wire import PeerWire

__all__ = ["DEFAULT_HANDSHAKE_TIMEOUT", "accept", "connect"]

DEFAULT_HANDSHAKE_TIMEOUT = 10.0
MSE_MAX_HANDSHAKE_BYTES = 96 + 512 + 20 + 20 + 14 + 512 + 2 + 65535  # Ya..IA, all at their maximum

_ENCRYPTION_POLICIES = ("prefer", "require", "disable")

log = logging.getLogger("torrent_engine.net.peer.connection")


def _remote_of(link: anyio.abc.ByteStream | socket.socket) -> tuple[str, int] | None:
    try:
        addr = link.getpeername() if isinstance(link, socket.socket) else \
            link.extra(anyio.abc.SocketAttribute.remote_address)
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


class _Initiation:
    """The initiator's handshakes, without I/O: ``start()`` is what to send first, each
    ``receive(data)`` what to send back; ``done`` once the peer's BitTorrent handshake is read
    (the bytes after it stay in ``wire``). With MSE (``provide`` not None) our handshake rides
    in its initial payload, and ``encrypt``/``decrypt`` are the ciphers agreed (None for a
    plaintext payload). A peer that breaks the protocol raises ``PeerProtocolError``
    (``EncryptionError`` for MSE)."""

    def __init__(self, wire: PeerWire, provide: int | None, randbytes: Callable[[int], bytes]) -> None:
        assert wire.info_hash is not None
        self.wire = wire
        self._mse = None if provide is None else MseInitiator(
            wire.info_hash, crypto_provide=provide, initial_payload=wire.handshake(), randbytes=randbytes)
        self.mse = provide is not None  # (MSE was done, whatever payload it agreed on)
        self.encrypt: StreamCipher | None = None
        self.decrypt: StreamCipher | None = None
        self.done = False

    @property
    def encrypting(self) -> bool:
        """Whether the MSE handshake is still going on."""
        return self._mse is not None and self._mse.result is None

    def start(self) -> bytes:
        """The first bytes to send."""
        return self._mse.start() if self._mse is not None else self.wire.handshake()

    def receive(self, data: bytes) -> bytes:
        """Take bytes from the peer; what to send it back (often nothing)."""
        out = b""
        mse = self._mse
        if mse is not None and mse.result is None:
            out = mse.receive_data(data)
            if mse.result is None:
                return out
            self.encrypt, self.decrypt = mse.result.encrypt, mse.result.decrypt
            data = mse.result.remaining  # (decrypted already)
        elif self.decrypt is not None:
            data = self.decrypt.update(data)
        self.wire.receive_data(data)
        event = self.wire.next_event()
        if event is not None:
            assert isinstance(event, Handshake)
            self.done = True
        return out

    def closed(self, why: str) -> PeerError:
        """The error for a connection that ended before the handshakes did: a peer that does not
        speak MSE hangs up during it (``EncryptionError``, so that "prefer" tries plaintext)."""
        if self.encrypting:
            return EncryptionError(f"the peer hung up during the encryption handshake ({why})")
        return PeerConnectionClosed(why)

    def handshaken(self) -> PeerWire:
        """The wire (its handshake read)."""
        return self.wire


class _Handshakes(Protocol):
    """Either side's handshakes without I/O (``_Initiation``, ``_Answer``)."""

    encrypt: StreamCipher | None
    decrypt: StreamCipher | None
    mse: bool
    done: bool

    def start(self) -> bytes:
        """The first bytes to send (none for the side that answers)."""

    def receive(self, data: bytes) -> bytes:
        """Take bytes from the peer; what to send it back."""

    def closed(self, why: str) -> PeerError:
        """The error for a connection that ended before the handshakes did."""

    def handshaken(self) -> PeerWire:
        """The wire, once ``done``."""


class _Handshaking(asyncio.Protocol):
    """A TCP connection during its handshakes: the loop's callbacks drive the handshakes (no
    task, no stream in between). The callback that completes them hands the transport to a
    ``PeerProtocol`` (``adopt``), so every later byte is read by it; ``done`` then holds that
    protocol, or the error that ended the handshakes."""

    def __init__(self, handshakes: _Handshakes, done: asyncio.Future[PeerProtocol]) -> None:
        self._handshakes = handshakes
        self.done = done
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # noqa: D102
        self._transport = transport  # type: ignore[assignment]  # (uvloop's is not a subclass)
        first = self._handshakes.start()
        if first:
            self._transport.write(first)  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:  # noqa: D102
        transport = self._transport
        if self.done.done() or transport is None:
            return
        handshakes = self._handshakes
        try:
            out = handshakes.receive(data)
            if out:
                transport.write(out)
            if handshakes.done:
                self.done.set_result(adopt(transport, handshakes.handshaken(), handshakes.decrypt))
        except Exception as exc:  # (a protocol error: raised in the task that waits)
            self.done.set_exception(exc)
            transport.abort()

    def eof_received(self) -> bool:  # noqa: D102
        self._end("connection closed during the handshake")
        return False

    def connection_lost(self, exc: Exception | None) -> None:  # noqa: D102
        self._end("connection closed during the handshake" if exc is None
                  else f"connection lost during the handshake: {exc!r}")

    def _end(self, why: str) -> None:
        if not self.done.done():
            self.done.set_exception(self._handshakes.closed(why))


def _settle(done: asyncio.Future[PeerProtocol]) -> None:
    """Leave nothing in the handshakes' future that nobody will read: cancel it, or read the
    error a loop callback set in it just before its waiter left (else the loop reports "Future
    exception was never retrieved" when it is collected)."""
    if not done.cancel() and not done.cancelled():
        done.exception()


async def _handshake_tcp(sock: socket.socket, handshakes: _Handshakes, *, pending: bytes = b"",
                         remote: tuple[str, int] | None, timeout: float, timed_out: str,
                         read_timeout: float) -> PeerConnection:
    """Either side's handshakes on a connected TCP socket, in the loop's callbacks
    (``_Handshaking``), ``pending`` (bytes read from it before) first; the socket is closed on
    failure, and a time-out raises ``PeerConnectionClosed(timed_out)``."""
    loop = asyncio.get_running_loop()
    handshaking = _Handshaking(handshakes, loop.create_future())
    try:
        transport, _ = await loop.create_connection(lambda: handshaking, sock=sock)  # (a connected one)
    except BaseException as exc:
        _settle(handshaking.done)  # (a cancelled make still tells the protocol the connection is lost)
        sock.close()
        if isinstance(exc, OSError):
            raise PeerConnectionClosed(f"connection lost before the handshake: {exc}") from None
        raise
    try:
        with anyio.fail_after(timeout):
            if pending:
                handshaking.data_received(pending)
            protocol = await handshaking.done
    except BaseException as exc:
        _settle(handshaking.done)
        transport.abort()
        if isinstance(exc, TimeoutError):
            raise PeerConnectionClosed(timed_out) from None
        raise
    conn = ProtocolPeerConnection(protocol, transport, remote=remote, encrypt=handshakes.encrypt,
                                  decrypt=handshakes.decrypt, read_timeout=read_timeout, mse=handshakes.mse)
    protocol.parse_pending()
    return conn


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
    bind: NetBind | None = None,
) -> PeerConnection:
    """Dial ``host:port`` and complete the handshakes as the initiator.

    ``opener(host, port, timeout)`` opens the byte stream (default: TCP, from a socket bound by
    ``bind`` when given; uTP and proxies pass their own).

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

    tcp = opener is None and _address_family(host) is not None and on_asyncio()

    async def open_link() -> socket.socket | anyio.abc.ByteStream:
        if tcp:
            return await _open_socket(host, port, timeout, bind)
        if opener is not None:
            return await opener(host, port, timeout)
        return await _open(host, port, timeout, bind)

    async def handshake(link: socket.socket | anyio.abc.ByteStream, crypto_provide: int | None
                        ) -> PeerConnection:
        wire = PeerWire(info_hash=info_hash, peer_id=peer_id, reserved=reserved, num_pieces=num_pieces,
                        piece_size=piece_size)
        initiation = _Initiation(wire, crypto_provide, randbytes)
        if isinstance(link, socket.socket):
            return await _handshake_tcp(link, initiation, remote=(host, port), timeout=timeout,
                                        timed_out=f"handshake with {host}:{port} timed out",
                                        read_timeout=read_timeout)
        return await _initiate(link, (host, port), initiation, timeout, read_timeout)

    link = await open_link()  # a peer we cannot reach is not dialed twice
    try:
        return await handshake(link, provide)
    except PeerError as exc:
        if encryption != "prefer":
            raise
        log.debug("MSE with %s:%d failed (%s); retrying in plaintext", host, port, exc)
    return await handshake(await open_link(), None)


def _address_family(host: str) -> socket.AddressFamily | None:
    """The family of an IP address (None: a name, which ``connect_socket`` resolves)."""
    try:
        return socket.AF_INET6 if parse_ip(host).version == 6 else socket.AF_INET
    except ValueError:
        return None


@contextlib.contextmanager
def _connecting(host: str, port: int, timeout: float) -> Iterator[None]:
    """Bound a connect by ``timeout``; its failures as ``PeerConnectionClosed``."""
    try:
        with anyio.fail_after(timeout):
            yield
    except TimeoutError:
        raise PeerConnectionClosed(f"connecting to {host}:{port} timed out") from None
    except OSError as exc:
        raise PeerConnectionClosed(f"cannot connect to {host}:{port}: {exc}") from None


async def _open(host: str, port: int, timeout: float, bind: NetBind | None = None) -> anyio.abc.ByteStream:
    with _connecting(host, port, timeout):
        return await connect_socket(host, port, bind)


async def _open_socket(host: str, port: int, timeout: float, bind: NetBind | None) -> socket.socket:
    """A TCP socket (bound by ``bind``) connected to the IP address ``host`` by the running
    asyncio loop: the default dial, without ``anyio.connect_tcp``'s task group and stream (a
    peer is an address, not a name to resolve, so there is no happy-eyeballs race to run)."""
    family = _address_family(host)
    assert family is not None
    with _connecting(host, port, timeout):
        sock = bound_socket(family, socket.SOCK_STREAM, bind)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # (as anyio's TCP streams)
            await asyncio.get_running_loop().sock_connect(sock, (host, port))
        except BaseException:
            sock.close()
            raise
    return sock


async def _initiate(stream: anyio.abc.ByteStream, remote: tuple[str, int], initiation: _Initiation,
                    timeout: float, read_timeout: float) -> PeerConnection:
    """Handshakes as the initiator on an open stream (closed on failure)."""
    try:
        with anyio.fail_after(timeout):
            await _write(stream, initiation.start())
            while not initiation.done:
                try:
                    data = await _read(stream)
                except PeerConnectionClosed as exc:
                    raise initiation.closed(str(exc)) from None
                out = initiation.receive(data)
                if out:
                    await _write(stream, out)
    except TimeoutError:
        await _close_quietly(stream)
        raise PeerConnectionClosed(f"handshake with {remote[0]}:{remote[1]} timed out") from None
    except BaseException:
        await _close_quietly(stream)
        raise
    return await _established(stream, initiation.wire, remote=remote, encrypt=initiation.encrypt,
                              decrypt=initiation.decrypt, read_timeout=read_timeout, mse=initiation.mse)


async def _established(stream: anyio.abc.ByteStream, wire: PeerWire, *, remote: tuple[str, int] | None,
                       encrypt: StreamCipher | None, decrypt: StreamCipher | None, read_timeout: float,
                       mse: bool) -> PeerConnection:
    """The connection after both handshakes: over a ``PeerProtocol`` (``protocol.py``) for TCP and
    uTP on asyncio, over the anyio stream otherwise (memory streams)."""
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
    stream: anyio.abc.ByteStream | socket.socket,
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
    failures) or ``PeerConnectionClosed`` (EOF or ``timeout``). A TCP stream on asyncio is handed
    over at once (its socket's handshakes run in the loop's callbacks, and a failure closes it);
    any other stream is not closed on failure: the caller owns it (and may close a handed-over
    one again). A connected TCP socket (on asyncio, where the engine's listener accepts sockets,
    not streams) is the answer's from the call on: closed on failure, the connection's once
    handshaken."""
    if encryption not in _ENCRYPTION_POLICIES:
        if isinstance(stream, socket.socket):
            stream.close()
        raise ValueError(f"encryption must be one of {_ENCRYPTION_POLICIES}")
    answer = _Answer(lookup, peer_id, encryption, info_hashes, reserved, randbytes, prefer_rc4)
    remote = _remote_of(stream)
    taken = (stream, b"") if isinstance(stream, socket.socket) else await detach(stream)
    if taken is not None:
        sock, pending = taken
        return await _handshake_tcp(sock, answer, pending=pending, remote=remote, timeout=timeout,
                                    timed_out=f"incoming handshake not completed within {timeout:g} s",
                                    read_timeout=read_timeout)
    assert not isinstance(stream, socket.socket)  # (taken above)
    try:
        with anyio.fail_after(timeout):
            while not answer.done:
                out = answer.receive(await _read(stream))
                if out:
                    await _write(stream, out)
    except TimeoutError:
        raise PeerConnectionClosed(f"incoming handshake not completed within {timeout:g} s") from None
    return await _established(stream, answer.handshaken(), remote=remote, encrypt=answer.encrypt,
                              decrypt=answer.decrypt, read_timeout=read_timeout, mse=answer.mse)


class _Answer:
    """The responder's handshakes, without I/O: each ``receive(data)`` returns what to send
    back; ``done`` once the peer's BitTorrent handshake is read and ours is in that answer.
    Plaintext or MSE is told from the first bytes; ``accept`` says what each argument means."""

    def __init__(self, lookup: Callable[[bytes], object], peer_id: bytes, encryption: EncryptionPolicy,
                 info_hashes: Iterable[bytes] | Callable[[], Iterable[bytes]] | None, reserved: bytes | None,
                 randbytes: Callable[[int], bytes], prefer_rc4: bool) -> None:
        self._lookup = lookup
        self._peer_id = peer_id
        self._encryption = encryption
        self._info_hashes = info_hashes
        self._reserved = reserved
        self._randbytes = randbytes
        self._prefer_rc4 = prefer_rc4
        self._first = b""  # the bytes that tell plaintext from MSE
        self._mse: MseResponder | None = None
        self._mse_bytes = 0
        self.wire: PeerWire | None = None
        self.mse = False
        self.encrypt: StreamCipher | None = None
        self.decrypt: StreamCipher | None = None
        self.done = False

    def start(self) -> bytes:
        """Nothing: the peer speaks first."""
        return b""

    def closed(self, why: str) -> PeerError:
        """The error for a connection that ended before the handshakes did."""
        return PeerConnectionClosed(why)

    def handshaken(self) -> PeerWire:
        """The wire (its handshake read, ours sent)."""
        assert self.wire is not None
        return self.wire

    def receive(self, data: bytes) -> bytes:
        """Take bytes from the peer; what to send it back (often nothing)."""
        out = b""
        if self.wire is None and self._mse is None:
            first = self._first = self._first + data
            if len(first) < len(PROTOCOL_HEADER) and PROTOCOL_HEADER.startswith(first):
                return out
            self._first, data = b"", first
            if first.startswith(PROTOCOL_HEADER):
                if self._encryption == "require":
                    raise EncryptionError("plaintext peer refused: encryption is required")
                self.wire = PeerWire(info_hash=None, peer_id=self._peer_id, reserved=self._reserved)
            else:
                if self._encryption == "disable":
                    raise EncryptionError("not a BitTorrent handshake and encryption is disabled")
                self._mse = self._responder()
                self.mse = True
        if self.wire is None:
            mse = self._mse
            assert mse is not None
            self._mse_bytes += len(data)
            if self._mse_bytes > MSE_MAX_HANDSHAKE_BYTES:
                raise EncryptionError("MSE handshake too long")
            out = mse.receive_data(data)
            result = mse.result
            if result is None:
                return out
            self.wire = PeerWire(info_hash=result.info_hash, peer_id=self._peer_id, reserved=self._reserved)
            self.wire.receive_data(result.initial_payload)
            self.encrypt, self.decrypt = result.encrypt, result.decrypt
            data = result.remaining  # (decrypted already)
        elif self.decrypt is not None:
            data = self.decrypt.update(data)
        self.wire.receive_data(data)
        event = self.wire.next_event()
        if event is None:
            return out
        assert isinstance(event, Handshake)
        if not self._lookup(event.info_hash):
            raise PeerProtocolError(f"handshake for a torrent we do not serve ({event.info_hash.hex()})")
        ours = self.wire.handshake()
        self.done = True
        return out + (self.encrypt.update(ours) if self.encrypt is not None else ours)

    def _responder(self) -> MseResponder:
        lookup = self._lookup

        def resolve(wanted: bytes) -> bytes | None:
            found = lookup(wanted)
            return found if isinstance(found, bytes) else None

        allowed = CRYPTO_RC4 if self._encryption == "require" else CRYPTO_RC4 | CRYPTO_PLAINTEXT
        return MseResponder(self._info_hashes or (), resolve=resolve, crypto_allowed=allowed,
                            randbytes=self._randbytes, prefer_rc4=self._prefer_rc4)
