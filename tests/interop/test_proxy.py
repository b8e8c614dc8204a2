"""Downloads through real proxies: Dante (SOCKS5, with and without a username; SOCKS4a) and
tinyproxy (HTTP CONNECT with Basic credentials), their outgoing side on 127.0.0.3.

A libtorrent seeder on 127.0.0.2 and a small HTTP tracker see only the proxy's address; with
proxy only on, every TCP connect the engine makes goes to the proxy, and every datagram to a
SOCKS5 proxy's UDP relay: a UDP tracker and a DHT node on 127.0.0.2 hear the engine by the proxy
(from 127.0.0.3) or, through a proxy without UDP, not at all; the gateway the config names (a
trap socket) hears nothing; an unreachable or silent proxy is an error naming it, within the
timeouts.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes

import anyio
import anyio.abc
import pytest

from tests.conftest import require_libtorrent
from tests.integration.helpers import make_payload, same_files
from tests.interop._proxies import OUTSIDE, SOCKS_PASSWORD, SOCKS_USER, dante, tinyproxy
from tests.interop.test_libtorrent_transfer import wait_lt
from tests.interop.test_proxy_udp import dht_node_at, udp_tracker_at
from tests.unit.tracker._tracker_servers import UdpTracker, announce_body, http_response
from torrent_engine import Config, Session
from torrent_engine.errors import HttpError, ProxyError
from torrent_engine.events import TrackerFailed
from torrent_engine.formats.bencode import decode
from torrent_engine.net.httpclient import http_get
from torrent_engine.net.proxy import ProxyConfig
from torrent_engine.net.proxy.dial import open_connection
from torrent_engine.storage.create import create_torrent

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

FILES = (("a.bin", 700_001), ("sub/b.bin", 300_000))
HTTP_USER, HTTP_PASSWORD = "alice", "s3cret"


class Tracker:
    """An HTTP tracker on 127.0.0.1 that notes each announce's source address and peer id and
    answers with ``peers``."""

    def __init__(self) -> None:
        self.port = 0
        self.peers: list[tuple[str, int]] = []
        self.announces: list[tuple[str, bytes]] = []  # (source address, peer_id)

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[Tracker]:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        self.port = listener.extra(anyio.abc.SocketAttribute.local_port)

        async def serve(stream: anyio.abc.SocketStream) -> None:
            async with stream:
                data = b""
                while b"\r\n\r\n" not in data:
                    try:
                        data += await stream.receive()
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        return
                target = data.split(b" ", 2)[1].decode()
                query = dict(p.split("=", 1) for p in target.split("?", 1)[1].split("&"))
                source = stream.extra(anyio.abc.SocketAttribute.remote_address)[0]
                self.announces.append((str(source), unquote_to_bytes(query["peer_id"])))
                await stream.send(http_response(announce_body(interval=60, peers=self.peers)))

        async with listener, anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, serve)
            yield self
            tg.cancel_scope.cancel()

    def ours(self) -> list[str]:
        """The source addresses of our engine's announces (libtorrent's are not ours)."""
        return [source for source, peer_id in self.announces if peer_id.startswith(b"-TE")]


def lt_seeder(lt: Any, stack: ExitStack) -> Any:
    ses = lt.session({
        "listen_interfaces": "127.0.0.2:0",
        "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
        "enable_outgoing_utp": False, "enable_incoming_utp": False,
        "allow_multiple_connections_per_ip": True,
        "alert_mask": lt.alert_category.connect | lt.alert_category.peer,
    })
    stack.callback(lambda: [ses.remove_torrent(h) for h in ses.get_torrents()])
    return ses


def incoming_addresses(lt: Any, ses: Any) -> set[str]:
    """The addresses the seeder saw connections from."""
    seen = set()
    for alert in ses.pop_alerts():
        if isinstance(alert, (lt.incoming_connection_alert, lt.peer_connect_alert)):
            seen.add(str(alert.endpoint[0]))
    return seen


@pytest.fixture
def outgoing(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every connect, listening socket and datagram the engine starts from now on, as text
    (``tcp HOST:PORT``, ``listen ...``, ``udp socket ...``, ``udp to HOST:PORT``): anyio's TCP
    connects and listeners, the engine's own (``netbind.connect_socket``: an IP address dialed
    as it is), the peer dials the loop connects, UDP sockets and datagrams, the uTP socket,
    LSD, and the UDP tracker client's own sockets."""
    from anyio._backends import _asyncio as backend

    from torrent_engine.net import netbind
    from torrent_engine.net.lsd.service import LsdService
    from torrent_engine.net.peer import handshake
    from torrent_engine.net.proxy import dial
    from torrent_engine.net.tracker import udp
    from torrent_engine.net.utp.socket import UtpSocket

    seen: list[str] = []
    connect_tcp = backend.AsyncIOBackend.connect_tcp.__func__  # (the network guard's, in turn)
    create_udp = backend.AsyncIOBackend.create_udp_socket.__func__
    create_listener = anyio.create_tcp_listener
    udp_send = backend.UDPSocket.send

    async def recorded_udp_send(self: Any, item: Any) -> None:
        if self.extra(anyio.abc.SocketAttribute.local_address)[0] != "127.0.0.2":  # (not the test's servers)
            seen.append(f"udp to {item[1][0]}:{item[1][1]}")
        await udp_send(self, item)

    async def recorded_connect(cls: Any, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        seen.append(f"tcp {host}:{port}")
        return await connect_tcp(cls, host, port, *args, **kwargs)

    connect_socket = netbind.connect_socket

    async def recorded_socket(host: str, port: int, *args: Any) -> Any:
        seen.append(f"tcp {host}:{port}")
        return await connect_socket(host, port, *args)

    open_socket = handshake._open_socket

    async def recorded_peer_dial(host: str, port: int, *args: Any) -> Any:  # (a peer's, by the loop)
        seen.append(f"tcp {host}:{port}")
        return await open_socket(host, port, *args)

    async def recorded_udp(cls: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(f"udp socket {args} {kwargs}")
        return await create_udp(cls, *args, **kwargs)

    async def recorded_listener(*args: Any, **kwargs: Any) -> Any:
        seen.append(f"listen {kwargs}")
        return await create_listener(*args, **kwargs)

    def refused(what: str) -> Any:
        async def run(*args: Any, **kwargs: Any) -> Any:
            seen.append(what)
            raise AssertionError(f"{what} used with proxy only on")

        return run

    monkeypatch.setattr(backend.AsyncIOBackend, "connect_tcp", classmethod(recorded_connect))
    monkeypatch.setattr(handshake, "_open_socket", recorded_peer_dial)
    for holder in (netbind, dial, handshake):  # (each module that dials by it holds its name)
        monkeypatch.setattr(holder, "connect_socket", recorded_socket)
    monkeypatch.setattr(backend.AsyncIOBackend, "create_udp_socket", classmethod(recorded_udp))
    monkeypatch.setattr(anyio, "create_tcp_listener", recorded_listener)
    monkeypatch.setattr(UtpSocket, "run", refused("uTP socket"))
    monkeypatch.setattr(LsdService, "run", refused("LSD"))
    monkeypatch.setattr(backend.UDPSocket, "send", recorded_udp_send)
    monkeypatch.setattr(udp._Socket, "connect", refused("a UDP tracker socket of our own"))
    yield seen


def proxy_cases(tmp: Path, stack: ExitStack, case: str) -> ProxyConfig:
    if case == "socks5":
        return stack.enter_context(dante(tmp)).config("socks5")
    if case == "socks5-local-dns":
        return stack.enter_context(dante(tmp)).config("socks5", remote_dns=False)
    if case == "socks5-username":
        return stack.enter_context(dante(tmp, username=True)).config("socks5", username=SOCKS_USER,
                                                                      password=SOCKS_PASSWORD)
    if case == "socks4a":
        return stack.enter_context(dante(tmp)).config("socks4")
    assert case == "http-basic"
    return stack.enter_context(tinyproxy(tmp, credentials=(HTTP_USER, HTTP_PASSWORD))).config(
        "http", username=HTTP_USER, password=HTTP_PASSWORD)


@pytest.mark.parametrize("case", ["socks5", "socks5-local-dns", "socks5-username", "socks4a", "http-basic"])
async def test_a_download_through_the_proxy_leaves_by_it_alone(tmp_path: Path, case: str,
                                                               outgoing: list[str]) -> None:
    lt = require_libtorrent()
    trap = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # the gateway the config names
    trap.bind(("127.0.0.1", 0))
    trap.setblocking(False)
    trap_address = ("127.0.0.1", trap.getsockname()[1])
    udp_sources: list[str] = []
    with ExitStack() as stack:
        stack.callback(trap.close)
        proxy = proxy_cases(tmp_path, stack, case)
        relayed = proxy.kind == "socks5"  # (SOCKS4 and HTTP CONNECT carry no UDP)
        async with Tracker().serving() as tracker, \
                udp_tracker_at("127.0.0.2", UdpTracker(), udp_sources) as udp_tracker, \
                dht_node_at("127.0.0.2") as (dht_node, dht_seen):
            payload = make_payload(tmp_path / "seed", FILES)
            # the UDP tracker first: through SOCKS5 it answers, else the HTTP tracker's tier is next
            torrent = create_torrent(payload, piece_length=32 * 1024, trackers=[
                [f"udp://127.0.0.2:{udp_tracker.port}/announce"], [f"http://127.0.0.1:{tracker.port}/announce"]])
            ses = lt_seeder(lt, stack)
            params = lt.add_torrent_params()
            params.ti = lt.torrent_info(lt.bdecode(torrent.to_bytes()))
            params.save_path = str(tmp_path / "seed")
            handle = ses.add_torrent(params)
            handle.replace_trackers([])  # (the seeder announces nowhere: only our engine does)
            await wait_lt(handle, seeding=True)
            tracker.peers = udp_tracker.peers = [("127.0.0.2", ses.listen_port())]
            outgoing.clear()
            # everything on that would send outside a proxy: uTP, DHT, LSD, port mapping, a UDP tracker
            config = Config(listen_host="127.0.0.1", transport="any", dht_enabled=True,
                            dht_bootstrap=(dht_node.address,), enforce_bep42=False, lsd_enabled=True,
                            port_mapping=True, natpmp_gateway=trap_address, upnp_ssdp_address=trap_address,
                            proxy=proxy)
            async with Session(torrent, tmp_path / "ours", config=config) as ours:
                with anyio.fail_after(60):
                    await ours.wait_completed()
                    while relayed and not dht_seen.sources:  # (the DHT bootstraps from that node)
                        await anyio.sleep(0.05)
                assert ours.shared is not None
                relay = ours.shared.udp_relay()
                relay_address = relay.relay_address if relay is not None else None
        if relayed:
            assert relay is not None and relay.associations == 1 and relay_address is not None
            assert udp_sources and set(udp_sources) == {OUTSIDE}  # the UDP tracker heard us by the proxy
            assert set(dht_seen.sources) == {OUTSIDE}  # so did the DHT node
            assert udp_tracker.announces
            assert set(tracker.ours()) <= {OUTSIDE}
            udp = {f"udp to {relay_address[0]}:{relay_address[1]}"}  # every datagram to the relay
        else:
            assert udp_sources == [] and dht_seen.sources == []  # no UDP at all
            assert tracker.ours() and set(tracker.ours()) == {OUTSIDE}, tracker.announces
            udp = set()
        assert incoming_addresses(lt, ses) == {OUTSIDE}
        tcp = [c for c in outgoing if c.startswith("tcp ")]
        assert tcp and set(tcp) == {f"tcp 127.0.0.1:{proxy.port}"}, outgoing
        assert {c for c in outgoing if c.startswith("udp to ")} == udp, outgoing
        sockets = [c for c in outgoing if c.startswith("udp socket")]  # (the relay's, bound to loopback)
        assert len(sockets) == (1 if relayed else 0) and all("('127.0.0.1', 0), None" in c for c in sockets)
        assert [c for c in outgoing if not c.startswith(("tcp ", "udp "))] == []
        with pytest.raises(BlockingIOError):
            trap.recvfrom(2048)  # not one datagram reached the gateway
    assert same_files(torrent, tmp_path / "seed", tmp_path / "ours") == []


async def test_without_proxy_only_the_peers_and_the_trackers_still_go_through_it(tmp_path: Path) -> None:
    lt = require_libtorrent()
    udp_sources: list[str] = []
    with ExitStack() as stack:
        proxy = stack.enter_context(dante(tmp_path)).config("socks5", only=False)
        async with Tracker().serving() as tracker, \
                udp_tracker_at("127.0.0.2", UdpTracker(), udp_sources) as udp_tracker:
            payload = make_payload(tmp_path / "seed", FILES)
            # (the UDP tracker's tier first: it answers by the proxy's UDP relay)
            torrent = create_torrent(payload, piece_length=32 * 1024, trackers=[
                [f"udp://127.0.0.2:{udp_tracker.port}/announce"], [f"http://127.0.0.1:{tracker.port}/announce"]])
            ses = lt_seeder(lt, stack)
            params = lt.add_torrent_params()
            params.ti = lt.torrent_info(lt.bdecode(torrent.to_bytes()))
            params.save_path = str(tmp_path / "seed")
            handle = ses.add_torrent(params)
            handle.replace_trackers([])
            await wait_lt(handle, seeding=True)
            tracker.peers = udp_tracker.peers = [("127.0.0.2", ses.listen_port())]
            config = Config(listen_host="127.0.0.1", dht_enabled=False, lsd_enabled=False, port_mapping=False,
                            proxy=proxy)
            async with Session(torrent, tmp_path / "ours", config=config) as ours:
                with anyio.fail_after(60):
                    await ours.wait_completed()
        assert udp_tracker.announces and set(udp_sources) == {OUTSIDE}
        assert set(tracker.ours()) <= {OUTSIDE}
        assert incoming_addresses(lt, ses) == {OUTSIDE}


async def test_an_unreachable_proxy_fails_each_connection_naming_it(tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # (bound, not listening: refused)
        proxy = ProxyConfig("socks5", "127.0.0.1", port, only=True)
        with pytest.raises(ProxyError, match=rf"proxy socks5h://127.0.0.1:{port}: cannot connect: "
                                             "connection refused"):
            await open_connection(proxy, "127.0.0.2", 6881, timeout=5)
        async with Tracker().serving() as tracker:
            payload = make_payload(tmp_path / "seed", FILES)
            torrent = create_torrent(payload, piece_length=32 * 1024,
                                     trackers=[f"http://127.0.0.1:{tracker.port}/announce"])
            failed: list[TrackerFailed] = []
            config = Config(listen_host="127.0.0.1", dht_enabled=False, lsd_enabled=False, port_mapping=False,
                            proxy=proxy)
            async with Session(torrent, tmp_path / "ours", config=config) as ours:
                ours.events.subscribe("tracker.failed", failed.append)
                with anyio.fail_after(20):
                    while not failed:
                        await anyio.sleep(0.05)
            assert f"proxy socks5h://127.0.0.1:{port}: cannot connect: connection refused" in failed[0].error
            assert tracker.announces == []


async def test_a_silent_proxy_is_an_error_within_the_timeout_never_a_hang() -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    held: list[anyio.abc.SocketStream] = []

    async def accept_and_say_nothing(stream: anyio.abc.SocketStream) -> None:
        held.append(stream)
        await anyio.sleep_forever()

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, accept_and_say_nothing)
        for kind in ("socks5", "socks4", "http"):
            proxy = ProxyConfig(kind, "127.0.0.1", port)  # type: ignore[arg-type]
            with anyio.fail_after(10):  # (a hang guard, far past the timeouts asked)
                with pytest.raises(ProxyError, match=rf"{proxy.scheme}://127.0.0.1:{port}: no tunnel to "
                                                     r"127.0.0.2:80 within 0.5 s"):
                    await open_connection(proxy, "127.0.0.2", 80, timeout=0.5)
                name = rf"proxy {proxy.scheme}://127.0.0.1:{port}"
                with pytest.raises(HttpError, match=rf"{name}: no tunnel"):
                    await http_get("http://127.0.0.2:80/x.torrent", proxy=proxy, connect_timeout=0.5,
                                   timeout=5)
        tg.cancel_scope.cancel()


async def test_a_torrent_url_is_fetched_through_tinyproxy(tmp_path: Path) -> None:
    with tinyproxy(tmp_path) as running:
        proxy = running.config("http", only=False)
        body = b"d4:infod4:name1:xee"
        seen: list[str] = []

        async def serve(stream: anyio.abc.SocketStream) -> None:
            async with stream:
                seen.append(str(stream.extra(anyio.abc.SocketAttribute.remote_address)[0]))
                await stream.receive()
                await stream.send(http_response(body))

        listener = await anyio.create_tcp_listener(local_host="127.0.0.2", local_port=0)
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        async with listener, anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, serve)
            response = await http_get(f"http://127.0.0.2:{port}/a.torrent", proxy=proxy, timeout=20)
            tg.cancel_scope.cancel()
        assert decode(response.body) == {b"info": {b"name": b"x"}}
        assert seen == [OUTSIDE]


async def test_an_https_web_seed_through_socks5_with_proxy_only(tmp_path: Path, outgoing: list[str],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.interop._nginx import nginx

    root = tmp_path / "www"
    payload = make_payload(root / "pub", FILES)
    with dante(tmp_path) as socks, nginx(tmp_path / "nginx", root, tls=True) as server:
        monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "nginx" / "cert.pem"))
        torrent = create_torrent(payload, piece_length=32 * 1024, version="v1",
                                 web_seeds=[server.url + "pub/"])
        outgoing.clear()
        config = Config(listen_host="127.0.0.1", dht_enabled=False, lsd_enabled=False, port_mapping=False,
                        proxy=socks.config("socks5"))
        async with Session(torrent, tmp_path / "ours", config=config) as ours:
            with anyio.fail_after(60):
                await ours.wait_completed()
        assert server.requests()  # (TLS to nginx, inside the tunnel)
    assert outgoing and set(outgoing) == {f"tcp 127.0.0.1:{socks.port}"}, outgoing
    assert same_files(torrent, root / "pub", tmp_path / "ours") == []
