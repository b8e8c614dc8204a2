"""What queueing/'s parts need of the service layer above them, as a Protocol."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import anyio
    import anyio.abc

    from ...engine.manager import TorrentManager
    from ...session import Session
    from ..model import JobState, ProgramEvent
    from ..store import JobRecord, JobWriter
    from ..table import JobTable
    from ..tuning.settings import ServiceSettings
    from .awake import Sleepers
    from .dormant import DormantSeeds
    from .queue import JobQueue


class ViewMarking(Protocol):
    """Where a job's views may have changed: the change log's marks (``marks.ViewMarks``)."""

    def mark(self, rec: JobRecord) -> None:
        """What ``rec``'s views show may have changed."""


class QueueingHost(Protocol):
    """What rounds.py needs of the job service's machinery: ``lifecycle.JobLifecycle``,
    in the service layer above, is handed to them as this."""

    @property
    def busy(self) -> set[str]:
        """Job ids whose session is being replaced or ended."""

    async def check_running(self) -> None:
        """``JobConflict`` unless the service runs (it waits while the service starts: ``started``)."""

    @property
    def clock(self) -> Callable[[], float]:
        """The service's clock."""

    def dormant(self, rec: JobRecord) -> bool:
        """Whether ``rec`` is an unfinished job whose session is not started: paused (or held back
        by the queue) when the service started, it gets one when resumed (or given a slot, or when
        something needs its torrent running)."""

    async def end_job(self, rec: JobRecord, state: JobState, error: str | None, *,
                       delete_files: bool = False) -> None:
        """Finish the job (the caller holds its lock). First the record on disk says it is finished
        and what clean-up is left, so a crash at any later step is completed at the next start; then
        the session is stopped and forgotten and (``delete_files``) the files deleted; only then
        does the job show its new state, so whoever sees it finds the clean-up done."""

    @property
    def manager(self) -> TorrentManager:
        """The engine's manager of the jobs' sessions."""

    def may_sleep(self, rec: JobRecord) -> bool:
        """Whether the running job ``rec`` may be a dormant seed as its record says (complete and
        seeding, no error, not judged nor held by the queue, in a service that seeds)."""

    def fall_quiet(self, rec: JobRecord, session: Session, complete: bool, time_left: float | None) -> bool:
        """Leave the timers' walk if nothing of ``rec`` moves: seeding, paused or downloading, no
        rate (its counters saved first by the caller). ``time_left``: seeding seconds until its
        share time limit (it wakes then). Whether it went quiet."""

    @property
    def jobs(self) -> JobTable:
        """The job records."""

    @property
    def marks(self) -> ViewMarking:
        """The change log's marks (a job's time active shown to the minute changed)."""

    def lock(self, job_id: str) -> anyio.Lock:
        """The job's lock: one control operation at a time per job."""

    def moving(self) -> list[JobRecord]:
        """The awake jobs whose session runs, and the dormant seeds woken at their share time limit
        (what the timers walk); the others leave the set."""

    def publish_updated(self, rec: JobRecord) -> None:
        """Tell subscribers (the SSE stream, the web UI) that a job changed other than its state."""

    @property
    def queue(self) -> JobQueue:
        """Which jobs the queue holds back, and its order."""

    def refresh_counters(self, rec: JobRecord, session: Session | None = None) -> None:
        """Copy the session's totals (and, once it has its metainfo, sizes and name) into the
        record."""

    async def resume_session(self, rec: JobRecord, session: Session) -> None:
        """Resume ``rec``'s paused session. A magnet without its metadata yet checks its data once
        the metadata is here: when the queue judges the job, its session pauses after that check and
        the job stays held, and the queue's round that the check's end sets off resumes it in its
        slot (or holds it, when a job before it took the slot meanwhile)."""

    def run_program(self, event: ProgramEvent, rec: JobRecord) -> None:
        """Start the program the settings name for ``event`` for ``rec`` (none named: nothing), in
        the service's task group; what it did becomes the job's ``last_program``."""

    @property
    def running(self) -> bool:
        """Whether the service runs."""

    async def save(self, rec: JobRecord, content: JobRecord | None = None, *, strict: bool = False) -> None:
        """Write the record (or ``content`` in its place) as it is when its turn comes; ``strict``:
        ``StateNotSaved`` when it could not be (a change to refuse)."""

    @property
    def seeds(self) -> DormantSeeds:
        """The complete seeds without a session."""

    def session_of(self, rec: JobRecord) -> Session | None:
        """The running session of the unfinished job ``rec`` (None: finished, dormant or replaced)."""

    def set_state(self, rec: JobRecord, new: JobState) -> bool:
        """The one place a job's state changes (and ``job.state`` is published); whether it did."""

    @property
    def settings(self) -> ServiceSettings:
        """The run-time settings as they are now."""

    @property
    def sleepers(self) -> Sleepers:
        """The jobs the timers walk."""

    async def start_dormant(self, rec: JobRecord) -> Session:
        """Start the session of a dormant job (the caller holds its lock), paused when its options
        say so or the queue holds it back (``_held``: the queue resumes it with its slot); a job
        that cannot be started fails (``JobConflict`` says why)."""

    def sync(self, rec: JobRecord, *, force_save: bool = False) -> None:
        """Derive the job's state from its session; an end (completed, failed) finishes the job.
        ``force_save``: write the record even when the state did not change."""

    @property
    def tg(self) -> anyio.abc.TaskGroup | None:
        """The service's task group (None: not running)."""

    def unfinished(self, job_id: str) -> JobRecord:
        """The job ``job_id``, to change: ``JobNotFound``, or ``JobConflict`` once it is finished."""

    def with_sessions(self) -> list[JobRecord]:
        """The jobs whose session runs, in the order their sessions were added (the timers walk
        these alone: with thousands of paused jobs without one, walking every job each second was
        most of the tick)."""

    @property
    def writer(self) -> JobWriter:
        """The records' writes to the store."""

