"""JobService without a swarm: input checks, save-path confinement, history pruning, leases."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import os
import sys
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest

from tests.kept import damage_kept, forget_resume, keep_resume, kept_hashes, kept_resume
from tests.spies import HeldChecks, hold_checks, sessions_started, swarms_started
from tests.unit.clock import FakeClock
from tests.unit.torrent_factory import make_torrent, payload
from torrent_engine.config import Config
from torrent_engine.engine.manager import TorrentManager
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.jobs import (
    CLIENT_SESSION_ENDED,
    AddOptions,
    InvalidJobRequest,
    Job,
    JobConflict,
    JobFeatures,
    JobNotFound,
    JobProgress,
    JobRemoved,
    JobService,
    JobState,
    LeaseNotFound,
    SavePathError,
)
from torrent_engine.jobs.lifecycle import JobLifecycle
from torrent_engine.jobs.store import JobRecord, JobStore
from torrent_engine.session import Session
from torrent_engine.session.checking import Checker
from torrent_engine.session.phases import Checking
from torrent_engine.session.setup import TOP_PRIORITY
from torrent_engine.session.state_table import State
from torrent_engine.storage.resume import save_resume

pytestmark = pytest.mark.anyio


def cfg() -> Config:
    return Config(listen_host="127.0.0.1", listen_port=0, dht_enabled=False, port_mapping=False,
                  lsd_enabled=False,
                  tracker_enabled=False,
                  seed=False)


def with_slots(tmp_path: Path, slots: int) -> JobService:
    """A service whose configuration asks for ``slots`` downloads at once (0: no queue)."""
    config = dataclasses.replace(cfg(), max_active_downloads=slots)
    return JobService(config, download_root=tmp_path / "dl", state_dir=tmp_path / "state")


async def until_downloading(jobs: JobService, job_id: str) -> None:
    """Run the service's rounds until the job downloads (10 s at most), and one more."""
    with anyio.fail_after(10):
        while jobs.get(job_id).state is not JobState.DOWNLOADING:
            await jobs.tick()
            await anyio.sleep(0.01)
    await jobs.tick()


def magnet(c: str) -> str:
    return f"magnet:?xt=urn:btih:{c * 40}&dn=job-{c}"


def service(tmp_path: Path, **kw: object) -> JobService:
    return JobService(cfg(), download_root=tmp_path / "dl", state_dir=tmp_path / "state", **kw)  # type: ignore[arg-type]


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("bad", ["../../x", "..", "/etc", "sub/../../x", "/", "a\x00b"])
async def test_save_path_outside_the_root_is_refused_and_nothing_written(tmp_path: Path, bad: str) -> None:
    async with service(tmp_path) as jobs:
        with pytest.raises(SavePathError) as info:
            await jobs.add(magnet("a"), save_path=bad)
        assert info.value.field == "save_path"
        assert jobs.list() == [] and jobs.manager.sessions == []
    assert tree(tmp_path / "dl") == []
    assert not (tmp_path / "x").exists()


async def test_a_symlink_leading_out_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "dl").mkdir()
    os.symlink(outside, tmp_path / "dl" / "link")
    async with service(tmp_path) as jobs:
        for bad in ("link", "link/deeper", str(tmp_path / "dl" / "link" / "x")):
            with pytest.raises(SavePathError):
                await jobs.add(magnet("a"), save_path=bad)
        job, created = await jobs.add(magnet("a"), save_path=str(tmp_path / "dl" / "inside"), paused=True)
        assert created and job.options.save_path == str((tmp_path / "dl" / "inside").resolve())
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("bad", ["magnet:?xt=urn:btih:zz", "magnet:?dn=x", "", "   ", b"not bencode",
                                 b"d4:infod4:name1:xee", "/no/such/file.torrent", 42])
async def test_bad_source_names_the_field(tmp_path: Path, bad: object) -> None:
    async with service(tmp_path) as jobs:
        with pytest.raises(InvalidJobRequest) as info:
            await jobs.add(bad)  # type: ignore[arg-type]
        assert info.value.field == "source"
        assert str(info.value).startswith("source: ")


async def test_bad_files_and_peers_name_their_field(tmp_path: Path) -> None:
    torrent = make_torrent([(("a",), payload(1000)), (("b",), payload(2000))], 16384)
    async with service(tmp_path) as jobs:
        for kw, field in (({"files": [5]}, "files"), ({"files": [-1]}, "files"), ({"files": "0"}, "files"),
                          ({"files": []}, "files"),
                          ({"peers": [("127.0.0.1", 0)]}, "peers"), ({"peers": ["127.0.0.1:80"]}, "peers"),
                          ({"client": "nope"}, "client")):
            with pytest.raises((InvalidJobRequest, LeaseNotFound)) as info:
                await jobs.add(torrent, **kw)  # type: ignore[arg-type]
            assert info.value.field == field
        assert jobs.list() == []


async def test_file_selection_sets_priorities(tmp_path: Path) -> None:
    torrent = make_torrent([(("a",), payload(1000)), (("b",), payload(2000)), (("c",), payload(3000))], 16384)
    async with service(tmp_path) as jobs:
        job, _ = await jobs.add(torrent, files=[1], paused=True)
        rows = [(f.index, f.priority, f.selected) for f in job.files]
        assert rows == [(0, 0, False), (1, 4, True), (2, 0, False)]
        assert job.total_size == 2000
        assert job.eta is None and job.download_rate == 0.0  # no rate: no ETA
        job = await jobs.update(job.id, file_priorities={0: 7, 1: 0})
        assert [f.priority for f in job.files] == [7, 0, 0] and job.total_size == 1000
        with pytest.raises(InvalidJobRequest):
            await jobs.update(job.id, file_priorities={9: 1})
        with pytest.raises(InvalidJobRequest):
            await jobs.update(job.id, download_limit=-1)
        job = await jobs.update(job.id, sequential=True, download_limit=1000)
        assert job.options.sequential and job.options.download_limit == 1000


async def test_a_jobs_limit_turned_off_keeps_its_value_across_a_restart(tmp_path: Path) -> None:
    async with service(tmp_path) as jobs:
        job, _ = await jobs.add(magnet("c"), paused=True)
        await jobs.update(job.id, download_limit=50_000, upload_limit=20_000)
        job = await jobs.update(job.id, download_limit=0)
        assert (job.options.download_limit, job.options.kept_download_limit) == (0, 50_000)
        assert (job.options.upload_limit, job.options.kept_upload_limit) == (20_000, 0)
        job = await jobs.update(job.id, download_limit=0)  # (off again: still kept)
        assert job.options.kept_download_limit == 50_000
    async with service(tmp_path) as jobs:
        assert jobs.get(job.id).options.kept_download_limit == 50_000
        job = await jobs.update(job.id, download_limit=60_000)
        assert (job.options.download_limit, job.options.kept_download_limit) == (60_000, 0)
        # a value given to keep: taken where the limit is off after the change, and only there
        job = await jobs.update(job.id, download_limit=0, kept_download_limit=30_000)
        assert (job.options.download_limit, job.options.kept_download_limit) == (0, 30_000)
        job = await jobs.update(job.id, kept_upload_limit=10_000)  # (on: nothing kept)
        assert (job.options.upload_limit, job.options.kept_upload_limit) == (20_000, 0)
        job = await jobs.update(job.id, kept_download_limit=40_000)  # (off: the value kept changes)
        assert (job.options.download_limit, job.options.kept_download_limit) == (0, 40_000)
        with pytest.raises(InvalidJobRequest, match="kept_upload_limit"):
            await jobs.update(job.id, kept_upload_limit=-1)
        assert jobs.get(job.id).options.kept_download_limit == 40_000


async def test_unknown_ids_and_conflicts(tmp_path: Path) -> None:
    async with service(tmp_path) as jobs:
        with pytest.raises(JobNotFound):
            jobs.get("0" * 16)
        job, _ = await jobs.add(magnet("a"), paused=True)
        assert job.state is JobState.PAUSED
        job = await jobs.resume(job.id)
        assert job.state is JobState.FETCHING_METADATA
        job = await jobs.pause(job.id)
        assert job.state is JobState.PAUSED
        job = await jobs.cancel(job.id)
        assert job.state is JobState.CANCELLED and job.result is not None
        for action in (jobs.resume, jobs.pause, jobs.recheck):
            with pytest.raises(JobConflict):
                await action(job.id)
        assert (await jobs.cancel(job.id)).state is JobState.CANCELLED  # again: nothing changes
        again, created = await jobs.add(magnet("a"), paused=True)  # a new job for the same torrent
        assert created and again.id != job.id


async def test_history_is_pruned_by_age_with_the_clock(tmp_path: Path) -> None:
    clock = FakeClock()
    async with service(tmp_path, clock=clock, history_ttl=3600.0) as jobs:
        removed: list[str] = []
        jobs.events.subscribe("job.removed", lambda e: removed.append(e.job_id)
                              if isinstance(e, JobRemoved) else None)
        old, _ = await jobs.add(magnet("a"), paused=True)
        await jobs.cancel(old.id)
        clock.now += 1800
        young, _ = await jobs.add(magnet("b"), paused=True)
        await jobs.cancel(young.id)
        active, _ = await jobs.add(magnet("c"), paused=True)
        await jobs.tick()
        assert len(jobs.list()) == 3
        clock.now += 1801  # the first is now past an hour, the second is not
        await jobs.tick()
        assert [j.id for j in jobs.list()] == [active.id, young.id]
        await anyio.sleep(0.01)
        assert removed == [old.id]
        assert JobStore(tmp_path / "state").read(old.id) is None
        assert await jobs.clear_history() == 1
        assert [j.id for j in jobs.list()] == [active.id]
    async with service(tmp_path, clock=clock) as again:
        assert [j.id for j in again.list()] == [active.id]


async def test_a_history_kept_for_ever_is_never_pruned_and_the_tick_goes_on(tmp_path: Path) -> None:
    """``--history-ttl inf`` (argparse takes it) keeps the history: the tick, which prunes it,
    must not fail on an age that no finished job reaches (a failing tick ended the service)."""
    clock = FakeClock()
    async with service(tmp_path, clock=clock, history_ttl=float("inf")) as jobs:
        done, _ = await jobs.add(magnet("a"), paused=True)
        await jobs.cancel(done.id)
        clock.now += 10**9
        await jobs.tick()
        assert [j.id for j in jobs.list()] == [done.id]


async def test_leases_heartbeat_end_and_replace(tmp_path: Path) -> None:
    clock = FakeClock()
    async with service(tmp_path, clock=clock) as jobs:
        with pytest.raises(InvalidJobRequest):
            await jobs.open_lease(0)
        first = await jobs.open_lease(10)
        assert first.expires_at == clock.now + 10
        a, _ = await jobs.add(magnet("a"), client=first.id, paused=True)
        plain, _ = await jobs.add(magnet("b"), paused=True)
        clock.now += 8
        renewed = await jobs.heartbeat(first.id)
        assert renewed.expires_at == clock.now + 10
        clock.now += 8
        await jobs.tick()
        assert jobs.get(a.id).state is JobState.PAUSED  # renewed in time
        second = await jobs.open_lease(10, replaces=first.id)
        assert jobs.get(a.id).state is JobState.CANCELLED and jobs.get(a.id).error == CLIENT_SESSION_ENDED
        with pytest.raises(LeaseNotFound):
            await jobs.heartbeat(first.id)
        b, _ = await jobs.add(magnet("c"), client=second.id, paused=True)
        await jobs.end_lease(second.id)
        assert jobs.get(b.id).state is JobState.CANCELLED
        with pytest.raises(LeaseNotFound):
            await jobs.end_lease(second.id)
        third = await jobs.open_lease(5)
        c, _ = await jobs.add(magnet("d"), client=third.id, paused=True)
        clock.now += 6
        await jobs.tick()
        assert jobs.get(c.id).state is JobState.CANCELLED
        assert jobs.get(plain.id).state is JobState.PAUSED  # never touched by any lease


async def test_stats_counts_jobs_per_state(tmp_path: Path) -> None:
    async with service(tmp_path) as jobs:
        await jobs.add(magnet("a"), paused=True)
        stats = jobs.stats()
        assert stats.jobs["paused"] == 1 and stats.jobs["completed"] == 0
        assert stats.listen_port > 0
        assert stats.to_json()["jobs"] == stats.jobs


def counted(jobs: JobService) -> dict[str, int]:
    """Jobs per state, counted the long way (every job's snapshot)."""
    counts = dict.fromkeys((s.value for s in JobState), 0)
    for job in jobs.list():
        counts[job.state.value] += 1
    return counts


async def test_stats_keeps_the_history_counted_through_ends_forgets_and_a_restart(tmp_path: Path) -> None:
    # stats() walks the unfinished jobs only; the history's counts are kept as jobs end and go
    async with service(tmp_path) as jobs:
        ids = [(await jobs.add(magnet(c), paused=True))[0].id for c in "abcdef"]
        await jobs.cancel(ids[0])
        await jobs.cancel(ids[1])
        await jobs.cancel(ids[2])
        assert jobs.stats().jobs == counted(jobs) and jobs.stats().jobs["cancelled"] == 3
        await jobs.forget(ids[1])
        again, _ = await jobs.add(magnet("a"), paused=True)  # a torrent whose job ended: a new job
        await jobs.resume(ids[3])
        assert jobs.stats().jobs == counted(jobs)
        assert jobs.stats().jobs["cancelled"] == 2 and again.id not in ids
    async with service(tmp_path) as jobs:
        assert jobs.stats().jobs == counted(jobs)
        await jobs.clear_history()
        assert jobs.stats().jobs == counted(jobs) and jobs.stats().jobs["cancelled"] == 0


def three_files() -> Torrent:
    return make_torrent([(("a",), payload(1000)), (("b",), payload(2000)), (("c",), payload(3000))], 16384,
                        name="three")


async def test_a_clean_up_cut_short_by_a_crash_is_finished_at_the_next_start(tmp_path: Path) -> None:
    torrent = three_files()
    async with service(tmp_path) as jobs:
        job, _ = await jobs.add(torrent, save_path="x/y", paused=True)
        folder = tmp_path / "dl" / "x" / "y" / "three"
        folder.mkdir(parents=True)
        for name in "abc":
            (folder / name).write_bytes(b"partial")
        await jobs.cancel(job.id)  # files kept
    assert sorted(p.name for p in folder.iterdir()) == ["a", "b", "c"]
    store = JobStore(tmp_path / "state")
    data = json.loads(store.read(job.id) or b"null")
    data["delete_pending"] = True  # as if killed after saving the cancel, before deleting
    store.write(job.id, json.dumps(data).encode())
    async with service(tmp_path) as again:
        assert again.get(job.id).state is JobState.CANCELLED
    assert tree(tmp_path / "dl") == []  # its files, its folder and the save path it made
    assert json.loads(store.read(job.id) or b"null")["delete_pending"] is False


async def test_cancel_racing_add_and_recheck_of_one_torrent(tmp_path: Path) -> None:
    torrent = three_files()
    async with service(tmp_path) as jobs:
        first, _ = await jobs.add(torrent, paused=True)
        results: dict[str, object] = {}

        async def run(name: str, coro: Awaitable[object]) -> None:
            try:
                results[name] = await coro
            except JobConflict as exc:
                results[name] = exc

        async with anyio.create_task_group() as tg:
            tg.start_soon(run, "recheck", jobs.recheck(first.id))
            tg.start_soon(run, "cancel", jobs.cancel(first.id))
            tg.start_soon(run, "add", jobs.add(torrent, paused=True))
        assert jobs.get(first.id).state is JobState.CANCELLED
        added = results["add"]
        assert isinstance(added, tuple)
        active = jobs.active()
        assert len(active) <= 1 and len(jobs.manager.sessions) == len(active)
        if active:  # the add came after the cancel: a new job with the one session
            assert active[0].id == added[0].id != first.id
            assert jobs.manager.get(torrent.info_hash) is not None


async def test_trackers_are_listed_before_their_first_announce(tmp_path: Path) -> None:
    tr = "http://127.0.0.1:9/announce"
    async with service(tmp_path) as jobs:
        job, _ = await jobs.add(f"magnet:?xt=urn:btih:{'e' * 40}&tr={tr}", paused=True)
        assert [(t.url, t.status) for t in job.trackers] == [(tr, "unknown")]
        assert job.to_json(detail=True)["trackers"] == [{"url": tr, "status": "unknown", "message": "",
                                                         "peers": 0, "tier": 0, "seeds": None,
                                                         "leechers": None,
                                                         "downloaded": None, "scrape_error": None,
                                                         "announced_at": None, "next_announce_at": None,
                                                         "min_announce_at": None, "failure": None,
                                                         "warning": "", "refusal": ""}]
        assert "trackers" not in job.to_json()
        assert job.to_json()["tracker_hosts"] == ["127.0.0.1"]  # (a list groups by it)


async def test_a_job_waiting_for_a_download_slot_is_queued(tmp_path: Path) -> None:
    config = cfg()
    config.max_active_downloads = 1
    one = make_torrent([(("a",), payload(5000))], 16384, name="one")
    two = make_torrent([(("b",), payload(5000))], 16384, name="two")
    async with JobService(config, download_root=tmp_path / "dl", state_dir=tmp_path / "state") as jobs:
        first, _ = await jobs.add(one)
        second, _ = await jobs.add(two)
        with anyio.fail_after(10):
            while jobs.get(first.id).state is not JobState.DOWNLOADING:
                await anyio.sleep(0.01)
        assert jobs.get(second.id).state is JobState.QUEUED
        await jobs.cancel(first.id)
        with anyio.fail_after(10):
            while jobs.get(second.id).state is not JobState.DOWNLOADING:
                await anyio.sleep(0.01)


async def test_the_configured_download_slots_are_the_job_queue_and_the_latest_change_wins(
        tmp_path: Path) -> None:
    """One queue: the configuration's download slots (``--max-active``) set the job queue that
    the API and the download-client dialects show and change; the manager queues nothing."""
    def configured(slots: int) -> JobService:
        config = dataclasses.replace(cfg(), max_active_downloads=slots)
        return JobService(config, download_root=tmp_path / "dl", state_dir=tmp_path / "state")

    def queue(jobs: JobService) -> tuple[bool, int, int, int]:
        s = jobs.get_settings()
        return s.queueing, s.max_active_downloads, s.max_active_uploads, s.max_active_torrents

    async with configured(2) as jobs:
        assert queue(jobs) == (True, 2, -1, -1)  # downloads held back; seeding never was
        await jobs.update_settings(max_active_downloads=4)  # the API
        assert await jobs.configure(download_limit=0, upload_limit=0, max_active_downloads=2) == []
        assert queue(jobs) == (True, 4, -1, -1)  # a reload that did not change the file: the API's stands
    async with configured(2) as jobs:  # a restart keeps the latest change
        assert queue(jobs) == (True, 4, -1, -1)
        await jobs.update_settings(max_active_uploads=3)
    async with configured(5) as jobs:  # the file changed: it applies; the API's other maxima stay
        assert queue(jobs) == (True, 5, 3, -1)
        assert await jobs.configure(download_limit=0, upload_limit=0, max_active_downloads=0) == [
            "max_active_downloads"]
        assert queue(jobs) == (True, -1, 3, -1)  # no download slots asked any more
    async with configured(0) as jobs:
        assert queue(jobs) == (True, -1, 3, -1)
    fresh = tmp_path / "fresh"
    async with JobService(cfg(), download_root=fresh / "dl", state_dir=fresh / "state") as jobs:
        assert queue(jobs) == (False, 3, 3, 5)  # none asked: the queue's defaults, off


async def test_stopping_the_service_stops_everything_and_saves(tmp_path: Path) -> None:
    before = len(asyncio.all_tasks())
    torrent = three_files()
    async with service(tmp_path) as jobs:
        job, _ = await jobs.add(torrent)
        paused, _ = await jobs.add(magnet("a"), paused=True)
        assert len(asyncio.all_tasks()) > before
    await anyio.sleep(0.05)
    assert len(asyncio.all_tasks()) == before
    assert jobs.manager.sessions == []
    with pytest.raises(JobConflict):
        await jobs.add(magnet("b"))
    records, _ = JobStore(tmp_path / "state").load_all()
    assert {r.id: r.state.value for r in records} == {job.id: "downloading", paused.id: "paused"}


async def test_a_tampered_record_never_reaches_outside_the_root(tmp_path: Path) -> None:
    torrent = three_files()
    outside = tmp_path / "outside"
    (outside / "three").mkdir(parents=True)
    for name in "abc":
        (outside / "three" / name).write_text("keep")
    async with service(tmp_path) as jobs:
        active, _ = await jobs.add(torrent, paused=True)
        gone, _ = await jobs.add(magnet("a"), paused=True)
        await jobs.cancel(gone.id)
    store = JobStore(tmp_path / "state")
    for job_id, extra in ((active.id, {}), (gone.id, {"delete_pending": True, "created_dirs": [str(outside)],
                                                       "file_paths": [["three", n] for n in "abc"]})):
        data = json.loads(store.read(job_id) or b"null")
        data["options"]["save_path"] = str(outside)
        data.update(extra)
        store.write(job_id, json.dumps(data).encode())
    store.close()
    async with service(tmp_path) as again:
        failed = again.get(active.id)
        assert failed.state is JobState.FAILED
        assert failed.error and "outside the download root" in failed.error
        assert again.manager.sessions == []
    assert sorted(p.name for p in (outside / "three").iterdir()) == ["a", "b", "c"]


async def test_a_state_folder_of_one_file_a_torrent_is_taken_in_and_its_jobs_go_on(tmp_path: Path) -> None:
    """A state folder from before the metainfo was kept in one database (``torrents/<hash>.torrent``
    each, no database): the next start takes the files in, and every job goes on from them."""
    one, two = (make_torrent([((n,), payload(5000, seed=i))], 16384, name=n)
                for i, n in enumerate(("one", "two")))
    async with service(tmp_path) as jobs:
        first, _ = await jobs.add(one, paused=True)
        second, _ = await jobs.add(two, paused=True)
    state = tmp_path / "state"
    (state / "torrents").mkdir(exist_ok=True)
    for t in (one, two):  # (the earlier layout: a .torrent and a .resume file each)
        (state / "torrents" / f"{t.info_hash.hex()}.torrent").write_bytes(t.to_bytes())
        resume = kept_resume(state, t.info_hash)
        assert resume is not None
        save_resume(state / "torrents" / f"{t.info_hash.hex()}.resume", resume)
    for name in ("torrents.sqlite3", "torrents.sqlite3-wal", "torrents.sqlite3-shm"):
        (state / name).unlink(missing_ok=True)
    async with service(tmp_path) as again:
        assert [again.get(j.id).state for j in (first, second)] == [JobState.PAUSED] * 2
        assert (await again.resume(first.id)).state is not JobState.PAUSED
        assert again.manager.get(one.info_hash) is not None
        meta = again.metainfo(second.id)
        assert meta is not None and meta.to_bytes() == two.to_bytes()
    assert list((state / "torrents").glob("*.torrent")) == []
    assert kept_hashes(state) == {one.info_hash.hex(), two.info_hash.hex()}


async def test_a_lost_record_stops_its_torrent_and_a_lost_metainfo_fails_only_its_job(tmp_path: Path) -> None:
    one, two, three = (make_torrent([((n,), payload(5000, seed=i))], 16384, name=n)
                       for i, n in enumerate(("one", "two", "three")))
    async with service(tmp_path) as jobs:
        lost, _ = await jobs.add(one, paused=True)
        no_meta, _ = await jobs.add(two, paused=True)
        fine, _ = await jobs.add(three, paused=True)
    state = tmp_path / "state"
    JobStore(state).write(lost.id, b"{")
    damage_kept(state, two.info_hash)
    async with service(tmp_path) as again:
        assert [f.rpartition(":")[2] for f, _ in again.lost] == [lost.id]
        assert again.manager.get(one.info_hash) is None  # no job: its torrent does not run
        assert one.info_hash.hex() not in kept_hashes(state)
        assert again.manager.sessions == []  # (paused jobs get a session when resumed)
        assert again.get(no_meta.id).state is JobState.PAUSED
        with pytest.raises(JobConflict, match="cannot be started"):
            await again.resume(no_meta.id)
        failed = again.get(no_meta.id)
        assert failed.state is JobState.FAILED and failed.error and "cannot be started" in failed.error
        assert (await again.resume(fine.id)).state is not JobState.PAUSED
        assert [s.info_hash for s in again.manager.sessions] == [three.info_hash]


async def test_idle_jobs_write_nothing_and_send_no_progress(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A paused job's counters do not move: the periodic save and job.progress skip it (they
    were what kept a daemon with many paused jobs busy)."""
    clock = FakeClock()
    async with service(tmp_path, clock=clock) as jobs:
        for c in "abc":
            await jobs.add(magnet(c), paused=True)
        writes: list[str] = []
        real_write = JobStore.write

        def counting(store: JobStore, job_id: str, data: bytes) -> None:
            writes.append(job_id)
            real_write(store, job_id, data)

        monkeypatch.setattr(JobStore, "write", counting)
        await anyio.sleep(1.2)  # each job's first progress event (its state as it is)
        progress: list[JobProgress] = []
        jobs.events.subscribe("job.progress", progress.append)
        for _ in range(4):
            clock.now += 10  # past the save interval each time
            await jobs.tick()
        await anyio.sleep(1.5)  # a few stats.update rounds of the paused sessions
        assert writes == [] and progress == []


async def test_a_jobs_rate_limits_reach_its_session(tmp_path: Path) -> None:
    async with service(tmp_path) as jobs:
        job, _ = await jobs.add(magnet("a"), paused=True)
        updated = await jobs.update(job.id, download_limit=300_000, upload_limit=100_000)
        assert (updated.options.download_limit, updated.options.upload_limit) == (300_000, 100_000)
        session = jobs.manager.get("a" * 40)
        assert session is not None
        assert (session.download_limit.rate, session.upload_limit.rate) == (300_000, 100_000)
        await jobs.update(job.id, download_limit=0)
        assert session.download_limit.unlimited and session.upload_limit.rate == 100_000


async def test_a_jobs_session_is_made_with_its_options_at_the_add_and_at_a_restart(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The job's record reaches its session as the session is made (its ``SessionSetup``),
    before it runs or meets a peer: file priorities, limits, connections, sequential mode and
    the first and last pieces of the wanted files first."""
    made: list[tuple[object, ...]] = []
    make = Session.__init__

    def noted(self: Session, *args: Any, **kw: Any) -> None:
        make(self, *args, **kw)
        made.append((self.file_priorities, self.download_limit.rate, self.upload_limit.rate, self.max_peers,
                     self.picker.sequential, self.picker.piece_priority(1)))

    monkeypatch.setattr(Session, "__init__", noted)
    torrent = make_torrent([(("a",), payload(20000, seed=1)), (("b",), payload(30000, seed=2))], 16384,
                           name="two")
    options = AddOptions(files=(1,), download_limit=30_000, upload_limit=20_000, max_peers=9, sequential=True,
                         features=JobFeatures(first_last_piece=True))
    told = ([0, 4], 30_000, 20_000, 9, True, TOP_PRIORITY)  # (piece 1: file b's first)
    async with service(tmp_path) as jobs:
        await jobs.add(torrent, options)
        assert made == [told]
    async with service(tmp_path):
        assert made == [told, told]


async def test_a_stuck_job_says_why_and_since_when(tmp_path: Path) -> None:
    """A magnet with no peer source at all: the job (and its progress events, and its JSON) say
    why it is stuck and since when, as the CLI does."""
    config = Config(listen_host="127.0.0.1", listen_port=0, dht_enabled=False, port_mapping=False,
                    lsd_enabled=False,
                    tracker_enabled=False, stall_after=0.3, stats_interval=0.1)
    progress: list[object] = []
    async with JobService(config, download_root=tmp_path / "dl", state_dir=tmp_path / "state") as jobs:
        jobs.events.subscribe("job.progress", progress.append)
        job, _ = await jobs.add(magnet("a"))
        with anyio.fail_after(20):
            while jobs.get(job.id).stall is None:
                await anyio.sleep(0.05)
        stuck = jobs.get(job.id)
        assert stuck.state is JobState.FETCHING_METADATA and stuck.error is None
        assert stuck.stall is not None and stuck.stall.reason == "no_peer_sources"
        assert "no peer sources" in stuck.stall.message
        assert stuck.created_at - 5 <= stuck.stall.since <= stuck.created_at + 10
        shown = stuck.to_json()["stall"]
        assert isinstance(shown, dict) and shown["reason"] == "no_peer_sources"
        with anyio.fail_after(10):
            while not any(e.job.stall is not None for e in progress):
                await anyio.sleep(0.05)


@pytest.mark.parametrize("listener", [False, True])
async def test_a_progress_nobody_listens_to_makes_no_view_of_the_job(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, listener: bool) -> None:
    """The news that would make a ``job.progress`` (here a stall) makes the job's view only if
    someone listens (a stream, a subscriber): a service embedded without one made up to four a
    second a downloading job for nobody."""
    made: list[str] = []
    snapshot = JobLifecycle.snapshot

    def counted(run: JobLifecycle, rec: JobRecord, **kw: Any) -> Job:
        if sys._getframe(1).f_code.co_name == "_progress":
            made.append(rec.id)
        return snapshot(run, rec, **kw)

    monkeypatch.setattr(JobLifecycle, "snapshot", counted)
    config = Config(listen_host="127.0.0.1", listen_port=0, dht_enabled=False, port_mapping=False,
                    lsd_enabled=False, tracker_enabled=False, stall_after=0.3, stats_interval=0.1)
    progress: list[JobProgress] = []
    async with JobService(config, download_root=tmp_path / "dl", state_dir=tmp_path / "state") as jobs:
        if listener:
            jobs.events.subscribe(JobProgress, progress.append)
        job, _ = await jobs.add(magnet("a"))
        with anyio.fail_after(20):
            while jobs.get(job.id).stall is None:
                await anyio.sleep(0.05)
        await anyio.sleep(0.3)
    if listener:
        assert made and any(e.job.stall is not None for e in progress)
    else:
        assert made == []


async def test_adding_an_active_torrent_elsewhere_or_with_other_files_is_refused(tmp_path: Path) -> None:
    torrent = make_torrent([(("a",), payload(1000)), (("b",), payload(2000))], 16384)
    async with service(tmp_path) as jobs:
        job, created = await jobs.add(torrent.to_bytes(), save_path="one", paused=True)
        assert created
        same, created = await jobs.add(torrent.to_bytes(), save_path="one")
        assert not created and same.id == job.id
        assert not (await jobs.add(torrent.to_bytes()))[1]  # (nothing asked: the job as it is)
        with pytest.raises(JobConflict) as info:
            await jobs.add(torrent.to_bytes(), save_path="two")
        assert info.value.field == "save_path" and job.id in str(info.value)
        with pytest.raises(JobConflict) as info:
            await jobs.add(torrent.to_bytes(), save_path="one", files=[1])
        assert info.value.field == "files"


async def test_paused_jobs_start_without_a_session_and_show_their_record(tmp_path: Path) -> None:
    """A restart takes paused jobs back without starting their sessions (10 000 of them took
    ~10 s); each shows what its record and resume data say, and gets its session when resumed."""
    data = payload(40000, seed=1) + payload(50000, seed=2)
    torrent = make_torrent([(("a.bin",), data[:40000]), (("b.bin",), data[40000:])], 16384, name="two")
    first = tmp_path / "dl" / torrent.files[0].path[0] / torrent.files[0].path[1]
    first.parent.mkdir(parents=True)
    first.write_bytes(data[:40000])  # the first file on disk, the second missing
    async with service(tmp_path) as jobs:
        job, _ = await jobs.add(torrent)
        with anyio.fail_after(15):
            while jobs.get(job.id).state is not JobState.DOWNLOADING:
                await anyio.sleep(0.02)
        before = await jobs.pause(job.id)
        pieces = jobs.piece_states(job.id)
        magnets = [(await jobs.add(magnet(c), paused=True))[0] for c in "abc"]
    assert 0 < before.done_size < before.total_size and pieces is not None and 2 in pieces and 0 in pieces
    async with service(tmp_path) as again:
        assert again.manager.sessions == []  # no job runs: none has a session
        shown = again.get(job.id)
        assert shown.state is JobState.PAUSED
        assert (shown.progress, shown.done_size, shown.total_size) == \
            (before.progress, before.done_size, before.total_size)
        assert [(f.path, f.progress, f.priority) for f in shown.files] == \
            [(f.path, f.progress, f.priority) for f in before.files]
        assert shown.files[0].progress > 0 and shown.files[1].progress < 1
        assert again.piece_states(job.id) == [2 if p == 2 else 0 for p in pieces]
        meta = again.metainfo(job.id)
        assert meta is not None and meta.info_hash == torrent.info_hash
        assert again.stats().jobs["paused"] == 4
        # a change to a paused job is kept in its record, and its session takes it when it starts
        await again.update(job.id, download_limit=1000, file_priorities={1: 0})
        assert again.manager.saved_resume(magnets[0].info_hash) is not None
        await again.cancel(magnets[0].id)  # its saved magnet state goes as a session's would
        assert again.manager.saved_resume(magnets[0].info_hash) is None
        assert again.manager.sessions == []
        resumed = await again.resume(job.id)
        session = again.manager.get(torrent.info_hash)
        assert session is not None and resumed.state is not JobState.PAUSED
        assert session.file_priorities[1] == 0
        assert [s.info_hash_hex for s in again.manager.sessions] == [torrent.info_hash.hex()]
        assert again.get(magnets[1].id).state is JobState.PAUSED  # the others stay without one
    async with service(tmp_path) as third:
        assert [s.info_hash_hex for s in third.manager.sessions] == [torrent.info_hash.hex()]
        assert third.get(job.id).options.download_limit == 1000


async def test_a_state_folder_of_json_records_migrates_once_keeping_jobs_history_and_settings(
        tmp_path: Path) -> None:
    """A state folder the JSON store wrote (one file per job, leases.json) comes up with every job,
    its history, leases, settings and categories; the second start does not migrate again."""
    state = tmp_path / "state"
    async with service(tmp_path) as jobs:  # the jobs and settings, made as a user would
        lease = await jobs.open_lease(3600)
        paused, _ = await jobs.add(magnet("a"), paused=True, client=lease.id)
        ended, _ = await jobs.add(magnet("b"), paused=True)
        await jobs.cancel(ended.id)
        await jobs.create_category("films", "films")
        await jobs.update_settings(download_limit=123_000, queueing=True)
        shown = {j.id: j for j in jobs.list()}
    # the same state folder as the JSON store kept it
    store = JobStore(state)
    records, _ = store.load_all()
    leases = store.load_leases()
    store.close()
    for name in ("jobs.sqlite3", "jobs.sqlite3-wal", "jobs.sqlite3-shm"):
        (state / name).unlink(missing_ok=True)
    (state / "jobs").mkdir()
    for rec in records:
        (state / "jobs" / f"{rec.id}.json").write_bytes(JobStore.encode(rec))
    (state / "leases.json").write_text(json.dumps({k: {"ttl": t, "expires_at": e}
                                                   for k, (t, e) in leases.items()}))
    async with service(tmp_path) as migrated:
        assert migrated.store.migrated == 2 and migrated.lost == []
        assert {j.id: (j.state, j.options, j.number) for j in migrated.list()} == \
            {i: (j.state, j.options, j.number) for i, j in shown.items()}
        assert [j.id for j in migrated.history()] == [ended.id]
        assert (await migrated.heartbeat(lease.id)).id == lease.id  # the lease came along
        settings = migrated.get_settings()
        assert settings.download_limit == 123_000 and settings.queueing
        assert [c.name for c in migrated.categories()] == ["films"]
    assert not (state / "jobs").exists() and (state / "jobs.json-migrated").is_dir()
    async with service(tmp_path) as again:
        assert again.store.migrated is None  # once only
        assert {j.id for j in again.list()} == set(shown)


async def test_the_global_rate_limits_have_one_owner_and_the_latest_change_wins(tmp_path: Path) -> None:
    """The configuration (flags, config file: at a start or a SIGHUP) and the API change the
    global limits through the same settings; the latest change is in force and kept by a restart."""
    def configured(down: int) -> JobService:
        config = dataclasses.replace(cfg(), download_rate_limit=down)
        return JobService(config, download_root=tmp_path / "dl", state_dir=tmp_path / "state")

    def in_force(jobs: JobService) -> tuple[int, int]:
        return jobs.get_settings().download_limit, jobs.manager.shared.download_limit.rate

    async with configured(1000) as jobs:
        assert in_force(jobs) == (1000, 1000)
        await jobs.update_settings(download_limit=2000)  # the API
        assert in_force(jobs) == (2000, 2000)
        # a reload, the file's limit unchanged
        assert await jobs.configure(download_limit=1000, upload_limit=0) == []
        assert in_force(jobs) == (2000, 2000)  # the API's change stands
        # the file changed
        assert await jobs.configure(download_limit=3000, upload_limit=0) == ["download_limit"]
        assert in_force(jobs) == (3000, 3000)
    async with configured(3000) as jobs:  # restarted with the file as reloaded
        assert in_force(jobs) == (3000, 3000)
        await jobs.update_settings(download_limit=4000)
    async with configured(3000) as jobs:  # the API's change was the latest
        assert in_force(jobs) == (4000, 4000)
    async with configured(5000) as jobs:  # the file was edited while the service was stopped
        assert in_force(jobs) == (5000, 5000)
        await jobs.update_settings(download_limit=0)  # no limit, from the API
    async with configured(5000) as jobs:
        assert in_force(jobs) == (0, 0)


async def test_jobs_the_queue_holds_back_at_a_start_get_no_session_until_their_slot(tmp_path: Path) -> None:
    """After a restart, a job the queue holds back is not started (no announce, no dial, no
    check) only to be paused: it waits dormant, shown queued, and starts with its slot."""
    torrents = [make_torrent([((f"{c}",), payload(5000, n))], 16384, name=f"q{c}")
                for n, c in enumerate("abc")]

    async with with_slots(tmp_path, 1) as jobs:
        ids = [(await jobs.add(t))[0].id for t in torrents]  # no peer: the first stays downloading
        assert [jobs.get(i).state for i in ids][1:] == [JobState.QUEUED, JobState.QUEUED]
    async with with_slots(tmp_path, 1) as jobs:
        with anyio.fail_after(10):  # (the first checks its files first)
            while jobs.get(ids[0]).state is not JobState.DOWNLOADING:
                await anyio.sleep(0.01)
        assert [jobs.get(i).state for i in ids][1:] == [JobState.QUEUED, JobState.QUEUED]
        assert [jobs.manager.get(t.info_hash) is not None for t in torrents] == [True, False, False]
        await jobs.pause(ids[2])
        assert jobs.get(ids[2]).state is JobState.PAUSED
        await jobs.resume(ids[2])
        assert jobs.get(ids[2]).state is JobState.QUEUED and jobs.manager.get(torrents[2].info_hash) is None
        await jobs.tick()
        assert jobs.manager.get(torrents[1].info_hash) is None  # still held: no session
        await jobs.cancel(ids[0])  # a slot frees: the next in the queue starts
        with anyio.fail_after(10):
            while jobs.get(ids[1]).state is not JobState.DOWNLOADING:
                await jobs.tick()
                await anyio.sleep(0.01)
        assert jobs.get(ids[2]).state is JobState.QUEUED and jobs.manager.get(torrents[2].info_hash) is None
        await jobs.set_features([ids[2]], force_start=True)  # past the queue: it starts
        with anyio.fail_after(10):
            while jobs.get(ids[2]).state is not JobState.DOWNLOADING:
                await anyio.sleep(0.01)


async def test_a_job_the_queue_holds_back_while_it_checks_is_not_left_paused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A job added while the download slots are full starts paused, and first checks the data
    it finds on disk. The queue passes over a job while it checks; it must still hold it as its
    own afterwards: the job, which nobody paused, shows queued, and runs once the queue lets it
    (here at once: its data is whole, and seeding is not limited), not stay paused for good."""
    first = make_torrent([(("a",), payload(5000, 1))], 16384, name="first")
    data = payload(4 * 1024 * 1024, 2)
    whole = make_torrent([(("b",), data)], 16384, name="whole")
    (tmp_path / "dl" / "whole").mkdir(parents=True)
    (tmp_path / "dl" / "whole" / "b").write_bytes(data)
    config = dataclasses.replace(cfg(), max_active_downloads=1, seed=True)
    checking, release = anyio.Event(), anyio.Event()
    recheck = Checker._recheck

    async def held_recheck(self: Checker, phase: Checking, *rest: Any) -> set[int]:  # (lasts until released)
        if phase.parts.torrent.name == "whole":
            checking.set()
            await release.wait()
        return await recheck(self, phase, *rest)

    monkeypatch.setattr(Checker, "_recheck", held_recheck)
    async with JobService(config, download_root=tmp_path / "dl", state_dir=tmp_path / "state") as jobs:
        running, _ = await jobs.add(first)  # (no peer: it stays downloading, holding the one slot)
        with anyio.fail_after(10):
            while jobs.get(running.id).state is not JobState.DOWNLOADING:
                await anyio.sleep(0.01)
        job, _ = await jobs.add(whole)
        session = jobs.manager.get(whole.info_hash)
        assert session is not None
        with anyio.fail_after(10):
            await checking.wait()
            assert session.state is State.CHECKING
            await jobs.enforce()  # (the tick's round, while it checks)
            release.set()
            while session.state is State.CHECKING:  # (after its check: held, or given its slot)
                await anyio.sleep(0.01)
        await jobs.tick()
        assert jobs.get(job.id).state is JobState.SEEDING and not jobs.get(job.id).options.paused


@pytest.mark.parametrize("action", ["recheck", "set_location"])
@pytest.mark.parametrize("waits", ["held", "paused"])
async def test_a_job_without_a_session_stays_paused_or_held_when_an_action_starts_one(
        tmp_path: Path, action: str, waits: str) -> None:
    """A job paused, or held back by the queue, when the service started has no session; a
    recheck or a move starts one, which must stay paused (a held job shows queued). It was
    restarted unpaused: a paused job downloaded, a held one ran until the queue's next round."""
    torrents = [make_torrent([((f"{c}",), payload(5000, n))], 16384, name=f"h{c}")
                for n, c in enumerate("ab")]

    async with with_slots(tmp_path, 1 if waits == "held" else 0) as jobs:
        ids = [(await jobs.add(t, paused=waits == "paused" and n == 1))[0].id for n, t in enumerate(torrents)]
    shown = JobState.QUEUED if waits == "held" else JobState.PAUSED
    async with with_slots(tmp_path, 1 if waits == "held" else 0) as jobs:
        assert jobs.manager.get(torrents[1].info_hash) is None and jobs.get(ids[1]).state is shown
        if action == "recheck":
            await jobs.recheck(ids[1])
        else:
            await jobs.set_location(ids[1], "moved")
        session = jobs.manager.get(torrents[1].info_hash)
        assert session is not None and session.paused
        with anyio.fail_after(10):  # (its check may still wait for its turn: queued, then checking)
            while session.state in (State.QUEUED, State.CHECKING):
                assert session.paused and jobs.get(ids[1]).state in (JobState.QUEUED, JobState.CHECKING)
                await anyio.sleep(0.01)
        await jobs.tick()
        assert session.paused and jobs.get(ids[1]).state is shown
        if waits == "paused":  # resumed (its session may not have started yet): it runs
            await jobs.resume(ids[1])
        else:  # a stream forces it past the queue
            assert await jobs.stream_session(ids[1]) is session
        await until_downloading(jobs, ids[1])
        assert jobs.get(ids[1]).state is JobState.DOWNLOADING and not session.paused


def misplaced_cross_seed(tmp_path: Path) -> tuple[Torrent, Path]:
    """A one-file torrent whose data is in the download root (``dl``), not where it is added."""
    data = payload(40_000, 7)
    torrent = make_torrent([(("x.bin",), data)], 16384, single=True, name="x.bin")
    root = tmp_path / "dl"
    root.mkdir()
    (root / "x.bin").write_bytes(data)
    return torrent, root


async def added_in_error(jobs: JobService, torrent: Torrent) -> Job:
    """``torrent`` added in seed mode at ``there``, where its files are not: stopped in error."""
    job, _ = await jobs.add(torrent, save_path="there", seed_mode=True)
    with anyio.fail_after(10):
        while jobs.get(job.id).state is not JobState.ERROR:
            await jobs.tick()
            await anyio.sleep(0.01)
    return job


async def test_a_move_to_where_the_files_are_starts_no_session_at_the_old_place(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cross-seed added in seed mode at the wrong folder stops: its files are missing. Moved
    to the folder that has them, it gets its session there alone. It started one at the old
    place first, which failed there again; heard while the move ran, that failure stopped the
    job at its new place once the move let go of it, in error with the old place's missing
    files (found by tests/fuzz/test_jobs_stateful.py)."""
    torrent, root = misplaced_cross_seed(tmp_path)
    async with service(tmp_path) as jobs:
        job = await added_in_error(jobs, torrent)
        started = sessions_started(monkeypatch)
        moved = await jobs.set_location(job.id, str(root))
        assert started == [root.resolve()]
        assert moved.options.save_path == str(root.resolve()) and moved.error is None
        await jobs.tick()
        now = jobs.get(job.id)
        assert now.state is JobState.PAUSED and now.error is None and now.missing_files == ()
    async with service(tmp_path) as jobs:  # (and so it was saved)
        again = jobs.get(job.id)
        assert again.state is JobState.PAUSED and again.error is None
        await jobs.resume(job.id)
        with anyio.fail_after(10):  # (complete: it seeds, and ends at once, the service seeding not)
            while (now := jobs.get(job.id)).state not in (JobState.SEEDING, JobState.COMPLETED):
                assert now.state is not JobState.ERROR, now.error
                await jobs.tick()
                await anyio.sleep(0.01)
        assert now.error is None and now.progress == 1.0


async def test_a_job_in_error_moved_shows_none_of_the_old_place_s_error_before_its_new_session_speaks(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A job stopped in error (its files missing) and moved to where they are: the move's answer
    and the job show neither the old place's error nor its missing files, paused (as it was
    stopped), though its new session has not yet said what it does (still queued: on a busy
    machine its first step comes after the move answers). It showed the old place's error."""
    torrent, root = misplaced_cross_seed(tmp_path)
    async with service(tmp_path) as jobs:
        job = await added_in_error(jobs, torrent)
        quiet = [True]  # (while set, every session says it is queued: none has taken its first step)
        said = Session.state
        monkeypatch.setattr(Session, "state", property(
            lambda s: State.QUEUED if quiet[0] else said.fget(s)))  # type: ignore[attr-defined]
        moved = await jobs.set_location(job.id, str(root))
        assert moved.error is None and moved.missing_files == () and moved.state is JobState.PAUSED
        assert jobs.get(job.id).error is None
        quiet[0] = False
        await jobs.tick()
        now = jobs.get(job.id)
        assert now.state is JobState.PAUSED and now.error is None
    async with service(tmp_path) as jobs:  # (and so it was saved)
        again = jobs.get(job.id)
        assert again.state is JobState.PAUSED and again.error is None and again.missing_files == ()


def _one_file_there(tmp_path: Path) -> tuple[bytes, Torrent, Path, Config]:
    """A one-file torrent's data, its torrent, the download root holding it in ``here``, and a
    seeding service's config."""
    data = payload(40_000, 5)
    torrent = make_torrent([(("w.bin",), data)], 16384, single=True, name="w.bin")
    root = tmp_path / "dl"
    (root / "here").mkdir(parents=True)
    (root / "here" / "w.bin").write_bytes(data)
    return data, torrent, root, dataclasses.replace(cfg(), seed=True)


async def test_a_recheck_of_a_job_paused_since_the_start_starts_one_session_that_hashes_its_data(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A job paused since the start, rechecked: one session, started without its resume data,
    hashes what is there (and stays paused). One started from its resume data came first, then
    was replaced."""
    data, torrent, root, seeding = _one_file_there(tmp_path)
    async with JobService(seeding, download_root=root, state_dir=tmp_path / "state") as jobs:
        job, _ = await jobs.add(torrent, save_path="here", seed_mode=True, paused=True)
    async with JobService(seeding, download_root=root, state_dir=tmp_path / "state") as jobs:
        assert jobs.manager.get(job.info_hash) is None
        started = sessions_started(monkeypatch)
        await jobs.recheck(job.id)
        assert started == [(root / "here").resolve()]
        with anyio.fail_after(10):
            while (now := jobs.get(job.id)).verified_pieces != torrent.num_pieces \
                    or now.state not in (JobState.PAUSED, JobState.SEEDING):
                await jobs.tick()
                await anyio.sleep(0.01)
        assert now.state is JobState.PAUSED
        assert not now.seed_mode and now.progress == 1.0 and started == [(root / "here").resolve()]


@pytest.mark.parametrize("damaged", [False, True])
async def test_a_recheck_of_a_dormant_seed_hashes_its_data_without_a_session(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damaged: bool) -> None:
    """A dormant seed (added in seed mode) rechecked: shown checking, its data hashed without a
    session (intake/checks.py, as an add's), its resume data not trusted; found whole it is a
    dormant seed again, no session started; found damaged, its session starts from what the
    check found and downloads the rest."""
    data, torrent, root, seeding = _one_file_there(tmp_path)
    async with JobService(seeding, download_root=root, state_dir=tmp_path / "state") as jobs:
        job, _ = await jobs.add(torrent, save_path="here", seed_mode=True)
        assert jobs.manager.get(job.info_hash) is None and jobs.get(job.id).state is JobState.SEEDING
        if damaged:  # (the second piece's first byte)
            with open(root / "here" / "w.bin", "r+b") as f:
                f.seek(16384)
                f.write(bytes([data[16384] ^ 0xFF]))
        started = sessions_started(monkeypatch)
        checked = jobs._run.checks.checked
        shown = (await jobs.recheck(job.id)).state
        assert shown is JobState.CHECKING and started == []
        with anyio.fail_after(10):
            while jobs._run.checks.checked == checked:
                await anyio.sleep(0.01)
            while (now := jobs.get(job.id)).state not in (JobState.SEEDING, JobState.DOWNLOADING):
                assert now.state in (JobState.CHECKING, JobState.QUEUED)  # (a session starting: queued)
                await anyio.sleep(0.01)
        assert not now.seed_mode
        resume = jobs.manager.saved_resume(torrent.info_hash)
        assert resume is not None
        if damaged:
            assert started == [(root / "here").resolve()] and now.state is JobState.DOWNLOADING
            assert len(resume.pieces()) == torrent.num_pieces - 1 and 1 not in resume.pieces()
        else:
            assert started == [] and jobs.manager.get(job.info_hash) is None
            assert now.state is JobState.SEEDING and now.progress == 1.0
            assert len(resume.pieces()) == torrent.num_pieces


async def test_a_failure_heard_of_a_session_the_job_no_longer_has_is_left_alone(tmp_path: Path) -> None:
    """A session's failure or end is acted on by a task that waits for the job's lock: when the
    job has another session by then (moved, rechecked), it is left to that one."""
    async with service(tmp_path) as jobs:
        job, _ = await jobs.add(make_torrent([(("z.bin",), payload(20_000, 3))], 16384, single=True,
                                             name="z.bin"), save_path="here")
        first = jobs.manager.get(job.info_hash)
        assert first is not None
        await jobs.set_location(job.id, "there")
        second = jobs.manager.get(job.info_hash)
        assert second is not None and second is not first
        rec = jobs._run.jobs.get(job.id)
        assert rec is not None
        for heard in (jobs._run.halt(rec, "gone", ["z.bin"], first),
                      jobs._run.end(rec, JobState.FAILED, "failed", first)):
            jobs._run.busy.add(rec.id)  # (as sync sets it before the task)
            await heard
            assert rec.id not in jobs._run.busy
            now = jobs.get(job.id)
            assert now.state is JobState.DOWNLOADING and now.error is None
            assert jobs.manager.get(job.info_hash) is second


@pytest.mark.parametrize("seed_mode", [False, True])
async def test_files_a_move_finds_at_the_new_place_are_kept_by_a_cancel_that_deletes(
        tmp_path: Path, seed_mode: bool) -> None:
    """A job moved to where some of its files are already (the user's: a cross-seed added at the
    wrong folder, then pointed at its data) found them there, as an add finds files at its save
    path: a cancel that deletes its files leaves them, and removes those it brought or wrote.
    Before, only what the add found was kept: the move's were deleted."""
    found, brought = payload(20_000, 8), payload(30_000, 9)
    torrent = make_torrent([(("found.bin",), found), (("brought.bin",), brought)], 16384, name="pack")
    root = tmp_path / "dl"
    (root / "pack").mkdir(parents=True)
    (root / "pack" / "found.bin").write_bytes(found)
    async with service(tmp_path) as jobs:
        job, _ = await jobs.add(torrent, save_path="there", paused=not seed_mode, seed_mode=seed_mode)
        # (written after the add, which found nothing there: the job's own, as if downloaded)
        (root / "there" / "pack").mkdir(parents=True, exist_ok=True)
        (root / "there" / "pack" / "brought.bin").write_bytes(brought)
        moved = await jobs.set_location(job.id, str(root))
        assert moved.options.save_path == str(root.resolve())
        assert (root / "pack" / "brought.bin").read_bytes() == brought
    async with service(tmp_path) as jobs:  # (what it found there is known across a restart)
        await jobs.cancel(job.id, delete_files=True)
    assert (root / "pack" / "found.bin").read_bytes() == found
    assert not (root / "pack" / "brought.bin").exists()


async def test_a_location_set_without_a_move_looks_for_the_data_there_and_leaves_the_old_place(
        tmp_path: Path) -> None:
    """``set_location(move=False)`` (Transmission's "find"): nothing moves. The job verifies what
    it finds at the new place (the user's copy: kept by a cancel that deletes its files), or
    downloads there when nothing is; its files at the old place stay as they are. A move would
    have refused the copy in its way."""
    data = payload(40_000, 11)
    torrent = make_torrent([(("x.bin",), data)], 16384, single=True, name="x.bin")
    root = tmp_path / "dl"
    for folder in ("old", "copy"):
        (root / folder).mkdir(parents=True)
    (root / "copy" / "x.bin").write_bytes(data)
    seeding = dataclasses.replace(cfg(), seed=True)  # (complete, it seeds on: it can be moved again)
    async with JobService(seeding, download_root=root, state_dir=tmp_path / "state") as jobs:
        job, _ = await jobs.add(torrent, save_path="old", paused=True)
        (root / "old" / "x.bin").write_bytes(data)  # (the job's own: written after its add)
        with pytest.raises(JobConflict):
            await jobs.set_location(job.id, str(root / "copy"))  # (a move: the copy is in its way)
        found = await jobs.set_location(job.id, str(root / "copy"), move=False)
        assert found.options.save_path == str((root / "copy").resolve())
        await jobs.resume(job.id)
        with anyio.fail_after(10):
            while jobs.get(job.id).state is not JobState.SEEDING:
                await jobs.tick()
                await anyio.sleep(0.01)
        assert (root / "old" / "x.bin").read_bytes() == data  # (left where it was)
        elsewhere = await jobs.set_location(job.id, str(root / "empty"), move=False)
        assert elsewhere.options.save_path == str((root / "empty").resolve())
        with anyio.fail_after(10):  # (nothing there: it has it all to download again)
            while (now := jobs.get(job.id)).state is not JobState.DOWNLOADING:
                await jobs.tick()
                await anyio.sleep(0.01)
        assert now.progress == 0.0 and (root / "copy" / "x.bin").read_bytes() == data
        back = await jobs.set_location(job.id, str(root / "copy"), move=False)
        assert back.options.save_path == str((root / "copy").resolve())
        await jobs.cancel(job.id, delete_files=True)
    assert (root / "copy" / "x.bin").read_bytes() == data  # (found there: the user's)
    assert (root / "old" / "x.bin").read_bytes() == data


async def test_a_job_without_a_session_is_moved_or_pointed_elsewhere_without_one_at_its_old_place(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """A job paused when the service started (no session) whose data the user moved, pointed
    at it (Transmission's "find"), and a dormant seed moved: each gets its session at the new
    place alone. One started at the old place first, which failed there for the missing files
    (a warning logged), and showed the paused job queued at the old place meanwhile."""
    data, other = payload(40_000, 11), payload(30_000, 12)
    torrent = make_torrent([(("x.bin",), data)], 16384, single=True, name="x.bin")
    seed = make_torrent([(("y.bin",), other)], 16384, single=True, name="y.bin")
    root = tmp_path / "dl"
    for folder, name, content in (("old", "x.bin", data), ("seeds", "y.bin", other)):
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / name).write_bytes(content)
    seeding = dataclasses.replace(cfg(), seed=True)
    async with JobService(seeding, download_root=root, state_dir=tmp_path / "state") as jobs:
        job, _ = await jobs.add(torrent, save_path="old")
        with anyio.fail_after(10):
            while jobs.get(job.id).state is not JobState.SEEDING:
                await jobs.tick()
                await anyio.sleep(0.01)
        await jobs.pause(job.id)
    (root / "new").mkdir()
    (root / "old" / "x.bin").rename(root / "new" / "x.bin")  # (the user moved it)
    async with JobService(seeding, download_root=root, state_dir=tmp_path / "state") as jobs:
        dormant, _ = await jobs.add(seed, save_path="seeds", seed_mode=True)
        assert jobs.manager.get(dormant.info_hash) is None and jobs.manager.get(job.info_hash) is None
        started = sessions_started(monkeypatch)
        shown: list[tuple[str, str]] = []
        jobs.events.subscribe("job.state", lambda e: shown.append((e.new.value, e.job.options.save_path)))
        found = await jobs.set_location(job.id, str(root / "new"), move=False)
        moved = await jobs.set_location(dormant.id, str(root / "seeds2"))
        assert started == [(root / "new").resolve(), (root / "seeds2").resolve()]
        assert found.state in (JobState.PAUSED, JobState.CHECKING) and moved.state is JobState.SEEDING
        with anyio.fail_after(10):
            while (now := jobs.get(job.id)).state is not JobState.PAUSED or \
                    jobs.get(dormant.id).state is not JobState.SEEDING:
                await anyio.sleep(0.01)
        assert all(where != str((root / "old").resolve()) for _, where in shown), shown
        assert now.error is None and now.verified_pieces == torrent.num_pieces
        assert (root / "seeds2" / "y.bin").read_bytes() == other
    assert not [r for r in caplog.records if r.levelname == "WARNING"], caplog.records


async def test_a_moved_or_rechecked_job_is_shown_as_it_was_or_checking_never_queued_meanwhile(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A job's new session (a move's, a recheck's) is queued until it has read its resume data
    and says what it does. The job is shown as it was meanwhile (a move: seeding, paused), or
    checking (a recheck hashes first, paused or not), never queued: a client polling then saw a
    seed or a paused torrent queued for a moment, as if the queue held it."""
    a_data, b_data = payload(40_000, 21), payload(30_000, 22)
    root = tmp_path / "dl"
    (root / "here").mkdir(parents=True)
    (root / "here" / "a.bin").write_bytes(a_data)
    (root / "here" / "b.bin").write_bytes(b_data)
    seeding = dataclasses.replace(cfg(), seed=True)
    async with JobService(seeding, download_root=root, state_dir=tmp_path / "state") as jobs:
        a, _ = await jobs.add(make_torrent([(("a.bin",), a_data)], 16384, single=True, name="a.bin"),
                              save_path="here")
        b, _ = await jobs.add(make_torrent([(("b.bin",), b_data)], 16384, single=True, name="b.bin"),
                              save_path="here")
        with anyio.fail_after(10):
            while {jobs.get(a.id).state, jobs.get(b.id).state} != {JobState.SEEDING}:
                await jobs.tick()
                await anyio.sleep(0.01)
        await jobs.pause(b.id)
        shown: list[tuple[str, str]] = []
        jobs.events.subscribe("job.state", lambda e: shown.append((e.job.name, e.new.value)))
        held = hold_checks(monkeypatch, first=True)
        held.names |= {"a.bin", "b.bin"}
        assert (await jobs.set_location(a.id, str(root / "there"))).state is JobState.SEEDING
        assert (await jobs.set_location(b.id, str(root / "there"))).state is JobState.PAUSED
        await jobs.tick()
        assert jobs.get(a.id).state is JobState.SEEDING and jobs.get(b.id).state is JobState.PAUSED
        assert jobs.manager.get(a.info_hash).state is State.QUEUED  # (its new session: held)
        assert (await jobs.recheck(a.id)).state is JobState.CHECKING
        assert (await jobs.recheck(b.id)).state is JobState.CHECKING
        await jobs.tick()
        assert jobs.get(a.id).state is JobState.CHECKING and jobs.get(b.id).state is JobState.CHECKING
        held.release.set()
        with anyio.fail_after(10):
            while jobs.get(a.id).state is not JobState.SEEDING or jobs.get(b.id).state is not JobState.PAUSED:
                await jobs.tick()
                await anyio.sleep(0.01)
        assert ("a.bin", "queued") not in shown and ("b.bin", "queued") not in shown, shown
        assert jobs.get(a.id).verified_pieces == 3 and jobs.get(b.id).verified_pieces == 2
    assert (root / "there" / "a.bin").read_bytes() == a_data


async def test_data_looked_for_at_a_new_place_is_verified_even_for_a_job_added_in_seed_mode(
        tmp_path: Path) -> None:
    """Seed mode takes the data it was added with as complete; what a location set without a
    move finds elsewhere is verified: a file of the right size but other bytes is not seeded."""
    data = payload(40_000, 12)
    torrent = make_torrent([(("x.bin",), data)], 16384, single=True, name="x.bin")
    root = tmp_path / "dl"
    (root / "other").mkdir(parents=True)
    (root / "other" / "x.bin").write_bytes(bytes(len(data)))  # (its size, not its data)
    seeding = dataclasses.replace(cfg(), seed=True)
    async with JobService(seeding, download_root=root, state_dir=tmp_path / "state") as jobs:
        job, _ = await jobs.add(torrent, save_path="there", seed_mode=True)
        with anyio.fail_after(10):  # (its files are not there)
            while jobs.get(job.id).state is not JobState.ERROR:
                await jobs.tick()
                await anyio.sleep(0.01)
        await jobs.set_location(job.id, str(root / "other"), move=False)
        await jobs.resume(job.id)
        with anyio.fail_after(10):
            while (now := jobs.get(job.id)).state is not JobState.DOWNLOADING:
                assert now.state is not JobState.SEEDING, now
                await jobs.tick()
                await anyio.sleep(0.01)
        assert now.progress == 0.0 and not now.options.seed_mode


async def test_a_stream_of_a_job_held_without_a_session_starts_it_past_the_queue(tmp_path: Path) -> None:
    torrents = [make_torrent([((f"{c}",), payload(5000, n))], 16384, name=f"s{c}")
                for n, c in enumerate("ab")]

    async with with_slots(tmp_path, 1) as jobs:
        ids = [(await jobs.add(t))[0].id for t in torrents]
    async with with_slots(tmp_path, 1) as jobs:
        assert jobs.manager.get(torrents[1].info_hash) is None
        session = await jobs.stream_session(ids[1])
        assert session is not None and jobs.get(ids[1]).features.force_start
        await until_downloading(jobs, ids[1])
        assert jobs.get(ids[1]).state is JobState.DOWNLOADING and not session.paused


@pytest.mark.parametrize("dormant", [False, True])
async def test_a_stream_of_a_paused_job_while_the_slots_are_full_starts_it_past_the_queue(
        tmp_path: Path, dormant: bool) -> None:
    """A stream resumes a paused job; when the queue would hold it back then, it is force-started
    as a queued one is (it was resumed, then held: the stream waited for a slot)."""
    torrents = [make_torrent([((f"{c}",), payload(5000, n))], 16384, name=f"p{c}")
                for n, c in enumerate("ab")]

    async with with_slots(tmp_path, 1) as jobs:
        ids = [(await jobs.add(t, paused=n == 1))[0].id for n, t in enumerate(torrents)]
        if not dormant:
            await run_stream(jobs, ids[1])
    if dormant:
        async with with_slots(tmp_path, 1) as jobs:
            assert jobs.manager.get(torrents[1].info_hash) is None
            await run_stream(jobs, ids[1])


async def run_stream(jobs: JobService, job_id: str) -> None:
    with anyio.fail_after(10):
        while jobs.list()[-1].state is not JobState.DOWNLOADING:  # (the first holds the slot)
            await anyio.sleep(0.01)
    session = await jobs.stream_session(job_id)
    assert session is not None
    with anyio.fail_after(10):
        while jobs.get(job_id).state is not JobState.DOWNLOADING:
            await jobs.tick()
            await anyio.sleep(0.01)
    await jobs.tick()
    assert jobs.get(job_id).state is JobState.DOWNLOADING and jobs.get(job_id).features.force_start


async def test_a_job_resumed_while_the_slots_are_full_waits_without_announcing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A paused job resumed while every download slot is taken waits queued: its session stays
    paused (it was resumed, announced and dialed, until the queue's next round paused it)."""
    started = swarms_started(monkeypatch)
    one, two = (make_torrent([((c,), payload(5000, n))], 16384, name=f"r{c}") for n, c in enumerate("ab"))
    async with with_slots(tmp_path, 1) as jobs:
        first, _ = await jobs.add(one)
        await until_downloading(jobs, first.id)
        second, _ = await jobs.add(two, paused=True)
        session = jobs.manager.get(two.info_hash)
        assert session is not None
        with anyio.fail_after(10):
            while session.state is not State.PAUSED:  # (its start-up check first)
                await anyio.sleep(0.01)
        assert (await jobs.resume(second.id)).state is JobState.QUEUED
        for _ in range(3):
            await jobs.tick()
            await anyio.sleep(0.05)
        assert jobs.get(second.id).state is JobState.QUEUED and session.state is State.PAUSED
        assert started == ["ra"] and not jobs.get(second.id).options.paused
        await jobs.cancel(first.id)  # its slot frees: the resumed job runs
        await until_downloading(jobs, second.id)
        assert started == ["ra", "rb"]


def _two_the_second_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefix: str
                            ) -> tuple[list[str], Torrent, Torrent, HeldChecks]:
    """Two torrents (``prefix`` a, ``prefix`` b), the second's folder holding data to check (none
    of it good); the swarms started from now on, and the checks held as named."""
    started = swarms_started(monkeypatch)
    before, job = (make_torrent([((c,), payload(5000, n))], 16384, name=f"{prefix}{c}")
                   for n, c in enumerate("ab"))
    held = hold_checks(monkeypatch)
    (tmp_path / "dl" / f"{prefix}b").mkdir(parents=True)
    (tmp_path / "dl" / f"{prefix}b" / "b").write_bytes(bytes(5000))  # (data to check, none of it good)
    return started, before, job, held


async def test_a_round_planned_while_a_job_checks_leaves_it_held_when_the_check_ends_before_the_round_does(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A round weighs the jobs whose data is not being checked; one whose check ends while that
    round goes on (here: the round waits for a turn of the loop once it has planned, as under
    load) is judged by the round its check's end asks for, not resumed by the round whose plan
    left it out (it ran, announced and dialed, though a job before it had meanwhile taken the
    slot)."""
    from torrent_engine.jobs.queueing import rounds
    from torrent_engine.jobs.queueing.queue import JobQueue

    started, before, job, held = _two_the_second_checked(tmp_path, monkeypatch, "p")
    async with with_slots(tmp_path, 1) as jobs:
        first, _ = await jobs.add(before, paused=True)  # (first in the queue, paused: no slot)
        held.names.add("pb")
        second, _ = await jobs.add(job)
        session = jobs.manager.get(job.info_hash)
        assert session is not None
        planned, in_round, go_on = anyio.Event(), anyio.Event(), anyio.Event()
        plan = JobQueue.plan

        def noted(self: JobQueue, *args: Any, **kwargs: Any) -> Any:
            planned.set()
            return plan(self, *args, **kwargs)

        class Waits(rounds.Turns):  # (its turns once it has planned: one, until go_on)
            async def take(self) -> None:
                if planned.is_set() and not go_on.is_set():
                    in_round.set()
                    await go_on.wait()

        with anyio.fail_after(10):
            await held.checking.wait()
            monkeypatch.setattr(JobQueue, "plan", noted)
            monkeypatch.setattr(rounds, "Turns", Waits)
            async with anyio.create_task_group() as tg:
                tg.start_soon(jobs.enforce)  # (planned now: the second job checks, the first is paused)
                await in_round.wait()
                held.release.set()
                while session.state is State.CHECKING:
                    await anyio.sleep(0.01)
                tg.start_soon(jobs.resume, first.id)  # (the slot is the first job's from now on)
                await anyio.sleep(0.1)
                go_on.set()
            await until_downloading(jobs, first.id)
        assert jobs.get(second.id).state is JobState.QUEUED and session.state is State.PAUSED
        assert started == ["pa"]


@pytest.mark.parametrize("how", ["added", "rechecked"])
async def test_a_job_the_queue_holds_once_its_check_ends_does_not_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    """The queue passes over a job while its data is checked, and judges it once the check
    ends; if it holds it then, the job must not run at all (it announced and dialed until the
    queue's next round paused it). Here the slot goes meanwhile to a job before it in the queue."""
    started, before, job, held = _two_the_second_checked(tmp_path, monkeypatch, "c")
    async with with_slots(tmp_path, 1) as jobs:
        first, _ = await jobs.add(before, paused=True)  # (first in the queue, paused: no slot)
        if how == "added":
            held.names.add("cb")
            second, _ = await jobs.add(job)  # (a slot is free: it checks, then would run)
        else:
            second, _ = await jobs.add(job)
            await until_downloading(jobs, second.id)
            assert started == ["cb"]
            started.clear()
            held.names.add("cb")
            await jobs.recheck(second.id)
        session = jobs.manager.get(job.info_hash)
        assert session is not None
        with anyio.fail_after(10):
            await held.checking.wait()
            assert session.state is State.CHECKING
            await jobs.resume(first.id)  # (the slot goes to the job before it in the queue)
            await until_downloading(jobs, first.id)
            assert session.state is State.CHECKING
            held.release.set()
            while session.state is State.CHECKING:
                await anyio.sleep(0.01)
        await anyio.sleep(0.1)
        await jobs.tick()
        assert jobs.get(second.id).state is JobState.QUEUED and session.state is State.PAUSED
        assert started == ["ca"]
        await jobs.pause(first.id)  # its slot frees: the job held after its check runs
        await until_downloading(jobs, second.id)
        assert started == ["ca", "cb"]


def checked_before_the_add_returns(monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on the manager's ``add`` returns once the new session's start-up check is over
    (a small torrent's check is often over that soon): the check's end then comes while the job
    is still being restarted, and no news of it reaches the queue."""
    add = TorrentManager.add

    async def add_checked(self: TorrentManager, *args: Any, **kw: Any) -> Session:
        session = await add(self, *args, **kw)
        await session.wait_ready()
        return session

    monkeypatch.setattr(TorrentManager, "add", add_checked)


@pytest.mark.parametrize("action", ["recheck", "set_location"])
async def test_a_job_restarted_by_an_action_runs_in_its_slot_without_waiting_for_a_tick(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, action: str) -> None:
    """A recheck or a move restarts the job's session paused (the queue judges it once it is
    checked); once the action returns, the queue has had its word: a job with a slot runs. A
    move left it queued until the service's next tick."""
    torrent = make_torrent([(("m",), payload(5000, 3))], 16384, name="m")
    jobs = with_slots(tmp_path, 1)
    # (no tick comes during the test: the ticker waits for the next beat of its period on the loop's
    # clock, and one of 3600 s came whenever that clock passed a whole hour, within the test too)
    jobs.tick_interval = math.inf
    async with jobs:
        job, _ = await jobs.add(torrent)
        with anyio.fail_after(10):
            while jobs.get(job.id).state is not JobState.DOWNLOADING:
                await anyio.sleep(0.01)
        checked_before_the_add_returns(monkeypatch)
        if action == "recheck":
            await jobs.recheck(job.id)
        else:
            await jobs.set_location(job.id, "moved")
        session = jobs.manager.get(torrent.info_hash)
        assert session is not None and session.state is State.DOWNLOADING
        assert jobs.get(job.id).state is JobState.DOWNLOADING


async def test_a_job_the_queue_holds_once_reloaded_and_checked_does_not_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """At a start the queue judges the jobs from their records, and a job whose record says it
    is complete takes no download slot; a job it lets run is reloaded by the manager. If that
    job's data turns out incomplete once checked (here its file was deleted while the service
    was stopped, and its resume data, which would have said the file is missing), it is a
    download before the others in the queue, and the job after it must wait without running:
    it was reloaded running, and announced and dialed until the queue's first round paused it."""
    data = payload(5000, 4)
    first, second = make_torrent([(("a",), data)], 16384, name="pa"), \
        make_torrent([(("b",), payload(5000, 5))], 16384, name="pb")
    (tmp_path / "dl" / "pa").mkdir(parents=True)
    (tmp_path / "dl" / "pa" / "a").write_bytes(data)
    config = dataclasses.replace(cfg(), max_active_downloads=1, seed=True)

    def service_with_a_slot() -> JobService:
        return JobService(config, download_root=tmp_path / "dl", state_dir=tmp_path / "state")

    async with service_with_a_slot() as jobs:
        complete, _ = await jobs.add(first)  # (its data is whole: it seeds, taking no download slot)
        job, _ = await jobs.add(second)  # (no peer: it stays downloading, in the one slot)
        with anyio.fail_after(10):
            while (jobs.get(complete.id).state, jobs.get(job.id).state) != (JobState.SEEDING,
                                                                            JobState.DOWNLOADING):
                await jobs.tick()
                await anyio.sleep(0.01)
    (tmp_path / "dl" / "pa" / "a").unlink()
    forget_resume(tmp_path / "state", first.info_hash)
    started = swarms_started(monkeypatch)
    async with service_with_a_slot() as jobs:
        await until_downloading(jobs, complete.id)  # (first in the queue: the slot is its own now)
        for _ in range(3):
            await jobs.tick()
            await anyio.sleep(0.05)
        session = jobs.manager.get(second.info_hash)
        assert session is not None and session.state is State.PAUSED
        assert jobs.get(job.id).state is JobState.QUEUED and started == ["pa"]
        await jobs.cancel(complete.id)  # its slot frees: the job after it runs
        await until_downloading(jobs, job.id)
        assert started == ["pa", "pb"]


async def test_a_round_of_the_queue_does_not_pause_a_job_on_what_it_read_before_another_round_resumed_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A round of the queue reads the jobs, then acts on them one by one, waiting on each pause
    and resume. A job still unchecked when read counts as a download; if its check ends while
    the round waits, and the round its check's end sets off gives it its slot (a seed) and
    resumes it, the first round must not pause it on what it read: it was left paused and held
    until the service's next tick (at a start, rounds set off by many checks paused and resumed
    seeds in turn, each time announcing to their trackers)."""
    downloads = [make_torrent([((c,), payload(5000, n))], 16384, name=f"d{c}") for n, c in enumerate("ap")]
    data = payload(5000, 7)
    seed = make_torrent([(("x",), data)], 16384, name="sx")
    (tmp_path / "dl" / "sx").mkdir(parents=True)
    (tmp_path / "dl" / "sx" / "x").write_bytes(data)  # (complete: once checked, it seeds)
    gate = anyio.Event()
    check = Checker.check

    async def gated_check(self: Checker, phase: Checking) -> None:  # (the seed's check waits)
        if phase.parts.torrent.name == "sx":
            await gate.wait()
        await check(self, phase)

    monkeypatch.setattr(Checker, "check", gated_check)
    jobs = JobService(dataclasses.replace(cfg(), max_active_downloads=2, seed=True),
                      download_root=tmp_path / "dl", state_dir=tmp_path / "state")
    # (no tick comes during the test: the ticker waits for the next beat of its period on the loop's
    # clock, and one of 3600 s came whenever that clock passed a whole hour, within the test too)
    jobs.tick_interval = math.inf
    async with jobs:
        first, _ = await jobs.add(downloads[0])
        second, _ = await jobs.add(downloads[1])
        await until_downloading(jobs, second.id)  # (two slots: both run)
        held, _ = await jobs.add(seed)  # (after them in the queue: held, its check waiting)
        session = jobs.manager.get(seed.info_hash)
        assert session is not None and session.state is State.QUEUED
        assert jobs.get(held.id).state is JobState.QUEUED
        pause = Session.pause

        async def slow_pause(self: Session) -> None:  # (the round's pause of the second job waits
            if self.name == "dp" and not gate.is_set():  # while the seed is checked, and a round
                gate.set()  # set off by its check's end has had its turn)
                with anyio.fail_after(10):
                    while session.state in (State.QUEUED, State.CHECKING):
                        await anyio.sleep(0.01)
                await anyio.sleep(0.2)
            await pause(self)

        monkeypatch.setattr(Session, "pause", slow_pause)
        await jobs.update_settings(max_active_downloads=1)  # (the second job loses its slot)
        with anyio.fail_after(5):
            while jobs.get(held.id).state is not JobState.SEEDING:
                await anyio.sleep(0.01)
        await anyio.sleep(0.2)
        assert jobs.get(held.id).state is JobState.SEEDING and session.state is State.SEEDING
        assert jobs.get(second.id).state is JobState.QUEUED


async def test_a_torrent_saved_without_a_job_is_not_started_at_a_restart(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The jobs' records say which torrents run: one whose record was lost (or that a crash left
    saved after its job ended) is never started again at a restart (it announced to its trackers
    and checked its data before it was stopped), and its saved metainfo and resume data go."""
    one, two = (make_torrent([((n,), payload(5000, seed=i))], 16384, name=n)
                for i, n in enumerate(("one", "two")))
    async with service(tmp_path) as jobs:
        lost, _ = await jobs.add(one)
        kept, _ = await jobs.add(two)
        with anyio.fail_after(10):
            while jobs.get(lost.id).state is not JobState.DOWNLOADING:
                await anyio.sleep(0.01)
    state = tmp_path / "state"
    JobStore(state).write(lost.id, b"{")
    started = swarms_started(monkeypatch)
    async with service(tmp_path) as again:
        assert again.manager.get(one.info_hash) is None
        await until_downloading(again, kept.id)
        assert started == ["two"]
    assert not (state / "torrents").exists()  # (no file: rows)
    assert kept_hashes(state) == {two.info_hash.hex()}
    assert kept_resume(state, one.info_hash) is None and kept_resume(state, two.info_hash) is not None


async def test_a_skipped_file_streamed_is_wanted_by_its_job_and_stays_so_after_a_restart(
        tmp_path: Path) -> None:
    """Reading a file the job skips means downloading it: the session wants it at once, and the
    job's record says so as soon as it hears the session's news (its view and its total show the
    file wanted), and a restart keeps it wanted."""
    torrent = make_torrent([(("a",), payload(20000, seed=1)), (("b",), payload(30000, seed=2))], 16384,
                           name="two")
    async with service(tmp_path) as jobs:
        job, _ = await jobs.add(torrent, files=[0])
        assert [f.priority for f in jobs.get(job.id).files] == [4, 0]
        session = await jobs.stream_session(job.id)
        assert session is not None
        with anyio.fail_after(10):
            reader = await session.open_file(1).open()
            assert session.file_priorities == [4, 4]  # (the session wants it at once ...)
            await reader.aclose()
            while [f.priority for f in jobs.get(job.id).files] != [4, 4]:  # (... and says so: the job
                await anyio.sleep(0.01)  # records it as it hears it, session.file_wanted)
        assert jobs.get(job.id).total_size == 50000
    async with service(tmp_path) as again:
        assert [f.priority for f in again.get(job.id).files] == [4, 4]
        session = again.manager.get(torrent.info_hash)
        assert session is not None
        with anyio.fail_after(10):
            while not session.has_metadata or session.file_priorities != [4, 4]:
                await anyio.sleep(0.02)


async def test_a_restart_wants_the_files_the_job_wants_whatever_the_resume_data_says(tmp_path: Path) -> None:
    """The job's record owns its file priorities: a file wanted again (``update``, saved at once)
    is wanted after a restart even when the resume data, written later by the session, still
    skips it (a crash came in between)."""
    torrent = make_torrent([(("a",), payload(20000, seed=1)), (("b",), payload(30000, seed=2))], 16384,
                           name="two")
    async with service(tmp_path) as jobs:
        job, _ = await jobs.add(torrent, files=[0])
        await jobs.update(job.id, file_priorities={1: 4})
    resume = kept_resume(tmp_path / "state", torrent.info_hash)
    assert resume is not None
    resume.file_priorities = [4, 0]  # (as the session had saved it before the change)
    keep_resume(tmp_path / "state", resume)
    async with service(tmp_path) as again:
        session = again.manager.get(torrent.info_hash)
        assert session is not None
        with anyio.fail_after(10):
            await session.wait_ready()
        assert session.file_priorities == [4, 4] and again.get(job.id).total_size == 50000


async def test_one_queue_the_jobs_and_none_in_the_manager(tmp_path: Path) -> None:
    """The configuration's download slots are the job queue's: the job it holds back shows
    queued, and the service's manager holds no session back of its own (a second queue would
    start or hold sessions the jobs' queue did not decide)."""
    one, two = (make_torrent([((c,), payload(5000, n))], 16384, name=f"q{c}") for n, c in enumerate("ab"))
    async with with_slots(tmp_path, 1) as jobs:
        first, _ = await jobs.add(one)
        await until_downloading(jobs, first.id)
        second, _ = await jobs.add(two)
        await jobs.enforce()
        assert jobs.get(second.id).state is JobState.QUEUED and jobs.queue_order() == [first.id, second.id]
        held = jobs.manager.get(two.info_hash)  # (the job queue holds it back: paused)
        assert held is not None and held.paused
        await jobs.cancel(first.id)
        await until_downloading(jobs, second.id)


async def test_a_change_of_many_jobs_is_made_together_with_one_round_of_the_queue(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``each`` (the dialects' and the bulk route's pause, resume, recheck of many): the jobs are
    changed a few dozen at a time, their records written in fewer transactions than jobs, and
    the queue's rounds each change asks for are one, after all of them (a round a job, each
    walking the awake jobs, made a pause of ten thousand take seconds); a job the change does not
    fit is returned with its error, the others are changed."""
    from tests.spies import queue_rounds, records_written

    commits = records_written(monkeypatch)
    async with service(tmp_path) as jobs:
        ids = []
        for i in range(20):
            torrent = make_torrent([((f"m{i}.bin",), payload(20_000, i))], 16384, single=True,
                                   name=f"m{i}.bin")
            ids.append((await jobs.add(torrent, save_path="here"))[0].id)
        rounds = queue_rounds(monkeypatch)
        commits.clear()
        failed = await jobs.each([*ids, "0123456789abcdef"], jobs.pause)
        assert list(failed) == ["0123456789abcdef"] and isinstance(failed["0123456789abcdef"], JobNotFound)
        assert all(jobs.get(i).state is JobState.PAUSED for i in ids)
        assert 1 <= len(rounds) <= 2  # (the one after the pauses; the service's tick may fall in between)
        assert sum(commits) >= len(ids) and len(commits) < len(ids)


async def test_a_change_of_many_that_cannot_be_saved_stops_and_is_raised_as_itself(tmp_path: Path) -> None:
    """A change of many whose record cannot be written (``StateNotSaved``) stops the rest and is
    raised as a single change's is (the API answers 507), not as a group of errors."""
    from torrent_engine.jobs.model import StateNotSaved

    async with service(tmp_path) as jobs:
        made: list[str] = []

        async def change(job_id: str) -> None:
            if job_id == "b":
                raise StateNotSaved("the state folder is full", str(tmp_path), full=True)
            made.append(job_id)

        with pytest.raises(StateNotSaved, match="full"):
            await jobs.each(["a", "b", "c"], change)
        assert "b" not in made


async def test_a_task_started_while_rounds_are_held_has_its_own_once_they_are_not(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A task started under ``one_round_after`` (a session's watcher, a stop soon) inherits its
    context: a round it asks for after the changes are over is made, not held for ever."""
    from tests.spies import queue_rounds

    theirs = queue_rounds(monkeypatch)  # (the tasks they were made in: the service's tick makes others)
    async with service(tmp_path) as jobs:
        go, done = anyio.Event(), anyio.Event()
        seen: list[int] = []

        async def later() -> None:
            me = anyio.get_current_task().id
            await jobs._rounds.enforce()  # (held: the changes are under way)
            seen.append(theirs.count(me))
            await go.wait()
            await jobs._rounds.enforce()
            seen.append(theirs.count(me))
            done.set()

        assert jobs._run.tg is not None
        async with jobs._rounds.one_round_after():
            jobs._run.tg.start_soon(later)
            await anyio.sleep(0.05)
        go.set()
        with anyio.fail_after(5):
            await done.wait()
        assert seen == [0, 1]


async def test_jobs_cancelled_together_do_not_rank_the_queue_again_each(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A finished job has no place in the queue: its view does not look its rank up, which would
    rank every job again after each end (a removal of ten thousand: O(n²))."""
    from torrent_engine.jobs.queueing.queue import JobQueue

    async with service(tmp_path) as jobs:
        ids = []
        for i in range(20):
            torrent = make_torrent([((f"c{i}.bin",), payload(20_000, i))], 16384, single=True,
                                   name=f"c{i}.bin")
            ids.append((await jobs.add(torrent, save_path="here", paused=True))[0].id)
        ranked = [0]
        real = JobQueue.rerank

        def counted(self: JobQueue) -> None:
            ranked[0] += 1
            real(self)

        monkeypatch.setattr(JobQueue, "rerank", counted)
        assert await jobs.each(ids, jobs.cancel) == {}
        assert all(jobs.get(i).state is JobState.CANCELLED for i in ids)
        assert ranked[0] <= 3, ranked  # (the round after them, a tick's: not one a job)
