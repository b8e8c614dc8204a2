"""LEDBAT on a simulated bottleneck: uTP fills an idle link at about the 100 ms target delay,
and backs off to its minimum window while a competing flow keeps the queue past the target."""

from __future__ import annotations

from tests.unit.utp.simnet import Link, Pair
from torrent_engine.utp.congestion import TARGET_DELAY_US

RATE = 1_000_000  # bytes/s at the bottleneck
S = 1_000_000  # µs per s


def _phase(pair: Pair, ab: Link, start: int, lo: float, hi: float) -> tuple[float, float, float]:
    """uTP goodput (bytes/s), mean queueing delay at the bottleneck (ms), cwnd at the end."""
    s = [x for x in pair.samples if start + lo * S <= x[0] < start + hi * S]
    rate = (s[-1][3] - s[0][3]) / ((s[-1][0] - s[0][0]) / S)
    q = [d for (t, d) in ab.queue_samples if start + lo * S <= t < start + hi * S]
    return rate, sum(q) / len(q) / 1000, s[-1][1]


def test_ledbat_keeps_the_target_delay_and_yields_to_a_competing_flow() -> None:
    ab = Link(delay_us=10_000, rate=RATE, queue_limit=2 * RATE)  # a 2 s deep buffer
    pair = Pair(ab, Link(delay_us=10_000), seed=1)
    start = pair.now
    # a flow that does not back off takes the whole link from 10 s to 20 s
    pair.inject_cross_traffic(start + 10 * S, start + 20 * S, RATE)
    pair.run(b"\0" * 40_000_000, close=False, stop_at=start + 30 * S)
    alone_rate, alone_delay, _ = _phase(pair, ab, start, 2, 10)
    shared_rate, shared_delay, shared_cwnd = _phase(pair, ab, start, 12, 20)
    after_rate, after_delay, _ = _phase(pair, ab, start, 22, 30)
    print(f"alone: {alone_rate / 1e3:.0f} kB/s, queueing {alone_delay:.0f} ms; "
          f"competing: {shared_rate / 1e3:.0f} kB/s, queueing {shared_delay:.0f} ms, "
          f"cwnd {shared_cwnd:.0f} B; "
          f"after: {after_rate / 1e3:.0f} kB/s, queueing {after_delay:.0f} ms")
    # alone: the link is used and the queue holds about the target delay (not the 2 s buffer)
    assert alone_rate >= 0.8 * RATE
    assert 0.3 * TARGET_DELAY_US / 1000 <= alone_delay <= 1.5 * TARGET_DELAY_US / 1000
    # competing: uTP yields (minimum window) instead of growing the queue further
    assert shared_rate <= 0.1 * alone_rate
    assert shared_cwnd <= 2 * pair.a.packet_size
    # and takes the link back once the other flow is gone
    assert after_rate >= 0.8 * RATE
