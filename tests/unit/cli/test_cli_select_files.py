"""``--select-file`` / ``--exclude-file``: the paths ``info`` prints are accepted, and a pattern
that matches nothing is reported instead of being ignored."""

from __future__ import annotations

from pathlib import Path

import pytest

from torrent_engine.cli.download import check_specs, select_files
from torrent_engine.errors import MetainfoError
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.storage.create import create_torrent


def multi(tmp_path: Path) -> Torrent:
    payload = tmp_path / "multi"
    (payload / "sub").mkdir(parents=True)
    (payload / "a.bin").write_bytes(b"a" * 1000)
    (payload / "b.bin").write_bytes(b"b" * 1000)
    (payload / "sub" / "c.txt").write_bytes(b"c" * 1000)
    return create_torrent(payload, piece_length=16 * 1024, version="v1")


def test_the_path_info_prints_selects_and_excludes_that_file(tmp_path: Path) -> None:
    torrent = multi(tmp_path)
    paths = ["/".join(f.path) for f in torrent.files if not f.pad]
    assert "multi/a.bin" in paths
    a = paths.index("multi/a.bin")
    chosen = select_files(torrent, ["multi/a.bin"], [])
    assert chosen is not None and [i for i, p in enumerate(chosen) if p] == [a]
    left = select_files(torrent, [], ["multi/a.bin"])
    assert left is not None and left[a] == 0 and sum(left) == len(paths) - 1
    inner = select_files(torrent, ["sub/*.txt"], [])  # the path inside the folder still works
    assert inner is not None and sum(inner) == 1


def test_a_pattern_matching_no_file_is_reported(tmp_path: Path) -> None:
    torrent = multi(tmp_path)
    with pytest.raises(MetainfoError, match="'nothing.bin' matches no file") as caught:
        check_specs([torrent], [], ["nothing.bin"])
    assert caught.value.field == "--exclude-file"
    with pytest.raises(MetainfoError, match="matches no file"):
        check_specs([torrent], ["0,*.iso"], [])
    check_specs([torrent], ["0-1", "multi/sub/c.txt"], ["*.bin"])  # all of these match something
