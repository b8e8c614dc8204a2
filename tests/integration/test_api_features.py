"""Our API's categories, tags, settings, queue and job features, over HTTP."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tests.integration.api_helpers import TOKEN, running_api
from tests.unit.torrent_factory import make_torrent, payload

pytestmark = pytest.mark.anyio

MAGNET_A = "magnet:?xt=urn:btih:" + "a" * 40 + "&dn=a"
MAGNET_B = "magnet:?xt=urn:btih:" + "b" * 40 + "&dn=b"


async def test_categories_tags_settings_and_job_features_over_http(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        c = api.client
        r = await c.post("/api/categories", json={"name": "films", "save_path": "movies"})
        assert r.status_code == 201 and r.json()["save_path"].endswith("movies")
        r = await c.post("/api/categories", json={"name": "bad", "save_path": "../../etc"})
        assert r.status_code == 400 and r.json()["field"] == "save_path"
        assert (await c.post("/api/categories", json={"name": "films"})).status_code == 409
        r = await c.post("/api/jobs", json={"source": MAGNET_A, "paused": True, "category": "films",
                                            "tags": ["hd"], "ratio_limit": 1.5, "download_limit": 100})
        assert r.status_code == 201
        job = r.json()
        assert job["options"]["save_path"].endswith("movies")
        assert job["features"]["category"] == "films" and job["features"]["tags"] == ["hd"]
        assert job["features"]["ratio_limit"] == 1.5 and job["options"]["download_limit"] == 100
        r = await c.patch(f"/api/jobs/{job['id']}", json={"tags": ["x", "y"], "seeding_time_limit": 60,
                                                          "idle_seeding_limit": 600})
        assert r.status_code == 200 and r.json()["features"]["tags"] == ["x", "y"]
        assert (r.json()["features"]["idle_seeding_limit"], r.json()["idle_seeding_time"]) == (600, 0)
        r = await c.patch(f"/api/jobs/{job['id']}", json={"idle_seeding_limit": -2})
        assert r.status_code == 400 and r.json()["field"] == "idle_seeding_limit"
        r = await c.patch(f"/api/jobs/{job['id']}", json={"category": "nope"})
        assert r.status_code == 409
        r = await c.patch(f"/api/jobs/{job['id']}", json={"tags": 5})
        assert r.status_code == 400 and r.json()["field"] == "tags"
        r = await c.patch(f"/api/jobs/{job['id']}", json={"ratio_limit": "lots"})
        assert r.status_code == 400 and r.json()["field"] == "ratio_limit"
        assert (await c.get("/api/tags")).json() == {"tags": ["hd", "x", "y"]}
        assert (await c.delete("/api/tags/x")).json() == {"tags": ["hd", "y"]}
        assert (await c.get(f"/api/jobs/{job['id']}")).json()["features"]["tags"] == ["y"]
        r = await c.post(f"/api/jobs/{job['id']}/queue", json={"move": "top"})
        assert r.status_code == 409  # queueing is off
        r = await c.patch("/api/settings", json={"queueing": True, "max_active_downloads": 1,
                                                 "share_limit_action": "remove"})
        assert r.status_code == 200 and r.json()["queueing"] is True
        assert (await c.patch("/api/settings", json={"share_limit_action": "explode"})).status_code == 400
        r = await c.patch("/api/settings", json={"idle_seeding_limit": 3600})
        assert r.status_code == 200 and r.json()["idle_seeding_limit"] == 3600
        r = await c.patch("/api/settings", json={"idle_seeding_limit": "an hour"})
        assert r.status_code == 400 and r.json()["field"] == "idle_seeding_limit"
        other = (await c.post("/api/jobs", json={"source": MAGNET_B, "paused": True})).json()
        r = await c.post(f"/api/jobs/{other['id']}/queue", json={"move": "top"})
        assert r.status_code == 200 and r.json()["queue"] == [other["id"], job["id"]]
        r = await c.post(f"/api/jobs/{job['id']}/move", json={"save_path": "/etc"})
        assert r.status_code == 400
        r = await c.post(f"/api/jobs/{job['id']}/move", json={"save_path": "elsewhere"})
        assert r.status_code == 200 and r.json()["options"]["save_path"].endswith("elsewhere")
        r = await c.post(f"/api/jobs/{job['id']}/move", json={"save_path": "found", "move": False})
        assert r.status_code == 200 and r.json()["options"]["save_path"].endswith("found")
        r = await c.post(f"/api/jobs/{job['id']}/move", json={"save_path": "x", "move": "no"})
        assert r.status_code == 400 and r.json()["field"] == "move"
        assert (await c.delete("/api/categories/films")).json() == {"removed": ["films"]}
        assert (await c.get("/api/categories")).json() == {"categories": []}


async def test_an_add_whose_files_another_job_writes_is_refused_in_every_dialect(tmp_path: Path) -> None:
    """A second torrent whose file has the path of a first job's: our API answers 409 naming both
    jobs, the qBittorrent dialect ``Fails.``, the Transmission dialect an error result; the first
    job is alone, its data untouched."""
    first = make_torrent([(("a.bin",), payload(40000, 1)), (("b.bin",), payload(30000, 2))], 16384,
                         name="pair")
    second = make_torrent([(("a.bin",), payload(40000, 9))], 16384, name="pair")
    async with running_api(tmp_path) as api:
        c = api.client
        r = await c.post("/api/jobs", json={"source": base64.b64encode(first.to_bytes()).decode(),
                                            "paused": True})
        assert r.status_code == 201
        job = r.json()
        r = await c.post("/api/jobs", json={"source": base64.b64encode(second.to_bytes()).decode()})
        assert r.status_code == 409 and r.json()["field"] == "save_path"
        assert job["id"] in r.json()["error"] and "'pair'" in r.json()["error"]
        await c.post("/api/v2/auth/login", data={"username": "admin", "password": TOKEN})
        r = await c.post("/api/v2/torrents/add", files={"torrents": ("x.torrent", second.to_bytes())})
        assert r.status_code == 409  # (none added: WebAPI 2.14's answer)
        r = await c.post("/transmission/rpc", json={"method": "session-get"})
        sid = {"X-Transmission-Session-Id": r.headers["x-transmission-session-id"]}
        call = {"method": "torrent-add",
                "arguments": {"metainfo": base64.b64encode(second.to_bytes()).decode()}}
        r = await c.post("/transmission/rpc", json=call, headers=sid)
        assert r.status_code == 200
        assert r.json()["result"] != "success" and job["id"] in r.json()["result"]
        assert [j.id for j in api.service.active()] == [job["id"]]
