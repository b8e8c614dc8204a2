"""Descriptors follow a setting, not the number of torrents: many seeding torrents in one manager
hold at most ``Config.max_open_files`` data files open between them, and files nobody reads are
closed after ``Config.close_idle_files_after``."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from tests.integration.helpers import loopback_config, open_fds
from tests.unit.torrent_factory import make_torrent, payload
from torrent_engine.engine.manager import TorrentManager
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.session.state_table import State

pytestmark = pytest.mark.anyio

TORRENTS = 300
BOUND = 16
# what the manager holds whatever its torrents: listen sockets (TCP, UDP), the loop's, threads'
OVERHEAD = 16


def seeded(root: Path, count: int) -> list[Torrent]:
    torrents = []
    for n in range(count):
        blob = payload(16384, n)
        (root / f"t{n}").write_bytes(blob)
        torrents.append(make_torrent([(("f",), blob)], 16384, name=f"t{n}", single=True))
    return torrents


async def test_hundreds_of_seeding_torrents_hold_no_more_files_open_than_the_setting(tmp_path: Path) -> None:
    torrents = seeded(tmp_path, TORRENTS)
    before = open_fds()
    # (no idle closing during the test: the bound alone must hold)
    config = loopback_config(max_open_files=BOUND, close_idle_files_after=3600.0)
    async with TorrentManager(config) as manager:
        sessions = [await manager.add(t, tmp_path) for t in torrents]
        with anyio.fail_after(120):
            for s in sessions:
                await s.wait_ready()
        assert all(s.state is State.SEEDING for s in sessions)
        assert manager.shared.files.open_count() <= BOUND
        held = open_fds() - before
        assert held <= BOUND + OVERHEAD, f"{held} descriptors for {TORRENTS} torrents"
        # every torrent still reads its data back (files reopen on demand)
        for n in range(0, TORRENTS, TORRENTS // 10):
            async with sessions[n].open_file(0) as reader:
                assert await reader.read(100) == payload(16384, n)[:100]
    assert open_fds() <= before


async def test_files_nobody_reads_are_closed_after_the_idle_time(tmp_path: Path) -> None:
    torrents = seeded(tmp_path, 5)
    async with TorrentManager(loopback_config(close_idle_files_after=0.2)) as manager:
        sessions = [await manager.add(t, tmp_path) for t in torrents]
        with anyio.fail_after(30):
            for s in sessions:
                await s.wait_ready()
            while manager.shared.files.open_count():  # (checked files stay open until idle)
                await anyio.sleep(0.05)
        assert all(s.state is State.SEEDING for s in sessions)
