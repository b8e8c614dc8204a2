"""The receive buffers of every session's peers share one budget (``RECEIVE_BUDGET``, the shared
resources'): a running session (loopback, no DHT) serving fake links that record the ceiling they
are given, and the budget itself across sessions."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from tests.integration.helpers import loopback_config
from torrent_engine.engine.shared import RECEIVE_BUDGET, ReceiveBudget
from torrent_engine.session import Session
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
            assert s.context.shared is not None and len(s.context.shared.receive) == 1
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


class _Link:
    def __init__(self) -> None:
        self.max_buffer = 0
        self.calls = 0

    def set_max_buffer(self, size: int) -> None:
        self.max_buffer = size
        self.calls += 1


def test_one_budget_is_split_among_the_peers_of_every_session() -> None:
    budget = ReceiveBudget(8 * 1024 * 1024)
    # 300 torrents of 4 peers each: 1 200 links of one engine, not 300 budgets of 8 MiB
    links = [_Link() for _ in range(1200)]
    for link in links:
        budget.join(link)
    assert {link.max_buffer for link in links} == {4096}  # (the connection clamps it to 64 KiB)
    # the share is set again for all only when it changes: at each power of two, not each join
    assert sum(link.calls for link in links) < 1200 * 12
    for link in links[4:]:
        budget.leave(link)
    assert [link.max_buffer for link in links[:4]] == [2 * 1024 * 1024] * 4
    budget.leave(links[0])
    budget.leave(links[0])  # (a second leave changes nothing)
    assert len(budget) == 3


async def test_a_peer_that_leaves_leaves_no_reference_cycle_for_the_collector(tmp_path: Path) -> None:
    """Closing a peer ends its exchange and its uploads by their own scopes: both tasks return.
    (A task of a task group that ends cancelled is kept by anyio in a reference cycle with its
    frames: hundreds a second for the garbage collector while many torrents complete.)"""
    import gc

    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "a").write_bytes(b"x" * 100_000)
    torrent = create_torrent(tmp_path / "p", piece_length=32 * 1024, version="v1")
    links = [IdleLink(b"-XX0001-" + i.to_bytes(12, "big")) for i in range(5)]
    with anyio.fail_after(10):
        async with Session(torrent, tmp_path / "dl", config=loopback_config()) as s, \
                anyio.create_task_group() as tg:
            await s.wait_ready()
            for i, link in enumerate(links):
                tg.start_soon(s.handler.serve, link, "127.0.0.1", 40000 + i, True)
            while len(s.peers) < 5:
                await anyio.sleep(0.01)
            gc.collect()
            gc.set_debug(gc.DEBUG_SAVEALL)
            try:
                for peer in list(s.peers):
                    peer.close("test")
                while s.peers:
                    await anyio.sleep(0.01)
                await anyio.sleep(0.05)
                gc.collect()
                left = sorted({o.f_code.co_qualname for o in gc.garbage if type(o).__name__ == "frame"
                               and o.f_code.co_filename.endswith(("peer_handler.py", "upload.py"))})
            finally:
                gc.set_debug(0)
                gc.garbage.clear()
            tg.cancel_scope.cancel()
    assert left == []
