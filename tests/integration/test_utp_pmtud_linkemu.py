"""Path MTU discovery through a real socket pair and an emulated link (tests/linkemu) whose MTU
is below Ethernet's and which drops larger datagrams without a word (no ICMP), with random loss:
the bytes arrive, in both directions, and each sender's datagrams settle between the standard
size and what the link carries."""

from __future__ import annotations

import random

import anyio
import pytest

from tests.linkemu.model import Duplex, LinkSpec
from tests.linkemu.relay import Emulator, LinkPlan
from torrent_engine.net.utp.connection import PACKET_SIZE
from torrent_engine.net.utp.socket import UtpSocket
from torrent_engine.net.utp.stream import UtpStream

from ..unit.utp.loopback import upload

pytestmark = pytest.mark.anyio

MTU = 1460  # IPv4 packets: datagrams of up to 1 432 bytes pass
CARRIED = MTU - 28


async def test_a_link_with_a_small_mtu_carries_every_byte_and_the_datagrams_settle_below_it() -> None:
    up = random.Random(1).randbytes(3_000_000)
    down = random.Random(2).randbytes(1_000_000)
    accepted: list[UtpStream] = []
    got = anyio.Event()

    def on_accept(stream: UtpStream) -> None:
        accepted.append(stream)
        got.set()

    server = UtpSocket(on_accept=on_accept)
    client = UtpSocket(loopback_datagram=PACKET_SIZE)  # offers no large datagrams: both ends search
    duplex = Duplex.symmetric(LinkSpec(delay=0.01, loss=0.01, rate=4e6, mtu=MTU), seed=3)
    async with anyio.create_task_group() as tg:
        await tg.start(server.run, "127.0.0.1", 0)
        await tg.start(client.run, "127.0.0.1", 0)
        with Emulator([LinkPlan(server.local_address, duplex, tcp=False)]) as emu, anyio.fail_after(120):
            stream = await client.connect("127.0.0.1", emu.ports[0])
            await got.wait()
            assert await upload(stream, accepted[0], up) == up
            assert await upload(accepted[0], stream, down) == down
        tg.cancel_scope.cancel()
    for conn in (stream.conn, accepted[0].conn):
        assert conn.peer_max_datagram == 0 and conn.mtu.probes_sent > 0
        assert PACKET_SIZE < conn.mtu.floor == conn.packet_size <= CARRIED <= conn.mtu.ceiling
    assert duplex.down.dropped_mtu > 0 and duplex.up.dropped_mtu > 0  # probes the link did not carry
