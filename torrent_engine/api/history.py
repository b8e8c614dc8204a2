"""The last hour of the service's rates and peers, for the web UI's charts. ``add`` is pure (the
caller passes the time and the service's totals); ``sample`` is the API server's task that
calls it every ``SAMPLE_INTERVAL``.

A sample's rates are the bytes moved since the previous sample over the time between them (an
average over the interval, so a short burst between two samples is not lost); where a total fell
(a job and its counters were removed) the service's own instantaneous rate stands in.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from ..beats import sleep_to_beat
from ..jobs.model import ServiceStats

log = logging.getLogger(__name__)

__all__ = ["HISTORY_SECONDS", "SAMPLE_INTERVAL", "Sample", "StatsHistory"]

SAMPLE_INTERVAL = 10.0  # seconds between samples
HISTORY_SECONDS = 3600.0  # how far back the charts go


@dataclass(frozen=True, slots=True)
class Sample:
    """One point of the charts: wall-clock time, average rates since the last point, peers."""

    time: float
    download_rate: float
    upload_rate: float
    peers: int

    def to_json(self) -> dict[str, float | int]:
        """As the API's JSON."""
        return {"time": self.time, "download_rate": self.download_rate, "upload_rate": self.upload_rate,
                "peers": self.peers}


class StatsHistory:
    """At most ``HISTORY_SECONDS / SAMPLE_INTERVAL`` samples, oldest first."""

    def __init__(self, *, interval: float = SAMPLE_INTERVAL, span: float = HISTORY_SECONDS) -> None:
        self.interval = interval
        self.samples: deque[Sample] = deque(maxlen=max(1, int(span // interval)))
        self._last: tuple[float, int, int] | None = None  # time, downloaded, uploaded

    def add(self, now: float, stats: ServiceStats) -> Sample:
        """Record the service's totals at ``now`` (seconds since the epoch); returns the sample."""
        down, up = stats.download_rate, stats.upload_rate
        moved = stats.transfer.session  # (this run's bytes: never fall, a job that leaves keeps its part)
        if self._last is not None:
            then, downloaded, uploaded = self._last
            elapsed = now - then
            if elapsed > 0:
                if moved.downloaded >= downloaded:  # (else the instantaneous rate: never a negative one)
                    down = (moved.downloaded - downloaded) / elapsed
                if moved.uploaded >= uploaded:
                    up = (moved.uploaded - uploaded) / elapsed
        self._last = (now, moved.downloaded, moved.uploaded)
        sample = Sample(now, down, up, stats.peers)
        self.samples.append(sample)
        return sample

    def to_json(self) -> dict[str, object]:
        """``{"interval": s, "samples": [...]}``, oldest first."""
        return {"interval": self.interval, "samples": [s.to_json() for s in self.samples]}

    async def sample(self, stats: Callable[[], ServiceStats]) -> None:
        """Until cancelled: add ``stats()`` now and every ``interval`` seconds (a task of the API
        server's task group)."""
        while True:
            try:
                self.add(time.time(), stats())
            except Exception:  # (a chart's sample must not take the API server down with it)
                log.exception("the web UI's rate history could not read the service's figures")
            await sleep_to_beat(self.interval)  # (woken with the daemon's other timers)
