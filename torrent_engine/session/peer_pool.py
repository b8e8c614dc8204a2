"""The peer pool: every address a torrent has heard of, which are banned, and when each may be
dialed again. Pure: no sockets, no clock (the caller passes ``now``), no session.

Invariants:
- an address is in the pool at most once, in the order it was first heard of; at most ``cap``;
- a banned address is never added nor offered as a candidate;
- an address is offered for dialing only while it has failed fewer than ``MAX_CONNECT_FAILURES``
  times in a row and its ``next_try`` has come;
- the back-off after the n-th failure in a row is ``retry_delay(n)``, defined here only;
- when more addresses may be dialed than the budget allows, those with fewer failures come
  first, then those of higher BEP 40 priority with our own address (``choose``);
- every source an address was heard from is remembered (``sources``), as libtorrent's
  ``peer_info::source`` flags are: the peer list says where each peer came from;
- an address heard of again is given another try: named by the user, its failures are forgiven
  and it may be dialed at once (they know it is there now); announced by a tracker, one failure
  is forgiven (someone else reached it: libtorrent's ``update_peer`` does the same). From other
  sources (DHT, PEX, LSD) nothing changes: anyone may repeat an address there. Our own address
  (``never_again``) is never tried again, whoever names it.
"""

from __future__ import annotations

import heapq
from collections.abc import Container, Iterator
from dataclasses import dataclass
from typing import Literal

from ..policy.bep40 import peer_priority

Address = tuple[str, int]
# where an address was heard of: a tracker, the DHT, a peer's PEX, LSD, a magnet's x.pe, the
# user (CLI, API, a job's peers), or the peer itself connecting in
PeerSource = Literal["tracker", "dht", "pex", "lsd", "magnet", "user", "incoming"]
SOURCES: tuple[PeerSource, ...] = ("tracker", "dht", "pex", "lsd", "magnet", "user", "incoming")
_BIT = {name: 1 << i for i, name in enumerate(SOURCES)}

MAX_POOL = 2000  # addresses kept in the peer pool (PEX and trackers cannot grow it further)
MAX_CONNECT_FAILURES = 4
RETRY_DELAYS = (3.0, 15.0, 60.0, 120.0)  # after the 1st, 2nd, ... failed attempt
SEED_RETRY_DELAY = 600.0  # two seeds have nothing to trade: dial much later
HELD_CONNECTION = 10.0  # a connection dropped sooner than this counts as a failed attempt


def retry_delay(failures: int) -> float:
    """Seconds to wait after ``failures`` failed attempts in a row (at least the first delay)."""
    return RETRY_DELAYS[min(max(failures, 1), len(RETRY_DELAYS)) - 1]


@dataclass(slots=True)
class PoolEntry:
    """What the pool remembers of one address: failures so far and when to try again."""

    failures: int = 0
    next_try: float = 0.0
    sources: int = 0  # bits of ``SOURCES``


class PeerPool:
    """Addresses, bans and back-off for one torrent (see the module's invariants)."""

    def __init__(self, cap: int = MAX_POOL) -> None:
        self._entries: dict[Address, PoolEntry] = {}
        self._banned: set[Address] = set()
        self._own: set[Address] = set()  # our own address under another name (``never_again``)
        self._cap = cap
        self._priorities: dict[Address, int] = {}  # BEP 40, for ``_priority_own``
        self._priority_own: Address | None = None

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __getitem__(self, key: Address) -> PoolEntry:
        return self._entries[key]

    def __iter__(self) -> Iterator[Address]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, key: Address, source: PeerSource = "user") -> bool:
        """Add an address heard of from ``source``; whether it is new, or known and given another
        try (the module's rule; its sources gain this one). False if it is invalid, banned, known
        with no new try, or the pool is full."""
        known = self._entries.get(key)
        if known is not None:
            known.sources |= _BIT[source]
            return key not in self._banned and key not in self._own and self._another_try(known, source)
        if not 0 < key[1] < 65536 or key in self._banned:
            return False
        if len(self._entries) >= self._cap:
            return False
        self._entries[key] = PoolEntry(sources=_BIT[source])
        return True

    @staticmethod
    def _another_try(entry: PoolEntry, source: PeerSource) -> bool:
        """A known address heard of again from ``source``: whether it may now be dialed sooner
        than it might before (the module's rule)."""
        if not entry.failures or source not in ("user", "tracker"):
            return False
        given_up = entry.failures >= MAX_CONNECT_FAILURES
        if source == "user":
            entry.failures = 0
            entry.next_try = 0.0
            return True
        entry.failures -= 1
        return given_up

    def sources(self, key: Address, *, incoming: bool = False) -> tuple[PeerSource, ...]:
        """Where ``key`` was heard of, in ``SOURCES`` order (empty if it is not in the pool);
        ``incoming``: a connected peer that dialed us, which says "incoming" too."""
        entry = self._entries.get(key)
        bits = (entry.sources if entry is not None else 0) | (_BIT["incoming"] if incoming else 0)
        return tuple(name for name in SOURCES if bits & _BIT[name])

    @property
    def full(self) -> bool:
        """Whether the pool holds as many addresses as it may."""
        return len(self._entries) >= self._cap

    def ban(self, key: Address) -> bool:
        """Ban an address for this torrent's life; False if it was banned already."""
        if key in self._banned:
            return False
        self._banned.add(key)
        return True

    def is_banned(self, key: Address) -> bool:
        """Whether ``key`` is banned."""
        return key in self._banned

    @property
    def banned_count(self) -> int:
        """How many addresses are banned."""
        return len(self._banned)

    def known(self) -> set[Address]:
        """Every address heard of, banned ones included."""
        return set(self._entries) | self._banned

    def failing(self) -> set[Address]:
        """Addresses whose last attempt failed."""
        return {key for key, entry in self._entries.items() if entry.failures}

    def may_dial(self, busy: Container[Address]) -> bool:
        """Whether an address may be dialed now or after its back-off (``busy``: connected or
        being dialed): False when each is busy, banned or given up on — then only a new
        address or a peer leaving makes work for the dialer."""
        return any(True for _ in self._open(busy))

    def next_try(self, busy: Container[Address]) -> float | None:
        """When the first address that may be dialed (``may_dial``'s) may be, after its back-off
        (None: none may)."""
        return min((entry.next_try for entry in self._open(busy)), default=None)

    def _open(self, busy: Container[Address]) -> Iterator[PoolEntry]:
        """The entries that may be dialed now or after their back-off: not busy, banned or given up on."""
        return (entry for key, entry in self._entries.items()
                if key not in busy and key not in self._banned and entry.failures < MAX_CONNECT_FAILURES)

    def candidates(self, now: float, busy: Container[Address]) -> Iterator[Address]:
        """Addresses to dial now, in the order heard of (``busy``: connected or being dialed)."""
        for key, entry in self._entries.items():
            if (key in busy or key in self._banned
                    or entry.failures >= MAX_CONNECT_FAILURES or entry.next_try > now):
                continue
            yield key

    def choose(self, now: float, busy: Container[Address], budget: int,
               own: Address | None = None) -> list[Address]:
        """At most ``budget`` addresses to dial now. When more are ready than that: fewest failures
        first, then the highest BEP 40 priority with our ``own`` (ip, listen port) address, so
        that every peer of the swarm agrees whom to keep; ties (and everything, without ``own``)
        in the order heard of."""
        if budget <= 0:
            return []
        ready = list(self.candidates(now, busy))
        if len(ready) <= budget:
            return ready
        if own is None:
            return heapq.nsmallest(budget, ready, key=lambda key: self._entries[key].failures)
        return heapq.nsmallest(budget, ready, key=lambda key: (self._entries[key].failures,
                                                                -self.priority(key, own)))

    def priority(self, key: Address, own: Address) -> int:
        """The BEP 40 priority of ``key`` seen from ``own`` (0 if either is not an IP literal)."""
        if own != self._priority_own:
            self._priorities.clear()
            self._priority_own = own
        found = self._priorities.get(key)
        if found is None:
            try:
                found = peer_priority(own, key)
            except ValueError:
                found = 0
            if len(self._priorities) < 4 * self._cap:
                self._priorities[key] = found
        return found

    def failed(self, key: Address, now: float, *, quick: bool = False) -> None:
        """A dial or handshake failed: back off (``quick``: the first delay whatever the count)."""
        entry = self._entries.get(key)
        if entry is not None:
            entry.failures += 1
            entry.next_try = now + (RETRY_DELAYS[0] if quick else retry_delay(entry.failures))

    def dropped(self, key: Address, now: float, *, held_for: float, both_seeds: bool) -> None:
        """A connection ended: one that held resets the count, one dropped at once is a failure."""
        entry = self._entries.get(key)
        if entry is None:
            return
        if held_for < HELD_CONNECTION:
            entry.failures += 1
        else:
            entry.failures = 0
        entry.next_try = now + (SEED_RETRY_DELAY if both_seeds else retry_delay(entry.failures))

    def never_again(self, key: Address) -> None:
        """Our own address: never dialed again (nor forgiven, nor given another try)."""
        entry = self._entries.get(key)
        if entry is not None:
            entry.failures = MAX_CONNECT_FAILURES
            self._own.add(key)

    def later(self, key: Address, now: float) -> None:
        """Connected already by the other way: not every round, the longest back-off."""
        entry = self._entries.get(key)
        if entry is not None:
            entry.next_try = now + RETRY_DELAYS[-1]

    def forgive_all(self) -> None:
        """Every address but our own may be dialed at once again (e.g. metadata peers, now for the
        data)."""
        for key, entry in self._entries.items():
            if key in self._own:
                continue
            entry.failures = 0
            entry.next_try = 0.0
