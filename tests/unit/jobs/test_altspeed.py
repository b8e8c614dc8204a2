"""Alternative rate limits: the schedule's window (across midnight, day masks) as a pure
function, and the service switching the limits in force at the window's edges only (a manual
toggle holds until the next edge), with a fake clock."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.integration.helpers import loopback_config
from torrent_engine.jobs import JobService
from torrent_engine.jobs.model import InvalidJobRequest
from torrent_engine.jobs.tuning.altspeed import QBT_DAYS, day_bit, in_window, parse_days, parse_window

pytestmark = pytest.mark.anyio

MON, TUE, WED, SAT, SUN = 0, 1, 2, 5, 6


def test_a_window_within_a_day() -> None:
    every = 127
    assert not in_window(MON, 8 * 60 - 1, 8 * 60, 20 * 60, every)
    assert in_window(MON, 8 * 60, 8 * 60, 20 * 60, every)
    assert in_window(MON, 20 * 60 - 1, 8 * 60, 20 * 60, every)
    assert not in_window(MON, 20 * 60, 8 * 60, 20 * 60, every)
    assert not in_window(MON, 600, 600, 600, every)  # (from == to: never)


def test_a_window_across_midnight_belongs_to_the_day_it_begins() -> None:
    friday_only = day_bit(4)
    start, end = 22 * 60, 6 * 60
    assert in_window(4, 23 * 60, start, end, friday_only)  # Friday night
    assert in_window(SAT, 5 * 60, start, end, friday_only)  # its Saturday morning
    assert not in_window(SAT, 6 * 60, start, end, friday_only)
    assert not in_window(SAT, 23 * 60, start, end, friday_only)  # Saturday's own night: not Friday
    assert not in_window(4, 5 * 60, start, end, friday_only)  # Friday morning: Thursday's night
    assert in_window(MON, 1, start, end, day_bit(SUN))  # Sunday's night goes on into Monday


def test_day_masks_are_transmissions_and_qbittorrents_choices_map_onto_them() -> None:
    assert [day_bit(d) for d in (SUN, MON, TUE, SAT)] == [1, 2, 4, 64]
    weekdays, weekends = QBT_DAYS[1], QBT_DAYS[2]
    assert all(in_window(d, 600, 0, 1439, weekdays) for d in range(5))
    assert not any(in_window(d, 600, 0, 1439, weekdays) for d in (SAT, SUN))
    assert [d for d in range(7) if in_window(d, 600, 0, 1439, weekends)] == [SAT, SUN]
    assert [d for d in range(7) if in_window(d, 600, 0, 1439, QBT_DAYS[3])] == [MON]
    assert [d for d in range(7) if in_window(d, 600, 0, 1439, QBT_DAYS[9])] == [SUN]
    assert parse_days("weekdays") == weekdays and parse_days("mon,wed") == 2 | 8
    assert parse_window("22:30-06:00") == (1350, 360)
    with pytest.raises(ValueError, match="HH:MM"):
        parse_window("25:00-01:00")


def local(day: int, hour: int, minute: int) -> float:
    """A wall-clock time in the local zone: 2026-11-23 (a Monday) + ``day`` days."""
    return time.mktime((2026, 11, 23 + day, hour, minute, 0, 0, 0, -1))


async def test_the_service_switches_the_limits_at_the_schedules_edges_only(tmp_path: Path) -> None:
    now = [local(0, 21, 59)]
    async with JobService(loopback_config(), download_root=tmp_path / "dl", state_dir=tmp_path / "state",
                          clock=lambda: now[0]) as jobs:
        shared = jobs.manager.shared

        def rates() -> tuple[int, int]:
            return shared.download_limit.rate, shared.upload_limit.rate

        await jobs.update_settings(download_limit=50_000, upload_limit=60_000, alt_download_limit=1_000,
                                   alt_upload_limit=2_000, alt_schedule_enabled=True,
                                   alt_schedule_from=22 * 60, alt_schedule_to=6 * 60,
                                   alt_schedule_days=day_bit(MON))

        async def at(day: int, hour: int, minute: int) -> tuple[int, int]:
            now[0] = local(day, hour, minute)
            await jobs.tick()
            return rates()

        assert rates() == (50_000, 60_000) and not jobs.get_settings().alt_speed_enabled
        assert await at(0, 22, 0) == (1_000, 2_000)  # the window begins
        assert jobs.get_settings().alt_speed_enabled
        await jobs.update_settings(alt_speed_enabled=False)  # a manual toggle ...
        assert rates() == (50_000, 60_000)
        assert await at(0, 23, 30) == (50_000, 60_000)  # ... holds inside the window
        await jobs.update_settings(alt_speed_enabled=True)
        assert await at(1, 5, 59) == (1_000, 2_000)
        assert await at(1, 6, 0) == (50_000, 60_000)  # the window ends: off
        await jobs.update_settings(alt_speed_enabled=True)  # on by hand outside the window ...
        assert await at(1, 12, 0) == (1_000, 2_000)  # ... holds
        assert await at(1, 22, 0) == (1_000, 2_000)  # Tuesday is not in the mask: no edge
        await jobs.update_settings(alt_speed_enabled=False)
        assert await at(7, 22, 0) == (1_000, 2_000)  # next Monday's window
        # a schedule set while its window holds turns them on at once
        await jobs.update_settings(alt_speed_enabled=False, alt_schedule_enabled=False)
        await jobs.update_settings(alt_schedule_enabled=True)
        assert rates() == (1_000, 2_000)
        with pytest.raises(InvalidJobRequest, match="alt_schedule_to"):
            await jobs.update_settings(alt_download_limit=5, alt_schedule_to=1440)
        assert jobs.get_settings().alt_download_limit == 1_000  # (nothing of the call applied)
    async with JobService(loopback_config(), download_root=tmp_path / "dl", state_dir=tmp_path / "state",
                          clock=lambda: now[0]) as jobs:  # kept over a restart
        s = jobs.get_settings()
        assert (s.alt_speed_enabled, s.alt_download_limit, s.alt_schedule_from) == (True, 1_000, 22 * 60)
        assert jobs.manager.shared.download_limit.rate == 1_000
