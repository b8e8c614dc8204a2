"""The picker's small parts (``policy/picker.py``): what a block request is and what receiving one
decided, a piece being downloaded block by block, and the piece sets a peer can have. Pure."""

from __future__ import annotations

from collections.abc import Container, Hashable
from dataclasses import dataclass

from ..net.peer.messages import BLOCK_SIZE

__all__ = ["ACCEPTED", "ALL", "COMPLETE", "NOTHING", "NOT_ACCEPTED", "All", "Block", "BlockReceived",
           "Download", "Nothing", "PeerKey", "Without", "make_block"]

PeerKey = Hashable


@dataclass(frozen=True, slots=True)
class Block:
    """``length`` bytes at ``begin`` of piece ``index`` (what a REQUEST/PIECE message names)."""

    index: int
    begin: int
    length: int


_new = object.__new__
# (the slots' own setters: what the frozen ``__setattr__`` would refuse, ``__init__`` does so)
_block_index, _block_begin, _block_length = (
    vars(Block)[name].__set__ for name in ("index", "begin", "length"))


def make_block(index: int, begin: int, length: int) -> Block:
    """``Block(index, begin, length)`` without the frozen dataclass's ``__init__`` (one
    ``object.__setattr__`` a field): the picker makes one a request (bench/RESULTS.md). The
    same frozen ``Block``, equal to the one ``Block()`` makes."""
    block: Block = _new(Block)
    _block_index(block, index)
    _block_begin(block, begin)
    _block_length(block, length)
    return block


@dataclass(frozen=True, slots=True)
class BlockReceived:
    """What ``block_received`` decided.

    ``accepted``: new data — write it. ``piece_complete``: every block of the piece is now in —
    hash it, then call ``piece_passed`` or ``piece_failed``. ``cancels``: (peer, block) requests
    of the same block still outstanding at other peers (endgame) — send them CANCEL.
    """

    accepted: bool
    piece_complete: bool = False
    cancels: tuple[tuple[PeerKey, Block], ...] = ()


NOT_ACCEPTED = BlockReceived(False)
ACCEPTED = BlockReceived(True)
COMPLETE = BlockReceived(True, True)


class Download:
    """Block states of one piece being downloaded."""

    __slots__ = ("free", "hint", "nblocks", "nreceived", "received", "requesters", "size", "sources")

    def __init__(self, size: int) -> None:
        self.size = size
        self.nblocks = (size + BLOCK_SIZE - 1) // BLOCK_SIZE
        self.requesters: list[list[PeerKey]] = [[] for _ in range(self.nblocks)]
        self.received = bytearray(self.nblocks)
        self.sources: list[PeerKey | None] = [None] * self.nblocks
        self.free = self.nblocks
        self.nreceived = 0
        self.hint = 0  # no free block below this index

    def block_length(self, j: int) -> int:
        """The length of block ``j`` (the last one of the piece may be short)."""
        return min(BLOCK_SIZE, self.size - j * BLOCK_SIZE)


class All:
    """The piece set of a seed."""

    def __contains__(self, index: object) -> bool:
        return True


class Nothing:
    """The piece set of a peer we know nothing about."""

    def __contains__(self, index: object) -> bool:
        return False


class Without:
    """A peer's piece set less the deadline pieces (what a slow peer may be asked for)."""

    __slots__ = ("_has", "_out")

    def __init__(self, has: Container[int], out: Container[int]) -> None:
        self._has = has
        self._out = out

    def __contains__(self, index: object) -> bool:
        return index in self._has and index not in self._out


ALL = All()
NOTHING = Nothing()
