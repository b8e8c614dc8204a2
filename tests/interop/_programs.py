"""A third-party program run for a test: started, waited for until it answers, stopped."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def program(argv: list[str], log: Path, ready: Callable[[], bool], what: str,
            limit: float = 30.0) -> Iterator[subprocess.Popen[bytes]]:
    """``argv`` run with its output in ``log``, yielded once ``ready`` says it answers (a failure
    with its log if it ends first, or after ``limit`` seconds); terminated at the end (killed if
    it does not end within 10 s)."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + limit
        while not ready():
            assert proc.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, f"{what} did not start"
            time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
