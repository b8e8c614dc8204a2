"""What running a batch's coroutines together costs a coroutine: ``at_once`` (engine/together.py,
a batch of adds) against anyio's task group (the reference, what it replaced) and asyncio's own
task group, in the same run, on the loop the daemon runs (uvloop where installed).

    python bench/bench_at_once.py [--batch 25] [--batches 400] [--rounds 5]

Each way runs ``--batches`` batches of ``--batch`` coroutines that each pass one checkpoint (as an
add waits for its worker-thread hops), one way after the other in each of ``--rounds`` rounds;
the figure is the wall time a coroutine, started and ended, median over the rounds, and the
ratio to anyio's task group. asyncio's task group is shown for scale only: it cancels its tasks
natively, which pierces an anyio shield (tests/unit/test_together.py).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from torrent_engine.engine.runtime import run  # noqa: E402
from torrent_engine.engine.together import at_once  # noqa: E402


async def _one() -> None:
    await asyncio.sleep(0)


async def _anyio_group(n: int) -> None:
    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(_one)


async def _asyncio_group(n: int) -> None:
    async with asyncio.TaskGroup() as tg:
        for _ in range(n):
            tg.create_task(_one())


async def _at_once(n: int) -> None:
    await at_once([_one() for _ in range(n)])


WAYS: dict[str, Callable[[int], Awaitable[None]]] = {
    "anyio task group": _anyio_group, "at_once": _at_once, "asyncio task group": _asyncio_group}


async def _measure(batch: int, batches: int, rounds: int) -> dict[str, list[float]]:
    took: dict[str, list[float]] = {name: [] for name in WAYS}
    for _ in range(rounds):
        for name, way in WAYS.items():
            start = time.perf_counter()
            for _ in range(batches):
                await way(batch)
            took[name].append((time.perf_counter() - start) / (batch * batches) * 1e6)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=25)
    parser.add_argument("--batches", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    took = run(_measure, args.batch, args.batches, args.rounds)
    reference = statistics.median(took["anyio task group"])
    print(f"{args.batch} coroutines a batch, {args.batches} batches, {args.rounds} rounds: "
          "µs a coroutine, median (min-max)")
    for name, values in took.items():
        median = statistics.median(values)
        print(f"  {name:20} {median:6.2f} ({min(values):.2f}-{max(values):.2f})  "
              f"{median / reference:.2f}x anyio's task group")


if __name__ == "__main__":
    main()
