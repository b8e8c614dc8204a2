"""The user-facing entry points: ``torrent-engine download``, ``torrent-engine demo``, ``te.download``."""

from __future__ import annotations

import functools
import http.server
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import anyio
import pytest

import torrent_engine as te
from torrent_engine.session import Session

from .helpers import loopback_config, make_payload, make_torrent, same_files

pytestmark = pytest.mark.anyio

CLI = [sys.executable, "-m", "torrent_engine"]


async def test_cli_download_from_our_seeder_exits_0(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed"))
    torrent_file = tmp_path / "t.torrent"
    torrent_file.write_bytes(torrent.to_bytes())
    async with Session(torrent, tmp_path / "seed", config=loopback_config()) as seeder:
        await seeder.wait_ready()
        with anyio.fail_after(120):
            result = await anyio.run_process(
                [*CLI, "download", str(torrent_file), "-o", str(tmp_path / "out"),
                 "--listen-host", "127.0.0.1", "--peer", f"127.0.0.1:{seeder.listen_port}", "--no-seed",
                 "--encryption", "require", "--no-dht", "--no-port-mapping", "--no-lsd", "--no-state"],
                check=False)
    stderr = result.stderr.decode()
    assert result.returncode == 0, stderr
    assert "completed payload" in stderr and "100.00%" in stderr
    assert same_files(torrent, tmp_path / "seed", tmp_path / "out") == []


async def test_cli_download_ctrl_c_is_clean(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed"))
    torrent_file = tmp_path / "t.torrent"
    torrent_file.write_bytes(torrent.to_bytes())
    # no peer at all: the download cannot finish; SIGINT must stop it with 130 and no traceback
    err = b""
    async with await anyio.open_process(
            [*CLI, "download", str(torrent_file), "-o", str(tmp_path / "out"), "--listen-host", "127.0.0.1",
             "--no-trackers", "--no-dht", "--no-port-mapping",
             "--no-lsd", "--state-dir", str(tmp_path / "state")],
    ) as proc:
        assert proc.stderr is not None
        with anyio.fail_after(60):
            while b"%" not in err:  # the first progress line: the engine runs, signals are handled
                err += await proc.stderr.receive()
            proc.send_signal(signal.SIGINT)
            async for chunk in proc.stderr:
                err += chunk
            code = await proc.wait()
    assert code == 130, err.decode()
    assert b"Traceback" not in err and b"stopped" in err
    assert b"run the same command again to continue" in err


def test_cli_download_bad_peer_argument(tmp_path: Path) -> None:
    result = subprocess.run([*CLI, "download", "x.torrent", "--peer", "nonsense"], capture_output=True)
    assert result.returncode == 2 and b"HOST:PORT" in result.stderr


def test_cli_download_missing_file_is_one_line_error(tmp_path: Path) -> None:
    result = subprocess.run([*CLI, "download", str(tmp_path / "absent.torrent"), "--no-dht",
                             "--no-port-mapping", "--no-lsd", "--no-state"],
                            capture_output=True)
    assert result.returncode == 1
    assert b"Traceback" not in result.stderr and b"error" in result.stderr


def test_cli_download_of_several_names_the_one_that_is_not_valid(tmp_path: Path) -> None:
    """(It said "unexpected byte 'g' (at byte 0)": of which file, it did not say.)"""
    good = tmp_path / "good.torrent"
    good.write_bytes(make_torrent(make_payload(tmp_path / "p", [("a.bin", 1000)])).to_bytes())
    (tmp_path / "bad.torrent").write_bytes(b"garbage")
    result = subprocess.run([*CLI, "download", "good.torrent", "bad.torrent", "--no-dht", "--no-port-mapping",
                             "--no-lsd", "--no-state", "-o", str(tmp_path / "out")],
                            capture_output=True, cwd=tmp_path, timeout=60)
    assert result.returncode == 1
    assert result.stderr.decode().splitlines() == [
        "torrent-engine download: error: bad.torrent: unexpected byte 'g' (at byte 0)"]


def test_cli_download_save_torrent_where_it_cannot_be_is_said_before_it_starts(tmp_path: Path) -> None:
    """(A magnet's .torrent was written once its metadata came: into a folder that is not there,
    "[Errno 2] No such file or directory: '…/x.torrent.part'", after the download.)"""
    magnet = "magnet:?xt=urn:btih:" + "ab" * 20
    result = subprocess.run([*CLI, "download", magnet, "--no-dht", "--no-port-mapping", "--no-lsd",
                             "--no-state", "-o", str(tmp_path / "out"),
                             "--save-torrent", str(tmp_path / "nowhere" / "x.torrent")],
                            capture_output=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.decode().splitlines() == [
        f"torrent-engine download: error: --save-torrent: cannot write {tmp_path / 'nowhere' / 'x.torrent'}: "
        f"the folder {tmp_path / 'nowhere'} does not exist"]


@pytest.mark.parametrize(("transport", "shown"), [(None, "uTP|TCP"), ("tcp", "TCP"), ("utp", "uTP")])
def test_cli_demo_small_payload(tmp_path: Path, transport: str | None, shown: str) -> None:
    chosen = ["--transport", transport] if transport else []  # (default any: uTP, or TCP if it wins the race)
    result = subprocess.run([*CLI, "demo", "--size", "8", "--piece-length", "64", "--keep", str(tmp_path),
                             *chosen], capture_output=True, timeout=120)
    err = result.stderr.decode()
    assert result.returncode == 0, err
    assert "files identical: yes" in err and "MB/s" in err
    assert re.search(f"over ({shown}) in", err), err
    a, b = tmp_path / "seeder" / "demo" / "payload.bin", tmp_path / "leecher" / "demo" / "payload.bin"
    assert a.read_bytes() == b.read_bytes()


async def test_te_download_blocking_convenience(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed"))
    async with Session(torrent, tmp_path / "seed", config=loopback_config()) as seeder:
        await seeder.wait_ready()
        port = seeder.listen_port
        summary = await anyio.to_thread.run_sync(
            lambda: te.download(torrent, tmp_path / "dl", config=loopback_config(),
                                peers=(("127.0.0.1", port),), timeout=60))
    assert summary.size == torrent.payload_size and summary.hash_failures == 0
    assert summary.downloaded >= torrent.payload_size and summary.rate > 0
    assert same_files(torrent, tmp_path / "seed", tmp_path / "dl") == []


async def test_cli_download_magnet_link(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed"))
    async with Session(torrent, tmp_path / "seed", config=loopback_config()) as seeder:
        await seeder.wait_ready()
        with anyio.fail_after(120):
            result = await anyio.run_process(
                [*CLI, "download", torrent.magnet_uri(), "-o", str(tmp_path / "out"), "--listen-host",
                 "127.0.0.1", "--peer", f"127.0.0.1:{seeder.listen_port}", "--no-dht", "--no-port-mapping",
                 "--no-lsd",
                 "--no-state"],
                check=False)
    assert result.returncode == 0, result.stderr.decode()
    assert same_files(torrent, tmp_path / "seed", tmp_path / "out") == []


async def test_cli_download_magnet_through_the_dht_alone(tmp_path: Path) -> None:
    from torrent_engine.net.dht.node import DhtNode

    torrent = make_torrent(make_payload(tmp_path / "seed"))
    router = DhtNode(bind=("127.0.0.1", 0), enforce_bep42=False)
    async with anyio.create_task_group() as tg:
        await tg.start(router.run)
        boot = (("127.0.0.1", router.port),)
        cfg = loopback_config(dht_enabled=True, dht_bootstrap=boot, enforce_bep42=False, dht_interval=1.0)
        async with Session(torrent, tmp_path / "seed", config=cfg) as seeder:
            await seeder.wait_ready()
            with anyio.fail_after(120):  # no --peer, no tracker: the magnet's info-hash and the DHT
                result = await anyio.run_process(
                    [*CLI, "download", torrent.magnet_uri(), "-o", str(tmp_path / "out"), "--listen-host",
                     "127.0.0.1", "--dht", "--dht-bootstrap", f"127.0.0.1:{router.port}", "--no-state",
                     "--no-port-mapping", "--no-lsd"],
                    check=False)
        tg.cancel_scope.cancel()
    assert result.returncode == 0, result.stderr.decode()
    assert same_files(torrent, tmp_path / "seed", tmp_path / "out") == []


@pytest.mark.parametrize("where", ["a-file", "x" * 300])
def test_cli_download_unusable_output_is_one_line_said_once(tmp_path: Path, where: str) -> None:
    """``-o`` naming a file, or a name too long for the file system: one error line, at once."""
    payload = make_payload(tmp_path / "seed", [("a.bin", 50_000)])
    (tmp_path / "t.torrent").write_bytes(make_torrent(payload).to_bytes())
    (tmp_path / "a-file").write_bytes(b"")
    result = subprocess.run([*CLI, "download", str(tmp_path / "t.torrent"), "-o", str(tmp_path / where),
                             "--no-dht", "--no-state", "--no-port-mapping",
                             "--no-lsd", "--listen-host", "127.0.0.1",
                             "--stall-timeout", "0"], capture_output=True, timeout=60)
    err = result.stderr.decode()
    assert result.returncode == 1 and len(err.strip().splitlines()) == 1, err
    assert err.startswith("torrent-engine download: error: -o ") and "WARNING" not in err, err


def test_cli_info_of_a_url(tmp_path: Path) -> None:
    """``info`` takes the URL of a .torrent, as ``download`` does."""
    payload = make_payload(tmp_path / "seed", [("a.bin", 50_000)], name="from-url")
    (tmp_path / "t.torrent").write_bytes(make_torrent(payload).to_bytes())
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/t.torrent"
        result = subprocess.run([*CLI, "info", url], capture_output=True, timeout=60)
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == 0, result.stderr.decode()
    assert "from-url" in result.stdout.decode()


def test_cli_demo_quiet_prints_only_its_result(tmp_path: Path) -> None:
    result = subprocess.run([*CLI, "demo", "-q", "--size", "2", "--piece-length", "64",
                             "--keep", str(tmp_path)], capture_output=True, timeout=120)
    err = result.stderr.decode()
    assert result.returncode == 0, err
    assert len(err.strip().splitlines()) == 1 and "files identical: yes" in err, err


async def test_cli_download_a_folder_where_a_file_goes_is_one_error(tmp_path: Path) -> None:
    """The storage fails mid-run: one error line, no traceback of a late write callback."""
    payload = make_payload(tmp_path / "seed", [("a.bin", 300_000)])
    torrent = make_torrent(payload, version="v1")
    (tmp_path / "t.torrent").write_bytes(torrent.to_bytes())
    (tmp_path / "o" / payload.name / "a.bin").mkdir(parents=True)
    async with Session(torrent, tmp_path / "seed", config=loopback_config()) as seeder:
        await seeder.wait_ready()
        with anyio.fail_after(60):
            result = await anyio.run_process(
                [*CLI, "download", str(tmp_path / "t.torrent"), "-o", str(tmp_path / "o"), "--no-dht",
                 "--no-state", "--no-port-mapping", "--no-lsd", "--listen-host", "127.0.0.1", "--no-trackers",
                 "--peer", f"127.0.0.1:{seeder.listen_port}"], check=False)
    err = result.stderr.decode()
    assert result.returncode == 1, err
    assert "Traceback" not in err and "not active" not in err and "WARNING" not in err, err
    assert err.count("Is a directory") == 1, err
