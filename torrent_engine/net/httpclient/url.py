"""What an HTTP(S) client needs from a URL, checked once for the tracker and web seed clients.

Pure: no socket, no DNS. The callers turn ``ValueError`` into their own typed errors (a
tracker's, a web seed's), keeping the reason's text.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["HttpUrl", "split_http_url"]


@dataclass(frozen=True, slots=True)
class HttpUrl:
    """Where to connect and what goes in the request's ``Host:`` and target."""

    tls: bool
    host: str  # as connected to: an IPv6 address without brackets
    port: int
    host_header: str  # the ``Host:`` value: brackets around IPv6, ``:port`` when the URL names one
    path: str  # as written, "/" when empty
    query: str  # as written, without the "?"


def split_http_url(url: str) -> HttpUrl:
    """Split an ``http://`` or ``https://`` URL; ``ValueError`` saying what is wrong otherwise."""
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. "http://[::1/": urllib's "Invalid IPv6 URL"
        raise ValueError("malformed URL") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ValueError(f"unsupported URL scheme {scheme!r}")
    host = parts.hostname
    if not host:
        raise ValueError("URL has no host")
    try:
        named_port = parts.port
    except ValueError:
        raise ValueError("URL has a bad port") from None
    tls = scheme == "https"
    host_header = f"[{host}]" if ":" in host else host
    if named_port:
        host_header += f":{named_port}"
    if any(not c.isascii() or not c.isprintable() for c in host_header):
        raise ValueError("URL host is not plain ASCII")
    return HttpUrl(tls=tls, host=host, port=named_port or (443 if tls else 80), host_header=host_header,
                   path=parts.path or "/", query=parts.query)
