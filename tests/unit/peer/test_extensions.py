"""BEP 10 extension handshake, BEP 9 ut_metadata and BEP 11 ut_pex codecs: bytes only."""

from __future__ import annotations

import hashlib

import pytest

from torrent_engine.errors import PeerProtocolError
from torrent_engine.formats.bencode import encode
from torrent_engine.net.peer.extensions import (
    METADATA_PIECE_SIZE,
    PEX_REACHABLE,
    PEX_SEED,
    ExtensionHandshake,
    MetadataAssembler,
    MetadataData,
    MetadataReject,
    MetadataRequest,
    PexMessage,
    PexState,
    decode_compact_peers,
    decode_metadata_message,
    encode_compact_peers,
    encode_metadata_message,
    metadata_piece,
    metadata_piece_count,
)


def test_handshake_round_trip_all_fields() -> None:
    hs = ExtensionHandshake(
        m={"ut_metadata": 3, "ut_pex": 1, "lt_donthave": 0},
        v="torrent_engine 0.1.0",
        p=6881,
        reqq=500,
        yourip="192.0.2.7",
        ipv4="198.51.100.1",
        ipv6="2001:db8::1",
        metadata_size=31235,
        upload_only=True,
        encryption=True,
    )
    assert ExtensionHandshake.decode(hs.encode()) == hs
    assert ExtensionHandshake.decode(ExtensionHandshake(yourip="::1").encode()).yourip == "::1"


def test_handshake_bep10_example_and_unknown_keys() -> None:
    # BEP 10's example (its "6:µT_PEX" miscounts the UTF-8 µ, which takes two bytes).
    raw = "d1:md11:LT_metadatai1e7:µT_PEXi2ee1:pi6881e1:v13:µTorrent 1.2e".encode()
    hs = ExtensionHandshake.decode(raw)
    assert hs.m == {"LT_metadata": 1, "µT_PEX": 2} and hs.p == 6881 and hs.v == "µTorrent 1.2"
    assert hs.metadata_size is None and hs.reqq is None
    # Unknown keys and optional fields of the wrong type are ignored, as BEP 10 asks.
    odd = encode({b"m": {b"x": b"notint"}, b"p": b"6881", b"v": 5, b"yourip": b"abc", b"zz": [1, 2]})
    assert ExtensionHandshake.decode(odd) == ExtensionHandshake()


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"li1ee",
        b"d1:mi1ee",
        encode({b"m": {b"ut_metadata": 256}}),
        encode({b"m": {b"ut_metadata": -1}}),
        encode({b"metadata_size": 0}),
        encode({b"metadata_size": 64 * 1024 * 1024}),
        b"d1:md",
    ],
)
def test_handshake_rejects(raw: bytes) -> None:
    with pytest.raises(PeerProtocolError):
        ExtensionHandshake.decode(raw)


def test_handshake_metadata_cap_is_configurable() -> None:
    raw = ExtensionHandshake(metadata_size=2000).encode()
    assert ExtensionHandshake.decode(raw, max_metadata_size=2000).metadata_size == 2000
    with pytest.raises(PeerProtocolError):
        ExtensionHandshake.decode(raw, max_metadata_size=1999)


def test_metadata_messages_round_trip() -> None:
    info = bytes(range(256)) * 100  # 25600 bytes: two pieces, the last one short
    assert metadata_piece_count(len(info)) == 2
    pieces = [metadata_piece(info, i) for i in range(2)]
    assert [len(p) for p in pieces] == [METADATA_PIECE_SIZE, len(info) - METADATA_PIECE_SIZE]
    for msg in (
        MetadataRequest(1),
        MetadataReject(0),
        MetadataData(0, len(info), pieces[0]),
        MetadataData(1, len(info), pieces[1]),
    ):
        assert decode_metadata_message(encode_metadata_message(msg)) == msg
    assert encode_metadata_message(MetadataRequest(0)) == b"d8:msg_typei0e5:piecei0ee"  # BEP 9 example
    # The piece data may itself look like bencode: only the leading dictionary is parsed.
    tricky = MetadataData(0, 9, b"d1:ae1:xe")
    assert decode_metadata_message(encode_metadata_message(tricky)) == tricky
    with pytest.raises(ValueError):
        metadata_piece(info, 2)


def test_metadata_unknown_type_ignored() -> None:
    assert decode_metadata_message(b"d8:msg_typei7e5:piecei0ee") is None


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"i1e",
        b"d8:msg_typei0ee",  # no piece
        b"d8:msg_type1:05:piecei0ee",  # string msg_type
        b"d8:msg_typei0e5:piecei-1ee",
        b"d8:msg_typei0e5:piecei0eextra",  # request with trailing data
        b"d8:msg_typei1e5:piecei0e10:total_sizei10eeshort",  # wrong data length
        b"d8:msg_typei1e5:piecei1e10:total_sizei10ee0123456789",  # piece beyond total_size
        b"d8:msg_typei1e5:piecei0eexxxx",  # data without total_size
        b"d8:msg_typei1e5:piecei0e10:total_sizei99999999999ee",
        b"d8:msg_typei0e5:piece",  # truncated
        b"d99999999:msg_typei0ee",
        b"d" * 100 + b"e" * 100,
    ],
)
def test_metadata_rejects(raw: bytes) -> None:
    with pytest.raises(PeerProtocolError):
        decode_metadata_message(raw)


def test_pex_round_trip_ipv4_and_ipv6() -> None:
    msg = PexMessage(
        added=(("192.0.2.1", 6881), ("198.51.100.2", 51413)),
        added_flags=(PEX_SEED, PEX_REACHABLE | PEX_SEED),
        added6=(("2001:db8::5", 6882),),
        added6_flags=(0,),
        dropped=(("203.0.113.9", 1),),
        dropped6=(("2001:db8::6", 65535),),
    )
    assert PexMessage.decode(msg.encode()) == msg
    empty = PexMessage.decode(b"de")
    assert empty == PexMessage()


def test_pex_flags_of_the_wrong_length_are_ignored() -> None:
    raw = encode(
        {
            b"added": encode_compact_peers([("192.0.2.1", 1), ("192.0.2.2", 2)], ipv6=False),
            b"added.f": b"\x02",
        }
    )
    assert PexMessage.decode(raw).added_flags == (0, 0)


@pytest.mark.parametrize(
    "raw",
    [
        encode({b"added": b"12345"}),  # not a multiple of 6
        encode({b"added6": bytes(17)}),
        encode({b"dropped": 5}),
        encode({b"added": bytes(6 * 1001)}),  # more than the cap
        b"le",
        b"d5:added",
    ],
)
def test_pex_rejects(raw: bytes) -> None:
    with pytest.raises(PeerProtocolError):
        PexMessage.decode(raw)


def test_compact_peers() -> None:
    data = encode_compact_peers([("127.0.0.1", 6881)], ipv6=False)
    assert data == b"\x7f\x00\x00\x01\x1a\xe1"
    assert decode_compact_peers(data, ipv6=False) == [("127.0.0.1", 6881)]
    with pytest.raises(ValueError):
        encode_compact_peers([("::1", 1)], ipv6=False)
    with pytest.raises(PeerProtocolError):
        decode_compact_peers(bytes(12), ipv6=False, max_peers=1)


def _pieces_of(info: bytes) -> list[MetadataData]:
    return [
        MetadataData(i, len(info), metadata_piece(info, i)) for i in range(metadata_piece_count(len(info)))
    ]


@pytest.mark.parametrize("kind", ["v1", "v2", "v2-truncated"])
def test_metadata_assembler_verifies_the_info_hash(kind: str) -> None:
    info = encode({b"name": b"x", b"pad": bytes(40_000)})
    ih = {
        "v1": hashlib.sha1(info).digest(),
        "v2": hashlib.sha256(info).digest(),
        "v2-truncated": hashlib.sha256(info).digest()[:20],
    }[kind]
    asm = MetadataAssembler(ih, len(info))
    pieces = _pieces_of(info)
    assert asm.num_pieces == 3 and asm.missing() == [0, 1, 2]
    assert asm.add(pieces[2]) is None and asm.add(pieces[0]) is None
    assert asm.missing() == [1]
    assert asm.add(pieces[1]) == info and asm.failed == 0


def test_metadata_assembler_drops_everything_on_a_hash_mismatch() -> None:
    info = encode({b"name": b"x", b"pad": bytes(20_000)})
    asm = MetadataAssembler(hashlib.sha1(info).digest(), len(info))
    good = _pieces_of(info)
    bad = MetadataData(1, len(info), b"\xff" * len(good[1].data))
    assert asm.add(good[0]) is None and asm.add(bad) is None
    assert asm.failed == 1 and asm.missing() == [0, 1]
    assert asm.add(good[1]) is None and asm.add(good[0]) == info


def test_metadata_assembler_rejects_inconsistent_pieces() -> None:
    asm = MetadataAssembler(bytes(20), 20_000)
    with pytest.raises(PeerProtocolError, match="total_size"):
        asm.add(MetadataData(0, 30_000, bytes(METADATA_PIECE_SIZE)))
    with pytest.raises(PeerProtocolError, match="out of range"):
        asm.add(MetadataData(2, 20_000, bytes(10)))
    with pytest.raises(PeerProtocolError, match="expected"):
        asm.add(MetadataData(1, 20_000, bytes(10)))
    with pytest.raises(PeerProtocolError):
        MetadataAssembler(bytes(20), 0)
    with pytest.raises(PeerProtocolError):
        MetadataAssembler(bytes(20), 100, max_size=99)
    with pytest.raises(ValueError):
        MetadataAssembler(bytes(19), 100)


def test_pex_state_sends_diffs_within_bep11_limits() -> None:
    state = PexState()
    first = {(f"10.0.{i // 256}.{i % 256}", 6881): PEX_SEED for i in range(120)}
    first[("2001:db8::1", 51413)] = PEX_REACHABLE
    msg = state.update(first)
    assert msg is not None and len(msg.added) == 120 and msg.added6 == (("2001:db8::1", 51413),)
    assert msg.added_flags == (PEX_SEED,) * 120 and msg.added6_flags == (PEX_REACHABLE,)
    assert state.update(first) is None  # nothing changed: no message
    # 70 peers go away and 60 new ones arrive: at most 50 of each per message after the first.
    now = dict(list(first.items())[70:])
    now.update({(f"192.0.2.{i}", 1000 + i): 0 for i in range(60)})
    second = state.update(now)
    assert second is not None and len(second.added) == 50 and len(second.dropped) == 50
    assert not set(second.added) & set(second.dropped)
    third = state.update(now)
    assert third is not None and len(third.added) == 10 and len(third.dropped) == 20
    assert not set(second.added) & set(third.added)
    assert state.update(now) is None
    # A round trip through the codec keeps the diff intact.
    assert PexMessage.decode(third.encode()) == third


def test_pex_flags_default_to_zero_and_must_match() -> None:
    msg = PexMessage(added=(("192.0.2.1", 1),))
    assert PexMessage.decode(msg.encode()).added_flags == (0,)
    with pytest.raises(ValueError):
        PexMessage(added=(("192.0.2.1", 1),), added_flags=(1, 2))
