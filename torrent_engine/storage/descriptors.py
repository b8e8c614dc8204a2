"""Open file descriptors: one bounded LRU (``FileCache``) that any number of storages share, so
that the descriptors a process holds follow a setting, not the number of torrents it keeps.

Each storage joins the cache with its own openers (``FileCache.join`` -> ``FileSet``); entries
are keyed by (file set, file index). Eviction runs across all of them, oldest use first; a
storage's ``close_all`` closes its handles only. Every handle is reference-counted, so a
descriptor in use by a worker thread is never closed under it (eviction, idle closing and
``close_all`` of a handle in use close it when its last user releases it). ``close_idle``
closes the handles nobody used for a while (a seeding torrent nobody asks for holds none); when
an open fails for want of descriptors, the handles not in use are closed and the open tried once
more.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from ..engine.fdlimit import exhausted

__all__ = ["ALONE_MAX_OPEN_FILES", "FileCache", "FileSet", "FileSetClosed", "Handle"]

# A storage made on its own (tests, tools) gets a private cache of this many descriptors.
ALONE_MAX_OPEN_FILES = 32

OpenFile = Callable[[int, bool], int]  # (file index, writable) -> descriptor
OpenDirect = Callable[[int, int], "int | None"]  # (file index, its descriptor) -> O_DIRECT one or None


class Handle:
    """One file's open descriptors (and its O_DIRECT one) and how many threads use them."""

    __slots__ = ("closing", "direct", "fd", "idle_since", "users", "writable")

    def __init__(self, fd: int, writable: bool) -> None:
        self.fd = fd
        self.direct: int | None = None  # the same file opened with O_DIRECT (writable handles)
        self.writable = writable
        self.users = 0
        self.closing = False
        self.idle_since = 0.0  # the clock at the last release (meaningful while users == 0)

    def fds(self) -> int:
        """How many descriptors the handle holds."""
        return 1 if self.direct is None else 2

    def close(self) -> None:
        """Close its descriptors."""
        try:
            os.close(self.fd)
        finally:
            if self.direct is not None:
                os.close(self.direct)


class FileSetClosed(OSError):
    """A file was to be opened through a file set after its ``close_all``."""


def _closed(file_index: int, _how: object) -> int:
    """The opener of a file set after its ``close_all`` (both ``OpenFile`` and ``OpenDirect``)."""
    raise FileSetClosed(f"file {file_index}: its storage's files are closed")


class FileSet:
    """One storage's files in a ``FileCache``: its openers, and the calls its worker threads make.
    Opening happens outside the cache's lock (a slow open — a network file system, a large
    ``ftruncate`` — stalls this storage only), one open at a time per storage."""

    __slots__ = ("_cache", "_open_direct", "_open_file", "_opening")

    def __init__(self, cache: FileCache, open_file: OpenFile, open_direct: OpenDirect) -> None:
        self._cache = cache
        self._open_file = open_file
        self._open_direct = open_direct
        self._opening = threading.Lock()

    def acquire(self, file_index: int, write: bool, direct: bool = False) -> Handle:
        """The file's handle, in use until ``release``; ``direct``: with its O_DIRECT descriptor
        opened too if the storage can (``h.direct`` stays None where it cannot)."""
        cache = self._cache
        h = cache._take(self, file_index, write)
        if h is None:
            with self._opening:  # (two threads of this storage never open one file twice)
                h = cache._take(self, file_index, write)
                if h is None:
                    try:
                        fd = self._open_file(file_index, write)
                    except Exception as exc:
                        # the process is out of descriptors: give back the unused ones, once
                        if not exhausted(exc) or not cache.shed():
                            raise
                        fd = self._open_file(file_index, write)
                    h = cache._put(self, file_index, Handle(fd, write))
        if direct and h.direct is None:
            try:
                with self._opening:
                    if h.direct is None:
                        direct_fd = self._open_direct(file_index, h.fd)
                        if direct_fd is not None:
                            cache._add_direct(h, direct_fd)
            except BaseException:
                cache._release(h)
                raise
        return h

    def release(self, h: Handle) -> None:
        """The caller is done with ``h``."""
        self._cache._release(h)

    def close_all(self) -> None:
        """Close this storage's descriptors (those in use once released); others' stay open.
        The set opens nothing more (``FileSetClosed``): its openers, the storage's own methods,
        are let go, so that a closed storage and its file set do not hold each other (a cycle
        only the garbage collector would free, with everything the storage holds)."""
        self._open_file = self._open_direct = _closed
        self._cache._close_set(self)

    def open_count(self) -> int:
        """Descriptors this storage holds open now."""
        return self._cache._count(self)


class FileCache:
    """Bounded LRU of open descriptors, shared by storages and their worker threads under one
    lock. The bound counts descriptors, a file's direct one too; the handle used last is never
    evicted (so with ``max_open=1`` one file may hold both of its descriptors)."""

    def __init__(self, max_open: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        if max_open < 1:
            raise ValueError("max_open must be >= 1")
        self.max_open = max_open
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[FileSet, int], Handle] = OrderedDict()
        self._fds = 0  # descriptors of the handles in _entries

    def join(self, open_file: OpenFile, open_direct: OpenDirect) -> FileSet:
        """A storage's place in the cache: ``open_file(index, writable)`` opens one of its files,
        ``open_direct(index, fd)`` opens it again with O_DIRECT (or returns None)."""
        return FileSet(self, open_file, open_direct)

    # -- what FileSet calls ----------------------------------------------------------------

    def _take(self, owner: FileSet, file_index: int, write: bool) -> Handle | None:
        """The cached handle if it serves (in use from now on), else None: open one."""
        key = (owner, file_index)
        with self._lock:
            h = self._entries.get(key)
            if h is None or (write and not h.writable):
                return None
            self._entries.move_to_end(key)
            h.users += 1
            return h

    def _add_direct(self, h: Handle, fd: int) -> None:
        """``h`` (in use) has its O_DIRECT descriptor now."""
        with self._lock:
            h.direct = fd
            if not h.closing:  # (a handle closing closes it with the rest at its last release)
                self._fds += 1
                self._evict()

    def _put(self, owner: FileSet, file_index: int, h: Handle) -> Handle:
        key = (owner, file_index)
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:  # a read-only handle is replaced by a writable one
                old.closing = True
                self._fds -= old.fds()
                if old.users == 0:
                    old.close()
            self._entries[key] = h
            self._fds += h.fds()
            h.users += 1
            self._evict()
        return h

    def _release(self, h: Handle) -> None:
        with self._lock:
            h.users -= 1
            if h.users == 0:
                h.idle_since = self._clock()
                if h.closing:
                    h.close()
                else:
                    self._evict()  # handles busy at the last eviction may be closed now

    def _evict(self) -> None:
        if self._fds <= self.max_open:
            return
        for key in list(self._entries)[:-1]:  # (never the handle used last)
            if self._fds <= self.max_open:
                break
            h = self._entries[key]
            if h.users == 0:
                del self._entries[key]
                self._fds -= h.fds()
                h.close()

    def _close_set(self, owner: FileSet) -> None:
        with self._lock:
            for key in [k for k in self._entries if k[0] is owner]:
                h = self._entries.pop(key)
                self._fds -= h.fds()
                h.closing = True
                if h.users == 0:
                    h.close()

    def _count(self, owner: FileSet) -> int:
        with self._lock:
            return sum(h.fds() for (o, _), h in self._entries.items() if o is owner)

    # -- the engine's calls ------------------------------------------------------------------

    def close_idle(self, idle_for: float) -> int:
        """Close the handles nobody has used for ``idle_for`` seconds; how many descriptors."""
        closed = 0
        with self._lock:
            deadline = self._clock() - idle_for
            for key, h in list(self._entries.items()):
                if h.users == 0 and h.idle_since <= deadline:
                    del self._entries[key]
                    self._fds -= h.fds()
                    closed += h.fds()
                    h.close()
        return closed

    def shed(self) -> int:
        """Close every handle not in use now (the process ran out of descriptors); how many
        descriptors."""
        return self.close_idle(-1.0)

    def open_count(self) -> int:
        """Descriptors open now, over every storage."""
        with self._lock:
            return self._fds

