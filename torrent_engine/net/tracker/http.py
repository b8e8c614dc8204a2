"""HTTP(S) tracker client: announce and scrape, each one GET through the engine's HTTP client
(``httpclient``); an HTTP failure becomes a ``TrackerError`` naming the tracker.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence

from ...errors import HttpError, TrackerError
from ..httpclient import HttpResponse, http_get
from ..httpclient.client import DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT, DEFAULT_USER_AGENT
from ..netbind import NetBind
from ..proxy.settings import ProxyConfig
from .messages import (
    MAX_RESPONSE_SIZE,
    AnnounceRequest,
    AnnounceResponse,
    ScrapeResponse,
    announce_url,
    parse_announce_response,
    parse_scrape_response,
    scrape_url_for,
)

__all__ = ["DEFAULT_USER_AGENT", "announce", "scrape"]


def _check_status(response: HttpResponse, url: str) -> None:
    if response.status != 200 and not response.body.startswith(b"d"):
        raise TrackerError(f"HTTP {response.status} {response.reason}".strip(), url)


async def announce(
    url: str,
    request: AnnounceRequest,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    max_body: int = MAX_RESPONSE_SIZE,
    user_agent: str = DEFAULT_USER_AGENT,
    ssl_context: ssl.SSLContext | None = None,
    proxy: ProxyConfig | None = None,
    bind: NetBind | None = None,
) -> AnnounceResponse:
    """Announce to an HTTP(S) tracker. A bencoded body is parsed even with a non-200 status,
    since trackers often send their ``failure reason`` with a 4xx code."""
    response = await _tracker_get(
        announce_url(url, request), url, timeout, connect_timeout, max_body, user_agent, ssl_context, proxy,
        bind
    )
    return parse_announce_response(response.body, url)


async def scrape(
    url: str,
    info_hashes: Sequence[bytes],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    max_body: int = MAX_RESPONSE_SIZE,
    user_agent: str = DEFAULT_USER_AGENT,
    ssl_context: ssl.SSLContext | None = None,
    proxy: ProxyConfig | None = None,
    bind: NetBind | None = None,
) -> ScrapeResponse:
    """Scrape ``info_hashes`` at the HTTP(S) tracker whose announce URL is ``url`` (BEP 48)."""
    response = await _tracker_get(
        scrape_url_for(url, info_hashes), url, timeout, connect_timeout, max_body, user_agent, ssl_context,
        proxy, bind
    )
    return parse_scrape_response(response.body, url)


async def _tracker_get(
    request_url: str,
    tracker_url: str,
    timeout: float,
    connect_timeout: float,
    max_body: int,
    user_agent: str,
    ssl_context: ssl.SSLContext | None,
    proxy: ProxyConfig | None,
    bind: NetBind | None,
) -> HttpResponse:
    try:
        response = await http_get(
            request_url,
            timeout=timeout,
            connect_timeout=connect_timeout,
            max_body=max_body,
            user_agent=user_agent,
            ssl_context=ssl_context,
            proxy=proxy,
            bind=bind,
        )
    except HttpError as exc:  # name the tracker, not the whole request URL
        raise TrackerError(exc.reason, tracker_url) from None
    _check_status(response, tracker_url)
    return response
