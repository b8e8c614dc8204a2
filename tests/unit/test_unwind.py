"""``ExitStack``: context managers exited in reverse order as ``contextlib.AsyncExitStack`` exits
them, and an exit that re-raises the exception it was handed (as an anyio task group does) passes
it on unchanged, never made its own ``__context__`` (CPython 3.11's stack does that when it
closes while another exception is handled, then spins on the chain at the next exit)."""

from __future__ import annotations

from types import TracebackType

import pytest

from torrent_engine.engine.unwind import ExitStack

pytestmark = pytest.mark.anyio


class Exits:
    """Records the exception its exit was handed; then re-raises it, raises ``raises``, or
    suppresses it, as told."""

    def __init__(self, seen: list[tuple[str, BaseException | None]], name: str, *,
                 reraise: bool = False, raises: BaseException | None = None, suppress: bool = False) -> None:
        self._seen, self._name = seen, name
        self._reraise, self._raises, self._suppress = reraise, raises, suppress

    async def __aenter__(self) -> str:
        return self._name

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> bool:
        self._seen.append((self._name, exc))
        if self._raises is not None:
            raise self._raises
        if self._reraise and exc is not None:
            raise exc
        return self._suppress


def chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and its contexts, at most 10 (a cycle shows as a repeat)."""
    out: list[BaseException] = []
    at: BaseException | None = exc
    while at is not None and len(out) < 10:
        out.append(at)
        at = at.__context__
    return out


async def test_an_exit_that_re_raises_what_it_was_handed_while_another_is_handled_makes_no_cycle() -> None:
    seen: list[tuple[str, BaseException | None]] = []
    first = ValueError("the inner exit's")
    try:
        raise KeyError("handled meanwhile")  # (as the owner's cancellation is when a service exits)
    except KeyError:
        stack = ExitStack()
        await stack.enter_async_context(Exits(seen, "outer", reraise=True))
        await stack.enter_async_context(Exits(seen, "inner", raises=first))
        with pytest.raises(ValueError) as raised:
            await stack.aclose()
    assert raised.value is first
    assert seen == [("inner", None), ("outer", first)]
    links = chain(first)
    assert len(links) == len(set(map(id, links))) < 10  # (stock: ``first.__context__ is first``)


async def test_the_body_s_exception_passes_every_exit_in_reverse_order_unchanged() -> None:
    seen: list[tuple[str, BaseException | None]] = []
    error = KeyError("the body's")
    with pytest.raises(KeyError) as raised:
        async with ExitStack() as stack:
            assert await stack.enter_async_context(Exits(seen, "a")) == "a"
            await stack.enter_async_context(Exits(seen, "b", reraise=True))
            await stack.enter_async_context(Exits(seen, "c", reraise=True))
            raise error
    assert raised.value is error
    assert seen == [("c", error), ("b", error), ("a", error)]


async def test_an_exit_may_still_suppress_or_raise_another() -> None:
    seen: list[tuple[str, BaseException | None]] = []
    async with ExitStack() as stack:
        await stack.enter_async_context(Exits(seen, "suppresses", suppress=True))
        await stack.enter_async_context(Exits(seen, "re-raises", reraise=True))
        raise KeyError("suppressed")
    assert [name for name, _ in seen] == ["re-raises", "suppresses"]
    other = RuntimeError("the exit's own")
    with pytest.raises(RuntimeError) as raised:
        async with ExitStack() as stack:
            await stack.enter_async_context(Exits(seen, "raises", raises=other))
            raise KeyError("replaced")
    assert raised.value is other and isinstance(other.__context__, KeyError)
