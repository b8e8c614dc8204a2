"""The data path of DESIGN.md section 3, driven through the real session code: a leecher
``Session`` downloads from an honest seeder and a lying one (a seeder ``Session`` whose storage
corrupts what it reads for upload) over 127.0.0.1. Blocks of a piece come from both, pieces are
hashed (SHA-1, SHA-256 merkle or both) and written across file boundaries and pad files; the
failed ones are counted and re-downloaded, and the liar is banned (a lone sender's strikes, or
smart ban proving which block of a shared piece differed). The files end up byte-exact."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from tests.integration.helpers import loopback_config, make_payload, make_torrent, same_files
from torrent_engine import events as ev
from torrent_engine.formats.layout import TorrentLayout
from torrent_engine.net.peer.messages import BLOCK_SIZE
from torrent_engine.session import Session
from torrent_engine.session.state_table import State
from torrent_engine.storage import Storage
from torrent_engine.storage.verify import recheck

pytestmark = pytest.mark.anyio

PIECE_LENGTH = 2 * BLOCK_SIZE  # two blocks a piece: pieces are often built from both seeders
FILES = (("a.bin", 3 * PIECE_LENGTH + 5000), ("empty", 0), ("dir/b.bin", PIECE_LENGTH - 1),
         ("dir/c.bin", 2 * PIECE_LENGTH + 77))


class LyingStorage(Storage):
    """The seeder's real storage, except that what it reads to upload (``read_block``, which
    ``read_piece`` reads through) has one byte flipped in every block; its own start-up check
    (``read_piece_blocking``) sees the true data, so it believes it is complete."""

    def __init__(self, torrent: TorrentLayout, save_path: Path) -> None:
        super().__init__(torrent, save_path)
        self.lies = 0

    def _lie(self, data: bytes) -> bytes:
        out = bytearray(data)
        for start in range(0, len(out), BLOCK_SIZE):
            out[start] ^= 0xFF
            self.lies += 1
        return bytes(out)

    async def read_block(self, index: int, begin: int, length: int) -> bytes:
        return self._lie(await super().read_block(index, begin, length))


@pytest.mark.parametrize("version", ["v1", "v2", "hybrid"])
async def test_a_lying_seeder_is_banned_and_the_download_is_exact(tmp_path: Path, version: str) -> None:
    payload = make_payload(tmp_path / "seed", FILES)
    torrent = make_torrent(payload, piece_length=PIECE_LENGTH, version=version)
    if version == "hybrid":
        assert any(f.pad for f in torrent.files)
    liars: list[LyingStorage] = []

    def lying(layout: TorrentLayout, save_path: Path) -> LyingStorage:
        liars.append(LyingStorage(layout, save_path))
        return liars[-1]

    failed: list[ev.PieceHashFailed] = []
    cfg = loopback_config()
    async with Session(torrent, tmp_path / "seed", config=cfg) as honest, \
            Session(torrent, tmp_path / "seed", config=cfg, storage=lying) as liar:
        with anyio.fail_after(20):
            await honest.wait_ready()
            await liar.wait_ready()
        assert honest.state is State.SEEDING and liar.state is State.SEEDING  # both look complete
        liar_address = ("127.0.0.1", liar.listen_port)
        honest_address = ("127.0.0.1", honest.listen_port)
        # the liar alone first, so that it surely serves blocks; the honest seeder once a piece failed
        leecher = Session(torrent, tmp_path / "leech", config=cfg, peers=[liar_address])
        leecher.events.subscribe(ev.PieceHashFailed, failed.append)
        async with leecher:
            with anyio.fail_after(60):
                while not failed:
                    await anyio.sleep(0.01)
                leecher.add_peer(*honest_address)
                await leecher.wait_completed()
            assert leecher.state is State.SEEDING
            assert leecher.pool.is_banned(liar_address) and not leecher.pool.is_banned(honest_address)
            assert leecher.banned_count == 1
            assert all(p.key != liar_address for p in leecher.peers)  # dropped, not dialed again
            hash_failures = leecher.hash_failures
    assert liars and liars[0].lies > 0
    assert hash_failures > 0 and hash_failures == len(failed)
    liar_name = f"127.0.0.1:{liar_address[1]}"
    assert all(liar_name in e.peers for e in failed)  # every failed piece had a block of the liar
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []
    again = await recheck(torrent, Storage(torrent, tmp_path / "leech"))
    assert again.all()
