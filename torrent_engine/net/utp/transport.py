"""One uTP connection in the shape of an asyncio transport, for a ``BufferedProtocol``.

The peer wire's receive path (``peer/protocol.py``) parses each read in one synchronous pass in
the event loop's callback, without a task switch or a ``receive`` call per read. Over TCP the
loop's transport feeds it; over uTP this does: when the UDP socket's read callback has handed a
batch of datagrams to the connection's core, the bytes go straight into the protocol's buffer
(``get_buffer``/``buffer_updated``) from that same callback.

Only what ``PeerProtocol`` and its connection use is here: ``write``/``writelines`` (queued
beyond the core's send buffer, with ``pause_writing``/``resume_writing`` at the write-buffer
limits), ``pause_reading``/``resume_reading`` (while paused, data waits in the core and the
advertised window closes), ``is_closing``, ``close``/``abort``; and the protocol's
``eof_received`` and ``connection_lost``, each called once.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any  # Any: asyncio's get_extra_info returns whatever the named attribute is

from ...errors import UtpError
from .connection import UtpConnection
from .state import State

DEFAULT_HIGH_WATER = 64 * 1024  # bytes queued (beyond the core's send buffer) before the writer waits


class UtpTransport(asyncio.Transport):
    """Feeds a ``BufferedProtocol`` from a uTP connection; the socket calls ``service``."""

    def __init__(self, conn: UtpConnection, protocol: asyncio.BufferedProtocol,
                 mark: Callable[[], None], abort: Callable[[], None]) -> None:
        super().__init__()
        self._conn = conn
        self._protocol = protocol
        self._mark = mark  # the connection has something to send: the socket flushes it soon
        self._abort = abort  # close the connection at once (its stream's aclose)
        self._loop = asyncio.get_running_loop()
        self._reading = True
        self._closing = False
        self._eof = False
        self._lost = False
        self._queue: deque[bytes | memoryview] = deque()  # written, not yet taken by the core's send buffer
        self._queued = 0
        self._high = DEFAULT_HIGH_WATER
        self._low = DEFAULT_HIGH_WATER // 4
        self._writing_paused = False
        self._flushing = False  # inside a service() after which the socket sends anyway
        # a protocol that parses bytes objects in place (``PeerProtocol.take_bytes``) is handed
        # the core's received chunks as they are; any other gets get_buffer/buffer_updated
        self._take_bytes: Callable[[bytes], None] | None = getattr(protocol, "take_bytes", None)

    # -- the asyncio transport API -------------------------------------------------------
    def get_extra_info(self, name: str, default: Any = None) -> Any:  # noqa: D102  # Any: asyncio's BaseTransport signature
        return default

    def is_closing(self) -> bool:  # noqa: D102
        return self._closing

    def close(self) -> None:  # noqa: D102
        self.abort()

    def abort(self) -> None:  # noqa: D102
        if self._closing:
            return
        self._closing = True
        self._queue.clear()
        self._queued = 0
        self._abort()
        self._loop.call_soon(self._connection_lost, None)

    def is_reading(self) -> bool:  # noqa: D102
        return self._reading and not self._closing

    def pause_reading(self) -> None:  # noqa: D102
        self._reading = False

    def resume_reading(self) -> None:  # noqa: D102
        if not self._reading:
            self._reading = True
            self._loop.call_soon(self.service)  # what waited in the core meanwhile

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:  # noqa: D102
        self._high = DEFAULT_HIGH_WATER if high is None else high
        self._low = self._high // 4 if low is None else low

    def get_write_buffer_size(self) -> int:  # noqa: D102
        return self._queued + self._conn.unsent

    def write(self, data: bytes | bytearray | memoryview) -> None:  # noqa: D102
        if self._closing or not data:
            return
        self._queue.append(bytes(data))
        self._queued += len(data)
        self._push()

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:  # noqa: D102
        self.write(b"".join(list_of_data))

    def can_write_eof(self) -> bool:  # noqa: D102
        return False

    # -- driven by the socket -------------------------------------------------------------
    def service(self, *, flushing: bool = False) -> None:
        """The connection's core has news (data, room to send, end of stream, closed): hand
        the data to the protocol, move queued writes on, report the end. ``flushing``: the
        socket sends the connection's datagrams (acks, what was written) right after."""
        if self._lost:
            return
        self._flushing = flushing
        try:
            self._service()
        finally:
            self._flushing = False

    def _service(self) -> None:
        conn = self._conn
        if self._queue or self._writing_paused:
            self._push()
        protocol = self._protocol
        take = self._take_bytes
        while self._reading and conn.readable and not self._closing:
            if take is not None:  # (the core's chunks as they are: not copied into the buffer first)
                take(conn.read_chunk())
                continue
            buf = memoryview(protocol.get_buffer(conn.readable))
            data = conn.read(len(buf))
            n = len(data)
            buf[:n] = data
            protocol.buffer_updated(n)
        if conn.ack_pending and not self._flushing:
            self._mark()  # a reopened window is announced
        if self._closing:
            return
        if conn.at_eof and self._reading and not self._eof:
            self._eof = True
            if not protocol.eof_received():
                self.abort()
                return
        if conn.state is State.CLOSED and not conn.readable:
            self._closing = True
            error = conn.error
            self._connection_lost(UtpError(error) if error is not None else None)

    def _push(self) -> None:
        conn = self._conn
        queue = self._queue
        moved = False
        while queue and (conn.state is State.CONNECTED or conn.state is State.SYN_SENT):
            data = queue[0]
            n = conn.send(data)
            if not n:
                break
            moved = True
            self._queued -= n
            if n < len(data):
                queue[0] = memoryview(data)[n:]  # (the rest, not copied: the core keeps views of bytes)
                break
            queue.popleft()
        if moved and not self._flushing:
            self._mark()
        size = self._queued + conn.unsent
        if not self._writing_paused and size > self._high:
            self._writing_paused = True
            self._protocol.pause_writing()
        elif self._writing_paused and size <= self._low:
            self._writing_paused = False
            self._protocol.resume_writing()

    def _connection_lost(self, exc: Exception | None) -> None:
        if self._lost:
            return
        self._lost = True
        self._protocol.connection_lost(exc)
