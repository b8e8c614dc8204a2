"""Trackers: HTTP(S) (BEP 3, 7, 23, 24, 31, 48) and UDP (BEP 15, 41), and the per-session
coordinator that walks BEP 12 tiers. ``messages`` is the sans-I/O core; ``http``, ``udp`` and
``coordinator`` are the async shells."""

from __future__ import annotations

from .coordinator import AnnounceStats, TrackerCoordinator, TrackerStatus
from .messages import AnnounceRequest, AnnounceResponse, ScrapeResponse, ScrapeStats

__all__ = [
    "AnnounceRequest",
    "AnnounceResponse",
    "AnnounceStats",
    "ScrapeResponse",
    "ScrapeStats",
    "TrackerCoordinator",
    "TrackerStatus",
]
