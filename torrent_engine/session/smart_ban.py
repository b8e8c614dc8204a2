"""Who sent bad data: strikes per peer, and libtorrent's smart ban for pieces several peers built.

Pure: hashes and decisions, no I/O. When a piece fails and one peer sent all of it, that peer
gets a strike (banned after ``max_strikes``). When several did, each block's digest is kept; once
the piece passes with good data, a peer whose block differs is proven to have lied and is banned.
"""

from __future__ import annotations

import hashlib
import mmap
from collections.abc import Hashable, Mapping

from ..net.peer.messages import BLOCK_SIZE

PeerKey = Hashable


class SmartBan:
    """The record of bad pieces and their suspects for one torrent."""

    def __init__(self, max_strikes: int) -> None:
        self.max_strikes = max_strikes
        self._strikes: dict[PeerKey, int] = {}
        # failed pieces several peers contributed to: block number -> (sha1 of the block, sender)
        self._suspects: dict[int, dict[int, tuple[bytes, PeerKey]]] = {}

    def piece_failed(self, index: int, data: bytes | bytearray | mmap.mmap | memoryview | None,
                     sources: Mapping[int, PeerKey]) -> list[PeerKey]:
        """Piece ``index`` failed its hash check; ``sources`` says who sent each block. Returns the
        peers to ban now. Without ``data`` (a piece written straight to disk) only a lone sender
        can be blamed."""
        senders = set(sources.values())
        if len(senders) == 1:
            return self.strike(next(iter(senders)))
        if senders and data is not None:
            view = memoryview(data)
            self._suspects[index] = {
                block: (hashlib.sha1(view[block * BLOCK_SIZE:(block + 1) * BLOCK_SIZE]).digest(), key)
                for block, key in sources.items()}
        return []

    def piece_passed(self, index: int, good: bytes | bytearray | mmap.mmap | memoryview) -> list[PeerKey]:
        """Piece ``index`` passed with ``good``: the peers proven to have sent other data earlier."""
        suspects = self._suspects.pop(index, None)
        if not suspects:
            return []
        view = memoryview(good)
        liars: list[PeerKey] = []
        for block, (digest, key) in suspects.items():
            if hashlib.sha1(view[block * BLOCK_SIZE:(block + 1) * BLOCK_SIZE]).digest() != digest:
                liars += self.strike(key, proven=True)
        return liars

    def strike(self, key: PeerKey, *, proven: bool = False) -> list[PeerKey]:
        """One bad piece against ``key``; returns ``[key]`` when that earns a ban."""
        count = self._strikes.get(key, 0) + 1
        self._strikes[key] = count
        return [key] if proven or count >= self.max_strikes else []

    def strikes(self, key: PeerKey) -> int:
        """Bad pieces counted against ``key``."""
        return self._strikes.get(key, 0)
