"""Processes killed with SIGKILL: a JobService mid-download (restarted, the job continues), the job
store mid-write and mid-migration (nothing acknowledged or migrated is lost)."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import anyio
import pytest

from tests.kept import kept_resume
from torrent_engine.jobs import FINISHED_STATES, JobService, JobState
from torrent_engine.jobs.model import JobOptions
from torrent_engine.jobs.store import JobRecord, JobStore
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
                    data = kept_resume(state, torrent.info_hash)
                    if data is not None and 5 < len(data.pieces()) < torrent.num_pieces // 2:
                        break
                    assert proc.poll() is None, "the service process ended early"
                    await anyio.sleep(0.05)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        record = json.loads(JobStore(state).read(job_id) or b"null")
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


WRITER = textwrap.dedent("""
    import sys
    from torrent_engine.jobs.model import JobOptions, JobState
    from torrent_engine.jobs.store import JobRecord, JobStore

    store = JobStore(__import__("pathlib").Path(sys.argv[1]))
    options = JobOptions(save_path="/dl", files=None, sequential=False, paused=True, peers=(),
                         client=None, download_limit=0, upload_limit=0)
    for n in range(1_000_000):
        job_id = f"{n % 50:016x}"
        rec = JobRecord(id=job_id, info_hash=f"{n % 50 + 1:040x}", name=str(n), source="torrent",
                        options=options, state=JobState.PAUSED, created_at=1.0, updated_at=float(n))
        if n % 7 == 6:
            store.delete(job_id)
            print("D", job_id, n, flush=True)
        else:
            store.save(rec)
            print("S", job_id, n, flush=True)  # acknowledged: the write has returned
""")


@pytest.mark.parametrize("after", [0.3, 0.7, 1.1])
async def test_a_sigkill_loses_no_acknowledged_change_of_the_store(tmp_path: Path, after: float) -> None:
    """A process saving and deleting records as fast as it can, killed at some moment: every
    change it had been told was done is in the database (a later one may be too)."""
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    try:
        with anyio.fail_after(60):  # (started: the database is open)
            first = await anyio.to_thread.run_sync(proc.stdout.readline, abandon_on_cancel=True)
        await anyio.sleep(after)
    finally:  # (killed on every path)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    lines = [first, *proc.stdout.read().splitlines(keepends=True)]
    acked: dict[str, int] = {}
    for line in lines:
        if line.endswith("\n"):  # (a line cut by the kill was not acknowledged)
            _, job_id, n = line.split()
            acked[job_id] = int(n)
    assert len(acked) == 50, len(lines)
    records, lost = JobStore(tmp_path).load_all()
    assert lost == []
    stored = {r.id: int(r.name) for r in records}
    last = max(acked.values())

    def result(n: int) -> int | None:  # what change n left: deleted, or the record named n
        return None if n % 7 == 6 else n

    for job_id, n in acked.items():
        allowed = {result(n)}
        if int(job_id, 16) == (last + 1) % 50:  # the change in flight at the kill may be in too
            allowed.add(result(last + 1))
        assert stored.get(job_id) in allowed, (job_id, n, stored.get(job_id))


MIGRATOR = textwrap.dedent("""
    import sys
    from pathlib import Path
    from torrent_engine.jobs.model import JobOptions
from torrent_engine.jobs.store import JobRecord, JobStore

    print("start", flush=True)
    store = JobStore(Path(sys.argv[1]))
    records, lost = store.load_all()
    print(len(records), store.migrated, flush=True)
""")


@pytest.mark.parametrize("after", [0.05, 0.25, 0.5, 1.0])
async def test_a_migration_killed_at_any_moment_loses_no_record(tmp_path: Path, after: float) -> None:
    """The JSON files are renamed only once the database holds every record: a SIGKILL during the
    migration leaves them in place (the next start migrates) or all in the database."""
    state = tmp_path / "state"
    (state / "jobs").mkdir(parents=True)
    options = JobOptions(save_path="/dl", files=None, sequential=False, paused=True, peers=(),
                         client=None, download_limit=0, upload_limit=0)
    count = 4000
    for n in range(count):
        rec = JobRecord(id=f"{n:016x}", info_hash=f"{n + 1:040x}", name=f"job {n}", source="torrent",
                        options=options, state=JobState.CANCELLED, created_at=float(n), updated_at=float(n),
                        completed_at=float(n))
        (state / "jobs" / f"{rec.id}.json").write_bytes(JobStore.encode(rec))
    proc = subprocess.Popen([sys.executable, "-c", MIGRATOR, str(state)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    try:
        with anyio.fail_after(60):
            await anyio.to_thread.run_sync(proc.stdout.readline, abandon_on_cancel=True)
        await anyio.sleep(after)
    finally:  # (killed on every path)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    db = state / "jobs.sqlite3"
    rows = 0
    if db.exists():
        conn = sqlite3.connect(db)
        try:
            rows = conn.execute("SELECT count(*) FROM jobs").fetchone()[0]
        except sqlite3.OperationalError:
            rows = 0  # (killed before the tables were made)
        conn.close()
    if (state / "jobs").is_dir():
        assert len(list((state / "jobs").glob("*.json"))) == count  # not renamed: all still there
        assert rows in (0, count)
    else:
        assert rows == count and (state / "jobs.json-migrated").is_dir()
    records, lost = JobStore(state).load_all()
    assert lost == [] and len(records) == count
    assert not (state / "jobs").exists()


MOVER = textwrap.dedent("""
    import sys, threading, time
    from pathlib import Path
    import anyio
    from torrent_engine.config import Config
    from torrent_engine.jobs import JobService, JobState
    from torrent_engine.engine.manager import TorrentManager
    from torrent_engine.jobs.disk import move, relocate

    torrent_file, root, state, moment = sys.argv[1:5]

    def stop_here(name):
        if name == moment:  # the parent kills the process now, in the middle of the move
            print("at", name, flush=True)
            time.sleep(3600)

    # the path a move to another file system takes (the data is copied, then the originals go)
    move._same_device = lambda src, folder: False
    copied = [0]
    copy_file = move._copy_file

    def copy_one(src, dst):
        copied[0] += 1
        if moment == "half-a-file" and copied[0] == 3:  # a copy cut in its middle
            data = src.read_bytes()
            move._partial(dst).write_bytes(data[:len(data) // 2])
            stop_here(moment)
        copy_file(src, dst)
        stop_here(f"copied {copied[0]}")

    move._copy_file = copy_one
    copy_files, remove_sources = relocate.copy_files, relocate.remove_sources

    def copy_all(old, new, files):
        stop_here("stopped")  # the session stopped, no file copied yet
        copy_files(old, new, files)
        stop_here("copied all")

    def remove_all(pending):
        stop_here("committed")
        if moment == "removing":  # some originals removed, the others not yet
            remove_sources(move.PendingMove(pending.old, pending.new, pending.files[:5]))
            stop_here(moment)
        remove_sources(pending)

    relocate.copy_files, relocate.remove_sources = copy_all, remove_all

    async def main():
        cfg = Config(listen_host="127.0.0.1", tracker_enabled=False, dht_enabled=False,
                     port_mapping=False, lsd_enabled=False, seed=True)
        async with JobService(cfg, download_root=root, state_dir=state) as jobs:
            job, _ = await jobs.add(torrent_file, save_path="fast")
            while jobs.get(job.id).state is not JobState.SEEDING:
                await anyio.sleep(0.02)
            print(job.id, flush=True)
            await jobs.set_location(job.id, "disk")
            stop_here("moved")

    anyio.run(main)
""")


@pytest.mark.parametrize("moment", ["stopped", "copied 1", "half-a-file", "copied 8", "copied all",
                                    "committed", "removing", "moved"])
async def test_a_sigkill_during_a_move_to_another_file_system_loses_nothing(tmp_path: Path,
                                                                            moment: str) -> None:
    """A seeding job moved to another file system (its 15 files copied, then the originals
    removed), the daemon killed at a moment of the move: after a restart the job seeds again,
    whole where its record points (the old place before the move was committed, the new one
    after), with no copy left at the other place and nothing downloaded again."""
    files = [(f"part{n:02d}.bin", 150_000 + 7_000 * n) for n in range(15)]
    reference = make_payload(tmp_path / "ref", files)
    root = tmp_path / "root"
    make_payload(root / "fast", files)
    torrent = make_torrent(reference, piece_length=32 * 1024)
    torrent_file = tmp_path / "t.torrent"
    torrent_file.write_bytes(torrent.to_bytes())
    state = tmp_path / "state"
    proc = subprocess.Popen([sys.executable, "-c", MOVER, str(torrent_file), str(root), str(state), moment],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        with anyio.fail_after(60):
            job_id = (await anyio.to_thread.run_sync(proc.stdout.readline)).strip()
            line = await anyio.to_thread.run_sync(proc.stdout.readline)
        assert line == f"at {moment}\n", (line, proc.poll())
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    async with JobService(loopback_config(seed=True), download_root=root, state_dir=state) as jobs:
        with anyio.fail_after(60):
            while jobs.get(job_id).state is not JobState.SEEDING:
                assert jobs.get(job_id).state not in FINISHED_STATES, jobs.get(job_id).error
                await anyio.sleep(0.05)
        job = jobs.get(job_id)
        place = Path(job.options.save_path)
        assert place == (root / ("fast" if moment in ("stopped", "copied 1", "half-a-file", "copied 8",
                                                      "copied all") else "disk")).resolve()
        assert same_files(torrent, reference.parent, place) == []
        assert job.downloaded == 0 and job.progress == 1.0
        other = root / ("disk" if place.name == "fast" else "fast")
        left = [p for p in other.rglob("*") if p.is_file()] if other.exists() else []
        assert left == []  # no stray copy (nor a partial one) at the other place


STREAMER = textwrap.dedent("""
    import os, signal, sys
    import anyio
    from torrent_engine.config import Config
    from torrent_engine.jobs import JobService, JobState

    root, state = sys.argv[1:3]

    async def main():
        cfg = Config(listen_host="127.0.0.1", tracker_enabled=False, dht_enabled=False,
                     port_mapping=False, lsd_enabled=False, max_active_downloads=1)
        async with JobService(cfg, download_root=root, state_dir=state) as jobs:
            first, _ = await jobs.add("magnet:?xt=urn:btih:" + "a" * 40 + "&dn=first")
            second, _ = await jobs.add("magnet:?xt=urn:btih:" + "b" * 40 + "&dn=second")
            while jobs.get(second.id).state is not JobState.QUEUED:
                await jobs.enforce()
                await anyio.sleep(0.02)
            await jobs.stream_session(second.id)  # someone watches it: force-started
            print(first.id, second.id, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)  # a crash the moment the reader has its session

    anyio.run(main)
""")


async def test_a_job_force_started_for_a_stream_stays_so_after_a_sigkill(tmp_path: Path) -> None:
    """A job the queue held back, force-started because a reader opened it: once the reader has
    its session, a SIGKILL does not bring the job back held in the queue."""
    state = tmp_path / "state"
    proc = subprocess.Popen([sys.executable, "-c", STREAMER, str(tmp_path / "root"), str(state)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        with anyio.fail_after(60):
            line = await anyio.to_thread.run_sync(proc.stdout.readline)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    first_id, second_id = line.split()
    async with JobService(loopback_config(max_active_downloads=1), download_root=tmp_path / "root",
                          state_dir=state) as jobs:
        await jobs.enforce()
        job = jobs.get(second_id)
        assert job.features.force_start
        assert job.state is not JobState.QUEUED and jobs.get(first_id).state is not JobState.QUEUED


COMPLETER = textwrap.dedent("""
    import sys, time
    import anyio
    from torrent_engine.config import Config
    from torrent_engine.jobs import JobService, JobState
    from torrent_engine.engine.manager import TorrentManager
    from torrent_engine.jobs.disk import move, relocate

    torrent_file, root, state, moment = sys.argv[1:5]

    def stop_here(name):
        if name == moment:  # the parent kills the process now, in the middle of the move
            print("at", name, flush=True)
            time.sleep(3600)

    move._same_device = lambda src, folder: False  # (the incomplete folder on another file system)
    copied = [0]
    copy_file = move._copy_file

    def copy_one(src, dst):
        copied[0] += 1
        if moment == "half-a-file" and copied[0] == 3:
            data = src.read_bytes()
            move._partial(dst).write_bytes(data[:len(data) // 2])
            stop_here(moment)
        copy_file(src, dst)
        stop_here(f"copied {copied[0]}")

    move._copy_file = copy_one
    copy_files, remove_sources = relocate.copy_files, relocate.remove_sources
    keep_resume = TorrentManager.keep_resume

    def copy_all(old, new, files):
        stop_here("stopped")
        copy_files(old, new, files)
        stop_here("copied all")

    async def resume_kept(self, info_hash, data, **kwargs):
        if data.save_path.endswith("done"):  # (the move's: its first save for the new save path)
            stop_here("committed")  # the record points at the save path; its resume data not yet
        await keep_resume(self, info_hash, data, **kwargs)

    def remove_all(pending):
        if moment == "removing":
            remove_sources(move.PendingMove(pending.old, pending.new, pending.files[:5]))
            stop_here(moment)
        remove_sources(pending)

    relocate.copy_files, relocate.remove_sources = copy_all, remove_all
    TorrentManager.keep_resume = resume_kept

    async def main():
        cfg = Config(listen_host="127.0.0.1", tracker_enabled=False, dht_enabled=False,
                     port_mapping=False, lsd_enabled=False, seed=True)
        async with JobService(cfg, download_root=root, state_dir=state) as jobs:
            job, _ = await jobs.add(torrent_file, save_path="done", download_path="part")
            print(job.id, flush=True)
            # (its data is complete in the incomplete folder: checked, it moves at once)
            while jobs.get(job.id).options.download_path is not None:
                await anyio.sleep(0.02)
            stop_here("moved")

    anyio.run(main)
""")


@pytest.mark.parametrize("moment", ["stopped", "copied 1", "half-a-file", "copied all", "committed",
                                    "removing", "moved"])
async def test_a_sigkill_during_the_move_of_a_completed_download_loses_nothing(tmp_path: Path,
                                                                               moment: str) -> None:
    """A download complete in its incomplete folder (on another file system), moved to its save
    path, the daemon killed at a moment of that move: after a restart the job seeds from its
    save path, whole there, with nothing left in the incomplete folder and nothing downloaded
    again (a move undone is made again once the data is checked where it was)."""
    files = [(f"part{n:02d}.bin", 150_000 + 7_000 * n) for n in range(15)]
    reference = make_payload(tmp_path / "ref", files)
    root = tmp_path / "root"
    make_payload(root / "part", files)
    torrent = make_torrent(reference, piece_length=32 * 1024)
    torrent_file = tmp_path / "t.torrent"
    torrent_file.write_bytes(torrent.to_bytes())
    state = tmp_path / "state"
    proc = subprocess.Popen([sys.executable, "-c", COMPLETER, str(torrent_file), str(root), str(state),
                             moment], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        with anyio.fail_after(60):
            job_id = (await anyio.to_thread.run_sync(proc.stdout.readline)).strip()
            line = await anyio.to_thread.run_sync(proc.stdout.readline)
        assert line == f"at {moment}\n", (line, proc.poll())
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    async with JobService(loopback_config(seed=True), download_root=root, state_dir=state) as jobs:
        # (a move undone is made again now: its record points at the save path from its commit
        # on, while the originals are removed and the session started there after it; the move
        # is over once the job seeds from there; a move the start finished leaves a complete seed
        # there, dormant: without a session until a peer asks for it)
        done = (root / "done").resolve()
        with anyio.fail_after(60):
            while (job := jobs.get(job_id)).state is not JobState.SEEDING \
                    or job.options.download_path is not None \
                    or ((session := jobs.manager.get(job.info_hash)) is not None
                        and Path(session.save_path) != done):
                assert job.state not in FINISHED_STATES, job.error
                await anyio.sleep(0.05)
            if session is not None:
                await session.wait_ready()  # (its verified pieces read from its resume data)
        job = jobs.get(job_id)
        assert Path(job.options.save_path) == done
        assert same_files(torrent, reference.parent, root / "done") == []
        assert job.downloaded == 0 and job.progress == 1.0
        left = [p for p in (root / "part").rglob("*") if p.is_file()]
        assert left == []  # no stray copy (nor a partial one) in the incomplete folder
