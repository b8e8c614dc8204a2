"""Many datagrams per system call on the way out: UDP segmentation offload (Linux ``UDP_SEGMENT``).

A uTP upload leaves as one ~1 400-byte datagram per packet, and over loopback the kernel's work
for each ``sendto`` (the system call, and delivering the datagram to the receiving socket) costs
more than the Python that built it. With ``UDP_SEGMENT`` one ``sendmsg`` carries a run of
datagrams laid end to end; the kernel cuts it into datagrams of ``segment`` bytes (the last may be
shorter) after routing it once. On the wire they are ordinary datagrams: nothing changes for the
receiver. ``runs`` plans which datagrams of a flush can go together; the socket sends each run with
one ``sendmsg`` and the rest one by one.
"""

from __future__ import annotations

import errno
import socket
import struct
import sys

UDP_SEGMENT = getattr(socket, "UDP_SEGMENT", 103)  # Linux >= 4.18 (netinet/udp.h)
SOL_UDP = getattr(socket, "SOL_UDP", 17)
MAX_SEGMENTS = 64  # the kernel takes up to 64 (128 since Linux 5.x) segments per call
MAX_BYTES = 65000  # under the largest UDP payload (65 507 bytes over IPv4) with room to spare
# errors meaning the socket, route or device cannot segment: the socket stops trying
UNSUPPORTED = frozenset({errno.ENOPROTOOPT, errno.EOPNOTSUPP, errno.EIO, errno.EINVAL})

_SIZE = struct.Struct("=H")


def available() -> bool:
    """Whether this platform may have ``UDP_SEGMENT`` (Linux; the first send tells for sure)."""
    return sys.platform.startswith("linux")


def control(segment: int) -> list[tuple[int, int, bytes]]:
    """The ancillary data of a ``sendmsg`` that cuts its payload into ``segment``-byte datagrams."""
    return [(SOL_UDP, UDP_SEGMENT, _SIZE.pack(segment))]


def runs(sizes: list[int], *, max_segments: int = MAX_SEGMENTS,
         max_bytes: int = MAX_BYTES) -> list[tuple[int, int]]:
    """Split datagrams of ``sizes`` (in sending order) into ``(start, stop)`` runs: each run is
    datagrams of one size, the last of a run possibly shorter (what one segmented send can carry),
    at most ``max_segments`` of them and ``max_bytes`` in all. Consecutive runs cover every
    datagram in order; a run of one datagram is sent on its own."""
    out: list[tuple[int, int]] = []
    i, n = 0, len(sizes)
    while i < n:
        size = sizes[i]
        stop = i + 1
        if size:
            # the longest stretch of equal sizes within the limits (counted in C: this runs per flush)
            # (a datagram above max_bytes, possible with large datagrams, is a run of its own)
            limit = min(n, i + max_segments, i + max(1, max_bytes // size))
            if sizes[i:limit].count(size) == limit - i:
                stop = limit
            else:
                while stop < limit and sizes[stop] == size:
                    stop += 1
            if stop < n and stop < i + max_segments and 0 < sizes[stop] < size and (
                    (stop - i) * size + sizes[stop] <= max_bytes):
                stop += 1  # a shorter datagram may end the run
        out.append((i, stop))
        i = stop
    return out
