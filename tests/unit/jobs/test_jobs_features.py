"""Job features without a swarm: categories, tags, share limits, the queue, first/last-piece
priority, moving a job, run-time settings, and that all of it survives a restart."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from tests.kept import damage_kept
from tests.unit.clock import FakeClock
from tests.unit.torrent_factory import make_torrent, payload
from torrent_engine.config import MAX_RATE_LIMIT, Config
from torrent_engine.engine.addtorrent import MagnetLink
from torrent_engine.engine.manager import TorrentManager
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.jobs import (
    InvalidJobRequest,
    JobConflict,
    JobFeatures,
    JobService,
    JobState,
    JobUpdated,
    SavePathError,
    ShareLimitAction,
)
from torrent_engine.jobs.model import share_ratio
from torrent_engine.jobs.organising.features import MAX_COMMENT, features_from, shown_comment
from torrent_engine.jobs.queueing.queue import (
    QueueEntry,
    admitted,
    held_jobs,
    move,
    share_limit_reached,
)
from torrent_engine.jobs.queueing.rounds import QueueRounds
from torrent_engine.jobs.store import JobStore
from torrent_engine.jobs.tuning.settings import ServiceSettings, load_settings
from torrent_engine.session.state_table import State

pytestmark = pytest.mark.anyio


def cfg(seed: bool = False) -> Config:
    return Config(listen_host="127.0.0.1", listen_port=0, dht_enabled=False, port_mapping=False,
                  lsd_enabled=False,
                  tracker_enabled=False, seed=seed)


def service(tmp_path: Path, *, seed: bool = False, clock: FakeClock | None = None) -> JobService:
    extra = {"clock": clock} if clock is not None else {}
    return JobService(cfg(seed), download_root=tmp_path / "dl", state_dir=tmp_path / "state", **extra)  # type: ignore[arg-type]


def magnet(c: str) -> str:
    return f"magnet:?xt=urn:btih:{c * 40}&dn=job-{c}"


def two_files(name: str = "pair") -> Torrent:
    return make_torrent([(("a.bin",), payload(40000, 1)), (("b.bin",), payload(50000, 2))], 16384, name=name)


def seed_data(root: Path, torrent: Torrent) -> None:
    """The torrent's complete data under ``root`` (so a job of it checks and seeds at once)."""
    for f in torrent.files:
        path = root.joinpath(torrent.name, *f.path[1:]) if len(torrent.files) > 1 else root / f.path[0]
        path.parent.mkdir(parents=True, exist_ok=True)
    data = b"".join([payload(40000, 1), payload(50000, 2)])
    offset = 0
    for f in torrent.files:
        target = root.joinpath(*f.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data[offset:offset + f.length])
        offset += f.length


async def wait_state(jobs: JobService, job_id: str, state: JobState, *, enforce: bool = False) -> None:
    with anyio.fail_after(15):
        while jobs.get(job_id).state is not state:
            if enforce:
                await jobs.enforce()
            await anyio.sleep(0.02)


# -- pure parts -----------------------------------------------------------------------------
def test_queue_holds_beyond_the_maxima_in_queue_order_and_force_start_runs() -> None:
    settings = ServiceSettings(queueing=True, max_active_downloads=1, max_active_uploads=1,
                               max_active_torrents=5)
    entries = [QueueEntry("c", 3, False, False), QueueEntry("a", 1, False, False),
               QueueEntry("b", 2, False, True), QueueEntry("s1", 4, True, False),
               QueueEntry("s2", 5, True, False)]
    assert held_jobs(entries, settings) == {"c", "s2"}
    assert held_jobs(entries, dataclasses.replace(settings, max_active_torrents=1)) == {"c", "s1", "s2"}
    assert held_jobs(entries, dataclasses.replace(settings, max_active_downloads=-1)) == {"s2"}
    assert held_jobs(entries, dataclasses.replace(settings, queueing=False)) == set()


def test_the_queue_reads_the_waiting_jobs_only_as_far_as_its_slots_go() -> None:
    """With 10 000 jobs waiting, the queue's round reads the first few (it sorted and walked
    them all every second)."""
    settings = ServiceSettings(queueing=True, max_active_downloads=3, max_active_uploads=2,
                               max_active_torrents=-1)
    read: list[str] = []

    def waiting(complete: bool) -> Iterator[QueueEntry]:
        for n in range(10_000):
            read.append(f"{complete}{n}")
            yield QueueEntry(f"{complete}{n}", n, complete, force_start=n == 1)

    given = admitted(waiting(False), waiting(True), settings)
    assert given == {"False0", "False2", "False3", "True0", "True2"}  # (1: force-started, apart)
    assert read == ["False0", "False1", "False2", "False3", "False4", "True0", "True1", "True2", "True3"]


def test_queue_moves() -> None:
    order = ["a", "b", "c", "d"]
    assert move(order, ["c"], "top") == ["c", "a", "b", "d"]
    assert move(order, ["b", "a"], "bottom") == ["c", "d", "a", "b"]
    assert move(order, ["c"], "up") == ["a", "c", "b", "d"]
    assert move(order, ["a"], "up") == order
    assert move(order, ["b"], "down") == ["a", "c", "b", "d"]
    assert move(order, ["d"], "down") == order


def test_share_ratio_and_limits() -> None:
    assert share_ratio(200, 100, 100) == 2.0
    assert share_ratio(50, 0, 100) == 0.5  # seeded from data on disk: over what it has
    assert share_ratio(0, 0, 0) == 0.0
    assert share_limit_reached(1.0, 0, 1.0, -1)
    assert not share_limit_reached(0.99, 0, 1.0, -1)
    assert share_limit_reached(0.0, 60, -1, 60)
    assert not share_limit_reached(5.0, 10_000, -1, -1)


# -- categories and tags ----------------------------------------------------------------------
async def test_categories_and_tags_persist_and_a_category_path_applies(tmp_path: Path) -> None:
    async with service(tmp_path) as jobs:
        await jobs.create_category("tv", "shows")
        await jobs.create_category("tv/hd", "")
        with pytest.raises(JobConflict):
            await jobs.create_category("tv", "x")
        for bad in ("/x", "a//b", "x/", ""):
            with pytest.raises(InvalidJobRequest):
                await jobs.create_category(bad, "")
        with pytest.raises(SavePathError):
            await jobs.create_category("evil", "../../etc")
        with pytest.raises(SavePathError):  # a refused add leaves no category or tag behind
            await jobs.add(magnet("e"), save_path="/etc", features=JobFeatures(category="x", tags=("t",)))
        assert "x" not in {c.name for c in jobs.categories()} and jobs.tags() == []
        job, _ = await jobs.add(magnet("a"), paused=True,
                                features=JobFeatures(category="tv", tags=("x", "y")))
        assert job.options.save_path == str((tmp_path / "dl" / "shows").resolve())
        other, _ = await jobs.add(magnet("b"), paused=True, save_path="mine",
                                  features=JobFeatures(category="new"))
        assert other.options.save_path.endswith("mine")
        assert [c.name for c in jobs.categories()] == ["new", "tv", "tv/hd"]  # "new" made by the add
        assert jobs.tags() == ["x", "y"]
        updates: list[JobUpdated] = []
        jobs.events.subscribe("job.updated", updates.append)  # type: ignore[arg-type]
        await jobs.add_tags([other.id], ["z", "x"])
        await anyio.sleep(0.01)  # (dispatch is on the next tick)
        assert [(u.job.id, u.job.features.tags) for u in updates] == [(other.id, ("x", "z"))]
        await jobs.remove_tags([job.id], ["x"])
        await jobs.set_features([job.id], ratio_limit=2.0, seeding_time_limit=-1)
        with pytest.raises(JobConflict):
            await jobs.set_features([job.id], category="nope")
        with pytest.raises(InvalidJobRequest):  # (a whole number no float holds: not an OverflowError)
            await jobs.set_features([job.id], ratio_limit=10**400)
        with pytest.raises(InvalidJobRequest):
            await jobs.add_tags([job.id], ["a,b"])
    async with service(tmp_path) as again:
        assert [(c.name, c.save_path) for c in again.categories()] == [
            ("new", ""), ("tv", str((tmp_path / "dl" / "shows").resolve())), ("tv/hd", "")]
        assert again.tags() == ["x", "y", "z"]
        a, b = again.get(job.id), again.get(other.id)
        assert (a.features.category, a.features.tags, a.features.ratio_limit) == ("tv", ("y",), 2.0)
        assert a.features.seeding_time_limit == -1
        assert (b.features.category, b.features.tags) == ("new", ("x", "z"))
        assert a.to_json()["features"]["tags"] == ["y"]  # type: ignore[index]
        await again.cancel(other.id)
        assert again.get(other.id).features.tags == ("x", "z")
        await again.remove_categories(["tv"])  # and its subcategory
        await again.delete_tags(["z"])
        assert [c.name for c in again.categories()] == ["new"]
        assert again.get(job.id).features.category == ""
        assert again.get(other.id).features.tags == ("x",)  # finished: its view follows too


# -- the queue ---------------------------------------------------------------------------------
@pytest.mark.parametrize("edit", ["set_features", "add_tags", "remove_tags", "delete_tags",
                                  "remove_categories", "move_in_queue"])
async def test_an_edit_of_many_jobs_writes_their_records_together(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edit: str) -> None:
    """A category, tags, share limits or queue places given to many jobs at once (a client's
    ``hashes=all``, qbit_manage's tagging of every torrent) are written a few dozen records a
    transaction, not a transaction (two) a job one after the other: 10 000 took 11-13 s where
    qbittorrent-nox takes under 2 (bench/RESULTS.md); the queue has one round after them all."""
    from tests.spies import queue_rounds, records_written

    async with service(tmp_path) as jobs:
        await jobs.create_category("old", "")
        labels = JobFeatures(category="old", tags=("x", "y"))
        ids = [(await jobs.add(magnet(c), paused=True, features=labels))[0].id for c in "0123456789abcdef"]
        groups, rounds = records_written(monkeypatch), queue_rounds(monkeypatch)
        if edit == "set_features":
            await jobs.set_features(ids, category="old", ratio_limit=2.0, tags=["z"])
            assert all(jobs.get(i).features.ratio_limit == 2.0 for i in ids)
            assert all(jobs.get(i).features.tags == ("z",) for i in ids)
        elif edit == "add_tags":
            await jobs.add_tags(ids, ["new"])
            assert all(jobs.get(i).features.tags == ("new", "x", "y") for i in ids) and "new" in jobs.tags()
        elif edit == "remove_tags":
            await jobs.remove_tags(ids, ["x"])
            assert all(jobs.get(i).features.tags == ("y",) for i in ids)
        elif edit == "delete_tags":
            await jobs.delete_tags(["x"])
            assert all(jobs.get(i).features.tags == ("y",) for i in ids) and "x" not in jobs.tags()
        elif edit == "remove_categories":
            await jobs.remove_categories(["old"])
            assert all(jobs.get(i).features.category == "" for i in ids)
        else:
            await jobs.move_in_queue(ids[8:], "top", while_off=True)
            assert jobs.queue_order()[:8] == ids[8:]
        assert sum(groups) >= len(ids) and len(groups) < len(ids) // 2, groups
        assert len(rounds) <= 2  # (the one after them; the service's tick may fall in between)
    async with service(tmp_path) as jobs:  # (written: as they were left)
        if edit == "remove_categories":
            assert all(jobs.get(i).features.category == "" for i in ids)
        elif edit == "move_in_queue":
            assert jobs.queue_order()[:8] == ids[8:]
        elif edit == "add_tags":
            assert all(jobs.get(i).features.tags == ("new", "x", "y") for i in ids)


async def test_an_edit_of_many_that_some_jobs_refuse_is_made_to_the_others_and_says_the_first_refusal(
        tmp_path: Path) -> None:
    """(``every``: a client's edit of many, one error for the call, the rest of it made.)"""
    async with service(tmp_path) as jobs:
        ids = [(await jobs.add(magnet(c), paused=True))[0].id for c in "0123"]
        refused = {ids[1]: JobConflict("not this one"), ids[2]: JobConflict("nor this one")}

        async def tag(job_id: str) -> None:
            if job_id in refused:
                raise refused[job_id]
            await jobs.add_tags([job_id], ["done"])

        with pytest.raises(JobConflict) as caught:
            await jobs.every(ids, tag)
        assert caught.value in refused.values()
        assert [jobs.get(i).features.tags for i in ids] == [("done",), (), (), ("done",)]


async def test_jobs_added_at_once_take_places_of_their_own_in_the_queue(tmp_path: Path) -> None:
    """Adds that overlap (a client sending several at once) each put their job last in the
    queue, in a place of its own: they took the same place, and moving one past another did
    nothing until a restart numbered them again."""
    async with service(tmp_path) as jobs:
        await jobs.update_settings(queueing=True, max_active_downloads=1)
        async with anyio.create_task_group() as tg:
            for c in "abc":
                tg.start_soon(lambda c=c: jobs.add(magnet(c), paused=True))
        order = jobs.queue_order()
        await jobs.move_in_queue([order[2]], "up")
        assert jobs.queue_order() == [order[0], order[2], order[1]]
        assert [jobs.get(i).queue_position for i in jobs.queue_order()] == [1, 2, 3]


async def test_new_jobs_are_added_paused_while_add_paused_is_on_unless_their_add_says(tmp_path: Path) -> None:
    async with service(tmp_path) as jobs:
        await jobs.update_settings(add_paused=True)
        held, _ = await jobs.add(magnet("a"))
        running, _ = await jobs.add(magnet("b"), paused=False)
        batch = await jobs.add_many([MagnetLink(magnet("c"))])
        assert held.state is JobState.PAUSED and held.options.paused
        assert running.state is not JobState.PAUSED and not running.options.paused
        assert isinstance(batch[0], tuple) and batch[0][0].options.paused
        await jobs.update_settings(add_paused=False)
        later, _ = await jobs.add(magnet("d"))
        assert not later.options.paused
        with pytest.raises(InvalidJobRequest) as err:
            await jobs.update_settings(add_paused="yes")
        assert err.value.field == "add_paused"


async def test_a_stalled_download_holds_no_slot_while_slow_jobs_are_not_counted(tmp_path: Path) -> None:
    """``dont_count_slow_torrents``: a download that moved nothing (no peer) for
    ``slow_torrent_inactive_time`` seconds runs on uncounted, and the next one in the queue gets
    its slot; turned off, the slot is the first one's again."""
    clock = FakeClock()
    async with service(tmp_path, clock=clock) as jobs:
        await jobs.update_settings(queueing=True, max_active_downloads=1, dont_count_slow_torrents=True,
                                   slow_torrent_inactive_time=60)
        one, _ = await jobs.add(magnet("a"))
        two, _ = await jobs.add(magnet("b"))
        await wait_state(jobs, one.id, JobState.FETCHING_METADATA, enforce=True)
        await wait_state(jobs, two.id, JobState.QUEUED, enforce=True)
        clock.now += 59
        await jobs.enforce()
        assert jobs.get(two.id).state is JobState.QUEUED  # (not slow for long enough yet)
        clock.now += 2
        await wait_state(jobs, two.id, JobState.FETCHING_METADATA, enforce=True)  # (the slot is its)
        assert jobs.get(one.id).state is JobState.FETCHING_METADATA  # (running on, uncounted)
        await jobs.update_settings(dont_count_slow_torrents=False)
        await wait_state(jobs, two.id, JobState.QUEUED, enforce=True)
        assert jobs.get(one.id).state is JobState.FETCHING_METADATA
        with pytest.raises(InvalidJobRequest) as err:
            await jobs.update_settings(slow_torrent_inactive_time=0)
        assert err.value.field == "slow_torrent_inactive_time"


async def test_the_queue_holds_jobs_beyond_its_maximum_and_moves_and_force_starts(tmp_path: Path) -> None:
    async with service(tmp_path) as jobs:
        with pytest.raises(JobConflict):  # no queue while queueing is off
            await jobs.move_in_queue([], "top")
        await jobs.update_settings(queueing=True, max_active_downloads=1)
        one, _ = await jobs.add(magnet("a"))
        two, _ = await jobs.add(magnet("b"))
        await wait_state(jobs, one.id, JobState.FETCHING_METADATA, enforce=True)
        await wait_state(jobs, two.id, JobState.QUEUED, enforce=True)
        assert (jobs.get(one.id).queue_position, jobs.get(two.id).queue_position) == (1, 2)
        await jobs.move_in_queue([two.id], "top")
        await wait_state(jobs, two.id, JobState.FETCHING_METADATA, enforce=True)
        await wait_state(jobs, one.id, JobState.QUEUED, enforce=True)
        assert jobs.queue_order() == [two.id, one.id]
        await jobs.set_features([one.id], force_start=True)
        await wait_state(jobs, one.id, JobState.FETCHING_METADATA, enforce=True)
        assert jobs.get(two.id).state is JobState.FETCHING_METADATA
        await jobs.pause(one.id)
        await jobs.set_features([one.id], force_start=False)
        await jobs.enforce()
        assert jobs.get(one.id).state is JobState.PAUSED  # a paused job stays paused, not queued
        assert (await jobs.resume(one.id)).state is JobState.QUEUED  # resumed into the queue
        assert (jobs.get(one.id).number, jobs.get(two.id).number) == (1, 2)
        with pytest.raises(InvalidJobRequest):
            await jobs.update_settings(max_active_downloads=-2)
    async with service(tmp_path) as again:
        assert again.get_settings().queueing and again.get_settings().max_active_downloads == 1
        assert again.queue_order() == [two.id, one.id]
        assert (again.get(one.id).number, again.get(two.id).number) == (1, 2)
        third, _ = await again.add(magnet("c"), paused=True)
        assert third.number == 3 and again.by_number(3).id == third.id
        await again.cancel(third.id)
        assert await again.clear_history() == 1
    async with service(tmp_path) as last:
        fourth, _ = await last.add(magnet("d"), paused=True)
        assert fourth.number == 4  # the number of a job pruned from the history is not reused


async def test_a_magnet_fetching_its_metadata_quietly_is_held_when_a_job_moves_before_it(
        tmp_path: Path) -> None:
    """A magnet with nobody to fetch its metadata from falls quiet at once (the timers pass it
    over). The queue counted it held already (it pauses after its check for the queue's word),
    so a job moved before it started beside it: two downloads at a maximum of one, until a
    stats event of its session woke it."""
    async with service(tmp_path) as jobs:
        await jobs.update_settings(queueing=True, max_active_downloads=1)
        one, _ = await jobs.add(magnet("a"))
        two, _ = await jobs.add(magnet("b"))
        await wait_state(jobs, one.id, JobState.FETCHING_METADATA, enforce=True)
        await wait_state(jobs, two.id, JobState.QUEUED, enforce=True)
        with anyio.fail_after(10):
            while one.id not in jobs._run.sleepers.quiet:
                await jobs.enforce()
                await anyio.sleep(0.02)
        await jobs.move_in_queue([two.id], "top")
        await jobs.enforce()  # (one round: the queue's word is acted on in it)
        assert jobs.get(one.id).state is JobState.QUEUED
        session = jobs.manager.get(bytes.fromhex(one.info_hash))
        assert session is not None and session.paused
        await wait_state(jobs, two.id, JobState.FETCHING_METADATA, enforce=True)


# -- share limits -----------------------------------------------------------------------------
@pytest.mark.parametrize("action", [ShareLimitAction.STOP, ShareLimitAction.REMOVE])
async def test_a_seeding_job_at_its_seeding_time_limit_is_stopped_or_removed(
        tmp_path: Path, action: ShareLimitAction) -> None:
    torrent = two_files()
    seed_data(tmp_path / "dl", torrent)
    clock = FakeClock()
    async with service(tmp_path, seed=True, clock=clock) as jobs:
        await jobs.update_settings(share_limit_action=action.value)
        job, _ = await jobs.add(torrent, features=JobFeatures(seeding_time_limit=120))
        await wait_state(jobs, job.id, JobState.SEEDING)
        await jobs.enforce()
        clock.now += 60
        await jobs.enforce()
        assert jobs.get(job.id).state is JobState.SEEDING
        assert jobs.get(job.id).seeding_time == pytest.approx(60)
        assert jobs.get(job.id).completed_at is not None
        clock.now += 61
        await jobs.enforce()
        done = jobs.get(job.id)
        if action is ShareLimitAction.STOP:
            assert done.state is JobState.PAUSED and done.options.paused
        else:
            assert done.state is JobState.COMPLETED
        assert (tmp_path / "dl" / "pair" / "a.bin").is_file()
    saved = json.loads(JobStore(tmp_path / "state").read(job.id) or b"null")
    assert saved["seeding_time"] == pytest.approx(121)


async def test_a_job_at_its_share_limit_with_super_seed_goes_on_seeding_super_seeding(tmp_path: Path) -> None:
    """``super_seed`` (qBittorrent's ``EnableSuperSeeding``): at the limit super-seeding is turned
    on in the record (kept across restarts) and the running session, the job goes on seeding,
    and the limit is acted on once (the seeding-done program runs once)."""
    torrent = two_files()
    seed_data(tmp_path / "dl", torrent)
    clock = FakeClock()
    async with service(tmp_path, seed=True, clock=clock) as jobs:
        await jobs.update_settings(share_limit_action="super_seed")
        job, _ = await jobs.add(torrent, features=JobFeatures(seeding_time_limit=120))
        await wait_state(jobs, job.id, JobState.SEEDING)
        ran: list[str] = []
        jobs._run.run_program = lambda event, rec: ran.append(event.value)  # type: ignore[method-assign]
        await jobs.enforce()
        clock.now += 60
        await jobs.enforce()
        assert not jobs.get(job.id).options.super_seeding
        session = await jobs._run.wake_seed(jobs._run.jobs.get(job.id))  # type: ignore[arg-type]
        assert session is not None and not session.super_seeding
        # (its new session seeds before the clock moves: a minute that passes while it starts —
        # checking, if its resume data was not read back — is not a minute of seeding)
        with anyio.fail_after(10):
            while session.state is not State.SEEDING or jobs.get(job.id).state is not JobState.SEEDING:
                await anyio.sleep(0.01)
        clock.now += 61
        await jobs.enforce()
        done = jobs.get(job.id)
        assert done.state is JobState.SEEDING and not done.options.paused
        assert done.options.super_seeding and session.super_seeding
        clock.now += 60
        await jobs.enforce()
        assert jobs.get(job.id).state is JobState.SEEDING
        assert len(ran) == 1, ran
    async with service(tmp_path, seed=True, clock=clock) as again:
        assert again.get(job.id).options.super_seeding
    assert "super_seed" in features_from({"share_limit_action": "super_seed"}).share_limit_action


async def test_a_jobs_own_share_limit_action_wins_over_the_services(tmp_path: Path) -> None:
    torrent = two_files()
    seed_data(tmp_path / "dl", torrent)
    async with service(tmp_path, seed=True) as jobs:  # (the service's action: stop)
        job, _ = await jobs.add(torrent, features=JobFeatures(ratio_limit=0, share_limit_action="remove"))
        await wait_state(jobs, job.id, JobState.COMPLETED, enforce=True)
        assert (tmp_path / "dl" / "pair" / "a.bin").is_file()  # (remove: the files kept)
    with pytest.raises(InvalidJobRequest) as refused:
        features_from({"share_limit_action": "explode"})
    assert refused.value.field == "share_limit_action"
    kept = JobFeatures.from_json(JobFeatures(share_limit_action="stop").to_json())
    assert kept.share_limit_action == "stop"


async def test_the_service_ratio_limit_applies_unless_the_job_has_none(tmp_path: Path) -> None:
    torrent = two_files()
    seed_data(tmp_path / "dl", torrent)
    async with service(tmp_path, seed=True) as jobs:
        await jobs.update_settings(ratio_limit=0)
        job, _ = await jobs.add(torrent, features=JobFeatures(ratio_limit=-1))
        await wait_state(jobs, job.id, JobState.SEEDING)
        await jobs.enforce()
        assert jobs.get(job.id).state is JobState.SEEDING  # its own "no limit" wins
        await jobs.set_features([job.id], ratio_limit=None)  # back to the service's 0
        await wait_state(jobs, job.id, JobState.PAUSED, enforce=True)



async def test_a_seed_idle_for_its_idle_seeding_limit_is_stopped_and_one_that_sent_goes_on(
        tmp_path: Path) -> None:
    """Transmission's idle seeding limit, qBittorrent's inactive seeding time limit: a seed that
    sent and received nothing for that long meets its share limit; a byte it sends starts its
    idle time again (its seeding time goes on)."""
    served, idle = two_files("served"), two_files("idle")
    for torrent in (served, idle):
        seed_data(tmp_path / "dl", torrent)
    clock = FakeClock()
    async with service(tmp_path, seed=True, clock=clock) as jobs, TorrentManager(cfg()) as other:
        await jobs.update_settings(idle_seeding_limit=120)  # (the service's, for the one without its own)
        a, _ = await jobs.add(served)
        b, _ = await jobs.add(idle, features=JobFeatures(idle_seeding_limit=100))
        for job in (a, b):
            await wait_state(jobs, job.id, JobState.SEEDING)
        await jobs.enforce()
        clock.now += 90
        await jobs.enforce()
        assert [jobs.get(j.id).state for j in (a, b)] == [JobState.SEEDING] * 2
        theirs = await other.add(served, tmp_path / "theirs")  # a peer downloads it from the job
        theirs.add_peer("127.0.0.1", jobs.stats().listen_port)
        with anyio.fail_after(15):
            while not theirs.complete:
                await anyio.sleep(0.02)
        await jobs.enforce()  # (no time passed: what it sent is counted)
        assert jobs.get(a.id).uploaded >= served.total_length
        assert (jobs.get(a.id).active_at, jobs.get(b.id).active_at) == (clock.now, None)
        sent_at = clock.now
        clock.now += 20
        await jobs.enforce()
        assert jobs.get(b.id).state is JobState.PAUSED  # 110 s idle: past its own 100
        clock.now += 90
        await jobs.enforce()
        assert jobs.get(a.id).state is JobState.SEEDING  # 200 s seeding, 110 of them idle
        assert jobs.get(a.id).seeding_time == pytest.approx(200)
        clock.now += 20
        await jobs.enforce()
        assert jobs.get(a.id).state is JobState.PAUSED  # 130 s idle: past the service's 120
        assert jobs.get(a.id).idle_seeding_time == pytest.approx(130)
        await jobs.resume(a.id)  # started again: idle from now (it would stop at once else)
        await wait_state(jobs, a.id, JobState.SEEDING)
        clock.now += 100
        await jobs.enforce()
        assert jobs.get(a.id).state is JobState.SEEDING
        clock.now += 21
        await jobs.enforce()
        assert jobs.get(a.id).state is JobState.PAUSED
    saved = json.loads(JobStore(tmp_path / "state").read(a.id) or b"null")
    assert (saved["seeding_time"], saved["idle_seeding_time"]) == (pytest.approx(341), pytest.approx(121))
    assert saved["active_at"] == sent_at  # (its last activity, kept)
    with pytest.raises(InvalidJobRequest) as refused:
        features_from({"idle_seeding_limit": -5})
    assert refused.value.field == "idle_seeding_limit"
    assert JobFeatures.from_json(JobFeatures(idle_seeding_limit=60).to_json()).idle_seeding_limit == 60

# -- first/last piece, moving -------------------------------------------------------------------
async def test_first_and_last_piece_of_each_file_come_first(tmp_path: Path) -> None:
    torrent = two_files()  # 90 000 bytes in 16 KiB pieces: a.bin in 0..2, b.bin in 2..5
    async with service(tmp_path) as jobs:
        job, _ = await jobs.add(torrent, paused=True, features=JobFeatures(first_last_piece=True))
        picker = jobs.manager.get(job.info_hash).picker  # type: ignore[union-attr]
        assert [picker.piece_priority(i) for i in range(6)] == [7, 4, 7, 4, 4, 7]
        await jobs.set_features([job.id], first_last_piece=False)
        assert [picker.piece_priority(i) for i in range(6)] == [4] * 6
        assert jobs.get(job.id).features.first_last_piece is False


async def test_set_location_moves_the_files_and_the_job_goes_on_there(tmp_path: Path) -> None:
    torrent = two_files()
    seed_data(tmp_path / "dl" / "old", torrent)
    async with service(tmp_path, seed=True) as jobs:
        job, _ = await jobs.add(torrent, save_path="old")
        await wait_state(jobs, job.id, JobState.SEEDING)
        with pytest.raises(SavePathError):
            await jobs.set_location(job.id, "../outside")
        moved = await jobs.set_location(job.id, "new/place")
        assert moved.options.save_path == str((tmp_path / "dl" / "new" / "place").resolve())
        assert (tmp_path / "dl" / "new" / "place" / "pair" / "b.bin").is_file()
        assert not (tmp_path / "dl" / "old" / "pair").exists()
        await wait_state(jobs, job.id, JobState.SEEDING)  # verified again where it now is
        (tmp_path / "dl" / "taken" / "pair").mkdir(parents=True)
        (tmp_path / "dl" / "taken" / "pair" / "a.bin").write_bytes(b"someone else's")
        with pytest.raises(JobConflict):
            await jobs.set_location(job.id, "taken")
        assert (tmp_path / "dl" / "new" / "place" / "pair" / "a.bin").is_file()  # nothing moved
    async with service(tmp_path, seed=True) as again:
        assert again.get(job.id).options.save_path.endswith("new/place")


async def test_per_job_limits_and_settings_reach_the_engine(tmp_path: Path) -> None:
    async with service(tmp_path) as jobs:
        job, _ = await jobs.add(magnet("a"), paused=True, download_limit=1000, upload_limit=2000)
        session = jobs.manager.get(job.info_hash)
        assert session is not None
        assert (session.download_limit.rate, session.upload_limit.rate) == (1000, 2000)
        await jobs.update_settings(download_limit=5000)
        assert jobs.manager.shared.download_limit.rate == 5000
        with pytest.raises(InvalidJobRequest):
            await jobs.add(magnet("b"), download_limit=-1)
    async with service(tmp_path) as again:
        assert again.manager.shared.download_limit.rate == 5000
        assert again.get(job.id).options.download_limit == 1000


async def test_content_layout_subfolder_and_no_subfolder(tmp_path: Path) -> None:
    single = make_torrent([(("film.mkv",), payload(20000, 7))], 16384, name="film.mkv", single=True)
    multi = two_files("multi")
    async with service(tmp_path) as jobs:
        job, _ = await jobs.add(single, paused=True, save_path="x",
                                features=JobFeatures(content_layout="subfolder"))
        assert job.options.save_path == str((tmp_path / "dl" / "x" / "film").resolve())
        assert job.features.content_layout == "subfolder"
        other, _ = await jobs.add(multi, paused=True, features=JobFeatures(content_layout="subfolder"))
        assert other.options.save_path == str((tmp_path / "dl").resolve())  # it has its own folder
        with pytest.raises(InvalidJobRequest) as refused:
            await jobs.add(two_files("multi2"), features=JobFeatures(content_layout="no_subfolder"))
        assert refused.value.field == "content_layout"
        with pytest.raises(InvalidJobRequest) as refused:
            await jobs.add(magnet("f"), features=JobFeatures(content_layout="subfolder"))
        assert refused.value.field == "content_layout"
        with pytest.raises(JobConflict):
            await jobs.set_features([job.id], content_layout="original")
        with pytest.raises(InvalidJobRequest) as refused:
            await jobs.add(magnet("9"), features=JobFeatures(content_layout="sideways"))
        assert refused.value.field == "content_layout"
        with pytest.raises(InvalidJobRequest) as refused:
            await jobs.add(magnet("9"), features=JobFeatures(tags=("a,b",)))
        assert refused.value.field == "tags"


async def test_a_failed_job_stays_listed_for_clients_until_forgotten(tmp_path: Path) -> None:
    torrent = two_files("broken")
    async with service(tmp_path) as jobs:
        job, _ = await jobs.add(torrent, paused=True)
        kept, _ = await jobs.add(magnet("b"), paused=True)
        gone, _ = await jobs.add(magnet("d"), paused=True)
        await jobs.cancel(gone.id)
    damage_kept(tmp_path / "state", torrent.info_hash)
    async with service(tmp_path) as again:
        assert again.get(job.id).state is JobState.PAUSED  # (its session starts when it is resumed)
        with pytest.raises(JobConflict, match="cannot be started"):
            await again.resume(job.id)
        assert again.get(job.id).state is JobState.FAILED
        assert {j.id for j in again.client_jobs()} == {job.id, kept.id}  # not the cancelled one
        with pytest.raises(JobConflict):
            await again.forget(kept.id)  # unfinished: cancel it
        await again.forget(job.id, delete_files=True)
        assert {j.id for j in again.client_jobs()} == {kept.id}
        assert job.id not in {j.id for j in again.list()}
    assert JobStore(tmp_path / "state").read(job.id) is None


@pytest.mark.parametrize("noted", [
    {"configured_limits": [0, 0]},  # as the version before the download slots wrote it
    {"configured": {"download_limit": 0, "upload_limit": 0, "max_active_downloads": 0}},
    # a configuration noted by a later version, with a setting this one does not take from it
    {"configured": {"download_limit": 0, "upload_limit": 0, "max_active_downloads": 0,
                    "max_active_uploads": 1}},
])
async def test_settings_from_another_version_of_the_file_are_kept(tmp_path: Path,
                                                                  noted: dict[str, object]) -> None:
    """What the configuration asked for last is bookkeeping beside the settings: a form of it
    written by another version must not make the settings themselves unreadable (they fell back
    to the defaults, which the next save wrote over the file)."""
    state = tmp_path / "state"
    state.mkdir()
    # (the configuration asks for no DHT nor LSD: not noted in those files, so applied)
    chosen = ServiceSettings(queueing=True, max_active_downloads=2, download_limit=5000, dht_enabled=False,
                             lsd_enabled=False)
    (state / "settings.json").write_text(json.dumps({**chosen.to_json(), **noted}))
    async with service(tmp_path) as jobs:  # (its configuration asks for no limit, no slots: as noted)
        port = jobs.get_settings().listen_port  # (none chosen in the file: a free one chosen now)
        assert port and jobs.get_settings() == dataclasses.replace(chosen, listen_port=port)
    async with service(tmp_path) as jobs:  # (the port kept)
        assert jobs.get_settings() == dataclasses.replace(chosen, listen_port=port)


@pytest.mark.parametrize(("bad", "reasons"), [
    # (an older version saved rate limits above the maximum)
    ({"download_limit": MAX_RATE_LIMIT + 1}, ["must be a whole number of bytes per second"]),
    ({"ratio_limit": "2"}, ["must be a number"]),  # of the wrong type
    # (a whole number no float holds: its check raised OverflowError, and the service did not start)
    ({"ratio_limit": 10**400}, ["must be a number"]),
    ({"max_active_uploads": -5, "share_limit_action": "explode", "from_a_later_version": 1},
     ["must be a whole number >= -1", "must be one of stop", "unknown setting"]),
])
async def test_a_saved_setting_that_no_longer_passes_its_check_is_dropped_alone(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, bad: dict[str, object], reasons: list[str]) -> None:
    """One bad value in settings.json took every saved setting back to its default; now it is
    dropped alone, and a warning names the file, the setting, its value and what is wrong."""
    state = tmp_path / "state"
    state.mkdir()
    # (the configuration asks for no DHT nor LSD: not noted in the file, so applied)
    chosen = ServiceSettings(queueing=True, max_active_downloads=2, upload_limit=7000,
                             seeding_time_limit=60.0, dht_enabled=False, lsd_enabled=False)
    noted = {"download_limit": 0, "upload_limit": 0, "max_active_downloads": 0}
    (state / "settings.json").write_text(json.dumps({**chosen.to_json(), **bad, "configured": noted}))
    with caplog.at_level(logging.WARNING, logger="torrent_engine.jobs.settings"):
        saved = load_settings(state)
    assert saved.settings == chosen and saved.configured == noted
    warnings = sorted(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    def shown(value: object) -> str:  # (a long value is cut short)
        text = json.dumps(value)
        return text if len(text) <= 80 else text[:77] + "..."

    expected = sorted((f"{state / 'settings.json'}: setting {name!r} = {shown(value)} dropped", reason)
                      for (name, value), reason in zip(bad.items(), reasons, strict=True))
    assert len(warnings) == len(expected)
    for (start, reason), warning in zip(expected, warnings, strict=True):
        assert warning.startswith(start) and reason in warning
    async with service(tmp_path) as jobs:  # (its configuration asks for no limit, no slots: as noted)
        assert jobs.get_settings() == dataclasses.replace(chosen, listen_port=jobs.get_settings().listen_port)


@pytest.mark.parametrize("noted", [{"configured": "x"}, {"configured": {"upload_limit": "0"}},
                                   {"configured_limits": [1]}])
def test_a_note_of_the_configuration_that_cannot_be_read_is_dropped_alone(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, noted: dict[str, object]) -> None:
    """The settings are kept; what the configuration asked for is taken as unnoted (as in a
    file written before it was noted: the saved limits are what it asked)."""
    chosen = ServiceSettings(queueing=True, upload_limit=7000)
    (tmp_path / "settings.json").write_text(json.dumps({**chosen.to_json(), **noted}))
    with caplog.at_level(logging.WARNING, logger="torrent_engine.jobs.settings"):
        saved = load_settings(tmp_path)
    assert saved.settings == chosen and saved.configured == {"download_limit": 0, "upload_limit": 7000}
    [warning] = [r.getMessage() for r in caplog.records]
    assert warning.startswith(f"{tmp_path / 'settings.json'}: {next(iter(noted))} = ")


@pytest.mark.parametrize("content", [b"{", b"[1, 2]", b"\xff\xfe", b'"queueing"'])
def test_a_settings_file_that_is_not_a_json_object_is_damaged_and_the_defaults_apply(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes) -> None:
    (tmp_path / "settings.json").write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="torrent_engine.jobs.settings"):
        saved = load_settings(tmp_path)
    assert saved.settings == ServiceSettings() and saved.configured is None
    [warning] = [r.getMessage() for r in caplog.records]
    assert warning.startswith(f"{tmp_path / 'settings.json'} is unreadable; default settings apply: ")


async def test_a_torrent_whose_files_another_job_writes_is_refused(tmp_path: Path) -> None:
    """Two torrents with a file of the same path in one folder: the second would overwrite the
    first's data (and the first, seeding, would upload it). The add is refused naming both jobs;
    so is a move onto another job's files, and a single file where another job has its folder."""
    first = two_files("pair")
    other = make_torrent([(("a.bin",), payload(40000, 9))], 16384, name="pair")  # its own data
    seed_data(tmp_path / "dl", first)
    async with service(tmp_path, seed=True) as jobs:
        job, _ = await jobs.add(first)
        await wait_state(jobs, job.id, JobState.SEEDING)
        with pytest.raises(JobConflict) as refused:
            await jobs.add(other)
        message = str(refused.value)
        assert job.id in message and "'pair'" in message and "a.bin" in message
        assert refused.value.field == "save_path"
        assert (tmp_path / "dl" / "pair" / "a.bin").read_bytes() == payload(40000, 1)  # untouched
        assert [j.id for j in jobs.active()] == [job.id]
        single = make_torrent([(("pair",), payload(1000, 3))], 16384, name="pair", single=True)
        with pytest.raises(JobConflict):
            await jobs.add(single)  # a file where the job has its folder
        elsewhere, _ = await jobs.add(other, save_path="elsewhere", paused=True)  # another folder: fine
        with pytest.raises(JobConflict) as refused:
            await jobs.set_location(elsewhere.id, ".")
        assert job.id in str(refused.value) and elsewhere.id in str(refused.value)
        assert jobs.get(elsewhere.id).options.save_path.endswith("elsewhere")
        await jobs.cancel(job.id)
        moved = await jobs.set_location(elsewhere.id, ".")  # (the first job is gone: its files are free)
        assert moved.options.save_path == str((tmp_path / "dl").resolve())
    async with service(tmp_path, seed=True) as again:  # the claims are known after a restart
        with pytest.raises(JobConflict):
            await again.add(first)


async def test_a_job_that_cannot_start_again_after_a_move_fails_saying_why(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The files moved, the session cannot be started at the new place (here the state folder
    is full): the job does not stay seeding without a session; it fails with the reason, which
    a restart keeps."""
    torrent = two_files()
    seed_data(tmp_path / "dl" / "old", torrent)
    async with service(tmp_path, seed=True) as jobs:
        job, _ = await jobs.add(torrent, save_path="old")
        await wait_state(jobs, job.id, JobState.SEEDING)

        async def full(*args: object, **kwargs: object) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(jobs.manager, "add", full)
        monkeypatch.setattr(jobs.manager, "add_saved", full)  # (a dormant seed's session is from it)
        with pytest.raises(JobConflict) as refused:
            await jobs.set_location(job.id, "new")
        assert "No space left" in str(refused.value)
        moved = jobs.get(job.id)
        assert moved.state is JobState.FAILED and moved.error is not None and "No space left" in moved.error
        assert jobs.manager.get(torrent.info_hash) is None
        assert (tmp_path / "dl" / "new" / "pair" / "a.bin").is_file()  # its data is where it says
        assert moved.options.save_path.endswith("/new")
    async with service(tmp_path, seed=True) as again:
        assert again.get(job.id).state is JobState.FAILED


async def test_a_running_job_force_started_for_a_stream_is_saved_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stream of a job the queue would hold back force-starts it; when its session was still
    running (the queue's round had not come), the flag was set in memory alone and a crash lost
    it: after a restart the queue held the job the stream was reading."""
    async with service(tmp_path) as jobs:
        first, _ = await jobs.add(two_files("first"))
        second, _ = await jobs.add(two_files("second"))
        await wait_state(jobs, second.id, JobState.DOWNLOADING)

        async def no_round(rounds: QueueRounds) -> None:  # (the queue's round has not come yet)
            return None

        monkeypatch.setattr(QueueRounds, "enforce", no_round)
        await jobs.update_settings(queueing=True, max_active_downloads=1)
        session = await jobs.stream_session(second.id)
        assert session is not None and not session.paused
        saved = json.loads(JobStore(tmp_path / "state").read(second.id) or b"null")
        assert saved["features"]["force_start"] is True  # (what a restart after a crash follows)


def test_a_comment_is_checked_and_its_json_round_trips() -> None:
    torrent = dataclasses.replace(make_torrent([(("a",), payload(10, 1))], 16384), comment="theirs")
    assert shown_comment(JobFeatures(), torrent) == "theirs"
    assert shown_comment(JobFeatures(), None) == ""
    mine = features_from({"comment": ""})
    assert (mine.comment, shown_comment(mine, torrent)) == ("", "")  # ("" is none, not the torrent's)
    assert JobFeatures.from_json(json.loads(json.dumps(mine.to_json()))) == mine
    assert JobFeatures.from_json({"category": ""}).comment is None  # (a record written before it)
    for bad in ("a\x00b", "x" * (MAX_COMMENT + 1), 5):
        with pytest.raises(InvalidJobRequest) as info:
            features_from({"comment": bad})
        assert info.value.field == "comment"
