"""Interop: a DHT of several libtorrent sessions and our node, all on 127.0.0.1.

libtorrent is configured so that nothing leaves the machine (no bootstrap nodes) and so that
nodes sharing one IP do not block or distrust each other. Our node finds a peer libtorrent
announced; libtorrent finds a peer we announced.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

from tests.conftest import require_libtorrent
from torrent_engine.net.dht.node import DhtNode

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

SESSIONS = 4
DEADLINE = 45  # seconds for the whole exchange; the test fails with a message past it


def lt_session(lt: Any) -> Any:
    return lt.session(
        {
            "listen_interfaces": "127.0.0.1:0",
            "enable_dht": True,
            "dht_bootstrap_nodes": "",  # nothing leaves the machine
            "enable_lsd": False,
            "enable_upnp": False,
            "enable_natpmp": False,
            # All nodes share 127.0.0.1: let them be routed to, searched and trusted.
            "dht_restrict_routing_ips": False,
            "dht_restrict_search_ips": False,
            "dht_ignore_dark_internet": False,
            "dht_prefer_verified_node_ids": False,
            "dht_block_ratelimit": 10000,
            "dht_upload_rate_limit": 1_000_000,
            "alert_mask": lt.alert.category_t.dht_notification
            | lt.alert.category_t.dht_operation_notification,
        }
    )


@asynccontextmanager
async def mixed_dht() -> AsyncIterator[tuple[Any, list[Any], DhtNode]]:
    lt = require_libtorrent()
    sessions = [lt_session(lt) for _ in range(SESSIONS)]
    try:
        with anyio.fail_after(10):
            while any(s.listen_port() == 0 for s in sessions):
                await anyio.sleep(0.05)
        ports = [s.listen_port() for s in sessions]
        async with anyio.create_task_group() as tg:
            node = DhtNode(
                bind=("127.0.0.1", 0),
                enforce_bep42=False,  # every node has the same address here
                bootstrap=[("127.0.0.1", p) for p in ports],
                rng=random.Random(7),
            )
            await tg.start(node.run)
            for s in sessions:
                s.add_dht_node(("127.0.0.1", node.port))
                for p in ports:
                    s.add_dht_node(("127.0.0.1", p))
            with anyio.fail_after(10):
                await node.wait_bootstrapped()
            assert len(node.table) >= 1, (
                f"our node did not get any libtorrent node into its table: {node.stats}"
            )
            yield lt, sessions, node
            tg.cancel_scope.cancel()
    finally:
        for s in sessions:
            s.pause()
        del sessions


async def test_our_node_finds_a_peer_libtorrent_announced() -> None:
    async with mixed_dht() as (lt, sessions, node):
        info_hash = hashlib.sha1(b"announced by libtorrent").digest()
        sessions[0].dht_announce(lt.sha1_hash(info_hash), 45678, 0)
        found: list[tuple[str, int]] = []
        with anyio.move_on_after(DEADLINE):
            while ("127.0.0.1", 45678) not in found:
                await anyio.sleep(0.5)
                found = await node.get_peers(info_hash)
        assert ("127.0.0.1", 45678) in found, (
            f"our node did not find libtorrent's announce within {DEADLINE}s; "
            f"peers={found}, table={len(node.table)}, stats={dict(node.stats)}"
        )


async def test_libtorrent_finds_a_peer_we_announced() -> None:
    async with mixed_dht() as (lt, sessions, node):
        info_hash = hashlib.sha1(b"announced by torrent_engine").digest()
        stored = await node.announce_peer(info_hash, 7777)
        assert stored >= 1, f"no libtorrent node accepted our announce_peer: {dict(node.stats)}"
        seeker = sessions[-1]
        found: list[tuple[str, int]] = []
        with anyio.move_on_after(DEADLINE):
            while ("127.0.0.1", 7777) not in found:
                seeker.dht_get_peers(lt.sha1_hash(info_hash))
                for _ in range(10):
                    await anyio.sleep(0.2)
                    for alert in seeker.pop_alerts():
                        if isinstance(alert, lt.dht_get_peers_reply_alert):
                            found += [(str(h), int(p)) for h, p in alert.peers()]
                    if ("127.0.0.1", 7777) in found:
                        break
        assert ("127.0.0.1", 7777) in found, (
            f"libtorrent did not find our announce within {DEADLINE}s (we stored it on {stored} nodes); "
            f"peers={found}"
        )


# BEP 44 test vector key pair (libtorrent takes the 64-byte expanded secret key as the BEP gives it).
VECTOR_PUBLIC = bytes.fromhex("77ff84905a91936367c01360803104f92432fcd904a43511876df5cdf3e7e548")
VECTOR_SECRET = bytes.fromhex(
    "e06d3183d14159228433ed599221b80bd0a5ce8352e4bdf0262f76786ef1c74d"
    "b7e7a9fea2c0eb269d61e3b38e450a22e754941ac78479d6c54e1faf6037881d"
)


async def wait_alert(session: Any, kind: type, seconds: float = 15) -> Any:
    with anyio.move_on_after(seconds):
        while True:
            await anyio.sleep(0.1)
            for alert in session.pop_alerts():
                if isinstance(alert, kind):
                    return alert
    return None


async def test_bep44_items_both_ways_with_libtorrent() -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from torrent_engine.net.dht import bep44

    async with mixed_dht() as (lt, sessions, node):
        # Ours -> libtorrent, immutable.
        target, stored = await node.put_immutable(b"from torrent_engine")
        assert stored >= 1, f"no libtorrent node stored our immutable item: {dict(node.stats)}"
        sessions[1].dht_get_immutable_item(lt.sha1_hash(target))
        alert = await wait_alert(sessions[1], lt.dht_immutable_item_alert)
        assert alert is not None and alert.item == b"from torrent_engine", "libtorrent did not get our item"

        # libtorrent -> ours, immutable.
        lt_target = sessions[2].dht_put_immutable_item(b"from libtorrent")
        assert await wait_alert(sessions[2], lt.dht_put_alert) is not None, "libtorrent's put did not finish"
        assert await node.get_immutable(bytes.fromhex(str(lt_target))) == b"from libtorrent"

        # libtorrent -> ours, mutable, with the BEP 44 vector key: seq 1, the vector's signature.
        sessions[3].dht_put_mutable_item(VECTOR_SECRET, VECTOR_PUBLIC, b"Hello World!", b"")
        assert await wait_alert(sessions[3], lt.dht_put_alert) is not None, (
            "libtorrent's mutable put did not finish"
        )
        assert await node.get_mutable(VECTOR_PUBLIC) == (b"Hello World!", 1)

        # Ours -> libtorrent, mutable with salt.
        key = Ed25519PrivateKey.generate()
        _, seq, stored = await node.put_mutable(key, b"mutable from us", salt=b"salty")
        assert stored >= 1 and seq == 1
        sessions[0].dht_get_mutable_item(bep44.public_key_bytes(key), b"salty")
        alert = await wait_alert(sessions[0], lt.dht_mutable_item_alert)
        assert alert is not None, "libtorrent did not get our mutable item"
        assert (alert.item, alert.seq, alert.salt) == (b"mutable from us", 1, b"salty")


async def test_libtorrent_samples_our_infohashes_bep51() -> None:
    import time

    async with mixed_dht() as (lt, sessions, node):
        held = [hashlib.sha1(b"sample %d" % i).digest() for i in range(3)]
        for ih in held:
            node.peers.add(ih, "127.0.0.1", 6881, time.monotonic())
        sessions[0].dht_sample_infohashes(("127.0.0.1", node.port), lt.sha1_hash(bytes(20)))
        alert = await wait_alert(sessions[0], lt.dht_sample_infohashes_alert)
        assert alert is not None, "libtorrent got no sample_infohashes reply from our node"
        assert alert.num_infohashes == 3
        assert sorted(bytes.fromhex(str(s)) for s in alert.samples) == sorted(held)


async def test_dht_scrape_of_libtorrent_announces_bep33() -> None:
    async with mixed_dht() as (lt, sessions, node):
        # All libtorrent sessions share 127.0.0.1 and BEP 33 counts unique IPs: one each way.
        for name, flags, expected in (
            (b"seeded", int(lt.announce_flags_t.seed), (1, 0)),
            (b"leeched", 0, (0, 1)),
        ):
            info_hash = hashlib.sha1(name).digest()
            sessions[0].dht_announce(lt.sha1_hash(info_hash), 45000, flags)
            found: list[tuple[str, int]] = []
            with anyio.move_on_after(DEADLINE / 2):
                while not found:
                    await anyio.sleep(0.3)
                    found = await node.get_peers(info_hash)
            assert found, f"libtorrent's announce of {name!r} was not found"
            seeds, peers = await node.scrape(info_hash)
            assert (round(seeds), round(peers)) == expected, (
                f"scrape of {name!r}: BFsd ~ {seeds:.2f}, BFpe ~ {peers:.2f}, expected {expected}"
            )
