"""NAT-PMP (RFC 6886) messages: requests to bytes, gateway replies to typed values.

Sans-I/O: the shell (``portmap/service.py``) sends these to the gateway's UDP port 5351 and
retransmits on the RFC's schedule. Only what a BitTorrent client needs: the external address
and TCP/UDP mappings (a lifetime of 0 removes one).
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from typing import Literal

from ...errors import PortMapError

NATPMP_PORT = 5351  # RFC 6886 section 3: the gateway listens here
VERSION = 0
OP_EXTERNAL_ADDRESS = 0
OP_MAP_UDP = 1
OP_MAP_TCP = 2
REPLY_FLAG = 128  # RFC 6886 section 3.5: a reply's opcode is the request's + 128
# RFC 6886 section 3.1: first retransmission after 250 ms, doubling each time
INITIAL_RETRY = 0.25
RECOMMENDED_LIFETIME = 7200  # RFC 6886 section 3.3: two hours

RESULT_MESSAGES = {
    1: "unsupported version",
    2: "not authorized or refused",
    3: "network failure",
    4: "out of resources",
    5: "unsupported opcode",
}

Protocol = Literal["tcp", "udp"]


@dataclass(frozen=True, slots=True)
class ExternalAddress:
    """The gateway's reply to an external-address request."""

    epoch: int  # seconds since the gateway's mapping table was (re)started
    address: str


@dataclass(frozen=True, slots=True)
class Mapping:
    """The gateway's reply to a mapping request: what it actually mapped, for how long."""

    epoch: int
    protocol: Protocol
    internal_port: int
    external_port: int
    lifetime: int  # seconds; 0 = the mapping was removed


def external_address_request() -> bytes:
    """A NAT-PMP request for the gateway's external address (RFC 6886)."""
    return struct.pack("!BB", VERSION, OP_EXTERNAL_ADDRESS)


def map_request(protocol: Protocol, internal_port: int, external_port: int, lifetime: int) -> bytes:
    """Ask for ``external_port`` (a suggestion; 0 = any) to reach ``internal_port`` for
    ``lifetime`` seconds; lifetime 0 (with external port 0) removes the mapping."""
    if not 0 < internal_port < 65536:
        raise PortMapError(f"internal port {internal_port} is out of range")
    if not 0 <= external_port < 65536:
        raise PortMapError(f"external port {external_port} is out of range")
    if not 0 <= lifetime < 2**32:
        raise PortMapError(f"lifetime {lifetime} is out of range")
    op = OP_MAP_TCP if protocol == "tcp" else OP_MAP_UDP
    return struct.pack("!BBHHHI", VERSION, op, 0, internal_port, external_port, lifetime)


def parse_reply(data: bytes) -> ExternalAddress | Mapping:
    """One datagram from the gateway. A non-zero result code raises ``PortMapError`` with it."""
    if len(data) < 8:
        raise PortMapError(f"NAT-PMP reply of {len(data)} bytes is too short")
    version, op, result = struct.unpack_from("!BBH", data)
    if version != VERSION:
        raise PortMapError(f"NAT-PMP reply has version {version}", 1 if result == 0 else result)
    if op < REPLY_FLAG or op - REPLY_FLAG not in (OP_EXTERNAL_ADDRESS, OP_MAP_UDP, OP_MAP_TCP):
        raise PortMapError(f"NAT-PMP reply has unknown opcode {op}")
    if result != 0:
        raise PortMapError(f"gateway refused: {RESULT_MESSAGES.get(result, 'unknown result')}", result)
    (epoch,) = struct.unpack_from("!I", data, 4)
    if op == REPLY_FLAG + OP_EXTERNAL_ADDRESS:
        if len(data) < 12:
            raise PortMapError("NAT-PMP external address reply is too short")
        address = str(ipaddress.IPv4Address(data[8:12]))
        return ExternalAddress(epoch=epoch, address=address)
    if len(data) < 16:
        raise PortMapError("NAT-PMP mapping reply is too short")
    internal, external, lifetime = struct.unpack_from("!HHI", data, 8)
    protocol: Protocol = "tcp" if op == REPLY_FLAG + OP_MAP_TCP else "udp"
    if internal == 0:
        raise PortMapError("NAT-PMP mapping reply names internal port 0")
    if lifetime and external == 0:
        raise PortMapError("NAT-PMP mapping reply grants external port 0")
    return Mapping(epoch=epoch, protocol=protocol, internal_port=internal, external_port=external,
                   lifetime=lifetime)
