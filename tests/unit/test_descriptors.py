"""The descriptor cache the storages of a process share: one bound over every storage, eviction
across all of them, ``close_all`` of one storage closing its handles only, a handle in use never
closed under its thread, idle handles closed by ``close_idle``."""

from __future__ import annotations

import gc
import os
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.unit.torrent_factory import layout, payload
from torrent_engine.policy.picker import BLOCK_SIZE
from torrent_engine.storage import Storage
from torrent_engine.storage.descriptors import FileCache, FileSetClosed

pytestmark = pytest.mark.anyio


def open_fds() -> set[int]:
    return {int(n) for n in os.listdir("/proc/self/fd")}


def is_open(fd: int, path: Path) -> bool:
    """Whether ``fd`` is open on ``path`` (a closed number may be reused by another open)."""
    try:
        st = os.fstat(fd)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == (path.stat().st_dev, path.stat().st_ino)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def files_in(root: Path, count: int) -> list[Path]:
    paths = []
    for i in range(count):
        path = root / f"f{i}"
        path.write_bytes(b"x" * 10)
        paths.append(path)
    return paths


def join(cache: FileCache, paths: list[Path]):  # type: ignore[no-untyped-def]
    return cache.join(lambda i, write: os.open(paths[i], os.O_RDWR if write else os.O_RDONLY),
                      lambda i, fd: None)


async def test_storages_sharing_a_cache_hold_no_more_than_its_bound_together(tmp_path: Path) -> None:
    cache = FileCache(3)
    lay = layout(BLOCK_SIZE, *([BLOCK_SIZE] * 4))
    before = open_fds()
    storages = [Storage(lay, tmp_path / f"s{n}", files=cache, write_mode="cached") for n in range(5)]
    for n, st in enumerate(storages):
        for i in range(lay.num_pieces):
            await st.write_block(i, 0, payload(BLOCK_SIZE, n * 10 + i))
            assert cache.open_count() <= 3 and len(open_fds() - before) <= 3
    for n, st in enumerate(storages):  # every file still reads back, reopened as needed
        for i in range(lay.num_pieces):
            assert await st.read_piece(i) == payload(BLOCK_SIZE, n * 10 + i)
            assert len(open_fds() - before) <= 3
    for st in storages:
        await st.close()
    assert cache.open_count() == 0 and open_fds() - before == set()


async def test_closing_one_storage_closes_its_files_only(tmp_path: Path) -> None:
    cache = FileCache(10)
    lay = layout(BLOCK_SIZE, BLOCK_SIZE, BLOCK_SIZE)
    a = Storage(lay, tmp_path / "a", files=cache, write_mode="cached")
    b = Storage(lay, tmp_path / "b", files=cache, write_mode="cached")
    for st in (a, b):
        for i in range(2):
            await st.write_block(i, 0, bytes(BLOCK_SIZE))
    assert a.open_file_count() == 2 and b.open_file_count() == 2 and cache.open_count() == 4
    await a.close()
    assert a.open_file_count() == 0 and b.open_file_count() == 2 and cache.open_count() == 2
    assert await b.read_piece(1) == bytes(BLOCK_SIZE)
    await b.close()
    assert cache.open_count() == 0


@contextmanager
def collector_off() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def test_a_closed_storage_is_freed_when_let_go_without_the_garbage_collector(tmp_path: Path) -> None:
    # (a storage and its file set held each other: every check's and every session's storage
    # stayed, with its lanes, locks and metainfo, until a collection walked it)
    lay = layout(BLOCK_SIZE, BLOCK_SIZE, BLOCK_SIZE)
    with collector_off():
        shared = FileCache(4)
        for files in (None, shared):  # (a cache of its own, a shared one)
            st = Storage(lay, tmp_path / "s", files=files, write_mode="cached")
            await st.write_block(0, 0, payload(BLOCK_SIZE, 1))
            assert await st.read_piece(0) == payload(BLOCK_SIZE, 1)
            gone = weakref.ref(st)
            await st.close()
            del st
            assert gone() is None
        st = Storage(lay, tmp_path / "s", files=shared)
        assert st.read_piece_blocking(0) == payload(BLOCK_SIZE, 1)  # (a check's: in its thread)
        gone = weakref.ref(st)
        st.close_blocking()
        del st
        assert gone() is None


def test_a_file_set_opens_nothing_after_close_all(tmp_path: Path) -> None:
    cache = FileCache(4)
    files = join(cache, files_in(tmp_path, 1))
    files.release(files.acquire(0, write=False))
    files.close_all()
    with pytest.raises(FileSetClosed, match="file 0"):
        files.acquire(0, write=False)
    assert cache.open_count() == 0


def test_a_handle_in_use_is_never_closed_by_another_storages_eviction(tmp_path: Path) -> None:
    cache = FileCache(2)
    (tmp_path / "mine").mkdir()
    (tmp_path / "theirs").mkdir()
    mine = join(cache, my_files := files_in(tmp_path / "mine", 1))
    theirs = join(cache, files_in(tmp_path / "theirs", 4))
    h = mine.acquire(0, write=False)
    for i in range(4):  # four files through another storage: evictions past the bound
        theirs.release(theirs.acquire(i, write=False))
    assert os.pread(h.fd, 10, 0) == b"x" * 10  # still open, still ours
    assert cache.open_count() <= 2
    mine.release(h)
    for i in range(2):  # now it is the least recently used: evicted
        theirs.release(theirs.acquire(i, write=False))
    assert mine.open_count() == 0 and not is_open(h.fd, my_files[0]) and cache.open_count() <= 2
    theirs.close_all()


def test_close_all_of_a_handle_in_use_closes_it_at_its_last_release(tmp_path: Path) -> None:
    cache = FileCache(4)
    files = join(cache, paths := files_in(tmp_path, 1))
    h = files.acquire(0, write=False)
    files.close_all()
    assert is_open(h.fd, paths[0]) and files.open_count() == 0 and cache.open_count() == 0
    files.release(h)
    assert not is_open(h.fd, paths[0])


def test_idle_handles_are_closed_and_handles_in_use_are_not(tmp_path: Path) -> None:
    clock = Clock()
    cache = FileCache(10, clock=clock)
    files = join(cache, paths := files_in(tmp_path, 3))
    for i in range(3):
        files.release(files.acquire(i, write=False))
    busy = files.acquire(2, write=False)
    clock.now = 30.0
    files.release(files.acquire(1, write=False))  # used again: idle for 0 s now
    assert cache.close_idle(60.0) == 0
    clock.now = 61.0
    assert cache.close_idle(60.0) == 1  # file 0; file 1 was used at 30 s, file 2 is in use
    assert files.open_count() == 2 and is_open(busy.fd, paths[2])
    clock.now = 200.0
    assert cache.close_idle(60.0) == 1 and is_open(busy.fd, paths[2])  # file 1; never the one in use
    files.release(busy)
    clock.now = 300.0
    assert cache.close_idle(60.0) == 1 and not is_open(busy.fd, paths[2]) and cache.open_count() == 0
    again = files.acquire(0, write=False)  # closed files open again on demand
    assert os.pread(again.fd, 10, 0) == b"x" * 10
    files.release(again)
    files.close_all()


def test_a_storage_alone_has_a_cache_of_its_own_and_cannot_take_both(tmp_path: Path) -> None:
    lay = layout(BLOCK_SIZE, BLOCK_SIZE)
    with pytest.raises(ValueError, match="not both"):
        Storage(lay, tmp_path, files=FileCache(4), max_open_files=4)
    with pytest.raises(ValueError, match=">= 1"):
        Storage(lay, tmp_path, max_open_files=0)


def test_an_open_short_of_descriptors_closes_the_unused_handles_and_tries_again(tmp_path: Path) -> None:
    import errno

    cache = FileCache(10)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    idle = join(cache, idle_paths := files_in(tmp_path / "a", 3))
    for i in range(3):
        idle.release(idle.acquire(i, write=False))
    busy = idle.acquire(0, write=False)
    paths = files_in(tmp_path / "b", 2)
    refusals = [OSError(errno.EMFILE, "Too many open files")]

    def open_file(i: int, write: bool) -> int:
        if refusals:
            raise refusals.pop()
        return os.open(paths[i], os.O_RDONLY)

    files = cache.join(open_file, lambda i, fd: None)
    h = files.acquire(0, write=False)
    assert os.pread(h.fd, 10, 0) == b"x" * 10
    # the unused handles went; the one in use stayed
    assert idle.open_count() == 1 and is_open(busy.fd, idle_paths[0])
    files.release(h)
    idle.release(busy)
    refusals.append(OSError(errno.EACCES, "Permission denied"))  # (any other error is the caller's)
    with pytest.raises(PermissionError):
        files.acquire(1, write=False)
    files.close_all()
    idle.close_all()
