"""HTTP(S) tracker client: announce and scrape over a minimal HTTP/1.1 GET on anyio.

A tracker exchange is one small GET, so HTTP/1.1 is written here rather than pulled in as a
dependency: ``ResponseReader`` is the sans-I/O part (status line, headers, Content-Length,
chunked or read-to-close bodies, gzip/deflate, a size cap at every stage); ``http_get`` is the
shell (TCP or TLS through anyio, or through a proxy; connect and overall timeouts, bounded
redirects).
"""

from __future__ import annotations

import ssl
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urljoin

import anyio
import anyio.abc

from ..errors import ProxyError, TrackerError
from ..httpurl import split_http_url
from ..netbind import NetBind
from ..proxy.dial import open_tcp
from ..proxy.settings import ProxyConfig
from ..version import USER_AGENT
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

__all__ = [
    "DEFAULT_USER_AGENT",
    "HttpResponse",
    "ResponseReader",
    "announce",
    "http_get",
    "scrape",
]

DEFAULT_USER_AGENT = USER_AGENT
DEFAULT_TIMEOUT = 15.0  # seconds for a whole request, redirects included
DEFAULT_CONNECT_TIMEOUT = 5.0
MAX_REDIRECTS = 5
MAX_HEAD_SIZE = 32 * 1024
_REDIRECTS = {301, 302, 303, 307, 308}


@dataclass
class HttpResponse:
    """A complete HTTP response: status, reason, headers (lower-case names) and body."""

    status: int
    reason: str
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    body: bytes


@dataclass
class ResponseReader:
    """Incremental HTTP/1.1 response parser. ``feed`` bytes, call ``feed_eof`` when the peer
    closes; ``response`` is set once complete. Raises TrackerError on anything malformed or over
    ``max_body`` (checked on the wire size and again after decompression)."""

    max_body: int = MAX_RESPONSE_SIZE
    # Stop once the head is parsed, before the body's size is checked or any of it is taken: the
    # caller judges the head, then calls ``continue_body`` or ``take_buffered`` (a web seed
    # that ignored ``Range`` sends the whole file: the caller skims it instead).
    stop_after_head: bool = False
    response: HttpResponse | None = field(default=None, init=False)
    _buf: bytearray = field(default_factory=bytearray, init=False, repr=False)
    _status: int = field(default=0, init=False)
    _reason: str = field(default="", init=False)
    _headers: dict[str, str] = field(default_factory=dict, init=False, repr=False)
    # head | length | chunk-size | chunk-data | chunk-trailer | close | done
    _mode: str = field(default="head", init=False)
    _remaining: int = field(default=0, init=False)
    _body: bytearray = field(default_factory=bytearray, init=False, repr=False)

    @property
    def head(self) -> tuple[int, str, dict[str, str]] | None:
        """Status, reason and headers (lower-case names) once the head is parsed, before the
        body is complete (a caller may refuse the body on them); None until then."""
        return None if self._mode == "head" else (self._status, self._reason, self._headers)

    def feed(self, data: bytes) -> None:
        """Parse ``data`` received from the server."""
        if self._mode == "done":
            return
        self._buf += data
        if self.stop_after_head and self._mode != "head":
            return  # (held for continue_body or take_buffered)
        self._advance()

    def continue_body(self) -> None:
        """After a stop at the head: check the body's declared size and parse on."""
        self.stop_after_head = False
        if self._mode == "length" and self._remaining > self.max_body:
            raise TrackerError(f"HTTP body of {self._remaining} bytes is over the {self.max_body} cap")
        self._advance()

    def take_buffered(self) -> bytes:
        """After a stop at the head: the bytes received after it so far (raw body bytes)."""
        data = bytes(self._buf)
        self._buf.clear()
        return data

    def feed_eof(self) -> None:
        """The server closed: finish a response delimited by the close; ``TrackerError`` if one is cut
        short."""
        if self._mode == "close":
            self._finish()
        elif self._mode != "done":
            raise TrackerError("connection closed before the HTTP response was complete")

    def _advance(self) -> None:
        while self._mode != "done":
            if self._mode == "head":
                end = self._buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(self._buf) > MAX_HEAD_SIZE:
                        raise TrackerError("HTTP response head is too large")
                    return
                self._parse_head(bytes(self._buf[:end]))
                del self._buf[: end + 4]
                if self.stop_after_head:
                    return
            elif self._mode == "length":
                if not self._take_remaining():
                    return
                self._finish()
            elif self._mode == "close":
                self._append(self._buf)
                self._buf.clear()
                return
            elif self._mode in ("chunk-size", "chunk-trailer"):
                end = self._buf.find(b"\r\n")
                if end < 0:
                    if len(self._buf) > 4096:
                        raise TrackerError("HTTP chunk header is too long")
                    return
                line = bytes(self._buf[:end])
                del self._buf[: end + 2]
                if self._mode == "chunk-trailer":
                    if not line:  # blank line ends the trailer
                        self._finish()
                    continue
                size_text = line.split(b";", 1)[0].strip()
                try:
                    size = int(size_text, 16)
                except ValueError:
                    raise TrackerError(f"bad HTTP chunk size {size_text[:20]!r}") from None
                if size < 0:
                    raise TrackerError("bad HTTP chunk size")
                if size == 0:
                    self._mode = "chunk-trailer"
                else:
                    self._remaining = size
                    self._mode = "chunk-data"
            elif self._mode == "chunk-data":
                if not self._take_remaining():
                    return
                if len(self._buf) < 2:
                    return
                if self._buf[:2] != b"\r\n":
                    raise TrackerError("HTTP chunk is not followed by CRLF")
                del self._buf[:2]
                self._mode = "chunk-size"

    def _take_remaining(self) -> bool:
        """Move up to ``_remaining`` buffered bytes into the body; True once none are owed."""
        take = min(self._remaining, len(self._buf))
        if take:
            self._append(self._buf[:take])
            del self._buf[:take]
            self._remaining -= take
        return not self._remaining

    def _parse_head(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise TrackerError(f"not an HTTP/1.x response: {lines[0][:60]!r}")
        self._status = int(parts[1])
        self._reason = parts[2].decode("latin-1") if len(parts) > 2 else ""
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep:
                raise TrackerError("malformed HTTP header line")
            key = name.strip().decode("latin-1").lower()
            text = value.strip().decode("latin-1")
            self._headers[key] = f"{self._headers[key]}, {text}" if key in self._headers else text
        if "chunked" in self._headers.get("transfer-encoding", "").lower():
            self._mode = "chunk-size"
        elif "content-length" in self._headers:
            length_text = self._headers["content-length"].split(",")[0].strip()
            if not (length_text.isascii() and length_text.isdigit()):  # isdigit() alone takes '²'
                raise TrackerError(f"bad Content-Length {length_text[:20]!r}")
            self._remaining = int(length_text)
            if self._remaining > self.max_body and not self.stop_after_head:
                raise TrackerError(f"HTTP body of {self._remaining} bytes is over the {self.max_body} cap")
            self._mode = "length"
        elif self._status in (204, 304) or 100 <= self._status < 200:
            self._mode = "length"
            self._remaining = 0
        else:
            self._mode = "close"

    def _append(self, data: bytes | bytearray) -> None:
        if len(self._body) + len(data) > self.max_body:
            raise TrackerError(f"HTTP body is over the {self.max_body} byte cap")
        self._body += data

    def _finish(self) -> None:
        body = bytes(self._body)
        encoding = self._headers.get("content-encoding", "identity").strip().lower()
        if encoding in ("gzip", "x-gzip"):
            body = _inflate(body, zlib.MAX_WBITS | 16, self.max_body)
        elif encoding == "deflate":
            body = _inflate(body, zlib.MAX_WBITS, self.max_body)
        elif encoding not in ("identity", ""):
            raise TrackerError(f"unsupported Content-Encoding {encoding!r}")
        self.response = HttpResponse(self._status, self._reason, self._headers, body)
        self._mode = "done"


def _inflate(data: bytes, wbits: int, cap: int) -> bytes:
    """Decompress with a hard output cap, so a compression bomb costs at most ``cap`` bytes."""
    try:
        inflater = zlib.decompressobj(wbits)
        out = inflater.decompress(data, cap + 1)
    except zlib.error as exc:
        raise TrackerError(f"bad compressed HTTP body: {exc}") from None
    if len(out) > cap or inflater.unconsumed_tail:
        raise TrackerError(f"decompressed HTTP body is over the {cap} byte cap")
    return out


def _request_bytes(url: str, user_agent: str) -> tuple[str, int, bool, bytes]:
    try:
        where = split_http_url(url)
    except ValueError as exc:
        raise TrackerError(str(exc), url) from None
    target = where.path + (f"?{where.query}" if where.query else "")
    if any(c in target for c in "\r\n "):
        raise TrackerError("URL contains spaces or line breaks", url)
    request = (
        f"GET {target} HTTP/1.1\r\n"
        f"Host: {where.host_header}\r\n"
        f"User-Agent: {user_agent}\r\n"
        "Accept-Encoding: gzip, deflate\r\n"
        "Connection: close\r\n"
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
) -> HttpResponse:
    try:
        host, port, tls, request = _request_bytes(url, user_agent)
    except UnicodeEncodeError:
        raise TrackerError("URL is not ASCII", url) from None
    # (through a proxy: its tunnel has its own connect_timeout, the TLS on top this one)
    with anyio.fail_after(connect_timeout * (2 if proxy is not None else 1)):
        # (not standard_compatible: a close without close_notify is an EOF, as in http.client
        # (ragged EOF); a truncated Content-Length or chunked body still fails in feed_eof)
        try:
            stream = await open_tcp(host, port, proxy=proxy, timeout=connect_timeout, tls=tls,
                                    ssl_context=ssl_context, bind=bind)
        except anyio.EndOfStream:
            raise TrackerError("connection closed during the TLS handshake") from None
        except ProxyError as exc:
            raise TrackerError(str(exc)) from None
    try:
        return await exchange(stream, request, max_body)
    finally:
        # The response is complete (or abandoned): no TLS close_notify exchange to wait on.
        await anyio.aclose_forcefully(stream)


async def exchange(stream: anyio.abc.ByteStream, request: bytes, max_body: int) -> HttpResponse:
    """Send ``request`` on an open stream and read the whole response (TrackerError if it is
    malformed or over ``max_body``); the stream is left open."""
    reader = ResponseReader(max_body=max_body)
    await stream.send(request)
    while reader.response is None:
        try:
            data = await stream.receive(65536)
        except anyio.EndOfStream:
            reader.feed_eof()
            break
        reader.feed(data)
    assert reader.response is not None
    return reader.response


async def http_get(
    url: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    max_body: int = MAX_RESPONSE_SIZE,
    max_redirects: int = MAX_REDIRECTS,
    user_agent: str = DEFAULT_USER_AGENT,
    ssl_context: ssl.SSLContext | None = None,
    proxy: ProxyConfig | None = None,
    bind: NetBind | None = None,
) -> HttpResponse:
    """GET ``url`` following at most ``max_redirects`` redirects, all within ``timeout`` seconds,
    through ``proxy`` when one is given (a failure there is a TrackerError naming the proxy),
    from sockets bound by ``bind`` when one is given.

    Every failure (DNS, refused, TLS, timeout, malformed or oversized response, redirect loop)
    is a :class:`TrackerError` naming the URL first asked for.
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
                )
                location = response.headers.get("location")
                if response.status not in _REDIRECTS or not location:
                    return response
                try:
                    current = urljoin(current, location)
                except ValueError:  # e.g. "http://[::1/": urllib's "Invalid IPv6 URL"
                    raise TrackerError(f"bad redirect Location {location[:60]!r}") from None
    except TrackerError as exc:
        raise TrackerError(exc.reason, url) from None
    except TimeoutError:
        raise TrackerError(f"no answer within {timeout:g} s", url) from None
    except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
        raise TrackerError(_describe(exc), url) from None
    raise TrackerError(f"more than {max_redirects} redirects", url)


def _describe(exc: BaseException) -> str:
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
    except TrackerError as exc:  # name the tracker, not the whole request URL
        raise TrackerError(exc.reason, tracker_url) from None
    _check_status(response, tracker_url)
    return response
