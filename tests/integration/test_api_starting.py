"""A restart in two steps, as the daemon makes it: the job records are read, the API answers
(the jobs as their records say, ``/api/health`` says ``starting``, a change is refused with 503
and ``Retry-After``), then the torrents are loaded and the jobs restored. The daemon answered
nothing until every torrent was loaded (2.4 s at 1 000 torrents, seconds more at 10 000)."""

from __future__ import annotations

from pathlib import Path

import anyio
import httpx
import pytest

from tests.integration.api_helpers import TOKEN
from tests.integration.helpers import loopback_config
from tests.unit.torrent_factory import make_torrent, payload
from torrent_engine.api import ApiServer
from torrent_engine.jobs import JobService, JobState, ServiceStarting

pytestmark = pytest.mark.anyio


async def test_the_api_answers_from_the_records_while_the_torrents_load(tmp_path: Path) -> None:
    download_root, state_dir = tmp_path / "downloads", tmp_path / "state"
    config = loopback_config(state_dir=state_dir)
    torrents = [make_torrent([(("f.bin",), payload(30_000, i))], 16384, name=f"t{i}") for i in range(3)]
    async with JobService(config, download_root=download_root, state_dir=state_dir) as jobs:
        ids = [(await jobs.add(t, paused=i == 0))[0].id for i, t in enumerate(torrents)]
    service = JobService(config, download_root=download_root, state_dir=state_dir)
    await service.load()  # (the records: the torrents are not loaded yet)
    server = ApiServer(service, token=TOKEN, port=0)
    async with anyio.create_task_group() as tg:
        await tg.start(server.serve)
        async with httpx.AsyncClient(base_url=server.url, timeout=30,
                                     headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            health = (await c.get("/api/health")).json()
            assert health["status"] == "starting"
            listed = (await c.get("/api/jobs")).json()["jobs"]
            assert sorted(j["id"] for j in listed) == sorted(ids)
            states = {j["id"]: j["state"] for j in listed}  # (not loaded yet: no claim of running)
            assert states == {ids[0]: "paused", ids[1]: "checking", ids[2]: "checking"}
            assert (await c.get("/api/v2/torrents/info")).status_code == 200  # (a dialect's read too)
            r = await c.post(f"/api/jobs/{ids[1]}/pause")
            assert r.status_code == 503 and r.headers["retry-after"] == "2", r.text
            assert "starting" in r.json()["error"]
            r = await c.post("/api/v2/torrents/pause", data={"hashes": torrents[1].info_hash.hex()})
            assert r.status_code == 503 and r.headers["retry-after"] == "2"
            r = await c.patch("/api/settings", json={"ratio_limit": 2.0})
            assert r.status_code == 503
            with pytest.raises(ServiceStarting):
                await service.add(torrents[0])
            async with service:  # the torrents loaded, the jobs restored
                assert (await c.get("/api/health")).json()["status"] == "ok"
                r = await c.post(f"/api/jobs/{ids[1]}/pause")
                assert r.status_code == 200 and r.json()["state"] == "paused", r.text
                assert service.get(ids[0]).state is JobState.PAUSED
            server.stop()
