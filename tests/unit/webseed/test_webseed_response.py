"""Judging a web seed's answer: status, Content-Range against what was asked, lengths; and the
back-off between failures. Bytes and headers only."""

from __future__ import annotations

import pytest

from torrent_engine.errors import WebSeedError, WebSeedRangeError, WebSeedStatusError
from torrent_engine.net.httpclient import ResponseReader
from torrent_engine.net.webseed.mapping import FileRange
from torrent_engine.net.webseed.response import (
    Backoff,
    RangeSkimmer,
    Redirect,
    WholeFile,
    judge_body,
    judge_head,
)

URL = "http://m/pub/f.bin"
ASKED = FileRange(url=URL, file_index=0, file_offset=1000, length=500, file_size=10_000, target=0)
WHOLE = FileRange(url=URL, file_index=0, file_offset=0, length=10_000, file_size=10_000, target=0)


def head(raw: bytes) -> tuple[int, dict[str, str]]:
    """Status and headers as the tracker's HTTP reader parses them (the shell's reader)."""
    reader = ResponseReader(max_body=1 << 20)
    reader.feed(raw)
    assert reader.head is not None
    status, _, headers = reader.head
    return status, headers


def test_matching_206_is_accepted() -> None:
    status, headers = head(b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 1000-1499/10000\r\n"
                           b"Content-Length: 500\r\n\r\n")
    assert judge_head(status, headers, ASKED, URL) is None
    judge_body(500, ASKED, URL)


def test_206_with_unknown_total_and_chunked_body_is_accepted() -> None:
    status, headers = head(b"HTTP/1.1 206 OK\r\nContent-Range: bytes 1000-1499/*\r\n"
                           b"Transfer-Encoding: chunked\r\n\r\n")
    assert judge_head(status, headers, ASKED, URL) is None


@pytest.mark.parametrize(("raw", "words"), [
    (b"HTTP/1.1 206 OK\r\nContent-Range: bytes 0-499/10000\r\n\r\n", "does not match the bytes 1000-1499"),
    (b"HTTP/1.1 206 OK\r\nContent-Range: bytes 1000-1999/10000\r\n\r\n", "does not match"),
    (b"HTTP/1.1 206 OK\r\nContent-Range: bytes 1000-1499/9999\r\n\r\n", "9999 bytes on the server"),
    (b"HTTP/1.1 206 OK\r\n\r\n", "missing or malformed Content-Range"),
    (b"HTTP/1.1 206 OK\r\nContent-Range: items 1-2/3\r\n\r\n", "malformed Content-Range"),
    (b"HTTP/1.1 206 OK\r\nContent-Range: bytes 1000-1499/10000\r\nContent-Length: 501\r\n\r\n",
     "Content-Length 501 for a range of 500"),
    (b"HTTP/1.1 206 OK\r\nContent-Range: bytes 1000-1499/10000\r\nContent-Encoding: gzip\r\n\r\n",
     "Content-Encoding 'gzip'"),
    (b"HTTP/1.1 206 OK\r\nContent-Type: multipart/byteranges; boundary=x\r\n\r\n", "multipart"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "ignored the Range header"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 9999\r\n\r\n", "9999 bytes on the server"),
])
def test_wrong_range_answers_are_range_errors(raw: bytes, words: str) -> None:
    status, headers = head(raw)
    with pytest.raises(WebSeedRangeError, match=words) as info:
        judge_head(status, headers, ASKED, URL)
    assert info.value.url == URL


def test_a_whole_file_for_a_range_is_recognised_and_the_range_skimmed_from_it() -> None:
    for raw in (b"HTTP/1.1 200 OK\r\nContent-Length: 10000\r\n\r\n", b"HTTP/1.1 200 OK\r\n\r\n"):
        status, headers = head(raw)
        assert isinstance(judge_head(status, headers, ASKED, URL), WholeFile)
    body = bytes(i % 251 for i in range(10_000))
    skimmer = RangeSkimmer(ASKED)
    for start in range(0, 1665, 333):  # in odd pieces across the range's edges
        assert not skimmer.done
        skimmer.feed(body[start:start + 333])
    assert skimmer.done and skimmer.data == body[1000:1500] and skimmer.seen == 1665


def test_200_is_fine_for_a_whole_file_of_the_right_size() -> None:
    status, headers = head(b"HTTP/1.1 200 OK\r\nContent-Length: 10000\r\n\r\n")
    assert judge_head(status, headers, WHOLE, URL) is None
    status, headers = head(b"HTTP/1.1 200 OK\r\nContent-Length: 12345\r\n\r\n")
    with pytest.raises(WebSeedRangeError, match="12345 bytes on the server, the torrent says 10000"):
        judge_head(status, headers, WHOLE, URL)


@pytest.mark.parametrize(("raw", "status", "words", "retry"), [
    (b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\n", 404, "does not have the file", None),
    (b"HTTP/1.1 410 Gone\r\n\r\n", 410, "does not have the file", None),
    (b"HTTP/1.1 416 Range Not Satisfiable\r\n\r\n", 416, "shorter than the torrent's 10000", None),
    (b"HTTP/1.1 503 Busy\r\nRetry-After: 30\r\n\r\n", 503, "HTTP 503", 30.0),
    (b"HTTP/1.1 500 Oops\r\nRetry-After: Fri, 31 Dec 1999 23:59:59 GMT\r\n\r\n", 500, "HTTP 500", None),
    (b"HTTP/1.1 302 Found\r\n\r\n", 302, "redirect without a Location", None),
])
def test_error_statuses_are_status_errors(raw: bytes, status: int, words: str, retry: float | None) -> None:
    code, headers = head(raw)
    with pytest.raises(WebSeedStatusError, match=words) as info:
        judge_head(code, headers, ASKED, URL)
    assert info.value.status == status and info.value.retry_after == retry


def test_redirects_are_resolved_against_the_url() -> None:
    code, headers = head(b"HTTP/1.1 301 Moved\r\nLocation: /mirror/f.bin\r\n\r\n")
    assert judge_head(code, headers, ASKED, URL) == Redirect("http://m/mirror/f.bin")
    code, headers = head(b"HTTP/1.1 307 Moved\r\nLocation: https://other:8443/x\r\n\r\n")
    assert judge_head(code, headers, ASKED, URL) == Redirect("https://other:8443/x")


def test_bad_content_length_is_a_typed_error() -> None:
    # (the tracker reader refuses it first; a header map from elsewhere is judged the same)
    with pytest.raises(WebSeedRangeError, match="bad Content-Length"):
        judge_head(206, {"content-range": "bytes 1000-1499/10000", "content-length": "5x"}, ASKED, URL)


def test_short_or_long_bodies_are_range_errors() -> None:
    for size in (0, 499, 501):
        with pytest.raises(WebSeedRangeError, match=f"body of {size} bytes for a range of 500"):
            judge_body(size, ASKED, URL)


def test_errors_are_web_seed_errors() -> None:
    assert issubclass(WebSeedStatusError, WebSeedError) and issubclass(WebSeedRangeError, WebSeedError)


def test_backoff_doubles_is_bounded_honours_retry_after_and_gives_up() -> None:
    b = Backoff(base=2, cap=20, give_up_after=6)
    assert [b.failed() for _ in range(5)] == [2, 4, 8, 16, 20]
    assert b.failed() is None  # the sixth failure in a row: give up
    b = Backoff(base=2, cap=20, give_up_after=6)
    assert b.failed(retry_after=10) == 10
    assert b.failed(retry_after=1000) == 20  # the server's wish, bounded
    b.succeeded()
    assert b.failed() == 2
