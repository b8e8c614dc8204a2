"""A job's trackers show what each said from the first announce on, even the answer that came
while the job's add was still in flight."""

from __future__ import annotations

from pathlib import Path

import anyio
import anyio.abc
import pytest

from tests.integration.helpers import loopback_config, make_payload
from tests.unit.tracker._tracker_servers import HttpRequest, http_response, http_tracker
from torrent_engine.bencode import encode
from torrent_engine.create import create_torrent
from torrent_engine.jobs import JobService

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
