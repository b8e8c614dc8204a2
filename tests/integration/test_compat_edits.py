"""Renaming files and folders and editing trackers through both dialects, driven by the real
``qbittorrent-api`` and ``transmission-rpc`` libraries: the names and answers those clients expect,
the files moved on disk, a tracker added announced to at once, the refusals each client knows, and
all of it kept across a restart of the service."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest

from tests.conftest import require_module
from tests.integration.api_helpers import TOKEN, Api, running_api
from tests.integration.helpers import make_payload, make_torrent
from tests.unit.tracker._tracker_servers import HttpRequest, announce_body, http_response, http_tracker
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.jobs import JobState

pytestmark = pytest.mark.anyio

FILES = (("a.bin", 70_001), ("sub/b.bin", 30_000), ("sub/deep/c.bin", 5))
TRACKERS = {"tracker_enabled": True}


async def answer(request: HttpRequest, stream: anyio.abc.ByteStream) -> None:
    await stream.send(http_response(announce_body(interval=1800)))


def seeded(tmp_path: Path, name: str = "payload") -> Torrent:
    """A torrent whose data is in the download folder already (its job seeds once checked)."""
    return make_torrent(make_payload(tmp_path / "downloads", FILES, name=name), version="v1")


async def until_seeding(api: Api, torrent: Torrent) -> None:
    with anyio.fail_after(30):
        while True:
            jobs = [j for j in api.service.list() if j.info_hash == torrent.info_hash.hex()]
            if jobs and jobs[0].state is JobState.SEEDING:
                return
            await anyio.sleep(0.02)


def qbt_client(url: str) -> Any:
    qbittorrentapi = require_module("qbittorrentapi")
    client = qbittorrentapi.Client(host=url, username="admin", password=TOKEN,
                                   VERIFY_WEBUI_CERTIFICATE=False, REQUESTS_ARGS={"timeout": 30})
    client.auth_log_in()
    return client


def qbt_edits(url: str, h: str, root: Path, one: str, two: str) -> None:
    """What a tool does through qbittorrent-api (in a worker thread)."""
    qbittorrentapi = require_module("qbittorrentapi")
    qbt = qbt_client(url)
    qbt.torrents_rename_file(torrent_hash=h, old_path="payload/a.bin", new_path="payload/films/a2.bin")
    qbt.torrents_rename_folder(torrent_hash=h, old_path="payload/sub", new_path="payload/other")
    assert [f.name for f in qbt.torrents_files(torrent_hash=h)] == [
        "payload/films/a2.bin", "payload/other/b.bin", "payload/other/deep/c.bin"]
    assert (root / "payload" / "films" / "a2.bin").stat().st_size == 70_001
    assert not (root / "payload" / "sub").exists() and not (root / "payload" / "a.bin").exists()
    for old, new in (("payload/films/a2.bin", "../a.bin"), ("payload/films/a2.bin", "/etc/a.bin"),
                     ("payload/films/a2.bin", "payload/other/b.bin"), ("payload/nothing", "payload/x")):
        with pytest.raises(qbittorrentapi.Conflict409Error):
            qbt.torrents_rename_file(torrent_hash=h, old_path=old, new_path=new)
    with pytest.raises(qbittorrentapi.Conflict409Error):
        qbt.torrents_rename_folder(torrent_hash=h, old_path="payload/films/a2.bin", new_path="payload/x")
    with pytest.raises(qbittorrentapi.NotFound404Error):
        qbt.torrents_rename_file(torrent_hash="0" * 40, old_path="a", new_path="b")

    qbt.torrents_add_trackers(torrent_hash=h, urls=[one])
    rows = [t for t in qbt.torrents_trackers(torrent_hash=h) if not t.url.startswith("** [")]
    assert [(t.url, t.tier) for t in rows] == [(one, 0)]
    with pytest.raises(qbittorrentapi.InvalidRequest400Error):  # (one bad URL: none is added)
        qbt.torrents_add_trackers(torrent_hash=h, urls=[two, "gopher://x/"])
    with pytest.raises(qbittorrentapi.InvalidRequest400Error):
        qbt.torrents_edit_tracker(torrent_hash=h, original_url=one, new_url="not a url")
    with pytest.raises(qbittorrentapi.Conflict409Error):
        qbt.torrents_edit_tracker(torrent_hash=h, original_url="http://127.0.0.1:1/none", new_url=two)
    qbt.torrents_edit_tracker(torrent_hash=h, original_url=one, new_url=one)  # (2.13: no change)
    qbt.torrents_add_trackers(torrent_hash=h, urls=["udp://127.0.0.1:9/announce"])
    qbt.torrents_edit_tracker(torrent_hash=h, original_url=one, new_url=two)
    udp = "udp://127.0.0.1:9/announce"
    tiers = [(t.url, t.tier) for t in qbt.torrents_trackers(torrent_hash=h) if not t.url.startswith("** [")]
    assert tiers == [(two, 0), (udp, 1)]
    qbt.torrents_edit_tracker(torrent_hash=h, original_url=udp, tier=0)  # (2.13: a tracker's tier)
    tiers = [(t.url, t.tier) for t in qbt.torrents_trackers(torrent_hash=h) if not t.url.startswith("** [")]
    assert tiers == [(two, 0), (udp, 0)]
    for tier in ("first", "256"):
        with pytest.raises(qbittorrentapi.InvalidRequest400Error, match="tier"):
            qbt.torrents_edit_tracker(torrent_hash=h, original_url=udp, tier=tier)
    with pytest.raises(qbittorrentapi.InvalidRequest400Error, match="newUrl, tier"):
        qbt.torrents_edit_tracker(torrent_hash=h, original_url=udp)
    qbt.torrents_remove_trackers(torrent_hash=h, urls=["udp://127.0.0.1:9/announce", "http://unknown/"])
    rows = [t for t in qbt.torrents_trackers(torrent_hash=h) if not t.url.startswith("** [")]
    assert [t.url for t in rows] == [two]


async def test_qbittorrent_renames_files_and_folders_and_edits_trackers_kept_across_a_restart(
        tmp_path: Path) -> None:
    torrent = seeded(tmp_path)
    h = torrent.info_hash.hex()
    root = tmp_path / "downloads"
    async with http_tracker(answer) as first, http_tracker(answer) as second:
        one, two = (f"http://127.0.0.1:{t.port}/announce" for t in (first, second))
        async with running_api(tmp_path, config_options=TRACKERS) as api:
            await api.service.add(torrent)
            await until_seeding(api, torrent)
            await anyio.to_thread.run_sync(qbt_edits, api.url, h, root, one, two)
            with anyio.fail_after(20):  # (each announced to once it was the torrent's)
                while not (first.requests and second.requests):
                    await anyio.sleep(0.02)
        second.requests.clear()
        async with running_api(tmp_path, config_options=TRACKERS) as again:
            await until_seeding(again, torrent)
            # (found whole under its new names: a dormant seed, announced without a session)
            assert again.service.manager.get(torrent.info_hash) is None

            def read() -> tuple[list[str], list[str]]:
                qbt = qbt_client(again.url)
                files = [f.name for f in qbt.torrents_files(torrent_hash=h)]
                rows = qbt.torrents_trackers(torrent_hash=h)
                return files, [t.url for t in rows if not t.url.startswith("** [")]

            files, trackers = await anyio.to_thread.run_sync(read)
            assert files == ["payload/films/a2.bin", "payload/other/b.bin", "payload/other/deep/c.bin"]
            assert trackers == [two]
            with anyio.fail_after(20):
                while not second.requests:
                    await anyio.sleep(0.02)


def tr_edits(port: int, h: str, root: Path, one: str, two: str) -> None:
    """What a tool does through transmission-rpc (in a worker thread)."""
    transmission_rpc = require_module("transmission_rpc")
    tr = transmission_rpc.Client(host="127.0.0.1", port=port, username="me", password=TOKEN, timeout=30)
    t = tr.get_torrent(h)
    assert tr.rename_torrent_path(t.id, "payload/sub/b.bin", "b2.bin") == ("payload/sub/b.bin", "b2.bin")
    assert tr.rename_torrent_path(t.id, "payload/sub", "folder") == ("payload/sub", "folder")
    assert tr.rename_torrent_path(t.id, "payload", "Show") == ("payload", "Show")  # the root: its name too
    t = tr.get_torrent(h)
    assert t.name == "Show"
    assert [f.name for f in t.get_files()] == ["Show/a.bin", "Show/folder/b2.bin", "Show/folder/deep/c.bin"]
    assert (root / "Show" / "folder" / "b2.bin").stat().st_size == 30_000
    for path, name in (("Show/a.bin", "../x"), ("Show/a.bin", "x/y"), ("Show/nothing", "x"),
                       ("Show/a.bin", "folder")):
        with pytest.raises(transmission_rpc.TransmissionError):
            tr.rename_torrent_path(t.id, path, name)
    with pytest.raises(transmission_rpc.TransmissionError):  # (no ids: not one torrent)
        tr._request(transmission_rpc.constants.RpcMethod.TorrentRenamePath,
                    {"path": "Show/a.bin", "name": "x"})


def tr_trackers(port: int, h: str, one: str, two: str) -> None:
    transmission_rpc = require_module("transmission_rpc")
    tr = transmission_rpc.Client(host="127.0.0.1", port=port, username="me", password=TOKEN, timeout=30)
    tid = tr.get_torrent(h).id
    tr.change_torrent(tid, tracker_add=[one])
    t = tr.get_torrent(h)
    assert [(x.announce, x.tier, x.id) for x in t.trackers] == [(one, 0, 0)]
    with pytest.raises(transmission_rpc.TransmissionError):  # (one bad URL: nothing changes)
        tr.change_torrent(tid, tracker_add=[two, "gopher://x/"])
    tr.change_torrent(tid, tracker_list=[[one, "udp://127.0.0.1:9/a"], ["udp://127.0.0.1:9/b"]])
    t = tr.get_torrent(h)
    assert t.tracker_list == [one, "udp://127.0.0.1:9/a", "udp://127.0.0.1:9/b"]
    assert [x.tier for x in t.tracker_stats] == [0, 0, 1]
    ids = {x.announce: x.id for x in t.trackers}
    tr.change_torrent(tid, tracker_replace=[(ids[one], two)], tracker_remove=[ids["udp://127.0.0.1:9/b"]])
    t = tr.get_torrent(h)
    assert [x.announce for x in t.trackers] == ["udp://127.0.0.1:9/a", two] or \
        [x.announce for x in t.trackers] == [two, "udp://127.0.0.1:9/a"]
    with pytest.raises(transmission_rpc.TransmissionError):
        tr.change_torrent(tid, tracker_remove=[99])


async def test_transmission_renames_paths_and_edits_trackers_kept_across_a_restart(tmp_path: Path) -> None:
    torrent = seeded(tmp_path)
    h = torrent.info_hash.hex()
    root = tmp_path / "downloads"
    async with http_tracker(answer) as first, http_tracker(answer) as second:
        one, two = (f"http://127.0.0.1:{t.port}/announce" for t in (first, second))
        async with running_api(tmp_path, config_options=TRACKERS) as api:
            await api.service.add(torrent)
            await until_seeding(api, torrent)
            port = api.server.bound_port
            await anyio.to_thread.run_sync(tr_edits, port, h, root, one, two)
            await anyio.to_thread.run_sync(tr_trackers, port, h, one, two)
            with anyio.fail_after(20):
                while not (first.requests and second.requests):
                    await anyio.sleep(0.02)
        async with running_api(tmp_path, config_options=TRACKERS) as again:
            await until_seeding(again, torrent)
            # (found whole under its new names: a dormant seed, announced without a session)
            assert again.service.manager.get(torrent.info_hash) is None
            job = again.service.list()[0]
            assert job.name == "Show"
            assert [f.path for f in job.files] == ["Show/a.bin", "Show/folder/b2.bin",
                                                   "Show/folder/deep/c.bin"]
            assert {t.url for t in job.trackers} == {two, "udp://127.0.0.1:9/a"}
