"""Transmission and aria2 download from our seeder on 127.0.0.1, and we from Transmission.

Both accept incoming BitTorrent connections, so no tracker is needed: our seeder dials their
listen port. DHT, LSD, PEX and port mapping are off on their side; they listen on 127.0.0.1.
Transmission 3.00 also with RC4 required on both sides, and over uTP alone: its libutp is the
one of before 2013, which reads a packet whose first extension type is 3 or more as uTP's
version 0 (``net/utp/packet.py``).
"""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import anyio
import pytest

from tests.conftest import require_program
from tests.integration.helpers import keep_peers, loopback_config, make_payload, make_torrent, same_files
from tests.interop._programs import program
from tests.interop.test_utp_libtorrent import _datagram_sizes, _keep_streams
from torrent_engine.config import Config, Transport
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.net.utp.pmtud import MTU_SEARCH_DONE
from torrent_engine.net.utp.socket import IPV4_MTU_CEILING
from torrent_engine.session import Session
from torrent_engine.session.peer import PeerState

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

FILES = (("a.bin", 700_001), ("empty.txt", 0), ("sub/b.bin", 99_999), ("z.txt", 1))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _torrent_file(tmp_path: Path) -> tuple[Torrent, Path]:
    torrent = make_torrent(make_payload(tmp_path / "seed", FILES), piece_length=32 * 1024, version="v1")
    torrent_file = tmp_path / "t.torrent"
    torrent_file.write_bytes(torrent.to_bytes())
    return torrent, torrent_file


async def _seed_to(tmp_path: Path, argv: list[str], port: int, done_marker: Path, *,
                   empty_may_be_missing: bool = False, transport: Transport = "any") -> None:
    torrent, torrent_file = _torrent_file(tmp_path)
    out = tmp_path / "theirs"
    out.mkdir()
    log = open(tmp_path / "client.log", "wb")
    proc = subprocess.Popen([*argv, str(torrent_file)], stdout=log, stderr=subprocess.STDOUT,
                            cwd=tmp_path)
    try:
        async with Session(torrent, tmp_path / "seed", config=loopback_config(transport=transport)) as ours:
            await ours.wait_ready()
            met, streams = _keep_streams(ours)
            with anyio.fail_after(90):
                while not done_marker.exists():
                    assert proc.poll() is None, (tmp_path / "client.log").read_text(errors="replace")
                    if not ours.peers:  # dial it (again, at once, however often it refused:
                        ours.add_peer("127.0.0.1", port)  # it listens once it is ready)
                    await anyio.sleep(0.2)
            assert ours.uploaded >= torrent.payload_size
            if transport == "utp":
                assert met and all(p.transport == "utp" for p in met)
                # our path MTU probes (padded) were taken as the data packets they are: the
                # upload went on in datagrams near an Ethernet MTU's
                sizes = _datagram_sizes(streams)
                top = IPV4_MTU_CEILING
                assert sizes and all(top - MTU_SEARCH_DONE < s <= top for s in sizes)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    assert same_files(torrent, tmp_path / "seed", out, empty_may_be_missing=empty_may_be_missing) == []


def _transmission_cli(tmp_path: Path, port: int, save: Path, *, utp: bool,
                      encryption: int = 1) -> tuple[list[str], Path]:
    """transmission-cli's command line (its torrent file to be added) on loopback port ``port``,
    saving into ``save``, speaking uTP too or not, with its ``encryption`` setting (0: plaintext
    preferred, 1: RC4 preferred, 2: RC4 required); and the file it creates once it has it all."""
    exe = require_program("transmission-cli")
    config = tmp_path / "tr-config"
    config.mkdir()
    (config / "settings.json").write_text(json.dumps({
        "dht-enabled": False, "lpd-enabled": False, "pex-enabled": False, "utp-enabled": utp,
        "port-forwarding-enabled": False, "bind-address-ipv4": "127.0.0.1", "bind-address-ipv6": "::1",
        "peer-port": port, "peer-port-random-on-start": False, "encryption": encryption,
        "speed-limit-up-enabled": False, "speed-limit-down-enabled": False,
    }))
    marker = tmp_path / "finished"
    script = tmp_path / "done.sh"
    script.write_text(f"#!/bin/sh\ntouch {marker}\n")
    script.chmod(0o755)
    return [exe, "-g", str(config), "-p", str(port), "-M", "-w", str(save), "-f", str(script)], marker


@pytest.mark.slow
@pytest.mark.parametrize("transport", ["any", "utp"])
async def test_transmission_downloads_from_our_seeder(tmp_path: Path, transport: Transport) -> None:
    """``utp``: Transmission 3.00 and ours speak uTP alone (our SYN on loopback offers larger
    datagrams: an extension Transmission's libutp took for a packet of version 0)."""
    port = free_port()
    argv, marker = _transmission_cli(tmp_path, port, tmp_path / "theirs", utp=transport == "utp")
    await _seed_to(tmp_path, argv, port, marker, empty_may_be_missing=True,  # Transmission 3 skips them
                   transport=transport)


async def _we_download_from_transmission(tmp_path: Path, config: Config, *, utp: bool,
                                        encryption: int = 1) -> list[PeerState]:
    """Transmission 3.00 seeds (``utp``, ``encryption``: its settings); ours, with ``config``,
    dials it until its download is whole: the peers it met."""
    torrent, torrent_file = _torrent_file(tmp_path)
    port = free_port()
    argv, _marker = _transmission_cli(tmp_path, port, tmp_path / "seed", utp=utp, encryption=encryption)
    log = tmp_path / "client.log"
    with program([*argv, str(torrent_file)], log, lambda: True, "transmission-cli") as proc:
        async with Session(torrent, tmp_path / "ours", config=config) as ours:
            met = keep_peers(ours)
            with anyio.fail_after(90):
                while not ours.complete:
                    assert proc.poll() is None, log.read_text(errors="replace")
                    if not ours.peers:  # (it listens once its check of the data is done)
                        ours.add_peer("127.0.0.1", port)
                    await anyio.sleep(0.2)
    assert same_files(torrent, tmp_path / "seed", tmp_path / "ours") == []
    assert met and all(p.client.startswith("Transmission") for p in met)
    return met


@pytest.mark.slow
async def test_we_download_from_transmission_over_utp(tmp_path: Path) -> None:
    """Transmission 3.00 seeds; ours dials it over uTP alone (the SYN as above)."""
    met = await _we_download_from_transmission(tmp_path, loopback_config(transport="utp"), utp=True)
    assert all(p.transport == "utp" for p in met)


@pytest.mark.slow
async def test_rc4_required_on_both_sides_with_transmission(tmp_path: Path) -> None:
    """Transmission 3.00's own MSE (not libtorrent's, aria2's nor rtorrent's): it seeds
    requiring RC4, and ours downloads requiring it too; the link is encrypted."""
    met = await _we_download_from_transmission(tmp_path, loopback_config(encryption="require"), utp=False,
                                               encryption=2)
    assert all(p.link.encrypted for p in met)


async def test_aria2_downloads_from_our_seeder(tmp_path: Path) -> None:
    exe = require_program("aria2c")
    port = free_port()
    marker = tmp_path / "finished"
    script = tmp_path / "done.sh"
    script.write_text(f"#!/bin/sh\ntouch {marker}\n")
    script.chmod(0o755)
    argv = [exe, "--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false",
            "--enable-peer-exchange=false", f"--listen-port={port}", "--seed-time=0",
            "--bt-require-crypto=false", "--check-integrity=false", "--file-allocation=none",
            "--summary-interval=0", "--bt-stop-timeout=90", f"--on-bt-download-complete={script}",
            "--interface=127.0.0.1", "-d", str(tmp_path / "theirs")]
    await _seed_to(tmp_path, argv, port, marker)
