"""DhtNode, the async shell: real UDP on 127.0.0.1 and the in-memory transport.

Lifecycle (bootstrap single-flight, event, saved table, socket closed on cancel), lookups,
announces, BEP 44 through the network, BEP 42 id from the external address, BEP 43 read-only,
and counted drops of bad packets.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from torrent_engine.errors import DHTError
from torrent_engine.events import DhtBootstrapped, Event, EventBus
from torrent_engine.formats.bencode import decode, encode
from torrent_engine.net.dht import bep44, krpc
from torrent_engine.net.dht.bep42 import is_valid_node_id
from torrent_engine.net.dht.node import DhtNode
from torrent_engine.net.dht.transport import MemoryNetwork

pytestmark = pytest.mark.anyio

INFO_HASH = hashlib.sha1(b"test torrent").digest()


@asynccontextmanager
async def udp_swarm(count: int, **kw: object) -> AsyncIterator[list[DhtNode]]:
    """``count`` nodes on 127.0.0.1 (UDP), each bootstrapped from the first."""
    async with anyio.create_task_group() as tg:
        first = DhtNode(bind=("127.0.0.1", 0), enforce_bep42=False, rng=random.Random(0), **kw)  # type: ignore[arg-type]
        await tg.start(first.run)
        nodes = [first]
        for i in range(1, count):
            n = DhtNode(
                bind=("127.0.0.1", 0),
                enforce_bep42=False,
                bootstrap=[first.address],
                rng=random.Random(i),
                **kw,  # type: ignore[arg-type]
            )
            await tg.start(n.run)
            nodes.append(n)
        with anyio.fail_after(10):
            for n in nodes:
                await n.wait_bootstrapped()
        yield nodes
        tg.cancel_scope.cancel()


@asynccontextmanager
async def mem_swarm(
    count: int, net: MemoryNetwork | None = None, **kw: object
) -> AsyncIterator[tuple[MemoryNetwork, list[DhtNode]]]:
    net = net or MemoryNetwork()
    async with anyio.create_task_group() as tg:
        nodes: list[DhtNode] = []
        for i in range(count):
            boot = [nodes[0].address] if nodes else []
            n = DhtNode(
                transport=net.endpoint(f"10.0.{i // 250}.{i % 250 + 1}", 6881),
                enforce_bep42=False,
                bootstrap=boot,
                rng=random.Random(i),
                **kw,  # type: ignore[arg-type]
            )
            await tg.start(n.run)
            nodes.append(n)
        with anyio.fail_after(10):
            for n in nodes:
                await n.wait_bootstrapped()
        yield net, nodes
        tg.cancel_scope.cancel()


async def test_ping_over_loopback_udp() -> None:
    async with udp_swarm(2) as (a, b):
        assert await a.ping(b.address) == b.node_id
        assert b.table.get(a.node_id) is not None  # it queried b (bootstrap and ping)
        assert a.table.get(b.node_id) is not None


async def test_announce_then_get_peers_over_loopback_udp() -> None:
    async with udp_swarm(12) as nodes:
        assert await nodes[3].announce_peer(INFO_HASH, 51413) >= 1
        assert ("127.0.0.1", 51413) in await nodes[9].get_peers(INFO_HASH)
        # implied_port: the announcing node's UDP port is stored instead.
        other = hashlib.sha1(b"implied").digest()
        assert await nodes[4].announce_peer(other, 1, implied_port=True) >= 1
        assert await nodes[10].get_peers(other) == [("127.0.0.1", nodes[4].port)]
        assert await nodes[5].get_peers(hashlib.sha1(b"nobody").digest()) == []


async def test_bootstrap_is_single_flight_and_published_once() -> None:
    bus = EventBus()
    seen: list[Event] = []
    bus.subscribe("dht.bootstrapped", seen.append)
    async with mem_swarm(10) as (net, nodes):
        n = DhtNode(
            transport=net.endpoint("10.9.9.9", 6881),
            enforce_bep42=False,
            bootstrap=[nodes[0].address],
            events=bus,
            rng=random.Random(99),
        )
        async with anyio.create_task_group() as tg:
            await tg.start(n.run)
            sizes: list[int] = []

            async def boot() -> None:
                sizes.append(await n.bootstrap())

            for _ in range(5):
                tg.start_soon(boot)
            await n.wait_bootstrapped()
            await anyio.sleep(0.05)
            assert len(sizes) == 5 and min(sizes) > 0
            assert n.stats["bootstraps"] == 1  # five concurrent callers shared the first bootstrap
            assert len(seen) == 1
            assert isinstance(seen[0], DhtBootstrapped) and seen[0].nodes > 0
            assert await n.bootstrap() > 0  # a later call runs a new one
            assert n.stats["bootstraps"] == 2
            assert len(seen) == 1
            tg.cancel_scope.cancel()


async def test_routing_table_saved_on_close_and_loaded_on_start(tmp_path: Path) -> None:
    state = tmp_path / "dht.state"
    async with mem_swarm(20) as (net, nodes):
        await nodes[7].announce_peer(INFO_HASH, 6000)
        async with anyio.create_task_group() as tg:
            n = DhtNode(
                transport=net.endpoint("10.8.8.8", 6881),
                enforce_bep42=False,
                bootstrap=[nodes[0].address],
                state_path=state,
            )
            await tg.start(n.run)
            await n.wait_bootstrapped()
            saved_id, saved_size = n.node_id, len(n.table)
            tg.cancel_scope.cancel()
        data = decode(state.read_bytes())
        assert isinstance(data, dict) and data[b"id"] == saved_id
        assert isinstance(data[b"nodes"], bytes) and len(data[b"nodes"]) == 26 * saved_size
        assert not (tmp_path / "dht.state.tmp").exists()
        # Restart with no bootstrap nodes at all: the saved table is enough.
        async with anyio.create_task_group() as tg:
            again = DhtNode(transport=net.endpoint("10.8.8.8", 6881), enforce_bep42=False, state_path=state)
            await tg.start(again.run)
            await again.wait_bootstrapped()
            assert again.node_id == saved_id
            assert again.stats["state_nodes_loaded"] == saved_size
            assert ("10.0.0.8", 6000) in await again.get_peers(INFO_HASH)
            tg.cancel_scope.cancel()


async def test_corrupt_state_file_is_ignored(tmp_path: Path) -> None:
    state = tmp_path / "dht.state"
    state.write_bytes(b"d2:id3:abc5:nodes7:garbagee")
    net = MemoryNetwork()
    async with anyio.create_task_group() as tg:
        n = DhtNode(transport=net.endpoint("10.0.0.1", 1), enforce_bep42=False, state_path=state)
        await tg.start(n.run)
        await n.wait_bootstrapped()
        assert len(n.table) == 0
        tg.cancel_scope.cancel()
    assert isinstance(decode(state.read_bytes()), dict)  # rewritten cleanly on close


async def test_cancelling_run_closes_the_socket() -> None:
    async with anyio.create_task_group() as outer:
        probe = DhtNode(bind=("127.0.0.1", 0), enforce_bep42=False, query_timeout=5.0)
        await outer.start(probe.run)
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:
                n = DhtNode(bind=("127.0.0.1", 0), enforce_bep42=False)
                await tg.start(n.run)
                address = n.address
                assert await probe.ping(address) == n.node_id
                scope.cancel()
        with pytest.raises(DHTError):
            _ = n.port
        probe.query_timeout = 0.5
        with pytest.raises(DHTError, match="timed out"):
            await probe.ping(address)
        outer.cancel_scope.cancel()


async def test_bad_packets_are_counted_drops_and_bad_queries_get_error_203() -> None:
    async with udp_swarm(1) as (node,):
        async with await anyio.create_udp_socket(local_host="127.0.0.1") as sock:
            await sock.sendto(b"garbage", *node.address)
            await sock.sendto(b"d1:t2:xx1:y1:q1:q4:pinge", *node.address)  # query without arguments
            await sock.sendto(b"x" * 2000, *node.address)
            unexpected = krpc.Response(tid=b"zz", node_id=b"a" * 20)
            await sock.sendto(krpc.encode_message(unexpected), *node.address)
            with anyio.fail_after(5):
                data, _ = await sock.receive()
            reply = krpc.decode_message(data)
            assert isinstance(reply, krpc.Error) and reply.code == 203 and reply.tid == b"xx"
            with anyio.fail_after(5):
                while node.stats["dropped_unexpected_reply"] < 1:
                    await anyio.sleep(0.01)
        assert node.stats["dropped_malformed"] == 3
        assert node.stats["dropped_unexpected_reply"] == 1
        assert node.stats["queries_in"] == 0


async def test_read_only_node_bep43() -> None:
    async with mem_swarm(5) as (net, nodes):
        async with anyio.create_task_group() as tg:
            ro = DhtNode(
                transport=net.endpoint("10.7.7.7", 6881),
                enforce_bep42=False,
                bootstrap=[nodes[0].address],
                read_only=True,
            )
            await tg.start(ro.run)
            await ro.wait_bootstrapped()
            assert len(ro.table) > 0  # it can still look things up
            assert all(n.table.get(ro.node_id) is None for n in nodes)  # nobody adds it
            nodes[1].query_timeout = 0.5
            with pytest.raises(DHTError, match="timed out"):
                await nodes[1].ping(ro.address)  # and it answers nobody
            tg.cancel_scope.cancel()


async def test_node_id_follows_external_address_bep42() -> None:
    net = MemoryNetwork()
    async with mem_swarm(4, net) as (_, nodes):
        async with anyio.create_task_group() as tg:
            n = DhtNode(
                transport=net.endpoint("198.51.100.7", 6881), enforce_bep42=True, rng=random.Random(5)
            )
            await tg.start(n.run)
            assert not is_valid_node_id(n.node_id, "198.51.100.7")
            for other in nodes[:3]:
                await n.ping(other.address)  # each reply carries "ip" = our address as seen
            assert n.external_ip == "198.51.100.7"
            assert is_valid_node_id(n.node_id, "198.51.100.7")
            tg.cancel_scope.cancel()


async def test_bep44_immutable_and_mutable_items_through_the_network() -> None:
    async with mem_swarm(25) as (_, nodes):
        target, stored = await nodes[2].put_immutable(b"Hello World!")
        assert target == bytes.fromhex("e5f96f6f38320f0f33959cb4d3d656452117aadb") and stored >= 1
        assert await nodes[20].get_immutable(target) == b"Hello World!"
        assert await nodes[20].get_immutable(hashlib.sha1(b"absent").digest()) is None
        key = Ed25519PrivateKey.generate()
        pub = bep44.public_key_bytes(key)
        _, seq, stored = await nodes[3].put_mutable(key, {b"n": 1}, salt=b"s")
        assert seq == 1 and stored >= 1
        _, seq, _ = await nodes[4].put_mutable(key, {b"n": 2}, salt=b"s")  # next seq found in the DHT
        assert seq == 2
        assert await nodes[15].get_mutable(pub, b"s") == ({b"n": 2}, 2)
        assert await nodes[15].get_mutable(pub) is None  # other salt, other target
        with pytest.raises(DHTError):
            await nodes[1].put_immutable(b"x" * 1000)


async def test_sample_infohashes_bep51_and_scrape_bep33() -> None:
    async with mem_swarm(8) as (_, nodes):
        await nodes[1].announce_peer(INFO_HASH, 7000, seed=True)
        holders = [n for n in nodes if len(n.peers)]
        assert holders
        r = await nodes[2].sample_infohashes(holders[0].address)
        assert r.samples == (INFO_HASH,) and r.num == 1
        peers, _, _ = await nodes[3].get_peers_lookup(INFO_HASH, scrape=True)
        assert peers == [("10.0.0.2", 7000)]


async def test_state_bytes_are_bencoded_compact_nodes() -> None:
    async with mem_swarm(3) as (_, nodes):
        data = decode(nodes[1].state_bytes())
        assert isinstance(data, dict)
        raw = data[b"nodes"]
        assert isinstance(raw, bytes)
        assert {n.node_id for n in krpc.decode_compact_nodes(raw)} == {n.node_id for n in nodes[1].table}
        assert encode(data) == nodes[1].state_bytes()


def _have_ipv6_loopback() -> bool:
    import socket

    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _have_ipv6_loopback(), reason="no IPv6 loopback on this machine")
async def test_ipv6_dht_bep32() -> None:
    async with anyio.create_task_group() as tg:
        first = DhtNode(bind=("::1", 0), enforce_bep42=False, rng=random.Random(0))
        await tg.start(first.run)
        nodes = [first]
        for i in range(1, 8):
            n = DhtNode(bind=("::1", 0), enforce_bep42=False, bootstrap=[first.address], rng=random.Random(i))
            await tg.start(n.run)
            nodes.append(n)
        with anyio.fail_after(10):
            for n in nodes:
                await n.wait_bootstrapped()
        assert all(len(n.table) >= 5 for n in nodes)  # learned from nodes6 replies
        assert await nodes[2].announce_peer(INFO_HASH, 5000) >= 1
        assert await nodes[6].get_peers(INFO_HASH) == [("::1", 5000)]
        tg.cancel_scope.cancel()


async def test_a_stranger_enters_the_table_only_after_answering_our_ping() -> None:
    net = MemoryNetwork()
    async with anyio.create_task_group() as tg:
        node = DhtNode(transport=net.endpoint("10.0.0.1", 6881), enforce_bep42=False, query_timeout=0.5)
        await tg.start(node.run)
        for host, answer in (("10.0.0.2", False), ("10.0.0.3", True)):
            stranger = net.endpoint(host, 6881)
            sid = hashlib.sha1(host.encode()).digest()
            await stranger.send(krpc.encode_message(krpc.Ping(tid=b"q1", node_id=sid)), node.address)
            with anyio.fail_after(5):
                got: list[krpc.Message] = []
                while len(got) < 2:  # our pong, and the node's own ping to us
                    data, _ = await stranger.receive()
                    got.append(krpc.decode_message(data))
            ping = next(m for m in got if isinstance(m, krpc.Ping))
            assert node.table.get(sid) is None  # not before it answers
            if answer:
                pong = krpc.Response(tid=ping.tid, node_id=sid)
                await stranger.send(krpc.encode_message(pong), node.address)
                with anyio.fail_after(5):
                    while node.table.get(sid) is None:
                        await anyio.sleep(0.01)
            else:
                with anyio.fail_after(5):
                    while node.stats["timeouts"] < 1:
                        await anyio.sleep(0.01)
                assert node.table.get(sid) is None  # a forged or silent source never gets in
        tg.cancel_scope.cancel()


async def test_maintenance_refreshes_stale_buckets_and_expires_peers() -> None:
    now = [1000.0]
    async with mem_swarm(12) as (net, nodes):
        async with anyio.create_task_group() as tg:
            n = DhtNode(
                transport=net.endpoint("10.5.5.5", 6881),
                enforce_bep42=False,
                bootstrap=[nodes[0].address],
                clock=lambda: now[0],
                maintenance_interval=3600,  # driven by hand below
            )
            await tg.start(n.run)
            await n.wait_bootstrapped()
            # A peer announces to n directly.
            r = await nodes[1].query(n.address, krpc.GetPeers(tid=b"", node_id=b"", info_hash=INFO_HASH))
            await nodes[1].query(
                n.address,
                krpc.AnnouncePeer(tid=b"", node_id=b"", info_hash=INFO_HASH, port=9, token=r.token or b""),
            )
            assert len(n.peers) == 1
            sent = n.stats["queries_out"]
            await n.maintain()
            assert n.stats["queries_out"] == sent  # nothing is stale yet
            now[0] += 15 * 60 + 1
            await n.maintain()
            assert n.stats["queries_out"] > sent  # BEP 5: stale buckets refreshed by a lookup
            assert all(now[0] - b.last_changed < 15 * 60 for b in n.table.buckets)
            now[0] += 30 * 60
            await n.maintain()
            assert len(n.peers) == 0  # announces expire
            tg.cancel_scope.cancel()


async def test_callers_waiting_on_a_query_are_released_when_the_node_stops() -> None:
    net = MemoryNetwork()
    silent = net.endpoint("10.0.0.9", 6881)  # never answers
    errors: list[str] = []
    async with anyio.create_task_group() as outer:
        node = DhtNode(transport=net.endpoint("10.0.0.1", 6881), enforce_bep42=False, query_timeout=60)
        with anyio.CancelScope() as node_scope:

            async def caller() -> None:
                try:
                    await node.ping(silent.local_address)
                except DHTError as exc:
                    errors.append(str(exc))

            async with anyio.create_task_group() as tg:
                await tg.start(node.run)
                outer.start_soon(caller)
                with anyio.fail_after(5):
                    await silent.receive()  # the ping is out
                node_scope.cancel()
        with anyio.fail_after(5):
            while not errors:
                await anyio.sleep(0.01)
    assert errors == ["the DHT node stopped"]


async def test_external_ip_reports_from_peers_count_as_votes() -> None:
    net = MemoryNetwork()
    async with anyio.create_task_group() as tg:
        n = DhtNode(transport=net.endpoint("10.0.0.1", 6881), enforce_bep42=True, rng=random.Random(3))
        await tg.start(n.run)
        n.external_ip_seen("not an ip", ("10.1.1.1", 1))
        n.external_ip_seen("203.0.113.50", ("10.1.1.1", 1))
        n.external_ip_seen("203.0.113.50", ("10.1.1.1", 1))  # the same source counts once
        n.external_ip_seen("203.0.113.50", ("10.1.1.2", 1))
        assert n.external_ip is None
        n.external_ip_seen("203.0.113.50", ("10.1.1.3", 1))
        assert n.external_ip == "203.0.113.50"
        assert is_valid_node_id(n.node_id, "203.0.113.50")
        tg.cancel_scope.cancel()


async def test_each_address_the_votes_adopt_is_told_once() -> None:
    net = MemoryNetwork()
    told: list[str] = []
    async with anyio.create_task_group() as tg:
        n = DhtNode(transport=net.endpoint("10.0.0.1", 6881), rng=random.Random(3),
                    on_external_ip=told.append)
        await tg.start(n.run)
        for voter in ("10.1.1.1", "10.1.1.2", "10.1.1.3", "10.1.1.4"):
            n.external_ip_seen("203.0.113.50", (voter, 1))
        n.external_ip_known("203.0.113.60")  # (the gateway's: the engine has it first-hand)
        for voter in ("10.1.1.5", "10.1.1.6", "10.1.1.7"):
            n.external_ip_seen("198.51.100.8", (voter, 1))  # (our address changed)
        tg.cancel_scope.cancel()
    assert told == ["203.0.113.50", "198.51.100.8"] and n.external_ip == "198.51.100.8"


async def test_dht_scrape_bep33_counts_seeds_and_peers() -> None:
    async with mem_swarm(30) as (_, nodes):
        for i in range(1, 6):
            assert await nodes[i].announce_peer(INFO_HASH, 6881, seed=i <= 2) >= 1
        seeds, peers = await nodes[20].scrape(INFO_HASH)
        assert (round(seeds), round(peers)) == (2, 3)
        seeds, peers = await nodes[20].scrape(hashlib.sha1(b"unknown").digest())
        assert seeds < 1 and peers < 1  # BEP 33's estimate of an empty filter is 0.5


async def test_external_ip_votes_count_source_addresses_not_ports() -> None:
    # One host answering from three ports (three DHT nodes, or one node listed three times)
    # used to count as three voters: enough to move our address and re-derive our BEP 42 id.
    net = MemoryNetwork()
    async with anyio.create_task_group() as tg:
        n = DhtNode(transport=net.endpoint("10.0.0.1", 6881), enforce_bep42=True, rng=random.Random(3))
        await tg.start(n.run)
        before = n.node_id
        for port in (1, 2, 3, 4):
            n.external_ip_seen("203.0.113.50", ("10.1.1.1", port))
        assert n.external_ip is None and n.node_id == before
        tg.cancel_scope.cancel()


async def test_rate_limit_holds_for_a_flood_spread_over_one_ipv6_slash_64() -> None:
    # Per-address buckets were bypassed by cycling through the 2**64 addresses of one IPv6
    # network (or by spoofing them all toward one victim network): each got a fresh burst.
    net = MemoryNetwork()
    async with anyio.create_task_group() as tg:
        n = DhtNode(
            transport=net.endpoint("fd00::1", 6881), enforce_bep42=False, clock=lambda: 1000.0, burst=40.0
        )
        await tg.start(n.run)
        for i in range(400):
            ping = krpc.Ping(tid=i.to_bytes(2, "big"), node_id=bytes([i % 251]) * 20)
            await n.datagram_received(krpc.encode_message(ping), (f"fd00:6:6:6::{i + 1:x}", 6881))
        answered = n.stats["queries_in"]
        assert answered <= 40 and n.stats["dropped_rate_limited"] >= 360
        ping = krpc.Ping(tid=b"ok", node_id=b"o" * 20)
        await n.datagram_received(krpc.encode_message(ping), ("fd00:7:7:7::1", 6881))
        assert n.stats["queries_in"] == answered + 1  # another network is still answered
        tg.cancel_scope.cancel()


class _SilentOnGetPeers(DhtNode):
    """A node that answers everything but get_peers: a lookup waits for it until it times out."""

    async def _on_query(self, q: krpc.Query, address: tuple[str, int]) -> None:
        if isinstance(q, krpc.GetPeers):
            return
        await super()._on_query(q, address)


async def test_get_peers_hands_out_values_as_they_arrive() -> None:
    net = MemoryNetwork()
    async with anyio.create_task_group() as tg:
        holder = DhtNode(transport=net.endpoint("10.0.0.1", 6881), enforce_bep42=False, query_timeout=1.0)
        await tg.start(holder.run)
        silent = _SilentOnGetPeers(transport=net.endpoint("10.0.0.2", 6881), enforce_bep42=False,
                                   bootstrap=[holder.address], query_timeout=1.0)
        await tg.start(silent.run)
        seeker = DhtNode(transport=net.endpoint("10.0.0.3", 6881), enforce_bep42=False,
                         bootstrap=[holder.address, silent.address], query_timeout=1.0)
        await tg.start(seeker.run)
        with anyio.fail_after(10):
            for node in (silent, seeker):
                await node.wait_bootstrapped()
        assert seeker.table.get(silent.node_id) is not None
        holder.peers.add(INFO_HASH, "10.9.9.9", 7000, time.monotonic())
        holder.peers.add(INFO_HASH, "10.9.9.8", 7001, time.monotonic())
        lookup_over = False
        batches: list[tuple[list[tuple[str, int]], bool]] = []
        with anyio.fail_after(20):
            found = await seeker.get_peers(INFO_HASH, on_peers=lambda new: batches.append((new, lookup_over)))
            lookup_over = True
        assert sorted(found) == [("10.9.9.8", 7001), ("10.9.9.9", 7000)]
        # the values came while the lookup still waited for the silent node, each address once
        assert [sorted(b) for b, _ in batches] == [sorted(found)]
        assert not any(over for _, over in batches)
        assert seeker.stats["timeouts"] >= 1  # the silent node did hold the lookup up
        tg.cancel_scope.cancel()


async def test_a_stale_saved_table_does_not_delay_lookups_through_the_bootstrap_node(tmp_path: Path) -> None:
    """Every node of the saved table is gone: the first get_peers goes to the bootstrap node at
    once, beside the saved nodes, and its peers arrive before any saved node has timed out."""
    rng = random.Random(5)
    gone = b"".join(rng.randbytes(20) + bytes([10, 9, i // 250, i % 250 + 1]) + (6881).to_bytes(2, "big")
                    for i in range(40))
    state = tmp_path / "dht.state"
    state.write_bytes(encode({b"id": rng.randbytes(20), b"nodes": gone}))
    async with mem_swarm(12) as (net, nodes):
        await nodes[3].announce_peer(INFO_HASH, 6000)
        async with anyio.create_task_group() as tg:
            node = DhtNode(transport=net.endpoint("10.8.8.8", 6881), enforce_bep42=False,
                           bootstrap=[nodes[0].address], state_path=state, query_timeout=0.5)
            await tg.start(node.run)
            assert node.stats["state_nodes_loaded"] >= 20  # (a full bucket keeps the rest aside)
            timeouts_when_found: list[int] = []
            with anyio.fail_after(30):
                peers, _, _ = await node.get_peers_lookup(
                    INFO_HASH, on_peers=lambda _found: timeouts_when_found.append(node.stats["timeouts"]))
            assert ("10.0.0.4", 6000) in peers
            assert timeouts_when_found and timeouts_when_found[0] == 0
            tg.cancel_scope.cancel()
