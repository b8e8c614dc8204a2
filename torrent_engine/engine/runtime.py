"""Running the engine's event loop: anyio on asyncio, with uvloop where it is installed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar, TypeVarTuple

import anyio

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


def _have_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def run(func: Callable[[*Ts], Awaitable[T]], *args: *Ts) -> T:
    """Run ``func(*args)`` on a fresh event loop (uvloop when available) and return its result."""
    return anyio.run(func, *args, backend="asyncio", backend_options={"use_uvloop": _have_uvloop()})


def mark_asyncio_context() -> None:
    """Say in the current context (and so in every task and transport callback started from it
    later) that the loop is asyncio's. anyio finds its loop through ``sniffio``, which looks at
    the running task; a peer's bytes arrive in protocol callbacks, which run in no task, so under
    a plain asyncio loop (``asyncio.run``, ``uvicorn app:app``) anyio found none there (anyio's
    own runner sets this itself)."""
    try:
        import sniffio
    except ImportError:  # (anyio versions without sniffio find their loop otherwise)
        return
    if sniffio.current_async_library_cvar.get() is None and sniffio.thread_local.name is None:
        try:
            running = sniffio.current_async_library()
        except sniffio.AsyncLibraryNotFoundError:
            return
        if running == "asyncio":
            sniffio.current_async_library_cvar.set("asyncio")
