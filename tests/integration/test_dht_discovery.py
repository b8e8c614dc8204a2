"""Sessions that find each other through the DHT alone (our DhtNode in SharedResources)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from torrent_engine.config import Config
from torrent_engine.engine.manager import TorrentManager
from torrent_engine.net.dht import krpc
from torrent_engine.net.dht.node import DhtNode

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
                await leeches.shared.acquire()  # the DHT starts with the first user: start it now
                try:
                    dht = leeches.shared.dht
                    assert dht is not None
                    with anyio.fail_after(10):
                        await dht.wait_bootstrapped()
                    assert len(dht.table) == 2  # both nodes known: the lookup asks the silent one too
                    leecher = await leeches.add(torrent, tmp_path / "leech")  # no peer given: DHT only
                finally:
                    await leeches.shared.release()  # (the session holds it from here on)
                with anyio.fail_after(60):
                    await leecher.wait_completed()
                # one found the other's announce (whichever looked up after the other announced)
                assert (("127.0.0.1", seeder.listen_port) in leecher.pool
                        or ("127.0.0.1", leecher.listen_port) in seeder.pool)
        tg.cancel_scope.cancel()
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []


class _SilentOnGetPeers(DhtNode):
    """A node that answers everything but get_peers: a lookup waits for it until it times out."""

    async def _on_query(self, q: krpc.Query, address: tuple[str, int]) -> None:
        if isinstance(q, krpc.GetPeers):
            return
        await super()._on_query(q, address)


async def test_dialing_starts_before_the_lookup_ends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed"))
    holder = DhtNode(bind=("127.0.0.1", 0), enforce_bep42=False)
    silent = _SilentOnGetPeers(bind=("127.0.0.1", 0), enforce_bep42=False)
    lookups_done = anyio.Event()  # the leecher's first get_peers lookup is over
    lookup = DhtNode.get_peers_lookup

    async def watched(self: DhtNode, *args: Any, **kwargs: Any) -> Any:
        try:
            return await lookup(self, *args, **kwargs)
        finally:
            lookups_done.set()

    monkeypatch.setattr(DhtNode, "get_peers_lookup", watched)
    init = DhtNode.__init__

    def patient(self: DhtNode, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self.query_timeout = 8.0  # the leecher's lookup waits this long for the silent node,
        # far longer than dialing the seeder takes even on a loaded machine

    monkeypatch.setattr(DhtNode, "__init__", patient)
    async with anyio.create_task_group() as tg:
        await tg.start(holder.run)
        await tg.start(silent.run)
        async with TorrentManager(loopback_config()) as seeds:  # the seeder: no DHT of its own
            seeder = await seeds.add(torrent, tmp_path / "seed")
            await seeder.wait_ready()
            holder.peers.add(torrent.info_hash, "127.0.0.1", seeder.listen_port, time.monotonic())
            boot = (holder.address, silent.address)
            async with TorrentManager(loopback_config(dht_enabled=True, dht_bootstrap=boot,
                                                      enforce_bep42=False)) as leeches:
                await leeches.shared.acquire()  # the DHT starts with the first user: start it now
                try:
                    dht = leeches.shared.dht
                    assert dht is not None
                    with anyio.fail_after(10):
                        await dht.wait_bootstrapped()
                    assert len(dht.table) == 2  # both nodes known: the lookup asks the silent one too
                    leecher = await leeches.add(torrent, tmp_path / "leech")  # no peer given: DHT only
                finally:
                    await leeches.shared.release()  # (the session holds it from here on)
                with anyio.fail_after(30):
                    while not leecher.peers:
                        await anyio.sleep(0.01)
                # connected to the seeder while the lookup still waits for the silent node
                assert not lookups_done.is_set()
                assert leecher.peers[0].key == ("127.0.0.1", seeder.listen_port)
                with anyio.fail_after(45):
                    await lookups_done.wait()
                    await leecher.wait_completed()
        tg.cancel_scope.cancel()
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []
