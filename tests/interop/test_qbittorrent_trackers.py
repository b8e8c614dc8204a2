"""``torrents/trackers`` of a running torrent whose trackers answer in different ways, a real
``qbittorrent-nox`` against ours: one answering a warning with the swarm's counts, one a failure
reason, one on a port nothing listens on. A tracker that gave no peers (failing, or not yet
asked) has ``num_peers`` ``-1`` there, where ours said ``0``."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import httpx
import pytest

from tests.integration.api_helpers import TOKEN, running_api
from tests.integration.helpers import make_payload
from tests.interop.test_qbittorrent_types import _free_port, qbittorrent_nox
from tests.unit.tracker._tracker_servers import HttpRequest, announce_body, http_response, http_tracker
from torrent_engine.formats.bencode import encode
from torrent_engine.storage.create import create_torrent

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

ANSWERS = {  # (what each tracker answers an announce; a scrape: 404)
    "warning": announce_body(complete=3, incomplete=5, **{"warning message": "slow down"}),
    "failure": encode({"failure reason": "unregistered torrent"}),
}


def answering(body: bytes) -> Any:
    async def tracker(request: HttpRequest, stream: anyio.abc.ByteStream) -> None:
        found = request.path.startswith("/announce")
        await stream.send(http_response(body) if found else http_response(b"", "404 Not Found"))
    return tracker


async def _rows(c: httpx.AsyncClient, data: bytes, info_hash: str, urls: dict[str, str]) -> dict[str, Any]:
    """The torrent added (running), and its trackers' rows once each has been announced to."""
    r = await c.post("/api/v2/torrents/add", files={"torrents": ("t.torrent", data)})
    assert r.status_code == 200, r.text
    by_url = {url: name for name, url in urls.items()}
    with anyio.fail_after(30):
        while True:
            rows = {by_url[t["url"]]: t for t in (await c.get(
                "/api/v2/torrents/trackers", params={"hash": info_hash})).json() if t["url"] in by_url}
            if len(rows) == len(urls) and all(t["status"] not in (1, 3) for t in rows.values()):
                return rows
            await anyio.sleep(0.2)


async def test_the_trackers_of_a_running_torrent_are_shown_as_a_real_qbittorrent_shows_them(
        tmp_path: Path) -> None:
    async with AsyncExitStack() as stack:
        urls = {}
        for name, body in ANSWERS.items():
            server = await stack.enter_async_context(http_tracker(answering(body)))
            urls[name] = f"http://127.0.0.1:{server.port}/announce"
        urls["closed"] = f"http://127.0.0.1:{_free_port()}/announce"
        payload = make_payload(tmp_path / "elsewhere", (("a.bin", 100_000),))
        torrent = create_torrent(payload, piece_length=32 * 1024, trackers=[[u] for u in urls.values()],
                                 version="v1")
        data, info_hash = torrent.to_bytes(), torrent.info_hash.hex()
        with qbittorrent_nox(tmp_path / "qbt") as qbt_url:
            async with httpx.AsyncClient(base_url=qbt_url, timeout=30) as c:
                theirs = await _rows(c, data, info_hash, urls)
        async with running_api(tmp_path / "ours", config_options={"tracker_enabled": True}) as api:
            async with httpx.AsyncClient(base_url=api.url, timeout=30,
                                         headers={"Authorization": f"Bearer {TOKEN}"}) as c:
                ours = await _rows(c, data, info_hash, urls)

    def shown(row: dict[str, Any]) -> tuple[object, ...]:
        # (the message lower-cased: libtorrent says "Connection refused"; ours adds a failed
        # scrape's reason after the announce's, and a failure reason is qBittorrent 5's status 5,
        # "tracker error", where 4.5.2 says 4, "not working")
        message = str(row["msg"]).split("; scrape failed")[0].lower()
        status = 4 if row["status"] == 5 else row["status"]
        return status, row["num_peers"], row["num_seeds"], row["num_leeches"], message

    assert {n: shown(r) for n, r in ours.items()} == {n: shown(r) for n, r in theirs.items()}
    assert shown(theirs["failure"]) == (4, -1, -1, -1, "unregistered torrent")  # (compared something)
    assert shown(theirs["warning"]) == (2, 0, 3, 5, "slow down")
