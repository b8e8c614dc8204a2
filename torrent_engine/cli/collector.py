"""The daemon's garbage collector: its thresholds, and what the collections walk.

CPython 3.11 walks a generation's objects in one go, the event loop held. A full collection walks
every object the process holds: at 10 000 torrents about 300 000, 140-410 ms; and while 10 000
torrents were added and checked, the middle generation, swollen with the new torrents' records,
took 238-310 ms a walk (bench/RESULTS.md, "The collector's pauses, second round"). A daemon's
objects are mostly long-lived (job records, torrents, kept API records), and its garbage is mostly
freed by reference counting; the collector is there for the cycles. So what
survives a collection is frozen (``gc.freeze``): each collection walks only what was made since
the last one, about ``GC_THRESHOLDS[0]`` objects. A cycle among frozen objects that becomes
garbage (a session's, a peer's tasks that ended cancelled, a removed job's) is found only when
they are walked again, by a sweep: one full collection with everything unfrozen (a walk of
everything, as CPython's full collections are). The daemon sweeps when what is frozen (garbage
included) has doubled since the last sweep, no sooner than ``SWEEP_AT_MOST`` seconds after it,
and every ``SWEEP_EVERY`` seconds anyway unless no collection ran since the last (an idle daemon).
A sweep that finds almost nothing (a bulk add grows what is frozen with live objects; an idle
daemon makes no garbage) makes the next one wait for four times the growth and four times the
period, up to ``SWEEP_EVERY_MOST``; one that finds garbage sets both back. (``gc.freeze`` sets every
generation's count back to zero: with everything frozen at each collection, CPython itself would
never start a full one.) How many are frozen is kept from CPython's count at each collection and
counted (``gc.get_freeze_count``, a walk of them all) only when that says a sweep is due.

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
    "FreezeSurvivors", "daemon_collector", "freeze_started",
]

# The collector's thresholds for the daemon's process (CPython's default: 700, 10, 10). With the
# default, a young collection ran every 700 allocations and the older generations were walked
# again and again while a thousand torrents were added (adding 1 000 took 6.5-6.7 s; with 50 000,
# 20, 20, 5.0-6.2 s: bench/RESULTS.md, "seedbox scale"). With every collection's survivors frozen,
# only young collections run, each walking about as many objects as the first threshold: 50 000
# took 17-83 ms a walk while 10 000 torrents were checked, 20 000 at most 39 ms (RESULTS, "The
# collector's pauses, second round"). (The other two never come into play: a freeze sets the
# older generations' counts back to zero.)
GC_THRESHOLDS = (20_000, 10, 10)

# A sweep when what is frozen has grown by this share since the last one, no sooner than
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


class FreezeSurvivors:
    """A ``gc.callbacks`` entry: after each collection, what survived it is frozen; ``sweep``
    walks everything once; ``sweep_when_due`` sweeps when ``due`` says so."""

    def __init__(self, *, growth: float = SWEEP_GROWTH, at_most: float = SWEEP_AT_MOST,
                 every: float = SWEEP_EVERY) -> None:
        self.base_growth, self.at_most, self.every = growth, at_most, every
        self.growth = growth  # what the next sweep waits for (more after a useless one)
        self.period = every  # the most the next waits (longer after a useless one)
        self.collections = 0  # collections since the last sweep
        self.sweeps = 0  # sweeps made
        self.frozen_after = gc.get_freeze_count()  # frozen after the last sweep (or at the start)
        # about how many are frozen now, kept without a walk: the last count, plus at each
        # collection what CPython counts as young (the allocations less the deallocations since
        # the one before, the frozen objects' too) less what it freed. Within a few per cent
        # below the truth in steady work; far above it after many frozen objects are freed at
        # once (CPython counts deallocations down to zero, not below). So it only says when to
        # count (a walk); the count decides a sweep
        self.frozen = self.frozen_after
        self._young = 0

    def __call__(self, phase: str, info: Mapping[str, int]) -> None:
        """(The collector calls it, at the ``start`` and the ``stop`` of each collection.)"""
        if phase == "start":
            self._young = gc.get_count()[0]
        elif phase == "stop":
            self.collections += 1
            self.frozen = max(self.frozen + self._young - info["collected"], 0)
            gc.freeze()  # (what it walked holds no garbage now; the rest was frozen before)

    def due(self, frozen: int, since: float) -> bool:
        """Whether a sweep is due with ``frozen`` objects frozen, ``since`` seconds after the
        last sweep (or the start); asked no more often than every ``at_most`` seconds."""
        if not self.collections:
            return False
        return frozen > self.frozen_after * (1 + self.growth) or since >= self.period

    def sweep(self, frozen: int | None = None) -> int:
        """One full collection of everything, the frozen objects too (blocking: at 10 000
        torrents, 160-410 ms), then its survivors frozen; how many objects it freed. ``frozen``:
        how many are frozen, when the caller has just counted them (a count walks them all)."""
        walked = gc.get_freeze_count() if frozen is None else frozen
        gc.unfreeze()
        freed = gc.collect()
        self.collections = 0
        self.sweeps += 1
        self.frozen = self.frozen_after = gc.get_freeze_count()
        if freed < walked * SWEEP_USEFUL:
            self.growth = min(self.growth * 4, SWEEP_GROWTH_MOST)
            self.period = min(self.period * 4, SWEEP_EVERY_MOST)
        else:
            self.growth = self.base_growth
            self.period = self.every
        return freed

    async def sweep_when_due(self) -> None:
        """Every ``at_most`` seconds, sweep if one is due; until cancelled. Whether one is due is
        asked of ``frozen``, the count kept without a walk; only when it says so are the frozen
        objects counted (``gc.get_freeze_count`` walks them all: 37-63 ms after 10 000 checked
        adds, bench/RESULTS.md, "The collector's count of frozen objects"), and that count
        decides. A daemon counted them every ``at_most`` seconds, idle or not."""
        self.frozen = self.frozen_after = gc.get_freeze_count()  # (what the start loaded, frozen by now)
        last = anyio.current_time()
        while True:
            await anyio.sleep(self.at_most)
            now = anyio.current_time()
            if self.due(self.frozen, now - last):
                self.frozen = gc.get_freeze_count()
                if self.due(self.frozen, now - last):
                    self.sweep(self.frozen)
                    last = now

    def install(self) -> None:
        """Take part in the process's collections (once)."""
        if self not in gc.callbacks:
            gc.callbacks.append(self)

    def remove(self) -> None:
        """No longer take part. What is frozen stays so (``gc.unfreeze`` is the caller's): at
        the daemon's exit, the interpreter's last collection does not walk it (at 10 000
        torrents, 300 ms more of the stop for cycles the exit frees anyway)."""
        if self in gc.callbacks:
            gc.callbacks.remove(self)


@contextmanager
def daemon_collector() -> Iterator[FreezeSurvivors]:
    """The daemon's collector for the block: ``GC_THRESHOLDS``, and the survivors of each
    collection frozen (``FreezeSurvivors``: its ``sweep_when_due`` is the daemon's to run); what
    the start loaded is frozen by ``freeze_started``. The thresholds before are restored after."""
    before = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLDS)
    policy = FreezeSurvivors()
    policy.install()
    try:
        yield policy
    finally:
        policy.remove()
        gc.set_threshold(*before)


def freeze_started() -> None:
    """Move what the start made (the job records, the restored torrents) out of the collector's
    walks: it lives as long as the daemon (``gc.freeze``; no collection first: at 10 000
    torrents a full one would delay the start by about a second; the first sweep walks it)."""
    gc.freeze()
