"""A running session's web seeds set by its owner (``Session.set_web_seeds``): one added while
downloading serves the data, one removed stops at once (its task cancelled, its requests given
back to the picker, no longer asked), and the setup's list replaces the torrent's url-list."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from urllib.parse import quote

import anyio
import pytest

from tests.integration.helpers import loopback_config, make_payload, make_torrent, same_files
from tests.unit.webseed._webseed_server import http_server, ranged
from torrent_engine.formats.magnet import parse_magnet
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.session import Session, SessionSetup

pytestmark = pytest.mark.anyio


def served_files(torrent: Torrent, folder: Path) -> dict[str, bytes]:
    return {"/pub/" + "/".join(quote(p, safe="") for p in f.path): folder.joinpath(*f.path).read_bytes()
            for f in torrent.files if not f.pad}


async def test_a_web_seed_added_while_downloading_serves_the_data(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed"), version="v1")
    assert torrent.web_seeds == ()
    files = served_files(torrent, tmp_path / "seed")
    async with http_server(lambda path, s, e: (ranged(files[path], s, e), True)) as server:
        async with Session(torrent, tmp_path / "leech", config=loopback_config()) as leecher:
            await leecher.wait_ready()
            await anyio.sleep(0.2)
            assert leecher.status().progress == 0.0 and leecher.web_seed_urls == []
            leecher.set_web_seeds([server.url("/pub/")])
            assert leecher.web_seed_urls == [server.url("/pub/")]
            with anyio.fail_after(30):
                await leecher.wait_completed()
            assert [w.url for w in leecher.web_seeds] == [server.url("/pub/")]
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []


async def test_a_removed_web_seed_stops_at_once_and_gives_its_requests_back(tmp_path: Path) -> None:
    plain = make_torrent(make_payload(tmp_path / "seed"), version="v1")
    files = served_files(plain, tmp_path / "seed")
    asked = anyio.Event()

    def hang(path: str, start: int, end: int) -> tuple[bytes, bool]:
        asked.set()
        return b"", True  # (no answer: the request stays in flight)

    async with http_server(hang) as stuck, \
            http_server(lambda path, s, e: (ranged(files[path], s, e), True)) as good:
        torrent = dataclasses.replace(plain, web_seeds=(stuck.url("/pub/"),))
        async with Session(torrent, tmp_path / "leech", config=loopback_config()) as leecher:
            with anyio.fail_after(10):
                await asked.wait()
            key = (stuck.url("/pub/"), 0)
            assert leecher.picker.requests_of(key)
            leecher.set_web_seeds([])
            assert leecher.picker.requests_of(key) == []  # (given back at once)
            assert leecher.web_seeds == [] and leecher.web_seed_urls == []
            before = len(stuck.requests)
            leecher.set_web_seeds([good.url("/pub/")])
            with anyio.fail_after(30):
                await leecher.wait_completed()
            assert len(stuck.requests) == before  # (never asked again)
    assert same_files(plain, tmp_path / "seed", tmp_path / "leech") == []


async def test_the_setup_web_seeds_replace_the_url_list(tmp_path: Path) -> None:
    plain = make_torrent(make_payload(tmp_path / "seed"), version="v1")
    files = served_files(plain, tmp_path / "seed")
    async with http_server(lambda path, s, e: (b"", False)) as listed, \
            http_server(lambda path, s, e: (ranged(files[path], s, e), True)) as given:
        torrent = dataclasses.replace(plain, web_seeds=(listed.url("/pub/"),))
        setup = SessionSetup(web_seeds=(given.url("/pub/"),))
        async with Session(torrent, tmp_path / "leech", config=loopback_config(), setup=setup) as leecher:
            assert leecher.web_seed_urls == [given.url("/pub/")]
            with anyio.fail_after(30):
                await leecher.wait_completed()
    assert listed.requests == [] and given.requests


async def test_web_seeds_set_while_paused_start_with_the_resume(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed"), version="v1")
    files = served_files(torrent, tmp_path / "seed")
    async with http_server(lambda path, s, e: (ranged(files[path], s, e), True)) as server:
        async with Session(torrent, tmp_path / "leech", config=loopback_config(), paused=True) as leecher:
            await leecher.wait_ready()
            leecher.set_web_seeds([server.url("/pub/")])
            await anyio.sleep(0.3)
            assert server.requests == []  # (no swarm while paused)
            await leecher.resume()
            with anyio.fail_after(30):
                await leecher.wait_completed()
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []


async def test_a_magnets_web_seeds_set_before_its_metadata_are_used_once_it_comes(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed"), version="v1")
    files = served_files(torrent, tmp_path / "seed")
    async with http_server(lambda path, s, e: (ranged(files[path], s, e), True)) as server:
        magnet = parse_magnet(torrent.magnet_uri())
        async with Session(torrent, tmp_path / "seed", config=loopback_config()) as seeder:
            await seeder.wait_ready()
            seeder.set_rate_limits(upload=1)  # the peer gives the metadata, hardly any data
            async with Session(magnet, tmp_path / "leech", config=loopback_config(),
                               peers=[("127.0.0.1", seeder.listen_port)]) as leecher:
                assert leecher.web_seed_urls == []
                leecher.set_web_seeds([server.url("/pub/")])
                assert leecher.web_seed_urls == [server.url("/pub/")]
                with anyio.fail_after(60):
                    await leecher.wait_completed()
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []
    assert server.requests


async def test_a_web_seed_takes_over_the_blocks_a_peer_trickles_and_the_download_ends(tmp_path: Path) -> None:
    """A peer that uploads 1 byte a second holds requests of the torrent's pieces when a web seed
    comes: the web seed fetches every fresh piece, then the pieces the peer was asked for (their
    blocks asked of both), and the download completes long before the peer's requests time out
    (``Config.request_timeout``, 30 s; before, the web seed took fresh pieces only and the end
    waited on the peer, or for ever on a peer that kept being asked)."""
    torrent = make_torrent(make_payload(tmp_path / "seed"), version="v1")
    files = served_files(torrent, tmp_path / "seed")
    async with http_server(lambda path, s, e: (ranged(files[path], s, e), True)) as server:
        async with Session(torrent, tmp_path / "seed", config=loopback_config()) as seeder:
            await seeder.wait_ready()
            seeder.set_rate_limits(upload=1)
            async with Session(torrent, tmp_path / "leech", config=loopback_config(),
                               peers=[("127.0.0.1", seeder.listen_port)]) as leecher:
                with anyio.fail_after(20):
                    while not any(leecher.picker.in_flight(p.key) for p in leecher.peers):
                        await anyio.sleep(0.02)
                leecher.set_web_seeds([server.url("/pub/")])
                with anyio.fail_after(15):
                    await leecher.wait_completed()
                assert leecher.status().progress == 1.0
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []


async def test_a_web_seed_removed_before_its_task_began_leaves_nothing_behind(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed"), version="v1")
    files = served_files(torrent, tmp_path / "seed")
    async with http_server(lambda path, s, e: (ranged(files[path], s, e), True)) as server:
        url = server.url("/pub/")
        async with Session(torrent, tmp_path / "leech", config=loopback_config()) as leecher:
            await leecher.wait_ready()
            leecher.set_web_seeds([url])
            leecher.set_web_seeds([])  # (its task not started yet)
            await anyio.sleep(0.3)
            assert server.requests == [] and leecher.web_seeds == []
            assert all(leecher.picker.availability(i) == 0 for i in range(torrent.num_pieces))
            leecher.set_web_seeds([url])
            leecher.set_web_seeds([])
            leecher.set_web_seeds([url])  # (added again: the new one runs, the old one's end is harmless)
            with anyio.fail_after(30):
                await leecher.wait_completed()
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []
