"""HTTP(S) tracker client: announce and scrape, each one GET through the engine's HTTP client
(``httpclient``); an HTTP failure becomes a ``TrackerError`` naming the tracker.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Unpack

from ...errors import HttpError, TrackerError
from ..httpclient import HttpResponse, http_get
from ..httpclient.client import DEFAULT_USER_AGENT, GetOptions
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


async def announce(url: str, request: AnnounceRequest, **options: Unpack[GetOptions]) -> AnnounceResponse:
    """Announce to an HTTP(S) tracker (``options``: ``http_get``'s; the body at most
    ``MAX_RESPONSE_SIZE`` unless given). A bencoded body is parsed even with a non-200 status,
    since trackers often send their ``failure reason`` with a 4xx code."""
    response = await _tracker_get(announce_url(url, request), url, options)
    return parse_announce_response(response.body, url)


async def scrape(url: str, info_hashes: Sequence[bytes], **options: Unpack[GetOptions]) -> ScrapeResponse:
    """Scrape ``info_hashes`` at the HTTP(S) tracker whose announce URL is ``url`` (BEP 48;
    ``options`` as ``announce``'s)."""
    response = await _tracker_get(scrape_url_for(url, info_hashes), url, options)
    return parse_scrape_response(response.body, url)


async def _tracker_get(request_url: str, tracker_url: str, options: GetOptions) -> HttpResponse:
    try:
        response = await http_get(request_url, **(GetOptions(max_body=MAX_RESPONSE_SIZE) | options))
    except HttpError as exc:  # name the tracker, not the whole request URL
        raise TrackerError(exc.reason, tracker_url) from None
    _check_status(response, tracker_url)
    return response
