"""The process's file descriptor limit (``RLIMIT_NOFILE``): how many are open, whether there is
room for new work, and the error that says so when there is not.

Descriptors are a per-process resource that peers' sockets, data files, the API's connections
and the job store all draw from; when they run out, every ``open``, ``accept`` and ``connect``
fails at once. New work (an added torrent) is refused while fewer than ``reserve()`` are free,
so that what runs keeps its descriptors and the API can still answer.
"""

from __future__ import annotations

import errno
import os
import resource

from ..errors import DescriptorLimitReached

__all__ = ["WORKER_THREADS", "DescriptorLimitReached", "exhausted", "limit", "limit_reached", "open_count",
           "reserve", "room"]

# errno values meaning "no descriptor (or the memory for one) is left": the process's limit, the
# system's, or the kernel's buffers for a socket
_EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def limit() -> int:
    """The soft RLIMIT_NOFILE (what ``open`` and ``accept`` fail past)."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return soft if soft != resource.RLIM_INFINITY else 1 << 30


def open_count() -> int:
    """Descriptors the process holds now (-1 where the system does not say)."""
    for folder in ("/proc/self/fd", "/dev/fd"):
        try:
            return len(os.listdir(folder)) - 1  # (listdir's own descriptor of the folder)
        except OSError:
            continue
    return -1


# worker threads that may each hold a descriptor for a moment (a resume file or a .torrent being
# written, a folder being synced): anyio's default thread limiter, which every
# ``to_thread.run_sync`` without a limiter of its own draws from
WORKER_THREADS = 40


def reserve(soft: int | None = None) -> int:
    """Descriptors kept free for what runs: the API's connections and the job store (a
    sixteenth of the limit, 8 to 64) and a descriptor for each worker thread (resume data and
    .torrent files written at once). Below this many free, new work is refused: the worker
    threads' files then never take the descriptor an ``accept`` of the API needs."""
    soft = limit() if soft is None else soft
    return max(8, min(64, soft // 16)) + WORKER_THREADS


def room(soft: int | None = None) -> int:
    """Descriptors free beyond the reserve now (where the system does not say how many are open:
    all but the reserve): what a burst of files opened at once may take."""
    soft = limit() if soft is None else soft
    return max(0, soft - max(0, open_count()) - reserve(soft))


def exhausted(exc: BaseException) -> bool:
    """Whether ``exc`` (or an error it was raised from) is a failure for want of descriptors."""
    seen: BaseException | None = exc
    for _ in range(8):  # (a chain of causes, not a loop)
        if seen is None:
            return False
        if isinstance(seen, DescriptorLimitReached):
            return True
        if isinstance(seen, OSError) and seen.errno in _EXHAUSTED:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def limit_reached(what: str = "") -> DescriptorLimitReached:
    """The error that says the descriptor limit is reached and what to change (``what``: the
    work refused, e.g. "cannot add a torrent")."""
    soft, count = limit(), open_count()
    held = f" ({count} open)" if count >= 0 else ""
    head = f"{what}: " if what else ""
    return DescriptorLimitReached(
        f"{head}too many open files: the process's descriptor limit ({soft}) is reached{held}; "
        "raise LimitNOFILE (ulimit -n) or lower max_open_files or peer connections")
