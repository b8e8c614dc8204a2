"""What each ``sync/maindata`` poll costs inside a daemon a benchmark starts: with this folder
first on ``PYTHONPATH``, every ``torrent-engine daemon`` process started times each call of the
qBittorrent dialect's ``maindata`` handler (wall time, and the loop thread's CPU time, which
tells the handler's own work from its waits), with the torrents its answer carries, and at its
exit appends one line a poll to ``POLL_TIMES_LOG`` (default ``poll_times.log`` in the working
folder): ``wall_ms cpu_ms torrents`` (torrents -1: a full answer, sent in parts). A restart in
the benchmark appends its own process's lines after the first's.

    POLL_TIMES_LOG=/tmp/p.log PYTHONPATH=$PWD/bench/poll_times:$PWD python bench/bench_seedbox.py \
        --torrents 10000 --clients ours-qb --poll --settle 2 --idle-seconds 3 --samples 2

Other processes load it and do nothing. The handler's module is imported when it is wrapped,
before the daemon's loop starts.
"""

from __future__ import annotations

import atexit
import os
import sys
import time
from typing import Any

if "daemon" in sys.argv:
    from torrent_engine.api.compat import qbittorrent

    polls: list[tuple[float, float, int]] = []
    handler = qbittorrent.QbittorrentApi.maindata

    async def timed(self: Any, *args: Any) -> Any:
        wall, cpu = time.perf_counter(), time.thread_time()
        out = await handler(self, *args)
        torrents = out.get("torrents", {}) if isinstance(out, dict) else None
        polls.append((time.perf_counter() - wall, time.thread_time() - cpu,
                      len(torrents) if isinstance(torrents, dict) else -1))
        return out

    qbittorrent.QbittorrentApi.maindata = timed  # type: ignore[method-assign, assignment]

    def write() -> None:
        with open(os.environ.get("POLL_TIMES_LOG", "poll_times.log"), "a", encoding="utf-8") as out:
            for wall, cpu, torrents in polls:
                out.write(f"{wall * 1000:.1f} {cpu * 1000:.1f} {torrents}\n")

    atexit.register(write)
