"""Proxy URLs as Transmission writes them, and the typed error naming the field for a bad one."""

from __future__ import annotations

import pytest

from torrent_engine import Config
from torrent_engine.errors import ConfigError
from torrent_engine.net.proxy import ProxyConfig, parse_proxy_url


@pytest.mark.parametrize(("url", "kind", "remote_dns", "port"), [
    ("socks5://127.0.0.1:1080", "socks5", False, 1080),
    ("socks5h://proxy.lan", "socks5", True, 1080),
    ("SOCKS4://10.0.0.1:9050", "socks4", False, 9050),
    ("socks4a://10.0.0.1:9050", "socks4", True, 9050),
    ("http://[::1]:3128/", "http", True, 3128),
])
def test_each_scheme(url: str, kind: str, remote_dns: bool, port: int) -> None:
    proxy = parse_proxy_url(url)
    assert (proxy.kind, proxy.remote_dns, proxy.port) == (kind, remote_dns, port)
    assert parse_proxy_url(proxy.url()) == proxy  # the URL we show reads back the same


def test_credentials_are_percent_decoded_and_never_shown_in_the_name() -> None:
    proxy = parse_proxy_url("socks5://us%40er:p%3Ass@127.0.0.1:1080")
    assert (proxy.username, proxy.password) == ("us@er", "p:ss")
    assert proxy.url() == "socks5://us%40er:p%3Ass@127.0.0.1:1080"
    assert proxy.name == "socks5://us%40er:***@127.0.0.1:1080"


@pytest.mark.parametrize(("url", "reason"), [
    ("ftp://127.0.0.1:21", "scheme 'ftp' is not one of socks5, socks5h, socks4, socks4a, http"),
    ("socks5://:1080", "names no proxy host"),
    ("socks5://127.0.0.1:99999", "is not a proxy URL"),
    ("socks5://127.0.0.1:1080/path", "a proxy URL is a scheme, host and port only"),
    ("socks4://u:p@127.0.0.1:1080", "SOCKS4 has no password"),
    ("", "must be a proxy URL"),
])
def test_a_bad_url_names_the_field(url: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason) as caught:
        parse_proxy_url(url, "proxy_url")
    assert caught.value.field == "proxy_url"


def test_the_library_config_takes_a_proxy_and_refuses_anything_else() -> None:
    proxy = ProxyConfig("socks5", "127.0.0.1", 1080, only=True)
    assert Config(proxy=proxy).proxy == proxy
    with pytest.raises(ConfigError, match="Config.proxy: 'socks5://127.0.0.1:1080' is not a ProxyConfig"):
        Config(proxy="socks5://127.0.0.1:1080")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="Config.proxy.port"):
        ProxyConfig("socks5", "127.0.0.1", 0)
