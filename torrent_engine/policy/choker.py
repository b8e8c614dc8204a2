"""Who gets to download from us (sans-I/O): the choking algorithm of BEP 3.

The session calls ``rechoke(peers, now)`` every ``RECHOKE_INTERVAL`` seconds (and may call it
sooner, e.g. when an unchoked peer leaves) with a snapshot of its peers, and sends CHOKE /
UNCHOKE so that exactly the returned set is unchoked. The choker keeps only the optimistic
unchoke and when it was chosen; clock and randomness are handed in.

- Leeching: tit-for-tat — the ``upload_slots`` interested, non-snubbed peers that send us the
  most (download rate from them) are unchoked.
- Seeding: ``"round_robin"`` (libtorrent's default) lets every interested peer have a turn: a
  peer keeps its slot until it has been served ``round_robin_quota`` bytes or for
  ``round_robin_time`` seconds, then the peer that has waited longest takes it;
  ``"fastest_upload"`` keeps the peers we upload to fastest; ``"anti_leech"`` (libtorrent's,
  after "Improving BitTorrent's peer selection for multimedia content on-demand delivery")
  unchokes first the peers that have just begun or have nearly finished (the farthest from half
  the torrent), so that those in the middle trade with each other.
- Plus ``optimistic_slots`` optimistic unchokes among the other interested peers, rotated every
  ``OPTIMISTIC_INTERVAL`` seconds; peers connected for less than ``NEW_PEER_AGE`` seconds are
  ``NEW_PEER_WEIGHT`` times as likely to be chosen (they have nothing to trade yet).
"""

from __future__ import annotations

import random
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "NEW_PEER_AGE",
    "NEW_PEER_WEIGHT",
    "OPTIMISTIC_INTERVAL",
    "RECHOKE_INTERVAL",
    "SEEDING_CHOKERS",
    "ChokePeer",
    "Choker",
    "SeedingChoker",
]

RECHOKE_INTERVAL = 10.0  # BEP 3: "choking ... every ten seconds"
OPTIMISTIC_INTERVAL = 30.0  # BEP 3: the optimistic unchoke "rotates every 30 seconds"
NEW_PEER_AGE = 60.0  # a peer this young counts as new for the optimistic unchoke
NEW_PEER_WEIGHT = 3  # mainline/libtorrent: new peers are three times as likely
SeedingChoker = Literal["round_robin", "fastest_upload", "anti_leech"]
SEEDING_CHOKERS: tuple[SeedingChoker, ...] = ("round_robin", "fastest_upload", "anti_leech")


@dataclass(frozen=True, slots=True)
class ChokePeer:
    """A snapshot of one connected peer as the choker sees it.

    Rates are bytes per second; ``unchoked`` is our current state towards the peer;
    ``unchoked_at`` is when we last unchoked it (None: never) and ``uploaded_since_unchoke``
    the bytes we have sent it since (both used by seeding round-robin).
    """

    key: Hashable
    interested: bool
    download_rate: float = 0.0
    upload_rate: float = 0.0
    snubbed: bool = False
    connected_at: float = 0.0
    unchoked: bool = False
    unchoked_at: float | None = None
    uploaded_since_unchoke: int = 0
    have: float = 0.0  # the share of the torrent's pieces the peer has, 0 to 1 (anti-leech seeding)


class Choker:
    """Rechoke decisions; see the module docstring."""

    def __init__(
        self,
        rng: random.Random,
        *,
        upload_slots: int = 4,
        optimistic_slots: int = 1,
        seeding_algorithm: SeedingChoker = "round_robin",
        round_robin_quota: int = 4 * 1024 * 1024,
        round_robin_time: float = 60.0,
    ) -> None:
        if upload_slots < 0 or optimistic_slots < 0:
            raise ValueError("slot counts must be >= 0")
        self._rng = rng
        self.upload_slots = upload_slots
        self.optimistic_slots = optimistic_slots
        self.seeding_algorithm = seeding_algorithm
        self.round_robin_quota = round_robin_quota
        self.round_robin_time = round_robin_time
        self._optimistic: list[Hashable] = []
        self._optimistic_at: float | None = None
        self._last_rechoke: float | None = None

    @property
    def optimistic(self) -> frozenset[Hashable]:
        """The peers holding an optimistic unchoke since the last rechoke."""
        return frozenset(self._optimistic)

    def due(self, now: float) -> bool:
        """True when ``RECHOKE_INTERVAL`` has passed since the last rechoke."""
        return self._last_rechoke is None or now - self._last_rechoke >= RECHOKE_INTERVAL

    def rechoke(self, peers: Iterable[ChokePeer], now: float, *, seeding: bool = False) -> set[Hashable]:
        """The keys of the peers to have unchoked from now on (every other peer is choked)."""
        self._last_rechoke = now
        interested = [p for p in peers if p.interested]
        self._rng.shuffle(interested)  # equal scores are then ordered at random (sorts are stable)
        if seeding:
            regular = self._seeding_slots(interested, now)
        else:
            ranked = sorted((p for p in interested if not p.snubbed), key=lambda p: -p.download_rate)
            regular = ranked[: self.upload_slots]
        chosen = {p.key for p in regular}
        self._rotate_optimistic([p for p in interested if p.key not in chosen], now)
        return chosen | set(self._optimistic)

    def _seeding_slots(self, interested: list[ChokePeer], now: float) -> list[ChokePeer]:
        if self.seeding_algorithm == "fastest_upload":
            return sorted(interested, key=lambda p: -p.upload_rate)[: self.upload_slots]
        if self.seeding_algorithm == "anti_leech":  # (the farthest from half first)
            return sorted(interested, key=lambda p: -abs(p.have - 0.5))[: self.upload_slots]

        def rank(p: ChokePeer) -> tuple[int, float]:
            if p.unchoked:
                since = p.unchoked_at if p.unchoked_at is not None else now
                turn_over = p.uploaded_since_unchoke >= self.round_robin_quota or (
                    now - since >= self.round_robin_time
                )
                if not turn_over:
                    return (0, -p.upload_rate)  # keeps its slot
                return (2, since)  # had its turn: after everyone waiting
            waited = p.unchoked_at if p.unchoked_at is not None else float("-inf")
            return (1, waited)  # waiting longest first

        return sorted(interested, key=rank)[: self.upload_slots]

    def _rotate_optimistic(self, candidates: list[ChokePeer], now: float) -> None:
        by_key = {p.key: p for p in candidates}
        kept = [k for k in self._optimistic if k in by_key]
        expired = self._optimistic_at is None or now - self._optimistic_at >= OPTIMISTIC_INTERVAL
        if not expired and len(kept) >= min(self.optimistic_slots, len(candidates)):
            self._optimistic = kept
            return
        # Rotate: the previous holders only when nobody else is waiting.
        previous = set(self._optimistic) if expired else set()
        pool = [p for p in candidates if p.key not in previous and p.key not in kept]
        if expired:
            kept = []
        chosen = list(kept)
        while len(chosen) < self.optimistic_slots and (pool or previous):
            if not pool:
                pool = [p for p in candidates if p.key in previous and p.key not in chosen]
                previous = set()
                if not pool:
                    break
            pick = self._weighted_choice(pool, now)
            chosen.append(pick.key)
            pool.remove(pick)
        self._optimistic = chosen
        if expired:
            self._optimistic_at = now

    def _weighted_choice(self, pool: list[ChokePeer], now: float) -> ChokePeer:
        weights = [NEW_PEER_WEIGHT if now - p.connected_at < NEW_PEER_AGE else 1 for p in pool]
        return self._rng.choices(pool, weights=weights, k=1)[0]
