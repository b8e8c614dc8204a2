"""Misbehaving peers of our own making next to an honest seeder: the download still completes.

``FakePeer`` has every piece, unchokes at once and answers requests according to its
``behaviour``.
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
from pathlib import Path

import anyio
import anyio.abc
import pytest

from torrent_engine import events as ev
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.net.peer import messages as m
from torrent_engine.net.peer.wire import PeerWire
from torrent_engine.session import Session
from torrent_engine.session.state_table import State

from .fake_seed import FakeSeed
from .helpers import loopback_config, make_payload, make_torrent, same_files

pytestmark = pytest.mark.anyio

FILES = (("a.bin", 600_001), ("b.bin", 150_000))


class FakePeer(FakeSeed):
    """Answers requests according to its ``behaviour``."""

    def __init__(self, torrent: Torrent, behaviour: str) -> None:
        super().__init__(torrent)
        self.behaviour = behaviour
        self.requests = 0

    async def on_message(self, msg: m.Message, wire: PeerWire, stream: anyio.abc.SocketStream) -> None:
        if not isinstance(msg, m.Request):
            return
        self.requests += 1
        if self.behaviour == "liar":
            await stream.send(wire.send(m.Piece(msg.index, msg.begin, os.urandom(msg.length))))
        elif self.behaviour == "oversized":
            body = os.urandom(1 << 20)  # a 1 MiB "block": longer than any message may be
            await stream.send(struct.pack(">IBII", 9 + len(body), 7, msg.index, msg.begin) + body)
        elif self.behaviour == "staller":
            pass  # accepts requests, never answers


@pytest.mark.parametrize(("behaviour", "buffer"), [
    ("liar", 64 << 20), ("liar", 0), ("oversized", 64 << 20), ("staller", 64 << 20)])
async def test_download_completes_despite_bad_peer(tmp_path: Path, behaviour: str, buffer: int) -> None:
    """``buffer`` 0: every piece is written to disk block by block and hashed from there."""
    torrent = make_torrent(make_payload(tmp_path / "seed", FILES), piece_length=16 * 1024)
    bad = FakePeer(torrent, behaviour)
    seen: list[ev.Event] = []
    async with anyio.create_task_group() as tg:
        await tg.start(bad.serve)
        seed_cfg = loopback_config(upload_rate_limit=1_500_000)  # the bad peer gets its share of requests
        async with Session(torrent, tmp_path / "seed", config=seed_cfg) as seeder:
            await seeder.wait_ready()
            cfg = loopback_config(encryption="disable", request_timeout=1.0, snub_timeout=1.5,
                                  piece_buffer_bytes=buffer)
            # the bad peer is dialed first, so it is asked for pieces before the honest seeder
            leecher = Session(torrent, tmp_path / "leech", config=cfg,
                              peers=[("127.0.0.1", bad.port), ("127.0.0.1", seeder.listen_port)])
            leecher.events.subscribe("*", seen.append)
            async with leecher:
                with anyio.fail_after(60):
                    await leecher.wait_completed()
                assert leecher.state is State.SEEDING
                banned = leecher.pool.is_banned(("127.0.0.1", bad.port))
                still_connected = ("127.0.0.1", bad.port) in {p.key for p in leecher.peers}
        tg.cancel_scope.cancel()
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []
    assert bad.requests > 0  # it really was asked for data
    failed = [e for e in seen if isinstance(e, ev.PieceHashFailed)]
    gone = [e for e in seen if isinstance(e, ev.PeerDisconnected) and e.port == bad.port]
    if behaviour == "liar":
        assert failed and all(f"127.0.0.1:{bad.port}" in e.peers for e in failed)
        assert banned and gone and "banned" in gone[0].reason
        assert bad.connections == 1  # a banned address is never dialed again
    elif behaviour == "oversized":
        assert not failed and gone and "exceeds" in gone[0].reason
        assert not still_connected
    else:
        assert not failed and not banned


async def test_requests_for_pieces_we_lack_close_that_peer(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed", FILES), piece_length=16 * 1024)
    async with Session(torrent, tmp_path / "seed", config=loopback_config()) as seeder:
        await seeder.wait_ready()
        cfg = loopback_config(encryption="disable")
        async with Session(torrent, tmp_path / "leech", config=cfg,
                           peers=[("127.0.0.1", seeder.listen_port)]) as leecher:
            # a rogue peer dials the leecher, which has (almost) nothing, and asks for a piece
            wire = PeerWire(info_hash=torrent.info_hash, peer_id=b"-XX0002-" + os.urandom(6).hex().encode(),
                            reserved=m.make_reserved(extension=False, fast=False),
                            num_pieces=torrent.num_pieces, piece_size=torrent.piece_size)
            closed_reason = ""
            async with await anyio.connect_tcp("127.0.0.1", leecher.listen_port) as stream:
                await stream.send(wire.handshake())
                await stream.send(wire.send(m.Interested()))
                missing = next(i for i in range(torrent.num_pieces) if i not in leecher.have)
                await stream.send(wire.send(m.Request(missing, 0, 16 * 1024)))
                with anyio.fail_after(10):
                    try:
                        while True:
                            wire.receive_data(await stream.receive())
                            for msg in wire.events():
                                assert not isinstance(msg, m.Piece)  # never served
                    except (anyio.EndOfStream, anyio.BrokenResourceError, ConnectionError) as exc:
                        closed_reason = type(exc).__name__
            assert closed_reason
            with anyio.fail_after(60):
                await leecher.wait_completed()
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []


async def test_a_peer_that_stops_reading_does_not_hold_up_have_or_completion(tmp_path: Path) -> None:
    """A leecher of ours that asks for blocks and then never reads fills its TCP window; the
    HAVEs to the other peers and the completion must not wait for its 150 s send timeout."""
    torrent = make_torrent(make_payload(tmp_path / "seed", FILES), piece_length=16 * 1024)
    # the session under test has a.bin already: something to upload to the stuck peer
    (tmp_path / "leech" / "payload").mkdir(parents=True)
    shutil.copy(tmp_path / "seed" / "payload" / "a.bin", tmp_path / "leech" / "payload" / "a.bin")

    def wire_for(tag: bytes) -> PeerWire:
        return PeerWire(info_hash=torrent.info_hash, peer_id=tag + os.urandom(6).hex().encode(),
                        reserved=m.make_reserved(extension=False, fast=False),
                        num_pieces=torrent.num_pieces, piece_size=torrent.piece_size)

    async with Session(torrent, tmp_path / "seed", config=loopback_config()) as seeder:
        await seeder.wait_ready()
        cfg = loopback_config(encryption="disable", control_send_timeout=5.0)
        async with Session(torrent, tmp_path / "leech", config=cfg) as leecher:
            await leecher.wait_ready()
            had = sorted(leecher.have)
            assert had and leecher.state is State.DOWNLOADING
            # the stuck peer: a tiny receive buffer, so our sends to it block soon
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", leecher.listen_port))  # (loopback: at once)
            sock.setblocking(False)
            stuck = await anyio.abc.SocketStream.from_socket(sock)
            wire = wire_for(b"-XX0003-")
            await stuck.send(wire.handshake() + wire.send(m.Interested()))
            with anyio.fail_after(30):
                unchoked = False
                while not unchoked:
                    wire.receive_data(await stuck.receive())
                    unchoked = any(isinstance(msg, m.Unchoke) for msg in wire.events())
            requests = [m.Request(i, 0, torrent.piece_size(i)) for i in had]
            for _ in range(5):  # from now on it reads nothing
                await stuck.send(b"".join(wire.send(requests[n % len(requests)]) for n in range(500)))
                await anyio.sleep(0.2)
            stuck_state = next(p for p in leecher.peers if p.incoming)
            assert stuck_state.upload_queue  # our uploader to it is blocked on a full window

            # an honest peer, connected after it, that reads everything
            haves: set[int] = set()
            got_have = anyio.Event()

            async def observe(stream: anyio.abc.SocketStream) -> None:
                honest = wire_for(b"-XX0004-")
                await stream.send(honest.handshake())
                try:
                    while True:
                        honest.receive_data(await stream.receive())
                        for msg in honest.events():
                            if isinstance(msg, m.Have) and msg.index not in had:
                                haves.add(msg.index)
                                got_have.set()
                except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                    pass

            async with await anyio.connect_tcp("127.0.0.1", leecher.listen_port) as observer, \
                    anyio.create_task_group() as tg:
                tg.start_soon(observe, observer)
                with anyio.fail_after(10):
                    while len(leecher.peers) < 2:
                        await anyio.sleep(0.05)
                leecher.add_peer("127.0.0.1", seeder.listen_port)
                with anyio.fail_after(30):  # far below the 150 s a blocked send may take
                    await got_have.wait()
                    await leecher.wait_completed()
                tg.cancel_scope.cancel()
            assert leecher.state is State.SEEDING
            await stuck.aclose()
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []
