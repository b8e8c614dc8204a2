"""BEP 19 web seeds against a real HTTP server (Debian's nginx on 127.0.0.1): web-seed-only
downloads (single- and multi-file, pad files, percent-encoded names), a web seed beside a
libtorrent seeder, and a web seed serving wrong bytes banned while a peer completes the download.
"""

from __future__ import annotations

import dataclasses
import random
import ssl
from pathlib import Path

import anyio
import pytest

from tests.conftest import require_libtorrent
from tests.integration.helpers import loopback_config, make_payload, same_files
from tests.interop._nginx import nginx
from tests.interop.test_libtorrent_transfer import lt_add, lt_session, wait_lt
from torrent_engine import events as ev
from torrent_engine.errors import WebSeedError
from torrent_engine.net.webseed.client import RangeClient
from torrent_engine.net.webseed.mapping import plan_run
from torrent_engine.session import Session
from torrent_engine.session.state_table import State
from torrent_engine.storage.create import create_torrent

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

FILES = (
    ("a.bin", 700_001),
    ("empty.txt", 0),
    ("sub dir/b ä%.bin", 77_777),  # percent-encoded on the wire, decoded by nginx
    ("sub dir/deeper/c.dat", 300_001),
    ("z.txt", 1),
)


def _log_ok(lines: list[str]) -> list[str]:
    """The requests nginx answered with 206 Partial Content (each asked with a Range)."""
    return [line for line in lines if line.split(" ", 2)[1] == "206"]


@pytest.mark.parametrize("url_form", ["folder/", "file"])
async def test_single_file_from_web_seed_only(tmp_path: Path, url_form: str) -> None:
    root = tmp_path / "www"
    (root / "pub").mkdir(parents=True)
    data = random.Random(5).randbytes(1_500_000)
    (root / "pub" / "single file.bin").write_bytes(data)
    with nginx(tmp_path / "nginx", root) as server:
        # BEP 19: a URL ending in '/' gets the name appended; otherwise it is the file itself
        url = server.url + ("pub/" if url_form == "folder/" else "pub/single%20file.bin")
        torrent = create_torrent(root / "pub" / "single file.bin", piece_length=64 * 1024,
                                 version="v1", web_seeds=[url])
        async with Session(torrent, tmp_path / "ours", config=loopback_config()) as ours:
            with anyio.fail_after(60):
                await ours.wait_completed()
            assert ours.state is State.SEEDING
            assert ours.downloaded >= len(data)
        lines = server.requests()
    assert (tmp_path / "ours" / "single file.bin").read_bytes() == data
    ok = _log_ok(lines)
    assert ok and len(ok) == len(lines), lines  # every request a satisfied range request
    assert all('"GET /pub/single%20file.bin HTTP/1.1"' in line for line in lines), lines
    # keep-alive: several ranges went over one connection
    assert len({line.split(" ", 1)[0] for line in lines}) < len(lines), lines


@pytest.mark.parametrize("version", ["v1", "hybrid", "v2"])
async def test_multi_file_from_web_seed_only(tmp_path: Path, version: str) -> None:
    root = tmp_path / "www"
    payload = make_payload(root / "pub", FILES)
    with nginx(tmp_path / "nginx", root) as server:
        # multi-file: the URL is the folder holding <name>/<path>; the missing '/' is added
        torrent = create_torrent(payload, piece_length=32 * 1024, version=version,  # type: ignore[arg-type]
                                 web_seeds=[server.url + "pub"])
        if version == "hybrid":
            assert any(f.pad for f in torrent.files)
        async with Session(torrent, tmp_path / "ours", config=loopback_config()) as ours:
            with anyio.fail_after(60):
                await ours.wait_completed()
        lines = server.requests()
    assert same_files(torrent, root / "pub", tmp_path / "ours") == []
    assert lines and len(_log_ok(lines)) == len(lines), lines
    assert not any(".pad" in line for line in lines), lines  # BEP 47: pad files never asked for
    assert any("/pub/payload/sub%20dir/b%20%C3%A4%25.bin" in line for line in lines), lines


async def test_https_web_seed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "www"
    payload = make_payload(root / "pub", FILES[:3])
    with nginx(tmp_path / "nginx", root, tls=True) as server:
        assert server.url.startswith("https://")
        # the system trust store, with the test's own certificate as its only authority
        monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "nginx" / "cert.pem"))
        torrent = create_torrent(payload, piece_length=32 * 1024, version="v1",
                                 web_seeds=[server.url + "pub/"])
        async with Session(torrent, tmp_path / "ours", config=loopback_config()) as ours:
            with anyio.fail_after(60):
                await ours.wait_completed()
        lines = server.requests()
        # a certificate nobody vouches for is a typed error, not a download
        untrusting = RangeClient(ssl_context=ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
        with pytest.raises(WebSeedError, match="CERTIFICATE_VERIFY_FAILED"):
            await untrusting.fetch(plan_run(torrent, server.url + "pub/", 0, 0).ranges[0])
    assert same_files(torrent, root / "pub", tmp_path / "ours") == []
    assert lines and len(_log_ok(lines)) == len(lines), lines
    assert len({line.split(" ", 1)[0] for line in lines}) < len(lines), lines  # keep-alive over TLS


async def test_web_seed_and_libtorrent_peer_share_the_download(tmp_path: Path) -> None:
    lt = require_libtorrent()
    root = tmp_path / "www"
    payload = make_payload(root / "pub", (("big.bin", 6 * 1024 * 1024), ("small.bin", 100_000)))
    with nginx(tmp_path / "nginx", root, limit_rate="1m") as server:
        plain = create_torrent(payload, piece_length=64 * 1024, version="v1")
        torrent = dataclasses.replace(plain, web_seeds=(server.url + "pub/",))
        # a download limit shared by both sources (and nginx's own limit on the web seed), so
        # that neither finishes before the other has delivered
        cfg = loopback_config(transport="tcp", download_rate_limit=2 * 1024 * 1024)
        with lt_session(lt) as ses:
            handle = lt_add(lt, ses, plain, root / "pub")
            await wait_lt(handle, seeding=True)
            async with Session(torrent, tmp_path / "ours", config=cfg,
                               peers=[("127.0.0.1", ses.listen_port())]) as ours:
                with anyio.fail_after(90):
                    await ours.wait_completed()
                from_web = ours.web_seeds[0].downloaded
                total = ours.downloaded
            from_peer = handle.status().total_payload_upload
        lines = server.requests()
    assert same_files(torrent, root / "pub", tmp_path / "ours") == []
    assert _log_ok(lines), lines
    # both sources served pieces of the one download
    assert 0 < from_web < torrent.payload_size <= total, (from_web, total)
    assert from_peer > 0, from_peer


async def test_lying_web_seed_is_banned_and_a_peer_completes(tmp_path: Path) -> None:
    lt = require_libtorrent()
    good = make_payload(tmp_path / "seed", (("data.bin", 2 * 1024 * 1024),))
    torrent_plain = create_torrent(good, piece_length=64 * 1024, version="v1")
    bad_root = tmp_path / "www"
    (bad_root / "pub" / "payload").mkdir(parents=True)
    # same size, other bytes: every piece from the web seed fails its hash
    (bad_root / "pub" / "payload" / "data.bin").write_bytes(random.Random(9).randbytes(2 * 1024 * 1024))
    failed: list[ev.PieceHashFailed] = []
    with nginx(tmp_path / "nginx", bad_root) as server:
        url = server.url + "pub/"
        torrent = dataclasses.replace(torrent_plain, web_seeds=(url,))
        with lt_session(lt) as ses:
            handle = lt_add(lt, ses, torrent_plain, tmp_path / "seed")
            await wait_lt(handle, seeding=True)
            # a shared download limit keeps the honest peer from finishing before the web seed's
            # first (bad) run is in: the whole 2 MiB must come from the peer, at least 2 s
            cfg = loopback_config(transport="tcp", download_rate_limit=1024 * 1024)
            async with Session(torrent, tmp_path / "ours", config=cfg,
                               peers=[("127.0.0.1", ses.listen_port())]) as ours:
                ours.events.subscribe("piece.hash_failed", failed.append)
                with anyio.fail_after(90):
                    await ours.wait_completed()
                states = ours.web_seeds
                banned = ours.banned_count
        lines = server.requests()
    assert same_files(torrent, tmp_path / "seed", tmp_path / "ours") == []
    assert lines  # the web seed was asked, served bad data...
    # (a piece the peer helped finish in endgame names both; the smart ban finds the liar)
    assert failed and all(f"{url}:0" in e.peers for e in failed), failed
    assert banned == 1  # ...and it alone was banned (not the honest libtorrent seeder)
    assert [s.url for s in states] == [url] and states[0].gave_up.startswith("banned"), states
