"""SSRF mitigation (qBittorrent's and libtorrent's ``ssrf_mitigation``, on by default) through the
daemon's qBittorrent dialect, driven by qbittorrent-api: a torrent whose trackers point at this
host's other services (a local API's delete, a forged announce, a tracker redirecting to a local
shutdown) makes no request of them, each tracker saying why; the tracker's own path is announced
to. Turned off at run time, the next announces ask them all."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest

from tests.conftest import require_module
from tests.integration.api_helpers import qbt_client, running_api
from tests.integration.helpers import make_payload
from tests.unit.tracker._tracker_servers import HttpRequest, announce_body, http_response, http_tracker
from torrent_engine.storage.create import create_torrent

pytestmark = pytest.mark.anyio


async def answer(request: HttpRequest, stream: anyio.abc.ByteStream) -> None:
    if request.path == "/announce/moved":
        await stream.send(http_response(b"", "302 Found", ("Location: /api/v2/app/shutdown",)))
    else:  # (every other path answers as a tracker would: only what is asked is told apart)
        await stream.send(http_response(announce_body(interval=1800)))


def rows(client: Any, info_hash: str) -> dict[str, tuple[int, str]]:
    return {t.url: (t.status, t.msg) for t in client.torrents_trackers(info_hash) if t.tier >= 0}


async def test_trackers_pointing_at_this_hosts_services_are_not_asked_unless_the_mitigation_is_off(
        tmp_path: Path) -> None:
    qbittorrentapi = require_module("qbittorrentapi")
    async with http_tracker(answer) as web:
        base = f"http://127.0.0.1:{web.port}"
        local = f"{base}/api/v2/torrents/delete?hashes=all&deleteFiles=true"
        forged = f"{base}/announce?info_hash=%01%02&event=stopped"
        moved, own = f"{base}/announce/moved", f"{base}/announce"
        torrent = create_torrent(make_payload(tmp_path / "elsewhere", (("a.bin", 40_000),)), version="v1",
                                 trackers=[[local], [forged], [moved], [own]])
        info_hash = torrent.info_hash.hex()
        async with running_api(tmp_path, config_options={"tracker_enabled": True}) as api:
            client = await anyio.to_thread.run_sync(qbt_client, api.url)
            assert (await anyio.to_thread.run_sync(client.app_preferences))["ssrf_mitigation"] is True
            with pytest.raises(qbittorrentapi.InvalidRequest400Error, match="ssrf_mitigation"):
                await anyio.to_thread.run_sync(client.app_set_preferences, {"ssrf_mitigation": "no"})
            await anyio.to_thread.run_sync(lambda: client.torrents_add(torrent_files=torrent.to_bytes()))
            with anyio.fail_after(20):
                seen: dict[str, tuple[int, str]] = {}
                while len(seen) < 4 or any(status not in (2, 4) for status, _ in seen.values()):
                    await anyio.sleep(0.05)
                    seen = await anyio.to_thread.run_sync(rows, client, info_hash)
            assert seen[own] == (2, "")
            for url, said in ((local, "asked only at /announce, not at '/api/v2/torrents/delete'"),
                              (forged, "announce arguments (event, info_hash)"),
                              (moved, "asked only at /announce, not at '/api/v2/app/shutdown'")):
                status, msg = seen[url]
                assert status == 4 and msg.startswith("SSRF mitigation") and said in msg, (url, msg)
            # (the own tracker's announces and its scrapes, made as its row is looked at; the
            # redirecting tracker's own path: nothing else of this host)
            assert {"/announce", "/announce/moved"} <= {r.path for r in web.requests} <= {
                "/announce", "/announce/moved", "/scrape"}
            assert all(b"\x01\x02" not in r.query().get("info_hash", []) for r in web.requests)

            # turned off: the next announces (a reannounce) ask each of them
            await anyio.to_thread.run_sync(client.app_set_preferences, {"ssrf_mitigation": False})
            assert not api.service.get_settings().ssrf_mitigation
            assert not api.service.manager.config.ssrf_mitigation
            await anyio.to_thread.run_sync(lambda: client.torrents_reannounce(torrent_hashes=info_hash))
            local_paths = {"/api/v2/torrents/delete", "/api/v2/app/shutdown"}
            with anyio.fail_after(5):  # (a failing tracker's back-off is not waited out)
                while not local_paths <= {r.path for r in web.requests} \
                        or not any(b"\x01\x02" in r.query().get("info_hash", []) for r in web.requests):
                    await anyio.sleep(0.05)
