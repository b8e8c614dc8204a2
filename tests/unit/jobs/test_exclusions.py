"""Excluded file names (qBittorrent's): the setting's patterns checked, and the priorities they
leave a torrent's files (a file's name and its folders' names matched, in any case)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from tests.integration.helpers import make_payload
from tests.unit.torrent_factory import make_torrent, payload
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.jobs import InvalidJobRequest, ServiceSettings
from torrent_engine.jobs.exclusions import MOST_PATTERNS, check_name_patterns, excluded_priorities
from torrent_engine.jobs.tuning.settings import updated
from torrent_engine.storage.create import create_torrent


def season() -> Torrent:
    return make_torrent([(("e01.mkv",), payload(20000, 1)), (("e01.NFO",), payload(100, 2)),
                         (("Sample", "e01.mkv"), payload(3000, 3)), (("subs", "en.srt"), payload(200, 4))],
                        16384, name="Show")


def test_a_file_is_excluded_by_its_name_or_a_folder_s_in_any_case() -> None:
    t = season()
    assert excluded_priorities(t, ["*.nfo"]) == (4, 0, 4, 4)
    assert excluded_priorities(t, ["sample"]) == (4, 4, 0, 4)  # (its folder)
    assert excluded_priorities(t, ["e0?.nfo", "[!a-z]*"]) == (4, 0, 4, 4)
    assert excluded_priorities(t, ["show"]) == (0, 0, 0, 0)  # (the torrent's folder)
    assert excluded_priorities(t, ["*.txt", "e01"]) is None  # (a whole name only)
    assert excluded_priorities(t, []) is None
    single = make_torrent([(("notes.nfo",), payload(100, 5))], 16384, name="notes.nfo")
    assert excluded_priorities(single, ["*.NFO"]) == (0,)


def test_pad_files_stay_skipped_and_are_not_what_makes_a_torrent_excluded() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = make_payload(Path(tmp), (("a.bin", 20000), ("b.nfo", 100)), name="padded")
        t = create_torrent(root, version="hybrid", piece_length=16384)
    pads = [i for i, f in enumerate(t.files) if f.pad]
    assert pads  # (a hybrid torrent pads its files to pieces)
    got = excluded_priorities(t, ["*.nfo"])
    assert got is not None and all(got[i] == 0 for i in pads)
    assert [p for f, p in zip(t.files, got, strict=True) if not f.pad] == [4, 0]
    assert excluded_priorities(t, ["*.iso"]) is None


@pytest.mark.parametrize("bad", ["*.nfo", [""], ["a/b"], ["x\ny"], [3], ["z" * 1001],
                                 ["*"] * (MOST_PATTERNS + 1)])
def test_a_bad_pattern_list_is_refused_naming_the_setting(bad: object) -> None:
    with pytest.raises(InvalidJobRequest) as err:
        check_name_patterns(bad, "excluded_file_names")
    assert err.value.field == "excluded_file_names"


def test_the_setting_keeps_each_pattern_once_in_order() -> None:
    s = updated(ServiceSettings(), {"excluded_file_names": ["*.nfo", "sample", "*.nfo"],
                                    "excluded_file_names_enabled": True})
    assert s.excluded_file_names == ("*.nfo", "sample") and s.excluded_file_names_enabled
    with pytest.raises(InvalidJobRequest):
        updated(ServiceSettings(), {"excluded_file_names_enabled": "yes"})
