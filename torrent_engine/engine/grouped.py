"""Blocking work done in groups on worker threads: what is asked while one group is in its thread
is the next group, one thread hop for many (the adds' reads and saves, every torrent's resume
saves)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import anyio

__all__ = ["Grouped"]

_I = TypeVar("_I")


@dataclass(eq=False)
class _Group(Generic[_I]):
    items: list[_I] = field(default_factory=list)
    results: list[Any] = field(default_factory=list)  # (each item's result or exception)
    done: anyio.Event = field(default_factory=anyio.Event)


class Grouped(Generic[_I]):
    """Blocking work done in groups, one worker-thread hop for many: the items asked while a
    group is in its thread are the next group (a batch of 25 adds makes a few hops, not 25
    threads at once that take the GIL from the loop, each waking it; 10 000 checks ending a
    millisecond apart write their resume rows in a few hundred transactions). ``work`` (in the
    thread): for the items in order, each one's result or the exception it raised; an exception
    the work itself raises is every item's."""

    def __init__(self, work: Callable[[list[_I]], list[Any]]) -> None:
        self._work = work
        self._open: _Group[_I] | None = None
        self._lock = anyio.Lock()  # one group in a thread at a time

    async def run(self, item: _I) -> Any:
        """``item``'s result, once its group's work is done (or the exception it raised)."""
        group = self._open
        lead = group is None
        if group is None:
            group = self._open = _Group()
        place = len(group.items)
        group.items.append(item)
        with anyio.CancelScope(shield=True):  # (the others of its group wait for this)
            if lead:
                try:
                    async with self._lock:  # (meanwhile the group takes the items asked)
                        if self._open is group:
                            self._open = None
                        try:
                            group.results = await anyio.to_thread.run_sync(self._work, group.items)
                        except Exception as exc:  # (the work itself: every item has it)
                            group.results = [exc] * len(group.items)
                finally:
                    if len(group.results) != len(group.items):  # (interrupted: nothing known)
                        group.results = [RuntimeError("the work was interrupted")] * len(group.items)
                    group.done.set()
            else:
                await group.done.wait()
        result = group.results[place]
        if isinstance(result, BaseException):
            raise result
        return result
