"""The job service's timers at seedbox scale: a quiet job (seeding or paused, no peer, nothing
moving) costs the once-a-second tick nothing until news of its session wakes it, and what the
tick counts for it meanwhile (seeding time, its share time limit) comes out as if it had been
walked every second."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.spies import records_written
from tests.unit.clock import FakeClock
from tests.unit.jobs.confines import counted_confines
from tests.unit.jobs.test_jobs_features import cfg, service, wait_state
from tests.unit.torrent_factory import make_torrent, payload
from torrent_engine.engine.manager import TorrentManager, _ResumeRow
from torrent_engine.errors import ConfigError
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.jobs import (
    AddOptions,
    InvalidJobRequest,
    JobFeatures,
    JobService,
    JobState,
    restore,
)
from torrent_engine.jobs.intake import adding, checks
from torrent_engine.jobs.queueing.queue import JobQueue
from torrent_engine.jobs.store import JobStore
from torrent_engine.session import Session, SessionStatus, checking
from torrent_engine.storage.check import ProcessEnded
from torrent_engine.storage.kept import MetainfoStore
from torrent_engine.storage.resume import decode_resume

pytestmark = pytest.mark.anyio


def magnet_of(tmp_path: Path) -> str:
    return "magnet:?xt=urn:btih:" + "ab" * 20 + "&dn=waits"


def seeds(root: Path, n: int) -> list[Torrent]:
    """``n`` one-file torrents whose data is complete under ``root``."""
    out = []
    for i in range(n):
        data = payload(20000, 100 + i)
        torrent = make_torrent([(("f.bin",), data)], 16384, name=f"seed{i}")
        for f in torrent.files:
            target = root.joinpath(*f.path)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        out.append(torrent)
    return out


def count_status(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Calls of ``Session.status`` by info-hash (what a walk of a job's session costs)."""
    calls: Counter[str] = Counter()
    real = Session.status

    def status(self: Session) -> SessionStatus:
        calls[self.info_hash_hex] += 1
        return real(self)

    monkeypatch.setattr(Session, "status", status)
    return calls


def checks_in_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """The checks without a session made in the service's threads, as where no check process can
    be started (``storage.check.CheckProcess``): there a test's hook of ``checks.check_on_disk``
    sees each one (it is not called for a check made in the process)."""
    def unstartable() -> Any:
        raise ProcessEnded("no check process in this test")

    monkeypatch.setattr(checks, "CheckProcess", unstartable)


async def all_seeding(jobs: JobService, ids: list[str]) -> None:
    with anyio.fail_after(20):
        while any(jobs.get(i).state is not JobState.SEEDING for i in ids):
            await anyio.sleep(0.02)


async def seeding(jobs: JobService, torrents: list[Torrent]) -> list[str]:
    """Add ``torrents`` (their data whole on disk) and wait until they all seed: their job ids."""
    ids = [(await jobs.add(t))[0].id for t in torrents]
    await all_seeding(jobs, ids)
    return ids


async def test_quiet_seeds_cost_the_tick_nothing_until_news_of_one_wakes_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    torrents = seeds(tmp_path / "dl", 12)
    async with service(tmp_path, seed=True) as jobs:
        ids = await seeding(jobs, torrents)
        await jobs.tick()  # (the round finds nothing moving in them: they fall quiet)
        calls = count_status(monkeypatch)
        for _ in range(3):
            await jobs.tick()
        assert sum(calls.values()) == 0, calls  # (before: every job, several times a tick)
        assert jobs.stats().jobs["seeding"] == 12
        await jobs.pause(ids[3])  # news of one: it wakes, and it alone is walked (then sleeps again)
        await anyio.sleep(0.05)  # (the engine's events are delivered on the next loop turns)
        await jobs.tick()
        assert set(calls) <= {torrents[3].info_hash.hex()}  # (none: a dormant seed has no session)
        calls.clear()
        await jobs.tick()
        assert not calls
        assert jobs.get(ids[3]).state is JobState.PAUSED
        await jobs.resume(ids[3])
        await wait_state(jobs, ids[3], JobState.SEEDING)


@pytest.mark.parametrize("limit", ["seeding_time_limit", "idle_seeding_limit"])
async def test_a_quiet_seed_counts_its_seeding_time_and_meets_its_time_limit_asleep(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: str) -> None:
    """(Its idle seeding limit too: nothing of a quiet seed moves, its seeding time is idle.)"""
    torrents = seeds(tmp_path / "dl", 2)
    clock = FakeClock()
    async with service(tmp_path, seed=True, clock=clock) as jobs:
        limited, _ = await jobs.add(torrents[0], features=JobFeatures(**{limit: 250}))
        free, _ = await jobs.add(torrents[1])
        await all_seeding(jobs, [limited.id, free.id])
        await jobs.enforce()
        await jobs.enforce()  # (both quiet now)
        calls = count_status(monkeypatch)
        for _ in range(4):
            clock.now += 60
            await jobs.enforce()
        assert sum(calls.values()) == 0
        assert jobs.get(free.id).seeding_time == pytest.approx(240)  # (counted while asleep)
        assert jobs.get(limited.id).state is JobState.SEEDING
        clock.now += 60  # 300 s: past its limit, its deadline wakes it and the round stops it
        calls.clear()
        await jobs.enforce()
        assert set(calls) <= {torrents[0].info_hash.hex()}  # (none: a dormant seed has no session)
        stopped = jobs.get(limited.id)
        assert stopped.state is JobState.PAUSED and stopped.options.paused
        assert stopped.seeding_time == pytest.approx(300)
        assert jobs.get(free.id).seeding_time == pytest.approx(300)


async def test_a_list_keeps_each_quiet_seeds_view_for_a_minute_of_seeding_one_job_to_the_second(
        tmp_path: Path) -> None:
    """A list asked a second later showed every seed again (its seeding time had moved): at
    10 000 seeds each view, its dialect record and its JSON were made again for every list."""
    torrents = seeds(tmp_path / "dl", 2)
    clock = FakeClock()
    async with service(tmp_path, seed=True, clock=clock) as jobs:
        ids = [(await jobs.add(t))[0].id for t in torrents]
        await all_seeding(jobs, ids)
        await jobs.enforce()
        await jobs.enforce()  # (both quiet now)
        first = {j.id: j for j in jobs.list()}
        clock.now += 30
        await jobs.enforce()
        later = {j.id: j for j in jobs.list()}
        assert all(later[i] is first[i] for i in ids)  # the same views: nothing to make again
        assert {j.id: j for j in jobs.client_jobs()}[ids[0]] is first[ids[0]]
        exact = jobs.get(ids[0]).seeding_time  # one job's answer: to the second
        assert exact == pytest.approx(first[ids[0]].seeding_time + 30)
        clock.now += 40  # past a minute since the views were made: shown anew
        await jobs.enforce()
        again = {j.id: j for j in jobs.list()}
        assert all(again[i] is not first[i] for i in ids)
        assert again[ids[1]].seeding_time == pytest.approx(first[ids[1]].seeding_time + 70)


async def test_a_batch_of_adds_answers_each_in_order_and_a_refused_one_says_why(tmp_path: Path) -> None:
    torrents = seeds(tmp_path / "dl", 6)
    async with service(tmp_path, seed=True) as jobs:
        first, _ = await jobs.add(torrents[0])
        results = await jobs.add_many([*torrents, b"not a torrent"], AddOptions(paused=True))
        assert len(results) == 7
        again = results[0]
        assert isinstance(again, tuple) and again == (jobs.get(first.id), False)  # (shared, not added twice)
        added = [r for r in results[1:6] if isinstance(r, tuple)]
        assert [job.name for job, created in added if created] == [t.name for t in torrents[1:]]
        assert all(job.options.paused for job, _ in added)
        refused = results[6]
        assert isinstance(refused, InvalidJobRequest) and refused.field == "source"
        numbers = [job.number for job, _ in added]
        assert numbers == list(range(2, 7)) and len(jobs.list()) == 6  # (in the batch order)
        assert [jobs.get(job.id).queue_position for job, _ in added] == sorted(
            jobs.get(job.id).queue_position for job, _ in added)  # (each its own place)


async def test_jobs_added_alike_share_one_options_object_until_one_is_changed(tmp_path: Path) -> None:
    """Each record's options were an object of their own for the collector's sweeps to walk
    (10 000 seeds added alike: 10 000 objects); adds alike, and a restart's records alike, now
    share one. A change to one job's options gives it its own and leaves the others alone."""
    torrents = seeds(tmp_path / "dl", 4)
    async with service(tmp_path, seed=True) as jobs:
        results = await jobs.add_many(torrents, AddOptions(paused=True))
        ids = [r[0].id for r in results if isinstance(r, tuple)]
        assert len(ids) == 4
        assert len({id(jobs.get(i).options) for i in ids}) == 1
        await jobs.resume(ids[0])
        assert not jobs.get(ids[0]).options.paused and all(jobs.get(i).options.paused for i in ids[1:])
    async with service(tmp_path, seed=True) as jobs:
        assert len({id(jobs.get(i).options) for i in ids[1:]}) == 1  # (read back: shared again)
        assert jobs.get(ids[0]).options is not jobs.get(ids[1]).options


async def test_a_batch_of_adds_is_written_in_few_transactions_each_record_as_it_last_is(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The records of a batch of 25 adds (and the state changes that follow each) are committed
    in groups, not one transaction per job and change (75 or more before); what the store holds
    at the end is each job as it is."""
    torrents = seeds(tmp_path / "dl", 25)
    writes = records_written(monkeypatch)
    async with service(tmp_path, seed=True) as jobs:
        await jobs.tick()
        writes.clear()
        results = await jobs.add_many(torrents, AddOptions(paused=True))
        ids = [r[0].id for r in results if isinstance(r, tuple)]
        assert len(ids) == 25 and sum(writes) >= 25
        assert len(writes) < 25, writes  # (groups: one write, one sync of the disk, for many)
        with anyio.fail_after(20):
            while any(jobs.get(i).state is not JobState.PAUSED for i in ids):
                await anyio.sleep(0.02)
        await jobs.set_features(ids[:3], tags=["last"])
        expected = {i: jobs.get(i).features.tags for i in ids}
    store = JobStore(tmp_path / "state")
    try:
        records, lost = store.load_all()
    finally:
        store.close()
    assert lost == [] and {r.id: r.features.tags for r in records} == expected


async def test_a_stop_writes_only_what_changed_in_one_transaction(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    torrents = seeds(tmp_path / "dl", 8)
    async with service(tmp_path, seed=True) as jobs:
        ids = await seeding(jobs, torrents)
    writes = records_written(monkeypatch)
    resumes: list[bytes] = []
    real_keep_resume = TorrentManager.keep_resume

    async def keep_resume(manager: TorrentManager, info_hash: bytes, data: Any, **kwargs: Any) -> None:
        resumes.append(info_hash)
        await real_keep_resume(manager, info_hash, data, **kwargs)

    monkeypatch.setattr(TorrentManager, "keep_resume", keep_resume)
    async with service(tmp_path, seed=True) as jobs:
        await all_seeding(jobs, ids)
        await jobs.tick()
        writes.clear()
        resumes.clear()
        await jobs.set_features([ids[2]], tags=["kept"])  # (one changes: written at once)
        assert writes
        await jobs.tick()
        writes.clear()
    # the stop: the idle seeds' resume data is as on disk (not written again); their records
    # (seeding time goes on) are written in one transaction, not one each
    assert resumes == [] and len(writes) == 1 and writes[0] <= 8
    async with service(tmp_path, seed=True) as jobs:
        assert jobs.get(ids[2]).features.tags == ("kept",)
        assert all(jobs.get(i).state is not JobState.FAILED for i in ids)


async def test_a_quiet_job_is_listed_as_the_same_snapshot_until_something_of_it_changes(
        tmp_path: Path) -> None:
    """The API's lists keep each job's JSON and each dialect's record while its snapshot is the
    same object: a list of idle jobs hands out the same objects, and a new one for a job that
    changed (its features, its state)."""
    async with service(tmp_path) as jobs:
        added = await jobs.add_many([f"magnet:?xt=urn:btih:{i + 1:040x}&dn=job-{i}" for i in range(4)],
                                    AddOptions(paused=True))
        ids = [r[0].id for r in added if isinstance(r, tuple)]
        with anyio.fail_after(10):  # (once the tick has found them quiet)
            while True:
                first = {j.id: j for j in jobs.list()}
                again = {j.id: j for j in jobs.list()}
                if all(again[i] is first[i] for i in ids):
                    break
                await anyio.sleep(0.1)
        await jobs.set_features([ids[0]], tags=["kept"])
        await jobs.resume(ids[1])
        after = {j.id: j for j in jobs.list()}
        assert after[ids[0]] is not first[ids[0]] and after[ids[0]].features.tags == ("kept",)
        assert after[ids[1]] is not first[ids[1]] and after[ids[1]].state is not JobState.PAUSED
        assert after[ids[2]] is first[ids[2]] and after[ids[3]] is first[ids[3]]


@pytest.mark.parametrize("limit", [1, 2, -1])
async def test_torrents_added_with_their_data_on_disk_are_checked_without_a_session_a_few_at_a_time(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: int) -> None:
    """Torrents added with their data on disk are hashed by the job layer before any session:
    ``active_checking_limit`` at once (-1: all), the others waiting in "checking" as records
    alone; each ends a dormant seed (no session), its resume data vouching for its pieces."""
    torrents = seeds(tmp_path / "dl", 6)
    running = 0
    most = 0
    lock = threading.Lock()
    real_check = checks.check_on_disk

    def check_on_disk(*args: Any) -> Any:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        try:
            time.sleep(0.1)  # (long enough for every other job to ask for its turn)
            return real_check(*args)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(checks, "check_on_disk", check_on_disk)
    checks_in_threads(monkeypatch)  # (each check seen by the hook)
    config = dataclasses.replace(cfg(seed=True), active_checking_limit=limit)
    async with JobService(config, download_root=tmp_path / "dl", state_dir=tmp_path / "state") as jobs:
        results = await jobs.add_many(torrents)
        ids = [r[0].id for r in results if isinstance(r, tuple)]
        assert {jobs.get(i).state for i in ids} == {JobState.CHECKING}
        assert len(jobs.manager.sessions) == 0  # (waiting: records and a place in the queue)
        await all_seeding(jobs, ids)
        assert len(jobs.manager.sessions) == 0  # dormant seeds
        for t in torrents:
            resume = jobs.manager.saved_resume(t.info_hash)
            assert resume is not None and len(resume.pieces()) == t.num_pieces and resume.files
    assert most == (len(torrents) if limit == -1 else limit)


@pytest.mark.parametrize("limit", [1, 2])
async def test_rechecks_hash_a_few_at_a_time(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: int) -> None:
    """A recheck of jobs with a session is scheduled: ``active_checking_limit`` torrents hash at
    once (libtorrent's ``active_checking``), the others wait in "checking" for their turn; each
    is checked and seeds in the end."""
    torrents = seeds(tmp_path / "dl", 5)
    running = 0
    most = 0
    real_recheck = checking.recheck

    async def recheck(*args: Any, **kwargs: Any) -> Any:
        nonlocal running, most
        running += 1
        most = max(most, running)
        try:
            await anyio.sleep(0.05)  # (long enough for every other add to ask for its turn)
            return await real_recheck(*args, **kwargs)
        finally:
            running -= 1

    monkeypatch.setattr(checking, "recheck", recheck)
    config = dataclasses.replace(cfg(seed=True), active_checking_limit=limit)
    async with JobService(config, download_root=tmp_path / "dl", state_dir=tmp_path / "state") as jobs:
        results = await jobs.add_many(torrents)
        ids = [r[0].id for r in results if isinstance(r, tuple)]
        await all_seeding(jobs, ids)
        assert most == 0  # (checked without a session: their sessions had nothing to hash)
        for i in ids:  # (dormant seeds: woken, as a peer or a reader wakes one)
            assert await jobs.stream_session(i) is not None
        async with anyio.create_task_group() as tg:
            for i in ids:
                tg.start_soon(jobs.recheck, i)
        await all_seeding(jobs, ids)
    assert most == limit


def test_the_checking_limit_is_at_least_one() -> None:
    with pytest.raises(ConfigError) as refused:
        dataclasses.replace(cfg(), active_checking_limit=0)
    assert refused.value.field == "active_checking_limit"


async def test_seeds_added_in_a_row_do_not_rank_every_job_again_each_and_the_ranks_stay_true(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A job that completes leaves the queue's ranks and those after it move up: the ranks are
    not made again over every job for each completion (quadratic when thousands of seeds are
    added), and they are what a ranking made anew says."""
    torrents = seeds(tmp_path / "dl", 12)
    made = 0
    real = JobQueue.rerank

    def rerank(self: JobQueue) -> None:
        nonlocal made
        made += 1
        real(self)

    async with service(tmp_path, seed=True) as jobs:
        waiting, _ = await jobs.add(magnet_of(tmp_path))  # (never completes: ranked 1 throughout)
        monkeypatch.setattr(JobQueue, "rerank", rerank)
        ids = []
        for t in torrents:
            job, _ = await jobs.add(t)
            ids.append(job.id)
            await all_seeding(jobs, [job.id])
            jobs.list()  # (every job read: each ranked)
        assert made <= 2, made
        shown = {j.id: j.queue_position for j in jobs.list()}
        monkeypatch.setattr(JobQueue, "rerank", real)
        jobs.queue.rerank()  # (made anew: the same)
        assert {j.id: j.queue_position for j in jobs.list()} == shown
        assert shown[waiting.id] == 1 and all(shown[i] == 0 for i in ids)


async def test_a_complete_job_reading_its_resume_data_at_a_restart_shows_its_progress_not_zero(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While a restarted (or moved) seed's session reads its resume data its pieces are not known
    yet: its progress showed 0 (a complete download seemed to start again), now the record's; its
    pieces showed none, now those its resume data says."""
    torrent = seeds(tmp_path / "dl", 1)[0]
    async with service(tmp_path, seed=True) as jobs:
        # (judged by the queue, a seed starts its session at the restart: it is not left dormant)
        await jobs.update_settings(queueing=True)
        job, _ = await jobs.add(torrent)
        await all_seeding(jobs, [job.id])
    reading, go_on = threading.Event(), threading.Event()
    real_load = _ResumeRow.load

    def slow_load(row: _ResumeRow) -> Any:  # (its session reads its resume data)
        reading.set()
        go_on.wait(10)
        return real_load(row)

    monkeypatch.setattr(_ResumeRow, "load", slow_load)
    shown: list[Any] = []
    pieces: list[list[int] | None] = []
    restarted = service(tmp_path, seed=True)

    async def look_while_it_reads() -> None:  # (the service's start waits for its torrents)
        try:
            while not reading.is_set():
                await anyio.sleep(0.01)
            while (session := restarted.manager.get(torrent.info_hash)) is None:
                await anyio.sleep(0.01)
            assert session.status().state in ("queued", "checking")  # (reading its resume data)
            shown.append(restarted.get(job.id))
            pieces.append(restarted.piece_states(job.id))  # (what torrent-get and pieceStates show)
        finally:
            go_on.set()

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(look_while_it_reads)
            async with restarted as jobs:
                await all_seeding(jobs, [job.id])
    assert shown and shown[0].state in (JobState.QUEUED, JobState.CHECKING)
    assert (shown[0].progress, shown[0].done_size) == (1.0, shown[0].total_size)
    assert pieces == [[2] * torrent.num_pieces]  # (its pieces as its resume data says, not none)


class TurnClock:
    """The time ``engine.turns`` reads (``time.perf_counter``), moved by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


async def test_a_restart_lets_the_loop_run_while_it_brings_its_jobs_back_and_in_its_first_round(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The API answers from the records while a restart brings its jobs back: 30 000 jobs
    restored held the loop 481-627 ms in one turn, and the start's first round of the queue,
    which walks them all, 288-451 ms. Both let the loop run once a turn's work went by (the
    time here is a fake clock each job's work moves 2 ms on; a turn is 5 ms of work: three jobs
    a turn, whatever the jobs cost)."""
    from tests.unit.loop_turns import counted_turns
    from torrent_engine.engine import turns as turns_module
    from torrent_engine.jobs.queueing.rounds import QueueRounds
    from torrent_engine.jobs.table import JobTable

    torrents = seeds(tmp_path / "dl", 12)
    async with service(tmp_path, seed=True) as jobs:
        ids = await seeding(jobs, torrents)
    clock = TurnClock()
    monkeypatch.setattr(turns_module, "time", clock)
    monkeypatch.setattr(turns_module, "TURN", 0.005)
    restored: list[int] = []  # the loop's turn as each job is brought back
    rounded: list[int] = []  # and as the first round looks at each (a dormant seed)
    real_bind, real_dormant_round = JobTable.bind, QueueRounds._dormant_round
    async with counted_turns() as turns:
        def bind(table: JobTable, rec: Any) -> None:
            clock.now += 0.002
            restored.append(turns.n)
            real_bind(table, rec)

        async def dormant_round(rounds: QueueRounds, rec: Any, step: float, now: float) -> None:
            clock.now += 0.002
            rounded.append(turns.n)
            await real_dormant_round(rounds, rec, step, now)

        monkeypatch.setattr(JobTable, "bind", bind)
        monkeypatch.setattr(QueueRounds, "_dormant_round", dormant_round)
        async with service(tmp_path, seed=True) as jobs:
            assert all(jobs.manager.get(t.info_hash) is None for t in torrents)  # (dormant seeds)
            await all_seeding(jobs, ids)
    for walk in (restored, rounded[:12]):
        assert len(walk) == 12 and max(Counter(walk).values()) == 3, walk  # (before: all 12 in one)


async def test_a_restart_resolves_each_save_folder_once_not_each_jobs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Resolving a save path is an lstat per component on the loop: at 10 000 paused jobs in one
    folder the restart spent 0.6 s of its 1.5 s there."""
    async with service(tmp_path) as jobs:
        for c in "abcd":
            await jobs.add(f"magnet:?xt=urn:btih:{c * 40}", paused=True, save_path="shows")
        await jobs.add("magnet:?xt=urn:btih:" + "e" * 40, paused=True)
    resolved = counted_confines(monkeypatch, restore)
    async with service(tmp_path) as jobs:
        assert len(jobs) == 5 and all(j.state is JobState.PAUSED for j in jobs.list())
    assert len(resolved) == 2  # the root and "shows"
async def test_the_jobs_of_a_batch_are_numbered_in_the_batch_order_whichever_read_ends_first(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sources of a batch are read at once; the first, read last here, still takes the first
    number (Transmission's ids, and its lists sorted by them, follow the order the batch gave)."""
    torrents = seeds(tmp_path / "dl", 4)
    blobs = [t.to_bytes() for t in torrents]
    others_read = threading.Event()
    read_count = [0]
    lock = threading.Lock()
    real_read = adding.read_add_torrent

    def read_source(source: Any) -> Any:
        if getattr(source, "data", None) == blobs[0]:
            others_read.wait(10)  # (the first source's read ends after every other one's)
        out = real_read(source)
        with lock:
            read_count[0] += 1
            if read_count[0] == len(blobs) - 1:
                others_read.set()
        return out

    monkeypatch.setattr(adding, "read_add_torrent", read_source)
    async with service(tmp_path, seed=True) as jobs:
        results = await jobs.add_many(blobs, AddOptions(paused=True))
        added = [r[0] for r in results if isinstance(r, tuple)]
        assert [job.name for job in added] == [t.name for t in torrents]
        assert [job.number for job in added] == [1, 2, 3, 4]
        assert [job.name for job in sorted(jobs.list(), key=lambda j: j.number)] == [t.name for t in torrents]


async def test_a_running_jobs_view_is_made_again_only_when_something_of_it_moved(tmp_path: Path) -> None:
    """A job whose session runs (here a magnet waiting for its metadata with no peer: it leaves the
    engine clock's round after its first tick) is shown as the same view until something of it
    moves (its state): a poll of thousands of live jobs made each one's view, record and JSON
    again for every answer, and a tick each second made each view anew."""
    async with service(tmp_path) as jobs:
        job, _ = await jobs.add("magnet:?xt=urn:btih:" + "ab" * 20 + "&dn=live")
        session = jobs.manager.get(job.info_hash)
        assert session is not None
        with anyio.fail_after(10):
            while session.tick.ticks < 1:
                await anyio.sleep(0.01)
            first = jobs.get(job.id)
            assert jobs.get(job.id) is first and jobs.list()[0] is first  # (nothing moved between)
        await anyio.sleep(2.5 * jobs.manager.config.stats_interval)  # (no tick: nothing moves)
        # (but its time downloading: one job's answer shows it to the second, a list to the minute)
        assert not session.tick.running
        again = jobs.get(job.id)
        assert again.downloading_time > first.downloading_time
        assert dataclasses.replace(again, downloading_time=first.downloading_time) == first
        assert jobs.list()[0] is again and jobs.get(job.id) is again
        await jobs.pause(job.id)
        paused = jobs.get(job.id)
        assert paused.state is JobState.PAUSED and paused is not first


def count_kept_writes(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, int]]:
    """The metainfo store's transactions from now on, each as the rows it wrote by table."""
    writes: list[dict[str, int]] = []
    real_upsert = MetainfoStore._upsert

    def upsert(self: MetainfoStore, *tables: Any) -> None:
        writes.append({name: len(rows) for name, rows in tables if rows})
        real_upsert(self, *tables)

    monkeypatch.setattr(MetainfoStore, "_upsert", upsert)
    return writes


async def test_a_batch_of_downloads_keeps_their_torrents_and_first_resume_data_in_its_groups(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A download's add kept its torrent (a transaction of its own) and then, once its session
    had started, its first resume data (another group), each a sync of the disk the add waited
    for in turn. Now the adds' group keeps both for all of its adds at once: a batch of 12 is a
    transaction or a few, and each torrent and its first resume data are kept when the adds
    answer, as a restart needs them."""
    torrents = [make_torrent([(("f.bin",), payload(20000, 300 + i))], 16384, name=f"get{i}")
                for i in range(12)]
    writes = count_kept_writes(monkeypatch)
    async with service(tmp_path) as jobs:
        results = await jobs.add_many(torrents)
        ids = [r[0].id for r in results if isinstance(r, tuple)]
        assert len(ids) == 12
        kept = jobs.manager.kept
        assert kept is not None
        hashes = {t.info_hash for t in torrents}
        assert hashes <= kept.keys() and hashes <= kept.resume_keys()
        for t in torrents:
            first = decode_resume(kept.get_resume(t.info_hash) or b"")
            assert first.num_pieces == 0 and first.have == b""  # (vouches for nothing on disk)
            assert Path(first.save_path) == (tmp_path / "dl").resolve()
        assert sum(w.get("metainfo", 0) for w in writes) == 12
        assert sum(w.get("resume", 0) for w in writes) >= 12
        assert len(writes) < 6, writes  # (before: 12 of the torrents alone)
        assert all(w.get("metainfo") == w.get("resume") for w in writes if "metainfo" in w)  # (together)
    async with service(tmp_path) as jobs:  # (restored from them)
        assert {jobs.get(i).info_hash for i in ids} == {t.info_hash.hex() for t in torrents}

