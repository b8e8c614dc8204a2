"""BEP 19 web seeds, sans-I/O: judging a server's answer to a range request, and the back-off
between failed attempts.

``judge_head`` looks at the status and headers before any body byte is read, so a 404 page or
a range other than the one asked for is refused at once with a typed error
(``WebSeedStatusError``, ``WebSeedRangeError``), and a whole file sent for a range (the server
ignores ``Range``) is recognised, to be skimmed with ``RangeSkimmer``; ``judge_body`` checks the
length of what came. Framing (Content-Length, chunked) is the HTTP reader's business, not this module's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urljoin

from ...errors import WebSeedError, WebSeedRangeError, WebSeedStatusError
from .mapping import FileRange

__all__ = ["Backoff", "RangeSkimmer", "Redirect", "WholeFile", "judge_body", "judge_head"]

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", re.ASCII)


@dataclass(frozen=True, slots=True)
class Redirect:
    """The server sent the request elsewhere: ask ``location`` (absolute) instead."""

    location: str


@dataclass(frozen=True, slots=True)
class WholeFile:
    """The server ignored ``Range`` and sends the whole file (HTTP 200, as Python's http.server
    and many simple hosts do): the range asked for is to be skimmed from it (``RangeSkimmer``)."""


class RangeSkimmer:
    """Takes the bytes of ``asked`` out of a whole file's body as it passes; ``done`` once they
    are all in (the rest of the body need not be read)."""

    def __init__(self, asked: FileRange) -> None:
        self._start = asked.file_offset
        self._end = asked.file_offset + asked.length
        self.seen = 0  # body bytes passed so far
        self._out = bytearray()

    def feed(self, data: bytes) -> None:
        """More of the body."""
        low, high = max(self._start - self.seen, 0), min(self._end - self.seen, len(data))
        if high > low:
            self._out += data[low:high]
        self.seen += len(data)

    @property
    def done(self) -> bool:
        """Whether every byte of the range has passed."""
        return self.seen >= self._end

    @property
    def data(self) -> bytes:
        """The range's bytes (all of them once ``done``)."""
        return bytes(self._out)


def judge_head(status: int, headers: Mapping[str, str], asked: FileRange,
               url: str) -> Redirect | WholeFile | None:
    """None when the body that follows is exactly the bytes asked for (206 with the same range,
    or 200 with the whole file when the whole file was asked for); ``WholeFile`` when it is the
    whole file though a part was asked for; a ``Redirect``; else a typed error. ``headers``
    have lower-case names."""
    if status in REDIRECT_STATUSES:
        location = headers.get("location", "").strip()
        if not location:
            raise WebSeedStatusError(f"HTTP {status} redirect without a Location", url, status=status)
        try:
            return Redirect(urljoin(url, location))
        except ValueError:
            raise WebSeedError(f"bad redirect Location {location[:60]!r}", url) from None
    if status not in (200, 206):
        retry_after = _retry_after(headers.get("retry-after", ""))
        raise WebSeedStatusError(_status_text(status, asked), url, status=status, retry_after=retry_after)
    encoding = headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", ""):
        raise WebSeedRangeError(f"body sent with Content-Encoding {encoding!r}, asked for identity", url)
    if "multipart/byteranges" in headers.get("content-type", "").lower():
        raise WebSeedRangeError("multipart/byteranges answer to a single range", url)
    length = _content_length(headers, url)
    wanted = f"bytes {asked.file_offset}-{asked.file_offset + asked.length - 1}"
    if status == 200:
        if length is not None and length != asked.file_size:
            raise WebSeedRangeError(
                f"the file is {length} bytes on the server, the torrent says {asked.file_size}", url)
        if asked.file_offset == 0 and asked.length == asked.file_size:
            return None
        if "chunked" in headers.get("transfer-encoding", "").lower():
            raise WebSeedRangeError(f"server ignored the Range header (HTTP 200, chunked, for {wanted})", url)
        return WholeFile()
    text = headers.get("content-range", "").strip()
    match = _CONTENT_RANGE.fullmatch(text)
    if match is None:
        raise WebSeedRangeError(f"HTTP 206 with a missing or malformed Content-Range {text[:60]!r}", url)
    first, last, total = int(match[1]), int(match[2]), match[3]
    if (first, last) != (asked.file_offset, asked.file_offset + asked.length - 1):
        raise WebSeedRangeError(f"Content-Range {text!r} does not match the {wanted} asked for", url)
    if total != "*" and int(total) != asked.file_size:
        raise WebSeedRangeError(
            f"the file is {int(total)} bytes on the server, the torrent says {asked.file_size}", url)
    if length is not None and length != asked.length:
        raise WebSeedRangeError(f"Content-Length {length} for a range of {asked.length} bytes", url)
    return None


def judge_body(body_length: int, asked: FileRange, url: str) -> None:
    """The whole body arrived: it must be exactly the range's length."""
    if body_length != asked.length:
        raise WebSeedRangeError(f"body of {body_length} bytes for a range of {asked.length} bytes", url)


def _content_length(headers: Mapping[str, str], url: str) -> int | None:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return None  # (the reader ignores Content-Length then too; judge_body checks the size)
    text = headers.get("content-length")
    if text is None:
        return None
    text = text.split(",")[0].strip()
    if not (text.isascii() and text.isdigit()):
        raise WebSeedRangeError(f"bad Content-Length {text[:20]!r}", url)
    return int(text)


def _retry_after(text: str) -> float | None:
    text = text.strip()
    return float(text) if text.isascii() and text.isdigit() else None  # (an HTTP-date: ignored)


def _status_text(status: int, asked: FileRange) -> str:
    if status in (404, 410):
        return f"HTTP {status}: the server does not have the file"
    if status == 416:
        return (f"HTTP 416: range {asked.file_offset}+{asked.length} not satisfiable "
                f"(the file on the server is shorter than the torrent's {asked.file_size} bytes)")
    return f"HTTP {status}"


class Backoff:
    """Exponential back-off between failed attempts on one web seed, bounded, with a limit.

    ``failed`` returns how long to wait before the next attempt, or None once ``give_up_after``
    failures came in a row (the web seed is given up on). A success starts counting afresh.
    """

    def __init__(self, *, base: float = 2.0, cap: float = 120.0, give_up_after: int = 6) -> None:
        self.base = base
        self.cap = cap
        self.give_up_after = give_up_after
        self.failures = 0

    def failed(self, retry_after: float | None = None) -> float | None:
        """One more failure in a row: the delay before trying again, or None to give up."""
        self.failures += 1
        if self.failures >= self.give_up_after:
            return None
        delay = min(self.cap, self.base * 2.0 ** (self.failures - 1))
        if retry_after is not None:
            delay = min(self.cap, max(delay, retry_after))
        return delay

    def succeeded(self) -> None:
        """An attempt succeeded: the next failure waits the shortest time again."""
        self.failures = 0
