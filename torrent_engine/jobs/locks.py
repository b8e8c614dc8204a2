"""A job's lock: one control operation at a time per job, and none kept between operations."""

from __future__ import annotations

import anyio


class JobLock:
    """``async with``: holds the lock of job ``job_id`` in ``locks`` (made when none is there),
    and lets go of it once released with no other operation holding or awaiting it: a job holds
    no lock between its operations (an anyio lock and its queue of waiters were 2 objects a job
    for the collector's sweeps to walk, from its first operation on)."""

    __slots__ = ("_job_id", "_lock", "_locks")

    def __init__(self, locks: dict[str, anyio.Lock], job_id: str) -> None:
        self._locks, self._job_id = locks, job_id
        self._lock: anyio.Lock | None = None

    async def __aenter__(self) -> None:
        lock = self._locks.get(self._job_id)
        if lock is None:
            lock = self._locks[self._job_id] = anyio.Lock()
        await lock.acquire()
        self._lock = lock

    async def __aexit__(self, *exc_info: object) -> None:
        lock = self._lock
        assert lock is not None
        lock.release()  # (to the next waiter, if any: it holds the lock then)
        if not lock.locked() and self._locks.get(self._job_id) is lock:
            del self._locks[self._job_id]
