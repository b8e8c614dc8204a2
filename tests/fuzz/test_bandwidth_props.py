"""Property tests of the bandwidth groups' weighted fair shares (policy/bandwidth.py).

Over random capacities, weights and wants: nobody gets more than it wants; the capacity is used up
to what is wanted; and a group that gets less than it wants has the highest share per weight (no
group is favoured over one that is held back, beyond their weights).
"""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from torrent_engine.policy.bandwidth import Claim, fair_shares

claims = st.dictionaries(
    st.integers(0, 20),
    st.builds(Claim, weight=st.integers(1, 100),
              want=st.one_of(st.just(math.inf), st.floats(0, 1e7, allow_nan=False))),
    max_size=12)


@settings(max_examples=300, deadline=None)
@given(capacity=st.floats(0, 1e8, allow_nan=False), claims=claims)
def test_fair_shares_are_weighted_max_min_fair(capacity: float, claims: dict[int, Claim]) -> None:
    shares = fair_shares(capacity, claims)
    assert shares.keys() == claims.keys()
    tolerance = 1e-6 * max(capacity, 1.0)
    for k, share in shares.items():
        assert 0 <= share <= claims[k].want + tolerance
    wanted = sum(min(c.want, capacity) for c in claims.values())
    assert sum(shares.values()) <= capacity + tolerance
    assert sum(shares.values()) >= min(capacity, wanted) - tolerance * (len(claims) + 1)
    short = [k for k in claims if shares[k] < claims[k].want - tolerance]
    if short:  # (held back: the capacity is all given, and they have the top level per weight)
        level = max(shares[k] / claims[k].weight for k in short)
        for k in short:
            assert math.isclose(shares[k] / claims[k].weight, level, rel_tol=1e-6, abs_tol=1e-6)
        for k in claims:
            assert shares[k] / claims[k].weight <= level * (1 + 1e-6) + 1e-6
