"""A dormant seed (complete, without a session since the start) still counts its seeding time
and meets its share limits, is paused and resumed as any job, and is not made when the queue
judges it."""

from __future__ import annotations

import dataclasses
import gc
import json
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.integration.helpers import loopback_config
from tests.unit.clock import FakeClock
from tests.unit.jobs.test_jobs_features import seed_data, service, two_files, wait_state
from torrent_engine.engine.manager import TorrentManager
from torrent_engine.jobs import JobAdded, JobFeatures, JobOptions, JobState, JobStateChanged, ShareLimitAction
from torrent_engine.jobs.queueing.dormant import DormantSeeds, _tiers
from torrent_engine.jobs.store import JobRecord, JobStore
from torrent_engine.net.tracker.coordinator import TrackerMemory

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(("action", "limit"), [(ShareLimitAction.STOP, "seeding_time_limit"),
                                               (ShareLimitAction.REMOVE, "seeding_time_limit"),
                                               (ShareLimitAction.STOP, "idle_seeding_limit")])
async def test_a_dormant_seed_counts_its_seeding_time_and_meets_its_time_limit(
        tmp_path: Path, action: ShareLimitAction, limit: str) -> None:
    """(Its idle seeding limit too: a dormant seed sends nothing, its seeding time is idle.)"""
    torrent = two_files()
    seed_data(tmp_path / "dl", torrent)
    clock = FakeClock()
    async with service(tmp_path, seed=True, clock=clock) as jobs:
        await jobs.update_settings(share_limit_action=action.value)
        job, _ = await jobs.add(torrent, features=JobFeatures(**{limit: 120}))
        await wait_state(jobs, job.id, JobState.SEEDING)
    async with service(tmp_path, seed=True, clock=clock) as jobs:
        assert jobs.manager.get(torrent.info_hash) is None  # dormant
        start = jobs.get(job.id).seeding_time
        await jobs.enforce()
        clock.now += 60
        await jobs.enforce()
        assert jobs.get(job.id).state is JobState.SEEDING
        assert jobs.get(job.id).seeding_time == pytest.approx(start + 60)
        clock.now += 120 - start - 60 + 1
        await jobs.enforce()
        done = jobs.get(job.id)
        if action is ShareLimitAction.STOP:
            assert done.state is JobState.PAUSED and done.options.paused
        else:
            assert done.state is JobState.COMPLETED
        assert jobs.manager.get(torrent.info_hash) is None  # (stopped or ended without waking it)
        assert (tmp_path / "dl" / "pair" / "a.bin").is_file()
    saved = json.loads(JobStore(tmp_path / "state").read(job.id) or b"null")
    assert saved["seeding_time"] == pytest.approx(121)
    assert saved["state"] == ("paused" if action is ShareLimitAction.STOP else "completed")


async def test_a_dormant_seed_meets_a_ratio_limit_set_while_it_sleeps(tmp_path: Path) -> None:
    torrent = two_files()
    seed_data(tmp_path / "dl", torrent)
    async with service(tmp_path, seed=True) as jobs:
        job, _ = await jobs.add(torrent)
        await wait_state(jobs, job.id, JobState.SEEDING)
    async with service(tmp_path, seed=True) as jobs:
        await jobs.enforce()
        assert jobs.manager.get(torrent.info_hash) is None and jobs.get(job.id).state is JobState.SEEDING
        await jobs.update_settings(ratio_limit=0)
        await wait_state(jobs, job.id, JobState.PAUSED, enforce=True)


async def test_a_dormant_seed_is_paused_and_resumed_as_any_job(tmp_path: Path) -> None:
    """Paused, a dormant seed is no more announced; resumed (after a restart too) it is a
    dormant seed again, without a session, as at a start: a peer's wake starts one that trusts
    its resume data."""
    torrent = two_files()
    seed_data(tmp_path / "dl", torrent)
    async with service(tmp_path, seed=True) as jobs:
        job, _ = await jobs.add(torrent)
        await wait_state(jobs, job.id, JobState.SEEDING)
    async with service(tmp_path, seed=True) as jobs:
        assert jobs.manager.get(torrent.info_hash) is None
        paused = await jobs.pause(job.id)
        assert paused.state is JobState.PAUSED and jobs.manager.get(torrent.info_hash) is None
    async with service(tmp_path, seed=True) as jobs:
        assert jobs.get(job.id).state is JobState.PAUSED
        resumed = await jobs.resume(job.id)  # (complete, its files there: a dormant seed again)
        assert resumed.state is JobState.SEEDING and jobs.manager.get(torrent.info_hash) is None
        session = await jobs.stream_session(job.id)  # (woken, as by a peer)
        assert session is not None
        await session.wait_ready()
        assert not session.rechecked
        await wait_state(jobs, job.id, JobState.SEEDING)
    async with service(tmp_path, seed=True) as jobs:  # (seeding again: dormant again at the start)
        assert jobs.get(job.id).state is JobState.SEEDING and jobs.manager.get(torrent.info_hash) is None


@pytest.mark.parametrize("gone", [False, True])
async def test_paused_seeds_resumed_together_wait_for_peers_without_sessions(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gone: bool) -> None:
    """Dormant seeds paused and resumed together (``each``, as a client's "resume all"): each
    a dormant seed again, no session started, no saved torrent read again (the deduplication
    knew their files), their files looked at a group a worker-thread hop (a hop each made a
    resume of 10 000 take 7 s: bench/RESULTS.md); one whose file is gone (or not at its size)
    meanwhile is resumed with a session, which says what is missing."""
    from torrent_engine.jobs import control

    looks: list[int] = []
    real_look = control._files_there

    def looked(*args: Any) -> Any:
        looks.append(len(args[1]) if isinstance(args[1], list) else 1)
        return real_look(*args)

    monkeypatch.setattr(control, "_files_there", looked)
    torrents = [two_files(f"pair{i}") for i in range(4)]
    for t in torrents:
        seed_data(tmp_path / "dl", t)
    async with service(tmp_path, seed=True) as jobs:
        ids = [(await jobs.add(t))[0].id for t in torrents]
        for i in ids:
            await wait_state(jobs, i, JobState.SEEDING)
        assert not jobs.manager.sessions
        assert jobs.dedup.mode != "off"
        await anyio.sleep(0.1)  # (what the adds set off, learnt)
        reads = [0]
        real = jobs.manager.saved_metainfo

        def counted(info_hash: bytes | str) -> object:
            reads[0] += 1
            return real(info_hash)

        jobs.manager.saved_metainfo = counted  # type: ignore[method-assign]
        before = reads[0]
        assert await jobs.each(ids, jobs.pause) == {}
        if gone:
            (tmp_path / "dl" / "pair0" / "b.bin").unlink()
        assert await jobs.each(ids, jobs.resume) == {}
        assert sum(looks) == len(ids) and len(looks) < len(ids), looks
        assert [jobs.get(i).state for i in ids[1:]] == [JobState.SEEDING] * 3
        # (the one whose file is gone: its session started, found the file missing and stopped)
        assert all(jobs.manager.get(t.info_hash) is None for t in torrents[1:])
        assert gone or not jobs.manager.sessions
        assert reads[0] == before or gone  # (the deduplication knew their files: no torrent read again)
        if gone:
            with anyio.fail_after(10):
                while (first := jobs.get(ids[0])).state is not JobState.ERROR:
                    await anyio.sleep(0.01)
            assert first.missing_files and "b.bin" in first.missing_files[0]


async def test_with_queueing_on_a_complete_seed_starts_its_session_as_before(tmp_path: Path) -> None:
    """The queue weighs the seeds it lets run by their sessions: a seed it judges is not made
    dormant."""
    torrent = two_files()
    seed_data(tmp_path / "dl", torrent)
    async with service(tmp_path, seed=True) as jobs:
        await jobs.update_settings(queueing=True)
        job, _ = await jobs.add(torrent)
        await wait_state(jobs, job.id, JobState.SEEDING, enforce=True)
    async with service(tmp_path, seed=True) as jobs:
        assert jobs.manager.get(torrent.info_hash) is not None
        await wait_state(jobs, job.id, JobState.SEEDING, enforce=True)


async def test_the_first_round_after_a_restart_writes_no_dormant_seed_record(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """(10 000 dormant seeds, each record written again one by one at the first round, took
    longer than the rest of the start.)"""
    torrent = two_files()
    seed_data(tmp_path / "dl", torrent)
    async with service(tmp_path, seed=True) as jobs:
        job, _ = await jobs.add(torrent)
        await wait_state(jobs, job.id, JobState.SEEDING)
    written: list[str] = []
    real = JobStore.write_many

    def write_many(store: JobStore, rows: list[tuple[str, bytes]]) -> None:
        written.extend(job_id for job_id, _ in rows)
        real(store, rows)

    monkeypatch.setattr(JobStore, "write_many", write_many)
    async with service(tmp_path, seed=True) as jobs:
        await jobs.enforce()
        await jobs.enforce()
        assert jobs.manager.get(torrent.info_hash) is None
        assert written == []


@pytest.mark.parametrize("seed_mode", [True, False])
async def test_an_add_without_a_session_is_written_once_and_announced_in_its_state(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed_mode: bool) -> None:
    """A seed-mode add that sleeps at once is written once, seeding, and its ``job.added`` says
    so, with no ``job.state`` after it; a checked add without a session likewise, checking, until
    its check ends (a second record and a state event an add were a third of what 10 000
    seed-mode adds cost: bench/RESULTS.md, "Written once")."""
    torrent = two_files()
    seed_data(tmp_path / "dl", torrent)
    written: list[str] = []
    real = JobStore.write_many

    def write_many(store: JobStore, rows: list[tuple[str, bytes]]) -> None:
        written.extend(json.loads(data)["state"] for _job_id, data in rows)
        real(store, rows)

    monkeypatch.setattr(JobStore, "write_many", write_many)
    heard: list[tuple[str, str]] = []
    async with service(tmp_path, seed=True) as jobs:
        jobs.events.subscribe(JobAdded, lambda e: heard.append(("job.added", e.job.state.value)))
        jobs.events.subscribe(JobStateChanged, lambda e: heard.append(("job.state", e.new.value)))
        job, _ = await jobs.add(torrent, seed_mode=seed_mode)
        first = "seeding" if seed_mode else "checking"
        assert job.state.value == first and written[:1] == [first]
        await wait_state(jobs, job.id, JobState.SEEDING)
        with anyio.fail_after(10):  # (the state is the job's at once; its record is written after)
            while written[-1:] != ["seeding"]:
                await anyio.sleep(0.01)
        await jobs.enforce()
        assert jobs.manager.get(torrent.info_hash) is None  # (no session: dormant)
        if seed_mode:
            assert written == ["seeding"] and heard == [("job.added", "seeding")]
        else:  # (its check's end is a change: written and told)
            assert written == ["checking", "seeding"]
            assert heard == [("job.added", "checking"), ("job.state", "seeding")]
    saved = json.loads(JobStore(tmp_path / "state").read(job.id) or b"null")
    assert saved["state"] == "seeding" and saved["done_size"] == torrent.total_length
    assert saved["completed_at"] is not None


async def test_a_dormant_seeds_web_seeds_are_its_metainfos_until_edited_and_its_session_takes_them(
        tmp_path: Path) -> None:
    torrent = dataclasses.replace(two_files(), web_seeds=("http://a.example/pub/", "ftp://b.example/"))
    seed_data(tmp_path / "dl", torrent)
    async with service(tmp_path, seed=True) as jobs:
        job, _ = await jobs.add(torrent)
        await wait_state(jobs, job.id, JobState.SEEDING)
    async with service(tmp_path, seed=True) as jobs:
        assert jobs.manager.get(torrent.info_hash) is None  # dormant
        assert jobs.web_seeds(job.id) == ["http://a.example/pub/"]
        await jobs.set_web_seeds(job.id, ["https://c.example/x"])
        assert jobs.manager.get(torrent.info_hash) is None  # (still asleep: an edit wakes nothing)
        assert jobs.web_seeds(job.id) == ["https://c.example/x"]
        await jobs.add_peers(job.id, [("127.0.0.1", 9)])  # (a peer to dial wakes it)
        session = jobs.manager.get(torrent.info_hash)
        assert session is not None and session.web_seed_urls == ["https://c.example/x"]


class _Round:
    """One tracker round of a dormant seed, in place of a ``TrackerCoordinator``: it records the
    tiers it was made with (and those of a round told to announce every tier now: ``asked``), and
    the first one is held in flight until ``release`` is set."""

    made: list[list[list[str]]]
    asked: list[list[list[str]]]
    in_flight: anyio.Event
    release: anyio.Event

    def __init__(self, tiers: list[list[str]]) -> None:
        self.tiers = tiers

    async def announce_now(self) -> float:
        _Round.made.append(self.tiers)
        if len(_Round.made) == 1:
            _Round.in_flight.set()
            await _Round.release.wait()
        return 1800.0  # (the tracker's interval: the next round comes half an hour later)

    def remembered(self) -> tuple[TrackerMemory, ...]:
        return tuple(TrackerMemory(url, announced=True) for tier in self.tiers for url in tier)

    def reannounce(self) -> None:
        _Round.asked.append(self.tiers)

    async def stop(self, timeout: float) -> None:
        pass


async def test_trackers_edited_while_a_dormant_seeds_round_is_in_flight_are_announced_when_it_ends(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """(A reannounce that came while a round was in flight was lost when that round ended first:
    the end scheduled the next round 30 minutes away, and the loop then took the one asked for as
    rescheduled; one that came before started a second round beside it, which told ``started``
    again to a tracker the first had told.)"""
    first, other = "http://first.example/announce", "http://other.example/announce"
    _Round.made, _Round.asked, _Round.in_flight, _Round.release = [], [], anyio.Event(), anyio.Event()
    monkeypatch.setattr(DormantSeeds, "_coordinator", lambda self, seed: _Round(_tiers(seed.rec)))
    options = JobOptions(save_path=str(tmp_path), files=None, sequential=False, paused=False, peers=(),
                         client=None, download_limit=0, upload_limit=0)
    rec = JobRecord(id="j1", info_hash="ab" * 20, name="seed", source="torrent", options=options,
                    state=JobState.SEEDING, created_at=0.0, updated_at=0.0, trackers=[first])

    async def wake(rec: JobRecord) -> None:
        raise AssertionError("nothing wakes it here")

    async with TorrentManager(loopback_config(tracker_enabled=True)) as manager:
        seeds = DormantSeeds(manager, wake)
        async with anyio.create_task_group() as tg:
            await seeds.add(rec)
            tg.start_soon(seeds.run)
            with anyio.fail_after(10):
                await _Round.in_flight.wait()
            rec.tracker_tiers = [[first], [other]]
            seeds.reannounce(rec)  # (its trackers edited while the first round is in flight)
            await anyio.sleep(0.1)  # (a second round begun beside it would be under way by now)
            rec.tracker_tiers = [[other]]
            _Round.release.set()  # the round in flight ends ...
            seeds.reannounce(rec)  # ... just as the next edit lands: the order a loaded machine has
            with anyio.move_on_after(10):  # (lost, it would come in 30 minutes)
                while len(_Round.made) < 2:
                    await anyio.sleep(0.01)
            for _ in range(20):
                await anyio.sleep(0)
            assert _Round.made == [[[first]], [[other]]]  # one round at a time, the next with the edit
            assert _Round.asked == [[[other]]]  # (asked for: every tier of it now, whatever its interval)
            tg.cancel_scope.cancel()


async def test_a_dormant_seed_is_one_object_for_the_collector_and_its_wake_starts_its_job() -> None:
    """(A closure made each seed's wake: a function, two cells and their tuple more a seed, which
    every sweep of the daemon's collector walked, at 10 000 seeds 40 000 objects.)"""
    options = JobOptions(save_path="/nowhere", files=None, sequential=False, paused=False, peers=(),
                         client=None, download_limit=0, upload_limit=0)
    recs = [JobRecord(id=f"j{i}", info_hash=f"{i:040x}", name="seed", source="torrent", options=options,
                      state=JobState.SEEDING, created_at=0.0, updated_at=0.0) for i in range(1, 201)]
    woken: list[str] = []

    async def wake(rec: JobRecord) -> None:
        woken.append(rec.id)  # (no session: the wake then says so)

    async with TorrentManager(loopback_config(dht_enabled=False)) as manager:
        seeds = DormantSeeds(manager, wake)
        await seeds.add(recs[0])
        gc.collect()
        before = len(gc.get_objects())
        for rec in recs[1:]:
            await seeds.add(rec)
        gc.collect()
        assert len(gc.get_objects()) - before <= len(recs[1:])  # its _Seed alone
        handler = await manager.shared._wake(bytes.fromhex(recs[7].info_hash))
        assert handler is None and woken == ["j8"] and len(seeds) == 200
        async with anyio.create_task_group() as tg:  # (its run's end lets go of the seeds)
            tg.start_soon(seeds.run)
            await anyio.sleep(0.05)
            tg.cancel_scope.cancel()
        assert len(seeds) == 0


class _Stopping(_Round):
    """A round whose ``stop`` is held until ``release`` is set, and records its timeout."""

    stops: list[tuple[str, float]]

    async def stop(self, timeout: float) -> None:
        _Stopping.stops.append((self.tiers[0][0], timeout))
        await _Round.release.wait()


async def test_dormant_seeds_that_leave_tell_their_trackers_stopped_in_the_background(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A pause of many dormant seeds does not wait for their trackers: ``leave`` returns at once,
    the loop sends each ``stopped`` (the Config's timeout, read then), ``stopped`` waits for a
    seed's own; one never announced, or left to its session (``hand_over``), tells nothing. (They
    told nothing at all before: a tracker listed a paused seed until its own timeout.)"""
    _Round.made, _Round.asked, _Round.in_flight, _Round.release = [], [], anyio.Event(), anyio.Event()
    _Round.in_flight.set()
    _Round.release.set()  # (the first rounds announce at once)
    _Stopping.stops = []
    monkeypatch.setattr(DormantSeeds, "_coordinator", lambda self, seed: _Stopping(_tiers(seed.rec)))
    options = JobOptions(save_path="/nowhere", files=None, sequential=False, paused=False, peers=(),
                         client=None, download_limit=0, upload_limit=0)
    recs = [JobRecord(id=f"j{i}", info_hash=f"{i:040x}", name="seed", source="torrent", options=options,
                      state=JobState.SEEDING, created_at=0.0, updated_at=0.0,
                      trackers=[f"http://t{i}.example/announce"]) for i in range(4)]

    async def wake(rec: JobRecord) -> None:
        raise AssertionError("nothing wakes it here")

    async with TorrentManager(loopback_config(tracker_enabled=True, dht_enabled=False,
                                              stop_tracker_timeout=3.0)) as manager:
        seeds = DormantSeeds(manager, wake)
        async with anyio.create_task_group() as tg:
            for rec in recs[:3]:
                await seeds.add(rec)
            tg.start_soon(seeds.run)
            with anyio.fail_after(10):
                while len(_Round.made) < 3:
                    await anyio.sleep(0.01)
                await seeds.add(recs[3])  # (never announced: nothing to stop)
                _Round.release = anyio.Event()  # (the stops are held from now on)
                assert seeds.leave(recs[0]) and seeds.leave(recs[1]) and seeds.leave(recs[3])
                assert seeds.leave(recs[2], hand_over=True)  # (its session goes on announcing)
                while len(_Stopping.stops) < 2:
                    await anyio.sleep(0.01)
                waited = anyio.Event()

                async def wait_stopped() -> None:
                    await seeds.stopped(recs[0])
                    waited.set()

                tg.start_soon(wait_stopped)
                await anyio.sleep(0.05)
                assert not waited.is_set()  # (its stopped is in flight: a session of it waits)
                _Round.release.set()
                await waited.wait()
                await seeds.stopped(recs[3])  # (none: at once)
            assert sorted(_Stopping.stops) == [("http://t0.example/announce", 3.0),
                                               ("http://t1.example/announce", 3.0)]
            tg.cancel_scope.cancel()


class _Chosen(_Round):
    """A round whose announce to chosen trackers (``reannounce(urls)``) is held until ``release``
    is set; its rounds (``announce_now``) go at once."""

    chosen: list[set[str]]

    def reannounce(self, urls: set[str] | None = None) -> None:  # type: ignore[override]
        if urls is None:
            _Round.asked.append(self.tiers)
        else:
            _Chosen.chosen.append(set(urls))

    async def announce_now(self) -> float:
        _Round.made.append(self.tiers)
        return 1800.0

    async def announce_chosen(self) -> None:
        _Round.in_flight.set()
        await _Round.release.wait()


async def test_a_dormant_seeds_round_due_while_its_chosen_trackers_are_announced_comes_after_them(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """One round of a seed's trackers in flight at a time: its round that comes due while an
    announce to chosen trackers (``reannounce(urls)``) is in flight waits for its end (it began
    a second coordinator beside it, each telling the trackers what it knew), then comes."""
    tracker = "http://first.example/announce"
    _Round.made, _Round.asked, _Round.in_flight, _Round.release = [], [], anyio.Event(), anyio.Event()
    _Chosen.chosen = []
    monkeypatch.setattr(DormantSeeds, "_coordinator", lambda self, seed: _Chosen(_tiers(seed.rec)))
    options = JobOptions(save_path="/nowhere", files=None, sequential=False, paused=False, peers=(),
                         client=None, download_limit=0, upload_limit=0)
    rec = JobRecord(id="j1", info_hash="ab" * 20, name="seed", source="torrent", options=options,
                    state=JobState.SEEDING, created_at=0.0, updated_at=0.0, trackers=[tracker])

    async def wake(rec: JobRecord) -> None:
        raise AssertionError("nothing wakes it here")

    async with TorrentManager(loopback_config(tracker_enabled=True, dht_enabled=False)) as manager:
        seeds = DormantSeeds(manager, wake)
        async with anyio.create_task_group() as tg:
            # (its session went quiet: its next round due in 0.3 s)
            await seeds.add(rec, announced=((TrackerMemory(tracker, announced=True),), 0.3))
            seeds.reannounce(rec, [tracker])
            tg.start_soon(seeds.run)
            with anyio.fail_after(10):
                await _Round.in_flight.wait()
            await anyio.sleep(0.6)  # (the round comes due meanwhile)
            assert _Chosen.chosen == [{tracker}] and _Round.made == []
            _Round.release.set()
            with anyio.fail_after(10):
                while not _Round.made:
                    await anyio.sleep(0.01)
            assert _Round.made == [[[tracker]]]
            tg.cancel_scope.cancel()


async def test_a_seed_woken_during_its_round_hands_its_session_that_round_and_one_not_begun_is_not_made(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Woken while its round is in flight, a seed hands its session that round (``settling``:
    what the round leaves, once it ended), so the session tells no tracker ``started`` again;
    woken while its round waits for a tracker place, that round is not made at all (it was made,
    for a seed whose session announced by then)."""
    held, waiting = "http://held.example/announce", "http://waiting.example/announce"
    _Round.made, _Round.asked, _Round.in_flight, _Round.release = [], [], anyio.Event(), anyio.Event()
    monkeypatch.setattr(DormantSeeds, "_coordinator", lambda self, seed: _Round(_tiers(seed.rec)))
    options = JobOptions(save_path="/nowhere", files=None, sequential=False, paused=False, peers=(),
                         client=None, download_limit=0, upload_limit=0)
    recs = [JobRecord(id=f"j{i}", info_hash=f"{i:040x}", name="seed", source="torrent", options=options,
                      state=JobState.SEEDING, created_at=0.0, updated_at=0.0, trackers=[url])
            for i, url in enumerate((held, waiting), start=1)]

    async def wake(rec: JobRecord) -> None:
        raise AssertionError("its owner wakes it here")

    config = loopback_config(tracker_enabled=True, dht_enabled=False, active_tracker_limit=1)
    async with TorrentManager(config) as manager:
        seeds = DormantSeeds(manager, wake)
        async with anyio.create_task_group() as tg:
            for rec in recs:
                await seeds.add(rec)
            tg.start_soon(seeds.run)
            with anyio.fail_after(10):
                await _Round.in_flight.wait()
            await anyio.sleep(0.05)  # (the second seed's round waits for the one place)
            assert _Round.made == [[[held]]]
            for rec in recs:
                assert seeds.leave(rec, hand_over=True)
            first, second = (seeds.handed(rec) for rec in recs)
            assert first[0] == ((), 0.0) and first[1] is not None  # (what it knew before: nothing yet)
            assert second == (None, None)  # (nothing to hand: its session announces at once)
            settling = first[1]
            _Round.release.set()
            with anyio.fail_after(10):
                remembered, next_in = await settling()
            assert remembered == (TrackerMemory(held, announced=True),) and 1790 < next_in <= 1800
            for _ in range(20):
                await anyio.sleep(0)
            assert _Round.made == [[[held]]]  # (the second seed's round, not begun, was not made)
            tg.cancel_scope.cancel()
