"""What the job service's views of live jobs cost in a daemon a benchmark starts: with this
folder first on ``PYTHONPATH``, every ``torrent-engine daemon`` process started times, with
``time.perf_counter``, each call of the functions that make a job's view or copy its session's
counters (``EngineNews._progress``, ``JobLifecycle.refresh_counters``, ``snapshot``,
``_live_view``, ``_decorate``) and each event delivery by the event's name; at the exit it writes
calls, total and per call to ``JOB_VIEWS_LOG`` (default ``job_views.log`` in the working folder).
A call inside another counts in both (``snapshot`` holds ``_live_view`` and ``_decorate``).

    PYTHONPATH=$PWD/bench/job_views:$PWD python bench/bench_many_downloads.py \
        --torrents 1000 --phases many

Other processes load it and do nothing.
"""

from __future__ import annotations

import atexit
import collections
import os
import sys
import time
from collections.abc import Callable
from typing import Any

if "daemon" in sys.argv:
    from torrent_engine import events
    from torrent_engine.jobs import lifecycle, news

    spent: collections.Counter[str] = collections.Counter()
    calls: collections.Counter[str] = collections.Counter()

    def timed(owner: Any, attr: str, key: Callable[..., str] | None = None) -> None:
        inner = getattr(owner, attr)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                name = key(*args) if key is not None else attr
                spent[name] += time.perf_counter() - t0
                calls[name] += 1

        setattr(owner, attr, staticmethod(wrapper) if key is not None else wrapper)

    timed(news.EngineNews, "_progress")
    for attr in ("refresh_counters", "snapshot", "_live_view", "_decorate"):
        timed(lifecycle.JobLifecycle, attr)
    timed(events.EventBus, "_deliver", key=lambda event, targets: f"deliver {event.name}")

    def write() -> None:
        path = os.environ.get("JOB_VIEWS_LOG", "job_views.log")
        with open(path, "w", encoding="utf-8") as out:
            for name, total in spent.most_common():
                out.write(f"{name:32s} {calls[name]:8d} calls {total * 1000:9.1f} ms "
                          f"{total / calls[name] * 1e6:8.1f} us\n")

    atexit.register(write)
