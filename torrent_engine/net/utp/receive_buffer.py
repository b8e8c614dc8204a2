"""The receive side of one uTP connection, sans-I/O: in-order bytes waiting for the application,
packets held out of order behind a hole, and the selective ack (BEP 29) that names the held ones.

Which packet is in order, and when to ack, is the connection's call (``connection.py``); this
keeps the bytes and says how much room is left (the window the connection advertises).
"""

from __future__ import annotations

from .packet import SEQ_MASK, make_sack

__all__ = ["MAX_REORDER", "SACK_LIMIT", "ReceiveBuffer"]

SACK_LIMIT = 8  # bytes of selective-ack bitmask we send (64 packets past the hole)
MAX_REORDER = 1024  # out-of-order packets we buffer


class ReceiveBuffer:
    """``capacity`` bytes of received data: in order (``chunks``, ``length``) or held out of order
    (``held``, by seq_nr: the packet type and its payload)."""

    __slots__ = ("capacity", "chunks", "held", "held_bytes", "length")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        # whole chunks (one per batch of datagrams, joined once), handed to ``read`` without
        # further copying where they fit
        self.chunks: list[bytes] = []
        self.length = 0
        self.held: dict[int, tuple[int, bytes]] = {}
        self.held_bytes = 0

    @property
    def window(self) -> int:
        """Bytes the buffer can still take (what the connection advertises)."""
        free = self.capacity - self.length - self.held_bytes
        return free if free > 0 else 0

    def append(self, payload: bytes) -> None:
        """In-order bytes for the application."""
        self.chunks.append(payload)
        self.length += len(payload)

    def read(self, max_bytes: int) -> bytes:
        """Take up to ``max_bytes`` of the in-order bytes."""
        chunks = self.chunks
        if max_bytes >= self.length:
            data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            chunks.clear()
        else:
            taken = 0
            i = 0
            while taken + len(chunks[i]) <= max_bytes:
                taken += len(chunks[i])
                i += 1
            head = chunks[i]  # max_bytes ends inside it (the loop stops at the chunk that would pass it)
            cut = max_bytes - taken
            data = b"".join([*chunks[:i], head[:cut]])
            chunks[:i + 1] = [head[cut:]]
        self.length -= len(data)
        return data

    def read_chunk(self) -> bytes:
        """Take the oldest chunk whole (no join, no cut, so no copy); ``b""`` when nothing waits."""
        if not self.chunks:
            return b""
        data = self.chunks.pop(0)
        self.length -= len(data)
        return data

    def hold(self, seq: int, kind: int, payload: bytes, distance: int) -> None:
        """Keep packet ``seq``, ``distance`` past the last in order, until the hole before it is
        filled; dropped (the peer resends it) when too far ahead, already held, or out of room."""
        if (distance <= MAX_REORDER and seq not in self.held
                and self.held_bytes + len(payload) <= self.capacity):
            self.held[seq] = (kind, payload)
            self.held_bytes += len(payload)

    def take(self, seq: int) -> tuple[int, bytes] | None:
        """The held packet ``seq`` (now in order), or None when it is not here."""
        item = self.held.pop(seq, None)
        if item is not None:
            self.held_bytes -= len(item[1])
        return item

    def drop_held(self) -> None:
        """Forget the held packets (the stream ended before them)."""
        self.held.clear()
        self.held_bytes = 0

    def sack(self, ack_nr: int) -> bytes | None:
        """The selective-ack bitmask for an ack of ``ack_nr``: only while packets are held."""
        if not self.held:
            return None
        base = (ack_nr + 2) & SEQ_MASK
        offsets = sorted((s - base) & SEQ_MASK for s in self.held)
        return make_sack([o for o in offsets if o < SACK_LIMIT * 8], SACK_LIMIT) or None
