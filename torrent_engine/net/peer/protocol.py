"""The receive path after the handshakes: an asyncio ``BufferedProtocol`` that lets the socket
write straight into receive buffers we own, decrypts in place (MSE/RC4), and parses every message
of a read in one synchronous pass (``PeerWire.parse_batch``). TCP and uTP links both use it.

A TCP peer we dial does its handshakes in the loop's callbacks (``handshake._Handshaking``), whose
transport is handed to a ``PeerProtocol`` in the callback that reads the peer's handshake
(``adopt``); an incoming one too, on the socket the engine's listener accepted (or, given an
anyio TCP stream, its socket taken from it: ``detach``, a ``dup`` of it, on the running asyncio
loop, uvloop where present). Other links do their handshakes over an anyio stream (a peer
dialed through a proxy or by a host name, uTP); then ``take_over`` moves a TCP socket over the
same way and the anyio stream is closed (a uTP stream keeps its connection, whose socket feeds
the protocol). The protocol owns no task: the task that
calls ``run``/``receive`` is the connection's owner, and ``aclose`` (always called by that owner)
aborts the transport, so a stopped session leaves no socket behind.

The receive buffer is one bytearray, reused: a read lands after the bytes already buffered; when
less than a quarter of it is left, the incomplete message at the end is moved to the front (at
most one message is ever moved). It starts at ``START_BUFFER`` (an idle peer costs little) and
grows, up to ``BUFFER_SIZE``, while reads fill all the room they are given (a busy peer gets
large reads). The owner may lower that ceiling (``set_max_buffer``: a session with many busy
peers shares a budget among them); a buffer above a lowered ceiling shrinks at its next read.
So nothing is allocated per read, and a ``Piece`` block handed to the
batch handler is a read-only view into that buffer, valid only during the call: the handler must
copy what it keeps (the session copies it into its piece buffer), and the views are released
when it returns, so a view kept by mistake fails loudly instead of changing under its holder.
A transport that already holds a read as a ``bytes`` object (uTP's, whose core joins each
run of datagrams' payloads once) hands it to ``take_bytes``, which parses it in place: only the
message that straddles two such reads is copied into the buffer.
Messages that wait in the queue (for ``receive`` or the slow handler) get their blocks copied, and
the socket is read no further while any wait: the owner catches up first (a block waiting for
memory or a rate limit holds the peer back through TCP flow control, at no copying cost).
A turn of the loop reads from each peer once more at most when it is ``TURN_SECONDS`` old: its
reading then waits for the next turn (``_Turns``; uvloop would read a busy socket up to 32 times
before anything else ran).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from typing import Protocol, runtime_checkable

import anyio
import anyio.abc

from ...errors import PeerConnectionClosed, PeerProtocolError
from .connection import BatchHandler, MessageHandler, PeerConnection, hand_over
from .messages import Message, Piece, piece_header
from .mse import StreamCipher
from .wire import PeerWire

__all__ = ["BUFFER_SIZE", "START_BUFFER", "PeerProtocol", "ProtocolPeerConnection", "adopt", "detach",
           "on_asyncio", "take_over"]

log = logging.getLogger(__name__)

BUFFER_SIZE = 1024 * 1024  # the receive buffer of a busy peer; a loopback read brings up to ~1 MiB
START_BUFFER = 64 * 1024  # the receive buffer of a new (or idle) peer
HIGH_WATER = 1024 * 1024  # bytes queued in the transport before writers wait (drain)
TURN_SECONDS = 0.01  # a turn of the event loop older than this reads no more than once from a peer


class _Turns:
    """One event loop's turns as the peers' reads see them. A turn begins with the first read
    after the last turn ended and ends at the loop's next turn (a ``call_soon``); a read that
    comes when the turn is ``TURN_SECONDS`` old and filled its buffer pauses its peer's reading
    until then. (uvloop reads a socket whose reads fill the buffer up to 32 times in one turn: four
    fast peers held the loop 50-100 ms at a time, 30 MiB from one of them, before a timer, the
    API or a poll had its turn; bench/RESULTS.md. asyncio's own loop reads once a turn.)"""

    __slots__ = ("began", "waiting")

    def __init__(self) -> None:
        self.began = -1.0  # when the turn's first read came (-1: no turn is open)
        self.waiting: list[PeerProtocol] = []  # the peers whose reading waits for the next turn

    def spent(self, loop: asyncio.AbstractEventLoop) -> bool:
        """A read came: whether the turn has had its time."""
        now = time.monotonic()
        if self.began < 0:
            self.began = now
            loop.call_soon(self._next)
            return False
        return now - self.began >= TURN_SECONDS

    def _next(self) -> None:
        self.began = -1.0
        waiting, self.waiting = self.waiting, []
        for proto in waiting:
            proto.next_turn()


_TURNS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Turns] = weakref.WeakKeyDictionary()


def _turns_of(loop: asyncio.AbstractEventLoop) -> _Turns:
    turns = _TURNS.get(loop)
    if turns is None:
        turns = _TURNS[loop] = _Turns()
    return turns


class PeerProtocol(asyncio.BufferedProtocol):
    """Receives into one reused buffer and parses each read in one pass; owns no task."""

    def __init__(self, wire: PeerWire, decrypt: StreamCipher | None, initial: bytes) -> None:
        self.wire = wire
        self._decrypt = decrypt
        self._size = START_BUFFER  # what the buffer should be (grows with the reads)
        self._max = BUFFER_SIZE  # the most _size may grow to (set_max_buffer)
        self._offered = 0  # room given to the last read
        self._buf = bytearray(max(START_BUFFER, len(initial) + START_BUFFER // 4))
        self._view = memoryview(self._buf)
        self._ro = self._view.toreadonly()
        self._view[: len(initial)] = initial
        self._start = 0
        self._end = len(initial)
        self._need = 0
        self.transport: asyncio.Transport | None = None
        # called with each read's messages, on the loop; returns how many of them it handled
        self.handler: BatchHandler | None = None
        self.queue: deque[Message] = deque()  # messages for the owner's task, in order
        self._paused = False
        self._yielding = False  # reading paused until the loop's next turn (``_Turns``)
        # why the connection ended (None while open): a PeerProtocolError, or what the handler raised
        self.error: BaseException | None = None
        self.bytes_received = 0
        self.last_received = 0.0  # loop time of the last read
        self._loop = asyncio.get_running_loop()
        self._turns = _turns_of(self._loop)
        self._readable = anyio.Event()  # set when messages were queued or the connection ended
        self._writable = anyio.Event()
        self._writable.set()

    # -- asyncio callbacks ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # noqa: D102
        self.transport = transport  # type: ignore[assignment]  # (uvloop's is not a subclass)
        self.transport.set_write_buffer_limits(high=HIGH_WATER)  # type: ignore[union-attr]
        self.last_received = self._loop.time()

    def get_buffer(self, sizehint: int) -> memoryview:  # noqa: D102
        size = len(self._buf)
        start, end = self._start, self._end
        pending = end - start
        room = size - end
        # (a message bigger than the buffer -- its size is bounded by parse_batch -- grows it too)
        wanted = max(self._size, self._need + self._size // 4)
        # (above twice what is wanted: the ceiling was lowered, or a big message has passed)
        resize = size < wanted or (size > 2 * wanted and pending < wanted)
        if resize or room < size // 4 or room < self._need - pending:
            if resize:
                buf = bytearray(wanted)
                buf[:pending] = self._view[start:end]
                self._buf, self._view = buf, memoryview(buf)
                self._ro = self._view.toreadonly()
            elif pending:
                self._view[:pending] = self._view[start:end]  # (at most one message's bytes)
            self._start, self._end = 0, pending
        self._offered = len(self._buf) - self._end
        return self._view[self._end:]

    def buffer_updated(self, nbytes: int) -> None:  # noqa: D102
        if nbytes and nbytes >= self._offered and self._size < self._max:
            self._size = min(self._max, self._size * 4)  # the read filled all it was given
        end = self._end
        self._end = end + nbytes
        self.bytes_received += nbytes
        # (a read that filled the buffer: uvloop reads again in this turn, up to 32 times)
        if nbytes and self._turns.spent(self._loop) and nbytes >= self._offered and not self._yielding \
                and self.transport is not None:
            self._yielding = True
            self.transport.pause_reading()
            self._turns.waiting.append(self)
        self.last_received = self._loop.time()
        if self._decrypt is not None:
            region = self._view[end:end + nbytes]
            self._decrypt.update_into(region, region)  # type: ignore[attr-defined]
        if self._end - self._start < self._need:
            return  # the message in progress is still incomplete
        batch: list[Message] = []
        try:
            self._start, self._need = self.wire.parse_batch(self._ro, self._start, self._end, batch)
        except PeerProtocolError as exc:
            self._deliver(batch)
            self._lose(exc)
            return
        if self._start == self._end:
            self._start = self._end = 0
        if batch:
            self._deliver(batch)

    def take_bytes(self, data: bytes) -> None:
        """A read that the transport already holds as one ``bytes`` object (uTP's received data,
        joined once per batch of datagrams): ``buffer_updated`` without copying it into the
        buffer first. The message in progress is completed in the buffer with only the bytes it
        lacks; every message after it is parsed in ``data`` itself (its blocks are views of
        ``data``), and the incomplete one at the end is copied to the buffer's front. With
        MSE the bytes are decrypted in place, so they go through the buffer."""
        n = len(data)
        if self._decrypt is not None or not n:
            pos = 0
            while pos < n and self.error is None:
                buf = self.get_buffer(n - pos)
                k = min(len(buf), n - pos)
                buf[:k] = data[pos:pos + k]
                pos += k
                self.buffer_updated(k)
            return
        self.bytes_received += n
        self.last_received = self._loop.time()
        view = memoryview(data)
        batch: list[Message] = []
        pos = 0
        rest = 0  # where the incomplete message at the end of ``data`` starts (n: none)
        try:
            while self._end > self._start and pos < n:  # the message in progress, in the buffer
                # (5 bytes asked: its header; then the whole message, which get_buffer makes room
                # for; nothing asked yet: bytes that came with the handshake, parsed first)
                k = min(n - pos, max(0, self._need - (self._end - self._start)))
                if k:
                    self.get_buffer(k)[:k] = view[pos:pos + k]
                    self._end += k
                    pos += k
                self._start, self._need = self.wire.parse_batch(self._ro, self._start, self._end, batch)
            rest = n
            if pos < n:
                self._start = self._end = 0  # (what is left of the buffer's message was parsed)
                rest, self._need = self.wire.parse_batch(view, pos, n, batch)
        except PeerProtocolError as exc:
            self._deliver(batch)
            self._lose(exc)
            return
        if self._start == self._end:
            self._start = self._end = 0
        if batch:
            self._deliver(batch)  # (before the tail below lands where a delivered block may lie)
        if rest < n:
            tail = n - rest
            self.get_buffer(tail)[:tail] = view[rest:]
            self._end += tail

    def _deliver(self, batch: list[Message]) -> None:
        handler = self.handler
        if handler is not None and not self.queue:
            try:
                done = handler(batch)
            except Exception as exc:  # raised in the owner's task (run), not in the loop's callback
                self._lose(exc)
                done = len(batch)
            for msg in batch[:done]:
                if type(msg) is Piece:
                    msg.block.release()  # type: ignore[union-attr]  # (valid during the call only)
            if done >= len(batch):
                return
            batch = batch[done:]  # the rest, in order, is for the owner's task
        # blocks that wait get their own bytes: the buffer under their views will be reused
        self.queue.extend([Piece(msg.index, msg.begin, bytes(msg.block)) if type(msg) is Piece else msg
                           for msg in batch])
        self._readable.set()
        if not self._paused and self.error is None:
            # The owner's task is behind (a block waits for memory or a rate limit, or a message
            # needs an await): read no further until it has caught up. Reading on would copy
            # every later block out of the receive buffer into the queue while the owner waits
            # (with the piece-buffer cap reached, that was most of the loop's work), and TCP
            # flow control is what should slow the peer down.
            self._paused = True
            assert self.transport is not None
            self.transport.pause_reading()

    def parse_pending(self) -> None:
        """Parse the bytes it was made with (those that came with the handshakes) as a read
        would: the owner calls it once it holds the connection."""
        if self._end:
            self.buffer_updated(0)

    def set_max_buffer(self, size: int) -> None:
        """The most the receive buffer may grow to (clamped to ``START_BUFFER``..``BUFFER_SIZE``);
        a buffer already larger shrinks to it at its next read."""
        self._max = min(BUFFER_SIZE, max(START_BUFFER, size))
        self._size = min(self._size, self._max)

    def take_all(self) -> list[Message]:
        """Every queued message; the queue is left empty and reading stays paused until
        ``resume()`` (the owner calls it once it has handled them)."""
        msgs = list(self.queue)
        self.queue.clear()
        return msgs

    def next_turn(self) -> None:
        """(``_Turns``.) The loop's next turn: read again, unless the owner's queue holds it."""
        self._yielding = False
        if not self._paused:
            self._resume_reading()

    def resume(self) -> None:
        """Read again (paused while messages waited for the owner's task)."""
        if self._paused:
            self._paused = False
            if not self._yielding:
                self._resume_reading()

    def _resume_reading(self) -> None:
        transport = self.transport
        if self.error is None and transport is not None and not transport.is_closing():
            # the time spent paused was ours, not the peer's silence
            self.last_received = self._loop.time()
            transport.resume_reading()

    def popleft(self) -> Message:
        """The oldest queued message (the queue must not be empty); reading resumes once the
        owner has taken them all."""
        msg = self.queue.popleft()
        if not self.queue:
            self.resume()
        return msg

    def eof_received(self) -> bool | None:  # noqa: D102
        self._lose(PeerConnectionClosed("connection closed by the peer"))
        return False

    def connection_lost(self, exc: Exception | None) -> None:  # noqa: D102
        if exc is not None:
            self._lose(PeerConnectionClosed(f"connection lost: {exc!r}"))
        else:
            self._lose(PeerConnectionClosed("connection closed"))
        self._writable.set()

    def pause_writing(self) -> None:  # noqa: D102
        self._writable = anyio.Event()

    def resume_writing(self) -> None:  # noqa: D102
        self._writable.set()

    # -- used by the connection ----------------------------------------------------------

    def lose(self, exc: BaseException) -> None:
        """End the connection's reading with ``exc`` (the first reason is kept)."""
        self._lose(exc)

    def _lose(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
            transport = self.transport
            if transport is not None and not transport.is_closing():
                transport.pause_reading()  # nothing more is parsed or delivered
        self._readable.set()

    def readable(self) -> anyio.Event:
        """An event set when messages are queued or the connection has ended."""
        if self.queue or self.error is not None:
            self._readable.set()
        elif self._readable.is_set():
            self._readable = anyio.Event()
        return self._readable

    def writable(self) -> anyio.Event:
        """An event set while the transport's write buffer is below the high-water mark."""
        return self._writable


class ProtocolPeerConnection(PeerConnection):
    """A ``PeerConnection`` whose bytes move through a ``PeerProtocol`` on the asyncio loop.

    ``run(handler)`` is the fast path: each read's messages go to ``handler`` synchronously,
    in one list. ``receive()`` still works (messages are queued while no handler is set)."""

    def __init__(self, protocol: PeerProtocol, transport: asyncio.Transport, *,
                 remote: tuple[str, int] | None, encrypt: StreamCipher | None, decrypt: StreamCipher | None,
                 read_timeout: float, mse: bool) -> None:
        super().__init__(_NoStream(), protocol.wire, remote=remote, encrypt=encrypt, decrypt=decrypt,
                         read_timeout=read_timeout, mse=mse)
        self._protocol = protocol
        self._transport = transport

    @property
    def bytes_received(self) -> int:
        """Bytes read from the socket (before decryption)."""
        return self._protocol.bytes_received

    @bytes_received.setter
    def bytes_received(self, value: int) -> None:
        pass  # counted by the protocol

    def set_metadata(self, num_pieces: int, piece_size: Callable[[int], int]) -> None:
        """The torrent's piece count and sizes, once known. Messages the socket brought before
        (parsed without them, waiting in the queue) are checked now: from the first that does
        not fit the torrent, the connection ends with that protocol error."""
        super().set_metadata(num_pieces, piece_size)
        proto = self._protocol
        for i, msg in enumerate(proto.queue):
            try:
                self.wire.check_message(msg)
            except PeerProtocolError as exc:
                for _ in range(len(proto.queue) - i):
                    proto.queue.pop()
                proto.lose(exc)
                return

    def set_max_buffer(self, size: int) -> None:
        """The most bytes the receive buffer may grow to (``PeerProtocol.set_max_buffer``)."""
        self._protocol.set_max_buffer(size)

    def _raise(self) -> None:
        err = self._protocol.error
        assert err is not None
        if isinstance(err, PeerProtocolError):
            raise self._fail(err)
        raise err

    async def receive(self) -> Message:
        """The next message (waits up to ``read_timeout`` for one)."""
        proto = self._protocol
        while True:
            if proto.queue:
                return proto.popleft()
            if proto.error is not None:
                self._raise()
            with anyio.move_on_after(self.read_timeout) as scope:
                await proto.readable().wait()
            if scope.cancelled_caught:
                raise self._fail(PeerConnectionClosed(f"no data for {self.read_timeout:g} s"))

    def receive_nowait(self) -> Message | None:
        """The next message if one is already parsed, else ``None`` (no I/O)."""
        proto = self._protocol
        if proto.queue:
            return proto.popleft()
        if proto.error is not None:
            self._raise()
        return None

    async def run(self, fast: BatchHandler, slow: MessageHandler) -> None:
        """Hand each read's messages to ``fast`` (synchronously, on the loop, in the protocol's
        callback); the ones it leaves (``fast`` returns how many it handled from the front)
        go to ``slow`` in this task, in order, and later reads wait in the queue until they
        have. Runs until the connection ends, then raises why (``PeerProtocolError``, or what a
        handler raised). No byte for ``read_timeout`` ends it too."""
        proto = self._protocol
        loop = asyncio.get_running_loop()
        try:
            while True:
                while proto.queue:  # what came while no handler was set (reading is paused)
                    await hand_over(proto.take_all(), fast, slow)
                if proto.error is not None:
                    self._raise()
                proto.handler = fast
                proto.resume()
                idle = loop.time() - proto.last_received
                if idle >= self.read_timeout:
                    raise self._fail(PeerConnectionClosed(f"no data for {self.read_timeout:g} s"))
                with anyio.move_on_after(self.read_timeout - idle):
                    await proto.readable().wait()
                proto.handler = None
        finally:
            proto.handler = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Queue protocol bytes for sending now (no wait; see ``drain``)."""
        if self._protocol.error is not None:
            self._raise()
        if self._encrypt is not None:
            data = self._encrypt.update(data)  # type: ignore[arg-type]  # (any buffer will do)
        self._transport.write(data)
        self.bytes_sent += len(data)

    def write_pieces(self, pieces: Iterable[tuple[int, int, bytes | memoryview]]) -> None:
        """Queue ``piece`` messages as one vectored write: the blocks are not copied (plaintext)."""
        if self._protocol.error is not None:
            self._raise()
        parts: list[bytes | memoryview] = []
        size = 0
        for index, begin, block in pieces:
            parts.append(piece_header(index, begin, len(block)))
            parts.append(block)
            size += 13 + len(block)
        if self._encrypt is not None:
            self._transport.write(self._encrypt.update(b"".join(parts)))
        else:
            self._transport.writelines(parts)
        self.bytes_sent += size

    async def drain(self) -> None:
        """Wait until the write buffer is below its high-water mark (bounded by
        ``read_timeout``: a peer that reads nothing is closed)."""
        writable = self._protocol.writable()
        if writable.is_set():
            return
        with anyio.move_on_after(self.read_timeout) as scope:
            await writable.wait()
        if scope.cancelled_caught:
            raise self._fail(
                PeerConnectionClosed(f"send blocked for {self.read_timeout:g} s: the peer reads nothing"))
        if self._protocol.error is not None:
            self._raise()

    async def send_bytes(self, data: bytes) -> None:
        """Write raw protocol bytes, then wait while the write buffer is full."""
        self.write(data)
        await self.drain()

    async def aclose(self, reason: str = "closed by us") -> None:
        """Close the connection (``reason`` is kept and logged)."""
        if self.close_reason is None:
            self.close_reason = reason
            log.debug("peer %s closed: %s", self.remote, reason)
        self._protocol.lose(PeerConnectionClosed(reason))
        self._transport.abort()


class _NoStream(anyio.abc.ByteStream):
    """Stands in for the anyio stream a ``ProtocolPeerConnection`` no longer has."""

    async def receive(self, max_bytes: int = 65536) -> bytes:  # noqa: D102
        raise anyio.ClosedResourceError

    async def send(self, item: bytes) -> None:  # noqa: D102
        raise anyio.ClosedResourceError

    async def send_eof(self) -> None:  # noqa: D102
        raise anyio.ClosedResourceError

    async def aclose(self) -> None:  # noqa: D102
        pass


@runtime_checkable
class AttachesProtocol(Protocol):
    """A stream that can feed its bytes to an asyncio protocol itself (a uTP stream:
    ``UtpStream.attach_protocol``), offered as a capability rather than known by its class."""

    def attach_protocol(self, make: Callable[[bytes], asyncio.BufferedProtocol]
                        ) -> tuple[asyncio.BufferedProtocol, asyncio.Transport]:
        """From now on the bytes go to ``make(pending)``'s protocol; it and the transport."""


async def take_over(stream: anyio.abc.ByteStream, wire: PeerWire, *, remote: tuple[str, int] | None,
                    encrypt: StreamCipher | None, decrypt: StreamCipher | None, read_timeout: float,
                    mse: bool) -> ProtocolPeerConnection | None:
    """Move a handshaken TCP connection from its anyio stream onto a ``PeerProtocol``.

    ``None`` (the stream untouched) when this is not a TCP socket on an asyncio loop whose
    buffered bytes can be taken (memory streams, other backends): the caller keeps the
    stream. On success the anyio stream is closed and the socket lives in the new transport.
    A uTP stream keeps its connection and feeds the protocol (``UtpStream.attach_protocol``)."""
    if isinstance(stream, AttachesProtocol):  # uTP: the stream keeps its connection, its reads feed us
        made: list[PeerProtocol] = []

        def make(pending: bytes) -> PeerProtocol:
            if pending and decrypt is not None:
                pending = decrypt.update(pending)
            made.append(PeerProtocol(wire, decrypt, wire.take_buffered() + pending))
            return made[0]

        _, transport = stream.attach_protocol(make)
        protocol = made[0]
        conn = ProtocolPeerConnection(protocol, transport, remote=remote, encrypt=encrypt, decrypt=decrypt,
                                      read_timeout=read_timeout, mse=mse)
        protocol.parse_pending()
        return conn
    taken = await detach(stream)
    if taken is None:
        return None
    dup, initial = taken
    # bytes the anyio stream read past the handshake: decrypt as they would have been, in order
    if initial and decrypt is not None:
        initial = decrypt.update(initial)
    initial = wire.take_buffered() + initial
    try:
        with anyio.CancelScope(shield=True):  # the socket is in exactly one owner's hands throughout
            protocol = PeerProtocol(wire, decrypt, initial)
            loop = asyncio.get_running_loop()
            transport, _ = await loop.connect_accepted_socket(lambda: protocol, sock=dup)
    except BaseException:
        dup.close()
        raise
    conn = ProtocolPeerConnection(protocol, transport, remote=remote, encrypt=encrypt, decrypt=decrypt,
                             read_timeout=read_timeout, mse=mse)
    protocol.parse_pending()
    return conn


async def detach(stream: anyio.abc.ByteStream) -> tuple[socket.socket, bytes] | None:
    """Take a TCP socket from its anyio stream on the running asyncio loop: a non-blocking
    ``dup`` of it, and the bytes the stream had read and nobody took. The stream is closed.
    ``None`` (the stream untouched) when it is not one whose socket and buffered bytes can be
    taken (memory streams, uTP, other backends)."""
    if not isinstance(stream, anyio.abc.SocketStream) or not on_asyncio():
        return None
    pending = getattr(getattr(stream, "_protocol", None), "read_queue", None)
    if not isinstance(pending, deque):
        return None
    try:
        sock = stream.extra(anyio.abc.SocketAttribute.raw_socket)
    except anyio.TypedAttributeLookupError:
        return None
    if sock.type != socket.SOCK_STREAM:
        return None
    initial = b"".join(pending)
    pending.clear()
    dup = sock.dup()
    try:
        with anyio.CancelScope(shield=True):  # the socket is in exactly one owner's hands throughout
            # (anyio 4.16's aclose aborts the socket: earlier ones shut its sending side down first,
            # which ended the connection the dup shares; pyproject.toml asks for 4.16)
            await stream.aclose()
        dup.setblocking(False)
    except BaseException:
        dup.close()
        raise
    return dup, initial


def on_asyncio() -> bool:
    """Whether an asyncio loop runs this task (not another anyio backend)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def adopt(transport: asyncio.Transport, wire: PeerWire, decrypt: StreamCipher | None) -> PeerProtocol:
    """Hand a transport whose handshakes ``wire`` has just read to a new ``PeerProtocol``,
    within the callback that read them: the bytes ``wire`` holds past the handshake come first,
    and every later read goes to the protocol (which the caller then wraps in a
    ``ProtocolPeerConnection`` and tells to ``parse_pending``)."""
    protocol = PeerProtocol(wire, decrypt, wire.take_buffered())
    transport.set_protocol(protocol)
    protocol.connection_made(transport)
    return protocol
