"""The queue and the share limits, as pure decisions: which jobs may run now, and whether a
seeding job has reached its share limit. The service applies them every tick (``features.py``
holds the per-job flags, ``settings.py`` the maxima and the defaults).

Rules (those of qBittorrent's queue): jobs are taken in queue order; at most
``max_active_downloads`` incomplete ones run, at most ``max_active_uploads`` complete ones, and
at most ``max_active_torrents`` in all (-1 = no maximum); a force-started job always runs and
does not count; a paused job neither runs nor counts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .model import NO_LIMIT
from .settings import ServiceSettings


@dataclass(frozen=True, slots=True)
class QueueEntry:
    """What the queue needs to know of one unfinished, unpaused job."""

    id: str
    position: int
    complete: bool  # every wanted piece verified (it would seed)
    force_start: bool


def held_jobs(entries: Iterable[QueueEntry], settings: ServiceSettings) -> set[str]:
    """The ids of the jobs that must wait (state ``queued``); none when queueing is off."""
    if not settings.queueing:
        return set()
    ordered = sorted(entries, key=lambda e: e.position)
    given = admitted((e for e in ordered if not e.complete), (e for e in ordered if e.complete), settings)
    return {e.id for e in ordered if not e.force_start and e.id not in given}


def admitted(downloads: Iterable[QueueEntry], seeds: Iterable[QueueEntry],
             settings: ServiceSettings) -> set[str]:
    """The ids of the jobs the queue gives a slot (when queueing is on): ``downloads``, the
    incomplete jobs, then ``seeds``, the complete ones, each in queue order (as given: by
    position). Force-started ones run apart and are not counted. Each is read only until its
    slots are taken: a caller walking 10 000 waiting jobs reads the first few of them."""
    given: set[str] = set()
    total = 0
    classes = ((downloads, settings.max_active_downloads), (seeds, settings.max_active_uploads))
    for entries, maximum in classes:
        running = 0
        for e in entries:
            if e.force_start:
                continue
            if (0 <= maximum <= running) or (0 <= settings.max_active_torrents <= total):
                break
            given.add(e.id)
            running += 1
            total += 1
    return given


def share_ratio(uploaded: int, downloaded: int, done: int) -> float:
    """Uploaded over downloaded; a job that downloaded (almost) nothing itself (it was seeded
    from data already on disk) counts its verified bytes instead, as qBittorrent does."""
    base = downloaded if downloaded >= done // 100 and downloaded > 0 else done
    return uploaded / base if base > 0 else 0.0


def effective(limit: float | None, default: float) -> float:
    """The job's limit, or the service's default when it has none of its own."""
    return default if limit is None else limit


def share_limit_reached(ratio: float, seeding_time: float, ratio_limit: float, time_limit: float) -> bool:
    """Whether a seeding job is at its ratio limit or its seeding-time limit (-1 = none)."""
    if ratio_limit != NO_LIMIT and ratio_limit >= 0 and ratio >= ratio_limit:
        return True
    return time_limit != NO_LIMIT and time_limit >= 0 and seeding_time >= time_limit


def move(order: list[str], ids: Iterable[str], where: str) -> list[str]:
    """``order`` (job ids, first = top) with ``ids`` moved "top", "bottom", "up" or "down" one place
    (several ids keep their relative order)."""
    chosen = [i for i in order if i in set(ids)]
    if not chosen:
        return list(order)
    rest = [i for i in order if i not in chosen]
    if where == "top":
        return chosen + rest
    if where == "bottom":
        return rest + chosen
    out = list(order)
    if where == "up":
        for i in range(1, len(out)):
            if out[i] in chosen and out[i - 1] not in chosen:
                out[i - 1], out[i] = out[i], out[i - 1]
        return out
    if where == "down":
        for i in range(len(out) - 2, -1, -1):
            if out[i] in chosen and out[i + 1] not in chosen:
                out[i + 1], out[i] = out[i], out[i + 1]
        return out
    raise ValueError(f"unknown queue move {where!r}")
