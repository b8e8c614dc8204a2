"""A BufferedProtocol fed by a uTP connection (``UtpTransport``), on loopback UDP: bytes in
order from the socket's callback, flow control both ways, the end reported once."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest

from torrent_engine.net.utp.socket import UtpSocket
from torrent_engine.net.utp.stream import UtpStream
from torrent_engine.net.utp.transport import UtpTransport

from .loopback import utp_pair

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("read_path")]


class Recorder(asyncio.BufferedProtocol):
    def __init__(self, pending: bytes) -> None:
        self.data = bytearray(pending)
        self.calls: list[str] = []
        self._buf = bytearray(50_000)  # smaller than what arrives at once: fed in several goes
        self.changed = anyio.Event()
        self.lost: list[Exception | None] = []

    def _note(self, what: str) -> None:
        if not self.calls or self.calls[-1] != what:
            self.calls.append(what)
        self.changed.set()
        self.changed = anyio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._note("made")

    def get_buffer(self, sizehint: int) -> memoryview:
        return memoryview(self._buf)

    def buffer_updated(self, nbytes: int) -> None:
        self.data += self._buf[:nbytes]
        self._note("data")

    def eof_received(self) -> bool | None:
        self._note("eof")
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.append(exc)
        self._note("lost")

    def pause_writing(self) -> None:
        self._note("pause_writing")

    def resume_writing(self) -> None:
        self._note("resume_writing")


@asynccontextmanager
async def _pair() -> AsyncIterator[tuple[UtpStream, UtpStream]]:
    async with utp_pair() as (dialed, accepted, _, _):
        yield dialed, accepted


async def _until(proto: Recorder, cond: object) -> None:
    while not cond():  # type: ignore[operator]
        await proto.changed.wait()


async def test_bytes_arrive_in_order_then_eof_and_loss_once() -> None:
    data = random.Random(1).randbytes(2_500_000)
    async with _pair() as (dialed, accepted):
        await dialed.send(b"early")  # before the protocol: handed over as pending bytes
        while not accepted.conn.readable:
            await anyio.sleep(0.01)
        made: list[Recorder] = []

        def make(pending: bytes) -> Recorder:
            made.append(Recorder(pending))
            return made[0]

        _, transport = accepted.attach_protocol(make)
        proto = made[0]
        assert isinstance(transport, UtpTransport) and bytes(proto.data) == b"early"
        await dialed.send(data)
        await dialed.send_eof()
        await _until(proto, lambda: proto.lost)
        assert bytes(proto.data) == b"early" + data
        assert proto.calls == ["made", "data", "eof", "lost"]
        assert proto.lost == [None]


async def test_paused_reading_holds_data_back_and_closes_the_window() -> None:
    data = random.Random(2).randbytes(3_000_000)
    async with _pair() as (dialed, accepted):
        proto: list[Recorder] = []
        _, transport = accepted.attach_protocol(lambda p: proto.append(Recorder(p)) or proto[0])
        transport.pause_reading()

        async def write() -> None:
            await dialed.send(data)

        async with anyio.create_task_group() as tg:
            tg.start_soon(write)
            await anyio.sleep(0.5)
            assert not proto[0].data  # nothing delivered while paused
            assert accepted.conn.receive_window < accepted.conn.payload_size  # the peer was stopped
            assert accepted.conn.readable <= 2 * accepted.conn.recv_buffer
            transport.resume_reading()
            await _until(proto[0], lambda: len(proto[0].data) == len(data))
        assert bytes(proto[0].data) == data


async def test_writes_beyond_the_send_buffer_wait_with_pause_and_resume_writing() -> None:
    data = random.Random(3).randbytes(3_000_000)
    async with _pair() as (dialed, accepted):
        proto: list[Recorder] = []
        _, transport = dialed.attach_protocol(lambda p: proto.append(Recorder(p)) or proto[0])
        transport.set_write_buffer_limits(high=256 * 1024)
        for i in range(0, len(data), 100_000):
            transport.write(data[i:i + 100_000])
        assert proto[0].calls[-1] == "pause_writing"
        assert transport.get_write_buffer_size() == len(data)  # queued, none lost
        received = bytearray()
        while len(received) < len(data):
            received += await accepted.receive()
        assert bytes(received) == data
        await _until(proto[0], lambda: "resume_writing" in proto[0].calls)
        assert transport.get_write_buffer_size() == 0


async def test_abort_ends_both_sides_and_reports_loss_once() -> None:
    async with _pair() as (dialed, accepted):
        proto: list[Recorder] = []
        _, transport = dialed.attach_protocol(lambda p: proto.append(Recorder(p)) or proto[0])
        transport.abort()
        transport.abort()
        assert transport.is_closing()
        await _until(proto[0], lambda: proto[0].lost)
        with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
            while True:
                await accepted.receive()
        await anyio.sleep(0.1)
        assert proto[0].lost == [None]


@pytest.mark.parametrize("encryption", ["disable", "require"])
async def test_peer_connections_over_utp_are_fed_by_the_socket_callback(encryption: str) -> None:
    """After the handshakes (plaintext or MSE), a uTP peer connection reads through the
    protocol path, as TCP does: messages reach the batch handler from the socket's callback."""
    from torrent_engine.net.peer import messages as m
    from torrent_engine.net.peer.handshake import accept, connect
    from torrent_engine.net.peer.protocol import ProtocolPeerConnection

    info_hash = bytes(range(20))
    block = random.Random(4).randbytes(16384)
    async with _pair() as (dialed, accepted):
        async def opener(host: str, port: int, timeout: float) -> UtpStream:
            return dialed

        conns = []
        async with anyio.create_task_group() as tg:
            async def answer() -> None:
                conns.append(await accept(accepted, lookup=lambda h: h == info_hash, peer_id=b"B" * 20,
                                          info_hashes=[info_hash],
                                          encryption=encryption))  # type: ignore[arg-type]

            tg.start_soon(answer)
            ours = await connect("127.0.0.1", 1, info_hash=info_hash, peer_id=b"A" * 20,
                                 encryption=encryption, opener=opener)  # type: ignore[arg-type]
        theirs = conns[0]
        assert isinstance(ours, ProtocolPeerConnection) and isinstance(theirs, ProtocolPeerConnection)
        assert ours.encrypted == (encryption == "require")
        batches: list[list[m.Message]] = []
        done = anyio.Event()

        def fast(msgs: list[m.Message]) -> int:
            batches.append([m.Piece(x.index, x.begin, bytes(x.block)) if isinstance(x, m.Piece) else x
                            for x in msgs])
            if any(isinstance(x, m.Have) and x.index == 99 for x in msgs):
                done.set()
            return len(msgs)

        async def slow(msg: m.Message) -> None:
            raise AssertionError("the fast handler takes everything")

        async with anyio.create_task_group() as tg:
            tg.start_soon(ours.run, fast, slow)
            await theirs.send_many([m.Interested(), *[m.Piece(7, i * 16384, block) for i in range(40)],
                                    m.Have(99)])
            await done.wait()
            tg.cancel_scope.cancel()
        got = [x for b in batches for x in b]
        assert got[0] == m.Interested() and got[-1] == m.Have(99)
        assert [x for x in got if isinstance(x, m.Piece)] == [m.Piece(7, i * 16384, block) for i in range(40)]
        await ours.aclose()
        await theirs.aclose()


async def test_a_reply_written_from_the_callback_carries_the_ack() -> None:
    """Data that a protocol answers at once (a request for more) is acked by the answer's own
    data packet, not by a separate ST_STATE before it."""
    import socket

    from torrent_engine.net.utp.packet import PacketType, decode, encode_header

    class Echo(Recorder):
        transport: asyncio.Transport

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport  # type: ignore[assignment]

        def buffer_updated(self, nbytes: int) -> None:
            super().buffer_updated(nbytes)
            self.transport.write(b"more please")

    accepted: list[UtpStream] = []
    server = UtpSocket(on_accept=accepted.append)
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.setblocking(False)
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(server.run, "127.0.0.1", 0)
            dest = server.local_address
            conn_id, seq = 0x4444, 300
            peer.sendto(encode_header(PacketType.SYN, conn_id, 0, 0, 1 << 20, seq, 0), dest)
            await anyio.wait_readable(peer)
            syn_ack = decode(peer.recv(65536))
            proto: list[Echo] = []
            accepted[0].attach_protocol(lambda p: proto.append(Echo(p)) or proto[0])
            ours = syn_ack.seq_nr - 1  # the last of its packets the peer acks
            for i in (1, 2, 3):
                peer.sendto(encode_header(PacketType.DATA, conn_id + 1, 0, 0, 1 << 20, seq + i,
                                          ours) + b"x" * 500, dest)
                with anyio.fail_after(5):
                    await anyio.wait_readable(peer)
                await anyio.sleep(0.05)  # anything else it would send
                got = []
                while True:
                    try:
                        got.append(decode(peer.recv(65536)))
                    except BlockingIOError:
                        break
                assert [(p.type, p.ack_nr, p.payload) for p in got] == [
                    (PacketType.DATA, seq + i, b"more please")]
                ours = got[0].seq_nr
            tg.cancel_scope.cancel()
    finally:
        peer.close()
