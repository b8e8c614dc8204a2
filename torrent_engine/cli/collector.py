"""The daemon's garbage collector: its thresholds, and what the collections walk.

CPython 3.11 walks a generation's objects in one go, the event loop held. A full collection walks
every object the process tracks: at 10 000 torrents about 230 000, 130-190 ms; and while 10 000
torrents were added and checked, the middle generation, swollen with the new torrents' records,
took 238-310 ms a walk (bench/RESULTS.md, "The collector's pauses, second round"). A daemon's
objects are mostly long-lived (job records, torrents, kept API records), and its garbage is mostly
freed by reference counting; the collector is there for the cycles. So:

- What the start made before the jobs (modules, classes, functions, the settings, the service:
  about 60 000 objects, a quarter of what a full collection walked at 10 000 torrents) is frozen
  for good (``gc.freeze``, ``freeze_start``): no collection walks it again.
- Young collections come every ``GC_THRESHOLDS[0]`` allocations, and every other one takes in
  the middle generation (its threshold is 0): an object is walked by at most two young
  collections, then it is in the oldest generation, which CPython itself never collects (its
  threshold is out of reach). Each young collection walks about one or two thresholds' worth.
- A cycle in the oldest generation that becomes garbage (a session's, a peer's tasks that ended
  cancelled, a removed job's) is freed by a sweep: a collection of the oldest generation, which
  walks everything since the start but not what the start froze. The daemon sweeps when the
  oldest generation has doubled since the last sweep, no sooner than ``SWEEP_AT_MOST`` seconds
  after it, and every ``SWEEP_EVERY`` seconds anyway unless no collection ran since the last (an
  idle daemon). A sweep that finds almost nothing (a bulk add grows the daemon with live
  objects; an idle daemon makes no garbage) makes the next one wait for four times the growth
  and four times the period, up to ``SWEEP_EVERY_MOST``; one that finds garbage sets both back.
  How many objects the oldest generation holds is kept from CPython's count at each collection,
  and counted (a walk of them all) only when that says a sweep is due.

A library leaves the process's collector alone: this is the daemon's, which owns its process.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import anyio

__all__ = [
    "GC_THRESHOLDS", "SWEEP_AT_MOST", "SWEEP_EVERY", "SWEEP_EVERY_MOST", "SWEEP_GROWTH", "SWEEP_GROWTH_MOST",
    "SWEEP_USEFUL",
    "Sweeper", "daemon_collector", "freeze_start", "old_objects",
]

# The collector's thresholds for the daemon's process (CPython's default: 700, 10, 10). With the
# default, a young collection ran every 700 allocations and the older generations were walked
# again and again while a thousand torrents were added (adding 1 000 took 6.5-6.7 s; with 50 000,
# 20, 20, 5.0-6.2 s: bench/RESULTS.md, "seedbox scale"). A young collection walking 20 000
# objects took at most 39 ms while 10 000 torrents were checked (RESULTS, "The collector's
# pauses, second round"); here one walks at most two thresholds' worth (the middle generation
# holds what survived one young collection), so 10 000. The oldest generation's threshold is
# never reached: it is walked by the daemon's sweeps alone.
GC_THRESHOLDS = (10_000, 0, 2**31 - 1)

# A sweep when the oldest generation has grown by this share since the last one, no sooner than
# SWEEP_AT_MOST seconds after it (while 300 torrents downloaded, the collector's garbage came at
# about 2 000 objects a second: tasks that ended cancelled); and one every SWEEP_EVERY seconds
# anyway, unless no collection ran since the last. A sweep that frees less than SWEEP_USEFUL of
# what it walked makes the next one wait for four times the growth, up to SWEEP_GROWTH_MOST, and
# four times the period, up to SWEEP_EVERY_MOST (a daemon that makes no garbage need not walk
# everything every SWEEP_EVERY seconds):
# while 10 000 torrents were added, sweeps at a quarter's growth walked 150 000-300 000 objects
# for 245 and 413 ms and freed 3 and 33; with twice the growth after a useless sweep, a second
# sweep came in the idle minute after the adds (bench/RESULTS.md, "The collector's pauses,
# second round").
SWEEP_GROWTH = 1.0
SWEEP_GROWTH_MOST = 8.0
SWEEP_USEFUL = 0.01
SWEEP_AT_MOST = 30.0
SWEEP_EVERY = 600.0
SWEEP_EVERY_MOST = 3600.0

_OLDEST = 2


def old_objects() -> int:
    """How many objects the oldest generation holds: what a sweep walks (a walk of them all)."""
    return len(gc.get_objects(_OLDEST))


class Sweeper:
    """A ``gc.callbacks`` entry that keeps about how many objects the oldest generation holds;
    ``sweep`` collects it once; ``sweep_when_due`` sweeps when ``due`` says so."""

    def __init__(self, *, growth: float = SWEEP_GROWTH, at_most: float = SWEEP_AT_MOST,
                 every: float = SWEEP_EVERY) -> None:
        self.base_growth, self.at_most, self.every = growth, at_most, every
        self.growth = growth  # what the next sweep waits for (more after a useless one)
        self.period = every  # the most the next waits (longer after a useless one)
        self.collections = 0  # collections since the last sweep
        self.sweeps = 0  # sweeps made
        self.old_after = 0  # in the oldest generation after the last sweep (or as `sweep_when_due` began)
        # about how many it holds now, kept without a walk: the last count, plus at each young
        # collection what CPython counts as young (the allocations less the deallocations since
        # the one before, the old objects' too) less what it freed. Within a few per cent below
        # the truth in steady work; far above it after many old objects are freed at once
        # (CPython counts deallocations down to zero, not below). So it only says when to count
        # (a walk); the count decides a sweep
        self.old = self.old_after
        self._young = 0

    def __call__(self, phase: str, info: Mapping[str, int]) -> None:
        """(The collector calls it, at the ``start`` and the ``stop`` of each collection.)"""
        if info["generation"] == _OLDEST:
            return  # (a sweep: ``sweep`` counts what it left)
        if phase == "start":
            self._young = gc.get_count()[0]
        elif phase == "stop":
            self.collections += 1
            self.old = max(self.old + self._young - info["collected"], 0)

    def due(self, old: int, since: float) -> bool:
        """Whether a sweep is due with ``old`` objects in the oldest generation, ``since`` seconds
        after the last sweep (or the start); asked no more often than every ``at_most`` seconds."""
        if not self.collections:
            return False
        return old > self.old_after * (1 + self.growth) or since >= self.period

    def sweep(self, old: int | None = None) -> int:
        """One collection of every generation (blocking: it walks everything made since the
        start), then what it left counted; how many objects it freed. ``old``: how many the
        oldest generation holds, when the caller has just counted them (a count walks them all)."""
        walked = old_objects() if old is None else old
        freed = gc.collect(_OLDEST)
        self.collections = 0
        self.sweeps += 1
        self.old = self.old_after = old_objects()
        if freed < walked * SWEEP_USEFUL:
            self.growth = min(self.growth * 4, SWEEP_GROWTH_MOST)
            self.period = min(self.period * 4, SWEEP_EVERY_MOST)
        else:
            self.growth = self.base_growth
            self.period = self.every
        return freed

    async def sweep_when_due(self) -> None:
        """Every ``at_most`` seconds, sweep if one is due; until cancelled. Whether one is due is
        asked of ``old``, the count kept without a walk; only when it says so are the oldest
        generation's objects counted (a walk of them all: 2-15 ms at 10 000 torrents,
        bench/RESULTS.md, "The start frozen for good"), and that count decides."""
        # (what the start loaded, by now; the first sweep waits for at least twice what the
        # start froze: a daemon's size, where the oldest generation may still be empty)
        self.old = old_objects()
        self.old_after = max(self.old, gc.get_freeze_count())
        last = anyio.current_time()
        while True:
            await anyio.sleep(self.at_most)
            now = anyio.current_time()
            if self.due(self.old, now - last):
                self.old = old_objects()
                if self.due(self.old, now - last):
                    self.sweep(self.old)
                    last = now

    def install(self) -> None:
        """Take part in the process's collections (once)."""
        if self not in gc.callbacks:
            gc.callbacks.append(self)

    def remove(self) -> None:
        """No longer take part."""
        if self in gc.callbacks:
            gc.callbacks.remove(self)


@contextmanager
def daemon_collector() -> Iterator[Sweeper]:
    """The daemon's collector for the block: ``GC_THRESHOLDS``, and a ``Sweeper`` (its
    ``sweep_when_due`` is the daemon's to run); what the start made is frozen by
    ``freeze_start``. The thresholds before are restored after, and what the block left is
    frozen: at the daemon's exit, the interpreter's last collection does not walk it (at 10 000
    torrents, 300 ms more of the stop for cycles the exit frees anyway)."""
    before = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLDS)
    policy = Sweeper()
    policy.install()
    try:
        yield policy
    finally:
        policy.remove()
        gc.set_threshold(*before)
        gc.freeze()


def freeze_start() -> None:
    """Move what the start made before the jobs (modules, classes, functions, the settings, the
    service) out of every collection's walk for good: it lives as long as the daemon. One full
    collection first, so that no garbage of the start is kept (about 60 000 objects: 20-40 ms)."""
    gc.collect()
    gc.freeze()
