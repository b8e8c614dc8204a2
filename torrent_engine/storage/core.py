"""Torrent data on disk: pieces mapped onto files, ``pread``/``pwrite`` in worker threads.

Invariants (see also docs/storage-and-picking.md):
- Nothing is ever opened, created or removed outside ``save_path``: every path is built from
  checked components and its real path (symlinks resolved) must lie below ``save_path``.
- Pad files (BEP 47) are never created or written; their ranges read as zeros.
- Files are created lazily on first write and sized with ``ftruncate`` (sparse where the file
  system allows); nothing is preallocated by writing zeros. Empty files are created at the
  first write (or by ``create_empty_files``).
- Files are opened when read or written, through a bounded LRU of descriptors
  (``descriptors.FileCache``) that the storages of a process share (a ``TorrentManager``'s
  ``SharedResources`` owns it: ``Config.max_open_files``; a storage made alone has its own);
  handles are reference-counted, so a descriptor in use by a worker thread is never closed under
  it; ``close()`` closes this storage's descriptors, no other's.
- Every file written since the last ``flush()`` is in the dirty set (added after its write
  completes), so ``flush()`` makes all earlier writes durable.
- Whole verified pieces (``write_piece_if``) go through two threads of the storage's own, one
  hashing and one writing, each taking its pieces in order: hashing the next piece overlaps
  writing the last, and the file's writes are never many threads queued on its inode lock (with
  one worker thread per piece they were: pieces waited ~100 ms on a 2-core machine, the buffer
  cap filled and the socket stopped being read). Both threads end when idle and at ``close()``.
- A piece its caller checked already can be written without an await (``write_verified``): the
  writing thread queues its result and the loop takes every result queued so far in one
  callback (one wake-up of the loop per batch, no task or future per piece). The writing thread
  takes every such piece queued so far at once, and writes those that follow each other in one
  file together (a ``pwritev`` of ``DIRECT_CHUNK`` bytes at a time, up to ``RUN_MAX`` a run, not
  one write a piece). The pieces of a torrent never overlap, so only a piece's own writes need
  an order, and a piece is never written twice at once.
- Direct writes (``write_mode="direct"``, the default): the writing thread writes the part of each
  file slice of a whole piece that starts and ends on ``DIRECT_ALIGN`` file offsets through a
  second descriptor of the file opened with ``O_DIRECT``, from a page-aligned scratch buffer of
  its own (``mmap``, reused); the slice's unaligned head and tail, and single blocks
  (``write_block``), go through the page cache as before. Where the file system refuses
  ``O_DIRECT`` (the open fails, or a write fails with EINVAL, as tmpfs before Linux 6.6 and some
  FUSE file systems do) the storage writes cached from then on, logged once; a download never
  fails for it.

Why mixing the two on one file is safe (Linux's rules for ``O_DIRECT``; other systems that have
the flag follow the same model):
- A direct write first writes back and then invalidates the page-cache pages of its range, and
  invalidates them again once the data is on the device: a page read (or read ahead) before it
  is dropped, a later buffered read (seeding, verify, recheck) reads the new bytes from disk.
  Pages being read are locked, so a read racing the invalidation is waited for, not kept stale.
- The direct part of a slice covers whole pages inside that slice only; the bytes of any other
  piece (or of this piece's head and tail) lie in other pages, written buffered. A page is
  therefore written buffered or direct by one piece's slice; a block of it written earlier by
  ``write_block`` (a piece written block by block, then again whole) is still dirty in the cache
  only until the direct write's write-back of its range. If the page cache cannot be invalidated
  before the write (pages mapped by someone else), ext4 and XFS write buffered instead.
- ``fsync`` is per inode: ``flush()`` syncing the file through its ordinary descriptor makes the
  direct writes durable too (their allocation and the device's write cache), and a file written
  directly enters the dirty set like any other, after its write.
- Both descriptors of a file belong to one cached handle: they count against ``max_open_files``
  and are closed together (eviction, ``close()``, ``delete_files()``).

Files changed or gone under the torrent (deleted, replaced, truncated, overwritten in place):
- The storage knows each file as its data was verified (``watch_files``: its size and mtime when
  the session checked it) or as our own last write left it; a file read or written is looked at
  again (``fstat`` of the open descriptor, ``stat`` of its path) at its first use after being
  opened and then at most once every ``check_interval`` seconds, and after a failed read: never a
  stat per block.
- A file whose path leads nowhere or to another file than the one open (st_dev/st_ino), or that
  is shorter than the torrent says, fails the read or write with ``MissingFiles``, and so does
  every use of it after that (a write never creates again a file that held data either). One
  whose size or mtime changed fails every read of it with ``FileChanged`` until the reader says
  it took note (``changes_seen``): its data must be verified again before it is served.
  ``read_piece_blocking`` (verification, which hashes what it reads) is not refused for a change,
  nor for a file shorter than it should be (a check reads what is left of it).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import math
import mmap
import os
import stat
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NoReturn, Protocol, TypeVar, runtime_checkable

import anyio.to_thread

try:  # (anyio finds its event loop through sniffio when installed: see _hand_results)
    import sniffio
except ImportError:  # pragma: no cover
    sniffio = None  # type: ignore[assignment]

from ..config import DISK_WRITE_MODES, MAX_WRITE_GATHER, DiskWriteMode
from ..errors import FileChanged, MissingFiles, StorageError
from ..formats.layout import FileMap, FileSlice, TorrentLayout
from .descriptors import ALONE_MAX_OPEN_FILES, FileCache
from .lanes import Lane, LanePool
from .paths import O_NOFOLLOW, check_components, check_inside, real_path
from .rename import FileMove, move_files
from .timing import PIECE_WRITES

__all__ = ["DIRECT_ALIGN", "DIRECT_CHUNK", "FILE_CHECK_INTERVAL", "FileStamp", "PieceStorage", "RenamesFiles",
           "Storage", "StorageFactory", "VerifiedPieceWriter", "WRITE_CHUNK", "WatchedFiles", "verified"]

T = TypeVar("T")
log = logging.getLogger("torrent_engine.storage")

_O_DIRECT: int = getattr(os, "O_DIRECT", 0)  # 0: the system has none (macOS, Windows): cached only


class PieceStorage(Protocol):
    """Everything the session and verify ask of storage, so it can be wrapped (to inject
    slowness or errors in tests, or to time I/O) or replaced: ``Session(storage=factory)``.
    Failures raise ``StorageError``."""

    def file_path(self, file_index: int) -> Path | None:
        """Where file ``file_index`` is on disk (None: a pad file, never stored)."""

    async def write_block(self, index: int, begin: int, data: bytes | memoryview) -> None:
        """Write one block of piece ``index`` at offset ``begin``."""

    async def write_piece_if(self, index: int, data: bytes | bytearray | memoryview,
                             check: Callable[[], bool]) -> bool:
        """Run ``check()`` and, only if it returns True, write ``data`` as the whole of piece
        ``index``, in one worker-thread call; return what ``check`` returned."""

    async def read_block(self, index: int, begin: int, length: int) -> bytes:
        """Read ``length`` bytes of piece ``index`` from offset ``begin``."""

    async def read_piece(self, index: int) -> bytes:
        """Read a whole piece."""

    def read_piece_blocking(self, index: int) -> bytes:
        """Read a whole piece from a worker thread (verify reads and hashes in one hop)."""

    async def flush(self) -> None:
        """Make every block written so far durable (before resume data counts it)."""

    async def create_empty_files(self) -> None:
        """Create the torrent's zero-length files (no piece ever writes them)."""

    async def close(self) -> None:
        """Flush and close the files."""

    async def delete_files(self) -> None:
        """Remove the torrent's files and those of their folders left empty; nothing else."""


@runtime_checkable
class VerifiedPieceWriter(Protocol):
    """An optional capability of a ``PieceStorage``, checked by what the storage offers (not by
    its class): writing a piece its caller has checked already without an await. The session
    then hands it every piece it hashed as the blocks came (no task per piece); a storage without
    it gets those pieces through ``write_piece_if``. A wrapper that changes how pieces are
    written must offer both, or neither (``Storage`` offers both)."""

    def write_verified(self, index: int, data: bytes | bytearray | memoryview,
                       done: Callable[[BaseException | None], None]) -> None:
        """Write ``data`` as the whole of piece ``index``; then ``done(None)`` or ``done(error)``
        on the calling event loop."""

    def write_now(self) -> None:
        """Hand the pieces ``write_verified`` holds back (to write them with the pieces after
        them) to the writing thread now: someone waits for them."""


FileStamp = tuple[int, int]  # a file's (size, mtime in ns)


@runtime_checkable
class WatchedFiles(Protocol):
    """An optional capability of a ``PieceStorage``: it notices files changed under it (see the
    module's invariants) and raises ``FileChanged`` for them, which its reader acknowledges."""

    def watch_files(self, stamps: list[FileStamp | None]) -> None:
        """Each file as it was when its data was verified (None: it held none, or is not known);
        a read that finds it otherwise raises ``FileChanged``."""

    def changes_seen(self, files: Iterable[int]) -> None:
        """The reader took note of the ``FileChanged`` of ``files``: their reads go on (a later
        change raises again)."""


@runtime_checkable
class RenamesFiles(Protocol):
    """An optional capability of a ``PieceStorage``: it moves files to other paths below the save
    path while open, and reads and writes them there from then on."""

    async def rename_files(self, renamed: Mapping[int, tuple[str, ...]]) -> None:
        """Keep each file of ``renamed`` (index -> path components) under its new path."""


StorageFactory = Callable[[TorrentLayout, Path], PieceStorage]  # (torrent, save path) -> storage


# Bytes per buffered pwrite (write_block, the unaligned ends of a direct write, "cached" mode).
# Writing a 1 MiB piece 16 KiB at a time cost the writing thread 0.4-0.6 CPU s per GiB of a new
# file, one 1 MiB pwrite 1.0-1.9 s, 64 KiB 0.7-0.9 s (bench/RESULTS.md; likely the page cache's
# large folios, which a large write asks for); on a VM handing freed pages back to its host,
# 16 KiB pwrites into new pages swung between 0.3 and 3.1 s per GiB from minute to minute.
WRITE_CHUNK = 16 * 1024
# O_DIRECT: offsets, lengths and the buffer's address are multiples of DIRECT_ALIGN (the page
# size; any device's logical block size divides it), DIRECT_CHUNK bytes per pwrite, copied into
# the writing thread's scratch buffer first: 1 MiB direct pwrites cost 0.05-0.06 CPU s per GiB
# every round where buffered ones cost 0.3-3.1 (bench/RESULTS.md).
DIRECT_ALIGN = 4096
DIRECT_CHUNK = 1 << 20
# Verified pieces waiting for the writing thread together that follow each other in one file are
# written at once, up to RUN_MAX bytes: a 64 KiB piece written alone cost the writing thread 6
# times the CPU a byte of a 1 MiB write (bench/RESULTS.md, "Runs of pieces in one write"). A
# storage made with ``write_gather`` holds a verified piece back that many seconds at most before
# its write, so that the pieces verified after it join its run: a thousand small torrents at once
# each verify a piece every few hundred milliseconds, one write each; held back 0.25 s, they
# cost 12-27 % less CPU (bench/RESULTS.md, "Verified pieces gathered"). The pieces held reach
# RUN_MAX bytes, or someone waits for them (``write_now``, ``close``): they go at once.
RUN_MAX = 4 << 20
# Buffers from ``aligned_buffer`` at least this large are mapped at a page boundary (below it, a
# bytearray: glibc's malloc maps its own pages from 128 KiB up, so this adds no mappings).
ALIGNED_MIN = 128 * 1024


def aligned_buffer(size: int) -> bytearray | mmap.mmap:
    """A zeroed buffer of ``size`` bytes for a piece being assembled: from ``ALIGNED_MIN`` up,
    mapped at a page boundary, so that an O_DIRECT write takes it as it is (``_write_direct``:
    no copy into the scratch buffer). Written into and read like a bytearray of a fixed size."""
    if size < ALIGNED_MIN:
        return bytearray(size)
    return mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE)  # (anonymous: private memory, as malloc's)


def buffer_address(view: memoryview) -> int:
    """The address of ``view``'s first byte; -1 when it cannot be had (a read-only or empty
    buffer: ctypes maps writable ones only), which no alignment test passes."""
    if view.readonly or not view.nbytes or not view.c_contiguous:
        return -1
    import ctypes  # (here: only the writing thread needs it, once a piece)

    anchor = ctypes.c_char.from_buffer(view)
    try:
        return ctypes.addressof(anchor)
    finally:
        del anchor  # (it holds an export of the buffer: let it go now)


# Seconds between two looks (fstat, stat) at a file in use: a file changed or gone is seen at its
# first read after that long (fstat and stat cost about as much as a cached 16 KiB pread each).
FILE_CHECK_INTERVAL = 2.0
_Use = Literal["serve", "verify", "write"]  # what a file is open for when it is looked at


@dataclass(slots=True)
class _Queued:
    """A verified piece waiting for the writing thread (``write_verified``)."""

    index: int
    slices: list[FileSlice]
    view: memoryview
    done: Callable[[BaseException | None], None]
    loop: asyncio.AbstractEventLoop


_scratches = threading.local()


def _scratch() -> mmap.mmap:
    """The calling thread's scratch buffer for O_DIRECT writes (``DIRECT_CHUNK`` bytes, mapped at
    a page boundary, as O_DIRECT wants): one a thread of the lane pools, whatever storage it
    writes for, kept while the thread lives. (One a storage was a mapping, its first pages'
    faults and an unmapping for each of a thousand small torrents.)"""
    buf: mmap.mmap | None = getattr(_scratches, "buf", None)
    if buf is None:
        buf = _scratches.buf = mmap.mmap(-1, DIRECT_CHUNK)
    return buf


def _byte_range(views: list[memoryview], at: int, length: int) -> list[memoryview]:
    """Bytes ``at`` to ``at + length`` of ``views`` taken one after the other, as views of them."""
    out: list[memoryview] = []
    for v in views:
        if length <= 0:
            break
        n = len(v)
        if at < n:
            part = v[at:at + length]
            out.append(part)
            length -= len(part)
            at = 0
        else:
            at -= n
    return out


def _chunks(views: list[memoryview], size: int) -> Iterator[list[memoryview]]:
    """``views`` one after the other, cut into runs of at most ``size`` bytes."""
    run: list[memoryview] = []
    room = size
    for v in views:
        while len(v):
            part = v[:room]
            run.append(part)
            room -= len(part)
            v = v[len(part):]
            if not room:
                yield run
                run, room = [], size
    if run:
        yield run


def verified() -> bool:
    """The ``check`` for ``write_piece_if`` of a piece its caller has checked already: the piece
    goes straight to the writing thread (one thread hand-over less)."""
    return True


def _settle(fut: asyncio.Future[bool], ok: bool, exc: BaseException | None) -> None:
    if fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(ok)


class Storage:
    """The files of one torrent under ``save_path``.

    All disk access runs in worker threads (``anyio.to_thread``); the methods are safe to call
    concurrently from one event loop. Errors are ``StorageError`` naming the file.
    """

    def __init__(
        self, torrent: TorrentLayout, save_path: str | os.PathLike[str], *, max_open_files: int | None = None,
        write_mode: DiskWriteMode = "direct", files: FileCache | None = None,
        check_interval: float = FILE_CHECK_INTERVAL, renamed: Mapping[int, tuple[str, ...]] | None = None,
        lanes: LanePool | None = None, write_gather: float = 0.0,
    ) -> None:
        """``files``: the descriptor cache to open files through (shared with other storages);
        without it the storage has a cache of its own of ``max_open_files`` descriptors.
        ``lanes``: the threads its hashing and writing run on (shared with other storages);
        without it, a thread each of its own.
        ``write_gather``: seconds ``write_verified`` may hold a piece back for the pieces after
        it to be written with it (0: handed to the writing thread at once; see ``RUN_MAX``).
        ``renamed``: the files kept under another path than the torrent's (index -> path
        components below the save path; see ``rename_files``)."""
        if files is not None and max_open_files is not None:
            raise ValueError("give either files (a shared cache) or max_open_files, not both")
        if files is None:
            files = FileCache(ALONE_MAX_OPEN_FILES if max_open_files is None else max_open_files)
        if write_mode not in DISK_WRITE_MODES:
            raise ValueError(f"write_mode must be one of {', '.join(DISK_WRITE_MODES)}")
        if not 0 <= write_gather <= MAX_WRITE_GATHER:
            raise ValueError(f"write_gather must be from 0 to {MAX_WRITE_GATHER} seconds, not {write_gather}")
        self.torrent = torrent
        self.file_map = FileMap(torrent)
        self.save_path = real_path(save_path)
        # Paths are checked now (lexically, cheap) and built on first use: pathlib is slow enough
        # to matter for 100 000-file torrents.
        self._stored: list[bool] = []
        for f in torrent.files:
            on_disk = not (f.pad or "l" in f.attr)  # pad files never; symlinks are not created
            if on_disk:
                check_components(f.path)
            self._stored.append(on_disk)
        self._renamed: dict[int, tuple[str, ...]] = {}
        for index, parts in (renamed or {}).items():
            check_components(parts)
            if 0 <= index < len(self._stored):
                self._renamed[index] = tuple(parts)
        self._path_cache: dict[int, Path] = {}
        # held while a file is opened and while files are renamed (an open never creates a file
        # at a path a rename has just left); taken before ``_watch_lock`` when both are
        self._paths_lock = threading.RLock()
        self._cache = files.join(self._open, self._open_direct)
        self._dir_lock = threading.Lock()
        self._dirty: set[int] = set()  # files written since the last flush()
        self._dirty_lock = threading.Lock()
        self._empty_files_done = False
        self._closed = False
        self._hasher = Lane("torrent_engine piece hashing", lanes)  # write_piece_if: check(), in order
        self._writer = Lane("torrent_engine piece writing", lanes)  # then the write, in order
        # write_verified: (done, error) of pieces written, for the loop to take in one callback
        self._results: list[tuple[Callable[[BaseException | None], None], BaseException | None]] = []
        self._results_lock = threading.Lock()
        # write_verified: pieces for the writing thread, taken all at once by one job
        self._queued: list[_Queued] = []
        self._queued_lock = threading.Lock()
        self._write_gather = write_gather
        self._gathering: asyncio.TimerHandle | None = None  # (the loop's) ends the gathering
        # whole pieces' aligned parts with O_DIRECT; False for good after the first refusal
        self._direct = write_mode == "direct" and _O_DIRECT != 0
        self.bytes_written_direct = 0  # bytes written with O_DIRECT (the writing thread counts)
        self.bytes_written_cached = 0  # bytes written through the page cache (under _dirty_lock)
        # files changed or gone (see the module's invariants), under _watch_lock
        n = len(torrent.files)
        self.check_interval = check_interval
        self._watch_lock = threading.Lock()
        self._known: list[FileStamp | None] = [None] * n  # as verified, or as our last write left it
        self._looked_at = [-math.inf] * n  # when each file was last looked at (monotonic)
        self._writing = [0] * n  # our writes of each file in progress (its mtime moves under them)
        self._changed: set[int] = set()  # found changed: reads raise FileChanged until changes_seen
        self._gone: dict[int, int] = {}  # found gone or short (bytes left): every use raises MissingFiles

    # -- paths -------------------------------------------------------------------------------

    def file_path(self, file_index: int) -> Path | None:
        """Where file ``file_index`` lives on disk (None for pad files and symlinks)."""
        if not self._stored[file_index]:
            return None
        path = self._path_cache.get(file_index)
        if path is None:
            parts = self._renamed.get(file_index) or self.torrent.files[file_index].path
            path = self._path_cache[file_index] = self.save_path.joinpath(*parts)
        return path

    async def rename_files(self, renamed: Mapping[int, tuple[str, ...]]) -> None:
        """Keep the files ``renamed`` names (index -> path components below the save path) under
        those paths from now on: the files on disk are moved there (all or none:
        ``StorageError`` naming the file), open descriptors go on reading and writing the same
        files, what was verified stays verified."""
        for parts in renamed.values():
            check_components(parts)

        def rename() -> None:
            with self._paths_lock, self._watch_lock:
                moves: list[FileMove] = []
                for index, parts in renamed.items():
                    old = self.file_path(index)
                    if old is None:
                        raise StorageError(f"file {index} is not stored on disk")
                    new = self.save_path.joinpath(*parts)
                    if new != old:
                        moves.append((old, new))
                move_files(self.save_path, moves)
                for index, parts in renamed.items():
                    self._renamed[index] = tuple(parts)
                    self._path_cache.pop(index, None)

        await self._run(rename)

    def _require_path(self, file_index: int) -> Path:
        path = self.file_path(file_index)
        if path is None:
            raise StorageError(f"file {file_index} is not stored on disk")
        return path

    def _make_parents(self, path: Path) -> None:
        parent = path.parent
        with self._dir_lock:
            if parent != self.save_path:
                check_inside(self.save_path, parent)
            parent.mkdir(parents=True, exist_ok=True)

    def _open(self, file_index: int, write: bool) -> int:
        """Open (and for writing create and size) one file; called by one thread of the
        storage's at a time (``FileSet``). A file that held data (read, or known:
        ``watch_files``, our writes) and is gone: ``MissingFiles``."""
        with self._paths_lock:
            return self._open_at(file_index, write)

    def _open_at(self, file_index: int, write: bool) -> int:
        path = self._require_path(file_index)
        self._looked_at[file_index] = -math.inf  # (what it holds is compared at its first use)
        try:
            check_inside(self.save_path, path)
            if not write:
                try:
                    return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                except FileNotFoundError:
                    raise self._missing(file_index, 0, for_good=self._known[file_index] is not None) from None
            self._make_parents(path)
            mode = 0o755 if "x" in self.torrent.files[file_index].attr else 0o644
            create = os.O_CREAT if self._known[file_index] is None else 0
            try:
                fd = os.open(path, os.O_RDWR | create | os.O_CLOEXEC | O_NOFOLLOW, mode)
            except FileNotFoundError:
                raise self._missing(file_index, 0, for_good=True) from None
            try:
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode):
                    raise StorageError(f"{path} is not a regular file")
                length = self.torrent.files[file_index].length
                if st.st_size != length:
                    os.ftruncate(fd, length)  # sparse: no zeros are written
            except BaseException:
                os.close(fd)
                raise
            return fd
        except OSError as exc:
            raise StorageError(f"{path}: {exc.strerror or exc}") from exc

    def _open_direct(self, file_index: int, fd: int) -> int | None:
        """File ``file_index`` opened again with O_DIRECT, for writing (called as ``_open`` is,
        ``fd`` its ordinary descriptor); None where that cannot be done."""
        if not self._direct:
            return None
        path = self._require_path(file_index)
        try:
            with self._paths_lock:
                path = self._require_path(file_index)
                direct = os.open(path, os.O_WRONLY | os.O_CLOEXEC | O_NOFOLLOW | _O_DIRECT)
        except OSError as exc:
            self._stop_direct(f"{path}: cannot open with O_DIRECT: {exc.strerror or exc}")
            return None
        try:
            a, b = os.fstat(fd), os.fstat(direct)
            same = (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
        except OSError:
            same = False
        if not same:
            os.close(direct)  # the path was swapped since: this write goes through ``fd``
            return None
        return direct

    def _stop_direct(self, why: str) -> None:
        if self._direct:
            self._direct = False
            log.info("writing to %s through the page cache from now on (%s)", self.save_path, why)

    # -- files changed or gone -----------------------------------------------------------------

    def watch_files(self, stamps: list[FileStamp | None]) -> None:
        """Each file as it was when its data was verified (size, mtime_ns; None: not known, the
        first look takes it as it is); a read that finds a file otherwise raises ``FileChanged``."""
        with self._watch_lock:
            for i, stamp in enumerate(stamps[: len(self._known)]):
                if stamp is not None:
                    self._known[i] = stamp
                self._looked_at[i] = -math.inf

    def changes_seen(self, files: Iterable[int]) -> None:
        """The reader took note of the ``FileChanged`` of ``files``: their reads go on."""
        with self._watch_lock:
            self._changed.difference_update(files)

    def _missing(self, file_index: int, left: int, *, for_good: bool) -> MissingFiles:
        """File ``file_index`` is gone (``left`` 0) or only ``left`` bytes long; ``for_good``: the
        storage never reads or writes it again (found so by a read to serve it, or a write: a
        check reads what there is and a download writes it whole again)."""
        if for_good:
            self._gone.setdefault(file_index, left)
        parts = self._renamed.get(file_index) or self.torrent.files[file_index].path
        return MissingFiles(["/".join(parts)], [(file_index, left)])

    def _look(self, file_index: int, fd: int, use: _Use, now: float | None = None) -> None:
        """Compare file ``file_index`` (open as ``fd`` for ``use``) with what the storage knows of
        it, if it is due (see the module's invariants; ``now`` None: at once): ``MissingFiles`` if
        gone or replaced, or (to serve it) shorter; ``FileChanged`` (to serve it) if changed."""
        read = use == "serve"
        left = self._gone.get(file_index)
        if left is not None:
            raise self._missing(file_index, left, for_good=True)
        if read and file_index in self._changed:
            raise FileChanged(str(self.file_path(file_index)), [file_index])
        if now is not None and now - self._looked_at[file_index] < self.check_interval:
            return
        with self._watch_lock:
            path = self._require_path(file_index)  # (under the lock: a rename moves it meanwhile)
            self._looked_at[file_index] = time.monotonic() if now is None else now
            st = os.fstat(fd)
            try:
                there = os.stat(path)
            except OSError:
                there = None
            if there is None or (there.st_dev, there.st_ino) != (st.st_dev, st.st_ino):
                # (deleted, or another file put in its place)
                raise self._missing(file_index, 0, for_good=use != "verify")
            if read and st.st_size < self.torrent.files[file_index].length:
                raise self._missing(file_index, st.st_size, for_good=True)  # (a check reads what is left)
            if self._writing[file_index]:
                return  # (our own write moves its mtime: it is known again once the write is over)
            stamp = (st.st_size, st.st_mtime_ns)
            known = self._known[file_index]
            if known is None:
                self._known[file_index] = stamp
            elif known != stamp:
                self._known[file_index] = stamp
                self._changed.add(file_index)
        if read and file_index in self._changed:
            raise FileChanged(str(path), [file_index])

    def _written(self, file_index: int, fd: int) -> None:
        """Our write of the file is over: it is known as it is now."""
        with self._watch_lock:  # (one step: a look in between would take our write for a change)
            self._writing[file_index] -= 1
            st = os.fstat(fd)
            self._known[file_index] = (st.st_size, st.st_mtime_ns)

    # -- blocking work (worker threads) ------------------------------------------------------

    def _write_sync(self, slices: list[FileSlice], data: memoryview, direct: bool = False) -> None:
        """Write ``data`` over ``slices``; ``direct`` (the writing thread only: its scratch
        buffer) writes each slice's aligned part with O_DIRECT where the storage can."""
        pos = 0
        for s in slices:
            chunk = data[pos : pos + s.length]
            pos += s.length
            if not s.pad:
                self._write_file(s.file_index, [chunk], s.file_offset, s.length, direct)

    def _write_file(self, file_index: int, views: list[memoryview], start: int, length: int,
                    direct: bool) -> None:
        """Write ``views`` one after the other (``length`` bytes in all) at ``start`` of one file:
        its aligned middle with O_DIRECT where ``direct`` and the storage can, the rest cached."""
        h = self._cache.acquire(file_index, write=True, direct=direct and self._direct)
        try:
            self._look(file_index, h.fd, "write", time.monotonic())
            with self._watch_lock:
                self._writing[file_index] += 1
            try:
                end = start + length
                lo = -(-start // DIRECT_ALIGN) * DIRECT_ALIGN
                hi = end // DIRECT_ALIGN * DIRECT_ALIGN
                if h.direct is not None and self._direct and hi > lo:
                    self._write_cached_range(h.fd, views, start, 0, lo - start)
                    done = self._write_direct(h.direct, _byte_range(views, lo - start, hi - lo), lo)
                    self._write_cached_range(h.fd, views, start, lo - start + done, length)
                else:
                    self._write_cached_range(h.fd, views, start, 0, length)
            finally:
                self._written(file_index, h.fd)
            with self._dirty_lock:  # after the write: a flush running now misses nothing
                self._dirty.add(file_index)
        except OSError as exc:
            path = self.file_path(file_index)
            raise StorageError(f"{path}: write failed: {exc.strerror or exc}") from exc
        finally:
            self._cache.release(h)

    def _write_cached_range(self, fd: int, views: list[memoryview], start: int, a: int, b: int) -> None:
        """Bytes ``a`` to ``b`` of ``views`` (one after the other, the first byte at ``start`` of
        the file) through the page cache."""
        for part in _byte_range(views, a, b - a):
            self._write_cached(fd, part, start + a)
            a += len(part)

    def _write_cached(self, fd: int, data: memoryview, offset: int) -> None:
        done = 0
        while done < len(data):  # (WRITE_CHUNK at a time: see there)
            done += os.pwrite(fd, data[done:done + WRITE_CHUNK], offset + done)
        if done:
            with self._dirty_lock:
                self.bytes_written_cached += done

    def _write_direct(self, fd: int, views: list[memoryview], offset: int) -> int:
        """Write ``views`` one after the other (each of an aligned length, at an aligned
        ``offset``) with O_DIRECT, ``DIRECT_CHUNK`` bytes a ``pwritev``: straight from them when
        their addresses are aligned too (piece buffers from ``aligned_buffer``), else through
        the scratch buffer; the bytes written, fewer if a write was refused (then the storage
        writes cached). (The copy into the scratch buffer was 0.3 CPU s per GiB of the writing
        thread's: bench/RESULTS.md.)"""
        scratch: memoryview | None = None
        if any(buffer_address(v) % DIRECT_ALIGN for v in views):
            scratch = memoryview(_scratch())
        done = 0
        try:
            for parts in _chunks(views, DIRECT_CHUNK):
                n = sum(len(part) for part in parts)
                if scratch is not None:
                    at = 0
                    for part in parts:
                        scratch[at:at + len(part)] = part
                        at += len(part)
                    parts = [scratch[:n]]
                try:
                    written = os.pwritev(fd, parts, offset + done)
                except OSError as exc:
                    if exc.errno != errno.EINVAL:
                        raise
                    self._stop_direct(f"an O_DIRECT write was refused: {exc.strerror or exc}")
                    break
                done += written
                self.bytes_written_direct += written
                if written != n:  # (a short write: the rest, maybe unaligned now, cached)
                    break
        finally:
            if scratch is not None:
                scratch.release()
        return done

    def _read_sync(self, slices: list[FileSlice], length: int, serve: bool = True) -> bytes:
        """The bytes of ``slices``; ``serve``: refused (``FileChanged``) from a file changed
        since its data was verified (verification reads it anyway: it hashes what it reads)."""
        if len(slices) == 1 and not slices[0].pad:
            return self._read_one_sync(slices[0], serve)
        out = bytearray(length)
        view = memoryview(out)
        pos = 0
        for s in slices:
            if not s.pad:
                h = self._cache.acquire(s.file_index, write=False)
                try:
                    done = 0
                    while done < s.length:
                        n = os.preadv(h.fd, [view[pos + done : pos + s.length]], s.file_offset + done)
                        if n == 0:
                            self._short(s.file_index, h.fd, s.file_offset + done, serve)
                        done += n
                    self._look(s.file_index, h.fd, "serve" if serve else "verify", time.monotonic())
                except OSError as exc:
                    self._failed(s.file_index, h.fd, exc, serve)
                finally:
                    self._cache.release(h)
            pos += s.length  # pad ranges stay zero
        view.release()
        return bytes(out)

    def _read_one_sync(self, s: FileSlice, serve: bool) -> bytes:
        """One slice straight into a bytes object (the common case: no extra copy)."""
        h = self._cache.acquire(s.file_index, write=False)
        try:
            data = os.pread(h.fd, s.length, s.file_offset)
            while len(data) < s.length:
                more = os.pread(h.fd, s.length - len(data), s.file_offset + len(data))
                if not more:
                    self._short(s.file_index, h.fd, s.file_offset + len(data), serve)
                data += more
            # (after the read: a change made before the look is seen, the bytes read included)
            self._look(s.file_index, h.fd, "serve" if serve else "verify", time.monotonic())
            return data
        except OSError as exc:
            self._failed(s.file_index, h.fd, exc, serve)
        finally:
            self._cache.release(h)

    def _short(self, file_index: int, fd: int, at: int, serve: bool) -> NoReturn:
        """A read found the end of the file at ``at`` (or before: a read that starts past the end
        reads nothing): ``MissingFiles`` (gone, replaced, shorter), with the bytes it has."""
        self._look(file_index, fd, "verify")
        raise self._missing(file_index, min(at, os.fstat(fd).st_size), for_good=serve)

    def _failed(self, file_index: int, fd: int, exc: OSError, serve: bool) -> NoReturn:
        """A read failed: ``MissingFiles`` if the file is gone, else ``StorageError`` saying why."""
        try:
            self._look(file_index, fd, "serve" if serve else "verify")
        except OSError:
            pass
        raise StorageError(f"{self.file_path(file_index)}: read failed: {exc.strerror or exc}") from exc

    def _flush_sync(self) -> None:
        with self._dirty_lock:
            dirty, self._dirty = sorted(self._dirty), set()
        for i in dirty:
            h = self._cache.acquire(i, write=False)
            try:
                os.fsync(h.fd)
            except OSError as exc:
                with self._dirty_lock:
                    self._dirty.update(dirty)
                raise StorageError(f"{self.file_path(i)}: fsync failed: {exc.strerror or exc}") from exc
            finally:
                self._cache.release(h)

    def _create_empty_sync(self) -> None:
        for i, f in enumerate(self.torrent.files):
            path = self.file_path(i)
            if f.length == 0 and path is not None and not path.exists():
                try:
                    check_inside(self.save_path, path)
                    self._make_parents(path)
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | O_NOFOLLOW, 0o644)
                    os.close(fd)
                except OSError as exc:
                    raise StorageError(f"{path}: {exc.strerror or exc}") from exc
        self._empty_files_done = True

    def _write_pieces_sync(self, pieces: list[tuple[list[FileSlice], memoryview]]) -> BaseException | None:
        """Whole pieces' write, in the writing thread: one piece (its slices), or a run of pieces
        that follow each other in one file (``_run_end``) in one write. The error it met, if any
        (every piece of a run's; reported to the caller's loop, never raised in the thread). Each
        piece counts its share of the write's time in ``PIECE_WRITES`` (the daemon's
        ``/metrics``)."""
        try:
            if not self._empty_files_done:
                self._create_empty_sync()
            start = time.perf_counter()
            if len(pieces) == 1:
                self._write_sync(*pieces[0], direct=True)
            else:
                first = pieces[0][0][0]
                views = [view for _, view in pieces]
                self._write_file(first.file_index, views, first.file_offset, sum(len(v) for v in views), True)
            share = (time.perf_counter() - start) / len(pieces)
            for _ in pieces:
                PIECE_WRITES.observe(share)
        except BaseException as exc:
            return exc
        return None

    def _stop_lanes(self) -> None:
        self._hasher.stop()  # (first: it may still hand pieces to the writer)
        self._writer.stop()

    def _close_sync(self) -> None:
        self._stop_lanes()
        self._cache.close_all()

    def _delete_sync(self) -> None:
        self._cache.close_all()
        dirs: set[Path] = set()
        for path in (self.file_path(i) for i in range(len(self._stored))):
            if path is None:
                continue
            parent = path.parent
            while parent != self.save_path and self.save_path in parent.parents:
                dirs.add(parent)
                parent = parent.parent
            if not self._real_parent_inside(path):
                continue  # a folder on the way was swapped for a symlink leading elsewhere
            try:
                if path.is_symlink() or path.is_file():
                    path.unlink()  # a symlink itself is removed, never its target
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise StorageError(f"{path}: cannot delete: {exc.strerror or exc}") from exc
        for d in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
            if not self._real_parent_inside(d) or d.is_symlink():
                continue
            try:
                d.rmdir()  # only succeeds when empty: other people's files are never touched
            except OSError:
                pass

    def _real_parent_inside(self, path: Path) -> bool:
        if path.parent == self.save_path:
            return True
        try:
            check_inside(self.save_path, path.parent)
        except StorageError:
            return False
        return True

    async def _run(self, fn: Callable[[], T]) -> T:
        if self._closed:
            raise StorageError("storage is closed")
        return await anyio.to_thread.run_sync(fn)

    # -- public API --------------------------------------------------------------------------

    async def write_block(self, index: int, begin: int, data: bytes | memoryview) -> None:
        """Write ``data`` at ``begin`` of piece ``index`` (across file boundaries; pad skipped)."""
        slices = self.file_map.slices(index, begin, len(data))
        view = memoryview(data)
        if not self._empty_files_done:
            await self._run(self._create_empty_sync)
        await self._run(lambda: self._write_sync(slices, view))

    async def write_piece_if(self, index: int, data: bytes | bytearray | memoryview,
                             check: Callable[[], bool]) -> bool:
        """Run ``check()`` and, only if it returns True, write ``data`` as the whole of piece
        ``index``; return what ``check`` returned. ``check`` runs in the storage's hashing
        thread, the write in its writing thread, each in the order the pieces came (see the
        module's invariants; ``check=verified``: straight to the writing thread); ``data``
        must not change until this returns, so a cancelled caller still waits for both (a few
        milliseconds a piece)."""
        if self._closed:
            raise StorageError("storage is closed")
        slices = self.file_map.slices(index, 0, len(data))
        view = memoryview(data)
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[bool] = loop.create_future()

        def report(ok: bool, exc: BaseException | None) -> None:
            try:
                loop.call_soon_threadsafe(_settle, fut, ok, exc)
            except RuntimeError:  # the loop is closed: nobody waits any more
                pass

        def write() -> None:
            error = self._write_pieces_sync([(slices, view)])
            report(error is None, error)

        def hash_then_write() -> None:
            try:
                ok = check()
            except BaseException as exc:
                report(False, exc)
                return
            if ok:
                self._writer.submit(write)
            else:
                report(False, None)

        if check is verified:
            self._writer.submit(write)
        else:
            self._hasher.submit(hash_then_write)
        with anyio.CancelScope(shield=True):  # the threads read ``data`` until they report
            ok = await fut
        return ok

    def write_verified(self, index: int, data: bytes | bytearray | memoryview,
                       done: Callable[[BaseException | None], None]) -> None:
        """Write ``data`` as the whole of piece ``index`` (already checked) in the writing
        thread, after the writes submitted before it (the pieces queued meanwhile are written
        with it, in the order of their indexes: ``_write_queued``); then call ``done(None)``, or
        ``done(error)``, on the calling event loop. Results that come while the loop is busy are
        handed over together, in one callback. ``data`` must not change until ``done`` is called (after
        ``close()`` a write already submitted still runs; its ``done`` comes only if the loop
        still runs)."""
        if self._closed:
            raise StorageError("storage is closed")
        queued = _Queued(index, self.file_map.slices(index, 0, len(data)), memoryview(data), done,
                         asyncio.get_running_loop())
        with self._queued_lock:
            first = not self._queued
            self._queued.append(queued)
            # (the bytes of a gathering begun or under way: summed only then, not for each piece)
            gathering = self._write_gather > 0 and (first or self._gathering is not None)
            held = sum(len(q.view) for q in self._queued) if gathering else 0
        if not first and self._gathering is None:
            return  # (the job that will take the queue is already submitted)
        if gathering and held < RUN_MAX:
            if first:  # (the loop's own timer: no task, nothing to cancel but the handle)
                self._gathering = queued.loop.call_later(self._write_gather, self._gathered)
            return
        self.write_now()  # (a gathering under way ends)
        if first:
            self._writer.submit(self._write_queued)

    def write_now(self) -> None:
        """Hand the pieces ``write_verified`` holds back to the writing thread now (nothing
        when none is held). A loop callback, as ``write_verified`` is."""
        gathering, self._gathering = self._gathering, None
        if gathering is not None:
            gathering.cancel()
            self._writer.submit(self._write_queued)

    def _gathered(self) -> None:
        self._gathering = None
        with self._queued_lock:
            held = bool(self._queued)
        if held:  # (none when ``close_blocking`` had them written: no thread started for nothing)
            self._writer.submit(self._write_queued)

    def _write_queued(self) -> None:
        """(The writing thread.) Write every piece ``write_verified`` queued so far, in the order
        of their indexes, each run of pieces that follow each other in one file (up to
        ``RUN_MAX`` bytes) in one write; each run's results are queued for the loop once it is
        written."""
        with self._queued_lock:
            batch, self._queued = self._queued, []
        batch.sort(key=lambda q: q.index)
        i = 0
        while i < len(batch):
            j = self._run_end(batch, i)
            error = self._write_pieces_sync([(q.slices, q.view) for q in batch[i:j]])
            with self._results_lock:  # (each run's at once: its buffers go back to the pool)
                first = not self._results
                self._results.extend((q.done, error) for q in batch[i:j])
            if first:
                try:
                    batch[i].loop.call_soon_threadsafe(self._hand_results)
                except RuntimeError:  # the loop is closed: nobody waits any more
                    pass
            i = j

    def _run_end(self, batch: list[_Queued], i: int) -> int:
        """Where the run of pieces starting at ``batch[i]`` ends (exclusive): the pieces after it
        that continue it in the same file, each before the last a whole number of
        ``DIRECT_ALIGN`` bytes long, with the first at an aligned offset (so the run is one
        aligned write), ``RUN_MAX`` bytes at most; only when writing with O_DIRECT."""
        first = batch[i].slices
        if not self._direct or len(first) != 1 or first[0].pad or first[0].file_offset % DIRECT_ALIGN:
            return i + 1
        last = first[0]
        size = last.length
        j = i + 1
        while j < len(batch) and batch[j].index == batch[j - 1].index + 1 and not last.length % DIRECT_ALIGN:
            nxt = batch[j].slices
            if (len(nxt) != 1 or nxt[0].pad or nxt[0].file_index != last.file_index
                    or nxt[0].file_offset != last.file_offset + last.length
                    or size + nxt[0].length > RUN_MAX):
                break
            last = nxt[0]
            size += last.length
            j += 1
        return j

    def _hand_results(self) -> None:
        # A plain loop callback is no task: anyio (through sniffio) would not know its loop.
        token = sniffio.current_async_library_cvar.set("asyncio") if sniffio is not None else None
        try:
            with self._results_lock:
                results, self._results = self._results, []
            for done, error in results:
                try:
                    done(error)
                except Exception:  # (one caller's bug must not lose the others' results)
                    log.exception("piece write callback failed")
        finally:
            if token is not None:
                sniffio.current_async_library_cvar.reset(token)

    async def read_block(self, index: int, begin: int, length: int) -> bytes:
        """``length`` bytes at ``begin`` of piece ``index``; ``StorageError`` if not on disk."""
        slices = self.file_map.slices(index, begin, length)
        return await self._run(lambda: self._read_sync(slices, length))

    async def read_piece(self, index: int) -> bytes:
        """The whole of piece ``index`` (pad ranges are zeros)."""
        self.file_map.check_range(index, 0, 0)
        return await self.read_block(index, 0, self.torrent.piece_size(index))

    def read_piece_blocking(self, index: int) -> bytes:
        """``read_piece`` without the thread hop: blocking, for code already in a worker thread
        (verify reads and hashes a piece in one hop this way)."""
        if self._closed:
            raise StorageError("storage is closed")
        size = self.torrent.piece_size(index) if 0 <= index < self.file_map.num_pieces else 0
        return self._read_sync(self.file_map.slices(index, 0, size), size, serve=False)

    async def flush(self) -> None:
        """Make every block written so far durable (``fsync`` of each file written since the last
        flush). Call it before recording pieces as had in resume data."""
        with self._dirty_lock:
            if not self._dirty and not self._closed:
                return  # (nothing written since: no worker-thread hop, e.g. an idle seed's stop)
        await self._run(self._flush_sync)

    async def create_empty_files(self) -> None:
        """Create the torrent's zero-length files (done automatically at the first write)."""
        if not any(f.length == 0 for f in self.torrent.files):  # (most have none: no thread hop)
            self._empty_files_done = True
            return
        await self._run(self._create_empty_sync)

    async def close(self) -> None:
        """Close every cached descriptor (after writing the pieces ``write_verified`` holds
        back); later calls fail with ``StorageError``."""
        if not self._closed:
            self._closed = True
            self.write_now()
            if self._hasher.running() or self._writer.running() or self._cache.open_count():
                await anyio.to_thread.run_sync(self._close_sync)
            else:  # (nothing to wait for, nothing open: an idle seed's stop takes no thread hop)
                self._close_sync()

    def close_blocking(self) -> None:
        """``close`` from a worker thread (a check that read the files in that thread)."""
        if not self._closed:
            self._closed = True
            with self._queued_lock:
                held = bool(self._queued)
            if held:  # (pieces held back: written first; a gathering's timer then finds none, and
                # does nothing: it is the loop's, not to be cancelled from this thread)
                self._writer.submit(self._write_queued)
            self._close_sync()

    async def delete_files(self) -> None:
        """Remove the torrent's files and those of their folders left empty; nothing else."""
        self._closed = True
        self.write_now()  # (their results come as any write's: the files go after)
        await anyio.to_thread.run_sync(self._stop_lanes)
        await anyio.to_thread.run_sync(self._delete_sync)

    def open_file_count(self) -> int:
        """How many descriptors this storage holds open now."""
        return self._cache.open_count()
