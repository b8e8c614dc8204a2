"""The engine's one clock (libtorrent's ``session_impl::on_tick``): a round once an interval
visits the tickers that asked for it (``want``) and only those, and a heap of one-shot deadlines
(``at``) visits a ticker at a time it named. A ticker leaves the round by answering False when it
has nothing to do, so thousands of torrents checking, queued or downloading with no peer cost no
timer and no task each: only the clock's own task sleeps, and it ends while nobody wants it."""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import time
from collections.abc import Callable
from typing import Protocol

import anyio
import anyio.abc

__all__ = ["EngineClock", "Ticker"]

log = logging.getLogger("torrent_engine.engine")


class Ticker(Protocol):
    """What the clock visits (``session.tick.SessionTick``)."""

    def on_tick(self, now: float) -> bool:
        """A visit at ``now`` (monotonic): True to be visited again at the next round, False to
        leave the round (a deadline set with ``EngineClock.at`` still comes)."""


class EngineClock:
    """One round every ``interval`` seconds over the tickers that want one, and deadlines.

    The round's task runs in the task group given to ``attach`` (the shared resources' own) while
    some ticker wants a round or has a deadline, and ends when none has; ``want`` or ``at`` starts
    it again. A ticker that raises is logged and leaves the round (its owner hears of it through
    its own ``on_tick``, which should catch what it can)."""

    def __init__(self, interval: float, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._now = monotonic
        self._ticking: dict[Ticker, None] = {}  # an ordered set: visited in the order they asked
        self._due: dict[Ticker, float] = {}  # each ticker's one deadline
        self._heap: list[tuple[float, int, Ticker]] = []  # (when, order, ticker); stale ones skipped
        self._order = itertools.count()
        self._tg: anyio.abc.TaskGroup | None = None
        self._scope: anyio.CancelScope | None = None
        self._running = False  # the round's task exists
        self._wake: anyio.Event | None = None  # set to end the task's sleep early
        self._until = math.inf  # when the task's sleep ends
        self._next_round = math.inf
        self.rounds = 0  # rounds run (tests, benchmarks)
        self.visits = 0  # tickers visited, rounds and deadlines

    # -- the owner -----------------------------------------------------------------------
    def attach(self, tg: anyio.abc.TaskGroup) -> None:
        """Run the clock's task in ``tg`` (when there is something to visit)."""
        self._tg = tg
        if self._ticking or self._due:
            self._kick(self._now())

    def detach(self) -> None:
        """The owner's group ends: the task ends with it, and starts no more."""
        self._tg = None
        if self._scope is not None:
            self._scope.cancel()

    @property
    def running(self) -> bool:
        """Whether the clock's task exists (it does only while someone wants it)."""
        return self._running

    # -- the tickers ---------------------------------------------------------------------
    def want(self, ticker: Ticker) -> None:
        """Visit ``ticker`` at each round from the next one on (within one interval)."""
        if ticker not in self._ticking:
            self._ticking[ticker] = None
            if self._next_round == math.inf:
                self._next_round = self._now() + self.interval
            self._kick(self._next_round)

    def wants(self, ticker: Ticker) -> bool:
        """Whether ``ticker`` is in the round."""
        return ticker in self._ticking

    def at(self, when: float, ticker: Ticker) -> None:
        """Visit ``ticker`` once at ``when`` (monotonic), replacing its earlier deadline."""
        if self._due.get(ticker) == when:
            return
        self._due[ticker] = when
        heapq.heappush(self._heap, (when, next(self._order), ticker))
        self._kick(when)

    def drop(self, ticker: Ticker) -> None:
        """No more visits to ``ticker``: neither rounds nor its deadline."""
        self._ticking.pop(ticker, None)
        self._due.pop(ticker, None)

    def now(self) -> float:
        """The clock's time (monotonic): what its rounds and deadlines are counted in."""
        return self._now()

    @property
    def ticking(self) -> int:
        """How many tickers the round visits."""
        return len(self._ticking)

    # -- the task ------------------------------------------------------------------------
    def _kick(self, when: float) -> None:
        """Something wants a visit by ``when`` (a round's or a deadline's): start the task, or end
        its sleep early if it sleeps past that."""
        if not self._running:
            if self._tg is not None:
                self._running = True
                self._tg.start_soon(self._run)
        elif when < self._until and self._wake is not None:
            self._wake.set()

    async def _run(self) -> None:
        try:
            with anyio.CancelScope() as self._scope:
                await self._loop()
        finally:
            self._running = False
            self._scope = self._wake = None
            self._until = self._next_round = math.inf

    async def _loop(self) -> None:
        while self._ticking or self._due:
            if self._ticking and self._next_round == math.inf:
                self._next_round = self._now() + self.interval
            target = self._next_round if self._ticking else math.inf
            while self._heap and self._due.get(self._heap[0][2]) != self._heap[0][0]:
                heapq.heappop(self._heap)  # (replaced or dropped)
            if self._heap:
                target = min(target, self._heap[0][0])
            self._wake = wake = anyio.Event()
            self._until = target
            with anyio.move_on_after(max(target - self._now(), 0.0)):
                await wake.wait()
            self._until = math.inf
            now = self._now()
            self._deadlines(now)
            if not self._ticking:
                self._next_round = math.inf
            elif now >= self._next_round:
                self._round(now)
                self._next_round += self.interval
                if self._next_round <= now:  # (a late round: the next one an interval on)
                    self._next_round = now + self.interval
        self._heap.clear()

    def _deadlines(self, now: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= now:
            when, _, ticker = heapq.heappop(heap)
            if self._due.get(ticker) != when:
                continue  # (replaced or dropped)
            del self._due[ticker]
            if self._visit(ticker, now):
                self.want(ticker)

    def _round(self, now: float) -> None:
        self.rounds += 1
        for ticker in list(self._ticking):
            if ticker in self._ticking and not self._visit(ticker, now):
                self._ticking.pop(ticker, None)

    def _visit(self, ticker: Ticker, now: float) -> bool:
        self.visits += 1
        try:
            return ticker.on_tick(now)
        except Exception:  # one ticker's bug must not stop every other torrent's clock
            log.exception("the engine clock's visit to %r failed; it leaves the round", ticker)
            self._due.pop(ticker, None)
            return False
