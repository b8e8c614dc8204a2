"""Where the event loop's time goes, callback by callback, in a daemon a benchmark starts: with
this folder first on ``PYTHONPATH``, every ``torrent-engine daemon`` process started runs on
asyncio's own loop (not uvloop: its callbacks cannot be timed from Python) and times each
callback it runs (``Handle._run``). Each turn of the loop (the callbacks between two waits for
I/O) whose callbacks took ``LOOP_CALLBACKS_MS`` (default 50) or more is written to
``LOOP_CALLBACKS_LOG`` (default ``loop_callbacks.log`` in the working folder) with its kinds of
callback, most time first; at the exit, every kind over the whole run, and how many turns took
how long. A kind is a protocol's callback (``_read_ready:PeerProtocol``), a task's step (the
coroutine the task runs, then the innermost of the engine's coroutines it waits in after the
step), or the callback's own name.

    PYTHONPATH=$PWD/bench/loop_callbacks:$PWD python bench/bench_many_downloads.py \
        --torrents 1000 --phases many

``kill -USR1 PID`` clears the totals, ``kill -USR2 PID`` writes them to the log (most callbacks
first): a window of the run, such as an idle minute, measured alone.

The times are the wall clock's: a callback that gives the GIL up (a system call, SHA-1) and
waits to take it back from another thread counts that wait. Asyncio's loop costs more than
uvloop's; the shares are what to read, not the totals. Other processes load it and do nothing.
"""

from __future__ import annotations

import asyncio
import asyncio.events
import atexit
import collections
import os
import selectors
import sys
import time
from typing import Any

if "daemon" in sys.argv:
    import torrent_engine.engine.runtime as _runtime

    _runtime._have_uvloop = lambda: False  # type: ignore[attr-defined]  # (before engine.sync takes it)
    _LOG = os.path.abspath(os.environ.get("LOOP_CALLBACKS_LOG", "loop_callbacks.log"))
    _LEAST = float(os.environ.get("LOOP_CALLBACKS_MS", "50")) / 1000
    _clock = time.perf_counter
    _turn: collections.defaultdict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0])
    _all: collections.defaultdict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0])
    _spent = [0.0, 0]  # this turn's callbacks: seconds, how many
    _turns: collections.Counter[int] = collections.Counter()  # turns by 10 ms bucket
    _out = open(_LOG, "a")  # noqa: SIM115  # (written to until the exit; a restart appends)

    def _kind(callback: Any) -> str:
        owner = getattr(callback, "__self__", None)
        if isinstance(owner, asyncio.Task):
            chain = []
            coro: Any = owner.get_coro()
            while coro is not None and hasattr(coro, "cr_frame"):
                chain.append(coro)
                coro = getattr(coro, "cr_await", None)
            names = [getattr(c, "__qualname__", "?") for c in chain]
            outer = names[1] if len(names) > 1 and names[0] == "TaskHandle._run_coro" else names[0]
            ours = [c for c in chain
                    if c.cr_frame is not None and "torrent_engine" in c.cr_frame.f_code.co_filename]
            return f"task {outer} > {ours[-1].__qualname__ if ours else '-'}"
        protocol = getattr(owner, "_protocol", None)
        if protocol is not None:
            return f"{callback.__name__}:{type(protocol).__qualname__}"
        return str(getattr(callback, "__qualname__", repr(callback)))

    _run = asyncio.events.Handle._run

    def _timed_run(self: asyncio.Handle) -> None:
        began = _clock()
        _run(self)
        took = _clock() - began
        _spent[0] += took
        _spent[1] += 1
        kind = _kind(self._callback)  # type: ignore[attr-defined]
        for table in (_turn, _all):
            entry = table[kind]
            entry[0] += 1
            entry[1] += took

    asyncio.events.Handle._run = _timed_run  # type: ignore[method-assign]

    _select = selectors.DefaultSelector.select

    def _timed_select(self: selectors.BaseSelector, timeout: float | None = None) -> Any:
        took, count = _spent
        _turns[min(int(took * 100), 50)] += 1
        if took >= _LEAST:
            _out.write(f"{time.strftime('%H:%M:%S')} a turn of {took * 1000:.0f} ms, {count} callbacks\n")
            for kind, (n, seconds) in sorted(_turn.items(), key=lambda kv: -kv[1][1])[:10]:
                _out.write(f"    {seconds * 1000:8.1f} ms {int(n):6d}  {kind}\n")
            _out.flush()
        _spent[0], _spent[1] = 0.0, 0
        _turn.clear()
        return _select(self, timeout)

    selectors.DefaultSelector.select = _timed_select  # type: ignore[method-assign]

    def _summary() -> None:
        total = sum(seconds for _, seconds in _all.values()) or 1.0
        _out.write(f"all callbacks: {total:.2f} s\n")
        for kind, (n, seconds) in sorted(_all.items(), key=lambda kv: -kv[1][1])[:60]:
            _out.write(f"  {seconds:8.2f} s {seconds / total * 100:5.1f} % {int(n):8d} "
                       f"{seconds / n * 1e6:7.0f} us  {kind}\n")
        buckets = ", ".join(f"{b * 10}{'+' if b == 50 else ''} ms: {n}" for b, n in sorted(_turns.items()))
        _out.write(f"turns by the time of their callbacks (from): {buckets}\n")
        _out.close()

    atexit.register(_summary)


if "daemon" in sys.argv:
    import signal as _signal

    def _reset(*_args: Any) -> None:
        _all.clear()

    def _dump(*_args: Any) -> None:
        total = sum(seconds for _, seconds in _all.values())
        _out.write(f"callbacks since the last USR1: {total * 1000:.2f} ms\n")
        for kind, (n, seconds) in sorted(_all.items(), key=lambda kv: -kv[1][0])[:40]:
            _out.write(f"  {seconds * 1000:8.2f} ms {int(n):8d}  {kind}\n")
        _out.flush()

    _signal.signal(_signal.SIGUSR1, _reset)
    _signal.signal(_signal.SIGUSR2, _dump)
