"""A storage's worker threads: each lane runs its jobs in order on one thread of its own."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

__all__ = ["LANE_IDLE_EXIT", "Lane"]

LANE_IDLE_EXIT = 5.0  # seconds a lane's thread waits for a job before it ends


class Lane:
    """One thread of its own running jobs in the order they were submitted. The thread starts
    with the first job and ends after ``LANE_IDLE_EXIT`` idle seconds or at ``stop()``; a job
    reports its own result (it must not raise)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pending = 0  # jobs submitted and not yet run

    def submit(self, job: Callable[[], None]) -> None:
        """Run ``job`` after the jobs submitted before it."""
        with self._lock:
            self._pending += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
        self._jobs.put(job)

    def _run(self) -> None:
        while True:
            try:
                job = self._jobs.get(timeout=LANE_IDLE_EXIT)
            except queue.Empty:
                with self._lock:
                    if not self._pending:  # (a job submitted meanwhile is taken next round)
                        self._thread = None
                        return
                continue
            if job is None:
                return
            try:
                job()
            finally:
                with self._lock:
                    self._pending -= 1

    def running(self) -> bool:
        """Whether the lane's thread runs (a ``stop`` would wait for it)."""
        with self._lock:
            return self._thread is not None

    def stop(self) -> None:
        """Blocking: run the jobs already submitted, then end the thread."""
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is not None:
                self._jobs.put(None)
        if thread is not None:
            thread.join()
