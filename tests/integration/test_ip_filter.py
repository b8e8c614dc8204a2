"""The IP filter against real connections on loopback (all of 127.0.0.0/8 is local on Linux): a
peer on 127.0.0.2 is dropped when a list that blocks it is set, never dialed again, and refused
when it dials in, while 127.0.0.1 is still served; a tracker at a blocked address is not asked."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest

from torrent_engine.formats.metainfo import Torrent
from torrent_engine.jobs import JobService
from torrent_engine.net.peer import messages as m
from torrent_engine.net.peer.wire import PeerWire
from torrent_engine.session import connector
from torrent_engine.storage.create import create_torrent

from .fake_seed import IdlePeer
from .helpers import loopback_config, make_payload, make_torrent

pytestmark = pytest.mark.anyio

BLOCKED = "127.0.0.2"


async def _wait(predicate: Callable[[], object], what: str, timeout: float = 20.0) -> None:
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.05)


async def _dial_in(port: int, source: str, torrent: Torrent) -> bytes:
    """Connect to our listen port from ``source``, send a handshake, read what comes back."""
    wire = PeerWire(info_hash=torrent.info_hash, peer_id=b"-XX0002-" + os.urandom(6).hex().encode(),
                    reserved=m.make_reserved(extension=False, fast=False),
                    num_pieces=torrent.num_pieces, piece_size=torrent.piece_size)
    got = b""
    async with await anyio.connect_tcp("127.0.0.1", port, local_host=source) as stream:
        try:
            await stream.send(wire.handshake())
            with anyio.move_on_after(10):
                while len(got) < 68:
                    got += await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
            pass
    return got


async def test_a_peer_in_a_newly_blocked_range_is_dropped_and_refused(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed", (("a.bin", 200_000),)), piece_length=16 * 1024)
    blocked_peer = IdlePeer(torrent, BLOCKED)
    allowed_peer = IdlePeer(torrent, "127.0.0.1")
    blocklist = tmp_path / "lists" / "level1.p2p"
    blocklist.parent.mkdir()
    blocklist.write_text("# test list\nLoopback two:127.0.0.2-127.0.0.2\nbad line here\n")
    async with anyio.create_task_group() as tg:
        await tg.start(blocked_peer.serve)
        await tg.start(allowed_peer.serve)
        async with JobService(loopback_config(encryption="disable"),
                              download_root=tmp_path / "dl", state_dir=tmp_path / "state") as jobs:
            job, _ = await jobs.add(torrent, peers=[(BLOCKED, blocked_peer.port),
                                                    ("127.0.0.1", allowed_peer.port)])
            session = jobs.manager.get(torrent.info_hash)
            assert session is not None

            def connected() -> set[str]:
                assert session is not None
                return {p.host for p in session.peers}

            await _wait(lambda: connected() == {"127.0.0.1", BLOCKED}, "both peers connected")

            await jobs.update_settings(ip_filter_enabled=True, ip_filter_path=str(blocklist))
            await _wait(lambda: blocked_peer.closed == 1, "the blocked peer dropped")
            assert connected() == {"127.0.0.1"}
            status = jobs.blocklist.status()
            assert status["file"]["ranges"] == 1 and status["file"]["bad_lines"] == 1
            assert status["file"]["first_bad"][0]["line"] == 3

            # never dialed again, however many rounds pass
            rounds = session.connector.rounds
            session.add_peers([(BLOCKED, blocked_peer.port)], "pex")
            session.connector.wake()
            await _wait(lambda: session.connector.rounds >= rounds + 3, "three dial rounds")
            assert blocked_peer.accepted == 1

            # dialing in from the blocked address: closed before any handshake; from 127.0.0.1: answered
            port = session.listen_port
            assert await _dial_in(port, BLOCKED, torrent) == b""
            assert jobs.manager.shared.refused_by_filter == 1
            assert len(await _dial_in(port, "127.0.0.1", torrent)) >= 68

            # the filter off: the address may be dialed again
            await jobs.update_settings(ip_filter_enabled=False)
            session.add_peers([(BLOCKED, blocked_peer.port)], "user")
            session.pool.forgive_all()
            session.connector.wake()
            await _wait(lambda: BLOCKED in connected(), "the peer connected again")
            assert job.id
        tg.cancel_scope.cancel()


async def test_banned_addresses_apply_without_the_filter_enabled(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed", (("a.bin", 50_000),)), piece_length=16 * 1024)
    peer = IdlePeer(torrent, BLOCKED)
    async with anyio.create_task_group() as tg:
        await tg.start(peer.serve)
        async with JobService(loopback_config(encryption="disable"),
                              download_root=tmp_path / "dl", state_dir=tmp_path / "state") as jobs:
            await jobs.add(torrent, peers=[(BLOCKED, peer.port)])
            session = jobs.manager.get(torrent.info_hash)
            assert session is not None
            await _wait(lambda: peer.accepted == 1 and session.peers, "connected")
            await jobs.update_settings(banned_ips=[BLOCKED])
            await _wait(lambda: peer.closed == 1, "dropped")
            assert jobs.get_settings().banned_ips == (BLOCKED,)
        tg.cancel_scope.cancel()


async def test_a_tracker_at_a_blocked_address_is_not_asked_with_ip_filter_trackers(tmp_path: Path) -> None:
    asked: list[str] = []

    async def tracker(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            asked.append((await stream.receive()).decode("latin-1").split(" ")[1])
            await stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: 27\r\n\r\nd8:intervali60e5:peers0:e")

    listener = await anyio.create_tcp_listener(local_host=BLOCKED, local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    blocklist = tmp_path / "list.txt"
    blocklist.write_text("127.0.0.2/32\n")
    payload = make_payload(tmp_path / "seed", (("a.bin", 50_000),))
    torrent = create_torrent(payload, piece_length=16 * 1024, trackers=[f"http://{BLOCKED}:{port}/announce"])
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, tracker)
        async with JobService(loopback_config(tracker_enabled=True),
                              download_root=tmp_path / "dl", state_dir=tmp_path / "state") as jobs:
            await jobs.update_settings(ip_filter_enabled=True, ip_filter_path=str(blocklist),
                                       ip_filter_trackers=True)
            job, _ = await jobs.add(torrent)
            await _wait(lambda: any(t.message for t in jobs.get(job.id).trackers), "the tracker refused")
            (shown,) = jobs.get(job.id).trackers
            assert "blocked by the IP filter" in shown.message
            assert asked == []
            await jobs.update_settings(ip_filter_trackers=False)
            await jobs.reannounce(job.id)
            await _wait(lambda: asked, "the tracker asked")
        tg.cancel_scope.cancel()


async def test_a_peer_whose_range_is_blocked_while_it_is_dialed_is_not_kept(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed", (("a.bin", 50_000),)), piece_length=16 * 1024)
    peer = IdlePeer(torrent, BLOCKED)
    async with anyio.create_task_group() as tg:
        await tg.start(peer.serve)
        async with JobService(loopback_config(encryption="disable"),
                              download_root=tmp_path / "dl", state_dir=tmp_path / "state") as jobs:
            real = connector.open_connection

            async def connect_then_block(*args: Any, **kwargs: Any) -> Any:
                link = await real(*args, **kwargs)
                await jobs.update_settings(banned_ips=[BLOCKED])  # (while the dial was under way)
                return link

            monkeypatch.setattr(connector, "open_connection", connect_then_block)
            await jobs.add(torrent, peers=[(BLOCKED, peer.port)])
            session = jobs.manager.get(torrent.info_hash)
            assert session is not None
            await _wait(lambda: peer.closed == 1, "closed")
            assert peer.accepted == 1 and not session.peers
        tg.cancel_scope.cancel()
