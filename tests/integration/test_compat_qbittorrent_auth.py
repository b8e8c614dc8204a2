"""qBittorrent's API key (WebAPI 2.14.1) and HTTP Basic credentials (2.15) on the dialect: the
key made, used, rotated and deleted through the real ``qbittorrent-api`` client, kept hashed
across a restart, never written out or logged; Basic auth with the login's credentials."""

from __future__ import annotations

import base64
import logging
import stat
from pathlib import Path

import anyio
import httpx
import pytest

from tests.conftest import require_module
from tests.integration.api_helpers import TOKEN, running_api

pytestmark = pytest.mark.anyio



def keys(url: str) -> tuple[str, str]:
    """Make a key, use it, rotate it, delete the new one (a worker thread)."""
    qbittorrentapi = require_module("qbittorrentapi")
    logged_in = qbittorrentapi.Client(host=url, username="admin", password=TOKEN,
                                      REQUESTS_ARGS={"timeout": 30})
    logged_in.auth_log_in()
    first = logged_in.app_rotate_api_key()["apiKey"]
    assert first.startswith("qbt_") and len(first) == 32
    by_key = qbittorrentapi.Client(host=url, api_key=first, REQUESTS_ARGS={"timeout": 30})
    assert by_key.app_version() == "v5.3.0alpha1" and by_key.torrents_info() == []
    second = by_key.app_rotate_api_key()["apiKey"]  # (a key may rotate itself)
    assert second != first
    with pytest.raises(qbittorrentapi.Forbidden403Error):
        by_key.app_version()  # the old key opens nothing
    by_second = qbittorrentapi.Client(host=url, api_key=second, REQUESTS_ARGS={"timeout": 30})
    assert by_second.torrents_count() == 0
    return first, second


async def test_an_api_key_is_made_used_rotated_kept_hashed_and_deleted(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with running_api(tmp_path) as api:
        first, second = await anyio.to_thread.run_sync(keys, api.url)
        async with httpx.AsyncClient(base_url=api.url, headers={"Authorization": f"Bearer {second}"}) as c:
            r = await c.post("/api/v2/auth/login", data={"username": "admin", "password": TOKEN})
            assert r.status_code == 403  # (a key is no way to log in, as qBittorrent)
            assert (await c.get("/api/jobs")).status_code == 401  # (nor a key to our own API)
        async with httpx.AsyncClient(base_url=api.url, headers={"Authorization": f"Bearer {first}"}) as c:
            r = await c.get("/api/v2/torrents/info")
            assert r.status_code == 403 and first not in r.text
    kept = api.state_dir / "qbittorrent_api_key"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    for path in api.state_dir.rglob("*"):
        if path.is_file():
            assert second.encode() not in path.read_bytes() and first.encode() not in path.read_bytes(), path
    assert first not in caplog.text and second not in caplog.text
    async with running_api(tmp_path) as api:  # (the same state folder: a restart)
        def delete_key() -> None:  # (through the client, with the key it deletes)
            qbittorrentapi = require_module("qbittorrentapi")
            by_key = qbittorrentapi.Client(host=api.url, api_key=second, REQUESTS_ARGS={"timeout": 30})
            assert by_key.app_version() == "v5.3.0alpha1"
            by_key.app_delete_api_key()
            with pytest.raises(qbittorrentapi.Forbidden403Error):
                by_key.app_version()

        await anyio.to_thread.run_sync(delete_key)
        assert not kept.exists()
        async with httpx.AsyncClient(base_url=api.url, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            assert (await c.get("/api/v2/app/version")).status_code == 200  # (the token still opens it)
            assert (await c.get("/api/v2/app/rotateAPIKey")).status_code == 405


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def test_http_basic_credentials_are_the_logins(tmp_path: Path) -> None:
    async with running_api(tmp_path, compat_username="sonarr") as api:
        async with httpx.AsyncClient(base_url=api.url) as c:
            r = await c.get("/api/v2/app/version", headers=basic("sonarr", TOKEN))
            assert (r.status_code, r.text) == (200, "v5.3.0alpha1")
            for headers in (basic("sonarr", "wrong"), basic("admin", TOKEN), basic("", TOKEN),
                            {"Authorization": "Basic not-base64!"},
                            {"Authorization": "Basic " + base64.b64encode(TOKEN.encode()).decode()}):
                r = await c.get("/api/v2/app/version", headers=headers)
                assert (r.status_code, r.text) == (401, "Unauthorized"), headers
                assert TOKEN not in r.text
            assert (await c.get("/api/v2/app/version")).status_code == 403  # (nothing sent)
            r = await c.post("/api/v2/auth/login", data={"username": "sonarr", "password": TOKEN})
            assert r.text == "Ok."  # a live cookie goes before Basic credentials, as in qBittorrent
            assert (await c.get("/api/v2/app/version", headers=basic("sonarr", "wrong"))).status_code == 200
