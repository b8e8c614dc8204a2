"""Choker: tit-for-tat when leeching, round-robin / fastest-upload / anti-leech when seeding, and the
optimistic unchoke rotated every 30 s with new peers favoured."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from torrent_engine.policy.choker import OPTIMISTIC_INTERVAL, RECHOKE_INTERVAL, ChokePeer, Choker


def leechers(rates: dict[str, float], connected_at: float = 0.0) -> list[ChokePeer]:
    return [ChokePeer(k, True, download_rate=r, connected_at=connected_at) for k, r in rates.items()]


def test_leeching_unchokes_the_fastest_uploaders_to_us_plus_one_optimistic() -> None:
    ch = Choker(random.Random(1), upload_slots=3)
    peers = leechers({"a": 50, "b": 900, "c": 10, "d": 300, "e": 700, "f": 0})
    peers.append(ChokePeer("lazy", interested=False, download_rate=10_000))
    peers.append(ChokePeer("snub", interested=True, download_rate=5_000, snubbed=True))
    unchoked = ch.rechoke(peers, now=0.0)
    assert {"b", "e", "d"} <= unchoked  # tit-for-tat: the three best rates
    assert len(unchoked) == 4 and "lazy" not in unchoked
    [opt] = ch.optimistic
    assert opt in {"a", "c", "f", "snub"} and opt in unchoked  # snubbed peers only get this slot


def test_upload_slots_are_configurable() -> None:
    peers = leechers({str(i): float(i) for i in range(20)})
    assert len(Choker(random.Random(0), upload_slots=8).rechoke(peers, 0.0)) == 9
    only_regular = Choker(random.Random(0), upload_slots=2, optimistic_slots=0).rechoke(peers, 0.0)
    assert only_regular == {"19", "18"}


def test_optimistic_unchoke_holds_for_30_seconds_then_rotates() -> None:
    ch = Choker(random.Random(5), upload_slots=1)
    peers = leechers({"fast": 100, "x": 0, "y": 0, "z": 0}, connected_at=-1000.0)
    ch.rechoke(peers, 0.0)
    first = set(ch.optimistic)
    for t in (RECHOKE_INTERVAL, 2 * RECHOKE_INTERVAL):
        ch.rechoke(peers, t)
        assert set(ch.optimistic) == first
    ch.rechoke(peers, OPTIMISTIC_INTERVAL)
    assert set(ch.optimistic) != first and len(ch.optimistic) == 1


def test_optimistic_is_replaced_at_once_when_its_holder_leaves() -> None:
    ch = Choker(random.Random(2), upload_slots=1)
    peers = leechers({"fast": 100, "x": 0, "y": 0})
    ch.rechoke(peers, 0.0)
    [holder] = ch.optimistic
    remaining = [p for p in peers if p.key != holder]
    unchoked = ch.rechoke(remaining, 5.0)
    [new] = ch.optimistic
    assert new != holder and new in unchoked


def test_new_peers_are_three_times_as_likely_to_get_the_optimistic_unchoke() -> None:
    wins: Counter[str] = Counter()
    rng = random.Random(42)
    for _ in range(600):
        ch = Choker(rng, upload_slots=0)
        peers = [
            ChokePeer("new", interested=True, connected_at=100.0),
            ChokePeer("old1", interested=True, connected_at=0.0),
            ChokePeer("old2", interested=True, connected_at=0.0),
            ChokePeer("old3", interested=True, connected_at=0.0),
        ]
        ch.rechoke(peers, now=120.0)
        wins.update(ch.optimistic)
    # expected shares 3/6 vs 1/6 each; the bounds are many standard deviations wide
    assert 240 < wins["new"] < 360
    assert all(60 < wins[k] < 140 for k in ("old1", "old2", "old3"))


def test_seeding_round_robin_gives_every_interested_peer_a_turn() -> None:
    ch = Choker(random.Random(0), upload_slots=2, optimistic_slots=0, round_robin_quota=1000)
    state = {k: ChokePeer(k, interested=True) for k in "abcdef"}
    turns: Counter[str] = Counter()
    now = 0.0
    for _ in range(3):
        unchoked = ch.rechoke(state.values(), now, seeding=True)
        assert len(unchoked) == 2
        turns.update(unchoked)
        for k, p in state.items():  # each unchoked peer is served its quota before the next rechoke
            if k in unchoked:
                since = p.unchoked_at if p.unchoked else now
                state[k] = ChokePeer(k, True, unchoked=True, unchoked_at=since, uploaded_since_unchoke=1000)
            elif p.unchoked:
                state[k] = ChokePeer(k, True, unchoked=False, unchoked_at=p.unchoked_at)
        now += RECHOKE_INTERVAL
    assert set(turns) == set("abcdef") and all(v == 1 for v in turns.values())


def test_seeding_round_robin_keeps_a_peer_until_its_turn_is_over() -> None:
    ch = Choker(random.Random(0), upload_slots=1, optimistic_slots=0, round_robin_quota=1000)
    serving = ChokePeer("a", True, unchoked=True, unchoked_at=0.0, uploaded_since_unchoke=10)
    waiting = ChokePeer("b", True)
    assert ch.rechoke([serving, waiting], 10.0, seeding=True) == {"a"}
    assert ch.rechoke([serving, waiting], 70.0, seeding=True) == {"b"}  # round_robin_time is up


def test_seeding_fastest_upload() -> None:
    ch = Choker(random.Random(0), upload_slots=2, optimistic_slots=0, seeding_algorithm="fastest_upload")
    peers = [ChokePeer(k, True, upload_rate=r) for k, r in {"a": 5, "b": 50, "c": 500}.items()]
    assert ch.rechoke(peers, 0.0, seeding=True) == {"b", "c"}


def test_seeding_anti_leech_serves_those_that_have_just_begun_or_nearly_finished_first() -> None:
    ch = Choker(random.Random(0), upload_slots=2, optimistic_slots=0, seeding_algorithm="anti_leech")
    have = {"new": 0.0, "early": 0.1, "half": 0.5, "late": 0.95, "fast-half": 0.55}
    peers = [ChokePeer(k, True, have=h, upload_rate=1000 if k == "fast-half" else 10)
             for k, h in have.items()]
    assert ch.rechoke(peers, 0.0, seeding=True) == {"new", "late"}  # (the farthest from half)
    peers.remove(next(p for p in peers if p.key == "new"))
    assert ch.rechoke(peers, 10.0, seeding=True) == {"early", "late"}


def test_rechoke_is_due_every_ten_seconds() -> None:
    ch = Choker(random.Random(0))
    assert ch.due(0.0)
    ch.rechoke([], 0.0)
    assert not ch.due(9.9) and ch.due(10.0)


def test_bad_slot_counts_are_refused() -> None:
    with pytest.raises(ValueError):
        Choker(random.Random(0), upload_slots=-1)
