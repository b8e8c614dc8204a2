"""Scraping a job's trackers (BEP 48 over HTTP, BEP 15 over UDP) for what an announce does not
say: how many times the torrent was downloaded whole (qBittorrent's ``num_downloaded``,
Transmission's ``downloadCount``), and the seeders and leechers once more.

Pulled, never pushed: a scrape is asked for when a client asks for a job's trackers list, and
happens at most once per ``interval`` per job, with at most ``in_flight`` jobs scraped at once
over the service (each tracker's request also takes a slot among the announces in flight, as
an announce does). 10 000 jobs cost nothing here until someone looks at one's trackers. What a
scrape said is kept with what the tracker's announces said (``JobLifecycle.tracker_news``); one
that failed shows its reason beside the tracker (``JobTracker.scrape_error``), and the list goes
on as before.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable

import anyio

from ..errors import TorrentEngineError
from .lifecycle import JobLifecycle
from .model import FINISHED_STATES, JobTracker
from .store import JobRecord

log = logging.getLogger(__name__)

SCRAPE_INTERVAL = 15 * 60.0  # seconds: a job's trackers are scraped at most this often
SCRAPES_IN_FLIGHT = 8  # jobs scraped at once over the service (an ask beyond is dropped, not queued)
PACING_KEPT = 1024  # jobs' last scrape times kept before those that pace nothing are dropped
SCRAPE_TIMEOUT = 15.0  # seconds for one tracker's answer (as an announce's)


class TrackerScrapes:
    """The scrapes of ``run``'s jobs' trackers (see the module's docstring)."""

    def __init__(self, run: JobLifecycle, *, interval: float = SCRAPE_INTERVAL,
                 in_flight: int = SCRAPES_IN_FLIGHT, clock: Callable[[], float] = time.monotonic) -> None:
        self.run = run
        self.interval = interval
        self.in_flight = in_flight
        self._clock = clock
        self._last: dict[str, float] = {}  # job id -> when its last scrape began
        self._running: set[str] = set()  # job ids being scraped now

    def ask(self, rec: JobRecord) -> bool:
        """A client asked for ``rec``'s trackers: scrape them in the background if it is due
        (none in the last ``interval``, none under way, a slot free, a session that announces);
        whether a scrape began. The answer is not waited for: the next look shows it."""
        tg = self.run.tg
        now = self._clock()
        last = self._last.get(rec.id)
        if (tg is None or rec.id in self._running or len(self._running) >= self.in_flight
                or (last is not None and now - last < self.interval) or rec.state in FINISHED_STATES):
            return False
        if not self._announced(rec):
            return False  # (paused, stopped, or trackers off: nothing announces it, nothing scrapes it)
        urls = [t.url for t in self.run.snapshot(rec).trackers]
        if not urls:
            return False
        if len(self._last) >= PACING_KEPT:  # (a time an interval old paces nothing: a removed
            # job's goes too, without a hook in every way a job leaves)
            self._last = {k: t for k, t in self._last.items() if now - t < self.interval}
        self._last[rec.id] = now
        self._running.add(rec.id)
        tg.start_soon(self._scrape, rec, urls)
        return True

    def _announced(self, rec: JobRecord) -> bool:
        """Whether ``rec`` is announced to its trackers now: its session's trackers run, or it
        is a dormant seed (announced without a session: ``DormantSeeds``)."""
        session = self.run.session_of(rec)
        if session is not None:
            return session.announcer.tracker is not None and session.announcer.tracker.running
        return rec.id in self.run.seeds and self.run.manager.config.tracker_enabled


    async def _scrape(self, rec: JobRecord, urls: list[str]) -> None:
        try:
            async with anyio.create_task_group() as tg:
                for url in urls:
                    tg.start_soon(self._one, rec, url)
        finally:
            self._running.discard(rec.id)

    async def _one(self, rec: JobRecord, url: str) -> None:
        session = self.run.session_of(rec)
        downloaded: int | None = None
        seeds = leechers = None
        error: str | None = None
        try:
            with anyio.fail_after(SCRAPE_TIMEOUT * 2):  # (the tracker's own timeout, and a slot's wait)
                if session is not None:
                    stats = await session.announcer.scrape(url)
                else:  # (a dormant seed: scraped as its announces go; TrackerError if it is none)
                    stats = await self.run.seeds.scrape(rec, url)
            downloaded, seeds, leechers = stats.downloaded, stats.complete, stats.incomplete
        except TorrentEngineError as exc:
            error = getattr(exc, "reason", None) or str(exc)
        except (OSError, TimeoutError) as exc:
            error = str(exc) or type(exc).__name__
        if error is not None:
            log.debug("job %s: scrape of %s failed: %s", rec.id, url, error)
        self._heard(rec, url, downloaded, seeds, leechers, error)

    def _heard(self, rec: JobRecord, url: str, downloaded: int | None, seeds: int | None,
               leechers: int | None, error: str | None) -> None:
        """Keep what the scrape of ``url`` said with what its announces said (a tracker removed
        meanwhile, or a job gone, is not brought back)."""
        if self.run.jobs.get(rec.id) is not rec or rec.state in FINISHED_STATES:
            return
        if url not in {t.url for t in self.run.snapshot(rec).trackers}:
            return
        news = self.run.tracker_news.setdefault(rec.id, {})
        was = news.get(url) or JobTracker(url=url, status="unknown", message="", peers=0)
        if error is None:
            news[url] = dataclasses.replace(was, downloaded=downloaded, scrape_error=None,
                                            seeds=seeds, leechers=leechers)
        else:
            news[url] = dataclasses.replace(was, scrape_error=error)
        self.run.live_views.pop(rec.id, None)  # (as news of an announce: its views made again)
        self.run.sleepers.unview(rec)
        self.run.marks.mark(rec)


def with_scrape(heard: JobTracker, was: JobTracker | None) -> JobTracker:
    """An announce's news of a tracker, with what its last scrape said kept (an announce says no
    download count; its seeders and leechers, when it says them, are the newer)."""
    if was is None or (was.downloaded is None and was.scrape_error is None):
        return heard
    return dataclasses.replace(heard, downloaded=was.downloaded, scrape_error=was.scrape_error,
                               seeds=heard.seeds if heard.seeds is not None else was.seeds,
                               leechers=heard.leechers if heard.leechers is not None else was.leechers)
