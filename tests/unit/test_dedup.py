"""v2 deduplication: the decisions (policy/dedup.py: which files to take from where, the ways
each mode tries) and the blocking I/O (storage/dedup.py: a file's pieces root as a torrent has
it, placing a file by reflink, hard link or copy with the fallback reported, never half-written)."""

from __future__ import annotations

import errno
import os
import random
from pathlib import Path

import pytest

from torrent_engine.policy.dedup import DEDUP_MODES, DEFAULT_DEDUP_MODE, Known, Wanted, methods, plan
from torrent_engine.storage import dedup as storage_dedup
from torrent_engine.storage.create import create_torrent
from torrent_engine.storage.dedup import PlaceError, file_pieces_root, place_file

R1, R2, R3 = b"\x01" * 32, b"\x02" * 32, b"\x03" * 32


def wanted(index: int, root: bytes | None, length: int = 100, **kw: bool) -> Wanted:
    return Wanted(index=index, pieces_root=root, length=length, wanted=kw.get("wanted", True),
                  special=kw.get("special", False), present=kw.get("present", False))


# -- the decisions ----------------------------------------------------------------------------

def test_each_mode_tries_its_ways_in_order_and_off_tries_none() -> None:
    assert methods("reflink") == ("reflink", "copy")
    assert methods("hardlink") == ("hardlink", "copy")
    assert methods("copy") == ("copy",)
    assert methods("off") == ()
    assert DEFAULT_DEDUP_MODE in DEDUP_MODES and methods(DEFAULT_DEDUP_MODE)[-1] == "copy"
    with pytest.raises(ValueError, match="unknown dedup mode 'symlink'"):
        methods("symlink")  # type: ignore[arg-type]


def test_a_wanted_file_with_a_known_root_and_length_is_placed_from_the_first_source() -> None:
    first, second = Known("/a/x", 100, "job1"), Known("/lib/x", 100, "folder")
    out = plan([wanted(0, R1), wanted(1, R2)], {R1: [first, second]})
    assert [(p.index, p.source) for p in out] == [(0, first)]


def test_nothing_is_placed_that_should_not_be() -> None:
    known = {R1: [Known("/a/x", 100, "j")], R2: [Known("/a/y", 100, "j")], R3: [Known("/a/z", 100, "j")]}
    files = [
        wanted(0, R1, present=True),  # something is there: the check judges it, nothing replaced
        wanted(1, R2, wanted=False),  # skipped by its priority
        wanted(2, R3, special=True),  # a pad file or a link
        wanted(3, None),  # a v1 file: no pieces root
        wanted(4, R1, length=0),  # empty
        wanted(5, R1, length=99),  # same root, another length: not the same file
    ]
    assert plan(files, known) == []


def test_a_source_that_is_the_target_itself_is_passed_over_for_the_next() -> None:
    same, other = Known("/dl/B/x", 100, "j1"), Known("/dl/A/x", 100, "j2")
    out = plan([wanted(0, R1)], {R1: [same, other]}, targets=["/dl/B/x"])
    assert [p.source for p in out] == [other]
    assert plan([wanted(0, R1)], {R1: [same]}, targets=["/dl/B/x"]) == []


# -- a file's pieces root ---------------------------------------------------------------------

@pytest.mark.parametrize("size", [1, 16 * 1024, 16 * 1024 + 1, 100_003, 5 * 32 * 1024])
def test_a_files_pieces_root_is_the_one_its_v2_torrent_has_whatever_the_piece_length(
        tmp_path: Path, size: int) -> None:
    data = random.Random(size).randbytes(size)
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "f.bin").write_bytes(data)
    roots = {create_torrent(tmp_path / "t", piece_length=pl, version="v2").files[0].pieces_root
             for pl in (16 * 1024, 64 * 1024)}
    assert roots == {file_pieces_root(tmp_path / "t" / "f.bin")}
    assert file_pieces_root(tmp_path / "t" / "f.bin", size) in roots
    with pytest.raises(OSError):
        file_pieces_root(tmp_path / "t" / "f.bin", size + 1)  # (shorter than said)


# -- placing a file ---------------------------------------------------------------------------

def source_file(tmp_path: Path, size: int = 70_001) -> tuple[Path, bytes]:
    data = random.Random(3).randbytes(size)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    return src, data


def test_copy_makes_a_second_file_and_the_folders_above_it(tmp_path: Path) -> None:
    src, data = source_file(tmp_path)
    target = tmp_path / "new" / "deep" / "f.bin"
    placed = place_file(src, target, len(data), ["copy"])
    assert placed.method == "copy" and placed.refused == ()
    assert target.read_bytes() == data and os.stat(target).st_ino != os.stat(src).st_ino
    assert [p.name for p in target.parent.iterdir()] == ["f.bin"]


def test_hardlink_makes_a_second_name_for_the_same_file(tmp_path: Path) -> None:
    src, data = source_file(tmp_path)
    target = tmp_path / "f.bin"
    assert place_file(src, target, len(data), ["hardlink", "copy"]).method == "hardlink"
    assert os.stat(target).st_ino == os.stat(src).st_ino


def test_reflink_falls_back_to_a_copy_where_the_file_system_refuses_and_says_why(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src, data = source_file(tmp_path)
    real_ioctl = storage_dedup.fcntl.ioctl

    def refusing(fd: int, request: int, arg: int) -> int:
        if request == storage_dedup.FICLONE:
            raise OSError(errno.EOPNOTSUPP, "Operation not supported")
        return real_ioctl(fd, request, arg)

    monkeypatch.setattr(storage_dedup.fcntl, "ioctl", refusing)
    placed = place_file(src, tmp_path / "f.bin", len(data), ["reflink", "copy"])
    assert placed.method == "copy" and placed.refused == (("reflink", "Operation not supported"),)
    assert (tmp_path / "f.bin").read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin", "src.bin"]  # (no temporary left)


def test_a_link_across_file_systems_falls_back_to_a_copy(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    src, data = source_file(tmp_path)

    def cross(a: object, b: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(storage_dedup.os, "link", cross)
    placed = place_file(src, tmp_path / "f.bin", len(data), ["hardlink", "copy"])
    assert placed.method == "copy" and [w for w, _ in placed.refused] == ["hardlink"]


def test_a_copy_cut_short_leaves_no_file_at_the_target(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    src, data = source_file(tmp_path)

    def failing(*args: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(storage_dedup.os, "copy_file_range", failing)
    with pytest.raises(PlaceError, match="No space left"):
        place_file(src, tmp_path / "f.bin", len(data), ["copy"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src.bin"]


def test_a_source_of_another_length_or_gone_is_refused(tmp_path: Path) -> None:
    src, data = source_file(tmp_path)
    with pytest.raises(PlaceError, match=f"is {len(data)} bytes, not {len(data) + 1}"):
        place_file(src, tmp_path / "f.bin", len(data) + 1, ["copy"])
    with pytest.raises(PlaceError, match="cannot read"):
        place_file(tmp_path / "gone", tmp_path / "f.bin", 10, ["copy"])
    with pytest.raises(PlaceError, match="no way"):
        place_file(src, tmp_path / "f.bin", len(data), [])
    assert not (tmp_path / "f.bin").exists()


def test_a_copy_stopped_by_its_owner_leaves_nothing(tmp_path: Path) -> None:
    import threading

    src, data = source_file(tmp_path)
    stop = threading.Event()
    stop.set()
    with pytest.raises(PlaceError, match="stopped"):
        place_file(src, tmp_path / "f.bin", len(data), ["copy"], stop)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src.bin"]


def test_what_a_crash_left_beside_the_targets_is_removed_and_nothing_else(tmp_path: Path) -> None:
    from torrent_engine.storage.dedup import remove_temporaries

    folder, other = tmp_path / "got", tmp_path / "other"
    folder.mkdir()
    other.mkdir()
    for name in ("a.bin", ".a.bin.0123abcd.dedup", ".a.bin.89efcdab.dedup", ".b.bin.0123abcd.dedup",
                 ".a.bin.0123abcz.dedup", ".a.bin.0123abc.dedup", ".a.bin.dedup", "a.bin.0123abcd.dedup",
                 ".c.bin.0123abcd.dedup"):
        (folder / name).write_bytes(b"x")
    (folder / ".a.bin.ffffffff.dedup").mkdir()  # (not a file: left)
    (folder / ".a.bin.eeeeeeee.dedup").symlink_to(other / "kept")  # (a link: left, nor followed)
    (other / "kept").write_bytes(b"keep")
    (other / ".a.bin.0123abcd.dedup").write_bytes(b"x")  # (beside no target)
    removed = remove_temporaries([folder / "a.bin", str(folder / "b.bin"), tmp_path / "gone" / "a.bin"])
    assert sorted(p.name for p in removed) == [".a.bin.0123abcd.dedup", ".a.bin.89efcdab.dedup",
                                               ".b.bin.0123abcd.dedup"]
    assert sorted(p.name for p in folder.iterdir()) == [
        ".a.bin.0123abc.dedup", ".a.bin.0123abcz.dedup", ".a.bin.dedup", ".a.bin.eeeeeeee.dedup",
        ".a.bin.ffffffff.dedup", ".c.bin.0123abcd.dedup", "a.bin", "a.bin.0123abcd.dedup"]
    assert (other / "kept").read_bytes() == b"keep" and (other / ".a.bin.0123abcd.dedup").exists()


def test_a_temporary_is_named_as_its_remover_knows_it(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from torrent_engine.storage.dedup import remove_temporaries

    src, data = source_file(tmp_path)
    seen: list[Path] = []

    def stopped_at_rename(tmp: Path, dst: Path) -> None:
        seen.append(Path(tmp))
        raise KeyboardInterrupt  # (the process ends there: the temporary removed on the way out)

    monkeypatch.setattr(storage_dedup.os, "replace", stopped_at_rename)
    with pytest.raises(KeyboardInterrupt):
        place_file(src, tmp_path / "got" / "f.bin", len(data), ["copy"])
    assert not seen[0].exists()
    seen[0].write_bytes(data)  # (as a crash there would have left it)
    assert remove_temporaries([tmp_path / "got" / "f.bin"]) == seen and not seen[0].exists()


def test_the_placings_written_down_are_cleared_at_their_end_and_recovered_after_a_crash(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import json
    import logging

    from torrent_engine.jobs.disk.placing import PLACING_FILE, PlacingJournal

    path = tmp_path / PLACING_FILE
    got = tmp_path / "got"
    got.mkdir()
    journal = PlacingJournal(path)
    journal.begin("job1", [str(got / "a.bin"), str(got / "b.bin")])
    journal.begin("job2", [str(got / "c.bin")])
    assert json.loads(path.read_text())["placing"] == {"job1": [str(got / "a.bin"), str(got / "b.bin")],
                                                       "job2": [str(got / "c.bin")]}
    journal.end("job2")
    assert list(json.loads(path.read_text())["placing"]) == ["job1"]
    (got / ".a.bin.0123abcd.dedup").write_bytes(b"half")  # (job1's copy under way when the run stopped)
    (got / ".c.bin.0123abcd.dedup").write_bytes(b"x")  # (job2's ended: not looked for)
    caplog.set_level(logging.INFO, logger="torrent_engine.jobs.dedup")
    assert PlacingJournal(path).recover() == [got / ".a.bin.0123abcd.dedup"]
    assert not path.exists() and "left by a placement the last run did not finish" in caplog.text
    assert sorted(p.name for p in got.iterdir()) == [".c.bin.0123abcd.dedup"]
    journal.end("job1")  # (the last one: the file goes)
    assert not path.exists()
    path.write_text("{not json")
    assert PlacingJournal(path).recover() == [] and not path.exists() and "is unreadable" in caplog.text
    assert PlacingJournal(None).recover() == []


def test_a_placing_that_cannot_be_written_down_is_refused_and_forgotten(tmp_path: Path) -> None:
    from torrent_engine.jobs.disk.placing import PlacingJournal

    journal = PlacingJournal(tmp_path / "no such folder" / "dedup-placing.json")
    with pytest.raises(OSError):
        journal.begin("job1", [str(tmp_path / "a.bin")])
    journal.end("job1")  # (nothing to end: no write tried)
