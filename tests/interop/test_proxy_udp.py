"""UDP through a real SOCKS5 proxy's UDP ASSOCIATE (Dante, going out from 127.0.0.3): a BEP 15
tracker and a DHT node of our own on 127.0.0.2 answer what the relay brings them and see the
proxy's address, never ours; the association is opened again after the proxy closes it; a
proxy that cannot be reached is an error naming it, within the timeout."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import anyio.abc
import pytest

from tests.interop._proxies import OUTSIDE, SOCKS_PASSWORD, SOCKS_USER, dante
from tests.unit.tracker._tracker_servers import UdpTracker
from torrent_engine.errors import ProxyError, TrackerError
from torrent_engine.net.dht.krpc import Address
from torrent_engine.net.dht.node import DhtNode
from torrent_engine.net.dht.transport import UdpTransport
from torrent_engine.net.proxy import ProxyConfig
from torrent_engine.net.proxy.udp_relay import UdpRelay
from torrent_engine.net.tracker.messages import AnnounceRequest
from torrent_engine.net.tracker.udp import UdpTrackerClient

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

INFO_HASH = bytes(range(20))


@asynccontextmanager
async def udp_tracker_at(host: str, tracker: UdpTracker, sources: list[str]) -> AsyncIterator[UdpTracker]:
    """``tracker`` answering on ``host``, each request's source address noted in ``sources``."""
    async with await anyio.create_udp_socket(local_host=host, local_port=0) as sock:
        tracker.host, tracker.port = host, sock.extra(anyio.abc.SocketAttribute.local_port)

        async def loop() -> None:
            async for packet, address in sock:
                sources.append(str(address[0]))
                for answer in tracker.reply(packet):
                    await sock.sendto(answer, address[0], address[1])

        async with anyio.create_task_group() as tg:
            tg.start_soon(loop)
            yield tracker
            tg.cancel_scope.cancel()


class SeenTransport(UdpTransport):
    """A DHT node's UDP socket that notes who sent it each datagram."""

    def __init__(self, sock: anyio.abc.UDPSocket) -> None:
        super().__init__(sock)
        self.sources: list[str] = []

    async def receive(self) -> tuple[bytes, Address]:
        data, address = await super().receive()
        self.sources.append(address[0])
        return data, address


@asynccontextmanager
async def dht_node_at(host: str) -> AsyncIterator[tuple[DhtNode, SeenTransport]]:
    """A DHT node of ours on ``host``, bootstrapped from nobody."""
    transport = SeenTransport(await anyio.create_udp_socket(local_host=host, local_port=0))
    node = DhtNode(transport=transport, enforce_bep42=False)
    async with anyio.create_task_group() as tg:
        await tg.start(node.run)
        yield node, transport
        tg.cancel_scope.cancel()


@asynccontextmanager
async def running(relay: UdpRelay) -> AsyncIterator[UdpRelay]:
    async with anyio.create_task_group() as tg:
        await tg.start(relay.run)
        yield relay
        relay.close()


def announce_request() -> AnnounceRequest:
    return AnnounceRequest(info_hash=INFO_HASH, peer_id=b"-TE0000-udpproxytest", port=6881, uploaded=0,
                           downloaded=0, left=100, event="started", numwant=50)


@pytest.mark.parametrize("username", [False, True])
async def test_a_udp_tracker_is_announced_to_by_the_relay_and_sees_the_proxy(tmp_path: Path,
                                                                            username: bool) -> None:
    sources: list[str] = []
    with dante(tmp_path, username=username) as socks:
        proxy = socks.config("socks5", **({"username": SOCKS_USER, "password": SOCKS_PASSWORD} if username
                                           else {}))
        tracker = UdpTracker(peers=[("127.0.0.9", 51413)])
        async with udp_tracker_at("127.0.0.2", tracker, sources), running(UdpRelay(proxy)) as relay:
            client = UdpTrackerClient(relay=lambda: relay, retransmit_base=1.0)
            url = f"udp://127.0.0.2:{tracker.port}/announce"
            with anyio.fail_after(30):
                response = await client.announce(url, announce_request(), timeout=20)
                scraped = await client.scrape(url, [INFO_HASH], timeout=20)
    assert response.peers == [("127.0.0.9", 51413)]
    assert scraped.files[INFO_HASH].complete == 5
    assert tracker.connects == 1 and len(tracker.announces) == 1
    assert sources and set(sources) == {OUTSIDE}  # the tracker saw the proxy, never us
    assert relay.associations == 1


async def test_the_dht_pings_and_finds_peers_by_the_relay(tmp_path: Path) -> None:
    with dante(tmp_path) as socks:
        proxy = socks.config("socks5")
        async with dht_node_at("127.0.0.2") as (remote, seen), running(UdpRelay(proxy)) as relay:
            remote.peers.add(INFO_HASH, "127.0.0.9", 51413, time.monotonic())
            ours = DhtNode(transport=relay.dht_transport(), bootstrap=[remote.address], enforce_bep42=False,
                           lookup_names=False)
            async with anyio.create_task_group() as tg:
                await tg.start(ours.run)
                with anyio.fail_after(30):
                    assert await ours.ping(remote.address) == remote.node_id
                    peers = await ours.get_peers(INFO_HASH)
                tg.cancel_scope.cancel()
    assert ("127.0.0.9", 51413) in peers
    assert seen.sources and set(seen.sources) == {OUTSIDE}
    assert [n.host for n in remote.table] == [OUTSIDE]  # it knows us by the proxy's address


async def test_the_association_is_opened_again_when_the_proxy_closes_it(tmp_path: Path) -> None:
    sources: list[str] = []
    with dante(tmp_path) as socks:
        proxy = socks.config("socks5")
        tracker = UdpTracker()
        async with udp_tracker_at("127.0.0.2", tracker, sources), running(UdpRelay(proxy)) as relay:
            client = UdpTrackerClient(relay=lambda: relay, retransmit_base=1.0)
            url = f"udp://127.0.0.2:{tracker.port}/announce"
            with anyio.fail_after(40):
                await client.announce(url, announce_request(), timeout=15)
                first = relay.relay_address
                assert relay._current is not None
                await relay._current.control.send_eof()  # Dante ends the association, closing its side
                while relay.relay_address is not None:
                    await anyio.sleep(0.02)
                client.forget(url)
                await client.announce(url, announce_request(), timeout=15)
    assert relay.associations == 2 and first is not None
    assert len(tracker.announces) == 2 and set(sources) == {OUTSIDE}


async def test_an_unreachable_proxy_is_an_error_naming_it_and_the_next_sends_fail_at_once() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        proxy = ProxyConfig("socks5", "127.0.0.1", port, only=True)
        async with running(UdpRelay(proxy, timeout=5, retry_after=60)) as relay:
            client = UdpTrackerClient(relay=lambda: relay)
            refused = rf"proxy socks5h://127.0.0.1:{port}: cannot connect: connection refused"
            with anyio.fail_after(10), pytest.raises(TrackerError, match=refused):
                await client.announce("udp://127.0.0.2:6969/announce", announce_request(), timeout=8)
            with pytest.raises(ProxyError, match="connection refused"):
                await relay.send(b"x", ("127.0.0.2", 6881))  # (not dialed again: the same error)
            assert relay.associations == 0


def test_socks4_and_http_proxies_have_no_udp_relay() -> None:
    for kind in ("socks4", "http"):
        with pytest.raises(ProxyError, match="carries no UDP"):
            UdpRelay(ProxyConfig(kind, "127.0.0.1", 1080))  # type: ignore[arg-type]
