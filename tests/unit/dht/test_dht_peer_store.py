"""Peer store (BEP 5 announces, BEP 33 bloom filters, BEP 51 samples)."""

from __future__ import annotations

import ipaddress
import random

import pytest

from torrent_engine.net.dht.peer_store import (
    PEER_TTL,
    PeerStore,
    bloom_contains,
    bloom_estimate,
    bloom_insert,
    new_bloom,
)

# BEP 33 test vector: 192.0.2.0-255 and 2001:DB8::-2001:DB8::3E7 inserted.
BEP33_FILTER = bytes.fromhex(
    "F6C3F5EA A07FFD91 BDE89F77 7F26FB2B FF37BDB8 FB2BBAA2 FD3DDDE7 BACFFF75 EE7CCBAE"
    "FE5EEDB1 FBFAFF67 F6ABFF5E 43DDBCA3 FD9B9FFD F4FFD3E9 DFF12D1B DF59DB53 DBE9FA5B"
    "7FF3B8FD FCDE1AFB 8BEDD7BE 2F3EE71E BBBFE93B CDEEFE14 8246C2BC 5DBFF7E7 EFDCF24F"
    "D8DC7ADF FD8FFFDF DDFFF7A4 BBEEDF5C B95CE81F C7FCFF1F F4FFFFDF E5F7FDCB B7FD79B3"
    "FA1FC77B FE07FFF9 05B7B7FF C7FEFEFF E0B8370B B0CD3F5B 7F2BD93F EB4386CF DD6F7FD5"
    "BFAF2E9E BFFFFEEC D67ADBF7 C67F17EF D5D75EBA 6FFEBA7F FF47A91E B1BFBB53 E8ABFB57"
    "62ABE8FF 237279BF EFBFEEF5 FFC5FEBF DFE5ADFF ADFEE1FB 737FFFFB FD9F6AEF FEEE76B6"
    "FD8F72EF".replace(" ", "")
)


def test_bep33_bloom_filter_vector() -> None:
    bloom = new_bloom()
    for i in range(256):
        bloom_insert(bloom, f"192.0.2.{i}")
    base = int(ipaddress.IPv6Address("2001:db8::"))
    for i in range(0x3E8):
        bloom_insert(bloom, str(ipaddress.IPv6Address(base + i)))
    assert bytes(bloom) == BEP33_FILTER
    assert bloom_estimate(bytes(bloom)) == pytest.approx(1224.9308, abs=1e-3)


def test_announce_store_get_and_expiry() -> None:
    store = PeerStore()
    ih = b"i" * 20
    assert store.add(ih, "10.0.0.1", 6881, now=0.0)
    assert store.add(ih, "10.0.0.1", 6882, now=1.0)  # same IP: updated, not duplicated (BEP 33)
    assert store.add(ih, "10.0.0.2", 1, now=1.0, seed=True)
    rng = random.Random(0)
    assert sorted(store.get(ih, 2.0, rng)) == [("10.0.0.1", 6882), ("10.0.0.2", 1)]
    assert store.get(ih, 2.0, rng, noseed=True, limit=1) == [("10.0.0.1", 6882)]
    assert store.get(ih, PEER_TTL + 2, rng) == []
    store.expire(PEER_TTL + 2)
    assert len(store) == 0


def test_caps_per_info_hash_and_total() -> None:
    store = PeerStore(max_per_hash=3, max_hashes=2)
    ih = b"a" * 20
    for i in range(3):
        assert store.add(ih, f"10.0.0.{i}", 1, 0.0)
    assert not store.can_store(ih)
    assert not store.add(ih, "10.0.0.9", 1, 0.0)
    assert store.add(ih, "10.0.0.1", 2, 0.0)  # refreshing a known IP is fine
    assert store.add(b"b" * 20, "10.0.0.1", 1, 0.0)
    assert not store.add(b"c" * 20, "10.0.0.1", 1, 0.0)
    assert len(store.get(ih, 0.0, random.Random(0), limit=2)) == 2


def test_blooms_split_seeds_and_peers_and_samples() -> None:
    store = PeerStore()
    ih = b"s" * 20
    store.add(ih, "10.0.0.1", 1, 0.0, seed=True)
    store.add(ih, "10.0.0.2", 1, 0.0)
    store.add(ih, "10.0.0.3", 1, 0.0)
    blooms = store.blooms(ih, 0.0)
    assert blooms is not None
    seeds, peers = blooms
    assert round(bloom_estimate(seeds)) == 1 and round(bloom_estimate(peers)) == 2
    assert store.blooms(b"z" * 20, 0.0) is None
    assert store.sample(random.Random(0), 10) == [ih]


def test_bloom_contains() -> None:
    bloom = new_bloom()
    bloom_insert(bloom, "192.0.2.7")
    assert bloom_contains(bloom, "192.0.2.7")
    assert not bloom_contains(bloom, "192.0.2.8")
