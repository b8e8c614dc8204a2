"""Full lists let the loop run by the time their work took, not after a count of jobs: a page of
500 torrents whose records were kept took 2 ms, the same page whose records were made again held
the loop 50-190 ms at 30 000 torrents. The time here is a fake clock that each item's work moves
on, so what is asserted is where the turns fall, not how long anything took."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator

import pytest

from tests.unit.loop_turns import Turns as Counted
from tests.unit.loop_turns import counted_turns
from torrent_engine.api import pages
from torrent_engine.engine import turns as turns_module
from torrent_engine.engine.turns import Turns

pytestmark = pytest.mark.anyio


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeClock]:
    fake = FakeClock()
    monkeypatch.setattr(turns_module, "time", fake)
    monkeypatch.setattr(turns_module, "TURN", 0.010)
    monkeypatch.setattr(pages, "STEP", 20)
    yield fake


def work(clock: FakeClock, cost: float, done: list[tuple[int, float]],
         n_of: list[int]) -> Callable[[int], int]:
    """An item's work: the clock moves on by ``cost``; noted with the turn it was done in."""
    def one(item: int) -> int:
        clock.now += cost
        done.append((n_of[0], clock.now))
        return item
    return one


def longest_hold(done: list[tuple[int, float]]) -> float:
    """The most work done in one turn of the loop (by the fake clock, from 0)."""
    spans: dict[int, list[float]] = {}
    start = 0.0
    for turn, at in done:
        if turn not in spans:
            spans[turn] = [start, at]
        spans[turn][1] = at
        start = at
    return max(end - begin for begin, end in spans.values())


@pytest.mark.parametrize("cost", [0.000_05, 0.000_35, 0.002])
async def test_a_list_lets_the_loop_run_once_its_work_had_its_turn_whatever_an_item_costs(
        clock: FakeClock, cost: float) -> None:
    """Records kept (50 us each), made again (350 us) or slow (2 ms): the loop runs within a turn
    and a step of work (20 items), and no more often than once a turn."""
    items = list(range(3000))
    for how in ("gather", "joined_pages", "stepped"):
        clock.now = 0.0
        done: list[tuple[int, float]] = []
        async with counted_turns() as turns:
            n_of = [0]
            one = work(clock, cost, done, n_of)

            if how == "gather":
                def keep(page: list[int], one: Callable[[int], int] = one) -> list[int]:
                    return [one(i) for i in page]
                steps = [items[at:at + pages.STEP] for at in range(0, len(items), pages.STEP)]
                turns_before = turns.n
                got = await pages.gather(_tracked(steps, turns, n_of), keep)
                assert got == items
            elif how == "joined_pages":
                turns_before = turns.n
                parts = await pages.joined_pages(items, _texts(one, turns, n_of), page=500)
                assert b",".join(parts) == b",".join(b"%d" % i for i in items)
                assert len(parts) == len(items) // 500  # (the parts are pages of 500, as before)
            else:
                turns_before = turns.n
                result = await pages.stepped(_steps(items, one, turns, n_of))
                assert result == len(items)
            taken = turns.n - turns_before
        total = cost * len(items)
        assert longest_hold(done) <= turns_module.TURN + pages.STEP * cost + 1e-9, how
        assert taken <= total / turns_module.TURN + 1, how  # (not a turn a step: a turn a TURN)
        assert taken >= total / (turns_module.TURN + pages.STEP * cost) - 1, how


def _tracked(steps: list[list[int]], turns: Counted, n_of: list[int]) -> Iterator[list[int]]:
    for step in steps:
        n_of[0] = turns.n
        yield step


def _texts(one: Callable[[int], int], turns: Counted, n_of: list[int]) -> Callable[[int], bytes]:
    def text(i: int) -> bytes:
        n_of[0] = turns.n
        return b"%d" % one(i)
    return text


def _steps(items: list[int], one: Callable[[int], int], turns: Counted, n_of: list[int],
           ) -> Generator[None, None, int]:
    for at in range(0, len(items), pages.STEP):
        for i in items[at:at + pages.STEP]:
            n_of[0] = turns.n
            one(i)
        yield
    return len(items)


async def test_a_turn_is_taken_when_due_and_its_time_counted_again_from_there(clock: FakeClock) -> None:
    async with counted_turns() as counted:
        turns = Turns()
        start = counted.n
        clock.now = 0.009
        await turns.take()
        assert not turns.due() and counted.n == start  # (not yet: no turn)
        clock.now = 0.010
        assert turns.due()
        await turns.take()
        assert counted.n > start and not turns.due()
        clock.now = 0.019
        assert not turns.due()  # (counted from the turn, not from the start)
        clock.now = 0.020
        assert turns.due()
