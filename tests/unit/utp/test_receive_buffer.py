"""The receive buffer on its own: in-order bytes read whole or in parts, packets held behind a
hole, the selective ack that names them, and the window left."""

from __future__ import annotations

from torrent_engine.net.utp.packet import PacketType, sack_bits
from torrent_engine.net.utp.receive_buffer import MAX_REORDER, SACK_LIMIT, ReceiveBuffer

DATA = int(PacketType.DATA)


def test_reads_take_the_bytes_in_order_whole_or_cut_anywhere() -> None:
    buf = ReceiveBuffer(1000)
    for part in (b"abc", b"defg", b"hi"):
        buf.append(part)
    assert buf.length == 9 and buf.window == 991
    assert buf.read(5) == b"abcde" and buf.read(1) == b"f" and buf.length == 3
    assert buf.read_chunk() == b"g" and buf.read(100) == b"hi" and buf.read(100) == b""
    assert buf.read_chunk() == b"" and buf.window == 1000


def test_held_packets_wait_for_the_hole_and_are_named_in_the_selective_ack() -> None:
    buf = ReceiveBuffer(1000)
    assert buf.sack(10) is None  # nothing held: no selective ack
    buf.hold(13, DATA, b"x" * 50, 3)
    buf.hold(15, DATA, b"y" * 50, 5)
    buf.hold(13, DATA, b"z" * 50, 3)  # (held already: kept once)
    assert buf.window == 900
    sack = buf.sack(10)  # the hole is 11; bit 0 is 12
    assert sack is not None and len(sack) <= SACK_LIMIT and sack_bits(sack) == [1, 3]
    assert buf.take(12) is None and buf.take(13) == (DATA, b"x" * 50) and buf.window == 950
    buf.drop_held()
    assert buf.held == {} and buf.window == 1000 and buf.sack(10) is None


def test_packets_too_far_ahead_or_past_the_room_are_not_held() -> None:
    buf = ReceiveBuffer(100)
    buf.hold(5000, DATA, b"x", MAX_REORDER + 1)
    buf.hold(3, DATA, b"x" * 101, 2)
    assert buf.held == {} and buf.window == 100
