"""Announces paced over every torrent of a manager (``Config.active_tracker_limit``, as
libtorrent's ``active_tracker_limit``): a start of many torrents queues its announces rather than
opening a request per torrent at once, and every torrent is announced in the end."""

from __future__ import annotations

from pathlib import Path

import anyio
import anyio.abc
import pytest

from tests.unit.tracker._tracker_servers import HttpRequest, announce_body, http_response, http_tracker
from torrent_engine.engine.manager import TorrentManager
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.storage.create import create_torrent

from .helpers import loopback_config, make_payload

pytestmark = pytest.mark.anyio


class SlowTracker:
    """A tracker that takes its time (requests pile up): the most requests it had in flight at
    once, and the info-hashes it answered, in order."""

    def __init__(self) -> None:
        self.in_flight = self.most = 0
        self.announced: list[bytes] = []

    async def __call__(self, request: HttpRequest, stream: anyio.abc.ByteStream) -> None:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            await anyio.sleep(0.2)
            self.announced.append(request.query()["info_hash"][0])
            await stream.send(http_response(announce_body(interval=1800)))
        finally:
            self.in_flight -= 1


def announcing(root: Path, url: str, n: int) -> list[Torrent]:
    """``n`` small torrents announcing to ``url``, their data in ``root/d<i>``."""
    return [create_torrent(make_payload(root / f"d{i}", [(f"f{i}.bin", 20_000 + i)]),
                           piece_length=16 * 1024, trackers=[url]) for i in range(n)]


async def add_all(manager: TorrentManager, root: Path, torrents: list[Torrent], slow: SlowTracker,
                  start: int = 0) -> None:
    """Add ``torrents`` (the ``start``-th on) and wait until the tracker answered them all."""
    for i, torrent in enumerate(torrents[start:], start=start):
        await manager.add(torrent, root / f"d{i}")
    with anyio.fail_after(30):
        while len(slow.announced) < len(torrents):
            await anyio.sleep(0.05)


async def test_a_start_of_many_torrents_keeps_to_the_tracker_limit(tmp_path: Path) -> None:
    slow = SlowTracker()
    async with http_tracker(slow) as tracker:
        torrents = announcing(tmp_path, f"http://127.0.0.1:{tracker.port}/announce", 10)
        config = loopback_config(tracker_enabled=True, active_tracker_limit=2)
        async with TorrentManager(config) as manager:
            await add_all(manager, tmp_path, torrents, slow)
    assert slow.most <= 2  # (without the limit: ten at once)
    assert set(slow.announced) == {t.info_hash for t in torrents}


async def test_http_announces_keep_to_their_own_limit_read_at_each_announce(tmp_path: Path) -> None:
    """``Config.max_concurrent_http_announces`` (libtorrent's and qBittorrent's): HTTP announces
    in flight over every torrent, within ``active_tracker_limit``; a change is taken at the next
    announce."""
    slow = SlowTracker()
    async with http_tracker(slow) as tracker:
        torrents = announcing(tmp_path, f"http://127.0.0.1:{tracker.port}/announce", 16)
        config = loopback_config(tracker_enabled=True, max_concurrent_http_announces=3)
        async with TorrentManager(config) as manager:
            await add_all(manager, tmp_path, torrents[:8], slow)
            assert slow.most == 3  # (without the limit: eight at once)
            slow.most = 0
            config.max_concurrent_http_announces = 6
            await add_all(manager, tmp_path, torrents, slow, start=8)
            assert 3 < slow.most <= 6
    assert set(slow.announced) == {t.info_hash for t in torrents}
