"""Bandwidth limits (Config.upload_rate_limit / download_rate_limit) hold for a real transfer.

The short tests check lower bounds on time: a limited transfer may be slowed by a busy machine,
but it can never finish faster than its limit allows. Each limit is a one-second token bucket,
so the bound is (size - one second of burst) / rate. The long ones hold a limit for 20 s and
measure the rate within 10 % of it, both ways (256 KiB/s asks little of even a loaded machine).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import anyio
import pytest

from tests.integration.helpers import loopback_config, make_payload, make_torrent, same_files
from torrent_engine.session import Session

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

SIZE = 1024 * 1024
RATE = 256 * 1024
FLOOR = (SIZE - RATE) / RATE  # 3 s: what the limit allows at the very best


async def _transfer(tmp_path: Path, *, seeder_limit: int, leecher_limit: int) -> float:
    torrent = make_torrent(make_payload(tmp_path / "seed", [("one.bin", SIZE)]), piece_length=64 * 1024)
    seed_cfg = loopback_config(upload_rate_limit=seeder_limit)
    leech_cfg = loopback_config(download_rate_limit=leecher_limit)
    async with Session(torrent, tmp_path / "seed", config=seed_cfg) as seeder:
        await seeder.wait_ready()
        start = time.monotonic()
        peers = [("127.0.0.1", seeder.listen_port)]
        async with Session(torrent, tmp_path / "leech", config=leech_cfg, peers=peers) as leecher:
            with anyio.fail_after(60):
                await leecher.wait_completed()
            elapsed = time.monotonic() - start
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []
    return elapsed


async def test_upload_limit_of_the_seeder_holds(tmp_path: Path) -> None:
    assert await _transfer(tmp_path, seeder_limit=RATE, leecher_limit=0) >= FLOOR * 0.95


async def test_download_limit_of_the_leecher_holds(tmp_path: Path) -> None:
    assert await _transfer(tmp_path, seeder_limit=0, leecher_limit=RATE) >= FLOOR * 0.95


@pytest.mark.parametrize("side", ["download", "upload"])
async def test_a_torrents_own_limit_holds(tmp_path: Path, side: str) -> None:
    """Session.set_rate_limits: one torrent's limit, with no shared limit at all."""
    torrent = make_torrent(make_payload(tmp_path / "seed", [("one.bin", SIZE)]), piece_length=64 * 1024)
    async with Session(torrent, tmp_path / "seed", config=loopback_config()) as seeder:
        await seeder.wait_ready()
        if side == "upload":
            seeder.set_rate_limits(upload=RATE)
        start = time.monotonic()
        async with Session(torrent, tmp_path / "leech", config=loopback_config(),
                           peers=[("127.0.0.1", seeder.listen_port)]) as leecher:
            if side == "download":
                leecher.set_rate_limits(download=RATE)
            with anyio.fail_after(60):
                await leecher.wait_completed()
            elapsed = time.monotonic() - start
    assert elapsed >= FLOOR * 0.95
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []


async def test_a_torrents_limit_is_checked(tmp_path: Path) -> None:
    from torrent_engine.errors import SessionError

    torrent = make_torrent(make_payload(tmp_path / "seed", [("one.bin", 1000)]))
    session = Session(torrent, tmp_path / "seed", config=loopback_config())
    for bad in (-1, 1.5, True, "1M"):
        with pytest.raises(SessionError, match="whole bytes per second"):
            session.set_rate_limits(download=bad)  # type: ignore[arg-type]
    session.set_rate_limits(download=1000)
    assert session.download_limit.rate == 1000 and session.upload_limit.unlimited


STEADY = 20.0  # seconds over which the rate is measured, after the first second's burst


def steady_rate(samples: list[tuple[float, int]]) -> tuple[float, float]:
    """Bytes per second and the span measured, from (time, bytes so far) samples: from the first
    sample a second after the first byte (the bucket's burst is spent by then) to the last one
    before the end."""
    first = next(t for t, n in samples if n > 0)
    start = next((t, n) for t, n in samples if t >= first + 1.0)
    total = samples[-1][1]
    end = [(t, n) for t, n in samples if n < total][-1]
    return (end[1] - start[1]) / (end[0] - start[0]), end[0] - start[0]


async def test_cli_download_limit_holds_within_ten_percent_over_twenty_seconds(tmp_path: Path) -> None:
    size = int(RATE * (STEADY + 3))
    torrent = make_torrent(make_payload(tmp_path / "seed", [("one.bin", size)]), piece_length=64 * 1024)
    (tmp_path / "t.torrent").write_bytes(torrent.to_bytes())
    async with Session(torrent, tmp_path / "seed", config=loopback_config()) as seeder:
        await seeder.wait_ready()
        with anyio.fail_after(120):
            result = await anyio.run_process(
                [sys.executable, "-m", "torrent_engine", "download", str(tmp_path / "t.torrent"),
                 "-o", str(tmp_path / "leech"), "--peer", f"127.0.0.1:{seeder.listen_port}",
                 "--download-limit", "256K", "--json", "--no-state", "--listen-host", "127.0.0.1",
                 "--no-dht", "--no-trackers", "--no-port-mapping", "--no-lsd"],
                check=False, env={**os.environ})
    assert result.returncode == 0, result.stderr.decode()
    events = [json.loads(line) for line in result.stdout.decode().splitlines()]
    samples = [(e["time"], e["downloaded"]) for e in events if e["event"] == "progress"]
    rate, span = steady_rate(samples)
    assert span >= STEADY - 2, samples
    assert 0.9 * RATE <= rate <= 1.1 * RATE, (rate / RATE, samples)
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []


async def test_upload_limit_holds_within_ten_percent_over_twenty_seconds(tmp_path: Path) -> None:
    size = int(RATE * (STEADY + 3))
    torrent = make_torrent(make_payload(tmp_path / "seed", [("one.bin", size)]), piece_length=64 * 1024)
    samples: list[tuple[float, int]] = []
    async with Session(torrent, tmp_path / "seed", config=loopback_config(upload_rate_limit=RATE)) as seeder:
        await seeder.wait_ready()
        async with Session(torrent, tmp_path / "leech", config=loopback_config(),
                           peers=[("127.0.0.1", seeder.listen_port)]) as leecher:
            with anyio.fail_after(120):
                while leecher.status().progress < 1.0:
                    samples.append((time.monotonic(), seeder.uploaded))
                    await anyio.sleep(0.25)
            samples.append((time.monotonic(), seeder.uploaded))
    rate, span = steady_rate(samples)
    assert span >= STEADY - 2, samples
    assert 0.9 * RATE <= rate <= 1.1 * RATE, (rate / RATE, samples)
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []
