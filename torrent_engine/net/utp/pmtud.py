"""Path MTU discovery for one uTP connection (RFC 4821's packetization-layer PMTUD, as libtorrent
does it), sans-I/O: which datagram size the next probe tries, and what an acked or lost one teaches.

The search keeps two sizes of whole datagrams: the floor, which the path is known to carry
(``PACKET_SIZE`` at first), and the ceiling, which it may carry (the shell's guess: 1 500 bytes of
Ethernet less the IP and UDP headers). A probe is one data packet padded to the midpoint (an
extension every receiver skips, ``packet.pad``). Acked, the floor rises to its size and every
datagram from then on may be that large; lost ``MTU_PROBE_TRIES`` times (or refused by the kernel
at once), the ceiling drops below it. The search stops when floor and ceiling are less than
``MTU_SEARCH_DONE`` apart. When and with which packet a probe goes is the connection's call
(``connection.py``); a lost probe is no sign of congestion there.
"""

from __future__ import annotations

from .packet import PAD_MIN

__all__ = ["MTU_PROBE_TRIES", "MTU_SEARCH_DONE", "PathMtu"]

# path MTU discovery stops when ceiling and floor are closer than this (bytes): twice the least
# padding, so a probe at their midpoint can always be padded
MTU_SEARCH_DONE = 2 * PAD_MIN
MTU_PROBE_TRIES = 2  # an MTU probe of one size lost this often means the path does not carry it


class PathMtu:
    """The search between ``floor`` (carried) and ``ceiling`` (perhaps carried), one probe at a time."""

    __slots__ = ("_losses", "ceiling", "floor", "lost_seq", "probe_seq", "probe_size", "probes_lost",
                 "probes_sent")

    def __init__(self, floor: int, ceiling: int) -> None:
        """``ceiling`` at most ``floor``: no search."""
        self.floor = floor
        self.ceiling = max(floor, min(ceiling, 0xFFFF))
        self.probe_seq: int | None = None  # the data packet a probe carries, until acked or lost
        self.probe_size = 0
        self.lost_seq: int | None = None  # the last lost probe's packet: its repair cuts no window
        self._losses = 0  # probes of this size lost
        self.probes_sent = 0
        self.probes_lost = 0

    @property
    def may_probe(self) -> bool:
        """Whether the search goes on and no probe is out."""
        return self.ceiling - self.floor >= MTU_SEARCH_DONE and self.probe_seq is None

    def fix(self, size: int) -> None:
        """Datagrams of ``size`` were agreed with the peer: nothing to search."""
        self.floor = self.ceiling = size

    def probe(self, seq: int) -> int:
        """A probe goes with packet ``seq``: the size to pad it to, the midpoint of floor and ceiling."""
        size = (self.floor + self.ceiling + 1) // 2
        self.probe_seq = seq
        self.probe_size = size
        self.lost_seq = None
        self.probes_sent += 1
        return size

    def acked(self) -> int:
        """The probe arrived: datagrams of its size pass; the new floor."""
        self.probe_seq = None
        self._losses = 0
        self.floor = self.probe_size
        return self.floor

    def lost(self, *, certain: bool = False) -> None:
        """The probe is lost (or sent again: its copy goes unpadded): the ceiling drops below its
        size once ``MTU_PROBE_TRIES`` probes of that size were lost (a single loss may be the
        path's random loss, not the size), or at once when ``certain`` (the kernel refused it)."""
        self.lost_seq = self.probe_seq
        self.probe_seq = None
        self.probes_lost += 1
        self._losses += 1
        if certain or self._losses >= MTU_PROBE_TRIES:
            self._losses = 0
            self.ceiling = max(self.floor, self.probe_size - 1)

    def forget_probe(self) -> None:
        """The probe's packet goes again with everything in flight (a timeout): its fate is unknown."""
        self.probe_seq = None
