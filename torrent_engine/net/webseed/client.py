"""BEP 19 web seeds, the async shell: keep-alive HTTP(S) range requests, and the loop that takes
runs of pieces from the session's picker, fetches them and hands every piece back to the
session's own verification and write path.

The HTTP/1.1 framing is the engine's ``httpclient.ResponseReader``; what the answer must be is
``response.judge_head``/``judge_body``; which URLs and ranges is ``mapping.plan_run``. Timeouts,
redirects, reconnects and the back-off live here.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import anyio
import anyio.abc

from ...errors import (
    HttpError,
    ProxyError,
    WebSeedError,
    WebSeedRangeError,
    WebSeedRefused,
    WebSeedStatusError,
)
from ...formats.bitfield import Bitfield
from ...formats.metainfo import Torrent
from ...version import USER_AGENT
from ..httpclient import ResponseReader
from ..httpclient.client import remote_host
from ..netbind import NetBind
from ..proxy.dial import open_tcp
from ..proxy.settings import ProxyConfig
from ..ssrf import is_local, web_seed_hop_refused
from .mapping import FileRange, Origin, parse_url, pieces_without, plan_run, range_request
from .response import Backoff, RangeSkimmer, Redirect, WholeFile, judge_body, judge_head

__all__ = [
    "MAX_REDIRECTS",
    "PIPELINE_DEPTH",
    "RUN_BYTES",
    "WHOLE_FILE_RUN_BYTES",
    "RangeClient",
    "WebSeed",
    "WebSeedHost",
    "WebSeedKey",
    "WebSeedState",
]

log = logging.getLogger("torrent_engine.net.webseed")

MAX_REDIRECTS = 5
RUN_BYTES = 1024 * 1024  # a run of pieces asked for in one go (at least one piece)
# ... and of a server that sends whole files for ranges: each run then costs the file up to its
# end, so fewer, larger runs
WHOLE_FILE_RUN_BYTES = 16 * 1024 * 1024
PIPELINE_DEPTH = 8  # range requests sent on one keep-alive connection before their answers
CONNECT_TIMEOUT = 10.0
REQUEST_TIMEOUT = 60.0  # for one range, from sending the request to its last byte
IDLE_POLL = 1.0  # how often an idle web seed looks for pieces again
BANNED = "banned: it sent data that failed the hash check"

WebSeedKey = tuple[str, int]  # (URL, 0): the web seed's key in the picker and the session's bans


class RangeClient:
    """GETs byte ranges over one keep-alive HTTP/1.1 connection at a time (reconnecting when
    the origin changes or the server closed it), following at most ``MAX_REDIRECTS`` redirects;
    a redirect of a file URL is remembered for that file's later ranges."""

    def __init__(self, *, user_agent: str = USER_AGENT, ssl_context: ssl.SSLContext | None = None,
                 connect_timeout: float = CONNECT_TIMEOUT, request_timeout: float = REQUEST_TIMEOUT,
                 proxy: ProxyConfig | None = None,
                 netbind: Callable[[], NetBind | None] | None = None,
                 ssrf: Callable[[], bool] | None = None) -> None:
        self.user_agent = user_agent
        self.proxy = proxy  # connections go through it when set
        self.netbind = netbind  # where each connection's socket is bound (asked anew each time)
        self.ssl_context = ssl_context
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout
        self.requests = 0  # requests sent (for tests and logs)
        self.pipelined = 0  # of which sent in a pipelined batch
        self.connections = 0  # connections opened
        self.whole_files = False  # the server answered a range with the whole file (ignores Range)
        self._stream: anyio.abc.ByteStream | None = None
        self._after = b""  # bytes read past the last answer on the connection (the next answer's)
        self._origin_key: tuple[bool, str, int] | None = None
        self._redirected: dict[str, str] = {}
        self.ssrf = ssrf  # whether SSRF mitigation judges each request (asked anew; None: no)
        self._address: str | None = None  # what the connection reached (None: unknown, a proxy's)
        self._answered_global = False  # the last answer came from a global address
        self._global_redirects: set[str] = set()  # URLs a web seed at a global address redirected to

    async def fetch(self, asked: FileRange) -> bytes:
        """The bytes of ``asked``; ``WebSeedError`` (typed, naming the URL) for any failure."""
        url = self._redirected.get(asked.url, asked.url)
        for _ in range(MAX_REDIRECTS + 1):
            result = await self._get(url, asked)
            if isinstance(result, Redirect):
                if self._answered_global or url in self._global_redirects:
                    self._global_redirects.add(result.location)
                url = result.location
                continue
            if url != asked.url:
                self._redirected[asked.url] = url
            return result
        raise WebSeedError(f"more than {MAX_REDIRECTS} redirects", asked.url)

    async def _get(self, url: str, asked: FileRange) -> bytes | Redirect:
        origin = parse_url(url)
        request = range_request(origin, asked.file_offset, asked.length, self.user_agent)
        reused = self._stream is not None and self._origin_key == origin.key
        try:
            try:
                return await self._exchange(origin, url, request, asked)
            except TimeoutError:
                raise
            except (WebSeedError, OSError, anyio.EndOfStream, anyio.BrokenResourceError,
                    anyio.ClosedResourceError) as exc:
                await self.aclose()
                if not reused or isinstance(exc, WebSeedError) and not isinstance(exc, _Closed):
                    raise
            # The server closed the kept-alive connection before answering: once more, afresh.
            return await self._exchange(origin, url, request, asked)
        except TimeoutError:  # (an OSError too: first)
            await self.aclose()
            raise WebSeedError(f"no answer within {self.connect_timeout:g} s (connect) or "
                               f"{self.request_timeout:g} s (range)", url) from None
        except (OSError, anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
            await self.aclose()
            raise WebSeedError(_describe(exc), url) from None
        except WebSeedError:
            await self.aclose()
            raise

    async def _exchange(self, origin: Origin, url: str, request: bytes, asked: FileRange) -> bytes | Redirect:
        stream = await self._connection(origin)
        why = self._refused(url)
        if why is not None:
            raise WebSeedRefused(why, url)
        self._answered_global = not is_local(self._address if self._address is not None else origin.host)
        self.requests += 1
        self._after = b""  # (nothing is owed on this connection: stray bytes are no answer of ours)
        with anyio.fail_after(self.request_timeout):
            await stream.send(request)
            return await self._answer(stream, url, asked, first=True)

    async def _answer(self, stream: anyio.abc.ByteStream, url: str, asked: FileRange, *,
                      first: bool) -> bytes | Redirect:
        """Read one answer to a range request from ``stream``: the range's bytes, or a redirect
        (the connection is closed then, as it is after a whole file was skimmed)."""
        reader = ResponseReader(max_body=asked.length, stop_after_head=True)
        got_any = bool(self._after)
        if self._after:  # the start of this answer came with the previous one (pipelining)
            _feed(reader, self._after, url, asked)
            self._after = b""
        while reader.head is None:
            try:
                data = await stream.receive(256 * 1024)
            except anyio.EndOfStream:
                if first and not got_any:
                    raise _Closed("connection closed before an answer", url) from None
                raise WebSeedError("connection closed before the HTTP head was complete", url) from None
            got_any = True
            _feed(reader, data, url, asked)
        status, _, headers = reader.head
        judged = judge_head(status, headers, asked, url)
        if isinstance(judged, Redirect):
            await self.aclose()  # (its body is of no use: do not read it)
            return judged
        if isinstance(judged, WholeFile):
            if not self.whole_files:
                log.info("web seed %s ignores Range and sends whole files: asking it for larger spans", url)
            self.whole_files = True
            body = await self._skim(stream, reader.take_buffered(), url, asked)
            await self.aclose()  # the rest of the file is not read: the connection is of no more use
            return body
        _feed(reader, None, url, asked)
        while reader.response is None:
            try:
                data = await stream.receive(256 * 1024)
            except anyio.EndOfStream:
                _feed_eof(reader, url, asked)
                break
            _feed(reader, data, url, asked)
        response = reader.response
        assert response is not None
        self._after = reader.take_buffered()  # what follows belongs to the next answer
        judge_body(len(response.body), asked, url)
        headers = response.headers
        if ("close" in headers.get("connection", "").lower() or
                ("content-length" not in headers and "chunked" not in headers.get("transfer-encoding", ""))):
            await self.aclose()  # the server ends the connection (or ended the body by closing it)
        return response.body

    @staticmethod
    async def _skim(stream: anyio.abc.ByteStream, first: bytes, url: str, asked: FileRange) -> bytes:
        skimmer = RangeSkimmer(asked)
        skimmer.feed(first)
        while not skimmer.done:
            try:
                skimmer.feed(await stream.receive(256 * 1024))
            except anyio.EndOfStream:
                raise WebSeedRangeError(f"the whole file sent for a range ended after {skimmer.seen} bytes",
                                        url) from None
        return skimmer.data

    async def fetch_run(self, ranges: Sequence[FileRange]) -> AsyncGenerator[bytes, None]:
        """Each range's bytes, in order. Ranges on the connection's origin are pipelined (up to
        ``PIPELINE_DEPTH`` requests sent before their answers are read); whatever a pipelined
        exchange did not answer cleanly is asked again alone by ``fetch``, whose errors count."""
        i = 0
        while i < len(ranges):
            batch = self._pipelinable(ranges[i:i + PIPELINE_DEPTH])
            answered = await self._pipelined(batch) if len(batch) > 1 else []
            for data in answered:
                yield data
            i += len(answered)
            if len(answered) < max(len(batch), 1):  # not pipelined, or cut short: the next alone
                yield await self.fetch(ranges[i])
                i += 1

    def _pipelinable(self, ranges: Sequence[FileRange]) -> list[FileRange]:
        """The leading ranges that can share one pipelined exchange: one origin, kept alive, a
        server that answers ranges (not one that sends whole files)."""
        if self.whole_files or self._stream is None:
            return list(ranges[:1])
        out: list[FileRange] = []
        for asked in ranges:
            url = self._redirected.get(asked.url, asked.url)
            if parse_url(url).key != self._origin_key or self._refused(url) is not None:
                break
            out.append(asked)
        return out

    def _refused(self, url: str) -> str | None:
        """Why a request for ``url`` on the open connection may not be sent (None: it may)."""
        if self.ssrf is None or not self.ssrf():
            return None
        return web_seed_hop_refused(url, self._address, redirected_from_global=url in self._global_redirects)

    async def _pipelined(self, batch: list[FileRange]) -> list[bytes]:
        """Send every request of ``batch`` at once on the open connection, then read the answers
        in order; the bytes of those answered cleanly (a prefix of ``batch``)."""
        stream = self._stream
        assert stream is not None
        urls = [self._redirected.get(asked.url, asked.url) for asked in batch]
        requests = b"".join(range_request(parse_url(url), asked.file_offset, asked.length, self.user_agent)
                            for url, asked in zip(urls, batch, strict=True))
        out: list[bytes] = []
        try:
            with anyio.fail_after(self.request_timeout):
                await stream.send(requests)
                self.requests += len(batch)
                self.pipelined += len(batch)
                for url, asked in zip(urls, batch, strict=True):
                    data = await self._answer(stream, url, asked, first=not out)
                    if isinstance(data, Redirect) or self._stream is not stream:
                        if not isinstance(data, Redirect):
                            out.append(data)  # (a skimmed whole file, or the server closed after it)
                        break
                    out.append(data)
        except (TimeoutError, WebSeedError, OSError, anyio.EndOfStream, anyio.BrokenResourceError,
                anyio.ClosedResourceError):
            pass  # what was not answered is asked again alone, and fails there if it must
        if len(out) < len(batch):
            await self.aclose()  # answers still in flight belong to requests we ask again
        return out

    async def _connection(self, origin: Origin) -> anyio.abc.ByteStream:
        if self._stream is not None and self._origin_key == origin.key:
            return self._stream
        await self.aclose()
        # (through a proxy: its tunnel has its own connect_timeout, the TLS on top this one)
        with anyio.fail_after(self.connect_timeout * (2 if self.proxy is not None else 1)):
            try:
                stream = await open_tcp(origin.host, origin.port, proxy=self.proxy,
                                        timeout=self.connect_timeout, tls=origin.tls,
                                        ssl_context=self.ssl_context,
                                        bind=self.netbind() if self.netbind is not None else None)
            except anyio.EndOfStream:
                raise WebSeedError("connection closed during the TLS handshake") from None
            except ProxyError as exc:
                raise WebSeedError(str(exc)) from None
        self.connections += 1
        self._stream, self._origin_key = stream, origin.key
        self._address = remote_host(stream) if self.proxy is None else None
        return stream

    async def aclose(self) -> None:
        """Close the connection, if one is open."""
        stream, self._stream, self._origin_key = self._stream, None, None
        self._after = b""
        if stream is not None:
            await anyio.aclose_forcefully(stream)


class _Closed(WebSeedError):
    """A kept-alive connection was closed by the server before any byte of the answer."""


def _feed(reader: ResponseReader, data: bytes | None, url: str, asked: FileRange) -> None:
    """``data`` into the reader (None: go on past a head it stopped at)."""
    try:
        if data is None:
            reader.continue_body()
        else:
            reader.feed(data)
    except HttpError as exc:
        _explain(reader, url, asked)
        raise WebSeedError(exc.reason, url) from None


def _feed_eof(reader: ResponseReader, url: str, asked: FileRange) -> None:
    try:
        reader.feed_eof()
    except HttpError as exc:
        _explain(reader, url, asked)
        raise WebSeedError(exc.reason, url) from None


def _explain(reader: ResponseReader, url: str, asked: FileRange) -> None:
    """A framing error after the head: the head's own fault (404, a wrong range) says more."""
    if reader.head is not None:
        status, _, headers = reader.head
        judge_head(status, headers, asked, url)


def _describe(exc: BaseException) -> str:
    cause = exc.__cause__
    if isinstance(cause, OSError) and str(exc) == "All connection attempts failed":
        exc = cause  # anyio wraps the real reason (refused, unreachable)
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError)):
        return "connection lost"
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class WebSeedHost(Protocol):
    """What a web seed needs of its session: the picker's runs, the session's block path, the
    rate limits and the bans. ``key`` is the web seed's ``WebSeedKey``."""

    @property
    def torrent(self) -> Torrent:
        """The torrent's metainfo."""

    def downloading(self) -> bool:
        """Whether pieces are wanted at all now (not seeding, not paused)."""

    def is_banned(self, key: WebSeedKey) -> bool:
        """Whether the web seed was banned for data that failed the hash check."""

    def pick_run(self, key: WebSeedKey, max_pieces: int, *, lowest: bool = False) -> list[int]:
        """Consecutive fresh pieces for the web seed, now recorded as requested by it (from the
        lowest fresh piece, when ``lowest``)."""

    def set_have(self, key: WebSeedKey, pieces: Bitfield) -> None:
        """What the web seed has, once it turned out to lack some files (else: everything)."""

    def release(self, key: WebSeedKey) -> None:
        """Give back every piece asked of the web seed and not yet delivered."""

    async def received(self, key: WebSeedKey, nbytes: int) -> None:
        """Count bytes that came from the web seed (stats, rates), waiting on the rate limits."""

    async def deliver(self, key: WebSeedKey, index: int, data: memoryview) -> None:
        """A whole piece from the web seed: into the session's verification and write path."""


@dataclass
class WebSeedState:
    """What the session shows about one web seed."""

    url: str
    downloaded: int = 0
    last_error: str = ""
    failing: bool = False
    gave_up: str = ""  # why the web seed is no longer used ("" while it is)
    missing_files: tuple[int, ...] = ()  # files it answered 404/410 for (multi-file): not asked again


class _FileMissing(Exception):
    """The server has no such file (404/410) of a multi-file torrent."""

    def __init__(self, file_index: int, error: WebSeedStatusError) -> None:
        super().__init__(str(error))
        self.file_index = file_index
        self.error = error


class WebSeed:
    """One web seed's life in a session: pick a run, fetch it range by range, deliver each piece
    as soon as its bytes are in; on failure give the run back and back off; give up after
    ``Backoff.give_up_after`` failures in a row or once banned.

    A multi-file torrent's web seed that lacks a file (404/410: a mirror with some files
    missing or updated) is not asked for that file's pieces again, as libtorrent does; it is
    given up on when it has none of the files left."""

    def __init__(self, url: str, host: WebSeedHost, *, client: RangeClient | None = None,
                 backoff: Backoff | None = None, run_bytes: int = RUN_BYTES) -> None:
        self.url = url
        self.key: WebSeedKey = (url, 0)
        self.host = host
        self.client = client if client is not None else RangeClient()
        self.backoff = backoff if backoff is not None else Backoff()
        self.run_bytes = run_bytes
        self.state = WebSeedState(url)

    async def run(self) -> None:
        """Serve the session until it is complete-and-seeding forever, the web seed is given up
        on, or the owning task group is cancelled."""
        try:
            parse_url(self.url)
        except WebSeedError as exc:
            self._give_up(exc.reason)
            return
        try:
            while True:
                if self.host.is_banned(self.key):
                    self._give_up(BANNED)
                    return
                pieces = (self.host.pick_run(self.key, self._max_pieces(), lowest=self.client.whole_files)
                          if self.host.downloading() else [])
                if not pieces:
                    await self.client.aclose()  # nothing to do: do not hold the server's connection
                    await anyio.sleep(IDLE_POLL)
                    continue
                try:
                    await self._fetch_run(pieces)
                except _FileMissing as missing:
                    self.host.release(self.key)
                    if not self._lacks_file(missing):
                        return
                except WebSeedRefused as exc:  # (never tried again, as libtorrent's)
                    self.host.release(self.key)
                    self.state.last_error = exc.reason
                    self._give_up(exc.reason)
                    return
                except WebSeedError as exc:
                    self.host.release(self.key)
                    delay = self.backoff.failed(getattr(exc, "retry_after", None))
                    self.state.last_error, self.state.failing = exc.reason, True
                    if delay is None:
                        self._give_up(f"{self.backoff.failures} failures in a row, the last: {exc.reason}")
                        return
                    log.info("web seed %s failed (%s); next try in %.0f s", self.url, exc, delay)
                    await anyio.sleep(delay)
                else:
                    self.backoff.succeeded()
                    self.state.failing = False
        finally:
            self.host.release(self.key)
            with anyio.CancelScope(shield=True):
                await self.client.aclose()

    def _lacks_file(self, missing: _FileMissing) -> bool:
        """Stop asking for the pieces of a file the server does not have; False (given up) when
        no piece is left to ask it for."""
        torrent = self.host.torrent
        lacking = {*self.state.missing_files, missing.file_index}
        self.state.missing_files = tuple(sorted(lacking))
        self.state.last_error = missing.error.reason
        have = pieces_without(torrent, lacking)
        if not len(have):
            self._give_up(f"it has none of the torrent's files (the last: {missing.error})")
            return False
        log.info("web seed %s lacks %s: %s; its other files are still used", self.url,
                 "/".join(torrent.files[missing.file_index].path), missing.error.reason)
        self.host.set_have(self.key, have)
        return True

    def _give_up(self, why: str) -> None:
        self.state.gave_up = why
        log.warning("web seed %s given up: %s", self.url, why)

    def _max_pieces(self) -> int:
        run_bytes = max(self.run_bytes, WHOLE_FILE_RUN_BYTES) if self.client.whole_files else self.run_bytes
        return max(1, run_bytes // self.host.torrent.piece_length)

    async def _fetch_run(self, pieces: list[int]) -> None:
        torrent = self.host.torrent
        run = plan_run(torrent, self.url, pieces[0], pieces[-1])
        buf = bytearray(run.size)  # pad bytes stay zero
        view = memoryview(buf)
        pending = list(pieces)

        async def deliver_up_to(offset: int) -> None:
            while pending and not self.host.is_banned(self.key):
                start, end = run.piece_span(pending[0], torrent.piece_size(pending[0]))
                if end > offset:
                    return
                await self.host.deliver(self.key, pending.pop(0), view[start:end])

        answers = self.client.fetch_run(run.ranges)
        try:
            for asked in run.ranges:
                await deliver_up_to(asked.target)
                if self.host.is_banned(self.key):
                    return  # (run() gives up on it; the picker gets the rest back)
                try:
                    data = await anext(answers)
                except WebSeedStatusError as exc:
                    if exc.status in (404, 410) and torrent.is_multi_file:
                        raise _FileMissing(asked.file_index, exc) from None
                    raise
                buf[asked.target:asked.target + len(data)] = data
                self.state.downloaded += len(data)
                await self.host.received(self.key, len(data))
        finally:
            await answers.aclose()
        await deliver_up_to(run.size)
