"""The engine's one HTTP/1.1 client, for ``.torrent`` URLs, trackers, web seeds, block lists and
UPnP: ``url`` checks a URL once, ``reader`` parses a response (sans-I/O), ``client`` is the shell
(timeouts, redirects, proxy, bound sockets). Its failures are ``HttpError``."""

from __future__ import annotations

from ...errors import HttpError
from .client import exchange, http_get
from .reader import HttpResponse, ResponseReader
from .url import HttpUrl, split_http_url

__all__ = ["HttpError", "HttpResponse", "HttpUrl", "ResponseReader", "exchange", "http_get", "split_http_url"]
