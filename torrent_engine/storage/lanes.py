"""A storage's worker threads: each lane runs its jobs in order, one at a time, on the threads of
a ``LanePool`` — its own (one thread, as a storage alone has) or one the shared resources give
every storage of the process, so that a thousand torrents downloading at once share a few
threads instead of starting two each (bench_many_downloads, RESULTS)."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable

__all__ = ["LANE_BATCH", "LANE_IDLE_EXIT", "Lane", "LanePool", "shared_pool_size"]

log = logging.getLogger(__name__)

LANE_IDLE_EXIT = 5.0  # seconds a pool's thread waits for work before it ends
LANE_BATCH = 16  # jobs of one lane a thread runs before the lanes waiting behind it have a turn


def shared_pool_size(cpus: int | None) -> int:
    """The threads of a pool every storage shares: hashing and writing release the GIL, so one a
    core and a few more for writes waiting on a slow disk (at least 4)."""
    return max(4, (cpus or 1) + 2)


class LanePool:
    """Threads that run lanes: a lane with jobs is queued once; a thread takes it, runs up to
    ``LANE_BATCH`` of its jobs in order, and queues it again behind the others if it has more.
    Threads start as lanes wait (at most ``size``) and end after ``LANE_IDLE_EXIT`` idle seconds.
    A job must not wait for another lane's job (the pool's threads could all be waiting)."""

    def __init__(self, size: int, name: str) -> None:
        if size < 1:
            raise ValueError("a lane pool needs at least one thread")
        self.size = size
        self._name = name
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._ready: deque[Lane] = deque()
        self._threads = 0  # running
        self._idle = 0  # waiting for a lane
        self._workers: set[threading.Thread] = set()
        self._ending = False  # release(): idle threads end now

    @property
    def threads(self) -> int:
        """How many of the pool's threads run now."""
        with self._lock:
            return self._threads

    def schedule(self, lane: Lane) -> None:
        """Run ``lane``'s jobs on a thread of the pool (the lane is queued at most once)."""
        with self._lock:
            self._ready.append(lane)
            if self._idle:
                self._work.notify()
                return
            if self._threads >= self.size:
                return  # (a running thread takes it once free)
            self._threads += 1
            thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._workers.add(thread)
        try:
            thread.start()
        except BaseException:
            with self._lock:
                self._threads -= 1
                self._workers.discard(thread)
            raise

    def release(self) -> None:
        """Blocking: end the threads once no lane waits (a pool a storage had of its own, as it
        closes); a lane scheduled later starts one again."""
        with self._lock:
            self._ending = True
            self._work.notify_all()
            workers = list(self._workers)
        for thread in workers:
            if thread is not threading.current_thread():
                thread.join()
        with self._lock:
            self._ending = False

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._ready:
                    woken = True
                    if not self._ending:
                        self._idle += 1
                        woken = self._work.wait(LANE_IDLE_EXIT)
                        self._idle -= 1
                    if (self._ending or not woken) and not self._ready:
                        self._threads -= 1
                        self._workers.discard(threading.current_thread())
                        return
                lane = self._ready.popleft()
            if lane.run_some(LANE_BATCH):
                self.schedule(lane)  # (more jobs: behind the lanes that waited)


class Lane:
    """Jobs run in the order they were submitted, one at a time, on ``pool``'s threads (without
    one: a pool of one thread of its own). A job reports its own result (it must not raise: one
    that does is logged and the next runs)."""

    def __init__(self, name: str, pool: LanePool | None = None) -> None:
        self._name = name
        self._own = pool is None  # (its threads end at stop)
        self._pool = pool if pool is not None else LanePool(1, name)
        self._lock = threading.Lock()
        self._jobs: deque[Callable[[], None]] = deque()
        self._queued = False  # in the pool's queue or on one of its threads
        self._drained = threading.Event()  # set while no job waits or runs
        self._drained.set()

    def submit(self, job: Callable[[], None]) -> None:
        """Run ``job`` after the jobs submitted before it."""
        with self._lock:
            self._jobs.append(job)
            self._drained.clear()
            if self._queued:
                return
            self._queued = True
        self._pool.schedule(self)

    def run_some(self, most: int) -> bool:
        """(A pool's thread.) Run up to ``most`` jobs in order; whether jobs are left (the lane
        is then still queued: the caller queues it again)."""
        for _ in range(most):
            with self._lock:
                if not self._jobs:
                    self._queued = False
                    self._drained.set()
                    return False
                job = self._jobs.popleft()
            try:
                job()
            except BaseException:  # (a job reports its own errors: this is a bug)
                log.exception("a storage job failed")
        with self._lock:
            if self._jobs:
                return True
            self._queued = False
            self._drained.set()
            return False

    def running(self) -> bool:
        """Whether jobs wait or run, or a thread of its own is still up (a ``stop`` would wait
        for them: not a call for the event loop)."""
        with self._lock:
            if self._queued:
                return True
        return self._own and self._pool.threads > 0

    def stop(self) -> None:
        """Blocking: wait until the jobs already submitted have run (and a pool of its own has
        ended its thread)."""
        self._drained.wait()
        if self._own:
            self._pool.release()
