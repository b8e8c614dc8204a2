"""A tracker whose announce waits for its answer is shown so: qBittorrent 5's ``torrents/trackers``
``updating`` (its web UI's "Updating..."), with ``includeTrackers`` too, our API's job detail
``updating`` and Transmission's ``announceState`` 3 (active) in a details view, for a running
torrent (its session's coordinator) and a dormant seed (its round's); false again once the
tracker answers, and for the tracker that answered at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import httpx
import pytest

from tests.integration.api_helpers import TOKEN, Api, add_with_trackers, qbt_tracker_rows, running_api
from tests.integration.helpers import make_payload
from tests.unit.tracker._tracker_servers import HttpRequest, announce_body, http_response, http_tracker
from torrent_engine.storage.create import create_torrent

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("seed", [False, True], ids=["running", "dormant seed"])
async def test_a_tracker_waited_for_is_updating_until_it_answers(tmp_path: Path, seed: bool) -> None:
    release = anyio.Event()
    waiting = anyio.Event()

    async def tracker(request: HttpRequest, stream: anyio.abc.ByteStream) -> None:
        if request.path.startswith("/announce/slow"):
            waiting.set()
            await release.wait()
        await stream.send(http_response(announce_body(interval=1800)))

    async with http_tracker(tracker) as web, \
            running_api(tmp_path, config_options={"tracker_enabled": True}) as api:
        fast, slow = (f"http://127.0.0.1:{web.port}{path}" for path in ("/announce", "/announce/slow"))
        info_hash, job_id = await add_with_trackers(api, tmp_path / "elsewhere", [[fast], [slow]], seed=seed)
        c = api.client

        async def qbt() -> dict[str, dict[str, Any]]:
            return await qbt_tracker_rows(api, info_hash)

        async def ours() -> dict[str, dict[str, Any]]:
            r = await c.get(f"/api/jobs/{job_id}")
            assert r.status_code == 200, r.text
            return {t["url"]: t for t in r.json()["trackers"]}

        with anyio.fail_after(30):
            await waiting.wait()
            while (await qbt())[fast]["status"] != 2:  # (the fast one answered; the slow one waits)
                await anyio.sleep(0.05)
        if seed:  # (dormant: no session, announced by the seeds' rounds)
            assert api.service.manager.get(info_hash) is None
        rows = await qbt()
        assert (rows[slow]["updating"], rows[fast]["updating"]) == (True, False), rows
        assert all("updating" not in row for u, row in rows.items() if u.startswith("** ["))
        detail = await ours()
        assert (detail[slow]["updating"], detail[fast]["updating"]) == (True, False), detail
        r = await c.get("/api/v2/torrents/info", params={"hashes": info_hash, "includeTrackers": "true"})
        listed = {t["url"]: t for t in r.json()[0]["trackers"]}
        assert (listed[slow]["updating"], listed[fast]["updating"]) == (True, False), listed
        r = await c.get("/api/jobs", params={"limit": 1})  # (a list carries no live state)
        assert r.status_code == 200, r.text
        stats = await transmission_stats(api, info_hash)
        assert (stats[slow], stats[fast]) == (3, 1), stats  # (active; waiting for its next announce)

        release.set()
        with anyio.fail_after(30):
            while (await qbt())[slow]["status"] != 2:
                await anyio.sleep(0.05)
        rows, detail = await qbt(), await ours()
        assert not any(row.get("updating") for row in rows.values()), rows
        assert not any(t["updating"] for t in detail.values()), detail
        assert 3 not in (await transmission_stats(api, info_hash)).values()


async def transmission_stats(api: Api, info_hash: str) -> dict[str, int]:
    """Transmission's ``trackerStats`` of the torrent (a details view's ``torrent-get``): each
    tracker's ``announceState`` by URL."""
    async with httpx.AsyncClient(base_url=api.url, auth=("admin", TOKEN)) as c:
        body = {"method": "torrent-get", "arguments": {"ids": [info_hash], "fields": ["trackerStats"]}}
        r = await c.post("/transmission/rpc", json=body)
        if r.status_code == 409:
            c.headers["X-Transmission-Session-Id"] = r.headers["x-transmission-session-id"]
            r = await c.post("/transmission/rpc", json=body)
        assert r.status_code == 200, r.text
        (torrent,) = r.json()["arguments"]["torrents"]
        return {t["announce"]: t["announceState"] for t in torrent["trackerStats"]}


@pytest.mark.parametrize("version", ["v1", "v2"])
async def test_a_tracker_announced_to_has_its_endpoint(tmp_path: Path, version: str) -> None:
    """qBittorrent's ``torrents/trackers`` (WebAPI 2.13) gives each tracker its ``endpoints``:
    none before it is announced to, then the local address and port it is announced from with
    the torrent's BitTorrent version (2: a v2-only torrent) and the tracker's own values (the
    web UI's rows under a tracker); ``includeTrackers`` too."""
    async def tracker(request: HttpRequest, stream: anyio.abc.ByteStream) -> None:
        await stream.send(http_response(announce_body(interval=1800)))

    async with http_tracker(tracker) as web, \
            running_api(tmp_path, config_options={"tracker_enabled": True}) as api:
        url = f"http://127.0.0.1:{web.port}/announce"
        payload = make_payload(tmp_path / "elsewhere", (("a.bin", 100_000),))
        torrent = create_torrent(payload, piece_length=32 * 1024, trackers=[[url]], version=version)
        r = await api.client.post("/api/v2/torrents/add", data={"savepath": "got", "stopped": "true"},
                                  files={"torrents": ("t.torrent", torrent.to_bytes())})
        assert r.status_code == 200, r.text
        info_hash = torrent.info_hash.hex()
        job = next(j for j in api.service.client_jobs() if j.info_hash == info_hash)
        assert (await qbt_tracker_rows(api, info_hash))[url]["endpoints"] == []  # (not announced to)
        await api.service.resume(job.id)
        with anyio.fail_after(30):
            while (row := (await qbt_tracker_rows(api, info_hash))[url])["status"] != 2:
                await anyio.sleep(0.05)
        port = api.service.manager.shared.listen_port
        # (the tracker's own values, as the same answer gives them: a scrape the call asked for in
        # the background may change its message between two answers)
        values = ("status", "msg", "num_peers", "num_seeds", "num_leeches", "num_downloaded",
                  "next_announce", "min_announce", "updating")

        def endpoints(tracker: dict[str, Any]) -> list[dict[str, Any]]:
            return [{"name": f"127.0.0.1:{port}", "bt_version": 2 if version == "v2" else 1,
                     **{k: tracker[k] for k in values}}]

        assert row["endpoints"] == endpoints(row)
        assert row["next_announce"] > 0 and row["updating"] is False
        r = await api.client.get("/api/v2/torrents/info",
                                 params={"hashes": info_hash, "includeTrackers": "true"})
        listed = r.json()[0]["trackers"][0]
        assert listed["endpoints"] == endpoints(listed)
