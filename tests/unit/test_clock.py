"""The engine's one clock: a round visits only the tickers that want it, a ticker that answers
False leaves it, deadlines come once (a later one replaces an earlier one), a dropped ticker is
visited no more, a ticker's bug does not stop the others, and the clock's task exists only while
somebody wants it."""

from __future__ import annotations

import logging

import anyio
import pytest

from torrent_engine.beats import next_beat, sleep_to_beat
from torrent_engine.engine.clock import EngineClock

pytestmark = pytest.mark.anyio

INTERVAL = 0.01


class _Ticker:
    def __init__(self, rounds: int = 10**9) -> None:
        self.visits: list[float] = []
        self.rounds = rounds  # visits it stays in the round for

    def on_tick(self, now: float) -> bool:
        self.visits.append(now)
        return len(self.visits) < self.rounds


async def _until(predicate: object, seconds: float = 5.0) -> None:
    with anyio.fail_after(seconds):
        while not predicate():  # type: ignore[operator]
            await anyio.sleep(INTERVAL / 2)


async def test_a_round_visits_the_tickers_that_want_it_until_they_leave() -> None:
    clock = EngineClock(INTERVAL)
    busy, brief, idle = _Ticker(), _Ticker(rounds=2), _Ticker()
    async with anyio.create_task_group() as tg:
        clock.attach(tg)
        assert not clock.running  # (nobody wants it: no task)
        clock.want(busy)
        clock.want(brief)
        await _until(lambda: len(busy.visits) >= 6)
        assert len(brief.visits) == 2 and idle.visits == []
        assert not clock.wants(brief) and clock.wants(busy) and clock.ticking == 1
        clock.drop(busy)
        await _until(lambda: not clock.running)  # nobody left: the task ends
        seen = len(busy.visits)
        await anyio.sleep(5 * INTERVAL)
        assert len(busy.visits) == seen
        clock.want(idle)  # (and it starts again)
        await _until(lambda: len(idle.visits) >= 2)
        tg.cancel_scope.cancel()


async def test_a_deadline_comes_once_and_a_later_one_replaces_it() -> None:
    clock = EngineClock(INTERVAL)
    once, moved, dropped = _Ticker(rounds=1), _Ticker(rounds=1), _Ticker(rounds=1)
    async with anyio.create_task_group() as tg:
        clock.attach(tg)
        t0 = anyio.current_time()
        clock.at(t0 + 0.05, once)
        clock.at(t0 + 0.02, moved)
        clock.at(t0 + 0.08, moved)  # (replaces the first)
        clock.at(t0 + 0.03, dropped)
        clock.drop(dropped)
        await _until(lambda: not clock.running)
        assert len(once.visits) == 1 and once.visits[0] >= t0 + 0.05
        assert len(moved.visits) == 1 and moved.visits[0] >= t0 + 0.08
        assert dropped.visits == [] and clock.ticking == 0  # (each answered False: off the round)
        tg.cancel_scope.cancel()


async def test_a_deadline_that_answers_true_joins_the_round() -> None:
    clock = EngineClock(INTERVAL)
    ticker = _Ticker(rounds=3)
    async with anyio.create_task_group() as tg:
        clock.attach(tg)
        clock.at(anyio.current_time() + 0.02, ticker)
        await _until(lambda: len(ticker.visits) == 3)
        await _until(lambda: not clock.running)
        assert len(ticker.visits) == 3
        tg.cancel_scope.cancel()


async def test_a_ticker_that_raises_leaves_and_the_others_go_on(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        def on_tick(self, now: float) -> bool:
            raise RuntimeError("a bug")

    clock = EngineClock(INTERVAL)
    fine = _Ticker()
    caplog.set_level(logging.ERROR, "torrent_engine.engine")
    async with anyio.create_task_group() as tg:
        clock.attach(tg)
        broken = Broken()
        clock.want(broken)
        clock.want(fine)
        await _until(lambda: len(fine.visits) >= 3)
        assert not clock.wants(broken)
        assert "leaves the round" in caplog.text
        tg.cancel_scope.cancel()


async def test_detach_ends_the_task_and_attach_starts_it_again() -> None:
    clock = EngineClock(INTERVAL)
    ticker = _Ticker()
    async with anyio.create_task_group() as tg:
        clock.attach(tg)
        clock.want(ticker)
        await _until(lambda: len(ticker.visits) >= 1)
        clock.detach()
        await _until(lambda: not clock.running)
        seen = len(ticker.visits)
        await anyio.sleep(5 * INTERVAL)
        assert len(ticker.visits) == seen and clock.wants(ticker)
        clock.attach(tg)
        await _until(lambda: len(ticker.visits) >= seen + 2)
        tg.cancel_scope.cancel()


async def test_many_tickers_share_one_round_a_interval() -> None:
    """A thousand tickers are one task and one timer: each visited once a round."""
    clock = EngineClock(INTERVAL)
    tickers = [_Ticker() for _ in range(1000)]
    async with anyio.create_task_group() as tg:
        clock.attach(tg)
        for t in tickers:
            clock.want(t)
        await _until(lambda: clock.rounds >= 3)
        rounds = clock.rounds
        assert all(rounds - 1 <= len(t.visits) <= rounds + 1 for t in tickers)
        tg.cancel_scope.cancel()


def test_the_next_beat_is_the_first_multiple_of_the_interval_after_now() -> None:
    assert next_beat(10.2, 1.0) == 11.0
    assert next_beat(11.0, 1.0) == 12.0  # (a beat now is not waited for: the next one is)
    assert next_beat(7.4, 2.5) == 7.5
    # a time on a beat of a period binary fractions do not hold (0.58 is 29 times 0.02, whose
    # quotient rounds down): the next beat, not that one again
    assert all(next_beat(k * 0.02, 0.02) > k * 0.02 for k in range(1, 20_000))
    assert all(next_beat(k * 0.1, 0.1) > k * 0.1 for k in range(1, 20_000))


async def test_a_sleep_to_a_beat_ends_at_the_beat_even_when_the_loop_s_timer_fires_early(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """(uvloop's timers are in milliseconds: one may fire before its time; a ticker woken before
    its beat waited for the same beat again at once, and ticked twice.)"""
    import anyio._core._eventloop as eventloop

    real_sleep = anyio.sleep

    async def early(delay: float) -> None:
        await real_sleep(max(delay - 0.004, 0.0))  # (a timer 4 ms early)

    monkeypatch.setattr(anyio, "sleep", early)
    monkeypatch.setattr(eventloop, "sleep", early)
    for _ in range(3):
        due = await sleep_to_beat(0.05)
        assert anyio.current_time() >= due


async def test_timers_of_one_period_started_apart_wake_at_the_same_beat() -> None:
    # the daemon's periodic timers (the service's tick, the lag probe, uvicorn's, the history's)
    # wake the loop once a period together, whatever phase each started at
    woke: list[tuple[float, float]] = []

    async def sleeper(delay: float) -> None:
        await anyio.sleep(delay)
        due = await sleep_to_beat(0.5)
        woke.append((due, anyio.current_time()))

    start = await sleep_to_beat(0.5)  # (just after a beat: the three start within the next)
    async with anyio.create_task_group() as tg:
        for delay in (0.0, 0.05, 0.1):
            tg.start_soon(sleeper, delay)
    assert {due for due, _ in woke} == {start + 0.5}, woke
    assert all(at >= due for due, at in woke)


async def test_a_sleep_to_a_beat_ends_at_once_when_it_is_woken() -> None:
    """(An idle uTP socket's round ends when a connection is made; the collector's idle look
    when a request begins.)"""
    woken = anyio.Event()
    # started a second or more before a beat of 30 s (within 50 ms of one, the beat ended the
    # sleep before the wake did)
    if next_beat(anyio.current_time(), 30.0) - anyio.current_time() < 1.0:
        await sleep_to_beat(30.0)

    async def wake() -> None:
        await anyio.sleep(0.05)
        woken.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(wake)
        start = anyio.current_time()
        due = await sleep_to_beat(30.0, woken)
    assert anyio.current_time() - start < 1.0 and anyio.current_time() < due
