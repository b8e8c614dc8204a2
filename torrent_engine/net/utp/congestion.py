"""RTT/RTO estimation (RFC 6298's smoothing, as BEP 29 uses it) and LEDBAT congestion control.

LEDBAT (BEP 29, RFC 6817) grows the congestion window while the one-way queueing delay is
under the 100 ms target and shrinks it past the target, so a uTP flow yields to TCP flows and
to interactive traffic sharing the bottleneck. All times are integer microseconds.
"""

from __future__ import annotations

from collections import deque

from .packet import TS_MASK

TARGET_DELAY_US = 100_000  # BEP 29: CCONTROL_TARGET
MAX_CWND_INCREASE_PER_RTT = 3000  # BEP 29: MAX_CWND_INCREASE_PACKETS_PER_RTT, in bytes
DELAY_FILTER = 3  # LEDBAT steers by the smallest of this many latest queueing delays
MIN_RTO_US = 500_000  # BEP 29: the timeout never goes below 500 ms
INITIAL_RTO_US = 1_000_000  # BEP 29: 1 s before the first RTT sample
MAX_RTO_US = 60_000_000
BASE_DELAY_WINDOW_US = 120_000_000  # base delay = minimum over the last two minutes
_HISTORY_SLOT_US = 60_000_000 // 4


class RttEstimator:
    """Smoothed round-trip time and its variance (RFC 6298), giving the retransmission timeout."""

    def __init__(self) -> None:
        self.rtt_us = 0
        self.rtt_var_us = 0
        self.samples = 0

    def sample(self, rtt_us: int) -> None:
        """Feed one round-trip time measurement in microseconds."""
        rtt_us = max(0, rtt_us)
        if self.samples == 0:
            self.rtt_us = rtt_us
            self.rtt_var_us = rtt_us // 2
        else:
            delta = self.rtt_us - rtt_us
            self.rtt_var_us += (abs(delta) - self.rtt_var_us) // 4
            self.rtt_us += (rtt_us - self.rtt_us) // 8
        self.samples += 1

    @property
    def rto_us(self) -> int:
        """The retransmission timeout in microseconds (initial value before any sample)."""
        if self.samples == 0:
            return INITIAL_RTO_US
        return min(MAX_RTO_US, max(MIN_RTO_US, self.rtt_us + 4 * self.rtt_var_us))


class DelayHistory:
    """The base (minimum) one-way delay over a sliding window, robust to 32-bit wrap."""

    def __init__(self) -> None:
        self._slots: deque[tuple[int, int]] = deque()  # (slot start, min delay in slot)
        self.base: int | None = None

    def add(self, delay: int, now_us: int) -> None:
        """Feed one one-way delay sample (from a packet's timestamp difference) at ``now_us``."""
        if self._slots and now_us - self._slots[-1][0] < _HISTORY_SLOT_US:
            start, low = self._slots[-1]
            if not _wrapping_less(delay, low):
                return  # the common case: nothing changes
            self._slots[-1] = (start, delay)
        else:
            self._slots.append((now_us, delay))
        while self._slots and now_us - self._slots[0][0] > BASE_DELAY_WINDOW_US:
            self._slots.popleft()
        base = self._slots[0][1]
        for _, low in self._slots:
            if _wrapping_less(low, base):
                base = low
        self.base = base

    def queueing_delay(self, delay: int) -> int:
        """How far ``delay`` is above the base: the queueing delay estimate."""
        if self.base is None:
            return 0
        diff = (delay - self.base) & TS_MASK
        return 0 if diff >= 0x80000000 else diff


def _wrapping_less(a: int, b: int) -> bool:
    return a != b and ((b - a) & TS_MASK) < 0x80000000


class Ledbat:
    """The congestion window in bytes, grown or shrunk on each ack by the queueing delay.

    What it steers by is the smallest of the last ``DELAY_FILTER`` queueing delays (a single
    late sample, jitter or a relay's tick, is not a queue). Slow start doubles the window per
    round trip until the delay passes half the target or the window reaches ``ssthresh``; then the
    window moves by at most ``MAX_CWND_INCREASE_PER_RTT`` per round trip, up below the target and
    down past it. A loss halves it (the connection decides which losses count: one per window of
    packets)."""

    def __init__(self, packet_size: int, *, max_window: int) -> None:
        self.packet_size = packet_size
        self.min_window = 2 * packet_size
        self.max_window = max_window
        self.cwnd = float(2 * packet_size)
        self.slow_start = True
        self.ssthresh = float(max_window)
        self.delay = DelayHistory()
        self._recent: deque[int] = deque(maxlen=DELAY_FILTER)
        self.last_queueing_delay_us = 0

    def resize(self, packet_size: int) -> None:
        """The connection's datagrams are ``packet_size`` bytes from now on (agreed with the
        peer before any data flows): the smallest and the starting window stay two packets."""
        self.packet_size = packet_size
        self.min_window = 2 * packet_size
        self.cwnd = max(self.cwnd, float(self.min_window))

    def on_delay_sample(self, delay: int, now_us: int) -> None:
        """Feed a one-way delay sample; the queueing delay above the base is what LEDBAT steers by
        (the smallest of the last few)."""
        self.delay.add(delay, now_us)
        self._recent.append(self.delay.queueing_delay(delay))
        self.last_queueing_delay_us = min(self._recent)

    def on_ack(self, acked_bytes: int, flight_before: int, rtt_us: int, *, window_full: bool = False) -> None:
        """``acked_bytes`` were acknowledged with ``flight_before`` bytes in flight: grow or shrink the
        window (slow start, then LEDBAT's delay target). ``window_full``: the sender's last send
        stopped at this window (so it is the limit, whatever ``flight_before`` says: the acks of one
        batch each see the flight the earlier ones left)."""
        if acked_bytes <= 0:
            return
        qdelay = self.last_queueing_delay_us
        if rtt_us > 0:
            qdelay = min(qdelay, rtt_us)  # a one-way delay cannot exceed the round trip
        cwnd_limited = window_full or flight_before + self.packet_size >= self.cwnd
        off_target = (TARGET_DELAY_US - qdelay) / TARGET_DELAY_US
        if self.slow_start:
            if qdelay > TARGET_DELAY_US // 2 or self.cwnd >= self.ssthresh:
                self.slow_start = False
            elif cwnd_limited:
                self.cwnd += acked_bytes
        if not self.slow_start:
            window_factor = min(acked_bytes, max(flight_before, 1)) / max(self.cwnd, acked_bytes)
            gain = MAX_CWND_INCREASE_PER_RTT * off_target * window_factor
            if gain > 0 and not cwnd_limited:
                gain = 0.0  # an application-limited flow does not earn a bigger window
            self.cwnd += gain
        self.cwnd = min(float(self.max_window), max(float(self.min_window), self.cwnd))

    def on_loss(self) -> None:
        """A packet lost (fast retransmit): halve the window, leave slow start; a later slow
        start (after a timeout) stops at the halved window."""
        self.cwnd = max(float(self.min_window), self.cwnd / 2)
        self.ssthresh = self.cwnd
        self.slow_start = False

    def on_timeout(self) -> None:
        """A retransmission timeout: restart from one packet in slow start, up to the window the
        last loss left (``ssthresh`` is not halved again: under random loss the window is small
        already when a retransmission is lost too, and half of it left slow start at two packets)."""
        self.cwnd = float(self.packet_size)
        self.slow_start = True
