"""BEP 40 canonical peer priority: the spec's examples, the mask rules, symmetry; and the peer
pool choosing by it when more addresses are ready than the connection budget."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from torrent_engine.policy.bep40 import crc32c, peer_priority
from torrent_engine.session.peer_pool import PeerPool


def test_crc32c_check_value() -> None:
    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C catalogue's check value
    assert crc32c(b"") == 0


def test_spec_example_different_networks() -> None:
    # BEP 40: mask FF.FF.55.55: crc32-c(624C14007BD50000)
    assert crc32c(bytes.fromhex("624C14007BD50000")) == 0xEC2D7224
    assert peer_priority(("123.213.32.10", 6881), ("98.76.54.32", 6881)) == 0xEC2D7224


def test_spec_example_same_24() -> None:
    # BEP 40: the same /24: the whole addresses: crc32-c(7BD5200A7BD520EA)
    assert peer_priority(("123.213.32.10", 1), ("123.213.32.234", 2)) == 0x99568189
    assert crc32c(bytes.fromhex("7BD5200A7BD520EA")) == 0x99568189


def test_same_16_keeps_the_third_byte() -> None:
    # FF.FF.FF.55: 10.20.30.40 & 10.20.31.41 -> 0a141e14 / 0a141f41 & ...55
    a, b = bytes([10, 20, 30, 40 & 0x55]), bytes([10, 20, 31, 41 & 0x55])
    assert peer_priority(("10.20.30.40", 1), ("10.20.31.41", 1)) == crc32c(min(a, b) + max(a, b))


def test_same_address_uses_the_ports() -> None:
    assert peer_priority(("127.0.0.1", 6881), ("127.0.0.1", 51413)) == crc32c(
        (6881).to_bytes(2, "big") + (51413).to_bytes(2, "big"))
    assert peer_priority(("127.0.0.1", 6881), ("127.0.0.1", 51413)) == peer_priority(
        ("127.0.0.1", 51413), ("127.0.0.1", 6881))


def test_ipv6_masks() -> None:
    own = "2001:db8:1:2::1"
    far = "2a00:1450::5"  # different /48: FFFF:FFFF:FFFF:5555:...
    mask = bytes.fromhex("ffffffffffff" + "55" * 10)
    a = bytes(x & m for x, m in zip(ipaddress.ip_address(own).packed, mask, strict=True))
    b = bytes(x & m for x, m in zip(ipaddress.ip_address(far).packed, mask, strict=True))
    assert peer_priority((own, 1), (far, 1)) == crc32c(min(a, b) + max(a, b))
    near = "2001:db8:1:2ff::7"  # the same /48 (and not /56): FFFF:FFFF:FFFF:FF55:5555:...
    mask = bytes.fromhex("ffffffffffffff" + "55" * 9)
    a = bytes(x & m for x, m in zip(ipaddress.ip_address(own).packed, mask, strict=True))
    b = bytes(x & m for x, m in zip(ipaddress.ip_address(near).packed, mask, strict=True))
    assert peer_priority((own, 1), (near, 1)) == crc32c(min(a, b) + max(a, b))


def test_ipv4_mapped_counts_as_ipv4_and_mixed_families_have_none() -> None:
    assert peer_priority(("::ffff:123.213.32.10", 1), ("98.76.54.32", 1)) == 0xEC2D7224
    assert peer_priority(("123.213.32.10", 1), ("2001:db8::1", 1)) == 0


@given(st.ip_addresses(v=4), st.ip_addresses(v=4), st.integers(1, 65535), st.integers(1, 65535))
def test_both_ends_agree(a: ipaddress.IPv4Address, b: ipaddress.IPv4Address, pa: int, pb: int) -> None:
    assert peer_priority((str(a), pa), (str(b), pb)) == peer_priority((str(b), pb), (str(a), pa))


# -- the pool's choice ----------------------------------------------------------------------
def test_pool_within_budget_keeps_the_order_heard_of() -> None:
    pool = PeerPool()
    peers = [(f"10.0.{i}.1", 6881) for i in range(5)]
    for p in peers:
        pool.add(p)
    assert pool.choose(0.0, set(), 5, own=("192.0.2.1", 6881)) == peers
    assert pool.choose(0.0, set(), 0, own=("192.0.2.1", 6881)) == []


def test_pool_over_budget_dials_the_highest_priority() -> None:
    pool = PeerPool()
    own = ("192.0.2.1", 6881)
    peers = [(f"10.{i}.{i * 7 % 256}.{i * 13 % 256}", 6881) for i in range(1, 60)]
    for p in peers:
        pool.add(p)
    chosen = pool.choose(0.0, set(), 10, own=own)
    expected = sorted(peers, key=lambda p: -peer_priority(own, p))[:10]
    assert chosen == expected
    assert chosen != peers[:10]  # not simply the first heard of
    # busy ones are skipped, the next best come in
    assert pool.choose(0.0, set(expected[:3]), 10, own=own) == sorted(
        peers, key=lambda p: -peer_priority(own, p))[3:13]


def test_pool_over_budget_prefers_fewer_failures() -> None:
    pool = PeerPool()
    own = ("192.0.2.1", 6881)
    peers = [(f"10.{i}.0.1", 6881) for i in range(1, 20)]
    for p in peers:
        pool.add(p)
    best = sorted(peers, key=lambda p: -peer_priority(own, p))[0]
    pool.failed(best, 0.0)
    chosen = pool.choose(1000.0, set(), 5, own=own)
    assert best not in chosen
    assert chosen == sorted((p for p in peers if p != best), key=lambda p: -peer_priority(own, p))[:5]


def test_loopback_swarm_ranks_by_ports() -> None:
    pool = PeerPool()
    own = ("127.0.0.1", 40000)
    peers = [("127.0.0.1", port) for port in range(50000, 50020)]
    for p in peers:
        pool.add(p)
    assert pool.choose(0.0, set(), 3, own=own) == sorted(peers, key=lambda p: -peer_priority(own, p))[:3]
