"""A magnet beside peers that lie about the metadata (BEP 9) completes about as fast as with the
honest peer alone: many sizes announced before the honest peer comes, sprayed unrequested false
pieces, the right size with false data, liars and the honest peer together."""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import anyio.abc
import pytest

from torrent_engine.errors import PeerError
from torrent_engine.formats.magnet import parse_magnet
from torrent_engine.net.peer import messages as m
from torrent_engine.net.peer.extensions import (
    METADATA_PIECE_SIZE,
    UT_METADATA,
    ExtensionHandshake,
    MetadataData,
    MetadataReject,
    MetadataRequest,
    decode_metadata_message,
    encode_metadata_message,
)
from torrent_engine.net.peer.wire import PeerWire
from torrent_engine.session import Session

from .helpers import loopback_config, make_payload, make_torrent, same_files

pytestmark = pytest.mark.anyio

# many files: an info dict of several ut_metadata pieces, so liars have pieces to spoil
FILES = tuple((f"dir{i // 50}/file-with-a-rather-long-name-{i:04d}.bin", 100 + i) for i in range(1000))


def liar(info_size: int, behaviour: str) -> Callable[[anyio.abc.SocketStream], Awaitable[None]]:
    """A peer of our own making that lies about the metadata of the torrent it claims."""

    async def serve(stream: anyio.abc.SocketStream) -> None:
        wire: PeerWire | None = None
        pieces = -(-info_size // METADATA_PIECE_SIZE)
        their_id = 0
        sizes = [info_size + k for k in range(1, 6)] if behaviour == "many_sizes" else [info_size]
        async with stream:
            try:
                first = b""
                while len(first) < 68:  # the whole BitTorrent handshake: it names the torrent
                    first += await stream.receive()
                info_hash = first[28:48]
                wire = PeerWire(info_hash=info_hash, peer_id=b"-XX0003-" + os.urandom(6).hex().encode(),
                                reserved=m.make_reserved(extension=True, fast=False))
                wire.receive_data(first)
                pending = list(wire.events())  # their handshake (and whatever came with it)
                await stream.send(wire.handshake())
                for size in sizes:  # (several handshakes: a peer changing its story)
                    hs = ExtensionHandshake(m={UT_METADATA: 1}, metadata_size=size)
                    await stream.send(wire.send(m.Extended(0, hs.encode())))
                sprayed = 0
                while True:
                    with anyio.move_on_after(0.05):
                        wire.receive_data(await stream.receive())
                    pending += wire.events()
                    messages, pending = pending, []
                    for msg in messages:
                        if isinstance(msg, m.Extended) and msg.ext_id == 0:
                            their_id = ExtensionHandshake.decode(msg.payload).m.get(UT_METADATA, 0)
                        elif isinstance(msg, m.Extended) and msg.ext_id == 1 and their_id:
                            req = decode_metadata_message(msg.payload)
                            if not isinstance(req, MetadataRequest):
                                continue
                            if behaviour == "wrong_data":
                                length = min(METADATA_PIECE_SIZE, info_size - req.piece * METADATA_PIECE_SIZE)
                                reply = encode_metadata_message(MetadataData(req.piece, info_size,
                                                                             os.urandom(length)))
                            else:
                                reply = encode_metadata_message(MetadataReject(req.piece))
                            await stream.send(wire.send(m.Extended(their_id, reply)))
                    if behaviour == "spray" and their_id and sprayed < 400:
                        for piece in range(pieces):  # false pieces nobody asked for
                            length = min(METADATA_PIECE_SIZE, info_size - piece * METADATA_PIECE_SIZE)
                            data = MetadataData(piece, info_size, os.urandom(length))
                            await stream.send(wire.send(m.Extended(their_id, encode_metadata_message(data))))
                            sprayed += 1
            except (anyio.EndOfStream, anyio.BrokenResourceError, OSError, PeerError):
                pass  # the leecher hung up on us (as it should, once it has seen through us)

    return serve


async def _fetch(tmp_path: Path, behaviours: list[str], *, honest_late: bool) -> float:
    torrent = make_torrent(make_payload(tmp_path / "seed", FILES), version="v1")
    info_size = len(torrent.info_bytes)
    assert info_size > 3 * METADATA_PIECE_SIZE
    magnet = parse_magnet(torrent.magnet_uri())
    cfg = loopback_config(encryption="disable")
    async with anyio.create_task_group() as tg:
        liar_ports = []
        for behaviour in behaviours:
            listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
            liar_ports.append(("127.0.0.1", listener.extra(anyio.abc.SocketAttribute.local_port)))
            tg.start_soon(listener.serve, liar(info_size, behaviour))
        async with Session(torrent, tmp_path / "seed", config=loopback_config()) as seeder:
            await seeder.wait_ready()
            honest = ("127.0.0.1", seeder.listen_port)
            started = time.monotonic()
            async with Session(magnet, tmp_path / "leech", config=cfg,
                               peers=liar_ports if honest_late else [*liar_ports, honest]) as leecher:
                if honest_late:
                    await anyio.sleep(1.0)  # the liars' stories come first
                    leecher.add_peer(*honest)
                with anyio.fail_after(30):
                    await leecher.wait_completed()
                elapsed = time.monotonic() - started
        tg.cancel_scope.cancel()
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []
    return elapsed


async def test_honest_alone(tmp_path: Path) -> None:
    assert await _fetch(tmp_path, [], honest_late=False) < 30


@pytest.mark.parametrize(("behaviours", "honest_late"), [
    (["many_sizes", "many_sizes", "many_sizes", "many_sizes", "many_sizes"], True),
    (["spray"], False),
    (["wrong_data"], False),
    (["wrong_data", "spray", "many_sizes"], False),
    (["wrong_data", "wrong_data"], True),
])
async def test_liars_cannot_stall_a_magnet(tmp_path: Path, behaviours: list[str], honest_late: bool) -> None:
    # (30 s at most; honest alone takes about a second on loopback)
    await _fetch(tmp_path, behaviours, honest_late=honest_late)
