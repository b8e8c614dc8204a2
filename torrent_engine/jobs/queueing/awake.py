"""Which jobs the service's timers walk each second: a sync core (no session, no loop).

A job whose session has news is awake; one where nothing moves (seeding, paused, or downloading
or fetching its metadata: no rate, its totals and its peers standing still) falls quiet and costs
nothing per tick until news of its session wakes it (a peer comes or goes, a byte moves — its
session, which ticks while it has peers, says so in a stats event —, a piece, its state, its
stall; or its share time limit), so 10 000 idle seeds, or a thousand downloads nobody serves or
whose peers send nothing, are not thousands of steps a second. The
seeding time of a quiet seed, and the downloading time of a quiet download, are counted when it
wakes (or is shown), from the clock the rounds advance (``seeding_clock``). A quiet seed that may
sleep is given the time when it goes dormant (``Config.dormant_after`` after it fell quiet): still
quiet then, its session is suspended (``dormant_due``).
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from collections.abc import Callable

from ..model import Job, JobState
from ..store import JobRecord
from ..table import JobTable

# the job states whose time counts as downloading time (Transmission's ``secondsDownloading``; a
# magnet's metadata fetch too): the rounds count it while the job is awake, ``fold`` while it sleeps
DOWNLOADING = (JobState.DOWNLOADING, JobState.FETCHING_METADATA)


@dataclasses.dataclass(slots=True)
class Quiet:
    """A job the timers pass over until news of its session wakes it."""

    since: float  # the seeding clock when its seeding time was last counted (``Sleepers.fold``)
    complete: bool  # every wanted piece verified, as its session said when it went quiet
    view: Job | None = None  # its snapshot as its session showed it asleep (until a save or news)
    dormant_at: float = math.inf  # when its session is suspended if it is still quiet (inf: never)
    peers: int = 0  # its session's connected peers as it went quiet (a peer coming or going wakes it)


class Sleepers:
    """The awake jobs and the quiet ones, and the seeding clock (see the module's docstring)."""

    def __init__(self) -> None:
        self.awake: dict[str, None] = {}  # (a dict: walked in the order they woke)
        self.quiet: dict[str, Quiet] = {}
        self._with_peers: set[str] = set()  # the quiet jobs with peers (``with_peers``)
        self.seeding_clock = 0.0  # seconds of seeding the rounds have counted, summed
        # (seeding clock, job id) when a quiet seed's time limit is reached: it wakes then
        self._deadlines: list[tuple[float, str]] = []
        # (time, job id) when a quiet seed goes dormant, if it is still quiet since
        self._dormant: list[tuple[float, str]] = []

    def moving(self, table: JobTable, runs: Callable[[JobRecord], bool]) -> list[JobRecord]:
        """The awake jobs of ``table`` whose session ``runs`` (what the timers walk); the others
        leave the set."""
        out = []
        for job_id in list(self.awake):
            rec = table.get(job_id)
            if rec is None or not runs(rec):
                del self.awake[job_id]
                continue
            out.append(rec)
        return out

    def wake(self, rec: JobRecord) -> None:
        """News of ``rec``'s session: the timers walk it again (its seeding time counted so far)."""
        if rec.id in self.quiet:
            self.fold(rec)
            self.leave(rec.id)
        self.awake[rec.id] = None

    def leave(self, job_id: str) -> None:
        """``job_id`` is no longer quiet (woken, or gone: its time counted by the caller)."""
        self.quiet.pop(job_id, None)
        self._with_peers.discard(job_id)

    def with_peers(self, table: JobTable) -> list[JobRecord]:
        """The quiet jobs that had peers as they went quiet: their sessions' numbers may move
        before news wakes them (a block one's peer sent is in its counters and its view at once;
        its session's next tick tells of it up to a second later), so the totals read them."""
        return [rec for job_id in self._with_peers if (rec := table.get(job_id)) is not None]

    def wake_all(self, table: JobTable) -> None:
        """Something every job's judgement depends on changed (a setting): walk them all again."""
        for job_id in list(self.quiet):
            rec = table.get(job_id)
            if rec is None:
                self.leave(job_id)
            else:
                self.wake(rec)

    def fold(self, rec: JobRecord) -> None:
        """Count a quiet seed's seeding time, or a quiet download's downloading time, up to now
        (what the rounds counted while it slept)."""
        mark = self.quiet.get(rec.id)
        if mark is not None:
            if rec.state is JobState.SEEDING:
                rec.seeded(self.seeding_clock - mark.since)
            elif rec.state in DOWNLOADING:
                rec.downloading_time += self.seeding_clock - mark.since
            mark.since = self.seeding_clock

    def fall_quiet(self, rec: JobRecord, complete: bool, time_left: float | None,
                   dormant_at: float | None = None, peers: int = 0) -> None:
        """``rec`` leaves the timers' walk (nothing of it moves: the caller judged so).
        ``time_left``: seeding seconds until its share time limit (it wakes then);
        ``dormant_at``: the time its session is suspended if it is still quiet then; ``peers``:
        its session's connected peers."""
        self.awake.pop(rec.id, None)
        self.quiet[rec.id] = Quiet(self.seeding_clock, complete, peers=peers)
        if peers:
            self._with_peers.add(rec.id)
        else:
            self._with_peers.discard(rec.id)
        if time_left is not None and rec.state is JobState.SEEDING:
            heapq.heappush(self._deadlines, (self.seeding_clock + max(0.0, time_left), rec.id))
        if dormant_at is not None:
            self.put_off(rec, dormant_at)

    def put_off(self, rec: JobRecord, dormant_at: float) -> None:
        """The quiet seed ``rec`` goes dormant at ``dormant_at``, if it is still quiet then."""
        mark = self.quiet.get(rec.id)
        if mark is not None:
            mark.dormant_at = dormant_at
            heapq.heappush(self._dormant, (dormant_at, rec.id))

    def dormant_due(self, now: float) -> list[str]:
        """The quiet seeds whose time to go dormant came by ``now`` and that have been quiet
        since they were given it (once each: a seed not suspended then is ``put_off``)."""
        out = []
        heap = self._dormant
        while heap and heap[0][0] <= now:
            at, job_id = heapq.heappop(heap)
            mark = self.quiet.get(job_id)
            if mark is not None and mark.dormant_at == at:
                mark.dormant_at = math.inf
                out.append(job_id)
        return out

    def unview(self, rec: JobRecord) -> None:
        """``rec`` changed: a quiet job's kept snapshot is made again when next read."""
        mark = self.quiet.get(rec.id)
        if mark is not None:
            mark.view = None

    def advance(self, step: float, table: JobTable) -> None:
        """A round counts ``step`` seconds of seeding: the quiet seeds whose share time limit the
        seeding clock reaches wake first (the round counts this step for them), then the clock
        moves on (the other quiet seeds' time is counted when each wakes: ``fold``)."""
        clock = self.seeding_clock + step
        heap = self._deadlines
        while heap and heap[0][0] <= clock:
            _, job_id = heapq.heappop(heap)
            rec = table.get(job_id)
            if rec is not None and job_id in self.quiet:
                self.wake(rec)
        self.seeding_clock = clock

    def forget(self, rec: JobRecord) -> None:
        """``rec`` has no session any more: its seeding time is counted and the sets forget it."""
        self.fold(rec)
        self.leave(rec.id)
        self.awake.pop(rec.id, None)
