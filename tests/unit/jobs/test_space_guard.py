"""The guard of the disks' room (jobs/disk/space.py), over a stand-in for the service: a job
stopped for room is resumed once its disk has room for it beyond the reserve, and not before;
the jobs waiting on one disk share the room that came back; one that stops for room again
without progress (a quota the free bytes do not show) is tried less and less often."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

import pytest

from torrent_engine.jobs.disk import space
from torrent_engine.jobs.disk.listing import room_at
from torrent_engine.jobs.disk.space import BACKOFF_MOST, ROOM_SLACK, ROOM_TO_GO_ON, SPACE_LOOK, SpaceGuard
from torrent_engine.jobs.model import JobState
from torrent_engine.jobs.table import JobTable

from .test_jobs_store import record

pytestmark = pytest.mark.anyio

GIB = 1024**3


@dataclasses.dataclass
class Settings:
    disk_reserve: int = 0


class Host:
    """What the guard reads of the service: the jobs, the settings, the sessions (none here)."""

    def __init__(self, *recs: Any) -> None:
        self.jobs = JobTable(recs)
        self.settings = Settings()
        self.busy: set[str] = set()
        self.tg = None
        self.download_root = Path("/")

    def with_sessions(self) -> list[Any]:
        return []


def waiting(job_id: str, folder: str, done: int = 0, left: int = 10 * GIB) -> Any:
    """A job stopped for room, writing to ``folder``, with ``left`` bytes still to download."""
    rec = record(job_id, state=JobState.ERROR, waits_for_space=True, done_size=done, total_size=done + left)
    rec.options = dataclasses.replace(rec.options, save_path=folder)
    return rec


def disks(monkeypatch: pytest.MonkeyPatch, room: dict[str, int]) -> None:
    """Each folder of ``room`` a disk of its own with that many bytes free."""
    monkeypatch.setattr(space, "room_at", lambda root, folder: (str(folder), room[str(folder)]))


def test_the_disk_and_its_free_bytes_are_those_of_the_nearest_folder_that_exists(tmp_path: Path) -> None:
    disk, got = room_at(tmp_path, tmp_path / "not" / "made" / "yet")
    assert disk == tmp_path.stat().st_dev
    assert abs(got - shutil.disk_usage(tmp_path).free) < 64 * 1024 * 1024


async def test_a_job_stopped_for_room_goes_on_once_there_is_room_for_it_beyond_the_reserve(
        monkeypatch: pytest.MonkeyPatch) -> None:
    room = {"/a": ROOM_TO_GO_ON - 1, "/b": 10 * GIB}
    disks(monkeypatch, room)
    a, b, other = waiting("a" * 16, "/a"), waiting("b" * 16, "/b"), record("c" * 16, state=JobState.ERROR)
    small = waiting("d" * 16, "/a", done=5 * GIB, left=1024 * 1024)  # (1 MiB left: room enough for it)
    host = Host(a, b, other, small)
    resumed: list[str] = []

    async def resume(job_id: str) -> None:
        resumed.append(job_id)

    guard = SpaceGuard(host, resume, clock=lambda: 100.0)  # type: ignore[arg-type]
    guard.waiting = {a.id: None, b.id: None, other.id: None, small.id: None}
    await guard.look()
    assert resumed == [b.id, small.id]  # (a: not enough room; the other: stopped by something else)
    assert list(guard.waiting) == [a.id, b.id, small.id]
    room["/a"] = ROOM_TO_GO_ON
    host.settings.disk_reserve = 1  # (the room to go on is beyond the reserve)
    guard.waiting = {a.id: None}
    await guard.look()
    assert resumed == [b.id, small.id]
    host.settings.disk_reserve = 0
    await guard.look()
    assert resumed == [b.id, small.id, a.id]


async def test_the_jobs_waiting_on_one_disk_share_the_room_that_came_back(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Room for two large downloads: the first two to have stopped go on, the third waits for
    the next look that finds room for it (it would fill the disk the others write to)."""
    room = {"/a": 2 * ROOM_TO_GO_ON + ROOM_SLACK}
    disks(monkeypatch, room)
    recs = [waiting(f"{n}" * 16, "/a") for n in range(3)]
    resumed: list[str] = []

    async def resume(job_id: str) -> None:
        resumed.append(job_id)

    guard = SpaceGuard(Host(*recs), resume, clock=lambda: 100.0)  # type: ignore[arg-type]
    guard.waiting = {rec.id: None for rec in recs}
    await guard.look()
    assert resumed == [recs[0].id, recs[1].id]
    room["/a"] = ROOM_TO_GO_ON  # (the next look: the two resumed are gone from the waiting)
    guard.waiting = {recs[2].id: None}
    await guard.look()
    assert resumed == [recs[0].id, recs[1].id, recs[2].id]


async def test_a_job_that_stops_for_room_again_without_progress_is_tried_less_and_less_often(
        monkeypatch: pytest.MonkeyPatch) -> None:
    disks(monkeypatch, {"/a": 10 * GIB})  # (a quota: the disk has room)
    rec = waiting("a" * 16, "/a", done=1000)
    host = Host(rec)
    now = [0.0]
    tries: list[float] = []

    async def resume(job_id: str) -> None:
        tries.append(now[0])  # (and it stops for room again at once, having verified nothing)

    guard = SpaceGuard(host, resume, clock=lambda: now[0])  # type: ignore[arg-type]
    guard.waiting = {rec.id: None}
    while now[0] < 2 * BACKOFF_MOST:
        await guard.look()
        now[0] += SPACE_LOOK
    gaps = [b - a for a, b in zip(tries, tries[1:], strict=False)]
    assert gaps[:5] == [SPACE_LOOK * 2**n for n in range(5)], gaps
    assert max(gaps) <= BACKOFF_MOST + SPACE_LOOK and len(tries) < 12, gaps
    rec.done_size = 2000  # (it verified more in its last run: tried again at the next look)
    at = now[0]
    await guard.look()
    assert tries[-1] == at
