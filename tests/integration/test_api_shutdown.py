"""A client stops the daemon: our ``POST /api/shutdown``, qBittorrent's ``app/shutdown`` and
Transmission's ``session-close`` (the daemon's own, with real clients: ``tests/interop/
test_compat_clients.py``). An admin's alone; an API that no daemon serves says it has none to stop."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.integration.api_helpers import TOKEN, running_api
from tests.integration.test_api_users import PASSWORDS, as_user, qbt_as, users

pytestmark = pytest.mark.anyio


async def _session_close(client: httpx.AsyncClient) -> httpx.Response:
    """Transmission's ``session-close``, its session id learnt from the 409 first."""
    r = await client.post("/transmission/rpc", json={"method": "session-close"})
    sid = r.headers["x-transmission-session-id"]
    return await client.post("/transmission/rpc", json={"method": "session-close"},
                             headers={"X-Transmission-Session-Id": sid})


async def test_each_door_asks_the_daemon_to_stop_and_is_answered_first(tmp_path: Path) -> None:
    asked: list[str] = []
    async with running_api(tmp_path, shutdown=asked.append) as api:
        r = await api.client.post("/api/shutdown")
        assert r.status_code == 202 and r.json() == {"status": "stopping"}, r.text
        async with httpx.AsyncClient(base_url=api.url, timeout=30) as q:
            r = await q.post("/api/v2/auth/login", data={"username": "admin", "password": TOKEN})
            assert (await q.post("/api/v2/app/shutdown")).status_code == 200
        r = await _session_close(api.client)
        assert r.status_code == 200 and r.json()["result"] == "success", r.text
    assert asked == ["POST /api/shutdown", "qBittorrent's app/shutdown", "Transmission's session-close"]


async def test_no_daemon_to_stop_is_said_and_a_user_may_not_stop_it(tmp_path: Path) -> None:
    users(tmp_path / "state")
    async with running_api(tmp_path) as api:  # (a library's server: no daemon behind it)
        r = await api.client.post("/api/shutdown")
        assert r.status_code == 409 and "no daemon to stop" in r.text, r.text
        async with httpx.AsyncClient(base_url=api.url, timeout=30) as q:
            await q.post("/api/v2/auth/login", data={"username": "admin", "password": TOKEN})
            r = await q.post("/api/v2/app/shutdown")
            assert r.status_code == 409 and "no daemon to stop" in r.text, r.text
        r = await _session_close(api.client)
        assert "no daemon to stop" in r.json()["result"], r.text
    asked: list[str] = []
    async with running_api(tmp_path, shutdown=asked.append) as api:
        async with as_user(api, "alice") as alice:
            assert (await alice.post("/api/shutdown")).status_code == 403
        async with qbt_as(api, "alice") as q:
            assert (await q.post("/api/v2/app/shutdown")).status_code == 403
        async with httpx.AsyncClient(base_url=api.url, timeout=30,
                                     auth=("alice", PASSWORDS["alice"])) as t:
            r = await _session_close(t)
            assert r.json()["result"] != "success", r.text
    assert asked == []
