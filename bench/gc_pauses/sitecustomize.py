"""The garbage collector's pauses in a daemon a benchmark starts: with this folder first on
``PYTHONPATH``, every ``torrent-engine daemon`` process started (``python -m torrent_engine ...
daemon``) appends each collection that took ``GC_PAUSES_MS`` (default 15) or more to the file
``GC_PAUSES_LOG`` (default ``gc_pauses.log`` in the working folder): its time, generation,
duration and how many objects it freed. With ``GC_PAUSES_GARBAGE=SECONDS`` it also keeps what
the collections free (``gc.DEBUG_SAVEALL``) for that many seconds (or until the process exits,
if sooner), then collects once more and writes the kinds of object, the functions and the frames
found, most first (what makes the reference cycles). With ``GC_PAUSES_COUNTS=1`` it also writes
each count of the oldest generation (``gc.get_objects(2)``, a walk of them all) and its duration;
with ``GC_PAUSES_CENSUS=1``, on ``SIGUSR1``, the type of every tracked object a sweep walks, most
first, and how many more the start froze for good (``GC_PAUSES_CENSUS=all``: every tracked object
a whole sweep walks, the frozen too, which are frozen again after). With ``GC_PAUSES_STACK=1`` each collection
written is followed by the generations' counts before it and the stack that set it off (the
allocation the collector ran in).

    PYTHONPATH=bench/gc_pauses:. python bench/bench_seedbox.py --torrents 10000 \
        --clients ours-qb --skip-checking --settle 5 --idle-seconds 10

Other processes load it and do nothing.
"""

from __future__ import annotations

import atexit
import collections
import gc
import os
import sys
import threading
import time
import traceback
from typing import Any

if "daemon" in sys.argv:
    _LOG = os.path.abspath(os.environ.get("GC_PAUSES_LOG", "gc_pauses.log"))
    _LEAST = float(os.environ.get("GC_PAUSES_MS", "15"))
    _STACK = os.environ.get("GC_PAUSES_STACK") == "1"
    _began = [0.0]
    _counts = [(0, 0, 0)]

    def _timed(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            _began[0] = time.perf_counter()
            _counts[0] = gc.get_count()
            return
        took = (time.perf_counter() - _began[0]) * 1000
        if took >= _LEAST:
            with open(_LOG, "a") as out:
                out.write(f"{time.time():.1f} gen{info['generation']} {took:.0f} ms, "
                          f"{info['collected']} freed\n")
                if _STACK:
                    out.write(f"    the generations' counts before: {_counts[0]}\n")
                    for line in traceback.format_stack(limit=30)[:-1]:
                        out.write("    " + line.strip().replace("\n", " | ") + "\n")

    gc.callbacks.append(_timed)

    if os.environ.get("GC_PAUSES_GARBAGE"):
        gc.set_debug(gc.DEBUG_SAVEALL)
        _reported = threading.Lock()

        def _report(seconds: float) -> None:
            if not _reported.acquire(blocking=False):
                return  # (once: at the end of the window, or at the exit before it)
            gc.collect()  # (what is unreachable by then, whether a collection came to it or not)
            found = list(gc.garbage)
            gc.set_debug(0)
            gc.garbage.clear()
            kinds = collections.Counter(type(o).__qualname__ for o in found)
            functions = collections.Counter(o.__qualname__ for o in found if type(o).__name__ == "function")
            frames = collections.Counter(  # (where the frames in cycles were: a caught exception's)
                f"frame {o.f_code.co_qualname} ({o.f_code.co_filename.rsplit('/', 2)[-1]}:{o.f_lineno})"
                for o in found if type(o).__name__ == "frame")
            with open(_LOG, "a") as out:
                out.write(f"{len(found)} objects freed by the collector in {seconds:g} s\n")
                for name, count in kinds.most_common(20) + functions.most_common(20) + frames.most_common(30):
                    out.write(f"{count:9d} {name}\n")

        _window = float(os.environ["GC_PAUSES_GARBAGE"])
        _since = time.monotonic()

        def _at_end_of_window() -> None:
            time.sleep(_window)
            _report(_window)

        threading.Thread(target=_at_end_of_window, daemon=True).start()
        atexit.register(lambda: _report(time.monotonic() - _since))

    if os.environ.get("GC_PAUSES_COUNTS"):
        _objects = gc.get_objects

        def _timed_objects(generation: int | None = None) -> list[Any]:
            """``gc.get_objects``; a count of the oldest generation (the daemon's count of what
            a sweep walks: a walk of them all) written with its time and duration."""
            began = time.perf_counter()
            found = _objects(generation)
            if generation == 2:
                took = (time.perf_counter() - began) * 1000
                with open(_LOG, "a") as out:
                    out.write(f"{time.time():.1f} old objects {len(found)} counted in {took:.2f} ms\n")
            return found

        gc.get_objects = _timed_objects

    if os.environ.get("GC_PAUSES_CENSUS"):
        import signal

        def _census(signum: int, frame: object) -> None:
            """Every tracked object's type that a sweep walks (every generation's), most
            first, and how many more the start froze for good, on SIGUSR1."""
            whole = os.environ.get("GC_PAUSES_CENSUS") == "all"
            if whole:  # (what a whole sweep walks: the frozen too, frozen again after)
                gc.unfreeze()
            found = gc.get_objects()
            if whole:
                gc.freeze()
            kinds = collections.Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in found)
            with open(_LOG, "a") as out:
                out.write(f"{time.time():.1f} census: {len(found)} tracked objects a sweep walks, "
                          f"{gc.get_freeze_count()} frozen\n")
                for name, count in kinds.most_common(60):
                    out.write(f"{count:9d} {name}\n")
            del found

        signal.signal(signal.SIGUSR1, _census)
