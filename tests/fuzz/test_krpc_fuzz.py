"""Random and mutated packets only ever give a typed error from the codec, and a counted drop
(never an exception) in the node's receive path."""

from __future__ import annotations

import random

import anyio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from torrent_engine.errors import DHTError
from torrent_engine.formats.bencode import encode
from torrent_engine.net.dht import krpc
from torrent_engine.net.dht.node import DhtNode
from torrent_engine.net.dht.transport import MemoryNetwork

ID = b"abcdefghij0123456789"
VALID = [
    b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe",
    b"d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e1:q9:find_node1:t2:aa1:y1:qe",
    b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234566:scrapei1ee1:q9:get_peers1:t2:aa1:y1:qe",
    b"d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:"
    b"aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe",
    b"d1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:axje.u6:idhtnmee1:t2:aa1:y1:re",
    b"d1:rd2:id20:mnopqrstuvwxyz1234565:nodes52:" + b"n" * 52 + b"e1:t2:aa1:y1:re",
    b"d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee",
    encode(
        {
            b"t": b"p",
            b"y": b"q",
            b"q": b"put",
            b"a": {
                b"id": ID,
                b"token": b"x",
                b"v": b"val",
                b"k": b"k" * 32,
                b"sig": b"s" * 64,
                b"seq": 1,
                b"salt": b"s",
                b"cas": 0,
            },
        }
    ),
    encode({b"t": b"g", b"y": b"q", b"q": b"get", b"a": {b"id": ID, b"target": ID, b"seq": 3}}),
    encode({b"t": b"s", b"y": b"q", b"q": b"sample_infohashes", b"a": {b"id": ID, b"target": ID}}),
]

KEYS = [
    b"t",
    b"y",
    b"q",
    b"a",
    b"r",
    b"e",
    b"id",
    b"target",
    b"info_hash",
    b"port",
    b"token",
    b"values",
    b"nodes",
    b"nodes6",
    b"v",
    b"k",
    b"sig",
    b"seq",
    b"salt",
    b"cas",
    b"ro",
    b"ip",
    b"want",
    b"samples",
    b"implied_port",
    b"BFsd",
    b"BFpe",
    b"scrape",
    b"noseed",
]
LEAVES = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.binary(max_size=60),
    st.sampled_from(
        [b"q", b"r", b"e", b"ping", b"get_peers", b"announce_peer", b"find_node", b"get", b"put", ID]
    ),
)
BVALUES = st.recursive(
    LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.sampled_from(KEYS), inner, max_size=6)
    ),
    max_leaves=20,
)


def check_codec(packet: bytes) -> None:
    try:
        msg = krpc.decode_message(packet)
    except krpc.KrpcDecodeError:
        return
    # Whatever decodes must encode again without surprises.
    try:
        krpc.encode_message(msg)
    except DHTError:
        pass


@given(st.binary(max_size=1600))
@settings(max_examples=500)
def test_random_bytes(packet: bytes) -> None:
    check_codec(packet)


@given(
    st.sampled_from(VALID),
    st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=6),
    st.integers(0, 400),
)
@settings(max_examples=800)
def test_mutated_valid_packets(base: bytes, flips: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(base)
    for pos, val in flips:
        if data:
            data[pos % len(data)] = val
    check_codec(bytes(data))
    check_codec(bytes(data[: max(0, len(data) - cut)]))


@given(st.dictionaries(st.sampled_from(KEYS), BVALUES, max_size=8))
@settings(max_examples=300, deadline=None)
def test_structured_krpc_like_dicts(top: dict[bytes, object]) -> None:
    check_codec(encode(top))


def _feed(packets: list[bytes]) -> None:
    async def main() -> None:
        net = MemoryNetwork()
        node = DhtNode(transport=net.endpoint("10.0.0.1", 6881), enforce_bep42=False, rng=random.Random(0))
        source = net.endpoint("10.0.0.2", 6881)
        async with anyio.create_task_group() as tg:
            await tg.start(node.run)
            for p in packets:
                await node.datagram_received(p, source.local_address)
            tg.cancel_scope.cancel()
        s = node.stats
        assert s["packets_in"] == len(packets)
        handled = (
            s["dropped_malformed"]
            + s["dropped_unexpected_reply"]
            + s["dropped_rate_limited"]
            + s["queries_in"]
        )
        assert handled == len(packets)

    anyio.run(main)


@given(
    st.lists(
        st.one_of(
            st.binary(max_size=200),
            st.sampled_from(VALID),
            st.dictionaries(st.sampled_from(KEYS), BVALUES, max_size=6).map(encode),
        ),
        max_size=15,
    )
)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_node_receive_path_only_counts_drops(packets: list[bytes]) -> None:
    _feed(packets)
