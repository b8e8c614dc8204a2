"""Deduplication of a magnet link's files, on loopback: its metadata comes from a peer inside
its session, which waits for the job service (``TorrentManager.before_check``) before it opens
and checks its files; the files held whole are placed then, as an add of the .torrent places
them, and its check verifies them: only what is not held is downloaded. A file on disk before
the job stays on a cancel that deletes the job's files; a placed one goes with them. The job is
checking while its files are placed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import anyio
import pytest

from torrent_engine.jobs import AddOptions, JobState

from .helpers import make_torrent
from .test_jobs_dedup import SHARED, contents, holding_a, seeding, service, wait_for, write
from .test_jobs_dedup_v1 import SIZE, b_torrent, holding, payload

pytestmark = pytest.mark.anyio


def magnet_of(info_hash: bytes) -> str:
    return f"magnet:?xt=urn:btih:{info_hash.hex()}&dn=b"


async def test_a_v1_magnet_cross_seeded_downloads_only_its_own(tmp_path: Path) -> None:
    data = payload()
    b = b_torrent(tmp_path / "seed", data)
    async with service(tmp_path) as jobs:
        await holding(jobs, tmp_path / "dl" / "A", [("a.mkv", data)])
        async with seeding(tmp_path / "seed", b) as seed:
            job, _ = await jobs.add(magnet_of(b.info_hash), save_path="got",
                                    peers=[("127.0.0.1", seed.listen_port)])
            job = await wait_for(jobs, job.id, JobState.SEEDING)
            sent = seed.status().uploaded
        assert job.dedup_bytes == SIZE
        assert job.progress == 1.0 and job.verified_pieces == job.num_pieces == b.num_pieces
        # received: its metadata, and its last piece (the mkv's tail and the nfo), not the
        # 1.5 MiB placed
        last = b.piece_size(b.num_pieces - 1)
        assert last <= job.downloaded < last + 2 * 16 * 1024, job.downloaded
        assert sent < last + 2 * 16 * 1024 + len(b.info_bytes), sent
        got = tmp_path / "dl" / "got" / "Show.2024"
        assert (got / "Show.2024.1080p.mkv").read_bytes() == data
        [placed] = jobs.dedup.placed[job.id]
        assert placed.by_length and placed.index == 0


async def test_a_hybrid_magnets_files_are_placed_by_their_pieces_roots(tmp_path: Path) -> None:
    data = contents()
    b = make_torrent(write(tmp_path / "seed" / "B", [(n, data[n]) for n, _ in SHARED]),
                     piece_length=32 * 1024, version="hybrid")
    async with service(tmp_path) as jobs:
        await holding_a(jobs, tmp_path / "dl", data, "hybrid")
        async with seeding(tmp_path / "seed", b) as seed:
            job, _ = await jobs.add(magnet_of(b.info_hash), save_path="got",
                                    peers=[("127.0.0.1", seed.listen_port)])
            job = await wait_for(jobs, job.id, JobState.SEEDING)
        assert job.dedup_bytes == sum(size for _, size in SHARED)
        assert job.downloaded == 0  # (every byte placed: only the metadata came from the peer)
        assert {p.index for p in jobs.dedup.placed[job.id]} == {i for i, f in enumerate(b.files) if not f.pad}
        for name, _ in SHARED:
            assert (tmp_path / "dl" / "got" / "B" / name).read_bytes() == data[name]


async def test_a_cancel_deletes_the_placed_files_and_keeps_those_there_before(tmp_path: Path) -> None:
    data = payload()
    b = b_torrent(tmp_path / "seed", data)
    nfo = (tmp_path / "seed" / "Show.2024" / "Show.2024.nfo").read_bytes()
    async with service(tmp_path, upload_rate_limit=1) as jobs:  # (its seeder sends nothing of B's data)
        await holding(jobs, tmp_path / "dl" / "A", [("a.mkv", data)])
        got = tmp_path / "dl" / "got" / "Show.2024"
        write(got, [("Show.2024.nfo", nfo)])  # (the job's own small file, there before it)
        async with seeding(tmp_path / "seed", b) as seed:
            job, _ = await jobs.add(magnet_of(b.info_hash), save_path="got",
                                    peers=[("127.0.0.1", seed.listen_port)])
            with anyio.fail_after(30):
                while not (job := jobs.get(job.id)).dedup_bytes:
                    assert job.state not in (JobState.FAILED, JobState.ERROR), job.error
                    await anyio.sleep(0.02)
            assert (got / "Show.2024.1080p.mkv").read_bytes() == data
            await jobs.cancel(job.id, delete_files=True)
        assert not (got / "Show.2024.1080p.mkv").exists()
        assert (got / "Show.2024.nfo").read_bytes() == nfo


async def test_nothing_is_placed_for_a_magnet_asked_to_stop_at_its_metadata(tmp_path: Path) -> None:
    data = payload()
    b = b_torrent(tmp_path / "seed", data, nfo=False)
    async with service(tmp_path) as jobs:
        await holding(jobs, tmp_path / "dl" / "A", [("a.mkv", data)])
        async with seeding(tmp_path / "seed", b) as seed:
            peers = (("127.0.0.1", seed.listen_port),)
            job, _ = await jobs.add(magnet_of(b.info_hash), AddOptions(
                save_path="got", peers=peers, stop_condition="metadata_received"))
            job = await wait_for(jobs, job.id, JobState.PAUSED)
        assert job.dedup_bytes == 0 and job.name == "Show.2024"
        assert not os.path.lexists(tmp_path / "dl" / "got" / "Show.2024" / "Show.2024.1080p.mkv")


async def test_with_dedup_off_a_magnet_downloads_every_byte(tmp_path: Path) -> None:
    data = payload()
    b = b_torrent(tmp_path / "seed", data, nfo=False)
    async with service(tmp_path, dedup="off") as jobs:
        a = make_torrent(write(tmp_path / "dl" / "A", [("a.mkv", data)]), version="v1")
        held, _ = await jobs.add(a.to_bytes())
        await wait_for(jobs, held.id, JobState.SEEDING)
        async with seeding(tmp_path / "seed", b) as seed:
            job, _ = await jobs.add(magnet_of(b.info_hash), save_path="got",
                                    peers=[("127.0.0.1", seed.listen_port)])
            job = await wait_for(jobs, job.id, JobState.SEEDING)
        assert job.dedup_bytes == 0 and job.downloaded >= SIZE


async def test_a_magnet_shows_checking_while_its_files_are_placed(tmp_path: Path) -> None:
    """Its metadata is in: while the files it holds are placed (a copy of a large file takes a
    while), the job is checking, no longer fetching its metadata."""
    data = payload()
    b = b_torrent(tmp_path / "seed", data, nfo=False)
    async with service(tmp_path) as jobs:
        await holding(jobs, tmp_path / "dl" / "A", [("a.mkv", data)])
        news: Any = jobs.manager.before_check.__self__  # type: ignore[union-attr]  # (the service's news)
        placing = news.place
        seen: list[JobState] = []

        async def slow(rec: Any, torrent: Any) -> int:
            await anyio.sleep(0.3)  # (the news of its session's state reaches the job meanwhile)
            seen.append(jobs.get(rec.id).state)
            placed: int = await placing(rec, torrent)
            return placed

        news.place = slow
        async with seeding(tmp_path / "seed", b) as seed:
            job, _ = await jobs.add(magnet_of(b.info_hash), save_path="got",
                                    peers=[("127.0.0.1", seed.listen_port)])
            job = await wait_for(jobs, job.id, JobState.SEEDING)
        assert seen == [JobState.CHECKING], seen
        assert job.dedup_bytes == SIZE, job
