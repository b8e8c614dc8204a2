"""A turn of the event loop reads from a fast peer once more at most when it is ``TURN_SECONDS``
old: uvloop reads a socket whose reads fill the buffer up to 32 times in one turn, so a peer
sending faster than its blocks are handled held the loop (timers, the API, the other peers) for
tens of MiB at a time."""

from __future__ import annotations

import asyncio
import collections
import hashlib
import socket
import threading

import anyio
import pytest

from torrent_engine.net.peer import protocol
from torrent_engine.net.peer.messages import Message, Piece
from torrent_engine.net.peer.protocol import BUFFER_SIZE, PeerProtocol

from ..loop_turns import counted_turns
from .test_wire import make_wire

pytestmark = pytest.mark.anyio

BLOCK = 16384
CHUNK = b"".join(Piece(i, 0, bytes([i]) * BLOCK).to_bytes() for i in range(64))  # 1 MiB of blocks
CHUNKS = 24


def _send(sock: socket.socket) -> None:
    try:
        for _ in range(CHUNKS):
            sock.sendall(CHUNK)
    except OSError:
        pass  # (the test gave up and closed it)


async def test_a_turn_past_its_time_reads_once_more_from_a_fast_peer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(protocol, "TURN_SECONDS", 0.0)  # (every turn is past its time at its second read)
    loop = asyncio.get_running_loop()
    with socket.create_server(("127.0.0.1", 0)) as server:
        sender = socket.create_connection(server.getsockname())
        receiver, _ = server.accept()
    receiver.setblocking(False)
    # (bytes read in each turn of the loop; the blocks, in the order they came)
    per_turn: collections.Counter[int] = collections.Counter()
    blocks: list[int] = []
    async with counted_turns() as turns:
        proto = PeerProtocol(make_wire(num_pieces=64, piece_size=lambda _: BLOCK), None, b"")

        def handler(batch: list[Message]) -> int:
            for msg in batch:
                assert type(msg) is Piece
                hashlib.sha1(msg.block).digest()  # (what a session does with each block, about)
                per_turn[turns.n] += len(msg.block)
                blocks.append(msg.index)
            return len(batch)

        proto.handler = handler
        transport, _ = await loop.connect_accepted_socket(lambda: proto, receiver)
        thread = threading.Thread(target=_send, args=(sender,), daemon=True)
        thread.start()
        try:
            with anyio.fail_after(30):
                while len(blocks) < 64 * CHUNKS:
                    assert proto.error is None
                    await anyio.sleep(0.01)
        finally:
            transport.abort()
            sender.close()
            thread.join(10)
    assert blocks == list(range(64)) * CHUNKS
    # the read that opens a turn and one more (a read: a buffer at most)
    assert max(per_turn.values()) <= 2 * BUFFER_SIZE, sorted(per_turn.values())[-5:]
    assert len(per_turn) >= CHUNKS * BLOCK * 64 // (2 * BUFFER_SIZE)


class _Transport:
    """What the protocol asks of a transport, recorded."""

    def __init__(self) -> None:
        self.reading = True
        self.calls: list[str] = []

    def pause_reading(self) -> None:
        self.calls.append("pause")
        self.reading = False

    def resume_reading(self) -> None:
        self.calls.append("resume")
        self.reading = True

    def is_closing(self) -> bool:
        return False


def _read(proto: PeerProtocol, stream: bytearray) -> None:
    """A read that fills the buffer it is given, from the front of ``stream``."""
    buf = proto.get_buffer(-1)
    n = len(buf)
    assert len(stream) >= n
    buf[:] = stream[:n]
    del stream[:n]
    proto.buffer_updated(n)


async def test_a_turns_pause_and_the_owners_pause_each_wait_for_the_other(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading resumes only when neither the turn nor the owner's queue holds it."""
    monkeypatch.setattr(protocol, "TURN_SECONDS", 0.0)
    stream = bytearray(Piece(0, 0, bytes(BLOCK)).to_bytes() * 640)
    for_owner = False  # the handler leaves the blocks to the owner's task (which pauses reading)

    def handler(batch: list[Message]) -> int:
        return 0 if for_owner else len(batch)

    proto = PeerProtocol(make_wire(num_pieces=64, piece_size=lambda _: BLOCK), None, b"")
    proto.handler = handler
    transport = _Transport()
    proto.transport = transport  # type: ignore[assignment]
    _read(proto, stream)
    assert transport.calls == []  # the read that opens the turn
    _read(proto, stream)
    assert transport.calls == ["pause"]  # the turn is past its time
    await anyio.sleep(0)  # the loop's next turn
    assert transport.calls == ["pause", "resume"]

    # the owner pauses: the next turn does not resume it, the owner's resume does
    del transport.calls[:]
    for_owner = True
    _read(proto, stream)
    assert transport.calls == ["pause"] and proto.queue
    await anyio.sleep(0)
    assert transport.calls == ["pause"]
    proto.take_all()
    proto.resume()
    assert transport.calls == ["pause", "resume"]

    # both: the owner's resume does not resume the turn's pause, the next turn does
    del transport.calls[:]
    for_owner = False
    _read(proto, stream)
    for_owner = True
    _read(proto, stream)
    assert set(transport.calls) == {"pause"} and proto.queue and not transport.reading
    proto.take_all()
    proto.resume()
    assert not transport.reading
    await anyio.sleep(0)
    assert transport.calls[-1] == "resume" and transport.calls.count("resume") == 1


async def test_a_read_that_leaves_room_or_a_young_turn_pauses_nothing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Only a read that filled its buffer (more may wait) in a turn past its time pauses."""
    stream = bytearray(Piece(0, 0, bytes(BLOCK)).to_bytes() * 640)
    proto = PeerProtocol(make_wire(num_pieces=64, piece_size=lambda _: BLOCK), None, b"")
    proto.handler = len
    transport = _Transport()
    proto.transport = transport  # type: ignore[assignment]
    monkeypatch.setattr(protocol, "TURN_SECONDS", 3600.0)
    for _ in range(8):  # a young turn
        _read(proto, stream)
    assert transport.calls == []
    monkeypatch.setattr(protocol, "TURN_SECONDS", 0.0)  # now past its time
    buf = proto.get_buffer(-1)
    n = len(buf) // 2
    buf[:n] = stream[:n]
    del stream[:n]
    proto.buffer_updated(n)  # room left: the socket is drained
    assert transport.calls == []
    _read(proto, stream)
    assert proto.error is None
    assert transport.calls == ["pause"]
