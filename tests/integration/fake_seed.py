"""A peer of the tests' own making that has every piece: it listens on loopback, handshakes
over the sans-I/O ``PeerWire`` (plaintext, no extensions), sends a full bitfield and an unchoke,
then hands every message it receives to ``on_message``, which subclasses script."""

from __future__ import annotations

import os
from collections.abc import Iterable

import anyio
import anyio.abc

from torrent_engine.errors import PeerProtocolError
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.net.peer import messages as m
from torrent_engine.net.peer.wire import PeerWire


def block_of(torrent: Torrent, data: bytes, request: m.Request) -> m.Piece:
    """The answer to ``request`` from ``data``, the torrent's bytes end to end."""
    at = request.index * torrent.piece_length + request.begin
    return m.Piece(request.index, request.begin, data[at:at + request.length])


class FakeSeed:
    def __init__(self, torrent: Torrent) -> None:
        self.torrent = torrent
        self.connections = 0
        self.refused = 0  # connections that did not start with a plaintext handshake
        self.port = 0

    async def serve(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        self.port = listener.extra(anyio.abc.SocketAttribute.local_port)
        task_status.started()
        async with listener:
            await listener.serve(self._handle)

    async def on_message(self, msg: m.Message, wire: PeerWire, stream: anyio.abc.SocketStream) -> None:
        raise NotImplementedError

    async def _handle(self, stream: anyio.abc.SocketStream) -> None:
        self.connections += 1
        t = self.torrent
        wire = PeerWire(info_hash=t.info_hash, peer_id=b"-XX0001-" + os.urandom(6).hex().encode(),
                        reserved=m.make_reserved(extension=False, fast=False),
                        num_pieces=t.num_pieces, piece_size=t.piece_size)
        async with stream:
            try:
                await stream.send(wire.handshake())
                full = m.Bitfield.from_indexes(range(t.num_pieces), t.num_pieces)
                await stream.send(wire.send(full) + wire.send(m.Unchoke()))
                while True:
                    wire.receive_data(await stream.receive())
                    try:
                        for msg in wire.events():
                            await self.on_message(msg, wire, stream)
                    except PeerProtocolError:
                        if wire.peer_handshake is not None:
                            raise
                        # Not a plaintext handshake: an MSE dialer (one of our sessions under
                        # "prefer" that learned this address by PEX). A plaintext-only peer
                        # hangs up, as this one does.
                        self.refused += 1
                        return
            except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                pass


class IdlePeer:
    """A peer on ``host`` with every piece (or those in ``have``) that never answers a request
    and never unchokes: it only stays connected."""

    def __init__(self, torrent: Torrent, host: str, have: Iterable[int] | None = None) -> None:
        self.torrent = torrent
        self.host = host
        self.have = range(torrent.num_pieces) if have is None else list(have)
        self.port = 0
        self.accepted = 0
        self.closed = 0  # connections our side ended

    def wire(self) -> PeerWire:
        t = self.torrent
        return PeerWire(info_hash=t.info_hash, peer_id=b"-XX0001-" + os.urandom(6).hex().encode(),
                        reserved=m.make_reserved(extension=False, fast=False),
                        num_pieces=t.num_pieces, piece_size=t.piece_size)

    async def serve(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        listener = await anyio.create_tcp_listener(local_host=self.host, local_port=0)
        self.port = listener.extra(anyio.abc.SocketAttribute.local_port)
        task_status.started()
        async with listener:
            await listener.serve(self._handle)

    async def _handle(self, stream: anyio.abc.SocketStream) -> None:
        self.accepted += 1
        wire = self.wire()
        async with stream:
            try:
                await stream.send(wire.handshake())
                await stream.send(wire.send(m.Bitfield.from_indexes(self.have, self.torrent.num_pieces)))
                while True:
                    await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                self.closed += 1
