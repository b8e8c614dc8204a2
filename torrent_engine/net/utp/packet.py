"""BEP 29 packet codec: the 20-byte header and the extension chain (selective ACK, and our
largest-datagram offer).

Pure functions over bytes; every malformed input raises ``UtpError`` naming what was wrong.

The largest-datagram extension (``EXT_MAX_DATAGRAM``) is ours: an ST_SYN, or the ST_STATE
answering one, says in two bytes (big-endian) the largest datagram its sender accepts on this
connection, so two of our endpoints on a path that carries them may use datagrams above the
standard 1 400 bytes. Other implementations skip an extension type they do not know, in a SYN
as in any packet: libtorrent's ``utp_socket_impl::incoming_packet`` (src/utp_stream.cpp) walks
the chain and acts only on ``utp_sack`` (1) and ``utp_close_reason`` (3); its
``utp_extensions_t`` (include/libtorrent/aux_/utp_stream.hpp) leaves 2 out because "there is a
deprecated extension with that number in the wild"; libutp's ``utp_process_incoming``
(utp_internal.cpp) acts on 1 and on 2 ("extension bits", which must be 8 bytes long or the
packet is dropped) and skips the rest. Hence a type far from 1, 2 and 3.

But libutp before 2013 (``utp.cpp``, still Transmission 3.00's and µTorrent's before 3.4) takes a
datagram whose *first* extension type is 3 or more for a packet of uTP's version 0
(``UTP_IsV1``: ``pf->ext < 3``), reads its header at the wrong offsets and answers in version 0,
so a chain must not begin with one of ours: it begins with an "extension bits" extension
(``EXT_BITS``, 2) of eight zero bytes — no extension claimed — which every receiver takes or
skips (libutp copies it, libtorrent skips it, so do we), and ours follow it.

The padding extension (``EXT_PADDING``) is ours too, and skipped the same way by every
receiver: zeros that make a data packet a path MTU probe (``connection.py``) without changing
what it carries, so the packet sent again after a lost probe is its ordinary size.
"""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import NamedTuple

from ...errors import UtpError

VERSION = 1  # BEP 29: the only version
HEADER_SIZE = 20  # BEP 29
EXT_SELECTIVE_ACK = 1  # BEP 29
EXT_BITS = 2  # libutp's "extension bits": 8 bytes; ours all zeros, put before our own types (above)
_NO_BITS = bytes((8,)) + bytes(8)  # its length and bytes (the type that follows it goes before)
PAD_MIN = 1 + len(_NO_BITS) + 2  # the least padding: the extension bits, a padding extension's header
EXT_MAX_DATAGRAM = 0xC4  # ours (see above): the largest datagram the sender accepts, 2 bytes
EXT_PADDING = 0xC5  # ours (see above): zeros that make a datagram larger, skipped by the receiver
_MAX_DATAGRAM = struct.Struct(">H")
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
    # The largest datagram the sender accepts (``EXT_MAX_DATAGRAM``), 0 when not said; only our
    # own endpoints say it, in an ST_SYN and the ST_STATE answering one.
    max_datagram: int = 0


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
                  seq_nr: int, ack_nr: int, sack: bytes | None = None, max_datagram: int = 0) -> bytes:
    """The header (and extensions: selective ACK, largest datagram when ``max_datagram``) of a
    packet, without payload: one ``struct`` call and no packet object, for the connection's send
    path."""
    offer = b""
    if max_datagram:
        if not 0 < max_datagram <= 0xFFFF:
            raise UtpError(f"largest datagram must fit in 16 bits: {max_datagram}")
        offer = _MAX_DATAGRAM.pack(max_datagram)
    # (an offer alone goes after eight bytes of no extension bits: a first type of 3 or more is
    # version 0 to an old libutp, see above)
    first_ext = EXT_SELECTIVE_ACK if sack is not None else EXT_BITS if offer else 0
    head = _HEADER.pack(
        (kind << 4) | VERSION, first_ext, connection_id & SEQ_MASK,
        timestamp & TS_MASK, timestamp_difference & TS_MASK, wnd_size & TS_MASK, seq_nr & SEQ_MASK,
        ack_nr & SEQ_MASK,
    )
    if sack is not None:
        if len(sack) % 4 or not sack or len(sack) > 255:
            raise UtpError(f"selective ack bitmask must be a non-empty multiple of 4 bytes below 256: "
                           f"{len(sack)}")
        head += bytes((EXT_MAX_DATAGRAM if offer else 0, len(sack))) + sack
    elif offer:
        head += bytes((EXT_MAX_DATAGRAM,)) + _NO_BITS
    if offer:
        head += bytes((0, len(offer))) + offer
    return head


def encode(p: Packet) -> bytes:
    """The packet as a datagram (BEP 29 header, extensions, payload)."""
    head = encode_header(p.type, p.connection_id, p.timestamp, p.timestamp_difference, p.wnd_size,
                         p.seq_nr, p.ack_nr, p.sack, p.max_datagram)
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
    max_datagram = 0
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
        elif ext == EXT_MAX_DATAGRAM and length == _MAX_DATAGRAM.size:
            max_datagram = _MAX_DATAGRAM.unpack_from(data, start)[0]
        # other extensions (e.g. libtorrent's close reason) are skipped, as BEP 29 lets a
        # receiver do; so is a largest-datagram one of another length (it then says nothing,
        # and the connection keeps the standard size)
        ext, pos = nxt, start + length
    return Packet(_TYPES[kind], conn_id, ts, ts_diff, wnd, seq, ack, sack, data[pos:], max_datagram)


def pad(datagram: bytes, size: int) -> bytes:
    """``datagram`` (a whole uTP packet) made ``size`` bytes long by extensions put first in its
    chain — eight bytes of no extension bits, then padding (its header, selective ack and payload
    otherwise as they were); ``size`` must be at least ``PAD_MIN`` bytes more than the datagram."""
    extra = size - len(datagram) - (PAD_MIN - 2)
    if extra < 2 or len(datagram) < HEADER_SIZE:
        raise UtpError(f"cannot pad a {len(datagram)}-byte uTP datagram to {size} bytes")
    lengths = []
    while extra:
        n = min(255, extra - 2) if extra - 2 <= 255 or extra - 257 >= 2 else extra - 4
        lengths.append(n)
        extra -= n + 2
    chain = bytearray((EXT_PADDING,)) + _NO_BITS
    for i, n in enumerate(lengths):
        nxt = EXT_PADDING if i + 1 < len(lengths) else datagram[1]
        chain += bytes((nxt, n)) + bytes(n)
    head = datagram[:1] + bytes((EXT_BITS,)) + datagram[2:HEADER_SIZE]
    return b"".join((head, chain, datagram[HEADER_SIZE:]))


def is_probe(datagram: bytes) -> bool:
    """Whether ``datagram`` (a uTP packet of ours, or its first bytes) is padded by ``pad``."""
    return len(datagram) > HEADER_SIZE and datagram[1] == EXT_BITS and datagram[HEADER_SIZE] == EXT_PADDING


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
