"""The SOCKS5 UDP relay client against a small SOCKS5 server of the test's own, which plays the
relay by hand: answers reach the tracker exchange or the DHT by the address in their header;
fragments, malformed headers and datagrams not from the relay are dropped; a proxy that refuses
or says nothing is a ProxyError naming it, within the timeout. (Against Dante:
tests/interop/test_proxy_udp.py.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.abc
import pytest

from tests.unit.test_netbind import bound_to
from torrent_engine.errors import ProxyError
from torrent_engine.net.interface import NetBind
from torrent_engine.net.proxy import ProxyConfig
from torrent_engine.net.proxy.udp_header import decode_udp_datagram, encode_udp_datagram
from torrent_engine.net.proxy.udp_relay import UdpRelay

pytestmark = pytest.mark.anyio


class FakeSocks5:
    """A SOCKS5 server answering UDP ASSOCIATE with ``reply`` (0: granted, with ``relay``'s
    address; None: say nothing). The test reads what reached the relay and sends from it."""

    def __init__(self, reply: int | None = 0) -> None:
        self.reply = reply
        self.port = 0
        self.relay: anyio.abc.UDPSocket
        self.controls: list[anyio.abc.SocketStream] = []

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[FakeSocks5]:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        self.port = listener.extra(anyio.abc.SocketAttribute.local_port)
        async with await anyio.create_udp_socket(local_host="127.0.0.1", local_port=0) as relay:
            self.relay = relay
            relay_port = relay.extra(anyio.abc.SocketAttribute.local_port)

            async def serve(stream: anyio.abc.SocketStream) -> None:
                self.controls.append(stream)
                assert await stream.receive(3) == b"\x05\x01\x00"
                await stream.send(b"\x05\x00")
                request = await stream.receive(10)
                assert request[:2] == b"\x05\x03"  # UDP ASSOCIATE
                if self.reply is None:
                    await anyio.sleep_forever()
                await stream.send(b"\x05" + bytes([self.reply]) + b"\x00\x01\x7f\x00\x00\x01"
                                  + relay_port.to_bytes(2, "big"))
                try:
                    while await stream.receive():
                        pass
                except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                    pass

            async with listener, anyio.create_task_group() as tg:
                tg.start_soon(listener.serve, serve)
                yield self
                tg.cancel_scope.cancel()


@asynccontextmanager
async def running(relay: UdpRelay) -> AsyncIterator[UdpRelay]:
    async with anyio.create_task_group() as tg:
        await tg.start(relay.run)
        yield relay
        relay.close()


async def test_answers_go_to_whoever_waits_on_the_address_in_their_header() -> None:
    async with FakeSocks5().serving() as proxy, \
            running(UdpRelay(ProxyConfig("socks5", "127.0.0.1", proxy.port))) as relay:
        dht = relay.dht_transport()
        async with relay.tracker("127.0.0.2", 6969) as tracker_a, \
                relay.tracker("tracker.example", 80) as by_name:
            with anyio.fail_after(10):
                await tracker_a.send(b"connect")
                sent, ours = await proxy.relay.receive()
                assert decode_udp_datagram(sent).data == b"connect"
                assert (decode_udp_datagram(sent).host, decode_udp_datagram(sent).port) == ("127.0.0.2", 6969)

                async def from_relay(host: str, port: int, data: bytes, frag: int = 0) -> None:
                    datagram = encode_udp_datagram(host, port, data)
                    await proxy.relay.sendto(datagram[:2] + bytes([frag]) + datagram[3:], *ours)

                await from_relay("127.0.0.5", 6881, b"a fragment", frag=1)  # dropped (RFC 1928 section 7)
                await proxy.relay.sendto(b"\x00\x00\x00\x09junk", *ours)  # a malformed header: dropped
                await from_relay("127.0.0.2", 6969, b"for the tracker")
                await from_relay("10.9.9.9", 80, b"for the tracker named by host name")  # (its port)
                await from_relay("127.0.0.5", 6881, b"for the DHT")
                async with await anyio.create_udp_socket(local_host="127.0.0.1") as stranger:
                    await stranger.sendto(encode_udp_datagram("127.0.0.5", 6881, b"not by the relay"), *ours)
                assert await tracker_a.receive() == b"for the tracker"
                assert await by_name.receive() == b"for the tracker named by host name"
                assert await dht.receive() == (b"for the DHT", ("127.0.0.5", 6881))
                while relay.dropped < 3:
                    await anyio.sleep(0.01)
        await dht.aclose()
    assert relay.dropped == 3 and relay.associations == 1


@pytest.mark.parametrize(("reply", "timeout", "message"), [
    (7, 5.0, "refused the UDP association: command not supported"),
    (None, 0.3, "no UDP association within 0.3 s"),
])
async def test_a_refusal_or_silence_is_an_error_naming_the_proxy(reply: int | None, timeout: float,
                                                                 message: str) -> None:
    async with FakeSocks5(reply).serving() as proxy:
        config = ProxyConfig("socks5", "127.0.0.1", proxy.port)
        async with running(UdpRelay(config, timeout=timeout)) as relay:
            transport = relay.dht_transport()
            with anyio.fail_after(10):
                with pytest.raises(ProxyError, match=f"proxy socks5h://127.0.0.1:{proxy.port}: {message}"):
                    await relay.send(b"x", ("127.0.0.2", 6881))
                await transport.send(b"x", ("127.0.0.2", 6881))  # (the DHT counts it lost, as UDP would)
            assert transport.send_errors == 1 and relay.associations == 0
            assert len(proxy.controls) == 1  # (not dialed again within retry_after)


async def test_a_closed_control_connection_ends_the_association_and_the_next_datagram_reopens_it() -> None:
    async with FakeSocks5().serving() as proxy, \
            running(UdpRelay(ProxyConfig("socks5", "127.0.0.1", proxy.port))) as relay:
        with anyio.fail_after(10):
            await relay.send(b"one", ("127.0.0.2", 6881))
            assert decode_udp_datagram((await proxy.relay.receive())[0]).data == b"one"
            await proxy.controls[0].aclose()  # the proxy ends it
            while relay.relay_address is not None:
                await anyio.sleep(0.01)
            await relay.send(b"two", ("127.0.0.2", 6881))
            assert decode_udp_datagram((await proxy.relay.receive())[0]).data == b"two"
        assert relay.associations == 2 and len(proxy.controls) == 2


async def test_a_relay_closed_before_its_task_began_lets_its_owner_finish() -> None:
    relay = UdpRelay(ProxyConfig("socks5", "127.0.0.1", 1080))
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(relay.run)
            relay.close()  # (the services stopped at once)
    with pytest.raises(ProxyError, match="the UDP association is closed"):
        await relay.send(b"x", ("127.0.0.2", 6881))


async def test_with_an_interface_set_the_association_s_sockets_are_bound_to_it() -> None:
    """Both the control connection and the UDP socket of the association leave by the interface
    the engine is bound to (``Config.bind_interface``), as every other socket of the engine does:
    a proxy set with an interface must not take another route."""
    async with FakeSocks5().serving() as proxy, \
            running(UdpRelay(ProxyConfig("socks5", "127.0.0.1", proxy.port), bind=NetBind("lo"))) as relay:
        async with relay.tracker("127.0.0.2", 6969) as tracker:
            with anyio.fail_after(10):
                await tracker.send(b"connect")
                await proxy.relay.receive()
        association = relay._current
        assert association is not None
        control = association.control.extra(anyio.abc.SocketAttribute.raw_socket)
        udp = association.udp.extra(anyio.abc.SocketAttribute.raw_socket)
        assert [bound_to(s) for s in (control, udp)] == ["lo", "lo"]
