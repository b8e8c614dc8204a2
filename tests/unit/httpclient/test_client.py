"""The engine's HTTP client: a response parsed from bytes (``reader``), a GET's failures as
``HttpError`` (``client``); what trackers make of it is in ``tests/unit/tracker``."""

from __future__ import annotations

import socket
from pathlib import Path

import anyio
import anyio.abc
import pytest

from tests.unit.tracker._tracker_servers import self_signed, serving
from torrent_engine.errors import HttpError, TrackerError
from torrent_engine.net.httpclient import ResponseReader, http_get

pytestmark = pytest.mark.anyio


async def test_bad_urls_are_http_errors() -> None:
    for url in ("ftp://t/announce", "http:///announce", "http://t:99999/announce", "http://t/a b", "http://[::1/a"):
        with pytest.raises(HttpError):
            await http_get(url, timeout=2)


def test_response_reader_rejects_malformed_heads() -> None:
    for data in (
        b"SSH-2.0-OpenSSH\r\n\r\n",
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nnocolon\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ):
        with pytest.raises(HttpError):
            ResponseReader().feed(data)
    reader = ResponseReader()
    reader.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    with pytest.raises(HttpError, match="closed before"):
        reader.feed_eof()
    with pytest.raises(HttpError, match="too large"):
        ResponseReader().feed(b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 10000)


def test_content_length_of_non_ascii_digits_is_an_http_error() -> None:
    # str.isdigit() accepts '²' (latin-1 0xb2), which int() then refuses with a ValueError.
    with pytest.raises(HttpError, match="Content-Length"):
        ResponseReader().feed(b"HTTP/1.1 200 OK\r\nContent-Length: \xb2\r\n\r\n")


async def test_a_close_during_the_tls_handshake_is_an_http_error(tmp_path: Path) -> None:
    _, client_ctx = self_signed(tmp_path)

    async def close(stream: anyio.abc.SocketStream) -> None:
        await stream.aclose()

    async with serving(close) as port:
        with pytest.raises(HttpError, match="closed|lost"):
            await http_get(f"https://127.0.0.1:{port}/announce", timeout=5, ssl_context=client_ctx)


async def test_a_refused_get_names_the_url_and_is_no_tracker_error() -> None:
    # a block list or a .torrent URL that cannot be had is an HTTP failure, not a tracker's:
    # the callers say what they were fetching
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/list.p2p"
    with pytest.raises(HttpError) as caught:
        await http_get(url, timeout=5)
    assert not isinstance(caught.value, TrackerError)
    assert (caught.value.url, caught.value.reason) == (url, "connection refused")
