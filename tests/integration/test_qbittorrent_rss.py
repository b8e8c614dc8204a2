"""The daemon's feeds through qBittorrent's ``rss/*``, driven by qbittorrent-api as front ends do:
a feed on a loopback server read once processing is on, a download rule (a word, the smart
filter, a category and a save path) adding the torrent of the article it takes — one of two
articles of the same episode —, the article read from then on; a feed that answers 404 says so;
a disabled rule's matching articles; the conflicts and bad rules refused as qBittorrent answers;
everything kept across a restart; a feeds record that cannot be read kept aside; an admin's alone;
a feed fetched with the cookies given for it."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest

from tests.integration.api_helpers import qbt_client, running_api
from tests.integration.helpers import make_payload, make_torrent
from tests.integration.test_api_users import qbt_as, users
from tests.unit.tracker._tracker_servers import HttpRequest, http_response, http_tracker

pytestmark = pytest.mark.anyio


def _feed(port: int, magnet: str) -> bytes:
    base = f"http://127.0.0.1:{port}"
    return f"""<?xml version="1.0"?><rss version="2.0"><channel><title>Example</title>
<item><title>Show S01E01 1080p</title><guid>e1-1080</guid><pubDate>Mon, 30 Nov 2026 10:00:00 GMT</pubDate>
 <enclosure type="application/x-bittorrent" url="{base}/t/1080.torrent"/></item>
<item><title>Show S01E01 720p</title><guid>e1-720</guid><pubDate>Mon, 30 Nov 2026 09:00:00 GMT</pubDate>
 <enclosure type="application/x-bittorrent" url="{base}/t/720.torrent"/></item>
<item><title>Other thing</title><link>{magnet.replace("&", "&amp;")}</link></item>
</channel></rss>""".encode()


def _set_up(url: str, feed: str, broken: str) -> Any:
    """What a front end does (in a worker thread): processing on, a folder, two feeds, two rules."""
    from qbittorrentapi import Conflict409Error, InvalidRequest400Error

    qbt = qbt_client(url)
    qbt.app_set_preferences({"rss_processing_enabled": True, "rss_auto_downloading_enabled": True,
                             "rss_refresh_interval": 30})
    qbt.rss_add_folder(folder_path="TV")
    qbt.rss_add_feed(url=feed, item_path="TV\\Example")
    qbt.rss_add_feed(url=broken, item_path="Broken")
    refused = []
    for call in (lambda: qbt.rss_add_feed(url=feed, item_path="Again"),  # (read already)
                 lambda: qbt.rss_add_folder(folder_path="Nowhere\\Sub"),
                 lambda: qbt.rss_move_item(orig_item_path="Missing", new_item_path="X")):
        try:
            call()
        except Conflict409Error as exc:
            refused.append(str(exc))
    try:
        qbt.rss_set_rule(rule_name="bad", rule_def={"useRegex": True, "mustContain": "(unclosed"})
    except InvalidRequest400Error as exc:
        refused.append(str(exc))
    qbt.rss_set_rule(rule_name="preview", rule_def={"enabled": False, "mustContain": "1080p",
                                                    "affectedFeeds": [feed]})
    qbt.rss_set_rule(rule_name="shows", rule_def={
        "enabled": True, "mustContain": "show", "smartFilter": True, "affectedFeeds": [feed],
        "assignedCategory": "tv", "savePath": "tv"})
    return qbt, refused


async def test_a_rule_adds_the_torrent_of_the_article_it_takes_and_everything_is_kept(
        tmp_path: Path) -> None:
    wanted = make_torrent(make_payload(tmp_path / "p720", (("a.bin", 40_000),), name="show 720p"))
    other = make_torrent(make_payload(tmp_path / "p1080", (("a.bin", 50_000),), name="show 1080p"))
    magnet = f"magnet:?xt=urn:btih:{'ab' * 20}&dn=other"
    asked: list[str] = []

    async def site(request: HttpRequest, stream: anyio.abc.ByteStream) -> None:
        asked.append(request.path)
        if request.path == "/feed.xml":
            await stream.send(http_response(_feed(server.port, magnet),
                                            headers=("Content-Type: application/rss+xml",)))
        elif request.path in ("/t/720.torrent", "/t/1080.torrent"):
            t = wanted if "720" in request.path else other
            await stream.send(http_response(t.to_bytes(),
                                            headers=("Content-Type: application/x-bittorrent",)))
        else:
            await stream.send(http_response(b"gone", "404 Not Found"))

    async with http_tracker(site) as server:
        feed, broken = (f"http://127.0.0.1:{server.port}{p}" for p in ("/feed.xml", "/broken.xml"))
        async with running_api(tmp_path) as api:
            qbt, refused = await anyio.to_thread.run_sync(_set_up, api.url, feed, broken)
            assert len(refused) == 4 and "read already" in refused[0] and "mustContain" in refused[3], refused
            with anyio.fail_after(30):  # (read at once, the rule set: its torrent added)
                while not api.service.client_jobs():
                    await anyio.sleep(0.05)
            await anyio.sleep(0.5)  # (time for a second add, were there one)
            jobs = api.service.client_jobs()
            assert [j.info_hash for j in jobs] == [wanted.info_hash.hex()], jobs  # (one episode, once)
            assert jobs[0].features.category == "tv"
            assert Path(jobs[0].options.save_path) == (api.download_root / "tv").resolve()
            assert "/t/1080.torrent" not in asked

            def read_back() -> tuple[Any, Any, Any]:
                return (qbt.rss_items(include_feed_data=True), qbt.rss_rules(),
                        qbt.rss_matching_articles(rule_name="preview"))

            with anyio.fail_after(30):
                while True:  # (the broken feed's reading ends with its error)
                    items, rules, matching = await anyio.to_thread.run_sync(read_back)
                    if items["Broken"].get("hasError"):
                        break
                    await anyio.sleep(0.1)
            example = items["TV"]["Example"]
            assert example["url"] == feed and example["title"] == "Example" and not example["hasError"]
            read = {a["title"]: a["isRead"] for a in example["articles"]}
            assert read == {"Show S01E01 1080p": False, "Show S01E01 720p": True, "Other thing": False}, read
            dated = next(a for a in example["articles"] if a["id"] == "e1-720")
            assert dated["date"] == "Mon, 30 Nov 2026 09:00:00 GMT"
            assert dated["torrentURL"].endswith("/t/720.torrent")
            assert "404" in items["Broken"]["error"]
            assert rules["shows"]["previouslyMatchedEpisodes"] == ["1x1"], rules["shows"]
            assert rules["shows"]["lastMatch"] == "Mon, 30 Nov 2026 09:00:00 GMT"
            assert dict(matching) == {"Example": ["Show S01E01 1080p"]}  # (a disabled rule's, shown)
            prefs = await anyio.to_thread.run_sync(qbt.app_preferences)
            assert (prefs["rss_processing_enabled"], prefs["rss_refresh_interval"]) == (True, 30)
            await anyio.to_thread.run_sync(lambda: qbt.rss_mark_as_read(item_path="TV"))
            await anyio.to_thread.run_sync(lambda: qbt.rss_move_item(orig_item_path="Broken",
                                                                     new_item_path="TV\\Broken"))
            r = await api.client.get("/api/settings")
            assert r.json()["rss_refresh_interval"] == 1800  # (30 minutes in qBittorrent's, seconds in ours)
        async with running_api(tmp_path) as api:  # (a restart: the feeds, their read marks, the rules kept)
            qbt = await anyio.to_thread.run_sync(qbt_client, api.url)
            items = await anyio.to_thread.run_sync(lambda: qbt.rss_items(include_feed_data=True))
            assert set(items["TV"]) == {"Example", "Broken"}
            assert all(a["isRead"] for a in items["TV"]["Example"]["articles"])
            rules = await anyio.to_thread.run_sync(qbt.rss_rules)
            assert set(rules) == {"preview", "shows"}
            assert rules["shows"]["previouslyMatchedEpisodes"] == ["1x1"]
            await anyio.to_thread.run_sync(lambda: qbt.rss_remove_item(item_path="TV"))
            assert await anyio.to_thread.run_sync(qbt.rss_items) == {}


async def test_an_unreadable_feeds_record_is_kept_aside_and_the_feeds_are_an_admin_s(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "feeds.json").write_text('{"version": 1, "items": "no"}')
    users(state)
    async with running_api(tmp_path) as api:
        r = await api.client.get("/api/v2/rss/items")
        assert (r.status_code, r.json()) == (200, {})
        assert (state / "feeds.json.unreadable").read_text() == '{"version": 1, "items": "no"}'
        async with qbt_as(api, "alice") as alice:
            for method, path in (("GET", "rss/items"), ("GET", "rss/rules"),
                                 ("POST", "rss/addFeed"), ("POST", "rss/setRule")):
                r = await alice.request(method, f"/api/v2/{path}", data={"url": "http://127.0.0.1:9/f",
                                                                       "ruleName": "x", "ruleDef": "{}"})
                assert r.status_code == 403, (path, r.status_code, r.text)
        r = await api.client.post("/api/v2/rss/addFeed", data={"url": "file:///etc/passwd", "path": "x"})
        assert r.status_code == 409 and "http(s)" in r.text, r.text
        r = await api.client.post("/api/v2/rss/setRule", data={
            "ruleName": "out", "ruleDef": '{"savePath": "../../elsewhere"}'})
        assert r.status_code == 400 and "savePath" in r.text, r.text
        r = await api.client.post("/api/v2/rss/addFeed", data={"path": "x"})
        assert r.status_code == 400 and "url" in r.text, r.text
        feed = {"url": "http://127.0.0.1:9/f", "path": "F"}  # (processing off: never fetched)
        r = await api.client.post("/api/v2/rss/addFeed", data={**feed, "refreshInterval": "5"})
        assert r.status_code == 400 and "refreshInterval" in r.text, r.text  # (a site asked every 5 s)
        r = await api.client.post("/api/v2/rss/addFeed", data={**feed, "refreshInterval": "120"})
        assert r.status_code == 200, r.text
        assert (await api.client.get("/api/v2/rss/items")).json()["F"]["refreshInterval"] == 120
        interval = "/api/v2/rss/setFeedRefreshInterval"
        r = await api.client.post(interval, data={"path": "F", "refreshInterval": "9"})
        assert r.status_code == 400, r.text
        r = await api.client.post(interval, data={"path": "G", "refreshInterval": "0"})
        assert r.status_code == 409 and "G" in r.text, r.text


async def test_a_feeds_record_the_disk_cannot_read_is_said_and_never_replaced(tmp_path: Path) -> None:
    record = tmp_path / "state" / "feeds.json"
    record.mkdir(parents=True)  # (a folder where the file belongs: reading it fails)
    async with running_api(tmp_path) as api:
        for method, path, data in (("GET", "rss/items", None), ("GET", "rss/rules", None),
                                   ("POST", "rss/addFeed", {"url": "http://127.0.0.1:9/f"})):
            r = await api.client.request(method, f"/api/v2/{path}", data=data)
            assert r.status_code == 409 and "cannot be read" in r.text, (path, r.status_code, r.text)
        assert record.is_dir()


@pytest.mark.parametrize("turned_on_by", ["qbittorrent", "our api"])
async def test_the_auto_downloader_turned_on_offers_the_articles_read_meanwhile(tmp_path: Path,
                                                                                turned_on_by: str) -> None:
    """Whichever front end turns it on (the reader is told by the settings' owner: our API's
    change of the setting left it asleep)."""
    wanted = make_torrent(make_payload(tmp_path / "p", (("a.bin", 30_000),), name="later"))

    async def site(request: HttpRequest, stream: anyio.abc.ByteStream) -> None:
        if request.path == "/feed.xml":
            body = (f'<rss version="2.0"><channel><title>T</title><item><title>Later S02E03</title>'
                    f'<guid>one</guid><enclosure type="application/x-bittorrent" '
                    f'url="http://127.0.0.1:{server.port}/one.torrent"/></item></channel></rss>').encode()
            await stream.send(http_response(body))
        else:
            await stream.send(http_response(wanted.to_bytes()))

    async with http_tracker(site) as server, running_api(tmp_path) as api:
        feed = f"http://127.0.0.1:{server.port}/feed.xml"
        c = api.client
        r = await c.post("/api/v2/app/setPreferences", data={"json": '{"rss_processing_enabled": true}'})
        assert r.status_code == 200, r.text
        r = await c.post("/api/v2/rss/addFeed", data={"url": feed, "path": "T"})
        assert r.status_code == 200, r.text
        rule = json.dumps({"mustContain": "later", "affectedFeeds": [feed]})
        r = await c.post("/api/v2/rss/setRule", data={"ruleName": "later", "ruleDef": rule})
        assert r.status_code == 200, r.text
        with anyio.fail_after(30):  # (read: its article there, unread, nothing added while off)
            while not (await c.get("/api/v2/rss/items", params={"withData": "true"})).json()["T"]["articles"]:
                await anyio.sleep(0.05)
        await anyio.sleep(0.3)
        assert api.service.client_jobs() == []
        if turned_on_by == "qbittorrent":
            r = await c.post("/api/v2/app/setPreferences",
                             data={"json": json.dumps({"rss_auto_downloading_enabled": True})})
        else:
            r = await c.patch("/api/settings", json={"rss_auto_downloading_enabled": True})
        assert r.status_code == 200, r.text
        with anyio.fail_after(30):
            while not api.service.client_jobs():
                await anyio.sleep(0.05)
        assert api.service.client_jobs()[0].info_hash == wanted.info_hash.hex()


async def test_an_article_whose_add_stays_refused_is_given_up_after_a_few_tries(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A rule takes an article whose torrent link answers 404: each offer is refused and said,
    counted across a restart, and after ``ADD_TRIES`` the article is read (given up, said), not
    offered and logged again at every reading for ever; a link that is no magnet nor http(s) URL
    is given up at once."""
    from torrent_engine.feeds.reader import ADD_TRIES, FeedReader

    async def site(request: HttpRequest, stream: anyio.abc.ByteStream) -> None:
        if request.path == "/feed.xml":
            body = (f'<rss version="2.0"><channel><title>T</title><item><title>Gone S01E01</title>'
                    f'<guid>gone</guid><enclosure type="application/x-bittorrent" '
                    f'url="http://127.0.0.1:{server.port}/gone.torrent"/></item>'
                    f'<item><title>Gone S01E02</title><guid>odd</guid><enclosure '
                    f'type="application/x-bittorrent" url="ftp://127.0.0.1/odd.torrent"/></item>'
                    f'</channel></rss>').encode()
            await stream.send(http_response(body))
        else:
            await stream.send(http_response(b"gone", "404 Not Found"))

    async def offered(api: Any, feed: str, tries: int) -> dict[str, Any]:
        """The rule set (again): every unread article offered (its add refused ``tries`` times
        before); what the feed then says."""
        rule = json.dumps({"mustContain": "gone", "affectedFeeds": [feed]})
        r = await api.client.post("/api/v2/rss/setRule", data={"ruleName": "gone", "ruleDef": rule})
        assert r.status_code == 200, r.text
        entry = next(e for _, e in FeedReader.of(api.service).state.feeds())
        with anyio.fail_after(30):
            while entry.refused.get("gone", 0) == tries and "gone" not in entry.read:
                await anyio.sleep(0.05)
        items = (await api.client.get("/api/v2/rss/items", params={"withData": "true"})).json()
        return {a["id"]: a["isRead"] for a in items["T"]["articles"]} | {"refused": entry.refused.get("gone")}

    prefs = json.dumps({"rss_processing_enabled": True, "rss_auto_downloading_enabled": True})
    with caplog.at_level(logging.WARNING, logger="torrent_engine.feeds"):
        async with http_tracker(site) as server:
            feed = f"http://127.0.0.1:{server.port}/feed.xml"
            async with running_api(tmp_path) as api:
                r = await api.client.post("/api/v2/app/setPreferences", data={"json": prefs})
                assert r.status_code == 200, r.text
                r = await api.client.post("/api/v2/rss/addFeed", data={"url": feed, "path": "T"})
                assert r.status_code == 200, r.text
                with anyio.fail_after(30):
                    while not (await api.client.get("/api/v2/rss/items",
                                                    params={"withData": "true"})).json()["T"]["articles"]:
                        await anyio.sleep(0.05)
                assert await offered(api, feed, 0) == {"gone": False, "odd": True, "refused": 1}
            async with running_api(tmp_path) as api:  # (a restart: the count kept)
                for tries in range(1, ADD_TRIES):
                    shown = await offered(api, feed, tries)
                assert shown == {"gone": True, "odd": True, "refused": None}
                assert api.service.client_jobs() == []
    said = [r.getMessage() for r in caplog.records if "Gone" in r.getMessage()]
    assert any("try 1 of 3" in m and "404" in m for m in said), said
    assert any("given up (marked read) after 3 tries" in m for m in said), said
    assert any("given up (marked read): 'ftp://" in m for m in said), said


async def test_the_feeds_of_one_host_are_fetched_one_at_a_time_the_delay_apart(tmp_path: Path) -> None:
    """qBittorrent's "same host request delay" (``rss_fetch_delay``): a host's feeds one at a time,
    each that many seconds after the last one ended; another host's meanwhile, not held back."""
    import time

    seen: dict[int, list[tuple[str, float, float]]] = {}

    async def site(request: HttpRequest, stream: anyio.abc.ByteStream) -> None:
        began = time.monotonic()
        await anyio.sleep(0.3)  # (a slow answer: fetches at once would overlap)
        body = f'<rss version="2.0"><channel><title>{request.path}</title></channel></rss>'.encode()
        seen.setdefault(int(request.headers["host"].rpartition(":")[2]), []).append(
            (request.path, began, time.monotonic()))
        await stream.send(http_response(body))

    async with http_tracker(site) as a, http_tracker(site) as b, running_api(tmp_path) as api:
        c = api.client
        r = await c.post("/api/v2/app/setPreferences", data={"json": '{"rss_fetch_delay": -1}'})
        assert r.status_code == 400 and "rss_fetch_delay" in r.text
        r = await c.post("/api/v2/app/setPreferences",
                         data={"json": '{"rss_processing_enabled": true, "rss_fetch_delay": 1}'})
        assert r.status_code == 200, r.text
        assert (await c.get("/api/v2/app/preferences")).json()["rss_fetch_delay"] == 1
        assert (await c.get("/api/settings")).json()["rss_fetch_delay"] == 1
        for n in range(3):
            r = await c.post("/api/v2/rss/addFeed", data={"url": f"http://127.0.0.1:{a.port}/{n}.xml",
                                                          "path": f"A{n}"})
            assert r.status_code == 200, r.text
        r = await c.post("/api/v2/rss/addFeed", data={"url": f"http://127.0.0.1:{b.port}/b.xml", "path": "B"})
        assert r.status_code == 200, r.text
        with anyio.fail_after(30):
            while len(seen.get(a.port, [])) < 3 or not seen.get(b.port):
                await anyio.sleep(0.05)
    on_a = sorted(seen[a.port], key=lambda x: x[1])
    assert sorted(p for p, _, _ in on_a) == ["/0.xml", "/1.xml", "/2.xml"]
    for (_, _, ended), (_, began, _) in zip(on_a, on_a[1:], strict=False):
        assert began >= ended + 1.0, on_a  # (one at a time, the delay after the last one ended)
    (_, b_began, _), = seen[b.port]
    assert b_began < on_a[-1][1], (seen, "the other host waited for this one's turns")


async def test_a_feed_is_fetched_with_the_cookies_given_for_its_domain_and_path(tmp_path: Path) -> None:
    """qBittorrent's cookies (``app/setCookies``) go with its feeds' fetches as with its .torrent
    URLs': a site that answers a feed only to its logged-in user; a cookie of another path is
    not sent."""
    heard: dict[str, str] = {}

    async def site(request: HttpRequest, stream: anyio.abc.ByteStream) -> None:
        heard[request.path] = request.headers.get("cookie", "")
        if "uid=7" not in heard[request.path]:
            await stream.send(http_response(b"log in first", status="403 Forbidden"))
            return
        body = (b'<rss version="2.0"><channel><title>Mine</title><item><title>Show S01E02</title>'
                b"<guid>e2</guid></item></channel></rss>")
        await stream.send(http_response(body))

    async with http_tracker(site) as server, running_api(tmp_path) as api:
        c = api.client
        cookies = [{"name": "uid", "value": "7", "domain": "127.0.0.1", "path": "/rss"},
                   {"name": "other", "value": "1", "domain": "127.0.0.1", "path": "/elsewhere"}]
        r = await c.post("/api/v2/app/setCookies", data={"cookies": json.dumps(cookies)})
        assert r.status_code == 200, r.text
        r = await c.post("/api/v2/app/setPreferences", data={"json": '{"rss_processing_enabled": true}'})
        assert r.status_code == 200, r.text
        for path in ("rss/mine.xml", "open.xml"):
            r = await c.post("/api/v2/rss/addFeed", data={"url": f"http://127.0.0.1:{server.port}/{path}",
                                                          "path": path})
            assert r.status_code == 200, r.text
        with anyio.fail_after(30):
            while True:
                items = (await c.get("/api/v2/rss/items", params={"withData": "true"})).json()
                if items["open.xml"].get("hasError") and items["rss/mine.xml"].get("articles"):
                    break
                await anyio.sleep(0.05)
    assert heard == {"/rss/mine.xml": "uid=7", "/open.xml": ""}
    assert [a["title"] for a in items["rss/mine.xml"]["articles"]] == ["Show S01E02"]
