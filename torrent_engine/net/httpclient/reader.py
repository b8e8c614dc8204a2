"""HTTP/1.1 responses, sans-I/O: ``ResponseReader`` takes bytes as they arrive and gives one
``HttpResponse`` (status line, headers, Content-Length, chunked or read-to-close bodies,
gzip/deflate, a size cap at every stage). Shared by the engine's HTTP client (``client``) and the
web seeds' kept-alive range requests; anything malformed is an ``HttpError``.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

from ...errors import HttpError

__all__ = ["MAX_BODY", "MAX_HEAD_SIZE", "HttpResponse", "ResponseReader"]

MAX_BODY = 2 * 1024 * 1024  # a body's default cap, on the wire and once decompressed
MAX_HEAD_SIZE = 32 * 1024


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
    closes; ``response`` is set once complete. Raises HttpError on anything malformed or over
    ``max_body`` (checked on the wire size and again after decompression)."""

    max_body: int = MAX_BODY
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
    _version: bytes = field(default=b"", init=False)  # the status line's "HTTP/1.x"
    _fed: bool = field(default=False, init=False)
    _closed_end: bool = field(default=False, init=False)  # the body ended with the connection
    _remaining: int = field(default=0, init=False)
    _body: bytearray = field(default_factory=bytearray, init=False, repr=False)

    @property
    def head(self) -> tuple[int, str, dict[str, str]] | None:
        """Status, reason and headers (lower-case names) once the head is parsed, before the
        body is complete (a caller may refuse the body on them); None until then."""
        return None if self._mode == "head" else (self._status, self._reason, self._headers)

    @property
    def started(self) -> bool:
        """Whether any byte of the response has been fed."""
        return self._fed

    @property
    def keeps_alive(self) -> bool:
        """Whether the connection may carry another request: the response is complete, its end
        was told by its framing (not by a close), nothing came after it, and the server keeps
        connections (HTTP/1.1 unless ``Connection: close``; HTTP/1.0 only with ``keep-alive``)."""
        if self.response is None or self._closed_end or self._buf:
            return False
        tokens = {t.strip().lower() for t in self._headers.get("connection", "").split(",")}
        if self._version == b"HTTP/1.0":
            return "keep-alive" in tokens
        return "close" not in tokens

    def feed(self, data: bytes) -> None:
        """Parse ``data`` received from the server."""
        if data:
            self._fed = True
        if self._mode == "done":
            self._buf += data  # (anything after the response: the connection is not kept)
            return
        self._buf += data
        if self.stop_after_head and self._mode != "head":
            return  # (held for continue_body or take_buffered)
        self._advance()

    def continue_body(self) -> None:
        """After a stop at the head: check the body's declared size and parse on."""
        self.stop_after_head = False
        if self._mode == "length" and self._remaining > self.max_body:
            raise HttpError(f"HTTP body of {self._remaining} bytes is over the {self.max_body} cap")
        self._advance()

    def take_buffered(self) -> bytes:
        """After a stop at the head: the bytes received after it so far (raw body bytes)."""
        data = bytes(self._buf)
        self._buf.clear()
        return data

    def feed_eof(self) -> None:
        """The server closed: finish a response delimited by the close; ``HttpError`` if one is cut
        short."""
        if self._mode == "close":
            self._closed_end = True
            self._finish()
        elif self._mode != "done":
            raise HttpError("connection closed before the HTTP response was complete")

    def _advance(self) -> None:
        while self._mode != "done":
            if self._mode == "head":
                end = self._buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(self._buf) > MAX_HEAD_SIZE:
                        raise HttpError("HTTP response head is too large")
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
                        raise HttpError("HTTP chunk header is too long")
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
                    raise HttpError(f"bad HTTP chunk size {size_text[:20]!r}") from None
                if size < 0:
                    raise HttpError("bad HTTP chunk size")
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
                    raise HttpError("HTTP chunk is not followed by CRLF")
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
            raise HttpError(f"not an HTTP/1.x response: {lines[0][:60]!r}")
        self._version = parts[0]
        self._status = int(parts[1])
        self._reason = parts[2].decode("latin-1") if len(parts) > 2 else ""
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep:
                raise HttpError("malformed HTTP header line")
            key = name.strip().decode("latin-1").lower()
            text = value.strip().decode("latin-1")
            self._headers[key] = f"{self._headers[key]}, {text}" if key in self._headers else text
        if "chunked" in self._headers.get("transfer-encoding", "").lower():
            self._mode = "chunk-size"
        elif "content-length" in self._headers:
            length_text = self._headers["content-length"].split(",")[0].strip()
            if not (length_text.isascii() and length_text.isdigit()):  # isdigit() alone takes '²'
                raise HttpError(f"bad Content-Length {length_text[:20]!r}")
            self._remaining = int(length_text)
            if self._remaining > self.max_body and not self.stop_after_head:
                raise HttpError(f"HTTP body of {self._remaining} bytes is over the {self.max_body} cap")
            self._mode = "length"
        elif self._status in (204, 304) or 100 <= self._status < 200:
            self._mode = "length"
            self._remaining = 0
        else:
            self._mode = "close"

    def _append(self, data: bytes | bytearray) -> None:
        if len(self._body) + len(data) > self.max_body:
            raise HttpError(f"HTTP body is over the {self.max_body} byte cap")
        self._body += data

    def _finish(self) -> None:
        body = bytes(self._body)
        encoding = self._headers.get("content-encoding", "identity").strip().lower()
        if encoding in ("gzip", "x-gzip"):
            body = _inflate(body, zlib.MAX_WBITS | 16, self.max_body)
        elif encoding == "deflate":
            body = _inflate(body, zlib.MAX_WBITS, self.max_body)
        elif encoding not in ("identity", ""):
            raise HttpError(f"unsupported Content-Encoding {encoding!r}")
        self.response = HttpResponse(self._status, self._reason, self._headers, body)
        self._mode = "done"


def _inflate(data: bytes, wbits: int, cap: int) -> bytes:
    """Decompress with a hard output cap, so a compression bomb costs at most ``cap`` bytes."""
    try:
        inflater = zlib.decompressobj(wbits)
        out = inflater.decompress(data, cap + 1)
    except zlib.error as exc:
        raise HttpError(f"bad compressed HTTP body: {exc}") from None
    if len(out) > cap or inflater.unconsumed_tail:
        raise HttpError(f"decompressed HTTP body is over the {cap} byte cap")
    return out


