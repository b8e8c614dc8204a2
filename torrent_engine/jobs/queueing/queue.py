"""The queue and the share limits, as pure decisions: which jobs may run now, which the queue
holds back, the positions it shows, and whether a seeding job has reached its share limit.
``JobQueue`` is the sync core: it reads the job table and the settings it is handed and returns
what a round must do; the round (rounds.py) starts, pauses and resumes sessions accordingly
(``organising/features.py`` holds the per-job flags, ``tuning/settings.py`` the maxima and the defaults).

Rules (those of qBittorrent's queue): jobs are taken in queue order; at most
``max_active_downloads`` incomplete ones run, at most ``max_active_uploads`` complete ones, and
at most ``max_active_torrents`` in all (-1 = no maximum); a force-started job always runs and
does not count; a paused job neither runs nor counts. With ``dont_count_slow_torrents``, a job
that runs but moved less than the slow rates for ``slow_torrent_inactive_time`` seconds keeps
running and does not count either (``SlowJobs``: libtorrent's inactive torrents), so a stalled
download does not hold a slot.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass

from ..model import FINISHED_STATES, NO_LIMIT
from ..store import JobRecord
from ..table import JobTable
from ..tuning.settings import ServiceSettings


@dataclass(frozen=True, slots=True)
class QueueEntry:
    """What the queue needs to know of one unfinished, unpaused job."""

    id: str
    position: int
    complete: bool  # every wanted piece verified (it would seed)
    force_start: bool
    slow: bool = False  # running, and slow for long enough not to count (``SlowJobs``)


@dataclass(frozen=True, slots=True)
class RoundPlan:
    """What one round of the queue must do (``JobQueue.plan``)."""

    given: frozenset[str]  # the jobs with a slot
    hold: frozenset[str]  # the judged jobs to hold back (their sessions paused, shown queued)
    wake: tuple[str, ...]  # the quiet jobs whose slot is given or taken (the timers walk them again)
    start: tuple[str, ...]  # the dormant jobs held back since the start given a slot, in queue order


def record_complete(rec: JobRecord) -> bool:
    """Whether the job's record says every wanted piece is verified (a job without a session)."""
    return rec.completed_at is not None or (rec.total_size > 0 and rec.done_size >= rec.total_size)


def queue_entry(rec: JobRecord, complete: bool | None = None, *, slow: bool = False) -> QueueEntry:
    """What the queue needs of a job (``complete``: as its session says; without one, as its
    record does)."""
    if complete is None:
        complete = record_complete(rec)
    return QueueEntry(rec.id, rec.queue_position, complete, rec.features.force_start, slow)


def waits(rec: JobRecord) -> bool:
    """Whether ``rec`` is ranked in the queue: not complete (what it selected is all there)."""
    return not (rec.completed_at is not None and rec.done_size >= rec.total_size)


# The ranks of the jobs that completed since the ranks were numbered, kept at most (or as many as
# the jobs still ranked): then they are numbered again as shown (a daemon that adds and completes
# jobs without end keeps a bounded list).
RANKS_GONE_MOST = 1024


class JobQueue:
    """The job queue's decisions, synchronous (no session, no loop): the jobs it holds back
    (``held``: shown queued, their sessions paused or not started), which jobs get a slot, and
    the queue positions shown (1 = next; 0 = complete or finished).

    ``table`` and ``settings`` give the job table and the run-time settings as they are now.
    """

    def __init__(self, table: Callable[[], JobTable], settings: Callable[[], ServiceSettings]) -> None:
        self._table = table
        self._settings = settings
        self.held: set[str] = set()
        self.completions = 0  # told apart each time a job's completion is noted or undone
        # job id -> its rank as last numbered (1 = next), in that order; the position shown is
        # that less how many of ``_gone`` are below it
        self._ranks: dict[str, int] = {}
        self._gone: list[int] = []  # the numbered ranks of the jobs that completed since (sorted)
        self._ranked = (-1, -1)  # (the table's order version, completions) the ranks were made at
        self._last_position = 0  # the highest queue position given
        # told the jobs whose shown position moved (the job service's change log marks them)
        self.ranks_moved: Callable[[Iterable[str]], None] = lambda ids: None
        self._moved_from = 0  # the ranks from this one on moved since they were last told (0: none)

    def judges(self, rec: JobRecord) -> bool:
        """Whether the queue says when ``rec`` runs (queueing on, not force-started)."""
        return self._settings().queueing and not rec.features.force_start

    def held_at_start(self) -> set[str]:
        """The jobs the queue holds back as the service starts, judged from their records (the
        sessions are not started yet: a job counts as complete when its record says so)."""
        settings = self._settings()
        if not settings.queueing:
            return set()
        return held_jobs((queue_entry(r) for r in self._table().unfinished() if not r.options.paused),
                         settings)

    def admitted(self, judged: Mapping[str, QueueEntry], with_session: Collection[str],
                 busy: Collection[str]) -> set[str]:
        """The ids of the jobs the queue gives a slot (all of them when queueing is off): those
        ``judged`` (by id: the jobs with a session, as they are now), and the jobs the queue has
        held back since the start that still have none (``with_session``: the ids of the jobs
        that have one; ``busy``: those being added, restarted or ended, passed over), judged by
        their records. Force-started ones are not among them (they run, and a job held back
        since the start is woken where it is force-started)."""
        table, held = self._table(), self.held

        def in_queue_order(complete: bool) -> Iterator[QueueEntry]:
            for rec in table.in_queue_order():
                entry = judged.get(rec.id)
                if entry is None:
                    if (rec.id not in held or rec.id in with_session or rec.options.paused or rec.id in busy
                            or record_complete(rec) is not complete):
                        continue
                    entry = queue_entry(rec, complete)
                elif entry.complete is not complete:
                    continue
                yield entry

        settings = self._settings()
        if not settings.queueing:  # (all: those judged, and those held back since the start)
            waiting = (table.get(job_id) for job_id in held if job_id not in judged)
            return set(judged) | {rec.id for rec in waiting if rec is not None and rec.id not in with_session
                                  and not rec.options.paused and rec.id not in busy
                                  and rec.state not in FINISHED_STATES}
        return admitted(in_queue_order(False), in_queue_order(True), settings)

    def starts_held(self, rec: JobRecord, complete: bool, others: Mapping[str, QueueEntry],
                    with_session: Collection[str], busy: Collection[str]) -> bool:
        """Whether the queue holds ``rec`` back from its start (``complete``: as its session
        says, False without one); ``others``: the entries of the other jobs with a running
        session, unpaused and checked; ``with_session``: the ids of every job with one."""
        if not self.judges(rec):
            return False
        judged = {**others, rec.id: QueueEntry(rec.id, rec.queue_position, complete, False)}
        return rec.id not in self.admitted(judged, with_session, busy)

    def plan(self, judged: Mapping[str, QueueEntry], with_session: Collection[str],
             quiet: Iterable[str], busy: Collection[str]) -> RoundPlan:
        """One round's decisions: ``judged`` the entries of the jobs with a session weighed now
        (unpaused, checked, not busy), ``quiet`` those of them the timers pass over."""
        given = self.admitted(judged, with_session, busy)
        hold = frozenset(job_id for job_id, e in judged.items() if not e.force_start and job_id not in given)
        # a quiet job whose slot the queue gives or takes wakes
        wake = tuple(job_id for job_id in quiet if (job_id in hold) is not (job_id in self.held))
        table = self._table()
        dormant = [r for r in (table.get(job_id) for job_id in given if job_id not in judged)
                   if r is not None]
        start = tuple(r.id for r in sorted(dormant, key=lambda r: r.queue_position))
        return RoundPlan(frozenset(given), hold, wake, start)

    # -- the places and the positions shown ------------------------------------------------
    def place_all(self) -> None:
        """Give every record of the table its place in the queue, 1, 2, ... in the order they
        had (older records had none: after the others, oldest first)."""
        table = self._table()
        order = sorted(table, key=lambda r: (r.queue_position or float("inf"), r.created_at))
        for n, rec in enumerate(order, 1):
            rec.queue_position = n
        self._last_position = len(order)
        table.reordered()

    def next_position(self) -> int:
        """The place after every job's (a move only swaps places: the highest stays the highest)."""
        self._last_position += 1
        return self._last_position

    def rank(self, job_id: str) -> int:
        """The job's queue position as shown (0: none, it is complete or finished)."""
        if (self._table().order_version, self.completions) != self._ranked:
            self.rerank()
        numbered = self._ranks.get(job_id, 0)
        return self._shown(numbered) if numbered else 0

    def ranks_of(self, job_ids: Iterable[str]) -> list[int]:
        """``rank`` of each of ``job_ids`` (one call for the thousands a poll reads)."""
        self.rank("")
        ranks, gone = self._ranks.get, self._gone
        if not gone:
            return [ranks(job_id, 0) for job_id in job_ids]
        below = bisect.bisect_left
        return [n - below(gone, n) if n else 0 for n in (ranks(job_id, 0) for job_id in job_ids)]

    def _shown(self, numbered: int) -> int:
        """The position shown for the rank ``numbered`` (those that completed before it moved it up)."""
        return numbered - bisect.bisect_left(self._gone, numbered) if self._gone else numbered

    def settle(self) -> None:
        """Make the ranks current and tell ``ranks_moved`` the jobs whose rank moved since the
        last time, before a list answer reads the change log: a completion moves every rank
        after it, so a thousand checks ending between two polls tell each job once, not a
        thousand times (10 000 checked adds spent 37 % of the loop's time marking them)."""
        self.rank("")
        moved_from, self._moved_from = self._moved_from, 0
        if moved_from:
            moved: list[str] = []
            gone, below = self._gone, bisect.bisect_left
            for job_id, n in reversed(self._ranks.items()):  # (in rank order: from the last)
                if (n - below(gone, n) if gone else n) < moved_from:  # (``_shown``, inline)
                    break
                moved.append(job_id)
            self.ranks_moved(moved)

    def rerank(self) -> None:
        """Queue positions as shown: 1, 2, ... over the unfinished jobs not yet complete (made
        again when read after the queue's order or a job's completion changed)."""
        table = self._table()
        self._ranked = (table.order_version, self.completions)
        waiting = [r for r in table.in_queue_order() if waits(r)]
        old = {job_id: self._shown(n) for job_id, n in self._ranks.items()}
        self._ranks, self._gone = {r.id: n for n, r in enumerate(waiting, 1)}, []
        new = self._ranks
        self.ranks_moved([*(i for i, n in new.items() if old.get(i) != n), *(i for i in old if i not in new)])

    def ranked_last(self, rec: JobRecord, order_before: int) -> None:
        """``rec`` joined the table last in the queue: its rank follows the others' (no new
        ranking of every job per add), when the ranks were current before it joined."""
        if self._ranked == (order_before, self.completions):
            if rec.completed_at is None:  # (numbered after every one, those gone included)
                self._ranks[rec.id] = len(self._ranks) + len(self._gone) + 1
            self._ranked = (self._table().order_version, self.completions)

    def completion_changed(self, rec: JobRecord) -> None:
        """``rec``'s completion was noted or undone. When the ranks were current and the job
        completed, it leaves them and those after it move up one: its rank joins ``_gone``,
        which every position shown is read against (a thousand seeds added in a row are not a
        thousand new rankings of every job, and a thousand checks ending in the order they
        came are not a thousand walks of every rank after theirs: both were quadratic)."""
        version = self._table().order_version
        current = self._ranked == (version, self.completions)
        self.completions += 1
        if current and not waits(rec):
            numbered = self._ranks.pop(rec.id, None)
            if numbered is not None:
                rank = self._shown(numbered)
                bisect.insort(self._gone, numbered)
                if len(self._gone) > max(len(self._ranks), RANKS_GONE_MOST):  # (numbered again, as
                    shown = self._shown  # shown: once in that many completions)
                    self._ranks = {job_id: shown(n) for job_id, n in self._ranks.items()}
                    self._gone = []
                # (``rec`` is told now; those after it at the next ``settle``, from its rank on)
                self._moved_from = min(self._moved_from or rank, rank)
                self.ranks_moved([rec.id])
            self._ranked = (version, self.completions)


def held_jobs(entries: Iterable[QueueEntry], settings: ServiceSettings) -> set[str]:
    """The ids of the jobs that must wait (state ``queued``); none when queueing is off."""
    if not settings.queueing:
        return set()
    ordered = sorted(entries, key=lambda e: e.position)
    given = admitted((e for e in ordered if not e.complete), (e for e in ordered if e.complete), settings)
    return {e.id for e in ordered if not e.force_start and e.id not in given}


def admitted(downloads: Iterable[QueueEntry], seeds: Iterable[QueueEntry],
             settings: ServiceSettings) -> set[str]:
    """The ids of the jobs the queue gives a slot (when queueing is on): ``downloads``, the
    incomplete jobs, then ``seeds``, the complete ones, each in queue order (as given: by
    position). Force-started ones run apart and are not counted. Each is read only until its
    slots are taken: a caller walking 10 000 waiting jobs reads the first few of them."""
    given: set[str] = set()
    total = 0
    classes = ((downloads, settings.max_active_downloads), (seeds, settings.max_active_uploads))
    for entries, maximum in classes:
        running = 0
        for e in entries:
            if e.force_start:
                continue
            if e.slow:  # (it runs, uncounted)
                given.add(e.id)
                continue
            if (0 <= maximum <= running) or (0 <= settings.max_active_torrents <= total):
                break
            given.add(e.id)
            running += 1
            total += 1
    return given


class SlowJobs:
    """Which running jobs are slow (``dont_count_slow_torrents``): those whose download and upload
    rates both stayed below the settings' slow rates for ``slow_torrent_inactive_time`` seconds
    since they were last faster, or since they were first seen running. A job held back, paused
    or ended is forgotten: it is seen anew when it runs again."""

    def __init__(self) -> None:
        self.active_at: dict[str, float] = {}  # job id -> when it was last seen fast (or first seen)

    def slow(self, job_id: str, now: float, settings: ServiceSettings,
             rates: tuple[float, float] | None) -> bool:
        """Whether ``job_id``, running, is slow at ``now``; ``rates``: its (download, upload)
        rates now, None for a quiet job (nothing moves: both 0)."""
        down, up = rates if rates is not None else (0, 0)
        since = self.active_at.setdefault(job_id, now)
        if down >= settings.slow_torrent_download_rate or up >= settings.slow_torrent_upload_rate:
            self.active_at[job_id] = since = now
        return now - since >= settings.slow_torrent_inactive_time

    def keep(self, job_ids: Collection[str]) -> None:
        """Forget every job but ``job_ids`` (those judged running in this round)."""
        if len(self.active_at) != len(job_ids) or any(j not in job_ids for j in self.active_at):
            self.active_at = {j: t for j, t in self.active_at.items() if j in job_ids}


def effective(limit: float | None, default: float) -> float:
    """The job's limit, or the service's default when it has none of its own."""
    return default if limit is None else limit


def share_limit_reached(ratio: float, seeding_time: float, ratio_limit: float, time_limit: float, *,
                        idle_time: float = 0.0, idle_limit: float = NO_LIMIT) -> bool:
    """Whether a seeding job is at its ratio limit, its seeding-time limit or its idle seeding
    limit (seconds seeding without sending or receiving a byte; -1 = none)."""
    if ratio_limit != NO_LIMIT and ratio_limit >= 0 and ratio >= ratio_limit:
        return True
    if idle_limit != NO_LIMIT and idle_limit >= 0 and idle_time >= idle_limit:
        return True
    return time_limit != NO_LIMIT and time_limit >= 0 and seeding_time >= time_limit


def move(order: list[str], ids: Iterable[str], where: str) -> list[str]:
    """``order`` (job ids, first = top) with ``ids`` moved "top", "bottom", "up" or "down" one place
    (several ids keep their relative order)."""
    chosen = [i for i in order if i in set(ids)]
    if not chosen:
        return list(order)
    rest = [i for i in order if i not in chosen]
    if where == "top":
        return chosen + rest
    if where == "bottom":
        return rest + chosen
    out = list(order)
    if where == "up":
        for i in range(1, len(out)):
            if out[i] in chosen and out[i - 1] not in chosen:
                out[i - 1], out[i] = out[i], out[i - 1]
        return out
    if where == "down":
        for i in range(len(out) - 2, -1, -1):
            if out[i] in chosen and out[i + 1] not in chosen:
                out[i + 1], out[i] = out[i], out[i + 1]
        return out
    raise ValueError(f"unknown queue move {where!r}")
