"""A session's rates on their own: bytes counted into the torrent's totals as they come, the
rates averaged over the last ticks, exactly zero once nothing moved for that long or stopped."""

from __future__ import annotations

from torrent_engine.session.context import Totals
from torrent_engine.session.rates import RATE_TICKS, RateMeter, Rates


def test_a_rate_is_zero_once_nothing_came_for_its_window() -> None:
    meter = RateMeter()
    assert meter.tick(1_000_000, 1.0) == 1_000_000.0
    assert meter.tick(0, 1.0) == 500_000.0
    rates = [meter.tick(0, 1.0) for _ in range(RATE_TICKS)]
    assert rates[-1] == 0.0 and rates[RATE_TICKS - 2] == 0.0


def test_bytes_count_in_the_totals_at_once_and_in_the_rates_at_the_tick() -> None:
    totals = Totals()
    rates = Rates(totals)
    rates.downloaded(3000)
    rates.uploaded(1000)
    assert (totals.downloaded, totals.uploaded) == (3000, 1000) and rates.still
    rates.tick(2.0)
    assert (rates.down_rate, rates.up_rate) == (1500.0, 500.0) and not rates.still
    rates.tick(2.0)  # nothing this tick: averaged with the last
    assert rates.down_rate == 750.0


def test_a_stopped_session_shows_no_rate_and_starts_afresh() -> None:
    rates = Rates(Totals())
    rates.downloaded(1000)
    rates.tick(1.0)
    rates.stop()
    assert rates.still
    rates.tick(1.0)  # (the bytes before the stop are not averaged in again)
    assert rates.still
