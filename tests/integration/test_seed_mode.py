"""Seed mode (data said to be complete, as cross-seeding tools add it): a session seeds at once
without reading its data, verifies each piece the first time it is served, never serves one that
fails (the whole torrent is checked then), and a restart keeps what was verified."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from tests.spies import hold_checks
from torrent_engine.formats.layout import TorrentLayout
from torrent_engine.session import Session
from torrent_engine.session.state_table import State
from torrent_engine.storage import PieceStorage, Storage, StorageFactory
from torrent_engine.storage.resume import load_resume

from .helpers import loopback_config, make_payload, make_torrent, same_files

pytestmark = pytest.mark.anyio

FILES = (("a.bin", 300_007), ("b/c.bin", 170_001), ("empty.txt", 0))
PL = 32 * 1024


class CountingStorage(Storage):
    """A storage that counts the pieces and blocks read from it (by anyone)."""

    def __init__(self, torrent: TorrentLayout, save_path: Path, reads: list[int]) -> None:
        super().__init__(torrent, save_path)
        self._reads = reads

    def read_piece_blocking(self, index: int) -> bytes:
        self._reads.append(index)
        return super().read_piece_blocking(index)

    async def read_block(self, index: int, begin: int, length: int) -> bytes:
        self._reads.append(index)
        return await super().read_block(index, begin, length)


def counting(reads: list[int]) -> StorageFactory:
    """A storage factory whose storages note each piece read in ``reads``."""
    def make(torrent: TorrentLayout, save_path: Path) -> PieceStorage:
        return CountingStorage(torrent, save_path, reads)
    return make


async def test_a_seed_mode_session_seeds_at_once_and_reads_nothing_until_a_peer_asks(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed", FILES), piece_length=PL)
    reads: list[int] = []
    async with Session(torrent, tmp_path / "seed", config=loopback_config(), seed_mode=True,
                       storage=counting(reads)) as seed:
        await seed.wait_ready()
        st = seed.status()
        assert seed.state is State.SEEDING and st.progress == 1.0 and st.pieces == torrent.num_pieces
        assert st.seed_mode and st.verified_pieces == 0
        assert reads == []  # nothing read (nor hashed) before a peer asked
        async with Session(torrent, tmp_path / "leech", config=loopback_config(),
                           peers=[("127.0.0.1", seed.listen_port)]) as leech:
            with anyio.fail_after(60):
                await leech.wait_completed()
        assert sorted(set(reads)) == list(range(torrent.num_pieces))
        assert seed.status().verified_pieces == torrent.num_pieces and seed.seed_mode
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []


async def test_without_seed_mode_the_start_hashes_the_data(tmp_path: Path) -> None:
    """(The reference for the test above: the count it reads is the start's check.)"""
    torrent = make_torrent(make_payload(tmp_path / "seed", FILES), piece_length=PL)
    reads: list[int] = []
    async with Session(torrent, tmp_path / "seed", config=loopback_config(), storage=counting(reads)) as seed:
        await seed.wait_ready()
        assert seed.state is State.SEEDING and not seed.seed_mode
        assert sorted(set(reads)) == list(range(torrent.num_pieces))
        assert seed.status().verified_pieces == torrent.num_pieces


async def test_a_restart_keeps_seed_mode_and_the_pieces_verified(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed", FILES), piece_length=PL)
    resume = tmp_path / "state" / "t.resume"
    async with Session(torrent, tmp_path / "seed", config=loopback_config(), seed_mode=True,
                       resume_path=resume) as seed:
        await seed.wait_ready()
        async with seed.open_file(0) as f:  # a reader verifies what it reads, as a peer's request
            assert len(await f.read(PL + 1)) == PL + 1
        verified = seed.status().verified_pieces
        assert verified == 2
    saved = load_resume(resume)
    assert saved is not None and saved.seed_mode and saved.pieces() == {0, 1}
    reads: list[int] = []
    async with Session(torrent, tmp_path / "seed", config=loopback_config(), resume_path=resume,
                       seed_mode=True, storage=counting(reads)) as again:
        await again.wait_ready()
        assert again.state is State.SEEDING and again.seed_mode
        assert again.status().verified_pieces == 2 and reads == []
        async with again.open_file(0) as f:
            await f.read(PL)
        assert reads == [0]  # read for the reader, not hashed again


async def test_seed_mode_with_a_file_missing_fails_with_missing_files(tmp_path: Path) -> None:
    payload = make_payload(tmp_path / "seed", FILES)
    torrent = make_torrent(payload, piece_length=PL)
    (payload / "b" / "c.bin").unlink()
    async with Session(torrent, tmp_path / "seed", config=loopback_config(), seed_mode=True) as seed:
        with anyio.fail_after(10):
            while not seed.finished:
                await anyio.sleep(0.01)
        assert seed.missing_files == (f"{payload.name}/b/c.bin",) and seed.disk_failure
        assert "missing files" in seed.error


async def test_a_piece_that_fails_ends_seed_mode_and_the_whole_torrent_is_checked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    held = hold_checks(monkeypatch)
    payload = make_payload(tmp_path / "seed", FILES)
    held.names.add(payload.name)
    torrent = make_torrent(payload, piece_length=PL)
    bad = 2  # a piece inside a.bin
    with (payload / "a.bin").open("r+b") as f:
        f.seek(bad * PL + 10)
        f.write(b"\x00" * 100)
    resume = tmp_path / "state" / "t.resume"
    states: list[str] = []
    async with Session(torrent, tmp_path / "seed", config=loopback_config(), seed_mode=True,
                       resume_path=resume) as seed:
        seed.events.subscribe("*", lambda e: states.append(e.name))
        await seed.wait_ready()
        assert seed.state is State.SEEDING
        async with seed.open_file(0) as f:
            assert len(await f.read(bad * PL)) == bad * PL  # pieces 0, 1: good
            with anyio.move_on_after(1):  # the bad one: never returned (it waits to be downloaded)
                await f.read(PL)
                pytest.fail("the piece that fails its hash was read")
            with anyio.fail_after(30):
                await held.checking.wait()
            assert seed.state is State.CHECKING and not seed.seed_mode
            during = load_resume(resume)  # (saved as the check begins: a crash now brings no seed mode back)
            assert during is not None and not during.seed_mode and during.files == []
            held.release.set()
            with anyio.fail_after(30):  # the whole torrent checked, then the bad piece wanted
                while seed.state is not State.DOWNLOADING:
                    await anyio.sleep(0.01)
        assert not seed.seed_mode and seed.rechecked
        assert bad not in seed.have and len(seed.have) == torrent.num_pieces - 1
        assert seed.status().verified_pieces == torrent.num_pieces - 1
        assert "session.checking" in states and "piece.hash_failed" in states
    saved = load_resume(resume)
    assert saved is not None and not saved.seed_mode and bad not in saved.pieces()
    # started again (still asked for seed mode): the resume data says seed mode is over
    async with Session(torrent, tmp_path / "seed", config=loopback_config(), resume_path=resume,
                       seed_mode=True) as again:
        await again.wait_ready()
        assert not again.seed_mode and again.state is State.DOWNLOADING and bad not in again.have
