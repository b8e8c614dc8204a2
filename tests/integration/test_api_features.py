"""Our API's categories, tags, settings, queue and job features, over HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.api_helpers import running_api

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
        r = await c.patch(f"/api/jobs/{job['id']}", json={"tags": ["x", "y"], "seeding_time_limit": 60})
        assert r.status_code == 200 and r.json()["features"]["tags"] == ["x", "y"]
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
        other = (await c.post("/api/jobs", json={"source": MAGNET_B, "paused": True})).json()
        r = await c.post(f"/api/jobs/{other['id']}/queue", json={"move": "top"})
        assert r.status_code == 200 and r.json()["queue"] == [other["id"], job["id"]]
        r = await c.post(f"/api/jobs/{job['id']}/move", json={"save_path": "/etc"})
        assert r.status_code == 400
        r = await c.post(f"/api/jobs/{job['id']}/move", json={"save_path": "elsewhere"})
        assert r.status_code == 200 and r.json()["options"]["save_path"].endswith("elsewhere")
        assert (await c.delete("/api/categories/films")).json() == {"removed": ["films"]}
        assert (await c.get("/api/categories")).json() == {"categories": []}
