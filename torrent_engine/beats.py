"""The daemon's periodic timers' one beat: each timer of a period waits for the next multiple of
it on the event loop's clock, so all of them wake the loop together — one wake-up a period, not
one each at its own phase (what an idle daemon's CPU is made of)."""

from __future__ import annotations

import math

import anyio

__all__ = ["next_beat", "sleep_to_beat"]


def next_beat(now: float, interval: float) -> float:
    """The first multiple of ``interval`` after ``now`` (a time of the event loop's clock)."""
    return (math.floor(now / interval) + 1) * interval


async def sleep_to_beat(interval: float) -> float:
    """Sleep until the next beat of ``interval`` (``next_beat``); the beat, as the loop's time."""
    due = next_beat(anyio.current_time(), interval)
    await anyio.sleep_until(due)
    return due
