"""Room on the disks the downloads write to: a job stopped because its disk was full goes on by
itself once there is room again, and (the setting ``disk_reserve``) a download stops before its
disk is full, leaving that many bytes free, and goes on the same way.

A job whose session failed on a full disk (``ENOSPC``, a quota's ``EDQUOT``) is stopped in
``error`` as by any failure of its disk, its verified data kept (``JobLifecycle.halt``), with
``waits_for_space`` in its record. While such jobs wait, or a reserve is set, the disks are
looked at every ``SPACE_LOOK`` seconds (the free bytes of the folder each job writes to, one
``statvfs`` a folder, in a worker thread): a waiting job is resumed, as its user would, once its
disk has room for it beyond the reserve — ``ROOM_TO_GO_ON`` bytes, or what it still has to
download and ``ROOM_SLACK`` when that is less —, the jobs waiting on one disk in the order they
stopped, each counting the room of those resumed before it in that look (so the room that comes
back is not promised to them all at once); a downloading job whose disk has less free than the
reserve is stopped for room, saying how much is free. With neither, nothing is
looked at until a job stops for room or the reserve is set. A job that stops for room again
without having verified more (a quota, which the file system's free bytes do not show) waits
twice as long before each next try, up to ``BACKOFF_MOST`` seconds.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from ...session.state_table import State
from ...units import human_bytes
from ..model import JobState, JobStateChanged
from .host import DiskHost
from .listing import room_at

if TYPE_CHECKING:
    from ..store import JobRecord
    from ..tuning.settings import ServiceSettings

__all__ = ["BACKOFF_MOST", "ROOM_SLACK", "ROOM_TO_GO_ON", "SPACE_LOOK", "SpaceGuard"]

log = logging.getLogger("torrent_engine.jobs.space")

SPACE_LOOK = 5.0  # seconds between two looks at the disks while a job waits or a reserve is set
ROOM_TO_GO_ON = 256 * 1024 * 1024  # bytes free beyond the reserve before a job stopped for room goes on
ROOM_SLACK = 16 * 1024 * 1024  # ... or what it has left to download and this, when that is less
BACKOFF_MOST = 600.0  # seconds between two tries of a job that stops for room without progress, at most


def _write_folder(rec: JobRecord) -> str:
    """Where ``rec`` writes its data now: its incomplete folder while it has one, else its save path."""
    return rec.options.download_path or rec.options.data_path


class SpaceGuard:
    """The jobs stopped for room, resumed once there is room (``resume``: the service's resume
    of a job), and the downloads stopped below the reserve; see the module's docstring."""

    def __init__(self, run: DiskHost, resume: Callable[[str], Awaitable[object]], *,
                 clock: Callable[[], float] = anyio.current_time) -> None:
        self.run = run
        self._resume = resume
        self._clock = clock  # (monotonic: the tries' times)
        self.waiting: dict[str, None] = {}  # the jobs stopped for room, in the order they stopped
        self._wake = anyio.Event()
        self._told: dict[str, str] = {}  # job id -> the last refusal of its resume said (said once)
        # job id -> (tries since it last verified more, its verified bytes at the last, next try's time)
        self._tries: dict[str, tuple[int, int, float]] = {}

    def listen(self, settings_watchers: list[Callable[[ServiceSettings, ServiceSettings], None]]) -> None:
        """Follow the jobs stopping for room (``job.state`` events) and the reserve's setting."""
        self.run.events.subscribe(JobStateChanged, self._on_state)
        settings_watchers.append(self._settings_changed)

    def _on_state(self, event: JobStateChanged) -> None:
        job_id = event.job.id
        rec = self.run.jobs.get(job_id)
        if event.new is JobState.ERROR and rec is not None and rec.waits_for_space:
            self.waiting[job_id] = None
            self._wake.set()
        elif event.old is JobState.ERROR:
            self.waiting.pop(job_id, None)
            self._told.pop(job_id, None)

    def _settings_changed(self, before: ServiceSettings, after: ServiceSettings) -> None:
        if before.disk_reserve != after.disk_reserve:
            self._wake.set()

    async def run_guard(self) -> None:
        """(In the service's task group, from its start.) Look at the disks while something
        waits for room or a reserve is set; until cancelled."""
        self.waiting.update((rec.id, None) for rec in self.run.jobs
                            if rec.state is JobState.ERROR and rec.waits_for_space)
        while True:
            self._wake = anyio.Event()
            await self.look()
            if self.waiting or self.run.settings.disk_reserve:
                with anyio.move_on_after(SPACE_LOOK):
                    await self._wake.wait()
            else:
                await self._wake.wait()

    async def look(self) -> None:
        """One look: the waiting jobs with room resumed, the downloads below the reserve stopped."""
        reserve = self.run.settings.disk_reserve
        waiting = [rec for job_id in list(self.waiting) if (rec := self.run.jobs.get(job_id)) is not None
                   and rec.state is JobState.ERROR and rec.waits_for_space]
        self.waiting = {rec.id: None for rec in waiting}
        downloading = [rec for rec in self.run.with_sessions() if rec.state is JobState.DOWNLOADING] \
            if reserve else []
        folders = {_write_folder(rec) for rec in (*waiting, *downloading)}
        if not folders:
            return
        root = self.run.download_root  # (every folder a job writes to is inside it)
        disks = await anyio.to_thread.run_sync(lambda: {f: room_at(root, Path(f)) for f in folders})
        left = {disk: room for disk, room in disks.values() if room >= 0}  # (each disk's, this look)
        now = self._clock()
        for job_id in [j for j in (*self._tries, *self._told) if j not in self.run.jobs]:
            self._tries.pop(job_id, None)
            self._told.pop(job_id, None)
        for rec in waiting:
            disk, room = disks[_write_folder(rec)]
            tries, done, not_before = self._tries.get(rec.id, (0, -1, -math.inf))
            if rec.done_size > done:  # (it made progress since its last try: no waiting for it)
                tries, not_before = 0, -math.inf
            need = min(ROOM_TO_GO_ON, max(rec.total_size - rec.done_size, 0) + ROOM_SLACK)
            if room < 0 or left[disk] < reserve + need or now < not_before:
                continue
            left[disk] -= need  # (promised to this one: the next on this disk goes on from what is left)
            wait = min(SPACE_LOOK * 2 ** min(tries, 16), BACKOFF_MOST)  # (until the next try, if it stops)
            self._tries[rec.id] = (tries + 1, rec.done_size, now + wait)
            await self._go_on(rec, room)
        for rec in downloading:
            _, room = disks[_write_folder(rec)]
            if 0 <= room < reserve:
                self._stop(rec, room, reserve)

    async def _go_on(self, rec: JobRecord, room: int) -> None:
        log.info("job %s (%s): %s free on the disk of %s again: it goes on", rec.id, rec.name,
                 human_bytes(room), _write_folder(rec))
        try:
            await self._resume(rec.id)
        except Exception as exc:  # (a refusal says why: said once, tried again at the next look)
            why = str(exc)
            if self._told.get(rec.id) != why:
                self._told[rec.id] = why
                log.warning("job %s (%s) cannot go on: %s", rec.id, rec.name, why)

    def _stop(self, rec: JobRecord, room: int, reserve: int) -> None:
        """Stop the download ``rec`` for room, as a full disk stops it (``halt``)."""
        session = self.run.session_of(rec)
        tg = self.run.tg
        if session is None or tg is None or rec.id in self.run.busy or session.state is not State.DOWNLOADING:
            return
        error = (f"the disk of {_write_folder(rec)} has {human_bytes(room)} free, less than the reserve of "
                 f"{human_bytes(reserve)}")
        self.run.busy.add(rec.id)
        tg.start_soon(partial(self.run.halt, rec, error, (), session, for_space=True))

