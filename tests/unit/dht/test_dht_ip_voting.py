"""BEP 42 external-address votes: distinct hosts, bounded memory."""

from __future__ import annotations

from torrent_engine.net.dht.ip_voting import EXTERNAL_IP_VOTES, MAX_CANDIDATES, ExternalIpVotes


def test_an_address_wins_with_enough_distinct_hosts() -> None:
    votes = ExternalIpVotes()
    assert EXTERNAL_IP_VOTES == 3
    assert not votes.vote("1.2.3.4", "10.0.0.1")
    assert not votes.vote("1.2.3.4", "10.0.0.1")  # the same host again: still one vote
    assert not votes.vote("1.2.3.4", "10.0.0.2")
    assert votes.vote("1.2.3.4", "10.0.0.3")


def test_a_flood_of_candidates_is_bounded() -> None:
    votes = ExternalIpVotes()
    for i in range(10 * MAX_CANDIDATES):
        votes.vote(f"9.9.{i // 250}.{i % 250}", "10.0.0.1")
    assert len(votes._votes) <= MAX_CANDIDATES + 1
