"""The event stream's first ``snapshot`` is made of the jobs' kept JSON texts (api/jobjson.py,
shared with the job lists): it says what ``GET /api/jobs`` says, and a job changed since shows
its change, not the text kept from before."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.api_helpers import Api, running_api, sse_messages

pytestmark = pytest.mark.anyio


async def first_snapshot(api: Api) -> list[dict[str, Any]]:
    async with api.client.stream("GET", "/api/events") as response:
        first = await anext(sse_messages(response))
        assert first.event == "snapshot"
        jobs: list[dict[str, Any]] = first.data["jobs"]
        return jobs


async def test_the_snapshot_is_the_lists_json_and_follows_a_change(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        for i in range(3):
            link = f"magnet:?xt=urn:btih:{i + 1:040x}&dn=é{i}"
            r = await api.client.post("/api/jobs", json={"source": link, "paused": True})
            assert r.status_code == 201, r.text
        listed = (await api.client.get("/api/jobs")).json()["jobs"]
        snapshot = await first_snapshot(api)
        assert sorted(snapshot, key=lambda j: j["id"]) == sorted(listed, key=lambda j: j["id"])
        assert {j["name"] for j in snapshot} == {"é0", "é1", "é2"}
        changed = snapshot[0]["id"]
        assert (await api.client.post(f"/api/jobs/{changed}/resume")).status_code == 200
        again = {j["id"]: j for j in await first_snapshot(api)}
        assert again[changed]["state"] != "paused"
        assert again[changed]["state"] == api.service.get(changed).state
        assert all(j["state"] == "paused" for i, j in again.items() if i != changed)
