"""Outgoing connection attempts over every torrent at a rate (libtorrent's ``connection_speed``,
qBittorrent's "outgoing connections per second", 30 by default in both), the torrents with the
fewest connections first.

A thousand torrents added at once each dialed every peer its tracker named at once: 4 000 dials
for 1 000 torrents of 1-4 MiB from 4 seeders, where one or two peers a torrent would have done,
and the loop spent a quarter of its time setting connections up and taking them down
(bench/RESULTS.md, "Outgoing connections at a rate"). With a rate, each dial waits for its turn:
a token of a bucket that fills at ``rate`` a second up to ``burst`` (so a torrent's first few
peers are dialed at once), given to the waiting dial of lowest rank — a torrent's connections and
dials under way when it asked, so every torrent's first dial comes before any torrent's second.

``DialGate`` is the rule, without I/O or a clock of its own; ``shared.DialTurns`` (behind
``SharedResources.dial_turn``) is its shell on the engine's clock: one deadline while dials wait,
none otherwise.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Hashable

__all__ = ["DialGate", "SEEDING_RANK"]

# A seeding torrent's dials rank after every downloading torrent's (libtorrent serves its finished
# torrents' dials one in ``connect_seed_every_n_download``): added to their rank.
SEEDING_RANK = 1 << 20


class DialGate:
    """Turns for dials at ``rate`` a second (0: every dial at once), ``burst`` of them at once
    after a quiet spell; each waiting dial is a ``ticket`` with a rank, the lowest served first
    (then the first asked)."""

    def __init__(self, rate: float = 0.0, burst: float | None = None) -> None:
        self.rate = 0.0
        self.burst = 0.0
        self.tokens = 0.0
        self._when: float | None = None  # the time ``tokens`` was counted at
        self._waiting: list[tuple[int, int, Hashable]] = []
        # each waiting ticket, by the order number of its entry in the heap (an entry whose
        # ticket stopped waiting, or asked again since, is passed over when it comes up)
        self._tickets: dict[Hashable, int] = {}
        self._order = itertools.count()
        self.set_rate(rate, burst)

    def set_rate(self, rate: float, burst: float | None = None) -> None:
        """A new rate (and burst: the rate's one second's worth unless given, at least 1)."""
        if rate < 0:
            raise ValueError(f"a dial rate must be 0 (none) or more, not {rate!r}")
        self.rate = float(rate)
        self.burst = max(1.0, float(burst if burst is not None else rate))
        self.tokens = min(self.tokens, self.burst) if self._when is not None else self.burst

    def __len__(self) -> int:
        """Dials waiting for their turn."""
        return len(self._tickets)

    def _fill(self, now: float) -> None:
        if self._when is not None and now > self._when:
            self.tokens = min(self.burst, self.tokens + (now - self._when) * self.rate)
        self._when = now if self._when is None or now > self._when else self._when

    def ask(self, ticket: Hashable, rank: int, now: float) -> bool:
        """A dial of ``rank`` asks for its turn: True when it has it now (a token taken), else it
        waits (``due`` hands it out)."""
        if self.rate <= 0:
            return True
        self._fill(now)
        if not len(self) and self.tokens >= 1:
            self.tokens -= 1
            return True
        order = next(self._order)
        heapq.heappush(self._waiting, (rank, order, ticket))
        self._tickets[ticket] = order
        return False

    def leave(self, ticket: Hashable) -> None:
        """A waiting ``ticket`` no longer waits (its dial was called off): its entry stays in the
        heap, passed over when it comes up (a thousand dials called off are not a thousand
        walks of the heap)."""
        self._tickets.pop(ticket, None)

    def due(self, now: float) -> list[Hashable]:
        """The waiting tickets whose turn it is now, in order (each took a token)."""
        self._fill(now)
        out: list[Hashable] = []
        while self._waiting and (self.tokens >= 1 or self.rate <= 0):
            _, order, ticket = heapq.heappop(self._waiting)
            if self._tickets.get(ticket) != order:
                continue  # (called off)
            del self._tickets[ticket]
            if self.rate > 0:
                self.tokens -= 1
            out.append(ticket)
        return out

    def next_turn(self, now: float) -> float | None:
        """When the next waiting dial may have its turn (None: none waits)."""
        if not len(self):
            return None
        self._fill(now)
        if self.tokens >= 1 or self.rate <= 0:
            return now
        return now + (1 - self.tokens) / self.rate
