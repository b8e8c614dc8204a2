"""Renaming a job's files and folders while it downloads and while it seeds: the files move on
disk, the job goes on writing and serving them there, its verified pieces kept, and a restart
finds them under their new names without checking them again. Renames that could leave the job's
folder, or land on something that is there, are refused naming the input."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from torrent_engine.formats.metainfo import Torrent
from torrent_engine.jobs import JobService, JobState
from torrent_engine.jobs.model import InvalidJobRequest, JobConflict
from torrent_engine.session import Session

from .helpers import loopback_config, make_payload, make_torrent
from .test_jobs_service import seeder, wait_state

pytestmark = pytest.mark.anyio

FILES = [("a.bin", 700_001), ("sub/b.bin", 300_000), ("sub/deeper/c.dat", 200_003), ("z.txt", 1)]


def service(tmp_path: Path) -> JobService:
    return JobService(loopback_config(seed=True), download_root=tmp_path / "downloads",
                      state_dir=tmp_path / "state")


def renamed_copy_is_whole(torrent: Torrent, src: Path, dst: Path, names: dict[str, str]) -> list[str]:
    """The files of ``torrent`` whose bytes under ``dst`` (at their new names) differ from ``src``."""
    bad = []
    for f in torrent.files:
        if f.pad:
            continue
        rel = "/".join(f.path)
        there = dst / names.get(rel, rel)
        if not there.is_file() or there.read_bytes() != src.joinpath(*f.path).read_bytes():
            bad.append(rel)
    return bad


async def test_renamed_mid_download_and_while_seeding_the_files_are_whole_at_their_new_names_after_a_restart(
        tmp_path: Path) -> None:
    dl = tmp_path / "downloads"
    names = {"payload/a.bin": "payload/moved/a2.bin", "payload/sub/b.bin": "payload/newsub/b.bin",
             "payload/sub/deeper/c.dat": "payload/newsub/deeper/c.dat"}
    async with seeder(tmp_path / "seed", rate=500_000, files=FILES) as (seed, torrent, src):
        async with service(tmp_path) as jobs:
            job, _ = await jobs.add(torrent.to_bytes(), peers=[("127.0.0.1", seed.listen_port)])
            with anyio.fail_after(60):
                while jobs.get(job.id).done_size == 0:
                    await anyio.sleep(0.02)
            mid = await jobs.rename_path(job.id, "payload/a.bin", "payload/moved/a2.bin", folder=False)
            assert mid.state is JobState.DOWNLOADING  # (renamed while it downloads)
            await jobs.rename_path(job.id, "payload/sub", "payload/newsub", folder=True)
            shown = {f.path for f in jobs.get(job.id).files}
            assert shown == {"payload/moved/a2.bin", "payload/newsub/b.bin", "payload/newsub/deeper/c.dat",
                             "payload/z.txt"}
            done = await wait_state(jobs, job.id, JobState.SEEDING, JobState.FAILED)
            assert done.state is JobState.SEEDING, done.error
            assert renamed_copy_is_whole(torrent, src, dl, names) == []
            assert not (dl / "payload" / "a.bin").exists() and not (dl / "payload" / "sub").exists()
            # while seeding: the one-byte file, back and forth
            await jobs.rename_path(job.id, "payload/z.txt", "payload/last.txt")
            names["payload/z.txt"] = "payload/last.txt"
            assert renamed_copy_is_whole(torrent, src, dl, names) == []
    async with service(tmp_path) as again:
        # (found whole under the new names: a dormant seed, without a session until a peer asks)
        assert again.manager.get(torrent.info_hash) is None
        job = again.get(job.id)
        assert job.state is JobState.SEEDING, job.error
        assert {f.path for f in job.files} == {names.get(f"payload/{n}", f"payload/{n}") for n, _ in FILES}
        # a peer wakes it and gets every byte from the files at their new names
        async with Session(torrent, tmp_path / "leech", config=loopback_config(),
                           peers=[("127.0.0.1", again.manager.shared.listen_port)]) as leech:
            with anyio.fail_after(60):
                await leech.wait_completed()
        assert renamed_copy_is_whole(torrent, src, tmp_path / "leech", {}) == []
        session = again.manager.get(torrent.info_hash)
        assert session is not None
        assert not session.rechecked  # found under the new names: the resume data was trusted


async def test_a_paused_job_without_a_session_is_renamed_on_disk_and_found_there_when_resumed(
        tmp_path: Path) -> None:
    payload = make_payload(tmp_path / "downloads", FILES)
    torrent = make_torrent(payload, version="v1")
    async with service(tmp_path) as jobs:
        job, _ = await jobs.add(torrent.to_bytes())
        await wait_state(jobs, job.id, JobState.SEEDING)
        await jobs.pause(job.id)
    async with service(tmp_path) as again:  # (paused: no session until resumed)
        assert again.manager.get(torrent.info_hash) is None
        await again.rename_path(job.id, "payload", "Renamed")
        assert (tmp_path / "downloads" / "Renamed" / "sub" / "b.bin").is_file()
        assert not (tmp_path / "downloads" / "payload").exists()
        await again.resume(job.id)  # (its files found where they were renamed to: a dormant seed)
        resumed = await wait_state(again, job.id, JobState.SEEDING, JobState.ERROR, JobState.FAILED)
        assert resumed.state is JobState.SEEDING, resumed.error
        assert again.manager.get(torrent.info_hash) is None
        session = await again.stream_session(job.id)  # (woken, as by a peer)
        assert session is not None
        await session.wait_ready()
        assert not session.rechecked and again.get(job.id).state is JobState.SEEDING


async def test_renames_that_leave_the_folder_or_land_on_something_are_refused_and_change_nothing(
        tmp_path: Path) -> None:
    dl = tmp_path / "downloads"
    payload = make_payload(dl, FILES)
    other = make_payload(dl, [("o.bin", 1000)], name="other")
    torrent = make_torrent(payload, version="v1")
    outside = tmp_path / "outside"
    outside.mkdir()
    (payload / "escape").symlink_to(outside, target_is_directory=True)
    (payload / "stray.txt").write_bytes(b"the user's")
    async with service(tmp_path) as jobs:
        job, _ = await jobs.add(torrent.to_bytes())
        theirs, _ = await jobs.add(make_torrent(other, version="v1").to_bytes())
        await wait_state(jobs, job.id, JobState.SEEDING)
        await wait_state(jobs, theirs.id, JobState.SEEDING)  # checked after ours, one at a time
        for bad in ("../x.bin", "/tmp/x.bin", "payload/../../x.bin", "payload/./a.bin", ""):
            with pytest.raises(InvalidJobRequest) as err:
                await jobs.rename_path(job.id, "payload/a.bin", bad)
            assert err.value.field == "new_path", bad
        with pytest.raises(InvalidJobRequest) as err:
            await jobs.rename_path(job.id, "payload/nothing.bin", "payload/x.bin")
        assert err.value.field == "old_path"
        for taken in ("payload/escape/a.bin",  # through a symlink out of the folder
                      "payload/stray.txt",  # a file on disk that is not the job's
                      "other/o.bin",  # another job's file
                      "payload/sub/b.bin"):  # another file of the job
            with pytest.raises(JobConflict) as conflict:
                await jobs.rename_path(job.id, "payload/a.bin", taken)
            assert conflict.value.field == "new_path", taken
        assert not any(outside.iterdir())
        assert (payload / "stray.txt").read_bytes() == b"the user's"
        assert {f.path for f in jobs.get(job.id).files} == {f"payload/{n}" for n, _ in FILES}
        assert (payload / "a.bin").stat().st_size == 700_001
        assert jobs.get(theirs.id).state is JobState.SEEDING


async def test_a_file_that_was_there_before_the_job_is_kept_by_a_cancel_that_deletes_after_a_rename(
        tmp_path: Path) -> None:
    payload = make_payload(tmp_path / "downloads", FILES)
    torrent = make_torrent(payload, version="v1")
    async with service(tmp_path) as jobs:
        job, _ = await jobs.add(torrent.to_bytes())
        await wait_state(jobs, job.id, JobState.SEEDING)
        await jobs.rename_path(job.id, "payload/a.bin", "payload/kept/a.bin")
        await jobs.cancel(job.id, delete_files=True)
        assert (payload / "kept" / "a.bin").stat().st_size == 700_001  # the user's, from before the job
