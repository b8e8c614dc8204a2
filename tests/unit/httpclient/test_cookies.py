"""Cookies for .torrent URLs: what is taken (``check_cookie``), which request carries which
(``cookie_header``, as Qt's cookie jar matches them), and the GET sending them, redirects too."""

from __future__ import annotations

import anyio
import anyio.abc
import pytest

from torrent_engine.net.httpclient import http_get
from torrent_engine.net.httpclient.cookies import Cookie, CookieError, check_cookie, cookie_header

pytestmark = pytest.mark.anyio
NOW = 1_800_000_000


def cookie(name: str, domain: str, path: str = "/", expires: int | None = NOW + 60,
           value: str = "v") -> Cookie:
    return check_cookie(name, value, domain, path, expires)


def test_a_cookie_goes_to_its_domain_and_path_until_it_expires() -> None:
    jar = [cookie("uid", "tracker.example"), cookie("pass", "tracker.example", "/dl"),
           cookie("all", ".example"), cookie("old", "tracker.example", expires=NOW - 1),
           cookie("session", "tracker.example", "", expires=None), cookie("other", "elsewhere.example")]
    assert cookie_header(jar, "https://tracker.example/dl/1.torrent", NOW) == (
        "pass=v; uid=v; all=v; session=v")  # (the longer path first; the session cookie has none)
    assert cookie_header(jar, "http://TRACKER.example/dlx", NOW) == "uid=v; all=v; session=v"
    assert cookie_header(jar, "http://sub.tracker.example/dl", NOW) == "all=v"  # (no dot: that host only)
    assert cookie_header(jar, "http://example/", NOW) == "all=v"  # (".example": itself and below)
    assert cookie_header(jar, "http://notexample/", NOW) == ""
    assert cookie_header(jar, "magnet:?xt=urn:btih:" + "a" * 40, NOW) == ""
    assert cookie_header([cookie("ip", "[::1]")], "http://[::1]:8080/t", NOW) == "ip=v"


@pytest.mark.parametrize(("values", "field"), [
    (("", "v", "a.example", "/", None), "name"),
    (("a b", "v", "a.example", "/", None), "name"),
    (("a", "x;y", "a.example", "/", None), "value"),
    (("a", "x\r\nEvil: 1", "a.example", "/", None), "value"),
    (("a", "é", "a.example", "/", None), "value"),
    (("a", "v" * 5000, "a.example", "/", None), "value"),
    (("a", 5, "a.example", "/", None), "value"),
    (("a", "v", "", "/", None), "domain"),
    (("a", "v", ".", "/", None), "domain"),
    (("a", "v", "a example", "/", None), "domain"),
    (("a", "v", "a.example", "dl", None), "path"),
    (("a", "v", "a.example", "/", "soon"), "expirationDate"),
    (("a", "v", "a.example", "/", 1.5), "expirationDate"),
    (("a", "v", "a.example", "/", True), "expirationDate"),
    (("a", "v", "a.example", "/", 10**15), "expirationDate"),
])
def test_a_cookie_that_cannot_be_sent_is_refused_naming_its_field(values: tuple[object, ...],
                                                                   field: str) -> None:
    with pytest.raises(CookieError) as refused:
        check_cookie(*values)
    assert refused.value.field == field


async def test_the_get_sends_each_urls_cookies_and_a_redirects_own() -> None:
    heads: list[bytes] = []

    async def serve(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            head = b""
            while b"\r\n\r\n" not in head:
                head += await stream.receive()
            heads.append(head)
            if head.startswith(b"GET /first "):
                await stream.send(b"HTTP/1.1 302 Found\r\nLocation: /second\r\nContent-Length: 0\r\n\r\n")
            else:
                await stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    jar = [cookie("a", "127.0.0.1", "/first"), cookie("b", "127.0.0.1", "/second")]
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, serve)
        response = await http_get(f"http://127.0.0.1:{port}/first", timeout=10,
                                  cookies=lambda url: cookie_header(jar, url, NOW))
        tg.cancel_scope.cancel()
    assert response.body == b"ok"
    assert [h.split(b"\r\n")[0] for h in heads] == [b"GET /first HTTP/1.1", b"GET /second HTTP/1.1"]
    assert b"\r\nCookie: a=v\r\n" in heads[0] and b"b=v" not in heads[0]
    assert b"\r\nCookie: b=v\r\n" in heads[1] and b"a=v" not in heads[1]
    async with await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0) as plain:
        port = plain.extra(anyio.abc.SocketAttribute.local_port)
        heads.clear()
        async with anyio.create_task_group() as tg:
            tg.start_soon(plain.serve, serve)
            await http_get(f"http://127.0.0.1:{port}/second", timeout=10)
            tg.cancel_scope.cancel()
        assert b"Cookie:" not in heads[0]  # (none given: no header)
