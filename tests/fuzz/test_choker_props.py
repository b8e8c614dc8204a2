"""Property tests of the Choker over random peer sets and rechoke sequences.

Only interested peers are unchoked; never more than upload_slots + optimistic_slots; when
leeching, every unchoked peer outside the optimistic set sends us at least as fast as any
choked interested non-snubbed peer (tit-for-tat); the optimistic peer does not change between
rechokes less than 30 s apart while it stays eligible.
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from torrent_engine.policy.choker import OPTIMISTIC_INTERVAL, ChokePeer, Choker

peer_strategy = st.builds(
    ChokePeer,
    key=st.integers(0, 30),
    interested=st.booleans(),
    download_rate=st.floats(0, 1e6, allow_nan=False),
    upload_rate=st.floats(0, 1e6, allow_nan=False),
    snubbed=st.booleans(),
    connected_at=st.floats(-1000, 0, allow_nan=False),
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.lists(peer_strategy, max_size=15, unique_by=lambda p: p.key), min_size=1, max_size=6),
    st.integers(0, 5),
    st.integers(0, 2),
    st.booleans(),
    st.integers(0, 2**32),
    st.lists(st.sampled_from([1.0, 10.0, 10.0, 30.0]), min_size=6, max_size=6),
)
def test_choker_properties(
    rounds: list[list[ChokePeer]], slots: int, optimistic: int, seeding: bool, seed: int, steps: list[float]
) -> None:
    ch = Choker(random.Random(seed), upload_slots=slots, optimistic_slots=optimistic)
    now = 0.0
    holders: frozenset[object] = frozenset()
    rotated_at: float | None = None
    for peers, step in zip(rounds, steps, strict=False):
        now += step
        unchoked = ch.rechoke(peers, now, seeding=seeding)
        by_key = {p.key: p for p in peers}
        assert unchoked <= {p.key for p in peers if p.interested}
        assert len(unchoked) <= slots + optimistic
        assert len(ch.optimistic) <= optimistic and ch.optimistic <= unchoked
        regular_keys = unchoked - ch.optimistic
        if not seeding:
            regular = [by_key[k] for k in regular_keys]
            choked = [p for p in peers if p.interested and not p.snubbed and p.key not in unchoked]
            if regular and choked:
                assert min(p.download_rate for p in regular) >= max(p.download_rate for p in choked)
            assert not any(p.snubbed for p in regular)
        if rotated_at is None or now - rotated_at >= OPTIMISTIC_INTERVAL:
            rotated_at = now  # a rotation: anyone may hold the slot now
        else:
            still_eligible = {
                k for k in holders if k in by_key and by_key[k].interested and k not in regular_keys
            }
            assert still_eligible <= ch.optimistic  # holders keep their slot until the 30 s are up
        holders = ch.optimistic
