"""Alternative speed limits and their schedule: a second pair of global rate limits, in force
while ``alt_speed_enabled`` is on. The schedule turns it on when its window begins and off when
it ends (edges, as qBittorrent's and Transmission's schedulers do): a manual toggle in between
holds until the next edge. Plain functions; the service looks once a minute (``JobService.tick``).

Days are a bitmask as Transmission's ``alt-speed-time-day``: Sunday 1, Monday 2 … Saturday 64
(127 every day). A window that crosses midnight (from 22:00 to 06:00) belongs to the day it
begins on: Friday's night window goes on into Saturday morning, as in Transmission.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..model import InvalidJobRequest

if TYPE_CHECKING:
    from .settings import ServiceSettings

EVERY_DAY = 127
MINUTES_A_DAY = 24 * 60
# qBittorrent's scheduler_days: 0 every day, 1 weekdays, 2 weekends, 3..9 Monday..Sunday
QBT_DAYS = (EVERY_DAY, 0b0111110, 0b1000001, 2, 4, 8, 16, 32, 64, 1)


def day_bit(weekday: int) -> int:
    """The mask's bit of a day given as Python numbers it (``tm_wday``: Monday 0 … Sunday 6)."""
    return 1 << ((weekday + 1) % 7)


def in_window(weekday: int, minute: int, start: int, end: int, days: int) -> bool:
    """Whether the alternative limits' window holds ``minute`` (after midnight) of ``weekday``
    (Monday 0 … Sunday 6): from ``start`` (included) to ``end`` (excluded) minutes after
    midnight, on the ``days`` of the mask. ``start == end``: never."""
    if start < end:
        return start <= minute < end and bool(days & day_bit(weekday))
    if start > end:  # across midnight: the morning part is the day before's window
        if minute >= start:
            return bool(days & day_bit(weekday))
        if minute < end:
            return bool(days & day_bit((weekday - 1) % 7))
    return False


def scheduled(s: ServiceSettings, now: float) -> bool | None:
    """What the schedule says at wall-clock time ``now`` (local time): on, off, or None when
    there is no schedule."""
    if not s.alt_schedule_enabled:
        return None
    local = time.localtime(now)
    return in_window(local.tm_wday, local.tm_hour * 60 + local.tm_min, s.alt_schedule_from,
                     s.alt_schedule_to, s.alt_schedule_days)


def effective_limits(s: ServiceSettings) -> tuple[int, int]:
    """The global (download, upload) limits in force, bytes/s (0: none)."""
    if s.alt_speed_enabled:
        return s.alt_download_limit, s.alt_upload_limit
    return s.download_limit, s.upload_limit


def check_minute(value: object, name: str) -> int:
    """Minutes after midnight, 0 … 1439."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < MINUTES_A_DAY:
        raise InvalidJobRequest(f"must be minutes after midnight, 0 to {MINUTES_A_DAY - 1}", name)
    return value


def check_days(value: object, name: str) -> int:
    """A days mask, 0 … 127 (Sunday 1, Monday 2 … Saturday 64)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= EVERY_DAY:
        raise InvalidJobRequest("must be a days mask from 0 to 127 (Sunday 1, Monday 2 … Saturday 64)", name)
    return value


DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_days(text: str) -> int:
    """A days mask from the daemon's words: ``all``, ``weekdays``, ``weekends`` or day names
    joined by commas (``mon,wed,fri``); ``ValueError`` saying why not."""
    word = text.strip().lower()
    if word in ("all", "every day", "everyday"):
        return EVERY_DAY
    if word == "weekdays":
        return QBT_DAYS[1]
    if word == "weekends":
        return QBT_DAYS[2]
    mask = 0
    for name in word.split(","):
        name = name.strip()[:3]
        if name not in DAY_NAMES:
            raise ValueError(f"expected all, weekdays, weekends or day names (mon,tue,…), got {text!r}")
        mask |= day_bit(DAY_NAMES.index(name))
    return mask


def parse_window(text: str) -> tuple[int, int]:
    """``HH:MM-HH:MM`` as minutes after midnight; ``ValueError`` saying why not."""
    try:
        first, last = text.split("-")
        out = []
        for part in (first, last):
            hours, minutes = part.strip().split(":")
            h, m = int(hours), int(minutes)
            if not (0 <= h < 24 and 0 <= m < 60):
                raise ValueError
            out.append(h * 60 + m)
    except ValueError:
        raise ValueError(f"expected HH:MM-HH:MM, e.g. 08:00-20:00, got {text!r}") from None
    return out[0], out[1]
