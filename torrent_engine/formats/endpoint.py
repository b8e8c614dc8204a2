"""``HOST:PORT`` as a person or a link writes an endpoint — a peer to dial, a DHT node, an address
to listen on — with one set of rules wherever it is read (the CLI's arguments, our API's and the
qBittorrent dialect's peers and bans, a magnet's ``x.pe``). Pure.

The rules: the port is ASCII digits, 1 to 65 535 (0 too where the caller allows "any"); the
host is not empty; an IPv6 address goes in brackets (``[::1]:6881``: without them its last
colon and the port's cannot be told apart), and what is in brackets is an IPv6 address.
"""

from __future__ import annotations

from .compact import is_ipv6_literal

__all__ = ["EndpointError", "port_number", "split_host_port"]


class EndpointError(ValueError):
    """Text that is not ``HOST:PORT`` by the rules above; the message says which rule."""


def port_number(text: str, *, allow_zero: bool = False) -> int:
    """The port ``text`` writes, by the rules above; ``EndpointError`` naming what is wrong."""
    if not (text.isascii() and text.isdigit()) or len(text.lstrip("0")) > 5:  # (leading zeros taken)
        raise EndpointError(f"the port {text[:12]!r} is not a number from {0 if allow_zero else 1} to 65535")
    number = int(text)
    if not (0 if allow_zero else 1) <= number <= 65535:
        raise EndpointError(f"the port {number} is not from {0 if allow_zero else 1} to 65535")
    return number


def split_host_port(text: str, *, allow_zero: bool = False) -> tuple[str, int]:
    """``(host, port)`` of ``text`` (``HOST:PORT`` or ``[IPv6]:PORT``; the brackets dropped);
    ``EndpointError`` naming what is wrong otherwise."""
    host, sep, port = text.rpartition(":")
    if not sep:
        raise EndpointError("no port: expected HOST:PORT")
    number = port_number(port, allow_zero=allow_zero)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if not is_ipv6_literal(host):
            raise EndpointError(f"{host[:60]!r} in brackets is not an IPv6 address")
    elif ":" in host:
        raise EndpointError("an IPv6 address goes in brackets: [ADDRESS]:PORT")
    elif "[" in host or "]" in host:
        raise EndpointError("unmatched brackets: expected [ADDRESS]:PORT")
    if not host:
        raise EndpointError("no host: expected HOST:PORT")
    return host, number
