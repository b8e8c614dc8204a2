"""The iterative lookup state machine: α in flight, closest first, stops when the k closest
have answered; driven here against a static simulated id space (no I/O)."""

from __future__ import annotations

import random

from torrent_engine.net.dht.krpc import NodeInfo
from torrent_engine.net.dht.lookup import Lookup
from torrent_engine.net.dht.routing import id_to_int


def make_nodes(n: int, seed: int = 0) -> list[NodeInfo]:
    rng = random.Random(seed)
    return [NodeInfo(rng.randbytes(20), f"10.{i // 250}.{i % 250}.1", 6881) for i in range(n)]


def closest(nodes: list[NodeInfo], target: bytes, k: int) -> list[NodeInfo]:
    t = id_to_int(target)
    return sorted(nodes, key=lambda n: id_to_int(n.node_id) ^ t)[:k]


def test_never_more_than_alpha_in_flight_and_closest_first() -> None:
    nodes = make_nodes(50)
    target = bytes(20)
    lk = Lookup(target, k=8, alpha=3)
    lk.add(nodes)
    first = lk.next_queries()
    assert first == closest(nodes, target, 3)
    assert lk.next_queries() == []  # α reached
    lk.on_response(first[0].address)
    assert len(lk.next_queries()) == 1


def test_lookup_converges_on_the_true_k_closest() -> None:
    nodes = make_nodes(500, seed=1)
    rng = random.Random(2)
    # Each simulated node has a Kademlia table: up to 8 random contacts per distance bucket.
    knows: dict[tuple[str, int], list[NodeInfo]] = {}
    for a in nodes:
        buckets: dict[int, list[NodeInfo]] = {}
        for b in rng.sample(nodes, len(nodes)):
            d = (id_to_int(a.node_id) ^ id_to_int(b.node_id)).bit_length()
            if b is not a and len(buckets.setdefault(d, [])) < 8:
                buckets[d].append(b)
        knows[a.address] = [n for group in buckets.values() for n in group]
    for _ in range(10):
        target = rng.randbytes(20)
        lk = Lookup(target, k=8, alpha=3)
        lk.add(rng.sample(nodes, 8))
        while not lk.done:
            batch = lk.next_queries()
            assert batch, "not done but nothing to query"
            for n in batch:
                lk.on_response(n.address, closest(knows[n.address], target, 8), token=b"t")
        got = [c.info for c in lk.results()]
        assert got == closest(nodes, target, 8)
        assert all(c.token == b"t" for c in lk.results())
        assert lk.queries_sent < 100
        assert lk.hops >= 1


def test_failed_nodes_are_skipped_and_the_lookup_still_ends() -> None:
    nodes = make_nodes(30, seed=4)
    target = bytes(20)
    dead = {n.address for n in closest(nodes, target, 4)}
    lk = Lookup(target, k=8, alpha=3)
    lk.add(nodes)
    while not lk.done:
        for n in lk.next_queries():
            if n.address in dead:
                lk.on_failure(n.address)
            else:
                lk.on_response(n.address, [])
    assert lk.failures == 4
    assert [c.info for c in lk.results()] == closest(nodes, target, 12)[4:12]


def test_everybody_failing_ends_the_lookup_with_no_results() -> None:
    lk = Lookup(bytes(20))
    lk.add(make_nodes(5))
    while not lk.done:
        for n in lk.next_queries():
            lk.on_failure(n.address)
    assert lk.results() == []


def test_bootstrap_addresses_without_ids_are_queried() -> None:
    lk = Lookup(b"\x01" * 20)
    lk.add([NodeInfo(bytes(20), "127.0.0.1", 1)], unknown_id=True)
    assert [n.port for n in lk.next_queries()] == [1]
    found = make_nodes(3)
    lk.on_response(("127.0.0.1", 1), found)
    assert {n.address for n in lk.next_queries()} == {n.address for n in found}


def test_replies_from_unknown_or_duplicate_addresses_are_ignored() -> None:
    lk = Lookup(bytes(20))
    nodes = make_nodes(3)
    lk.add(nodes)
    q = lk.next_queries()
    lk.on_response(("9.9.9.9", 1), make_nodes(5, seed=9))
    lk.on_response(q[0].address)
    lk.on_response(q[0].address)
    assert lk.responses == 1 and lk.in_flight == 2


def test_slow_node_frees_its_slot_but_its_late_answer_counts() -> None:
    nodes = make_nodes(20, seed=5)
    target = bytes(20)
    lk = Lookup(target, k=8, alpha=3)
    lk.add(nodes)
    first = lk.next_queries()
    lk.on_slow(first[0].address)
    extra = lk.next_queries()
    assert len(extra) == 1 and extra[0] not in first  # a new query took the slot
    for n in first[1:] + extra:
        lk.on_response(n.address)
    while True:
        batch = lk.next_queries()
        for n in batch:
            lk.on_response(n.address)
        if not batch:
            break
    assert not lk.done  # the slow node is among the k closest: its answer is awaited
    lk.on_response(first[0].address)
    assert lk.done
    assert [c.info for c in lk.results()] == closest(nodes, target, 8)


def test_urgent_contacts_are_queried_at_once_beside_the_alpha_closest() -> None:
    """A saved table's nodes rank closest but may all be gone: the routers added as urgent are
    asked in the first round anyway, without taking the closest nodes' slots."""
    nodes = make_nodes(20)
    target = bytes(20)
    lk = Lookup(target, k=8, alpha=3)
    lk.add(nodes)
    lk.add([NodeInfo(bytes(20), "127.0.0.1", p) for p in (1, 2)], unknown_id=True, urgent=True)
    first = lk.next_queries()
    assert {n.port for n in first[:2]} == {1, 2}
    assert first[2:] == closest(nodes, target, 3)
    found = make_nodes(5, seed=9)
    lk.on_response(("127.0.0.1", 1), found)
    assert lk.next_queries() == []  # the α closest are still in flight; the router's slot was its own
    lk.add([NodeInfo(bytes(20), "127.0.0.1", p) for p in range(3, 60)], unknown_id=True, urgent=True)
    assert sum(1 for n in lk.next_queries() if n.host == "127.0.0.1") == 30  # at most 32 urgent in all
