"""Our API's ``/api/feeds``: the feeds, their articles and the download rules, the same ones
qBittorrent's ``rss/*`` edit. A feed on a loopback server read when asked, its articles listed
and marked read, a rule made, previewed, renamed and taking an article once the auto-downloader
is on; items moved, a URL changed, removed; bad input ``400`` naming the field, what is in the
way ``409``, what is not there ``404``; an admin's alone."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import httpx
import pytest

from tests.integration.api_helpers import TOKEN, running_api
from tests.integration.helpers import loopback_config, make_payload, make_torrent
from tests.integration.test_api_users import as_user, users
from tests.unit.tracker._tracker_servers import HttpRequest, http_response, http_tracker
from torrent_engine.api.server import ApiServer
from torrent_engine.jobs import JobService

pytestmark = pytest.mark.anyio


def _feed(port: int) -> bytes:
    base = f"http://127.0.0.1:{port}"
    return f"""<?xml version="1.0"?><rss version="2.0"><channel><title>Example</title>
<item><title>Show S01E02 720p</title><guid>e2</guid><pubDate>Mon, 30 Nov 2026 10:00:00 GMT</pubDate>
 <enclosure type="application/x-bittorrent" url="{base}/t/e2.torrent"/></item>
<item><title>Other thing</title><guid>other</guid><link>{base}/t/other.torrent</link></item>
</channel></rss>""".encode()


async def ok(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, (r.status_code, r.text)
    return r.json()


async def refused(r: httpx.Response, status: int, field: str) -> str:
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert body["field"] == field, body
    return str(body["error"])


@asynccontextmanager
async def feed_site(feed: Callable[[int], bytes], torrent: bytes) -> AsyncIterator[str]:
    """A loopback site serving ``feed(its port)`` at ``/feed.xml`` (whose URL it yields) and
    ``torrent`` at ``/t/e2.torrent``; 404 elsewhere."""
    async def site(request: HttpRequest, stream: anyio.abc.ByteStream) -> None:
        if request.path == "/feed.xml":
            await stream.send(http_response(feed(server.port),
                                            headers=("Content-Type: application/rss+xml",)))
        elif request.path == "/t/e2.torrent":
            await stream.send(http_response(torrent))
        else:
            await stream.send(http_response(b"gone", "404 Not Found"))

    async with http_tracker(site) as server:
        yield f"http://127.0.0.1:{server.port}/feed.xml"


async def test_feeds_their_articles_and_rules_through_our_api(tmp_path: Path) -> None:
    wanted = make_torrent(make_payload(tmp_path / "p", (("a.bin", 40_000),), name="show e2"))
    async with feed_site(_feed, wanted.to_bytes()) as url, running_api(tmp_path) as api:
        c = api.client
        port = httpx.URL(url).port
        assert await ok(await c.get("/api/feeds")) == {"folders": [], "feeds": []}
        assert await ok(await c.post("/api/feeds/folders", json={"path": "TV"}), 201) == {"folders": ["TV"]}
        feed = await ok(await c.post("/api/feeds", json={"url": url, "path": "TV\\Example"}), 201)
        assert (feed["path"], feed["url"], feed["articles"], feed["refresh_interval"]) == \
            ("TV\\Example", url, [], 0)  # (processing is off: not read until asked)

        assert await ok(await c.post("/api/feeds/refresh", json={"path": "TV"}), 202) == {"refreshing": "TV"}
        with anyio.fail_after(30):
            while not (listed := await ok(await c.get("/api/feeds")))["feeds"][0]["articles"]:
                await anyio.sleep(0.05)
        shown = listed["feeds"][0]
        assert (shown["title"], shown["error"], shown["unread"]) == ("Example", "", 2)
        e2 = next(a for a in shown["articles"] if a["id"] == "e2")
        assert e2["torrent_url"].endswith("/t/e2.torrent") and e2["read"] is False
        assert e2["date"] == 1796032800.0  # (Mon, 30 Nov 2026 10:00:00 GMT)
        await ok(await c.post("/api/feeds/read", json={"path": "TV\\Example", "article": "other"}))
        assert (await ok(await c.get("/api/feeds")))["feeds"][0]["unread"] == 1

        # a rule: previewed while disabled, renamed, then taking its article once auto-downloading
        rule = await ok(await c.put("/api/feeds/rules", json={
            "name": "shows", "enabled": False, "must_contain": "show 720p", "feeds": [url],
            "category": "tv", "tags": ["auto"], "save_path": "tv", "content_layout": "subfolder"}))
        assert (rule["enabled"], rule["must_contain"], rule["content_layout"], rule["last_match"]) == \
            (False, "show 720p", "subfolder", None)
        assert await ok(await c.get("/api/feeds/rules/matches", params={"name": "shows"})) == \
            {"matches": {"Example": ["Show S01E02 720p"]}}
        renamed = await ok(await c.post("/api/feeds/rules/rename", json={"name": "shows", "to": "series"}))
        assert renamed["name"] == "series"
        r = await c.put("/api/feeds/rules", json={**renamed, "enabled": True})
        assert (await ok(r))["enabled"] is True
        await ok(await c.patch("/api/settings", json={"rss_auto_downloading_enabled": True}))
        with anyio.fail_after(30):  # (the job is there first; the rule remembers once its add returned)
            while not api.service.client_jobs() \
                    or (await ok(await c.get("/api/feeds/rules")))["rules"][0]["last_match"] is None:
                await anyio.sleep(0.05)
        job = api.service.client_jobs()[0]
        assert (job.info_hash, job.features.category, job.features.tags) == (wanted.info_hash.hex(), "tv",
                                                                                ("auto",))
        rules = (await ok(await c.get("/api/feeds/rules")))["rules"]
        assert [(r["name"], r["last_match"]) for r in rules] == [("series", 1796032800.0)]
        assert len(api.service.client_jobs()) == 1  # (taken once)
        # a rule set again without what it remembers keeps it
        again = await ok(await c.put("/api/feeds/rules", json={"name": " series ", "feeds": [url]}))
        assert (again["last_match"], again["enabled"], again["must_contain"]) == (1796032800.0, True, "")

        # the same feeds and rules as qBittorrent's rss/* see them
        items = await ok(await c.get("/api/v2/rss/items"))
        assert items == {"TV": {"Example": {"uid": feed["uid"], "url": url}}}
        assert list(await ok(await c.get("/api/v2/rss/rules"))) == ["series"]

        # moved, read from elsewhere, given its own interval; removed
        moved = await ok(await c.patch("/api/feeds", json={"path": "TV\\Example", "to": " Example "}))
        assert moved["path"] == "Example" and moved["articles"]
        other = f"http://127.0.0.1:{port}/other.xml"
        changed = await ok(await c.patch("/api/feeds", json={"path": "Example", "url": other,
                                                              "refresh_interval": 3600}))
        assert (changed["url"], changed["articles"], changed["refresh_interval"]) == (other, [], 3600)
        assert (await ok(await c.get("/api/feeds/rules")))["rules"][0]["feeds"] == [other]  # (followed)
        assert await ok(await c.patch("/api/feeds", json={"path": "TV", "to": "Series"})) == \
            {"folders": ["Series"]}
        assert await ok(await c.delete("/api/feeds", params={"path": "Example"})) == {"removed": "Example"}
        removed = await ok(await c.delete("/api/feeds/rules", params={"name": "series"}))
        assert removed == {"removed": "series"}
        assert await ok(await c.get("/api/feeds")) == {"folders": ["Series"], "feeds": []}


async def test_the_feeds_are_read_from_the_services_start_when_the_api_was_served_first(
        tmp_path: Path) -> None:
    """The daemon serves its API while the torrents load, before its job service runs: the
    reader was not started then ("the service does not run: the feeds are not read" at every
    start), and after a restart a rule took nothing until someone opened the feeds."""
    wanted = make_torrent(make_payload(tmp_path / "p", (("a.bin", 40_000),), name="show e2"))
    async with feed_site(_feed, wanted.to_bytes()) as url:
        async with running_api(tmp_path) as api:  # the feed and its rule, kept for the next start
            await ok(await api.client.post("/api/feeds", json={"url": url, "path": "Example"}), 201)
            await ok(await api.client.put("/api/feeds/rules", json={
                "name": "shows", "enabled": True, "must_contain": "show 720p", "feeds": [url]}))
        state = tmp_path / "state"
        service = JobService(loopback_config(state_dir=state), download_root=tmp_path / "downloads",
                             state_dir=state)
        await service.load()
        server = ApiServer(service, token=TOKEN, port=0)
        async with anyio.create_task_group() as tg:
            await tg.start(server.serve)  # (the daemon's order: the API, then the service)
            async with service:
                await service.update_settings(rss_processing_enabled=True, rss_auto_downloading_enabled=True)
                with anyio.fail_after(30):  # (no feeds call: the reader runs with the service)
                    while not service.client_jobs():
                        await anyio.sleep(0.05)
                assert service.client_jobs()[0].info_hash == wanted.info_hash.hex()
            server.stop()


async def test_what_the_feeds_api_refuses_and_why(tmp_path: Path) -> None:
    users(tmp_path / "state")
    async with running_api(tmp_path) as api:
        c = api.client
        url = "http://127.0.0.1:9/feed.xml"  # (processing off, never asked: never read)
        await ok(await c.post("/api/feeds", json={"url": url, "path": "F"}), 201)
        r = await c.post("/api/feeds", json={"url": "file:///etc/passwd"})
        assert "http(s)" in await refused(r, 400, "url")
        await refused(await c.post("/api/feeds", json={"path": "F"}), 400, "url")
        await refused(await c.post("/api/feeds", json={"url": url, "colour": "red"}), 400, "colour")
        await refused(await c.post("/api/feeds", json={"url": url + "?2", "refresh_interval": 5}), 400,
                      "refresh_interval")  # (a site asked every 5 s)
        await refused(await c.post("/api/feeds", json={"url": url + "?2", "path": "a\\\\b"}), 400, "path")
        assert "read already" in await refused(await c.post("/api/feeds", json={"url": url, "path": "G"}),
                                               409, "url")
        await refused(await c.post("/api/feeds", json={"url": url + "?3", "path": "F"}), 409, "path")
        await refused(await c.post("/api/feeds", json={"url": url + "?3", "path": "No\\F"}), 409, "path")
        await refused(await c.patch("/api/feeds", json={"path": "Missing", "to": "X"}), 404, "path")
        both = {"path": "F", "to": "G", "url": url + "?4"}  # (a move alone: two changes could be made half)
        await refused(await c.patch("/api/feeds", json=both), 400, "to")
        await refused(await c.patch("/api/feeds", json={"path": "F", "refresh_interval": -1}), 400,
                      "refresh_interval")
        await refused(await c.delete("/api/feeds", params={"path": "Missing"}), 404, "path")
        await refused(await c.delete("/api/feeds"), 400, "path")
        await refused(await c.post("/api/feeds/refresh", json={"path": "Missing"}), 404, "path")
        await refused(await c.post("/api/feeds/read", json={"path": "Missing"}), 404, "path")
        rules = {"bad regex": ({"name": "r", "use_regex": True, "must_contain": "(unclosed"}, "must_contain"),
                 "a list as text": ({"name": "r", "tags": "a,b"}, "tags"),
                 "no name": ({"enabled": True}, "name"),
                 "outside the root": ({"name": "r", "save_path": "../../elsewhere"}, "save_path"),
                 "a bad episode filter": ({"name": "r", "episode_filter": "S1E2"}, "episode_filter"),
                 "a date past 9999": ({"name": "r", "last_match": 1e300}, "last_match"),
                 "qBittorrent's layout": ({"name": "r", "content_layout": "Subfolder"}, "content_layout")}
        for what, (body, field) in rules.items():
            r = await c.put("/api/feeds/rules", json=body)
            assert (r.status_code, r.json().get("field")) == (400, field), (what, r.text)
        assert (await ok(await c.get("/api/feeds/rules"))) == {"rules": []}
        await refused(await c.get("/api/feeds/rules/matches", params={"name": "none"}), 404, "name")
        await refused(await c.delete("/api/feeds/rules", params={"name": "none"}), 404, "name")
        await ok(await c.put("/api/feeds/rules", json={"name": "a"}))
        await ok(await c.put("/api/feeds/rules", json={"name": "b"}))
        await refused(await c.post("/api/feeds/rules/rename", json={"name": "a", "to": "b"}), 409, "to")
        await refused(await c.post("/api/feeds/rules/rename", json={"name": "z", "to": "y"}), 404, "name")
        async with as_user(api, "alice") as alice:  # (a feed's URL often holds the user's key: an admin's)
            for method, path in (("GET", "/api/feeds"), ("GET", "/api/feeds/rules"),
                                 ("GET", "/api/feeds/rules/matches"), ("POST", "/api/feeds"),
                                 ("PUT", "/api/feeds/rules"), ("DELETE", "/api/feeds")):
                body = None if method in ("GET", "DELETE") else {"url": url, "name": "a"}
                r = await alice.request(method, path, params={"name": "a", "path": "F"}, json=body)
                assert r.status_code == 403, (method, path, r.status_code, r.text)
