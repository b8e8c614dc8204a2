"""BEP 42 (DHT security extension): node ids bound to the node's IP address via CRC32-C.

Pure functions; randomness is handed in. CRC32-C (Castagnoli) is implemented here with a table,
so nothing outside the standard library is needed.
"""

from __future__ import annotations

import ipaddress
import random

__all__ = [
    "crc32c",
    "generate_node_id",
    "is_exempt",
    "is_valid_node_id",
    "node_id_prefix",
]

_CRC32C_POLY = 0x82F63B78  # reflected Castagnoli polynomial (BEP 42 uses CRC32-C)


def _make_table() -> tuple[int, ...]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ _CRC32C_POLY if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


_TABLE = _make_table()

V4_MASK = bytes((0x03, 0x0F, 0x3F, 0xFF))  # BEP 42
V6_MASK = bytes((0x01, 0x03, 0x07, 0x0F, 0x1F, 0x3F, 0x7F, 0xFF))  # BEP 42

# BEP 42: addresses in these ranges are exempt (local networks, where ids cannot be checked).
_EXEMPT_V4 = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "127.0.0.0/8")
)


def crc32c(data: bytes, crc: int = 0) -> int:
    """CRC32-C of ``data`` (continuing from ``crc``), as used by BEP 42."""
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = _TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _ip_bytes(ip: str) -> bytes:
    return ipaddress.ip_address(ip).packed


def is_exempt(ip: str) -> bool:
    """True for addresses BEP 42 does not apply to (private, link-local, loopback)."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv4Address):
        return any(addr in net for net in _EXEMPT_V4)
    return addr.is_loopback or addr.is_link_local or addr.is_private


def node_id_prefix(ip: str, r: int) -> int:
    """The 32-bit CRC of the masked address with ``r`` (0..7) mixed in; its top 21 bits must
    start a valid node id."""
    raw = _ip_bytes(ip)
    mask = V4_MASK if len(raw) == 4 else V6_MASK
    masked = bytearray(a & m for a, m in zip(raw[: len(mask)], mask, strict=True))
    masked[0] |= (r & 0x07) << 5
    return crc32c(bytes(masked))


def generate_node_id(ip: str, rng: random.Random) -> bytes:
    """A random node id that is valid for ``ip`` under BEP 42."""
    rand = rng.getrandbits(8)
    crc = node_id_prefix(ip, rand & 0x07)
    first = bytes(((crc >> 24) & 0xFF, (crc >> 16) & 0xFF, ((crc >> 8) & 0xF8) | rng.getrandbits(3)))
    return first + rng.randbytes(16) + bytes((rand,))


def is_valid_node_id(node_id: bytes, ip: str) -> bool:
    """Does ``node_id`` satisfy BEP 42 for ``ip``? Exempt addresses always pass."""
    if len(node_id) != 20:
        return False
    if is_exempt(ip):
        return True
    try:
        crc = node_id_prefix(ip, node_id[19] & 0x07)
    except ValueError:
        return False
    # The top 21 bits must match.
    return (
        node_id[0] == (crc >> 24) & 0xFF
        and node_id[1] == (crc >> 16) & 0xFF
        and (node_id[2] & 0xF8) == ((crc >> 8) & 0xF8)
    )
