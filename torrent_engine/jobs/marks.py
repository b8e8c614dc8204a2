"""Where the job service marks its change log (changelog.py): the job events, a queue position
moved, a seed's listed seeding time passing a minute, a quiet download's listed downloading time
passing a whole minute. The other marks are made where the change is (``JobLifecycle.mark``: a
record written, counters copied, news of a job's session).

A mark later than the change is harmless (the next answer has it); one missing is a stale
client, so every change of what a job's view shows is followed by one. What is worked out only
when read (queue positions, seeding time shown to the minute) is marked by ``settle``, which
every answer read from the log takes first.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from ..events import EventBus
from .changelog import ChangeLog
from .model import Job, JobAdded, JobState, JobStateChanged, JobUpdated, same_listed_step, to_next_listed_step
from .queueing.awake import DOWNLOADING
from .store import JobRecord

if TYPE_CHECKING:
    from .lifecycle import JobLifecycle

# seeding seconds after which a seed's listed view is looked at again when its seeding time was
# still within a minute of the view's (``ViewMarks.settle``)
SEEDING_RECHECK = 1.0


class ViewMarks:
    """The change log of ``run``'s jobs and what marks it (see the module's docstring)."""

    def __init__(self, run: JobLifecycle, events: EventBus, clock: Callable[[], float],
                 listed_step: float) -> None:
        self.run = run
        self.clock = clock
        self.listed_step = listed_step  # a list shows a seed's seeding time to this many seconds
        # numbers start at the boot time in microseconds: a cursor of an earlier run is below them
        self.log = ChangeLog(start=time.time_ns() // 1000)
        # (not job.progress: the news that makes one marks its job first, and a progress nobody
        # listens to is not made: ``EngineNews._progress``)
        for kind in (JobAdded, JobStateChanged, JobUpdated):
            events.subscribe(kind, self._on_job_event)
        # (seeding clock at which a seed's listed seeding time may next move, job id); the entry
        # of each job that counts (older ones are stale)
        self._seeding_due: list[tuple[float, str]] = []
        self._due_at: dict[str, float] = {}

    def mark(self, rec: JobRecord) -> None:
        """What ``rec``'s views show may have changed."""
        self.log.mark(rec.id, self.clock())

    def removed(self, rec: JobRecord) -> None:
        """``rec`` left the table: its number and torrent are noted for the clients that listed it."""
        self.log.remove(rec.id, self.clock(), number=rec.number or 0, info_hash=rec.info_hash)

    def _on_job_event(self, event: JobAdded | JobStateChanged | JobUpdated) -> None:
        """A job event is a change of that job's views: added, state, updated (its removal is
        noted where it is removed, with its number: ``removed``)."""
        if event.job.id in self.run.jobs:
            self.log.mark(event.job.id, self.clock())

    def ranks_moved(self, job_ids: Iterable[str]) -> None:
        """The queue positions shown of ``job_ids`` moved (one job's move shifts the others')."""
        self.log.mark_moved(self.run.jobs.having(job_ids), self.clock())

    def shown(self, rec: JobRecord) -> None:
        """A view of ``rec`` was made now: a seed's listed seeding time moves on a minute later;
        a quiet download's listed downloading time at its next whole minute."""
        if rec.state is JobState.SEEDING:
            self._follow(rec.id, self.run.sleepers.seeding_clock + self.listed_step)
        elif rec.id in self.run.sleepers.quiet:
            self.fell_quiet(rec)

    def fell_quiet(self, rec: JobRecord) -> None:
        """``rec`` is quiet: if it downloads, its listed downloading time is followed to its next
        whole minute (the rounds mark an awake download then, and pass a quiet one over)."""
        if rec.state in DOWNLOADING:
            self._follow(rec.id, self.run.sleepers.seeding_clock
                         + to_next_listed_step(rec.downloading_time, self.listed_step))

    def settle(self) -> None:
        """Mark what is worked out only when read, before an answer reads the log: the queue's
        positions (ranked again after its order changed: those that moved are marked), the
        seeds whose listed seeding time moved on since their view was made and the quiet
        downloads whose listed downloading time did (no event says so: they move with the
        seeding clock)."""
        run = self.run
        run.queue.settle()
        clock = run.sleepers.seeding_clock
        heap = self._seeding_due
        while heap and heap[0][0] <= clock:
            due, job_id = heapq.heappop(heap)
            if self._due_at.get(job_id) != due:
                continue  # (a newer view of it was made since: its own entry follows)
            rec = run.jobs.get(job_id)
            kept = run.decorated.get(job_id)
            seeding = rec is not None and rec.state is JobState.SEEDING
            if rec is None or kept is None or not (seeding or rec.state in DOWNLOADING):
                del self._due_at[job_id]  # (gone, or its state changed: marked then)
                continue
            run.sleepers.fold(rec)
            if not seeding:
                self._settle_download(rec, kept[1], clock)
                continue
            moved = abs(kept[1].seeding_time - rec.seeding_time)
            if moved > self.listed_step:  # (as ``JobLifecycle._decorate`` judges it)
                del self._due_at[job_id]  # (its next view, made when it is listed, is followed)
                self.mark(rec)
            else:
                self._follow(job_id, clock + max(self.listed_step - moved, SEEDING_RECHECK))

    def _settle_download(self, rec: JobRecord, shown: Job, clock: float) -> None:
        """The quiet download ``rec``'s listed downloading time came to a whole minute: marked
        if it moved on from ``shown`` (its last view), and followed to the next while it sleeps;
        one woken since is marked once for the time it slept (the rounds go on from there)."""
        step, now = self.listed_step, rec.downloading_time
        asleep = rec.id in self.run.sleepers.quiet
        if not asleep or not same_listed_step(shown.downloading_time, now, step):
            self.mark(rec)
        if asleep:
            self._follow(rec.id, clock + max(to_next_listed_step(now, step), SEEDING_RECHECK))
        else:
            del self._due_at[rec.id]

    def _follow(self, job_id: str, due: float) -> None:
        self._due_at[job_id] = due
        heapq.heappush(self._seeding_due, (due, job_id))
