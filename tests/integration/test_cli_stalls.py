"""A download that cannot progress says why and gives up after --stall-timeout with exit 3,
for each way a swarm can fail: no peer source, nobody reachable, encryption refused, every peer
banned, nobody has the missing pieces, failing trackers."""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from typing import cast

import anyio
import pytest

from torrent_engine.formats.metainfo import Torrent
from torrent_engine.session import Session

from .helpers import loopback_config, make_payload, make_torrent
from .test_bad_peers import FakePeer

pytestmark = pytest.mark.anyio

CLI = [sys.executable, "-m", "torrent_engine", "download"]
QUICK = ["--listen-host", "127.0.0.1", "--no-dht", "--no-port-mapping",
         "--no-lsd", "--no-state", "--stall-timeout", "3"]
FILES = (("a.bin", 200_000), ("b.bin", 200_000))


async def run_cli(*args: str) -> tuple[int, str]:
    with anyio.fail_after(90):
        result = await anyio.run_process([*CLI, *args], check=False)
    return result.returncode, result.stderr.decode()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def torrent_file(tmp_path: Path, **kw: object) -> tuple[Path, object]:
    torrent = make_torrent(make_payload(tmp_path / "seed", FILES), piece_length=16384, **kw)  # type: ignore[arg-type]
    path = tmp_path / "t.torrent"
    path.write_bytes(torrent.to_bytes())
    return path, torrent


async def test_no_peer_source_gives_up_at_once(tmp_path: Path) -> None:
    """Nothing can bring a peer: waiting out a long --stall-timeout would change nothing."""
    path, _ = torrent_file(tmp_path)
    quick = [*QUICK[:-1], "600"]
    code, err = await run_cli(str(path), "-o", str(tmp_path / "o"), "--no-trackers", *quick)
    assert code == 3 and "gave up: no peer sources: no tracker" in err, err
    assert "nothing to wait for" in err, err


async def test_the_only_peer_is_unreachable(tmp_path: Path) -> None:
    path, _ = torrent_file(tmp_path)
    code, err = await run_cli(str(path), "-o", str(tmp_path / "o"), "--no-trackers",
                              "--peer", f"127.0.0.1:{closed_port()}", *QUICK)
    assert code == 3 and "1 peers known, none reachable" in err, err


async def test_every_peer_refused_for_encryption(tmp_path: Path) -> None:
    path, torrent = torrent_file(tmp_path)
    async with Session(torrent, tmp_path / "seed", config=loopback_config(encryption="disable")) as seeder:
        await seeder.wait_ready()
        code, err = await run_cli(str(path), "-o", str(tmp_path / "o"), "--no-trackers", "--encryption",
                                  "require", "--peer", f"127.0.0.1:{seeder.listen_port}", *QUICK)
    assert code == 3 and "refused for encryption" in err, err


async def test_the_only_seeder_is_banned(tmp_path: Path) -> None:
    path, torrent = torrent_file(tmp_path)
    # (a peer that sends bytes failing every hash check: our own seeder no longer serves data
    # changed under it, so a peer of the tests' making lies)
    liar = FakePeer(cast(Torrent, torrent), "liar")
    async with anyio.create_task_group() as tg:
        await tg.start(liar.serve)
        code, err = await run_cli(str(path), "-o", str(tmp_path / "o"), "--no-trackers",
                                  "--encryption", "disable",  # (the liar speaks plaintext alone)
                                  "--peer", f"127.0.0.1:{liar.port}", *QUICK)
        tg.cancel_scope.cancel()
    assert code == 3 and "known peers are banned" in err, err


async def test_connected_but_nobody_has_the_missing_pieces(tmp_path: Path) -> None:
    path, torrent = torrent_file(tmp_path, version="v1")
    (tmp_path / "seed" / "payload" / "b.bin").unlink()  # the seeder has only the first file
    async with Session(torrent, tmp_path / "seed", config=loopback_config()) as partial:
        await partial.wait_ready()
        code, err = await run_cli(str(path), "-o", str(tmp_path / "o"), "--no-trackers",
                                  "--peer", f"127.0.0.1:{partial.listen_port}", *QUICK)
    assert code == 3 and "1 peers connected, none has the missing pieces" in err, err


async def test_failing_trackers(tmp_path: Path) -> None:
    path, torrent = torrent_file(tmp_path)
    magnet = torrent.magnet_uri() + f"&tr=http%3A%2F%2F127.0.0.1%3A{closed_port()}%2Fannounce"
    code, err = await run_cli(magnet, "-o", str(tmp_path / "o"), *QUICK)
    assert code == 3 and "tracker errors: http://127.0.0.1:" in err, err


async def test_zero_waits_and_the_stall_shows_in_the_progress_line(tmp_path: Path) -> None:
    path, _ = torrent_file(tmp_path)
    args = [*CLI, str(path), "-o", str(tmp_path / "o"), "--no-trackers", "--listen-host", "127.0.0.1",
            "--no-dht", "--no-port-mapping", "--no-lsd", "--no-state", "--stall-timeout", "0"]
    async with await anyio.open_process(args) as proc:
        assert proc.stderr is not None
        err = b""
        with anyio.move_on_after(45):  # stall_after is 30 s with --stall-timeout 0 (wait forever)
            while b"stalled: no peer sources" not in err:
                err += await proc.stderr.receive()
        proc.terminate()
        await proc.wait()
    assert b"stalled: no peer sources" in err and b"gave up" not in err
