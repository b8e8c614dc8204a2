"""IP filter lists (blocklists): parsing the formats people download, and the lookup a peer's
address goes through before it is dialed or accepted. Pure: bytes in, an ``IpFilter`` out.

Formats, recognised line by line (a file may mix them), optionally gzip-compressed (told by its
magic bytes):
- eMule ``ipfilter.dat``: ``start - end , level , description``; a level below 127 blocks, one
  of 127 or more allows (eMule's default filter level), no level blocks;
- PeerGuardian text (``.p2p``): ``description:start-end``;
- CIDR: ``192.0.2.0/24``, ``2001:db8::/32``; a lone address blocks itself;
- ``start - end`` without a level.
IPv4 and IPv6 alike; an IPv4 octet may have leading zeros (``001.002.004.000``, as eMule's
lists write them). Empty lines and lines starting with ``#`` or ``//`` are comments. A line
that is none of these is counted and reported (the first few, with their numbers and why),
never fatal. The ranges are merged into sorted, non-overlapping ones per family, so a lookup
is one bisection: O(log n).
"""

from __future__ import annotations

import ipaddress
import socket
import zlib
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["BadLine", "IpFilter", "IpFilterError", "ParsedList", "address_int", "parse_list"]

BLOCKING_LEVEL = 127  # eMule: a range whose level is below the filter level (127) is blocked
MAX_LIST_SIZE = 512 * 1024 * 1024  # bytes of a list once decompressed (a gzip bomb is refused)
REPORTED_BAD_LINES = 5  # lines reported by number and reason (all of them are counted)
_GZIP_MAGIC = b"\x1f\x8b"
_V4_MAX = (1 << 32) - 1
_V6_MAX = (1 << 128) - 1

Range = tuple[int, int]  # (first, last) address as integers, both included


class IpFilterError(ValueError):
    """A list that cannot be read at all (a damaged gzip stream, too large once decompressed)."""


@dataclass(frozen=True, slots=True)
class BadLine:
    """A line of a list that was passed over: its number (from 1) and why."""

    line: int
    reason: str


class IpFilter:
    """Blocked address ranges, merged, sorted and non-overlapping per family (immutable)."""

    __slots__ = ("_v4_starts", "_v4_ends", "_v6_starts", "_v6_ends")

    def __init__(self, v4: Iterable[Range] = (), v6: Iterable[Range] = ()) -> None:
        self._v4_starts, self._v4_ends = _merged(v4)
        self._v6_starts, self._v6_ends = _merged(v6)

    def __len__(self) -> int:
        """How many ranges (after merging)."""
        return len(self._v4_starts) + len(self._v6_starts)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IpFilter) and self.ranges() == other.ranges()

    def __hash__(self) -> int:
        return hash((tuple(self._v4_starts), tuple(self._v6_starts)))

    def __repr__(self) -> str:
        return f"IpFilter({len(self._v4_starts)} IPv4 ranges, {len(self._v6_starts)} IPv6 ranges)"

    def ranges(self) -> tuple[tuple[Range, ...], tuple[Range, ...]]:
        """The merged ranges: (IPv4, IPv6)."""
        return (tuple(zip(self._v4_starts, self._v4_ends, strict=True)),
                tuple(zip(self._v6_starts, self._v6_ends, strict=True)))

    def union(self, *others: IpFilter) -> IpFilter:
        """A filter blocking what this one or any of ``others`` blocks (this very one, or the
        other, when only one of them blocks anything: no list is merged again for nothing)."""
        others = tuple(o for o in others if len(o))
        if not others:
            return self
        if not len(self) and len(others) == 1:
            return others[0]
        v4, v6 = self.ranges()
        all_v4, all_v6 = list(v4), list(v6)
        for other in others:
            o4, o6 = other.ranges()
            all_v4 += o4
            all_v6 += o6
        return IpFilter(all_v4, all_v6)

    def blocked(self, address: str) -> bool:
        """Whether ``address`` (an IP literal; an IPv4-mapped IPv6 address is the IPv4 one) is in
        a blocked range. A host name is not: it is judged by the addresses it resolves to."""
        found = address_int(address)
        if found is None:
            return False
        number, v6 = found
        starts, ends = (self._v6_starts, self._v6_ends) if v6 else (self._v4_starts, self._v4_ends)
        i = bisect_right(starts, number) - 1
        return i >= 0 and number <= ends[i]


def address_int(address: str) -> tuple[int, bool] | None:
    """``address`` as (integer, is IPv6); an IPv4-mapped IPv6 address as its IPv4 integer;
    None if it is no IP literal."""
    try:
        return int.from_bytes(socket.inet_pton(socket.AF_INET, address), "big"), False
    except OSError:
        pass
    if "%" in address:  # (a scope: fe80::1%eth0)
        address = address.split("%", 1)[0]
    try:
        number = int.from_bytes(socket.inet_pton(socket.AF_INET6, address), "big")
    except (OSError, ValueError):
        return None
    if number >> 32 == 0xFFFF:  # ::ffff:a.b.c.d
        return number & _V4_MAX, False
    return number, True


def _merged(ranges: Iterable[Range]) -> tuple[list[int], list[int]]:
    starts: list[int] = []
    ends: list[int] = []
    for first, last in sorted(ranges):
        if ends and first <= ends[-1] + 1:  # (overlapping or adjacent: one range)
            if last > ends[-1]:
                ends[-1] = last
        else:
            starts.append(first)
            ends.append(last)
    return starts, ends


@dataclass(frozen=True, slots=True)
class ParsedList:
    """A list read: the filter, the rules taken, and the lines passed over (counted; the first
    ``REPORTED_BAD_LINES`` of them with their numbers and reasons)."""

    filter: IpFilter
    rules: int  # lines that made a blocking range (before merging)
    bad_lines: int = 0
    first_bad: tuple[BadLine, ...] = field(default=())


def parse_list(data: bytes) -> ParsedList:
    """Read a list in any of the module's formats (gzip-compressed or not); ``IpFilterError``
    only when the whole cannot be read (a damaged gzip stream, too large)."""
    if data[:2] == _GZIP_MAGIC:
        data = _gunzip(data)
    v4: list[Range] = []
    v6: list[Range] = []
    bad = 0
    first_bad: list[BadLine] = []
    for number, raw in enumerate(data.split(b"\n"), 1):
        line = raw.strip().decode("latin-1")  # (descriptions are in any encoding; never fails)
        if not line or line.startswith(("#", "//")):
            continue
        try:
            found = _parse_line(line)
        except ValueError as exc:
            bad += 1
            if len(first_bad) < REPORTED_BAD_LINES:
                first_bad.append(BadLine(number, str(exc)))
            continue
        if found is not None:
            (v6 if found[2] else v4).append((found[0], found[1]))
    return ParsedList(IpFilter(v4, v6), len(v4) + len(v6), bad, tuple(first_bad))


def _gunzip(data: bytes) -> bytes:
    out = bytearray()
    rest = data
    while rest[:2] == _GZIP_MAGIC:  # (a gzip file may hold several members)
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out += inflater.decompress(rest, MAX_LIST_SIZE + 1 - len(out))
        except zlib.error as exc:
            raise IpFilterError(f"not a valid gzip stream: {exc}") from None
        if len(out) > MAX_LIST_SIZE:
            raise IpFilterError(f"larger than {MAX_LIST_SIZE // (1024 * 1024)} MiB once decompressed")
        if not inflater.eof:
            raise IpFilterError("the gzip stream is cut short")
        rest = inflater.unused_data
    return bytes(out)


def _parse_line(line: str) -> tuple[int, int, bool] | None:
    """(first, last, IPv6?) of a line's range; None for an allowing eMule rule; ValueError why not."""
    try:
        if "," in line:  # eMule: start - end , level , description
            return _emule(line)
        return _range(line)
    except ValueError:
        description, _, rest = line.rpartition(":")  # PeerGuardian: description:start-end
        if not description or "-" not in rest:
            raise
    try:
        return _range(rest)
    except ValueError:
        raise ValueError("not a range (start - end), a CIDR block, an eMule rule (start - end , "
                         "level , description) nor a PeerGuardian one (description:start-end)") from None


def _emule(line: str) -> tuple[int, int, bool] | None:
    parts = line.split(",", 2)
    found = _range(parts[0])
    level_text = parts[1].strip()
    if not level_text.isdigit():
        raise ValueError(f"the level {level_text[:20]!r} is not a whole number")
    return None if int(level_text) >= BLOCKING_LEVEL else found


def _range(text: str) -> tuple[int, int, bool]:
    text = text.strip()
    if "/" in text:
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise ValueError(f"not a CIDR block: {text[:50]!r}") from None
        return int(net.network_address), int(net.broadcast_address), net.version == 6
    if "-" in text:
        first_text, _, last_text = text.partition("-")
        first, first_v6 = _address(first_text)
        last, last_v6 = _address(last_text)
        if first_v6 != last_v6:
            raise ValueError("the range's ends are of two families (IPv4 and IPv6)")
        if first > last:
            raise ValueError("the range's start is after its end")
        return first, last, first_v6
    number, v6 = _address(text)
    return number, number, v6


def _address(text: str) -> tuple[int, bool]:
    text = text.strip()
    parts = text.split(".")
    if len(parts) == 4 and all(p.isdigit() and len(p) <= 3 for p in parts):  # (leading zeros: eMule)
        octets = [int(p) for p in parts]
        if max(octets) > 255:
            raise ValueError(f"not an IP address: {text[:50]!r}")
        return (octets[0] << 24) | (octets[1] << 16) | (octets[2] << 8) | octets[3], False
    try:
        return int(ipaddress.IPv6Address(text)), True
    except ValueError:
        raise ValueError(f"not an IP address: {text[:50]!r}") from None
