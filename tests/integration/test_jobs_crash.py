"""A process running a JobService killed with SIGKILL mid-download: restarted, the job continues."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import anyio
import pytest

from torrent_engine.jobs import FINISHED_STATES, JobService, JobState
from torrent_engine.resume import load_resume
from torrent_engine.session import Session

from .helpers import loopback_config, make_payload, make_torrent, same_files

pytestmark = pytest.mark.anyio

DAEMON = textwrap.dedent("""
    import sys
    import anyio
    from torrent_engine.config import Config
    from torrent_engine.jobs import JobService

    torrent_file, root, state, port = sys.argv[1:5]

    async def main():
        cfg = Config(listen_host="127.0.0.1", tracker_enabled=False,
                     dht_enabled=False, port_mapping=False, lsd_enabled=False, resume_save_interval=0.2,
                     stats_interval=0.1, seed=False)
        async with JobService(cfg, download_root=root, state_dir=state) as jobs:
            job, _ = await jobs.add(torrent_file, save_path="dl", peers=[("127.0.0.1", int(port))])
            print(job.id, flush=True)
            await anyio.sleep_forever()

    anyio.run(main)
""")


@pytest.mark.slow
async def test_sigkill_mid_download_then_restart_continues(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed", [("big.bin", 3_000_000), ("x.txt", 5)]),
                           piece_length=16 * 1024)
    torrent_file = tmp_path / "t.torrent"
    torrent_file.write_bytes(torrent.to_bytes())
    state = tmp_path / "state"
    resume_path = state / "torrents" / f"{torrent.info_hash.hex()}.resume"
    slow = loopback_config(upload_rate_limit=500_000)
    async with Session(torrent, tmp_path / "seed", config=slow) as seeder:
        await seeder.wait_ready()
        proc = subprocess.Popen([sys.executable, "-c", DAEMON, str(torrent_file), str(tmp_path / "root"),
                                 str(state), str(seeder.listen_port)], stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            job_id = (await anyio.to_thread.run_sync(proc.stdout.readline)).strip()
            with anyio.fail_after(60):
                while True:  # until the resume data holds some pieces, but far from all
                    data = load_resume(resume_path)
                    if data is not None and 5 < len(data.pieces()) < torrent.num_pieces // 2:
                        break
                    assert proc.poll() is None, "the service process ended early"
                    await anyio.sleep(0.05)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        record = json.loads((state / "jobs" / f"{job_id}.json").read_text())
        assert record["state"] in ("queued", "checking", "downloading")
        cfg = loopback_config(seed=False)
        async with JobService(cfg, download_root=tmp_path / "root", state_dir=state) as jobs:
            assert jobs.lost == []
            assert jobs.get(job_id).state not in FINISHED_STATES
            session = jobs.manager.get(torrent.info_hash)
            assert session is not None
            await session.wait_ready()
            assert len(session.have) > 5  # it goes on from the verified pieces
            with anyio.fail_after(90):
                while jobs.get(job_id).state not in FINISHED_STATES:
                    await anyio.sleep(0.1)
            job = jobs.get(job_id)
            assert job.state is JobState.COMPLETED, job.error
            assert not same_files(torrent, tmp_path / "seed", tmp_path / "root" / "dl")


RESUMER = textwrap.dedent("""
    import sys
    import anyio
    from torrent_engine.config import Config
    from torrent_engine.jobs import JobService

    torrent_file, root, state, port = sys.argv[1:5]

    async def main():
        cfg = Config(listen_host="127.0.0.1", tracker_enabled=False,
                     dht_enabled=False, port_mapping=False, lsd_enabled=False, seed=False)
        async with JobService(cfg, download_root=root, state_dir=state) as jobs:
            job, _ = await jobs.add(torrent_file, save_path="dl", paused=True,
                                    peers=[("127.0.0.1", int(port))])
            while jobs.get(job.id).state.value != "paused":
                await anyio.sleep(0.02)
            await jobs.resume(job.id)
            print(job.id, flush=True)  # acknowledged: the parent kills at once
            await anyio.sleep_forever()

    anyio.run(main)
""")


async def test_a_resume_acknowledged_survives_a_sigkill(tmp_path: Path) -> None:
    """Added paused, resumed: once ``resume`` has answered, a SIGKILL does not bring it back paused."""
    torrent = make_torrent(make_payload(tmp_path / "seed", [("big.bin", 3_000_000)]), piece_length=16 * 1024)
    torrent_file = tmp_path / "t.torrent"
    torrent_file.write_bytes(torrent.to_bytes())
    state = tmp_path / "state"
    slow = loopback_config(upload_rate_limit=300_000)
    async with Session(torrent, tmp_path / "seed", config=slow) as seeder:
        await seeder.wait_ready()
        proc = subprocess.Popen([sys.executable, "-c", RESUMER, str(torrent_file), str(tmp_path / "root"),
                                 str(state), str(seeder.listen_port)], stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            with anyio.fail_after(60):
                job_id = (await anyio.to_thread.run_sync(proc.stdout.readline)).strip()
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        assert job_id
        async with JobService(loopback_config(seed=False), download_root=tmp_path / "root",
                              state_dir=state) as jobs:
            job = jobs.get(job_id)
            assert not job.options.paused
            session = jobs.manager.get(torrent.info_hash)
            assert session is not None
            await session.wait_ready()
            with anyio.fail_after(30):  # (paused, it would wait here for ever)
                while jobs.get(job_id).state not in (JobState.DOWNLOADING, JobState.COMPLETED):
                    await anyio.sleep(0.05)
            assert not session.paused
