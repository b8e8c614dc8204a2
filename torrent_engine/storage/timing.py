"""How long the storages' writing threads take per piece: a small thread-safe histogram, read
by whoever reports it (the daemon's ``/metrics``); the process's one record of it."""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass

__all__ = ["PIECE_WRITES", "WRITE_BUCKETS", "Durations", "DurationsSnapshot"]

# upper bounds in seconds: a page-cache write of a piece takes well under a millisecond, a
# direct write to a disk a few milliseconds, a stalled disk seconds
WRITE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True, slots=True)
class DurationsSnapshot:
    """What a ``Durations`` held at one moment: ``counts[i]`` observations were at most
    ``bounds[i]`` and more than ``bounds[i - 1]`` (the last count: above every bound)."""

    bounds: tuple[float, ...]
    counts: tuple[int, ...]  # len(bounds) + 1
    total: float  # seconds, all observations added up

    @property
    def count(self) -> int:
        """How many durations were observed."""
        return sum(self.counts)


class Durations:
    """Durations counted into fixed buckets; ``observe`` may be called from any thread."""

    def __init__(self, bounds: tuple[float, ...] = WRITE_BUCKETS) -> None:
        if list(bounds) != sorted(set(bounds)) or not bounds or bounds[0] <= 0:
            raise ValueError("bounds must be positive and strictly increasing")
        self.bounds = bounds
        self._counts = [0] * (len(bounds) + 1)
        self._total = 0.0
        self._lock = threading.Lock()

    def observe(self, seconds: float) -> None:
        """Count one duration of ``seconds``."""
        i = bisect.bisect_left(self.bounds, seconds)
        with self._lock:
            self._counts[i] += 1
            self._total += seconds

    def snapshot(self) -> DurationsSnapshot:
        """The counts and the sum so far."""
        with self._lock:
            return DurationsSnapshot(self.bounds, tuple(self._counts), self._total)


PIECE_WRITES = Durations()
"""Every whole piece written by a storage's writing thread (``write_piece_if``,
``write_verified``): seconds from the start of its first ``pwrite`` to the end of its last; a
piece written in one write with its neighbours (a run, ``Storage._write_queued``) counts its
share of that write's time."""
