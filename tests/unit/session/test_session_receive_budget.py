"""The receive buffers of a session's peers share one budget (``RECEIVE_BUDGET``): a running
session (loopback, no DHT) serving fake links that record the ceiling they are given."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from tests.integration.helpers import loopback_config
from torrent_engine.session import Session
from torrent_engine.session.peer_handler import RECEIVE_BUDGET
from torrent_engine.storage.create import create_torrent

from .idle_link import IdleLink

pytestmark = pytest.mark.anyio


async def test_the_peers_share_the_receive_budget_as_they_come_and_go(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "a").write_bytes(b"x" * 100_000)
    torrent = create_torrent(tmp_path / "p", piece_length=32 * 1024, version="v1")
    links = [IdleLink(b"-XX0001-" + i.to_bytes(12, "big")) for i in range(20)]
    with anyio.fail_after(10):
        async with Session(torrent, tmp_path / "dl", config=loopback_config(max_peers_per_torrent=50)) as s, \
                anyio.create_task_group() as tg:
            await s.wait_ready()
            tg.start_soon(s.handler.serve, links[0], "127.0.0.1", 40000, True)
            while len(s.peers) < 1:
                await anyio.sleep(0.01)
            assert links[0].max_buffer == RECEIVE_BUDGET  # alone: all of it (the link clamps it)
            for i, link in enumerate(links[1:], 1):
                tg.start_soon(s.handler.serve, link, "127.0.0.1", 40000 + i, True)
            while len(s.peers) < 20:
                await anyio.sleep(0.01)
            # 8 MiB / 20 is 409.6 KiB: the power of two below it, for every peer, early or late
            assert [link.max_buffer for link in links] == [256 * 1024] * 20
            for peer in s.peers[8:]:
                peer.close("test")
            while len(s.peers) > 8:
                await anyio.sleep(0.01)
            remaining = {p.port for p in s.peers}
            left = [link.max_buffer for i, link in enumerate(links) if 40000 + i in remaining]
            assert left == [1024 * 1024] * 8  # 8 MiB / 8
            tg.cancel_scope.cancel()
