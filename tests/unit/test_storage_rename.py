"""Renaming files of an open storage: the bytes move on disk, reads and writes go on at the new
paths (a file half written goes on being written there), and a rename that would overwrite or
leave the save path is refused with nothing moved."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.unit.torrent_factory import make_torrent, payload
from torrent_engine.errors import StorageError
from torrent_engine.storage import Storage

pytestmark = pytest.mark.anyio

A, B = payload(40_000, 1), payload(30_000, 2)
PL = 16 * 1024


async def test_an_open_storage_renames_its_files_and_goes_on_reading_and_writing_them(tmp_path: Path) -> None:
    t = make_torrent([(("a",), A), (("sub", "b"), B)], PL)
    blob = A + B
    st = Storage(t, tmp_path)
    await st.write_block(0, 0, blob[:PL])  # (a is open, half written)
    await st.rename_files({0: ("t", "renamed", "a2"), 1: ("t", "other", "b")})
    assert not (tmp_path / "t" / "a").exists() and not (tmp_path / "t" / "sub").exists()
    for i in range(1, t.num_pieces):
        await st.write_block(i, 0, blob[i * PL: i * PL + t.piece_size(i)])
    for i in range(t.num_pieces):
        assert await st.read_piece(i) == blob[i * PL: i * PL + t.piece_size(i)]
    await st.close()
    assert (tmp_path / "t" / "renamed" / "a2").read_bytes() == A
    assert (tmp_path / "t" / "other" / "b").read_bytes() == B
    again = Storage(t, tmp_path, renamed={0: ("t", "renamed", "a2"), 1: ("t", "other", "b")})
    assert await again.read_piece(0) == blob[:PL]
    assert again.file_path(0) == tmp_path.resolve() / "t" / "renamed" / "a2"
    await again.close()


async def test_a_rename_onto_something_there_or_out_of_the_save_path_moves_nothing(tmp_path: Path) -> None:
    t = make_torrent([(("a",), A), (("b",), B)], PL)
    st = Storage(t, tmp_path)
    for i in range(t.num_pieces):
        await st.write_block(i, 0, (A + B)[i * PL: i * PL + t.piece_size(i)])
    (tmp_path / "t" / "theirs").write_bytes(b"keep")
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    os.symlink(outside, tmp_path / "t" / "out")
    for bad in ({0: ("t", "x"), 1: ("t", "theirs")},  # the second lands on a file: the first is undone
                {0: ("t", "out", "a")},  # through a symlink out of the save path
                {0: ("t", "..", "a")}):
        with pytest.raises(StorageError):
            await st.rename_files(bad)
        assert (tmp_path / "t" / "a").read_bytes() == A and (tmp_path / "t" / "b").read_bytes() == B
    assert not (tmp_path / "t" / "x").exists() and not any(outside.iterdir())
    assert (tmp_path / "t" / "theirs").read_bytes() == b"keep"
    assert await st.read_piece(0) == A[:PL]
    await st.close()
