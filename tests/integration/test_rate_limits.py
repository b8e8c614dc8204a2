"""Bandwidth limits (Config.upload_rate_limit / download_rate_limit) hold for a real transfer.

Only lower bounds on time are checked: a limited transfer may be slowed by a busy machine, but
it can never finish faster than its limit allows. Each limit is a one-second token bucket, so
the bound is (size - one second of burst) / rate.
"""

from __future__ import annotations

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
