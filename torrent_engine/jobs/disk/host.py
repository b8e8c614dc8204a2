"""What disk/'s parts need of the service layer above them, as Protocols."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import anyio
    import anyio.abc

    from ...engine.manager import TorrentManager
    from ...events import EventBus
    from ...formats.magnet import Magnet
    from ...formats.metainfo import Torrent
    from ...session import Session, SessionSetup
    from ..model import Job, JobConflict, JobState, ProgramEvent
    from ..queueing.awake import Sleepers
    from ..store import JobRecord
    from ..table import JobTable
    from ..tuning.settings import ServiceSettings
    from .claims import PathClaims


class Marking(Protocol):
    """Where a job's views may have changed: the change log's marks (``marks.ViewMarks``)."""

    def mark(self, rec: JobRecord) -> None:
        """What ``rec``'s views show may have changed."""

    def removed(self, rec: JobRecord) -> None:
        """``rec`` left the table."""


class DiskHost(Protocol):
    """What dedup.py and relocate.py need of the job service's machinery: ``lifecycle.JobLifecycle``,
    in the service layer above, is handed to them as this."""

    @property
    def busy(self) -> set[str]:
        """Job ids whose session is being replaced or ended."""

    @property
    def running(self) -> bool:
        """Whether the service runs (False from the moment it begins to stop)."""

    @property
    def loaded(self) -> bool:
        """Whether the service has read its records and settings (the first step of its start)."""

    async def check_running(self) -> None:
        """``JobConflict`` unless the service runs (it waits while the service starts: ``started``)."""

    def claim(self, rec: JobRecord) -> None:
        """``rec`` writes its files at its save path from now on (once its files are known)."""

    @property
    def claims(self) -> PathClaims:
        """Which unfinished job writes each file path."""

    @property
    def clock(self) -> Callable[[], float]:
        """The service's clock."""

    def dormant(self, rec: JobRecord) -> bool:
        """Whether ``rec`` is an unfinished job whose session is not started: paused (or held back
        by the queue) when the service started, it gets one when resumed (or given a slot, or when
        something needs its torrent running)."""

    @property
    def download_root(self) -> Path:
        """The folder every save path lies in."""

    @property
    def events(self) -> EventBus:
        """The service's bus of job events."""

    async def finish(self, rec: JobRecord, state: JobState, error: str | None, *,
                      completed_at: float | None = None) -> None:
        """Make the job a finished one (history) and save it; its session is the caller's concern."""

    @property
    def jobs(self) -> JobTable:
        """The job records."""

    def lock(self, job_id: str) -> anyio.Lock:
        """The job's lock: one control operation at a time per job."""

    @property
    def manager(self) -> TorrentManager:
        """The engine's torrents."""

    @property
    def marks(self) -> Marking:
        """The change log's marks."""

    def overlap(self, who: str, job_id: str | None, paths: list[str]) -> JobConflict | None:
        """The refusal of ``who`` (the job ``job_id``, or a torrent being added: None) writing
        ``paths`` when another unfinished job writes one of them (None: no other does)."""

    def publish_updated(self, rec: JobRecord) -> None:
        """Tell subscribers (the SSE stream, the web UI) that a job changed other than its state."""

    def refresh_counters(self, rec: JobRecord, session: Session | None = None) -> None:
        """Copy the session's totals (and, once it has its metainfo, sizes and name) into the
        record."""

    async def save(self, rec: JobRecord, content: JobRecord | None = None, *, strict: bool = False) -> None:
        """Write the record (or ``content`` in its place) as it is when its turn comes; ``strict``:
        ``StateNotSaved`` when it could not be (a change to refuse)."""

    def run_program(self, event: ProgramEvent, rec: JobRecord, *, moved: bool = False) -> None:
        """Start the program the settings name for ``event`` for ``rec`` (``moved``: a completion's,
        its move out of the incomplete folder ended)."""

    async def halt(self, rec: JobRecord, error: str, missing: Sequence[str], judged: Session, *,
                   for_space: bool = False) -> None:
        """Stop the job's session, the job kept in ``error`` saying why (the caller put it in
        ``busy``, which this clears); ``for_space``: until there is room again."""

    def with_sessions(self) -> list[JobRecord]:
        """The unfinished jobs that have a session."""

    def session_of(self, rec: JobRecord) -> Session | None:
        """The running session of the unfinished job ``rec`` (None: finished, dormant or replaced)."""

    @property
    def state_dir(self) -> Path | None:
        """The service's state folder (None: nothing kept)."""

    @property
    def sleepers(self) -> Sleepers:
        """The jobs the timers walk."""

    def snapshot(self, rec: JobRecord, *, seeding_time_step: float = 0.0) -> Job:
        """The job as a caller sees it: from its session while it runs, else from its record."""

    async def leave_dormant(self, rec: JobRecord) -> tuple[Torrent | Magnet, SessionSetup]:
        """The dormant job ``rec`` (the caller holds its lock, ``busy`` has it) gets a session
        now, from what this returns: its torrent (or magnet) and the session's setup; a job
        whose torrent cannot be read fails (``JobConflict`` says why)."""

    async def add_session(self, rec: JobRecord, source: Torrent | Magnet, setup: SessionSetup,
                          save_path: Path, *, saved: bool = True) -> Session:
        """A session of ``rec`` added at ``save_path`` from ``source`` (``saved``: the metainfo
        the manager keeps, not written again), paused as ``starts_paused`` says."""

    def starts_paused(self, rec: JobRecord) -> bool:
        """Whether a session started for ``rec`` now (added, woken, restarted for a recheck or a
        move, at a start) starts paused, as the record and the queue say (the session it replaces is
        never asked): paused by the user, held by the queue, or judged by the queue, which passes
        over a job while its data is checked and gives it its slot (resumes it) after the check.
        Started running, a job the queue holds once its check ends would announce and dial until the
        queue's next round."""

    @property
    def waking(self) -> set[str]:
        """Job ids whose new session (a move's) is queued until it says what it does: shown as
        they were meanwhile."""

    @property
    def settings(self) -> ServiceSettings:
        """The run-time settings as they are now."""

    def set_state(self, rec: JobRecord, new: JobState, *, told: bool = True) -> bool:
        """The one place a job's state changes (``JobLifecycle.set_state``); whether it did."""

    def sync(self, rec: JobRecord, *, force_save: bool = False) -> None:
        """Derive the job's state from its session; an end (completed, failed) finishes the job.
        ``force_save``: write the record even when the state did not change."""

    @property
    def tg(self) -> anyio.abc.TaskGroup | None:
        """The service's task group (None: not running)."""

    def unfinished(self, job_id: str) -> JobRecord:
        """The job ``job_id``, to change: ``JobNotFound``, or ``JobConflict`` once it is finished."""

