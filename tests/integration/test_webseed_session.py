"""Web seeds (BEP 19) in a session, against a scripted HTTP server on 127.0.0.1: a magnet's
``ws=`` web seed serves the data, a failing web seed is the stall's stated reason, and
``Config.web_seeds=False`` makes no request at all."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from urllib.parse import quote

import anyio
import pytest

from tests.unit.webseed._webseed_server import http_server, ranged
from torrent_engine.cli.display import progress_line
from torrent_engine.formats.magnet import parse_magnet
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.session import Session

from .helpers import loopback_config, make_payload, make_torrent, same_files

pytestmark = pytest.mark.anyio

NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"


def served_files(torrent: Torrent, folder: Path) -> dict[str, bytes]:
    """URL path -> contents of each file of ``torrent`` under ``/pub/`` (BEP 19 multi-file)."""
    return {"/pub/" + "/".join(quote(p, safe="") for p in f.path): folder.joinpath(*f.path).read_bytes()
            for f in torrent.files if not f.pad}


async def wait_stall(session: Session, limit: float = 20) -> tuple[str, str]:
    with anyio.fail_after(limit):
        while (st := session.status()).stall_reason is None:
            await anyio.sleep(0.05)
    assert st.stall_message is not None
    return st.stall_reason, st.stall_message


async def test_magnet_ws_web_seed_serves_the_data(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed"), version="v1")
    files = served_files(torrent, tmp_path / "seed")
    async with http_server(lambda path, s, e: ((ranged(files[path], s, e), True) if path in files
                                                 else (NOT_FOUND, True))) as server:
        url = server.url("/pub/")
        magnet = parse_magnet(torrent.magnet_uri() + "&ws=" + quote(url, safe=""))
        assert magnet.web_seeds == (url,)
        async with Session(torrent, tmp_path / "seed", config=loopback_config()) as seeder:
            await seeder.wait_ready()
            seeder.set_rate_limits(upload=1)  # the peer gives the metadata, hardly any data
            async with Session(magnet, tmp_path / "leech", config=loopback_config(),
                               peers=[("127.0.0.1", seeder.listen_port)]) as leecher:
                with anyio.fail_after(60):
                    await leecher.wait_completed()
                assert leecher.torrent.web_seeds == (url,)
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []
    assert server.requests and all(path in files for path, _ in server.requests)


async def test_a_failing_web_seed_is_the_stated_stall_reason(tmp_path: Path) -> None:
    plain = make_torrent(make_payload(tmp_path / "seed"), version="v1")
    async with http_server(lambda path, s, e: (NOT_FOUND, True)) as server:
        torrent = dataclasses.replace(plain, web_seeds=(server.url("/pub/"),))
        async with Session(torrent, tmp_path / "leech", config=loopback_config(stall_after=1.0)) as leecher:
            reason, message = await wait_stall(leecher)
            in_use = leecher.status().web_seeds
    assert in_use == sum(1 for w in leecher.web_seeds if not w.gave_up)
    assert reason == "web_seeds_failing", message
    assert server.url("/pub/") in message and "HTTP 404" in message
    assert server.requests


async def test_web_seeds_off_in_the_config_make_no_request(tmp_path: Path) -> None:
    plain = make_torrent(make_payload(tmp_path / "seed"), version="v1")
    files = served_files(plain, tmp_path / "seed")
    async with http_server(lambda path, s, e: (ranged(files[path], s, e), True)) as server:
        torrent = dataclasses.replace(plain, web_seeds=(server.url("/pub/"),))
        cfg = loopback_config(stall_after=1.0, web_seeds=False)
        async with Session(torrent, tmp_path / "leech", config=cfg) as leecher:
            reason, _ = await wait_stall(leecher)
            assert leecher.status().progress == 0.0
    assert reason == "no_peer_sources"
    assert server.requests == []


async def test_a_lying_web_seed_alone_is_banned_and_said_to_be(tmp_path: Path) -> None:
    plain = make_torrent(make_payload(tmp_path / "seed"), version="v1")
    files = {path: bytes(len(data)) for path, data in served_files(plain, tmp_path / "seed").items()}  # zeros
    async with http_server(lambda path, s, e: (ranged(files[path], s, e), True)) as server:
        torrent = dataclasses.replace(plain, web_seeds=(server.url("/pub/"),))
        async with Session(torrent, tmp_path / "leech", config=loopback_config(stall_after=1.0)) as leecher:
            reason, message = await wait_stall(leecher)
            states = leecher.web_seeds
            assert leecher.status().progress == 0.0 and leecher.hash_failures >= 2
            assert leecher.banned_count == 1
            assert leecher.status().web_seeds == 0  # (banned: given up, not in use)
    assert reason == "web_seeds_failing" and "banned" in message, message
    assert states[0].gave_up.startswith("banned")


async def test_a_session_started_paused_asks_its_web_seed_only_once_resumed(tmp_path: Path) -> None:
    plain = make_torrent(make_payload(tmp_path / "seed"), version="v1")
    files = served_files(plain, tmp_path / "seed")
    async with http_server(lambda path, s, e: (ranged(files[path], s, e), True)) as server:
        torrent = dataclasses.replace(plain, web_seeds=(server.url("/pub/"),))
        async with Session(torrent, tmp_path / "leech", config=loopback_config(), paused=True) as leecher:
            await leecher.wait_ready()
            await anyio.sleep(0.5)
            assert server.requests == [] and leecher.downloaded == 0
            await leecher.resume()
            with anyio.fail_after(30):
                await leecher.wait_completed()
            st = leecher.status()
            assert st.web_seeds == 1 and st.peers == 0
            assert "peers 0+1 web" in progress_line("t", st)
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []
    assert server.requests


async def test_two_web_seeds_one_failing_and_an_ftp_url_ignored(tmp_path: Path) -> None:
    plain = make_torrent(make_payload(tmp_path / "seed"), version="v1")
    files = served_files(plain, tmp_path / "seed")
    busy = b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n"
    async with http_server(lambda path, s, e: (busy, True)) as bad, \
            http_server(lambda path, s, e: (ranged(files[path], s, e), True)) as good:
        urls = ("ftp://127.0.0.1/pub/", bad.url("/pub/"), good.url("/pub/"), good.url("/pub/"))
        torrent = dataclasses.replace(plain, web_seeds=urls)
        async with Session(torrent, tmp_path / "leech", config=loopback_config()) as leecher:
            with anyio.fail_after(30):
                await leecher.wait_completed()
            states = {w.url: w for w in leecher.web_seeds}
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []
    assert set(states) == {bad.url("/pub/"), good.url("/pub/")}  # ftp ignored, the duplicate once
    assert states[good.url("/pub/")].downloaded > 0
    assert bad.requests and "HTTP 503" in states[bad.url("/pub/")].last_error
