"""Resume data written by a Session claims only pieces whose data is durable: the data files are
fsynced before the resume file that counts their pieces as had."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import anyio
import pytest

from torrent_engine import events as ev
from torrent_engine.config import Config
from torrent_engine.errors import SessionError
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.session import Session
from torrent_engine.storage.create import create_torrent
from torrent_engine.storage.resume import ResumeData, ResumeFile, load_resume, save_resume

pytestmark = pytest.mark.anyio


def record_fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """From now on, the path of every file fsynced, in order."""
    fsynced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        fsynced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    return fsynced


async def test_pieces_in_saved_resume_data_were_fsynced_first(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    payload = tmp_path / "seed" / "p"
    payload.mkdir(parents=True)
    (payload / "a").write_bytes(os.urandom(100_000))
    torrent = create_torrent(payload, piece_length=32 * 1024, version="v1")
    resume_path = tmp_path / "state" / "t.resume"
    cfg = Config(listen_host="127.0.0.1", listen_port=0, dht_enabled=False, port_mapping=False,
                 lsd_enabled=False,
                 tracker_enabled=False)
    piece = (payload / "a").read_bytes()[:32 * 1024]
    with anyio.fail_after(20):
        async with Session(torrent, tmp_path / "dl", config=cfg, resume_path=resume_path) as s:
            await s.wait_ready()  # nothing on disk: downloading, no peers
            # piece 0 as a web seed's blocks bring it: assembled, hashed, written, counted as had
            seed = ("http://127.0.0.1:1/", 0)
            s.picker.peer_have_all(seed)
            assert s.parts.webseeds.pick_run(seed, 1, lowest=True) == [0]
            await s.parts.webseeds.deliver(seed, 0, memoryview(piece))
            while 0 not in s.have:
                await anyio.sleep(0.01)
            fsynced = record_fsyncs(monkeypatch)
            await s.checker.save()
            saved = load_resume(resume_path)
            assert saved is not None and saved.pieces() == {0}
            resume_write = next(i for i, p in enumerate(fsynced) if Path(p).name.startswith(resume_path.name))
            data_file = str((tmp_path / "dl" / "p" / "a").resolve())
            assert data_file in fsynced[:resume_write]


async def test_resume_data_written_at_stop_follows_an_fsync_of_the_data(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A leecher that completes and stops (seed=False): the resume data it writes (at completion,
    at stop) comes after an fsync of the data it claims."""
    payload = tmp_path / "seed" / "p"
    payload.mkdir(parents=True)
    (payload / "a").write_bytes(os.urandom(200_000))
    torrent = create_torrent(payload, piece_length=32 * 1024, version="v1")
    cfg = Config(listen_host="127.0.0.1", listen_port=0, dht_enabled=False, port_mapping=False,
                 lsd_enabled=False,
                 tracker_enabled=False)
    resume_path = tmp_path / "state" / "t.resume"
    data_file = str((tmp_path / "dl" / "p" / "a").resolve())
    fsynced = record_fsyncs(monkeypatch)
    with anyio.fail_after(60):
        async with Session(torrent, tmp_path / "seed", config=cfg) as seeder:
            await seeder.wait_ready()
            leech_cfg = Config(listen_host="127.0.0.1", listen_port=0, dht_enabled=False, port_mapping=False,
                               lsd_enabled=False,
                               tracker_enabled=False, seed=False)
            async with Session(torrent, tmp_path / "dl", config=leech_cfg, resume_path=resume_path,
                               peers=[("127.0.0.1", seeder.listen_port)]) as leecher:
                await leecher.wait_completed()
    saved = load_resume(resume_path)
    assert saved is not None and len(saved.pieces()) == torrent.num_pieces
    resume_writes = [i for i, p in enumerate(fsynced) if Path(p).name.startswith(resume_path.name)]
    assert resume_writes and data_file in fsynced[:resume_writes[0]]


async def test_stopped_during_the_recheck_the_next_start_rechecks(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Complete data on disk, no resume data: a stop while checking must not leave resume data
    that says "no piece" with the files' current stamps (the restart would trust it and download
    everything again)."""

    import torrent_engine.session.checking as session_module

    payload = tmp_path / "seed" / "p"
    payload.mkdir(parents=True)
    (payload / "a").write_bytes(os.urandom(200_000))
    torrent = create_torrent(payload, piece_length=32 * 1024, version="v1")
    cfg = Config(listen_host="127.0.0.1", listen_port=0, dht_enabled=False, port_mapping=False,
                 lsd_enabled=False,
                 tracker_enabled=False)
    resume_path = tmp_path / "state" / "t.resume"
    real_recheck = session_module.recheck
    checking = anyio.Event()

    async def endless_recheck(*args: object, **kwargs: object) -> object:
        checking.set()
        await anyio.sleep_forever()

    monkeypatch.setattr(session_module, "recheck", endless_recheck)
    with anyio.fail_after(30):
        async with Session(torrent, tmp_path / "seed", config=cfg, resume_path=resume_path):
            await checking.wait()  # then stopped, mid-check
        monkeypatch.setattr(session_module, "recheck", real_recheck)
        async with Session(torrent, tmp_path / "seed", config=cfg, resume_path=resume_path) as again:
            await again.wait_ready()
            assert len(again.have) == torrent.num_pieces


def two_files(tmp_path: Path) -> tuple[Path, Torrent]:
    payload = tmp_path / "seed" / "p"
    payload.mkdir(parents=True)
    (payload / "a").write_bytes(os.urandom(40_000))
    (payload / "b").write_bytes(os.urandom(40_000))
    return payload, create_torrent(payload, piece_length=16 * 1024, version="v1")


def idle_config() -> Config:
    return Config(listen_host="127.0.0.1", listen_port=0, dht_enabled=False, port_mapping=False,
                  lsd_enabled=False,
                  tracker_enabled=False)


async def test_resume_data_of_another_save_path_is_not_applied(tmp_path: Path) -> None:
    """Saved for save path A (file b skipped, totals of A's run): a session in save path B starts
    with every file wanted, its own totals, and says it did not resume."""
    _, torrent = two_files(tmp_path)
    resume_path = tmp_path / "state" / "t.resume"
    save_resume(resume_path, ResumeData(info_hash=torrent.info_hash, save_path=str(tmp_path / "A"),
                                        have=bytes(1), num_pieces=torrent.num_pieces,
                                        file_priorities=[4, 0], downloaded=12345, uploaded=678))
    with anyio.fail_after(20):
        async with Session(torrent, tmp_path / "B", config=idle_config(), resume_path=resume_path) as s:
            await s.wait_ready()
            assert s.file_priorities == [4, 4]
            assert (s.downloaded, s.uploaded, s.resumed) == (0, 0, False)


async def test_priorities_set_before_the_check_win_over_stored_ones(tmp_path: Path) -> None:
    """An earlier run in the same save path selected file a; this one selects file b."""
    _, torrent = two_files(tmp_path)
    resume_path = tmp_path / "state" / "t.resume"
    dl = tmp_path / "dl"
    save_resume(resume_path, ResumeData(info_hash=torrent.info_hash, save_path=str(dl.resolve()),
                                        have=bytes(1), num_pieces=torrent.num_pieces,
                                        file_priorities=[1, 0]))
    with anyio.fail_after(20):
        s = Session(torrent, dl, config=idle_config(), resume_path=resume_path)
        s.set_file_priorities([0, 1])
        async with s:
            await s.wait_ready()
            assert s.file_priorities == [0, 1] and s.resumed
            assert s.status().total_wanted == 40_000
    with anyio.fail_after(20):  # nothing said: the stored selection (now b) applies
        async with Session(torrent, dl, config=idle_config(), resume_path=resume_path) as s:
            await s.wait_ready()
            assert s.file_priorities == [0, 1]


async def test_selecting_only_an_empty_file_creates_it(tmp_path: Path) -> None:
    payload = tmp_path / "seed" / "p"
    payload.mkdir(parents=True)
    (payload / "data").write_bytes(os.urandom(40_000))
    (payload / "empty").write_bytes(b"")
    torrent = create_torrent(payload, piece_length=16 * 1024, version="v1")
    names = [f.path[-1] for f in torrent.files]
    with anyio.fail_after(20):
        s = Session(torrent, tmp_path / "dl", config=idle_config())
        s.set_file_priorities([1 if name == "empty" else 0 for name in names])
        async with s:
            await s.wait_completed()
    assert (tmp_path / "dl" / "p" / "empty").is_file()
    assert not (tmp_path / "dl" / "p" / "data").exists()


async def test_a_restart_from_resume_data_reads_the_disk_in_one_worker_thread_hop(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A seeding torrent restarting from its resume data reads that file and its files' sizes and
    times in one hop to a worker thread (no other for a torrent without zero-length files): at
    10 000 torrents every hop of a start is 10 000 round trips between the loop and the threads."""
    payload = tmp_path / "dl" / "p"
    payload.mkdir(parents=True)
    (payload / "a").write_bytes(os.urandom(100_000))
    (payload / "b").write_bytes(os.urandom(50_000))
    torrent = create_torrent(payload, piece_length=32 * 1024, version="v1")
    resume_path = tmp_path / "state" / "t.resume"
    cfg = Config(listen_host="127.0.0.1", listen_port=0, dht_enabled=False, port_mapping=False,
                 lsd_enabled=False, tracker_enabled=False)
    with anyio.fail_after(20):
        async with Session(torrent, tmp_path / "dl", config=cfg, resume_path=resume_path) as s:
            await s.wait_ready()  # checked by hashing: seeding, resume data saved
            assert s.state.value == "seeding"
        hops: list[str] = []
        real_run_sync = anyio.to_thread.run_sync

        async def counted(func, *args, **kwargs):  # type: ignore[no-untyped-def]
            hops.append(getattr(func, "__qualname__", repr(func)))
            return await real_run_sync(func, *args, **kwargs)

        monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
        async with Session(torrent, tmp_path / "dl", config=cfg, resume_path=resume_path) as s:
            await s.wait_ready()
            monkeypatch.undo()
            assert s.state.value == "seeding" and not s.checker.rechecked
    assert len(hops) == 1, hops


class StoppedCheck:
    """Counts the pieces the checks read (``verify._check_batch``, one piece a batch) and holds
    the reads once ``hold_at`` are read (a run to be stopped midway) until ``release``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, piece_length: int) -> None:
        import torrent_engine.storage.verify as verify

        real = verify._check_batch
        self.read: list[int] = []
        self.hold_at: int | None = None
        self.gate = threading.Event()
        lock = threading.Lock()  # (the check's batches are read by several threads at once)

        def counting(torrent: Torrent, storage: object, batch: list[int]) -> list[bool]:
            with lock:  # (counted and judged at once: two batches let past at hold_at - 1 read one too many)
                held = self.hold_at is not None and len(self.read) >= self.hold_at
                if not held:
                    self.read.extend(batch)
            if held:
                self.gate.wait(30)
                with lock:
                    self.read.extend(batch)
            return real(torrent, storage, batch)  # type: ignore[arg-type]

        monkeypatch.setattr(verify, "RECHECK_BATCH_BYTES", piece_length)
        monkeypatch.setattr(verify, "_check_batch", counting)

    async def stop_midway(self, torrent: Torrent, save_path: Path, resume_path: Path, at: int) -> int:
        """A session checks ``save_path`` and is stopped once ``at`` pieces are read; where its
        check got, as the resume data says."""
        self.read.clear()
        self.hold_at, self.gate = at, threading.Event()
        async with Session(torrent, save_path, config=idle_config(), resume_path=resume_path):
            while len(self.read) < at:
                await anyio.sleep(0.01)
            self.gate.set()  # (the reads under way end; the stop then lands mid-check)
        self.hold_at = None
        saved = load_resume(resume_path)
        assert saved is not None and saved.checked_up_to is not None
        assert 0 < saved.checked_up_to < torrent.num_pieces
        return saved.checked_up_to


def many_pieces(tmp_path: Path) -> tuple[Path, Torrent]:
    """64 pieces of 16 KiB on disk, pieces 1 and 60 corrupt."""
    payload = tmp_path / "seed" / "p"
    payload.mkdir(parents=True)
    data = bytearray(os.urandom(64 * 16 * 1024))
    (payload / "a").write_bytes(data)
    torrent = create_torrent(payload, piece_length=16 * 1024, version="v1")
    for piece in (1, 60):
        data[piece * 16 * 1024 + 7] ^= 0xFF
    (payload / "a").write_bytes(data)
    return payload, torrent


async def test_a_check_stopped_midway_goes_on_from_where_it_got_at_the_next_start(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    payload, torrent = many_pieces(tmp_path)
    reads = StoppedCheck(monkeypatch, torrent.piece_length)
    resume_path = tmp_path / "state" / "t.resume"
    bus = ev.EventBus()
    progress: list[float] = []
    bus.subscribe(ev.SessionChecking, lambda e: progress.append(e.progress))
    with anyio.fail_after(60):
        up_to = await reads.stop_midway(torrent, tmp_path / "seed", resume_path, at=20)
        reads.read.clear()
        async with Session(torrent, tmp_path / "seed", config=idle_config(), resume_path=resume_path,
                           events=bus) as again:
            await again.wait_ready()
            assert sorted(reads.read) == list(range(up_to, torrent.num_pieces))  # only the rest
            assert set(again.have) == set(range(torrent.num_pieces)) - {1, 60}  # as a whole check finds
            assert again.rechecked
    assert progress[0] == up_to / torrent.num_pieces and progress[-1] == 1.0
    saved = load_resume(resume_path)
    assert saved is not None and saved.pieces() == set(range(torrent.num_pieces)) - {1, 60}


async def test_a_file_touched_after_a_check_was_stopped_makes_the_next_start_hash_everything(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    payload, torrent = many_pieces(tmp_path)
    reads = StoppedCheck(monkeypatch, torrent.piece_length)
    resume_path = tmp_path / "state" / "t.resume"
    with anyio.fail_after(60):
        await reads.stop_midway(torrent, tmp_path / "seed", resume_path, at=20)
        st = (payload / "a").stat()
        os.utime(payload / "a", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        reads.read.clear()
        async with Session(torrent, tmp_path / "seed", config=idle_config(),
                           resume_path=resume_path) as again:
            await again.wait_ready()
            assert sorted(reads.read) == list(range(torrent.num_pieces))
            assert set(again.have) == set(range(torrent.num_pieces)) - {1, 60}


async def test_a_check_stopped_midway_in_another_save_path_is_not_gone_on_with(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same files copied elsewhere: the check saved for the first place says nothing of them."""
    payload, torrent = many_pieces(tmp_path)
    reads = StoppedCheck(monkeypatch, torrent.piece_length)
    resume_path = tmp_path / "state" / "t.resume"
    with anyio.fail_after(60):
        await reads.stop_midway(torrent, tmp_path / "seed", resume_path, at=20)
        (tmp_path / "copy" / "p").mkdir(parents=True)
        shutil.copy2(payload / "a", tmp_path / "copy" / "p" / "a")  # (the same size and mtime)
        reads.read.clear()
        async with Session(torrent, tmp_path / "copy", config=idle_config(),
                           resume_path=resume_path) as again:
            await again.wait_ready()
            assert sorted(reads.read) == list(range(torrent.num_pieces))


async def test_a_check_under_way_saves_how_far_it_got_before_any_stop(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash mid-check (no stop to save at) loses only what was hashed since the last save."""
    import torrent_engine.session.checking as session_module

    _, torrent = many_pieces(tmp_path)
    reads = StoppedCheck(monkeypatch, torrent.piece_length)
    monkeypatch.setattr(session_module, "CHECK_SAVE_INTERVAL", 0.0)
    resume_path = tmp_path / "state" / "t.resume"
    reads.hold_at = 20
    with anyio.fail_after(60):
        async with Session(torrent, tmp_path / "seed", config=idle_config(), resume_path=resume_path) as s:
            try:
                saved = load_resume(resume_path)
                while saved is None or not saved.checked_up_to:
                    await anyio.sleep(0.01)
                    saved = load_resume(resume_path)
                assert saved.checked_up_to <= 20 and s.state.value == "checking"
                assert saved.pieces() == set(range(saved.checked_up_to)) - {1}
            finally:
                reads.gate.set()


def test_a_session_told_two_places_for_its_resume_data_is_refused(tmp_path: Path) -> None:
    _, torrent = two_files(tmp_path)
    with pytest.raises(SessionError, match="resume_path and resume both"):
        Session(torrent, tmp_path, resume_path=tmp_path / "a.resume",
                resume=ResumeFile(tmp_path / "b.resume"))
