"""The folders above a claimed path, found by its separators, are the ones ``os.path.dirname``
finds a level at a time (the file system's root left out)."""

from __future__ import annotations

import os

import pytest

from torrent_engine.jobs.disk.claims import PathClaims, _folders


def by_dirname(path: str) -> list[str]:
    out: list[str] = []
    parent = os.path.dirname(path)
    while parent and parent != os.path.dirname(parent):
        out.append(parent)
        parent = os.path.dirname(parent)
    return out


@pytest.mark.parametrize("path", ["/a/b/c", "/a", "a/b", "a", "/x//y/z", "/", "//a", "/a/b/",
                                  "/srv/data/tv/Show S01/e01.mkv"])
def test_the_folders_above_a_path_are_dirnames(path: str) -> None:
    assert _folders(path) == by_dirname(path)


def test_a_file_where_another_job_has_a_folder_is_an_overlap() -> None:
    claims = PathClaims()
    claims.claim("one", ["/d/show/e01.mkv"])
    clash = claims.overlap("two", ["/d/show"])
    assert clash is not None and clash.other == "one" and clash.theirs == "/d/show/e01.mkv"
    assert claims.overlap("two", ["/d/other/e01.mkv"]) is None
