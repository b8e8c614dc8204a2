"""A real API server (uvicorn on 127.0.0.1) over a real JobService, and an SSE reader, for the
API tests. Requests go over TCP with httpx, as any client's would."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import anyio
import httpx

from tests.integration.helpers import loopback_config, make_payload
from tests.unit.torrent_factory import make_torrent, payload
from torrent_engine.api import ApiServer
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.jobs import Job, JobService, JobState
from torrent_engine.storage.create import create_torrent

TOKEN = "test-token-0123456789abcdef"


@dataclass
class Api:
    service: JobService
    server: ApiServer
    client: httpx.AsyncClient  # carries the token
    download_root: Path
    state_dir: Path

    @property
    def url(self) -> str:
        return self.server.url


LATE_DATA = payload(40000, 7)  # the data of ``add_late_seed``'s torrent


async def add_late_seed(api: Api) -> Job:
    """Add, paused, a small torrent whose data is not there yet (``complete_late_seed`` puts
    it there: it completes then, and leaves the queue's ranks)."""
    torrent = make_torrent([(("seedx.bin",), LATE_DATA)], 16384, name="seedx")
    job, _ = await api.service.add(torrent.to_bytes(), paused=True)
    return job


async def complete_late_seed(api: Api, job: Job) -> None:
    """Put the data of ``add_late_seed``'s job in place, resume and recheck it (its data
    found: it completes), and wait until it seeds."""
    (api.download_root / "seedx").mkdir(exist_ok=True)
    (api.download_root / "seedx" / "seedx.bin").write_bytes(LATE_DATA)
    await api.service.resume(job.id)
    await api.service.recheck(job.id)
    with anyio.fail_after(20):
        while api.service.get(job.id).state is not JobState.SEEDING:
            await anyio.sleep(0.05)


async def seeding_job(api: Api, torrent: Torrent) -> str:
    """A job of ``torrent``, whose data is in the download root already, once it seeds."""
    job, _ = await api.service.add(torrent.to_bytes())
    with anyio.fail_after(30):
        while api.service.get(job.id).state is not JobState.SEEDING:
            await anyio.sleep(0.05)
    return job.id


async def downloaded(api: Api, torrent: Torrent, peers: list[tuple[str, int]], timeout: float = 60) -> Job:
    """``torrent`` added with ``peers`` to dial, once it seeds and its counters were read (a tick)."""
    job, _ = await api.service.add(torrent.to_bytes(), peers=peers)
    with anyio.fail_after(timeout):
        while api.service.get(job.id).state is not JobState.SEEDING:
            await anyio.sleep(0.05)
    await api.service.tick()
    return api.service.get(job.id)


@asynccontextmanager
async def running_api(tmp_path: Path, *, config_options: dict[str, Any] | None = None,
                      clock: Callable[[], float] = time.time, **server_options: Any) -> AsyncIterator[Api]:
    download_root = tmp_path / "downloads"
    state_dir = tmp_path / "state"
    download_root.mkdir(parents=True, exist_ok=True)
    config = loopback_config(state_dir=state_dir, **(config_options or {}))
    async with JobService(config, download_root=download_root, state_dir=state_dir, clock=clock) as service:
        server = ApiServer(service, token=TOKEN, port=0, **server_options)
        async with anyio.create_task_group() as tg:
            await tg.start(server.serve)
            async with httpx.AsyncClient(base_url=server.url, timeout=30,
                                         headers={"Authorization": f"Bearer {TOKEN}"}) as client:
                try:
                    yield Api(service, server, client, download_root, state_dir)
                finally:
                    server.stop()



async def add_kept_from_its_save_path(api: Api, torrent: Torrent, theirs: Path, data: bytes) -> str:
    """``torrent``'s job added to save in ``done`` through the incomplete folder ``part`` (where
    its data is whole already), with the user's file ``theirs`` (under ``done``, named as one of
    its own) of other ``data`` in its way: the job's id."""
    theirs.parent.mkdir(parents=True)
    theirs.write_bytes(data)
    r = await api.client.post("/api/jobs", json={
        "source": base64.b64encode(torrent.to_bytes()).decode(), "save_path": "done",
        "download_path": "part"})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])

@dataclass
class SseMessage:
    id: str | None
    event: str
    data: dict[str, Any]


async def sse_messages(response: httpx.Response) -> AsyncIterator[SseMessage]:
    """The events of an open ``text/event-stream`` response (comments skipped)."""
    event, data, last_id = "message", [], None
    async for line in response.aiter_lines():
        if not line:
            if data:
                yield SseMessage(last_id, event, json.loads("\n".join(data)))
            event, data = "message", []
            continue
        if line.startswith(":"):
            continue
        key, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if key == "event":
            event = value
        elif key == "data":
            data.append(value)
        elif key == "id":
            last_id = value


# the settings a generated request leaves off (``loopback_only``), with the value it sends instead
OUTWARD_SETTINGS: dict[str, object] = {
    "lsd_enabled": False, "dht_enabled": False, "ip_filter_url": "", "proxy_url": "", "proxy_only": False,
    "run_on_added_enabled": False, "run_on_completed_enabled": False, "run_on_seeding_done_enabled": False,
    "dedup_folders": []}  # (a folder of the machine's, "/" say, would be walked and its files hashed)


def loopback_only(case: Any, port: int) -> None:
    """Keep a generated request from sending the daemon anywhere but loopback: peers become a
    loopback address, a magnet keeps only its info-hash and name (no trackers, web seeds, peers),
    a feed's URL is on the daemon's own port; settings that would reach out (LSD's multicast, the
    DHT's routers, a filter list's URL, a proxy), run a program on the machine or walk its folders
    are left off."""
    body = case.body
    if isinstance(body, dict):
        for name, off in OUTWARD_SETTINGS.items():
            if name in body:
                body[name] = off
        if isinstance(body.get("peers"), list):
            body["peers"] = [f"127.0.0.1:{port}" for _ in body["peers"]]
        elif isinstance(body.get("peers"), str):
            body["peers"] = f"127.0.0.1:{port}"
        if isinstance(body.get("url"), str):  # (a feed's: read from the daemon's own port)
            body["url"] = f"http://127.0.0.1:{port}/feed.xml"
        source = body.get("source")
        if isinstance(source, str) and source.startswith("magnet:"):
            head, _, query = source.partition("?")
            kept = [(k, v) for k, v in parse_qsl(query) if k in ("xt", "dn")]
            body["source"] = f"{head}?{urlencode(kept)}"


def qbt_client(url: str) -> Any:
    """A logged-in qbittorrent-api client of the dialect at ``url`` (it reads the WebAPI version the
    dialect says, 2.16.0, and sends what that version takes)."""
    from tests.conftest import require_module

    qbittorrentapi = require_module("qbittorrentapi")
    client = qbittorrentapi.Client(host=url, username="admin", password=TOKEN, REQUESTS_ARGS={"timeout": 30})
    client.auth_log_in()
    return client


def qbt_added(response: httpx.Response, count: int = 1) -> list[str]:
    """The hashes a qBittorrent dialect's ``torrents/add`` answered as added (WebAPI 2.14's
    answer), once it says ``count`` were."""
    assert response.status_code == 200, (response.status_code, response.text)
    body = response.json()
    assert body["success_count"] == count == len(body["added_torrent_ids"]), body
    return list(body["added_torrent_ids"])


async def add_with_trackers(api: Api, elsewhere: Path, tiers: list[list[str]], *,
                            seed: bool = False, n: int = 0) -> tuple[str, str]:
    """A torrent of one 100 000-byte file announcing to ``tiers``, added through qBittorrent's
    ``torrents/add``: with ``seed``, its data made in the download root and added in seed mode
    (a dormant seed), else its data made in ``elsewhere`` and the job downloading to ``got``.
    ``n``: the torrent's number (each a torrent of its own). Its info-hash and its job's id."""
    payload = make_payload(api.download_root if seed else elsewhere, (("a.bin", 100_000),),
                           seed=n + 1, name=f"payload{n or ''}")
    torrent = create_torrent(payload, piece_length=32 * 1024, trackers=tiers)
    r = await api.client.post("/api/v2/torrents/add", files={"torrents": ("t.torrent", torrent.to_bytes())},
                              data={"skip_checking": "true"} if seed else {"savepath": "got"})
    assert r.status_code == 200, r.text
    job = next(j for j in api.service.client_jobs() if j.info_hash == torrent.info_hash.hex())
    return job.info_hash, job.id


async def qbt_tracker_rows(api: Api, info_hash: str) -> dict[str, dict[str, Any]]:
    """qBittorrent's ``torrents/trackers`` of ``info_hash``, by URL."""
    r = await api.client.get("/api/v2/torrents/trackers", params={"hash": info_hash})
    assert r.status_code == 200, r.text
    return {row["url"]: row for row in r.json()}
