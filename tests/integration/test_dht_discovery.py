"""Sessions that find each other through the DHT alone (our DhtNode in SharedResources)."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from torrent_engine.config import Config
from torrent_engine.dht.node import DhtNode
from torrent_engine.manager import TorrentManager

from .helpers import loopback_config, make_payload, make_torrent, same_files

pytestmark = pytest.mark.anyio


async def test_leecher_finds_seeder_through_the_dht(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed"))
    router = DhtNode(bind=("127.0.0.1", 0), enforce_bep42=False)
    async with anyio.create_task_group() as tg:
        await tg.start(router.run)
        boot = (("127.0.0.1", router.port),)

        def cfg() -> Config:
            return loopback_config(dht_enabled=True, dht_bootstrap=boot, enforce_bep42=False,
                                   dht_interval=1.0)

        async with TorrentManager(cfg()) as seeds:
            seeder = await seeds.add(torrent, tmp_path / "seed")
            await seeder.wait_ready()
            assert seeds.shared.dht is not None
            async with TorrentManager(cfg()) as leeches:
                leecher = await leeches.add(torrent, tmp_path / "leech")  # no peer given: DHT only
                with anyio.fail_after(60):
                    await leecher.wait_completed()
                # one found the other's announce (whichever looked up after the other announced)
                assert (("127.0.0.1", seeder.listen_port) in leecher.pool
                        or ("127.0.0.1", leecher.listen_port) in seeder.pool)
        tg.cancel_scope.cancel()
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []
