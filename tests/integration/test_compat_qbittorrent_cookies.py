"""qBittorrent's ``app/cookies`` and ``app/setCookies`` (WebAPI 2.11.3), driven by the real
``qbittorrent-api`` client: the cookies are kept in the state folder and sent, by domain and
path, with the .torrent URLs the daemon fetches (a private tracker's login); bad ones are a 400
naming the field. qbittorrent-nox 4.5.2 has no such call: the records follow appcontroller.cpp's
``cookiesAction``/``setCookiesAction`` (docs/compat.md)."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import httpx
import pytest

from tests.conftest import require_module
from tests.integration.api_helpers import TOKEN, running_api
from tests.integration.api_helpers import qbt_client as client_of
from tests.integration.test_compat_qbittorrent_webapi216 import five_pieces
from torrent_engine.formats.metainfo import Torrent

pytestmark = pytest.mark.anyio
LATER = int(time.time()) + 3600


async def private_tracker(torrent: Torrent, heads: list[bytes], *,
                          task_status: anyio.abc.TaskStatus[int]) -> None:
    """A loopback server giving ``/private/t.torrent`` only to a request with its login cookies
    (``403`` otherwise), as a private tracker's download link does; each request's head kept."""
    async def handle(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            head = b""
            while b"\r\n\r\n" not in head:
                head += await stream.receive()
            heads.append(head)
            logged_in = b"\r\nCookie: pass=s3cret; uid=7\r\n" in head
            if head.startswith(b"GET /private/t.torrent ") and logged_in:
                body = torrent.to_bytes()
                await stream.send(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            else:
                await stream.send(b"HTTP/1.0 403 Forbidden\r\nContent-Length: 0\r\n\r\n")

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    task_status.started(listener.extra(anyio.abc.SocketAttribute.local_port))
    await listener.serve(handle)


def drive(url: str, base: str, torrent: Torrent) -> list[Any]:
    qbittorrentapi = require_module("qbittorrentapi")
    client = client_of(url)
    assert client.app_cookies() == []
    with pytest.raises(qbittorrentapi.Conflict409Error):  # (not logged in: the tracker says 403)
        client.torrents_add(urls=f"{base}/private/t.torrent", is_paused=True)
    given = [
        {"name": "uid", "value": "7", "domain": "127.0.0.1", "path": "/", "expirationDate": LATER},
        {"name": "pass", "value": "s3cret", "domain": "127.0.0.1", "path": "/private",
         "expirationDate": LATER},
        {"name": "other", "value": "x", "domain": "tracker.example", "path": "/", "expirationDate": LATER},
        {"name": "old", "value": "x", "domain": "127.0.0.1", "path": "/", "expirationDate": 1_000_000},
        {"name": "visit", "value": "1", "domain": "127.0.0.1", "path": "/elsewhere"},  # (a session cookie)
    ]
    client.app_set_cookies(cookies=given)
    shown = [dict(c) for c in client.app_cookies()]
    assert shown == given[:3] + [{**given[4], "expirationDate": -1}]  # (the expired one dropped)
    added = client.torrents_add(urls=f"{base}/private/t.torrent", is_paused=True)
    assert added["added_torrent_ids"] == [torrent.info_hash.hex()]
    client.app_set_cookies(cookies=client.app_cookies())  # (what it reads it can write back)
    assert [dict(c) for c in client.app_cookies()] == shown
    with pytest.raises(qbittorrentapi.InvalidRequest400Error, match=r"cookies\[1\]\.domain"):
        client.app_set_cookies(cookies=[given[0], {"name": "a", "value": "b"}])
    assert [dict(c) for c in client.app_cookies()] == shown  # (a refusal changes nothing)
    return shown


async def test_cookies_are_kept_and_sent_with_the_torrent_urls_fetched(tmp_path: Path) -> None:
    torrent = five_pieces()
    heads: list[bytes] = []
    async with running_api(tmp_path) as api, anyio.create_task_group() as tg:
        port = await tg.start(private_tracker, torrent, heads)
        shown = await anyio.to_thread.run_sync(drive, api.url, f"http://127.0.0.1:{port}", torrent)
        assert [job.info_hash for job in api.service.client_jobs()] == [torrent.info_hash.hex()]
        assert b"Cookie:" not in heads[0]
        # (the longer path first; no other domain's)
        assert b"\r\nCookie: pass=s3cret; uid=7\r\n" in heads[-1]
        kept = api.state_dir / "url_cookies.json"
        assert stat.S_IMODE(kept.stat().st_mode) == 0o600  # (a login: readable by the daemon alone)
        tg.cancel_scope.cancel()
    async with running_api(tmp_path) as api:  # (a restart: the session cookie is gone, as in qBittorrent)
        r = await api.client.get("/api/v2/app/cookies")
        assert r.json() == shown[:3]
    assert json.loads(kept.read_text()) == shown[:3]


async def test_bad_cookies_are_a_400_naming_the_field(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        async with httpx.AsyncClient(base_url=api.url, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            one = {"name": "a", "value": "b", "domain": "t.example", "path": "/", "expirationDate": LATER}
            for fields, text in (
                    ({}, "Missing required parameters: cookies"),
                    ({"cookies": "{"}, "cookies is not JSON"),
                    ({"cookies": "{}"}, "cookies must be array"),
                    ({"cookies": "[1]"}, "cookies[0]: must be an object"),
                    ({"cookies": json.dumps([one, {**one, "name": "a b"}])}, "cookies[1].name: "),
                    ({"cookies": json.dumps([{**one, "value": "x;y"}])}, "cookies[0].value: "),
                    ({"cookies": json.dumps([{**one, "value": "x\r\nHost: evil"}])}, "cookies[0].value: "),
                    ({"cookies": json.dumps([{**one, "path": "dl"}])}, "cookies[0].path: "),
                    ({"cookies": json.dumps([{**one, "expirationDate": "soon"}])},
                     "cookies[0].expirationDate: "),
                    ({"cookies": json.dumps([one] * 513)}, "cookies: at most 512 cookies")):
                r = await c.post("/api/v2/app/setCookies", data=fields)
                assert (r.status_code, r.text[:len(text)]) == (400, text), (fields, r.text)
            assert (await c.get("/api/v2/app/setCookies", params={"cookies": "[]"})).status_code == 405
            assert (await c.get("/api/v2/app/cookies")).json() == []
            r = await c.post("/api/v2/app/setCookies", data={"cookies": json.dumps([one])})
            assert (r.status_code, (await c.get("/api/v2/app/cookies")).json()) == (200, [one])
            r = await c.post("/api/v2/app/setCookies", data={"cookies": "[]"})  # (none from then on)
            assert (await c.get("/api/v2/app/cookies")).json() == []
        # our own API: the same cookies, its errors naming the field
        bad = {"name": "a", "value": "b", "domain": ""}
        r = await api.client.put("/api/cookies", json={"cookies": [bad]})
        assert (r.status_code, r.json()["field"]) == (400, "cookies[0].domain")
        secure = {**bad, "domain": "t.example", "secure": True}
        for body, field in (({"cookies": [], "extra": 1}, "extra"),
                            ({"cookies": [secure]}, "cookies[0].secure")):
            r = await api.client.put("/api/cookies", json=body)  # (a field the schema does not have)
            assert (r.status_code, r.json()["field"]) == (400, field), r.text
        ours = {"name": "a", "value": "b", "domain": "t.example", "path": "/", "expires": LATER}
        r = await api.client.put("/api/cookies", json={"cookies": [ours]})
        assert r.json() == {"cookies": [ours]}
        r = await api.client.get("/api/v2/app/cookies")
        assert r.json() == [one]


async def test_our_api_adds_a_torrent_url_with_the_cookies_and_names_a_bad_one(tmp_path: Path) -> None:
    # POST /api/jobs takes a .torrent's URL too (the web UI's add dialog sends one as it is)
    torrent = five_pieces("ours")
    heads: list[bytes] = []
    async with anyio.create_task_group() as tg, running_api(tmp_path) as api:
        port = await tg.start(private_tracker, torrent, heads)
        url = f"http://127.0.0.1:{port}/private/t.torrent"
        r = await api.client.post("/api/jobs", json={"source": url, "paused": True})
        assert (r.status_code, r.json()["field"]) == (400, "source"), r.text  # (403: not logged in)
        assert "403" in r.json()["error"], r.text
        cookies = [{"name": "uid", "value": "7", "domain": "127.0.0.1", "path": "/"},
                   {"name": "pass", "value": "s3cret", "domain": "127.0.0.1", "path": "/private"}]
        assert (await api.client.put("/api/cookies", json={"cookies": cookies})).status_code == 200
        r = await api.client.post("/api/jobs", json={"source": f"  {url} ", "paused": True})
        assert r.status_code == 201, r.text
        assert r.json()["info_hash"] == torrent.info_hash.hex()
        for bad in ("ftp://127.0.0.1/t.torrent", "http:///t.torrent", "https://x y/t.torrent"):
            r = await api.client.post("/api/jobs", json={"source": bad})
            assert (r.status_code, r.json()["field"]) == (400, "source"), (bad, r.text)
        tg.cancel_scope.cancel()
