"""A session's transfer rates: the payload bytes moved each tick (counted into the torrent's
totals as they come), averaged over the last ``RATE_TICKS`` ticks."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from .context import Totals

__all__ = ["RATE_TICKS", "RateMeter", "Rates"]

RATE_TICKS = 5  # a rate is the average over the last ticks: it is zero this many ticks after the last byte


class RateMeter:
    """Bytes per second over the last ``RATE_TICKS`` ticks: smooth while data flows, and exactly
    zero once nothing came for that long (a finished download shows no rate, not a slow decay)."""

    def __init__(self) -> None:
        self._ticks: deque[tuple[int, float]] = deque(maxlen=RATE_TICKS)  # (bytes, seconds)

    def tick(self, nbytes: int, elapsed: float) -> float:
        """Record one tick's bytes and length; the rate over the window."""
        self._ticks.append((nbytes, elapsed))
        total = sum(n for n, _ in self._ticks)
        if total == 0:
            return 0.0
        return total / max(sum(t for _, t in self._ticks), 1e-6)


class Rates:
    """Bytes moved this tick and the smoothed download and upload rates of one session."""

    def __init__(self, totals: Totals) -> None:
        self._totals = totals  # (the torrent's, in its context: moved here as bytes come)
        self.down_rate = 0.0
        self.up_rate = 0.0
        self._down_window = 0
        self._up_window = 0
        self._down_meter = RateMeter()
        self._up_meter = RateMeter()
        # told when bytes move while the rates stand still (the tick, off the clock's round, wakes)
        self.on_move: Callable[[], object] | None = None

    def downloaded(self, n: int) -> None:
        """``n`` payload bytes arrived."""
        self._down_window += n
        self._totals.downloaded += n
        if self.on_move is not None and self.down_rate == 0.0:
            self.on_move()

    def uploaded(self, n: int) -> None:
        """``n`` payload bytes were sent."""
        self._up_window += n
        self._totals.uploaded += n
        if self.on_move is not None and self.up_rate == 0.0:
            self.on_move()

    @property
    def still(self) -> bool:
        """Nothing moves: both rates are zero."""
        return self.down_rate == 0.0 and self.up_rate == 0.0

    def tick(self, elapsed: float) -> None:
        """A tick of ``elapsed`` seconds ended: the rates take in its bytes."""
        self.down_rate = self._down_meter.tick(self._down_window, elapsed)
        self.up_rate = self._up_meter.tick(self._up_window, elapsed)
        self._down_window = self._up_window = 0

    def stop(self) -> None:
        """The session no longer runs: nothing moves (a stopped session's rates are not frozen)."""
        self.down_rate = self.up_rate = 0.0
        self._down_meter = RateMeter()
        self._up_meter = RateMeter()
