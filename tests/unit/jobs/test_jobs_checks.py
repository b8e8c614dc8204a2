"""Checks without a session (``jobs/intake/checks.py``): a torrent added with its data on disk waits as
its record, is hashed in its turn, and becomes a dormant seed (complete) or a session going on
from what was found (not); a check that cannot read stops its job alone; a job paused or
cancelled while it waits is not checked."""

from __future__ import annotations

import dataclasses
import errno
import os
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.unit.jobs.test_jobs_features import cfg
from tests.unit.jobs.test_jobs_scale import all_seeding, checks_in_threads, seeds
from tests.unit.torrent_factory import make_torrent, payload
from torrent_engine.jobs import JobService, JobState
from torrent_engine.jobs.intake import checks
from torrent_engine.session import checking
from torrent_engine.storage import check as check_module
from torrent_engine.storage.check import CheckProcess, ProcessEnded
from torrent_engine.storage.kept import DB_FILE, MetainfoStore, MetainfoStoreError
from torrent_engine.storage.resume import decode_resume

pytestmark = pytest.mark.anyio


def _service(tmp_path: Path, limit: int = 1) -> JobService:
    config = dataclasses.replace(cfg(seed=True), active_checking_limit=limit)
    return JobService(config, download_root=tmp_path / "dl", state_dir=tmp_path / "state")


async def _state(jobs: JobService, job_id: str, state: JobState) -> None:
    with anyio.fail_after(20):
        while jobs.get(job_id).state is not state:
            await anyio.sleep(0.02)


def _count_rechecks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Each session recheck (the session hashing the data itself)."""
    calls: list[int] = []
    real = checking.recheck

    async def recheck(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return await real(*args, **kwargs)

    monkeypatch.setattr(checking, "recheck", recheck)
    return calls


async def test_checks_without_a_session_are_made_in_a_process_of_their_own(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The service's own process hashes nothing of them (in its threads they held the GIL half
    the time: the event loop waited); one child checks one after another, and ends with the
    service (or after ``CHECK_PROCESS_IDLE`` seconds with nothing to check)."""
    def not_here(*args: Any) -> Any:
        raise AssertionError("checked in the service's own process")

    started: list[CheckProcess] = []

    class Recorded(CheckProcess):
        def __init__(self) -> None:
            super().__init__()
            started.append(self)

    monkeypatch.setattr(checks, "check_files", not_here)
    monkeypatch.setattr(checks, "CheckProcess", Recorded)
    monkeypatch.setattr(checks, "CHECK_PROCESS_IDLE", 0.5)
    async with _service(tmp_path) as jobs:
        pending = jobs._run.checks
        torrents = seeds(tmp_path / "dl", 8)
        ids = [(await jobs.add(t))[0].id for t in torrents[:6]]
        await all_seeding(jobs, ids)
        assert pending.checked == 6 and pending.in_processes
        assert len(started) == 1 and started[0].pid != os.getpid()
        with anyio.fail_after(5):  # (nothing more to check: it ends)
            while not started[0].ended:
                await anyio.sleep(0.05)
        assert not pending._processes
        more = [(await jobs.add(t))[0].id for t in torrents[6:]]
        await all_seeding(jobs, more)
        assert pending.checked == 8 and len(started) == 2  # (the next check started another)
        checks.CHECK_PROCESS_IDLE = 60.0
    assert all(p.ended for p in started)  # (the service stopped: its child too)


@pytest.mark.parametrize("big", [False, True])
async def test_a_turn_asks_its_process_ahead_but_not_for_big_torrents(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, big: bool) -> None:
    """Small torrents are asked ahead (up to ``IN_FLIGHT``); once those asked hold
    ``IN_FLIGHT_BYTES`` no more is (a turn of big torrents holds its slot for the one under way):
    here every torrent counts as big when ``big``."""
    outstanding: list[int] = [0]
    most: list[int] = [0]

    class Counted(CheckProcess):
        def send(self, ask: Any) -> int:
            outstanding[0] += 1
            most[0] = max(most[0], outstanding[0])
            return super().send(ask)

        def answer(self, wait: float) -> Any:
            word = super().answer(wait)
            if word is not None and word[1] != "save":
                outstanding[0] -= 1
            return word

    monkeypatch.setattr(checks, "CheckProcess", Counted)
    if big:
        monkeypatch.setattr(checks, "IN_FLIGHT_BYTES", 1)
    async with _service(tmp_path) as jobs:
        torrents = seeds(tmp_path / "dl", 30)
        ids = [r[0].id for r in await jobs.add_many(torrents) if isinstance(r, tuple)]
        await all_seeding(jobs, ids)
    assert most[0] == 1 if big else 1 < most[0] <= checks.IN_FLIGHT, most


@pytest.mark.parametrize("in_process", [False, True])
async def test_a_checks_resume_data_is_made_once_and_kept_as_the_check_made_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_process: bool) -> None:
    """The job's resume data (its save path resolved: an lstat a component) is made in the turn's
    thread for the check, and what the check found is kept with it: not made again on the loop."""
    made: list[str] = []
    real = checks._job_resume

    def job_resume(rec: Any) -> Any:
        made.append(rec.id)
        return real(rec)

    monkeypatch.setattr(checks, "_job_resume", job_resume)
    if not in_process:
        checks_in_threads(monkeypatch)
    async with _service(tmp_path) as jobs:
        ids = [r[0].id for r in await jobs.add_many(seeds(tmp_path / "dl", 5)) if isinstance(r, tuple)]
        await all_seeding(jobs, ids)
        assert sorted(made) == sorted(ids)


async def test_a_check_process_that_ends_mid_turn_leaves_its_checks_to_the_thread(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The child killed while checks are asked of it: those are made in the turn's thread, the
    next turn starts another child, and every job seeds; none fails for it."""
    started: list[CheckProcess] = []

    class Recorded(CheckProcess):
        def __init__(self) -> None:
            super().__init__()
            started.append(self)

    real_apply = checks.PendingChecks._apply
    killed: list[int] = []

    async def apply(self: checks.PendingChecks, rec: Any, *found: Any) -> None:
        if not killed:
            killed.append(started[0].pid)
            os.kill(started[0].pid, 9)  # (the asks after this one are in flight)
        await real_apply(self, rec, *found)

    monkeypatch.setattr(checks, "CheckProcess", Recorded)
    monkeypatch.setattr(checks.PendingChecks, "_apply", apply)
    async with _service(tmp_path) as jobs:
        torrents = seeds(tmp_path / "dl", 40)
        ids = [r[0].id for r in await jobs.add_many(torrents) if isinstance(r, tuple)]
        await all_seeding(jobs, ids)
        assert jobs._run.checks.checked == 40 and jobs._run.checks.in_processes
        assert started[0].ended


async def test_a_process_that_ends_as_it_is_asked_leaves_each_check_asked_of_it_to_the_thread(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The child gone when the fifth check is asked: the four asked before are checked in the
    thread, each for its own job (the next child numbers its asks from one again), and the rest
    in the next child."""
    torrents = []
    for i in range(12):  # (each of its own length: a check's result on another job would show)
        data = payload(16384 * (i + 1) + 100, 200 + i)
        torrent = make_torrent([(("f.bin",), data)], 16384, name=f"sized{i}")
        target = (tmp_path / "dl").joinpath(*torrent.files[0].path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        torrents.append(torrent)
    asked: list[int] = []

    class Ending(CheckProcess):
        def send(self, ask: Any) -> int:
            asked.append(1)
            if len(asked) == 5:
                self.close()
                raise ProcessEnded("gone")
            return super().send(ask)

    monkeypatch.setattr(checks, "CheckProcess", Ending)
    async with _service(tmp_path) as jobs:
        ids = [r[0].id for r in await jobs.add_many(torrents) if isinstance(r, tuple)]
        await all_seeding(jobs, ids)
        for torrent in torrents:
            resume = jobs.manager.saved_resume(torrent.info_hash)
            assert resume is not None and resume.num_pieces == torrent.num_pieces
            assert len(resume.pieces()) == torrent.num_pieces
        assert jobs._run.checks.checked == 12 and len(asked) > 5


async def test_a_check_the_process_cannot_make_stops_its_job_alone_saying_why(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The child cannot read the torrent kept for one job (damaged): that job stops in error with
    the reason; the others are checked."""
    torrents = seeds(tmp_path / "dl", 3)
    bad = torrents[1].info_hash.hex()
    async with _service(tmp_path) as jobs:
        real = jobs.manager.saved_metainfo_bytes

        def damaged(info_hash: bytes | str) -> bytes | None:
            data = real(info_hash)
            return b"d4:infod4:name" + b"x" * 8 if info_hash == bad and data is not None else data

        monkeypatch.setattr(jobs.manager, "saved_metainfo_bytes", damaged)
        ids = [r[0].id for r in await jobs.add_many(torrents) if isinstance(r, tuple)]
        await all_seeding(jobs, [ids[0], ids[2]])
        await _state(jobs, ids[1], JobState.ERROR)
        failed = jobs.get(ids[1])
        assert failed.error is not None and failed.error.startswith("check failed: "), failed.error
        assert jobs._run.checks.in_processes and len(jobs._run.checks._processes) == 1


def test_checks_fall_back_to_the_threads_when_no_process_can_start(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """(Where no Python can be started by the service: an embedded interpreter.) The checks are
    made in its threads, said once in the log; none fails for it."""
    monkeypatch.setattr(check_module.sys, "executable", "/nonexistent/python")

    async def main() -> None:
        async with _service(tmp_path) as jobs:
            ids = [(await jobs.add(t))[0].id for t in seeds(tmp_path / "dl", 4)]
            await all_seeding(jobs, ids)
            assert not jobs._run.checks.in_processes and not jobs._run.checks._processes

    anyio.run(main)
    said = [r.getMessage() for r in caplog.records if "checks without a session are made" in r.getMessage()]
    assert len(said) == 1 and "cannot start a check process" in said[0], said


async def test_data_with_a_bad_piece_starts_its_session_from_what_the_check_found(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = payload(5 * 16384, 7)
    torrent = make_torrent([(("part.bin",), data)], 16384, name="part")
    target = (tmp_path / "dl").joinpath(*torrent.files[0].path)
    target.parent.mkdir(parents=True)  # (a folder of its name: as its files' paths say)
    target.write_bytes(data[:16384] + b"\0" * 16384 + data[2 * 16384:])  # (full size, piece 1 wrong)
    rechecks = _count_rechecks(monkeypatch)
    async with _service(tmp_path) as jobs:
        job, _ = await jobs.add(torrent)
        await _state(jobs, job.id, JobState.DOWNLOADING)  # (no peer: it waits for one)
        shown = jobs.get(job.id)
        assert shown.done_size == 4 * 16384 and shown.progress == pytest.approx(0.8)
        session = jobs.manager.get(job.info_hash)
        assert session is not None and sorted(session.have) == [0, 2, 3, 4]
        assert rechecks == []  # (the session trusted what the check found: nothing hashed twice)


async def test_a_check_that_cannot_read_stops_its_job_alone_saying_why(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    torrents = seeds(tmp_path / "dl", 3)
    bad = torrents[1].info_hash.hex()
    real = checks.check_on_disk

    def check_on_disk(manager: Any, info_hash: str, *args: Any) -> Any:
        if info_hash == bad:
            raise OSError(errno.EIO, "Input/output error")
        return real(manager, info_hash, *args)

    monkeypatch.setattr(checks, "check_on_disk", check_on_disk)
    checks_in_threads(monkeypatch)  # (each check seen by the hook)
    async with _service(tmp_path) as jobs:
        ids = [r[0].id for r in await jobs.add_many(torrents) if isinstance(r, tuple)]
        await all_seeding(jobs, [ids[0], ids[2]])
        await _state(jobs, ids[1], JobState.ERROR)
        failed = jobs.get(ids[1])
        assert failed.error is not None and "check failed" in failed.error and "Input/output" in failed.error
        assert jobs.manager.get(bad) is None  # (no session made for it)
        await jobs.resume(ids[1])  # (resumed, its session checks the files itself)
        await all_seeding(jobs, [ids[1]])


async def test_a_job_paused_or_cancelled_while_it_waits_is_not_checked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    torrents = seeds(tmp_path / "dl", 3)
    release = threading.Event()
    checked: list[str] = []
    real = checks.check_on_disk

    def check_on_disk(manager: Any, info_hash: str, *args: Any) -> Any:
        checked.append(info_hash)
        release.wait(10)  # (the first holds the one slot while the others wait)
        return real(manager, info_hash, *args)

    monkeypatch.setattr(checks, "check_on_disk", check_on_disk)
    checks_in_threads(monkeypatch)  # (each check seen by the hook)
    try:
        async with _service(tmp_path, limit=1) as jobs:
            ids = [r[0].id for r in await jobs.add_many(torrents) if isinstance(r, tuple)]
            with anyio.fail_after(10):
                while not checked:
                    await anyio.sleep(0.01)
            by_hash = {t.info_hash.hex(): i for t, i in zip(torrents, ids, strict=True)}
            first = by_hash[checked[0]]  # (under its check: the others wait)
            waiting = [i for i in ids if i != first]
            paused = await jobs.pause(waiting[0])
            assert paused.state is JobState.PAUSED and jobs.manager.get(paused.info_hash) is None
            await jobs.cancel(waiting[1], delete_files=False)
            release.set()
            await all_seeding(jobs, [first])
            await anyio.sleep(0.2)
            assert checked == [jobs.get(first).info_hash]  # (the paused and the cancelled: never)
            assert jobs.get(waiting[0]).state is JobState.PAUSED
            assert jobs.get(waiting[1]).state is JobState.CANCELLED
            await jobs.resume(waiting[0])  # its session checks it
            await all_seeding(jobs, [waiting[0]])
            resume = jobs.manager.saved_resume(jobs.get(first).info_hash)
            assert resume is not None and resume.files and len(resume.pieces()) == torrents[0].num_pieces
    finally:
        release.set()


async def test_a_job_paused_as_its_check_ends_is_shown_paused_and_starts_from_what_it_found(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pause that comes after the check is over, its word waiting for the job's lock: the job
    stayed ``checking`` with no session and nothing under way, for good (found by
    tests/fuzz/test_jobs_stateful.py: an add of data on disk, then a pause). It is shown paused
    at once, what the check found is kept, and its session trusts it once resumed."""
    torrents = seeds(tmp_path / "dl", 1)
    rechecks = _count_rechecks(monkeypatch)
    over, go = anyio.Event(), anyio.Event()
    real = checks.PendingChecks._apply

    async def word_held(self: checks.PendingChecks, rec: Any, *found: Any) -> None:
        over.set()
        await go.wait()
        await real(self, rec, *found)

    monkeypatch.setattr(checks.PendingChecks, "_apply", word_held)
    async with _service(tmp_path) as jobs:
        job, _ = await jobs.add(torrents[0])
        with anyio.fail_after(10):
            await over.wait()
        paused = await jobs.pause(job.id)
        assert paused.state is JobState.PAUSED
        go.set()
        with anyio.fail_after(10):  # (the check's word, once the pause let go of the job)
            while (now := jobs.get(job.id)).progress != 1.0:
                await anyio.sleep(0.01)
        assert now.state is JobState.PAUSED
        assert jobs.manager.get(torrents[0].info_hash) is None  # (no session)
        resume = jobs.manager.saved_resume(torrents[0].info_hash)
        assert resume is not None and len(resume.pieces()) == torrents[0].num_pieces
        await jobs.resume(job.id)
        await all_seeding(jobs, [job.id])
        assert rechecks == []  # (what the check found was trusted)


async def test_checks_cut_short_by_a_stop_go_on_at_the_next_start_without_checking_twice(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    torrents = seeds(tmp_path / "dl", 4)
    release = threading.Event()
    checked: list[str] = []
    real = checks.check_on_disk

    def held(manager: Any, info_hash: str, *args: Any) -> Any:
        checked.append(info_hash)
        if len(checked) > 1:  # (the first ends; the second holds the one slot until the stop)
            release.wait(10)
        return real(manager, info_hash, *args)

    monkeypatch.setattr(checks, "check_on_disk", held)
    checks_in_threads(monkeypatch)  # (each check seen by the hook)
    try:
        async with _service(tmp_path, limit=1) as jobs:
            ids = [r[0].id for r in await jobs.add_many(torrents) if isinstance(r, tuple)]
            with anyio.fail_after(10):
                while len(checked) < 2:
                    await anyio.sleep(0.01)
            first = next(i for i in ids if jobs.get(i).info_hash == checked[0])
            await all_seeding(jobs, [first])
            assert [jobs.get(i).state for i in ids].count(JobState.CHECKING) == 3
    finally:
        release.set()
    checked.clear()
    monkeypatch.setattr(checks, "check_on_disk", lambda manager, info_hash, *args: (
        checked.append(info_hash), real(manager, info_hash, *args))[1])
    checks_in_threads(monkeypatch)  # (each check seen by the hook)
    rechecks = _count_rechecks(monkeypatch)
    async with _service(tmp_path, limit=1) as jobs:
        await all_seeding(jobs, ids)
        assert sorted(checked) == sorted(jobs.get(i).info_hash for i in ids if i != first)  # (once each)
        assert rechecks == []  # (no session checked them: each waited as its record)
        assert all(jobs.manager.get(jobs.get(i).info_hash) is None for i in ids)  # (dormant seeds)


async def test_what_a_check_finds_is_kept_as_a_row_that_its_session_reads_and_keeps(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    torrents = seeds(tmp_path / "dl", 3)
    rechecks = _count_rechecks(monkeypatch)
    folder = tmp_path / "state" / "torrents"
    async with _service(tmp_path) as jobs:
        ids = [r[0].id for r in await jobs.add_many(torrents) if isinstance(r, tuple)]
        await all_seeding(jobs, ids)
        kept = jobs.manager.kept
        assert kept is not None and kept.resume_keys() == {t.info_hash for t in torrents}
        assert list(folder.glob("*.resume")) == []  # (rows: no file created a torrent)
        for t in torrents:
            resume = jobs.manager.saved_resume(t.info_hash)
            assert resume is not None and len(resume.pieces()) == t.num_pieces and resume.files
        job = jobs.get(ids[0])
        assert await jobs.stream_session(job.id) is not None  # (woken: it reads its resume data from the row)
        await _state(jobs, job.id, JobState.SEEDING)
        session = jobs.manager.get(job.info_hash)
        assert session is not None and len(session.have) == torrents[0].num_pieces
        assert rechecks == []  # (it trusted what the check found)
        await jobs.pause(job.id)  # (its stop saves: the row again, still no file)
        assert list(folder.glob("*.resume")) == []
        assert kept.resume_keys() == {t.info_hash for t in torrents}
        removed = ids[1]
        await jobs.cancel(removed, delete_files=False)
        assert jobs.manager.saved_resume(jobs.get(removed).info_hash) is None
        assert kept.resume_keys() == {torrents[0].info_hash, torrents[2].info_hash}


async def test_resume_rows_that_cannot_be_written_are_logged_and_the_checks_go_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    torrents = seeds(tmp_path / "dl", 3)
    async with _service(tmp_path) as jobs:
        def full(items: Any) -> None:
            raise MetainfoStoreError(errno.ENOSPC, "metainfo store: database or disk is full")

        monkeypatch.setattr(jobs.manager, "keep_resume_many", full)
        ids = [r[0].id for r in await jobs.add_many(torrents) if isinstance(r, tuple)]
        await all_seeding(jobs, ids)  # (each checked; its session, when one starts, checks again)
        assert all(jobs.manager.saved_resume(t.info_hash) is None for t in torrents)
    assert sum("cannot keep its resume data" in r.getMessage() and "disk is full" in r.getMessage()
               for r in caplog.records) == 3


async def test_a_batch_of_adds_writes_its_torrents_in_a_few_groups_not_one_thread_each(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    torrents = seeds(tmp_path / "dl", 25)
    async with _service(tmp_path) as jobs:
        groups: list[int] = []
        real = jobs.manager.save_torrents

        def save_torrents(items: Any, **kwargs: Any) -> None:
            groups.append(len(items))
            real(items, **kwargs)

        monkeypatch.setattr(jobs.manager, "save_torrents", save_torrents)
        ids = [r[0].id for r in await jobs.add_many(torrents) if isinstance(r, tuple)]
        assert len(ids) == 25 and sum(groups) == 25
        assert len(groups) <= 5, groups  # (the adds that asked while a group was written: the next group)
        await all_seeding(jobs, ids)
        for t in torrents:
            assert jobs.manager.saved_metainfo_bytes(t.info_hash) == t.to_bytes()


@pytest.mark.parametrize("in_process", [False, True])
async def test_a_check_cut_short_by_a_stop_goes_on_from_its_saved_progress_at_the_next_start(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_process: bool) -> None:
    """A big import stopped part way through its check (in the service's thread, or in the check
    process, whose progress the service saves): the next start hashes only the rest."""
    data = bytearray(payload(48 * 16384, 9))
    torrent = make_torrent([(("big.bin",), bytes(data))], 16384, name="big")
    data[5 * 16384] ^= 0xFF  # (piece 5 wrong: not had after either run)
    target = (tmp_path / "dl").joinpath(*torrent.files[0].path)
    target.parent.mkdir(parents=True)
    target.write_bytes(bytes(data))
    monkeypatch.setattr(checks, "CHECK_SAVE_INTERVAL", 0.0)
    hashed: list[int] = []
    saved: list[int] = []
    gate, ended = threading.Event(), threading.Event()
    real_ok, real_check, real_save = check_module.piece_ok, checks.check_on_disk, checks.CheckSaves.save

    def counting_ok(t: Any, index: int, piece: Any) -> bool:
        if len(hashed) >= 16:
            gate.wait(10)  # (held: the service is stopped meanwhile)
        hashed.append(index)
        return real_ok(t, index, piece)

    def held_save(self: checks.CheckSaves, have: Any, checked_up_to: int, begun: Any) -> bool:
        done = real_save(self, have, checked_up_to, begun)
        saved.append(checked_up_to)
        gate.wait(10)  # (held after the first save: the service is stopped meanwhile)
        return done

    def check(*args: Any) -> Any:
        try:
            return real_check(*args)
        finally:
            ended.set()

    def given_back(self: checks.PendingChecks, process: Any) -> None:
        try:
            real_back(self, process)
        finally:
            ended.set()  # (the turn's thread is over)

    if in_process:
        real_back = checks.PendingChecks._give_back
        monkeypatch.setattr(checks.CheckSaves, "save", held_save)
        monkeypatch.setattr(checks.PendingChecks, "_give_back", given_back)
    else:
        checks_in_threads(monkeypatch)
        monkeypatch.setattr(check_module, "piece_ok", counting_ok)
        monkeypatch.setattr(checks, "check_on_disk", check)
    rechecks = _count_rechecks(monkeypatch)
    try:
        async with _service(tmp_path) as jobs:
            job, _ = await jobs.add(torrent)
            with anyio.fail_after(10):
                while len(hashed) < 16 and not saved:
                    await anyio.sleep(0.01)
    finally:
        gate.set()
    assert await anyio.to_thread.run_sync(ended.wait, 10)  # (the abandoned thread has seen its stop)
    store = MetainfoStore(tmp_path / "state" / DB_FILE)
    row = store.get_resume(torrent.info_hash)
    store.close()
    progress = None if row is None else decode_resume(row)
    assert progress is not None and progress.checked_up_to is not None and 0 < progress.checked_up_to < 48
    up_to = progress.checked_up_to
    assert progress.pieces() == set(range(up_to)) - {5}
    hashed.clear()
    monkeypatch.setattr(checks.CheckSaves, "save", real_save)
    checks_in_threads(monkeypatch)  # (to see which pieces the next start hashes)
    monkeypatch.setattr(check_module, "piece_ok", counting_ok)
    async with _service(tmp_path) as jobs:
        await _state(jobs, job.id, JobState.DOWNLOADING)  # (piece 5 missing: it waits for a peer)
        assert sorted(hashed) == list(range(up_to, 48))  # only the rest
        session = jobs.manager.get(job.info_hash)
        assert session is not None and set(session.have) == set(range(48)) - {5}
        assert rechecks == []


@pytest.mark.parametrize("seed_mode", [False, True])
async def test_a_seed_whose_torrent_cannot_be_kept_is_not_added_and_its_record_not_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed_mode: bool) -> None:
    """A torrent added with its data on disk (checked without a session, or a dormant seed in
    seed mode) has its torrent kept in the same write as its record: when the torrent cannot be
    kept, the add is refused saying so, and nothing of it is listed, kept or found at the next
    start; the next add, once it can be, is made."""
    from torrent_engine.jobs import AddOptions
    from torrent_engine.jobs.model import StateNotSaved

    torrent = seeds(tmp_path / "dl", 1)[0]
    options = AddOptions(seed_mode=seed_mode)
    async with _service(tmp_path) as jobs:
        def full(torrents: Any, **kwargs: Any) -> None:
            raise MetainfoStoreError(errno.ENOSPC, "metainfo store: database or disk is full")

        monkeypatch.setattr(jobs.manager, "save_torrents", full)
        with pytest.raises(StateNotSaved, match="full"):
            await jobs.add(torrent, options)
        assert jobs.list() == [] and jobs.manager.sessions == []
        assert jobs.manager.saved_metainfo_bytes(torrent.info_hash) is None
    async with _service(tmp_path) as jobs:
        assert jobs.list() == []
        job, _ = await jobs.add(torrent, options)
        await all_seeding(jobs, [job.id])
    async with _service(tmp_path) as jobs:
        assert [j.state for j in jobs.list()] == [JobState.SEEDING]


async def _added_until_a_check(jobs: JobService, torrents: list[Any], checked: list[str]) -> list[str]:
    """Add ``torrents`` (their data on disk): their job ids, once ``checked`` has a first check."""
    ids = [r[0].id for r in await jobs.add_many(torrents) if isinstance(r, tuple)]
    with anyio.fail_after(10):
        while not checked:
            await anyio.sleep(0.001)
    return ids


async def test_the_checks_go_on_back_to_back_while_the_loop_is_busy(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    torrents = seeds(tmp_path / "dl", 6)
    checked: list[str] = []
    all_checked = threading.Event()
    real = checks.check_on_disk

    def check_on_disk(manager: Any, info_hash: str, *args: Any) -> Any:
        found = real(manager, info_hash, *args)
        checked.append(info_hash)
        if len(checked) == len(torrents):
            all_checked.set()
        return found

    monkeypatch.setattr(checks, "check_on_disk", check_on_disk)
    checks_in_threads(monkeypatch)  # (each check seen by the hook)
    monkeypatch.setattr(checks, "CHECK_TURN", 60.0)
    async with _service(tmp_path, limit=1) as jobs:
        ids = await _added_until_a_check(jobs, torrents, checked)
        # The loop held (a poll's answer, the adds): the thread takes the next jobs itself. (Before,
        # each check was a thread call of its own, started from the loop: one at most meanwhile.)
        assert all_checked.wait(10), f"{len(checked)} of {len(torrents)} checked while the loop was held"
        await all_seeding(jobs, ids)
        assert sorted(checked) == sorted(t.info_hash.hex() for t in torrents)  # (once each)


async def test_a_turn_of_checks_gives_its_slot_back_to_a_recheck_waiting_for_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    torrents = seeds(tmp_path / "dl", 30)
    checked: list[str] = []
    real = checks.check_on_disk

    def slow(manager: Any, info_hash: str, *args: Any) -> Any:
        time.sleep(0.02)
        checked.append(info_hash)
        return real(manager, info_hash, *args)

    monkeypatch.setattr(checks, "check_on_disk", slow)
    checks_in_threads(monkeypatch)  # (each check seen by the hook)
    monkeypatch.setattr(checks, "CHECK_TURN", 0.05)
    async with _service(tmp_path, limit=1) as jobs:
        ids = await _added_until_a_check(jobs, torrents, checked)
        async with jobs.manager.shared.check_slots:  # (as a session's recheck takes it)
            when = len(checked)
        assert when < len(torrents) // 2, f"the slot came back after {when} of {len(torrents)} checks"
        await all_seeding(jobs, ids)
