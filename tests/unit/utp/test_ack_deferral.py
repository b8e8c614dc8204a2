"""The ack of in-order data is deferred (at most ACK_EVERY packets or ACK_DELAY_US); holes,
duplicates, FIN and a nearly full receive buffer are acked at once; no ack is held forever."""

from __future__ import annotations

import pytest

from torrent_engine.net.utp.ack_deferral import ACK_DELAY_US, ACK_EVERY, AckDeferral
from torrent_engine.net.utp.connection import UtpConnection
from torrent_engine.net.utp.packet import PacketType, decode, encode_header

NOW = 1_000_000
PAYLOAD = b"x" * 1000


def _receiver(**kw: int) -> UtpConnection:
    a = UtpConnection.initiate(100, 500)
    b = UtpConnection.accept(decode(a.datagrams(NOW)[0]), 9000, NOW, **kw)
    assert len(b.datagrams(NOW)) == 1  # the SYN is acked at once
    return b


def _data(seq: int, kind: int = PacketType.DATA, payload: bytes = PAYLOAD) -> bytes:
    """A packet from the dialer (seq 501 is its first), acking nothing new (our seq 9000 - 1)."""
    return encode_header(kind, 101, NOW, 0, 1 << 20, seq & 0xFFFF, 8999) + payload


@pytest.mark.parametrize("batched", [False, True])
def test_an_in_order_stream_is_acked_every_ack_every_packets(batched: bool) -> None:
    b = _receiver()
    acks: list[int] = []
    for i in range(4 * ACK_EVERY + 3):
        d = _data(501 + i)
        if batched:
            b.receive_datagrams([memoryview(d)], NOW)
        else:
            b.receive_datagram(d, NOW)
        acks += [decode(x).ack_nr for x in b.datagrams(NOW)]
    # the clock stands still: only the count sends acks
    assert acks == [500 + ACK_EVERY * k for k in range(1, 5)]
    assert b.ack_deferred and b.acks.deferred > 0
    assert b.readable == (4 * ACK_EVERY + 3) * len(PAYLOAD)


def test_a_deferred_ack_goes_out_by_its_deadline() -> None:
    b = _receiver()
    b.receive_datagram(_data(501), NOW)
    b.receive_datagram(_data(502), NOW + 300)
    assert b.datagrams(NOW + 500) == []
    assert b.ack_deferred and not b.ack_pending
    due = b.timeout_at
    assert due == NOW + ACK_DELAY_US  # counted from the first packet not acked
    b.on_timer(due - 1)
    assert b.datagrams(due - 1) == []
    b.on_timer(due)
    assert b.ack_pending
    [ack] = b.datagrams(due)
    assert decode(ack).ack_nr == 502
    assert not b.ack_deferred and b.timeout_at is None  # nothing left: no timer
    assert b.datagrams(due + 10 * ACK_DELAY_US) == []


def test_a_hole_is_acked_at_once_with_a_selective_ack() -> None:
    b = _receiver()
    b.receive_datagram(_data(501), NOW)
    assert b.datagrams(NOW) == []
    b.receive_datagram(_data(503), NOW)  # 502 missing
    [ack] = b.datagrams(NOW)
    pkt = decode(ack)
    assert pkt.ack_nr == 501 and pkt.sack is not None and pkt.sack[0] & 1  # 503 = ack_nr + 2
    b.receive_datagram(_data(502), NOW)  # the hole filled: acked at once too
    [ack] = b.datagrams(NOW)
    assert decode(ack).ack_nr == 503


def test_a_duplicate_and_the_fin_are_acked_at_once() -> None:
    b = _receiver()
    b.receive_datagram(_data(501), NOW)
    assert b.datagrams(NOW) == []
    b.receive_datagram(_data(501), NOW)  # a resend: our ack was lost, say so now
    [ack] = b.datagrams(NOW)
    assert decode(ack).ack_nr == 501
    b.receive_datagram(_data(502), NOW)
    b.receive_datagram(_data(503, PacketType.FIN, b""), NOW)
    [ack] = b.datagrams(NOW)
    assert decode(ack).ack_nr == 503 and b.at_eof is False and b.readable == 2 * len(PAYLOAD)


def test_a_nearly_full_receive_buffer_is_acked_at_once_and_a_reopened_one_too() -> None:
    b = _receiver(recv_buffer=(ACK_EVERY + 10) * 1400)
    acks = []
    for i in range(4):
        b.receive_datagram(_data(501 + i), NOW)
        acks += b.datagrams(NOW)
    assert acks == []  # room for ACK_EVERY packets and more: deferred
    for i in range(4, 58):  # until less than a packet of room is left
        b.receive_datagram(_data(501 + i), NOW)
        acks += b.datagrams(NOW)
    assert len(acks) > 20  # the window closing is reported packet by packet
    b.read()
    assert b.ack_pending  # the window reopened
    [ack] = b.datagrams(NOW)
    assert decode(ack).wnd_size == b.recv_buffer


def test_data_we_send_carries_the_deferred_ack() -> None:
    b = _receiver()
    b.receive_datagram(_data(501), NOW)
    assert b.datagrams(NOW) == []
    b.send(b"request")
    [d] = b.datagrams(NOW)
    pkt = decode(d)
    assert pkt.type is PacketType.DATA and pkt.ack_nr == 501
    assert not b.ack_deferred


def test_the_deferral_on_its_own_in_order_data_waits_anything_else_goes_at_once() -> None:
    acks = AckDeferral()
    acks.in_order(3, NOW)
    assert acks.waiting and acks.due == NOW + ACK_DELAY_US and not acks.owed_now(NOW + 1)
    acks.in_order(1, NOW + 500)  # (the deadline counts from the first packet not acked)
    assert acks.due == NOW + ACK_DELAY_US and not acks.owed_now(NOW + ACK_DELAY_US - 1)
    assert acks.owed_now(NOW + ACK_DELAY_US)
    acks.on_timer(NOW + ACK_DELAY_US - 1)
    assert acks.waiting
    acks.on_timer(NOW + ACK_DELAY_US)
    assert not acks.waiting and acks.owed_now(NOW)  # (urgent now)
    acks.sent()
    assert not acks.needed
    acks.in_order(acks.every, NOW)
    assert acks.owed_now(NOW)  # a full count goes at once
    acks.sent()
    acks.now()
    assert acks.needed and not acks.waiting and acks.owed_now(NOW)
