"""The DHT's channel on the socket uTP shares with it: KRPC datagrams in a bounded queue, sent
through the same UDP socket (``dht.transport.DatagramTransport``)."""

from __future__ import annotations

from typing import Protocol

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

__all__ = ["DHT_QUEUE", "DatagramOwner", "DhtChannel"]

Address = tuple[str, int]
DHT_QUEUE = 512  # KRPC datagrams buffered for the DHT before dropping


class DatagramOwner(Protocol):
    """What the channel needs of the socket it shares."""

    @property
    def local_address(self) -> Address:
        """The UDP socket's bound ``(host, port)``."""

    def sendto(self, data: bytes, addr: Address) -> None:
        """Send one datagram."""

    def detach_dht(self, channel: DhtChannel) -> None:
        """Stop routing KRPC datagrams to ``channel``."""


class DhtChannel:
    """The DHT's view of the shared socket (``dht.transport.DatagramTransport``)."""

    def __init__(self, sock: DatagramOwner) -> None:
        self._sock = sock
        self._in_send: MemoryObjectSendStream[tuple[bytes, Address]]
        self._in: MemoryObjectReceiveStream[tuple[bytes, Address]]
        self._in_send, self._in = anyio.create_memory_object_stream[tuple[bytes, Address]](DHT_QUEUE)

    @property
    def local_address(self) -> Address:
        """The UDP socket's bound ``(host, port)``."""
        return self._sock.local_address

    def put(self, data: bytes, addr: Address) -> None:
        """A KRPC datagram from the socket (dropped when the DHT's queue is full)."""
        try:
            self._in_send.send_nowait((data, addr))
        except (anyio.WouldBlock, anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass  # a full queue drops, as a socket buffer would

    async def send(self, data: bytes, address: Address) -> None:
        """Send one KRPC datagram through the shared socket."""
        self._sock.sendto(data, address)

    async def receive(self) -> tuple[bytes, Address]:
        """The next KRPC datagram and its sender."""
        return await self._in.receive()

    async def aclose(self) -> None:
        """Stop routing KRPC datagrams to this channel."""
        self._in_send.close()
        self._in.close()
        self._sock.detach_dht(self)
