"""Deduplication against libtorrent: torrent B, made and seeded by libtorrent, shares two of
its three files with torrent A, made by us and complete in the job service. v2 and hybrid: the
pieces roots libtorrent wrote match the files we hold, so B takes them from A's, verifies them,
and receives only the third file's bytes from libtorrent. v1 (no roots; A with another piece
length): B's shared files are found by their lengths and the SHA-1 of their own pieces, and B
receives the third file and the pieces it shares with them; added by its magnet link too (its
metadata from libtorrent, the files placed before its check)."""

from __future__ import annotations

import random
from pathlib import Path
from types import ModuleType

import anyio
import pytest

from tests.conftest import require_libtorrent
from tests.integration.helpers import loopback_config, make_torrent
from tests.interop.test_libtorrent_transfer import lt_session
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.jobs import Job, JobService, JobState

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

PL = 64 * 1024
SHARED = (("one.bin", 700_001), ("two.bin", 300_000))
A_ONLY = ("a3.bin", 90_003)
B_ONLY = ("b3.bin", 250_007)


def lt_make(lt: ModuleType, root: Path, flags: int) -> bytes:
    fs = lt.file_storage()
    lt.add_files(fs, str(root))
    ct = lt.create_torrent(fs, PL, flags=flags)
    lt.set_piece_hashes(ct, str(root.parent))
    data: bytes = lt.bencode(ct.generate())
    return data


def written(tmp_path: Path, shared: tuple[tuple[str, int], ...], rng_seed: int,
            ) -> tuple[dict[str, bytes], Path, Path, Path]:
    """A's files (``shared`` and ``A_ONLY``) in the download folder, B's (``shared`` and
    ``B_ONLY``) in the seed's: the files' bytes by name, the download, state and seed folders."""
    rng = random.Random(rng_seed)
    data = {name: rng.randbytes(size) for name, size in (*shared, A_ONLY, B_ONLY)}
    root, state, seed = tmp_path / "dl", tmp_path / "state", tmp_path / "seed"
    for folder, names in ((root / "A", (*shared, A_ONLY)), (seed / "B", (*shared, B_ONLY))):
        folder.mkdir(parents=True)
        for name, _ in names:
            (folder / name).write_bytes(data[name])
    return data, root, state, seed


async def from_libtorrent(lt: ModuleType, jobs: JobService, b_bytes: bytes, seed: Path,
                          placed: int, *, magnet: bool = False) -> tuple[Job, int]:
    """B (``b_bytes``) seeded by libtorrent from ``seed``, added to ``jobs`` with it as its peer
    (``placed`` bytes taken at the add, checked; ``magnet``: added by its magnet link, its
    metadata from libtorrent, the bytes taken before its check), once B seeds: our job, and what
    libtorrent sent."""
    with lt_session(lt) as ses:
        params = lt.add_torrent_params()
        params.ti = lt.torrent_info(lt.bdecode(b_bytes))
        params.save_path = str(seed)
        handle = ses.add_torrent(params)
        with anyio.fail_after(30):
            while not handle.status().is_seeding:
                await anyio.sleep(0.05)
        source = Torrent.from_bytes(b_bytes).magnet_uri() if magnet else b_bytes
        job, _ = await jobs.add(source, save_path="got", peers=[("127.0.0.1", ses.listen_port())])
        assert job.dedup_bytes == (0 if magnet else placed)
        with anyio.fail_after(60):
            while (job := jobs.get(job.id)).state is not JobState.SEEDING:
                assert job.state not in (JobState.FAILED, JobState.ERROR), job.error
                await anyio.sleep(0.05)
        assert job.dedup_bytes == placed
        return job, int(handle.status().total_payload_upload)


@pytest.mark.parametrize("version", ["v2", "hybrid"])
async def test_a_libtorrent_torrent_sharing_two_files_sends_us_only_the_third(tmp_path: Path,
                                                                              version: str) -> None:
    lt = require_libtorrent()
    data, root, state, seed = written(tmp_path, SHARED, 46)
    a = make_torrent(root / "A", piece_length=PL, version=version)
    b_bytes = lt_make(lt, seed / "B", lt.create_torrent.v2_only if version == "v2" else 0)
    b = Torrent.from_bytes(b_bytes)
    assert {f.pieces_root for f in b.files} & {f.pieces_root for f in a.files} != set()
    async with JobService(loopback_config(state_dir=state), download_root=root, state_dir=state) as jobs:
        ja, _ = await jobs.add(a.to_bytes())
        with anyio.fail_after(30):
            while jobs.get(ja.id).state is not JobState.SEEDING or not all(
                    jobs.dedup.known(f.pieces_root) for f in a.files if f.pieces_root is not None):
                await anyio.sleep(0.02)
        job, sent = await from_libtorrent(lt, jobs, b_bytes, seed, sum(size for _, size in SHARED))
        third = B_ONLY[1]
        # (hybrid: the pad after the third file, up to its last piece's end, comes too)
        assert third <= job.downloaded < third + PL, job.downloaded
        assert sent >= job.downloaded - 16 * 1024 and sent < third + PL + 16 * 1024, sent
        assert job.verified_pieces == job.num_pieces == b.num_pieces
        for name, _ in (*SHARED, B_ONLY):
            assert (root / "got" / "B" / name).read_bytes() == data[name]


@pytest.mark.parametrize("magnet", [False, True], ids=["torrent", "magnet"])
async def test_a_libtorrent_v1_torrent_sharing_two_files_finds_them_by_length(tmp_path: Path,
                                                                               magnet: bool) -> None:
    lt = require_libtorrent()
    shared = (("one.bin", 1_200_001), ("two.bin", 1_100_000))  # (from LENGTH_MATCH_MIN)
    data, root, state, seed = written(tmp_path, shared, 47)
    a = make_torrent(root / "A", piece_length=PL // 2, version="v1")
    b_bytes = lt_make(lt, seed / "B", lt.create_torrent.v1_only)
    b = Torrent.from_bytes(b_bytes)
    assert not b.is_v2 and b.piece_length != a.piece_length
    async with JobService(loopback_config(state_dir=state), download_root=root, state_dir=state) as jobs:
        ja, _ = await jobs.add(a.to_bytes())
        with anyio.fail_after(30):
            while jobs.get(ja.id).state is not JobState.SEEDING or not all(
                    jobs.dedup.of_length(size) for _, size in shared):
                await anyio.sleep(0.02)
        job, sent = await from_libtorrent(lt, jobs, b_bytes, seed, sum(size for _, size in shared),
                                          magnet=magnet)
        assert all(p.by_length for p in jobs.dedup.placed[job.id])
        third = B_ONLY[1]
        # (the pieces the third file shares with a shared one come too: two at most)
        assert third <= job.downloaded < third + 2 * PL, job.downloaded
        assert sent >= job.downloaded - 16 * 1024 and sent < third + 2 * PL + 16 * 1024, sent
        assert job.verified_pieces == job.num_pieces == b.num_pieces
        for name, _ in (*shared, B_ONLY):
            assert (root / "got" / "B" / name).read_bytes() == data[name]
