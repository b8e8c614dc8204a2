"""``rss/*`` against a real ``qbittorrent-nox`` on 127.0.0.1: the same calls to both (processing
on, a folder, a feed on a loopback server, a conflict or two, a rule with a word, an episode
filter and the smart filter, an article marked read, a move), then the same tree of items with
the same fields of the same kinds, the same articles read, the same rule fields of the same kinds
(ours may say more), and the same articles matching the rule: its wildcard, episode filter and
smart filter read as qBittorrent reads them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import httpx
import pytest

from tests.integration.api_helpers import TOKEN, running_api
from tests.interop.test_qbittorrent_types import qbittorrent_nox, type_differences
from tests.unit.tracker._tracker_servers import HttpRequest, http_response, http_tracker

pytestmark = [pytest.mark.interop, pytest.mark.anyio]

TITLES = ["Show S01E01 720p", "Show S01E02 1080p", "Other S01E01", "show s02e05 web", "Show special",
          "Show S01E01 REPACK", "The Show 1x03", "Show S01E00 pilot"]


def _feed(port: int) -> bytes:
    items = "".join(
        f"<item><title>{t}</title><guid>g{n}</guid><pubDate>Mon, 30 Nov 2026 {10 + n % 10:02}:00:00 GMT"
        f"</pubDate><enclosure type=\"application/x-bittorrent\" url=\"http://127.0.0.1:{port}/t/{n}.torrent\"/>"
        f"<link>http://127.0.0.1:{port}/page/{n}</link><description>about {n}</description></item>"
        for n, t in enumerate(TITLES))
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>Loopback site</title>'
            f"<lastBuildDate>Mon, 30 Nov 2026 20:00:00 GMT</lastBuildDate>{items}</channel></rss>").encode()


async def _drive(c: httpx.AsyncClient, feed: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    r = await c.post("/api/v2/app/setPreferences", data={"json": json.dumps(
        {"rss_processing_enabled": True, "rss_auto_downloading_enabled": False})})
    assert r.status_code == 200, r.text
    out["folder"] = (await c.post("/api/v2/rss/addFolder", data={"path": "TV"})).status_code
    out["feed"] = (await c.post("/api/v2/rss/addFeed", data={"url": feed, "path": "TV\\Example"})).status_code
    out["again"] = (await c.post("/api/v2/rss/addFeed", data={"url": feed, "path": "Again"})).status_code
    out["no parent"] = (await c.post("/api/v2/rss/addFolder", data={"path": "Nowhere\\Sub"})).status_code
    rule = {"enabled": True, "mustContain": "show", "mustNotContain": "special", "episodeFilter": "1x1-;",
            "smartFilter": True, "affectedFeeds": [feed], "assignedCategory": "", "savePath": ""}
    r = await c.post("/api/v2/rss/setRule", data={"ruleName": "shows", "ruleDef": json.dumps(rule)})
    assert r.status_code == 200, r.text
    with anyio.fail_after(30):
        while True:
            items = (await c.get("/api/v2/rss/items", params={"withData": "true"})).json()
            if items.get("TV", {}).get("Example", {}).get("articles"):
                break
            await anyio.sleep(0.1)
    r = await c.post("/api/v2/rss/markAsRead", data={"itemPath": "TV\\Example", "articleId": "g1"})
    assert r.status_code == 200, r.text
    out["move"] = (await c.post("/api/v2/rss/moveItem", data={"itemPath": "TV\\Example",
                                                              "destPath": "Example"})).status_code
    out["move missing"] = (await c.post("/api/v2/rss/moveItem", data={"itemPath": "Nothing",
                                                                      "destPath": "X"})).status_code
    out["items"] = (await c.get("/api/v2/rss/items", params={"withData": "true"})).json()
    out["bare items"] = (await c.get("/api/v2/rss/items")).json()
    out["rules"] = (await c.get("/api/v2/rss/rules")).json()
    out["matching"] = (await c.get("/api/v2/rss/matchingArticles", params={"ruleName": "shows"})).json()
    return out


async def test_the_feeds_and_the_rules_read_as_a_real_qbittorrent_s(tmp_path: Path) -> None:
    async def site(request: HttpRequest, stream: anyio.abc.ByteStream) -> None:
        if request.path == "/feed.xml":
            await stream.send(http_response(_feed(server.port),
                                            headers=("Content-Type: application/rss+xml",)))
        else:
            await stream.send(http_response(b"gone", "404 Not Found"))

    async with http_tracker(site) as server:
        feed = f"http://127.0.0.1:{server.port}/feed.xml"
        with qbittorrent_nox(tmp_path / "qbt") as qbt_url:
            async with httpx.AsyncClient(base_url=qbt_url, timeout=30) as c:
                theirs = await _drive(c, feed)
        async with running_api(tmp_path / "ours") as api:
            async with httpx.AsyncClient(base_url=api.url, timeout=30,
                                         headers={"Authorization": f"Bearer {TOKEN}"}) as c:
                ours = await _drive(c, feed)

    for key in ("folder", "feed", "again", "no parent", "move", "move missing"):
        assert ours[key] == theirs[key], (key, ours[key], theirs[key])
    assert set(ours["items"]) == set(theirs["items"]) == {"TV", "Example"}
    assert ours["bare items"]["Example"].keys() == theirs["bare items"]["Example"].keys() == {"uid", "url"}
    mine, real = ours["items"]["Example"], theirs["items"]["Example"]
    assert real.keys() <= mine.keys(), real.keys() - mine.keys()
    assert type_differences({k: v for k, v in real.items() if k != "articles"},
                            {k: v for k, v in mine.items() if k != "articles"}) == []
    assert mine["title"] == real["title"] == "Loopback site"
    by_id = {a["id"]: a for a in mine["articles"]}
    for article in real["articles"]:
        assert article.keys() <= by_id[article["id"]].keys(), article.keys() - by_id[article["id"]].keys()
        assert type_differences(article, by_id[article["id"]]) == []
        for field in ("title", "torrentURL", "link", "description"):
            assert by_id[article["id"]][field] == article[field], (field, by_id[article["id"]], article)
        # (qBittorrent gives isRead once an article is read; ours always)
        assert by_id[article["id"]]["isRead"] == article.get("isRead", False), (by_id[article["id"]], article)
    assert {a["id"] for a in mine["articles"]} == {a["id"] for a in real["articles"]}
    assert theirs["rules"]["shows"].keys() <= ours["rules"]["shows"].keys()
    assert type_differences(theirs["rules"]["shows"], ours["rules"]["shows"]) == []
    assert {k: sorted(v) for k, v in ours["matching"].items()} == \
        {k: sorted(v) for k, v in theirs["matching"].items()}, (ours["matching"], theirs["matching"])
    assert ours["matching"], theirs["matching"]
