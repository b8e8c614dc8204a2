"""Editing a job's trackers: a tracker added or put in another's place is announced to at once,
one removed is no longer announced to, and the edited list is the job's after a restart."""

from __future__ import annotations

from pathlib import Path

import anyio
import anyio.abc
import pytest

from tests.integration.helpers import loopback_config, make_payload
from tests.unit.tracker._tracker_servers import (
    HttpRequest,
    HttpServer,
    announce_body,
    http_response,
    http_tracker,
)
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.jobs import JobService, JobState
from torrent_engine.jobs.model import InvalidJobRequest
from torrent_engine.storage.create import create_torrent

pytestmark = pytest.mark.anyio


async def answer(request: HttpRequest, stream: anyio.abc.ByteStream) -> None:
    await stream.send(http_response(announce_body(interval=1800)))


def announces(tracker: HttpServer, torrent: Torrent) -> int:
    return sum(1 for r in tracker.requests if r.query()["info_hash"] == [torrent.info_hash])


async def until_announced(tracker: HttpServer, torrent: Torrent, more_than: int = 0) -> None:
    with anyio.fail_after(20):
        while announces(tracker, torrent) <= more_than:
            await anyio.sleep(0.02)


async def test_edited_trackers_are_announced_to_at_once_and_kept_across_a_restart(tmp_path: Path) -> None:
    payload = make_payload(tmp_path / "downloads", (("a.bin", 100_000),))
    torrent = create_torrent(payload, piece_length=32 * 1024)  # (no tracker of its own)
    state_dir = tmp_path / "state"
    config = loopback_config(state_dir=state_dir, tracker_enabled=True, seed=True)
    async with http_tracker(answer) as first, http_tracker(answer) as second:
        one = f"http://127.0.0.1:{first.port}/announce"
        two = f"http://127.0.0.1:{second.port}/announce"
        async with JobService(config, download_root=tmp_path / "downloads", state_dir=state_dir) as jobs:
            job, _ = await jobs.add(torrent)
            with anyio.fail_after(20):
                while jobs.get(job.id).state is not JobState.SEEDING:
                    await anyio.sleep(0.02)
            assert jobs.get(job.id).trackers == ()
            await jobs.set_trackers(job.id, [[one]])
            await until_announced(first, torrent)  # (no restart of the job: its swarm takes it)
            assert [t.url for t in jobs.get(job.id).trackers] == [one]
            with pytest.raises(InvalidJobRequest) as err:  # (one bad URL: nothing changes)
                await jobs.set_trackers(job.id, [[one], [two, "gopher://x/"]])
            assert err.value.field == "trackers"
            assert jobs.tracker_tiers(job.id) == ((one,),)
            await jobs.set_trackers(job.id, [[two]])  # the first one's place taken by the second
            await until_announced(second, torrent)
            heard_first = announces(first, torrent)
            spare = "udp://127.0.0.1:9/announce"
            await jobs.set_trackers(job.id, [[two], [spare]])  # (another round: the first tier answers)
            await until_announced(second, torrent, more_than=1)
            assert announces(first, torrent) == heard_first  # removed: no longer announced to
            shown = jobs.get(job.id).trackers
            assert [(t.url, t.tier) for t in shown] == [(two, 0), (spare, 1)]
            with anyio.fail_after(20):
                while jobs.get(job.id).trackers[0].status != "working":
                    await anyio.sleep(0.02)
        first.requests.clear()
        second.requests.clear()
        async with JobService(config, download_root=tmp_path / "downloads", state_dir=state_dir) as again:
            assert [t.url for t in again.get(job.id).trackers] == [two, spare]
            await until_announced(second, torrent)
            assert announces(first, torrent) == 0
