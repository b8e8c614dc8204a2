"""Running the engine's event loop: anyio on asyncio, with uvloop where it is installed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar  # Any: the arguments are passed on to the function as they are

import anyio

T = TypeVar("T")


def _have_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def run(func: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run ``func(*args)`` on a fresh event loop (uvloop when available) and return its result."""
    return anyio.run(func, *args, backend="asyncio", backend_options={"use_uvloop": _have_uvloop()})
