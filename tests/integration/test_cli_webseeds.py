"""The command line with web seeds (BEP 19): a torrent whose only source is a web seed downloads
to the end; --no-web-seeds leaves it without a source; a failing web seed is the stated reason."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tests.unit.webseed._webseed_server import http_server, ranged

from .helpers import make_payload, make_torrent, same_files
from .test_cli_stalls import QUICK, run_cli
from .test_webseed_session import NOT_FOUND, served_files

pytestmark = pytest.mark.anyio


async def test_cli_downloads_from_a_web_seed_alone(tmp_path: Path) -> None:
    plain = make_torrent(make_payload(tmp_path / "seed"), version="hybrid")  # (with pad files)
    files = served_files(plain, tmp_path / "seed")
    async with http_server(lambda path, s, e: (ranged(files[path], s, e), True)) as server:
        torrent = dataclasses.replace(plain, web_seeds=(server.url("/pub"),))
        path = tmp_path / "t.torrent"
        path.write_bytes(torrent.to_bytes())
        code, err = await run_cli(str(path), "-o", str(tmp_path / "o"), "--no-trackers", *QUICK)
        assert code == 0, err
        code, err = await run_cli(str(path), "-o", str(tmp_path / "o2"), "--no-trackers", "--no-web-seeds",
                                  *QUICK)
        assert code == 3 and "no peer sources" in err, err
    assert same_files(torrent, tmp_path / "seed", tmp_path / "o") == []
    assert all(p in files for p, _ in server.requests)


async def test_cli_names_the_failing_web_seed(tmp_path: Path) -> None:
    plain = make_torrent(make_payload(tmp_path / "seed"), version="v1")
    async with http_server(lambda path, s, e: (NOT_FOUND, True)) as server:
        torrent = dataclasses.replace(plain, web_seeds=(server.url("/pub/"),))
        path = tmp_path / "t.torrent"
        path.write_bytes(torrent.to_bytes())
        code, err = await run_cli(str(path), "-o", str(tmp_path / "o"), "--no-trackers", *QUICK)
    assert code == 3 and "web seeds fail" in err and "HTTP 404" in err, err


async def test_cli_downloads_from_a_server_that_ignores_range(tmp_path: Path) -> None:
    """Python's own http.server answers every range with 200 and the whole file (as many simple
    hosts do): the web seed takes what it needs from each answer and completes the download."""
    import socket
    import subprocess
    import sys

    import anyio

    payload = make_payload(tmp_path / "www", [("big.bin", 3_000_000), ("d/small.bin", 70_001)])
    plain = make_torrent(payload, version="v1", piece_length=16384)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                               "--directory", str(tmp_path / "www")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        with anyio.fail_after(20):
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1):
                        break
                except OSError:
                    await anyio.sleep(0.05)
        torrent = dataclasses.replace(plain, web_seeds=(f"http://127.0.0.1:{port}/",))
        path = tmp_path / "t.torrent"
        path.write_bytes(torrent.to_bytes())
        code, err = await run_cli(str(path), "-o", str(tmp_path / "o"), "--no-trackers", *QUICK)
    finally:
        server.terminate()
        log = server.communicate(timeout=10)[1].decode()
    assert code == 0, err
    assert same_files(torrent, tmp_path / "www", tmp_path / "o") == []
    gets = [line for line in log.splitlines() if '"GET /' in line]
    # 185 pieces; runs of 16 MiB once the server is known to send whole files: a handful of GETs
    assert 0 < len(gets) <= 10, gets
