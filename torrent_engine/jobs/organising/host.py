"""What organising/'s parts need of the service layer above them, as a Protocol."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import anyio
    import anyio.abc

    from ...session import Session
    from ..model import Job
    from ..queueing.awake import Sleepers
    from ..queueing.queue import JobQueue
    from ..store import JobRecord
    from ..table import JobTable


class OrganisingHost(Protocol):
    """What organise.py needs of the job service's machinery: ``lifecycle.JobLifecycle``,
    in the service layer above, is handed to them as this."""

    def apply_options(self, rec: JobRecord, session: Session) -> None:
        """Push the job's options into its running session (a new one is told them as it is made)."""

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

    @property
    def download_root(self) -> Path:
        """The folder every save path lies in."""

    @property
    def finished_jobs(self) -> dict[str, Job]:
        """Snapshots of finished jobs."""

    @property
    def jobs(self) -> JobTable:
        """The job records."""

    def lock(self, job_id: str) -> anyio.Lock:
        """The job's lock: one control operation at a time per job."""

    def publish_updated(self, rec: JobRecord) -> None:
        """Tell subscribers (the SSE stream, the web UI) that a job changed other than its state."""

    @property
    def queue(self) -> JobQueue:
        """Which jobs the queue holds back, and its order."""

    async def save(self, rec: JobRecord, content: JobRecord | None = None, *, strict: bool = False) -> None:
        """Write the record (or ``content`` in its place) as it is when its turn comes; ``strict``:
        ``StateNotSaved`` when it could not be (a change to refuse)."""

    def session_of(self, rec: JobRecord) -> Session | None:
        """The running session of the unfinished job ``rec`` (None: finished, dormant or replaced)."""

    @property
    def sleepers(self) -> Sleepers:
        """The jobs the timers walk."""

    def snapshot(self, rec: JobRecord, *, seeding_time_step: float = 0.0) -> Job:
        """The job as a caller sees it: from its session while it runs, else from its record."""

    async def start_dormant(self, rec: JobRecord) -> Session:
        """Start the session of a dormant job (the caller holds its lock), paused when its options
        say so or the queue holds it back (``_held``: the queue resumes it with its slot); a job
        that cannot be started fails (``JobConflict`` says why)."""

    async def started(self) -> None:
        """While the service starts, wait until it has started (``starting.StartWait``)."""

    @property
    def state_dir(self) -> Path | None:
        """The service's state folder (None: nothing kept)."""

    def unfinished(self, job_id: str) -> JobRecord:
        """The job ``job_id``, to change: ``JobNotFound``, or ``JobConflict`` once it is finished."""

