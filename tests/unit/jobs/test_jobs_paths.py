"""Save-path confinement and the clean-up of a cancelled job's files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from torrent_engine.jobs import JobConflict, SavePathError
from torrent_engine.jobs.disk.move import Taking, copy_files, plan_move, recover, same_bytes
from torrent_engine.jobs.disk.paths import confine, delete_job_files, existing_files, missing_dirs
from torrent_engine.jobs.store import PendingMove


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    r.mkdir()
    return r.resolve()


def test_confine_accepts_paths_inside(root: Path) -> None:
    assert confine(root, None) == root
    assert confine(root, "") == root
    assert confine(root, "a/b") == root / "a" / "b"
    assert confine(root, "a/../b") == root / "b"
    assert confine(root, str(root / "c")) == root / "c"
    (root / "real").mkdir()
    os.symlink(root / "real", root / "alias")
    assert confine(root, "alias/x") == root / "real" / "x"  # a link that stays inside is fine


@pytest.mark.parametrize("bad", ["..", "../x", "a/../../x", "/etc", "/", "x\x00y"])
def test_confine_refuses_paths_outside(root: Path, bad: str) -> None:
    with pytest.raises(SavePathError) as info:
        confine(root, bad)
    assert info.value.field == "save_path"


def test_confine_refuses_symlinks_out_and_loops(root: Path, tmp_path: Path) -> None:
    os.symlink(tmp_path, root / "out")
    os.symlink(root / "loop", root / "loop")
    for bad in ("out", "out/x", "loop/x"):
        with pytest.raises(SavePathError):
            confine(root, bad)


def test_confine_refuses_names_and_paths_the_file_system_cannot_hold(root: Path) -> None:
    # (the first stat of such a path raised ENAMETOOLONG: the API answered 500)
    assert confine(root, "n" * 255) == root / ("n" * 255)
    assert confine(root, "é" * 127) == root / ("é" * 127)  # 254 bytes
    for bad in ("n" * 256, "é" * 128, "a/" + "n" * 300 + "/b", "d/" * 2100):
        with pytest.raises(SavePathError) as info:
            confine(root, bad)
        assert info.value.field == "save_path" and "bytes" in str(info.value)


def test_missing_dirs(root: Path) -> None:
    (root / "a").mkdir()
    assert missing_dirs(root, root) == []
    assert missing_dirs(root, root / "a") == []
    assert missing_dirs(root, root / "a" / "b" / "c") == [str(root / "a" / "b"), str(root / "a" / "b" / "c")]


def test_delete_keeps_what_was_there_and_what_is_not_the_jobs(root: Path, tmp_path: Path) -> None:
    save = root / "dl"
    (save / "t" / "sub").mkdir(parents=True)
    (save / "t" / "old.bin").write_text("there before")  # one of the torrent's files, already there
    (save / "t" / "sub" / "new.bin").write_text("partial")
    (save / "t" / "stranger.txt").write_text("not the torrent's")
    (save / "t" / "deep" / "er").mkdir(parents=True)
    (save / "t" / "deep" / "er" / "x.bin").write_text("partial")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_text("keep")
    os.symlink(outside, save / "t" / "link")  # swapped in for a folder of the torrent
    paths = [("t", "old.bin"), ("t", "sub", "new.bin"), ("t", "deep", "er", "x.bin"), ("t", "link", "victim")]
    assert existing_files(save, paths) == ["t/old.bin", "t/sub/new.bin", "t/deep/er/x.bin", "t/link/victim"]
    delete_job_files(save, paths, keep=["t/old.bin"], created_dirs=[])
    assert sorted(p.name for p in (save / "t").iterdir()) == ["link", "old.bin", "stranger.txt"]
    assert (outside / "victim").read_text() == "keep"


def test_delete_removes_the_folders_the_job_created(root: Path) -> None:
    save = root / "a" / "b"
    created = missing_dirs(root, save)
    (save / "t").mkdir(parents=True)
    (save / "t" / "f").write_text("x")
    delete_job_files(save, [("t", "f")], keep=[], created_dirs=created)
    assert list(root.iterdir()) == []


def test_delete_leaves_a_created_folder_that_now_holds_other_files(root: Path) -> None:
    save = root / "a"
    created = missing_dirs(root, save)
    save.mkdir()
    (save / "f").write_text("x")
    (save / "someone-elses").write_text("y")
    delete_job_files(save, [("f",)], keep=[], created_dirs=created)
    assert [p.name for p in save.iterdir()] == ["someone-elses"]


@pytest.mark.parametrize(("taking", "theirs", "files", "found", "dropped"), [
    ("move", b"x", None, None, None),  # (the file in the way: refused)
    ("keep", b"y", ["mine.bin"], ["both.bin", "theirs.bin"], []),
    ("find", b"y", [], ["both.bin", "theirs.bin"], []),
    ("same", b"x", ["mine.bin"], ["both.bin", "theirs.bin"], ["both.bin"]),  # (its copy dropped)
    ("same", b"y", None, None, None),  # (other bytes: refused)
])
def test_a_moves_plan_takes_files_already_there_as_it_is_asked(
        root: Path, taking: Taking, theirs: bytes, files: list[str] | None, found: list[str] | None,
        dropped: list[str] | None) -> None:
    """A file the job has at the old place with one in its way at the new (``theirs`` its bytes
    there): a move refuses it, "keep" takes the one there (qBittorrent's), "find" moves nothing
    and takes what is there, "same" takes it when it holds the bytes of the job's copy, which
    goes; a file it has not at the old place that is at the new one is found in every case."""
    old, new = root / "old", root / "new"
    for folder, names in ((old, ("mine.bin", "both.bin")), (new, ("both.bin", "theirs.bin"))):
        folder.mkdir()
        for name in names:
            (folder / name).write_bytes(b"x")
    (new / "both.bin").write_bytes(theirs)
    paths = [("mine.bin",), ("both.bin",), ("theirs.bin",), ("nowhere.bin",)]
    if files is None:
        with pytest.raises(JobConflict) as info:
            plan_move(old, new, paths, taking)
        assert info.value.field == "location" and "both.bin" in str(info.value)
    else:
        assert plan_move(old, new, paths, taking) == (files, found, dropped)


def test_the_same_bytes_are_read_through(root: Path) -> None:
    a, b = root / "a", root / "b"
    a.write_bytes(b"z" * (3 << 20))
    b.write_bytes(b"z" * ((3 << 20) - 1) + b"q")
    assert not same_bytes(a, b)  # (the last byte of the last chunk differs)
    b.write_bytes(b"z" * (3 << 20))
    assert same_bytes(a, b)
    b.write_bytes(b"z" * (3 << 20) + b"z")
    assert not same_bytes(a, b)  # (longer)
    (root / "link").symlink_to(a)
    assert not same_bytes(root / "link", a) and not same_bytes(a, root / "gone")
    os.link(a, root / "hard")
    assert same_bytes(a, root / "hard")


@pytest.mark.parametrize("committed", [True, False])
def test_the_copies_a_move_drops_go_once_it_is_committed_and_stay_if_it_is_undone(
        root: Path, committed: bool) -> None:
    old, new = root / "old", root / "new"
    for folder in (old, new):
        (folder / "d").mkdir(parents=True)
        (folder / "d" / "same.bin").write_bytes(b"s")
    (old / "d" / "moved.bin").write_bytes(b"m")
    move = PendingMove(str(old), str(new), ("d/moved.bin",), dropped=("d/same.bin",))
    assert PendingMove.from_json(move.to_json()) == move  # (as the record keeps it)
    copy_files(old, new, move.files)
    recover(move, committed)
    assert (new / "d" / "same.bin").read_bytes() == b"s"  # (the one it took: never touched)
    assert (old / "d" / "same.bin").exists() is not committed
    assert (old / "d").exists() is not committed  # (left empty once committed: removed)
    assert (new / "d" / "moved.bin").exists() is committed


def test_an_adds_look_finds_each_file_and_its_size_and_a_seed_is_there_at_full_sizes(root: Path) -> None:
    """The add's one look at its save path gives each file found and its size (a link that
    leads nowhere, or into a loop, is there at no size); a new seed's files are all there, as a
    second look at each would say, only when each wanted one is at its full size."""
    from torrent_engine.jobs.disk.paths import files_found, ground
    from torrent_engine.jobs.queueing.dormant import wanted_files_there, wanted_there
    from torrent_engine.jobs.snapshot import learn_layout
    from torrent_engine.jobs.store import JobOptions, JobRecord, JobState
    from torrent_engine.storage.create import create_torrent

    made = root / "made" / "t"
    made.mkdir(parents=True)
    (made / "a.bin").write_bytes(b"a" * 40_000)
    (made / "b.bin").write_bytes(b"b" * 1_000)
    torrent = create_torrent(made, piece_length=16 * 1024)
    save = root / "dl"
    (save / "t").mkdir(parents=True)
    os.symlink(save / "t" / "nowhere", save / "t" / "dangling")
    os.symlink(save / "t" / "loop", save / "t" / "loop")
    assert files_found(save, [("t", "dangling"), ("t", "loop"), ("t", "absent"), ("t", "a.bin", "x")]) == {
        "t/dangling": -1, "t/loop": -1}
    options = JobOptions(save_path=str(save), files=None, sequential=False, paused=False, peers=(),
                         client=None, download_limit=0, upload_limit=0)
    rec = JobRecord(id="0" * 16, info_hash=torrent.info_hash.hex(), name="t", source="torrent",
                    options=options, state=JobState.QUEUED, created_at=0.0, updated_at=0.0)
    learn_layout(rec, torrent)
    for content, there in ((b"a" * 40_000, True), (b"a" * 39_999, False)):
        (save / "t" / "a.bin").write_bytes(content)
        (save / "t" / "b.bin").write_bytes(b"b" * 1_000)
        found = ground(root, "dl", torrent, "original")
        assert found.preexisting == ["t/a.bin", "t/b.bin"]
        assert found.sizes == {"t/a.bin": len(content), "t/b.bin": 1_000}
        assert wanted_there(rec, found.sizes) is there is wanted_files_there(rec)
    rec.file_priorities = (0, 1)  # (a.bin not wanted: its size does not matter)
    assert wanted_there(rec, ground(root, "dl", torrent, "original").sizes) is True
    (save / "t" / "b.bin").unlink()
    assert wanted_there(rec, ground(root, "dl", torrent, "original").sizes) is False
