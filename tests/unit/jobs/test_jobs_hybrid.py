"""A hybrid torrent added by its v2 info-hash alone (a ``btmh`` magnet): the job is known by that
hash, and so is its session after anything that starts it again (a move, a recheck)."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from tests.integration.helpers import loopback_config, make_payload, make_torrent
from torrent_engine.jobs import JobService, JobState
from torrent_engine.session import Session

pytestmark = pytest.mark.anyio


def keys(jobs: JobService) -> list[str]:
    return [s.info_hash_hex for s in jobs.manager.sessions]


async def _seeding(jobs: JobService, job_id: str) -> None:
    with anyio.fail_after(20):
        while (job := jobs.get(job_id)).state is not JobState.SEEDING or job.progress < 1.0:
            await jobs.tick()
            await anyio.sleep(0.02)


async def test_a_hybrid_added_by_its_v2_hash_keeps_its_session_through_a_move_and_a_recheck(
        tmp_path: Path) -> None:
    payload = make_payload(tmp_path / "seed", (("a.bin", 300_000), ("b.bin", 100_000)), name="hybrid")
    torrent = make_torrent(payload, piece_length=32 * 1024, version="hybrid")
    assert torrent.info_hash_v2 is not None
    async with Session(torrent, tmp_path / "seed", config=loopback_config()) as seeder:
        await seeder.wait_ready()
        uri = f"magnet:?xt=urn:btmh:1220{torrent.info_hash_v2.hex()}&dn=hybrid"
        async with JobService(loopback_config(), download_root=tmp_path / "dl",
                              state_dir=tmp_path / "state") as jobs:
            job, _ = await jobs.add(uri, peers=[("127.0.0.1", seeder.listen_port)])
            assert job.info_hash == torrent.info_hash_v2[:20].hex() != torrent.info_hash.hex()
            await _seeding(jobs, job.id)
            moved = await jobs.set_location(job.id, "elsewhere")
            assert jobs.manager.get(job.info_hash) is not None, keys(jobs)
            assert moved.options.save_path.endswith("/elsewhere")
            await _seeding(jobs, job.id)
            await jobs.recheck(job.id)
            assert jobs.manager.get(job.info_hash) is not None, keys(jobs)
            await _seeding(jobs, job.id)
            paused = await jobs.pause(job.id)  # (its own session: paused, not a second one started)
            assert paused.state is JobState.PAUSED and len(jobs.manager.sessions) == 1
        async with JobService(loopback_config(), download_root=tmp_path / "dl",
                              state_dir=tmp_path / "state") as again:
            await again.resume(job.id)  # (complete: a dormant seed again, under the job's hash)
            await _seeding(again, job.id)
            assert await again.stream_session(job.id) is not None  # (woken, as by a peer)
            assert again.manager.get(job.info_hash) is not None
