"""Incomplete files under a suffix (``partial_file_suffix``: qBittorrent's ``incomplete_files_ext``,
``.!qB``; Transmission's ``rename-partial-files``, ``.part``): while a job downloads, each file that
is not complete is on disk under its name and the suffix, its views show its name; each file takes
its name as its last piece is verified, the others still downloading; a restart goes on writing
the suffixed files; turning the setting off or on renames a running job's incomplete files at once;
a file on disk before the add is checked where it is and never renamed; a cancel that deletes the
job's files deletes the suffixed ones."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests.conftest import require_module
from tests.integration.api_helpers import TOKEN, qbt_client, running_api
from tests.integration.test_api_changes import rpc
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.jobs import JobService, JobState
from torrent_engine.jobs.model import InvalidJobRequest

from .helpers import loopback_config, same_files
from .test_jobs_service import seeder, wait_state

pytestmark = pytest.mark.anyio

# a small file first, downloaded first (sequential), then a large one the seeder's rate spreads
FILES = [("a.bin", 100_000), ("b.bin", 400_000)]


def service(tmp_path: Path) -> JobService:
    return JobService(loopback_config(seed=True), download_root=tmp_path / "downloads",
                      state_dir=tmp_path / "state")


def on_disk(tmp_path: Path) -> list[str]:
    root = tmp_path / "downloads" / "payload"
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


async def until(check: object, timeout: float = 60) -> None:
    with anyio.fail_after(timeout):
        while not callable(check) or not check():
            await anyio.sleep(0.02)


async def resumed_to_the_end(jobs: JobService, job_id: str, torrent: Torrent, src: Path,
                             tmp_path: Path) -> None:
    """The job resumed seeds, its files under their names and whole."""
    await jobs.resume(job_id)
    done = await wait_state(jobs, job_id, JobState.SEEDING, JobState.FAILED, JobState.ERROR)
    assert done.state is JobState.SEEDING, done.error
    await until(lambda: on_disk(tmp_path) == ["a.bin", "b.bin"])
    assert same_files(torrent, src, tmp_path / "downloads") == []


async def test_each_file_carries_the_suffix_until_its_last_piece_and_a_restart_goes_on_with_them(
        tmp_path: Path) -> None:
    async with seeder(tmp_path / "seed", rate=100_000, files=FILES) as (seed, torrent, src):
        peers = [("127.0.0.1", seed.listen_port)]
        async with service(tmp_path) as jobs:
            await jobs.update_settings(partial_file_suffix=".!qB")
            job, _ = await jobs.add(torrent.to_bytes(), peers=peers, sequential=True)
            await until(lambda: jobs.get(job.id).done_size > 0)
            assert on_disk(tmp_path) in (["a.bin.!qB"], ["a.bin.!qB", "b.bin.!qB"])  # (made as written)
            assert [f.path for f in jobs.get(job.id).files] == ["payload/a.bin", "payload/b.bin"]
            # the small file whole: under its name, the large one still downloading under the suffix
            await until(lambda: on_disk(tmp_path) == ["a.bin", "b.bin.!qB"])
            assert jobs.get(job.id).state is JobState.DOWNLOADING
            assert (tmp_path / "downloads/payload/a.bin").read_bytes() == (src / "payload/a.bin").read_bytes()
        assert on_disk(tmp_path) == ["a.bin", "b.bin.!qB"]  # (stopped half way: kept as it was)
        async with service(tmp_path) as jobs:
            assert [f.path for f in jobs.get(job.id).files] == ["payload/a.bin", "payload/b.bin"]
            await resumed_to_the_end(jobs, job.id, torrent, src, tmp_path)  # (its peer given again)


async def test_the_setting_turned_off_and_on_renames_a_running_jobs_files_and_a_cancel_deletes_them(
        tmp_path: Path) -> None:
    async with seeder(tmp_path / "seed", rate=50_000, files=FILES) as (seed, torrent, _src):
        async with service(tmp_path) as jobs:
            await jobs.update_settings(partial_file_suffix=".part")
            job, _ = await jobs.add(torrent.to_bytes(), peers=[("127.0.0.1", seed.listen_port)])
            await until(lambda: len(on_disk(tmp_path)) == 2)  # (each made as it is first written)
            assert on_disk(tmp_path) == ["a.bin.part", "b.bin.part"]
            await jobs.update_settings(partial_file_suffix="")
            await until(lambda: on_disk(tmp_path) == ["a.bin", "b.bin"])
            await jobs.update_settings(partial_file_suffix=".!qB")
            # (the small file may be whole by now: it keeps its name)
            await until(lambda: on_disk(tmp_path) in (["a.bin.!qB", "b.bin.!qB"], ["a.bin", "b.bin.!qB"]))
            assert jobs.get(job.id).state is JobState.DOWNLOADING
            for bad in (".", "part", ".a b", ".a/b", "." + "x" * 16, 3, None):
                with pytest.raises(InvalidJobRequest) as refused:
                    await jobs.update_settings(partial_file_suffix=bad)
                assert refused.value.field == "partial_file_suffix"
            assert jobs.settings.partial_file_suffix == ".!qB"
            await jobs.cancel(job.id, delete_files=True)
            await until(lambda: not on_disk(tmp_path))


async def test_a_file_on_disk_before_the_add_is_checked_where_it_is_and_never_renamed(tmp_path: Path) -> None:
    async with seeder(tmp_path / "seed", rate=100_000, files=FILES) as (seed, torrent, src):
        there = tmp_path / "downloads" / "payload"
        there.mkdir(parents=True)
        (there / "a.bin").write_bytes((src / "payload/a.bin").read_bytes())  # whole
        async with service(tmp_path) as jobs:
            await jobs.update_settings(partial_file_suffix=".!qB")
            job, _ = await jobs.add(torrent.to_bytes(), peers=[("127.0.0.1", seed.listen_port)])
            await until(lambda: jobs.get(job.id).done_size > 100_000)
            assert on_disk(tmp_path) == ["a.bin", "b.bin.!qB"]
            done = await wait_state(jobs, job.id, JobState.SEEDING, JobState.FAILED, JobState.ERROR)
            assert done.state is JobState.SEEDING, done.error
            await until(lambda: on_disk(tmp_path) == ["a.bin", "b.bin"])
            assert same_files(torrent, src, tmp_path / "downloads") == []
            # its files are the job's but a.bin, which was the user's before: a cancel keeps it
            await jobs.cancel(job.id, delete_files=True)
            await until(lambda: on_disk(tmp_path) == ["a.bin"])


async def test_the_dialects_read_and_set_it_each_with_its_own_suffix(tmp_path: Path) -> None:
    """qBittorrent's ``incomplete_files_ext`` turns on ``.!qB``, Transmission's
    ``rename-partial-files`` ``.part``; each reads whether a suffix is set, and turning it on keeps
    a suffix the other chose. A value that is no boolean is refused naming the preference."""
    qbittorrentapi = require_module("qbittorrentapi")
    async with running_api(tmp_path) as api, httpx.AsyncClient(base_url=api.url) as c:
        def qbt(prefs: dict[str, object] | None = None) -> object:
            client = qbt_client(api.url)
            if prefs is not None:
                client.app_set_preferences(prefs)
            return client.app_preferences()["incomplete_files_ext"]

        async def tr(rename: object | None = None) -> object:
            if rename is not None:
                await rpc(c, "session-set", {"rename-partial-files": rename})
            return (await rpc(c, "session-get", {"fields": ["rename-partial-files"]}))["rename-partial-files"]

        assert await anyio.to_thread.run_sync(qbt) is False and await tr() is False
        assert await anyio.to_thread.run_sync(lambda: qbt({"incomplete_files_ext": True})) is True
        assert api.service.settings.partial_file_suffix == ".!qB" and await tr() is True
        assert await tr(True) is True and api.service.settings.partial_file_suffix == ".!qB"  # (kept)
        assert await tr(False) is False and api.service.settings.partial_file_suffix == ""
        assert await anyio.to_thread.run_sync(qbt) is False
        assert await tr(True) is True and api.service.settings.partial_file_suffix == ".part"
        assert await anyio.to_thread.run_sync(lambda: qbt({"incomplete_files_ext": True})) is True
        assert api.service.settings.partial_file_suffix == ".part"

        def refused() -> None:
            with pytest.raises(qbittorrentapi.InvalidRequest400Error, match="incomplete_files_ext"):
                qbt_client(api.url).app_set_preferences({"incomplete_files_ext": "yes"})

        await anyio.to_thread.run_sync(refused)
        r = await c.post("/transmission/rpc", auth=("u", TOKEN), headers=c.headers, json={
            "method": "session-set", "arguments": {"rename-partial-files": 1}})
        assert "rename-partial-files" in r.json()["result"], r.text
        assert api.service.settings.partial_file_suffix == ".part"
        r = await api.client.patch("/api/settings", json={"partial_file_suffix": "x"})
        assert r.status_code == 400 and r.json()["field"] == "partial_file_suffix", r.text


async def test_a_completions_program_finds_every_file_under_its_name(tmp_path: Path) -> None:
    """The program run on a completion starts once the job's files have their names: the last
    file's rename and the completion come with the same piece (what the disk holds is looked at
    as the program is started, and by the program itself)."""
    listing = tmp_path / "listing.txt"
    script = tmp_path / "list.py"
    script.write_text("import os, sys\n"
                      "open(sys.argv[1], 'w').write(','.join(sorted(os.listdir(sys.argv[2]))))\n")
    async with seeder(tmp_path / "seed", rate=200_000, files=FILES) as (seed, torrent, _src):
        async with service(tmp_path) as jobs:
            started: list[list[str]] = []
            programs = jobs._run.programs
            run_for = programs.run_for

            def seen(*args: Any, **kw: Any) -> Any:
                started.append(on_disk(tmp_path))
                return run_for(*args, **kw)

            programs.run_for = seen  # type: ignore[method-assign]
            await jobs.update_settings(partial_file_suffix=".!qB", run_on_completed_enabled=True,
                                       run_on_completed=f"{sys.executable} {script} {listing} %F")
            job, _ = await jobs.add(torrent.to_bytes(), peers=[("127.0.0.1", seed.listen_port)])
            done = await wait_state(jobs, job.id, JobState.SEEDING, JobState.FAILED, JobState.ERROR)
            assert done.state is JobState.SEEDING, done.error
            await until(lambda: listing.exists() and bool(listing.read_text()))
            assert started == [["a.bin", "b.bin"]]
            assert listing.read_text() == "a.bin,b.bin"


async def test_a_magnets_files_take_the_suffix_once_known_and_keep_it_through_a_rename_and_a_move(
        tmp_path: Path) -> None:
    """A magnet's files are known once its metadata came (written under their names until its
    download begins): then renamed under the suffix; a rename of one by its name and a move of
    the job keep the suffix on disk; complete, every file has its (new) name at the new place."""
    async with seeder(tmp_path / "seed", rate=60_000, files=FILES) as (seed, torrent, src):
        async with service(tmp_path) as jobs:
            await jobs.update_settings(partial_file_suffix=".part")
            # (its peer an option of the job: its session at the new place dials it again)
            job, _ = await jobs.add(torrent.magnet_uri(), peers=[("127.0.0.1", seed.listen_port)])
            await until(lambda: on_disk(tmp_path) == ["a.bin.part", "b.bin.part"])
            renamed = await jobs.rename_path(job.id, "payload/b.bin", "payload/c.bin")
            assert [f.path for f in renamed.files] == ["payload/a.bin", "payload/c.bin"]
            assert on_disk(tmp_path) == ["a.bin.part", "c.bin.part"]
            moved = await jobs.set_location(job.id, "elsewhere")
            assert moved.state is not JobState.FAILED, moved.error
            there = tmp_path / "downloads" / "elsewhere" / "payload"
            assert sorted(p.name for p in there.iterdir()) in (["a.bin.part", "c.bin.part"],
                                                                ["a.bin", "c.bin.part"])
            done = await wait_state(jobs, job.id, JobState.SEEDING, JobState.FAILED, JobState.ERROR)
            assert done.state is JobState.SEEDING, done.error
            await until(lambda: sorted(p.name for p in there.iterdir()) == ["a.bin", "c.bin"])
            assert (there / "c.bin").read_bytes() == (src / "payload" / "b.bin").read_bytes()
            assert not on_disk(tmp_path)


async def test_a_service_that_does_not_seed_gives_a_completed_jobs_files_their_names(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without seeding a complete download ends, its session gone: renames that come after the
    end (held here until it) give its files their names on disk."""
    from torrent_engine.jobs.disk.partial_names import PartialNames

    settle = PartialNames._settle

    async def late(self: PartialNames, job_id: str, whole: bool, done: set[int]) -> None:
        with anyio.fail_after(60):
            while (rec := self.run.jobs.get(job_id)) is not None and rec.state in (
                    JobState.QUEUED, JobState.CHECKING, JobState.DOWNLOADING, JobState.SEEDING):
                await anyio.sleep(0.02)
        await settle(self, job_id, whole, done)

    async with seeder(tmp_path / "seed", rate=200_000, files=FILES) as (seed, torrent, src):
        async with JobService(loopback_config(seed=False), download_root=tmp_path / "downloads",
                              state_dir=tmp_path / "state") as jobs:
            await jobs.update_settings(partial_file_suffix=".!qB")
            monkeypatch.setattr(PartialNames, "_settle", late)
            job, _ = await jobs.add(torrent.to_bytes(), peers=[("127.0.0.1", seed.listen_port)])
            await until(lambda: "b.bin.!qB" in on_disk(tmp_path))
            done = await wait_state(jobs, job.id, JobState.COMPLETED, JobState.FAILED, JobState.ERROR)
            assert done.state is JobState.COMPLETED, done.error
            await until(lambda: on_disk(tmp_path) == ["a.bin", "b.bin"])
            assert same_files(torrent, src, tmp_path / "downloads") == []
            assert [f.path for f in jobs.get(job.id).files] == ["payload/a.bin", "payload/b.bin"]


@pytest.mark.parametrize("seed", [False, True], ids=["completed", "seeding"])
async def test_a_complete_file_the_disk_kept_under_its_suffix_is_read_from_there(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: bool) -> None:
    """A job whose files' renames the disk refused at its completion (a file put under one's
    name meanwhile, not the job's) keeps them under the suffix: a stream of one (a completed
    job's, from disk) and qBittorrent's ``torrents/downloadFile`` (a seed's) read the job's file
    there, not the other under its name."""
    from torrent_engine.jobs.disk.partial_names import PartialNames

    settle = PartialNames._settle
    settled: list[str] = []
    ended = (JobState.COMPLETED, JobState.SEEDING)

    async def late(self: PartialNames, job_id: str, whole: bool, done: set[int]) -> None:
        with anyio.fail_after(60):
            while (rec := self.run.jobs.get(job_id)) is not None and rec.state not in ended:
                await anyio.sleep(0.02)
        (tmp_path / "downloads" / "payload" / "b.bin").write_bytes(b"not the job's file\n" * 10)
        await settle(self, job_id, whole, done)
        settled.append(job_id)

    async with seeder(tmp_path / "seed", rate=400_000, files=FILES) as (seed_session, torrent, src):
        async with running_api(tmp_path, config_options={"seed": seed}) as api:
            jobs = api.service
            await jobs.update_settings(partial_file_suffix=".!qB")
            monkeypatch.setattr(PartialNames, "_settle", late)
            job, _ = await jobs.add(torrent.to_bytes(), peers=[("127.0.0.1", seed_session.listen_port)])
            # (not seeding, the job passes through seeding on its way to completed)
            end = JobState.SEEDING if seed else JobState.COMPLETED
            done = await wait_state(jobs, job.id, end, JobState.FAILED, JobState.ERROR)
            assert done.state is end, done.error
            await until(lambda: job.id in settled)
            assert on_disk(tmp_path) == ["a.bin.!qB", "b.bin", "b.bin.!qB"]  # (all or none: none)
            assert [f.path for f in jobs.get(job.id).files] == ["payload/a.bin", "payload/b.bin"]
            b = next(f.index for f in jobs.get(job.id).files if f.path == "payload/b.bin")  # (pads between)
            assert jobs.file_on_disk(job.id, b) == tmp_path / "downloads" / "payload" / "b.bin.!qB"
            assert jobs.file_on_disk(job.id, len(torrent.files)) is None
            want = (src / "payload" / "b.bin").read_bytes()
            r = await api.client.get(f"/api/jobs/{job.id}/files/{b}/stream")
            assert (r.status_code, r.content == want) == (200, True), r.text[:200]
            if seed:  # (qBittorrent lists no completed job)
                r = await api.client.post("/api/v2/torrents/downloadFile", data={
                    "hash": job.info_hash, "file": "payload/b.bin"}, headers={"Range": "bytes=10-19"})
                assert (r.status_code, r.content) == (206, want[10:20]), r.text[:200]


async def test_a_paused_jobs_files_are_renamed_at_once_when_the_setting_changes(tmp_path: Path) -> None:
    """As qBittorrent does: a paused job's incomplete files take or leave the suffix when the
    setting changes, through its paused session, and after a restart (no session: by what its
    record saved of each file); a complete file keeps its name; resumed, it completes."""
    async with seeder(tmp_path / "seed", rate=100_000, files=FILES) as (seed, torrent, src):
        peers = [("127.0.0.1", seed.listen_port)]
        async with service(tmp_path) as jobs:
            await jobs.update_settings(partial_file_suffix=".!qB")
            job, _ = await jobs.add(torrent.to_bytes(), peers=peers, sequential=True)
            await until(lambda: on_disk(tmp_path) == ["a.bin", "b.bin.!qB"])
            await jobs.pause(job.id)
            await jobs.update_settings(partial_file_suffix="")
            await until(lambda: on_disk(tmp_path) == ["a.bin", "b.bin"])
            await jobs.update_settings(partial_file_suffix=".part")
            await until(lambda: on_disk(tmp_path) == ["a.bin", "b.bin.part"])
            assert jobs.get(job.id).state is JobState.PAUSED
        async with service(tmp_path) as jobs:
            rec = jobs._run.jobs.get(job.id)
            assert rec is not None and jobs._run.session_of(rec) is None  # (paused since the start)
            await jobs.update_settings(partial_file_suffix=".!qB")
            await until(lambda: on_disk(tmp_path) == ["a.bin", "b.bin.!qB"])
            await jobs.update_settings(partial_file_suffix="")
            await until(lambda: on_disk(tmp_path) == ["a.bin", "b.bin"])
            assert [f.path for f in jobs.get(job.id).files] == ["payload/a.bin", "payload/b.bin"]
            await jobs.update_settings(partial_file_suffix=".part")
            await until(lambda: on_disk(tmp_path) == ["a.bin", "b.bin.part"])
            await resumed_to_the_end(jobs, job.id, torrent, src, tmp_path)


async def test_a_seeds_unwanted_file_not_complete_takes_the_suffix_when_the_setting_changes(
        tmp_path: Path) -> None:
    """As qBittorrent's: a file not complete carries the suffix whether it is wanted or not. A
    seed whose file was unwanted half way (the job complete with its other file) gives it the
    suffix when the setting is turned on, and its name back when off: seeding (its session renames
    it) and dormant after a restart (no session: by what its record saved of each file, which
    its view shows too)."""
    async with seeder(tmp_path / "seed", rate=100_000, files=FILES) as (seed, torrent, src):
        async with service(tmp_path) as jobs:
            peers = [("127.0.0.1", seed.listen_port)]
            job, _ = await jobs.add(torrent.to_bytes(), peers=peers, sequential=True)
            await until(lambda: (files := jobs.get(job.id).files) is not None and files[0].progress == 1
                        and 0 < files[1].progress)
            files = jobs.get(job.id).files
            assert files is not None and files[1].progress < 1
            await jobs.update(job.id, file_priorities={files[1].index: 0})  # (half way: not wanted now)
            done = await wait_state(jobs, job.id, JobState.SEEDING, JobState.FAILED, JobState.ERROR)
            assert done.state is JobState.SEEDING, done.error
            assert on_disk(tmp_path) == ["a.bin", "b.bin"]
            await jobs.update_settings(partial_file_suffix=".!qB")
            await until(lambda: on_disk(tmp_path) == ["a.bin", "b.bin.!qB"])
            assert [f.path for f in jobs.get(job.id).files] == ["payload/a.bin", "payload/b.bin"]
            await jobs.update_settings(partial_file_suffix="")
            await until(lambda: on_disk(tmp_path) == ["a.bin", "b.bin"])
        async with service(tmp_path) as jobs:
            assert jobs.manager.get(torrent.info_hash) is None  # (dormant)
            files = jobs.get(job.id).files
            assert files is not None and 0 < files[1].progress < 1 and not files[1].selected  # (as saved)
            await jobs.update_settings(partial_file_suffix=".part")
            await until(lambda: on_disk(tmp_path) == ["a.bin", "b.bin.part"])
            await jobs.update_settings(partial_file_suffix="")
            await until(lambda: on_disk(tmp_path) == ["a.bin", "b.bin"])
            assert jobs.get(job.id).state is JobState.SEEDING
            assert (tmp_path / "downloads/payload/a.bin").read_bytes() == (src / "payload/a.bin").read_bytes()
