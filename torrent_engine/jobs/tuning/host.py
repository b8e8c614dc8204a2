"""What tuning/'s parts need of the service layer above them, as a Protocol."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import anyio
    import anyio.abc

    from ...engine.manager import TorrentManager
    from ...events import EventBus
    from ...session import Session
    from ..model import Job
    from ..store import JobRecord
    from ..table import JobTable


class TuningHost(Protocol):
    """What groups.py needs of the job service's machinery: ``lifecycle.JobLifecycle``,
    in the service layer above, is handed to them as this."""

    bandwidth_group: Callable[[JobRecord], str]

    @property
    def events(self) -> EventBus:
        """The service's bus of job events."""

    @property
    def jobs(self) -> JobTable:
        """The job records."""

    def lock(self, job_id: str) -> anyio.Lock:
        """The job's lock: one control operation at a time per job."""

    @property
    def manager(self) -> TorrentManager:
        """The engine's torrents."""

    def publish_updated(self, rec: JobRecord) -> None:
        """Tell subscribers (the SSE stream, the web UI) that a job changed other than its state."""

    async def require_running(self) -> anyio.abc.TaskGroup:
        """The service's task group; as ``check_running`` when it does not run."""

    async def save(self, rec: JobRecord, content: JobRecord | None = None, *, strict: bool = False) -> None:
        """Write the record (or ``content`` in its place) as it is when its turn comes; ``strict``:
        ``StateNotSaved`` when it could not be (a change to refuse)."""

    def session_of(self, rec: JobRecord) -> Session | None:
        """The running session of the unfinished job ``rec`` (None: finished, dormant or replaced)."""

    def snapshot(self, rec: JobRecord, *, seeding_time_step: float = 0.0) -> Job:
        """The job as a caller sees it: from its session while it runs, else from its record."""

