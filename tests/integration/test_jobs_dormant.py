"""A job paused when the daemon starts has no session until it is resumed; every client view
(our API, qBittorrent's and Transmission's) shows it from its record and its resume data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests.integration.api_helpers import running_api
from tests.unit.torrent_factory import make_torrent, payload

pytestmark = pytest.mark.anyio


async def transmission(c: httpx.AsyncClient, method: str, arguments: dict[str, Any]) -> dict[str, Any]:
    call = {"method": method, "arguments": arguments}
    r = await c.post("/transmission/rpc", json=call)
    if r.status_code == 409:
        r = await c.post("/transmission/rpc", json=call,
                         headers={"X-Transmission-Session-Id": r.headers["x-transmission-session-id"]})
    assert r.status_code == 200 and r.json()["result"] == "success", r.text
    result: dict[str, Any] = r.json()["arguments"]
    return result


async def views(c: httpx.AsyncClient, job_id: str, info_hash: str) -> dict[str, Any]:
    """What each dialect shows of the job, the parts that do not move while it is paused."""
    job = (await c.get(f"/api/jobs/{job_id}")).json()
    listed = [j for j in (await c.get("/api/jobs", params={"limit": 10})).json()["jobs"] if j["id"] == job_id]
    qb = (await c.get("/api/v2/torrents/info", params={"hashes": info_hash})).json()
    qb_files = (await c.get("/api/v2/torrents/files", params={"hash": info_hash})).json()
    qb_props = (await c.get("/api/v2/torrents/properties", params={"hash": info_hash})).json()
    qb_pieces = (await c.get("/api/v2/torrents/pieceStates", params={"hash": info_hash})).json()
    qb_trackers = (await c.get("/api/v2/torrents/trackers", params={"hash": info_hash})).json()
    tr = (await transmission(c, "torrent-get", {"ids": [info_hash], "fields": [
        "hashString", "status", "percentDone", "haveValid", "totalSize", "sizeWhenDone", "leftUntilDone",
        "pieceCount", "pieceSize", "files", "fileStats", "trackers", "name"]}))["torrents"]
    return {
        "job": {k: job[k] for k in ("state", "progress", "done_size", "total_size", "name")},
        "job_files": [(f["path"], f["progress"], f["priority"]) for f in job["files"]],
        "job_trackers": [t["url"] for t in job["trackers"]],
        "listed": [(j["state"], j["progress"], j["done_size"]) for j in listed],
        "qb": [{k: t[k] for k in ("state", "progress", "size", "total_size", "amount_left", "name")}
               for t in qb],
        "qb_files": [(f["name"], f["progress"], f["priority"], f["size"]) for f in qb_files],
        "qb_props": {k: qb_props[k] for k in ("pieces_num", "piece_size", "pieces_have", "total_size")},
        "qb_pieces": qb_pieces,
        "qb_trackers": sorted(t["url"] for t in qb_trackers if not t["url"].startswith("** [")),
        "tr": tr,
    }


async def test_a_paused_job_without_a_session_looks_the_same_to_every_client(tmp_path: Path) -> None:
    data = payload(40000, seed=1) + payload(50000, seed=2)
    torrent = make_torrent([(("a.bin",), data[:40000]), (("b.bin",), data[40000:])], 16384, name="two")
    torrent_bytes = torrent.to_bytes()
    info_hash = torrent.info_hash.hex()
    first = tmp_path / "downloads" / "two" / "a.bin"
    first.parent.mkdir(parents=True)
    first.write_bytes(data[:40000])  # half the data is there
    async with running_api(tmp_path) as api:
        r = await api.client.post("/api/jobs", files={"torrent": ("t.torrent", torrent_bytes)})
        assert r.status_code == 201, r.text
        job_id = r.json()["id"]
        with anyio.fail_after(15):
            while (await api.client.get(f"/api/jobs/{job_id}")).json()["state"] != "downloading":
                await anyio.sleep(0.05)
        assert (await api.client.post(f"/api/jobs/{job_id}/pause")).status_code == 200
        before = await views(api.client, job_id, info_hash)
    assert 0 < before["job"]["done_size"] < before["job"]["total_size"]
    async with running_api(tmp_path) as api:
        assert api.service.manager.sessions == []  # paused: no session at start-up
        after = await views(api.client, job_id, info_hash)
        assert api.service.manager.sessions == []  # looking at it starts none either
        assert after == before
        r = await api.client.post(f"/api/jobs/{job_id}/resume")
        assert r.status_code == 200 and r.json()["state"] != "paused"
        assert [s.info_hash_hex for s in api.service.manager.sessions] == [info_hash]
