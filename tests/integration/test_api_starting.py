"""A restart in two steps, as the daemon makes it: the job records are read, the API answers
(the jobs as their records say, ``/api/health`` says ``starting`` with a 503 for readiness
probes), then the torrents are loaded and the jobs restored. A change asked meanwhile — ours, a
qBittorrent client's add (Sonarr grabs right after a restart), a setting — waits for the start
and is then made (the waiting changes go on in the order they came); one that would wait longer
than ``START_WAIT`` is refused with 503 and ``Retry-After`` (qBittorrent's ``Fails.``), nothing
of it made."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests.integration.api_helpers import TOKEN, qbt_added
from tests.integration.helpers import loopback_config
from tests.unit.torrent_factory import make_torrent, payload
from torrent_engine.api import ApiServer
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.jobs import JobService, JobState, ServiceStarting, starting

pytestmark = pytest.mark.anyio


def _torrents(n: int) -> list[Torrent]:
    return [make_torrent([(("f.bin",), payload(30_000, i))], 16384, name=f"t{i}") for i in range(n)]


async def test_changes_asked_while_the_torrents_load_are_made_once_they_are_in_order(tmp_path: Path) -> None:
    download_root, state_dir = tmp_path / "downloads", tmp_path / "state"
    config = loopback_config(state_dir=state_dir)
    torrents = _torrents(4)
    async with JobService(config, download_root=download_root, state_dir=state_dir) as jobs:
        ids = [(await jobs.add(t, paused=i == 0))[0].id for i, t in enumerate(torrents[:3])]
    service = JobService(config, download_root=download_root, state_dir=state_dir)
    await service.load()  # (the records: the torrents are not loaded yet)
    server = ApiServer(service, token=TOKEN, port=0)
    async with anyio.create_task_group() as tg:
        await tg.start(server.serve)
        async with httpx.AsyncClient(base_url=server.url, timeout=90,
                                     headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            r = await c.get("/api/health")
            assert r.status_code == 503 and r.json()["status"] == "starting" and r.headers["retry-after"]
            listed = (await c.get("/api/jobs")).json()["jobs"]
            assert sorted(j["id"] for j in listed) == sorted(ids)
            states = {j["id"]: j["state"] for j in listed}  # (not loaded yet: no claim of running)
            assert states == {ids[0]: "paused", ids[1]: "checking", ids[2]: "checking"}
            assert (await c.get("/api/v2/torrents/info")).status_code == 200  # (a dialect's read too)
            answers: dict[str, httpx.Response] = {}
            order: list[str] = []

            def ask(name: str, method: str, url: str, **kwargs: Any) -> Callable[[], Awaitable[None]]:
                async def asked() -> None:
                    answers[name] = await c.request(method, url, **kwargs)
                    order.append(name)
                return asked

            async with anyio.create_task_group() as asks:
                asks.start_soon(ask("pause", "POST", f"/api/jobs/{ids[1]}/pause"))
                await anyio.sleep(0.1)
                asks.start_soon(ask("qbt add", "POST", "/api/v2/torrents/add",
                                    files={"torrents": ("t.torrent", torrents[3].to_bytes())}))
                await anyio.sleep(0.1)
                asks.start_soon(ask("qbt pause", "POST", "/api/v2/torrents/pause",
                                    data={"hashes": torrents[2].info_hash.hex()}))
                asks.start_soon(ask("settings", "PATCH", "/api/settings", json={"ratio_limit": 2.0}))
                await anyio.sleep(0.5)
                assert answers == {}  # (waiting for the start: neither made nor refused)
                async with service:  # the torrents loaded, the jobs restored: the changes go on
                    with anyio.fail_after(30):
                        while len(answers) < 4:
                            await anyio.sleep(0.02)
                    r = await c.get("/api/health")
                    assert r.status_code == 200 and r.json()["status"] == "ok"
                    paused = answers["pause"]
                    assert paused.status_code == 200 and paused.json()["state"] == "paused", paused.text
                    qbt_added(answers["qbt add"])
                    assert answers["qbt pause"].status_code == 200
                    assert answers["settings"].status_code == 200, answers["settings"].text
                    assert sorted(order) == sorted(answers)
                    assert service.get(ids[1]).state is JobState.PAUSED
                    assert service.get(ids[2]).state is JobState.PAUSED
                    assert torrents[3].info_hash.hex() in {j.info_hash for j in service.list()}
                    assert service.get_settings().ratio_limit == 2.0
            server.stop()


async def test_a_change_that_would_wait_too_long_for_the_start_is_refused_and_nothing_made(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(starting, "START_WAIT", 0.5)
    download_root, state_dir = tmp_path / "downloads", tmp_path / "state"
    config = loopback_config(state_dir=state_dir)
    torrents = _torrents(2)
    async with JobService(config, download_root=download_root, state_dir=state_dir) as jobs:
        (job, _) = await jobs.add(torrents[0])
    service = JobService(config, download_root=download_root, state_dir=state_dir)
    await service.load()
    server = ApiServer(service, token=TOKEN, port=0)
    async with anyio.create_task_group() as tg:
        await tg.start(server.serve)
        async with httpx.AsyncClient(base_url=server.url, timeout=30,
                                     headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            r = await c.post(f"/api/jobs/{job.id}/pause")
            assert r.status_code == 503 and r.headers["retry-after"] == "2", r.text
            assert "still starting" in r.json()["error"]
            r = await c.post("/api/v2/torrents/add",
                             files={"torrents": ("t.torrent", torrents[1].to_bytes())})
            assert r.status_code == 409, r.text
            with pytest.raises(ServiceStarting):
                await service.add(torrents[1])
            assert [j.id for j in service.list()] == [job.id]  # (nothing of them made)
            server.stop()
