"""KRPC codec (BEP 5 + 32/33/42/43/44/51): round trips, the BEP 5 examples, and typed drops."""

from __future__ import annotations

import pytest

from torrent_engine.formats.bencode import decode, encode
from torrent_engine.net.dht import krpc
from torrent_engine.net.dht.krpc import KrpcDecodeError, NodeInfo

ID = b"abcdefghij0123456789"
OTHER = b"mnopqrstuvwxyz123456"


def roundtrip(msg: krpc.Message) -> krpc.Message:
    return krpc.decode_message(krpc.encode_message(msg))


def test_bep5_ping_example_decodes_and_encodes_byte_for_byte() -> None:
    raw = b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe"
    msg = krpc.decode_message(raw)
    assert msg == krpc.Ping(tid=b"aa", node_id=ID)
    assert krpc.encode_message(msg) == raw


def test_bep5_response_examples() -> None:
    pong = krpc.decode_message(b"d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re")
    assert isinstance(pong, krpc.Response) and pong.node_id == OTHER and pong.tid == b"aa"
    values = krpc.decode_message(
        b"d1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:axje.u6:idhtnmee1:t2:aa1:y1:re"
    )
    assert isinstance(values, krpc.Response)
    assert values.token == b"aoeusnth"
    assert values.values == (("97.120.106.101", 11893), ("105.100.104.116", 28269))
    err = krpc.decode_message(b"d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee")
    assert err == krpc.Error(tid=b"aa", code=201, message="A Generic Error Ocurred")


def test_bep5_announce_example_with_implied_port() -> None:
    raw = (
        b"d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234564:"
        b"porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe"
    )
    msg = krpc.decode_message(raw)
    assert msg == krpc.AnnouncePeer(
        tid=b"aa", node_id=ID, info_hash=OTHER, port=6881, token=b"aoeusnth", implied_port=True
    )
    assert krpc.encode_message(msg) == raw


@pytest.mark.parametrize(
    "msg",
    [
        krpc.Ping(tid=b"\x00\x01", node_id=ID, read_only=True, version=b"TE01"),
        krpc.FindNode(tid=b"t", node_id=ID, target=OTHER, want=(b"n4", b"n6")),
        krpc.GetPeers(tid=b"t", node_id=ID, info_hash=OTHER, noseed=True, scrape=True),
        krpc.AnnouncePeer(tid=b"t", node_id=ID, info_hash=OTHER, port=1, token=b"tok", seed=True),
        krpc.SampleInfohashes(tid=b"t", node_id=ID, target=OTHER),
        krpc.GetItem(tid=b"t", node_id=ID, target=OTHER, seq=4),
        krpc.PutItem(tid=b"t", node_id=ID, token=b"k", value=[1, b"x", {b"a": 2}]),
        krpc.PutItem(
            tid=b"t",
            node_id=ID,
            token=b"k",
            value=b"v",
            key=b"K" * 32,
            signature=b"S" * 64,
            seq=7,
            salt=b"salt",
            cas=6,
        ),
        krpc.Response(
            tid=b"t",
            node_id=ID,
            ip=("1.2.3.4", 5),
            nodes=(NodeInfo(OTHER, "10.0.0.1", 6881),),
            nodes6=(NodeInfo(OTHER, "2001:db8::1", 6882),),
            values=(("1.2.3.4", 80), ("2001:db8::2", 81)),
            token=b"tok",
            bf_seeds=b"\x01" * 256,
            bf_peers=b"\x02" * 256,
        ),
        krpc.Response(tid=b"t", node_id=ID, samples=(b"a" * 20, b"b" * 20), num=2, interval=60),
        krpc.Response(tid=b"t", node_id=ID, value=b"v", key=b"K" * 32, signature=b"S" * 64, seq=3),
        krpc.Error(tid=b"t", code=203, message="Protocol Error"),
    ],
)
def test_round_trip(msg: krpc.Message) -> None:
    assert roundtrip(msg) == msg


def test_compact_node_info_sizes() -> None:
    v4 = NodeInfo(ID, "192.0.2.1", 6881)
    v6 = NodeInfo(ID, "2001:db8::1", 6881)
    assert len(krpc.encode_compact_nodes([v4])) == 26
    assert len(krpc.encode_compact_nodes([v6])) == 38
    assert krpc.decode_compact_nodes(krpc.encode_compact_nodes([v4, v4])) == [v4, v4]
    assert krpc.decode_compact_nodes(krpc.encode_compact_nodes([v6]), v6=True) == [v6]
    assert krpc.encode_compact_peer("192.0.2.1", 6881) == bytes([192, 0, 2, 1, 0x1A, 0xE1])
    assert krpc.decode_compact_peer(bytes([192, 0, 2, 1, 0x1A, 0xE1])) == ("192.0.2.1", 6881)
    with pytest.raises(KrpcDecodeError):
        krpc.decode_compact_nodes(b"x" * 27)


def test_unknown_keys_ignored_and_unknown_method_keeps_target() -> None:
    raw = encode(
        {b"t": b"xy", b"y": b"q", b"q": b"vote", b"zz": 5, b"a": {b"id": ID, b"target": OTHER, b"extra": [1]}}
    )
    msg = krpc.decode_message(raw)
    assert isinstance(msg, krpc.UnknownQuery)
    assert msg.method == b"vote" and msg.target == OTHER
    ping = encode({b"t": b"1", b"y": b"q", b"q": b"ping", b"a": {b"id": ID, b"new": b"x"}, b"future": {}})
    assert krpc.decode_message(ping) == krpc.Ping(tid=b"1", node_id=ID)


def test_read_only_flag_bep43() -> None:
    raw = b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping2:roi1e1:t2:aa1:y1:qe"
    msg = krpc.decode_message(raw)
    assert isinstance(msg, krpc.Ping) and msg.read_only
    assert b"2:roi1e" in krpc.encode_message(msg)


def test_malformed_values_entries_are_skipped_not_fatal() -> None:
    raw = encode(
        {b"t": b"1", b"y": b"r", b"r": {b"id": ID, b"values": [b"short", 5, b"\x01\x02\x03\x04\x00\x50"]}}
    )
    msg = krpc.decode_message(raw)
    assert isinstance(msg, krpc.Response) and msg.values == (("1.2.3.4", 80),)


@pytest.mark.parametrize(
    ("raw", "tid", "is_query"),
    [
        (b"", None, False),
        (b"not bencode", None, False),
        (b"li1ee", None, False),
        (encode({b"y": b"q"}), None, False),
        (encode({b"t": b"a" * 100, b"y": b"q"}), None, False),
        (encode({b"t": b"1", b"y": b"x"}), b"1", False),
        (encode({b"t": b"1", b"y": b"q", b"q": b"ping"}), b"1", True),
        (encode({b"t": b"1", b"y": b"q", b"q": b"ping", b"a": {b"id": b"short"}}), b"1", True),
        (encode({b"t": b"1", b"y": b"q", b"q": b"find_node", b"a": {b"id": ID}}), b"1", True),
        (
            encode({b"t": b"1", b"y": b"q", b"q": b"get_peers", b"a": {b"id": ID, b"info_hash": 5}}),
            b"1",
            True,
        ),
        (
            encode(
                {
                    b"t": b"1",
                    b"y": b"q",
                    b"q": b"announce_peer",
                    b"a": {b"id": ID, b"info_hash": OTHER, b"port": 70000, b"token": b"x"},
                }
            ),
            b"1",
            True,
        ),
        (encode({b"t": b"1", b"y": b"r", b"r": {b"id": ID, b"nodes": b"x" * 25}}), b"1", False),
        (encode({b"t": b"1", b"y": b"r"}), b"1", False),
        (encode({b"t": b"1", b"y": b"e", b"e": [b"x"]}), b"1", False),
        (
            encode(
                {
                    b"t": b"1",
                    b"y": b"q",
                    b"q": b"put",
                    b"a": {b"id": ID, b"token": b"t", b"v": b"x", b"k": b"k" * 32, b"seq": 1},
                }
            ),
            b"1",
            True,
        ),
    ],
)
def test_malformed_packets_are_typed_errors(raw: bytes, tid: bytes | None, is_query: bool) -> None:
    with pytest.raises(KrpcDecodeError) as info:
        krpc.decode_message(raw)
    assert info.value.tid == tid
    assert info.value.is_query == is_query


def test_oversized_packet_is_rejected_unread() -> None:
    raw = encode({b"t": b"1", b"y": b"q", b"q": b"ping", b"a": {b"id": ID, b"pad": b"x" * 1500}})
    assert len(raw) > krpc.MAX_PACKET_SIZE
    with pytest.raises(KrpcDecodeError, match="exceeds"):
        krpc.decode_message(raw)


def test_encoded_response_is_canonical_bencode() -> None:
    r = krpc.Response(tid=b"t", node_id=ID, token=b"x", values=(("1.2.3.4", 1),))
    raw = krpc.encode_message(r)
    assert encode(decode(raw)) == raw
