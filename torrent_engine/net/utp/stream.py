"""``UtpStream``: one uTP connection as an ``anyio.abc.ByteStream``, over the socket that
multiplexes it (``socket.UtpSocket``)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol  # Any: anyio's attributes

import anyio
import anyio.abc

from .connection import UtpConnection
from .state import State
from .transport import UtpTransport

if TYPE_CHECKING:
    from .table import WireAddress

__all__ = ["StreamOwner", "UtpStream"]

Address = tuple[str, int]


class StreamOwner(Protocol):
    """What a stream needs of its socket."""

    @property
    def local_address(self) -> Address:
        """The UDP socket's bound ``(host, port)``."""

    def mark(self, stream: UtpStream) -> None:
        """The connection has something to send: flush it soon."""


class UtpStream(anyio.abc.ByteStream):
    """One uTP connection as a byte stream (what the peer wire code runs on)."""

    def __init__(self, sock: StreamOwner, conn: UtpConnection, remote: Address) -> None:
        self._sock = sock
        self.conn = conn
        self.remote = remote
        self._changed = anyio.Event()
        self.closed_at: int | None = None  # the socket's clock when the connection closed
        self._closed_by_us = False
        # the socket's key for it by wire address, once known
        self.wire_key: tuple[WireAddress, int] | None = None
        self.feed = conn.receive_datagrams  # bound once: the socket calls it for every batch
        self._transport: UtpTransport | None = None  # once a protocol reads the connection

    def wake(self, *, flushing: bool = False) -> None:
        """Tell the reader (a task waiting on the stream, or the protocol) about news;
        ``flushing``: the socket sends the connection's datagrams right after."""
        if self._transport is not None:
            self._transport.service(flushing=flushing)
            return
        self._changed.set()
        self._changed = anyio.Event()

    def attach_protocol(self, make: Callable[[bytes], asyncio.BufferedProtocol]
                        ) -> tuple[asyncio.BufferedProtocol, UtpTransport]:
        """From now on the connection's bytes go to a protocol, from the socket's read
        callback, instead of to ``receive``. ``make(pending)`` builds it from the bytes
        received but not read yet; it gets ``connection_made`` at once."""
        if self._transport is not None:
            raise anyio.BusyResourceError("reading the uTP stream")
        protocol = make(self.conn.read())
        transport = UtpTransport(self.conn, protocol, lambda: self._sock.mark(self), self._abort_now)
        self._transport = transport
        protocol.connection_made(transport)
        asyncio.get_running_loop().call_soon(transport.service)  # an end that came meanwhile
        return protocol, transport

    def _abort_now(self) -> None:
        if not self._closed_by_us:
            self._closed_by_us = True
            self.conn.close(abandon=True)
            self._sock.mark(self)

    async def wait_change(self) -> None:
        """Until the connection has news (data, space, an end)."""
        await self._changed.wait()

    def _check_usable(self) -> None:
        if self._closed_by_us:
            raise anyio.ClosedResourceError
        if self.conn.state is State.CLOSED and self.conn.error is not None:
            raise anyio.BrokenResourceError(self.conn.error)

    async def receive(self, max_bytes: int = 65536) -> bytes:
        """Up to ``max_bytes`` of the stream; ``anyio.EndOfStream`` once the peer finished."""
        conn = self.conn
        while True:
            if self._closed_by_us:
                raise anyio.ClosedResourceError
            if conn.readable:
                data = conn.read(max_bytes)
                if conn.ack_pending:
                    self._sock.mark(self)  # a reopened window is announced
                return data
            if conn.at_eof:
                raise anyio.EndOfStream
            self._check_usable()
            if conn.state is State.CLOSED:
                raise anyio.EndOfStream
            await self.wait_change()

    async def send(self, item: bytes) -> None:
        """Send ``item``, waiting while the send buffer is full."""
        view = memoryview(item)
        conn = self.conn
        while view:
            self._check_usable()
            if conn.state is State.CLOSED or conn.state is State.FIN_SENT:
                raise anyio.BrokenResourceError("uTP connection closed")
            n = conn.send(view) if conn.state is not State.SYN_SENT or conn.send_space else 0
            view = view[n:]
            self._sock.mark(self)
            if view:
                await self.wait_change()

    async def send_eof(self) -> None:
        """Finish our direction (ST_FIN once the queued bytes are out); the peer may still send."""
        self.conn.close(abandon=False)
        self._sock.mark(self)

    async def aclose(self) -> None:
        """Close the stream at once (queued bytes are abandoned)."""
        if self._closed_by_us:
            return
        self._closed_by_us = True
        self.conn.close(abandon=True)
        self._sock.mark(self)
        self.wake()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:  # Any: as anyio's TypedAttributeProvider
        """The anyio socket attributes: remote and local address and family."""
        family = socket.AF_INET6 if ":" in self.remote[0] else socket.AF_INET
        return {
            anyio.abc.SocketAttribute.remote_address: lambda: self.remote,
            anyio.abc.SocketAttribute.local_address: lambda: self._sock.local_address,
            anyio.abc.SocketAttribute.family: lambda: family,
        }
