"""Where a daemon's adds wait: with this folder first on ``PYTHONPATH``, every ``torrent-engine
daemon`` process started (``python -m torrent_engine ... daemon``) times each add of a torrent
(``JobAdder._add``) from its start to its answer and, at each of its awaits, how long it waited
there (its await chain's frames in ``torrent_engine``, the last three). At the daemon's exit it
writes to ``ADD_WAITS_LOG`` (default ``add_waits.log`` in the working folder) the adds' median
and 90th percentile, then the awaits by the seconds waited there over all adds, most first.

    PYTHONPATH=bench/add_waits:. python bench/bench_many_downloads.py --torrents 1000 --phases many

Other processes load it and do nothing. It wraps each add's coroutine: the adds' own run time
is counted apart from their waits, and the loop's other work is not slowed.
"""

from __future__ import annotations

import asyncio
import asyncio.events
import atexit
import collections
import functools
import os
import sys
import time
from collections.abc import Coroutine, Generator
from typing import Any

if "daemon" in sys.argv:
    _LOG = os.path.abspath(os.environ.get("ADD_WAITS_LOG", "add_waits.log"))
    _waits: collections.Counter[str] = collections.Counter()
    _runs: collections.Counter[str] = collections.Counter()
    _counts: collections.Counter[str] = collections.Counter()
    _took: list[float] = []

    def _where(coro: Any) -> str:
        """The add's await chain where it is suspended: its frames in torrent_engine."""
        chain = []
        while coro is not None:
            frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
            if frame is not None and "torrent_engine" in frame.f_code.co_filename:
                chain.append(f"{frame.f_code.co_filename.rsplit('/', 1)[-1]}:{frame.f_code.co_name}:"
                             f"{frame.f_lineno}")
            coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
        return " > ".join(chain[-3:])

    class _Timed:
        def __init__(self, coro: Coroutine[Any, Any, Any]) -> None:
            self.coro = coro

        def __await__(self) -> Generator[Any, Any, Any]:
            coro, sent, thrown, began = self.coro, None, None, time.perf_counter()
            while True:
                start = time.perf_counter()
                try:
                    out = coro.throw(thrown) if thrown is not None else coro.send(sent)
                except StopIteration as stop:
                    _took.append(time.perf_counter() - began)
                    return stop.value
                stopped = time.perf_counter()
                place = _where(coro)
                _runs[place] += stopped - start
                try:
                    sent, thrown = (yield out), None
                except BaseException as exc:  # (handed on to the add, as the loop threw it)
                    sent, thrown = None, exc
                _waits[place] += time.perf_counter() - stopped
                _counts[place] += 1

    def _write() -> None:
        with open(_LOG, "w") as out:
            took = sorted(_took)
            if took:
                out.write(f"adds {len(took)}: median {took[len(took) // 2] * 1000:.0f} ms, 90th percentile "
                          f"{took[int(len(took) * 0.9)] * 1000:.0f} ms, {sum(took):.1f} s in all\n")
            out.write(f"waited {sum(_waits.values()):.1f} s, ran {sum(_runs.values()):.2f} s; by await:\n")
            for place, waited in _waits.most_common(30):
                out.write(f"{waited:9.2f} s waited {_counts[place]:6d} times, "
                          f"ran {_runs[place]:6.2f} s  {place}\n")

    _set_running_loop = asyncio.events._set_running_loop
    _hooked = [False]

    def _set(loop: asyncio.AbstractEventLoop | None) -> None:
        _set_running_loop(loop)
        if loop is None or _hooked[0]:
            return
        _hooked[0] = True  # (the daemon's loop runs: its modules can be imported now)
        from torrent_engine.jobs.intake import adding

        add = adding.JobAdder._add

        @functools.wraps(add)
        async def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
            return await _Timed(add(self, *args, **kwargs))

        adding.JobAdder._add = timed  # type: ignore[method-assign]
        atexit.register(_write)

    asyncio.events._set_running_loop = _set  # (uvloop and asyncio take it from here as they start)
    asyncio._set_running_loop = _set  # type: ignore[attr-defined]
