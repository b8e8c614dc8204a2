"""Answering queries (sans-I/O): find_node, get_peers with tokens and BEP 33 scrape,
announce_peer, BEP 51 samples, BEP 44 get/put, forward compatibility."""

from __future__ import annotations

import random

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from torrent_engine.net.dht import bep44, krpc
from torrent_engine.net.dht.bep44 import ItemStore
from torrent_engine.net.dht.peer_store import PeerStore, bloom_estimate
from torrent_engine.net.dht.routing import RoutingTable
from torrent_engine.net.dht.server import QueryHandler
from torrent_engine.net.dht.tokens import TokenManager

OWN = b"\x80" * 20
ASKER = ("10.0.0.99", 4000)
ASKER_ID = b"\x01" * 20


def make() -> QueryHandler:
    rng = random.Random(7)
    table = RoutingTable(OWN, enforce_bep42=False)
    for i in range(30):
        table.heard_from(rng.randbytes(20), f"10.0.1.{i}", 6881, 0.0, responded=True)
    table.heard_from(rng.randbytes(20), "2001:db8::1", 6881, 0.0, responded=True)
    return QueryHandler(
        table=lambda: table, tokens=TokenManager(rng, 0.0), peers=PeerStore(), items=ItemStore(), rng=rng
    )


def test_ping_and_find_node() -> None:
    h = make()
    r = h.handle(krpc.Ping(tid=b"1", node_id=ASKER_ID), ASKER, 0.0)
    assert isinstance(r, krpc.Response) and r.node_id == OWN and r.ip == ASKER
    target = b"\x10" * 20
    r = h.handle(krpc.FindNode(tid=b"2", node_id=ASKER_ID, target=target), ASKER, 0.0)
    assert isinstance(r, krpc.Response)
    assert len(r.nodes) == 8 and r.nodes6 == ()
    r6 = h.handle(krpc.FindNode(tid=b"2", node_id=ASKER_ID, target=target, want=(b"n4", b"n6")), ASKER, 0.0)
    assert isinstance(r6, krpc.Response) and len(r6.nodes6) == 1
    assert len(krpc.encode_message(r6)) <= krpc.MAX_PACKET_SIZE


def test_get_peers_token_announce_then_values_and_scrape() -> None:
    h = make()
    ih = b"\x22" * 20
    r = h.handle(krpc.GetPeers(tid=b"1", node_id=ASKER_ID, info_hash=ih), ASKER, 0.0)
    assert isinstance(r, krpc.Response) and r.values == () and len(r.nodes) == 8 and r.token
    bad = h.handle(
        krpc.AnnouncePeer(tid=b"2", node_id=ASKER_ID, info_hash=ih, port=6881, token=b"wrong"), ASKER, 0.0
    )
    assert isinstance(bad, krpc.Error) and bad.code == 203
    # A token handed to another address is refused too.
    assert isinstance(
        h.handle(
            krpc.AnnouncePeer(tid=b"2", node_id=ASKER_ID, info_hash=ih, port=1, token=r.token),
            ("10.0.0.98", 1),
            0.0,
        ),
        krpc.Error,
    )
    ok = h.handle(
        krpc.AnnouncePeer(tid=b"3", node_id=ASKER_ID, info_hash=ih, port=6881, token=r.token, seed=True),
        ASKER,
        1.0,
    )
    assert isinstance(ok, krpc.Response)
    implied = h.handle(
        krpc.AnnouncePeer(
            tid=b"4",
            node_id=ASKER_ID,
            info_hash=ih,
            port=1,
            token=h.tokens.token_for("10.0.0.97", 1.0),
            implied_port=True,
        ),
        ("10.0.0.97", 5555),
        1.0,
    )
    assert isinstance(implied, krpc.Response)
    r = h.handle(krpc.GetPeers(tid=b"5", node_id=ASKER_ID, info_hash=ih, scrape=True), ASKER, 2.0)
    assert isinstance(r, krpc.Response)
    assert sorted(r.values) == [("10.0.0.97", 5555), ("10.0.0.99", 6881)]
    assert r.bf_seeds is not None and r.bf_peers is not None
    assert round(bloom_estimate(r.bf_seeds)) == 1 and round(bloom_estimate(r.bf_peers)) == 1
    assert len(krpc.encode_message(r)) <= krpc.MAX_PACKET_SIZE


def test_full_peer_store_hands_out_no_token() -> None:
    h = make()
    h.peers.max_per_hash = 1
    ih = b"\x23" * 20
    h.peers.add(ih, "10.5.5.5", 1, 0.0)
    r = h.handle(krpc.GetPeers(tid=b"1", node_id=ASKER_ID, info_hash=ih), ASKER, 0.0)
    assert isinstance(r, krpc.Response) and r.token is None


def test_sample_infohashes_bep51() -> None:
    h = make()
    for i in range(100):
        h.peers.add(bytes([i]) * 20, "10.0.0.1", 1, 0.0)
    r = h.handle(krpc.SampleInfohashes(tid=b"1", node_id=ASKER_ID, target=b"\x00" * 20), ASKER, 0.0)
    assert isinstance(r, krpc.Response)
    assert r.num == 100 and r.samples is not None and 0 < len(r.samples) <= 40
    assert len(set(r.samples)) == len(r.samples)
    assert r.interval is not None and 0 <= r.interval <= 21600 and r.nodes
    assert len(krpc.encode_message(r)) <= krpc.MAX_PACKET_SIZE
    empty = make().handle(krpc.SampleInfohashes(tid=b"1", node_id=ASKER_ID, target=b"\x00" * 20), ASKER, 0.0)
    assert (
        isinstance(empty, krpc.Response)
        and empty.samples == ()
        and b"7:samples0:" in krpc.encode_message(empty)
    )


def test_bep44_put_and_get_through_the_handler() -> None:
    h = make()
    key = Ed25519PrivateKey.generate()
    pub = bep44.public_key_bytes(key)
    target = bep44.mutable_target(pub)
    g = h.handle(krpc.GetItem(tid=b"1", node_id=ASKER_ID, target=target), ASKER, 0.0)
    assert isinstance(g, krpc.Response) and g.token and g.value is None
    put = krpc.PutItem(
        tid=b"2",
        node_id=ASKER_ID,
        token=g.token,
        value=b"hi",
        key=pub,
        signature=bep44.sign(key, b"hi", 3),
        seq=3,
    )
    assert isinstance(h.handle(put, ASKER, 0.0), krpc.Response)
    g = h.handle(krpc.GetItem(tid=b"3", node_id=ASKER_ID, target=target), ASKER, 0.0)
    assert isinstance(g, krpc.Response) and g.value == b"hi" and g.seq == 3 and g.key == pub
    assert bep44.verify(pub, g.signature or b"", g.value, 3)
    # "seq" in the get: only newer values are sent.
    g = h.handle(krpc.GetItem(tid=b"4", node_id=ASKER_ID, target=target, seq=3), ASKER, 0.0)
    assert isinstance(g, krpc.Response) and g.value is None and g.seq == 3
    # Bad token and bad signature are refused with the BEP codes.
    bad_tok = krpc.PutItem(tid=b"5", node_id=ASKER_ID, token=b"x", value=b"imm")
    assert isinstance(r := h.handle(bad_tok, ASKER, 0.0), krpc.Error) and r.code == 203
    forged = krpc.PutItem(
        tid=b"6",
        node_id=ASKER_ID,
        token=g.token or b"",
        value=b"evil",
        key=pub,
        signature=b"\x00" * 64,
        seq=9,
    )
    assert isinstance(r := h.handle(forged, ASKER, 0.0), krpc.Error) and r.code == 206


def test_unknown_method_with_target_is_answered_like_find_node() -> None:
    h = make()
    r = h.handle(
        krpc.UnknownQuery(tid=b"1", node_id=ASKER_ID, method=b"new", target=b"\x00" * 20), ASKER, 0.0
    )
    assert isinstance(r, krpc.Response) and len(r.nodes) == 8
    e = h.handle(krpc.UnknownQuery(tid=b"1", node_id=ASKER_ID, method=b"new"), ASKER, 0.0)
    assert isinstance(e, krpc.Error) and e.code == 204
