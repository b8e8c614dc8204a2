"""qBittorrent's metadata calls (WebAPI 2.11.9–2.13, issue 45): ``torrents/fetchMetadata`` of a
magnet (its info dict fetched from a loopback seeder, without a job), ``parseMetadata``,
``saveMetadata``, and ``torrents/add`` with the metadata so learnt; driven by ``qbittorrent-api``,
with the refusals qBittorrent gives for bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest

from tests.conftest import require_module
from tests.integration.api_helpers import qbt_added, running_api
from tests.integration.helpers import loopback_config, make_payload, make_torrent
from tests.integration.test_compat_qbittorrent_webapi216 import client_of, five_pieces
from torrent_engine.formats.magnet import parse_magnet
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.session import Session

pytestmark = pytest.mark.anyio


def parse_and_save(url: str, data: bytes, torrent: Torrent) -> None:
    qbittorrentapi = require_module("qbittorrentapi")
    client = client_of(url)
    [record] = client.torrents_parse_metadata(torrent_files={"five.torrent": data})
    info_hash = torrent.info_hash.hex()
    assert record["hash"] == record["infohash_v1"] == info_hash and record["infohash_v2"] == ""
    assert record["info"] == {"files": [{"path": "qbt/a.bin", "length": 40000},
                                        {"path": "qbt/b.bin", "length": 30000}],
                              "length": 70000, "name": "qbt", "piece_length": 16384, "pieces_num": 5,
                              "private": False}
    assert record["trackers"] == [] and record["webseeds"] == [] and record["comment"] == ""
    saved = client.torrents_save_metadata(source=info_hash)
    assert Torrent.from_bytes(saved).info_bytes == torrent.info_bytes
    with pytest.raises(qbittorrentapi.UnsupportedMediaType415Error):
        client.torrents_parse_metadata(torrent_files={"bad.torrent": b"d4:infoi1ee"})
    # (added with the metadata parsed: the job has its files at once, and it is forgotten)
    assert client.torrents_add(urls=info_hash, is_paused=True)["success_count"] == 1
    assert [f.name for f in client.torrents_files(torrent_hash=info_hash)] == ["qbt/a.bin", "qbt/b.bin"]
    with pytest.raises(qbittorrentapi.Conflict409Error):
        client.torrents_save_metadata(source=info_hash)


async def test_parse_metadata_then_save_and_add(tmp_path: Path) -> None:
    torrent = five_pieces()
    async with running_api(tmp_path) as api:
        await anyio.to_thread.run_sync(parse_and_save, api.url, torrent.to_bytes(), torrent)


def fetch_then_add(url: str, magnet: str, torrent: Torrent) -> None:
    client = client_of(url)
    record: Any = client.torrents_fetch_metadata(source=magnet)  # (202: its hashes, being fetched)
    assert record["hash"] == torrent.info_hash.hex() and "info" not in record


    for _ in range(300):
        record = client.torrents_fetch_metadata(source=magnet)
        if "info" in record:
            break
        anyio.from_thread.run(anyio.sleep, 0.1)
    assert record["info"]["name"] == torrent.name and record["info"]["pieces_num"] == torrent.num_pieces
    assert Torrent.from_bytes(client.torrents_save_metadata(source=magnet)).info_bytes == torrent.info_bytes
    assert client.torrents_fetch_metadata(source=magnet)["info"]["name"] == torrent.name  # (remembered)
    assert client.torrents_add(urls=magnet, is_paused=True)["success_count"] == 1
    assert client.torrents_properties(torrent_hash=torrent.info_hash.hex()).pieces_num == torrent.num_pieces


async def test_fetch_metadata_of_a_magnet_from_a_loopback_seeder_without_a_job(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed"), version="v1")
    async with Session(torrent, tmp_path / "seed", config=loopback_config()) as seeder:
        await seeder.wait_ready()
        magnet = parse_magnet(torrent.magnet_uri())
        link = f"{magnet.to_uri()}&x.pe=127.0.0.1:{seeder.listen_port}"
        async with running_api(tmp_path / "daemon") as api:
            await anyio.to_thread.run_sync(fetch_then_add, api.url, link, torrent)
            [job] = api.service.client_jobs()
            assert job.info_hash == torrent.info_hash.hex()
            assert not api.service.metadata_fetching(job.info_hash)  # (the add ended the fetch)
            # (the fetch's scratch folder is gone: nothing of it is left in the state folder)
            assert not list(api.state_dir.glob("metadata-*"))


async def test_metadata_calls_refuse_bad_input_as_qbittorrent(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        c = api.client
        for method, fields, status, text in (
                ("fetchMetadata", {}, 400, "Missing required parameters: source"),
                ("fetchMetadata", {"source": "  "}, 400, "Must specify URI or hash"),
                ("fetchMetadata", {"source": "nonsense"}, 400, "Unable to parse 'nonsense'"),
                ("fetchMetadata", {"source": "magnet:?xt=urn:btih:12"}, 400, "Unable to parse"),
                ("fetchMetadata", {"source": "a" * 40, "downloader": "x"}, 400,
                 "downloader must be a valid search plugin"),
                ("fetchMetadata", {"source": "http://127.0.0.1:9/x.torrent"}, 400, "Unable to download"),
                ("parseMetadata", {}, 400, "Must specify torrent file(s)"),
                ("saveMetadata", {}, 400, "Missing required parameters: source"),
                ("saveMetadata", {"source": ""}, 400, "Must specify URI or hash"),
                ("saveMetadata", {"source": "http://127.0.0.1:9/x.torrent"}, 404, "Not Found"),
                ("saveMetadata", {"source": "b" * 40}, 409, "Metadata is not yet available")):
            r = await c.post(f"/api/v2/torrents/{method}", data=fields)
            assert r.status_code == status and r.text.startswith(text), (method, fields, r.status_code,
                                                                         r.text)
        for method in ("fetchMetadata", "parseMetadata"):  # (POST alone, as in qBittorrent)
            assert (await c.get(f"/api/v2/torrents/{method}", params={"source": "a" * 40})).status_code == 405
        r = await c.post("/api/v2/torrents/parseMetadata", files={"torrents": ("x.torrent", b"junk")})
        assert (r.status_code, r.text) == (415, "'x.torrent' is not a valid torrent file.")
        assert api.service.client_jobs() == []


async def serve_files(files: dict[str, bytes], *, task_status: anyio.abc.TaskStatus[int]) -> None:
    """A loopback HTTP/1.0 server of ``files`` by path (one request a connection)."""
    async def handle(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            head = b""
            while b"\r\n\r\n" not in head:
                head += await stream.receive()
            body = files[head.split(b" ")[1].decode()]
            await stream.send(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    task_status.started(listener.extra(anyio.abc.SocketAttribute.local_port))
    await listener.serve(handle)


def fetch_url(base: str, url: str, torrent: Torrent) -> None:
    qbittorrentapi = require_module("qbittorrentapi")
    client = client_of(url)
    record = client.torrents_fetch_metadata(source=f"{base}/t.torrent")  # (fetched before the answer)
    assert record["hash"] == torrent.info_hash.hex() and record["info"]["name"] == "qbt"
    saved = client.torrents_save_metadata(source=f"{base}/t.torrent")
    assert Torrent.from_bytes(saved).info_bytes == torrent.info_bytes
    with pytest.raises(qbittorrentapi.UnsupportedMediaType415Error):
        client.torrents_fetch_metadata(source=f"{base}/junk")
    # (the remembered one)
    assert client.torrents_add(urls=f"{base}/t.torrent", is_paused=True)["success_count"] == 1
    assert client.torrents_count() == 1


async def test_fetch_metadata_of_an_http_url(tmp_path: Path) -> None:
    torrent = five_pieces()
    async with running_api(tmp_path) as api, anyio.create_task_group() as tg:
        port = await tg.start(serve_files, {"/t.torrent": torrent.to_bytes(), "/junk": b"<html>"})
        await anyio.to_thread.run_sync(fetch_url, f"http://127.0.0.1:{port}", api.url, torrent)
        tg.cancel_scope.cancel()


async def test_a_magnet_fetch_without_peers_ends_at_its_time_limit(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        api.service._metadata.timeout = 0.5  # (FETCH_METADATA_TIMEOUT is minutes)
        r = await api.client.post("/api/v2/torrents/fetchMetadata", data={"source": "d" * 40})
        assert r.status_code == 202 and r.json()["hash"] == "d" * 40
        assert api.service.metadata_fetching("d" * 40)
        with anyio.fail_after(10):  # (ended, then its scratch folder removed: in a worker thread)
            while api.service.metadata_fetching("d" * 40) or list(api.state_dir.glob("metadata-*")):
                await anyio.sleep(0.05)
        r = await api.client.post("/api/v2/torrents/saveMetadata", data={"source": "d" * 40})
        assert r.status_code == 409  # (asked for, never had: a new fetch is under way)


def download_files(url: str, info_hash: str, text: str) -> None:
    qbittorrentapi = require_module("qbittorrentapi")
    client = client_of(url)
    assert client.torrents_download_file(torrent_hash=info_hash, file=0) == text
    assert client.torrents_download_file(torrent_hash=info_hash, file="doc/b.txt") == "second file\n"
    with pytest.raises(qbittorrentapi.NotFound404Error):
        client.torrents_download_file(torrent_hash="0" * 40, file=0)
    with pytest.raises(qbittorrentapi.Conflict409Error):
        client.torrents_download_file(torrent_hash=info_hash, file=2)


async def test_download_file_sends_a_complete_file(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        folder = api.download_root / "x" / "doc"
        folder.mkdir(parents=True)
        text = "".join(f"line {i}\n" for i in range(5000))
        (folder / "a.txt").write_text(text)
        (folder / "b.txt").write_text("second file\n")
        torrent = make_torrent(folder, piece_length=16384, version="v1")
        info_hash = torrent.info_hash.hex()
        missing = five_pieces()  # (no data: nothing of it complete)
        c = api.client
        r = await c.post("/api/v2/torrents/add", data={"savepath": str(folder.parent), "seedMode": "true"},
                         files={"torrents": ("doc.torrent", torrent.to_bytes())})
        qbt_added(r)
        r = await c.post("/api/v2/torrents/add", data={"paused": "true", "urls": "e" * 40},
                         files={"torrents": ("m.torrent", missing.to_bytes())})
        qbt_added(r, 2)
        await anyio.to_thread.run_sync(download_files, api.url, info_hash, text)
        r = await c.post("/api/v2/torrents/downloadFile", data={"hash": info_hash, "file": "0"},
                         headers={"Range": "bytes=7-13"})
        assert (r.status_code, r.content) == (206, text.encode()[7:14])
        for fields, status, answer in (
                ({"hash": info_hash}, 400, "Missing required parameters: file"),
                ({"file": "0"}, 400, "Missing required parameters: hash"),
                ({"hash": info_hash, "file": "-1"}, 409, '"-1" is not a valid file index'),
                ({"hash": info_hash, "file": "7"}, 409, "File index 7 is out of bounds"),
                ({"hash": info_hash, "file": "doc/c.txt"}, 409, '"doc/c.txt" is not a valid file path'),
                ({"hash": missing.info_hash.hex(), "file": "qbt/a.bin"}, 409, "File not fully downloaded"),
                ({"hash": "e" * 40, "file": "0"}, 409, "Torrent metadata not available"),
                ({"hash": "0" * 40, "file": "0"}, 404, "Torrent not found")):
            r = await c.post("/api/v2/torrents/downloadFile", data=fields)
            assert (r.status_code, r.text) == (status, answer), fields
        r = await c.get("/api/v2/torrents/downloadFile", params={"hash": info_hash, "file": "1"})
        assert (r.status_code, r.text) == (200, "second file\n")  # (GET too, as in qBittorrent)


async def test_add_with_file_priorities_of_parsed_metadata(tmp_path: Path) -> None:
    torrent = five_pieces()
    info_hash = torrent.info_hash.hex()
    async with running_api(tmp_path) as api:
        c = api.client
        for fields, answer in (
                ({"urls": info_hash, "filePriorities": "0,7"}, "`filePriorities` may only be specified when "
                                                               "metadata has already been fetched"),
                ({"urls": f"{info_hash}\n{'a' * 40}", "filePriorities": "0,7"},
                 "Cannot specify filePriorities when adding multiple torrents"),
                ({"urls": info_hash, "filePriorities": "0,x"}, "Priority must be an integer"),
                ({"urls": info_hash, "filePriorities": "0,3"}, "Priority is not valid")):
            r = await c.post("/api/v2/torrents/add", data=fields)
            assert (r.status_code, r.text) == (400, answer), fields
        r = await c.post("/api/v2/torrents/add", data={"filePriorities": "1"},
                         files={"torrents": ("t.torrent", torrent.to_bytes())})
        assert (r.status_code, r.text) == (400, "Cannot specify filePriorities when uploading torrent files")
        r = await c.post("/api/v2/torrents/parseMetadata",
                         files={"torrents": ("t.torrent", torrent.to_bytes())})
        assert r.status_code == 200
        r = await c.post("/api/v2/torrents/add", data={"urls": info_hash, "filePriorities": "0,1,7"})
        assert (r.status_code, r.text) == (400, "Length of filePriorities must equal number of files in "
                                                "torrent")
        r = await c.post("/api/v2/torrents/add", data={"urls": info_hash, "filePriorities": "0,7",
                                                        "paused": "true"})
        qbt_added(r)
        r = await c.get("/api/v2/torrents/files", params={"hash": info_hash})
        assert [f["priority"] for f in r.json()] == [0, 7]
        assert api.service.client_jobs()[0].files[0].priority == 0
