"""BEP 40 canonical peer priority: a number both ends of a connection compute alike from their
two addresses, so that every peer of a swarm agrees which connections matter most (pure)."""

from __future__ import annotations

import ipaddress

__all__ = ["crc32c", "peer_priority"]


def _crc32c_table() -> tuple[int, ...]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1  # the Castagnoli polynomial, reflected
        table.append(c)
    return tuple(table)


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of ``data``, as BEP 40 prescribes."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked(a: bytes, b: bytes, full: int) -> tuple[bytes, bytes]:
    """``a`` and ``b`` with their first ``full`` bytes kept and the rest masked with 0x55, except
    one more byte kept per whole byte of common prefix beyond the base (BEP 40's mask rule)."""
    common = 0
    while common < len(a) and a[common] == b[common]:
        common += 1
    keep = min(len(a), max(full, common + 1))
    mask = b"\xff" * keep + b"\x55" * (len(a) - keep)
    return (bytes(x & m for x, m in zip(a, mask, strict=True)),
            bytes(x & m for x, m in zip(b, mask, strict=True)))


def _plain(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    address = ipaddress.ip_address(host.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def peer_priority(own: tuple[str, int], peer: tuple[str, int]) -> int:
    """The BEP 40 priority of the connection between ``own`` and ``peer`` (ip, port): higher
    is dialed first. ``ValueError`` if an address is not an IP literal; addresses of different
    families have no common priority (0)."""
    a, b = _plain(own[0]), _plain(peer[0])
    if a.version != b.version:
        return 0
    if a == b:  # BEP 40: the same address: the two ports decide
        ports = sorted([own[1].to_bytes(2, "big"), peer[1].to_bytes(2, "big")])
        return crc32c(ports[0] + ports[1])
    # BEP 40: FF.FF.55.55 for IPv4, FFFF:FFFF:FFFF:5555:... for IPv6, one more byte kept per
    # byte of common prefix (same /16: FF.FF.FF.55; same /24: the whole address)
    x, y = _masked(a.packed, b.packed, 2 if a.version == 4 else 6)
    low, high = sorted([x, y])
    return crc32c(low + high)
