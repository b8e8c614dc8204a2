"""BEP 55 ``ut_holepunch``: the message codec and the relaying peer's decision, sans-I/O.

A peer that cannot take inbound connections is reached through a relay both are connected to:
the initiator sends ``rendezvous`` (the target's endpoint) to the relay; the relay sends
``connect`` to both (each with the other's endpoint), or ``error`` back; on ``connect`` each side
dials the other over uTP at the same moment, which opens both NATs.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from enum import IntEnum

from ...errors import PeerProtocolError

EXTENSION_NAME = "ut_holepunch"  # BEP 55: the name in the BEP 10 handshake's "m"

Endpoint = tuple[str, int]


class HolepunchType(IntEnum):
    """The ``ut_holepunch`` message types (BEP 55)."""

    RENDEZVOUS = 0x00  # BEP 55
    CONNECT = 0x01
    ERROR = 0x02


class HolepunchError(IntEnum):
    """The ``ut_holepunch`` error codes (BEP 55)."""

    NONE = 0x00
    NO_SUCH_PEER = 0x01  # BEP 55: the target endpoint is invalid
    NOT_CONNECTED = 0x02  # the relay is not connected to the target
    NO_SUPPORT = 0x03  # the target does not support ut_holepunch
    NO_SELF = 0x04  # the target endpoint is the relay itself


@dataclass(frozen=True, slots=True)
class HolepunchMessage:
    """One ``ut_holepunch`` message: its type, the endpoint it is about, an error code."""

    type: HolepunchType
    endpoint: Endpoint
    error: HolepunchError = HolepunchError.NONE


def encode_holepunch(msg: HolepunchMessage) -> bytes:
    """The extension message payload (after the BEP 10 header)."""
    host, port = msg.endpoint
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise PeerProtocolError(f"ut_holepunch needs an IP address, not {host!r}") from None
    if not 0 <= port <= 0xFFFF:
        raise PeerProtocolError(f"ut_holepunch port {port} out of range")
    addr_type = 0 if ip.version == 4 else 1
    return bytes((msg.type, addr_type)) + ip.packed + struct.pack(">HI", port, msg.error)


def decode_holepunch(payload: bytes) -> HolepunchMessage:
    """Parse a ``ut_holepunch`` payload; ``PeerProtocolError`` when malformed."""
    if len(payload) < 2:
        raise PeerProtocolError(f"ut_holepunch message of {len(payload)} bytes is too short")
    kind, addr_type = payload[0], payload[1]
    if kind > HolepunchType.ERROR:
        raise PeerProtocolError(f"ut_holepunch: unknown msg_type {kind} (byte 0)")
    if addr_type not in (0, 1):
        raise PeerProtocolError(f"ut_holepunch: unknown addr_type {addr_type} (byte 1)")
    size = 4 if addr_type == 0 else 16
    # err_code may be left out of rendezvous and connect (libtorrent writes it only in error
    # messages: its connect is 8 bytes for IPv4); an error message must carry it
    need = 2 + size + (6 if kind == HolepunchType.ERROR else 2)
    if len(payload) < need:
        raise PeerProtocolError(f"ut_holepunch message of {len(payload)} bytes is truncated "
                                f"(needs {need} for msg_type {kind}, addr_type {addr_type})")
    raw = payload[2:2 + size]
    host = str(ipaddress.IPv4Address(raw) if size == 4 else ipaddress.IPv6Address(raw))
    (port,) = struct.unpack_from(">H", payload, 2 + size)
    err = struct.unpack_from(">I", payload, 4 + size)[0] if len(payload) >= 8 + size else 0
    try:
        error = HolepunchError(err)
    except ValueError:
        raise PeerProtocolError(f"ut_holepunch: unknown err_code {err}") from None
    if (kind == HolepunchType.ERROR) != (error != HolepunchError.NONE):
        raise PeerProtocolError(f"ut_holepunch: err_code {err} does not fit msg_type {kind}")
    return HolepunchMessage(HolepunchType(kind), (host, port), error)


def answer_rendezvous(
    initiator: Endpoint,
    msg: HolepunchMessage,
    *,
    connected: Mapping[Endpoint, bool],
    own_endpoints: Collection[Endpoint] = (),
    valid: Callable[[Endpoint], bool] = lambda e: 0 < e[1] <= 0xFFFF,
) -> list[tuple[Endpoint, HolepunchMessage]]:
    """The relay's reply to ``initiator``'s rendezvous: (peer to send to, message) pairs.

    ``connected`` maps the endpoints of the peers the relay is connected to onto whether each
    announced ``ut_holepunch`` in its extension handshake."""
    if msg.type is not HolepunchType.RENDEZVOUS:
        raise PeerProtocolError(f"expected a rendezvous, got {msg.type.name.lower()}")
    target = msg.endpoint

    def error(code: HolepunchError) -> list[tuple[Endpoint, HolepunchMessage]]:
        return [(initiator, HolepunchMessage(HolepunchType.ERROR, target, code))]

    if target in own_endpoints:
        return error(HolepunchError.NO_SELF)
    if not valid(target) or target == initiator:
        return error(HolepunchError.NO_SUCH_PEER)
    if target not in connected:
        return error(HolepunchError.NOT_CONNECTED)
    if not connected[target]:
        return error(HolepunchError.NO_SUPPORT)
    return [(initiator, HolepunchMessage(HolepunchType.CONNECT, target)),
            (target, HolepunchMessage(HolepunchType.CONNECT, initiator))]
