"""A job's lock: one control operation at a time per job, and no lock kept between operations
(the daemon's collector walks what 10 000 jobs keep)."""

from __future__ import annotations

import anyio
import pytest

from torrent_engine.jobs.locks import JobLock

pytestmark = pytest.mark.anyio


async def test_two_operations_on_one_job_take_turns_and_the_lock_goes_with_the_last() -> None:
    locks: dict[str, anyio.Lock] = {}
    order: list[str] = []

    async def operation(name: str, hold: float) -> None:
        async with JobLock(locks, "j1"):
            order.append(f"{name} in")
            await anyio.sleep(hold)
            order.append(f"{name} out")

    async with anyio.create_task_group() as tg:
        tg.start_soon(operation, "first", 0.1)
        await anyio.sleep(0.02)
        tg.start_soon(operation, "second", 0.0)
        await anyio.sleep(0.02)
        assert set(locks) == {"j1"}  # (held, one waiting)
        async with JobLock(locks, "j2"):  # another job's: not held up
            assert set(locks) == {"j1", "j2"}
        assert set(locks) == {"j1"}
    assert order == ["first in", "first out", "second in", "second out"]
    assert locks == {}  # none kept once no operation holds or awaits it


async def test_a_lock_taken_out_of_the_table_while_held_is_not_put_back() -> None:
    locks: dict[str, anyio.Lock] = {}
    async with JobLock(locks, "j1"):
        locks.pop("j1")  # (the job was removed meanwhile)
        async with JobLock(locks, "j1"):  # a new operation of a new job with that id
            assert "j1" in locks
        assert locks == {}


async def test_an_operation_cancelled_while_waiting_leaves_the_lock_to_the_others() -> None:
    locks: dict[str, anyio.Lock] = {}
    gave_up: list[bool] = []

    async def impatient() -> None:
        with anyio.move_on_after(0.05):
            async with JobLock(locks, "j1"):
                raise AssertionError("the lock is held")
        gave_up.append(True)

    async with JobLock(locks, "j1"):
        async with anyio.create_task_group() as tg:
            tg.start_soon(impatient)
    assert gave_up == [True] and locks == {}
    async with JobLock(locks, "j1"):
        pass
    assert locks == {}
