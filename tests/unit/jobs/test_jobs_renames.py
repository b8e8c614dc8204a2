"""Renaming a job's files and folders: which paths are refused, and where every file goes."""

from __future__ import annotations

import pytest

from torrent_engine.jobs.disk.renames import check_path, plan_rename
from torrent_engine.jobs.model import InvalidJobRequest, JobConflict

FILES = [["Top", "a.bin"], ["Top", "sub", "b.bin"], ["Top", ".pad", "0"], ["Top", "sub", "c.txt"]]
PADS = [2]


@pytest.mark.parametrize("bad", ["", "/etc/passwd", "C:/x", "a/../../b", "../b", "a//b", "a/./b", "a/",
                                 "a\\b", "a\x00b", "x" * 256, "a/" * 2100])
def test_a_path_that_could_leave_the_folder_is_refused_naming_the_field(bad: str) -> None:
    with pytest.raises(InvalidJobRequest) as err:
        check_path(bad, "newPath")
    assert err.value.field == "newPath"


def test_a_relative_path_is_its_components() -> None:
    assert check_path("Top/sub/b.bin", "newPath") == ("Top", "sub", "b.bin")


def test_a_file_gets_its_new_path_and_no_other_moves() -> None:
    moves = plan_rename(FILES, PADS, ("Top", "a.bin"), ("Top", "renamed", "a2.bin"), folder=False)
    assert moves == {0: ("Top", "renamed", "a2.bin")}


def test_a_folder_moves_every_file_below_it() -> None:
    moves = plan_rename(FILES, PADS, ("Top", "sub"), ("Top", "new"), folder=True)
    assert moves == {1: ("Top", "new", "b.bin"), 3: ("Top", "new", "c.txt")}


def test_renaming_the_top_folder_moves_every_file_but_the_pads() -> None:
    moves = plan_rename(FILES, PADS, ("Top",), ("Other",), folder=None)
    assert moves == {0: ("Other", "a.bin"), 1: ("Other", "sub", "b.bin"), 3: ("Other", "sub", "c.txt")}


def test_a_path_that_names_nothing_is_refused_naming_the_old_path() -> None:
    with pytest.raises(InvalidJobRequest) as err:
        plan_rename(FILES, PADS, ("Top", "nope"), ("Top", "x"), folder=None, fields=("oldPath", "newPath"))
    assert err.value.field == "oldPath"
    with pytest.raises(InvalidJobRequest):  # (a folder is not a file)
        plan_rename(FILES, PADS, ("Top", "sub"), ("Top", "x"), folder=False)
    with pytest.raises(InvalidJobRequest):  # (nor a pad file one to rename)
        plan_rename(FILES, PADS, ("Top", ".pad", "0"), ("Top", "x"), folder=False)


@pytest.mark.parametrize(("old", "new", "folder"), [
    (("Top", "a.bin"), ("Top", "sub", "b.bin"), False),  # onto another file
    (("Top", "a.bin"), ("Top", "sub"), False),  # onto a folder
    (("Top", "a.bin"), ("Top", "sub", "b.bin", "x"), False),  # below a file
    (("Top", "sub"), ("Top", "a.bin"), True),  # a folder onto a file
])
def test_a_new_path_taken_by_another_file_of_the_job_is_refused(old: tuple[str, ...], new: tuple[str, ...],
                                                                 folder: bool) -> None:
    with pytest.raises(JobConflict) as err:
        plan_rename(FILES, PADS, old, new, folder=folder, fields=("oldPath", "newPath"))
    assert err.value.field == "newPath"


def test_a_folder_is_not_moved_into_itself() -> None:
    with pytest.raises(InvalidJobRequest):
        plan_rename(FILES, PADS, ("Top", "sub"), ("Top", "sub", "deeper"), folder=True)


def test_the_same_path_moves_nothing() -> None:
    assert plan_rename(FILES, PADS, ("Top", "a.bin"), ("Top", "a.bin"), folder=False) == {}
