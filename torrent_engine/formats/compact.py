"""Compact peer and node addresses, one set of rules for trackers (BEP 23, BEP 7, BEP 15),
PEX (BEP 11) and the DHT (BEP 5, BEP 32). Pure: bytes in, ``(host, port)`` out.

The rules, the same wherever a compact address comes from:
- an entry with port 0 is dropped: nobody can be reached there;
- an IPv4-mapped IPv6 address (``::ffff:a.b.c.d``) is returned as the IPv4 address ``a.b.c.d``:
  it is the same host, and dialing it as IPv4 keeps one pool entry per peer;
- a trailing partial entry is ignored here; whether a list whose length is not a whole number
  of entries is an error is the caller's protocol's rule (each raises its own typed error);
- ``limit`` stops decoding after that many addresses, so a huge list costs no more than what
  the caller will keep.
"""

from __future__ import annotations

import functools
import ipaddress
import itertools
import struct
from collections.abc import Iterable, Iterator

__all__ = [
    "is_ip_literal",
    "parse_ip",
    "NODE_ID_LEN",
    "PEER_V4_LEN",
    "PEER_V6_LEN",
    "Address",
    "decode_nodes",
    "decode_peer",
    "decode_peers",
    "encode_peer",
    "encode_peers",
    "iter_peers",
    "normalize_host",
    "peer_entry_size",
]

Address = tuple[str, int]
PEER_V4_LEN = 6  # BEP 23: 4 address bytes + 2 port bytes
PEER_V6_LEN = 18  # BEP 7 / BEP 32: 16 address bytes + 2 port bytes
NODE_ID_LEN = 20  # BEP 5: a node entry is the node id followed by a compact address
# A peer entry's parts, and a node's, by family, the address's text made from its numbers as
# ``ipaddress`` makes it, five (IPv4) and two and a half (IPv6) times faster (bench/RESULTS.md,
# "Compact addresses"; ``socket.inet_ntop`` would be faster still, but a core opens no socket)
_PEER_V4 = struct.Struct("!BBBBH")
_PEER_V6 = struct.Struct("!16sH")
_NODE_V4 = struct.Struct(f"!{NODE_ID_LEN}sBBBBH")
_NODE_V6 = struct.Struct(f"!{NODE_ID_LEN}s16sH")
_HEXTETS = struct.Struct("!8H")
_V6_FRONT = bytes(10)  # an IPv6 address that begins so may embed an IPv4 one: ipaddress reads it


def _v6_text(packed: bytes) -> str:
    """16 address bytes as ``normalize_host`` gives them: hextets in lower-case hex, the first
    longest run of two or more zero hextets as ``::`` (RFC 5952, as ``ipaddress`` writes them);
    an address beginning with ten zero bytes (IPv4-mapped, IPv4-compatible, ``::1``) through
    ``ipaddress`` itself."""
    if packed[:10] == _V6_FRONT:
        return normalize_host(ipaddress.IPv6Address(packed))
    hextets = _HEXTETS.unpack(packed)
    best, best_len, start = -1, 1, -1
    for i, h in enumerate(hextets):
        if h:
            start = -1
            continue
        if start < 0:
            start = i
        if i - start + 1 > best_len:
            best, best_len = start, i - start + 1
    text = [f"{h:x}" for h in hextets]
    if best < 0:
        return ":".join(text)
    return ":".join(text[:best]) + "::" + ":".join(text[best + best_len:])


def peer_entry_size(ipv6: bool) -> int:
    """The size of one compact peer entry: 6 bytes (IPv4) or 18 (IPv6)."""
    return PEER_V6_LEN if ipv6 else PEER_V4_LEN


@functools.lru_cache(maxsize=4096)
def parse_ip(host: str | bytes) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """``ipaddress.ip_address`` of ``host`` (text, or 4 or 16 packed bytes), the last 4 096 kept:
    a connection's peer, its PEX and its tracker's hosts are parsed again and again, and one parse
    costs about 40 times a look-up here (bench/RESULTS.md, "A read's cancels in one write").
    ``ValueError`` for anything else, as ``ipaddress`` says (not kept)."""
    return ipaddress.ip_address(host)


def is_ip_literal(host: str) -> bool:
    """Whether ``host`` is an IPv4 or IPv6 address as text (not a host name)."""
    try:
        parse_ip(host)
    except ValueError:
        return False
    return True


def is_ipv6_literal(host: str) -> bool:
    """Whether ``host`` is an IPv6 address as text (without brackets)."""
    try:
        return parse_ip(host).version == 6
    except ValueError:
        return False


def normalize_host(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """The textual address, an IPv4-mapped IPv6 address as plain IPv4."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def encode_peer(host: str, port: int) -> bytes:
    """6 bytes (IPv4) or 18 bytes (IPv6): the address, then the big-endian port."""
    if not 0 <= port <= 0xFFFF:
        raise ValueError(f"port {port} out of range")
    return parse_ip(host).packed + port.to_bytes(2, "big")


def encode_peers(peers: Iterable[Address], *, ipv6: bool) -> bytes:
    """A compact list of one family; a host of the other family is a ``ValueError``."""
    out = bytearray()
    for host, port in peers:
        if (parse_ip(host).version == 6) != ipv6:
            raise ValueError(f"{host} is not an IPv{6 if ipv6 else 4} address")
        out += encode_peer(host, port)
    return bytes(out)


def decode_peer(entry: bytes) -> Address | None:
    """One 6- or 18-byte entry; None when it is unusable (port 0). Other lengths: ``ValueError``."""
    if len(entry) == PEER_V4_LEN:
        a, b, c, d, port = _PEER_V4.unpack(entry)
        return (f"{a}.{b}.{c}.{d}", port) if port else None
    if len(entry) == PEER_V6_LEN:
        port = int.from_bytes(entry[16:], "big")
        return (_v6_text(entry[:16]), port) if port else None
    raise ValueError(f"compact address of {len(entry)} bytes")


def _whole(data: bytes, size: int) -> bytes:
    """``data`` less a partial entry at its end (ignored, as BEP 23 lists are read)."""
    return data[:len(data) - len(data) % size]


def _addresses(data: bytes, ipv6: bool) -> Iterator[Address]:
    """Every usable address of a compact list's whole entries, lazily."""
    if ipv6:
        return ((_v6_text(packed), port) for packed, port in _PEER_V6.iter_unpack(_whole(data, PEER_V6_LEN))
                if port)
    return ((f"{a}.{b}.{c}.{d}", port) for a, b, c, d, port in _PEER_V4.iter_unpack(_whole(data, PEER_V4_LEN))
            if port)


def iter_peers(data: bytes, *, ipv6: bool, limit: int | None = None) -> Iterator[Address]:
    """The usable addresses of a compact list, lazily, at most ``limit`` of them."""
    found = _addresses(data, ipv6)
    return found if limit is None else itertools.islice(found, max(limit, 0))


def decode_peers(data: bytes, *, ipv6: bool, limit: int | None = None) -> list[Address]:
    """Compact peers (BEP 23 / BEP 7) as ``(host, port)`` pairs, at most ``limit`` of them."""
    return list(iter_peers(data, ipv6=ipv6, limit=limit))


def decode_nodes(data: bytes, *, ipv6: bool, limit: int | None = None) -> list[tuple[bytes, str, int]]:
    """``nodes`` (26-byte) or ``nodes6`` (38-byte) entries as ``(node_id, host, port)``."""
    if ipv6:
        found: Iterator[tuple[bytes, str, int]] = (
            (node_id, _v6_text(packed), port)
            for node_id, packed, port in _NODE_V6.iter_unpack(_whole(data, _NODE_V6.size)) if port)
    else:
        found = ((node_id, f"{a}.{b}.{c}.{d}", port)
                 for node_id, a, b, c, d, port in _NODE_V4.iter_unpack(_whole(data, _NODE_V4.size)) if port)
    return list(found if limit is None else itertools.islice(found, max(limit, 0)))
