"""Weighted fair shares of a global rate limit among bandwidth groups (policy/bandwidth.py)."""

from __future__ import annotations

import math

import pytest

from torrent_engine.policy.bandwidth import (
    HEADROOM,
    HELD_ROUNDS,
    KEEP,
    MIN_RATE,
    Claim,
    Observed,
    ShareRounds,
    fair_shares,
    share_rates,
    wanted,
)

MIB = 1024 * 1024


def test_two_groups_that_want_more_share_by_weight() -> None:
    shares = fair_shares(2 * MIB, {"a": Claim(3, math.inf), "b": Claim(1, math.inf)})
    assert shares["a"] == pytest.approx(1.5 * MIB)
    assert shares["b"] == pytest.approx(0.5 * MIB)


def test_a_group_that_wants_less_leaves_the_rest_to_the_others() -> None:
    shares = fair_shares(2 * MIB, {"a": Claim(3, 0.2 * MIB), "b": Claim(1, math.inf),
                                   "c": Claim(1, math.inf)})
    assert shares["a"] == pytest.approx(0.2 * MIB)
    assert shares["b"] == pytest.approx(0.9 * MIB)
    assert shares["c"] == pytest.approx(0.9 * MIB)


def test_the_leftover_of_a_second_group_is_shared_again() -> None:
    # b wants more than its first share (25) but less than its share once a's leftover is
    # split (30): it gets what it wants, the third group the rest
    shares = fair_shares(100, {"a": Claim(1, 10), "b": Claim(1, 28), "c": Claim(2, math.inf)})
    assert shares == pytest.approx({"a": 10, "b": 28, "c": 62})


def test_nobody_wanting_everything_leaves_capacity_unused() -> None:
    shares = fair_shares(100, {"a": Claim(5, 10), "b": Claim(1, 20), "idle": Claim(1, 0)})
    assert shares == {"a": 10, "b": 20, "idle": 0.0}


@pytest.mark.parametrize(("capacity", "claims", "what"), [
    (-1, {"a": Claim(1, 1)}, "capacity"),
    (10, {"a": Claim(0, 1)}, "weight of 'a'"),
    (10, {"a": Claim(1, -5)}, "want of 'a'"),
    (10, {"a": Claim(1, math.nan)}, "want of 'a'"),
])
def test_bad_values_are_refused_by_name(capacity: float, claims: dict[str, Claim], what: str) -> None:
    with pytest.raises(ValueError, match=what):
        fair_shares(capacity, claims)


def test_a_group_held_back_wants_all_its_own_limit_lets_it() -> None:
    assert wanted(Observed(2, 0, 1000, True), 1.0) == Claim(2, math.inf)
    assert wanted(Observed(2, 5000, 1000, True), 1.0) == Claim(2, 5000.0)
    assert wanted(Observed(1, 0, 1000, False), 0.5) == Claim(1, 2000 * HEADROOM)
    # (it never waited, but it used nearly all it was given: it wants more)
    assert wanted(Observed(1, 0, 950, False, given=1000), 1.0) == Claim(1, math.inf)
    # (it used half: it comes down, by at most 1 - KEEP a round)
    assert wanted(Observed(1, 0, 500, False, given=1000), 1.0) == Claim(1, 1000 * KEEP)
    assert wanted(Observed(1, 0, 100, False, given=100), 1.0, held_lately=True) == Claim(1, math.inf)


def test_a_group_held_back_lately_keeps_its_share_through_a_slow_round() -> None:
    rounds: ShareRounds[str] = ShareRounds()
    k = 1024
    busy = {"a": Observed(3, 0, 1500 * k, True, given=1500 * k),
            "b": Observed(1, 0, 500 * k, True, given=500 * k)}
    assert rounds.rates(2000 * k, busy, 1.0) == {"a": 1500 * k, "b": 500 * k}
    # a round in which "b" was late (a busy machine): it still wants more, its share is kept
    slow = {"a": Observed(3, 0, 1500 * k, True, given=1500 * k),
            "b": Observed(1, 0, 200 * k, False, given=500 * k)}
    for _ in range(HELD_ROUNDS):
        assert rounds.rates(2000 * k, slow, 1.0) == {"a": 1500 * k, "b": 500 * k}
    # slow for longer than HELD_ROUNDS: it wants less, and "a" is given what it leaves
    rates = rounds.rates(2000 * k, slow, 1.0)
    assert rates["b"] == 500 * k * KEEP and rates["a"] == 2000 * k - 200 * k


def test_rates_of_a_round_follow_the_weights_and_give_a_quiet_group_a_start() -> None:
    rates = share_rates(2 * MIB, {"a": Observed(3, 0, MIB, True), "b": Observed(1, 0, MIB // 4, True),
                                  "quiet": Observed(1, 0, 0, False)}, 1.0)
    assert rates["a"] == 3 * rates["b"]
    assert rates["a"] + rates["b"] == 2 * MIB
    assert rates["quiet"] == MIN_RATE  # (the global limit holds the total meanwhile)


def test_rates_never_reach_zero_which_would_mean_no_limit() -> None:
    rates = share_rates(10, {"a": Observed(1, 0, 0, False), "b": Observed(100, 0, 5, True)}, 1.0)
    assert min(rates.values()) >= 1
    assert rates["a"] <= 10
