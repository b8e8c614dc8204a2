"""Peer turnover's rules (policy/turnover.py), pure: how many of a torrent's peers it drops and
which first, as libtorrent's ``peer_turnover`` and ``compare_disconnect_peer``."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from torrent_engine.policy.turnover import turnover_count, worst_peers


@pytest.mark.parametrize(("connected", "limit", "candidates", "percent", "cutoff", "count"), [
    (60, 60, 100, 4, 90, 2),  # (libtorrent's defaults: 4 % of 60)
    (54, 60, 100, 4, 90, 2),  # (at 90 % of the limit)
    (53, 60, 100, 4, 90, 0),  # (below it)
    (60, 60, 1, 4, 90, 1),  # (no more than the addresses to try instead)
    (60, 60, 0, 4, 90, 0),
    (6, 6, 10, 4, 90, 1),  # (one at least)
    (5, 5, 10, 50, 90, 0),  # (a limit under 6: kept)
    (60, 60, 100, 0, 90, 0),  # (0 %: never)
    (10, 60, 100, 50, 0, 5),  # (a cutoff of 0: always)
    (10, 10, 100, 100, 100, 10),
])
def test_how_many_are_dropped(connected: int, limit: int, candidates: int, percent: int, cutoff: int,
                              count: int) -> None:
    assert turnover_count(connected, limit, candidates, percent=percent, cutoff=cutoff) == count


@dataclass
class Peer:
    name: str
    am_interested: bool = True
    is_seed: bool = False
    downloaded: int = 1_000_000
    connected_at: float = 0.0
    peer_choking: bool = False
    last_block: float = 99.0


def test_the_worst_go_first_in_libtorrents_order() -> None:
    now = 100.0
    peers = [
        Peer("fast"),
        Peer("seed", is_seed=True, downloaded=0),
        Peer("useless", am_interested=False, downloaded=50_000_000),
        Peer("slow", downloaded=1_000),
        Peer("new-and-fast", downloaded=100_000, connected_at=99.5),  # (its rate over 1 s: not slow)
        Peer("choking", peer_choking=True),
        Peer("silent", last_block=10.0),
    ]
    order = [p.name for p in worst_peers(peers, len(peers), now)]
    assert order == ["useless", "slow", "choking", "silent", "fast", "new-and-fast", "seed"]
    assert [p.name for p in worst_peers(peers, 2, now)] == ["useless", "slow"]
    assert worst_peers(peers, 0, now) == []
