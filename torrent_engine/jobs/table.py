"""The job table: every job record (active and history) in the order added, and which job is the
active one of each torrent (at most one per info-hash). Pure bookkeeping, no I/O."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, ValuesView

from .model import FINISHED_STATES, JobState
from .store import JobRecord


class JobTable:
    """Job records by id; ``active_id`` maps an info-hash to its unfinished job."""

    def __init__(self, records: Iterable[JobRecord] = ()) -> None:
        ordered = sorted(records, key=lambda r: (r.created_at, r.id))
        self._records: dict[str, JobRecord] = {r.id: r for r in ordered}
        self._order: dict[str, int] = {r.id: n for n, r in enumerate(ordered)}  # ties of created_at
        self._seq = len(ordered)
        self._by_hash: dict[str, str] = {}  # info-hash -> id of its active (unfinished) job
        self._newest: list[JobRecord] | None = None  # newest_first's order, until a job comes or goes

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._records

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[JobRecord]:
        """Every record in the order added (a copy: the table may change while the caller walks it)."""
        return iter(list(self._records.values()))

    def view(self) -> ValuesView[JobRecord]:
        """Every record in the order added, for a walk that does not change the table."""
        return self._records.values()

    def get(self, job_id: object) -> JobRecord | None:
        """The record of ``job_id``, if there is one."""
        return self._records.get(job_id) if isinstance(job_id, str) else None

    def newest_first(self, state: JobState | None = None) -> list[JobRecord]:
        """Every record, newest first; only those in ``state`` when given."""
        if self._newest is None:  # (sorting 100 000 records took ~30 ms of each page of them)
            self._newest = sorted(self._records.values(), key=lambda r: (r.created_at, self._order[r.id]),
                                  reverse=True)
        recs = self._newest
        return list(recs) if state is None else [r for r in recs if r.state is state]

    def new_id(self, token: Callable[[], str]) -> str:
        """An id from ``token`` that no job has."""
        while True:
            job_id = token()
            if job_id not in self._records:
                return job_id

    def add(self, rec: JobRecord) -> None:
        """A new job, the active one of its torrent."""
        self._records[rec.id] = rec
        self._newest = None
        self._seq += 1
        self._order[rec.id] = self._seq
        self._by_hash[rec.info_hash] = rec.id

    def discard(self, rec: JobRecord) -> None:
        """Forget a job whose start failed (as if it had never been added)."""
        self._records.pop(rec.id, None)
        self._newest = None
        self._order.pop(rec.id, None)
        self.unbind(rec)

    def active_id(self, info_hash: str) -> str | None:
        """The id of the unfinished job of the torrent ``info_hash``."""
        return self._by_hash.get(info_hash)

    def is_active(self, rec: JobRecord) -> bool:
        """Whether ``rec`` is the unfinished job of its torrent."""
        return self._by_hash.get(rec.info_hash) == rec.id

    def bind(self, rec: JobRecord) -> None:
        """Make ``rec`` the active job of its torrent (after a restart)."""
        self._by_hash[rec.info_hash] = rec.id

    def unbind(self, rec: JobRecord) -> bool:
        """``rec`` is no longer its torrent's active job; whether it was."""
        if self._by_hash.get(rec.info_hash) != rec.id:
            return False
        del self._by_hash[rec.info_hash]
        return True

    def finished_before(self, now: float, older_than: float | None) -> list[JobRecord]:
        """The finished jobs (those finished at least ``older_than`` seconds before ``now``)."""
        return [r for r in self._records.values() if r.state in FINISHED_STATES
                and (older_than is None or now - (r.completed_at or r.updated_at) >= older_than)]

    def remove(self, job_id: str) -> None:
        """Forget a finished job."""
        del self._records[job_id]
        self._newest = None
        self._order.pop(job_id, None)
