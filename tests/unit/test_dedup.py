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
