"""The link emulator's model (tests/linkemu/model.py): delay, cap, queue, loss, jitter, sharing."""

from __future__ import annotations

import pytest

from tests.linkemu.model import Link, LinkSpec, QueueFull, Stream


def test_an_uncapped_link_only_delays() -> None:
    link = Link(LinkSpec(delay=0.05))
    assert link.send(1.0, 1500, datagram=True) == pytest.approx(1.05)
    assert link.send(1.0, 10**9, datagram=False) == pytest.approx(1.05)
    assert link.backlog(1.0) == 0


def test_the_cap_spaces_packets_by_their_size_over_the_rate() -> None:
    link = Link(LinkSpec(delay=0.1, rate=10_000, queue_bytes=100_000))
    arrivals = [link.send(0.0, 1000, datagram=True) for _ in range(10)]
    assert arrivals == pytest.approx([0.1 + 0.1 * (k + 1) for k in range(10)])
    # an idle link starts again from the offer time, not from where it stopped
    assert link.send(5.0, 1000, datagram=True) == pytest.approx(5.2)


def test_a_full_queue_drops_datagrams_at_the_tail() -> None:
    link = Link(LinkSpec(rate=1000, queue_bytes=5000))
    results = [link.send(0.0, 1000, datagram=True) for _ in range(10)]
    assert [r is not None for r in results] == [True] * 5 + [False] * 5
    assert link.dropped_queue == 5 and link.sent_packets == 5
    # one packet's time later there is room for one more
    assert link.send(1.0, 1000, datagram=True) == pytest.approx(6.0)


def test_a_stream_waits_for_room_instead_of_losing_bytes() -> None:
    link = Link(LinkSpec(rate=1000, queue_bytes=4000))
    stream = Stream(link)
    for _ in range(4):
        stream.send(0.0, 1000)
    ready = stream.room_at(0.0, 1000)
    assert ready == pytest.approx(1.0)
    with pytest.raises(QueueFull):
        stream.send(0.5, 1000)
    assert stream.send(ready, 1000) == pytest.approx(5.0)
    assert link.dropped_queue == 0 and link.sent_bytes == 5000


def test_a_packet_larger_than_the_queue_passes_once_the_queue_is_empty() -> None:
    link = Link(LinkSpec(rate=1000, queue_bytes=1000))
    assert link.send(0.0, 1000, datagram=False) == pytest.approx(1.0)
    assert link.room_at(0.0, 5000) == pytest.approx(1.0)


def test_random_loss_drops_about_the_given_share_of_datagrams() -> None:
    link = Link(LinkSpec(loss=0.02), seed=7)
    delivered = sum(link.send(0.0, 100, datagram=True) is not None for _ in range(50_000))
    assert link.dropped_loss == 50_000 - delivered
    assert 0.017 < link.dropped_loss / 50_000 < 0.023
    # streams are never lossy
    assert all(link.send(0.0, 100, datagram=False) is not None for _ in range(1000))


def test_loss_and_jitter_are_the_same_for_the_same_seed() -> None:
    def run(seed: int) -> list[float | None]:
        link = Link(LinkSpec(delay=0.01, jitter=0.02, loss=0.1), seed=seed)
        return [link.send(i * 0.001, 100, datagram=True) for i in range(500)]

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_jitter_keeps_a_fifo_link_in_order() -> None:
    link = Link(LinkSpec(delay=0.05, jitter=0.03), seed=1)
    arrivals = [link.send(i * 0.001, 100, datagram=True) for i in range(1000)]
    assert arrivals == sorted(arrivals)  # type: ignore[type-var]
    assert len(set(arrivals)) > 100  # and it does vary the delay


def test_jitter_reorders_datagrams_only_if_asked_and_never_a_streams_bytes() -> None:
    spec = LinkSpec(delay=0.05, jitter=0.03, reorder=True)
    link = Link(spec, seed=1)
    datagrams = [link.send(i * 0.001, 100, datagram=True) for i in range(1000)]
    assert any(b < a for a, b in zip(datagrams, datagrams[1:], strict=False) if a and b)
    assert all(d is not None and 0.05 <= d - i * 0.001 < 0.08 for i, d in enumerate(datagrams))
    stream = Stream(Link(spec, seed=1))
    arrivals = [stream.send(i * 0.001, 100) for i in range(1000)]
    assert arrivals == sorted(arrivals)
    assert all(0.05 <= a - i * 0.001 < 0.08 + 0.03 for i, a in enumerate(arrivals))


def test_flows_fed_into_one_link_share_its_cap() -> None:
    link = Link(LinkSpec(rate=10_000, queue_bytes=10**6))
    a, b = Stream(link), Stream(link)
    last = 0.0
    for _ in range(50):
        last = max(a.send(0.0, 1000), b.send(0.0, 1000))
    assert last == pytest.approx(100 * 1000 / 10_000)  # 100 kB at 10 kB/s, not twice that rate


def test_a_datagram_above_the_path_mtu_is_dropped_and_a_stream_is_not() -> None:
    link = Link(LinkSpec(mtu=1500))
    assert link.send(0.0, 1472, datagram=True) is not None
    assert link.send(0.0, 1473, datagram=True) is None
    assert link.dropped_mtu == 1 and link.sent_bytes == 1472
    assert link.send(0.0, 65536, datagram=False) is not None


def test_a_spec_out_of_range_is_refused() -> None:
    for bad in ({"delay": -1}, {"loss": 1.0}, {"rate": 0}, {"queue_bytes": 0}, {"mtu": 100}):
        with pytest.raises(ValueError):
            LinkSpec(**bad)
