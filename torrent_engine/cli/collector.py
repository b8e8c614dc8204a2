"""The daemon's garbage collector: its thresholds, and what the full collections walk.

CPython 3.11's full collection walks every object the process holds, in one go: at 10 000
torrents about 340 000 of them, 140-250 ms with the event loop held (bench/RESULTS.md, "The
collector's pauses"). A daemon's objects are mostly long-lived (job records, torrents, kept API
records), and what becomes garbage is mostly young. So the survivors of a full collection are
frozen (``gc.freeze``): the next full collections walk only what came since. A cycle among frozen
objects that becomes garbage is found only once they are walked again: every ``SWEEP_EVERY``
seconds at most, the full collection due then first unfreezes them all (one walk of everything,
as every full collection was before), and freezes the survivors again.

A library leaves the process's collector alone: this is the daemon's, which owns its process.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Mapping

__all__ = ["GC_THRESHOLDS", "SWEEP_EVERY", "FreezeSurvivors", "freeze_started", "tune_gc"]

# The collector's thresholds for the daemon's process (CPython's default: 700, 10, 10). A daemon
# holds an object graph that grows with its torrents (a live session is ~70 KB of objects): with
# the default, a young collection runs every 700 allocations and the older generations are walked
# again and again while a thousand torrents are added: adding 1 000 took 6.5-6.7 s, a batch of 25
# answered in 141-149 ms, p95 374-380 ms; with these, 5.0-6.2 s, 125-147 ms, p95 169-204 ms, the
# same RSS (bench/RESULTS.md, "seedbox scale").
GC_THRESHOLDS = (50_000, 20, 20)

# Seconds between two full collections that walk the frozen objects too: how long a cycle of
# long-lived objects that became garbage (a session's, a removed job's) may stay uncollected.
SWEEP_EVERY = 600.0


class FreezeSurvivors:
    """A ``gc.callbacks`` entry: after each full collection, its survivors are frozen; a full
    collection that starts ``sweep_every`` seconds or more after the last sweep (or after the
    policy was made) unfreezes them first, and so walks everything."""

    def __init__(self, sweep_every: float = SWEEP_EVERY, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.sweep_every = sweep_every
        self._clock = clock
        self._last_sweep = clock()
        self.sweeps = 0  # full collections that walked the frozen objects too

    def __call__(self, phase: str, info: Mapping[str, int]) -> None:
        """(The collector calls it, at the ``start`` and the ``stop`` of each collection.)"""
        if info.get("generation") != 2:
            return
        if phase == "start":
            now = self._clock()
            if now - self._last_sweep >= self.sweep_every:
                gc.unfreeze()  # (into the oldest generation: this collection walks them)
                self._last_sweep = now
                self.sweeps += 1
        elif phase == "stop":
            gc.freeze()  # (every generation is empty of garbage now: what is left is alive)

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


def tune_gc() -> FreezeSurvivors:
    """The daemon's collector: fewer young collections (``GC_THRESHOLDS``), the survivors of a
    full collection frozen (``FreezeSurvivors``, returned installed); what the start loaded is
    frozen by ``freeze_started``."""
    gc.set_threshold(*GC_THRESHOLDS)
    policy = FreezeSurvivors()
    policy.install()
    return policy


def freeze_started() -> None:
    """Move what the start made (the job records, the restored torrents) out of the collector's
    walks: it lives as long as the daemon (``gc.freeze``; no collection first: at 10 000
    torrents a full one would delay the start by about a second; the first sweep walks it)."""
    gc.freeze()
