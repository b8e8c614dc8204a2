"""SSRF mitigation of HTTP tracker requests, against a server on 127.0.0.1 that counts what it is
asked: a request to this host elsewhere than a tracker's path, a redirect there, or a URL whose
query forges an announce, never reaches it; a tracker's own paths do; off, everything does."""

from __future__ import annotations

import anyio
import anyio.abc
import pytest

from tests.unit.tracker._tracker_servers import HttpRequest, announce_body, http_response, http_tracker
from torrent_engine.errors import TrackerError
from torrent_engine.formats.bencode import encode
from torrent_engine.net.tracker import client
from torrent_engine.net.tracker.messages import AnnounceRequest

pytestmark = pytest.mark.anyio

INFO_HASH = b"i" * 20
REQUEST = AnnounceRequest(info_hash=INFO_HASH, peer_id=b"-TE0100-" + b"p" * 12, port=6881, left=0)


async def answer(request: HttpRequest, stream: anyio.abc.ByteStream) -> None:
    if request.path == "/announce/moved":  # (a tracker that sends its clients to a local API)
        await stream.send(http_response(b"", "302 Found", ("Location: /api/v2/app/shutdown",)))
    elif request.path.startswith("/scrape"):
        files = {INFO_HASH: {b"complete": 1, b"downloaded": 2, b"incomplete": 3}}
        await stream.send(http_response(encode({b"files": files})))
    else:
        await stream.send(http_response(announce_body(interval=900)))


@pytest.mark.parametrize(("path", "why"), [
    ("/api/v2/torrents/delete?hashes=all&deleteFiles=true", "asked only at /announce"),
    ("/transmission/rpc", "asked only at /announce"),
    ("/x/announce", "asked only at /announce"),
    ("/announce/moved", "asked only at /announce, not at '/api/v2/app/shutdown'"),  # (its redirect)
])
async def test_a_request_to_this_host_elsewhere_than_a_trackers_path_is_not_sent(path: str, why: str) -> None:
    async with http_tracker(answer) as server:
        url = f"http://127.0.0.1:{server.port}{path}"
        with pytest.raises(TrackerError, match="SSRF mitigation") as refused:
            await client.announce(url, REQUEST, timeout=5, ssrf_mitigation=True)
        assert why in str(refused.value) and refused.value.url == url
        # (the redirecting tracker's own path was asked; nothing else reached the server)
        assert [r.path for r in server.requests] == (["/announce/moved"] if "moved" in path else [])
        off = await client.announce(url, REQUEST, timeout=5)  # (off: asked, the redirect followed)
        assert off.interval == 900
        assert server.requests[-1].path == ("/api/v2/app/shutdown" if "moved" in path else path.split("?")[0])


async def test_a_tracker_url_whose_query_forges_an_announce_is_not_asked() -> None:
    async with http_tracker(answer) as server:
        url = f"http://127.0.0.1:{server.port}/announce?info_hash=%01%02&event=stopped"
        with pytest.raises(TrackerError, match=r"announce arguments \(event, info_hash\)"):
            await client.announce(url, REQUEST, timeout=5, ssrf_mitigation=True)
        with pytest.raises(TrackerError, match="announce arguments"):
            await client.scrape(url, [INFO_HASH], timeout=5, ssrf_mitigation=True)
        assert server.requests == []


async def test_a_trackers_own_paths_on_this_host_are_asked() -> None:
    async with http_tracker(answer) as server:
        base = f"http://127.0.0.1:{server.port}"
        for path in ("/announce", "/announce.php?passkey=abc", "/announce/abc123"):
            response = await client.announce(base + path, REQUEST, timeout=5, ssrf_mitigation=True)
            assert response.interval == 900
        scraped = await client.scrape(f"{base}/announce.php", [INFO_HASH], timeout=5, ssrf_mitigation=True)
        assert scraped.files[INFO_HASH].downloaded == 2
        assert [r.path for r in server.requests] == ["/announce", "/announce.php", "/announce/abc123",
                                                      "/scrape.php"]
