"""A job's data on a disk that fails under it: a full disk, files deleted or changed while it runs
or while the daemon is down. The job stops saying why, keeps what was verified, and goes on when
asked, from our API and from both dialects."""

from __future__ import annotations

import errno
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests.integration.api_helpers import TOKEN, Api, running_api
from torrent_engine.api.compat.qbittorrent_records import state_name as qbittorrent_state
from torrent_engine.api.compat.transmission import status as transmission_status
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.jobs import FINISHED_STATES, Job, JobService, JobState
from torrent_engine.jobs.disk import space
from torrent_engine.session import Session
from torrent_engine.storage.core import Storage

from .helpers import loopback_config, make_payload, make_torrent, same_files

pytestmark = pytest.mark.anyio

BIG = [("big.bin", 1_500_000)]


@asynccontextmanager
async def seeder(root: Path, *, rate: int = 300_000) -> AsyncIterator[tuple[Session, Torrent, Path]]:
    payload = make_payload(root, BIG)
    torrent = make_torrent(payload, piece_length=16 * 1024)
    async with Session(torrent, root, config=loopback_config(upload_rate_limit=rate)) as seed:
        await seed.wait_ready()
        yield seed, torrent, root


class FullDisk:
    """The download folder's file system, full while ``full`` is set (fault injection at the
    storage's write, which raises what ``pwrite`` would, and at the free bytes the service's
    guard of the disks' room reads, none then)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, under: Path) -> None:
        self.full = False
        cached, direct = Storage._write_cached, Storage._write_direct
        real_room = space.room_at
        fs = self

        def room(root: Path, folder: Path) -> tuple[object, int]:
            disk, free = real_room(root, folder)
            return disk, 0 if fs.full and (under == folder or under in folder.parents) else free

        def refuse(storage: Storage, length: int) -> None:
            if fs.full and length and (under == storage.save_path or under in storage.save_path.parents):
                raise OSError(errno.ENOSPC, "No space left on device")

        def write_cached(storage: Storage, fd: int, data: memoryview, offset: int) -> None:
            refuse(storage, len(data))
            cached(storage, fd, data, offset)

        def write_direct(storage: Storage, fd: int, views: list[memoryview], offset: int) -> int:
            refuse(storage, sum(len(v) for v in views))
            return direct(storage, fd, views, offset)

        monkeypatch.setattr(Storage, "_write_cached", write_cached)
        monkeypatch.setattr(Storage, "_write_direct", write_direct)
        monkeypatch.setattr(space, "room_at", room)


async def wait_for(get: Any, ok: Any, timeout: float = 60) -> Any:
    with anyio.fail_after(timeout):
        while True:
            value = get()
            if ok(value):
                return value
            await anyio.sleep(0.05)


async def fill_disk_mid_download(jobs: JobService, job_id: str, disk: FullDisk) -> Job:
    """Let the job verify a few pieces, then fill the disk: it stops, saying why."""
    await wait_for(lambda: jobs.get(job_id), lambda j: j.done_size >= 64 * 1024)
    disk.full = True
    stopped = await wait_for(lambda: jobs.get(job_id), lambda j: j.state is not JobState.DOWNLOADING)
    return stopped


async def test_a_full_disk_stops_the_job_which_resumes_once_space_is_freed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    disk = FullDisk(monkeypatch, tmp_path / "downloads")
    async with seeder(tmp_path / "seed") as (seed, torrent, src), \
            JobService(loopback_config(seed=False), download_root=tmp_path / "downloads",
                       state_dir=tmp_path / "state") as jobs:
        job, _ = await jobs.add(torrent.to_bytes(), peers=[("127.0.0.1", seed.listen_port)])
        stopped = await fill_disk_mid_download(jobs, job.id, disk)
        assert stopped.state is JobState.ERROR, stopped
        assert stopped.error and "No space left on device" in stopped.error
        assert not stopped.finished and stopped.done_size > 0
        assert jobs.manager.get(torrent.info_hash) is None  # nothing runs while the disk is full
        disk.full = False
        resumed = await jobs.resume(job.id)
        assert resumed.state is not JobState.ERROR and resumed.error is None
        session = jobs.manager.get(torrent.info_hash)
        assert session is not None
        await session.wait_ready()
        assert not session.rechecked  # what was verified is kept: no hashing it all again
        assert len(session.have) * torrent.piece_length >= stopped.done_size
        done = await wait_for(lambda: jobs.get(job.id), lambda j: j.finished)
        assert done.state is JobState.COMPLETED, done.error
        assert not same_files(torrent, src, tmp_path / "downloads")


async def test_a_job_stopped_by_a_full_disk_waits_across_a_restart_then_goes_on_by_itself(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    disk = FullDisk(monkeypatch, tmp_path / "downloads")
    monkeypatch.setattr(space, "SPACE_LOOK", 0.2)

    def service() -> JobService:
        return JobService(loopback_config(seed=False), download_root=tmp_path / "downloads",
                          state_dir=tmp_path / "state")

    async with seeder(tmp_path / "seed") as (seed, torrent, src):
        async with service() as jobs:
            job, _ = await jobs.add(torrent.to_bytes(), peers=[("127.0.0.1", seed.listen_port)])
            stopped = await fill_disk_mid_download(jobs, job.id, disk)
            assert stopped.state is JobState.ERROR and stopped.error is not None
            assert stopped.error.endswith("it goes on by itself once its disk has room")
            assert jobs.space.waiting == {job.id: None}
        async with service() as again:  # (the disk still full)
            back = again.get(job.id)
            assert back.state is JobState.ERROR and back.error == stopped.error
            assert back.done_size == stopped.done_size
            await anyio.sleep(1.0)  # (the guard looked a few times: no room, it waits)
            assert again.get(job.id).state is JobState.ERROR
            assert again.manager.get(torrent.info_hash) is None and again.space.waiting == {job.id: None}
            disk.full = False  # (room again: it goes on from what was verified, by itself)
            done = await wait_for(lambda: again.get(job.id), lambda j: j.finished)
            assert done.state is JobState.COMPLETED, done.error
            assert not same_files(torrent, src, tmp_path / "downloads")
            assert not again.space.waiting


async def test_a_download_below_the_reserve_stops_and_goes_on_once_it_is_lowered(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The disk's real free bytes (statvfs) against the reserve: set above them, the download
    stops saying how much is free; lowered, it goes on by itself (this disk has 256 MiB free)."""
    monkeypatch.setattr(space, "SPACE_LOOK", 0.2)
    async with seeder(tmp_path / "seed", rate=200_000) as (seed, torrent, src), \
            JobService(loopback_config(seed=False), download_root=tmp_path / "downloads",
                       state_dir=tmp_path / "state") as jobs:
        job, _ = await jobs.add(torrent.to_bytes(), peers=[("127.0.0.1", seed.listen_port)])
        await wait_for(lambda: jobs.get(job.id), lambda j: j.done_size >= 64 * 1024)
        await jobs.update_settings(disk_reserve=2**50)  # (1 PiB: more than this disk has)
        stopped = await wait_for(lambda: jobs.get(job.id), lambda j: j.state is JobState.ERROR, timeout=10)
        said = stopped.error
        assert said is not None and "less than the reserve of 1024.0 TiB" in said, said
        assert not stopped.finished and 0 < stopped.done_size < torrent.total_length
        assert jobs.manager.get(torrent.info_hash) is None
        await anyio.sleep(0.6)
        assert jobs.get(job.id).state is JobState.ERROR  # (no room beyond the reserve: it waits)
        await jobs.update_settings(disk_reserve=0)
        done = await wait_for(lambda: jobs.get(job.id), lambda j: j.finished)
        assert done.state is JobState.COMPLETED, done.error
        assert not same_files(torrent, src, tmp_path / "downloads")


async def transmission(api: Api, method: str, arguments: dict[str, Any]) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=api.url, headers=headers, timeout=30) as c:
        r = await c.post("/transmission/rpc", json={"method": method, "arguments": arguments})
        sid = r.headers["x-transmission-session-id"]
        r = await c.post("/transmission/rpc", json={"method": method, "arguments": arguments},
                         headers={"X-Transmission-Session-Id": sid})
        assert r.status_code == 200 and r.json()["result"] == "success", r.text
        return dict(r.json()["arguments"])


@pytest.mark.parametrize("front", ["api", "qbittorrent", "transmission"])
@pytest.mark.parametrize("verb", ["resume", "recheck"])
async def test_every_front_end_shows_the_error_and_goes_on_once_space_is_freed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, front: str, verb: str) -> None:
    disk = FullDisk(monkeypatch, tmp_path / "downloads")
    async with seeder(tmp_path / "seed") as (seed, torrent, src), running_api(tmp_path) as api:
        job, _ = await api.service.add(torrent.to_bytes(), peers=[("127.0.0.1", seed.listen_port)])
        h = torrent.info_hash.hex()
        stopped = await fill_disk_mid_download(api.service, job.id, disk)
        assert stopped.state is JobState.ERROR
        c = api.client
        if front == "api":
            shown = (await c.get(f"/api/jobs/{job.id}")).json()
            assert shown["state"] == "error" and "No space left on device" in shown["error"]
            disk.full = False
            r = await c.post(f"/api/jobs/{job.id}/{verb}")
            assert r.status_code == 200, r.text
        elif front == "qbittorrent":
            info = (await c.get("/api/v2/torrents/info", params={"hashes": h})).json()
            assert [t["state"] for t in info] == ["error"]
            disk.full = False
            r = await c.post(f"/api/v2/torrents/{verb}", data={"hashes": h})
            assert r.status_code == 200
        else:
            got = await transmission(api, "torrent-get", {"ids": [h], "fields": ["status", "error",
                                                                                  "errorString"]})
            [t] = got["torrents"]
            assert t["status"] == 0 and t["error"] == 3 and "No space left" in t["errorString"]
            disk.full = False
            await transmission(api, "torrent-start" if verb == "resume" else "torrent-verify", {"ids": [h]})
        after = api.service.get(job.id)
        assert after.state is not JobState.ERROR and after.error is None
        done = await wait_for(lambda: api.service.get(job.id),
                              lambda j: j.state in FINISHED_STATES | {JobState.SEEDING})
        assert done.state in (JobState.SEEDING, JobState.COMPLETED), done.error
        assert not same_files(torrent, src, tmp_path / "downloads")


async def test_files_gone_while_the_daemon_was_down_stop_the_job_instead_of_downloading_again(
        tmp_path: Path) -> None:
    def service() -> JobService:
        return JobService(loopback_config(), download_root=tmp_path / "downloads",
                          state_dir=tmp_path / "state")

    async with seeder(tmp_path / "seed", rate=0) as (seed, torrent, src):
        async with service() as jobs:
            job, _ = await jobs.add(torrent.to_bytes(), peers=[("127.0.0.1", seed.listen_port)])
            await wait_for(lambda: jobs.get(job.id), lambda j: j.state is JobState.SEEDING)
        data = tmp_path / "downloads" / "payload" / "big.bin"
        away = tmp_path / "unmounted.bin"
        data.rename(away)  # (a drive not mounted: the folder is there, the files are not)
        async with service() as again:
            stopped = await wait_for(lambda: again.get(job.id), lambda j: j.state is not JobState.QUEUED)
            assert stopped.state is JobState.ERROR, stopped
            assert stopped.missing_files == ("payload/big.bin",)
            assert stopped.error and "payload/big.bin" in stopped.error
            assert qbittorrent_state(stopped) == "missingFiles"
            assert transmission_status(stopped) == 0 and stopped.error
            assert again.manager.get(torrent.info_hash) is None and not data.exists()  # nothing fetched
            shown = stopped.to_json()
            assert shown["missing_files"] == ["payload/big.bin"]
        async with service() as third:  # (it stays so: a restart does not download it either)
            assert third.get(job.id).state is JobState.ERROR and not data.exists()
            away.rename(data)  # the drive is back
            await third.resume(job.id)
            session = third.manager.get(torrent.info_hash)
            assert session is not None
            await session.wait_ready()
            assert not session.rechecked and session.status().progress == 1.0  # (trusted as it was)
            back = await wait_for(lambda: third.get(job.id), lambda j: j.state is JobState.SEEDING)
            assert back.error is None and back.missing_files == ()
        data.unlink()
        async with service() as fourth:  # gone for good: the user says to start over (a recheck)
            await wait_for(lambda: fourth.get(job.id), lambda j: j.state is JobState.ERROR)
            await fourth.recheck(job.id)
            await wait_for(lambda: fourth.get(job.id), lambda j: j.state is JobState.SEEDING)
            assert not same_files(torrent, src, tmp_path / "downloads")


async def test_a_file_deleted_under_a_seeding_job_stops_it_instead_of_serving_the_deleted_file(
        tmp_path: Path) -> None:
    async with seeder(tmp_path / "seed", rate=0) as (seed, torrent, src):
        # (uploading slowly: it reads the file for a few seconds, past the storage's check interval)
        async with JobService(loopback_config(upload_rate_limit=300_000),
                              download_root=tmp_path / "downloads", state_dir=tmp_path / "state") as jobs:
            job, _ = await jobs.add(torrent.to_bytes(), peers=[("127.0.0.1", seed.listen_port)])
            await wait_for(lambda: jobs.get(job.id), lambda j: j.state is JobState.SEEDING)
            ours = jobs.manager.get(torrent.info_hash)
            assert ours is not None
            data = tmp_path / "downloads" / "payload" / "big.bin"
            data.unlink()  # (the job still has it open: the deleted file's bytes are readable)
            async with Session(torrent, tmp_path / "leech", config=loopback_config(),
                               peers=[("127.0.0.1", ours.listen_port)]):
                stopped = await wait_for(lambda: jobs.get(job.id), lambda j: j.state is not JobState.SEEDING)
            assert stopped.state is JobState.ERROR, stopped
            assert stopped.missing_files == ("payload/big.bin",)
            assert qbittorrent_state(stopped) == "missingFiles"
            assert stopped.progress < 1.0  # (what it shows is what is still verified on disk)
            assert not data.exists()  # nothing written again
            await jobs.resume(job.id)  # still gone: it stops again, nothing is downloaded
            again = await wait_for(lambda: jobs.get(job.id), lambda j: j.state is JobState.ERROR
                                   and jobs.manager.get(torrent.info_hash) is None)
            assert again.missing_files == ("payload/big.bin",) and not data.exists()
            data.write_bytes((src / "payload" / "big.bin").read_bytes())  # back (from a backup)
            await jobs.resume(job.id)
            back = await wait_for(lambda: jobs.get(job.id), lambda j: j.state is JobState.SEEDING)
            assert back.error is None and back.missing_files == () and back.progress == 1.0
            session = jobs.manager.get(torrent.info_hash)
            assert session is not None and session.rechecked  # (hashed again, not trusted blindly)


async def test_a_file_cut_short_under_a_seed_fails_it_showing_only_what_is_still_verified(
        tmp_path: Path) -> None:
    payload = make_payload(tmp_path / "seed", [("a.bin", 200_000), ("b.bin", 300_000)])
    torrent = make_torrent(payload, piece_length=16 * 1024, version="v1")
    async with Session(torrent, tmp_path / "seed", config=loopback_config()) as ours:
        await ours.wait_ready()
        assert ours.status().progress == 1.0
        os.truncate(payload / "b.bin", 100_000)  # (a disk that filled while it was copied back, say)
        async with Session(torrent, tmp_path / "leech", config=loopback_config(),
                           peers=[("127.0.0.1", ours.listen_port)]):
            await wait_for(lambda: ours.finished, bool)
        assert ours.error and "payload/b.bin" in ours.error
        assert ours.missing_files == ("payload/b.bin",)
        assert 0 < ours.status().progress < 1.0  # a.bin and what is left of b.bin
        b_first = 200_000 // (16 * 1024)
        assert all(i in ours.have for i in range(b_first))
        assert (200_000 + 100_000) // (16 * 1024) not in ours.have


async def test_a_file_changed_under_a_seed_is_hashed_again_at_the_next_start(tmp_path: Path) -> None:
    payload = make_payload(tmp_path / "seed", [("a.bin", 200_000)])
    torrent = make_torrent(payload, piece_length=16 * 1024, version="v1")
    resume = tmp_path / "state" / "resume"
    async with Session(torrent, tmp_path / "seed", config=loopback_config(), resume_path=resume) as ours:
        await ours.wait_ready()
    async with Session(torrent, tmp_path / "seed", config=loopback_config(), resume_path=resume) as ours:
        await ours.wait_ready()
        assert not ours.rechecked and ours.status().progress == 1.0  # (trusted: nothing changed)
        before = (payload / "a.bin").stat()
        with (payload / "a.bin").open("r+b") as f:
            f.seek(5 * 16 * 1024)
            f.write(b"\0" * 100)
        os.utime(payload / "a.bin", ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000))
        async with Session(torrent, tmp_path / "leech", config=loopback_config(),
                           peers=[("127.0.0.1", ours.listen_port)]):
            await wait_for(lambda: ours.status().progress, lambda p: p < 1.0)
        assert 5 not in ours.have
    async with Session(torrent, tmp_path / "seed", config=loopback_config(), resume_path=resume) as again:
        await again.wait_ready()
        assert again.rechecked  # the resume data does not vouch for the changed file
        assert 5 not in again.have and again.status().progress < 1.0
