"""What each connected peer has, for the picker (``picker.py``), sans-I/O: a bitfield per peer,
seeds counted apart (a seed shifts every piece's availability equally), and the pieces of peers
with few of them kept as a set, so picking for such a peer walks its own pieces."""

from __future__ import annotations

from collections.abc import Container, Iterable

from ..formats.bitfield import Bitfield
from .picker_parts import ALL, NOTHING, PeerKey

__all__ = ["PeerPieces"]


class PeerPieces:
    """The piece sets of the peers of one torrent of ``num_pieces`` pieces. The methods that
    change them return the pieces whose availability (how many non-seed peers have it) moved."""

    def __init__(self, num_pieces: int, sparse_limit: int) -> None:
        self.num_pieces = num_pieces
        self.sparse_limit = sparse_limit  # a peer with at most this many pieces is kept as a set too
        self.seeds = 0
        self._peers: dict[PeerKey, Bitfield | None] = {}  # None: a seed (has every piece)
        self._sparse: dict[PeerKey, set[int]] = {}

    def knows(self, peer_key: PeerKey) -> bool:
        """Whether the peer said what it has (a bitfield, HAVE ALL / NONE, or a HAVE)."""
        return peer_key in self._peers

    def has(self, peer_key: PeerKey) -> Container[int]:
        """What the peer has (nothing, for a peer that said nothing yet)."""
        bf = self._peers.get(peer_key)
        if bf is None:
            return ALL if peer_key in self._peers else NOTHING
        return bf

    def few(self, peer_key: PeerKey) -> set[int] | None:
        """The peer's pieces when it has at most ``sparse_limit`` of them (else None)."""
        return self._sparse.get(peer_key)

    def any_of(self, peer_key: PeerKey, wanted: Bitfield) -> bool:
        """Whether the peer has one of the ``wanted`` pieces. O(N/64) word operations at most."""
        if peer_key not in self._peers:
            return False
        bf = self._peers[peer_key]
        if bf is None:
            return len(wanted) > 0
        return bf.any_of(wanted)

    def forget(self, peer_key: PeerKey) -> Iterable[int]:
        """The peer is gone (or says anew what it has): the pieces it counted for."""
        if peer_key not in self._peers:
            return ()
        bf = self._peers.pop(peer_key)
        sparse = self._sparse.pop(peer_key, None)
        if bf is None:
            self.seeds -= 1
            return ()
        return sparse if sparse is not None else bf

    def bitfield(self, peer_key: PeerKey, bitfield: Bitfield) -> Iterable[int]:
        """The peer's BITFIELD (after ``forget``): the pieces it now counts for (none for a seed)."""
        if bitfield.all():
            self._peers[peer_key] = None
            self.seeds += 1
            return ()
        bf = bitfield.copy()
        self._peers[peer_key] = bf
        if len(bf) <= self.sparse_limit:
            self._sparse[peer_key] = set(bf)
        return bf

    def have_all(self, peer_key: PeerKey) -> None:
        """BEP 6 HAVE ALL (after ``forget``): a seed."""
        self._peers[peer_key] = None
        self.seeds += 1

    def have_none(self, peer_key: PeerKey) -> None:
        """BEP 6 HAVE NONE (after ``forget``)."""
        self._peers[peer_key] = Bitfield(self.num_pieces)
        if self.sparse_limit > 0:
            self._sparse[peer_key] = set()

    def have(self, peer_key: PeerKey, index: int) -> bool:
        """A HAVE: whether it is news (not for a seed, nor for a piece the peer had)."""
        bf = self._peers.get(peer_key)
        if bf is None:
            if peer_key in self._peers:
                return False  # a seed already counts for every piece
            bf = self._peers[peer_key] = Bitfield(self.num_pieces)
            if self.sparse_limit > 0:
                self._sparse[peer_key] = set()
        if index in bf:
            return False
        bf.add(index)
        sparse = self._sparse.get(peer_key)
        if sparse is not None:
            if len(sparse) < self.sparse_limit:
                sparse.add(index)
            else:
                del self._sparse[peer_key]  # no longer few: the buckets serve it well
        return True
