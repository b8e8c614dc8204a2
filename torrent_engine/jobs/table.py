"""The job table: every job record (active and history) in the order added, and which job is the
active one of each torrent (at most one per info-hash). Pure bookkeeping, no I/O.

It also keeps the history's totals (finished jobs per state, their bytes) and the finished jobs
in the order they finished, so that what runs every second (``JobService.stats``, the history's
age check) walks the jobs past the age only, not a history of 100 000: a finished record's
state, counters and finishing time no longer change, and a record becomes finished in one
place, which tells the table (``finished``). Likewise the unfinished jobs' totals (per state,
their bytes as their records say), which ``stats`` reads instead of walking 10 000 jobs waiting
for a slot each second: a record's state and counters change in one place each, which tells
the table (``changed``)."""

from __future__ import annotations

import bisect
import math
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
        # newest_first's order reversed (oldest first): the load's (``ordered`` is in it: the order
        # added follows it), then a new job put in its place (its key is mostly the greatest: an
        # append), a removed one taken out. Sorted again at each add, 30 000 jobs took 7-30 ms of
        # each list asked for during a bulk add, and the first list after a restart sorted them.
        self._oldest: list[JobRecord] | None = list(ordered)
        self._unfinished: dict[str, JobRecord] = {}  # in the order added
        self._by_position: list[JobRecord] | None = None  # in_queue_order's order, until it changes
        self.order_version = 0  # told apart each time that order may have changed
        self._finished_counts: dict[JobState, int] = dict.fromkeys(FINISHED_STATES, 0)
        self._finished_bytes = [0, 0]  # downloaded, uploaded: the finished jobs' sum
        self._by_age: list[tuple[float, int, str]] = []  # (finished at, order, id), oldest first
        self._age_keys: dict[str, tuple[float, int, str]] = {}
        # the unfinished jobs' totals, and what each was counted with (its state and bytes)
        self._unfinished_counts: dict[JobState, int] = dict.fromkeys(JobState, 0)
        self._unfinished_bytes = [0, 0]  # downloaded, uploaded
        self._counted: dict[str, tuple[str, int, int, int]] = {}  # (and bytes wasted)
        # what moved since the table was made (this run of the service): the bytes downloaded,
        # uploaded and wasted the records' counters grew by (kept when a job leaves), and the jobs added
        self.transferred = [0, 0, 0]
        self.added = 0
        # info-hash -> the ids of its jobs (active and history): what a client lists of one
        # torrent is worked out from these alone (``of_torrent``)
        self._of_torrent: dict[str, dict[str, None]] = {}
        # owner (a user's name; "" the admin's) -> the ids of their jobs: what a user's quotas are
        # counted over (``of_owner``), not every job (an add by a user with quotas reads it)
        self._of_owner: dict[str, dict[str, None]] = {}
        for rec in ordered:
            self._count(rec, 1, loading=True)
            self._index(rec)
        self._by_age.sort()  # (once: an insort per record of a long history is quadratic)

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

    def records_of(self, job_ids: Iterable[str]) -> list[JobRecord]:
        """The records of those of ``job_ids`` that have one, in that order (a poll during a
        mass check reads thousands: one call, not one a job)."""
        get = self._records.get
        return [rec for rec in map(get, job_ids) if rec is not None]

    def having(self, job_ids: Iterable[str]) -> list[str]:
        """Those of ``job_ids`` that have a record, in that order."""
        records = self._records
        return [job_id for job_id in job_ids if job_id in records]

    def newest_first(self, state: JobState | None = None) -> list[JobRecord]:
        """Every record, newest first; only those in ``state`` when given."""
        if self._oldest is None:  # (sorting 100 000 records took ~30 ms of each page of them)
            self._oldest = sorted(self._records.values(), key=self._age)
        recs = self._oldest[::-1]
        return recs if state is None else [r for r in recs if r.state is state]

    def _age(self, rec: JobRecord) -> tuple[float, int]:
        """``rec``'s place in ``newest_first``, reversed: its creation time, then the order added."""
        return rec.created_at, self._order[rec.id]

    def new_id(self, token: Callable[[], str]) -> str:
        """An id from ``token`` that no job has."""
        while True:
            job_id = token()
            if job_id not in self._records:
                return job_id

    def _count(self, rec: JobRecord, sign: int, *, loading: bool = False) -> None:
        self._by_position = None  # (an unfinished job comes, goes or finishes)
        self.order_version += 1
        if sign > 0 and rec.state not in FINISHED_STATES:
            self._unfinished[rec.id] = rec
            self._tally(rec)
        elif sign < 0 and self._unfinished.pop(rec.id, None) is not None:  # (gone: where it was counted)
            self._untally(rec.id)
        else:
            self._finished_counts[rec.state] += sign
            self._finished_bytes[0] += sign * rec.downloaded
            self._finished_bytes[1] += sign * rec.uploaded
            if sign > 0:
                key = (rec.completed_at or rec.updated_at, self._order[rec.id], rec.id)
                self._age_keys[rec.id] = key
                if loading:
                    self._by_age.append(key)
                else:
                    bisect.insort(self._by_age, key)
            else:
                key = self._age_keys.pop(rec.id)
                del self._by_age[bisect.bisect_left(self._by_age, key)]

    def _tally(self, rec: JobRecord) -> None:
        # (the state's value: a tuple of strings and numbers is not one the collector walks)
        self._counted[rec.id] = (rec.state.value, rec.downloaded, rec.uploaded, rec.wasted + rec.corrupt)
        self._unfinished_counts[rec.state] += 1
        self._unfinished_bytes[0] += rec.downloaded
        self._unfinished_bytes[1] += rec.uploaded

    def _untally(self, job_id: str) -> None:
        state, downloaded, uploaded, _ = self._counted.pop(job_id)
        self._unfinished_counts[JobState(state)] -= 1
        self._unfinished_bytes[0] -= downloaded
        self._unfinished_bytes[1] -= uploaded

    def changed(self, rec: JobRecord) -> None:
        """``rec``'s state or counters changed (the one place each changes says so): an
        unfinished job is counted again as it is now."""
        counted = self._counted.get(rec.id)
        if counted is not None:
            self._moved(counted, rec)
            self._untally(rec.id)
            self._tally(rec)

    def _moved(self, counted: tuple[str, int, int, int], rec: JobRecord) -> None:
        """What ``rec``'s counters grew by since they were ``counted``, added to ``transferred``."""
        self.transferred[0] += max(0, rec.downloaded - counted[1])
        self.transferred[1] += max(0, rec.uploaded - counted[2])
        self.transferred[2] += max(0, rec.wasted + rec.corrupt - counted[3])

    def unfinished_totals(self) -> tuple[dict[JobState, int], int, int]:
        """The unfinished jobs: how many in each state, and their bytes downloaded and uploaded
        as their records say (a running job's session counts on from there)."""
        return dict(self._unfinished_counts), self._unfinished_bytes[0], self._unfinished_bytes[1]

    def unfinished(self) -> ValuesView[JobRecord]:
        """The unfinished records in the order added, for a walk that does not change the table."""
        return self._unfinished.values()

    def in_queue_order(self) -> list[JobRecord]:
        """The unfinished records by queue position (first = next to run), for a walk that does
        not change the table. Kept until a job comes, goes or finishes, or ``reordered``: the
        queue walks it every second, and sorting 10 000 waiting jobs each time was most of that."""
        if self._by_position is None:
            self._by_position = sorted(self._unfinished.values(), key=lambda r: r.queue_position)
        return self._by_position

    def reordered(self) -> None:
        """Queue positions were given anew (the caller that changes them says so)."""
        self._by_position = None
        self.order_version += 1

    def finished_totals(self) -> tuple[dict[JobState, int], int, int]:
        """The finished jobs: how many in each finished state, and their bytes downloaded and
        uploaded."""
        return dict(self._finished_counts), self._finished_bytes[0], self._finished_bytes[1]

    def finished(self, rec: JobRecord) -> None:
        """``rec`` has just reached a finished state, its counters final (the one place a job
        finishes calls this once)."""
        if self._unfinished.pop(rec.id, None) is not None:
            self._moved(self._counted[rec.id], rec)
            self._untally(rec.id)
            self._count(rec, 1)

    def add(self, rec: JobRecord) -> None:
        """A new job, the active one of its torrent."""
        self._records[rec.id] = rec
        self._seq += 1
        self._order[rec.id] = self._seq
        oldest = self._oldest
        if oldest is not None:  # (put in its place: mostly the newest, an append)
            if not oldest or self._age(rec) >= self._age(oldest[-1]):
                oldest.append(rec)
            else:
                bisect.insort(oldest, rec, key=self._age)
        self._count(rec, 1)
        self._by_hash[rec.info_hash] = rec.id
        self._index(rec)
        self.added += 1

    def discard(self, rec: JobRecord) -> None:
        """Forget a job whose start failed (as if it had never been added)."""
        if self._records.pop(rec.id, None) is not None:
            self._count(rec, -1)
            self._unindex(rec)
            self.added -= 1
            self._unplace(rec)
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
        cut = len(self._by_age) if older_than is None else bisect.bisect_right(
            self._by_age, (now - older_than, math.inf))
        return [self._records[job_id] for _, _, job_id in self._by_age[:cut]]

    def remove(self, job_id: str) -> None:
        """Forget a finished job."""
        rec = self._records.pop(job_id)
        self._count(rec, -1)
        self._unindex(rec)
        self._unplace(rec)
        self._order.pop(job_id, None)

    def _unplace(self, rec: JobRecord) -> None:
        """Take ``rec`` out of ``newest_first``'s order (before its place in ``_order`` goes)."""
        oldest = self._oldest
        if oldest is not None:
            at = bisect.bisect_left(oldest, self._age(rec), key=self._age)
            if at < len(oldest) and oldest[at] is rec:
                del oldest[at]
            else:  # (not where its key says: sorted again at the next list)
                self._oldest = None

    def _index(self, rec: JobRecord) -> None:
        self._of_torrent.setdefault(rec.info_hash, {})[rec.id] = None
        self._of_owner.setdefault(rec.options.owner, {})[rec.id] = None  # (a job's owner never changes)

    def _unindex(self, rec: JobRecord) -> None:
        for index, key in ((self._of_torrent, rec.info_hash), (self._of_owner, rec.options.owner)):
            ids = index.get(key)
            if ids is not None:
                ids.pop(rec.id, None)
                if not ids:
                    del index[key]

    def of_owner(self, owner: str) -> list[JobRecord]:
        """The jobs of ``owner`` (active and history), in the order added."""
        return [self._records[job_id] for job_id in self._of_owner.get(owner, ())]

    def of_torrent(self, info_hash: str) -> list[JobRecord]:
        """The jobs of the torrent ``info_hash`` (active and history), newest first."""
        ids = self._of_torrent.get(info_hash)
        if ids is None:
            return []
        if len(ids) == 1:  # (most torrents: a poll's thousands of moved jobs are sorted for nothing)
            return [self._records[i] for i in ids]
        return self.newest_of(self._records[i] for i in ids)

    def only_job(self, info_hash: str) -> JobRecord | None:
        """The job of the torrent ``info_hash`` when it has that one alone (active or history)."""
        ids = self._of_torrent.get(info_hash)
        return self._records[next(iter(ids))] if ids is not None and len(ids) == 1 else None

    def newest_of(self, recs: Iterable[JobRecord]) -> list[JobRecord]:
        """``recs`` (of this table), newest first as ``newest_first`` orders them."""
        return sorted(recs, key=self._age, reverse=True)
