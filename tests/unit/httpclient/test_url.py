"""One URL check for the HTTP client and the web seeds' range requests."""

from __future__ import annotations

import pytest

from torrent_engine.errors import HttpError, WebSeedError
from torrent_engine.net.httpclient.client import _request_bytes
from torrent_engine.net.httpclient.url import split_http_url
from torrent_engine.net.webseed.mapping import parse_url


def test_ipv6_hosts_get_brackets_and_a_named_port_goes_into_the_host_header() -> None:
    url = split_http_url("https://[::1]:8443/a%20b?x=1")
    assert (url.tls, url.host, url.port, url.host_header) == (True, "::1", 8443, "[::1]:8443")
    assert (url.path, url.query) == ("/a%20b", "x=1")
    plain = split_http_url("HTTP://Example.org")
    assert (plain.tls, plain.port, plain.host_header, plain.path) == (False, 80, "example.org", "/")


@pytest.mark.parametrize(("url", "reason"), [
    ("udp://t:1/announce", "unsupported URL scheme 'udp'"),
    ("http:///announce", "URL has no host"),
    ("http://t:70000/announce", "URL has a bad port"),
    ("http://[::1/announce", "malformed URL"),
    ("http://bücher.example/announce", "URL host is not plain ASCII"),
])
def test_both_clients_refuse_the_same_urls_for_the_same_reason(url: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        split_http_url(url)
    with pytest.raises(HttpError, match=reason):
        _request_bytes(url, "ua")
    with pytest.raises(WebSeedError, match=reason):
        parse_url(url)
