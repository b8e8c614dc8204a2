"""BEP 29 packet codec: the 20-byte header and the extension chain (selective ACK).

Pure functions over bytes; every malformed input raises ``UtpError`` naming what was wrong.
"""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import NamedTuple

from ..errors import UtpError

VERSION = 1  # BEP 29: the only version
HEADER_SIZE = 20  # BEP 29
EXT_SELECTIVE_ACK = 1  # BEP 29
SEQ_MASK = 0xFFFF  # seq_nr and ack_nr are 16 bits and wrap
TS_MASK = 0xFFFFFFFF  # timestamps are 32-bit microseconds and wrap

# type << 4 | version, extension, connection_id, timestamp, timestamp_difference, wnd_size, seq_nr, ack_nr
HEADER = struct.Struct(">BBHIIIHH")
_HEADER = HEADER


class PacketType(IntEnum):
    """The uTP packet types (BEP 29)."""

    DATA = 0  # ST_DATA: payload
    FIN = 1  # ST_FIN: no more data after this seq_nr
    STATE = 2  # ST_STATE: a bare ack; does not consume a seq_nr
    RESET = 3  # ST_RESET: the connection is gone
    SYN = 4  # ST_SYN: open a connection


class Packet(NamedTuple):  # a tuple: built once per datagram, so construction must be cheap
    """One uTP packet: header fields, an optional selective ACK and the payload."""

    type: PacketType
    connection_id: int
    timestamp: int
    timestamp_difference: int
    wnd_size: int
    seq_nr: int
    ack_nr: int
    # Selective ACK bitmask (BEP 29): bit i (LSB first in each byte) = ack_nr + 2 + i received.
    sack: bytes | None = None
    payload: bytes = b""


def seq_less(a: int, b: int) -> bool:
    """``a`` comes before ``b`` in 16-bit sequence space (wrap-around aware)."""
    return a != b and ((b - a) & SEQ_MASK) < 0x8000


def looks_like_utp(data: bytes) -> bool:
    """A cheap first-byte test used to demultiplex a shared UDP socket (KRPC starts with ``d``)."""
    if len(data) < HEADER_SIZE:
        return False
    first = data[0]
    return (first & 0x0F) == VERSION and (first >> 4) <= PacketType.SYN


def encode_header(kind: int, connection_id: int, timestamp: int, timestamp_difference: int, wnd_size: int,
                  seq_nr: int, ack_nr: int, sack: bytes | None = None) -> bytes:
    """The header (and selective ACK extension) of a packet, without payload: one ``struct`` call
    and no packet object, for the connection's send path."""
    head = _HEADER.pack(
        (kind << 4) | VERSION, 0 if sack is None else EXT_SELECTIVE_ACK, connection_id & SEQ_MASK,
        timestamp & TS_MASK, timestamp_difference & TS_MASK, wnd_size & TS_MASK, seq_nr & SEQ_MASK,
        ack_nr & SEQ_MASK,
    )
    if sack is None:
        return head
    if len(sack) % 4 or not sack or len(sack) > 255:
        raise UtpError(f"selective ack bitmask must be a non-empty multiple of 4 bytes below 256: "
                       f"{len(sack)}")
    return head + bytes((0, len(sack))) + sack


def encode(p: Packet) -> bytes:
    """The packet as a datagram (BEP 29 header, extensions, payload)."""
    head = encode_header(p.type, p.connection_id, p.timestamp, p.timestamp_difference, p.wnd_size,
                         p.seq_nr, p.ack_nr, p.sack)
    return head + p.payload if p.payload else head


_TYPES = tuple(PacketType)  # indexed by the type nibble (a tuple lookup, not an enum call)


def decode(data: bytes) -> Packet:
    """Parse a datagram; ``UtpError`` when it is not a valid uTP packet."""
    if len(data) < HEADER_SIZE:
        raise UtpError(f"uTP packet of {len(data)} bytes is shorter than the {HEADER_SIZE}-byte header")
    first, ext, conn_id, ts, ts_diff, wnd, seq, ack = _HEADER.unpack_from(data)
    if first & 0x0F != VERSION:
        raise UtpError(f"uTP version {first & 0x0F} is not supported (byte 0)")
    kind = first >> 4
    if kind > PacketType.SYN:
        raise UtpError(f"unknown uTP packet type {kind} (byte 0)")
    pos = HEADER_SIZE
    sack: bytes | None = None
    while ext:
        if pos + 2 > len(data):
            raise UtpError(f"uTP extension header truncated at byte {pos}")
        nxt, length = data[pos], data[pos + 1]
        start = pos + 2
        if start + length > len(data):
            raise UtpError(f"uTP extension {ext} of {length} bytes truncated at byte {start}")
        if ext == EXT_SELECTIVE_ACK and length:
            # BEP 29 asks for a multiple of 4 bytes; libtorrent sends as many as its bits need
            # (1, 2, 3, ... bytes), on most of its acks while packets wait out of order there
            sack = bytes(data[start:start + length])
        # other extensions (e.g. libtorrent's close reason) are skipped
        ext, pos = nxt, start + length
    return Packet(_TYPES[kind], conn_id, ts, ts_diff, wnd, seq, ack, sack, data[pos:])


def sack_bits(sack: bytes) -> list[int]:
    """Offsets i (0-based) set in a selective ACK bitmask: packet ack_nr + 2 + i was received."""
    out: list[int] = []
    for byte_index, byte in enumerate(sack):
        if byte:
            for bit in range(8):
                if byte >> bit & 1:
                    out.append(byte_index * 8 + bit)
    return out


def make_sack(offsets: list[int], limit_bytes: int = 32) -> bytes:
    """A bitmask (multiple of 4 bytes, at most ``limit_bytes``) with the given offsets set."""
    if not offsets:
        return b""
    top = min(max(offsets), limit_bytes * 8 - 1)
    size = ((top // 32) + 1) * 4
    mask = bytearray(size)
    for off in offsets:
        if off < size * 8:
            mask[off >> 3] |= 1 << (off & 7)
    return bytes(mask)
