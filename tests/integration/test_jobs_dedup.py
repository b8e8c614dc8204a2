"""v2 deduplication across swarms through the job service, on loopback: a second v2 (or hybrid)
torrent that shares files with one the service holds complete takes them from there and
downloads only the rest; each placed file is verified by the check, so a source changed on disk
is downloaded where it fails; every mode (copy, hard link, reflink or its fallback), and a
folder the user indexes."""

from __future__ import annotations

import json
import logging
import os
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import anyio
import pytest

from torrent_engine.config import Config
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.jobs import Job, JobService, JobState
from torrent_engine.jobs.disk import dedup as dedup_module
from torrent_engine.jobs.disk.dedup import Deduplicator
from torrent_engine.session import Session

from .helpers import loopback_config, make_torrent

pytestmark = pytest.mark.anyio

PL = 32 * 1024
SHARED = (("one.bin", 300_001), ("two.bin", 200_000))  # A's first two files, B's too
A_ONLY = ("a3.bin", 150_003)
B_ONLY = ("b3.bin", 180_005)


def write(folder: Path, files: list[tuple[str, bytes]]) -> Path:
    for name, data in files:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return folder


def contents(seed: int = 7) -> dict[str, bytes]:
    rng = random.Random(seed)
    return {name: rng.randbytes(size) for name, size in (*SHARED, A_ONLY, B_ONLY)}


async def wait_for(jobs: JobService, job_id: str, *states: JobState, timeout: float = 60) -> Job:
    with anyio.fail_after(timeout):
        while (job := jobs.get(job_id)).state not in states:
            assert job.state not in (JobState.FAILED, JobState.ERROR), job.error
            await anyio.sleep(0.02)
    return job


async def holding_a(jobs: JobService, root: Path, data: dict[str, bytes], version: str) -> Torrent:
    """Torrent A of three files, complete in the service (added with its data, checked)."""
    a = write(root / "A", [(n, data[n]) for n, _ in (*SHARED, A_ONLY)])
    torrent = make_torrent(a, piece_length=PL, version=version)
    job, _ = await jobs.add(torrent.to_bytes())
    await wait_for(jobs, job.id, JobState.SEEDING)
    roots = [f.pieces_root for f in torrent.files if f.pieces_root is not None]
    with anyio.fail_after(10):  # (learnt as it completed: its job.state event)
        while not all(jobs.dedup.known(r) for r in roots):
            await anyio.sleep(0.01)
    return torrent


@asynccontextmanager
async def seeding(folder: Path, torrent: Torrent) -> AsyncIterator[Session]:
    async with Session(torrent, folder, config=loopback_config(upload_rate_limit=2_000_000)) as seed:
        await seed.wait_ready()
        yield seed


def service(tmp_path: Path, **config: object) -> JobService:
    return JobService(loopback_config(**config), download_root=tmp_path / "dl", state_dir=tmp_path / "state")


@pytest.mark.parametrize("version", ["v2", "hybrid"])
async def test_a_torrent_sharing_two_of_three_files_downloads_only_the_third(
        tmp_path: Path, version: str) -> None:
    data = contents()
    b_src = write(tmp_path / "seed" / "B", [(n, data[n]) for n, _ in (*SHARED, B_ONLY)])
    b = make_torrent(b_src, piece_length=PL, version=version)
    async with service(tmp_path) as jobs:
        a = await holding_a(jobs, tmp_path / "dl", data, version)
        shared_roots = {f.pieces_root for f in a.files if f.pieces_root is not None}
        assert sum(1 for f in b.files if f.pieces_root in shared_roots) == 2
        async with seeding(tmp_path / "seed", b) as seed:
            job, _ = await jobs.add(b.to_bytes(), save_path="got", peers=[("127.0.0.1", seed.listen_port)])
            assert job.dedup_bytes == sum(size for _, size in SHARED)
            job = await wait_for(jobs, job.id, JobState.SEEDING)
            sent = seed.status().uploaded
        assert job.progress == 1.0 and job.verified_pieces == job.num_pieces == b.num_pieces
        # the bytes received from the seeder: the third file's (a block asked twice at the end
        # at most), not the shared files'
        third = B_ONLY[1]
        assert third <= job.downloaded < third + 2 * 16 * 1024, job.downloaded
        assert third <= sent < third + 2 * 16 * 1024, sent
        assert job.to_json()["dedup_bytes"] == sum(size for _, size in SHARED)
        for name, _ in (*SHARED, B_ONLY):
            assert (tmp_path / "dl" / "got" / "B" / name).read_bytes() == data[name]
        placed = jobs.dedup.placed[job.id]
        assert sorted(p.source for p in placed) == sorted(str(tmp_path / "dl" / "A" / n) for n, _ in SHARED)


async def test_a_source_changed_on_disk_fails_its_check_and_is_downloaded(tmp_path: Path) -> None:
    data = contents()
    b_src = write(tmp_path / "seed" / "B", [(n, data[n]) for n, _ in (*SHARED, B_ONLY)])
    b = make_torrent(b_src, piece_length=PL, version="v2")
    async with service(tmp_path, dedup="copy") as jobs:
        await holding_a(jobs, tmp_path / "dl", data, "v2")
        # A's first file changed under it, its size kept: one piece of it (the third) is wrong now
        source = tmp_path / "dl" / "A" / SHARED[0][0]
        with open(source, "r+b") as f:
            f.seek(2 * PL + 100)
            f.write(b"\xff" * 10)
        async with seeding(tmp_path / "seed", b) as seed:
            job, _ = await jobs.add(b.to_bytes(), save_path="got", peers=[("127.0.0.1", seed.listen_port)])
            assert job.dedup_bytes == sum(size for _, size in SHARED)  # (placed: the check judges)
            job = await wait_for(jobs, job.id, JobState.SEEDING)
        # the changed piece was not taken as had: it was downloaded with the third file
        third = B_ONLY[1]
        assert third + PL <= job.downloaded < third + PL + 2 * 16 * 1024, job.downloaded
        assert job.verified_pieces == b.num_pieces
        for name, _ in (*SHARED, B_ONLY):
            assert (tmp_path / "dl" / "got" / "B" / name).read_bytes() == data[name]
        assert source.read_bytes() != data[SHARED[0][0]]  # (a copy: A's file is left as it was)


async def test_nothing_wrong_counts_as_had_after_the_check(tmp_path: Path) -> None:
    """With no peer to download from, the check alone says what is had: every piece of the
    changed file but the one that changed."""
    data = contents()
    b = make_torrent(write(tmp_path / "mk" / "B", [(n, data[n]) for n, _ in SHARED]), piece_length=PL,
                     version="v2")
    async with service(tmp_path, dedup="copy") as jobs:
        await holding_a(jobs, tmp_path / "dl", data, "v2")
        with open(tmp_path / "dl" / "A" / SHARED[1][0], "r+b") as f:
            f.seek(PL + 5)
            f.write(b"\x00\x01")
        job, _ = await jobs.add(b.to_bytes(), save_path="got")
        assert job.dedup_bytes == sum(size for _, size in SHARED)
        with anyio.fail_after(30):
            while (job := jobs.get(job.id)).verified_pieces != b.num_pieces - 1:
                await anyio.sleep(0.02)
            await anyio.sleep(0.2)
        job = jobs.get(job.id)
        assert job.state is JobState.DOWNLOADING and job.verified_pieces == b.num_pieces - 1
        assert job.done_size == sum(size for _, size in SHARED) - PL
        states = jobs.piece_states(job.id)
        assert states is not None
        second_file_first_piece = -(-SHARED[0][1] // PL)  # (v2: each file starts a piece)
        assert states[second_file_first_piece + 1] == 0 and states.count(2) == b.num_pieces - 1


@pytest.mark.parametrize("mode", ["copy", "hardlink", "reflink"])
async def test_each_mode_places_the_files_and_says_how(tmp_path: Path, mode: str,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    data = contents()
    b = make_torrent(write(tmp_path / "mk" / "B", [(n, data[n]) for n, _ in SHARED]), piece_length=PL,
                     version="v2")
    caplog.set_level(logging.INFO, logger="torrent_engine.jobs.dedup")
    async with service(tmp_path, dedup=mode) as jobs:
        await holding_a(jobs, tmp_path / "dl", data, "v2")
        job, _ = await jobs.add(b.to_bytes(), save_path="got")  # (no peer: every byte from A's files)
        job = await wait_for(jobs, job.id, JobState.SEEDING)
        assert job.dedup_bytes == sum(size for _, size in SHARED) and job.downloaded == 0
        placed = jobs.dedup.placed[job.id]
        for p in placed:
            target = tmp_path / "dl" / "got" / "B" / b.files[p.index].path[-1]
            assert target.read_bytes() == data[target.name]
            same_inode = os.stat(target).st_ino == os.stat(p.source).st_ino
            if mode == "hardlink":
                assert p.method == "hardlink" and same_inode and not p.refused
            elif mode == "copy":
                assert p.method == "copy" and not same_inode and not p.refused
            elif p.method == "reflink":  # (a file system that shares extents: btrfs, XFS…)
                assert not same_inode and not p.refused
            else:  # (this one cannot: the copy it fell back to, and why, are reported)
                assert p.method == "copy" and [w for w, _ in p.refused] == ["reflink"]
                assert "reflink refused" in caplog.text
        assert len(placed) == 2
        assert not list((tmp_path / "dl" / "got" / "B").glob(".*.dedup"))  # (no temporary left)


async def test_dedup_off_takes_nothing(tmp_path: Path) -> None:
    data = contents()
    b = make_torrent(write(tmp_path / "mk" / "B", [(n, data[n]) for n, _ in SHARED]), piece_length=PL,
                     version="v2")
    async with service(tmp_path, dedup="off") as jobs:
        a = write(tmp_path / "dl" / "A", [(n, data[n]) for n, _ in (*SHARED, A_ONLY)])
        ja, _ = await jobs.add(make_torrent(a, piece_length=PL, version="v2").to_bytes())
        await wait_for(jobs, ja.id, JobState.SEEDING)
        job, _ = await jobs.add(b.to_bytes(), save_path="got")
        assert job.dedup_bytes == 0
        assert not (tmp_path / "dl" / "got" / "B").exists()


async def test_an_indexed_folder_gives_its_files_and_the_index_survives_a_restart(tmp_path: Path) -> None:
    data = contents()
    library = write(tmp_path / "library", [("x/" + n, data[n]) for n, _ in SHARED])
    b = make_torrent(write(tmp_path / "mk" / "B", [(n, data[n]) for n, _ in SHARED]), piece_length=PL,
                     version="v2")
    folders = (str(library),)
    async with service(tmp_path, dedup="copy", dedup_folders=folders) as jobs:
        with anyio.fail_after(30):
            await jobs.dedup.folders_indexed.wait()
        assert jobs.dedup.folder_index.hashed == 2
        job, _ = await jobs.add(b.to_bytes(), save_path="got")
        job = await wait_for(jobs, job.id, JobState.SEEDING)
        assert job.dedup_bytes == sum(size for _, size in SHARED) and job.downloaded == 0
        assert {p.origin for p in jobs.dedup.placed[job.id]} == {"folder"}
    # a restart hashes nothing again (the cache, by size and mtime); a changed file is not used
    (library / "x" / SHARED[0][0]).write_bytes(b"\x00" * SHARED[0][1])
    async with service(tmp_path, dedup="copy", dedup_folders=folders) as jobs:
        with anyio.fail_after(30):
            await jobs.dedup.folders_indexed.wait()
        assert jobs.dedup.folder_index.hashed == 1  # (the changed one alone)
        assert jobs.get(job.id).dedup_bytes == sum(size for _, size in SHARED)  # (kept in its record)
        # the job of B learnt on completion, kept in the index file: its files are known
        assert all(jobs.dedup.known(f.pieces_root) for f in b.files if f.pieces_root is not None)


def test_config_refuses_an_unknown_mode() -> None:
    from torrent_engine.errors import ConfigError

    with pytest.raises(ConfigError, match="dedup"):
        Config(dedup="symlink")  # type: ignore[arg-type]


async def test_a_changed_source_is_not_hard_linked_so_the_download_never_writes_into_it(
        tmp_path: Path) -> None:
    data = contents()
    b_src = write(tmp_path / "seed" / "B", [(n, data[n]) for n, _ in (*SHARED, B_ONLY)])
    b = make_torrent(b_src, piece_length=PL, version="v2")
    async with service(tmp_path, dedup="hardlink") as jobs:
        await holding_a(jobs, tmp_path / "dl", data, "v2")
        source = tmp_path / "dl" / "A" / SHARED[0][0]
        with open(source, "r+b") as f:
            f.seek(100)
            f.write(b"\xff" * 10)
        changed = source.read_bytes()
        async with seeding(tmp_path / "seed", b) as seed:
            job, _ = await jobs.add(b.to_bytes(), save_path="got", peers=[("127.0.0.1", seed.listen_port)])
            assert job.dedup_bytes == SHARED[1][1]  # (the second file alone: the first was hashed first)
            job = await wait_for(jobs, job.id, JobState.SEEDING)
        assert SHARED[0][1] + B_ONLY[1] <= job.downloaded
        got = tmp_path / "dl" / "got" / "B"
        assert (got / SHARED[0][0]).read_bytes() == data[SHARED[0][0]]
        assert source.read_bytes() == changed  # A's file was not written through a link
        assert os.stat(got / SHARED[1][0]).st_ino == os.stat(tmp_path / "dl" / "A" / SHARED[1][0]).st_ino


@pytest.mark.parametrize("lost", ["the file", "the job"])
async def test_what_the_index_lacks_is_learnt_at_a_start_and_it_follows_a_moved_job(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lost: str) -> None:
    data = contents()
    b = make_torrent(write(tmp_path / "mk" / "B", [(n, data[n]) for n, _ in SHARED]), piece_length=PL,
                     version="v2")
    async with service(tmp_path) as jobs:
        a = await holding_a(jobs, tmp_path / "dl", data, "v2")
        a_id = jobs.list()[0].id
    index_file = tmp_path / "state" / "dedup.json"
    assert index_file.exists()
    if lost == "the file":  # (a state folder from before the index: built from the saved torrents)
        index_file.unlink()
    else:  # (a job that completed as the service stopped, before the index was saved)
        index_file.write_text('{"version": 1, "jobs": {}}')
    # (what a job's news would teach is not heard: the rebuild alone)
    monkeypatch.setattr(Deduplicator, "_on_state", lambda self, event: None)
    async with service(tmp_path, dedup="copy") as jobs:
        await wait_for(jobs, a_id, JobState.SEEDING)
        with anyio.fail_after(10):
            await jobs.dedup.rebuilt.wait()
        assert all(jobs.dedup.known(f.pieces_root) for f in a.files if f.pieces_root is not None)
        await jobs.set_location(a_id, str(tmp_path / "dl" / "moved"))
        await wait_for(jobs, a_id, JobState.SEEDING)
        job, _ = await jobs.add(b.to_bytes(), save_path="got")
        job = await wait_for(jobs, job.id, JobState.SEEDING)
        assert job.dedup_bytes == sum(size for _, size in SHARED)
        assert sorted(p.source for p in jobs.dedup.placed[job.id]) == sorted(
            str(tmp_path / "dl" / "moved" / "A" / n) for n, _ in SHARED)
    assert index_file.exists()


async def test_a_stop_writes_what_the_index_learnt_since_its_last_write(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dedup_module, "INDEX_SAVE_PAUSE", 3600.0)  # (after the first write, the stop's)
    data = contents()
    index_file = tmp_path / "state" / "dedup.json"
    c = make_torrent(write(tmp_path / "dl" / "C", [(B_ONLY[0], data[B_ONLY[0]])]), piece_length=PL,
                     version="hybrid")  # (a v2 tree of one file holds no folder: its file would be dl/b3.bin)
    async with service(tmp_path) as jobs:
        await holding_a(jobs, tmp_path / "dl", data, "v2")
        with anyio.fail_after(10):  # (the first change is written at once)
            while not index_file.exists():
                await anyio.sleep(0.01)
        job, _ = await jobs.add(c.to_bytes())
        await wait_for(jobs, job.id, JobState.SEEDING)
        with anyio.fail_after(10):
            while not jobs.dedup.known(c.files[0].pieces_root or b""):
                await anyio.sleep(0.01)
        ids = {j.id for j in jobs.list()}
    assert set(json.loads(index_file.read_text())["jobs"]) == ids


async def test_a_cancelled_or_removed_job_gives_nothing(tmp_path: Path) -> None:
    data = contents()
    b = make_torrent(write(tmp_path / "mk" / "B", [(n, data[n]) for n, _ in SHARED]), piece_length=PL,
                     version="v2")
    async with service(tmp_path) as jobs:
        a = await holding_a(jobs, tmp_path / "dl", data, "v2")
        a_id = jobs.list()[0].id
        await jobs.cancel(a_id)  # (its files kept on disk, but no longer vouched for by a job)
        with anyio.fail_after(10):
            while any(jobs.dedup.known(f.pieces_root) for f in a.files if f.pieces_root is not None):
                await anyio.sleep(0.01)
        await jobs.forget(a_id)
        job, _ = await jobs.add(b.to_bytes(), save_path="got")
        assert job.dedup_bytes == 0
        assert not (tmp_path / "dl" / "got" / "B" / SHARED[0][0]).exists()


async def test_our_api_says_how_many_bytes_were_taken(tmp_path: Path) -> None:
    import base64

    from .api_helpers import running_api

    data = contents()
    b = make_torrent(write(tmp_path / "mk" / "B", [(n, data[n]) for n, _ in SHARED]), piece_length=PL,
                     version="v2")
    async with running_api(tmp_path, config_options={"dedup": "copy"}) as api:
        await holding_a(api.service, api.download_root, data, "v2")
        r = await api.client.post("/api/jobs", json={"source": base64.b64encode(b.to_bytes()).decode(),
                                                      "save_path": "got"})
        assert r.status_code == 201, r.text
        assert r.json()["dedup_bytes"] == sum(size for _, size in SHARED)
        job_id = r.json()["id"]
        await wait_for(api.service, job_id, JobState.SEEDING)
        body = (await api.client.get(f"/api/jobs/{job_id}")).json()
        assert body["dedup_bytes"] == sum(size for _, size in SHARED) and body["downloaded"] == 0
        listed = (await api.client.get("/api/jobs")).json()
        jobs = listed["jobs"] if isinstance(listed, dict) else listed
        assert {j["id"]: j["dedup_bytes"] for j in jobs}[job_id] == sum(size for _, size in SHARED)


async def test_a_seed_added_in_seed_mode_gives_its_files_once_learnt_from_its_saved_torrent(
        tmp_path: Path) -> None:
    data = contents()
    a = make_torrent(write(tmp_path / "dl" / "A", [(n, data[n]) for n, _ in (*SHARED, A_ONLY)]),
                     piece_length=PL, version="v2")
    b = make_torrent(write(tmp_path / "mk" / "B", [(n, data[n]) for n, _ in SHARED]), piece_length=PL,
                     version="v2")
    async with service(tmp_path, dedup="copy") as jobs:
        ja, _ = await jobs.add(a.to_bytes(), seed_mode=True)
        assert jobs.manager.get(ja.info_hash) is None  # (a dormant seed: no session, no torrent in memory)
        with anyio.fail_after(10):
            while not all(jobs.dedup.known(f.pieces_root) for f in a.files if f.pieces_root is not None):
                await anyio.sleep(0.01)
        job, _ = await jobs.add(b.to_bytes(), save_path="got")
        job = await wait_for(jobs, job.id, JobState.SEEDING)
        assert job.dedup_bytes == sum(size for _, size in SHARED) and job.downloaded == 0


async def test_a_torrent_whose_every_file_is_placed_is_checked_without_a_session(tmp_path: Path) -> None:
    """Every file of B placed from A's: B is all there once placed, so it is checked as an add
    with its data on disk is (no session until its check says it is complete: a dormant seed),
    though the add's look at its save path, made before the placing, found nothing."""
    data = contents()
    b = make_torrent(write(tmp_path / "mk" / "B", [(n, data[n]) for n, _ in SHARED]), piece_length=PL,
                     version="v2")
    async with service(tmp_path, dedup="copy", seed=True) as jobs:
        await holding_a(jobs, tmp_path / "dl", data, "v2")
        job, _ = await jobs.add(b.to_bytes(), save_path="got")
        assert job.dedup_bytes == sum(size for _, size in SHARED)
        assert job.state is JobState.CHECKING and jobs.manager.get(b.info_hash) is None
        await wait_for(jobs, job.id, JobState.SEEDING)


@pytest.mark.parametrize("version", ["v1", "v2", "hybrid"])
async def test_a_job_checked_complete_without_a_session_gives_its_files_from_the_checks_own_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, version: str) -> None:
    """The check read and parsed the job's saved torrent: the index learns its v2 files (a v1
    torrent has none) from that read, not from a second one (ten thousand checked adds read each
    torrent twice before)."""
    data = contents()
    async with service(tmp_path, dedup="copy", seed=True) as jobs:
        reads: list[str] = []
        real, real_bytes = jobs.manager.saved_metainfo, jobs.manager.saved_metainfo_bytes

        def saved_metainfo(info_hash: bytes | str) -> Torrent | None:
            reads.append(info_hash if isinstance(info_hash, str) else info_hash.hex())
            return real(info_hash)

        def saved_metainfo_bytes(info_hash: bytes | str) -> bytes | None:  # (the check's)
            reads.append(info_hash if isinstance(info_hash, str) else info_hash.hex())
            return real_bytes(info_hash)

        monkeypatch.setattr(jobs.manager, "saved_metainfo", saved_metainfo)
        monkeypatch.setattr(jobs.manager, "saved_metainfo_bytes", saved_metainfo_bytes)
        a = write(tmp_path / "dl" / "A", [(n, data[n]) for n, _ in (*SHARED, A_ONLY)])
        torrent = make_torrent(a, piece_length=PL, version=version)
        job, _ = await jobs.add(torrent.to_bytes())
        assert jobs.manager.get(job.info_hash) is None  # (checked without a session)
        await wait_for(jobs, job.id, JobState.SEEDING)
        roots = [f.pieces_root for f in torrent.files if f.pieces_root is not None]
        assert len(roots) == (0 if version == "v1" else 3)
        with anyio.fail_after(10):  # (learnt at its job.state event)
            while not all(jobs.dedup.known(r) for r in roots):
                await anyio.sleep(0.01)
        await anyio.sleep(0.2)  # (a second read would come as a task of its own)
        assert reads == [job.info_hash]  # (the check's)


async def test_what_a_placement_cut_by_a_crash_left_is_removed_at_the_next_start(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The disk as a crash in the middle of a copy leaves it (the journal of the placements and
    the copy's temporary, taken while the copy waited to be renamed, put back once the service
    stopped): the next start removes the temporary and nothing else."""
    import json
    import shutil
    import threading

    from torrent_engine.jobs.disk.placing import PLACING_FILE
    from torrent_engine.storage import dedup as storage_dedup

    data = contents()
    b = make_torrent(write(tmp_path / "mk" / "B", [(n, data[n]) for n, _ in SHARED]), piece_length=PL,
                     version="v2")
    journal = tmp_path / "state" / PLACING_FILE
    target = tmp_path / "dl" / "got" / "B" / SHARED[0][0]
    crash = tmp_path / "crash"
    crash.mkdir()
    copied, go_on = threading.Event(), threading.Event()
    real_copy = storage_dedup._copy

    def copy_then_wait(src: Path, tmp: Path, length: int, **kw: object) -> None:
        real_copy(src, tmp, length, **kw)  # type: ignore[arg-type]
        if tmp.name.startswith(f".{target.name}.") and not copied.is_set():
            shutil.copy(journal, crash / "journal")  # (what the disk holds at this moment)
            shutil.copy(tmp, crash / "temporary")
            (crash / "name").write_text(tmp.name)
            copied.set()
            go_on.wait(30)

    monkeypatch.setattr(storage_dedup, "_copy", copy_then_wait)
    async with service(tmp_path, dedup="copy") as jobs:
        await holding_a(jobs, tmp_path / "dl", data, "v2")
        async with anyio.create_task_group() as tg:
            tg.start_soon(partial(jobs.add, b.to_bytes(), save_path="got"))
            with anyio.fail_after(30):
                while not copied.is_set():
                    await anyio.sleep(0.01)
            placing = json.loads((crash / "journal").read_text())["placing"]
            assert [str(target) in targets for targets in placing.values()] == [True]
            go_on.set()
        assert not journal.exists()  # (the placements over: nothing written down)
    monkeypatch.setattr(storage_dedup, "_copy", real_copy)
    # the crash's disk: the journal and the temporary back in place, the target not renamed yet
    shutil.copy(crash / "journal", journal)
    temporary = target.parent / (crash / "name").read_text()
    shutil.copy(crash / "temporary", temporary)
    target.unlink()
    async with service(tmp_path, dedup="off") as jobs:  # (whatever the mode is now)
        assert not temporary.exists() and not journal.exists()
        assert not list(target.parent.glob(".*.dedup"))
        assert (target.parent / SHARED[1][0]).read_bytes() == data[SHARED[1][0]]
        assert (tmp_path / "dl" / "A" / SHARED[0][0]).read_bytes() == data[SHARED[0][0]]
