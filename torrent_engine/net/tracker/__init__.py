"""Trackers: HTTP(S) (BEP 3, 7, 23, 24, 31, 48) and UDP (BEP 15, 41), and the per-session
coordinator that walks BEP 12 tiers. ``messages`` is the sans-I/O core; ``http``, ``udp`` and
``coordinator`` are the async shells. The names below load on first use, so importing the core
loads no shell."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..._lazy import lazy_names

if TYPE_CHECKING:
    from .coordinator import AnnounceStats, TrackerCoordinator, TrackerStatus
    from .messages import AnnounceRequest, AnnounceResponse, ScrapeResponse, ScrapeStats

_WHERE = {
    "AnnounceRequest": "messages",
    "AnnounceResponse": "messages",
    "AnnounceStats": "coordinator",
    "ScrapeResponse": "messages",
    "ScrapeStats": "messages",
    "TrackerCoordinator": "coordinator",
    "TrackerStatus": "coordinator",
}

__all__ = [
    "AnnounceRequest",
    "AnnounceResponse",
    "AnnounceStats",
    "ScrapeResponse",
    "ScrapeStats",
    "TrackerCoordinator",
    "TrackerStatus",
]


__getattr__, __dir__ = lazy_names(__name__, _WHERE)
