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
