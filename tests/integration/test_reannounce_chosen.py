"""A reannounce to chosen trackers alone: qBittorrent's ``torrents/reannounce`` ``urls`` (its web
UI's "Reannounce to selected trackers"; 2.11.10's changelog calls the field ``trackers``) and our
``POST /api/jobs/{id}/reannounce`` ``{"trackers": [...]}`` (and ``torrent-engine remote
reannounce --tracker``), for a running torrent and a dormant seed: the chosen tracker hears from
us now, the other does not."""

from __future__ import annotations

import collections
import sys
from pathlib import Path
from urllib.parse import quote

import anyio
import anyio.abc
import pytest

from tests.integration.api_helpers import TOKEN, Api, add_with_trackers, running_api
from tests.unit.tracker._tracker_servers import HttpRequest, announce_body, http_response, http_tracker

pytestmark = pytest.mark.anyio


async def _asked_alone(heard: collections.Counter[str], chosen: str, other: str, ask: object) -> None:
    """``ask`` (awaited) makes ``chosen`` hear one announce more and ``other`` none."""
    before = dict(heard)
    await ask  # type: ignore[misc]
    with anyio.fail_after(30):
        while heard[chosen] == before.get(chosen, 0):
            await anyio.sleep(0.05)
    await anyio.sleep(0.5)  # (time for the other to be asked, were it)
    assert (heard[chosen], heard[other]) == (before.get(chosen, 0) + 1, before.get(other, 0)), heard


async def _announced_by_both(heard: collections.Counter[str], a: str, b: str) -> None:
    with anyio.fail_after(30):
        while not (heard[a] and heard[b]):
            await anyio.sleep(0.05)


async def _reannounce_qbt(api: Api, info_hash: str, url: str) -> None:
    r = await api.client.post("/api/v2/torrents/reannounce",
                              data={"hashes": info_hash, "urls": quote(url, safe="")})
    assert r.status_code == 200, r.text


async def _reannounce_ours(api: Api, job_id: str, url: str) -> None:
    r = await api.client.post(f"/api/jobs/{job_id}/reannounce", json={"trackers": [url]})
    assert r.status_code == 200, r.text


async def _reannounce_remote(api: Api, job_id: str, url: str) -> None:
    """``torrent-engine remote reannounce JOB --tracker URL``."""
    result = await anyio.run_process(
        [sys.executable, "-m", "torrent_engine", "remote", "--url", api.url, "--token", TOKEN,
         "reannounce", job_id, "--tracker", url], check=False)
    assert result.returncode == 0, result.stderr.decode()


@pytest.mark.parametrize("seed", [False, True], ids=["running", "dormant seed"])
async def test_the_chosen_tracker_alone_is_announced_to(tmp_path: Path, seed: bool) -> None:
    heard: collections.Counter[str] = collections.Counter()

    async def tracker(request: HttpRequest, stream: anyio.abc.ByteStream) -> None:
        heard[request.path] += 1
        await stream.send(http_response(announce_body(interval=1800)))

    async with http_tracker(tracker) as web, \
            running_api(tmp_path, config_options={"tracker_enabled": True}) as api:
        a, b = (f"http://127.0.0.1:{web.port}{path}" for path in ("/announce", "/announce/two"))
        info_hash, job_id = await add_with_trackers(api, tmp_path / "elsewhere", [[a], [b]], seed=seed)
        await _announced_by_both(heard, "/announce", "/announce/two")
        if seed:  # (dormant: no session, announced by the seeds' rounds)
            assert api.service.get(job_id).state.value == "seeding"
            assert api.service.manager.get(info_hash) is None
        await _asked_alone(heard, "/announce/two", "/announce", _reannounce_qbt(api, info_hash, b))
        await _asked_alone(heard, "/announce", "/announce/two", _reannounce_ours(api, job_id, a))
        if not seed:
            await _asked_alone(heard, "/announce/two", "/announce", _reannounce_remote(api, job_id, b))
        before = dict(heard)  # (the web UI's bulk Reannounce: every tracker)
        r = await api.client.post("/api/jobs/bulk", json={"action": "reannounce", "ids": [job_id]})
        assert r.status_code == 200 and r.json()["done"] == [job_id], r.text
        with anyio.fail_after(30):
            while not all(heard[p] > before[p] for p in ("/announce", "/announce/two")):
                await anyio.sleep(0.05)
        r = await api.client.post(f"/api/jobs/{job_id}/reannounce", json={"trackers": [a, "udp://127.0.0.1:9"]})
        assert (r.status_code, r.json()["field"]) == (400, "trackers[1]"), r.text
        r = await api.client.post(f"/api/jobs/{job_id}/reannounce", json={"trackers": []})
        assert (r.status_code, r.json()["field"]) == (400, "trackers"), r.text
