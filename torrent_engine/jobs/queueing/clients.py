"""Client leases at work over the table of ``leases.py``: opened, renewed, ended or lapsed — a
lease that ends cancels its unfinished jobs (files deleted) and ends those whose download
completed as completed (files kept) — the table saved with each change."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Protocol

import anyio

from ..model import FINISHED_STATES, Lease
from ..validate import check_ttl

if TYPE_CHECKING:
    import anyio.abc

    from ..store import JobRecord
    from .leases import LeaseTable

__all__ = ["ClientLeases", "LeaseHost"]

log = logging.getLogger("torrent_engine.jobs.service")  # (as it always logged a lapse)


class LeaseHost(Protocol):
    """What the leases need of the job service's machinery (``lifecycle.JobLifecycle``)."""

    @property
    def leases(self) -> LeaseTable:
        """The open leases."""

    @property
    def jobs(self) -> Iterable[JobRecord]:
        """Every job's record."""

    @property
    def clock(self) -> Callable[[], float]:
        """The service's clock."""

    async def started(self) -> None:
        """Wait while the service starts."""

    async def require_running(self) -> anyio.abc.TaskGroup:
        """``JobConflict`` unless the service runs."""

    async def client_gone(self, rec: JobRecord) -> None:
        """The job's lease ended: cancelled, or ended as completed once its download completed."""


class ClientLeases:
    """The service's leases (``JobService.open_lease`` and the others say what each does);
    ``save`` writes the table (blocking: a worker thread's)."""

    def __init__(self, run: LeaseHost, save: Callable[[dict[str, tuple[float, float]]], None]) -> None:
        self.run = run
        self._save = save

    async def open(self, ttl: float, *, replaces: str | None = None) -> Lease:
        """A new lease of ``ttl`` seconds (``replaces``: that one ended first)."""
        await self.run.started()
        await self.run.require_running()
        seconds = check_ttl(ttl)
        if replaces is not None and replaces in self.run.leases:
            await self.end(replaces)
        lease = self.run.leases.open(seconds, self.run.clock())
        await self._saved()
        return lease

    async def renew(self, lease_id: str) -> Lease:
        """Lease ``lease_id`` alive for another ttl (``LeaseNotFound``)."""
        await self.run.started()
        return self.run.leases.renew(lease_id, self.run.clock())

    async def end(self, lease_id: str) -> None:
        """Lease ``lease_id`` ended, its jobs with it (``LeaseNotFound``)."""
        await self.run.started()
        self.run.leases.end(lease_id)
        await self._saved()
        for rec in self.run.jobs:
            if rec.options.client == lease_id and rec.state not in FINISHED_STATES:
                await self.run.client_gone(rec)

    async def lapse(self, now: float) -> None:
        """End the leases not renewed in time (the service's timers, each round)."""
        for lease_id in self.run.leases.lapsed(now):
            if lease_id in self.run.leases:  # (not ended meanwhile)
                log.info("client lease %s lapsed", lease_id)
                await self.end(lease_id)

    async def _saved(self) -> None:
        await anyio.to_thread.run_sync(self._save, self.run.leases.entries())
