"""Piece buffers kept for reuse by every torrent of a process that downloads.

A buffer for a piece being assembled (``core.aligned_buffer``) is an anonymous mapping from
128 KiB up: made fresh, its pages are faulted in one by one as the blocks are copied into it,
and unmapping it costs the kernel a TLB flush; a buffer used before is already paged in. 1 000
small torrents downloading at once each made their own and freed them at completion
(bench/RESULTS.md: the pool's figures). One ``BufferPool`` (``SharedResources.buffers``) keeps
the buffers given back, by size, for whichever torrent asks next.

Invariants:
- The pool holds at most ``cap`` bytes; a buffer given back past it replaces buffers of another
  size (the sizes in use change as torrents come and go), else it is dropped.
- A buffer taken from the pool is the caller's alone until given back; its bytes are whatever
  its last user left (a piece overwrites every byte before it is read).
- Buffers are kept only while some torrent uses the pool (``join`` .. ``leave``), and for
  ``linger`` seconds after the last one leaves (torrents added one after another each find the
  buffers the one before gave back): then the pool frees them all, so idle seeds keep no piece
  buffers. The owner calls ``on_tick`` at the time ``on_idle`` names (the engine clock's
  deadline: ``engine/shared.py``); a join meanwhile keeps them.
- Loop-only: not thread-safe (pieces take and give their buffers on the event loop).
"""

from __future__ import annotations

import mmap
import time
from collections.abc import Callable

from .core import aligned_buffer

__all__ = ["BufferPool", "PieceBuffer"]

PieceBuffer = bytearray | mmap.mmap  # (``aligned_buffer``'s: page-aligned from 128 KiB)


class BufferPool:
    """Spare piece buffers by size, at most ``cap`` bytes, while some torrent downloads (and
    ``linger`` seconds after the last one stops, when ``on_idle`` is set)."""

    def __init__(self, cap: int, *, linger: float = 0.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        if cap < 0:
            raise ValueError("cap must be >= 0")
        if linger < 0:
            raise ValueError("linger must be >= 0")
        self.cap = cap
        self.linger = linger
        self._now = monotonic
        # told the time (monotonic) at which the buffers kept may be freed, once the last user
        # left: the owner then calls ``on_tick``. None: they are freed at once.
        self.on_idle: Callable[[float], None] | None = None
        self._free_at = 0.0  # (when the last user left, plus linger)
        self._free: dict[int, list[PieceBuffer]] = {}
        self._kept = 0  # bytes in _free
        self._users = 0
        self.made = 0  # buffers made fresh (take found none of the size)
        self.reused = 0  # buffers taken from the pool

    @property
    def kept_bytes(self) -> int:
        """Bytes held for reuse now."""
        return self._kept

    @property
    def users(self) -> int:
        """Torrents that joined and have not left."""
        return self._users

    def join(self) -> None:
        """A torrent begins taking buffers (until its ``leave``)."""
        self._users += 1

    def leave(self) -> None:
        """A torrent takes no more buffers; once the last one leaves, those kept are freed (at once,
        or ``linger`` seconds later unless a torrent joins meanwhile)."""
        if self._users <= 0:
            raise RuntimeError("BufferPool.leave without a join")
        self._users -= 1
        if self._users:
            return
        if self.linger > 0 and self._kept and self.on_idle is not None:
            self._free_at = self._now() + self.linger
            self.on_idle(self._free_at)
        else:
            self.clear()

    def on_tick(self, now: float) -> bool:
        """The time ``on_idle`` named has come: free the buffers if no torrent joined since (the
        engine clock's visit; False: no round wanted)."""
        if not self._users and now >= self._free_at:
            self.clear()
        return False

    def take(self, size: int) -> PieceBuffer:
        """A buffer of ``size`` bytes: one given back earlier, else a fresh (zeroed) one."""
        free = self._free.get(size)
        if free:
            self._kept -= size
            self.reused += 1
            return free.pop()  # (the last given: the likeliest still in cache)
        self.made += 1
        return aligned_buffer(size)

    def give(self, buf: PieceBuffer) -> None:
        """Keep ``buf`` for a later ``take`` of its size (the caller no longer uses it)."""
        size = len(buf)
        if not self._users or size > self.cap:  # (given back after the last left: not kept)
            return
        while self._kept + size > self.cap:
            other = max((s for s, bufs in self._free.items() if bufs and s != size),
                        key=lambda s: s * len(self._free[s]), default=None)
            if other is None:
                return  # (full of buffers of this size: this one is dropped)
            self._free[other].pop(0)  # (the oldest of the size that holds the most)
            self._kept -= other
        self._free.setdefault(size, []).append(buf)
        self._kept += size

    def clear(self) -> None:
        """Free every buffer kept."""
        self._free.clear()
        self._kept = 0
