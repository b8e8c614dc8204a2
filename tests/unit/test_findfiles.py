"""A torrent's files found among other files by their content (``storage.findfiles``): renamed
and moved files of the same size whose pieces verify, a decoy of the same size passed over, a
file smaller than a piece told by the pieces it shares with a file found, and each file not found
saying why; v1, v2 and hybrid."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest

from torrent_engine.formats.layout import FileMap
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.storage.create import create_torrent
from torrent_engine.storage.findfiles import SPENT, WrongReads, find_among, find_files, own_pieces, spread

PL = 16384
FILES = {"a.bin": 3 * PL + 100, "b.txt": 5000, "sub/c.bin": 2 * PL, "tiny": 3}


def _content(rel: str, size: int) -> bytes:
    return bytes((i * 13 + len(rel) * 7) % 251 for i in range(size))


def _made(tmp_path: Path, version: str) -> Torrent:
    folder = tmp_path / "orig" / "show"
    for rel, size in FILES.items():
        p = folder / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(_content(rel, size))
    return create_torrent(folder, version=version, piece_length=PL)  # type: ignore[arg-type]


def _index(t: Torrent, rel: str) -> int:
    return next(i for i, f in enumerate(t.files) if "/".join(f.path) == f"show/{rel}")


@pytest.mark.parametrize("version", ["v1", "v2", "hybrid"])
def test_renamed_files_are_found_by_content_and_a_decoy_is_not(tmp_path: Path, version: str) -> None:
    t = _made(tmp_path, version)
    src = tmp_path / "library"
    (src / "x" / "y").mkdir(parents=True)
    orig = tmp_path / "orig" / "show"
    # a decoy of a.bin's size sorts first; c.bin's copy under another name, in another folder
    (src / "0-decoy.mkv").write_bytes(b"\0" * FILES["a.bin"])
    shutil.copy(orig / "a.bin", src / "x" / "Episode 1.mkv")
    shutil.copy(orig / "b.txt", src / "notes.txt")
    shutil.copy(orig / "sub" / "c.bin", src / "x" / "y" / "renamed.bin")
    shutil.copy(orig / "tiny", src / "tiny-copy")
    wanted = [i for i, f in enumerate(t.files) if not f.pad]
    found = {f.index: f for f in find_files(t, wanted, [src])}
    assert found[_index(t, "a.bin")].source == src / "x" / "Episode 1.mkv"
    assert found[_index(t, "b.txt")].source == src / "notes.txt"
    assert found[_index(t, "sub/c.bin")].source == src / "x" / "y" / "renamed.bin"
    # tiny (3 bytes) has no piece of its own in v1; it is told by the piece it shares with c.bin
    # found before it (in v2 and hybrid its one piece is its own)
    assert found[_index(t, "tiny")].source == src / "tiny-copy"


def test_each_file_not_found_says_why(tmp_path: Path) -> None:
    t = _made(tmp_path, "v1")
    src = tmp_path / "library"
    src.mkdir()
    (src / "same-size-wrong.bin").write_bytes(b"x" * FILES["sub/c.bin"])
    (src / "tiny-wrong").write_bytes(b"abc")
    wanted = [i for i, f in enumerate(t.files) if not f.pad]
    found = {f.index: f for f in find_files(t, wanted, [src])}
    assert found[_index(t, "a.bin")].why == "no file of its size there"
    assert found[_index(t, "sub/c.bin")].why == "none of the 1 file(s) of its size holds its pieces"
    assert found[_index(t, "tiny")].source is None
    assert "cannot be told" in found[_index(t, "tiny")].why  # (c.bin, its neighbour, not found)


def test_a_file_at_its_place_lends_its_bytes_to_a_shared_piece(tmp_path: Path) -> None:
    """v1: b.txt lies in pieces it shares with a.bin and c.bin; with those two at their place
    (``present``) a copy of b.txt is told by those pieces."""
    t = _made(tmp_path, "v1")
    spans = FileMap(t)
    b = _index(t, "b.txt")
    assert own_pieces(spans, b) == []
    orig = tmp_path / "orig" / "show"
    src = tmp_path / "library"
    src.mkdir()
    shutil.copy(orig / "b.txt", src / "b-copy.txt")
    present = {_index(t, "a.bin"): orig / "a.bin", _index(t, "sub/c.bin"): orig / "sub" / "c.bin"}
    [found] = find_files(t, [b], [src], present)
    assert found.source == src / "b-copy.txt"
    [alone] = find_files(t, [b], [src])
    assert alone.source is None and "cannot be told" in alone.why


def test_files_that_share_their_pieces_only_with_each_other_are_told_together(tmp_path: Path) -> None:
    """v1, one piece: two files that no piece lies wholly in, each with a decoy of its size;
    their candidates are tried together on the piece they share, and only the right pair passes."""
    folder = tmp_path / "orig" / "pair"
    folder.mkdir(parents=True)
    (folder / "x").write_bytes(_content("x", 4000))
    (folder / "y").write_bytes(_content("y", 3000))
    t = create_torrent(folder, version="v1", piece_length=PL)
    assert t.num_pieces == 1
    src = tmp_path / "library"
    src.mkdir()
    (src / "a-decoy-x").write_bytes(b"\1" * 4000)
    (src / "a-decoy-y").write_bytes(b"\2" * 3000)
    shutil.copy(folder / "x", src / "the-x")
    shutil.copy(folder / "y", src / "the-y")
    found = find_files(t, [0, 1], [src])
    assert [(f.source, f.why) for f in found] == [(src / "the-x", ""), (src / "the-y", "")]


def test_spread_takes_the_first_the_last_and_evenly_between() -> None:
    pieces = list(range(10, 35))  # 25 pieces
    assert spread(pieces, None) == pieces and spread(pieces, 30) == pieces
    assert spread(pieces, 8) == [10, 13, 17, 20, 24, 27, 31, 34]
    assert spread(pieces, 2) == [10, 34] and spread(pieces, 1) == [10]
    with pytest.raises(ValueError, match="at least 1"):
        spread(pieces, 0)  # (no piece would vouch for a file)


def test_find_among_tries_the_candidates_handed_to_it_on_a_sample_of_the_pieces(tmp_path: Path) -> None:
    """``most``: a few pieces spread over the file are verified, not all: a candidate wrong only
    in a piece between them passes (the check that follows a placement judges every piece);
    one wrong in a sampled piece is passed over for the next."""
    folder = tmp_path / "orig" / "one"
    folder.mkdir(parents=True)
    data = _content("big", 20 * PL + 7)
    (folder / "big.bin").write_bytes(data)
    t = create_torrent(folder, version="v1", piece_length=PL)
    assert t.num_pieces == 21
    between, sampled = bytearray(data), bytearray(data)
    between[PL + 5] ^= 1  # piece 1: not among spread(0..20, 3) = 0, 10, 20
    sampled[10 * PL] ^= 1  # piece 10: among them
    for name, content in (("between", between), ("sampled", sampled)):
        (tmp_path / name).write_bytes(bytes(content))
    shutil.copy(folder / "big.bin", tmp_path / "right")
    candidates = {len(data): [tmp_path / "sampled", tmp_path / "between", tmp_path / "right"]}
    [few] = find_among(t, [0], candidates, most=3)
    assert few.source == tmp_path / "between"
    [every] = find_among(t, [0], candidates)
    assert every.source == tmp_path / "right"
    [none] = find_among(t, [0], {len(data): [tmp_path / "sampled"]}, most=3)
    assert none.source is None and none.why == "none of the 1 file(s) of its size holds its pieces"


def test_the_reads_on_files_that_do_not_hold_a_file_are_bounded(tmp_path: Path) -> None:
    """``wrong``: a torrent of many files of one length, each tried on the same decoys, stops
    looking once the pieces read on the decoys pass the bound; what the right file read does
    not count."""
    folder = tmp_path / "orig" / "many"
    folder.mkdir(parents=True)
    for i in range(6):
        (folder / f"{i}.bin").write_bytes(random.Random(i).randbytes(4 * PL))
    t = create_torrent(folder, version="v1", piece_length=PL)
    decoys = []
    for i in range(3):
        decoys.append(tmp_path / f"decoy{i}")
        decoys[-1].write_bytes(bytes([i]) * 4 * PL)
    shutil.copy(folder / "0.bin", tmp_path / "right")
    candidates = {4 * PL: [*decoys, tmp_path / "right"]}
    # file 0: three decoys dropped at their first piece (3 pieces read; the right one's 4 not
    # counted); each other file: four dropped (4 pieces): a bound of 11 pieces lets 3 files be
    # looked at
    wrong = WrongReads(11 * PL)
    found = find_among(t, range(6), candidates, wrong=wrong, most=4)
    by_name = {t.files[f.index].path[-1]: f for f in found}
    assert by_name["0.bin"].source == tmp_path / "right"
    none = "none of the 4 file(s) of its size holds its pieces"
    assert [by_name[f"{i}.bin"].why for i in (1, 2)] == [none] * 2
    assert [by_name[f"{i}.bin"].why for i in (3, 4, 5)] == [SPENT] * 3
    assert wrong.left == 0
    every = find_among(t, range(6), candidates, most=4)  # (no bound: every file looked at)
    assert sum(f.source is not None for f in every) == 1 and SPENT not in {f.why for f in every}
