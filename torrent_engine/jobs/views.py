"""The views the job service keeps of jobs shown from their records while they wait (their
check, the service's start): ``RecordViews``. The views themselves are ``snapshot.py``'s."""

from __future__ import annotations

from collections.abc import Mapping

from .model import Job, JobState, JobTracker
from .snapshot import record_job, record_stamp
from .store import JobRecord

__all__ = ["RecordViews"]


class RecordViews:
    """The views of jobs shown from their records while they wait (their check, the service's
    start), each kept while its ``record_stamp`` is the same: a list of thousands of jobs waiting
    for their check makes none of their views, records or JSON again (each was made anew for
    each list and poll)."""

    def __init__(self) -> None:
        self._kept: dict[str, tuple[tuple[object, ...], Job]] = {}

    def view(self, rec: JobRecord, heard: Mapping[str, JobTracker] | None, state: JobState | None,
             queue_position: int) -> Job:
        """``record_job(rec, heard, state=state, queue_position=queue_position)``, kept."""
        stamp = record_stamp(rec, heard, state, queue_position)
        kept = self._kept.get(rec.id)
        if kept is not None and kept[0] == stamp:
            return kept[1]
        job = record_job(rec, heard, state=state, queue_position=queue_position)
        self._kept[rec.id] = (stamp, job)
        return job

    def forget(self, job_id: str) -> None:
        """The job is shown from another view now (its session's, a dormant seed's), or is gone."""
        if self._kept:
            self._kept.pop(job_id, None)
