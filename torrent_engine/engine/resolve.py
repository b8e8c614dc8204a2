"""The one resolver of an ``AddTorrent`` (addtorrent.py) into a ``Torrent`` or a ``Magnet``: the
shell that fetches a .torrent URL through the engine's one HTTP client (with the proxy and the
bound address its caller's policy gives) and reads .torrent data in a worker thread."""

from __future__ import annotations

from collections.abc import Callable

import anyio

from ..errors import HttpError
from ..formats.magnet import Magnet
from ..formats.metainfo import Torrent
from ..net.httpclient import http_get
from ..net.interface import NetBind
from ..net.peer.extensions import DEFAULT_MAX_METADATA_SIZE
from ..net.proxy.settings import ProxyConfig
from .addtorrent import AddTorrent, AddTorrentError, TorrentBytes, TorrentFile, TorrentUrl, read_add_torrent

MAX_FETCHED_TORRENT = DEFAULT_MAX_METADATA_SIZE + 64 * 1024  # a .torrent fetched by URL, at most
FETCH_TIMEOUT = 60.0  # seconds to fetch a .torrent by URL


async def fetch_torrent(url: str, *, proxy: ProxyConfig | None = None, bind: NetBind | None = None,
                        max_size: int = MAX_FETCHED_TORRENT, timeout: float = FETCH_TIMEOUT,
                        cookies: Callable[[str], str] | None = None) -> bytes:
    """The body at the http(s) ``url`` (``AddTorrentError`` of kind ``url`` saying why not);
    ``cookies``: the ``Cookie:`` value for a URL (of the request and each redirect)."""
    if url[:7].lower() != "http://" and url[:8].lower() != "https://":
        raise AddTorrentError(f"{url[:80]!r} is neither a magnet link nor an http(s) URL", "url")
    try:
        response = await http_get(url, max_body=max_size, timeout=timeout, proxy=proxy, bind=bind,
                                  cookies=cookies)
    except HttpError as exc:
        raise AddTorrentError(f"cannot fetch {url[:80]}: {exc.reason}", "url") from exc
    if response.status != 200:
        raise AddTorrentError(f"cannot fetch {url[:80]}: HTTP status {response.status} {response.reason}",
                              "url")
    return response.body


async def resolve(add: AddTorrent, *, proxy: ProxyConfig | None = None, bind: NetBind | None = None,
                  max_size: int = MAX_FETCHED_TORRENT, timeout: float = FETCH_TIMEOUT,
                  cookies: Callable[[str], str] | None = None) -> Torrent | Magnet:
    """The torrent or magnet ``add`` names: a URL fetched (``proxy``, ``bind``, ``cookies``: its
    caller's policy; at most ``max_size`` bytes), .torrent data parsed in a worker thread.
    Whatever was wrong is an ``AddTorrentError``."""
    if isinstance(add, TorrentUrl):
        data = await fetch_torrent(add.url, proxy=proxy, bind=bind, max_size=max_size, timeout=timeout,
                                   cookies=cookies)
        try:
            return await anyio.to_thread.run_sync(read_add_torrent, TorrentBytes(data))
        except AddTorrentError as exc:
            raise AddTorrentError(f"{add.url[:80]} is not a .torrent: {exc}", "torrent") from exc
    if isinstance(add, (TorrentBytes, TorrentFile)):
        return await anyio.to_thread.run_sync(read_add_torrent, add)
    return read_add_torrent(add)
