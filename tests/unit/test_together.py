"""``at_once``: coroutines run together as an anyio task group runs its tasks."""

from __future__ import annotations

import asyncio

import anyio
import pytest

from torrent_engine.engine.together import at_once

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_they_run_at_once_and_all_end_before_it_returns() -> None:
    began: list[int] = []
    ended: list[int] = []
    gate = anyio.Event()

    async def one(i: int) -> None:
        began.append(i)
        if len(began) == 3:
            gate.set()
        await gate.wait()  # (none ends until all three have begun)
        ended.append(i)

    with anyio.fail_after(5):
        await at_once([one(i) for i in range(3)])
    assert sorted(ended) == [0, 1, 2]
    await at_once([])  # (nothing to run)


async def test_one_that_fails_has_the_others_cancelled_and_its_error_raised_once_all_end() -> None:
    cancelled: list[int] = []

    async def fails() -> None:
        await anyio.sleep(0.01)
        raise ValueError("bad torrent")

    async def waits(i: int) -> None:
        try:
            await anyio.sleep(10)
        except anyio.get_cancelled_exc_class():
            cancelled.append(i)
            raise

    with anyio.fail_after(5), pytest.raises(ExceptionGroup) as raised:
        await at_once([waits(0), fails(), waits(2)])
    assert [type(e) for e in raised.value.exceptions] == [ValueError]
    assert sorted(cancelled) == [0, 2]


async def test_the_callers_cancellation_is_the_anyio_kind_its_shielded_steps_finish() -> None:
    """Cancelling the caller cancels each task as anyio cancels: a step it shields runs to its
    end (asyncio's task group cancels natively, which pierces an anyio shield), and the caller
    returns only once every task has ended."""
    finished: list[int] = []
    interrupted: list[int] = []
    started = anyio.Event()

    async def shielded(i: int) -> None:
        with anyio.CancelScope(shield=True):
            started.set()
            await anyio.sleep(0.05)  # (a write that must not be left half-done)
            finished.append(i)
        await anyio.sleep(10)  # (then cancelled at its next checkpoint)
        interrupted.append(i)

    async def caller() -> None:
        await at_once([shielded(0), shielded(1)])

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(caller)
            await started.wait()
            tg.cancel_scope.cancel()
    assert sorted(finished) == [0, 1]
    assert interrupted == []


async def test_a_task_not_yet_begun_when_the_caller_is_cancelled_ends_at_its_first_checkpoint() -> None:
    ran: list[str] = []

    async def one() -> None:
        ran.append("began")
        await anyio.sleep(10)
        ran.append("slept")

    with anyio.fail_after(5):
        with anyio.CancelScope() as scope:
            scope.cancel()  # (cancelled before the tasks first run)
            await at_once([one(), one()])
    assert ran == ["began", "began"]
    assert not [t for t in asyncio.all_tasks() if t is not asyncio.current_task()
                and "at_once" in repr(t.get_coro())]
