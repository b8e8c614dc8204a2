"""Datagram transports: the in-memory network behaves like UDP (bounded queues drop, unknown
destinations drop, addresses are exclusive), and the UDP transport survives send errors."""

from __future__ import annotations

import anyio
import pytest

from torrent_engine.net.dht.transport import MemoryNetwork, UdpTransport

pytestmark = pytest.mark.anyio


async def test_memory_network_delivers_with_source_address() -> None:
    net = MemoryNetwork()
    a, b = net.endpoint("10.0.0.1", 1), net.endpoint("10.0.0.2")
    await a.send(b"hello", b.local_address)
    assert await b.receive() == (b"hello", ("10.0.0.1", 1))
    assert net.delivered == 1


async def test_memory_network_drops_like_udp() -> None:
    net = MemoryNetwork(queue_size=2)
    a, b = net.endpoint("10.0.0.1", 1), net.endpoint("10.0.0.2", 2)
    for i in range(5):
        await a.send(bytes([i]), b.local_address)
    await a.send(b"x", ("10.9.9.9", 9))  # nobody there
    assert net.delivered == 2 and net.dropped == 4
    assert [await b.receive() for _ in range(2)] == [(b"\x00", a.local_address), (b"\x01", a.local_address)]
    with pytest.raises(OSError):
        net.endpoint("10.0.0.1", 1)
    await a.aclose()
    net.endpoint("10.0.0.1", 1)  # free again once closed


async def test_memory_network_loss_is_seeded() -> None:
    net = MemoryNetwork(loss=0.5, queue_size=1000)
    a, b = net.endpoint("10.0.0.1", 1), net.endpoint("10.0.0.2", 2)
    for _ in range(400):
        await a.send(b"x", b.local_address)
    assert 150 < net.delivered < 250 and net.delivered + net.dropped == 400


async def test_udp_transport_round_trip_and_send_errors_are_swallowed() -> None:
    t1 = await UdpTransport.bind("127.0.0.1", 0)
    t2 = await UdpTransport.bind("127.0.0.1", 0)
    try:
        await t1.send(b"ping", t2.local_address)
        with anyio.fail_after(5):
            assert await t2.receive() == (b"ping", t1.local_address)
        await t1.send(b"x", ("::1", 6881))  # wrong family for this socket: counted, not raised
        assert t1.send_errors == 1
    finally:
        await t1.aclose()
        await t2.aclose()
