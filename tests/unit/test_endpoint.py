"""``HOST:PORT`` read by one set of rules (``formats.endpoint``) wherever a person or a link
writes one: the CLI's peers and DHT nodes, our API's peers, the qBittorrent dialect's peers and
bans, a magnet's ``x.pe``."""

from __future__ import annotations

import argparse

import pytest

from torrent_engine.api.app import ApiError, parse_peer
from torrent_engine.cli import dht, download
from torrent_engine.errors import MagnetError
from torrent_engine.formats.endpoint import EndpointError, split_host_port
from torrent_engine.formats.magnet import parse_magnet


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:6881", ("127.0.0.1", 6881)),
    ("[::1]:6881", ("::1", 6881)),
    ("[fe80::1%eth0]:1", ("fe80::1%eth0", 1)),
    ("peer.example:65535", ("peer.example", 65535)),
    ("127.0.0.1:0000006881", ("127.0.0.1", 6881)),  # (as qBittorrent's toUShort reads it)
])
def test_good_endpoints(text: str, expected: tuple[str, int]) -> None:
    assert split_host_port(text) == expected


@pytest.mark.parametrize(("text", "why"), [
    ("127.0.0.1", "no port"),
    ("127.0.0.1:", "not a number"),
    ("127.0.0.1:x", "not a number"),
    ("127.0.0.1:²", "not a number"),  # (isdigit's, not int's)
    ("127.0.0.1:0", "not from 1 to 65535"),
    ("127.0.0.1:65536", "not from 1 to 65535"),
    ("127.0.0.1:" + "9" * 5000, "not a number"),  # (no int() of it: past its 4 300 digits)
    (":6881", "no host"),
    ("::1:6881", "in brackets"),  # (is 6881 the port or the address's last group?)
    ("[1.2.3.4]:80", "not an IPv6 address"),
    ("[]:80", "not an IPv6 address"),
    ("[::1:80", "in brackets"),
    ("[host:80", "unmatched brackets"),
    ("host]:80", "unmatched brackets"),
])
def test_bad_endpoints_say_what_is_wrong(text: str, why: str) -> None:
    with pytest.raises(EndpointError, match=why):
        split_host_port(text)


def test_port_zero_where_the_caller_allows_it() -> None:
    assert split_host_port("0.0.0.0:0", allow_zero=True) == ("0.0.0.0", 0)
    assert dht.parse_bind("[::]:0") == ("::", 0)


def test_every_reader_takes_the_same_rules() -> None:
    for good, expected in (("[::1]:7", ("::1", 7)), ("a.test:7", ("a.test", 7))):
        assert download.parse_peer(good) == expected
        assert dht.parse_host_port(good) == expected
        assert parse_peer(good) == expected
    for bad in ("::1:6881", "[1.2.3.4]:7", "a.test:70000"):
        with pytest.raises(argparse.ArgumentTypeError, match="in brackets|IPv6|65535"):
            download.parse_peer(bad)
        with pytest.raises(argparse.ArgumentTypeError, match="in brackets|IPv6|65535"):
            dht.parse_host_port(bad)
        with pytest.raises(ApiError, match="in brackets|IPv6|65535"):
            parse_peer(bad)
        with pytest.raises(MagnetError, match="in brackets|IPv6|65535"):
            parse_magnet(f"magnet:?xt=urn:btih:{'a' * 40}&x.pe={bad}")
