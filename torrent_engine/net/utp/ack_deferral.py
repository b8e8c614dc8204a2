"""When one uTP connection's acks go, sans-I/O: the ack of in-order data waits to be coalesced
(at most ``every`` packets or ``ACK_DELAY_US``), anything else (a hole, a duplicate, FIN, SYN, a
reopened window) is owed at once. What the ack says is the connection's (``connection.py``)."""

from __future__ import annotations

__all__ = ["ACK_DELAY_US", "ACK_EVERY", "AckDeferral"]

ACK_EVERY = 32  # in-order data packets acked together at most (a deferred ack goes out at this many)
ACK_DELAY_US = 2_000  # how long the ack of in-order data may be deferred


class AckDeferral:
    """Whether an ack is owed (``needed``), and whether it may still wait (not ``urgent``)."""

    __slots__ = ("deferred", "due", "every", "needed", "unacked", "urgent")

    def __init__(self) -> None:
        self.needed = False
        self.urgent = False  # owed at once
        self.unacked = 0  # in-order data packets received since our last ack
        self.due = 0  # when a deferred ack must go (valid while ``unacked``)
        self.every = ACK_EVERY
        self.deferred = 0  # times an owed ack was held back (counted by the connection)

    def now(self) -> None:
        """An ack is owed at once."""
        self.needed = self.urgent = True

    def in_order(self, count: int, now_us: int) -> None:
        """``count`` data packets arrived in order: their ack may wait."""
        self.needed = True
        if not self.unacked:
            self.due = now_us + ACK_DELAY_US
        self.unacked += count

    def sent(self) -> None:
        """A packet of ours carried the ack."""
        self.needed = self.urgent = False
        self.unacked = 0

    @property
    def waiting(self) -> bool:
        """Whether an ack is owed and held back (until ``due``)."""
        return self.needed and not self.urgent

    def on_timer(self, now_us: int) -> None:
        """The clock reached ``now_us``: a deferred ack whose deadline passed is owed at once."""
        if self.needed and self.unacked and now_us >= self.due:
            self.urgent = True

    def owed_now(self, now_us: int) -> bool:
        """Whether the owed ack must go at ``now_us``: urgent, ``every`` packets wait, or the
        deadline passed (the connection also sends it when its window is nearly full)."""
        return self.urgent or self.unacked >= self.every or now_us >= self.due
