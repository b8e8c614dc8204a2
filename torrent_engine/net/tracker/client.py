"""Announce or scrape any tracker URL: dispatches on the scheme to the HTTP(S) or UDP client."""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from urllib.parse import urlsplit

from ...errors import TrackerError, TrackerNotUsed
from ..httpclient.client import Guard
from ..httpclient.kept import KeptConnections
from ..netbind import NetBind
from ..proxy.settings import ProxyConfig
from ..ssrf import tracker_hop_refused, tracker_url_refused
from . import http
from .messages import AnnounceRequest, AnnounceResponse, ScrapeResponse
from .udp import UdpTrackerClient

__all__ = ["SUPPORTED_SCHEMES", "announce", "scrape"]

SUPPORTED_SCHEMES = ("http", "https", "udp")


def _scheme(url: str) -> str:
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:  # e.g. "http://[::1/": urllib's "Invalid IPv6 URL"
        raise TrackerError("malformed tracker URL", url) from None
    if scheme not in SUPPORTED_SCHEMES:
        raise TrackerError(f"unsupported tracker URL scheme {scheme!r}", url)
    return scheme


async def announce(
    url: str,
    request: AnnounceRequest,
    *,
    timeout: float,
    udp: UdpTrackerClient | None = None,
    ssl_context: ssl.SSLContext | None = None,
    proxy: ProxyConfig | None = None,
    bind: NetBind | None = None,
    ssrf_mitigation: bool = False,
    kept: KeptConnections | None = None,
) -> AnnounceResponse:
    """One announce. ``udp`` carries the connection-id cache between calls (a fresh client
    is used when None). HTTP(S) goes through ``proxy`` when one is given; UDP goes by the SOCKS5
    proxy's UDP relay when ``udp`` has one (``UdpTrackerClient.relay``), and is refused
    (``TrackerNotUsed``) when nothing may leave outside the proxy and it has none. HTTP(S)
    connections come from sockets bound by ``bind`` when one is given (UDP: ``udp.netbind``).
    ``ssrf_mitigation``: an HTTP(S) tracker's URL and requests are judged by ``ssrf``. ``kept``:
    the HTTP(S) connections kept open between announces (None: one each)."""
    if _scheme(url) == "udp":
        _check_udp(url, proxy, udp)
        return await (udp or UdpTrackerClient()).announce(url, request, timeout=timeout)
    return await http.announce(url, request, timeout=timeout, ssl_context=ssl_context, proxy=proxy, bind=bind,
                               guard=_guard(url, ssrf_mitigation, scrape=False), kept=kept)


async def scrape(
    url: str,
    info_hashes: Sequence[bytes],
    *,
    timeout: float,
    udp: UdpTrackerClient | None = None,
    ssl_context: ssl.SSLContext | None = None,
    proxy: ProxyConfig | None = None,
    bind: NetBind | None = None,
    ssrf_mitigation: bool = False,
    kept: KeptConnections | None = None,
) -> ScrapeResponse:
    """Scrape ``info_hashes`` at the tracker whose announce URL is ``url`` (BEP 48 / BEP 15;
    the other arguments as ``announce``'s)."""
    if _scheme(url) == "udp":
        _check_udp(url, proxy, udp)
        return await (udp or UdpTrackerClient()).scrape(url, info_hashes, timeout=timeout)
    return await http.scrape(url, info_hashes, timeout=timeout, ssl_context=ssl_context, proxy=proxy,
                             bind=bind, guard=_guard(url, ssrf_mitigation, scrape=True), kept=kept)


def _guard(url: str, ssrf_mitigation: bool, *, scrape: bool) -> Guard | None:
    """The HTTP client's guard of a request to the tracker ``url`` (None: SSRF mitigation off);
    ``TrackerError`` when its URL alone is refused."""
    if not ssrf_mitigation:
        return None
    why = tracker_url_refused(url)
    if why is not None:
        raise TrackerError(why, url)
    return lambda asked, address: tracker_hop_refused(asked, address, scrape=scrape)


def _check_udp(url: str, proxy: ProxyConfig | None, udp: UdpTrackerClient | None) -> None:
    if proxy is None or not proxy.only:
        return
    if proxy.kind != "socks5":  # SOCKS4 and HTTP CONNECT tunnel TCP alone
        kind = "an HTTP" if proxy.kind == "http" else "a SOCKS4"
        raise TrackerNotUsed(f"UDP tracker not used: only the proxy may be used, and {kind} proxy carries "
                             "no UDP (SOCKS5 alone does)", url)
    if udp is None or udp.relay is None or udp.relay() is None:
        raise TrackerNotUsed("UDP tracker not used: only the proxy may be used, and no UDP relay of it is "
                             "open here", url)
