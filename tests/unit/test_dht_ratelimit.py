"""Per-address token bucket that keeps a flood from one source contained."""

from __future__ import annotations

from torrent_engine.dht.ratelimit import RateLimiter


def test_burst_then_refill_per_address() -> None:
    rl = RateLimiter(rate=10, burst=5)
    assert [rl.allow("10.0.0.1", 0.0) for _ in range(7)] == [True] * 5 + [False] * 2
    assert rl.dropped == 2
    assert rl.allow("10.0.0.2", 0.0)  # another address is unaffected
    assert not rl.allow("10.0.0.1", 0.05)  # half a token
    assert rl.allow("10.0.0.1", 0.2)  # refilled
    # Refill is capped at the burst size.
    assert sum(rl.allow("10.0.0.1", 100.0) for _ in range(20)) == 5


def test_number_of_tracked_addresses_is_bounded() -> None:
    rl = RateLimiter(rate=1, burst=1, max_hosts=100)
    for i in range(1000):
        rl.allow(f"10.0.{i // 250}.{i % 250}", 0.0)
    assert len(rl._buckets) == 100
