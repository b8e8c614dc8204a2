"""Deduplication of v1 files through the job service, on loopback: a v1 torrent has no pieces
root, so a file of it is looked for by its length among the files held whole and placed from
the one whose bytes verify against its own pieces (cross-seeding: the same data as another
torrent, under other names and another piece length); a file of the same length with other
bytes is passed over; a hard link is made only of a file whose every piece is its own; the
files by length are learnt again at a start, and an indexed folder's files count too."""

from __future__ import annotations

import os
import random
from pathlib import Path

import anyio
import pytest

from torrent_engine.formats.metainfo import Torrent
from torrent_engine.jobs import JobService, JobState
from torrent_engine.jobs.disk.dedup import LENGTH_MATCH_MIN

from .helpers import make_torrent
from .test_jobs_dedup import seeding, service, wait_for, write

pytestmark = pytest.mark.anyio

SIZE = 1_572_867  # the file cross-seeded: 1.5 MiB and 3 bytes
NFO = 5_000  # B's own small file (under LENGTH_MATCH_MIN: downloaded)
A_PL = 32 * 1024  # A's piece length; B's is another
B_PL = 64 * 1024


def payload(seed: int = 11) -> bytes:
    return random.Random(seed).randbytes(SIZE)


async def holding(jobs: JobService, folder: Path, files: list[tuple[str, bytes]]) -> Torrent:
    """A v1 torrent of ``files`` in ``folder``, complete in the service (added with its data,
    checked) and known by its files' lengths."""
    torrent = make_torrent(write(folder, files), piece_length=A_PL, version="v1")
    job, _ = await jobs.add(torrent.to_bytes(), save_path=str(folder.parent))
    await wait_for(jobs, job.id, JobState.SEEDING)
    with anyio.fail_after(10):  # (learnt as it completed: its job.state event)
        while not any(k.origin == job.id for k in jobs.dedup.of_length(SIZE)):
            await anyio.sleep(0.01)
    return torrent


def b_torrent(root: Path, data: bytes, nfo: bool = True) -> Torrent:
    """B: the same bytes under another name and piece length, with a small file of its own
    after them (sharing B's last piece with it), or alone (``nfo`` False)."""
    files = [("Show.2024.1080p.mkv", data)]
    if nfo:
        files.append(("Show.2024.nfo", random.Random(3).randbytes(NFO)))
    return make_torrent(write(root / "Show.2024", files), piece_length=B_PL, version="v1")


def test_the_file_is_long_enough_to_be_looked_for() -> None:
    assert SIZE >= LENGTH_MATCH_MIN > NFO


async def test_a_v1_torrent_cross_seeded_under_other_names_downloads_only_its_own(tmp_path: Path) -> None:
    data = payload()
    b = b_torrent(tmp_path / "seed", data)
    async with service(tmp_path) as jobs:
        await holding(jobs, tmp_path / "dl" / "A", [("a.mkv", data), ("a-extra.bin", os.urandom(40_000))])
        async with seeding(tmp_path / "seed", b) as seed:
            job, _ = await jobs.add(b.to_bytes(), save_path="got", peers=[("127.0.0.1", seed.listen_port)])
            assert job.dedup_bytes == SIZE
            job = await wait_for(jobs, job.id, JobState.SEEDING)
            sent = seed.status().uploaded
        assert job.progress == 1.0 and job.verified_pieces == job.num_pieces == b.num_pieces
        # received: the last piece (the mkv's tail and the nfo: the check found the nfo missing),
        # not the 1.5 MiB placed
        last = b.piece_size(b.num_pieces - 1)
        assert last <= job.downloaded < last + 2 * 16 * 1024, job.downloaded
        assert last <= sent < last + 2 * 16 * 1024, sent
        got = tmp_path / "dl" / "got" / "Show.2024"
        assert (got / "Show.2024.1080p.mkv").read_bytes() == data
        [placed] = jobs.dedup.placed[job.id]
        assert placed.by_length and placed.index == 0
        assert placed.source == str(tmp_path / "dl" / "A" / "a.mkv")


async def test_a_file_of_the_same_length_with_other_bytes_is_passed_over(tmp_path: Path) -> None:
    data = payload()
    decoy = bytearray(data)
    decoy[100:200] = bytes(100)  # (other bytes in its first piece, one the sample reads)
    b = b_torrent(tmp_path / "mk", data, nfo=False)
    async with service(tmp_path, dedup="copy") as jobs:
        await holding(jobs, tmp_path / "dl" / "C", [("decoy.mkv", bytes(decoy))])
        job, _ = await jobs.add(b.to_bytes(), save_path="only-decoy", paused=True)
        assert job.dedup_bytes == 0 and job.id not in jobs.dedup.placed
        await jobs.cancel(job.id, delete_files=True)
        # the true copy held too, learnt before the decoy: the decoy (the latest) is tried first
        # and fails, the true one is taken
        await holding(jobs, tmp_path / "dl" / "A", [("a.mkv", data)])
        await holding(jobs, tmp_path / "dl" / "D", [("decoy2.mkv", bytes(decoy))])
        assert [k.path for k in jobs.dedup.of_length(SIZE)][0].endswith("decoy2.mkv")
        job, _ = await jobs.add(b.to_bytes(), save_path="both", paused=True)
        assert job.dedup_bytes == SIZE
        [placed] = jobs.dedup.placed[job.id]
        assert placed.source == str(tmp_path / "dl" / "A" / "a.mkv") and placed.method == "copy"
        await jobs.resume(job.id)
        job = await wait_for(jobs, job.id, JobState.SEEDING)  # (every piece from the check alone)
        assert job.downloaded == 0 and job.verified_pieces == b.num_pieces


async def test_a_hard_link_only_of_a_file_whose_every_piece_is_its_own(tmp_path: Path) -> None:
    data = payload()
    alone = b_torrent(tmp_path / "mk1", data, nfo=False)  # (one file: every piece is its own)
    shared = b_torrent(tmp_path / "mk2", data)  # (its last piece is the nfo's too)
    async with service(tmp_path, dedup="hardlink") as jobs:
        await holding(jobs, tmp_path / "dl" / "A", [("a.mkv", data)])
        source = os.stat(tmp_path / "dl" / "A" / "a.mkv")
        linked, _ = await jobs.add(alone.to_bytes(), save_path="alone", paused=True)
        copied, _ = await jobs.add(shared.to_bytes(), save_path="shared", paused=True)
        assert linked.dedup_bytes == copied.dedup_bytes == SIZE
        assert [p.method for p in jobs.dedup.placed[linked.id]] == ["hardlink"]
        assert [p.method for p in jobs.dedup.placed[copied.id]] == ["copy"]
        mkv = ("Show.2024", "Show.2024.1080p.mkv")
        assert os.stat(tmp_path / "dl" / "alone" / Path(*mkv)).st_ino == source.st_ino
        assert os.stat(tmp_path / "dl" / "shared" / Path(*mkv)).st_ino != source.st_ino
        await jobs.resume(linked.id)
        job = await wait_for(jobs, linked.id, JobState.SEEDING)
        assert job.downloaded == 0 and job.verified_pieces == alone.num_pieces


async def test_the_files_by_length_are_learnt_again_at_a_start(tmp_path: Path) -> None:
    data = payload()
    b = b_torrent(tmp_path / "mk", data, nfo=False)
    async with service(tmp_path, dedup="copy") as jobs:
        await holding(jobs, tmp_path / "dl" / "A", [("a.mkv", data)])
    async with service(tmp_path, dedup="copy") as jobs:
        with anyio.fail_after(10):
            await jobs.dedup.rebuilt.wait()
        job, _ = await jobs.add(b.to_bytes(), save_path="got", paused=True)
        assert job.dedup_bytes == SIZE


async def test_an_indexed_folders_file_of_its_length_is_taken(tmp_path: Path) -> None:
    data = payload()
    library = write(tmp_path / "library", [("renamed.mkv", data), ("other.bin", payload(12))])
    b = b_torrent(tmp_path / "mk", data, nfo=False)
    async with service(tmp_path, dedup="copy", dedup_folders=(str(library),)) as jobs:
        with anyio.fail_after(20):
            await jobs.dedup.folders_indexed.wait()
        job, _ = await jobs.add(b.to_bytes(), save_path="got", paused=True)
        assert job.dedup_bytes == SIZE
        [placed] = jobs.dedup.placed[job.id]
        assert placed.origin == "folder" and placed.source == str(library / "renamed.mkv")


async def test_an_indexed_folders_file_is_found_by_length_before_the_folder_is_hashed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A library's first walk hashes every file (hours on a large one); its files are known by
    their lengths as soon as walked: a v1 torrent's file is taken from one while the hashing has
    not ended."""
    import threading

    from torrent_engine.jobs.disk import dedup as dedup_module

    release = threading.Event()
    real_root = dedup_module.file_pieces_root

    def slow_root(path: str | os.PathLike[str], length: int | None = None) -> bytes:
        assert release.wait(30), "not released"
        return real_root(path, length)

    monkeypatch.setattr(dedup_module, "file_pieces_root", slow_root)
    data = payload()
    library = write(tmp_path / "library", [("renamed.mkv", data)])
    b = b_torrent(tmp_path / "mk", data, nfo=False)
    try:
        async with service(tmp_path, dedup="copy", dedup_folders=(str(library),)) as jobs:
            with anyio.fail_after(20):
                await jobs.dedup.folders_walked.wait()
            assert not jobs.dedup.folders_indexed.is_set()  # (its hashing waits)
            job, _ = await jobs.add(b.to_bytes(), save_path="got", paused=True)
            assert job.dedup_bytes == SIZE
            release.set()
            with anyio.fail_after(20):
                await jobs.dedup.folders_indexed.wait()
            assert jobs.dedup.folder_index.hashed == 1
    finally:
        release.set()


async def test_a_file_placed_under_the_incomplete_suffix_loses_it_once_checked(tmp_path: Path) -> None:
    """With the incomplete files' suffix on (qBittorrent's ".!qB"), a file taken at the add is
    placed under it, as the torrent's own file would be written, and renamed once its check
    found it whole."""
    data = payload()
    b = b_torrent(tmp_path / "mk", data, nfo=False)
    async with service(tmp_path, dedup="copy") as jobs:
        await jobs.update_settings(partial_file_suffix=".!qB")
        await holding(jobs, tmp_path / "dl" / "A", [("a.mkv", data)])
        job, _ = await jobs.add(b.to_bytes(), save_path="got", paused=True)
        assert job.dedup_bytes == SIZE
        folder = tmp_path / "dl" / "got" / "Show.2024"
        assert sorted(p.name for p in folder.iterdir()) == ["Show.2024.1080p.mkv.!qB"]
        await jobs.resume(job.id)
        job = await wait_for(jobs, job.id, JobState.SEEDING)
        assert job.downloaded == 0
        with anyio.fail_after(10):
            while sorted(p.name for p in folder.iterdir()) != ["Show.2024.1080p.mkv"]:
                await anyio.sleep(0.02)
        assert (folder / "Show.2024.1080p.mkv").read_bytes() == data


async def test_an_add_reads_at_most_its_bound_on_files_that_do_not_hold_its_own(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The look of an add (and of a match) is bounded by ``WRONG_READS_MOST``: spent, no more
    candidates are tried and the file is downloaded (here a bound of nothing: the file held is
    not even tried), the match saying why."""
    from torrent_engine.jobs.disk import dedup as dedup_module
    from torrent_engine.storage.findfiles import SPENT

    data = payload()
    b = b_torrent(tmp_path / "mk", data, nfo=False)
    async with service(tmp_path, dedup="copy") as jobs:
        await holding(jobs, tmp_path / "dl" / "A", [("a.mkv", data)])
        monkeypatch.setattr(dedup_module, "WRONG_READS_MOST", 0)
        [held] = await jobs.dedup.match(b)
        assert held.source is None and held.why == SPENT
        job, _ = await jobs.add(b.to_bytes(), save_path="got", paused=True)
        assert job.dedup_bytes == 0
        monkeypatch.setattr(dedup_module, "WRONG_READS_MOST", 1)  # (one wrong piece may be read)
        [held] = await jobs.dedup.match(b)
        assert held.source is not None and held.source.path == str(tmp_path / "dl" / "A" / "a.mkv")
