"""The uTP socket's table of connections, sans-I/O: which connection a datagram is for (by the
peer's address and the connection id, and by the sender's address exactly as ``recvfrom`` gives
it, for the read path's one lookup), which one sent a datagram an ICMP error names, a free id for
a dial, and the peers that ignored one (dialed over TCP straight away meanwhile)."""

from __future__ import annotations

import random
from collections.abc import Iterator

from .packet import SEQ_MASK, PacketType
from .state import State
from .stream import UtpStream

__all__ = ["MAX_CONNECTIONS", "SILENT_MAX", "SILENT_MEMORY", "ConnectionTable", "SilentPeers"]

Address = tuple[str, int]
# a sender's address exactly as recvfrom gives it: (host, port), or on an IPv6 socket
# (host, port, flowinfo, scope_id)
WireAddress = tuple[str, int] | tuple[str, int, int, int]
Key = tuple[Address, int]  # the peer's (host, port) and our receive id
MAX_CONNECTIONS = 4096  # connections (open or lingering) per socket; further SYNs are ignored
SILENT_MEMORY = 600.0  # s: a peer that ignored our SYN is dialed over TCP straight away meanwhile
SILENT_MAX = 4096  # peers remembered as silent (oldest forgotten first)


class ConnectionTable:
    """The socket's connections (open, or closed and lingering to ack a late FIN)."""

    def __init__(self) -> None:
        self._streams: dict[Key, UtpStream] = {}
        # the same connections keyed by the sender's address exactly as recvfrom returns it (the
        # read path looks a datagram up here without building an address tuple)
        self.by_wire: dict[tuple[WireAddress, int], UtpStream] = {}

    def __len__(self) -> int:
        return len(self._streams)

    def __iter__(self) -> Iterator[tuple[Key, UtpStream]]:
        """``(key, stream)`` of every connection, a copy: forgetting some meanwhile is fine."""
        return iter(list(self._streams.items()))

    @property
    def full(self) -> bool:
        """Whether no further connection may join (``MAX_CONNECTIONS``)."""
        return len(self._streams) >= MAX_CONNECTIONS

    def open_count(self) -> int:
        """How many connections are not closed."""
        return sum(1 for s in self._streams.values() if s.conn.state is not State.CLOSED)

    def get(self, addr: Address, recv_id: int) -> UtpStream | None:
        """The connection with ``addr`` that receives on ``recv_id``."""
        return self._streams.get((addr, recv_id))

    def add(self, addr: Address, stream: UtpStream) -> Key:
        """A new connection with ``addr``; its key."""
        key = (addr, stream.conn.recv_id)
        self._streams[key] = stream
        return key

    def learn_wire(self, stream: UtpStream, wire_addr: WireAddress, conn_id: int) -> None:
        """The first datagram of ``stream`` came from ``wire_addr`` (as recvfrom gave it): key it so."""
        if stream.wire_key is None:
            stream.wire_key = (wire_addr, conn_id)
            self.by_wire[stream.wire_key] = stream

    def forget(self, key: Key) -> None:
        """The connection under ``key`` leaves the table."""
        stream = self._streams.pop(key, None)
        if stream is not None and stream.wire_key is not None:
            self.by_wire.pop(stream.wire_key, None)

    def clear(self) -> list[UtpStream]:
        """Every connection leaves the table (the socket closed); the ones that were in it."""
        streams = list(self._streams.values())
        self._streams.clear()
        self.by_wire.clear()
        return streams

    def free_id(self, addr: Address, rng: random.Random, tries: int = 64) -> int | None:
        """A receive id no connection with ``addr`` uses, or None when ``tries`` draws found none."""
        for _ in range(tries):
            conn_id = rng.randrange(1 << 16)
            if (addr, conn_id) not in self._streams:
                return conn_id
        return None

    def sender_of(self, header: bytes, addr: Address) -> UtpStream | None:
        """The connection that sent ``header`` (a uTP header of ours) to ``addr``, if still known."""
        conn_id = int.from_bytes(header[2:4], "big")
        if header[0] >> 4 == PacketType.SYN:  # a SYN carries our receive id
            return self._streams.get((addr, conn_id))
        for recv_id in ((conn_id - 1) & SEQ_MASK, (conn_id + 1) & SEQ_MASK):  # others our send id
            stream = self._streams.get((addr, recv_id))
            if stream is not None and stream.conn.send_id == conn_id:
                return stream
        return None


class SilentPeers:
    """Peers that did not answer a uTP dial lately (they may speak TCP only), at most ``SILENT_MAX``."""

    def __init__(self) -> None:
        self._since: dict[Address, float] = {}

    def note(self, host: str, port: int, now: float) -> None:
        """``host:port`` did not answer a dial at ``now`` (seconds)."""
        self._since.pop((host, port), None)
        self._since[(host, port)] = now
        while len(self._since) > SILENT_MAX:
            del self._since[next(iter(self._since))]

    def is_silent(self, host: str, port: int, now: float) -> bool:
        """Whether ``host:port`` failed to answer a dial within ``SILENT_MEMORY`` before ``now``."""
        since = self._since.get((host, port))
        if since is None:
            return False
        if now - since > SILENT_MEMORY:
            del self._since[(host, port)]
            return False
        return True
