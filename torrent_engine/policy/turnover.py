"""Peer turnover (sans-I/O; libtorrent's ``peer_turnover``, ``peer_turnover_cutoff``,
``peer_turnover_interval``): a torrent at its connection limit makes room, every interval, for
peers it has not tried, by dropping a share of its worst.

Every ``interval`` seconds, a torrent whose connections reach ``cutoff`` percent of its limit
(a limit of 6 at least: below, it is too disruptive) drops ``percent`` percent of them (one at
least), and never more than the addresses it could dial in their place. The worst go first, in
libtorrent's order: peers that have nothing we want, peers that are not seeds, then the slowest
to send us data over the time they have been connected, peers that choke us, and the longest
silent. (libtorrent puts peers already closing first: here they are not counted at all.)
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import Protocol, TypeVar

__all__ = ["MIN_TURNOVER_LIMIT", "TurnoverPeer", "turnover_count", "worst_peers"]

MIN_TURNOVER_LIMIT = 6  # a torrent allowed fewer connections keeps the ones it has


class TurnoverPeer(Protocol):
    """What turnover reads of a connected peer (``session.peer.PeerState``)."""

    @property
    def am_interested(self) -> bool:
        """It has something we want."""

    @property
    def is_seed(self) -> bool:
        """It has every piece."""

    @property
    def downloaded(self) -> int:
        """Payload bytes it sent us."""

    @property
    def connected_at(self) -> float:
        """When it connected (the clock ``now`` is on)."""

    @property
    def peer_choking(self) -> bool:
        """It chokes us."""

    @property
    def last_block(self) -> float:
        """When it last sent us a block."""


P = TypeVar("P", bound=TurnoverPeer)


def turnover_count(connected: int, limit: int, candidates: int, *, percent: int, cutoff: int) -> int:
    """How many of ``connected`` peers to drop now, with ``candidates`` addresses that could be
    dialed in their place, at a limit of ``limit`` connections (0: none)."""
    if percent <= 0 or limit < MIN_TURNOVER_LIMIT or connected * 100 < limit * min(cutoff, 100):
        return 0
    return min(max(connected * percent // 100, 1), candidates, connected)


def worst_peers(peers: Sequence[P], count: int, now: float) -> list[P]:
    """The ``count`` peers to drop first (see the module's docstring)."""
    if count <= 0:
        return []

    def worth(peer: P) -> tuple[bool, bool, int, bool, float]:
        rate = peer.downloaded // (int(max(now - peer.connected_at, 0.0)) + 1)
        return (peer.am_interested, peer.is_seed, rate, not peer.peer_choking, peer.last_block)

    return heapq.nsmallest(count, peers, key=worth)
