"""``torrent-engine stream``: the URL it prints serves the file with ranges while it downloads,
it says what it waits for, a --player gets the URL, and Ctrl-C stops it keeping what it got."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import anyio
import httpx
import pytest

from torrent_engine.session import Session

from .helpers import loopback_config, make_payload, make_torrent

pytestmark = pytest.mark.anyio

CLI = [sys.executable, "-m", "torrent_engine"]
FILES = (("small.txt", 5_000), ("movie.mkv", 3_000_000))
NET = ["--listen-host", "127.0.0.1", "--no-trackers", "--no-dht", "--no-port-mapping", "--no-lsd"]


async def test_stream_serves_ranges_and_ctrl_c_keeps_the_data(tmp_path: Path) -> None:
    payload = make_payload(tmp_path / "seed", FILES)
    torrent = make_torrent(payload, piece_length=32 * 1024, version="v1")
    movie = (payload / "movie.mkv").read_bytes()
    torrent_file = tmp_path / "t.torrent"
    torrent_file.write_bytes(torrent.to_bytes())
    state = tmp_path / "state"
    seed_cfg = loopback_config(upload_rate_limit=1_000_000)
    async with Session(torrent, tmp_path / "seed", config=seed_cfg) as seeder:
        await seeder.wait_ready()
        out = b""
        err = b""
        async with await anyio.open_process(
                [*CLI, "stream", str(torrent_file), "-o", str(tmp_path / "out"), "--state-dir", str(state),
                 "--peer", f"127.0.0.1:{seeder.listen_port}", *NET]) as proc:
            assert proc.stdout is not None and proc.stderr is not None
            with anyio.fail_after(60):
                while b"\n" not in out:
                    out += await proc.stdout.receive()
            url = out.decode().strip()
            assert url.startswith("http://127.0.0.1:") and url.endswith("/movie.mkv")  # the largest file
            async with httpx.AsyncClient(timeout=60) as client:
                r = await client.get(url, headers={"Range": "bytes=2400000-2499999"})
                assert r.status_code == 206 and r.content == movie[2_400_000:2_500_000]
                assert r.headers["content-type"] == "video/x-matroska"
                r = await client.get(url, headers={"Range": "bytes=-10"})
                assert r.content == movie[-10:]
                wrong = url.rsplit("/", 2)[0] + "/not-the-secret/movie.mkv"
                assert (await client.get(wrong)).status_code == 404
            proc.send_signal(signal.SIGINT)
            with anyio.fail_after(60):
                async for chunk in proc.stderr:
                    err += chunk
                code = await proc.wait()
    text = err.decode()
    assert "streaming payload/movie.mkv" in text
    assert "stopped:" in text and "pieces verified and kept" in text, text
    assert "Traceback" not in text
    assert code in (0, 130), text
    assert (state / "torrents" / f"{torrent.info_hash.hex()}.resume").exists()


async def test_stream_waits_out_loud_and_starts_the_player(tmp_path: Path) -> None:
    payload = make_payload(tmp_path / "seed", FILES)
    torrent = make_torrent(payload, piece_length=256 * 1024, version="v1")
    player = tmp_path / "player.py"
    got = tmp_path / "got.bin"
    started = tmp_path / "player-started"
    player.write_text(
        "import sys, httpx\n"
        f"open({str(started)!r}, 'w').close()\n"
        f"r = httpx.get(sys.argv[1], headers={{'Range': 'bytes=1500000-1500099'}}, timeout=60)\n"
        f"open({str(got)!r}, 'wb').write(r.content)\n")
    # a magnet; a seeder that all but holds the pieces back (8 kB/s: 30 s a piece) until the
    # player starts, so that the piece it reads cannot be there already (the picker's choice before
    # a read is random, and the player may take seconds to start); then a 256 KiB piece takes
    # seconds to come (100 kB/s, one second's burst), and the stream says so meanwhile
    async with Session(torrent, tmp_path / "seed", config=loopback_config()) as seeder:
        seeder.set_rate_limits(upload=8_000)
        await seeder.wait_ready()

        async def let_go_when_the_player_starts() -> None:
            while not started.exists():
                await anyio.sleep(0.02)
            seeder.set_rate_limits(upload=100_000)

        with anyio.fail_after(90):
            async with anyio.create_task_group() as tg:
                tg.start_soon(let_go_when_the_player_starts)
                result = await anyio.run_process(
                    [*CLI, "stream", torrent.magnet_uri(), "--file", "*.mkv", "-o", str(tmp_path / "out"),
                     "--no-state", "--peer", f"127.0.0.1:{seeder.listen_port}",
                     "--player", f"{sys.executable} {player}", *NET], check=False)
                tg.cancel_scope.cancel()
    text = result.stderr.decode()
    assert result.returncode == 0, text
    assert "streaming payload/movie.mkv" in text and "the player exited (0)" in text
    piece = (5_000 + 1_500_000) // (256 * 1024)  # movie.mkv follows small.txt
    assert f"waiting for piece {piece} (1 of 1 connected peers have it" in text, text
    assert got.read_bytes() == (payload / "movie.mkv").read_bytes()[1_500_000:1_500_100]


async def test_stream_bad_file_is_an_error(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed", FILES), version="v1")
    torrent_file = tmp_path / "t.torrent"
    torrent_file.write_bytes(torrent.to_bytes())
    result = await anyio.run_process([*CLI, "stream", str(torrent_file), "--file", "7", "--no-state", *NET],
                                     check=False)
    assert result.returncode == 1
    assert "file index 7 is out of range" in result.stderr.decode()
