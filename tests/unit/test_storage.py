"""Storage and FileMap: blocks across file boundaries, pad files, empty and sparse files, path
safety, the bounded descriptor cache, delete_files, and wrapping through the PieceStorage protocol."""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.unit.torrent_factory import Layout, LayoutFile, layout, make_torrent, payload
from torrent_engine.errors import StorageError
from torrent_engine.layout import FileMap, FileSlice
from torrent_engine.picker import BLOCK_SIZE
from torrent_engine.storage import PieceStorage, Storage

pytestmark = pytest.mark.anyio

A, B, C = payload(40000, 1), payload(70001, 2), payload(5, 3)


def blocks_of(torrent: Layout | object, blob: bytes) -> list[tuple[int, int, bytes]]:
    out = []
    pl = torrent.piece_length  # type: ignore[attr-defined]
    for i in range(torrent.num_pieces):  # type: ignore[attr-defined]
        size = torrent.piece_size(i)  # type: ignore[attr-defined]
        for begin in range(0, size, BLOCK_SIZE):
            out.append((i, begin, blob[i * pl + begin : i * pl + min(size, begin + BLOCK_SIZE)]))
    return out


def test_file_map_splits_ranges_across_files_and_marks_pad() -> None:
    lay = layout(32768, 40000, 30000, pads={0: 25536})
    fm = FileMap(lay)
    assert fm.slices(1, 0, 32768) == [FileSlice(0, 32768, 7232, False), FileSlice(1, 0, 25536, True)]
    assert fm.slices(2, 100, 200) == [FileSlice(2, 100, 200, False)]
    with pytest.raises(StorageError):
        fm.slices(2, 30000, 1)  # past the short last piece
    with pytest.raises(StorageError):
        fm.slices(3, 0, 1)
    assert list(fm.file_pieces(0)) == [0, 1] and list(fm.file_pieces(2)) == [2]


async def test_multi_file_blocks_across_boundaries_round_trip(tmp_path: Path) -> None:
    t = make_torrent([(("a",), A), (("sub", "b"), B), (("c",), C)], 32768)
    blob = A + B + C
    st = Storage(t, tmp_path)
    items = blocks_of(t, blob)
    random.Random(0).shuffle(items)
    for i, begin, data in items:
        await st.write_block(i, begin, data)
    for i in range(t.num_pieces):
        assert await st.read_piece(i) == blob[i * 32768 : i * 32768 + t.piece_size(i)]
    assert await st.read_block(1, 40000 - 32768 - 3, 10) == blob[40000 - 3 : 40000 + 7]  # spans a|b
    await st.close()
    assert (tmp_path / "t" / "a").read_bytes() == A
    assert (tmp_path / "t" / "sub" / "b").read_bytes() == B
    assert (tmp_path / "t" / "c").read_bytes() == C


async def test_pad_files_are_never_created_and_read_as_zeros(tmp_path: Path) -> None:
    t = make_torrent([(("a",), A), (("e",), b""), (("b",), B)], 32768, pad=True)
    assert any(f.pad for f in t.files)
    blob = A + bytes(65536 - 40000) + B
    st = Storage(t, tmp_path)
    for i, begin, data in blocks_of(t, blob):
        await st.write_block(i, begin, data)
    assert await st.read_block(1, 40000 - 32768, 65536 - 40000) == bytes(65536 - 40000)
    await st.close()
    names = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")}
    assert names == {"t", "t/a", "t/b", "t/e"}  # no .pad folder or file
    assert (tmp_path / "t" / "e").stat().st_size == 0  # the empty file exists


async def test_files_are_created_sparse_and_lazily(tmp_path: Path) -> None:
    big = 8 * 1024 * 1024
    lay = layout(256 * 1024, big, 1000)
    st = Storage(lay, tmp_path)
    assert not (tmp_path / "t").exists()  # nothing before the first write
    await st.write_block(16, 0, b"x" * BLOCK_SIZE)  # one block in the middle of f0
    await st.close()
    s = os.stat(tmp_path / "t" / "f0")
    assert s.st_size == big
    assert s.st_blocks * 512 < 1024 * 1024  # not preallocated by writing zeros
    assert not (tmp_path / "t" / "f1").exists()  # only the files written to


@pytest.mark.parametrize("bad", [("t", "..", "x"), ("t", "/etc"), ("..",), ("t", "a\x00b"), ("t", "C:"), ()])
async def test_unsafe_paths_are_refused(tmp_path: Path, bad: tuple[str, ...]) -> None:
    lay = Layout(16384, (LayoutFile(bad, 10, 0),))
    with pytest.raises(StorageError):
        Storage(lay, tmp_path / "save")


async def test_colons_are_ordinary_characters_on_posix(tmp_path: Path) -> None:
    if os.name == "nt":
        pytest.skip("POSIX only")
    st = Storage(Layout(16384, (LayoutFile(("t", "a:b.txt"), 3, 0),)), tmp_path)
    await st.write_block(0, 0, b"abc")
    await st.close()
    assert (tmp_path / "t" / "a:b.txt").read_bytes() == b"abc"


async def test_a_symlink_pointing_outside_is_not_followed(tmp_path: Path) -> None:
    save, outside = tmp_path / "save", tmp_path / "outside"
    save.mkdir()
    outside.mkdir()
    st = Storage(layout(16384, 10), save)
    (save / "t").symlink_to(outside, target_is_directory=True)  # a folder symlink planted
    with pytest.raises(StorageError):
        await st.write_block(0, 0, b"0123456789")
    assert list(outside.iterdir()) == []
    (outside / "f0").write_bytes(b"secret....")
    with pytest.raises(StorageError):
        await st.read_piece(0)  # nor read through it (no serving of files outside)
    (outside / "f0").unlink()
    (save / "t").unlink()
    (save / "t").mkdir()
    (save / "t" / "f0").symlink_to(outside / "victim")  # a file-level symlink planted
    with pytest.raises(StorageError):
        await st.write_block(0, 0, b"0123456789")
    assert list(outside.iterdir()) == []


async def test_delete_files_removes_only_what_is_ours(tmp_path: Path) -> None:
    (tmp_path / "unrelated.txt").write_text("keep")
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "mine.txt").write_text("keep too")
    t = make_torrent([(("a",), A), (("d", "e", "b"), B), (("empty",), b"")], 32768)
    st = Storage(t, tmp_path)
    for i, begin, data in blocks_of(t, A + B)[:3]:
        await st.write_block(i, begin, data)
    assert (tmp_path / "t" / "d" / "e" / "b").exists() and (tmp_path / "t" / "empty").exists()
    await st.delete_files()
    left = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")}
    assert left == {"unrelated.txt", "t", "t/mine.txt"}
    with pytest.raises(StorageError):
        await st.read_piece(0)  # closed


async def test_delete_files_never_follows_a_planted_symlink_out(tmp_path: Path) -> None:
    save, outside = tmp_path / "save", tmp_path / "outside"
    save.mkdir()
    (outside / "d").mkdir(parents=True)
    (outside / "d" / "f0").write_text("not ours")
    (outside / "victim").write_text("not ours either")
    lay = Layout(16384, (LayoutFile(("t", "d", "f0"), 5, 0), LayoutFile(("t", "f1"), 5, 5)))
    st = Storage(lay, save)
    (save / "t").mkdir()
    (save / "t" / "d").symlink_to(outside / "d", target_is_directory=True)
    (save / "t" / "f1").symlink_to(outside / "victim")
    await st.delete_files()
    assert (outside / "d" / "f0").read_text() == "not ours"
    assert (outside / "victim").read_text() == "not ours either"
    assert not (save / "t" / "f1").is_symlink()  # the link inside the save path is removed


async def test_reading_what_is_not_on_disk_is_a_storage_error(tmp_path: Path) -> None:
    st = Storage(layout(16384, 20000), tmp_path)
    with pytest.raises(StorageError):
        await st.read_piece(0)  # no file
    await st.write_block(0, 0, b"z" * 16384)
    (tmp_path / "t" / "f0").write_bytes(b"short")  # shrunk behind our back
    await st.close()
    st2 = Storage(layout(16384, 20000), tmp_path)
    with pytest.raises(StorageError):
        await st2.read_piece(0)  # short read
    with pytest.raises(StorageError):
        await st2.read_block(5, 0, 1)  # no such piece
    await st2.close()


async def test_descriptor_cache_is_bounded_and_safe_under_concurrency(tmp_path: Path) -> None:
    sizes = [BLOCK_SIZE + 7 * k for k in range(6)]
    lay = layout(BLOCK_SIZE, *sizes)
    blob = payload(sum(sizes), 9)
    st = Storage(lay, tmp_path, max_open_files=2)
    async with anyio.create_task_group() as tg:
        for i, begin, data in blocks_of(lay, blob):
            tg.start_soon(st.write_block, i, begin, data)
    assert st.open_file_count() <= 2
    got = [await st.read_piece(i) for i in range(lay.num_pieces)]
    assert b"".join(got) == blob
    await st.close()
    assert st.open_file_count() == 0


class FailingReads:
    """A PieceStorage wrapper that fails reads of chosen pieces (what a bad disk looks like)."""

    def __init__(self, inner: PieceStorage, bad: set[int]) -> None:
        self.inner, self.bad = inner, bad

    async def write_block(self, index: int, begin: int, data: bytes | memoryview) -> None:
        await self.inner.write_block(index, begin, data)

    async def write_piece_if(self, index: int, data: bytes | bytearray | memoryview,
                             check: Callable[[], bool]) -> bool:
        return await self.inner.write_piece_if(index, data, check)

    async def read_block(self, index: int, begin: int, length: int) -> bytes:
        if index in self.bad:
            raise StorageError(f"injected read error in piece {index}")
        return await self.inner.read_block(index, begin, length)

    async def read_piece(self, index: int) -> bytes:
        if index in self.bad:
            raise StorageError(f"injected read error in piece {index}")
        return await self.inner.read_piece(index)

    def read_piece_blocking(self, index: int) -> bytes:
        if index in self.bad:
            raise StorageError(f"injected read error in piece {index}")
        return self.inner.read_piece_blocking(index)

    def file_path(self, file_index: int) -> Path | None:
        return self.inner.file_path(file_index)

    async def flush(self) -> None:
        await self.inner.flush()

    async def close(self) -> None:
        await self.inner.close()

    async def delete_files(self) -> None:
        await self.inner.delete_files()


async def test_storage_can_be_wrapped_through_the_protocol(tmp_path: Path) -> None:
    lay = layout(BLOCK_SIZE, 3 * BLOCK_SIZE)
    wrapped: PieceStorage = FailingReads(Storage(lay, tmp_path), {1})
    for i in range(3):
        await wrapped.write_block(i, 0, bytes([i]) * BLOCK_SIZE)
    assert await wrapped.read_piece(2) == b"\x02" * BLOCK_SIZE
    with pytest.raises(StorageError):
        await wrapped.read_piece(1)
    await wrapped.close()


async def test_flush_fsyncs_every_file_written_since_the_last_flush(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        synced.append(os.fstat(fd).st_ino)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    lay = layout(BLOCK_SIZE, 100, 100, 100)  # one piece over three files
    st = Storage(lay, tmp_path, max_open_files=1)  # f0 and f1 are evicted (closed) before the flush
    await st.write_block(0, 0, bytes(300))
    await st.flush()
    inodes = {(tmp_path / "t" / f"f{i}").stat().st_ino for i in range(3)}
    assert set(synced) == inodes
    synced.clear()
    await st.flush()
    assert synced == []  # nothing new to make durable
    await st.close()


async def test_write_piece_if_checks_then_writes_in_its_own_threads_in_order(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Many pieces handed over at once: each is checked in the storage's checking thread and
    written, 16 KiB per pwrite, by its writing thread, in the order they came; a piece whose
    check fails is not written; close() leaves no thread of the storage behind."""
    from torrent_engine import storage as storage_module

    pl = 4 * BLOCK_SIZE
    blob = payload(pl * 8, 7)
    t = make_torrent([(("f",), blob)], pl)
    writes: list[tuple[str, int, int]] = []
    real_pwrite = os.pwrite

    def pwrite(fd: int, data: bytes | memoryview, offset: int) -> int:
        writes.append((threading.current_thread().name, offset, len(data)))
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(storage_module.os, "pwrite", pwrite)
    checked: list[tuple[str, int]] = []

    def check(i: int) -> bool:
        checked.append((threading.current_thread().name, i))
        return i != 5

    st = Storage(t, tmp_path)
    results: dict[int, bool] = {}

    async def one(i: int) -> None:
        results[i] = await st.write_piece_if(i, bytearray(blob[i * pl:(i + 1) * pl]), lambda: check(i))

    async with anyio.create_task_group() as tg:
        for i in range(8):
            tg.start_soon(one, i)
    assert results == {i: i != 5 for i in range(8)}
    assert sorted(i for _, i in checked) == list(range(8))
    assert {name for name, _ in checked} == {"torrent_engine piece hashing"}
    assert {name for name, _, _ in writes} == {"torrent_engine piece writing"}
    assert all(n == storage_module.WRITE_CHUNK for _, _, n in writes)
    offsets = [off for _, off, _ in writes]
    assert sorted(offsets) == [off for off in range(0, 8 * pl, BLOCK_SIZE) if not 5 * pl <= off < 6 * pl]
    assert offsets == [off for _, i in checked if i != 5 for off in range(i * pl, (i + 1) * pl, BLOCK_SIZE)]
    data = (tmp_path / "t" / "f").read_bytes()
    assert data[:5 * pl] == blob[:5 * pl] and data[6 * pl:] == blob[6 * pl:]
    assert data[5 * pl:6 * pl] == bytes(pl)  # the failed piece: never written (a sparse hole)
    await st.close()
    assert not [th for th in threading.enumerate() if th.name.startswith("torrent_engine piece")]
    with pytest.raises(StorageError):
        await st.write_piece_if(0, bytearray(pl), lambda: True)


async def test_a_piece_checked_already_goes_straight_to_the_writing_thread(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from torrent_engine import storage as storage_module
    from torrent_engine.storage import verified

    blob = payload(BLOCK_SIZE * 2, 3)
    t = make_torrent([(("f",), blob)], BLOCK_SIZE)
    st = Storage(t, tmp_path)
    submitted: list[str] = []
    real_submit = storage_module._Lane.submit

    def submit(lane: Any, job: Callable[[], None]) -> None:
        submitted.append(lane._name)
        real_submit(lane, job)

    monkeypatch.setattr(storage_module._Lane, "submit", submit)
    assert await st.write_piece_if(1, bytearray(blob[BLOCK_SIZE:]), verified)
    assert submitted == ["torrent_engine piece writing"]
    assert await st.read_piece(1) == blob[BLOCK_SIZE:]
    await st.close()


async def test_write_piece_if_errors_reach_the_caller(tmp_path: Path) -> None:
    """A check that raises, and a write that fails, end in the awaiting caller."""
    t = make_torrent([(("f",), payload(BLOCK_SIZE * 2, 1))], BLOCK_SIZE)
    st = Storage(t, tmp_path)

    def boom() -> bool:
        raise ValueError("hash exploded")

    with pytest.raises(ValueError, match="hash exploded"):
        await st.write_piece_if(0, bytearray(BLOCK_SIZE), boom)
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "f").mkdir()  # a directory where the file should be: the open fails
    with pytest.raises(StorageError):
        await st.write_piece_if(0, bytearray(BLOCK_SIZE), lambda: True)
    await st.close()


async def test_write_piece_if_checks_and_writes_in_one_worker_call(tmp_path: Path) -> None:
    t = make_torrent([(("a",), A), (("sub", "b"), B), (("c",), C)], 32768)
    blob = A + B + C
    st = Storage(t, tmp_path)
    threads: list[object] = []

    def check(ok: bool) -> bool:
        threads.append(threading.current_thread())
        return ok

    piece1 = blob[32768:65536]
    assert not await st.write_piece_if(1, bytearray(piece1), lambda: check(False))
    assert not (tmp_path / "t" / "a").exists() and not (tmp_path / "t" / "sub").exists()  # nothing written
    assert await st.write_piece_if(1, memoryview(bytearray(piece1)), lambda: check(True))
    assert await st.read_piece(1) == piece1  # across a's end and b's start
    assert threading.main_thread() not in threads  # the check ran in the worker, beside the write
    await st.close()
