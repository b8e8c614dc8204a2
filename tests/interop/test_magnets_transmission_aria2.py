"""Magnet links (BEP 9) both ways with Transmission 3.00 and aria2.

Each program runs on 127.0.0.1 with DHT, LSD, PEX and port mapping off, and our side dials it
(both accept incoming BitTorrent connections, so no tracker is needed): as a leecher given a
magnet link alone, it fetches the metadata from our seeder and then the files; as a seeder of
a torrent file, ours fetches the metadata from it, given the magnet link and its address.

Neither takes a hybrid torrent (v1 and v2), libtorrent's as ours: Transmission 3.00 refuses its
file ("Error parsing .torrent file"), and aria2 1.36 hashes its info dictionary as it encodes it
again, which changes a dictionary with an empty key (the v2 file tree's): the info-hash it
computes is no one's, and it answers every handshake "Unknown info hash".
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from tests.conftest import require_program
from tests.integration.helpers import keep_peers, loopback_config, make_payload, make_torrent, same_files
from tests.interop._programs import program
from tests.interop.test_transmission_aria2 import _transmission_cli, free_port
from torrent_engine.formats.magnet import parse_magnet
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.session import Session

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

FILES = (("a.bin", 300_001), ("sub/b.bin", 99_999), ("z.txt", 1))
LIMIT = 90  # seconds a whole exchange may take


def _torrent(tmp_path: Path) -> Torrent:
    return make_torrent(make_payload(tmp_path / "seed", FILES), piece_length=32 * 1024, version="v1")


def _aria2(port: int, save: Path, *, seed: bool = False) -> list[str]:
    """aria2c's command line (its torrent or magnet to be added) on loopback port ``port``,
    saving into ``save``; ``seed``: it checks the data there and seeds it until stopped."""
    exe = require_program("aria2c")
    ending = ["--check-integrity=true", "--seed-ratio=0.0"] if seed else ["--seed-time=0"]
    return [exe, "--interface=127.0.0.1", "--enable-dht=false", "--enable-dht6=false",
            "--bt-enable-lpd=false", "--enable-peer-exchange=false", f"--listen-port={port}",
            "--bt-require-crypto=false", "--file-allocation=none", "--summary-interval=0",
            "--console-log-level=notice", "--bt-stop-timeout=90", "-d", str(save), *ending]


async def _ours_seed_to(tmp_path: Path, torrent: Torrent, argv: list[str], port: int, save: Path) -> None:
    """Our seeder dials the program ``argv`` runs (listening on ``port``) until the files it
    saves into ``save`` are the torrent's."""
    log = tmp_path / "client.log"
    with program(argv, log, lambda: True, Path(argv[0]).name) as proc:
        async with Session(torrent, tmp_path / "seed", config=loopback_config()) as ours:
            await ours.wait_ready()
            with anyio.fail_after(LIMIT):
                while same_files(torrent, tmp_path / "seed", save, empty_may_be_missing=True):
                    assert proc.poll() is None, log.read_text(errors="replace")
                    if not ours.peers:  # (dialed again at once: it listens once it is ready)
                        ours.add_peer("127.0.0.1", port)
                    await anyio.sleep(0.2)
            assert ours.uploaded >= torrent.payload_size


async def _ours_fetch_from(tmp_path: Path, torrent: Torrent, argv: list[str], port: int,
                           client: str) -> None:
    """The program ``argv`` runs seeds ``torrent`` (listening on ``port``); ours, given its
    magnet link and the program's address alone, fetches the metadata and then the files."""
    log = tmp_path / "client.log"
    with program(argv, log, lambda: True, Path(argv[0]).name) as proc:
        async with Session(parse_magnet(torrent.magnet_uri()), tmp_path / "ours",
                           config=loopback_config()) as ours:
            met = keep_peers(ours)
            with anyio.fail_after(LIMIT):
                while not ours.complete:
                    assert proc.poll() is None, log.read_text(errors="replace")
                    if not ours.peers:  # (it listens once its check of the data is done)
                        ours.add_peer("127.0.0.1", port)
                    await anyio.sleep(0.2)
            assert ours.torrent.info_bytes == torrent.info_bytes
            assert met and all(p.client.startswith(client) for p in met)
    assert same_files(torrent, tmp_path / "seed", tmp_path / "ours") == []


@pytest.mark.slow
async def test_transmission_fetches_a_magnet_from_our_seeder(tmp_path: Path) -> None:
    torrent = _torrent(tmp_path)
    port = free_port()
    argv, _marker = _transmission_cli(tmp_path, port, tmp_path / "theirs", utp=False)
    await _ours_seed_to(tmp_path, torrent, [*argv, torrent.magnet_uri()], port, tmp_path / "theirs")


@pytest.mark.slow
async def test_we_fetch_a_magnet_from_a_transmission_seeder(tmp_path: Path) -> None:
    torrent = _torrent(tmp_path)
    (tmp_path / "t.torrent").write_bytes(torrent.to_bytes())
    port = free_port()
    argv, _marker = _transmission_cli(tmp_path, port, tmp_path / "seed", utp=False)
    await _ours_fetch_from(tmp_path, torrent, [*argv, str(tmp_path / "t.torrent")], port, "Transmission")


async def test_aria2_fetches_a_magnet_from_our_seeder(tmp_path: Path) -> None:
    torrent = _torrent(tmp_path)
    port = free_port()
    argv = _aria2(port, tmp_path / "theirs")
    await _ours_seed_to(tmp_path, torrent, [*argv, torrent.magnet_uri()], port, tmp_path / "theirs")


async def test_we_fetch_a_magnet_from_an_aria2_seeder(tmp_path: Path) -> None:
    torrent = _torrent(tmp_path)
    (tmp_path / "t.torrent").write_bytes(torrent.to_bytes())
    port = free_port()
    argv = _aria2(port, tmp_path / "seed", seed=True)
    await _ours_fetch_from(tmp_path, torrent, [*argv, str(tmp_path / "t.torrent")], port, "aria2")
