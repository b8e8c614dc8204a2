"""HTTP(S) tracker client against small servers on 127.0.0.1: the request it sends, redirects,
chunked and gzip bodies, HTTPS, the body cap, timeouts and refused connections."""

from __future__ import annotations

import gzip
from pathlib import Path

import anyio
import anyio.abc
import pytest

from tests.unit.tracker._tracker_servers import (
    HttpRequest,
    announce_body,
    http_response,
    http_tracker,
    self_signed,
)
from torrent_engine.errors import TrackerError, TrackerRefused
from torrent_engine.formats.bencode import encode
from torrent_engine.net.tracker import client, http
from torrent_engine.net.tracker.messages import AnnounceRequest

pytestmark = pytest.mark.anyio

INFO_HASH = b"\x00\x01 %?&=\xff" + b"h" * 12
PEER_ID = b"-TE0100-" + b"p" * 12
REQUEST = AnnounceRequest(info_hash=INFO_HASH, peer_id=PEER_ID, port=6881, left=100, event="started")
PEERS = [("10.0.0.1", 6881), ("10.0.0.2", 6882)]


def fixed(data: bytes):  # type: ignore[no-untyped-def]
    async def handler(request: HttpRequest, stream: anyio.abc.ByteStream) -> None:
        await stream.send(data)

    return handler


async def test_announce_sends_bep3_query_and_parses_peers() -> None:
    async with http_tracker(fixed(http_response(announce_body(peers=PEERS)))) as server:
        url = f"http://127.0.0.1:{server.port}/announce?passkey=k1"
        response = await http.announce(url, REQUEST, timeout=5)
    assert response.peers == PEERS and response.interval == 1800
    (req,) = server.requests
    q = req.query()
    assert req.path == "/announce"
    assert q["passkey"] == [b"k1"] and q["info_hash"] == [INFO_HASH] and q["peer_id"] == [PEER_ID]
    assert q["event"] == [b"started"] and q["compact"] == [b"1"] and q["left"] == [b"100"]
    assert req.headers["user-agent"].startswith("torrent_engine/")
    assert req.headers["host"] == f"127.0.0.1:{server.port}"
    assert "gzip" in req.headers["accept-encoding"]


async def test_chunked_response_split_across_writes() -> None:
    body = announce_body(peers=PEERS)

    async def handler(request: HttpRequest, stream: anyio.abc.ByteStream) -> None:
        await stream.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for piece in (body[:5], body[5:6], body[6:]):
            await stream.send(f"{len(piece):x};ext=1\r\n".encode() + piece[:2])
            await anyio.sleep(0.01)
            await stream.send(piece[2:] + b"\r\n")
        await stream.send(b"0\r\nX-Trailer: y\r\n\r\n")
        await anyio.sleep(5)  # the client must not wait for the close after the last chunk

    async with http_tracker(handler) as server:
        with anyio.fail_after(3):
            response = await http.announce(f"http://127.0.0.1:{server.port}/announce", REQUEST, timeout=10)
    assert response.peers == PEERS


async def test_gzip_response() -> None:
    raw = http_response(gzip.compress(announce_body(peers=PEERS)), headers=("Content-Encoding: gzip",))
    async with http_tracker(fixed(raw)) as server:
        response = await http.announce(f"http://127.0.0.1:{server.port}/announce", REQUEST, timeout=5)
    assert response.peers == PEERS


async def test_body_read_until_close_without_length() -> None:
    async def handler(request: HttpRequest, stream: anyio.abc.ByteStream) -> None:
        await stream.send(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n" + announce_body(peers=PEERS))

    async with http_tracker(handler) as server:
        response = await http.announce(f"http://127.0.0.1:{server.port}/announce", REQUEST, timeout=5)
    assert response.peers == PEERS


async def test_redirects_are_followed_relative_and_absolute() -> None:
    async def handler(request: HttpRequest, stream: anyio.abc.ByteStream) -> None:
        if request.path == "/announce":
            await stream.send(
                http_response(
                    b"", "302 Found", ("Location: /moved/announce?x=1&" + request.target.split("?")[1],)
                )
            )
        elif request.path == "/moved/announce":
            port = request.headers["host"].split(":")[1]
            location = f"http://127.0.0.1:{port}/final/announce?{request.target.split('?')[1]}"
            await stream.send(http_response(b"", "307 Temporary Redirect", (f"Location: {location}",)))
        else:
            await stream.send(http_response(announce_body(peers=PEERS)))

    async with http_tracker(handler) as server:
        response = await http.announce(f"http://127.0.0.1:{server.port}/announce", REQUEST, timeout=5)
    assert response.peers == PEERS
    assert [r.path for r in server.requests] == ["/announce", "/moved/announce", "/final/announce"]
    assert server.requests[-1].query()["info_hash"] == [INFO_HASH]


async def test_redirect_loop_is_bounded() -> None:
    async def handler(request: HttpRequest, stream: anyio.abc.ByteStream) -> None:
        await stream.send(http_response(b"", "301 Moved", (f"Location: {request.target}",)))

    async with http_tracker(handler) as server:
        with pytest.raises(TrackerError, match="more than 5 redirects"):
            await http.announce(f"http://127.0.0.1:{server.port}/announce", REQUEST, timeout=5)
    assert len(server.requests) == 6


async def test_https_with_trusted_certificate(tmp_path: Path) -> None:
    server_ctx, client_ctx = self_signed(tmp_path)
    async with http_tracker(fixed(http_response(announce_body(peers=PEERS))), tls=server_ctx) as server:
        url = f"https://127.0.0.1:{server.port}/announce"
        response = await http.announce(url, REQUEST, timeout=5, ssl_context=client_ctx)
        assert response.peers == PEERS
        # the default context does not trust a self-signed certificate
        with pytest.raises(TrackerError, match="SSL|certificate"):
            await http.announce(url, REQUEST, timeout=5)


async def test_body_cap_content_length_chunked_and_gzip_bomb() -> None:
    async def handler(request: HttpRequest, stream: anyio.abc.ByteStream) -> None:
        if request.path == "/length/announce":
            await stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\nd")
        elif request.path == "/chunked/announce":
            await stream.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            for _ in range(100):
                await stream.send(b"1000\r\n" + b"x" * 0x1000 + b"\r\n")
        else:
            bomb = gzip.compress(b"d" + b"0" * 10_000_000)
            await stream.send(http_response(bomb, headers=("Content-Encoding: gzip",)))

    async with http_tracker(handler) as server:
        for path in ("length", "chunked", "bomb"):
            with pytest.raises(TrackerError, match="cap"):
                await http.announce(
                    f"http://127.0.0.1:{server.port}/{path}/announce", REQUEST, timeout=5, max_body=64 * 1024
                )


async def test_read_timeout_and_refused_connection() -> None:
    async def silent(request: HttpRequest, stream: anyio.abc.ByteStream) -> None:
        await anyio.sleep(30)

    async with http_tracker(silent) as server:
        with anyio.fail_after(5), pytest.raises(TrackerError, match="no answer within 0.3 s"):
            await http.announce(f"http://127.0.0.1:{server.port}/announce", REQUEST, timeout=0.3)
        port = server.port
    with (
        anyio.fail_after(5),
        pytest.raises(TrackerError, match=f"127.0.0.1:{port}/announce: connection refused"),
    ):
        await http.announce(f"http://127.0.0.1:{port}/announce", REQUEST, timeout=5)


async def test_failure_reason_with_error_status_and_plain_error_status() -> None:
    async def handler(request: HttpRequest, stream: anyio.abc.ByteStream) -> None:
        if request.path == "/bencoded/announce":
            body = encode({"failure reason": "unregistered torrent", "retry in": "never"})
            await stream.send(http_response(body, "400 Bad Request"))
        else:
            await stream.send(http_response(b"<html>nope</html>", "404 Not Found"))

    async with http_tracker(handler) as server:
        with pytest.raises(TrackerRefused, match="unregistered torrent") as info:
            await http.announce(f"http://127.0.0.1:{server.port}/bencoded/announce", REQUEST, timeout=5)
        assert info.value.retry_in == -1
        with pytest.raises(TrackerError, match="HTTP 404 Not Found"):
            await http.announce(f"http://127.0.0.1:{server.port}/html/announce", REQUEST, timeout=5)


async def test_scrape_uses_bep48_url() -> None:
    body = encode({"files": {INFO_HASH: {"complete": 4, "downloaded": 9, "incomplete": 2}}})
    async with http_tracker(fixed(http_response(body))) as server:
        response = await http.scrape(f"http://127.0.0.1:{server.port}/x/announce.php", [INFO_HASH], timeout=5)
    stats = response.files[INFO_HASH]
    assert (stats.complete, stats.downloaded, stats.incomplete) == (4, 9, 2)
    assert server.requests[0].path == "/x/scrape.php"
    assert server.requests[0].query()["info_hash"] == [INFO_HASH]


async def test_redirect_to_a_malformed_location_is_a_tracker_error() -> None:
    redirect = http_response(b"", "302 Found", ("Location: http://[::1/announce",))
    async with http_tracker(fixed(redirect)) as server:
        with pytest.raises(TrackerError, match="redirect"):
            await http.announce(f"http://127.0.0.1:{server.port}/announce", REQUEST, timeout=5)


async def test_malformed_tracker_urls_are_tracker_errors_for_any_scheme() -> None:
    # A torrent's announce-list is untrusted: "http://[::1/announce" made urllib raise ValueError.
    for url in ("http://[::1/announce", "udp://[::1:80/announce", "udp://[x:80"):
        with pytest.raises(TrackerError):
            await client.announce(url, REQUEST, timeout=1)
        with pytest.raises(TrackerError):
            await client.scrape(url, [INFO_HASH], timeout=1)


async def test_https_body_read_until_close_without_close_notify(tmp_path: Path) -> None:
    # Many servers end an HTTPS connection without a TLS close_notify; a body without
    # Content-Length (read until close) then failed as "connection lost" though it had all come.
    server_ctx, client_ctx = self_signed(tmp_path)

    async def handler(request: HttpRequest, stream: anyio.abc.ByteStream) -> None:
        await stream.send(b"HTTP/1.0 200 OK\r\n\r\n" + announce_body(peers=PEERS))

    async with http_tracker(handler, tls=server_ctx) as server:  # closes without close_notify
        url = f"https://127.0.0.1:{server.port}/announce"
        response = await http.announce(url, REQUEST, timeout=5, ssl_context=client_ctx)
    assert response.peers == PEERS
