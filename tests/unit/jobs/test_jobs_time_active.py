"""Time active (qBittorrent's ``time_active``, Transmission's ``secondsDownloading`` and
``secondsSeeding``): the seconds a job downloaded or seeded, counted by the queue's rounds as the
seeding time is, never while paused, and kept across restarts."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from tests.unit.clock import FakeClock
from tests.unit.jobs.test_jobs_features import cfg, seed_data, service, two_files, wait_state
from tests.unit.jobs.test_jobs_scale import count_status
from torrent_engine.api.compat.qbittorrent_records import properties_record, torrent_record
from torrent_engine.engine.manager import TorrentManager
from torrent_engine.jobs import Job, JobService, JobState, ServiceSettings
from torrent_engine.jobs.lifecycle import JobLifecycle
from torrent_engine.jobs.store import JobRecord, JobStore
from torrent_engine.session import Session

pytestmark = pytest.mark.anyio


async def downloading(jobs: JobService, *, magnet: bool = False) -> Job:
    """A download added with no data and no peer (it gets nothing), once it downloads; or a
    magnet link nobody has the metadata of, once it fetches it."""
    if magnet:
        job, _ = await jobs.add("magnet:?xt=urn:btih:" + "cd" * 20 + "&dn=nobody")
        await wait_state(jobs, job.id, JobState.FETCHING_METADATA)
        return job
    job, _ = await jobs.add(two_files())
    await wait_state(jobs, job.id, JobState.DOWNLOADING)
    return job


def count_syncs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ids of the jobs the service syncs from now on, one entry a sync."""
    synced: list[str] = []
    real = JobLifecycle.sync

    def sync(self: JobLifecycle, rec: JobRecord, **kwargs: bool) -> None:
        synced.append(rec.id)
        real(self, rec, **kwargs)

    monkeypatch.setattr(JobLifecycle, "sync", sync)
    return synced


async def test_a_download_counts_its_time_active_not_while_paused_and_keeps_it_across_a_restart(
        tmp_path: Path) -> None:
    clock = FakeClock()
    async with service(tmp_path, clock=clock) as jobs:
        job = await downloading(jobs)
        await jobs.enforce()
        clock.now += 90
        await jobs.enforce()
        shown = jobs.get(job.id)
        assert shown.downloading_time == pytest.approx(90) and shown.seeding_time == 0
        assert shown.time_active == pytest.approx(90)
        assert shown.to_json()["time_active"] == pytest.approx(90)
        assert torrent_record(shown, ServiceSettings(), None)["time_active"] == 90
        assert properties_record(shown, ServiceSettings(), None, None, clock.now)["time_elapsed"] == 90
        listed = jobs.list()[0]  # (a list shows it to the minute, and sees it move past one)
        assert listed.downloading_time == pytest.approx(90)
        await jobs.pause(job.id)
        clock.now += 500
        await jobs.enforce()
        clock.now += 500
        await jobs.enforce()
        assert jobs.get(job.id).downloading_time == pytest.approx(90)  # (paused: not counted)
        await jobs.resume(job.id)
        await wait_state(jobs, job.id, JobState.DOWNLOADING)
        await jobs.enforce()
        clock.now += 30
        await jobs.enforce()
        assert jobs.get(job.id).downloading_time == pytest.approx(120)
    saved = json.loads(JobStore(tmp_path / "state").read(job.id) or b"null")
    assert saved["downloading_time"] == pytest.approx(120)
    async with service(tmp_path, clock=clock) as again:
        assert again.get(job.id).downloading_time == pytest.approx(120)
        assert again.get(job.id).time_active == pytest.approx(120)


async def test_a_seeds_time_active_is_its_downloading_and_seeding_time(tmp_path: Path) -> None:
    torrent = two_files()
    seed_data(tmp_path / "dl", torrent)
    clock = FakeClock()
    async with service(tmp_path, seed=True, clock=clock) as jobs:
        job, _ = await jobs.add(torrent)
        await wait_state(jobs, job.id, JobState.SEEDING)
        await jobs.enforce()
        clock.now += 60
        await jobs.enforce()
        shown = jobs.get(job.id)
        assert (shown.downloading_time, shown.seeding_time) == (0, pytest.approx(60))
        assert shown.time_active == pytest.approx(60)


@pytest.mark.parametrize("magnet", [False, True], ids=["download", "metadata fetch"])
async def test_a_download_nobody_serves_sleeps_its_time_counted_and_a_poll_sees_each_minute(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, magnet: bool) -> None:
    """A download with no peer and no rate falls quiet, as an idle seed does: the service's
    timers pass it over (2 000 downloads nobody served cost 21-24 µs of CPU each a second before),
    its downloading time is counted while it sleeps, a client reading the changes sees it each
    time its listed time passes a whole minute, and news of its session (a pause) wakes it. So
    does a magnet whose metadata nobody has (its time fetching it counts as downloading)."""
    clock = FakeClock()
    async with service(tmp_path, clock=clock) as jobs:
        job = await downloading(jobs, magnet=magnet)
        statuses = count_status(monkeypatch)
        await jobs.tick()
        await jobs.tick()  # (nothing moved in the first: it falls quiet)
        assert not statuses  # (judged quiet from its numbers: no status record made)
        synced = count_syncs(monkeypatch)
        cursor = jobs.changes(None).cursor
        clock.now += 50
        await jobs.tick()
        assert synced == []  # (passed over: before, synced twice a tick)
        assert jobs.changes(cursor).jobs == []  # (listed to the minute: 0 min still)
        assert jobs.get(job.id).downloading_time == pytest.approx(50)  # (counted asleep)
        clock.now += 20
        await jobs.tick()
        moved = jobs.changes(cursor)
        assert [j.id for j in moved.jobs] == [job.id] and moved.jobs[0].downloading_time == pytest.approx(70)
        clock.now += 30
        await jobs.tick()
        assert jobs.changes(moved.cursor).jobs == []  # (1 min 40 s: the same minute)
        clock.now += 30
        await jobs.tick()
        assert [j.downloading_time for j in jobs.changes(moved.cursor).jobs] == [pytest.approx(130)]
        assert synced == []
        clock.now += 20
        await jobs.tick()  # (the rounds' clock moves on; the job sleeps still)
        await jobs.pause(job.id)  # (its time asleep counted up to its pause)
        clock.now += 100
        await jobs.tick()
        assert jobs.get(job.id).downloading_time == pytest.approx(150)  # (paused: not counted)
        assert jobs.get(job.id).state is JobState.PAUSED


async def quiet_with_an_idle_peer(jobs: JobService, other: TorrentManager,
                                  tmp_path: Path) -> tuple[Job, Session]:
    """A download of ``two_files`` in ``jobs`` whose one peer (a session of ``other``,
    downloading too: nothing to give) is connected and idle, fallen quiet; and that peer."""
    job = await downloading(jobs)
    theirs = await other.add(two_files(), tmp_path / "theirs")
    theirs.add_peer("127.0.0.1", jobs.stats().listen_port)
    with anyio.fail_after(10):
        while jobs.get(job.id).peers != 1:
            await anyio.sleep(0.02)
    await jobs.tick()
    await jobs.tick()  # (nothing moved in the first: it falls quiet)
    return job, theirs


async def test_the_totals_count_what_a_quiet_jobs_peer_sent_before_the_news_wakes_it(
        tmp_path: Path) -> None:
    """A quiet job with a peer: a block its peer sends is in its session's counters, and so in
    its view, at once; the news of it (the session's next tick) wakes the job up to a second
    later. Meanwhile the service's totals say what the jobs show (they read its record's, an
    integration test's totals fell one block short)."""
    clock = FakeClock()
    async with service(tmp_path, clock=clock) as jobs, TorrentManager(cfg()) as other:
        job, theirs = await quiet_with_an_idle_peer(jobs, other, tmp_path)
        session = jobs.manager.get(two_files().info_hash)
        assert session is not None
        session.downloaded += 16384  # (a block came: its session has not ticked since)
        session.uploaded += 100
        shown = jobs.list()
        assert shown[0].downloaded == session.downloaded
        stats = jobs.stats()
        assert (stats.downloaded, stats.uploaded) == (sum(j.downloaded for j in shown),
                                                      sum(j.uploaded for j in shown))
        await other.remove(theirs)


async def test_a_download_whose_peer_sends_nothing_sleeps_and_its_peer_is_still_shown(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A download whose one peer has nothing for it (connected, idle) falls quiet too: its
    session ticks while it has a peer and tells of any change (a byte moved, a peer come or
    gone), so the service's timers need not walk it (1 000 such jobs cost the service 39 µs of
    CPU each a second before). Its peer is still in the service's totals and in its view, and
    the peer's leaving wakes it."""
    clock = FakeClock()
    async with service(tmp_path, clock=clock) as jobs, TorrentManager(cfg()) as other:
        job, theirs = await quiet_with_an_idle_peer(jobs, other, tmp_path)
        synced = count_syncs(monkeypatch)
        clock.now += 5
        await jobs.tick()
        assert synced == []  # (passed over: before, synced twice a tick while it had a peer)
        assert jobs.stats().peers == 1
        assert jobs.get(job.id).peers == 1 and jobs.list()[0].peers == 1
        assert jobs.get(job.id).downloading_time == pytest.approx(5)  # (counted asleep)
        await other.remove(theirs)  # the peer goes: the news wakes the job
        with anyio.fail_after(10):
            while jobs.get(job.id).peers:
                await anyio.sleep(0.02)
        assert jobs.stats().peers == 0
        await jobs.tick()
        assert job.id in synced  # (walked again once woken: it falls quiet again, peerless)
        synced.clear()
        await jobs.tick()
        assert synced == []
