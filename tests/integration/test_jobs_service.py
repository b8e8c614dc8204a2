"""JobService over real loopback swarms: add to completion, single flight, cancel clean-up, leases,
restart from the state directory."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import anyio.abc
import pytest

from tests.spies import hold_checks, swarms_started
from torrent_engine.events import Event
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.jobs import (
    CLIENT_SESSION_ENDED,
    FINISHED_STATES,
    Job,
    JobProgress,
    JobService,
    JobState,
    JobStateChanged,
)
from torrent_engine.jobs.store import JobStore
from torrent_engine.session import Session
from torrent_engine.session.state_table import State
from torrent_engine.storage.resume import ResumeData

from .helpers import loopback_config, make_payload, make_torrent, same_files

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def seeder(root: Path, *, rate: int = 0, files: list[tuple[str, int]] | None = None,
                 name: str = "payload") -> AsyncIterator[tuple[Session, Torrent, Path]]:
    payload = make_payload(root, files, name=name) if files is not None else make_payload(root, name=name)
    torrent = make_torrent(payload, piece_length=16 * 1024)
    async with Session(torrent, root, config=loopback_config(upload_rate_limit=rate)) as seed:
        await seed.wait_ready()
        yield seed, torrent, root


def service(tmp_path: Path, **kw: object) -> JobService:
    return JobService(loopback_config(seed=False), download_root=tmp_path / "downloads",
                      state_dir=tmp_path / "state", **kw)  # type: ignore[arg-type]


async def wait_state(jobs: JobService, job_id: str, *states: JobState, timeout: float = 60) -> Job:
    with anyio.fail_after(timeout):
        while True:
            job = jobs.get(job_id)
            if job.state in states:
                return job
            await anyio.sleep(0.05)


async def test_add_runs_to_completed_through_events(tmp_path: Path) -> None:
    # (the seeder's rate keeps the download going a while: an unlimited one on a loaded machine
    # could finish it before the job was seen downloading)
    async with seeder(tmp_path / "seed", rate=1_000_000) as (seed, torrent, src), service(tmp_path) as jobs:
        seen: list[Event] = []
        jobs.events.subscribe("*", seen.append)
        job, created = await jobs.add(torrent.to_bytes(), save_path="one",
                                      peers=[("127.0.0.1", seed.listen_port)])
        assert created and job.name == torrent.name and job.info_hash == torrent.info_hash.hex()
        done = await wait_state(jobs, job.id, *FINISHED_STATES)
        assert done.state is JobState.COMPLETED, done.error
        assert done.progress == 1.0 and done.completed_at is not None
        assert done.result is not None and done.result.error is None
        assert done.result.downloaded >= torrent.payload_size
        assert not same_files(torrent, src, tmp_path / "downloads" / "one")
        await anyio.sleep(0.05)
        news = [e.name for e in seen if e.name.startswith("job.")]  # (the service's stats: each second)
        assert news[0] == "job.added"  # before any news of its state
        states = [(e.old, e.new) for e in seen if isinstance(e, JobStateChanged)]
        assert states[-1][1] is JobState.COMPLETED
        assert JobState.DOWNLOADING in [new for _old, new in states]
        assert [j.id for j in jobs.history()] == [job.id] and jobs.active() == []


async def test_concurrent_adds_of_one_torrent_give_one_job(tmp_path: Path) -> None:
    async with seeder(tmp_path / "seed", rate=200_000) as (seed, torrent, _src), service(tmp_path) as jobs:
        magnet = f"magnet:?xt=urn:btih:{torrent.info_hash.hex()}&x.pe=127.0.0.1:{seed.listen_port}"
        results: list[tuple[Job, bool]] = []

        async def add(source: str | bytes) -> None:
            results.append(await jobs.add(source))

        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(add, magnet)
            tg.start_soon(add, torrent.to_bytes())
        assert sorted(created for _job, created in results) == [False, False, False, True]
        assert len({job.id for job, _created in results}) == 1
        assert len(jobs.list()) == 1 and len(jobs.manager.sessions) == 1


async def test_cancel_with_delete_files_removes_only_what_the_job_made(tmp_path: Path) -> None:
    files = [("big.bin", 2_000_000), ("sub/small.bin", 70_000)]
    async with seeder(tmp_path / "seed", rate=300_000, files=files) as (seed, torrent, _src), \
            service(tmp_path) as jobs:
        shared = tmp_path / "downloads" / "shared"
        shared.mkdir(parents=True)
        (shared / "mine.txt").write_text("not the torrent's")
        peer = [("127.0.0.1", seed.listen_port)]
        in_shared, _ = await jobs.add(torrent.to_bytes(), save_path="shared", peers=peer)
        await wait_downloading(jobs, in_shared.id)
        cancelled = await jobs.cancel(in_shared.id, delete_files=True)
        assert cancelled.state is JobState.CANCELLED and cancelled.result is not None
        assert sorted(p.name for p in shared.iterdir()) == ["mine.txt"]  # payload/ and its files gone
        assert (shared / "mine.txt").read_text() == "not the torrent's"
        # a save path the job had to create goes too, up to the download root
        fresh, _ = await jobs.add(torrent.to_bytes(), save_path="new/deeper", peers=peer)
        await wait_downloading(jobs, fresh.id)
        await jobs.cancel(fresh.id, delete_files=True)
        assert not (tmp_path / "downloads" / "new").exists()
        assert (tmp_path / "downloads").is_dir()
        assert [j.state for j in jobs.history()] == [JobState.CANCELLED, JobState.CANCELLED]


async def wait_downloading(jobs: JobService, job_id: str) -> Job:
    with anyio.fail_after(60):
        while True:
            job = jobs.get(job_id)
            if job.state is JobState.DOWNLOADING and job.done_size > 0:
                return job
            assert job.state not in FINISHED_STATES, job
            await anyio.sleep(0.05)


def hold_adds_until_metadata(jobs: JobService, monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Keep every ``add`` in flight until a session's metadata event has been delivered.

    A magnet's metadata can come before ``add`` returns: the manager's last step, the first
    resume record, waits on an fsync, and a loopback peer answers sooner. This forces that order."""
    delivered = threading.Event()
    jobs.manager.events.subscribe("session.metadata_received", lambda _e: delivered.set())
    keep_resume = jobs.manager.keep_resume

    async def held(info_hash: bytes, data: ResumeData, *, unless_kept: bool = False) -> None:
        if unless_kept and not await anyio.to_thread.run_sync(delivered.wait, 30):  # (the add's record)
            raise TimeoutError("no metadata from the loopback seeder in 30 s")
        await keep_resume(info_hash, data, unless_kept=unless_kept)

    monkeypatch.setattr(jobs.manager, "keep_resume", held)
    return delivered


async def test_magnet_metadata_arriving_while_its_add_is_in_flight_is_not_lost(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The job must learn its files from metadata that came during its add: the selection applies,
    and cancel with delete_files removes them (the event used to be dropped: nothing was deleted
    and the save path stayed behind)."""
    files = [("a.bin", 500_000), ("sub/b.bin", 500_000)]
    async with seeder(tmp_path / "seed", rate=200_000, files=files) as (seed, torrent, _src), \
            service(tmp_path) as jobs:
        delivered = hold_adds_until_metadata(jobs, monkeypatch)
        b = [f.path for f in torrent.files].index(("payload", "sub", "b.bin"))  # (a pad file between)
        job, _ = await jobs.add(torrent.magnet_uri(), save_path="target", files=[b],
                                peers=[("127.0.0.1", seed.listen_port)])
        assert delivered.is_set()  # the order this test is about did happen
        running = await wait_downloading(jobs, job.id)
        assert running.total_size == 500_000  # only sub/b.bin is wanted
        await jobs.cancel(job.id, delete_files=True)
        assert sorted(p.name for p in (tmp_path / "downloads").iterdir()) == []


async def test_magnet_selection_out_of_range_fails_even_when_the_metadata_came_during_its_add(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with seeder(tmp_path / "seed", rate=200_000) as (seed, torrent, _src), \
            service(tmp_path) as jobs:
        seen: list[Event] = []
        jobs.events.subscribe("*", seen.append)
        delivered = hold_adds_until_metadata(jobs, monkeypatch)
        job, _ = await jobs.add(torrent.magnet_uri(), files=[len(torrent.files)],
                                peers=[("127.0.0.1", seed.listen_port)])
        assert delivered.is_set()
        failed = await wait_state(jobs, job.id, *FINISHED_STATES, timeout=30)
        assert failed.state is JobState.FAILED and "out of range" in (failed.error or "")
        await anyio.sleep(0.05)
        news = [e.name for e in seen if e.name.startswith("job.")]  # (the service's stats: each second)
        assert news[0] == "job.added"  # before the news of its end
        assert jobs.manager.sessions == []


async def test_a_lapsed_lease_cancels_only_its_own_jobs(tmp_path: Path) -> None:
    big_a, big_b = [("a.bin", 3_000_000)], [("b.bin", 3_000_000)]
    async with seeder(tmp_path / "seed", rate=200_000, files=big_a, name="a") as (s1, t1, _), \
            seeder(tmp_path / "seed2", rate=200_000, files=big_b, name="b") as (s2, t2, _), \
            service(tmp_path) as jobs:
        jobs.tick_interval = 0.1
        lease = await jobs.open_lease(1.0)
        bound, _ = await jobs.add(t1.to_bytes(), client=lease.id, peers=[("127.0.0.1", s1.listen_port)])
        plain, _ = await jobs.add(t2.to_bytes(), peers=[("127.0.0.1", s2.listen_port)])
        async with anyio.create_task_group() as tg:  # kept alive until the download is under way
            async def beat() -> None:
                while True:
                    await jobs.heartbeat(lease.id)
                    await anyio.sleep(0.2)
            tg.start_soon(beat)
            await wait_downloading(jobs, bound.id)
            tg.cancel_scope.cancel()
        ended = await wait_state(jobs, bound.id, JobState.CANCELLED, timeout=30)
        assert ended.error == CLIENT_SESSION_ENDED
        assert ended.result is not None and ended.result.error == CLIENT_SESSION_ENDED
        assert not (tmp_path / "downloads" / "a").exists()  # its partial files are gone
        assert jobs.get(plain.id).state not in FINISHED_STATES
        assert (tmp_path / "downloads" / "b").exists()


async def test_restart_brings_jobs_and_history_back_and_resumes_from_verified_pieces(tmp_path: Path) -> None:
    big = [("big.bin", 3_000_000)]
    async with seeder(tmp_path / "small", name="small") as (s1, small, _), \
            seeder(tmp_path / "seed", rate=400_000, files=big, name="big") as (s2, torrent, src):
        async with service(tmp_path) as jobs:
            finished, _ = await jobs.add(small.to_bytes(), peers=[("127.0.0.1", s1.listen_port)])
            await wait_state(jobs, finished.id, JobState.COMPLETED)
            partial, _ = await jobs.add(torrent.to_bytes(), peers=[("127.0.0.1", s2.listen_port)])
            paused_magnet, _ = await jobs.add(f"magnet:?xt=urn:btih:{'ab' * 20}&dn=nobody", paused=True)
            await wait_downloading(jobs, partial.id)
            await anyio.sleep(0.5)
        before = jobs.get(partial.id)
        assert 0 < before.done_size < before.total_size
        async with service(tmp_path) as again:
            assert again.lost == []
            assert again.get(finished.id).state is JobState.COMPLETED
            assert again.get(finished.id).result == jobs.get(finished.id).result
            assert again.get(paused_magnet.id).state is JobState.PAUSED
            session = again.manager.get(torrent.info_hash)
            assert session is not None
            await session.wait_ready()
            assert not session.rechecked  # the resume data was trusted: no full recheck
            assert len(session.have) * torrent.piece_length >= before.done_size
            done = await wait_state(again, partial.id, *FINISHED_STATES)
            assert done.state is JobState.COMPLETED, done.error
            assert not same_files(torrent, src, tmp_path / "downloads")
            assert [j.id for j in again.list()] == [paused_magnet.id, partial.id, finished.id]


async def test_a_corrupt_record_loses_only_that_job(tmp_path: Path) -> None:
    async with service(tmp_path) as jobs:
        ids = [(await jobs.add(f"magnet:?xt=urn:btih:{c * 40}", paused=True))[0].id for c in "abc"]
    store = JobStore(tmp_path / "state")
    store.write(ids[1], (store.read(ids[1]) or b"")[:40])  # truncated, as by a failing disk
    store.close()
    async with service(tmp_path) as again:
        assert {j.id for j in again.list()} == {ids[0], ids[2]}
        assert [f.rpartition(":")[2] for f, _reason in again.lost] == [ids[1]]
        assert again.get(ids[2]).state is JobState.PAUSED


async def test_a_disk_error_stops_the_job_with_its_reason_until_resumed(tmp_path: Path) -> None:
    async with seeder(tmp_path / "seed") as (seed, torrent, src), service(tmp_path) as jobs:
        blocker = tmp_path / "downloads" / "x" / "payload" / "a.bin"
        blocker.mkdir(parents=True)  # a folder where the torrent's file must go
        job, _ = await jobs.add(torrent.to_bytes(), save_path="x", peers=[("127.0.0.1", seed.listen_port)])
        stopped = await wait_state(jobs, job.id, JobState.ERROR, *FINISHED_STATES)
        assert stopped.state is JobState.ERROR  # a cause the user can remove: not the end of it
        assert stopped.error and "a.bin" in stopped.error
        assert jobs.manager.sessions == []  # its session is gone; nothing runs
        assert blocker.is_dir()
        blocker.rmdir()
        await jobs.resume(job.id)
        done = await wait_state(jobs, job.id, *FINISHED_STATES)
        assert done.state is JobState.COMPLETED, done.error
        assert not same_files(torrent, src, tmp_path / "downloads" / "x")


async def test_progress_is_throttled_and_pause_resume_recheck_work_mid_download(tmp_path: Path) -> None:
    big = [("big.bin", 3_000_000)]
    async with seeder(tmp_path / "seed", rate=500_000, files=big) as (seed, torrent, src), \
            service(tmp_path) as jobs:
        progress: list[JobProgress] = []
        jobs.events.subscribe("job.progress",
                              lambda e: progress.append(e) if isinstance(e, JobProgress) else None)
        started = anyio.current_time()
        job, _ = await jobs.add(torrent.to_bytes(), peers=[("127.0.0.1", seed.listen_port)])
        await wait_downloading(jobs, job.id)
        paused = await jobs.pause(job.id)
        assert paused.state is JobState.PAUSED and paused.options.paused
        await jobs.recheck(job.id)
        session = jobs.manager.get(torrent.info_hash)
        assert session is not None
        await session.wait_ready()
        assert session.rechecked  # the data on disk was hashed again (a quick check may not be seen)
        assert (await wait_state(jobs, job.id, JobState.PAUSED)).done_size > 0
        resumed = await jobs.resume(job.id)
        assert resumed.state in (JobState.DOWNLOADING, JobState.CHECKING)
        done = await wait_state(jobs, job.id, *FINISHED_STATES)
        assert done.state is JobState.COMPLETED, done.error
        assert not same_files(torrent, src, tmp_path / "downloads")
        elapsed = anyio.current_time() - started
        assert len(progress) > 2 and all(e.job.id == job.id for e in progress)
        assert len(progress) <= elapsed * 4 + 2  # at most four a second


async def test_sequential_job_fetches_pieces_in_order(tmp_path: Path) -> None:
    big = [("big.bin", 3_000_000)]
    async with seeder(tmp_path / "seed", rate=1_000_000, files=big) as (seed, torrent, _src), \
            service(tmp_path) as jobs:
        order: list[int] = []
        jobs.manager.events.subscribe("piece.completed", lambda e: order.append(getattr(e, "index", -1)))
        job, _ = await jobs.add(torrent.to_bytes(), sequential=True, peers=[("127.0.0.1", seed.listen_port)])
        assert job.options.sequential
        with anyio.fail_after(60):
            while len(order) < 20:
                await anyio.sleep(0.05)
        # rarest-first among equals (one seeder) would pick at random from ~180 pieces
        assert max(order[:10]) < 30, order[:20]
        job = await jobs.update(job.id, sequential=False)
        assert not job.options.sequential


async def test_a_finished_download_does_not_look_busy(tmp_path: Path) -> None:
    """Seeding with no peer left: no download rate, no ETA, and when its download completed is
    known; cancelled with its files deleted, the history shows nothing left, and its average
    rate counts the download, not the seeding after it."""
    config = loopback_config(seed=True, stats_interval=0.05)
    async with seeder(tmp_path / "seed") as (seed, torrent, _src), \
            JobService(config, download_root=tmp_path / "downloads", state_dir=tmp_path / "state") as jobs:
        job, _ = await jobs.add(torrent.to_bytes(), peers=[("127.0.0.1", seed.listen_port)])
        seeding = await wait_state(jobs, job.id, JobState.SEEDING)
        assert seeding.completed_at is not None and seeding.eta is None
        session = jobs.manager.get(torrent.info_hash)
        assert session is not None
        with anyio.fail_after(20):
            while session.peers:  # (both seeds: the link is closed)
                await anyio.sleep(0.05)
            ticks = session.tick.ticks
            while session.tick.ticks < ticks + 8 and not session.tick.quiet():
                await anyio.sleep(0.05)
        idle = jobs.get(job.id)
        assert idle.download_rate == 0.0 and idle.eta is None
        await anyio.sleep(0.5)  # seeding: the average rate must not count this
        cancelled = await jobs.cancel(job.id, delete_files=True)
        assert cancelled.state is JobState.CANCELLED and cancelled.completed_at == seeding.completed_at
        assert cancelled.progress == 0.0 and cancelled.done_size == 0
        result = cancelled.result
        assert result is not None and result.duration > seeding.completed_at - seeding.created_at
        downloading = seeding.completed_at - seeding.created_at
        assert result.average_rate == pytest.approx(result.downloaded / downloading)


@pytest.mark.parametrize("action", ["recheck", "set_location"])
async def test_a_recheck_or_a_move_keeps_the_jobs_totals(tmp_path: Path, action: str) -> None:
    """The job owns its totals: a recheck or a move starts a new session, which counts on from
    them (a moved job's new session counted from nothing: the old one's resume data goes with it,
    and the job showed 0 bytes downloaded and uploaded)."""
    async with seeder(tmp_path / "seed") as (seed, torrent, _src), \
            JobService(loopback_config(seed=True), download_root=tmp_path / "downloads",
                       state_dir=tmp_path / "state") as jobs:
        job, _ = await jobs.add(torrent.to_bytes(), peers=[("127.0.0.1", seed.listen_port)])
        await wait_state(jobs, job.id, JobState.SEEDING)
        before = jobs.get(job.id).downloaded
        assert before >= torrent.payload_size
        if action == "recheck":
            await jobs.recheck(job.id)
        else:
            await jobs.set_location(job.id, "moved")
        after = await wait_state(jobs, job.id, JobState.SEEDING)
        assert after.downloaded >= before
        assert jobs.stats().downloaded >= before


async def test_an_ended_lease_keeps_the_downloads_that_completed(tmp_path: Path) -> None:
    """A lease stops what only made sense while its client ran: the job that completed (seeding)
    is kept, files and all, and ends as completed; the unfinished one is cancelled and cleaned."""
    async with seeder(tmp_path / "seed") as (seed, torrent, src), \
            JobService(loopback_config(seed=True), download_root=tmp_path / "downloads",
                       state_dir=tmp_path / "state") as jobs:
        lease = await jobs.open_lease(3600)
        done, _ = await jobs.add(torrent.to_bytes(), client=lease.id, save_path="done",
                                 peers=[("127.0.0.1", seed.listen_port)])
        await wait_state(jobs, done.id, JobState.SEEDING)
        unfinished, _ = await jobs.add("magnet:?xt=urn:btih:" + "cd" * 20 + "&dn=never", client=lease.id,
                                       save_path="never", paused=True)
        await jobs.end_lease(lease.id)
        kept = jobs.get(done.id)
        assert kept.state is JobState.COMPLETED and kept.error is None
        assert not same_files(torrent, src, tmp_path / "downloads" / "done")
        gone = jobs.get(unfinished.id)
        assert gone.state is JobState.CANCELLED and gone.error == CLIENT_SESSION_ENDED


async def test_a_lease_gone_at_restart_keeps_the_downloads_that_completed(tmp_path: Path) -> None:
    async with seeder(tmp_path / "seed") as (seed, torrent, src):
        async with JobService(loopback_config(seed=True), download_root=tmp_path / "downloads",
                              state_dir=tmp_path / "state") as jobs:
            lease = await jobs.open_lease(3600)
            done, _ = await jobs.add(torrent.to_bytes(), client=lease.id,
                                     peers=[("127.0.0.1", seed.listen_port)])
            await wait_state(jobs, done.id, JobState.SEEDING)
        JobStore(tmp_path / "state").save_leases({})  # the lease is gone when the service comes back
        async with JobService(loopback_config(seed=True), download_root=tmp_path / "downloads",
                              state_dir=tmp_path / "state") as jobs:
            kept = jobs.get(done.id)
            assert kept.state is JobState.COMPLETED and kept.error is None
            assert not same_files(torrent, src, tmp_path / "downloads")


async def test_a_magnet_the_queue_holds_once_its_data_is_checked_does_not_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With queueing on, a magnet job fetches its metadata in its slot, then checks the data it
    finds on disk; the queue passes over it while it checks. If the slot went meanwhile to a
    job before it in the queue, the magnet must wait, queued, without running: its session ran
    on after the check (announced and dialed) until the queue's next round paused it."""
    held = hold_checks(monkeypatch)
    before = make_torrent(make_payload(tmp_path / "before", [("o.bin", 50_000)], name="before"))
    downloads = tmp_path / "downloads"
    (downloads / "payload").mkdir(parents=True)
    (downloads / "payload" / "a.bin").write_bytes(bytes(1000))  # (data to check, none of it good)
    async with seeder(tmp_path / "seed", rate=100_000, files=[("a.bin", 300_000)]) as (seed, torrent, _src), \
            JobService(loopback_config(seed=False, max_active_downloads=1), download_root=downloads,
                       state_dir=tmp_path / "state") as jobs:
        held.names.add(torrent.name)  # (the seeder's own check is over, and its swarm started)
        started = swarms_started(monkeypatch, by="info_hash_hex")
        first, _ = await jobs.add(before.to_bytes(), paused=True)  # (first in the queue, paused: no slot)
        job, _ = await jobs.add(torrent.magnet_uri(), peers=[("127.0.0.1", seed.listen_port)])
        with anyio.fail_after(30):
            await held.checking.wait()  # its metadata came (its fetch announced); its check holds
            assert started == [job.info_hash]
            await jobs.resume(first.id)  # (the slot goes to the job before it in the queue)
            await wait_state(jobs, first.id, JobState.DOWNLOADING)  # (no peer: it stays downloading)
            session = jobs.manager.get(job.info_hash)
            assert session is not None and session.state is State.CHECKING
            held.release.set()
            while session.state is State.CHECKING:
                await anyio.sleep(0.01)
        await anyio.sleep(0.1)
        await jobs.tick()
        assert jobs.get(job.id).state is JobState.QUEUED and session.state is State.PAUSED
        assert started == [job.info_hash, first.info_hash]
        await jobs.pause(first.id)  # its slot frees: the magnet runs
        await wait_state(jobs, job.id, JobState.DOWNLOADING)
        with anyio.fail_after(10):  # (its swarm starts in the session's group, once resumed)
            while len(started) < 3:
                await anyio.sleep(0.01)
        assert started == [job.info_hash, first.info_hash, job.info_hash]


def totals_the_long_way(jobs: JobService) -> tuple[dict[str, int], int, int]:
    """Jobs per state and bytes downloaded and uploaded, from every job's snapshot."""
    counts = {s.value: 0 for s in JobState}
    listed = jobs.list()
    for job in listed:
        counts[job.state.value] += 1
    return counts, sum(j.downloaded for j in listed), sum(j.uploaded for j in listed)


async def test_the_services_totals_are_its_jobs_totals_mid_download_and_after_a_restart(
        tmp_path: Path) -> None:
    """``stats()`` reads totals the job table keeps (and walks the running sessions alone);
    they must be what every job shows: while one downloads, once it is paused, after a restart
    (paused, it has no session: its record's bytes count), resumed, and once it has ended."""
    def same_totals(jobs: JobService) -> None:
        stats = jobs.stats()
        assert (stats.jobs, stats.downloaded, stats.uploaded) == totals_the_long_way(jobs)

    big = [("big.bin", 3_000_000)]
    async with seeder(tmp_path / "seed", rate=500_000, files=big) as (seed, torrent, _), \
            service(tmp_path) as jobs:
        job, _ = await jobs.add(torrent.to_bytes(), peers=[("127.0.0.1", seed.listen_port)])
        await jobs.add("magnet:?xt=urn:btih:" + "ef" * 20 + "&dn=never", paused=True)
        assert (await wait_downloading(jobs, job.id)).downloaded > 0
        same_totals(jobs)
        await jobs.tick()
        same_totals(jobs)
        await jobs.pause(job.id)
        same_totals(jobs)
        assert jobs.stats().downloaded > 0
    async with seeder(tmp_path / "seed", rate=500_000, files=big) as (seed, torrent, _), \
            service(tmp_path) as jobs:
        assert jobs.manager.get(torrent.info_hash) is None  # (paused: no session, its record counts)
        same_totals(jobs)
        assert jobs.stats().downloaded > 0
        await jobs.add_peers(job.id, [("127.0.0.1", seed.listen_port)])
        await jobs.resume(job.id)
        await wait_state(jobs, job.id, JobState.DOWNLOADING)
        same_totals(jobs)
        done = await wait_state(jobs, job.id, *FINISHED_STATES)
        assert done.state is JobState.COMPLETED, done.error
        same_totals(jobs)


async def test_a_job_shows_moving_while_its_files_move(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While ``set_location`` copies a job's files, its snapshot says ``moving`` (our API's JSON,
    qBittorrent's state "moving", the web UI's Moving filter read it); once moved, it does not."""
    from torrent_engine.api.compat.qbittorrent_records import state_name
    from torrent_engine.jobs.disk import relocate

    copying, release = threading.Event(), threading.Event()
    real_copy = relocate.copy_files

    def held_copy(*args: object) -> None:
        copying.set()
        release.wait(20)
        real_copy(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(relocate, "copy_files", held_copy)
    async with seeder(tmp_path / "seed") as (seed, torrent, _src), \
            JobService(loopback_config(seed=True), download_root=tmp_path / "downloads",
                       state_dir=tmp_path / "state") as jobs:
        job, _ = await jobs.add(torrent.to_bytes(), peers=[("127.0.0.1", seed.listen_port)])
        await wait_state(jobs, job.id, JobState.SEEDING)
        assert not jobs.get(job.id).moving
        seen: list[object] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(jobs.set_location, job.id, "moved")
            with anyio.fail_after(20):
                await anyio.to_thread.run_sync(copying.wait)
            during = jobs.get(job.id)
            seen += [during.moving, during.to_json()["moving"], state_name(during)]
            seen += [any(j.id == job.id and j.moving for j in jobs.list())]
            release.set()
        after = await wait_state(jobs, job.id, JobState.SEEDING)
    assert seen == [True, True, "moving", True]
    assert not after.moving and after.to_json()["moving"] is False and state_name(after) != "moving"
