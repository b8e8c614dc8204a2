"""Seed mode through the job service and its front ends (our API's ``seed_mode``, qBittorrent's
``skip_checking``): a job added so is seeding at once without its data being read, says how many
pieces are verified, and keeps seed mode and those pieces across a restart."""

from __future__ import annotations

from pathlib import Path

import anyio
import httpx
import pytest

from tests.unit.jobs.test_jobs_scale import checks_in_threads
from torrent_engine.jobs import JobService, JobState
from torrent_engine.storage import Storage

from .api_helpers import TOKEN, qbt_added, running_api
from .helpers import loopback_config, make_payload, make_torrent

pytestmark = pytest.mark.anyio

FILES = (("a.bin", 200_003), ("b.bin", 90_001))
PL = 32 * 1024


def count_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The pieces read from any storage from now on (blocks and whole pieces)."""
    reads: list[int] = []
    whole, block = Storage.read_piece_blocking, Storage.read_block

    def read_piece_blocking(self: Storage, index: int) -> bytes:
        reads.append(index)
        return whole(self, index)

    async def read_block(self: Storage, index: int, begin: int, length: int) -> bytes:
        reads.append(index)
        return await block(self, index, begin, length)

    monkeypatch.setattr(Storage, "read_piece_blocking", read_piece_blocking)
    monkeypatch.setattr(Storage, "read_block", read_block)
    return reads


async def test_a_seed_mode_job_seeds_at_once_reads_nothing_and_keeps_seed_mode_across_a_restart(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, state = tmp_path / "dl", tmp_path / "state"
    torrent = make_torrent(make_payload(root / "x", FILES), piece_length=PL)
    reads = count_reads(monkeypatch)
    cfg = loopback_config(state_dir=state)
    async with JobService(cfg, download_root=root, state_dir=state) as jobs:
        job, created = await jobs.add(torrent.to_bytes(), save_path="x", seed_mode=True)
        assert created
        # seeding as the add returns, a dormant seed: no session until something asks for it
        job = jobs.get(job.id)
        assert job.state is JobState.SEEDING and jobs.manager.get(job.info_hash) is None
        assert job.progress == 1.0 and job.seed_mode and job.options.seed_mode and job.verified_pieces is None
        session = await jobs.stream_session(job.id)  # (woken: what a peer asking for it does too)
        assert session is not None
        await session.wait_ready()
        assert (jobs.get(job.id).verified_pieces, jobs.get(job.id).num_pieces) == (0, torrent.num_pieces)
        assert reads == []  # seeding, and not a byte of the data read
        async with session.open_file(0) as f:  # a piece read (for a reader, as for a peer) is verified
            await f.read(10)
        assert jobs.get(job.id).verified_pieces == 1 and reads == [0]
    async with JobService(cfg, download_root=root, state_dir=state) as jobs:
        with anyio.fail_after(10):
            while (job := jobs.get(job.id)).state is not JobState.SEEDING:
                await anyio.sleep(0.01)
        # (a dormant seed: no session, so how many pieces were verified is not known until one starts)
        assert jobs.manager.get(job.info_hash) is None
        assert job.seed_mode and job.options.seed_mode and job.verified_pieces is None
        session = await jobs.stream_session(job.id)
        assert session is not None
        await session.wait_ready()
        job = jobs.get(job.id)
        assert job.seed_mode and job.options.seed_mode and job.verified_pieces == 1
        assert reads == [0]  # the restart read nothing either


async def test_a_recheck_ends_seed_mode(tmp_path: Path) -> None:
    root, state = tmp_path / "dl", tmp_path / "state"
    torrent = make_torrent(make_payload(root / "x", FILES), piece_length=PL)
    cfg = loopback_config(state_dir=state)
    async with JobService(cfg, download_root=root, state_dir=state) as jobs:
        job, _ = await jobs.add(torrent.to_bytes(), save_path="x", seed_mode=True)
        with anyio.fail_after(10):
            while (job := jobs.get(job.id)).state is not JobState.SEEDING:
                await anyio.sleep(0.01)
        await jobs.recheck(job.id)
        with anyio.fail_after(20):
            while (job := jobs.get(job.id)).state is not JobState.SEEDING:
                await anyio.sleep(0.01)
        assert not job.seed_mode and not job.options.seed_mode
        # (hashed without a session, a dormant seed again: its resume data says what was found)
        resume = jobs.manager.saved_resume(torrent.info_hash)
        assert jobs.manager.get(job.info_hash) is None
        assert resume is not None and len(resume.pieces()) == torrent.num_pieces


async def test_our_api_adds_in_seed_mode(tmp_path: Path) -> None:
    import base64
    async with running_api(tmp_path) as api:
        torrent = make_torrent(make_payload(api.download_root / "x", FILES), piece_length=PL)
        r = await api.client.post("/api/jobs", json={
            "source": base64.b64encode(torrent.to_bytes()).decode(), "save_path": "x", "seed_mode": True})
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["options"]["seed_mode"] is True
        with anyio.fail_after(10):
            while body["state"] != "seeding":
                await anyio.sleep(0.02)
                body = (await api.client.get(f"/api/jobs/{body['id']}")).json()
        assert body["seed_mode"] is True and body["progress"] == 1.0
        assert body["verified_pieces"] is None  # (dormant: no session has verified a piece yet)
        r = await api.client.post("/api/jobs", json={"source": "magnet:?xt=urn:btih:" + "ab" * 20,
                                                      "seed_mode": "yes"})
        assert r.status_code == 400 and r.json()["field"] == "seed_mode"


async def test_qbittorrent_skip_checking_makes_a_seeding_job_at_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reads = count_reads(monkeypatch)
    checks_in_threads(monkeypatch)  # (the checked one's reads made in this process, to be counted)
    async with running_api(tmp_path) as api:
        save = api.download_root / "x"
        skipped = make_torrent(make_payload(save, FILES, name="skipped"), piece_length=PL)
        checked = make_torrent(make_payload(save, FILES, name="checked", seed=2), piece_length=PL)
        async with httpx.AsyncClient(base_url=api.url, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            r = await c.post("/api/v2/torrents/add", data={"savepath": str(save), "skip_checking": "true"},
                             files={"torrents": ("skipped.torrent", skipped.to_bytes())})
            qbt_added(r)
            seen: list[tuple[str, float]] = []
            with anyio.fail_after(10):
                while not seen or seen[-1][0] != "stalledUP":
                    info = (await c.get("/api/v2/torrents/info", params={"hashes": skipped.info_hash.hex()}))
                    seen += [(t["state"], t["progress"]) for t in info.json()]
            assert seen[-1] == ("stalledUP", 1) and not any(s.startswith("checking") for s, _ in seen)
            assert reads == []  # seeding, nothing read
            r = await c.post("/api/v2/torrents/add", data={"savepath": str(save), "skip_checking": "false"},
                             files={"torrents": ("checked.torrent", checked.to_bytes())})
            qbt_added(r)
            with anyio.fail_after(20):  # (the checked one: the list's order is not the adds')
                while not any(j.name == "checked" and j.state is JobState.SEEDING
                              for j in api.service.list()):
                    await anyio.sleep(0.02)
        assert len(reads) >= checked.num_pieces  # (without it, the data is hashed at the add)
        jobs = {j.name: j for j in api.service.list()}
        assert jobs["skipped"].seed_mode and not jobs["checked"].seed_mode
