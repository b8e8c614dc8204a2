"""DHT lookup cost in a simulated network of our own nodes (in-memory datagrams, same node code).

For N nodes, runs get_peers lookups for random targets from random nodes and reports hop count,
messages per lookup and whether it found the true k closest, next to log2(N) and, in the same
run and on the same network, naive references: the same lookup with α = 1 (strictly sequential
Kademlia) and an exhaustive search (ask every node: N messages). Optionally with packet loss.

    python bench/dht_lookup.py --nodes 2000 --lookups 200
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import time

import anyio

from torrent_engine.engine.runtime import run
from torrent_engine.net.dht.node import DhtNode
from torrent_engine.net.dht.transport import MemoryNetwork


async def measure(nodes: int, lookups: int, seed: int, loss: float) -> None:
    net = MemoryNetwork(loss=0.0, rng=random.Random(seed))
    rng = random.Random(seed)
    t0 = time.perf_counter()
    async with anyio.create_task_group() as tg:
        swarm: list[DhtNode] = []
        for i in range(nodes):
            boot = [swarm[j].address for j in rng.sample(range(len(swarm)), min(3, len(swarm)))]
            node = DhtNode(
                transport=net.endpoint(f"10.{i // 62500}.{(i // 250) % 250}.{i % 250 + 1}", 6881),
                enforce_bep42=False,
                bootstrap=boot,
                rng=random.Random(seed * 1_000_003 + i),
                query_timeout=0.2,
            )
            await tg.start(node.run)
            swarm.append(node)
        for node in swarm:
            await node.wait_bootstrapped()
        build = time.perf_counter() - t0
        table = statistics.mean(len(n.table) for n in swarm)
        net.loss = loss
        print(
            f"network: {nodes} nodes built in {build:.1f}s, "
            f"mean routing table {table:.1f} contacts, loss {loss:.0%}"
        )
        print(f"log2(N) = {math.log2(nodes):.2f}")
        ids = [int.from_bytes(n.node_id, "big") for n in swarm]
        for alpha in (3, 1):
            exact = 0
            recall: list[float] = []
            hops: list[int] = []
            msgs: list[int] = []
            fails: list[int] = []
            t1 = time.perf_counter()
            lookup_rng = random.Random(seed + alpha)
            for _ in range(lookups):
                node = swarm[lookup_rng.randrange(nodes)]
                node.alpha = alpha
                target = lookup_rng.randbytes(20)
                _, lookup, stats = await node.get_peers_lookup(target)
                node.alpha = 3
                t = int.from_bytes(target, "big")
                own = int.from_bytes(node.node_id, "big")
                truth = sorted(i ^ t for i in ids if i != own)[:8]
                got = [int.from_bytes(c.info.node_id, "big") ^ t for c in lookup.results()]
                exact += got == truth
                recall.append(len(set(got) & set(truth)) / len(truth))
                hops.append(stats.hops)
                msgs.append(stats.queries)
                fails.append(stats.failures)
            elapsed = time.perf_counter() - t1
            print(
                f"alpha={alpha}: hops mean {statistics.mean(hops):.2f} median {statistics.median(hops)} "
                f"max {max(hops)}; messages/lookup mean {statistics.mean(msgs):.1f} "
                f"median {statistics.median(msgs)} max {max(msgs)}; "
                f"failed queries/lookup (after one retry) {statistics.mean(fails):.2f}; "
                f"{1000 * elapsed / lookups:.1f} ms/lookup; found the true 8 closest in {exact}/{lookups} "
                f"(mean recall {statistics.mean(recall):.3f}); "
                f"messages vs exhaustive search {statistics.mean(msgs) / nodes:.4f}"
            )
        tg.cancel_scope.cancel()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=2000)
    ap.add_argument("--lookups", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--loss", type=float, default=0.0, help="fraction of datagrams dropped during lookups")
    args = ap.parse_args()
    run(measure, args.nodes, args.lookups, args.seed, args.loss)


if __name__ == "__main__":
    main()
