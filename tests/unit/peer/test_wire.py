"""Sans-I/O peer wire: round trips of every message and every rejection rule, bytes only."""

from __future__ import annotations

import struct

import pytest

from torrent_engine.errors import PeerProtocolError
from torrent_engine.net.peer.buffer import ReceiveBuffer
from torrent_engine.net.peer.messages import (
    BLOCK_SIZE,
    AllowedFast,
    Bitfield,
    Cancel,
    Choke,
    Extended,
    Handshake,
    Hashes,
    HashReject,
    HashRequest,
    Have,
    HaveAll,
    HaveNone,
    Interested,
    KeepAlive,
    Message,
    NotInterested,
    Piece,
    Port,
    RejectRequest,
    Request,
    SuggestPiece,
    Unchoke,
    make_reserved,
)
from torrent_engine.net.peer.wire import PeerWire, allowed_fast_set, check_bitfield

INFO_HASH = bytes(range(20))
OTHER_HASH = bytes(range(1, 21))
PEER_A = b"-TE0100-aaaaaaaaaaaa"
PEER_B = b"-LT2010-bbbbbbbbbbbb"
PIECE_LENGTH = 32 * 1024
NUM_PIECES = 10
LAST_PIECE = 20000  # the last piece is short


def piece_size(index: int) -> int:
    return LAST_PIECE if index == NUM_PIECES - 1 else PIECE_LENGTH


def make_wire(
    *, fast: bool = True, extension: bool = True, peer_fast: bool = True, peer_ext: bool = True, **kw: object
) -> PeerWire:
    """A wire that has already received the peer's handshake."""
    wire = PeerWire(
        info_hash=INFO_HASH,
        peer_id=PEER_A,
        reserved=make_reserved(fast=fast, extension=extension),
        num_pieces=kw.pop("num_pieces", NUM_PIECES),  # type: ignore[arg-type]
        piece_size=kw.pop("piece_size", piece_size),  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )
    peer_reserved = make_reserved(fast=peer_fast, extension=peer_ext)
    wire.receive_data(Handshake(peer_reserved, INFO_HASH, PEER_B).to_bytes())
    hs = wire.next_event()
    assert isinstance(hs, Handshake)
    return wire


def parse_all(wire: PeerWire, data: bytes) -> list[Message]:
    wire.receive_data(data)
    return list(wire.events())


ALL_MESSAGES: list[Message] = [
    KeepAlive(),
    Choke(),
    Unchoke(),
    Interested(),
    NotInterested(),
    Have(3),
    Bitfield(bytes([0b10100000, 0b01000000])),  # 10 pieces: spare bits clear
    Request(2, 16384, 16384),
    Piece(2, 16384, b"x" * 100),
    Cancel(2, 16384, 16384),
    Port(6881),
    HaveAll(),
    HaveNone(),
    SuggestPiece(9),
    RejectRequest(9, 0, LAST_PIECE - 16384),
    AllowedFast(0),
    Extended(0, b"d1:md11:ut_metadatai3eee"),
    Extended(3, b"d8:msg_typei0e5:piecei0ee"),
    HashRequest(b"r" * 32, 0, 512, 512, 3),
    HashReject(b"r" * 32, 2, 0, 2, 0),
    Hashes(b"r" * 32, 0, 0, 512, 10, b"h" * 32 * 522),  # the largest we accept: 512 + 10 uncles
    Hashes(b"r" * 32, 0, 4, 4, 2, b"h" * 32 * 5),
]


def test_handshake_round_trip_and_negotiation() -> None:
    ours = PeerWire(info_hash=INFO_HASH, peer_id=PEER_A, reserved=make_reserved(fast=True, extension=True))
    raw = ours.handshake()
    assert len(raw) == 68 and raw[:20] == b"\x13BitTorrent protocol"
    assert raw[25] & 0x10 and raw[27] & 0x04  # BEP 10 byte 5, BEP 6 byte 7
    theirs = PeerWire(info_hash=None, peer_id=PEER_B, reserved=make_reserved(fast=False, extension=True))
    theirs.receive_data(raw)
    hs = theirs.next_event()
    assert hs == Handshake(make_reserved(fast=True, extension=True), INFO_HASH, PEER_A)
    assert theirs.info_hash == INFO_HASH  # adopted by the receiving side
    assert theirs.extension and not theirs.fast and not theirs.dht
    assert theirs.handshake()[28:48] == INFO_HASH


def test_handshake_split_in_single_bytes() -> None:
    wire = PeerWire(info_hash=INFO_HASH, peer_id=PEER_A)
    raw = Handshake(make_reserved(dht=True), INFO_HASH, PEER_B).to_bytes() + Have(1).to_bytes()
    out: list[Message] = []
    for i in range(len(raw)):
        wire.receive_data(raw[i : i + 1])
        out.extend(wire.events())
    assert out == [Handshake(make_reserved(dht=True), INFO_HASH, PEER_B), Have(1)]


def test_handshake_wrong_info_hash() -> None:
    wire = PeerWire(info_hash=INFO_HASH, peer_id=PEER_A)
    wire.receive_data(Handshake(bytes(8), OTHER_HASH, PEER_B).to_bytes())
    with pytest.raises(PeerProtocolError, match="another torrent"):
        wire.next_event()


def test_handshake_wrong_protocol_rejected_early() -> None:
    wire = PeerWire(info_hash=INFO_HASH, peer_id=PEER_A)
    wire.receive_data(b"GET / HTTP/1.1\r\n")
    with pytest.raises(PeerProtocolError, match="not a BitTorrent handshake"):
        wire.next_event()
    with pytest.raises(PeerProtocolError):  # the error sticks
        wire.next_event()


@pytest.mark.parametrize("msg", ALL_MESSAGES, ids=lambda m: type(m).__name__)
def test_round_trip_every_message(msg: Message) -> None:
    wire = make_wire()
    assert parse_all(wire, wire.send(msg)) == [msg]


def test_round_trip_stream_of_all_messages_any_split() -> None:
    stream = b"".join(m.to_bytes() for m in ALL_MESSAGES)
    for step in (1, 3, 7, 13, 100, len(stream)):
        wire = make_wire()
        out: list[Message] = []
        for i in range(0, len(stream), step):
            wire.receive_data(stream[i : i + step])
            out.extend(wire.events())
        assert out == ALL_MESSAGES
        assert wire.buffered == 0


def test_piece_block_is_a_view_of_the_received_bytes() -> None:
    wire = make_wire()
    block = bytes(range(256)) * 64  # 16 KiB
    (msg,) = parse_all(wire, Piece(1, 0, block).to_bytes())
    assert isinstance(msg, Piece) and isinstance(msg.block, memoryview)
    assert msg.block.readonly and msg.block == block and (msg.index, msg.begin) == (1, 0)


def test_full_block_and_last_block_of_short_piece_accepted() -> None:
    wire = make_wire()
    msgs = parse_all(
        wire,
        Piece(0, PIECE_LENGTH - BLOCK_SIZE, b"a" * BLOCK_SIZE).to_bytes()
        + Piece(9, 16384, b"b" * (LAST_PIECE - 16384)).to_bytes(),
    )
    assert [(m.index, m.begin) for m in msgs if isinstance(m, Piece)] == [(0, 16384), (9, 16384)]


def test_unknown_message_ids_are_skipped() -> None:
    wire = make_wire()
    assert parse_all(wire, struct.pack(">IB", 3, 99) + b"zz" + Have(2).to_bytes()) == [Have(2)]
    assert wire.unknown_messages == 1


# -- rejection rules -----------------------------------------------------------------------


def rejects(wire: PeerWire, data: bytes, match: str) -> None:
    wire.receive_data(data)
    with pytest.raises(PeerProtocolError, match=match):
        list(wire.events())


def test_oversized_message_refused_from_its_header_alone() -> None:
    # Only the 5-byte header arrives: the 1 MiB body is refused before it is buffered.
    rejects(make_wire(), struct.pack(">IB", 1 << 20, 7), "exceeds the limit")
    rejects(make_wire(), struct.pack(">IB", 9 + BLOCK_SIZE + 1, 7), "exceeds the limit")
    rejects(make_wire(), struct.pack(">IB", 0xFFFFFFFF, 99), "exceeds the limit")


def test_piece_bigger_than_a_block_refused() -> None:
    rejects(make_wire(), Piece(0, 0, b"x" * (BLOCK_SIZE + 1)).to_bytes(), "exceeds the limit")


def test_large_bitfield_only_with_the_exact_length() -> None:
    n = 200_000
    big = make_wire(num_pieces=n, piece_size=lambda i: PIECE_LENGTH)
    bits = Bitfield(b"\xff" * (n // 8))
    assert parse_all(big, bits.to_bytes()) == [bits]
    rejects(make_wire(num_pieces=n, piece_size=None), Bitfield(b"\xff" * (n // 8 + 1)).to_bytes(), "bitfield")


def test_bitfield_wrong_length_or_spare_bits() -> None:
    rejects(make_wire(), Bitfield(b"\xff").to_bytes(), "expected 2")
    rejects(make_wire(), Bitfield(b"\xff\xff\x00").to_bytes(), "expected 2")
    rejects(make_wire(), Bitfield(b"\xff\xe0").to_bytes(), "spare bits")
    assert parse_all(make_wire(), Bitfield(b"\xff\xc0").to_bytes()) == [Bitfield(b"\xff\xc0")]


def test_bitfield_unknown_metadata_then_checked_later() -> None:
    wire = make_wire(num_pieces=None, piece_size=None, max_bitfield_length=1000)
    (bf,) = parse_all(wire, Bitfield(b"\xff\xff\xff").to_bytes())  # any length while unknown
    assert isinstance(bf, Bitfield)
    with pytest.raises(PeerProtocolError):
        check_bitfield(bf.bits, NUM_PIECES)
    check_bitfield(b"\xff\xc0", NUM_PIECES)
    rejects(wire, Bitfield(bytes(1001)).to_bytes(), "exceeds the cap")
    wire2 = make_wire(num_pieces=None, piece_size=None)
    assert parse_all(wire2, Have(5000).to_bytes()) == [Have(5000)]
    wire2.set_metadata(NUM_PIECES, piece_size)
    rejects(wire2, Have(5000).to_bytes(), "out of range")


@pytest.mark.parametrize(
    "msg",
    [
        Have(10),
        SuggestPiece(10),
        AllowedFast(99),
        Request(10, 0, 16384),
        Cancel(10, 0, 1),
        RejectRequest(11, 0, 1),
        Piece(10, 0, b"x"),
    ],
    ids=lambda m: type(m).__name__,
)
def test_out_of_range_index(msg: Message) -> None:
    rejects(make_wire(), msg.to_bytes(), "out of range")


@pytest.mark.parametrize(
    ("msg", "match"),
    [
        (Request(0, 0, BLOCK_SIZE + 1), "request of 16385"),
        (Request(0, 0, 0), "request of 0"),
        (Request(0, PIECE_LENGTH - 100, 101), "beyond the piece"),
        (Request(9, 16384, LAST_PIECE - 16384 + 1), "beyond the piece"),
        (Request(0, 0xFFFFFFFF, 1), "beyond the piece"),
        (Cancel(0, PIECE_LENGTH, 1), "beyond the piece"),
        (RejectRequest(0, 0, BLOCK_SIZE * 2), "reject of"),
        (Piece(9, LAST_PIECE - 10, b"x" * 11), "beyond the piece"),
    ],
)
def test_bad_block_ranges(msg: Message, match: str) -> None:
    rejects(make_wire(), msg.to_bytes(), match)
    data = memoryview(Have(1).to_bytes() + msg.to_bytes())  # (parse_batch checks them inline)
    out: list[Message] = []
    with pytest.raises(PeerProtocolError, match=match):
        make_wire().parse_batch(data, 0, len(data), out)
    assert out == [Have(1)]


def test_parse_batch_checks_requests_against_their_own_piece() -> None:
    """Requests are parsed inline with the size of the piece asked last; one for another piece
    (here the short last one) is checked against that piece's size."""
    ok = [Piece(9, 0, b"x"), Request(9, 0, BLOCK_SIZE), Request(0, PIECE_LENGTH - BLOCK_SIZE, BLOCK_SIZE),
          Request(9, LAST_PIECE - 1, 1)]
    stream = b"".join(m.to_bytes() for m in ok)
    out: list[Message] = []
    assert make_wire().parse_batch(memoryview(stream), 0, len(stream), out) == (len(stream), 5)
    assert out == ok and all(type(a) is type(b) for a, b in zip(out, ok, strict=True))
    bad = memoryview(Request(0, 0, BLOCK_SIZE).to_bytes() + Request(9, LAST_PIECE - 1, 2).to_bytes())
    with pytest.raises(PeerProtocolError, match="beyond the piece"):
        make_wire().parse_batch(bad, 0, len(bad), [])


@pytest.mark.parametrize(
    "msg", [HaveAll(), HaveNone(), SuggestPiece(1), RejectRequest(1, 0, 1), AllowedFast(1)]
)
def test_fast_messages_need_the_fast_bit(msg: Message) -> None:
    rejects(make_wire(peer_fast=False), msg.to_bytes(), "without BEP 6")
    rejects(make_wire(fast=False), msg.to_bytes(), "without BEP 6")
    with pytest.raises(ValueError):
        make_wire(fast=False).send(msg)


def test_extended_needs_the_extension_bit_and_a_cap() -> None:
    rejects(make_wire(peer_ext=False), Extended(1, b"d1:ai1ee").to_bytes(), "without BEP 10")
    rejects(make_wire(max_extended_length=10), Extended(1, b"x" * 11).to_bytes(), "exceeds the cap")
    rejects(make_wire(), struct.pack(">IB", 1, 20), "without an extended id")
    big = Extended(2, b"x" * 100_000)
    assert parse_all(make_wire(), big.to_bytes()) == [big]
    rejects(make_wire(max_extended_length=50_000), big.to_bytes(), "exceeds the limit")
    with pytest.raises(ValueError):
        make_wire(extension=False).send(big)


@pytest.mark.parametrize(
    "raw",
    [
        struct.pack(">IB", 2, 0) + b"x",  # choke with payload
        struct.pack(">IB", 4, 4) + b"xxx",  # short have
        struct.pack(">IB", 12, 6) + bytes(11),  # short request
        struct.pack(">IB", 2, 9) + b"x",  # short port
        struct.pack(">IB", 9, 7) + bytes(8),  # piece without block
    ],
)
def test_wrong_fixed_lengths(raw: bytes) -> None:
    with pytest.raises(PeerProtocolError):
        parse_all(make_wire(), raw)


def test_messages_before_handshake_are_not_parsed_as_messages() -> None:
    wire = PeerWire(info_hash=INFO_HASH, peer_id=PEER_A)
    rejects(wire, Interested().to_bytes(), "not a BitTorrent handshake")


# -- helpers -------------------------------------------------------------------------------


def test_allowed_fast_set_matches_bep6_examples() -> None:
    ih = b"\xaa" * 20
    assert allowed_fast_set("80.4.4.200", ih, 1313, 7) == [1059, 431, 808, 1217, 287, 376, 1188]
    assert allowed_fast_set("80.4.4.200", ih, 1313, 9) == [1059, 431, 808, 1217, 287, 376, 1188, 353, 508]
    # Only the first three octets count; IPv4-mapped IPv6 is the same peer.
    assert allowed_fast_set("80.4.4.1", ih, 1313, 7) == allowed_fast_set("::ffff:80.4.4.200", ih, 1313, 7)
    assert sorted(allowed_fast_set("80.4.4.200", ih, 3)) == [0, 1, 2]  # k capped at the piece count
    assert allowed_fast_set("2001:db8::1", ih, 1313) == []


def test_bitfield_helpers() -> None:
    bf = Bitfield.from_indexes([0, 2, 9], 10)
    assert bf.bits == bytes([0b10100000, 0b01000000])
    assert [i for i in range(12) if bf.has(i)] == [0, 2, 9]
    with pytest.raises(ValueError):
        Bitfield.from_indexes([10], 10)


def test_receive_buffer_copies_only_straddling_messages() -> None:
    buf = ReceiveBuffer()
    chunk = b"abcdefgh"
    buf.feed(chunk)
    buf.feed(bytearray(b"ijkl"))
    assert len(buf) == 12
    first = buf.take(3)
    assert first.obj is chunk  # a slice, no copy
    assert bytes(buf.peek(7)) == b"defghij"
    assert bytes(buf.take(7)) == b"defghij"
    assert bytes(buf.take(2)) == b"kl" and len(buf) == 0
    with pytest.raises(ValueError):
        buf.take(1)


@pytest.mark.parametrize(
    ("msg", "match"),
    [
        (HashRequest(b"r" * 32, 0, 0, 3, 0), "power of two"),
        (HashRequest(b"r" * 32, 0, 0, 1024, 0), "power of two"),
        (HashRequest(b"r" * 32, 0, 0, 1, 0), "power of two"),
        (HashReject(b"r" * 32, 0, 6, 4, 0), "multiple of its length"),
        (HashRequest(b"r" * 32, 0, 0, 4, 65), "proof layers"),
        (Hashes(b"r" * 32, 0, 0, 4, 1, b"h" * 32 * 3), "bytes of hashes"),
        (Hashes(b"r" * 32, 0, 0, 4, 1, b"h" * 32 * 6), "bytes of hashes"),
        (Hashes(b"r" * 32, 0, 0, 4, 1, b"h" * 129), "bytes of hashes"),
    ],
)
def test_bep52_hash_message_rules(msg: Message, match: str) -> None:
    rejects(make_wire(), msg.to_bytes(), match)


def test_bep52_messages_bounded() -> None:
    rejects(make_wire(), struct.pack(">IB", 49 + 32 * 577, 22), "exceeds the limit")
    rejects(make_wire(), struct.pack(">IB", 30, 21) + bytes(29), "expected 48")
    rejects(make_wire(), struct.pack(">IB", 30, 22) + bytes(29), "too short")


def test_regression_take_and_peek_zero_bytes_of_an_empty_buffer() -> None:
    """Found by the FIFO property test: take(0)/peek(0) on an empty buffer raised IndexError."""
    buf = ReceiveBuffer()
    assert bytes(buf.take(0)) == b"" and bytes(buf.peek(0)) == b""
    with pytest.raises(ValueError):
        buf.peek(1)


# -- parse_batch: one pass over a buffer the caller owns -----------------------------------


def batch_all(wire: PeerWire, stream: bytes, step: int) -> tuple[list[Message], list[int]]:
    """Feed ``stream`` in ``step``-byte reads to ``parse_batch`` as a receive-buffer owner
    would (bytes kept from ``pos``); return the messages and each call's ``need``."""
    buf = bytearray()
    pos = 0
    out: list[Message] = []
    needs: list[int] = []
    for i in range(0, len(stream), step):
        buf += stream[i:i + step]
        view = memoryview(bytes(buf))
        pos, need = wire.parse_batch(view, pos, len(view), out)
        needs.append(need)
    assert pos == len(buf)
    return out, needs


def test_parse_batch_gives_what_next_event_gives_for_any_split() -> None:
    stream = b"".join(m.to_bytes() for m in ALL_MESSAGES) + struct.pack(">IB", 3, 99) + b"zz"
    for step in (1, 3, 7, 13, 100, len(stream)):
        out, _ = batch_all(make_wire(), stream, step)
        assert out == ALL_MESSAGES  # the unknown id at the end is skipped


def test_parse_batch_reports_the_size_of_the_incomplete_message() -> None:
    wire = make_wire()
    piece = Piece(1, 0, b"p" * BLOCK_SIZE).to_bytes()
    out: list[Message] = []
    data = memoryview(Have(2).to_bytes() + piece[:100])
    pos, need = wire.parse_batch(data, 0, len(data), out)
    assert out == [Have(2)] and pos == 9 and need == len(piece)


def test_parse_batch_errors_stick_and_keep_the_messages_before() -> None:
    wire = make_wire()
    out: list[Message] = []
    data = memoryview(Have(2).to_bytes() + struct.pack(">IB", 1 << 20, 7))
    with pytest.raises(PeerProtocolError, match="exceeds the limit"):
        wire.parse_batch(data, 0, len(data), out)
    assert out == [Have(2)]
    with pytest.raises(PeerProtocolError, match="exceeds the limit"):
        wire.parse_batch(memoryview(Have(1).to_bytes()), 0, 9, out)
    bad = memoryview(Piece(NUM_PIECES, 0, b"x").to_bytes())
    with pytest.raises(PeerProtocolError, match="out of range"):
        make_wire().parse_batch(bad, 0, len(bad), [])


def test_parse_batch_checks_each_block_against_its_own_piece() -> None:
    """Blocks of one piece come together, so a piece's size is asked once for them; a block of
    the short last piece right after blocks of a full one is still held to the short size."""
    asked: list[int] = []

    def sizes(index: int) -> int:
        asked.append(index)
        return piece_size(index)

    block = b"x" * BLOCK_SIZE
    good = [Piece(0, 0, block), Piece(0, BLOCK_SIZE, block), Piece(9, 0, block), Piece(8, 0, block)]
    data = memoryview(b"".join(m.to_bytes() for m in good))
    out: list[Message] = []
    assert make_wire(piece_size=sizes).parse_batch(data, 0, len(data), out) == (len(data), 5)
    assert out == good and asked == [0, 9, 8]
    bad = [Piece(0, BLOCK_SIZE, block), Piece(9, BLOCK_SIZE, block)]  # 16384 + 16384 > 20000
    data = memoryview(b"".join(m.to_bytes() for m in bad))
    out = []
    with pytest.raises(PeerProtocolError, match="beyond the piece"):
        make_wire().parse_batch(data, 0, len(data), out)
    assert out == bad[:1]


def test_parse_batch_needs_the_handshake_first() -> None:
    wire = PeerWire(info_hash=INFO_HASH, peer_id=PEER_A)
    with pytest.raises(ValueError):
        wire.parse_batch(memoryview(Have(1).to_bytes()), 0, 9, [])


def test_messages_parsed_before_the_metadata_are_checked_against_it() -> None:
    """An incoming peer's first messages can be parsed before the torrent is known to the
    connection: once it is, each must fit (what the parser checks itself from then on)."""
    wire = PeerWire(info_hash=INFO_HASH, peer_id=PEER_A, reserved=make_reserved(fast=True, extension=True))
    wire.set_metadata(4, lambda i: 32768 if i < 3 else 1000)
    for ok in (Have(3), Request(0, 16384, 16384), Piece(3, 0, b"x" * 1000), Bitfield(b"\xf0")):
        wire.check_message(ok)
    for bad in (Have(4), Request(3, 0, 16384), Cancel(9, 0, 1), Piece(4_238_091_305, 0, b"x"),
                Piece(3, 500, b"x" * 501), Bitfield(b"\xf0\x00")):
        with pytest.raises(PeerProtocolError):
            wire.check_message(bad)


def test_make_piece_is_the_frozen_piece_the_dataclass_makes() -> None:
    from dataclasses import FrozenInstanceError

    from torrent_engine.net.peer.messages import make_piece, make_request

    made_request = make_request(3, BLOCK_SIZE, 10)
    assert type(made_request) is Request and made_request == Request(3, BLOCK_SIZE, 10)
    made = make_piece(3, BLOCK_SIZE, b"data")
    assert type(made) is Piece and made == Piece(3, BLOCK_SIZE, b"data")
    assert hash(made) == hash(Piece(3, BLOCK_SIZE, b"data"))
    assert made.to_bytes() == Piece(3, BLOCK_SIZE, b"data").to_bytes()
    with pytest.raises(FrozenInstanceError):
        made.index = 4  # type: ignore[misc]
