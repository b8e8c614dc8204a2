"""Binding sockets to an interface (``Config.bind_interface``): the value's form checked by
``Config``, an interface that does not exist refused naming the field, and the sockets the
helpers make bound to it (SO_BINDTODEVICE, read back) and still working over it."""

from __future__ import annotations

import socket

import anyio
import anyio.abc
import pytest

from torrent_engine import Config
from torrent_engine.errors import ConfigError, InterfaceBindError
from torrent_engine.net.interface import NetBind
from torrent_engine.net.netbind import (
    bind_socket,
    check_address,
    check_interface,
    connect_socket,
    tcp_listener,
    udp_socket,
)


def bound_to(sock: socket.socket) -> str:
    return sock.getsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, 16).rstrip(b"\0").decode()


@pytest.mark.parametrize(("options", "field"), [
    ({"bind_interface": "a/b"}, "bind_interface"),
    ({"bind_interface": "sixteen-letters!"}, "bind_interface"),
    ({"bind_interface": "lo", "bind_address": "not-an-ip"}, "bind_address"),
    ({"bind_address": "127.0.0.1"}, "bind_address"),  # (an address needs its interface)
])
def test_config_refuses_a_malformed_binding_naming_the_field(options: dict[str, str], field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Config(**options)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_an_interface_that_does_not_exist_is_refused_by_name() -> None:
    with pytest.raises(ConfigError) as caught:
        check_interface("nosuch0")
    assert caught.value.field == "bind_interface" and "no interface 'nosuch0'" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        check_address("10.9.9.9", "lo")
    assert caught.value.field == "bind_address"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        with pytest.raises(InterfaceBindError) as failed:
            bind_socket(sock, NetBind("nosuch0"))
    assert isinstance(failed.value, OSError) and failed.value.field == "bind_interface"
    check_interface("lo")
    assert check_address("127.0.0.1", "lo") == "127.0.0.1"


@pytest.mark.anyio
async def test_the_helpers_sockets_are_bound_and_work_over_the_interface() -> None:
    bind = NetBind("lo", "127.0.0.1")
    listener = await tcp_listener(bind, "", 0)
    async with listener:
        raw = listener.listeners[0].extra(anyio.abc.SocketAttribute.raw_socket)
        assert bound_to(raw) == "lo" and raw.getsockname()[0] == "127.0.0.1"
        port = listener.listeners[0].extra(anyio.abc.SocketAttribute.local_port)
        async with anyio.create_task_group() as tg:
            async def answer() -> None:
                one = listener.listeners[0]
                assert isinstance(one, anyio.abc.SocketListener)
                async with await one.accept() as incoming:
                    await incoming.send(await incoming.receive())

            tg.start_soon(answer)
            with anyio.fail_after(10):
                async with await connect_socket("127.0.0.1", port, bind) as stream:
                    assert bound_to(stream.extra(anyio.abc.SocketAttribute.raw_socket)) == "lo"
                    await stream.send(b"ping")
                    assert await stream.receive() == b"ping"
    with udp_socket(socket.AF_INET, bind, "0.0.0.0", 0) as udp:
        assert bound_to(udp) == "lo" and udp.getsockname()[0] == "127.0.0.1"


@pytest.mark.anyio
async def test_udp_trackers_http_clients_and_proxy_connections_use_bound_sockets() -> None:
    from torrent_engine.net.proxy.dial import open_tcp
    from torrent_engine.net.tracker.udp import _Socket

    bind = NetBind("lo")
    async with await _Socket.connect("127.0.0.1", 9, bind) as udp:
        assert bound_to(udp._sock) == "lo"
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    async with listener:
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        with anyio.fail_after(10):
            stream = await open_tcp("127.0.0.1", port, proxy=None, timeout=5, bind=bind)
            async with stream:
                assert bound_to(stream.extra(anyio.abc.SocketAttribute.raw_socket)) == "lo"


@pytest.mark.anyio
async def test_a_peer_is_dialed_from_a_socket_bound_to_the_interface() -> None:
    from torrent_engine.errors import PeerConnectionClosed
    from torrent_engine.net.peer.handshake import accept, connect
    from torrent_engine.net.peer.protocol import ProtocolPeerConnection

    info_hash = bytes(range(20))
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)

    async def answer(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            conn = await accept(stream, lookup=lambda h: h == info_hash, peer_id=b"-TE0100-serverserver",
                                encryption="disable")
            async with conn:
                await anyio.sleep(5)

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, answer)
        with anyio.fail_after(10):
            conn = await connect("127.0.0.1", port, info_hash=info_hash, peer_id=b"-TE0100-clientclient",
                                 encryption="disable", bind=NetBind("lo"))
            async with conn:
                assert isinstance(conn, ProtocolPeerConnection)  # (the handshakes in the loop's callbacks)
                assert bound_to(conn._transport.get_extra_info("socket")) == "lo"
            with pytest.raises(PeerConnectionClosed, match="bind_interface: .*nosuch0"):
                await connect("127.0.0.1", port, info_hash=info_hash, peer_id=b"-TE0100-clientclient",
                              encryption="disable", bind=NetBind("nosuch0"))
        tg.cancel_scope.cancel()
