"""Which transport carries each peer, as the session, its events and the job service show it."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from torrent_engine.events import PeerConnected
from torrent_engine.jobs import JobService
from torrent_engine.session import Session

from .helpers import loopback_config, make_payload, make_torrent

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("transport", ["utp", "tcp"])
async def test_peer_status_and_events_name_the_transport(tmp_path: Path, transport: str) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed", [("one.bin", 600_000)]), piece_length=16384)
    connected: list[PeerConnected] = []
    # the seeder accepts both; the leecher dials only over ``transport``; a slow seeder keeps
    # the link up long enough to be looked at
    slow = loopback_config(upload_rate_limit=100_000)
    async with Session(torrent, tmp_path / "seed", config=slow) as seeder:
        seeder.events.subscribe(PeerConnected, connected.append)
        await seeder.wait_ready()
        async with Session(torrent, tmp_path / "leech", config=loopback_config(transport=transport),
                           peers=[("127.0.0.1", seeder.listen_port)]) as leecher:
            leecher.events.subscribe(PeerConnected, connected.append)
            with anyio.fail_after(30):
                while len(connected) < 2 or not leecher.peers or not seeder.peers:
                    await anyio.sleep(0.02)
            assert [p.transport for p in leecher.peers] == [transport]
            assert [p.transport for p in seeder.peers] == [transport]
    assert sorted((e.incoming, e.transport) for e in connected) == [(False, transport), (True, transport)]


async def test_a_jobs_peers_name_their_transport(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed", [("one.bin", 600_000)]), piece_length=16384)
    slow = loopback_config(upload_rate_limit=100_000)
    async with Session(torrent, tmp_path / "seed", config=slow) as seeder:
        await seeder.wait_ready()
        async with JobService(loopback_config(seed=False, transport="utp"), download_root=tmp_path / "dl",
                              state_dir=tmp_path / "state") as jobs:
            job, _ = await jobs.add(torrent.to_bytes(), peers=[("127.0.0.1", seeder.listen_port)])
            with anyio.fail_after(30):
                while not jobs.get(job.id).peer_list:
                    await anyio.sleep(0.05)
            job = jobs.get(job.id)
    assert [p.transport for p in job.peer_list] == ["utp"]
    listed = job.to_json(detail=True)["peer_list"]
    assert isinstance(listed, list) and listed[0]["transport"] == "utp"
