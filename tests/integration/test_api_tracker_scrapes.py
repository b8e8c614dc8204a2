"""A job's trackers are scraped (BEP 48 over HTTP, BEP 15 over UDP) when a client looks at them,
at most once per interval per job: the download count (qBittorrent's ``num_downloaded``,
Transmission's ``downloadCount``) and the seeders and leechers are shown in each dialect's
trackers list; a scrape that fails says why in the tracker's message, and the list goes on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import httpx
import pytest

from tests.integration.api_helpers import TOKEN, Api, running_api
from tests.integration.helpers import make_payload
from tests.unit.tracker._tracker_servers import (
    HttpRequest,
    UdpTracker,
    announce_body,
    http_response,
    http_tracker,
    udp_tracker,
)
from torrent_engine.formats.bencode import encode
from torrent_engine.storage.create import create_torrent

pytestmark = pytest.mark.anyio


async def transmission(api: Api, method: str, arguments: dict[str, Any]) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=api.server.url, auth=("u", TOKEN)) as c:
        r = await c.post("/transmission/rpc", json={"method": method})
        sid = r.headers["x-transmission-session-id"]
        r = await c.post("/transmission/rpc", json={"method": method, "arguments": arguments},
                         headers={"X-Transmission-Session-Id": sid})
        answer: dict[str, Any] = r.json()
        assert answer["result"] == "success", answer
        return answer["arguments"]


async def test_trackers_are_scraped_when_looked_at_paced_and_a_failed_scrape_says_why(tmp_path: Path) -> None:
    scrapes: list[str] = []

    async def tracker(request: HttpRequest, stream: anyio.abc.ByteStream) -> None:
        if request.path.startswith("/scrape"):
            assert request.query()["info_hash"] == [torrent.info_hash]
            scrapes.append(request.path)
            files = {h: {b"complete": 3, b"downloaded": 42, b"incomplete": 4}
                     for h in request.query()["info_hash"]}
            await stream.send(http_response(encode({b"files": files})))
        else:  # (an announce, the one at /announce/tracker too: it has no scrape URL, BEP 48)
            await stream.send(http_response(announce_body(interval=1800)))

    async with http_tracker(tracker) as web, udp_tracker(UdpTracker()) as udp, \
            running_api(tmp_path, config_options={"tracker_enabled": True}) as api:
        http_url = f"http://127.0.0.1:{web.port}/announce"
        udp_url = f"udp://127.0.0.1:{udp.port}/announce"
        no_scrape = f"http://127.0.0.1:{web.port}/announce/tracker"  # (on this host: below /announce)
        payload = make_payload(tmp_path / "elsewhere", (("a.bin", 100_000),))
        tiers = [[http_url], [udp_url], [no_scrape]]
        torrent = create_torrent(payload, piece_length=32 * 1024, trackers=tiers)
        info_hash = torrent.info_hash.hex()
        c = api.client
        r = await c.post("/api/v2/torrents/add", files={"torrents": ("t.torrent", torrent.to_bytes())})
        assert r.status_code == 200, r.text
        job_id = api.service.client_jobs()[0].id
        with anyio.fail_after(20):
            while (await c.get(f"/api/jobs/{job_id}")).json()["state"] != "downloading":
                await anyio.sleep(0.05)
            rows: dict[str, dict[str, Any]] = {}
            while not rows or any(rows[u]["msg"] == "" and rows[u]["num_downloaded"] == -1
                                  for u in (http_url, udp_url, no_scrape)):
                await anyio.sleep(0.05)
                r = await c.get("/api/v2/torrents/trackers", params={"hash": info_hash})
                assert r.status_code == 200, r.text
                rows = {row["url"]: row for row in r.json()}
        assert (rows[http_url]["num_downloaded"], rows[http_url]["num_seeds"], rows[http_url]["num_leeches"],
                rows[http_url]["msg"]) == (42, 3, 4, "")
        udp_row = rows[udp_url]
        assert (udp_row["num_downloaded"], udp_row["num_seeds"], udp_row["num_leeches"]) == (6, 5, 7)
        assert rows[no_scrape]["num_downloaded"] == -1
        assert rows[no_scrape]["msg"] == ("scrape failed: tracker does not support scrape "
                                          "(no 'announce' in its path)")
        assert scrapes == ["/scrape"]  # (BEP 48: the announce URL's last part made "scrape")
        # our API and Transmission's show the same; looking again within the interval scrapes nothing
        detail = (await c.get(f"/api/jobs/{job_id}", params={"scrape": "true"})).json()
        ours = {t["url"]: t for t in detail["trackers"]}
        assert (ours[http_url]["downloaded"], ours[udp_url]["downloaded"], ours[no_scrape]["downloaded"]) == (
            42, 6, None)
        assert ours[no_scrape]["scrape_error"] and ours[http_url]["scrape_error"] is None
        got = await transmission(api, "torrent-get", {"ids": [1], "fields": ["trackerStats", "trackers"]})
        stats = {s["announce"]: s for s in got["torrents"][0]["trackerStats"]}
        # (the scrape URL as Transmission shows it: a UDP tracker's too, in both lists)
        assert stats[udp_url]["scrape"] == f"udp://127.0.0.1:{udp.port}/scrape"
        assert stats[no_scrape]["scrape"] == ""
        assert {t["announce"]: t["scrape"] for t in got["torrents"][0]["trackers"]} == {
            u: s["scrape"] for u, s in stats.items()}
        assert (stats[http_url]["downloadCount"], stats[http_url]["seederCount"],
                stats[http_url]["leecherCount"], stats[http_url]["lastScrapeSucceeded"]) == (42, 3, 4, True)
        assert stats[http_url]["scrape"] == f"http://127.0.0.1:{web.port}/scrape"
        # (Transmission 4's host and site name: a GUI's tracker filter lists them)
        assert (stats[udp_url]["host"], stats[udp_url]["sitename"]) == (f"127.0.0.1:{udp.port}", "127.0.0.1")
        assert [t["sitename"] for t in got["torrents"][0]["trackers"]] == ["127.0.0.1"] * 3
        assert not stats[no_scrape]["lastScrapeSucceeded"] and stats[no_scrape]["lastScrapeResult"]
        await anyio.sleep(0.3)
        assert len(scrapes) == 1
        # (an announce's news keeps what the scrape said)
        await c.post("/api/v2/torrents/reannounce", data={"hashes": info_hash})
        await anyio.sleep(0.3)
        rows = {row["url"]: row for row in
                (await c.get("/api/v2/torrents/trackers", params={"hash": info_hash})).json()}
        assert rows[http_url]["num_downloaded"] == 42 and len(scrapes) == 1
        api.service.scrapes.interval = 0.0  # (due at once: the next look scrapes again)
        await c.get("/api/v2/torrents/trackers", params={"hash": info_hash})
        with anyio.fail_after(10):
            while len(scrapes) < 2:
                await anyio.sleep(0.05)
        # a job that is paused announces nothing, and is not scraped either (what was said stays)
        await c.post("/api/v2/torrents/stop", data={"hashes": info_hash})
        await anyio.sleep(0.3)
        await c.get("/api/v2/torrents/trackers", params={"hash": info_hash})
        await anyio.sleep(0.3)
        assert len(scrapes) == 2
