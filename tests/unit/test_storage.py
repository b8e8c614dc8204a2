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
from torrent_engine.config import Config, DiskWriteMode
from torrent_engine.errors import ConfigError, StorageError
from torrent_engine.formats.layout import FileMap, FileSlice
from torrent_engine.policy.picker import BLOCK_SIZE
from torrent_engine.storage import PieceStorage, Storage, aligned_buffer, verified
from torrent_engine.storage.core import ALIGNED_MIN, DIRECT_ALIGN, buffer_address

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

    async def create_empty_files(self) -> None:
        await self.inner.create_empty_files()

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


def spy_fsync(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The inodes ``os.fsync`` is called on from now on (the calls still go through)."""
    synced: list[int] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        synced.append(os.fstat(fd).st_ino)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    return synced


async def test_flush_fsyncs_every_file_written_since_the_last_flush(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced = spy_fsync(monkeypatch)
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


@pytest.mark.parametrize("mode", ["cached", "direct"])
async def test_write_piece_if_checks_then_writes_in_its_own_threads_in_order(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: DiskWriteMode) -> None:
    """Many pieces handed over at once: each is checked in the storage's checking thread and
    written by its writing thread (cached: 16 KiB per pwrite; direct: the aligned piece in one
    pwrite), in the order they came; a piece whose check fails is not written; close() leaves
    no thread of the storage behind."""
    from torrent_engine.storage import core as storage_module

    pl = 4 * BLOCK_SIZE
    blob = payload(pl * 8, 7)
    t = make_torrent([(("f",), blob)], pl)
    writes: list[tuple[str, int, int]] = []
    real_pwrite = os.pwrite

    real_pwritev = os.pwritev

    def pwrite(fd: int, data: bytes | memoryview, offset: int) -> int:
        writes.append((threading.current_thread().name, offset, len(data)))
        return real_pwrite(fd, data, offset)

    def pwritev(fd: int, parts: list[memoryview], offset: int) -> int:
        writes.append((threading.current_thread().name, offset, sum(len(p) for p in parts)))
        return real_pwritev(fd, parts, offset)

    monkeypatch.setattr(storage_module.os, "pwrite", pwrite)
    monkeypatch.setattr(storage_module.os, "pwritev", pwritev)
    checked: list[tuple[str, int]] = []

    def check(i: int) -> bool:
        checked.append((threading.current_thread().name, i))
        return i != 5

    st = Storage(t, tmp_path, write_mode=mode)
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
    step = storage_module.WRITE_CHUNK if mode == "cached" else pl
    assert all(n == step for _, _, n in writes)
    offsets = [off for _, off, _ in writes]
    assert sorted(offsets) == [off for off in range(0, 8 * pl, step) if not 5 * pl <= off < 6 * pl]
    assert offsets == [off for _, i in checked if i != 5 for off in range(i * pl, (i + 1) * pl, step)]
    expected = (0, 7 * pl) if mode == "cached" else (7 * pl, 0)
    assert (st.bytes_written_direct, st.bytes_written_cached) == expected
    data = (tmp_path / "t" / "f").read_bytes()
    assert data[:5 * pl] == blob[:5 * pl] and data[6 * pl:] == blob[6 * pl:]
    assert data[5 * pl:6 * pl] == bytes(pl)  # the failed piece: never written (a sparse hole)
    await st.close()
    assert not [th for th in threading.enumerate() if th.name.startswith("torrent_engine piece")]
    with pytest.raises(StorageError):
        await st.write_piece_if(0, bytearray(pl), lambda: True)


async def test_a_piece_checked_already_goes_straight_to_the_writing_thread(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from torrent_engine.storage import lanes

    blob = payload(BLOCK_SIZE * 2, 3)
    t = make_torrent([(("f",), blob)], BLOCK_SIZE)
    st = Storage(t, tmp_path)
    submitted: list[str] = []
    real_submit = lanes.Lane.submit

    def submit(lane: Any, job: Callable[[], None]) -> None:
        submitted.append(lane._name)
        real_submit(lane, job)

    monkeypatch.setattr(lanes.Lane, "submit", submit)
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


# -- direct writes (O_DIRECT) -----------------------------------------------------------------

# Unaligned file boundaries, a pad file, an aligned file, a one-byte file; pieces of 20 000 bytes
# (no piece starts on a page) and of 64 KiB, each with a short last piece.
DIRECT_SIZES = (5000, 70001, 3 * 4096, 123457, 1)
DIRECT_PADS = {1: 3000}


def require_shm() -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or not os.access(shm, os.W_OK):
        pytest.skip("no /dev/shm")


def pieces_of(lay: Layout, blob: bytes) -> list[tuple[int, bytes]]:
    pl = lay.piece_length
    return [(i, blob[i * pl : i * pl + lay.piece_size(i)]) for i in range(lay.num_pieces)]


def layout_blob(lay: Layout) -> bytes:
    """The torrent's bytes, pad ranges zero."""
    parts = [bytes(f.length) if f.pad else payload(f.length, 20 + n) for n, f in enumerate(lay.files)]
    return b"".join(parts)


def on_disk(root: Path, lay: Layout) -> bytes:
    return b"".join(bytes(f.length) if f.pad else (root / Path(*f.path)).read_bytes() for f in lay.files)


async def write_and_read_mixed(st: Storage, lay: Layout, blob: bytes) -> None:
    """Every piece written whole (in a shuffled order, as verified pieces come), each read back
    at once and the earlier ones re-read while later ones are written; a few blocks of other
    pieces written one by one (``write_block``) first and then whole again."""
    items = pieces_of(lay, blob)
    random.Random(4).shuffle(items)
    for i, data in items[:2]:
        await st.write_block(i, 0, data[:BLOCK_SIZE])
    done: list[int] = []
    for i, data in items:
        assert await st.write_piece_if(i, bytearray(data), verified)
        assert await st.read_piece(i) == data
        done.append(i)
        j = done[len(done) // 2]
        assert await st.read_block(j, 0, min(100, lay.piece_size(j))) == blob[j * lay.piece_length:][:100]


@pytest.mark.parametrize("piece_length", [20000, 65536])
async def test_direct_writes_put_the_right_bytes_on_disk(tmp_path: Path, piece_length: int) -> None:
    lay = layout(piece_length, *DIRECT_SIZES, pads=DIRECT_PADS)
    blob = layout_blob(lay)
    st = Storage(lay, tmp_path)
    await write_and_read_mixed(st, lay, blob)
    await st.flush()
    assert on_disk(tmp_path, lay) == blob
    assert not (tmp_path / "t" / ".pad").exists()
    stored = sum(f.length for f in lay.files if not f.pad)
    # ext4 (and every file system here but tmpfs) takes O_DIRECT: most bytes went past the cache
    assert st.bytes_written_direct > stored // 2
    assert st.bytes_written_direct + st.bytes_written_cached == stored + BLOCK_SIZE * 2
    await st.close()
    assert st.open_file_count() == 0


@pytest.mark.parametrize("piece_length", [20000, 65536])
async def test_direct_writes_on_tmpfs_put_the_right_bytes_there(tmp_path: Path, piece_length: int) -> None:
    """tmpfs: Linux before 6.6 refuses O_DIRECT at open (EINVAL), later ones take it and copy
    into the page cache anyway; the bytes are right either way."""
    import tempfile

    require_shm()
    lay = layout(piece_length, *DIRECT_SIZES, pads=DIRECT_PADS)
    blob = layout_blob(lay)
    with tempfile.TemporaryDirectory(dir="/dev/shm") as root:
        st = Storage(lay, root)
        await write_and_read_mixed(st, lay, blob)
        await st.flush()
        assert on_disk(Path(root), lay) == blob
        stored = sum(f.length for f in lay.files if not f.pad)
        assert st.bytes_written_direct + st.bytes_written_cached == stored + BLOCK_SIZE * 2
        await st.close()


async def test_a_file_system_refusing_o_direct_is_written_cached(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """An open with O_DIRECT that fails with EINVAL (tmpfs before Linux 6.6, some FUSE and
    network file systems): the storage writes cached from then on and says why once."""
    import errno

    from torrent_engine.storage import core as storage_module

    real_open = os.open
    refused: list[int] = []

    def open_(path: Any, flag: int, *args: Any, **kwargs: Any) -> int:
        if flag & getattr(os, "O_DIRECT", 0):
            refused.append(flag)
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flag, *args, **kwargs)

    monkeypatch.setattr(storage_module.os, "open", open_)
    lay = layout(20000, *DIRECT_SIZES, pads=DIRECT_PADS)
    blob = layout_blob(lay)
    st = Storage(lay, tmp_path)
    with caplog.at_level("INFO", logger="torrent_engine.storage"):
        await write_and_read_mixed(st, lay, blob)
    assert len(refused) == 1
    assert on_disk(tmp_path, lay) == blob
    assert st.bytes_written_direct == 0
    assert st.bytes_written_cached == sum(f.length for f in lay.files if not f.pad) + BLOCK_SIZE * 2
    assert len([r for r in caplog.records if "page cache" in r.getMessage()]) == 1
    await st.close()


def is_direct(fd: int) -> bool:
    import fcntl

    return bool(fcntl.fcntl(fd, fcntl.F_GETFL) & getattr(os, "O_DIRECT", 0))


async def test_a_refused_direct_write_falls_back_to_cached_for_good(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    from torrent_engine.storage import core as storage_module

    lay = layout(65536, *DIRECT_SIZES, pads=DIRECT_PADS)
    blob = layout_blob(lay)
    real_pwritev = os.pwritev
    refused: list[int] = []

    def pwritev(fd: int, parts: list[memoryview], offset: int) -> int:
        if is_direct(fd):
            refused.append(offset)
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_pwritev(fd, parts, offset)

    monkeypatch.setattr(storage_module.os, "pwritev", pwritev)
    st = Storage(lay, tmp_path)
    await write_and_read_mixed(st, lay, blob)
    assert len(refused) == 1  # the first refusal turns direct writes off
    assert st.bytes_written_direct == 0
    assert on_disk(tmp_path, lay) == blob
    await st.close()


async def test_cached_mode_never_opens_o_direct(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from torrent_engine.storage import core as storage_module

    flags: list[int] = []
    real_open = os.open

    def spy(path: Any, flag: int, *args: Any, **kwargs: Any) -> int:
        flags.append(flag)
        return real_open(path, flag, *args, **kwargs)

    monkeypatch.setattr(storage_module.os, "open", spy)
    lay = layout(65536, *DIRECT_SIZES, pads=DIRECT_PADS)
    blob = layout_blob(lay)
    st = Storage(lay, tmp_path, write_mode="cached")
    await write_and_read_mixed(st, lay, blob)
    assert flags and not [f for f in flags if f & getattr(os, "O_DIRECT", 0)]
    assert st.bytes_written_direct == 0
    assert on_disk(tmp_path, lay) == blob
    await st.close()
    flags.clear()
    st = Storage(lay, tmp_path / "other")  # the default: the spy sees O_DIRECT opens
    await write_and_read_mixed(st, lay, blob)
    assert [f for f in flags if f & getattr(os, "O_DIRECT", 0)]
    await st.close()


def open_fds() -> set[int]:
    return {int(n) for n in os.listdir("/proc/self/fd")}


async def test_direct_descriptors_count_against_the_bound_and_are_all_closed(tmp_path: Path) -> None:
    sizes = [3 * 4096] * 6
    lay = layout(4096 * 2, *sizes)
    blob = layout_blob(lay)
    before = open_fds()
    st = Storage(lay, tmp_path, max_open_files=3)
    seen = 0
    for i, data in pieces_of(lay, blob):
        assert await st.write_piece_if(i, bytearray(data), verified)
        seen = max(seen, st.open_file_count())
        assert st.open_file_count() <= 3
        assert len(open_fds() - before) <= 3  # (the storage's descriptors are all it holds)
    assert st.bytes_written_direct == len(blob)
    assert seen >= 2
    await st.close()
    assert st.open_file_count() == 0 and open_fds() - before == set()
    st = Storage(lay, tmp_path, max_open_files=3)
    for i, data in pieces_of(lay, blob)[:4]:
        assert await st.write_piece_if(i, bytearray(data), verified)
    await st.delete_files()
    assert open_fds() - before == set()
    assert not (tmp_path / "t").exists()


def test_aligned_buffers_start_on_a_page_from_their_threshold_up() -> None:
    big = aligned_buffer(ALIGNED_MIN)
    assert len(big) == ALIGNED_MIN and bytes(big) == bytes(ALIGNED_MIN)
    assert buffer_address(memoryview(big)) % DIRECT_ALIGN == 0
    big[BLOCK_SIZE:2 * BLOCK_SIZE] = b"x" * BLOCK_SIZE  # written into as a piece buffer is
    assert bytes(memoryview(big)[BLOCK_SIZE:BLOCK_SIZE + 2]) == b"xx"
    small = aligned_buffer(ALIGNED_MIN - 1)
    assert isinstance(small, bytearray) and len(small) == ALIGNED_MIN - 1
    assert buffer_address(memoryview(b"read-only")) == -1  # never taken as aligned


@pytest.mark.parametrize("aligned", [True, False])
async def test_direct_writes_take_an_aligned_buffer_without_a_copy(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aligned: bool) -> None:
    """A piece buffer at a page boundary goes to O_DIRECT as it is: the scratch buffer (the
    writing thread's) is never used; any other buffer is copied through it. The bytes on disk
    are right either way."""
    from torrent_engine.storage import core as storage_module

    used: list[str] = []
    real_scratch = storage_module._scratch

    def scratch() -> Any:
        used.append(threading.current_thread().name)
        return real_scratch()

    monkeypatch.setattr(storage_module, "_scratch", scratch)
    lay = layout(ALIGNED_MIN, 3 * ALIGNED_MIN)
    blob = layout_blob(lay)
    st = Storage(lay, tmp_path)
    for i, data in pieces_of(lay, blob):
        if aligned:
            buf = aligned_buffer(len(data))
            buf[:] = data
        else:
            buf = bytearray(len(data) + 1)
            buf[1:] = data  # (one byte in: off any page boundary)
        assert await st.write_piece_if(i, memoryview(buf)[0 if aligned else 1:], verified)
    assert st.bytes_written_direct == len(blob)
    assert used == ([] if aligned else ["torrent_engine piece writing"] * 3)
    await st.flush()
    assert on_disk(tmp_path, lay) == blob
    await st.close()


async def test_flush_fsyncs_files_written_directly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced = spy_fsync(monkeypatch)
    lay = layout(65536, 65536, 65536)  # two aligned files, a piece each: direct only
    st = Storage(lay, tmp_path, max_open_files=1)
    for i in range(2):
        assert await st.write_piece_if(i, bytearray(payload(65536, i)), verified)
    assert st.bytes_written_cached == 0
    await st.flush()
    assert set(synced) == {(tmp_path / "t" / f"f{i}").stat().st_ino for i in range(2)}
    await st.close()


@pytest.mark.parametrize("mode", ["direct", "cached"])
async def test_a_session_writes_as_its_config_says(tmp_path: Path, mode: DiskWriteMode) -> None:
    from torrent_engine.config import Config
    from torrent_engine.session import Session
    from torrent_engine.session.phases import storage_of

    blob = payload(65536, 5)
    t = make_torrent([(("f",), blob)], 65536)
    async with Session(t, tmp_path, config=Config(disk_write_mode=mode, dht_enabled=False,
                                                  port_mapping=False,
                                                  lsd_enabled=False, tracker_enabled=False)) as session:
        st = storage_of(session.phase)  # the files the session opened
        assert isinstance(st, Storage)
        assert await st.write_piece_if(0, bytearray(blob), verified)
        assert (st.bytes_written_direct > 0) == (mode == "direct")


async def test_the_writing_thread_times_each_whole_piece_it_writes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The daemon's torrent_engine_piece_write_seconds: one observation per piece written by the
    writing thread (write_piece_if, write_verified); none for a piece whose check failed, none
    for block writes."""
    from torrent_engine.storage import core as storage_module
    from torrent_engine.storage.timing import Durations

    durations = Durations()
    monkeypatch.setattr(storage_module, "PIECE_WRITES", durations)
    pl = 2 * BLOCK_SIZE
    blob = payload(pl * 4, 9)
    t = make_torrent([(("f",), blob)], pl)
    st = Storage(t, tmp_path)
    assert await st.write_piece_if(0, bytearray(blob[:pl]), lambda: True)
    assert not await st.write_piece_if(1, bytearray(blob[pl:2 * pl]), lambda: False)
    done = anyio.Event()
    st.write_verified(2, bytearray(blob[2 * pl:3 * pl]), lambda error: done.set())
    await done.wait()
    await st.write_block(3, 0, blob[3 * pl:3 * pl + BLOCK_SIZE])
    snap = durations.snapshot()
    assert snap.count == 2 and snap.total > 0
    await st.close()


def recorded_writes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """(offset, length) of each O_DIRECT ``pwritev`` of the storage's writing thread."""
    from torrent_engine.storage import core as storage_module

    writes: list[tuple[int, int]] = []
    real_pwritev = os.pwritev

    def pwritev(fd: int, parts: list[memoryview], offset: int) -> int:
        writes.append((offset, sum(len(p) for p in parts)))
        return real_pwritev(fd, parts, offset)

    monkeypatch.setattr(storage_module.os, "pwritev", pwritev)
    return writes


async def verified_writes_held_back(st: Storage, pieces: list[tuple[int, bytes]],
                                    ) -> dict[int, BaseException | None]:
    """Hand ``pieces`` to ``write_verified`` while the writing thread is busy (a job that waits),
    so they are all queued when it comes to them; each piece's outcome once all are reported."""
    release = threading.Event()
    st._writer.submit(lambda: release.wait(10))
    outcomes: dict[int, BaseException | None] = {}
    all_done = anyio.Event()

    def done(index: int) -> Callable[[BaseException | None], None]:
        def report(error: BaseException | None) -> None:
            outcomes[index] = error
            if len(outcomes) == len(pieces):
                all_done.set()
        return report

    for index, data in pieces:
        st.write_verified(index, bytearray(data), done(index))
    release.set()
    with anyio.fail_after(10):
        await all_done.wait()
    return outcomes


async def test_verified_pieces_that_wait_together_are_written_in_one_write_per_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pieces queued for the writing thread at once are written in index order, each run of
    pieces that follow each other in one file in one O_DIRECT write (a file's odd last piece
    ends its run: its unaligned tail is written cached); a run stops at a file's end and at a
    missing piece; every piece is reported, and the files hold every byte."""
    pl = BLOCK_SIZE
    lay = layout(pl, 4 * pl, 7 * pl + 5000)  # pieces 0-3 in f0; 4-11 in f1, 11 of 5000 bytes
    blob = layout_blob(lay)
    writes = recorded_writes(monkeypatch)
    st = Storage(lay, tmp_path)
    order = [5, 3, 9, 0, 2, 11, 1, 6, 10, 4]  # (7 and 8 never come)
    pieces = [(i, blob[i * pl:i * pl + lay.piece_size(i)]) for i in order]
    outcomes = await verified_writes_held_back(st, pieces)
    assert outcomes == {i: None for i in order}
    # f0: 0-3 in one write; f1: 4-6, then 9-11 (11's aligned part; its 904 last bytes cached)
    assert writes == [(0, 4 * pl), (0, 3 * pl), (5 * pl, 2 * pl + 4096)]
    assert st.bytes_written_direct == 9 * pl + 4096
    assert st.bytes_written_cached == 5000 - 4096
    written = on_disk(tmp_path, lay)
    for i in order:
        assert written[i * pl:i * pl + lay.piece_size(i)] == blob[i * pl:i * pl + lay.piece_size(i)]
    await st.close()


def reporter(outcomes: dict[int, BaseException | None], index: int) -> Callable[[BaseException | None], None]:
    def report(error: BaseException | None) -> None:
        outcomes[index] = error
    return report


async def test_pieces_held_back_to_gather_are_written_with_those_after_them_once_someone_waits(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A storage made with ``write_gather`` holds verified pieces back for that long: pieces
    verified one by one, a loop turn apart, are written in one run once ``write_now`` asks for
    them, and none is reported before."""
    pl = BLOCK_SIZE
    lay = layout(pl, 4 * pl)
    blob = layout_blob(lay)
    writes = recorded_writes(monkeypatch)
    st = Storage(lay, tmp_path, write_gather=5.0)
    outcomes: dict[int, BaseException | None] = {}
    for i in (2, 0, 3, 1):
        st.write_verified(i, bytearray(blob[i * pl:(i + 1) * pl]), reporter(outcomes, i))
        await anyio.sleep(0.05)  # (the writing thread would have taken each one by now)
    assert outcomes == {} and writes == []
    st.write_now()
    with anyio.fail_after(10):
        while len(outcomes) < 4:
            await anyio.sleep(0.01)
    assert outcomes == {i: None for i in range(4)}
    assert writes == [(0, 4 * pl)]
    assert on_disk(tmp_path, lay) == blob
    await st.close()


async def test_pieces_held_back_go_when_their_run_is_full_when_the_time_is_up_and_at_close(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a storage holds back is written without being asked for: once it reaches
    ``RUN_MAX`` bytes, once ``write_gather`` seconds have passed since the first piece held, and
    when the storage closes."""
    from torrent_engine.storage import core as storage_module

    pl = BLOCK_SIZE
    monkeypatch.setattr(storage_module, "RUN_MAX", 3 * pl)
    lay = layout(pl, 8 * pl)
    blob = layout_blob(lay)
    writes = recorded_writes(monkeypatch)

    async def reported(outcomes: dict[int, BaseException | None], n: int) -> None:
        with anyio.fail_after(10):
            while len(outcomes) < n:
                await anyio.sleep(0.01)

    # full: the third piece makes a run of RUN_MAX bytes
    st = Storage(lay, tmp_path, write_gather=5.0)
    outcomes: dict[int, BaseException | None] = {}
    for i in (0, 1, 2):
        st.write_verified(i, bytearray(blob[i * pl:(i + 1) * pl]), reporter(outcomes, i))
    await reported(outcomes, 3)
    assert writes == [(0, 3 * pl)]
    # the time: 0.2 s after the first piece held
    writes.clear()
    timed = Storage(lay, tmp_path, write_gather=0.2)
    outcomes = {}
    timed.write_verified(3, bytearray(blob[3 * pl:4 * pl]), reporter(outcomes, 3))
    await anyio.sleep(0.05)
    timed.write_verified(4, bytearray(blob[4 * pl:5 * pl]), reporter(outcomes, 4))
    assert outcomes == {}
    await reported(outcomes, 2)
    assert writes == [(3 * pl, 2 * pl)]
    # the close
    writes.clear()
    closing = Storage(lay, tmp_path, write_gather=5.0)
    outcomes = {}
    for i in (5, 6, 7):
        closing.write_verified(i, bytearray(blob[i * pl:(i + 1) * pl]), reporter(outcomes, i))
    await closing.close()
    await reported(outcomes, 3)
    assert writes == [(5 * pl, 3 * pl)] and outcomes == {5: None, 6: None, 7: None}
    assert on_disk(tmp_path, lay) == blob
    await st.close()
    await timed.close()


async def test_pieces_held_back_are_written_when_the_storage_is_closed_from_a_worker_thread(
        tmp_path: Path) -> None:
    pl = BLOCK_SIZE
    lay = layout(pl, 2 * pl)
    blob = layout_blob(lay)
    st = Storage(lay, tmp_path, write_gather=5.0)
    outcomes: dict[int, BaseException | None] = {}
    for i in (0, 1):
        st.write_verified(i, bytearray(blob[i * pl:(i + 1) * pl]), reporter(outcomes, i))
    await anyio.to_thread.run_sync(st.close_blocking)
    with anyio.fail_after(10):
        while len(outcomes) < 2:
            await anyio.sleep(0.01)
    assert outcomes == {0: None, 1: None}
    assert on_disk(tmp_path, lay) == blob


async def test_a_gathering_whose_pieces_a_close_from_a_worker_thread_wrote_starts_no_thread(
        tmp_path: Path) -> None:
    """The gathering's timer (the loop's) still fires after the close wrote what it held: it
    finds nothing to write and starts no writing thread (one would idle for seconds)."""
    pl = BLOCK_SIZE
    lay = layout(pl, pl)
    blob = layout_blob(lay)
    st = Storage(lay, tmp_path, write_gather=0.1)
    outcomes: dict[int, BaseException | None] = {}
    st.write_verified(0, bytearray(blob), reporter(outcomes, 0))
    await anyio.to_thread.run_sync(st.close_blocking)
    await anyio.sleep(0.3)  # (the gathering's time is past)
    assert outcomes == {0: None} and on_disk(tmp_path, lay) == blob
    assert "torrent_engine piece writing" not in {t.name for t in threading.enumerate()}


def test_a_write_gather_out_of_range_is_refused(tmp_path: Path) -> None:
    lay = layout(BLOCK_SIZE, BLOCK_SIZE)
    for bad in (-0.1, 10.5):
        with pytest.raises(ValueError, match="write_gather"):
            Storage(lay, tmp_path, write_gather=bad)
    with pytest.raises(ConfigError, match="disk_write_gather"):
        Config(disk_write_gather=-1)


async def test_a_run_that_fails_to_write_fails_each_of_its_pieces_and_no_other(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A full disk under one run's write: each piece of that run is reported with the error
    (``StorageError`` naming the file), the other runs are written."""
    import errno

    from torrent_engine.storage import core as storage_module

    pl = BLOCK_SIZE
    lay = layout(pl, 8 * pl)
    blob = layout_blob(lay)
    real_pwritev = os.pwritev

    def pwritev(fd: int, parts: list[memoryview], offset: int) -> int:
        if offset == 4 * pl:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_pwritev(fd, parts, offset)

    monkeypatch.setattr(storage_module.os, "pwritev", pwritev)
    st = Storage(lay, tmp_path)
    outcomes = await verified_writes_held_back(st, [(i, blob[i * pl:(i + 1) * pl]) for i in (0, 1, 4, 5, 6)])
    assert [i for i, e in outcomes.items() if e is None] == [0, 1]
    for i in (4, 5, 6):
        error = outcomes[i]
        assert isinstance(error, StorageError) and "No space left" in str(error) and "f0" in str(error)
    assert on_disk(tmp_path, lay)[:2 * pl] == blob[:2 * pl]
    await st.close()
