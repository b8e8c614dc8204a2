"""Datagram transports for the DHT node: a real UDP socket, or an in-memory network.

The node only needs ``send``/``receive``/``local_address``/``aclose``, so a simulated network
of thousands of nodes can run in one process on :class:`MemoryNetwork` with the same node code.
"""

from __future__ import annotations

import random
from typing import Protocol

import anyio
from anyio.abc import UDPSocket
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .krpc import Address

__all__ = ["DatagramTransport", "MemoryNetwork", "MemoryTransport", "UdpTransport"]


class DatagramTransport(Protocol):
    """What a DHT node sends and receives datagrams through (UDP, or memory in tests)."""

    @property
    def local_address(self) -> Address:
        """The bound ``(host, port)``."""

    async def send(self, data: bytes, address: Address) -> None:
        """Send one datagram to ``address``."""

    async def receive(self) -> tuple[bytes, Address]:
        """The next datagram and its sender."""

    async def aclose(self) -> None:
        """Close the transport."""


class UdpTransport:
    """One anyio UDP socket. Send errors (unreachable host, ...) are swallowed and counted: UDP
    is unreliable anyway and the node's timeouts handle the loss."""

    def __init__(self, sock: UDPSocket) -> None:
        self._sock = sock
        self._send_lock = anyio.Lock()  # anyio sockets refuse concurrent writers
        self.send_errors = 0

    @classmethod
    async def bind(cls, host: str, port: int) -> UdpTransport:
        """A transport on a new UDP socket bound to ``host:port``."""
        sock = await anyio.create_udp_socket(local_host=host, local_port=port)
        return cls(sock)

    @property
    def local_address(self) -> Address:
        """The bound ``(host, port)``."""
        addr = self._sock.extra(anyio.abc.SocketAttribute.local_address)
        return (str(addr[0]), int(addr[1]))

    async def send(self, data: bytes, address: Address) -> None:
        """Send one datagram to ``address`` (errors are counted, not raised)."""
        try:
            async with self._send_lock:
                await self._sock.sendto(data, address[0], address[1])
        except (OSError, ValueError, anyio.ClosedResourceError, anyio.BrokenResourceError):
            # ValueError: uvloop's answer to an address of the other family.
            self.send_errors += 1

    async def receive(self) -> tuple[bytes, Address]:
        """The next datagram and its sender (receive errors such as ICMP unreachable are skipped)."""
        while True:
            try:
                data, addr = await self._sock.receive()
            except OSError:
                # e.g. ICMP port unreachable reported on the next receive (Linux): not fatal.
                continue
            return data, (str(addr[0]), int(addr[1]))

    async def aclose(self) -> None:
        """Close the socket."""
        await self._sock.aclose()


class MemoryNetwork:
    """An in-process datagram network: endpoints by (host, port), bounded queues (a full queue
    drops the datagram, like a real socket buffer), optional random loss."""

    def __init__(self, *, queue_size: int = 512, loss: float = 0.0, rng: random.Random | None = None) -> None:
        self.queue_size = queue_size
        self.loss = loss
        self.rng = rng or random.Random(0)
        self._endpoints: dict[Address, MemoryTransport] = {}
        self._next_port = 10000
        self.delivered = 0
        self.dropped = 0

    def endpoint(self, host: str, port: int = 0) -> MemoryTransport:
        """A new endpoint at ``host:port`` (the next free port when 0)."""
        if port == 0:
            while (host, self._next_port) in self._endpoints:
                self._next_port += 1
            port = self._next_port
            self._next_port += 1
        if (host, port) in self._endpoints:
            raise OSError(f"address {host}:{port} already in use")
        t = MemoryTransport(self, (host, port))
        self._endpoints[(host, port)] = t
        return t

    def _deliver(self, data: bytes, source: Address, dest: Address) -> None:
        target = self._endpoints.get(dest)
        if target is None or (self.loss and self.rng.random() < self.loss):
            self.dropped += 1
            return
        try:
            target._inbox_send.send_nowait((data, source))
            self.delivered += 1
        except (anyio.WouldBlock, anyio.ClosedResourceError, anyio.BrokenResourceError):
            self.dropped += 1

    def _remove(self, t: MemoryTransport) -> None:
        if self._endpoints.get(t.local_address) is t:
            del self._endpoints[t.local_address]


class MemoryTransport:
    """One endpoint of a ``MemoryNetwork``."""

    def __init__(self, network: MemoryNetwork, address: Address) -> None:
        self._network = network
        self._address = address
        self._inbox_send: MemoryObjectSendStream[tuple[bytes, Address]]
        self._inbox: MemoryObjectReceiveStream[tuple[bytes, Address]]
        self._inbox_send, self._inbox = anyio.create_memory_object_stream[tuple[bytes, Address]](
            network.queue_size
        )

    @property
    def local_address(self) -> Address:
        """The endpoint's ``(host, port)``."""
        return self._address

    async def send(self, data: bytes, address: Address) -> None:
        """Deliver one datagram to ``address`` on the memory network (dropped when nobody is there, or lost
        at the network's loss rate)."""
        self._network._deliver(bytes(data), self._address, address)

    async def receive(self) -> tuple[bytes, Address]:
        """The next datagram and its sender."""
        return await self._inbox.receive()

    async def aclose(self) -> None:
        """Leave the network and close the inbox."""
        self._network._remove(self)
        self._inbox_send.close()
        self._inbox.close()
