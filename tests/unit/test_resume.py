"""Resume data: atomic writes, mismatches force a recheck, only verified pieces are kept."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from torrent_engine.errors import BencodeError, StorageError
from torrent_engine.formats.bencode import decode, encode
from torrent_engine.storage import resume
from torrent_engine.storage.resume import (
    ResumeData,
    check_resume_point,
    load_resume,
    save_resume,
    stamp_files,
    trusted_pieces,
)


def _data(tmp_path: Path, files: list[Path | None], pieces: set[int]) -> ResumeData:
    return ResumeData(info_hash=b"h" * 20, save_path=str(tmp_path), have=resume.set_to_bitfield(pieces, 10),
                      num_pieces=10, file_priorities=[1, 0], uploaded=5, downloaded=7, added_time=1,
                      saved_time=2, files=stamp_files(files))


def test_round_trip_and_trust(tmp_path: Path) -> None:
    f = tmp_path / "a.bin"
    f.write_bytes(b"x" * 100)
    data = _data(tmp_path, [f, None], {0, 3, 9})
    path = tmp_path / "state" / "t.resume"
    save_resume(path, data)
    loaded = load_resume(path)
    assert loaded == data
    assert trusted_pieces(loaded, info_hash=b"h" * 20, num_pieces=10, save_path=str(tmp_path),
                          current=stamp_files([f, None])) == {0, 3, 9}


def test_resume_data_holds_no_paused_flag_and_reads_one_written_before(tmp_path: Path) -> None:
    """Whether a torrent is paused is its owner's record, not the resume data's: none is
    written, and a file an earlier version wrote with the flag reads as before, the flag left."""
    data = _data(tmp_path, [None], {2})
    raw = resume.encode_resume(data)
    assert b"6:paused" not in raw
    older = decode(raw)
    assert isinstance(older, dict)
    older[b"paused"] = 1
    path = tmp_path / "t.resume"
    path.write_bytes(encode(older))
    assert load_resume(path) == data


def test_changed_file_or_other_torrent_forces_recheck(tmp_path: Path) -> None:
    f = tmp_path / "a.bin"
    f.write_bytes(b"x" * 100)
    data = _data(tmp_path, [f], {1})
    kw = {"info_hash": b"h" * 20, "num_pieces": 10, "save_path": str(tmp_path)}
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # touched after the save
    assert trusted_pieces(data, current=stamp_files([f]), **kw) is None  # type: ignore[arg-type]
    data = _data(tmp_path, [f], {1})
    with open(f, "ab") as fh:
        fh.write(b"more")
    assert trusted_pieces(data, current=stamp_files([f]), **kw) is None  # type: ignore[arg-type]
    data = _data(tmp_path, [f], {1})
    assert trusted_pieces(data, info_hash=b"o" * 20, num_pieces=10, save_path=str(tmp_path),
                          current=stamp_files([f])) is None
    assert trusted_pieces(data, info_hash=b"h" * 20, num_pieces=10, save_path=str(tmp_path / "x"),
                          current=stamp_files([f])) is None
    f.unlink()
    assert trusted_pieces(data, current=stamp_files([f]), **kw) is None  # type: ignore[arg-type]
    assert trusted_pieces(None, current=[], **kw) is None  # type: ignore[arg-type]


@pytest.mark.parametrize("raw", [b"", b"garbage", b"le", b"d7:versioni1ee", b"d7:versioni9ee"])
def test_corrupt_resume_file_means_recheck(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "t.resume"
    path.write_bytes(raw)
    assert load_resume(path) is None


def test_crash_during_write_leaves_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "t.resume"
    old = _data(tmp_path, [None], {2})
    save_resume(path, old)

    def crash(fd: int) -> None:
        raise OSError("power lost")

    monkeypatch.setattr(resume.os, "fsync", crash)
    new = _data(tmp_path, [None], {2, 3, 4})
    with pytest.raises(StorageError):
        save_resume(path, new)
    monkeypatch.undo()
    assert load_resume(path) == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.resume"]  # no temp file left


def test_bitfield_helpers_match_bep3_order() -> None:
    assert resume.set_to_bitfield({0, 9}, 10) == b"\x80\x40"
    assert resume.bitfield_to_set(b"\x80\x40", 10) == {0, 9}
    assert resume.bitfield_to_set(b"\xff\xff", 10) == set(range(10))  # spare bits ignored


def test_temp_files_of_interrupted_writes_are_removed_at_the_next_start(tmp_path: Path) -> None:
    import tempfile

    from torrent_engine.config import Config
    from torrent_engine.engine.manager import TorrentManager
    from torrent_engine.engine.runtime import run
    from torrent_engine.storage.resume import remove_stale_temp_files, write_atomic

    folder = tmp_path / "torrents"
    write_atomic(folder / "ab.resume", b"d1:ai1ee")
    # what a SIGKILL between mkstemp and the rename leaves behind
    fd, leftover = tempfile.mkstemp(prefix="ab.resume.", suffix=".tmp", dir=folder)
    os.close(fd)
    fd, leftover_top = tempfile.mkstemp(prefix="dht.dat.", suffix=".tmp", dir=tmp_path)
    os.close(fd)
    kept = [folder / "notes.tmp", folder / "ab.resume", tmp_path / "x.12345678.tmp.bak"]
    for path in kept:
        path.write_bytes(b"keep")

    async def start() -> None:
        async with TorrentManager(Config(state_dir=tmp_path, listen_host="127.0.0.1",
                                         dht_enabled=False, port_mapping=False,
                                         lsd_enabled=False, tracker_enabled=False)):
            pass

    run(start)
    assert not Path(leftover).exists() and not Path(leftover_top).exists()
    assert all(path.exists() for path in kept)
    assert remove_stale_temp_files(tmp_path / "absent") == []


def test_seed_mode_and_its_verified_pieces_round_trip(tmp_path: Path) -> None:
    data = _data(tmp_path, [None], {2})
    data.seed_mode = True
    path = tmp_path / "t.resume"
    save_resume(path, data)
    loaded = load_resume(path)
    assert loaded is not None and loaded.seed_mode and loaded.pieces() == {2}
    data.seed_mode = False  # (and resume data written before seed mode existed reads as not in it)
    save_resume(path, data)
    loaded = load_resume(path)
    assert loaded is not None and not loaded.seed_mode


def test_an_unfinished_checks_point_round_trips_and_is_absent_from_a_finished_ones(tmp_path: Path) -> None:
    """``checked-up-to``: written only for an unfinished check; a file without it (every file
    written before it existed) is a finished check's, trusted as a whole as before."""
    f = tmp_path / "a.bin"
    f.write_bytes(b"x" * 100)
    kw = {"info_hash": b"h" * 20, "num_pieces": 10, "save_path": str(tmp_path)}
    finished = _data(tmp_path, [f], {0, 3})
    raw = resume.encode_resume(finished)
    assert b"checked-up-to" not in raw
    path = tmp_path / "t.resume"
    save_resume(path, finished)
    loaded = load_resume(path)
    assert loaded is not None and loaded.checked_up_to is None
    assert trusted_pieces(loaded, current=stamp_files([f]), **kw) == {0, 3}  # type: ignore[arg-type]
    assert check_resume_point(loaded, current=stamp_files([f]), **kw) is None  # type: ignore[arg-type]
    for up_to in (0, 4, 10):
        partial = _data(tmp_path, [f], {0, 3})
        partial.checked_up_to = up_to
        save_resume(path, partial)
        loaded = load_resume(path)
        assert loaded == partial
        assert trusted_pieces(loaded, current=stamp_files([f]), **kw) is None  # type: ignore[arg-type]
        point = check_resume_point(loaded, current=stamp_files([f]), **kw)  # type: ignore[arg-type]
        assert point == ({i for i in (0, 3) if i < up_to}, up_to)


@pytest.mark.parametrize("bad", [-1, 11, 1 << 70, b"5", [5]])
def test_a_checked_up_to_out_of_range_makes_the_file_unusable(tmp_path: Path, bad: object) -> None:
    raw = decode(resume.encode_resume(_data(tmp_path, [None], {2})))
    assert isinstance(raw, dict)
    raw[b"checked-up-to"] = bad
    path = tmp_path / "t.resume"
    path.write_bytes(encode(raw))
    assert load_resume(path) is None  # (checked again, never trusted)
    with pytest.raises(BencodeError):
        resume.decode_resume(encode(raw))


def test_an_unfinished_check_is_not_resumed_when_a_file_changed_or_it_is_for_another_torrent(
        tmp_path: Path) -> None:
    f = tmp_path / "a.bin"
    f.write_bytes(b"x" * 100)
    data = _data(tmp_path, [f], {1})
    data.checked_up_to = 5
    kw = {"info_hash": b"h" * 20, "num_pieces": 10, "save_path": str(tmp_path)}
    assert check_resume_point(data, info_hash=b"h" * 20, num_pieces=11, save_path=str(tmp_path),
                              current=stamp_files([f])) is None
    assert check_resume_point(data, info_hash=b"h" * 20, num_pieces=10, save_path=str(tmp_path / "x"),
                              current=stamp_files([f])) is None
    assert check_resume_point(data, info_hash=b"o" * 20, num_pieces=10, save_path=str(tmp_path),
                              current=stamp_files([f])) is None
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # touched after the check began
    assert check_resume_point(data, current=stamp_files([f]), **kw) is None  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_the_descriptor_reserve_keeps_one_for_each_worker_thread() -> None:
    # each of the worker threads may hold a file open at once (a resume save each): the reserve
    # leaves the API its own room beyond them
    import anyio.to_thread

    from torrent_engine.engine import fdlimit
    assert anyio.to_thread.current_default_thread_limiter().total_tokens <= fdlimit.WORKER_THREADS
    for soft in (64, 200, 1024, 1 << 20):
        assert fdlimit.reserve(soft) >= fdlimit.WORKER_THREADS + 8
