"""Which transport carries each peer, as the session, its events and the job service show it."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import anyio
import pytest

from torrent_engine.events import PeerConnected
from torrent_engine.jobs import JobService
from torrent_engine.session import Session

from .helpers import loopback_config, make_payload, make_torrent

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("transport", ["utp", "tcp", "any", "tcp_first"])
async def test_peer_status_and_events_name_the_transport(tmp_path: Path, transport: str) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed", [("one.bin", 600_000)]), piece_length=16384)
    connected: list[PeerConnected] = []
    # the seeder accepts both; the leecher dials only over ``transport``; a slow seeder keeps
    # the link up long enough to be looked at
    slow = loopback_config(upload_rate_limit=100_000)
    async with Session(torrent, tmp_path / "seed", config=slow) as seeder:
        seeder.events.subscribe(PeerConnected, connected.append)
        await seeder.wait_ready()
        # ("any" prefers uTP: with a long head start, TCP is never dialed; "tcp_first" the other way)
        leech = loopback_config(transport=transport, utp_head_start=20.0)
        async with Session(torrent, tmp_path / "leech", config=leech,
                           peers=[("127.0.0.1", seeder.listen_port)]) as leecher:
            leecher.events.subscribe(PeerConnected, connected.append)
            with anyio.fail_after(30):
                while len(connected) < 2 or not leecher.peers or not seeder.peers:
                    await anyio.sleep(0.02)
            used = {"any": "utp", "tcp_first": "tcp"}.get(transport, transport)
            assert [p.transport for p in leecher.peers] == [used]
            assert [p.transport for p in seeder.peers] == [used]
    assert sorted((e.incoming, e.transport) for e in connected) == [(False, used), (True, used)]


async def test_a_peer_whose_udp_port_swallows_utp_is_dialed_over_tcp_soon(tmp_path: Path) -> None:
    """The peer speaks TCP only and its UDP port takes datagrams without answering (a DHT-only
    socket, a firewall that drops): TCP joins the dial after ``utp_head_start`` instead of
    after the uTP connect timeout, and the peer is remembered as silent over uTP."""
    torrent = make_torrent(make_payload(tmp_path / "seed", [("one.bin", 600_000)]), piece_length=16384)
    async with Session(torrent, tmp_path / "seed", config=loopback_config(transport="tcp")) as seeder:
        await seeder.wait_ready()
        port = seeder.listen_port
        sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sink.bind(("127.0.0.1", port))  # reads nothing, answers nothing
        try:
            connected: list[tuple[float, str]] = []
            # uTP alone gives up only after its SYN resends (1 + 2 + 4 s) with these timeouts
            cfg = loopback_config(transport="any", connect_timeout=120.0, utp_connect_timeout=120.0,
                                  utp_head_start=0.2)
            peers = [("127.0.0.1", port)]
            started = time.monotonic()
            async with Session(torrent, tmp_path / "leech", config=cfg, peers=peers) as leecher:
                def seen(e: PeerConnected) -> None:
                    connected.append((time.monotonic() - started, e.transport))

                leecher.events.subscribe(PeerConnected, seen)
                with anyio.fail_after(60):
                    await leecher.wait_completed()
                assert [transport for _, transport in connected] == ["tcp"]
                assert connected[0][0] < 5.0, "TCP waited for the uTP dial to give up"
                utp = leecher.shared.utp
                assert utp is not None and utp.is_silent("127.0.0.1", port)
        finally:
            sink.close()


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
