"""The UDP relay's delivery (tests/linkemu/relay.py): datagrams leave in the model's order."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from tests.linkemu.model import Duplex, LinkSpec
from tests.linkemu.relay import UdpRelay


class _Loop:
    """Records the timers asked for; the test fires them in the order it chooses."""

    def __init__(self) -> None:
        self.now = 10.0
        self.timers: list[tuple[float, Callable[..., None], tuple[Any, ...]]] = []

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[..., None], *args: Any) -> None:
        self.timers.append((when, callback, args))


class _Socket:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def sendto(self, data: bytes, _to: Any) -> None:
        self.sent.append(data)

    def send(self, data: bytes) -> None:
        self.sent.append(data)


def _relay(spec: LinkSpec) -> tuple[UdpRelay, _Loop, Duplex]:
    duplex = Duplex.symmetric(spec)
    relay = UdpRelay(duplex, ("127.0.0.1", 9))
    loop = _Loop()
    relay._loop = loop  # type: ignore[assignment]  # (what start() sets)
    return relay, loop, duplex


def test_timers_firing_out_of_order_do_not_reorder_a_fifo_link() -> None:
    # uvloop's timers have 1 ms resolution and may fire out of order within it; a burst of
    # datagrams paced 0.35 ms apart must still leave in the order the link gave them
    relay, loop, duplex = _relay(LinkSpec(delay=0.06, rate=4e6, queue_bytes=800_000))
    sock = _Socket()
    burst = [i.to_bytes(2, "big") * 700 for i in range(40)]
    for data in burst:
        relay._forward(duplex.up, sock, data, ("127.0.0.1", 5000))  # type: ignore[arg-type]
    assert len(loop.timers) == len(burst)
    order = list(range(len(burst)))
    random.Random(7).shuffle(order)
    for i in order:
        _, callback, args = loop.timers[i]
        callback(*args)
    assert sock.sent == burst


def test_a_reordering_link_hands_datagrams_on_by_arrival_time_each_once() -> None:
    spec = LinkSpec(delay=0.05, jitter=0.01, reorder=True, rate=1e6, queue_bytes=500_000)
    relay, loop, duplex = _relay(spec)
    sock = _Socket()
    burst = [i.to_bytes(2, "big") * 500 for i in range(50)]
    for data in burst:
        relay._forward(duplex.down, sock, data, None)  # type: ignore[arg-type]
    by_arrival = [data for _, data in sorted(zip((w for w, _, _ in loop.timers), burst, strict=True))]
    assert by_arrival != burst  # (the jitter reorders some)
    for _, callback, args in sorted(loop.timers, key=lambda t: t[0]):
        callback(*args)
    assert sock.sent == by_arrival
