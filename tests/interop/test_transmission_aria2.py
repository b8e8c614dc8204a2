"""Transmission and aria2 download from our seeder on 127.0.0.1.

Both accept incoming BitTorrent connections, so no tracker is needed: our seeder dials their
listen port. DHT, LSD, PEX and port mapping are off on their side; they listen on 127.0.0.1.
"""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import anyio
import pytest

from tests.conftest import require_program
from tests.integration.helpers import loopback_config, make_payload, make_torrent, same_files
from torrent_engine.session import Session

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

FILES = (("a.bin", 700_001), ("empty.txt", 0), ("sub/b.bin", 99_999), ("z.txt", 1))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _seed_to(tmp_path: Path, argv: list[str], port: int, done_marker: Path, *,
                   empty_may_be_missing: bool = False) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed", FILES), piece_length=32 * 1024, version="v1")
    torrent_file = tmp_path / "t.torrent"
    torrent_file.write_bytes(torrent.to_bytes())
    out = tmp_path / "theirs"
    out.mkdir()
    log = open(tmp_path / "client.log", "wb")
    proc = subprocess.Popen([*argv, str(torrent_file)], stdout=log, stderr=subprocess.STDOUT,
                            cwd=tmp_path)
    try:
        async with Session(torrent, tmp_path / "seed", config=loopback_config()) as ours:
            await ours.wait_ready()
            with anyio.fail_after(90):
                while not done_marker.exists():
                    assert proc.poll() is None, (tmp_path / "client.log").read_text(errors="replace")
                    if not ours.peers:  # dial it (again, at once, however often it refused:
                        ours.add_peer("127.0.0.1", port)  # it listens once it is ready)
                    await anyio.sleep(0.2)
            assert ours.uploaded >= torrent.payload_size
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    assert same_files(torrent, tmp_path / "seed", out, empty_may_be_missing=empty_may_be_missing) == []


@pytest.mark.slow
async def test_transmission_downloads_from_our_seeder(tmp_path: Path) -> None:
    exe = require_program("transmission-cli")
    port = free_port()
    config = tmp_path / "tr-config"
    config.mkdir()
    (config / "settings.json").write_text(json.dumps({
        "dht-enabled": False, "lpd-enabled": False, "pex-enabled": False, "utp-enabled": False,
        "port-forwarding-enabled": False, "bind-address-ipv4": "127.0.0.1", "bind-address-ipv6": "::1",
        "peer-port": port, "peer-port-random-on-start": False, "encryption": 1,
        "speed-limit-up-enabled": False, "speed-limit-down-enabled": False,
    }))
    marker = tmp_path / "finished"
    script = tmp_path / "done.sh"
    script.write_text(f"#!/bin/sh\ntouch {marker}\n")
    script.chmod(0o755)
    argv = [exe, "-g", str(config), "-p", str(port), "-M", "-w", str(tmp_path / "theirs"), "-f", str(script)]
    await _seed_to(tmp_path, argv, port, marker, empty_may_be_missing=True)  # Transmission 3 skips them


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
