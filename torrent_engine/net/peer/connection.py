"""Async shell over one peer connection: moves bytes between an anyio ByteStream and the
sans-I/O wire (``wire.py``), RC4 applied where MSE chose it.

``handshake.connect`` and ``handshake.accept`` return a ``PeerConnection`` whose peer handshake
has been received (over ``protocol.PeerProtocol`` on asyncio, which builds on this module).
Keep-alives, choking and requests are the caller's business. Every failure surfaces as a
``PeerError``: ``PeerConnectionClosed`` for EOF, resets and read timeouts; ``PeerProtocolError``
when the peer broke the protocol.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import Literal

import anyio
import anyio.abc

from ...errors import PeerConnectionClosed, PeerError, PeerProtocolError
from .messages import Handshake, Message, piece_header
from .mse import StreamCipher
from .wire import PeerWire

__all__ = ["BatchHandler", "EncryptionPolicy", "MessageHandler", "PeerConnection", "hand_over"]

log = logging.getLogger(__name__)

EncryptionPolicy = Literal["prefer", "require", "disable"]
# run(): a read's messages, handled synchronously; returns how many (from the front) it handled
BatchHandler = Callable[[list[Message]], int]
MessageHandler = Callable[[Message], Awaitable[None]]
RECEIVE_SIZE = 256 * 1024  # bytes asked of the socket per read: bounds the receive buffer
DEFAULT_READ_TIMEOUT = 150.0  # BEP 3 peers send keep-alives every 2 minutes


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
