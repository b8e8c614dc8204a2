"""SOCKS5's UDP request header (RFC 1928 section 7), sans-I/O: every datagram sent to a UDP
relay, and every one it sends back, starts with RSV(2) FRAG(1) ATYP DST.ADDR DST.PORT before the
data. ``encode_udp_datagram`` puts it on, ``decode_udp_datagram`` takes it off.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from ...errors import TorrentEngineError

__all__ = ["MAX_UDP_HEADER", "MalformedUdpHeader", "RelayedDatagram", "decode_udp_datagram",
           "encode_udp_datagram"]

# RFC 1928 section 5: the address types
ATYP_IPV4, ATYP_DOMAIN, ATYP_IPV6 = 1, 3, 4
MAX_UDP_HEADER = 4 + 1 + 255 + 2  # RSV FRAG ATYP, a domain name of 255 bytes with its length, port


class MalformedUdpHeader(TorrentEngineError):
    """A datagram whose RFC 1928 UDP request header cannot be read (too short, an unknown address
    type, reserved bytes not zero) or an address that cannot be written in one; ``offset`` is
    where in the datagram the fault is."""

    def __init__(self, message: str, offset: int = 0) -> None:
        super().__init__(f"SOCKS5 UDP header, byte {offset}: {message}")
        self.reason = message
        self.offset = offset


@dataclass(frozen=True, slots=True)
class RelayedDatagram:
    """One datagram read off a relay: from (or to) ``host:port``, ``frag`` its fragment number
    (0: a whole datagram; RFC 1928 lets a relay drop fragments, and so do we)."""

    host: str
    port: int
    data: bytes
    frag: int = 0


def encode_udp_datagram(host: str, port: int, data: bytes) -> bytes:
    """``data`` for ``host:port`` (an IPv4 or IPv6 address, or a host name the proxy resolves)
    with the header a relay reads (FRAG 0: we never fragment)."""
    if not 0 <= port <= 65535:
        raise MalformedUdpHeader(f"port {port} is not 0..65535", 4)
    return b"\x00\x00\x00" + _address(host) + struct.pack(">H", port) + data


def decode_udp_datagram(datagram: bytes) -> RelayedDatagram:
    """The header and data of a datagram from a relay; ``MalformedUdpHeader`` saying where it
    is wrong. The address is text: an IP address as ``ipaddress`` writes it, or the name."""
    if len(datagram) < 4:
        raise MalformedUdpHeader(f"{len(datagram)} bytes: shorter than a header", len(datagram))
    if datagram[0] or datagram[1]:
        raise MalformedUdpHeader("the reserved bytes are not zero", 0)
    frag, kind = datagram[2], datagram[3]
    if kind == ATYP_IPV4:
        end = 4 + 4
        if len(datagram) < end + 2:
            raise MalformedUdpHeader("the IPv4 address and port are cut short", len(datagram))
        host = str(ipaddress.IPv4Address(datagram[4:end]))
    elif kind == ATYP_IPV6:
        end = 4 + 16
        if len(datagram) < end + 2:
            raise MalformedUdpHeader("the IPv6 address and port are cut short", len(datagram))
        host = str(ipaddress.IPv6Address(datagram[4:end]))
    elif kind == ATYP_DOMAIN:
        if len(datagram) < 5:
            raise MalformedUdpHeader("the name's length is missing", 4)
        end = 5 + datagram[4]
        if datagram[4] == 0:
            raise MalformedUdpHeader("an empty host name", 4)
        if len(datagram) < end + 2:
            raise MalformedUdpHeader("the host name and port are cut short", len(datagram))
        try:
            host = datagram[5:end].decode("ascii")
        except UnicodeDecodeError:
            raise MalformedUdpHeader("the host name is not ASCII", 5) from None
    else:
        raise MalformedUdpHeader(f"unknown address type {kind}", 3)
    (port,) = struct.unpack_from(">H", datagram, end)
    return RelayedDatagram(host, port, bytes(datagram[end + 2:]), frag)


def _address(host: str) -> bytes:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return _name(host)
    if address.version == 4:
        return bytes([ATYP_IPV4]) + address.packed
    return bytes([ATYP_IPV6]) + address.packed


def _name(host: str) -> bytes:
    try:
        name = host.encode("idna")
    except UnicodeError:
        raise MalformedUdpHeader(f"{host[:60]!r} is not a host name", 4) from None
    if not 0 < len(name) <= 255:
        raise MalformedUdpHeader(f"host name {host[:60]!r} is not 1..255 bytes", 4)
    return bytes([ATYP_DOMAIN, len(name)]) + name
