"""The engine's one HTTP(S) client, the async shell around ``reader``: a GET of a ``.torrent``
URL, a tracker's announce and scrape, a block list, a UPnP description. TCP or TLS through anyio,
or through the configured proxy, from sockets bound as the engine's are; connect and overall
timeouts, bounded redirects. Every failure is an ``HttpError`` naming the URL first asked for; the
callers turn it into their own (a tracker's, a job request's) keeping its reason.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Hashable
from typing import TypedDict
from urllib.parse import urljoin

import anyio
import anyio.abc

from ...errors import HttpError, ProxyError
from ...version import USER_AGENT
from ..netbind import NetBind
from ..proxy.dial import open_tcp
from ..proxy.settings import ProxyConfig
from .kept import KeptConnections, close_all
from .reader import MAX_BODY, HttpResponse, ResponseReader
from .url import split_http_url

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT", "DEFAULT_TIMEOUT", "DEFAULT_USER_AGENT", "GetOptions", "Guard", "describe",
    "exchange", "http_get", "remote_host",
]

DEFAULT_USER_AGENT = USER_AGENT
DEFAULT_TIMEOUT = 15.0  # seconds for a whole request, redirects included
DEFAULT_CONNECT_TIMEOUT = 5.0
MAX_REDIRECTS = 5
_REDIRECTS = {301, 302, 303, 307, 308}


def _request_bytes(url: str, user_agent: str, cookie: str = "", *,
                   keep: bool = False) -> tuple[str, int, bool, bytes]:
    try:
        where = split_http_url(url)
    except ValueError as exc:
        raise HttpError(str(exc), url) from None
    target = where.path + (f"?{where.query}" if where.query else "")
    if any(c in target for c in "\r\n "):
        raise HttpError("URL contains spaces or line breaks", url)
    if any(c in cookie for c in "\r\n"):
        raise HttpError("a cookie contains a line break", url)  # (cookies.py's check lets none through)
    request = (
        f"GET {target} HTTP/1.1\r\n"
        f"Host: {where.host_header}\r\n"
        f"User-Agent: {user_agent}\r\n"
        + (f"Cookie: {cookie}\r\n" if cookie else "") +
        "Accept-Encoding: gzip, deflate\r\n"
        + ("" if keep else "Connection: close\r\n") +  # (HTTP/1.1 keeps a connection by default)
        "\r\n"
    )
    return where.host, where.port, where.tls, request.encode("ascii", errors="strict")


async def _fetch_once(
    url: str,
    *,
    connect_timeout: float,
    max_body: int,
    user_agent: str,
    ssl_context: ssl.SSLContext | None,
    proxy: ProxyConfig | None,
    bind: NetBind | None = None,
    cookie: str = "",
    guard: Guard | None = None,
    kept: KeptConnections | None = None,
) -> HttpResponse:
    try:
        host, port, tls, request = _request_bytes(url, user_agent, cookie, keep=kept is not None)
    except UnicodeEncodeError:
        raise HttpError("URL is not ASCII", url) from None
    key = (host, port, tls, ssl_context, proxy, bind)
    if kept is not None:
        stream, dropped = kept.take(key)
        try:
            await close_all(dropped)
        except BaseException:  # (cancelled meanwhile: the one taken is closed too, not left open)
            if stream is not None:
                await anyio.aclose_forcefully(stream)
            raise
        if stream is not None:
            try:
                return await _request(stream, url, request, max_body, guard, proxy, kept, key, reused=True)
            except _Stale:
                pass  # (the server closed it as the request went: once more on a new connection)
    # (through a proxy: its tunnel has its own connect_timeout, the TLS on top this one)
    with anyio.fail_after(connect_timeout * (2 if proxy is not None else 1)):
        # (not standard_compatible: a close without close_notify is an EOF, as in http.client
        # (ragged EOF); a truncated Content-Length or chunked body still fails in feed_eof)
        try:
            stream = await open_tcp(host, port, proxy=proxy, timeout=connect_timeout, tls=tls,
                                    ssl_context=ssl_context, bind=bind)
        except anyio.EndOfStream:
            raise HttpError("connection closed during the TLS handshake") from None
        except ProxyError as exc:
            raise HttpError(str(exc)) from None
    return await _request(stream, url, request, max_body, guard, proxy, kept, key, reused=False)


class _Stale(Exception):
    """A kept connection the server had closed: nothing of a response came on it."""


async def _request(stream: anyio.abc.ByteStream, url: str, request: bytes, max_body: int, guard: Guard | None,
                   proxy: ProxyConfig | None, kept: KeptConnections | None, key: Hashable, *,
                   reused: bool) -> HttpResponse:
    """``request`` on ``stream`` (a new connection, or a kept one when ``reused``); the stream is
    then kept in ``kept`` when the response allows it, else closed."""
    keep = False
    try:
        if guard is not None:  # (before a byte of the request is sent)
            why = guard(url, None if proxy is not None else remote_host(stream))
            if why is not None:
                raise HttpError(why)
        reader = await _exchange(stream, request, max_body, reused=reused)
        assert reader.response is not None
        keep = kept is not None and reader.keeps_alive
        return reader.response
    finally:
        if keep:
            assert kept is not None
            await close_all(kept.give(key, stream))
        else:
            # The response is complete (or abandoned): no TLS close_notify exchange to wait on.
            await anyio.aclose_forcefully(stream)


async def exchange(stream: anyio.abc.ByteStream, request: bytes, max_body: int) -> HttpResponse:
    """Send ``request`` on an open stream and read the whole response (HttpError if it is
    malformed or over ``max_body``); the stream is left open."""
    reader = await _exchange(stream, request, max_body, reused=False)
    assert reader.response is not None
    return reader.response


async def _exchange(stream: anyio.abc.ByteStream, request: bytes, max_body: int, *,
                    reused: bool) -> ResponseReader:
    """``exchange``'s work; the reader, its response complete. On a ``reused`` connection, a
    close or reset before the first byte of the response is ``_Stale``."""
    reader = ResponseReader(max_body=max_body)
    try:
        await stream.send(request)
        while reader.response is None:
            try:
                data = await stream.receive(65536)
            except anyio.EndOfStream:
                if reused and not reader.started:
                    raise _Stale from None
                reader.feed_eof()
                break
            reader.feed(data)
    except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
        if reused and not reader.started:
            raise _Stale from None
        raise
    return reader


# What a request about to be sent may not be: called with its URL (each redirect's too) and the
# address its connection reached (None through a proxy), once connected; a reason refuses it.
Guard = Callable[[str, str | None], str | None]


def remote_host(stream: anyio.abc.ByteStream) -> str | None:
    """The address ``stream``'s socket is connected to (None: not a socket's stream)."""
    try:
        address = stream.extra(anyio.abc.SocketAttribute.remote_address)
    except anyio.TypedAttributeLookupError:
        return None
    return str(address[0]) if isinstance(address, tuple) else None


class GetOptions(TypedDict, total=False):
    """``http_get``'s keywords, for a caller that passes them on (the trackers' announce and
    scrape): each means what it means there, and one left out keeps its default."""

    timeout: float
    connect_timeout: float
    max_body: int
    max_redirects: int
    user_agent: str
    ssl_context: ssl.SSLContext | None
    proxy: ProxyConfig | None
    bind: NetBind | None
    guard: Guard | None
    kept: KeptConnections | None


async def http_get(
    url: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    max_body: int = MAX_BODY,
    max_redirects: int = MAX_REDIRECTS,
    user_agent: str = DEFAULT_USER_AGENT,
    ssl_context: ssl.SSLContext | None = None,
    proxy: ProxyConfig | None = None,
    bind: NetBind | None = None,
    cookies: Callable[[str], str] | None = None,
    guard: Guard | None = None,
    kept: KeptConnections | None = None,
) -> HttpResponse:
    """GET ``url`` following at most ``max_redirects`` redirects, all within ``timeout`` seconds,
    through ``proxy`` when one is given (a failure there is a HttpError naming the proxy),
    from sockets bound by ``bind`` when one is given. ``cookies``: the ``Cookie:`` value for a
    URL (``""`` none), asked for each request (a redirect to another host gets that host's).
    ``guard``: asked before each request is sent, once connected (see ``Guard``); its reason
    is the failure. ``kept``: connections kept open between requests (see ``KeptConnections``),
    taken from and given back to; None: a connection a request, closed after it.

    Every failure (DNS, refused, TLS, timeout, malformed or oversized response, redirect loop)
    is a :class:`HttpError` naming the URL first asked for.
    """
    current = url
    try:
        with anyio.fail_after(timeout):
            for _ in range(max_redirects + 1):
                response = await _fetch_once(
                    current,
                    connect_timeout=connect_timeout,
                    max_body=max_body,
                    user_agent=user_agent,
                    ssl_context=ssl_context,
                    proxy=proxy,
                    bind=bind,
                    cookie=cookies(current) if cookies is not None else "",
                    guard=guard,
                    kept=kept,
                )
                location = response.headers.get("location")
                if response.status not in _REDIRECTS or not location:
                    return response
                try:
                    current = urljoin(current, location)
                except ValueError:  # e.g. "http://[::1/": urllib's "Invalid IPv6 URL"
                    raise HttpError(f"bad redirect Location {location[:60]!r}") from None
    except HttpError as exc:
        raise HttpError(exc.reason, url) from None
    except TimeoutError:
        raise HttpError(f"no answer within {timeout:g} s", url) from None
    except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
        raise HttpError(describe(exc), url) from None
    raise HttpError(f"more than {max_redirects} redirects", url)


def describe(exc: BaseException) -> str:
    """The most specific cause: anyio reports a failed connect as "All connection attempts
    failed" with the real error (refused, unreachable...) as its cause."""
    cause = exc.__cause__
    if isinstance(cause, OSError) and str(exc) == "All connection attempts failed":
        exc = cause
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, (anyio.BrokenResourceError, anyio.ClosedResourceError)):
        return "connection lost"
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


