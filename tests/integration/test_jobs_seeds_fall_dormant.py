"""A seed that has a session (one woken by a peer or a reader, or a download that completed) and stays
quiet for ``Config.dormant_after`` seconds goes dormant again: its session stopped without a
``stopped`` to its trackers, the job still listed seeding with its seeding time and totals going
on, its tracker memory kept (a peer that wakes it again is served, and no tracker hears
``started`` twice). A seed with a peer connected or a reader open stays awake; ``dormant_after=0``
never sleeps."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import anyio
import pytest

from tests.conftest import require_libtorrent
from tests.integration.test_jobs_dormant_seeds import seeding, seeds_in, service, tracker, wait_for
from tests.interop.test_libtorrent_transfer import lt_add, lt_session, wait_lt
from torrent_engine.jobs import JobFeatures, JobService, JobState, JobStateChanged

from .helpers import same_files

pytestmark = pytest.mark.anyio

SOON = 0.3  # dormant_after in these tests


def has_session(jobs: JobService, info_hash: bytes) -> bool:
    return jobs.manager.get(info_hash) is not None


async def test_a_quiet_seed_goes_dormant_without_stopped_and_a_peer_wakes_it_without_a_second_started(
        tmp_path: Path) -> None:
    lt = require_libtorrent()
    async with tracker() as (t, url):
        torrent = seeds_in(tmp_path, 1, trackers=(url,))[0]
        async with service(tmp_path, tracker_enabled=True, dormant_after=SOON) as jobs:
            changes: list[JobStateChanged] = []
            jobs.events.subscribe(JobStateChanged, changes.append)
            (job,) = await seeding(jobs, [torrent])  # (checked without a session: dormant at once)
            await wait_for(lambda: t.of(torrent), lambda events: events == ["started"])
            await wait_for(lambda: has_session(jobs, torrent.info_hash), lambda has: not has)
            asleep = jobs.get(job.id)
            assert asleep.state is JobState.SEEDING and asleep.progress == 1.0
            assert (asleep.uploaded, asleep.downloaded, asleep.done_size) == (job.uploaded, job.downloaded,
                                                                             job.total_size)
            assert asleep.seeding_time >= job.seeding_time
            assert t.of(torrent) == ["started"]  # (no stopped: its trackers still know it)
            seen = len(changes)
            port = jobs.manager.shared.listen_port
            with lt_session(lt) as ses:
                # (libtorrent is not told the tracker: what the tracker hears is the seed's alone)
                handle = lt_add(lt, ses, dataclasses.replace(torrent, trackers=()), tmp_path / "lt")
                await wait_lt(handle, seeding=True, peer=("127.0.0.1", port))
            assert not same_files(torrent, tmp_path / "dl", tmp_path / "lt")
            await anyio.sleep(0.5)  # (the woken session's trackers run: they were told started already)
            assert t.of(torrent) == ["started"]
            # (quiet again once the peer left: dormant again, what it uploaded kept)
            await wait_for(lambda: has_session(jobs, torrent.info_hash), lambda has: not has)
            again = jobs.get(job.id)
            assert again.state is JobState.SEEDING and again.uploaded >= job.total_size
            assert again.seeding_time >= asleep.seeding_time
            assert changes[seen:] == []  # (no job.state flapping while it slept and woke)
            listed = {j.id: j for j in jobs.list()}[job.id]
            assert (listed.state, listed.uploaded) == (JobState.SEEDING, again.uploaded)
        assert t.of(torrent) == ["started", "stopped"]  # (the service's stop: once)


async def test_a_seed_with_a_reader_open_stays_awake_and_sleeps_once_it_is_closed(tmp_path: Path) -> None:
    torrent = seeds_in(tmp_path, 1)[0]
    async with service(tmp_path, dormant_after=SOON) as jobs:
        (job,) = await seeding(jobs, [torrent])
        session = await jobs.stream_session(job.id)
        assert session is not None
        async with session.open_file(0) as reader:
            assert len(await reader.read(100)) == 100
            await anyio.sleep(2.5)  # (rounds run each second: it would have gone dormant by now)
            assert jobs.manager.get(torrent.info_hash) is session
        await wait_for(lambda: has_session(jobs, torrent.info_hash), lambda has: not has)
        assert jobs.get(job.id).state is JobState.SEEDING


async def test_a_seed_with_a_peer_connected_stays_awake(tmp_path: Path) -> None:
    torrent = seeds_in(tmp_path, 1)[0]
    async with service(tmp_path, dormant_after=SOON) as jobs:
        await seeding(jobs, [torrent])  # (dormant: the peer wakes it)
        port = jobs.manager.shared.listen_port
        handshake = b"\x13BitTorrent protocol" + bytes(8) + torrent.info_hash + b"-XX0001-" + bytes(12)
        async with await anyio.connect_tcp("127.0.0.1", port) as peer:
            await peer.send(handshake)
            got = b""
            with anyio.fail_after(10):
                while len(got) < 68:
                    got += await peer.receive()
            assert got[28:48] == torrent.info_hash
            await wait_for(lambda: has_session(jobs, torrent.info_hash), lambda has: has)
            session = jobs.manager.get(torrent.info_hash)
            assert session is not None
            await wait_for(lambda: session.status().peers, lambda n: n == 1)
            await anyio.sleep(2.5)  # (an idle peer connected: still awake)
            assert jobs.manager.get(torrent.info_hash) is session
        await wait_for(lambda: has_session(jobs, torrent.info_hash), lambda has: not has)


async def test_a_seed_never_goes_dormant_with_dormant_after_zero(tmp_path: Path) -> None:
    torrent = seeds_in(tmp_path, 1)[0]
    async with service(tmp_path, dormant_after=0) as jobs:
        (job,) = await seeding(jobs, [torrent])
        session = await jobs.stream_session(job.id)  # (woken by a reader, which leaves at once)
        assert session is not None
        async with session.open_file(0) as reader:
            assert len(await reader.read(100)) == 100
        await anyio.sleep(2.5)  # (with dormant_after=0.3 it would have gone by now)
        assert session is not None and jobs.manager.get(torrent.info_hash) is session


async def test_a_seed_gone_dormant_still_stops_at_its_seeding_time_limit(tmp_path: Path) -> None:
    torrent = seeds_in(tmp_path, 1)[0]
    async with service(tmp_path, dormant_after=SOON) as jobs:
        job, _ = await jobs.add(torrent.to_bytes(), features=JobFeatures(seeding_time_limit=6))
        await wait_for(lambda: jobs.get(job.id), lambda j: j.state is JobState.SEEDING)
        await wait_for(lambda: has_session(jobs, torrent.info_hash), lambda has: not has)
        assert jobs.get(job.id).state is JobState.SEEDING  # (dormant before its limit)
        stopped = await wait_for(lambda: jobs.get(job.id), lambda j: j.state is not JobState.SEEDING)
        assert stopped.state is JobState.PAUSED and stopped.seeding_time >= 6
        assert not has_session(jobs, torrent.info_hash)  # (paused from its record, as it slept)
