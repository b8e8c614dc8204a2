"""Batches of datagrams: the core's batch path matches packet-by-packet processing, and the
socket answers a batch of data with one ack."""

from __future__ import annotations

import random
import socket

import anyio
import pytest

from torrent_engine.net.utp.connection import UtpConnection
from torrent_engine.net.utp.packet import PacketType, decode, encode_header
from torrent_engine.net.utp.socket import READ_BATCH, UtpSocket
from torrent_engine.net.utp.stream import UtpStream


def _pair(now: int) -> tuple[UtpConnection, UtpConnection, UtpConnection]:
    """A sender and two identical receivers (accepted from the same SYN)."""
    a = UtpConnection.initiate(100, 500)
    syn = decode(a.datagrams(now)[0])
    b1 = UtpConnection.accept(syn, 9000, now)
    b2 = UtpConnection.accept(syn, 9000, now)
    [ack] = b1.datagrams(now)
    assert b2.datagrams(now) == [ack]
    a.receive_packet(decode(ack), now)
    return a, b1, b2


@pytest.mark.parametrize("seed", range(6))
def test_a_batch_gives_what_packet_by_packet_gives(seed: int) -> None:
    """Reordered, duplicated and lost datagrams, in batches of random sizes (handed over as
    views, as the socket does), with and without data of the receiver's own that the sender's
    packets ack now and then: the batch path leaves the receiver exactly where one
    ``receive_packet`` per datagram leaves it (acks, selective acks, window, bytes, events)."""
    rng = random.Random(seed)
    now = 1_000_000
    a, b1, b2 = _pair(now)
    payload = rng.randbytes(300_000)
    a.send(payload[:200_000])
    if seed % 2:  # the receivers have data of their own in flight: acks are processed too
        b1.send(b"x" * 5000)
        b2.send(b"x" * 5000)
        assert b1.datagrams(now) == b2.datagrams(now)
    wire: list[bytes] = []
    for step in range(400):
        now += 1000
        if step == 50:
            a.send(payload[200_000:])
        out = a.datagrams(now)
        if not out and not a.unsent:
            break
        arrived: list[bytes] = []
        for d in out:
            r = rng.random()
            if r < 0.03:
                continue  # lost
            arrived.append(d)
            if r > 0.97:
                arrived.append(d)  # duplicated
        if rng.random() < 0.3 and len(arrived) > 3:  # reordered
            i = rng.randrange(len(arrived) - 1)
            arrived[i], arrived[i + 1] = arrived[i + 1], arrived[i]
        wire += arrived
        while wire:
            n = rng.randrange(1, 40)
            batch, wire = wire[:n], wire[n:]
            for d in batch:
                b1.receive_packet(decode(d), now)
            # handed over as the socket does: views into a buffer the next read overwrites
            slots = bytearray(b"".join(batch))
            views, pos = [], 0
            for d in batch:
                views.append(memoryview(slots)[pos:pos + len(d)])
                pos += len(d)
            b2.receive_datagrams(views, now)
            for v in views:
                v.release()
            slots[:] = bytes(len(slots))
            assert (b2.ack_nr, b2.receive_window, b2.readable, b2.packets_received, b2.packets_dropped) == (
                b1.ack_nr, b1.receive_window, b1.readable, b1.packets_received, b1.packets_dropped)
        if seed % 2 and step % 7 == 0:  # more data of theirs: a's packets ack something new mid-batch
            b1.send(bytes([step % 256]) * 3000)
            b2.send(bytes([step % 256]) * 3000)
        acks = b1.datagrams(now)
        assert b2.datagrams(now) == acks  # the same acks, byte for byte (SACK included)
        assert b2.events() == b1.events()
        assert b2.read() == b1.read()
        for d in acks:
            a.receive_packet(decode(d), now)
    assert b1.ack_nr == b2.ack_nr


def test_in_order_data_feeds_ledbat_its_delay_sample() -> None:
    """The batch path hands the one-way delay of in-order data to LEDBAT (once per batch)."""
    now = 1_000_000
    a = UtpConnection.initiate(100, 500)
    b = UtpConnection.accept(decode(a.datagrams(now)[0]), 9000, now)
    a.receive_packet(decode(b.datagrams(now)[0]), now + 3000)  # a measured a 3 ms one-way delay
    b.send(b"request")  # b has a packet in flight: its LEDBAT steers by a's timestamps
    b.datagrams(now)
    a.send(bytes(5000))
    batch = a.datagrams(now + 10)
    assert len(batch) > 1
    b.receive_datagrams(batch, now + 5000)
    assert b.ack_nr == decode(batch[-1]).seq_nr
    assert b.cc.delay.base is None
    b.datagrams(now + 5000)
    assert b.cc.delay.base == 3000


async def _recv_acks(peer: socket.socket, wanted_ack: int) -> list[int]:
    acks: list[int] = []
    with anyio.fail_after(10):
        while not acks or acks[-1] != wanted_ack:
            await anyio.wait_readable(peer)
            pkt = decode(peer.recv(65536))
            if pkt.type is PacketType.STATE:
                acks.append(pkt.ack_nr)
    return acks


@pytest.mark.anyio
async def test_a_batch_of_data_is_answered_by_one_ack(read_path: str) -> None:
    """Datagrams that wait in the socket together are read in batches of READ_BATCH, and each
    batch is acked once (delayed, coalesced acks), not once per datagram."""
    accepted: list[UtpStream] = []
    server = UtpSocket(on_accept=accepted.append)
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.setblocking(False)
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(server.run, "127.0.0.1", 0)
            assert (server._multi is not None) == read_path.startswith("recvmmsg")
            dest = server.local_address
            conn_id, seq = 0x2222, 700
            peer.sendto(encode_header(PacketType.SYN, conn_id, 0, 0, 1 << 20, seq, 0), dest)
            await anyio.wait_readable(peer)
            syn_ack = decode(peer.recv(65536))
            assert syn_ack.type is PacketType.STATE and syn_ack.ack_nr == seq
            stream = accepted[0]

            def data(i: int) -> bytes:
                return encode_header(PacketType.DATA, conn_id + 1, 0, 0, 1 << 20, seq + i,
                                     syn_ack.seq_nr - 1) + bytes(1000)

            peer.sendto(data(1), dest)  # the connection is known by its address from now on
            assert await _recv_acks(peer, seq + 1) == [seq + 1]
            assert len(await stream.receive()) == 1000
            count = 2 * READ_BATCH
            got = anyio.Event()

            async def read_all() -> None:  # waiting before the data comes: it must be woken
                n = 0
                while n < count * 1000:
                    n += len(await stream.receive())
                got.set()

            tg.start_soon(read_all)
            await anyio.sleep(0.05)
            for i in range(2, count + 2):  # all queued before the event loop reads any
                peer.sendto(data(i), dest)
            acks = await _recv_acks(peer, seq + count + 1)
            # one ack per batch of READ_BATCH: two (three if the kernel delivered the burst in
            # two goes); one ack per datagram, or per 32 as a uvloop transport reads, is more
            assert len(acks) <= 3, acks
            with anyio.fail_after(5):  # woken once the backlog is read, though no more comes
                await got.wait()
            assert stream.conn.packets_received == count + 1
            tg.cancel_scope.cancel()
    finally:
        peer.close()


def test_datagrams_handed_over_as_views_are_copied_not_kept() -> None:
    """The socket hands a batch over as views into the buffer it reads the next batch into:
    what the receiver keeps (in-order data, packets waiting out of order) must be its own."""
    rng = random.Random(7)
    now = 1_000_000
    a, b, _ = _pair(now)
    payload = rng.randbytes(150_000)
    a.send(payload)
    got = bytearray()
    for _ in range(50):
        now += 1000
        out = a.datagrams(now)
        if not out and not b.ack_deferred:  # (a deferred ack goes out once its delay passed)
            break
        if len(out) > 4:
            out[1], out[3] = out[3], out[1]  # reordered: two wait in the reorder buffer
        slots = bytearray(b"".join(out))
        views, pos = [], 0
        for d in out:
            views.append(memoryview(slots)[pos:pos + len(d)])
            pos += len(d)
        b.receive_datagrams(views, now)
        for v in views:
            v.release()
        slots[:] = bytes(len(slots))  # the next read overwrites the slots
        got += b.read(40_000)  # partial reads across the received chunks
        for d in b.datagrams(now):
            a.receive_packet(decode(d), now)
    got += b.read()
    assert bytes(got) == payload


def test_read_takes_exactly_what_was_asked_across_chunks() -> None:
    now = 1_000_000
    a, b, _ = _pair(now)
    payload = random.Random(3).randbytes(60_000)
    a.send(payload)
    for _ in range(40):
        now += 1000
        out = a.datagrams(now)
        if not out and not b.ack_deferred:  # (a deferred ack goes out once its delay passed)
            break
        b.receive_datagrams(out[:3], now)  # several chunks in the receive buffer
        b.receive_datagrams(out[3:], now)
        for d in b.datagrams(now):
            a.receive_packet(decode(d), now)
    assert b.readable == len(payload)
    parts = [b.read(n) for n in (1, 0, 1385, 1386, 7000, 20_000)]
    assert [len(p) for p in parts] == [1, 0, 1385, 1386, 7000, 20_000]
    assert b.readable == len(payload) - sum(len(p) for p in parts)
    assert b"".join(parts) + b.read() == payload
    assert b.readable == 0 and b.read() == b""
