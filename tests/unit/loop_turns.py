"""The event loop's turns, counted while a block runs: a test of work that must let the loop run
between its pages tells in which turn each part was done."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio


class Turns:
    """How many turns of the loop have begun since the block began (``n``)."""

    def __init__(self) -> None:
        self.n = 0
        self.done = False


@asynccontextmanager
async def counted_turns() -> AsyncIterator[Turns]:
    """A task counts the loop's turns (one ``sleep(0)`` a turn) while the block runs."""
    turns = Turns()

    async def count() -> None:
        while not turns.done:
            turns.n += 1
            await anyio.sleep(0)

    async with anyio.create_task_group() as tg:
        tg.start_soon(count)
        try:
            yield turns
        finally:
            turns.done = True
