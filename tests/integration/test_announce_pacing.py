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
from torrent_engine.storage.create import create_torrent

from .helpers import loopback_config, make_payload

pytestmark = pytest.mark.anyio


async def test_a_start_of_many_torrents_keeps_to_the_tracker_limit(tmp_path: Path) -> None:
    in_flight = most = 0
    announced: set[bytes] = set()

    async def slow_tracker(request: HttpRequest, stream: anyio.abc.ByteStream) -> None:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        try:
            await anyio.sleep(0.2)  # (a tracker that takes its time: requests pile up)
            announced.add(request.query()["info_hash"][0])
            await stream.send(http_response(announce_body(interval=1800)))
        finally:
            in_flight -= 1

    async with http_tracker(slow_tracker) as tracker:
        url = f"http://127.0.0.1:{tracker.port}/announce"
        torrents = [create_torrent(make_payload(tmp_path / f"d{i}", [(f"f{i}.bin", 20_000 + i)]),
                                   piece_length=16 * 1024, trackers=[url]) for i in range(10)]
        config = loopback_config(tracker_enabled=True, active_tracker_limit=2)
        async with TorrentManager(config) as manager:
            for i, torrent in enumerate(torrents):
                await manager.add(torrent, tmp_path / f"d{i}")
            with anyio.fail_after(30):
                while len(announced) < len(torrents):
                    await anyio.sleep(0.05)
    assert most <= 2  # (without the limit: ten at once)
    assert announced == {t.info_hash for t in torrents}


async def test_http_announces_keep_to_their_own_limit_read_at_each_announce(tmp_path: Path) -> None:
    """``Config.max_concurrent_http_announces`` (libtorrent's and qBittorrent's): HTTP announces
    in flight over every torrent, within ``active_tracker_limit``; a change is taken at the next
    announce."""
    in_flight = most = 0
    announced: list[bytes] = []

    async def slow_tracker(request: HttpRequest, stream: anyio.abc.ByteStream) -> None:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        try:
            await anyio.sleep(0.2)
            announced.append(request.query()["info_hash"][0])
            await stream.send(http_response(announce_body(interval=1800)))
        finally:
            in_flight -= 1

    async with http_tracker(slow_tracker) as tracker:
        url = f"http://127.0.0.1:{tracker.port}/announce"
        torrents = [create_torrent(make_payload(tmp_path / f"d{i}", [(f"f{i}.bin", 20_000 + i)]),
                                   piece_length=16 * 1024, trackers=[url]) for i in range(16)]
        config = loopback_config(tracker_enabled=True, max_concurrent_http_announces=3)
        async with TorrentManager(config) as manager:
            for i, torrent in enumerate(torrents[:8]):
                await manager.add(torrent, tmp_path / f"d{i}")
            with anyio.fail_after(30):
                while len(announced) < 8:
                    await anyio.sleep(0.05)
            assert most == 3  # (without the limit: eight at once)
            most = 0
            config.max_concurrent_http_announces = 6
            for i, torrent in enumerate(torrents[8:], start=8):
                await manager.add(torrent, tmp_path / f"d{i}")
            with anyio.fail_after(30):
                while len(announced) < 16:
                    await anyio.sleep(0.05)
            assert 3 < most <= 6
    assert set(announced) == {t.info_hash for t in torrents}
