"""LEDBAT on a simulated bottleneck: uTP fills an idle link at about the 100 ms target delay,
and backs off to its minimum window while a competing flow keeps the queue past the target."""

from __future__ import annotations

from tests.unit.utp.simnet import Link, Pair
from torrent_engine.net.utp.congestion import TARGET_DELAY_US, Ledbat

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


def test_one_late_delay_sample_is_not_taken_for_a_queue() -> None:
    # jitter (or a relay's tick) delays one packet: the smallest of the last few samples says
    # there is no queue, so slow start goes on and the window does not shrink
    cc = Ledbat(1400, max_window=1 << 20)
    for i in range(5):
        cc.on_delay_sample(50_000, i * 1000)
    cc.on_delay_sample(50_000 + 3 * TARGET_DELAY_US // 4, 6000)
    assert cc.last_queueing_delay_us == 0
    cwnd = cc.cwnd
    cc.on_ack(1400, int(cwnd), 200_000)
    assert cc.slow_start and cc.cwnd == cwnd + 1400
    # a queue that lasts is seen once it is in every recent sample
    for i in range(3):
        cc.on_delay_sample(50_000 + 3 * TARGET_DELAY_US // 4, 7000 + i * 1000)
    assert cc.last_queueing_delay_us == 3 * TARGET_DELAY_US // 4
    cc.on_ack(1400, int(cc.cwnd), 200_000)
    assert not cc.slow_start


def test_a_timeout_restarts_slow_start_up_to_the_window_the_last_loss_left() -> None:
    cc = Ledbat(1400, max_window=1 << 20)
    cc.slow_start = False
    cc.cwnd = 40 * 1400.0
    cc.on_loss()
    assert cc.ssthresh == cc.cwnd == 20 * 1400
    cc.on_timeout()  # the retransmission was lost too
    assert cc.cwnd == 1400 and cc.slow_start
    assert cc.ssthresh == 20 * 1400  # not halved again: slow start regrows to it
    while cc.slow_start:
        cc.on_ack(1400, int(cc.cwnd), 20_000)
    assert cc.cwnd >= 20 * 1400
