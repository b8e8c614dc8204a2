"""The daemon's periodic timers' one beat: each timer of a period waits for the next multiple of
it on the event loop's clock, so all of them wake the loop together — one wake-up a period, not
one each at its own phase (what an idle daemon's CPU is made of)."""

from __future__ import annotations

import math

import anyio

__all__ = ["next_beat", "sleep_to_beat"]


def next_beat(now: float, interval: float) -> float:
    """The first multiple of ``interval`` after ``now`` (a time of the event loop's clock)."""
    beat = (math.floor(now / interval) + 1) * interval
    return beat if beat > now else beat + interval  # (a quotient rounded down: ``now`` was on a beat)


async def sleep_to_beat(interval: float, woken: anyio.Event | None = None) -> float:
    """Sleep until the next beat of ``interval`` (``next_beat``), not a moment before (a loop's
    timer may fire a little early: uvloop's are in milliseconds; a timer woken before its beat
    would wait for that same beat again at once, and its owner do its work twice), or until
    ``woken`` is set; the beat, as the loop's time."""
    due = next_beat(anyio.current_time(), interval)
    while (now := anyio.current_time()) < due:
        if woken is None:
            await anyio.sleep(due - now)
        elif woken.is_set():
            break
        else:
            with anyio.CancelScope(deadline=due):
                await woken.wait()
    return due
