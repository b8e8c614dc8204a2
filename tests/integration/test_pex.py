"""Peer exchange (BEP 11): a leecher that knows only one peer learns the others from it."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from torrent_engine.session import Session
from torrent_engine.storage.create import create_torrent

from .helpers import loopback_config, make_payload, make_torrent, same_files

pytestmark = pytest.mark.anyio


async def test_third_peer_learns_the_seeder_through_pex(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed"))
    cfg = loopback_config(stats_interval=0.2)
    slow = loopback_config(upload_rate_limit=150_000)  # B is still leeching when C arrives
    async with Session(torrent, tmp_path / "seed", config=slow) as seeder:
        await seeder.wait_ready()
        async with Session(torrent, tmp_path / "b", config=cfg,
                           peers=[("127.0.0.1", seeder.listen_port)]) as b:
            with anyio.fail_after(30):
                while not b.peers:
                    await anyio.sleep(0.02)
            c = Session(torrent, tmp_path / "c", config=cfg, peers=[("127.0.0.1", b.listen_port)])
            met: set[bytes] = set()  # peer ids C was connected to (either side may have dialed)
            c.events.subscribe("peer.connected", lambda e: met.update(p.link.peer_id for p in c.peers))
            async with c:
                with anyio.fail_after(60):
                    await c.wait_completed()
                assert ("127.0.0.1", seeder.listen_port) in c.pool  # told by B
                assert seeder.shared is not None and seeder.shared.peer_id in met
    assert same_files(torrent, tmp_path / "seed", tmp_path / "c") == []


async def test_private_torrent_sends_and_takes_no_pex(tmp_path: Path) -> None:
    payload = make_payload(tmp_path / "seed")
    torrent = create_torrent(payload, piece_length=32 * 1024, version="v1", private=True)
    cfg = loopback_config(stats_interval=0.2)
    slow = loopback_config(upload_rate_limit=150_000)
    async with Session(torrent, tmp_path / "seed", config=slow) as seeder:
        await seeder.wait_ready()
        async with Session(torrent, tmp_path / "b", config=cfg,
                           peers=[("127.0.0.1", seeder.listen_port)]) as b:
            with anyio.fail_after(30):
                while not b.peers:
                    await anyio.sleep(0.02)
            async with Session(torrent, tmp_path / "c", config=cfg,
                               peers=[("127.0.0.1", b.listen_port)]) as c:
                with anyio.fail_after(60):
                    await c.wait_completed()
                assert all(p.ut_pex == 0 for p in c.peers + b.peers)
                assert ("127.0.0.1", seeder.listen_port) not in c.pool
