"""The link model, sans I/O: given a packet's size and the time it is offered, when does it arrive
at the far end, or is it dropped? No socket, no clock: the caller passes ``now`` (seconds, any
monotonic origin) and gets back an arrival time on the same clock. Deterministic for a seed.

One direction of a link is a ``Link``: a serializer at ``rate`` bytes/s fed from a queue of at
most ``queue_bytes`` (drop-tail for datagrams; a stream waits for room instead, ``room_at``),
then the propagation ``delay`` plus a uniform ``jitter`` (FIFO unless ``reorder``), then random
``loss`` (datagrams only: a lost datagram has used the link's capacity, as on a real wire); a
datagram above the path ``mtu`` never enters. Every flow fed into the same ``Link`` shares its
cap and its queue. A ``Stream`` is one TCP flow's view of a ``Link``: jitter
never reorders its bytes (an arrival is never before the previous one).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

DEFAULT_QUEUE = 256 * 1024
IPV4_UDP_HEADERS = 28


class QueueFull(Exception):
    """A stream offered bytes the queue has no room for: it should have waited for ``room_at``."""

    def __init__(self, size: int, backlog: float, queue_bytes: int) -> None:
        super().__init__(f"{size} bytes offered to a link whose queue holds {backlog:.0f} of "
                         f"{queue_bytes} bytes: wait for room_at() first")


@dataclass(frozen=True, slots=True)
class LinkSpec:
    """One direction of a link. ``rate`` None: no cap (and so no queue)."""

    delay: float = 0.0  # one-way propagation delay, seconds
    jitter: float = 0.0  # extra delay, uniform in [0, jitter), seconds
    # whether jitter may reorder datagrams; off, a link is a FIFO: an arrival is never before the
    # one offered ahead of it (a path reorders rarely, and reordering each packet by a random
    # couple of milliseconds makes uTP see losses everywhere: duplicate acks, a halved window)
    reorder: bool = False
    loss: float = 0.0  # probability a datagram is lost (streams are never lossy)
    rate: float | None = None  # bytes per second
    queue_bytes: int = DEFAULT_QUEUE  # bytes that may wait for the cap
    # the path MTU: a datagram whose IPv4 packet (payload + 28 header bytes) is larger is dropped,
    # as a router drops a don't-fragment packet (None: loopback's 64 KiB, nothing dropped)
    mtu: int | None = None

    def __post_init__(self) -> None:
        if self.delay < 0 or self.jitter < 0:
            raise ValueError(f"delay {self.delay} and jitter {self.jitter} must be >= 0")
        if not 0.0 <= self.loss < 1.0:
            raise ValueError(f"loss {self.loss} must be in [0, 1)")
        if self.rate is not None and self.rate <= 0:
            raise ValueError(f"rate {self.rate} must be > 0 (None: uncapped)")
        if self.queue_bytes <= 0:
            raise ValueError(f"queue_bytes {self.queue_bytes} must be > 0")
        if self.mtu is not None and self.mtu < 576:
            raise ValueError(f"mtu {self.mtu} must be >= 576 (IPv4's minimum) or None")


class Link:
    """One direction: cap and queue, then delay and jitter, then loss. Counts what it did."""

    def __init__(self, spec: LinkSpec, seed: int = 0) -> None:
        self.spec = spec
        self._rng = random.Random(seed)
        self._busy_until = 0.0  # when the serializer has sent everything queued so far
        self._last_arrival = 0.0  # (FIFO links) the latest arrival handed out
        self.sent_bytes = 0  # bytes that went onto the wire (lost ones included)
        self.sent_packets = 0
        self.dropped_queue = 0  # datagrams refused by a full queue
        self.dropped_loss = 0  # datagrams lost on the wire
        self.dropped_mtu = 0  # datagrams too large for the path

    def backlog(self, now: float) -> float:
        """Bytes waiting for the cap at ``now``."""
        rate = self.spec.rate
        if rate is None:
            return 0.0
        return max(0.0, self._busy_until - now) * rate

    def room_at(self, now: float, size: int) -> float:
        """The earliest time >= ``now`` at which ``size`` bytes fit in the queue (a packet larger
        than the whole queue fits once the queue is empty)."""
        rate = self.spec.rate
        if rate is None:
            return now
        need = min(size, self.spec.queue_bytes)
        return max(now, self._busy_until - (self.spec.queue_bytes - need) / rate)

    def send(self, now: float, size: int, *, datagram: bool) -> float | None:
        """Offer ``size`` bytes at ``now``: their arrival time at the far end, or None if a
        datagram was dropped (queue full or lost). A stream must not be offered more than
        ``room_at`` allows (``QueueFull``)."""
        if datagram and self.spec.mtu is not None and size + IPV4_UDP_HEADERS > self.spec.mtu:
            self.dropped_mtu += 1
            return None
        rate = self.spec.rate
        if rate is None:
            leave = now
        else:
            if self.room_at(now, size) > now + 1e-9:
                if datagram:
                    self.dropped_queue += 1
                    return None
                raise QueueFull(size, self.backlog(now), self.spec.queue_bytes)
            self._busy_until = max(now, self._busy_until) + size / rate
            leave = self._busy_until
        self.sent_bytes += size
        self.sent_packets += 1
        if datagram and self.spec.loss and self._rng.random() < self.spec.loss:
            self.dropped_loss += 1
            return None
        jitter = self._rng.uniform(0.0, self.spec.jitter) if self.spec.jitter else 0.0
        arrive = leave + self.spec.delay + jitter
        if not self.spec.reorder:
            arrive = self._last_arrival = max(arrive, self._last_arrival)
        return arrive

    def stats(self) -> dict[str, int]:
        return {"sent_bytes": self.sent_bytes, "sent_packets": self.sent_packets,
                "dropped_queue": self.dropped_queue, "dropped_loss": self.dropped_loss,
                "dropped_mtu": self.dropped_mtu}


class Stream:
    """One TCP flow through a ``Link``: arrivals never go backwards, so bytes stay in order (also
    on a link whose jitter reorders datagrams)."""

    def __init__(self, link: Link) -> None:
        self.link = link
        self._last = 0.0

    def room_at(self, now: float, size: int) -> float:
        return self.link.room_at(now, size)

    @property
    def last(self) -> float:
        """The arrival time of the stream's last byte so far."""
        return self._last

    def send(self, now: float, size: int) -> float:
        arrive = self.link.send(now, size, datagram=False)
        assert arrive is not None  # streams are never dropped
        self._last = max(self._last, arrive)
        return self._last


@dataclass(slots=True)
class Duplex:
    """Both directions of one peer's link: ``up`` carries what the peer behind it sends,
    ``down`` what it receives. Every relay given the same Duplex shares its caps."""

    up: Link
    down: Link

    @classmethod
    def symmetric(cls, spec: LinkSpec, seed: int = 0) -> Duplex:
        return cls(Link(spec, seed), Link(spec, seed + 1))
