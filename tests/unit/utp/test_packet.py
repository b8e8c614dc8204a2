"""BEP 29 header and extension codec, against hand-made bytes."""

from __future__ import annotations

import struct

import pytest

from torrent_engine.errors import UtpError
from torrent_engine.net.utp.packet import (
    EXT_BITS,
    EXT_MAX_DATAGRAM,
    EXT_PADDING,
    PAD_MIN,
    Packet,
    PacketType,
    decode,
    encode,
    is_probe,
    looks_like_utp,
    make_sack,
    pad,
    sack_bits,
    seq_less,
)


def test_header_layout_matches_bep29() -> None:
    p = Packet(PacketType.SYN, 0xBEEF, 0x01020304, 0x05060708, 0x00100000, 0x1234, 0)
    raw = encode(p)
    assert raw[0] == 0x41  # type 4 (ST_SYN) << 4 | version 1
    assert raw[1] == 0  # no extension
    assert struct.unpack(">HIIIHH", raw[2:]) == (0xBEEF, 0x01020304, 0x05060708, 0x00100000, 0x1234, 0)
    assert decode(raw) == p


def test_selective_ack_extension_round_trips() -> None:
    p = Packet(PacketType.STATE, 7, 1, 2, 3, 4, 5, sack=b"\x05\x00\x00\x80")
    raw = encode(p)
    assert raw[1] == 1 and raw[20:22] == b"\x00\x04"  # ext 1, then next=0, len=4
    assert decode(raw) == p
    assert sack_bits(b"\x05\x00\x00\x80") == [0, 2, 31]  # LSB first: ack_nr+2, ack_nr+4, ack_nr+33


def test_unknown_extension_is_skipped_and_payload_kept() -> None:
    head = bytearray(encode(Packet(PacketType.DATA, 1, 0, 0, 0, 9, 8)))
    head[1] = 3  # libtorrent's close-reason extension
    raw = bytes(head) + b"\x00\x04" + b"\x00\x00\x00\x01" + b"payload"
    p = decode(raw)
    assert p.payload == b"payload" and p.sack is None


def test_a_selective_ack_of_any_byte_length_is_read() -> None:
    """libtorrent sends SACK bitmasks of 1, 2, 3... bytes (BEP 29 says multiples of 4): an ack
    that carries one must not be dropped, or its cumulative ack is lost with it."""
    for mask in (b"\x05", b"\x00\x80", b"\x01\x00\x02"):
        raw = b"\x21\x01" + b"\x00" * 18 + bytes((0, len(mask))) + mask
        p = decode(raw)
        assert p.type is PacketType.STATE and p.sack == mask
    assert sack_bits(b"\x05") == [0, 2] and sack_bits(b"\x00\x80") == [15]
    assert sack_bits(b"\x01\x00\x02") == [0, 17]


@pytest.mark.parametrize(("raw", "what"), [
    (b"\x01" * 19, "shorter than"),
    (b"\x42" + b"\x00" * 19, "version 2"),
    (b"\x51" + b"\x00" * 19, "unknown uTP packet type 5"),
    (b"\x21\x01" + b"\x00" * 18, "extension header truncated"),
    (b"\x21\x01" + b"\x00" * 18 + b"\x00\x08\x00", "truncated"),
])
def test_malformed_packets_raise_typed_errors(raw: bytes, what: str) -> None:
    with pytest.raises(UtpError, match=what):
        decode(raw)


def test_demultiplexing_by_first_byte() -> None:
    assert looks_like_utp(encode(Packet(PacketType.DATA, 1, 0, 0, 0, 0, 0)))
    assert not looks_like_utp(b"d1:ad2:id20:" + b"x" * 20 + b"e1:q4:ping1:t2:aa1:y1:qe")


def test_sequence_comparison_wraps() -> None:
    assert seq_less(0xFFFF, 0) and seq_less(0xFFF0, 5) and not seq_less(5, 0xFFF0) and not seq_less(3, 3)


def test_make_sack_sets_bits_and_pads_to_four_bytes() -> None:
    assert make_sack([0, 9]) == b"\x01\x02\x00\x00"
    assert len(make_sack([40])) == 8
    assert sack_bits(make_sack([1, 2, 33, 63])) == [1, 2, 33, 63]


def test_largest_datagram_extension_round_trips_alone_and_after_a_selective_ack() -> None:
    syn = Packet(PacketType.SYN, 7, 1, 0, 3, 4, 0, max_datagram=16427)
    raw = encode(syn)  # (after eight bytes of no extension bits: see the next test)
    assert raw[1] == EXT_BITS and raw[20:30] == bytes((EXT_MAX_DATAGRAM, 8)) + bytes(8)
    assert raw[30:] == b"\x00\x02" + (16427).to_bytes(2, "big")
    assert decode(raw) == syn
    both = Packet(PacketType.STATE, 7, 1, 2, 3, 4, 5, sack=b"\x01\x00\x00\x00", max_datagram=65000)
    raw = encode(both)
    assert raw[1] == 1 and raw[20:22] == bytes((EXT_MAX_DATAGRAM, 4))  # the sack chains to it
    assert decode(raw) == both
    assert encode(Packet(PacketType.STATE, 7, 1, 2, 3, 4, 5))[1] == 0  # no offer, no extension


def test_a_largest_datagram_extension_of_another_length_is_skipped() -> None:
    """A peer using our type number for something else (other length) says nothing about
    datagram sizes; the packet is kept."""
    for body in (b"", b"\x40", b"\x40\x00\x00"):
        raw = b"\x21" + bytes((EXT_MAX_DATAGRAM,)) + b"\x00" * 18 + bytes((0, len(body))) + body + b"tail"
        p = decode(raw)
        assert p.max_datagram == 0 and p.payload == b"tail"


def test_a_truncated_largest_datagram_extension_is_a_typed_error() -> None:
    raw = b"\x41" + bytes((EXT_MAX_DATAGRAM,)) + b"\x00" * 18 + b"\x00\x02\x40"
    with pytest.raises(UtpError, match=f"extension {EXT_MAX_DATAGRAM} of 2 bytes truncated"):
        decode(raw)
    with pytest.raises(UtpError, match="16 bits"):
        encode(Packet(PacketType.SYN, 7, 1, 0, 3, 4, 0, max_datagram=70000))


@pytest.mark.parametrize("extra", [PAD_MIN, PAD_MIN + 1, 72, 267, 268, 269, 600])
@pytest.mark.parametrize("sack", [None, b"\x05\x00\x00\x00"])
def test_padding_makes_a_datagram_larger_and_changes_nothing_it_says(extra: int, sack: bytes | None) -> None:
    """An MTU probe: eight bytes of no extension bits, then the padding extension, go first in
    the chain (any length, in links of at most 255 bytes), and the decoder skips both as any
    extension it does not act on."""
    plain = Packet(PacketType.DATA, 0x1234, 10, 20, 30_000, 7, 6, sack, b"payload" * 50)
    datagram = encode(plain)
    padded = pad(datagram, len(datagram) + extra)
    assert len(padded) == len(datagram) + extra and padded[1] == EXT_BITS and padded[20] == EXT_PADDING
    assert decode(padded) == plain and is_probe(padded) and is_probe(padded[:64])
    assert not is_probe(datagram)


def test_padding_needs_room_for_its_own_headers() -> None:
    datagram = encode(Packet(PacketType.DATA, 1, 2, 3, 4, 5, 6, None, b"x"))
    for extra in (1, 2, PAD_MIN - 1):
        with pytest.raises(UtpError, match="cannot pad"):
            pad(datagram, len(datagram) + extra)


def _version_1_to_an_old_libutp(datagram: bytes) -> bool:
    """libutp before 2013 (Transmission 3.00's): ``UTP_IsV1`` — version 1, a known type and a
    first extension type below 3; anything else it reads as a packet of version 0."""
    return datagram[0] & 0x0F == 1 and datagram[0] >> 4 <= PacketType.SYN and datagram[1] < 3


@pytest.mark.parametrize("sack", [None, b"\x05\x00\x00\x00"])
def test_every_packet_we_make_is_version_1_to_an_old_libutp(sack: bytes | None) -> None:
    """Transmission 3.00 answered our SYN carrying the largest-datagram offer (type 196 first in
    the chain) with a version-0 packet, and read our MTU probes (type 197 first) as version 0:
    our own types now follow eight bytes of no extension bits (type 2), which libutp takes."""
    made = [encode(Packet(kind, 7, 1, 0, 3, 4, 0, sack, max_datagram=offer))
            for kind in PacketType for offer in (0, 16427)]
    data = encode(Packet(PacketType.DATA, 7, 1, 0, 3, 4, 0, sack, b"x" * 1000))
    made += [pad(data, len(data) + extra) for extra in range(PAD_MIN, 400)]
    assert all(_version_1_to_an_old_libutp(d) for d in made)
    assert all(decode(d).max_datagram in (0, 16427) for d in made)
