"""What happened to the jobs, written in the log book as qBittorrent's log tells of its torrents
(added, finished downloading, paused, resumed, stopped by an error, failed, removed), from the
job service's events."""

from __future__ import annotations

from ..events import EventBus, Subscription
from ..jobs import JobAdded, JobState, JobStateChanged
from ..logbook import LogBook, LogLevel

_DONE = frozenset({JobState.SEEDING, JobState.COMPLETED})
# what a resumed job goes on as (a paused job's recheck passes through checking, and stays paused)
_GOING = frozenset({JobState.QUEUED, JobState.FETCHING_METADATA, JobState.DOWNLOADING, JobState.SEEDING})


class JobLines:
    """Writes the job events of ``bus`` in ``book`` until ``close``."""

    def __init__(self, bus: EventBus, book: LogBook) -> None:
        self._book = book
        self._subs: list[Subscription] = [bus.subscribe(JobAdded, self._added),
                                          bus.subscribe(JobStateChanged, self._changed)]

    def close(self) -> None:
        """Write no more."""
        for sub in self._subs:
            sub.cancel()
        self._subs.clear()

    def _added(self, event: JobAdded) -> None:
        job = event.job
        self._book.write(LogLevel.NORMAL, f'Added "{job.name}" (job {job.id})')

    def _changed(self, event: JobStateChanged) -> None:
        job, old, new = event.job, event.old, event.new
        said = f'"{job.name}" (job {job.id})'
        if new in _DONE and old is JobState.DOWNLOADING:
            self._book.write(LogLevel.NORMAL, f"{said} finished downloading")
        elif new is JobState.PAUSED:
            self._book.write(LogLevel.NORMAL, f"Paused {said}")
        elif old is JobState.PAUSED and new in _GOING:
            self._book.write(LogLevel.NORMAL, f"Resumed {said}")
        elif new is JobState.ERROR:
            self._book.write(LogLevel.WARNING, f"{said} stopped: {job.error or 'an error'}")
        elif new is JobState.FAILED:
            self._book.write(LogLevel.CRITICAL, f"{said} failed: {job.error or 'an error'}")
        elif new is JobState.CANCELLED:
            self._book.write(LogLevel.NORMAL, f"Removed {said}")
