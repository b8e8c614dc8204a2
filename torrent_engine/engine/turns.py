"""Long work on the event loop made in slices of time, not of a count: ``Turns`` lets the loop
run once ``TURN`` seconds of work went by since its last turn. A count's cost varies a
hundredfold — a page of 500 torrents whose kept records were read took 2 ms, the same page
whose records were made again (after a bulk add, a mass check, a restart) held the loop
50-190 ms at 30 000 torrents (issue 47) — so work is looked at in small steps, and the loop
runs when the time is up, whatever the steps cost."""

from __future__ import annotations

import time

import anyio

__all__ = ["STEP", "TURN", "Turns"]

# seconds of one piece of work between two turns of the loop: at 10 ms, another client's request
# waited 20 ms (median) while 30 000 torrents were listed, against 9-10 ms with a turn after each
# page of 500 kept records; at 5 ms, 11 ms, its worst 20-40 ms against 30-50 (bench_list_lag.py)
TURN = 0.005
# items (jobs viewed, records made) between two looks at the time: a torrent's qBittorrent record
# made again took up to 350 us there, so a step holds the loop 7 ms at most beyond its turn
STEP = 20


class Turns:
    """A piece of work's turns of the loop: ``take`` lets the loop run if ``every`` seconds
    (``TURN``'s) of work went by since the last (or since it was made)."""

    __slots__ = ("_since", "every")

    def __init__(self, every: float | None = None) -> None:
        self.every = TURN if every is None else every
        self._since = time.perf_counter()

    def due(self) -> bool:
        """Whether the work has had its time since the last turn."""
        return time.perf_counter() - self._since >= self.every

    async def take(self) -> None:
        """Let the loop run if the work has had its time (``due``); else nothing (no turn of
        the loop for a step that cost little)."""
        if self.due():
            await anyio.sleep(0)
            self._since = time.perf_counter()
