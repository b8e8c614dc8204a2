"""SharedResources runs uTP and the DHT on one UDP port (the TCP listen port), and keeps the
DHT on a socket of its own when uTP is off."""

from __future__ import annotations

import anyio
import pytest

from torrent_engine.config import Config
from torrent_engine.engine.shared import SharedResources
from torrent_engine.net.dht.node import DhtNode

pytestmark = pytest.mark.anyio


def _config(transport: str) -> Config:
    return Config(listen_host="127.0.0.1", listen_port=0, dht_enabled=True, dht_bootstrap=(),
                  port_mapping=False,
                  lsd_enabled=False, tracker_enabled=False, enforce_bep42=False, transport=transport)  # type: ignore[arg-type]


async def test_one_udp_port_for_utp_and_dht() -> None:
    async with SharedResources(_config("any")) as shared:
        await shared.acquire()
        try:
            assert shared.utp is not None and shared.dht is not None
            assert shared.utp.local_address[1] == shared.listen_port == shared.dht.port
            # another DHT node pings ours on that port: KRPC is demultiplexed from uTP
            other = DhtNode(bind=("127.0.0.1", 0), enforce_bep42=False)
            async with anyio.create_task_group() as tg:
                await tg.start(other.run)
                with anyio.fail_after(20):
                    node_id = await other.ping(("127.0.0.1", shared.listen_port))
                assert node_id == shared.dht.node_id
                tg.cancel_scope.cancel()
        finally:
            await shared.release()
        assert shared.utp is None


async def test_tcp_only_keeps_the_dht_socket_apart() -> None:
    async with SharedResources(_config("tcp")) as shared:
        await shared.acquire()
        try:
            assert shared.utp is None and shared.dht is not None  # the DHT bound its own socket
        finally:
            await shared.release()
