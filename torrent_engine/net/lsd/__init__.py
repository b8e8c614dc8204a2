"""Local Service Discovery (BEP 14): the announce codec and schedule (sans-I/O) and the
multicast service SharedResources runs for all sessions."""

from .codec import MULTICAST_V4, MULTICAST_V6, Announce, encode_announce, parse_announce
from .schedule import AnnounceSchedule
from .service import LsdService

__all__ = ["MULTICAST_V4", "MULTICAST_V6", "Announce", "AnnounceSchedule", "LsdService", "encode_announce",
           "parse_announce"]
