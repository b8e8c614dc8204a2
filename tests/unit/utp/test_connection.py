"""The connection core, packet by packet with a fake clock: handshake ids, acks, retransmits."""

from __future__ import annotations

import random

from torrent_engine.net.utp import events as ev
from torrent_engine.net.utp.congestion import RttEstimator
from torrent_engine.net.utp.connection import UtpConnection
from torrent_engine.net.utp.packet import Packet, PacketType, decode, encode, make_sack
from torrent_engine.net.utp.state import TRANSITIONS, State

from .simnet import Link, Pair


def _handshake(**kw: int) -> tuple[UtpConnection, UtpConnection, int]:
    now = 1_000_000
    a = UtpConnection.initiate(100, 500, **kw)
    [syn_raw] = a.datagrams(now)
    syn = decode(syn_raw)
    b = UtpConnection.accept(syn, 9000, now)
    [ack_raw] = b.datagrams(now)
    a.receive_packet(decode(ack_raw), now + 1000)
    return a, b, now + 1000


def test_connection_ids_follow_bep29() -> None:
    a = UtpConnection.initiate(100, 500)
    syn = decode(a.datagrams(0)[0])
    assert syn.type is PacketType.SYN and syn.connection_id == 100 and syn.seq_nr == 500
    b = UtpConnection.accept(syn, 9000, 10)
    state = decode(b.datagrams(10)[0])
    # the acceptor sends on the SYN's id, acks the SYN's seq_nr, and offers its own seq_nr
    assert state.type is PacketType.STATE and state.connection_id == 100 and state.ack_nr == 500
    assert (b.recv_id, b.send_id) == (101, 100) and (a.recv_id, a.send_id) == (100, 101)
    a.receive_packet(state, 20)
    assert a.state is State.CONNECTED and ev.Connected() in a.events()
    a.send(b"hello")
    data = decode(a.datagrams(30)[0])
    assert data.connection_id == 101 and data.seq_nr == 501 and data.ack_nr == 8999
    b.receive_packet(data, 40)
    assert b.read() == b"hello"


def test_out_of_order_data_is_sacked_then_delivered_in_order() -> None:
    a, b, now = _handshake()
    a.send(b"x" * (a.payload_size * 4))
    pkts = [decode(d) for d in a.datagrams(now)]
    assert len(pkts) >= 2
    a.cc.cwnd = 10 ** 6
    pkts += [decode(d) for d in a.datagrams(now)]
    assert len(pkts) == 4
    for p in pkts[1:]:
        b.receive_packet(p, now)
    ack = decode(b.datagrams(now)[0])
    assert ack.type is PacketType.STATE and ack.ack_nr == (pkts[0].seq_nr - 1) & 0xFFFF
    assert ack.sack is not None and ack.sack[0] & 0b111 == 0b111  # 2nd, 3rd, 4th held
    assert b.readable == 0
    b.receive_packet(pkts[0], now)
    assert b.read() == b"x" * (a.payload_size * 4)


def test_three_sacked_packets_past_a_hole_fast_retransmit_it() -> None:
    a, b, now = _handshake()
    a.cc.cwnd = 10 ** 6
    a.send(b"y" * (a.payload_size * 5))
    pkts = [decode(d) for d in a.datagrams(now)]
    first = pkts[0]
    sack = make_sack([0, 1, 2])  # packets first+1 .. first+3 arrived, first did not
    a.receive_packet(Packet(PacketType.STATE, a.recv_id, now, 0, 1 << 20, 0, (first.seq_nr - 1) & 0xFFFF,
                            sack=sack), now + 5000)
    again = [decode(d) for d in a.datagrams(now + 5000)]
    assert again and again[0].seq_nr == first.seq_nr and again[0].payload == first.payload
    assert a.packets_resent == 1


def test_timeout_resends_and_shrinks_the_window() -> None:
    a, b, now = _handshake()
    a.send(b"z" * 3000)
    sent = [decode(d) for d in a.datagrams(now)]
    probe_at = a.timeout_at  # the tail loss probe comes first, and does not cut the window
    assert probe_at is not None
    a.on_timer(probe_at)
    cwnd = a.cc.cwnd
    # (the short rest that Nagle held back: new data goes first)
    assert [decode(d).seq_nr for d in a.datagrams(probe_at)] == [sent[-1].seq_nr + 1] and a.cc.cwnd == cwnd
    deadline = a.timeout_at
    assert deadline is not None and deadline > probe_at
    a.on_timer(deadline)
    assert a.cc.cwnd <= 2 * a.packet_size
    resent = [decode(d) for d in a.datagrams(deadline)]
    assert resent[0].seq_nr == sent[0].seq_nr
    assert a.timeout_at is not None and a.timeout_at - deadline >= 2 * (deadline - now) - 1


def test_reset_closes_with_an_error() -> None:
    a, b, now = _handshake()
    a.receive_packet(decode(b.reset_packet(now)), now)
    assert a.state is State.CLOSED and ev.Closed("connection reset by peer") in a.events()


def test_stray_packets_are_dropped_not_fatal() -> None:
    a = UtpConnection.initiate(1, 1)
    a.datagrams(0)
    a.receive_packet(Packet(PacketType.FIN, 1, 0, 0, 0, 0, 0), 1)  # FIN before the handshake
    assert a.state is State.SYN_SENT and a.packets_dropped == 1
    assert (State.SYN_SENT, PacketType.FIN) not in TRANSITIONS


def test_window_closes_when_the_application_does_not_read() -> None:
    a = UtpConnection.initiate(100, 500)
    syn = decode(a.datagrams(0)[0])
    b = UtpConnection.accept(syn, 9000, 10, recv_buffer=4000)
    a.receive_packet(decode(b.datagrams(10)[0]), 20)
    a.send(b"w" * 4000)
    for d in a.datagrams(30):
        b.receive_packet(decode(d), 40)
    ack = decode(b.datagrams(40)[0])
    assert ack.wnd_size < 1400
    b.read()
    update = b.datagrams(50)
    assert update and decode(update[0]).wnd_size == 4000  # the reopened window is announced
    assert encode(decode(update[0])) == update[0]


def test_a_peer_ignoring_our_window_cannot_grow_our_buffers() -> None:
    a = UtpConnection.initiate(100, 500)
    syn = decode(a.datagrams(0)[0])
    b = UtpConnection.accept(syn, 9000, 10, recv_buffer=4000)
    b.datagrams(10)
    payload = b"p" * 1000
    for i in range(50):  # in order, never read by the application
        b.receive_packet(Packet(PacketType.DATA, 101, 20, 0, 1 << 20, 501 + i, 8999, None, payload), 20)
    for i in range(60, 1000):  # far ahead, for the reordering buffer
        b.receive_packet(Packet(PacketType.DATA, 101, 20, 0, 1 << 20, 501 + i, 8999, None, payload), 20)
    assert b.readable <= 2 * 4000
    assert b.receive_window == 0 and b.packets_dropped > 0


def test_libtorrents_short_selective_ack_is_taken() -> None:
    """libtorrent's SACK bitmask is as many bytes as it needs (here one): the ack is not
    dropped; the sacked packets leave flight and the hole before them is resent at once."""
    import struct

    a, b, now = _handshake()
    a.cc.cwnd = 100_000  # past slow start: five packets go out at once
    a.send(b"z" * (a.payload_size * 5))
    out = [decode(d) for d in a.datagrams(now)]
    assert len(out) == 5
    first = out[0].seq_nr
    head = struct.pack(">BBHIIIHH", (PacketType.STATE << 4) | 1, 1, a.recv_id, 0, 0, 1 << 20,
                       b.seq_nr, (first - 1) & 0xFFFF)
    a.receive_datagram(head + b"\x00\x01\x0f", now + 1000)  # packets first+1 .. first+4 arrived
    assert a.packets_dropped == 0
    assert a.bytes_in_flight == 0  # the four sacked are acked, the first is marked lost
    resent = [decode(d) for d in a.datagrams(now + 2000)]
    assert [p.seq_nr for p in resent if p.type is PacketType.DATA] == [first]


def test_data_packets_of_one_call_share_a_header_but_seq_nr() -> None:
    a, b, now = _handshake()
    a.cc.cwnd = 10 ** 6
    data = bytes(range(256)) * 40  # 7.5 packets
    a.send(data)
    pkts = [decode(d) for d in a.datagrams(now + 5)]
    # full packets go while others are in flight; the short tail waits for them (Nagle)
    assert [len(p.payload) for p in pkts] == [a.payload_size] * 7
    assert [p.seq_nr for p in pkts] == [(pkts[0].seq_nr + i) & 0xFFFF for i in range(7)]
    assert {(p.type, p.connection_id, p.timestamp, p.ack_nr, p.wnd_size) for p in pkts} == {
        (PacketType.DATA, a.send_id, now + 5, a.ack_nr, a.receive_window)}
    assert b"".join(p.payload for p in pkts) == data[:7 * a.payload_size]
    assert a.bytes_in_flight == 7 * a.payload_size and a.packets_sent == 8  # (and the SYN)
    for p in pkts:
        b.receive_packet(p, now + 6)
    a.receive_packet(decode(b.datagrams(now + 10_000)[0]), now + 10_001)  # (the deferred ack)
    assert a.bytes_in_flight == 0
    [tail] = [decode(d) for d in a.datagrams(now + 10_002)]
    assert tail.payload == data[7 * a.payload_size:] and tail.seq_nr == (pkts[-1].seq_nr + 1) & 0xFFFF


def test_data_sent_while_packets_wait_out_of_order_carries_the_selective_ack() -> None:
    a, b, now = _handshake()
    a.cc.cwnd = b.cc.cwnd = 10 ** 6
    a.send(b"a" * (a.payload_size * 3))
    first, second, third = (decode(d) for d in a.datagrams(now))
    b.receive_packet(third, now)  # the first two are late: b holds the third
    b.send(b"b" * (b.payload_size * 2))
    out = [decode(d) for d in b.datagrams(now + 1)]
    data = [p for p in out if p.type is PacketType.DATA]
    assert len(data) == 2 and all(p.sack is not None and p.sack[0] == 0b10 for p in data)
    assert all(p.ack_nr == (first.seq_nr - 1) & 0xFFFF for p in data)
    assert b"".join(p.payload for p in data) == b"b" * (b.payload_size * 2)
    for p in data:
        a.receive_packet(p, now + 2)
    assert a.read() == b"b" * (b.payload_size * 2)
    assert a._tx.out.keys() == {first.seq_nr, second.seq_nr}  # the third is acked selectively


def test_written_bytes_go_out_in_order_across_writes_and_are_not_taken_from_a_changed_buffer() -> None:
    a, b, now = _handshake(send_buffer=10 ** 7)
    a.cc.cwnd = 10 ** 7
    rng = __import__("random").Random(3)
    expect = bytearray()
    for i in range(300):  # writes of 1 byte to ~2 packets, of every kind a caller may pass
        piece = rng.randbytes(rng.choice((1, 13, 700, a.payload_size, 2 * a.payload_size + 5)))
        expect += piece
        kind = i % 4
        if kind == 0:
            assert a.send(piece) == len(piece)
        elif kind == 1:
            mutable = bytearray(piece)
            assert a.send(mutable) == len(piece)
            mutable[:] = bytes(len(mutable))  # the caller reuses its buffer: what was written stays
        elif kind == 2:
            assert a.send(memoryview(piece)) == len(piece)
        else:
            mutable = bytearray(piece)
            assert a.send(memoryview(mutable)) == len(piece)
            mutable[:] = bytes(len(mutable))
    assert a.unsent == len(expect)
    got = bytearray()
    t = now
    while a.unsent or a.bytes_in_flight:
        t += 10_000
        pkts = [decode(d) for d in a.datagrams(t)]
        assert all(len(p.payload) == a.payload_size for p in pkts[:-1])
        got += b"".join(p.payload for p in pkts)
        for p in pkts:
            b.receive_packet(p, t)
        for ack in b.datagrams(t + 5_000):
            a.receive_packet(decode(ack), t + 5_001)
    assert bytes(got) == bytes(expect) and b.read() == bytes(expect)


def test_a_partial_write_keeps_the_rest_for_the_caller() -> None:
    a, _, now = _handshake(send_buffer=5000)
    data = bytes(range(256)) * 30  # 7 680 bytes
    assert a.send(data) == 5000 and a.send_space == 0 and a.send(b"more") == 0
    a.cc.cwnd = 10 ** 6
    pkts = [decode(d) for d in a.datagrams(now)]  # three full packets (the short rest waits: Nagle)
    assert b"".join(p.payload for p in pkts) == data[:3 * a.payload_size]
    assert a.send(memoryview(data)[5000:]) == 2680  # (the packets made room for it)
    a.close(abandon=False)  # closing: the short tail goes too
    pkts = [decode(d) for d in a.datagrams(now + 1)]
    sent = b"".join(p.payload for p in pkts if p.type is PacketType.DATA)
    assert sent == data[3 * a.payload_size:] and pkts[-1].type is PacketType.FIN


def test_a_closed_window_is_probed_once_per_timeout_not_on_every_ack() -> None:
    a = UtpConnection.initiate(100, 500)
    syn = decode(a.datagrams(0)[0])
    b = UtpConnection.accept(syn, 9000, 10, recv_buffer=4000)
    a.receive_packet(decode(b.datagrams(10)[0]), 20)
    a.send(b"w" * 20_000)  # far more than b takes before its reader reads
    now = 30
    for _ in range(20):  # b's reader is paused: every ack says the window is (nearly) closed
        now += 100
        for d in a.datagrams(now):
            b.receive_packet(decode(d), now)
        for ack in b.datagrams(now + 1_000_000):  # (acked at once: the window is low)
            a.receive_packet(decode(ack), now)
        if not a.bytes_in_flight and a.peer_wnd < a.payload_size:
            break
    assert b.receive_window < b.payload_size and not a.bytes_in_flight
    sent = a.packets_sent
    for i in range(50):  # acks with a closed window, nothing in flight: no packet goes
        assert a.datagrams(now + i) == []
    assert a.packets_sent == sent
    due = a.timeout_at
    assert due is not None and due >= now + 500_000  # one probe per retransmission timeout
    a.on_timer(due)
    [probe] = a.datagrams(due)
    assert decode(probe).type is PacketType.DATA
    b.receive_packet(decode(probe), due)
    a.receive_packet(decode(b.datagrams(due)[0]), due)
    assert a.datagrams(due + 1) == []  # still closed: the next probe waits a timeout again
    assert a.timeout_at is not None and a.timeout_at >= due + 500_000
    got = b.read()  # the reader takes what waited: the window opens and b says so at once
    [update] = b.datagrams(due + 2)
    a.receive_packet(decode(update), due + 3)
    assert len(a.datagrams(due + 4)) >= 2  # data flows again without waiting for the timer
    assert got == b"w" * len(got)


def _window_of(a: UtpConnection, packets: int, now: int) -> list[Packet]:
    """``a`` past slow start with a window of ``packets`` full packets, all of them sent."""
    a.cc.slow_start = False
    a.cc.cwnd = float(packets * a.payload_size)
    a.send(b"w" * (a.payload_size * packets * 4))
    pkts = [decode(d) for d in a.datagrams(now)]
    assert len(pkts) == packets  # the window, not the data, stopped the send
    return pkts


def _ack(a: UtpConnection, ack_nr: int, now: int, sack: bytes | None = None) -> bytes:
    return encode(Packet(PacketType.STATE, a.recv_id, now, 0, 1 << 20, 0, ack_nr & 0xFFFF, sack=sack))


def test_a_batch_of_acks_of_a_full_window_grows_it_by_a_round_trips_gain() -> None:
    # A receiver that acks every packet (libtorrent) sends a window's acks that arrive in one
    # batch; the window is refilled after the batch, so each ack but the first sees fewer bytes
    # in flight than the window. The window was full all the same: it must grow by LEDBAT's
    # gain for a round trip (3000 bytes at no queueing delay), not by one ack's share of it.
    a, b, now = _handshake()
    pkts = _window_of(a, 20, now)
    before = a.cc.cwnd
    a.receive_datagrams([_ack(a, p.seq_nr, now + 100_000) for p in pkts], now + 100_000)
    assert a.cc.cwnd - before >= 2500


def test_a_window_left_unfilled_by_the_application_does_not_grow() -> None:
    a, b, now = _handshake()
    a.cc.slow_start = False
    a.cc.cwnd = float(20 * a.payload_size)
    a.send(b"w" * (a.payload_size * 5))  # a quarter of the window: the application limits us
    pkts = [decode(d) for d in a.datagrams(now)]
    assert len(pkts) == 5
    before = a.cc.cwnd
    a.receive_datagrams([_ack(a, p.seq_nr, now + 100_000) for p in pkts], now + 100_000)
    assert a.cc.cwnd == before


def test_a_fast_retransmit_goes_at_once_though_the_halved_window_is_full() -> None:
    # Three packets sacked past a hole: the window is halved, the bytes still in flight are more
    # than the halved window, and the lost packet goes out all the same (it is what the receiver
    # holds the rest behind), as TCP's fast retransmit does.
    a, b, now = _handshake()
    pkts = _window_of(a, 20, now)
    cwnd = a.cc.cwnd
    first = pkts[0]
    a.receive_packet(decode(_ack(a, first.seq_nr - 1, now + 100_000, make_sack([0, 1, 2]))), now + 100_000)
    assert a.cc.cwnd < 0.6 * cwnd  # halved (after the three sacked packets grew it a little)
    assert a.bytes_in_flight > a.cc.cwnd
    again = [decode(d) for d in a.datagrams(now + 100_000)]
    assert [p.seq_nr for p in again] == [first.seq_nr]
    assert again[0].payload == first.payload


def _acked(a: UtpConnection, ack_nr: int, at: int, echo: int, sack: bytes | None = None) -> Packet:
    """An ack sent at ``at`` (the peer's clock is ours here) of the packet of ours sent at ``echo``:
    its timestamp less the delay it reports is that packet's send time."""
    return Packet(PacketType.STATE, a.recv_id, at, at - echo, 1 << 20, 0, ack_nr & 0xFFFF, sack=sack)


def _tail(a: UtpConnection, packets: int, now: int) -> list[Packet]:
    """``a`` past slow start with a 100 ms round trip sends its last ``packets`` full packets."""
    a.rtt = RttEstimator()
    a.rtt.sample(100_000)
    a.cc.slow_start = False
    a.cc.cwnd = float(20 * a.payload_size)
    a.send(b"t" * (a.payload_size * packets))
    pkts = [decode(d) for d in a.datagrams(now)]
    assert len(pkts) == packets and a.unsent == 0
    return pkts


def _probed(a: UtpConnection, pkts: list[Packet], acked: int, now: int) -> int:
    """``pkts[acked]`` and those before it acked 100 ms after ``now``, then silence: the tail loss
    probe's deadline, run (``datagrams`` sends the probe)."""
    t = now + 100_000
    a.receive_packet(_acked(a, pkts[acked].seq_nr, t, now), t)
    probe_at = a.timeout_at
    assert probe_at is not None
    cwnd = a.cc.cwnd
    a.on_timer(probe_at)
    assert a.cc.cwnd == cwnd  # (the probe's deadline cuts no window)
    return probe_at


def test_early_retransmit_a_hole_with_fewer_than_three_packets_behind_it_at_the_end_of_the_data() -> None:
    # The last three packets: the first is lost, the two behind it arrive. Three sacked packets can
    # never come, and no new data can go to draw more acks: all those behind it acked, it is lost.
    a, b, now = _handshake()
    pkts = _tail(a, 3, now)
    cwnd = a.cc.cwnd
    a.receive_packet(_acked(a, pkts[0].seq_nr - 1, now + 100_000, now, make_sack([0, 1])), now + 100_000)
    again = [decode(d) for d in a.datagrams(now + 100_000)]
    assert [p.seq_nr for p in again] == [pkts[0].seq_nr] and again[0].payload == pkts[0].payload
    assert a.cc.cwnd < 0.6 * cwnd  # a loss: the window halved


def test_early_retransmit_needs_every_packet_behind_the_hole_acked() -> None:
    a, b, now = _handshake()
    pkts = _tail(a, 3, now)
    a.receive_packet(_acked(a, pkts[0].seq_nr - 1, now + 100_000, now, make_sack([1])), now + 100_000)
    assert a.datagrams(now + 100_000) == []  # the second may still come: no resend yet


def test_no_early_retransmit_while_new_data_can_draw_more_acks() -> None:
    # Three packets of a full window sent, the first lost, two sacked: the window has room for
    # new data again, whose acks will say whether the hole is lost (three sacked past it).
    a, b, now = _handshake()
    pkts = _window_of(a, 3, now)
    a.receive_packet(decode(_ack(a, pkts[0].seq_nr - 1, now + 100_000, make_sack([0, 1]))), now + 100_000)
    out = [decode(d) for d in a.datagrams(now + 100_000)]
    assert out and pkts[0].seq_nr not in [p.seq_nr for p in out]  # new data, not the hole
    a.receive_packet(decode(_ack(a, pkts[0].seq_nr - 1, now + 200_000, make_sack([0, 1, 2]))), now + 200_000)
    assert pkts[0].seq_nr in [decode(d).seq_nr for d in a.datagrams(now + 200_000)]


def test_a_tail_loss_probe_goes_two_round_trips_after_the_last_ack_without_cutting_the_window() -> None:
    # The last five packets; the first three are acked, the acks of the last two never come. Long
    # before the retransmission timeout (500 ms), the last packet goes again, once, and the
    # window stays: the receiver's answer will show what was lost.
    a, b, now = _handshake()
    pkts = _tail(a, 5, now)
    t = now + 100_000
    a.receive_packet(_acked(a, pkts[2].seq_nr, t, now), t)
    cwnd = a.cc.cwnd
    assert a.datagrams(t) == []
    probe_at = a.timeout_at
    assert probe_at is not None and t + 200_000 <= probe_at <= t + 230_000  # two SRTT and a little
    a.on_timer(probe_at - 1)
    assert a.datagrams(probe_at - 1) == []
    a.on_timer(probe_at)
    [probe] = [decode(d) for d in a.datagrams(probe_at)]
    assert probe.seq_nr == pkts[4].seq_nr and probe.payload == pkts[4].payload
    assert a.cc.cwnd == cwnd and a.loss_probe.sent == 1 and a.bytes_in_flight == 2 * a.payload_size
    # one probe per silence: nothing more until the retransmission timeout
    rto_at = a.timeout_at
    assert rto_at is not None and rto_at >= t + 500_000
    a.on_timer(rto_at - 1)
    assert a.datagrams(rto_at - 1) == [] and a.loss_probe.sent == 1
    a.on_timer(rto_at)
    assert a.datagrams(rto_at) and a.timeouts == 1


def test_a_probe_that_repaired_the_last_packet_counts_as_a_loss() -> None:
    # Only the last packet was lost: the probe's copy is what the receiver acks (the ack echoes
    # the probe's time), so the first copy was lost, and the window halves once, as for a loss.
    a, b, now = _handshake()
    pkts = _tail(a, 5, now)
    probe_at = _probed(a, pkts, 3, now)
    assert [decode(d).seq_nr for d in a.datagrams(probe_at)] == [pkts[4].seq_nr]
    cwnd = a.cc.cwnd
    a.receive_packet(_acked(a, pkts[4].seq_nr, probe_at + 100_000, probe_at), probe_at + 100_000)
    assert not a._tx.out and a.cc.ssthresh == cwnd / 2 and a.cc.cwnd < 0.6 * cwnd


def test_a_probe_that_showed_holes_gets_them_resent_at_once_and_the_window_halved_once() -> None:
    # The last two packets were lost: the probe's copy of the last arrives, its selective ack
    # shows the hole before it (one packet behind it, acked: early retransmit), and the window
    # halves once for the two.
    a, b, now = _handshake()
    pkts = _tail(a, 5, now)
    probe_at = _probed(a, pkts, 2, now)
    a.datagrams(probe_at)
    cwnd = a.cc.cwnd
    answer = probe_at + 100_000
    a.receive_packet(_acked(a, pkts[2].seq_nr, answer, probe_at, make_sack([0])), answer)
    assert [decode(d).seq_nr for d in a.datagrams(answer)] == [pkts[3].seq_nr]
    a.receive_packet(_acked(a, pkts[4].seq_nr, answer + 100_000, answer), answer + 100_000)
    assert not a._tx.out and a.cc.ssthresh == cwnd / 2


def test_a_spurious_probe_does_not_shrink_the_window() -> None:
    # The ack of the last packet was only late: it comes after the probe went, echoing the first
    # copy's time. Nothing was lost; the window stays.
    a, b, now = _handshake()
    pkts = _tail(a, 5, now)
    probe_at = _probed(a, pkts, 3, now)
    cwnd = a.cc.cwnd
    assert [decode(d).seq_nr for d in a.datagrams(probe_at)] == [pkts[4].seq_nr]
    a.receive_packet(_acked(a, pkts[4].seq_nr, probe_at + 10_000, now), probe_at + 10_000)
    assert not a._tx.out and a.cc.cwnd >= cwnd and a.cc.ssthresh > cwnd


def test_a_lost_retransmission_is_sent_again_by_the_probe_before_the_timeout() -> None:
    # A fast retransmit whose copy is lost too: the later packets are all sacked, no selective ack
    # can resend it again, and acks that sack new data keep the retransmission timeout away. Two
    # round trips after acked_seq last moved, the probe sends it again (not new data).
    a, b, now = _handshake()
    a.rtt = RttEstimator()
    for _ in range(20):
        a.rtt.sample(100_000)
    pkts = _window_of(a, 10, now)
    t0 = now + 100_000
    a.receive_packet(decode(_ack(a, pkts[0].seq_nr, t0)), t0)  # acked_seq moves for the last time
    armed = a.timeout_at
    hole = pkts[1].seq_nr
    t1 = t0 + 1_000
    a.receive_packet(decode(_ack(a, hole - 1, t1, make_sack([0, 1, 2]))), t1)
    assert hole in [decode(d).seq_nr for d in a.datagrams(t1)]  # (this copy is lost)
    t2 = t1 + 1_000
    a.receive_packet(decode(_ack(a, hole - 1, t2, make_sack(list(range(8))))), t2)
    new = [decode(d) for d in a.datagrams(t2)]
    assert new and all(p.seq_nr != hole for p in new)
    probe_at = a.timeout_at  # two round trips after acked_seq last moved (new data does not defer it)
    assert probe_at is not None and probe_at == armed and probe_at <= t0 + 250_000
    a.on_timer(probe_at)
    assert [decode(d).seq_nr for d in a.datagrams(probe_at)] == [hole]
    assert a.timeouts == 0 and a.loss_probe.sent == 1


class _StallingLink(Link):
    """A link that holds what is sent in the first ``stall_us`` of every ``period_us`` until the
    stall ends (in order, none lost): the acks of a receiver that pauses now and then."""

    period_us = 600_000
    stall_us = 300_000

    def transit(self, size: int, now: int, rng: random.Random) -> int | None:
        at = super().transit(size, now, rng)
        phase = now % self.period_us
        if at is not None and phase < self.stall_us:
            at = max(at, now - phase + self.stall_us + self.delay_us)
        return at


def test_a_lossless_transfer_with_stalling_acks_has_no_window_cut() -> None:
    # The acks stop for 300 ms now and then (shorter than the retransmission timeout, longer than
    # two round trips): probes go, new data or the last packet again, and the late acks that come
    # then answer the first copies. Nothing was lost: no probe may cut the window.
    pair = Pair(Link(delay_us=20_000, rate=1_000_000, queue_limit=400_000), _StallingLink(delay_us=20_000))
    cuts: list[int] = []
    on_loss = pair.a.cc.on_loss
    pair.a.cc.on_loss = lambda: (cuts.append(pair.now), on_loss())[1]  # type: ignore[method-assign]
    payload = bytes(range(256)) * 12_000  # ~3 MB, ~3 s at the link's rate
    pair.run(payload)
    assert bytes(pair.received) == payload and pair.ab.dropped == pair.ba.dropped == 0
    assert pair.a.loss_probe.sent > 1 and pair.a.packets_resent >= 1  # (new data, and a packet sent again)
    assert cuts == [] and pair.a.timeouts == 0
