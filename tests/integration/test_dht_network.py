"""A simulated DHT of 1 000+ of our nodes in one process (in-memory datagram network, same node
code as on UDP): any node finds the peers announced for an info-hash; and a flood of queries
from one address is contained by the rate limit while other nodes are still answered."""

from __future__ import annotations

import hashlib
import random

import anyio
import pytest

from torrent_engine.net.dht import krpc
from torrent_engine.net.dht.node import DhtNode
from torrent_engine.net.dht.transport import MemoryNetwork

pytestmark = pytest.mark.anyio

NODES = 1000


def host(i: int) -> str:
    return f"10.{i // 250}.{i % 250}.1"


@pytest.mark.slow
async def test_any_node_finds_the_announced_peers_in_a_1000_node_dht() -> None:
    net = MemoryNetwork()
    rng = random.Random(2024)
    async with anyio.create_task_group() as tg:
        nodes: list[DhtNode] = []
        for i in range(NODES):
            boot = [nodes[j].address for j in rng.sample(range(len(nodes)), min(3, len(nodes)))]
            node = DhtNode(
                transport=net.endpoint(host(i), 6881),
                enforce_bep42=False,
                bootstrap=boot,
                rng=random.Random(i),
                query_timeout=1.0,
            )
            await tg.start(node.run)
            nodes.append(node)
        with anyio.fail_after(60):
            for node in nodes:
                await node.wait_bootstrapped()
        assert min(len(n.table) for n in nodes) >= 8

        info_hash = hashlib.sha1(b"swarm").digest()
        announcers = rng.sample(range(NODES), 3)
        for i in announcers:
            assert await nodes[i].announce_peer(info_hash, 6881) >= 6
        expected = {(host(i), 6881) for i in announcers}
        hops = []
        for i in rng.sample(range(NODES), 25):
            peers, _, stats = await nodes[i].get_peers_lookup(info_hash)
            assert set(peers) == expected, f"node {i} found {peers}"
            hops.append(stats.hops)
        assert max(hops) <= 10  # log-scale routing, not a walk through the network
        assert net.dropped == 0
        tg.cancel_scope.cancel()


async def test_flood_from_one_address_is_contained_while_others_are_answered() -> None:
    net = MemoryNetwork(queue_size=4096)
    frozen = 1000.0  # the victim's clock does not move: no refill during the flood
    async with anyio.create_task_group() as tg:
        victim = DhtNode(
            transport=net.endpoint("10.0.0.1", 6881),
            enforce_bep42=False,
            clock=lambda: frozen,
            rate=20.0,
            burst=40.0,
        )
        await tg.start(victim.run)
        attacker = net.endpoint("10.6.6.6", 6881)
        answers = 0
        other_packets = 0

        async def count_answers() -> None:
            nonlocal answers, other_packets
            while True:
                data, _ = await attacker.receive()
                if isinstance(krpc.decode_message(data), krpc.Response):
                    answers += 1
                else:
                    other_packets += 1  # pings of questionable contacts, bounded

        tg.start_soon(count_answers)
        flood = 5000
        for i in range(flood):
            q = krpc.GetPeers(
                tid=i.to_bytes(2, "big"), node_id=random.Random(i).randbytes(20), info_hash=b"\x01" * 20
            )
            await attacker.send(krpc.encode_message(q), victim.address)
            if i % 500 == 499:  # let the victim drain its queue (4096 places) before going on
                with anyio.fail_after(10):
                    while victim.stats["queries_in"] + victim.stats["dropped_rate_limited"] <= i:
                        await anyio.sleep(0.005)
        with anyio.fail_after(10):
            while victim.stats["queries_in"] + victim.stats["dropped_rate_limited"] < flood:
                await anyio.sleep(0.01)
        # Another node is still answered.
        honest = DhtNode(transport=net.endpoint("10.0.0.2", 6881), enforce_bep42=False, query_timeout=2.0)
        await tg.start(honest.run)
        assert await honest.ping(victim.address) == victim.node_id
        await anyio.sleep(0.05)
        assert victim.stats["queries_in"] == 40 + 1  # the burst from the attacker, then the honest ping
        assert victim.stats["dropped_rate_limited"] == flood - 40
        assert answers == 40
        assert other_packets <= 16
        assert net.dropped == 0  # the drops were the limiter's, not the queue's
        tg.cancel_scope.cancel()
