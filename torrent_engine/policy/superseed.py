"""BEP 16 super-seeding: which piece a seed offers each peer, and when it offers the next (sans-I/O).

A super-seeding seed hides what it has (an empty bitfield or HAVE NONE) and tells each peer of one
rare piece at a time with HAVE. The peer is offered its next piece only once the piece it was
given has been seen at another peer (a HAVE from someone else): the piece spread, so the seed's
upload of it was not wasted. The shell (``session/superseed.py``) sends what this class decides.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass

__all__ = ["Offer", "SuperSeeder"]


@dataclass(frozen=True, slots=True)
class Offer:
    """Tell ``peer`` we have piece ``index`` (a HAVE): the one piece it may ask us for now."""

    peer: Hashable
    index: int


class SuperSeeder:
    """The offers of one torrent's super-seeding seed.

    Every connected peer is watched (what it has counts for rarity); the hidden ones (greeted
    without our pieces, ``join``) are offered one piece at a time. A hidden peer may ask for its
    current offer only (libtorrent rejects the rest the same way): what it was told before has
    spread, and is fetched from the peers that have it.
    """

    def __init__(self, num_pieces: int, rng: random.Random, *,
                 had: Callable[[int], bool] = lambda index: True) -> None:
        """``had``: whether the seed has the piece now (one lost since, its file changed, is
        never offered)."""
        self.num_pieces = num_pieces
        self._rng = rng
        self._had = had
        self._have: dict[Hashable, set[int]] = {}  # every watched peer: the pieces it told us of
        self._count = [0] * num_pieces  # watched peers that have each piece
        self._offered: dict[Hashable, int] = {}  # hidden peers: the piece offered now
        self._told: dict[Hashable, set[int]] = {}  # hidden peers: every piece offered so far

    # -- peers ----------------------------------------------------------------------------
    def watch(self, peer: Hashable, have: Iterable[int] = ()) -> None:
        """A peer that knows our real pieces (greeted before super-seeding): it counts for rarity."""
        self._have[peer] = set()
        self.bitfield(peer, have)

    def join(self, peer: Hashable, have: Iterable[int] = ()) -> Offer | None:
        """A peer greeted with none of our pieces: its first offer (None: it lacks nothing)."""
        self._told[peer] = set()
        self.watch(peer, have)
        return self._offer(peer)

    def leave(self, peer: Hashable) -> None:
        """The peer disconnected."""
        for index in self._have.pop(peer, ()):
            self._count[index] -= 1
        self._offered.pop(peer, None)
        self._told.pop(peer, None)

    def hidden(self, peer: Hashable) -> bool:
        """Whether the peer was greeted without our pieces."""
        return peer in self._told

    def hidden_peers(self) -> list[Hashable]:
        """The peers greeted without our pieces."""
        return list(self._told)

    def told(self, peer: Hashable) -> set[int]:
        """The pieces a hidden peer was told we have (empty for another peer)."""
        return set(self._told.get(peer, ()))

    def offered(self, peer: Hashable) -> int | None:
        """A hidden peer's current offer."""
        return self._offered.get(peer)

    def may_serve(self, peer: Hashable, index: int) -> bool:
        """Whether a request of piece ``index`` from ``peer`` is served."""
        return peer not in self._told or self._offered.get(peer) == index

    # -- what peers tell us ----------------------------------------------------------------
    def bitfield(self, peer: Hashable, have: Iterable[int]) -> list[Offer]:
        """The peer's whole set of pieces (bitfield, HAVE ALL, HAVE NONE): it replaces the last.
        A hidden peer that has its offer already is offered another."""
        old = self._have.get(peer)
        if old is None:
            return []
        for index in old:
            self._count[index] -= 1
        new = {i for i in have if 0 <= i < self.num_pieces}
        for index in new:
            self._count[index] += 1
        self._have[peer] = new
        current = self._offered.get(peer)
        if current is not None and current in new:
            offer = self._offer(peer)
            return [offer] if offer is not None else []
        return []

    def have(self, peer: Hashable, index: int) -> list[Offer]:
        """The peer has piece ``index`` (a HAVE). The peers that were offered it get their next
        offer: it has been seen at another peer. The peer's own offer moves on too when no other
        peer lacks it (nobody left to see it at)."""
        pieces = self._have.get(peer)
        if pieces is None or index in pieces or not 0 <= index < self.num_pieces:
            return []
        pieces.add(index)
        self._count[index] += 1
        offers: list[Offer] = []
        for other, piece in list(self._offered.items()):
            if piece != index:
                continue
            if other != peer or self._count[index] == len(self._have):
                offer = self._offer(other)
                if offer is not None:
                    offers.append(offer)
        return offers

    def not_interested(self, peer: Hashable) -> list[Offer]:
        """A hidden peer is not interested in us: it has its offer (a client that tells no HAVE
        to a peer it thinks has the piece, as ours, says so only by losing interest), taken as
        its HAVE of it."""
        current = self._offered.get(peer)
        return [] if current is None else self.have(peer, current)

    # -- the choice ------------------------------------------------------------------------
    def _offer(self, peer: Hashable) -> Offer | None:
        """The peer's next offer: a piece it lacks and was not told of, rarest first, not offered
        to another peer now if that can be helped; ties at random. Once it was told of every
        piece, one it still lacks (its last offer was replaced before it got it)."""
        have = self._have[peer]
        told = self._told[peer]
        current = self._offered.get(peer)
        elsewhere = {piece for other, piece in self._offered.items() if other != peer}
        best: list[int] = []
        best_key: tuple[bool, int] | None = None
        for fresh_only in (True, False):
            for index in range(self.num_pieces):
                if (index in have or index == current or (fresh_only and index in told)
                        or not self._had(index)):
                    continue
                key = (index in elsewhere, self._count[index])
                if best_key is None or key < best_key:
                    best_key, best = key, [index]
                elif key == best_key:
                    best.append(index)
            if best:
                break
        if not best:
            if current is not None and current in have:
                del self._offered[peer]
            return None
        index = self._rng.choice(best)
        self._offered[peer] = index
        told.add(index)
        return Offer(peer, index)
