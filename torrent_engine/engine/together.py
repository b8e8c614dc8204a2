"""Coroutines run at once, as the tasks of an anyio task group run, for less: the many adds of
one batch (a task of anyio's task group, with its own handle and scope, costs 10.1-10.3 µs to
start and end here, against 5.1 µs for one of these and 1.9 µs for asyncio's task group's:
bench/bench_at_once.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from typing import Any

import anyio

__all__ = ["at_once"]


async def at_once(coros: Sequence[Coroutine[Any, Any, None]]) -> None:
    """Run ``coros`` at once and return when all have ended, as an anyio task group of them:
    one that raises has the others cancelled, and what they raised is raised together (a
    ``BaseExceptionGroup``) once all have ended; a cancellation of the caller cancels them and
    waits for them. Each is cancelled as anyio cancels (its shielded scopes run on), never
    natively, as asyncio's task group cancels its tasks: that pierces an anyio shield."""
    if not coros:
        return
    scopes: list[anyio.CancelScope] = []
    errors: list[BaseException] = []
    left = len(coros)
    ended = anyio.Event()
    cancelled = False

    def cancel_all() -> None:
        nonlocal cancelled
        cancelled = True
        for scope in scopes:
            scope.cancel()

    async def run(coro: Coroutine[Any, Any, None]) -> None:
        nonlocal left
        try:
            with anyio.CancelScope() as scope:
                scopes.append(scope)
                if cancelled:  # (before it began: it ends at its first checkpoint)
                    scope.cancel()
                await coro
        except BaseException as exc:  # (what the coroutine raised; its own cancellation ends in its scope)
            errors.append(exc)
            cancel_all()
        finally:
            left -= 1
            if not left:
                ended.set()

    loop = asyncio.get_running_loop()
    # (the loop keeps only weak references to its tasks: these are held here until all end)
    tasks = [loop.create_task(run(coro)) for coro in coros]
    try:
        await ended.wait()
    except BaseException:
        cancel_all()
        with anyio.CancelScope(shield=True):
            await ended.wait()
        raise
    finally:
        del tasks
    if errors:
        raise BaseExceptionGroup("a task of the group failed", errors)
