"""A job's trackers show what each said from the first announce on, even the answer that came
while the job's add was still in flight; a job the queue holds back says nothing to them."""

from __future__ import annotations

from pathlib import Path

import anyio
import anyio.abc
import pytest

from tests.integration.helpers import loopback_config, make_payload
from tests.unit.tracker._tracker_servers import HttpRequest, announce_body, http_response, http_tracker
from torrent_engine.formats.bencode import encode
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.jobs import JobService, JobState
from torrent_engine.storage.create import create_torrent

pytestmark = pytest.mark.anyio


async def refuse(request: HttpRequest, stream: anyio.abc.ByteStream) -> None:
    # (a refusal: the next announce would come only after a back-off of a minute or more)
    await stream.send(http_response(encode({"failure reason": "not tracked here"})))


async def test_the_first_announce_is_shown(tmp_path: Path) -> None:
    payload = make_payload(tmp_path / "seed", (("a.bin", 100_000),))
    state_dir = tmp_path / "state"
    async with http_tracker(refuse) as tracker:
        url = f"http://127.0.0.1:{tracker.port}/announce"
        torrent = create_torrent(payload, piece_length=32 * 1024, trackers=[url])
        config = loopback_config(state_dir=state_dir, tracker_enabled=True)
        async with JobService(config, download_root=tmp_path / "dl", state_dir=state_dir) as jobs:
            for n in range(5):  # (the announce may be answered before or after the add returns)
                job, _ = await jobs.add(torrent)
                with anyio.fail_after(10):
                    while not tracker.requests:
                        await anyio.sleep(0.01)
                    while jobs.get(job.id).trackers[0].status == "unknown":
                        await anyio.sleep(0.02)
                shown = jobs.get(job.id).trackers[0]
                assert (shown.url, shown.status, shown.message) == (url, "failed", "not tracked here"), n
                await jobs.cancel(job.id)
                tracker.requests.clear()


async def answer(request: HttpRequest, stream: anyio.abc.ByteStream) -> None:
    await stream.send(http_response(announce_body(interval=1800)))


async def test_a_job_the_queue_holds_back_announces_nothing_until_it_gets_a_slot(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    async with http_tracker(answer) as tracker:
        url = f"http://127.0.0.1:{tracker.port}/announce"
        first, second = (create_torrent(make_payload(tmp_path / name, ((f"{name}.bin", 100_000),)),
                                        piece_length=32 * 1024, trackers=[url]) for name in ("one", "two"))

        def announced(torrent: Torrent) -> int:
            return sum(1 for r in tracker.requests if r.query()["info_hash"] == [torrent.info_hash])

        config = loopback_config(state_dir=state_dir, tracker_enabled=True, max_active_downloads=1)
        async with JobService(config, download_root=tmp_path / "dl", state_dir=state_dir) as jobs:
            one, _ = await jobs.add(first)
            two, _ = await jobs.add(second)
            with anyio.fail_after(10):
                while not announced(first):
                    await anyio.sleep(0.02)
            for _ in range(3):
                await jobs.tick()
            await anyio.sleep(0.3)
            assert jobs.get(two.id).state is JobState.QUEUED
            assert announced(second) == 0  # held from its start: not one announce
            await jobs.cancel(one.id)
            with anyio.fail_after(10):  # its slot is free: it starts, and announces
                while not announced(second):
                    await anyio.sleep(0.02)
            assert jobs.get(two.id).state is not JobState.QUEUED


async def test_the_first_announce_after_a_restart_is_shown(tmp_path: Path) -> None:
    """At a start the manager reloads the torrents, which announce at once; an answer that comes
    before their jobs are bound to them is kept, not left 'unknown' until the next announce."""
    state_dir = tmp_path / "state"
    async with http_tracker(refuse) as tracker:
        url = f"http://127.0.0.1:{tracker.port}/announce"
        torrents = [create_torrent(make_payload(tmp_path / f"t{n}", ((f"f{n}.bin", 20_000),)),
                                   piece_length=16 * 1024, trackers=[url]) for n in range(30)]
        config = loopback_config(state_dir=state_dir, tracker_enabled=True)
        async with JobService(config, download_root=tmp_path / "dl", state_dir=state_dir) as jobs:
            ids = [(await jobs.add(t))[0].id for t in torrents]
        tracker.requests.clear()
        async with JobService(config, download_root=tmp_path / "dl", state_dir=state_dir) as jobs:
            with anyio.fail_after(10):  # (a refused announce is not made again for a minute or more)
                while any(jobs.get(job_id).trackers[0].status != "failed" for job_id in ids):
                    await anyio.sleep(0.05)
