"""A magnet's session moves through its phases as the torrent becomes known: fetching the
metadata (nothing of the torrent held), checking (files open, a picker), live while it
downloads and seeds, paused without a swarm, and loaded (files closed) once stopped."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from torrent_engine import events as ev
from torrent_engine.formats.layout import TorrentLayout
from torrent_engine.formats.magnet import parse_magnet
from torrent_engine.session import Session
from torrent_engine.session.phases import Checking, FetchingMetadata, Live, Loaded, Paused, Phase
from torrent_engine.session.state_table import State
from torrent_engine.storage import PieceStorage, Storage

from .helpers import loopback_config, make_payload, make_torrent, same_files

pytestmark = pytest.mark.anyio


async def test_a_magnet_goes_fetching_checking_live_paused_live_loaded(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed"), version="v1")
    at_check: list[Phase] = []
    leecher: Session | None = None

    class Noting(Storage):
        """Opened once the metadata is in; notes the phase when the checker looks at the files."""

        def file_path(self, file_index: int) -> Path | None:
            if not at_check and leecher is not None:
                at_check.append(leecher.phase)
            return super().file_path(file_index)

    def storage(layout: TorrentLayout, save_path: Path) -> PieceStorage:
        return Noting(layout, save_path)

    async with Session(torrent, tmp_path / "seed", config=loopback_config()) as seeder:
        await seeder.wait_ready()
        leecher = Session(parse_magnet(torrent.magnet_uri()), tmp_path / "leech", config=loopback_config(),
                          peers=[("127.0.0.1", seeder.listen_port)], storage=storage)
        fetching = leecher.phase
        assert isinstance(fetching, FetchingMetadata) and not leecher.has_metadata
        seen: list[str] = []
        at_piece: set[type[Phase]] = set()
        leecher.events.subscribe("*", lambda e: seen.append(e.name))
        leecher.events.subscribe(ev.PieceCompleted, lambda e: at_piece.add(type(leecher.phase)))
        with anyio.fail_after(60):
            async with leecher:
                await leecher.wait_completed()
                assert [type(p) for p in at_check] == [Checking]
                checking = at_check[0]
                assert isinstance(checking, Checking)
                assert checking.parts.torrent.info_hash == torrent.info_hash
                live = leecher.phase
                assert isinstance(live, Live) and leecher.state is State.SEEDING
                assert live.parts is checking.parts and live.storage is checking.storage
                await leecher.pause()
                while not isinstance(leecher.phase, Paused):
                    await anyio.sleep(0.01)
                await leecher.resume()
                while not isinstance(leecher.phase, Live):
                    await anyio.sleep(0.01)
                assert leecher.state is State.SEEDING and leecher.phase.parts.picker is checking.parts.picker
            await anyio.sleep(0)  # (the last events' delivery)
    assert at_piece == {Live}  # every piece came while live (the swarm's peers brought it)
    assert type(leecher.phase) is Loaded and leecher.phase.parts is checking.parts
    assert fetching.swarm is None  # the fetch's swarm ended with it
    assert [n for n in seen if n.startswith("session.")][:3] == [
        "session.started", "session.metadata_received", "session.completed"]
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []
