"""Context managers exited in reverse order, as ``contextlib.AsyncExitStack`` exits them, without
its hang: a stack closed while an exception is being handled (a service's exit when its owner's
scope was cancelled), whose context manager re-raises the very exception it was handed (an anyio
task group does), has CPython 3.11's stack make that exception its own ``__context__`` and then
walk the chain without end (its ``_fix_exception_context``: the context fix-up CPython issue
102201 discusses)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager, AsyncExitStack
from types import TracebackType
from typing import TypeVar

__all__ = ["ExitStack"]

T = TypeVar("T")


class _Passed(AbstractAsyncContextManager[T]):
    """``cm``, whose exit that re-raises the exception it was handed says "not suppressed"
    instead: the same exception goes on to the next exit, unchanged, as with nested ``async
    with`` blocks."""

    def __init__(self, cm: AbstractAsyncContextManager[T]) -> None:
        self._cm = cm

    async def __aenter__(self) -> T:
        return await self._cm.__aenter__()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> bool | None:
        try:
            return await self._cm.__aexit__(exc_type, exc, tb)
        except BaseException as raised:
            if exc is not None and raised is exc:
                return False
            raise


class ExitStack(AsyncExitStack):
    """An ``AsyncExitStack`` whose entered context managers never hand its exit the exception
    they were given back as a new one (see the module)."""

    async def enter_async_context(self, cm: AbstractAsyncContextManager[T]) -> T:
        """Enter ``cm`` and push its exit, as ``AsyncExitStack`` does, through ``_Passed``."""
        return await super().enter_async_context(_Passed(cm))
