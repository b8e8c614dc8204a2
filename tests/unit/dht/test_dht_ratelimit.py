"""Per-address token bucket that keeps a flood from one source contained."""

from __future__ import annotations

import random

import anyio

from torrent_engine.net.dht import bep44, krpc
from torrent_engine.net.dht.node import DhtNode
from torrent_engine.net.dht.ratelimit import ByteLimiter, RateLimiter


def test_burst_then_refill_per_address() -> None:
    rl = RateLimiter(rate=10, burst=5)
    assert [rl.allow("10.0.0.1", 0.0) for _ in range(7)] == [True] * 5 + [False] * 2
    assert rl.dropped == 2
    assert rl.allow("10.0.0.2", 0.0)  # another address is unaffected
    assert not rl.allow("10.0.0.1", 0.05)  # half a token
    assert rl.allow("10.0.0.1", 0.2)  # refilled
    # Refill is capped at the burst size.
    assert sum(rl.allow("10.0.0.1", 100.0) for _ in range(20)) == 5


def test_number_of_tracked_addresses_is_bounded() -> None:
    rl = RateLimiter(rate=1, burst=1, max_hosts=100)
    for i in range(1000):
        rl.allow(f"10.0.{i // 250}.{i % 250}", 0.0)
    assert len(rl._buckets) == 100


def test_byte_limiter_per_source_and_total() -> None:
    bl = ByteLimiter(rate=100, burst=300, total_rate=1000, total_burst=500)
    assert bl.allow("10.0.0.1", 300, 0.0)
    assert not bl.allow("10.0.0.1", 1, 0.0)  # its own bucket is empty
    assert bl.allow("10.0.0.2", 200, 0.0)
    assert not bl.allow("10.0.0.3", 1, 0.0)  # the shared bucket is empty
    assert bl.dropped == 2 and bl.dropped_bytes == 2
    assert bl.allow("10.0.0.3", 100, 0.1)  # the shared bucket refilled 100 bytes
    assert bl.allow("10.0.0.1", 100, 1.2)  # its own: 100 bytes a second


def test_node_reply_bytes_bounded_under_a_flood_from_many_addresses() -> None:
    """A flood of BEP 44 gets (replies ~15x the query) from 2000 addresses: the node sends no
    more than its total reply budget, far less than the flood's own bytes."""
    clock = [1000.0]
    sent: list[int] = []

    class Counting:
        local_address = ("10.255.0.1", 6881)

        async def send(self, data: bytes, address: tuple[str, int]) -> None:
            sent.append(len(data))

        async def receive(self) -> tuple[bytes, tuple[str, int]]:
            raise NotImplementedError

        async def aclose(self) -> None:
            pass

    node = DhtNode(transport=Counting(), enforce_bep42=False, rng=random.Random(1), clock=lambda: clock[0],
                   reply_bytes_total_rate=10_000, reply_bytes_total_burst=10_000)
    value = b"v" * 990
    target = bep44.immutable_target(value)
    reply = node.handler.handle(krpc.GetItem(tid=b"t", node_id=bytes(20), target=target), ("10.9.9.9", 1),
                                clock[0])
    assert isinstance(reply, krpc.Response) and reply.token is not None
    node.items.put(krpc.PutItem(tid=b"t", node_id=bytes(20), token=reply.token, value=value), clock[0])

    async def flood() -> int:
        received = 0
        for n in range(4000):  # 2000 queries a second for 2 s
            clock[0] = 1000.0 + n / 2000
            query = krpc.GetItem(tid=n.to_bytes(4, "big"), node_id=bytes(20), target=target)
            data = krpc.encode_message(query)
            received += len(data)
            await node.datagram_received(data, (f"10.1.{n % 2000 // 250}.{n % 250 + 1}", 6881))
        return received

    received = anyio.run(flood)
    assert sum(sent) <= 10_000 + 2 * 10_000 + 1100  # burst + 2 s of the total rate (+ one reply)
    assert sum(sent) < received
    assert node.stats["dropped_byte_limited"] > 0
