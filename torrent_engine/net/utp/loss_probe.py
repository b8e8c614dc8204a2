"""The tail loss probe of one uTP connection (RFC 8985's idea), sans-I/O: when nothing is acked
for two round trips while packets are in flight, one packet goes (a lost retransmission again,
new data, or the last in flight again) so that the receiver's selective ack shows the holes
before the retransmission timeout. Which packet goes is the connection's call (``connection.py``).
"""

from __future__ import annotations

from .ack_deferral import ACK_DELAY_US
from .congestion import RttEstimator
from .packet import TS_MASK

__all__ = ["PROBE_MIN_US", "TailLossProbe"]

PROBE_MIN_US = 10_000  # the tail loss probe waits at least this (and the peer's ack delay) past two SRTT


class TailLossProbe:
    """The probe's deadline (``at``), whether it passed (``due``), and the packet it sent again."""

    __slots__ = ("at", "due", "sent", "seq", "ts")

    def __init__(self) -> None:
        self.at: int | None = None  # armed by new data and by acks that move acked_seq
        self.due = False  # the deadline passed: the connection sends the probe
        self.seq: int | None = None  # the packet a probe sent again, until it is acked
        self.ts = 0  # (the probe's timestamp: an ack echoing it or later answers the probe)
        self.sent = 0

    @staticmethod
    def timeout(rtt: RttEstimator) -> int:
        """How long after the last ack (or new data) with packets in flight the probe goes: two
        smoothed round trips, at least ``PROBE_MIN_US``, plus the peer's ack delay (before any
        round trip was measured: the retransmission timeout, so no probe)."""
        if not rtt.samples:
            return rtt.rto_us
        return max(2 * rtt.rtt_us, PROBE_MIN_US) + ACK_DELAY_US

    def arm(self, now_us: int, rtt: RttEstimator) -> None:
        """Packets are in flight from ``now_us`` on: probe if nothing is acked by the timeout."""
        self.at = now_us + self.timeout(rtt)

    def stop(self) -> None:
        """No probe is armed or due."""
        self.at = None
        self.due = False

    def expire(self, now_us: int, *, allowed: bool) -> None:
        """The clock reached ``now_us``: a passed deadline makes the probe due if ``allowed``. One
        probe per silence: the next is armed only by an ack that moves acked_seq."""
        if self.at is not None and now_us >= self.at:
            self.at = None
            self.due = allowed

    def sent_again(self, seq: int, now_us: int) -> None:
        """The probe sent packet ``seq`` (in flight) again at ``now_us``."""
        self.seq = seq
        self.ts = now_us & TS_MASK
        self.sent += 1

    def answered(self, ts: int, ts_diff: int) -> bool:
        """Whether an ack of the packet sent again (its timestamp ``ts`` and the delay it reports)
        answers the probe: the time it echoes is the probe's or later. Then the first copy was
        lost (or its ack was: without duplicate-SACK the two look the same) and the probe repaired
        it; an ack echoing an earlier time answers the first copy (the probe was spurious)."""
        echo = (ts - ts_diff) & TS_MASK
        return not (ts_diff and (echo - self.ts) & TS_MASK >= 0x80000000)
