"""Server-side request forgery mitigation (libtorrent's ``ssrf_mitigation``): what a tracker's or
a web seed's URL, which any torrent, magnet link or redirect may name, is allowed to make the
engine ask of its own host and network.

- A tracker URL whose query already carries announce arguments (``info_hash``, ``peer_id``, …) is
  refused: its requests would be a forged announce, or a request to something else dressed as one.
- A tracker request (a redirect's too) that reaches a loopback address must go to a tracker's
  path: an announce's below ``/announce``, a scrape's below ``/scrape`` (BEP 48's scrape URL of
  such an announce URL). Anything else on this host (a web UI, a local API) is refused.
- A web seed on the local network (loopback, private, link-local, unique-local addresses) may not
  have a query string; a web seed reached first at a global address may not redirect there.

Pure: no socket, no DNS. The HTTP clients ask it for each request, with the address their
connection reached (``None`` through a proxy: then the URL's host as written is judged).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import parse_qsl, urlsplit

__all__ = [
    "TRACKER_ARGUMENTS", "is_local", "tracker_hop_refused", "tracker_url_refused", "web_seed_hop_refused",
]

# the query arguments a tracker announce is made of (libtorrent's list)
TRACKER_ARGUMENTS = frozenset({"info_hash", "event", "port", "left", "key", "uploaded", "downloaded",
                               "corrupt", "peer_id"})

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost", "ip6-loopback"})


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _loopback(host: str) -> bool:
    """Whether ``host`` (an address, or a name as written in a URL) is this host's loopback."""
    ip = _address(host)
    if ip is None:
        name = host.lower()
        return name in _LOOPBACK_NAMES or name.endswith(".localhost") or name.endswith(".localhost.")
    return ip.is_loopback or ip.is_unspecified


def is_local(host: str) -> bool:
    """Whether ``host`` is on this host or its local network: loopback, private (RFC 1918, IPv6
    unique-local), link-local, or a name for loopback."""
    ip = _address(host)
    if ip is None:
        return _loopback(host)
    return ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_unspecified


def _split(url: str) -> tuple[str, str, str]:
    """``url``'s host, path and query (empty when malformed: its client says why)."""
    try:
        parts = urlsplit(url)
        return parts.hostname or "", parts.path or "/", parts.query
    except ValueError:
        return "", "/", ""


def tracker_url_refused(url: str) -> str | None:
    """Why the tracker URL ``url`` may not be asked at all (None: it may): its query names an
    announce argument."""
    _, _, query = _split(url)
    if not query:
        return None
    names = sorted({name.lower() for name, _ in parse_qsl(query, keep_blank_values=True)} & TRACKER_ARGUMENTS)
    if names:
        return (f"SSRF mitigation: the tracker URL's query already holds announce arguments "
                f"({', '.join(names)})")
    return None


def tracker_hop_refused(url: str, address: str | None, *, scrape: bool = False) -> str | None:
    """Why a tracker request to ``url`` that reached ``address`` (None: unknown, through a proxy;
    the URL's host is judged) may not be sent (None: it may)."""
    host, path, _ = _split(url)
    if not _loopback(address if address is not None else host):
        return None
    expected = "/scrape" if scrape else "/announce"
    if path.startswith(expected):
        return None
    where = address if address is not None else host
    return (f"SSRF mitigation: a tracker on this host ({where}) is asked only at {expected}, "
            f"not at {path[:60]!r}")


def web_seed_hop_refused(url: str, address: str | None, *,
                         redirected_from_global: bool = False) -> str | None:
    """Why a web seed request to ``url`` that reached ``address`` (None: unknown, through a
    proxy; the URL's host is judged) may not be sent (None: it may). ``redirected_from_global``:
    the URL is a redirect's, from a web seed reached at a global address."""
    host, _, query = _split(url)
    where = address if address is not None else host
    if not is_local(where):
        return None
    if redirected_from_global:
        return f"SSRF mitigation: a web seed on the internet redirected to the local network ({where})"
    if query:
        return f"SSRF mitigation: a web seed on the local network ({where}) may not have a query string"
    return None
