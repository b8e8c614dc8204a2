"""The incomplete files' suffix, pure parts: which files of an add carry it, where each file is on
disk and what its views name it, the suffixes the setting takes; and the session's watch that says
when each file is complete (its last piece verified, in any order, shared pieces too)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.helpers import small_v1
from torrent_engine.formats.bitfield import Bitfield
from torrent_engine.jobs.disk.partial import partial_at_add
from torrent_engine.jobs.model import InvalidJobRequest, JobOptions, JobState
from torrent_engine.jobs.snapshot import actual_paths, shown_paths
from torrent_engine.jobs.store import JobRecord
from torrent_engine.jobs.validate import check_suffix
from torrent_engine.session.file_watch import FileWatch


def test_an_adds_files_not_on_disk_carry_the_suffix_on_disk_not_in_its_views(tmp_path: Path) -> None:
    torrent = small_v1(tmp_path, [("a.bin", 40_000), ("sub/b.bin", 20_000), ("empty", 0)], "t")
    shown = [f.path for f in torrent.files]
    assert shown == [("t", "a.bin"), ("t", "empty"), ("t", "sub", "b.bin")]
    assert partial_at_add(torrent, {}, "") == ()
    assert partial_at_add(torrent, {}, ".!qB") == (0, 2)  # (an empty file is whole from the start)
    assert partial_at_add(torrent, {"t/a.bin": 40_000}, ".!qB") == (2,)
    rec = JobRecord(id="0123456789abcdef", info_hash="ab" * 20, name="t", source="torrent",
                    options=JobOptions(save_path=str(tmp_path), files=None, sequential=False, paused=False,
                                       peers=(), client=None, download_limit=0, upload_limit=0),
                    state=JobState.DOWNLOADING,
                    created_at=0.0, updated_at=0.0)
    rec.partial, rec.partial_suffix = (2,), ".part"
    rec.file_paths = actual_paths(shown, {2}, ".part")
    assert rec.file_paths == (("t", "a.bin"), ("t", "empty"), ("t", "sub", "b.bin.part"))
    assert shown_paths(rec) == tuple(shown)
    restored = JobRecord.from_json(rec.to_json())
    assert (restored.partial, restored.partial_suffix, restored.file_paths) == \
        ((2,), ".part", rec.file_paths)
    rec.partial = ()
    assert shown_paths(rec) is rec.file_paths  # (none carries it: the paths themselves)


@pytest.mark.parametrize("value", ["", ".!qB", ".part", ".incomplete", "." + "x" * 15, ".ß"])
def test_suffixes_taken(value: str) -> None:
    assert check_suffix(value) == value


@pytest.mark.parametrize("value", [".", "part", ".a b", " .part", ".a/b", ".a\\b", ".a\x00", ".\n",
                                   "." + "x" * 16, None, 1, True, [".part"]])
def test_suffixes_refused_naming_the_setting(value: object) -> None:
    with pytest.raises(InvalidJobRequest) as refused:
        check_suffix(value)
    assert refused.value.field == "partial_file_suffix"


def test_the_watch_says_each_file_complete_once_at_its_last_piece(tmp_path: Path) -> None:
    # 16 KiB pieces: a.bin pieces 0-2 (its end shares piece 2 with b.bin), b.bin 2-3, c.bin 4
    torrent = small_v1(tmp_path, [("a.bin", 40_000), ("b.bin", 25_000), ("c.bin", 10_000)], "t")
    have = Bitfield(torrent.num_pieces, [0])
    done: list[int] = []
    watch = FileWatch(torrent, have, [0, 1, 2, 1], done.append)
    assert watch.complete == [] and watch.waiting == {0, 1, 2}
    for piece, expected in ((3, []), (1, []), (2, [0, 1]), (4, [0, 1, 2]), (4, [0, 1, 2])):
        watch.piece_passed(piece)
        assert done == expected, piece
    assert watch.waiting == frozenset()
    everything = Bitfield.full(torrent.num_pieces)
    assert FileWatch(torrent, everything, [2, 0], done.append).complete == [2, 0]
    with pytest.raises(IndexError):
        FileWatch(torrent, have, [3], done.append)
