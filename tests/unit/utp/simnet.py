"""A deterministic datagram network for driving two uTP cores with a fake clock.

Each direction is a link with random loss, a base delay plus jitter (jitter reorders), and an
optional bottleneck: a rate in bytes/s with a FIFO queue, so a full queue adds queueing delay
(and drops past ``queue_limit``). Cross traffic can be injected into the queue to act as a
competing flow. Everything is driven from one event heap: no sockets, no wall clock.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field

from torrent_engine.net.utp.connection import UtpConnection
from torrent_engine.net.utp.events import Closed, Event
from torrent_engine.net.utp.packet import PacketType, decode


@dataclass
class Link:
    loss: float = 0.0
    delay_us: int = 10_000
    jitter_us: int = 0
    rate: float = 0.0  # bytes per second at the bottleneck; 0 = unlimited
    queue_limit: int = 1 << 30  # bytes queued before tail drop
    busy_until: int = 0  # when the bottleneck finishes what is queued
    dropped: int = 0
    delivered: int = 0
    max_queue_delay_us: int = 0
    queue_samples: list[tuple[int, int]] = field(default_factory=list)  # (time, queueing delay)

    def transit(self, size: int, now: int, rng: random.Random) -> int | None:
        """When a datagram sent now arrives, or None when it is lost."""
        if self.loss and rng.random() < self.loss:
            self.dropped += 1
            return None
        start = now
        if self.rate:
            queued_us = max(0, self.busy_until - now)
            if queued_us * self.rate / 1e6 > self.queue_limit:
                self.dropped += 1
                return None
            self.queue_samples.append((now, queued_us))
            self.max_queue_delay_us = max(self.max_queue_delay_us, queued_us)
            start = max(now, self.busy_until)
            self.busy_until = start + int(size * 1e6 / self.rate)
            start = self.busy_until
        jitter = rng.randrange(self.jitter_us + 1) if self.jitter_us else 0
        self.delivered += 1
        return start + self.delay_us + jitter


class Pair:
    """An initiator (a) and an acceptor (b) on a simulated network; a sends ``payload`` to b."""

    def __init__(self, ab: Link, ba: Link, *, seed: int = 1, seq_a: int = 100, seq_b: int = 60000,
                 conn_id: int = 0x1234, **kw: int) -> None:
        self.rng = random.Random(seed)
        self.now = 1_000_000
        self.ab, self.ba = ab, ba
        self.kw = kw
        self.a = UtpConnection.initiate(conn_id, seq_a, **kw)
        self.b: UtpConnection | None = None
        self.seq_b = seq_b
        self._heap: list[tuple[int, int, str, bytes]] = []
        self._n = 0
        self.received = bytearray()
        self.a_events: list[Event] = []
        self.b_events: list[Event] = []
        self.cross_until = 0
        self.cross_rate = 0.0
        self.samples: list[tuple[int, float, int, int]] = []  # (time, a's cwnd, a's qdelay, bytes at b)

    def _send(self, who: str, data: bytes) -> None:
        link = self.ab if who == "a" else self.ba
        at = link.transit(len(data), self.now, self.rng)
        if at is not None:
            self._n += 1
            heapq.heappush(self._heap, (at, self._n, "b" if who == "a" else "a", data))

    def _flush(self) -> None:
        for d in self.a.datagrams(self.now):
            self._send("a", d)
        if self.b is not None:
            for d in self.b.datagrams(self.now):
                self._send("b", d)

    def _deliver(self, dest: str, batch: list[bytes]) -> None:
        # datagrams arriving together reach a core together, as the socket hands over a batch
        if dest == "a":
            self.a.receive_datagrams(batch, self.now)
            return
        if self.b is None:
            pkt = decode(batch[0])
            batch = batch[1:]
            if pkt.type is PacketType.SYN:
                self.b = UtpConnection.accept(pkt, self.seq_b, self.now, **self.kw)
        if self.b is not None and batch:
            self.b.receive_datagrams(batch, self.now)

    def inject_cross_traffic(self, start_us: int, end_us: int, rate: float) -> None:
        """A competing flow sending ``rate`` bytes/s into a->b's queue between the two times."""
        self.cross_rate = rate
        t = start_us
        while t < end_us:
            self._n += 1
            heapq.heappush(self._heap, (t, self._n, "cross", b""))
            t += int(1400 * 1e6 / rate)

    def run(self, payload: bytes, *, limit_us: int = 600_000_000, close: bool = True,
            max_steps: int = 3_000_000, stop_at: int | None = None) -> None:
        sent = 0
        steps = 0
        closed_asked = False
        while steps < max_steps:
            steps += 1
            if sent < len(payload) and self.a.state.value in ("connected", "syn_sent"):
                if self.a.state.value == "connected":
                    sent += self.a.send(payload[sent:sent + 256 * 1024])
            if close and sent == len(payload) and not closed_asked and self.a.state.value == "connected":
                self.a.close(abandon=False)
                closed_asked = True
            if self.b is not None:
                self.received += self.b.read()
                self.b_events += self.b.events()
                if self.b.at_eof and self.b.state.value == "connected":
                    self.b.close()
            self.a_events += self.a.events()
            self._flush()
            cc = self.a.cc
            self.samples.append((self.now, cc.cwnd, cc.last_queueing_delay_us, len(self.received)))
            if self.a.state.value == "closed" and (self.b is None or self.b.state.value == "closed"):
                return
            if not close and len(self.received) >= len(payload):
                return
            nxt = [t for t in (self.a.timeout_at, self.b.timeout_at if self.b else None) if t is not None]
            if self._heap:
                nxt.append(self._heap[0][0])
            if not nxt:
                return
            self.now = max(self.now, min(nxt))
            if stop_at is not None and self.now > stop_at:
                return
            if self.now > limit_us:
                raise AssertionError(f"transfer did not finish within {limit_us / 1e6:g} simulated s")
            batch: list[bytes] = []
            batch_dest = ""
            while self._heap and self._heap[0][0] <= self.now:
                _, _, dest, data = heapq.heappop(self._heap)
                if dest == "cross":
                    self.ab.transit(1400, self.now, self.rng)
                    continue
                if dest != batch_dest and batch:
                    self._deliver(batch_dest, batch)
                    batch = []
                batch_dest = dest
                batch.append(data)
            if batch:
                self._deliver(batch_dest, batch)
            self.a.on_timer(self.now)
            if self.b is not None:
                self.b.on_timer(self.now)
        raise AssertionError("simulation step bound reached")

    def closed_errors(self) -> list[str | None]:
        return [e.error for e in self.a_events + self.b_events if isinstance(e, Closed)]
