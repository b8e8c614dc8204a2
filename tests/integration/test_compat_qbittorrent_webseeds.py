"""qBittorrent's web seed calls (WebAPI 2.11.3: ``torrents/webseeds``, ``addWebSeeds``,
``editWebSeed``, ``removeWebSeeds``; issue 45) driven by the real ``qbittorrent-api`` client: a
web seed added at run time serves the download, one removed is no longer asked, and bad input is
refused as qBittorrent refuses it (400, 404, 409)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
import pytest

from tests.conftest import require_module
from tests.integration.api_helpers import qbt_added, running_api
from tests.integration.api_helpers import qbt_client as client_of
from tests.integration.helpers import make_payload, make_torrent, same_files
from tests.unit.webseed._webseed_server import Server, http_server, ranged
from torrent_engine.formats.metainfo import Torrent

pytestmark = pytest.mark.anyio


def served_files(torrent: Torrent, folder: Path) -> dict[str, bytes]:
    return {"/pub/" + "/".join(quote(p, safe="") for p in f.path): folder.joinpath(*f.path).read_bytes()
            for f in torrent.files if not f.pad}




def until(test: Any, limit: float = 30) -> None:
    deadline = time.monotonic() + limit
    while not test():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def drive(url: str, data: bytes, info_hash: str, stuck: Server, good: Server) -> None:
    qbittorrentapi = require_module("qbittorrentapi")
    client = client_of(url)
    listed, served = stuck.url("/pub/"), good.url("/pub/")
    assert client.torrents_add(torrent_files=data)["success_count"] == 1
    until(lambda: client.torrents_count() == 1)
    assert [w.url for w in client.torrents_webseeds(torrent_hash=info_hash)] == [listed]  # (its url-list)
    until(lambda: bool(stuck.requests))  # (asked, and never answers)

    with pytest.raises(qbittorrentapi.InvalidRequest400Error):
        client.torrents_add_webseeds(torrent_hash=info_hash, urls=[served, "ftp://x.example/pub/"])
    with pytest.raises(qbittorrentapi.Conflict409Error):
        client.torrents_edit_webseed(torrent_hash=info_hash, orig_url="http://absent.example/",
                                     new_url=served)
    with pytest.raises(qbittorrentapi.InvalidRequest400Error):
        client.torrents_edit_webseed(torrent_hash=info_hash, orig_url=listed, new_url="udp://x:1/")
    with pytest.raises(qbittorrentapi.InvalidRequest400Error):
        client.torrents_remove_webseeds(torrent_hash=info_hash, urls=["gopher://x/"])
    with pytest.raises(qbittorrentapi.NotFound404Error):
        client.torrents_add_webseeds(torrent_hash="0" * 40, urls=[served])
    with pytest.raises(qbittorrentapi.NotFound404Error):
        client.torrents_webseeds(torrent_hash="0" * 40)
    assert [w.url for w in client.torrents_webseeds(torrent_hash=info_hash)] == [listed]  # (unchanged)

    client.torrents_remove_webseeds(torrent_hash=info_hash, urls=[listed, "http://unknown.example/"])
    asked = len(stuck.requests)
    assert client.torrents_webseeds(torrent_hash=info_hash) == []
    spare = "http://127.0.0.1:9/none/"
    client.torrents_add_webseeds(torrent_hash=info_hash, urls=[spare])
    client.torrents_edit_webseed(torrent_hash=info_hash, orig_url=spare, new_url=served)
    assert [w.url for w in client.torrents_webseeds(torrent_hash=info_hash)] == [served]
    until(lambda: client.torrents_info(torrent_hashes=info_hash)[0].progress == 1)
    assert len(stuck.requests) == asked and good.requests


async def test_web_seeds_edited_through_qbittorrent_api_serve_the_download(tmp_path: Path) -> None:
    plain = make_torrent(make_payload(tmp_path / "seed"), version="v1")
    files = served_files(plain, tmp_path / "seed")
    async with http_server(lambda path, s, e: (b"", True)) as stuck, \
            http_server(lambda path, s, e: (ranged(files[path], s, e), True)) as good:
        torrent = dataclasses.replace(plain, web_seeds=(stuck.url("/pub/"),))
        info_hash = torrent.info_hash.hex()
        async with running_api(tmp_path) as api:
            await anyio.to_thread.run_sync(drive, api.url, torrent.to_bytes(), info_hash, stuck, good)
            job = api.service.client_jobs()[0]
            assert api.service.web_seeds(job.id) == [good.url("/pub/")]
        async with running_api(tmp_path) as api:  # (the same state folder: a restart)
            r = await api.client.get("/api/v2/torrents/webseeds", params={"hash": info_hash})
            assert r.json() == [{"url": good.url("/pub/")}]
    assert same_files(plain, tmp_path / "seed", tmp_path / "downloads") == []


async def test_missing_parameters_are_refused_as_qbittorrent_refuses_them(tmp_path: Path) -> None:
    plain = make_torrent(make_payload(tmp_path / "seed"), version="v1")
    info_hash = plain.info_hash.hex()
    async with running_api(tmp_path) as api:
        c = api.client
        r = await c.post("/api/v2/torrents/add", files={"torrents": ("t.torrent", plain.to_bytes())},
                         data={"paused": "true"})
        qbt_added(r)
        for method, fields, text in (
                ("torrents/addWebSeeds", {"hash": info_hash}, "Missing required parameters: urls"),
                ("torrents/addWebSeeds", {"urls": "http://x/"}, "Missing required parameters: hash"),
                ("torrents/editWebSeed", {"hash": info_hash, "origUrl": "http://x/"},
                 "Missing required parameters: newUrl"),
                ("torrents/removeWebSeeds", {}, "Missing required parameters: hash, urls")):
            r = await c.post(f"/api/v2/{method}", data=fields)
            assert r.status_code == 400 and r.text.startswith(text), (method, r.status_code, r.text)
        assert (await c.get("/api/v2/torrents/addWebSeeds", params={"hash": info_hash, "urls": "http://x/"})
                ).status_code == 405
        encoded = "http%3A%2F%2Fa.example%2Fp%2F"
        r = await c.post("/api/v2/torrents/addWebSeeds", data={"hash": info_hash, "urls": encoded})
        assert r.status_code == 200, r.text  # (percent-decoded first, as qBittorrent)
        r = await c.get("/api/v2/torrents/webseeds", params={"hash": info_hash})
        assert r.json() == [{"url": "http://a.example/p/"}]
