"""qBittorrent's ``sync/maindata`` ``server_state`` metrics of WebAPI 2.16.0, as libtorrent counts
them (they were ``0`` whatever happened): ``queued_tracker_announces``, the tracker announces
waiting for a slot (``active_tracker_limit``), and ``request_latency``, how long a piece a peer
asked for takes to be read from disk (µs, blended); our ``/api/stats`` and ``/metrics`` say both."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest

from tests.integration.api_helpers import Api, running_api, seeding_job
from tests.integration.helpers import loopback_config, make_payload, make_torrent
from tests.unit.tracker._tracker_servers import HttpRequest, announce_body, http_response, http_tracker
from torrent_engine.session import Session
from torrent_engine.storage.create import create_torrent

pytestmark = pytest.mark.anyio


async def _server_state(api: Api) -> dict[str, Any]:
    r = await api.client.get("/api/v2/sync/maindata")
    assert r.status_code == 200, r.text
    state: dict[str, Any] = r.json()["server_state"]
    return state


async def test_announces_waiting_for_a_slot_are_counted_until_they_go(tmp_path: Path) -> None:
    release = anyio.Event()
    arrived = 0

    async def tracker(request: HttpRequest, stream: anyio.abc.ByteStream) -> None:
        nonlocal arrived
        arrived += 1
        await release.wait()
        await stream.send(http_response(announce_body(interval=1800)))

    async with http_tracker(tracker) as web, \
            running_api(tmp_path, config_options={"tracker_enabled": True, "active_tracker_limit": 1}) as api:
        url = f"http://127.0.0.1:{web.port}/announce"
        for n in range(3):
            payload = make_payload(tmp_path / f"elsewhere{n}", ((f"{n}.bin", 20_000),))
            torrent = create_torrent(payload, piece_length=16 * 1024, trackers=[[url]])
            await api.service.add(torrent.to_bytes())
        with anyio.fail_after(30):  # (one in flight, held by the tracker; two waiting for the slot)
            while arrived < 1 or (await _server_state(api))["queued_tracker_announces"] != 2:
                await anyio.sleep(0.05)
        assert arrived == 1
        assert (await api.client.get("/api/stats")).json()["queued_announces"] == 2
        assert "torrent_engine_queued_tracker_announces 2.0" in (await api.client.get("/metrics")).text
        release.set()
        with anyio.fail_after(30):
            while arrived < 3 or (await _server_state(api))["queued_tracker_announces"] != 0:
                await anyio.sleep(0.05)


async def test_the_time_a_piece_asked_for_takes_to_be_read_is_the_request_latency(tmp_path: Path) -> None:
    payload = make_payload(tmp_path / "api" / "downloads", (("s.bin", 300_000),), name="s")
    torrent = make_torrent(payload, piece_length=16 * 1024)
    async with running_api(tmp_path / "api") as api:
        assert (await _server_state(api))["request_latency"] == 0  # (nothing served yet)
        await seeding_job(api, torrent)
        port = api.service.manager.shared.listen_port
        async with Session(torrent, tmp_path / "leech", config=loopback_config(),
                           peers=[("127.0.0.1", port)]) as leecher:
            with anyio.fail_after(60):
                await leecher.wait_completed()
        latency = (await _server_state(api))["request_latency"]
        assert latency > 0 and latency == round(api.service.manager.shared.request_latency)
        assert (await api.client.get("/api/stats")).json()["request_latency"] == latency
        metrics = (await api.client.get("/metrics")).text
        assert f"torrent_engine_request_latency_seconds {latency / 1e6}" in metrics
