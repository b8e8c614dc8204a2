"""Bandwidth groups through our HTTP API: made, changed and deleted; a job placed by its own group,
its category or its tags; bad input refused with a 400 naming the field, a group that does not
exist with a 409."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.api_helpers import running_api

pytestmark = pytest.mark.anyio

MAGNET = "magnet:?xt=urn:btih:" + "d" * 40 + "&dn=grouped"


async def test_groups_and_a_jobs_group_over_http(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        c = api.client
        r = await c.post("/api/groups", json={"name": "films", "weight": 3, "download_limit": 500_000,
                                              "categories": ["films"], "tags": ["hd"]})
        assert r.status_code == 201, r.text
        assert r.json() == {"name": "films", "weight": 3, "download_limit": 500_000, "upload_limit": 0,
                            "honors_global": True, "categories": ["films"], "tags": ["hd"], "jobs": 0}
        await c.post("/api/groups", json={"name": "own"})
        job = (await c.post("/api/jobs", json={"source": MAGNET, "paused": True, "tags": ["hd"]})).json()
        with anyio.fail_after(5):  # (placed as its tags say)
            while (await c.get(f"/api/jobs/{job['id']}/group")).json() != {"group": "", "in": "films"}:
                await anyio.sleep(0.02)
        assert (await c.get("/api/groups/films")).json()["jobs"] == 1
        r = await c.patch(f"/api/jobs/{job['id']}", json={"group": "own"})  # (its own wins)
        assert r.status_code == 200 and r.json()["options"]["group"] == "own"
        assert (await c.get(f"/api/jobs/{job['id']}/group")).json() == {"group": "own", "in": "own"}
        r = await c.patch("/api/groups/films", json={"weight": 5, "tags": []})
        assert r.status_code == 200 and r.json()["weight"] == 5 and r.json()["tags"] == []
        assert api.service.manager.shared.bandwidth.download.rates()["films"] == 500_000

        for path, body, field in (
                ("/api/groups", {"name": "x", "weight": 0}, "weight"),
                ("/api/groups", {"name": "x", "weight": "3"}, "weight"),
                ("/api/groups", {"name": "x", "download_limit": -1}, "download_limit"),
                ("/api/groups", {"name": "x", "upload_limit": 2**40}, "upload_limit"),
                ("/api/groups", {"name": "x", "colour": "red"}, "colour"),
                ("/api/groups", {"weight": 2}, "name"),
                ("/api/groups", {"name": ""}, "name")):
            r = await c.post(path, json=body)
            assert r.status_code == 400 and r.json()["field"] == field, (body, r.text)
        # (a group that does not exist: what the request met, 409, as a category's; not a name: 400)
        for body, status in (({"group": "nowhere"}, 409), ({"group": 5}, 400)):
            r = await c.patch(f"/api/jobs/{job['id']}", json=body)
            assert r.status_code == status and r.json()["field"] == "group", (body, r.text)
            r = await c.put(f"/api/jobs/{job['id']}/group", json=body)
            assert r.status_code == status and r.json()["field"] == "group", (body, r.text)
        r = await c.patch("/api/groups/films", json={"name": "renamed"})
        assert r.status_code == 400 and r.json()["field"] == "name"
        assert (await c.patch("/api/groups/nowhere", json={"weight": 2})).status_code == 404
        assert [g["name"] for g in (await c.get("/api/groups")).json()["groups"]] == ["films", "own"]

        assert (await c.delete("/api/groups/own")).json() == {"removed": "own"}
        shown = (await c.get(f"/api/jobs/{job['id']}")).json()
        assert shown["options"]["group"] == ""  # (the group it named is gone: it names none)
        assert (await c.delete("/api/groups/own")).status_code == 404


async def test_metrics_show_each_groups_share_of_the_global_limit(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        c = api.client
        await c.patch("/api/settings", json={"download_limit": 400_000})
        await c.post("/api/groups", json={"name": "a", "weight": 3})
        await c.post("/api/groups", json={"name": "b", "upload_limit": 7000})
        r = await c.get("/metrics")
        assert r.status_code == 200
        name = "torrent_engine_bandwidth_group_rate_limit_bytes_per_second"
        shown = {(s.labels["group"], s.labels["direction"]): s.value
                 for family in text_string_to_metric_families(r.text) for s in family.samples
                 if s.name == name}
        # (before any traffic: the weighted shares of 400 000, the jobs of no group weighing 1)
        assert shown == {("a", "download"): 240_000, ("b", "download"): 80_000, ("", "download"): 80_000,
                         ("a", "upload"): 0, ("b", "upload"): 7000, ("", "upload"): 0}
