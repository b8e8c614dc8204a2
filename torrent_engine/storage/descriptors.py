"""The storage's open file descriptors: a bounded LRU shared by its worker threads, each handle
reference-counted so that a descriptor in use is never closed under a thread."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["FileCache", "Handle"]


class Handle:
    """One file's open descriptors (and its O_DIRECT one) and how many threads use them."""

    __slots__ = ("closing", "direct", "fd", "users", "writable")

    def __init__(self, fd: int, writable: bool) -> None:
        self.fd = fd
        self.direct: int | None = None  # the same file opened with O_DIRECT (writable handles)
        self.writable = writable
        self.users = 0
        self.closing = False

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


class FileCache:
    """Bounded LRU of open descriptors, shared by worker threads under one lock. The bound
    counts descriptors, a file's direct one too; the handle used last is never evicted (so with
    ``max_open=1`` one file may hold both of its descriptors)."""

    def __init__(self, open_file: Callable[[int, bool], int], open_direct: Callable[[int, int], int | None],
                 max_open: int) -> None:
        self._open_file = open_file  # (file index, writable) -> descriptor
        self._open_direct = open_direct  # (file index, its descriptor) -> O_DIRECT descriptor or None
        self._max_open = max_open
        self._lock = threading.Lock()
        self._entries: OrderedDict[int, Handle] = OrderedDict()
        self._fds = 0  # descriptors of the handles in _entries

    def acquire(self, file_index: int, write: bool, direct: bool = False) -> Handle:
        """The file's handle, in use until ``release``; ``direct``: with its O_DIRECT descriptor
        opened too if the storage can (``h.direct`` stays None where it cannot)."""
        with self._lock:
            h = self._entries.get(file_index)
            if h is not None and (h.writable or not write):
                self._entries.move_to_end(file_index)
            else:
                fd = self._open_file(file_index, write)
                if h is not None:  # a read-only handle is replaced by a writable one
                    h.closing = True
                    self._fds -= h.fds()
                    if h.users == 0:
                        h.close()
                h = Handle(fd, write)
                self._entries[file_index] = h
                self._fds += 1
            h.users += 1
            if direct and h.direct is None:
                try:
                    h.direct = self._open_direct(file_index, h.fd)
                except BaseException:
                    h.users -= 1
                    raise
                if h.direct is not None:
                    self._fds += 1
            self._evict()
            return h

    def release(self, h: Handle) -> None:
        """The caller is done with ``h``."""
        with self._lock:
            h.users -= 1
            if h.closing and h.users == 0:
                h.close()
            elif h.users == 0:
                self._evict()  # handles busy at the last eviction may be closed now

    def _evict(self) -> None:
        if self._fds <= self._max_open:
            return
        for key in list(self._entries)[:-1]:  # (never the handle used last)
            if self._fds <= self._max_open:
                break
            h = self._entries[key]
            if h.users == 0:
                del self._entries[key]
                self._fds -= h.fds()
                h.close()

    def close_all(self) -> None:
        """Close every descriptor (those in use once released)."""
        with self._lock:
            for h in self._entries.values():
                h.closing = True
                if h.users == 0:
                    h.close()
            self._entries.clear()
            self._fds = 0

    def open_count(self) -> int:
        """Descriptors open now."""
        with self._lock:
            return self._fds
