"""CLI ``verify``: what a user sees of data checked against a .torrent, the exit status (0 only
when all is there and whole), ``--json``, and errors on stderr without a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from torrent_engine.cli import main
from torrent_engine.storage.create import create_torrent

PL = 16384


def _made(tmp_path: Path) -> Path:
    folder = tmp_path / "data" / "album"
    folder.mkdir(parents=True)
    (folder / "one.flac").write_bytes(bytes(range(256)) * 200)
    (folder / "two.flac").write_bytes(bytes(range(255, -1, -1)) * 150)
    out = tmp_path / "album.torrent"
    out.write_bytes(create_torrent(folder, version="v1", piece_length=PL).to_bytes())
    return out


def test_complete_data_exits_0_and_lists_the_files_with_all(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    torrent = _made(tmp_path)
    assert main(["verify", str(torrent), "-d", str(tmp_path / "data")]) == 0
    out = capsys.readouterr().out
    assert "album (v1, 2 files" in out and "every file complete" in out
    assert "one.flac" not in out  # (the complete files only with --all)
    assert main(["verify", str(torrent), "-d", str(tmp_path / "data"), "--all"]) == 0
    out = capsys.readouterr().out
    assert "  complete" in out and "album/one.flac" in out and "album/two.flac" in out


def test_missing_and_damaged_data_exits_1_saying_what_of_which_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torrent = _made(tmp_path)
    one = tmp_path / "data" / "album" / "one.flac"
    data = bytearray(one.read_bytes())
    data[3] ^= 1
    one.write_bytes(bytes(data))
    (tmp_path / "data" / "album" / "two.flac").unlink()
    assert main(["verify", str(torrent), "-d", str(tmp_path / "data")]) == 1
    out = capsys.readouterr().out
    assert "  incomplete" in out and "album/one.flac  (2 of 4 pieces verified)" in out
    assert "  missing" in out and "album/two.flac" in out
    assert "2 of 2 files not complete" in out
    assert not (tmp_path / "data" / "album" / "two.flac").exists()

    assert main(["verify", str(torrent), "-d", str(tmp_path / "data"), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["complete"] is False and doc["pieces"] == 6 and doc["verified_pieces"] == 2
    assert [(f["path"], f["state"], f["verified_pieces"]) for f in doc["files"]] == [
        ("album/one.flac", "incomplete", 2), ("album/two.flac", "missing", 0)]


def test_errors_say_what_was_wrong(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torrent = _made(tmp_path)
    assert main(["verify", str(torrent), "-d", str(tmp_path / "nowhere")]) == 1
    assert "is not a folder" in capsys.readouterr().err
    assert main(["verify", "magnet:?xt=urn:btih:" + "ab" * 20]) == 1
    assert "a magnet link names no pieces to check" in capsys.readouterr().err
    (tmp_path / "bad.torrent").write_bytes(b"d4:infoi1ee")
    assert main(["verify", str(tmp_path / "bad.torrent")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("torrent-engine verify: error:") and "Traceback" not in err


def test_find_in_reports_and_place_puts_the_files_found_then_checks(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The album's files kept elsewhere under other names: ``--find-in`` says where each is, and
    writes nothing; ``--place copy`` puts them at the torrent's paths, and the check passes."""
    torrent = _made(tmp_path)
    library = tmp_path / "library"
    (library / "flac").mkdir(parents=True)
    (tmp_path / "data" / "album" / "one.flac").rename(library / "flac" / "01 - One.flac")
    (tmp_path / "data" / "album" / "two.flac").rename(library / "02 - Two.flac")
    (tmp_path / "data" / "album").rmdir()
    assert main(["verify", str(torrent), "-d", str(tmp_path / "data"), "--find-in", str(library)]) == 1
    captured = capsys.readouterr()
    assert f"found      album/one.flac in {library / 'flac' / '01 - One.flac'} (--place puts it there)" \
        in captured.err
    assert not (tmp_path / "data" / "album").exists()

    assert main(["verify", str(torrent), "-d", str(tmp_path / "data"), "--find-in", str(library),
                 "--place", "copy", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["complete"] is True
    assert [(f["path"], f["placed"]) for f in doc["found"]] == [("album/one.flac", "copy"),
                                                                 ("album/two.flac", "copy")]
    assert (library / "02 - Two.flac").read_bytes() == (tmp_path / "data" / "album" / "two.flac").read_bytes()
    assert main(["verify", str(torrent), "-d", str(tmp_path / "data"), "--place", "copy"]) == 1
    assert "give --find-in SRC too" in capsys.readouterr().err


def test_place_hardlink_links_only_a_file_whose_every_piece_is_its_own(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--place hardlink``: the album's two files share a piece (a failing download of it would
    be written into the linked source): both copied; a one-file torrent's file is linked."""
    import os

    torrent = _made(tmp_path)
    library = tmp_path / "library"
    library.mkdir()
    for name in ("one.flac", "two.flac"):
        (tmp_path / "data" / "album" / name).rename(library / name)
    (tmp_path / "data" / "album").rmdir()
    assert main(["verify", str(torrent), "-d", str(tmp_path / "data"), "--find-in", str(library),
                 "--place", "hardlink", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [f["placed"] for f in doc["found"]] == ["copy", "copy"]
    assert os.stat(library / "one.flac").st_ino != os.stat(tmp_path / "data" / "album" / "one.flac").st_ino

    single = tmp_path / "single.torrent"
    single.write_bytes(create_torrent(library / "one.flac", version="v1", piece_length=PL).to_bytes())
    (tmp_path / "got").mkdir()
    assert main(["verify", str(single), "-d", str(tmp_path / "got"), "--find-in", str(library),
                 "--place", "hardlink", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [f["placed"] for f in doc["found"]] == ["hardlink"]
    assert os.stat(library / "one.flac").st_ino == os.stat(tmp_path / "got" / "one.flac").st_ino
