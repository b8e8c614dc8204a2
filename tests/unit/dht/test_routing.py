"""Routing table (BEP 5): bucket splitting, node states, replacement cache, refresh, BEP 42."""

from __future__ import annotations

import random

from torrent_engine.net.dht.bep42 import generate_node_id
from torrent_engine.net.dht.routing import (
    GOOD_INTERVAL,
    K,
    NodeState,
    RoutingTable,
    id_to_int,
    int_to_id,
)

OWN = bytes(20)  # id 0: our bucket is always the lowest one


def nid(value: int) -> bytes:
    return int_to_id(value)


def far(i: int) -> bytes:
    """Ids in the upper half of the space (first bit 1): never our bucket once split."""
    return nid((1 << 159) | (i + 1))


def fill(table: RoutingTable, ids: list[bytes], now: float = 0.0, *, responded: bool = True) -> None:
    for i, node_id in enumerate(ids):
        table.heard_from(node_id, f"10.0.{i // 250}.{i % 250}", 6881, now, responded=responded)


def test_first_k_nodes_fit_in_one_bucket() -> None:
    table = RoutingTable(OWN, enforce_bep42=False)
    fill(table, [far(i) for i in range(K)])
    assert len(table) == K
    assert len(table.buckets) == 1


def test_only_the_bucket_holding_our_id_splits() -> None:
    table = RoutingTable(OWN, enforce_bep42=False)
    fill(table, [far(i) for i in range(K)])
    # The 9th node makes the full bucket (it holds our id) split in two halves.
    fill(table, [far(100)])
    assert len(table.buckets) == 2
    upper = table.bucket_for(far(0))
    assert upper.low == 1 << 159 and not upper.covers(0)
    # The upper half is full (8 of 9 far nodes fit) and does not hold our id: it never splits.
    assert len(upper.nodes) == K
    fill(table, [far(200 + i) for i in range(20)])
    assert table.bucket_for(far(0)) is upper
    assert len(upper.nodes) == K
    assert all(id_to_int(n) >= 1 << 159 for n in upper.nodes)
    # The extra nodes that answered wait in the replacement cache.
    assert 0 < len(upper.replacements) <= K


def test_nodes_near_our_id_keep_splitting_our_bucket() -> None:
    table = RoutingTable(OWN, enforce_bep42=False)
    near = [nid((1 << (100 + i)) + 1) for i in range(40)]
    fill(table, near)
    assert len(table) == 40  # each falls into a bucket of its own distance range
    assert len(table.buckets) > 30
    ranges = [(b.low, b.high) for b in table.buckets]
    assert ranges == sorted(ranges)
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))
    assert ranges[0][0] == 0 and ranges[-1][1] == 1 << 160


def test_node_states_follow_the_15_minute_rules() -> None:
    table = RoutingTable(OWN, enforce_bep42=False)
    table.heard_from(far(1), "10.0.0.1", 1, now=0.0, responded=True)
    node = table.get(far(1))
    assert node is not None
    assert node.state(10.0) is NodeState.GOOD
    assert node.state(GOOD_INTERVAL + 1) is NodeState.QUESTIONABLE
    # It queried us after having answered once: good again.
    table.heard_from(far(1), "10.0.0.1", 1, now=GOOD_INTERVAL + 2, responded=False)
    assert node.state(GOOD_INTERVAL + 3) is NodeState.GOOD
    # A node that only ever queried us is not good.
    table.heard_from(far(2), "10.0.0.2", 1, now=0.0, responded=False)
    other = table.get(far(2))
    assert other is not None and other.state(1.0) is NodeState.QUESTIONABLE
    # Failing repeatedly makes it bad; an answer resets that.
    table.failed(far(1), 5.0)
    assert node.state(5.0) is not NodeState.BAD
    table.failed(far(1), 6.0)
    assert node.state(6.0) is NodeState.BAD
    table.heard_from(far(1), "10.0.0.1", 1, now=7.0, responded=True)
    assert node.state(7.0) is NodeState.GOOD


def test_full_bucket_asks_to_ping_questionable_nodes_then_replaces_bad_ones() -> None:
    table = RoutingTable(OWN, enforce_bep42=False)
    fill(table, [far(i) for i in range(K)])
    fill(table, [nid(5)])  # split: upper half holds the K far nodes
    later = GOOD_INTERVAL + 10
    to_ping = table.heard_from(far(50), "10.9.9.9", 1, later, responded=True)
    assert {n.node_id for n in to_ping} == {far(i) for i in range(K)}
    assert table.get(far(50)) is None
    upper = table.bucket_for(far(0))
    assert far(50) in upper.replacements
    # The pinged node fails twice: it is bad and the replacement takes its place.
    table.failed(far(0), later + 1)
    table.failed(far(0), later + 2)
    assert table.get(far(0)) is None
    assert table.get(far(50)) is not None


def test_bad_node_is_replaced_directly_by_a_new_one() -> None:
    table = RoutingTable(OWN, enforce_bep42=False)
    fill(table, [far(i) for i in range(K)])
    fill(table, [nid(5)])
    node = table.get(far(3))
    assert node is not None
    node.fails = 5  # bad, no replacement waiting
    assert table.heard_from(far(77), "10.1.1.1", 1, 1.0, responded=True) == []
    assert table.get(far(77)) is not None and table.get(far(3)) is None


def test_good_nodes_are_never_evicted() -> None:
    table = RoutingTable(OWN, enforce_bep42=False)
    fill(table, [far(i) for i in range(K)])
    fill(table, [nid(5)])
    assert table.heard_from(far(60), "10.2.2.2", 1, 1.0, responded=True) == []
    assert {n.node_id for n in table.bucket_for(far(0)).nodes.values()} == {far(i) for i in range(K)}


def test_same_id_from_another_address_does_not_take_over() -> None:
    table = RoutingTable(OWN, enforce_bep42=False)
    table.heard_from(far(1), "10.0.0.1", 1, 0.0, responded=True)
    table.heard_from(far(1), "10.6.6.6", 2, 1.0, responded=True)
    node = table.get(far(1))
    assert node is not None and (node.host, node.port) == ("10.0.0.1", 1)


def test_closest_orders_by_xor_distance_and_skips_bad() -> None:
    table = RoutingTable(OWN, enforce_bep42=False)
    ids = [nid(v) for v in (1, 2, 3, 8, 16, 1 << 150, 1 << 159)]
    fill(table, ids)
    got = [n.node_id for n in table.closest(nid(3), 3)]
    assert got == [nid(3), nid(2), nid(1)]
    table.failed(nid(3), 0.0)
    table.failed(nid(3), 0.0)
    assert nid(3) not in [n.node_id for n in table.closest(nid(3), 3)]


def test_refresh_targets_fall_in_stale_buckets() -> None:
    table = RoutingTable(OWN, enforce_bep42=False)
    fill(table, [far(i) for i in range(K)] + [nid(5)])
    rng = random.Random(1)
    assert table.refresh_targets(10.0, rng) == []
    targets = table.refresh_targets(GOOD_INTERVAL + 1, rng)
    assert len(targets) == len(table.buckets)
    for bucket, target in zip(table.buckets, targets, strict=True):
        assert bucket.covers(id_to_int(target))
    assert table.refresh_targets(GOOD_INTERVAL + 2, rng) == []  # marked as refreshed


def test_bep42_enforcement() -> None:
    rng = random.Random(3)
    good = generate_node_id("203.0.113.5", rng)
    strict = RoutingTable(OWN, enforce_bep42=True)
    strict.heard_from(good, "203.0.113.5", 1, 0.0, responded=True)
    strict.heard_from(far(1), "203.0.113.6", 1, 0.0, responded=True)  # arbitrary id: violates BEP 42
    strict.heard_from(far(2), "127.0.0.1", 1, 0.0, responded=True)  # loopback is exempt
    assert strict.get(good) is not None
    assert strict.get(far(1)) is None and strict.rejected_bep42 == 1
    assert strict.get(far(2)) is not None
    relaxed = RoutingTable(OWN, enforce_bep42=False)
    relaxed.heard_from(far(1), "203.0.113.6", 1, 0.0, responded=True)
    assert relaxed.get(far(1)) is not None


def test_own_id_is_never_added() -> None:
    table = RoutingTable(OWN, enforce_bep42=False)
    table.heard_from(OWN, "10.0.0.1", 1, 0.0, responded=True)
    assert len(table) == 0
