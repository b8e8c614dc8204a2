"""The calls of qBittorrent's WebAPI 2.10–2.16 that the dialect answers (issue 45): driven by
the real ``qbittorrent-api`` client, with the refusals qBittorrent gives for bad input."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import anyio
import anyio.abc
import httpx
import pytest

from tests.conftest import require_module
from tests.integration.api_helpers import TOKEN, qbt_added, running_api
from tests.integration.api_helpers import qbt_client as client_of
from tests.integration.fake_seed import IdlePeer
from tests.unit.torrent_factory import make_torrent, payload
from torrent_engine.formats.metainfo import Torrent

pytestmark = pytest.mark.anyio

MAGNET = "magnet:?xt=urn:btih:" + "c" * 40 + "&dn=from-magnet"


def five_pieces(name: str = "qbt") -> Torrent:
    return make_torrent([(("a.bin",), payload(40000, 3)), (("b.bin",), payload(30000, 4))], 16384, name=name)




def drive(url: str, data: bytes, info_hash: str) -> None:
    """torrents/count, setTags and the speed limits through qbittorrent-api (a worker thread)."""
    qbittorrentapi = require_module("qbittorrentapi")
    client = client_of(url)
    assert client.torrents_count() == 0
    assert client.torrents_add(torrent_files=data, tags=["old", "hd"], is_paused=True)["success_count"] == 1
    assert client.torrents_add(urls=MAGNET, is_paused=True)["success_count"] == 1
    assert client.torrents_count() == 2

    client.torrents_set_tags(tags=["new", "hd"], torrent_hashes=[info_hash, "0" * 40])  # unknown: skipped
    assert client.torrents_info(torrent_hashes=info_hash)[0].tags == "hd, new"
    assert client.torrents_info(torrent_hashes="c" * 40)[0].tags == ""
    assert {"new", "hd", "old"} <= set(client.torrents_tags())  # (the new one is created)
    client.torrents_set_tags(tags="", torrent_hashes="all")  # (no tags: every one taken off)
    assert [t.tags for t in client.torrents_info()] == ["", ""]

    # torrents/info's private filter (2.11.1), includeTrackers (2.11.4), includeFiles (2.11.8)
    assert client.torrents_info(private=True) == []
    assert len(client.torrents_info(private=False)) == 2
    client.torrents_add_trackers(torrent_hash=info_hash, urls=["http://127.0.0.1:9/announce"])
    listed = {t.hash: t for t in client.torrents_info(include_trackers=True, include_files=True)}
    trackers, files = listed[info_hash]["trackers"], listed[info_hash]["files"]
    assert [(r["url"], r["tier"]) for r in trackers] == [("http://127.0.0.1:9/announce", 0)]
    assert [(f["name"], f["size"]) for f in files] == [("qbt/a.bin", 40000), ("qbt/b.bin", 30000)]
    assert listed["c" * 40]["trackers"] == [] and "files" not in listed["c" * 40]  # (no metadata yet)
    assert "files" not in client.torrents_info()[0]
    assert [t.state for t in client.torrents_info(status_filter="stopped")] == ["stoppedDL", "stoppedDL"]

    assert dict(client.transfer_speed_limits()) == {
        "up_limit": 0, "dl_limit": 0, "alt_up_limit": 0, "alt_dl_limit": 0}
    client.transfer_set_speed_limits(upload_limit=1000, download_limit=2000,
                                     alt_upload_limit=300, alt_download_limit=-1)
    assert dict(client.transfer_speed_limits()) == {
        "up_limit": 1000, "dl_limit": 2000, "alt_up_limit": 300, "alt_dl_limit": 0}
    assert client.transfer_download_limit() == 2000  # (the alternative ones are off)
    client.transfer_toggle_speed_limits_mode()
    assert client.transfer_upload_limit() == 300
    with pytest.raises(qbittorrentapi.exceptions.HTTPError):
        client.transfer_set_speed_limits(upload_limit=1, download_limit=2, alt_upload_limit=3)

    assert client.torrents_piece_availability(torrent_hash="c" * 40) == []  # no metadata yet
    assert client.torrents_piece_availability(torrent_hash=info_hash) == [0] * 5  # stopped: no peers
    with pytest.raises(qbittorrentapi.NotFound404Error):
        client.torrents_piece_availability(torrent_hash="0" * 40)


async def test_qbittorrent_api_drives_the_216_calls(tmp_path: Path) -> None:
    torrent = five_pieces()
    async with running_api(tmp_path) as api:
        await anyio.to_thread.run_sync(drive, api.url, torrent.to_bytes(), torrent.info_hash.hex())
        s = api.service.get_settings()
        limits = (s.upload_limit, s.download_limit, s.alt_upload_limit, s.alt_download_limit)
        assert limits == (1000, 2000, 300, 0)


async def test_bad_input_is_refused_as_qbittorrent_refuses_it(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        async with httpx.AsyncClient(base_url=api.url, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            r = await c.post("/api/v2/torrents/add", data={"urls": MAGNET, "paused": "true"})
            qbt_added(r)
            for method, fields, text in (
                    ("torrents/setTags", {"hashes": "all"}, "Missing required parameters: tags"),
                    ("torrents/setTags", {}, "Missing required parameters: hashes, tags"),
                    ("torrents/pieceAvailability", {}, "Missing required parameters: hash"),
                    ("transfer/setSpeedLimits", {"up_limit": "1", "dl_limit": "1"},
                     "Missing required parameters: alt_up_limit, alt_dl_limit"),
                    ("transfer/setSpeedLimits", {"up_limit": "1", "dl_limit": "fast", "alt_up_limit": "1",
                                                 "alt_dl_limit": "1"}, "dl_limit must be an integer"),
                    ("transfer/setSpeedLimits", {"up_limit": "-5", "dl_limit": "0", "alt_up_limit": "1",
                                                 "alt_dl_limit": "1"}, "up_limit must be")):
                r = await c.post(f"/api/v2/{method}", data=fields)
                assert r.status_code == 400 and r.text.startswith(text), (method, r.status_code, r.text)
            r = await c.post("/api/v2/torrents/pieceAvailability", data={"hash": "0" * 40})
            assert r.status_code == 404
            assert (await c.get("/api/v2/transfer/setSpeedLimits")).status_code == 405
            assert (await c.get("/api/v2/torrents/count")).text == "1"
            s = api.service.get_settings()
            limits = (s.upload_limit, s.download_limit, s.alt_upload_limit, s.alt_download_limit)
            assert limits == (0, 0, 0, 0)
            assert api.service.client_jobs()[0].features.tags == ()


async def test_piece_availability_counts_the_connected_peers_pieces(tmp_path: Path) -> None:
    torrent = five_pieces()
    info_hash = torrent.info_hash.hex()
    peers = [IdlePeer(torrent, "127.0.0.1", [0, 2]), IdlePeer(torrent, "127.0.0.1", [2, 4])]
    async with running_api(tmp_path, config_options={"encryption": "disable"}) as api, \
            anyio.create_task_group() as tg:  # (the peers speak plaintext alone)
        for peer in peers:
            await tg.start(peer.serve)
        c = api.client
        r = await c.post("/api/v2/torrents/add", files={"torrents": ("t.torrent", torrent.to_bytes())})
        qbt_added(r)
        addresses = "|".join(f"127.0.0.1:{p.port}" for p in peers)
        with anyio.fail_after(20):
            while (await c.get("/api/v2/torrents/info")).json()[0]["state"] not in ("stalledDL",
                                                                                      "downloading"):
                await anyio.sleep(0.05)  # (until the job's session runs, its files checked)
            r = await c.post("/api/v2/torrents/addPeers", data={"hashes": info_hash, "peers": addresses})
            assert r.status_code == 200, r.text
            while (await c.post("/api/v2/torrents/pieceAvailability", data={"hash": info_hash})).json() \
                    != [1, 0, 2, 0, 1]:
                await anyio.sleep(0.1)
        # distributed copies (the ``availability`` column): none whole, 3 of 5 pieces held
        assert (await c.get("/api/v2/torrents/info")).json()[0]["availability"] == 0.6
        main = (await c.get("/api/v2/sync/maindata")).json()
        assert main["torrents"][info_hash]["availability"] == 0.6
        props = (await c.get("/api/v2/torrents/properties", params={"hash": info_hash})).json()
        assert props["availability"] == 0.6
        job_id = api.service.client_jobs()[0].id
        assert (await c.get(f"/api/jobs/{job_id}")).json()["availability"] == 0.6
        await c.post("/api/v2/torrents/stop", data={"hashes": info_hash})
        with anyio.fail_after(10):
            while (await c.get("/api/v2/torrents/pieceAvailability", params={"hash": info_hash})).json() \
                    != [0] * 5:
                await anyio.sleep(0.1)
        # (not running, incomplete: 0, as a real qbittorrent-nox says: interop/test_qbittorrent_values.py)
        assert (await c.get("/api/v2/torrents/info")).json()[0]["availability"] == 0
        assert (await c.get(f"/api/jobs/{job_id}")).json()["availability"] is None
        tg.cancel_scope.cancel()


def set_comments(url: str, info_hash: str) -> None:
    client = client_of(url)
    props = client.torrents_properties(torrent_hash=info_hash)
    assert props.comment == "from the metainfo"
    # (2.10–2.15.1's fields, as torrents/info has them)
    assert (props.has_metadata, props.private, props.progress, props.popularity, props.availability) == (
        True, False, 0, 0, 0)  # (paused, incomplete: 0, as a real qbittorrent-nox says)
    client.torrents_set_comment(comment="  mine  ", torrent_hashes=[info_hash, "0" * 40])  # unknown: skipped
    assert client.torrents_properties(torrent_hash=info_hash).comment == "mine"  # (trimmed, as qBittorrent)
    client.torrents_set_comment(comment="", torrent_hashes="all")  # (empty: none, not the metainfo's)
    assert client.torrents_properties(torrent_hash=info_hash).comment == ""
    client.torrents_set_comment(comment="kept", torrent_hashes=info_hash)


async def test_set_comment_is_the_jobs_own_and_kept_across_a_restart(tmp_path: Path) -> None:
    torrent = dataclasses.replace(five_pieces(), comment="from the metainfo")
    info_hash = torrent.info_hash.hex()
    async with running_api(tmp_path) as api:
        c = api.client
        r = await c.post("/api/v2/torrents/add", files={"torrents": ("t.torrent", torrent.to_bytes())},
                         data={"paused": "true"})
        qbt_added(r)
        await anyio.to_thread.run_sync(set_comments, api.url, info_hash)
        for fields, text in (({"hashes": info_hash}, "Missing required parameters: comment"),
                             ({"comment": "x"}, "Missing required parameters: hashes"),
                             ({"hashes": info_hash, "comment": "a\x00b"}, "")):
            r = await c.post("/api/v2/torrents/setComment", data=fields)
            assert r.status_code == 400 and r.text.startswith(text), (fields, r.status_code, r.text)
        exported = await c.get("/api/v2/torrents/export", params={"hash": info_hash})
        assert exported.content == torrent.to_bytes()  # (the .torrent keeps its own comment)
    async with running_api(tmp_path) as api:  # (the same state folder: a restart)
        r = await api.client.get("/api/v2/torrents/properties", params={"hash": info_hash})
        assert r.json()["comment"] == "kept"
        sid = (await api.client.post("/transmission/rpc", json={})).headers["x-transmission-session-id"]
        r = await api.client.post("/transmission/rpc", headers={"X-Transmission-Session-Id": sid},
                                  json={"method": "torrent-get", "arguments": {"fields": ["comment"]}})
        assert r.json()["arguments"]["torrents"] == [{"comment": "kept"}]
        job = (await api.client.get("/api/jobs")).json()["jobs"][0]
        assert job["features"]["comment"] == "kept"
        r = await api.client.patch(f"/api/jobs/{job['id']}", json={"comment": None})  # (the metainfo's again)
        assert r.status_code == 200, r.text
        r = await api.client.get("/api/v2/torrents/properties", params={"hash": info_hash})
        assert r.json()["comment"] == "from the metainfo"
