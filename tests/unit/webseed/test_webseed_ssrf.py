"""SSRF mitigation of web seed requests against scripted servers on 127.0.0.1 (the local
network): a web seed there with a query string, or one on the internet that redirects there,
is never asked and is given up on at once; without a query it serves; off, everything is asked."""

from __future__ import annotations

import random

import anyio
import anyio.abc
import pytest

from tests.unit.torrent_factory import make_torrent, payload
from tests.unit.webseed._webseed_server import http_server, ranged
from tests.unit.webseed.test_webseed_client import Host, asked
from torrent_engine.errors import WebSeedRefused
from torrent_engine.net.webseed import client as client_mod
from torrent_engine.net.webseed.client import RangeClient, WebSeed
from torrent_engine.net.webseed.response import Backoff

pytestmark = pytest.mark.anyio

DATA = random.Random(5).randbytes(50_000)
GLOBAL = "93.184.216.34"  # (what the first server's connections are said to reach: the internet)


def on() -> bool:
    return True


async def test_a_local_web_seed_with_a_query_string_is_not_asked() -> None:
    async with http_server(lambda path, s, e: (ranged(DATA, s, e), True)) as server:
        client = RangeClient(ssrf=on)
        try:
            with pytest.raises(WebSeedRefused, match="on the local network .* may not have a query string"):
                await client.fetch(asked(server.url("/pub/a.iso?token=secret"), 0, 100, len(DATA)))
            assert server.requests == []
            # (without the query it serves; off, the query is asked too)
            assert await client.fetch(asked(server.url("/pub/a.iso"), 0, 100, len(DATA))) == DATA[:100]
            client.ssrf = lambda: False
            got = await client.fetch(asked(server.url("/pub/a.iso?token=secret"), 0, 10, len(DATA)))
            assert got == DATA[:10]
        finally:
            await client.aclose()
    assert [p for p, _ in server.requests] == ["/pub/a.iso", "/pub/a.iso?token=secret"]


async def test_a_web_seed_on_the_internet_that_redirects_to_the_local_network_is_not_followed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with http_server(lambda path, s, e: (ranged(DATA, s, e), True)) as local:
        def redirect(path: str, s: int, e: int) -> tuple[bytes, bool]:
            if path == "/mirror/a.iso":  # (to the other server: a local address)
                return (f"HTTP/1.1 302 Found\r\nLocation: {local.url('/admin/a.iso')}\r\n"
                        "Content-Length: 0\r\n\r\n").encode(), True
            return b"HTTP/1.1 302 Found\r\nLocation: /mirror/a.iso\r\nContent-Length: 0\r\n\r\n", True

        async with http_server(redirect) as internet:
            real = client_mod.remote_host

            def reached(stream: anyio.abc.ByteStream) -> str | None:
                address = real(stream)
                port = stream.extra(anyio.abc.SocketAttribute.remote_port)
                return GLOBAL if port == internet.port else address

            monkeypatch.setattr(client_mod, "remote_host", reached)
            client = RangeClient(ssrf=on)
            try:
                with pytest.raises(WebSeedRefused, match=r"on the internet redirected to the local network"):
                    await client.fetch(asked(internet.url("/start/a.iso"), 0, 100, len(DATA)))
                assert [p for p, _ in internet.requests] == ["/start/a.iso", "/mirror/a.iso"]
                assert local.requests == []  # (a redirect within the internet's server was followed)
                # (the local server, asked as a web seed of its own without a query, serves)
                assert await client.fetch(asked(local.url("/a.iso"), 0, 10, len(DATA))) == DATA[:10]
            finally:
                await client.aclose()
    assert [p for p, _ in local.requests] == ["/a.iso"]


async def test_a_refused_web_seed_is_given_up_at_once_and_its_pieces_returned() -> None:
    torrent = make_torrent([(("f",), payload(100_000))], 32 * 1024, single=True, name="f")
    async with http_server(lambda path, s, e: (ranged(DATA, s, e), True)) as server:
        host = Host(torrent)
        host.picker.peer_have_all(("u", 0))
        # (a back-off that would wait a minute between failures: a refusal is never tried again)
        seed = WebSeed(server.url("/f?sig=1"), host, client=RangeClient(ssrf=on),
                       backoff=Backoff(base=60, give_up_after=5))
        seed.key = ("u", 0)
        with anyio.fail_after(10):
            await seed.run()
    assert seed.state.gave_up.startswith("SSRF mitigation") and "query string" in seed.state.gave_up
    assert seed.state.last_error == seed.state.gave_up
    assert server.requests == [] and host.picker.requests_of(("u", 0)) == []
