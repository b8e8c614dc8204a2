"""A mutable set of piece indexes stored as a BEP 3 bitfield (bit 7 - i % 8 of byte i // 8).

Used for our own ``have`` set, peers' bitfields kept by the picker, and recheck results.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

__all__ = ["Bitfield"]

_DIGITS = bytes.maketrans(b"01", b"\x00\x01")


class Bitfield:
    """A set of piece indexes in ``range(num_pieces)`` packed MSB first, as on the wire (BEP 3).

    Invariants: spare bits of the last byte are always zero; ``len()`` is the number of set bits
    and is kept up to date in O(1) per change.
    """

    __slots__ = ("_bits", "_count", "num_pieces")

    def __init__(self, num_pieces: int, indexes: Iterable[int] = ()) -> None:
        if num_pieces < 0:
            raise ValueError("num_pieces must be >= 0")
        self.num_pieces = num_pieces
        self._bits = bytearray((num_pieces + 7) // 8)
        self._count = 0
        for i in indexes:
            self.add(i)

    @classmethod
    def from_bytes(cls, bits: bytes, num_pieces: int) -> Bitfield:
        """Parse a wire bitfield; ``ValueError`` if its length or spare bits are wrong (BEP 3)."""
        if len(bits) != (num_pieces + 7) // 8:
            raise ValueError(f"bitfield of {len(bits)} bytes for {num_pieces} pieces")
        spare = len(bits) * 8 - num_pieces
        if spare and bits[-1] & ((1 << spare) - 1):
            raise ValueError("bitfield has spare bits set")
        bf = cls(num_pieces)
        bf._bits[:] = bits
        bf._count = int.from_bytes(bits, "big").bit_count()
        return bf

    @classmethod
    def full(cls, num_pieces: int) -> Bitfield:
        """A bitfield with every one of ``num_pieces`` pieces set."""
        bf = cls(num_pieces)
        if num_pieces:
            bf._bits[:] = b"\xff" * len(bf._bits)
            spare = len(bf._bits) * 8 - num_pieces
            bf._bits[-1] &= (0xFF << spare) & 0xFF
        bf._count = num_pieces
        return bf

    def to_bytes(self) -> bytes:
        """The bitfield in wire form (BEP 3: the high bit of byte 0 is piece 0)."""
        return bytes(self._bits)

    def flags(self) -> bytes:
        """Each piece's bit as a byte, 0 or 1, in piece order (made in C loops: the bits written
        as binary digits, then translated; no Python step a piece)."""
        if not self.num_pieces:
            return b""
        digits = format(int.from_bytes(self._bits, "big"), f"0{len(self._bits) * 8}b").encode()
        return digits[:self.num_pieces].translate(_DIGITS)

    def copy(self) -> Bitfield:
        """An independent copy."""
        bf = Bitfield(self.num_pieces)
        bf._bits[:] = self._bits
        bf._count = self._count
        return bf

    def __contains__(self, index: object) -> bool:
        if not isinstance(index, int) or not 0 <= index < self.num_pieces:
            return False
        return bool(self._bits[index >> 3] & (0x80 >> (index & 7)))

    def add(self, index: int) -> None:
        """Set piece ``index``; ``IndexError`` when it is out of range."""
        if not 0 <= index < self.num_pieces:
            raise IndexError(f"piece index {index} out of range 0..{self.num_pieces - 1}")
        mask = 0x80 >> (index & 7)
        if not self._bits[index >> 3] & mask:
            self._bits[index >> 3] |= mask
            self._count += 1

    def discard(self, index: int) -> None:
        """Clear piece ``index`` (nothing happens when it is out of range)."""
        if not 0 <= index < self.num_pieces:
            return
        mask = 0x80 >> (index & 7)
        if self._bits[index >> 3] & mask:
            self._bits[index >> 3] &= ~mask & 0xFF
            self._count -= 1

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[int]:
        for byte_index, byte in enumerate(self._bits):
            if byte:
                base = byte_index * 8
                for bit in range(8):
                    if byte & (0x80 >> bit):
                        yield base + bit

    def count_in(self, start: int, stop: int) -> int:
        """How many pieces of ``range(start, stop)`` are set (clamped to the pieces there are):
        one big-int popcount of the bytes the range covers, not a test per piece."""
        start, stop = max(start, 0), min(stop, self.num_pieces)
        if start >= stop:
            return 0
        first, last = start >> 3, (stop - 1) >> 3
        word = int.from_bytes(self._bits[first:last + 1], "big")
        word &= (1 << ((last - first + 1) * 8 - (start & 7))) - 1  # (bits before start: off)
        return (word >> (7 - ((stop - 1) & 7))).bit_count()  # (bits from stop on: shifted out)

    def all(self) -> bool:
        """Whether every piece is set."""
        return self._count == self.num_pieces

    def any_of(self, other: Bitfield) -> bool:
        """True when the two sets intersect (fast: one big-int AND)."""
        return bool(int.from_bytes(self._bits, "big") & int.from_bytes(other._bits, "big"))

    def count_not_in(self, other: Bitfield) -> int:
        """How many indexes are set here and not in ``other`` (of as many pieces)."""
        return (int.from_bytes(self._bits, "big") & ~int.from_bytes(other._bits, "big")).bit_count()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Bitfield):
            return self.num_pieces == other.num_pieces and self._bits == other._bits
        return NotImplemented

    def __repr__(self) -> str:
        return f"Bitfield({self.num_pieces}, have={self._count})"
