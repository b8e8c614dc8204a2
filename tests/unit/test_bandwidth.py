"""The rate limits every transfer passes (engine/bandwidth.py): a torrent's own, its group's and
the global one, with the groups' weighted shares of the global limit, over a simulated clock."""

from __future__ import annotations

import heapq

import pytest

from torrent_engine.engine.bandwidth import Bandwidth, BandwidthGroup, Direction, TokenBucket

MIB = 1024 * 1024
BLOCK = 16 * 1024


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def simulate(direction: Direction, clock: Clock, senders: dict[str, tuple[str, TokenBucket]],
             seconds: float, window: tuple[float, float]) -> dict[str, float]:
    """Senders that always have a block to send (each as a peer connection does: one block, wait,
    the next), in the order their waits end; each one's rate (bytes/s) over ``window``."""
    ready = [(0.0, name) for name in senders]
    heapq.heapify(ready)
    moved = dict.fromkeys(senders, 0)
    while ready:
        at, name = heapq.heappop(ready)
        if at >= seconds:
            break
        clock.now = at
        group, own = senders[name]
        delay = direction.admit(group, own, BLOCK)
        done = at + delay
        if window[0] <= done < window[1]:
            moved[name] += BLOCK
        heapq.heappush(ready, (done + 1e-4, name))
    return {name: n / (window[1] - window[0]) for name, n in moved.items()}


def direction(rate: int, groups: list[BandwidthGroup]) -> tuple[Direction, Clock]:
    clock = Clock()
    bw = Bandwidth(rate, clock=clock)
    bw.set_groups(groups)
    return bw.download, clock


def test_groups_that_want_more_share_the_global_limit_by_weight() -> None:
    down, clock = direction(2 * MIB, [BandwidthGroup("a", weight=3), BandwidthGroup("b", weight=1)])
    rates = simulate(down, clock, {"a1": ("a", TokenBucket(0, clock=clock)),
                                   "a2": ("a", TokenBucket(0, clock=clock)),
                                   "b1": ("b", TokenBucket(0, clock=clock))}, 20.0, (5.0, 20.0))
    a, b = rates["a1"] + rates["a2"], rates["b1"]
    assert a / b == pytest.approx(3.0, rel=0.05)
    assert a + b == pytest.approx(2 * MIB, rel=0.05)


def test_a_group_that_wants_less_leaves_the_rest_to_the_others() -> None:
    down, clock = direction(2 * MIB, [BandwidthGroup("a", weight=3), BandwidthGroup("b", weight=1)])
    slow = TokenBucket(MIB // 4, clock=clock)  # (a's one torrent wants no more than its own limit)
    rates = simulate(down, clock, {"a1": ("a", slow), "b1": ("b", TokenBucket(0, clock=clock))},
                     20.0, (5.0, 20.0))
    assert rates["a1"] == pytest.approx(MIB / 4, rel=0.05)
    assert rates["b1"] == pytest.approx(2 * MIB - MIB / 4, rel=0.05)


def test_a_group_limit_and_the_torrents_outside_every_group() -> None:
    down, clock = direction(2 * MIB, [BandwidthGroup("a", weight=5, download_limit=MIB // 2)])
    rates = simulate(down, clock, {"a1": ("a", TokenBucket(0, clock=clock)),
                                   "none": ("", TokenBucket(0, clock=clock)),
                                   "gone": ("deleted", TokenBucket(0, clock=clock))}, 20.0, (5.0, 20.0))
    assert rates["a1"] == pytest.approx(MIB / 2, rel=0.05)  # its own limit, below its share
    # (the torrents of no group, or of a group that is gone, are one group of weight 1)
    assert rates["none"] + rates["gone"] == pytest.approx(1.5 * MIB, rel=0.05)


def test_a_group_that_does_not_honour_the_global_limit_passes_it() -> None:
    down, clock = direction(MIB, [BandwidthGroup("free", download_limit=3 * MIB, honors_global=False),
                                  BandwidthGroup("b")])
    rates = simulate(down, clock, {"f": ("free", TokenBucket(0, clock=clock)),
                                   "b1": ("b", TokenBucket(0, clock=clock))}, 10.0, (3.0, 10.0))
    assert rates["f"] == pytest.approx(3 * MIB, rel=0.05)
    assert rates["b1"] == pytest.approx(MIB, rel=0.05)


def test_without_a_global_limit_each_group_has_its_own_limit_only() -> None:
    down, clock = direction(0, [BandwidthGroup("a", weight=3, download_limit=MIB), BandwidthGroup("b")])
    assert down.limited("a", TokenBucket(0))
    assert not down.limited("b", TokenBucket(0))
    assert down.rates() == {"a": MIB, "b": 0, "": 0}


def test_without_groups_only_the_global_and_the_torrents_own_limits_apply() -> None:
    down, clock = direction(0, [])
    assert not down.limited("a", TokenBucket(0))
    assert down.limited("a", TokenBucket(100))
    assert down.rates() == {}


def test_peers_on_the_local_network_pass_their_torrents_own_limit_alone_once_told() -> None:
    """``set_local_limited(False)``: a local transfer skips the global and group limits (its
    torrent's own applies); the others keep them."""
    clock = Clock()
    bw = Bandwidth(MIB, MIB, clock=clock)
    bw.set_groups([BandwidthGroup("a", download_limit=MIB // 2)])
    free, own = TokenBucket(0, clock=clock), TokenBucket(MIB // 4, clock=clock)
    assert bw.download.limited("a", free, local=True)  # (limited there too, by default)
    bw.set_local_limited(False)
    assert not bw.download.limited("a", free, local=True) and not bw.upload.limited("", free, local=True)
    assert bw.download.limited("a", own, local=True) and bw.download.limited("a", free)
    # a local peer's bytes: none of the global's nor the group's; its torrent's own still binds
    assert bw.download.admit("a", free, 8 * MIB, local=True) == 0.0
    assert bw.download.admit("a", own, MIB, local=True) > 0
    assert bw.download.admit("", TokenBucket(0, clock=clock), BLOCK) == 0.0  # (the global one untouched)
    assert bw.download.admit("", TokenBucket(0, clock=clock), 2 * MIB) > 0
    rates = simulate(bw.download, clock, {"wan": ("a", free)}, 20.0, (5.0, 20.0))
    assert rates["wan"] == pytest.approx(MIB / 2, rel=0.05)  # (a peer not local: the group's limit)
    bw.set_local_limited(True)
    assert bw.download.limited("a", free, local=True)


def test_bad_groups_are_refused() -> None:
    with pytest.raises(ValueError, match="weight"):
        Bandwidth().set_groups([BandwidthGroup("a", weight=0)])


def test_a_rate_change_keeps_what_was_earned_and_forgives_old_debts() -> None:
    clock = Clock()
    bucket = TokenBucket(100_000, clock=clock)
    assert bucket.try_consume(300_000) == pytest.approx(2.0)  # 200 000 in debt
    bucket.set_rate(10_000)  # (a debt of 20 s at the new rate is cut to half a second's)
    assert bucket.try_consume(0) == pytest.approx(0.5)
    bucket.set_rate(0)
    assert bucket.try_consume(10**9) == 0.0
    bucket.set_rate(50_000)  # (from no limit: a full burst)
    assert bucket.try_consume(50_000) == 0.0


def test_a_limited_transfer_takes_about_a_second_of_its_slowest_bucket_at_once() -> None:
    """``Direction.step``: the most bytes a transfer takes at once (an upload's run of blocks):
    all it asks unlimited, else one second of the slowest bucket it passes, at least one block,
    so that a slow limit sends steadily, not a quarter MiB after half a minute."""
    clock = Clock()
    bw = Bandwidth(0, 0, clock=clock)
    up, run = bw.upload, 256 * 1024
    free = TokenBucket(0, clock=clock)
    assert up.step("", free, run) == run
    assert up.step("", TokenBucket(8_000, clock=clock), run) == BLOCK  # (at least one block)
    assert up.step("", TokenBucket(100_000, clock=clock), run) == 100_000
    assert up.step("", TokenBucket(10 * MIB, clock=clock), run) == run
    bw.upload.set_global(TokenBucket(50_000, clock=clock))
    assert up.step("", free, run) == 50_000 and up.step("", TokenBucket(30_000, clock=clock), run) == 30_000
    bw.set_groups([BandwidthGroup("a", upload_limit=20_000), BandwidthGroup("free", honors_global=False)])
    assert up.step("a", free, run) == 20_000
    assert up.step("free", free, run) == run  # (a group that passes the global limit by)
    bw.set_local_limited(False)
    assert up.step("a", free, run, local=True) == run  # (a local peer: its torrent's own limit alone)
    assert up.step("a", TokenBucket(40_000, clock=clock), run, local=True) == 40_000
