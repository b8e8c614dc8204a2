"""Storage and files changed or gone under it while it has them open: deleted, replaced, cut
short or overwritten in place. A read never serves such a file as if nothing happened: it says
which file is gone (``MissingFiles``) or changed (``FileChanged``), and looks at a file no more
than once per ``check_interval``, not at every block."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.unit.torrent_factory import make_torrent, payload
from torrent_engine.errors import FileChanged, MissingFiles
from torrent_engine.storage import Storage, WatchedFiles

pytestmark = pytest.mark.anyio

PL = 32768
A, B = payload(3 * PL, 1), payload(2 * PL + 100, 2)


async def written(tmp_path: Path, **kw: float) -> tuple[Storage, Path, Path]:
    """A storage of two files, written whole and read once (its descriptors open)."""
    t = make_torrent([(("a",), A), (("b",), B)], PL)
    st = Storage(t, tmp_path, **kw)  # type: ignore[arg-type]
    blob = A + B
    for i in range(t.num_pieces):
        await st.write_block(i, 0, blob[i * PL : i * PL + t.piece_size(i)])
    for i in range(t.num_pieces):
        assert await st.read_piece(i) == blob[i * PL : i * PL + t.piece_size(i)]
    return st, tmp_path / "t" / "a", tmp_path / "t" / "b"


async def test_a_file_deleted_under_an_open_descriptor_is_missing(tmp_path: Path) -> None:
    st, a, _ = await written(tmp_path, check_interval=0)
    a.unlink()  # (the open descriptor still reads the deleted file's bytes)
    with pytest.raises(MissingFiles) as caught:
        await st.read_piece(0)
    assert caught.value.paths == ("t/a",) and caught.value.files == ((0, 0),)
    assert await st.read_piece(4) == (A + B)[4 * PL : 5 * PL]  # the other file is served
    await st.close()


async def test_a_file_replaced_by_another_is_missing(tmp_path: Path) -> None:
    st, a, _ = await written(tmp_path, check_interval=0)
    other = tmp_path / "other"
    other.write_bytes(A)  # the same bytes, but not the file we verified and have open
    other.replace(a)
    with pytest.raises(MissingFiles) as caught:
        await st.read_block(1, 0, 100)
    assert caught.value.paths == ("t/a",)
    await st.close()


async def test_a_file_cut_short_is_missing_with_what_is_left(tmp_path: Path) -> None:
    st, _, b = await written(tmp_path, check_interval=0)
    os.truncate(b, PL + 5)
    with pytest.raises(MissingFiles) as caught:
        await st.read_piece(3)  # (b's first piece is still whole on disk: the file is short all the same)
    assert caught.value.paths == ("t/b",) and caught.value.files == ((1, PL + 5),)
    await st.close()


async def test_a_file_overwritten_in_place_is_refused_until_the_change_is_noted(tmp_path: Path) -> None:
    st, a, _ = await written(tmp_path, check_interval=0)
    assert isinstance(st, WatchedFiles)
    before = a.stat()
    with a.open("r+b") as f:  # same size, new bytes in the middle
        f.seek(PL + 10)
        f.write(b"\0" * 50)
    os.utime(a, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000))  # (a coarse clock may not move)
    for _ in range(2):  # every read of it, until the reader says it knows
        with pytest.raises(FileChanged) as caught:
            await st.read_piece(0)
        assert caught.value.files == (0,)
    assert st.read_piece_blocking(1) != A[PL : 2 * PL]  # verification reads it as it is (and hashes it)
    st.changes_seen([0])
    assert await st.read_piece(0) == A[:PL]
    await st.close()


async def test_our_own_writes_are_not_a_change(tmp_path: Path) -> None:
    st, _, _ = await written(tmp_path, check_interval=0)
    for _ in range(3):
        await st.write_block(1, 0, A[PL : 2 * PL])
        assert await st.read_piece(1) == A[PL : 2 * PL]
    await st.close()


async def test_files_are_compared_with_what_was_verified_not_with_what_is_found_at_first_read(
        tmp_path: Path) -> None:
    t = make_torrent([(("a",), A)], PL)
    (tmp_path / "t").mkdir()
    a = tmp_path / "t" / "a"
    a.write_bytes(A)
    verified = a.stat()
    with a.open("r+b") as f:  # changed after it was checked, before anything was served
        f.write(b"\xff" * 10)
    os.utime(a, ns=(verified.st_atime_ns, verified.st_mtime_ns + 1_000_000))
    st = Storage(t, tmp_path)
    st.watch_files([(verified.st_size, verified.st_mtime_ns)])
    with pytest.raises(FileChanged):
        await st.read_block(2, 0, 10)
    await st.close()


async def test_a_write_never_creates_again_a_file_that_held_data(tmp_path: Path) -> None:
    st, a, _ = await written(tmp_path)
    await st.close()
    a.unlink()
    st = Storage(st.torrent, tmp_path)
    st.watch_files([(len(A), 1), None])
    with pytest.raises(MissingFiles):
        await st.write_block(1, 0, A[PL : 2 * PL])
    assert not a.exists()
    await st.close()


async def test_a_file_is_looked_at_once_per_interval_not_at_every_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    st, a, _ = await written(tmp_path, check_interval=3600)
    looks = []
    real_stat = os.stat
    monkeypatch.setattr(os, "stat", lambda *args, **kw: looks.append(args) or real_stat(*args, **kw))
    for _ in range(50):
        for i in range(3):
            await st.read_block(i, 0, 16384)
    assert looks == []  # (looked at when first read: not again within the hour)
    a.unlink()
    assert await st.read_block(0, 0, 10) == A[:10]  # (the open file's bytes, still the verified ones)
    await st.close()


async def test_a_read_past_the_end_of_a_file_cut_short_says_how_much_is_left(tmp_path: Path) -> None:
    st, _, b = await written(tmp_path, check_interval=3600)  # (found by the read, not by a look)
    os.truncate(b, 100)
    with pytest.raises(MissingFiles) as caught:
        await st.read_piece(5)
    assert caught.value.files == ((1, 100),)
    await st.close()
