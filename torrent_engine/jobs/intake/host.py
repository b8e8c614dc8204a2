"""What intake/'s parts need of the service layer above them, as a Protocol."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import anyio
    import anyio.abc

    from ...engine.manager import TorrentManager
    from ...events import EventBus
    from ...formats.metainfo import Torrent
    from ...session import Session
    from ..disk.claims import PathClaims
    from ..disk.host import Marking
    from ..model import Job, JobConflict, JobState, ProgramEvent
    from ..queueing.awake import Sleepers
    from ..queueing.dormant import DormantSeeds
    from ..queueing.leases import LeaseTable
    from ..queueing.queue import JobQueue
    from ..store import JobRecord, JobWriter
    from ..table import JobTable
    from ..tuning.settings import ServiceSettings
    from .checks import PendingChecks


class IntakeHost(Protocol):
    """What adding.py, mutable.py, metadata.py and checks.py need of the job service's machinery:
    ``lifecycle.JobLifecycle``, in the service layer above, is handed to them as this."""

    @property
    def adding(self) -> dict[str, anyio.Event]:
        """Info-hash -> an add in flight (single flight)."""

    @property
    def busy(self) -> set[str]:
        """Job ids whose session is being replaced or ended."""

    async def cancel_job(self, rec: JobRecord, *, delete_files: bool, error: str | None) -> None:
        """Cancel the unfinished job under its lock (``delete_files``: its files go too)."""

    @property
    def checks(self) -> PendingChecks:
        """The jobs added with their data on disk, hashed without a session in their turn."""

    @property
    def claims(self) -> PathClaims:
        """Which unfinished job writes each file path."""

    async def client_gone(self, rec: JobRecord) -> None:
        """The job's client lease ended: work that only made sense while the client ran stops. A job
        whose download completed is kept, files and all (it stops seeding: ``completed``); an
        unfinished one is cancelled and its files deleted."""

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

    async def end(self, rec: JobRecord, state: JobState, error: str | None) -> None:
        """End the job in ``state`` under its lock, in the task group (the job is busy until then)."""

    @property
    def events(self) -> EventBus:
        """The service's bus of job events."""

    @property
    def jobs(self) -> JobTable:
        """The job records."""

    @property
    def leases(self) -> LeaseTable:
        """The client leases."""

    def lock(self, job_id: str) -> anyio.Lock:
        """The job's lock: one control operation at a time per job."""

    @property
    def manager(self) -> TorrentManager:
        """The engine's torrents."""

    @property
    def marks(self) -> Marking:
        """The change log's marks."""

    def may_sleep(self, rec: JobRecord) -> bool:
        """Whether the running job ``rec`` may be a dormant seed as its record says: complete and
        seeding, not stopped by an error, not waiting to move out of its incomplete folder (in seed
        mode too: its session, once woken, verifies each piece as it is first served), not judged by
        the queue (which weighs the sessions it lets run), in a service that seeds (its files are
        looked at by the caller: ``dormant.wanted_files_there``)."""

    def may_check_alone(self, rec: JobRecord) -> bool:
        """Whether the job ``rec``, without a session, may have its data checked without one
        (checks.py): its torrent kept, every file wanted, nothing its session would do first,
        not judged by the queue, in a service that seeds."""

    def overlap(self, who: str, job_id: str | None, paths: list[str]) -> JobConflict | None:
        """The refusal of ``who`` (the job ``job_id``, or a torrent being added: None) writing
        ``paths`` when another unfinished job writes one of them (None: no other does)."""

    @property
    def queue(self) -> JobQueue:
        """Which jobs the queue holds back, and its order."""

    def remove_files(self, rec: JobRecord) -> None:
        """Delete the files the job made and the folders it created (never outside the root)."""

    async def require_running(self) -> anyio.abc.TaskGroup:
        """The service's task group; as ``check_running`` when it does not run."""

    @property
    def exported(self) -> Callable[[ProgramEvent, JobRecord, Torrent | None], None]:
        """Copy the .torrent of ``rec``, added or completed, where the settings say (disk/exports.py)."""

    def run_program(self, event: ProgramEvent, rec: JobRecord) -> None:
        """Start the program the settings name for ``event`` for ``rec`` (none named: nothing), in
        the service's task group; what it did becomes the job's ``last_program``."""

    @property
    def running(self) -> bool:
        """Whether the service runs."""

    async def save(self, rec: JobRecord, content: JobRecord | None = None, *, strict: bool = False,
                   metainfo: Torrent | None = None) -> None:
        """Write the record (or ``content`` in its place) as it is when its turn comes; ``strict``:
        ``StateNotSaved`` when it could not be (a change to refuse); ``metainfo``: its torrent,
        kept first in the same write."""

    @property
    def seeds(self) -> DormantSeeds:
        """The complete seeds without a session."""

    def set_state(self, rec: JobRecord, new: JobState, *, told: bool = True) -> bool:
        """The one place a job's state changes (and ``job.state`` is published, unless ``told``
        is False: see ``JobLifecycle.set_state``); whether it did."""

    @property
    def settings(self) -> ServiceSettings:
        """The run-time settings as they are now."""

    @property
    def sleepers(self) -> Sleepers:
        """The jobs the timers walk."""

    def snapshot(self, rec: JobRecord, *, seeding_time_step: float = 0.0) -> Job:
        """The job as a caller sees it: from its session while it runs, else from its record."""

    async def start_dormant(self, rec: JobRecord) -> Session:
        """Start the session of a dormant job (the caller holds its lock), paused when its options
        say so or the queue holds it back (``_held``: the queue resumes it with its slot); a job
        that cannot be started fails (``JobConflict`` says why)."""

    @property
    def starting(self) -> dict[str, str | None]:
        """Job ids whose add is in flight, and why their metadata refused the job."""

    def stop_once_checked(self, rec: JobRecord, session: Session) -> None:
        """A session of ``rec`` started: when its add asked it to stop once its files are checked,
        it is paused once this session's check is over."""

    def starts_paused(self, rec: JobRecord) -> bool:
        """Whether a session started for ``rec`` now (added, woken, restarted for a recheck or a
        move, at a start) starts paused, as the record and the queue say (the session it replaces is
        never asked): paused by the user, held by the queue, or judged by the queue, which passes
        over a job while its data is checked and gives it its slot (resumes it) after the check.
        Started running, a job the queue holds once its check ends would announce and dial until the
        queue's next round."""

    @property
    def state_dir(self) -> Path | None:
        """The service's state folder (None: nothing kept)."""

    def sync(self, rec: JobRecord, *, force_save: bool = False) -> None:
        """Derive the job's state from its session; an end (completed, failed) finishes the job.
        ``force_save``: write the record even when the state did not change."""

    @property
    def tg(self) -> anyio.abc.TaskGroup | None:
        """The service's task group (None: not running)."""

    @property
    def writer(self) -> JobWriter:
        """The records' writes to the store."""

