"""Magnet links (BEP 9): a session that starts from the info-hash alone fetches the metadata."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from torrent_engine import events as ev
from torrent_engine.errors import SessionError
from torrent_engine.magnet import parse_magnet
from torrent_engine.manager import TorrentManager
from torrent_engine.session import Session
from torrent_engine.session_state import State

from .helpers import loopback_config, make_payload, make_torrent, same_files

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("version", ["v1", "hybrid"])
async def test_magnet_leecher_gets_metadata_then_data(tmp_path: Path, version: str) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed"), version=version)
    magnet = parse_magnet(torrent.magnet_uri())
    seen: list[ev.Event] = []
    async with Session(torrent, tmp_path / "seed", config=loopback_config()) as seeder:
        await seeder.wait_ready()
        leecher = Session(magnet, tmp_path / "leech", config=loopback_config(),
                          peers=[("127.0.0.1", seeder.listen_port)])
        leecher.events.subscribe("*", seen.append)
        assert not leecher.has_metadata and leecher.status().progress == 0.0
        with pytest.raises(SessionError):
            _ = leecher.torrent
        async with leecher:
            with anyio.fail_after(60):
                await leecher.wait_completed()
            assert leecher.torrent.info_bytes == torrent.info_bytes
            assert leecher.state is State.SEEDING
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []
    names = [e.name for e in seen]
    assert names.index("session.started") < names.index("session.metadata_received") < names.index(
        "session.completed")


async def test_manager_adds_magnet_uri_and_keeps_the_metainfo(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed"))
    uri = torrent.magnet_uri()
    async with Session(torrent, tmp_path / "seed", config=loopback_config()) as seeder:
        await seeder.wait_ready()
        state = tmp_path / "state"
        async with TorrentManager(loopback_config(state_dir=state)) as manager:
            session = await manager.add(uri, tmp_path / "leech", peers=(("127.0.0.1", seeder.listen_port),))
            with anyio.fail_after(60):
                await session.wait_completed()
        saved = state / "torrents" / f"{torrent.info_hash.hex()}.torrent"
        assert saved.exists()
        async with TorrentManager(loopback_config(state_dir=state)) as again:
            reloaded = again.get(torrent.info_hash)
            assert reloaded is not None and reloaded.has_metadata
            await reloaded.wait_ready()
            assert reloaded.state is State.SEEDING
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []


async def test_magnet_session_paused_before_metadata_resumes_and_completes(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed"))
    async with Session(torrent, tmp_path / "seed", config=loopback_config()) as seeder:
        await seeder.wait_ready()
        leecher = Session(parse_magnet(torrent.magnet_uri()), tmp_path / "leech", config=loopback_config(),
                          peers=[("127.0.0.1", seeder.listen_port)], paused=True)
        async with leecher:
            await anyio.sleep(0.3)
            assert leecher.state is State.PAUSED and not leecher.has_metadata and not seeder.peers
            await leecher.resume()
            assert leecher.state is State.DOWNLOADING_METADATA
            with anyio.fail_after(60):
                await leecher.wait_completed()
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []


async def test_magnet_leecher_gets_metadata_from_a_peer_that_dials_it(tmp_path: Path) -> None:
    """The seeder connects to the magnet leecher (as after a DHT or tracker announce)."""
    torrent = make_torrent(make_payload(tmp_path / "seed"))
    magnet = parse_magnet(torrent.magnet_uri())
    async with Session(magnet, tmp_path / "leech", config=loopback_config()) as leecher:
        with anyio.fail_after(10):
            while leecher.state is not State.DOWNLOADING_METADATA:
                await anyio.sleep(0.01)
        async with Session(torrent, tmp_path / "seed", config=loopback_config(),
                           peers=[("127.0.0.1", leecher.listen_port)]) as seeder:
            await seeder.wait_ready()
            with anyio.fail_after(60):
                await leecher.wait_completed()
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []
