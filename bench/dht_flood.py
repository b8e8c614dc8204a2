"""DHT amplification under a query flood from many source addresses (simulated clock, no sockets).

One DhtNode with a full routing table, peers stored for an info-hash and a 1000-byte BEP 44
item receives queries (ping, find_node, get_peers, get) from ``--sources`` addresses at
``--rate`` queries per simulated second for ``--seconds`` seconds, through a transport that only
counts bytes. Reports bytes out / bytes in per query type and overall: the reference is the
bytes the flood itself sent (a ratio of 1.0 gives an attacker nothing).

    python bench/dht_flood.py --sources 5000 --rate 5000 --seconds 10
    python bench/dht_flood.py --sources 1 --rate 20 --seconds 60

Each run measures the reference first (reply bytes unbounded: packets per source only), then the
node as configured.
"""

from __future__ import annotations

import argparse
import random
from collections import Counter

from torrent_engine.engine.runtime import run
from torrent_engine.net.dht import bep44, krpc
from torrent_engine.net.dht.node import DhtNode
from torrent_engine.net.dht.ratelimit import ByteLimiter

Address = tuple[str, int]


class CountingTransport:
    """Counts bytes sent per destination; never delivers anything."""

    def __init__(self) -> None:
        self.sent: Counter[Address] = Counter()
        self.local_address: Address = ("10.255.255.1", 6881)

    async def send(self, data: bytes, address: Address) -> None:
        self.sent[address] += len(data)

    async def receive(self) -> tuple[bytes, Address]:
        raise NotImplementedError

    async def aclose(self) -> None:
        pass


def _host(i: int) -> str:
    return f"10.{(i // 62500) % 250}.{(i // 250) % 250}.{i % 250 + 1}"


async def measure(sources: int, rate: int, seconds: int, seed: int, unbounded: bool) -> None:
    rng = random.Random(seed)
    clock = [1000.0]
    transport = CountingTransport()
    node = DhtNode(transport=transport, enforce_bep42=False, rng=rng, clock=lambda: clock[0])
    if unbounded:  # the reference: packets limited per source only, as before reply bytes were
        node.byte_limiter = ByteLimiter(1e12, 1e12, 1e12, 1e12)
    for i in range(400):  # a well-filled table: full "nodes" in every reply
        node.table.heard_from(rng.randbytes(20), _host(100_000 + i), 6881, clock[0], responded=True)
    info_hash = rng.randbytes(20)
    for i in range(50):
        node.peers.add(info_hash, _host(200_000 + i), 6881, clock[0])
    value = b"x" * 990
    target = bep44.immutable_target(value)
    token_reply = node.handler.handle(krpc.GetItem(tid=b"tt", node_id=rng.randbytes(20), target=target),
                                      ("10.250.0.1", 1), clock[0])
    assert isinstance(token_reply, krpc.Response) and token_reply.token is not None
    node.items.put(krpc.PutItem(tid=b"tp", node_id=rng.randbytes(20), token=token_reply.token,
                                value=value), clock[0])

    kinds: list[tuple[str, krpc.Query]] = [
        ("ping", krpc.Ping(tid=b"aa", node_id=b"")),
        ("find_node", krpc.FindNode(tid=b"aa", node_id=b"", target=b"")),
        ("get_peers", krpc.GetPeers(tid=b"aa", node_id=b"", info_hash=info_hash)),
        ("get", krpc.GetItem(tid=b"aa", node_id=b"", target=target)),
    ]
    bytes_in: Counter[str] = Counter()
    bytes_out: Counter[str] = Counter()
    total = rate * seconds
    for n in range(total):
        clock[0] = 1000.0 + n / rate
        name, proto = kinds[n % len(kinds)]
        fields = {"tid": n.to_bytes(4, "big"), "node_id": rng.randbytes(20)}
        if name == "find_node":
            fields["target"] = rng.randbytes(20)
        query = type(proto)(**{**{k: getattr(proto, k) for k in proto.__dataclass_fields__}, **fields})
        data = krpc.encode_message(query)
        address = (_host(rng.randrange(sources)), 6881)
        before = transport.sent[address]
        await node.datagram_received(data, address)
        bytes_in[name] += len(data)
        bytes_out[name] += transport.sent[address] - before
    print(f"{sources} sources, {rate} queries/s for {seconds} s ({total} queries)"
          f"{', reply bytes unbounded (reference)' if unbounded else ''}")
    for name, _ in kinds:
        print(f"  {name:10s} in {bytes_in[name]:>10d} B  out {bytes_out[name]:>10d} B  "
              f"ratio {bytes_out[name] / bytes_in[name]:.2f}")
    tin, tout = sum(bytes_in.values()), sum(bytes_out.values())
    print(f"  {'all':10s} in {tin:>10d} B  out {tout:>10d} B  ratio {tout / tin:.2f}  "
          f"out {tout / seconds / 1024:.0f} KiB/s")
    print("  drops:", {k: v for k, v in node.stats.items() if k.startswith("dropped")})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=5000)
    parser.add_argument("--rate", type=int, default=5000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    run(measure, args.sources, args.rate, args.seconds, args.seed, True)
    run(measure, args.sources, args.rate, args.seconds, args.seed, False)


if __name__ == "__main__":
    main()
