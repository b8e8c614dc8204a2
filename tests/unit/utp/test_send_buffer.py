"""The send buffer on its own: written bytes cut into data packets as the window allows, and the
books of what is in flight after cumulative and selective acks, losses and a timeout."""

from __future__ import annotations

from torrent_engine.net.utp.packet import HEADER_SIZE, PacketType, decode
from torrent_engine.net.utp.send_buffer import SendBuffer

NOW = 1_000_000
HEADER = (7, 0, 50_000, 3)  # send_id, reply, wnd, ack_nr


def _pack(buf: SendBuffer, seq: int, *, window: int = 1 << 20, payload: int = 100,
          short_ok: bool = True) -> tuple[list[bytes], int, bool]:
    out: list[bytes] = []
    nxt, full = buf.pack(out, seq, NOW, window, window, payload, short_ok, HEADER, b"")
    return out, nxt, full


def test_write_takes_what_fits_and_a_caller_buffer_is_copied() -> None:
    buf = SendBuffer(10)
    data = bytearray(b"abcdefgh")
    assert buf.write(data) == 8 and buf.write(b"xyz") == 2 and buf.space == 0
    data[:] = b"ZZZZZZZZ"  # the caller reuses its buffer: what was written stays
    out, _, _ = _pack(buf, 1)
    assert b"".join(decode(d).payload for d in out) == b"abcdefghxy"


def test_packets_carry_the_bytes_in_order_across_chunks_with_consecutive_seq_nrs() -> None:
    buf = SendBuffer(1 << 20)
    for part in (b"a" * 150, b"b" * 30, b"c" * 170):
        buf.write(part)
    out, nxt, _ = _pack(buf, 0xFFFE)
    packets = [decode(d) for d in out]
    assert [p.seq_nr for p in packets] == [0xFFFE, 0xFFFF, 0, 1] and nxt == 2
    assert all(p.type is PacketType.DATA and p.connection_id == 7 and p.ack_nr == 3 for p in packets)
    assert b"".join(p.payload for p in packets) == b"a" * 150 + b"b" * 30 + b"c" * 170
    assert [len(p.payload) for p in packets] == [100, 100, 100, 50]
    assert buf.length == 0 and buf.in_flight == 350 and list(buf.out) == [0xFFFE, 0xFFFF, 0, 1]
    assert buf.out[1].payload == b"c" * 50 and buf.out[1].head == HEADER_SIZE


def test_the_window_stops_packing_and_says_so() -> None:
    buf = SendBuffer(1 << 20)
    buf.write(b"x" * 1000)
    out, nxt, full = _pack(buf, 10, window=250)
    assert len(out) == 2 and nxt == 12 and full  # (a third would make 300 bytes in flight)
    assert buf.length == 800 and buf.in_flight == 200


def test_nagle_holds_a_short_packet_while_others_are_in_flight() -> None:
    buf = SendBuffer(1 << 20)
    buf.write(b"x" * 130)
    out, _, _ = _pack(buf, 1, short_ok=False)
    assert [len(decode(d).payload) for d in out] == [100] and buf.length == 30
    out, _, _ = _pack(buf, 2, short_ok=True)
    assert [len(decode(d).payload) for d in out] == [30] and buf.length == 0


def test_acks_losses_and_a_timeout_keep_the_books_of_what_is_in_flight() -> None:
    buf = SendBuffer(1 << 20)
    buf.write(b"x" * 500)
    _pack(buf, 1)  # packets 1..5, 100 bytes each
    buf.mark_lost(buf.out[2])
    buf.mark_lost(buf.out[2])  # (once only)
    assert buf.in_flight == 400 and buf.to_resend == 1
    acked, sample = buf.ack_through(0, 2, NOW + 300)
    assert acked == 200 and sample == 300 and buf.in_flight == 300 and buf.to_resend == 0
    acked, sample = buf.ack_selected(2, [1], NOW + 400, sample)  # packet 5 (ack + 2 + 1)
    assert acked == 100 and sample == 400 and list(buf.out) == [3, 4] and buf.in_flight == 200
    buf.resend_all()
    assert buf.in_flight == 0 and buf.to_resend == 2 and all(p.need_resend for p in buf.out.values())


def test_a_packet_sent_twice_gives_no_round_trip_sample() -> None:
    buf = SendBuffer(1 << 20)
    buf.write(b"x" * 100)
    _pack(buf, 1)
    buf.out[1].transmissions = 2
    assert buf.ack_through(0, 1, NOW + 500) == (100, None)


def test_the_packets_a_selective_ack_shows_lost_and_the_newest_still_in_flight() -> None:
    buf = SendBuffer(1 << 20)
    buf.write(b"x" * 500)
    _pack(buf, 0xFFFE)  # packets 0xFFFE, 0xFFFF, 0, 1, 2
    buf.out[0xFFFF].fast_resent = True  # (already sent again for a loss)
    assert [p.seq for p in buf.not_resent_before(1)] == [0xFFFE, 0]  # across the wrap
    buf.mark_lost(buf.out[2])
    newest = buf.newest_in_flight()
    assert newest is not None and newest.seq == 1
    buf.resend_all()
    assert buf.newest_in_flight() is None
