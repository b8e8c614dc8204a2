"""BEP 14 announces: ``BT-SEARCH * HTTP/1.1`` datagrams with Host, Port, Infohash and cookie
headers, built and parsed without I/O. Every fault in a received datagram is an ``LsdError``
naming the part that was wrong."""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import LsdError

__all__ = ["MAX_DATAGRAM", "MAX_INFO_HASHES", "MULTICAST_V4", "MULTICAST_V6", "Announce", "encode_announce",
           "host_header", "parse_announce"]

MULTICAST_V4 = ("239.192.152.143", 6771)  # BEP 14: org-local group
MULTICAST_V6 = ("ff15::efc0:988f", 6771)  # BEP 14: site-local group
SEND_LIMIT = 1400  # BEP 14: an announce with several info-hashes stays under 1400 bytes
MAX_DATAGRAM = 2048  # the largest announce we read; anything longer is refused unparsed
MAX_INFO_HASHES = 20  # per announce we send (20 fit in SEND_LIMIT with the longest Host header)
MAX_INFO_HASHES_RECEIVED = 32  # per announce we accept
_MAX_COOKIE = 64

_REQUEST_LINE = "BT-SEARCH * HTTP/1.1"


@dataclass(frozen=True, slots=True)
class Announce:
    """One announce: the sender's listen ``port``, the torrents it is in, and its ``cookie``."""

    port: int
    info_hashes: tuple[bytes, ...]
    cookie: str | None = None
    host: str | None = None  # the Host header as sent (the group), informative only


def host_header(group: tuple[str, int]) -> str:
    """The Host header for ``group`` (RFC 2732 brackets for IPv6)."""
    host, port = group
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def encode_announce(port: int, info_hashes: tuple[bytes, ...] | list[bytes], *, cookie: str | None = None,
                    group: tuple[str, int] = MULTICAST_V4) -> bytes:
    """The datagram announcing ``info_hashes`` on listen ``port`` to ``group``."""
    if not 0 < port < 65536:
        raise LsdError(f"{port} is not a port number", "Port")
    if not info_hashes:
        raise LsdError("an announce needs at least one info-hash", "Infohash")
    if len(info_hashes) > MAX_INFO_HASHES:
        raise LsdError(f"{len(info_hashes)} info-hashes do not fit in one announce "
                       f"(at most {MAX_INFO_HASHES})", "Infohash")
    lines = [_REQUEST_LINE, f"Host: {host_header(group)}", f"Port: {port}"]
    for info_hash in info_hashes:
        if len(info_hash) != 20:
            raise LsdError(f"an info-hash is 20 bytes, not {len(info_hash)}", "Infohash")
        lines.append(f"Infohash: {info_hash.hex()}")
    if cookie is not None:
        if not cookie.isascii() or not cookie.isprintable() or len(cookie) > _MAX_COOKIE:
            raise LsdError(f"{cookie!r} is not a printable ASCII cookie of at most {_MAX_COOKIE} chars",
                           "cookie")
        lines.append(f"cookie: {cookie}")
    data = ("\r\n".join(lines) + "\r\n\r\n\r\n").encode("ascii")
    assert len(data) <= SEND_LIMIT
    return data


def parse_announce(data: bytes) -> Announce:
    """The announce in ``data``; ``LsdError`` for anything that is not a usable BEP 14 announce.

    Header names are case-insensitive and unknown headers are ignored (BEP 14: forwards
    compatibility); lines may end in CRLF or LF."""
    if len(data) > MAX_DATAGRAM:
        raise LsdError(f"{len(data)} bytes is more than an announce may have ({MAX_DATAGRAM})", "datagram")
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as exc:
        raise LsdError(f"non-ASCII byte at offset {exc.start}", "datagram") from None
    lines = text.split("\n")
    request = lines[0].rstrip("\r")
    parts = request.split(" ")
    if len(parts) != 3 or parts[0] != "BT-SEARCH" or parts[1] != "*" or not parts[2].startswith("HTTP/1."):
        raise LsdError(f"{request[:60]!r} is not 'BT-SEARCH * HTTP/1.1'", "request line")
    port: int | None = None
    host: str | None = None
    cookie: str | None = None
    info_hashes: list[bytes] = []
    for number, raw in enumerate(lines[1:], start=2):
        line = raw.rstrip("\r")
        if not line:
            break  # the end of the headers
        name, colon, value = line.partition(":")
        if not colon:
            raise LsdError(f"line {number} {line[:60]!r} is not a 'Name: value' header", "header")
        key = name.strip().lower()
        value = value.strip()
        if key == "port":
            if port is not None:
                raise LsdError("more than one Port header", "Port")
            if not value.isdigit() or not 0 < int(value) < 65536:
                raise LsdError(f"{value[:20]!r} is not a port number", "Port")
            port = int(value)
        elif key == "infohash":
            if len(info_hashes) >= MAX_INFO_HASHES_RECEIVED:
                raise LsdError(f"more than {MAX_INFO_HASHES_RECEIVED} info-hashes", "Infohash")
            try:
                info_hash = bytes.fromhex(value)
            except ValueError:
                info_hash = b""
            if len(info_hash) != 20:
                raise LsdError(f"{value[:48]!r} is not a 40-digit hex info-hash", "Infohash")
            if info_hash not in info_hashes:
                info_hashes.append(info_hash)
        elif key == "cookie":
            cookie = value[:_MAX_COOKIE]
        elif key == "host":
            host = value
    if port is None:
        raise LsdError("missing", "Port")
    if not info_hashes:
        raise LsdError("missing", "Infohash")
    return Announce(port=port, info_hashes=tuple(info_hashes), cookie=cookie, host=host)
