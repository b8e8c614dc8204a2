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
from torrent_engine.dht.node import DhtNode

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
