"""The proxy handshakes, bytes in and bytes out: SOCKS5 (RFC 1928/1929), SOCKS4/4a and HTTP
CONNECT, against the bytes the RFCs give; every refusal a ProxyError saying why."""

from __future__ import annotations

import re

import pytest

from torrent_engine.errors import ProxyError
from torrent_engine.net.proxy import ProxyConfig
from torrent_engine.net.proxy.handshake import HttpConnect, ProxyHandshake, Socks4Connect, Socks5Connect

SOCKS5 = ProxyConfig("socks5", "127.0.0.1", 1080)
SOCKS5_USER = ProxyConfig("socks5", "127.0.0.1", 1080, username="alice", password="s3cret")


def feed_bytewise(handshake: ProxyHandshake, answer: bytes) -> None:
    """Feed ``answer`` as a shell would, never reading past what the handshake asks for."""
    while answer:
        size = handshake.next_read_size()
        assert size > 0
        handshake.receive_data(answer[:size])
        answer = answer[size:]


def test_socks5_without_credentials_connects_to_an_ipv4_address() -> None:
    hs = Socks5Connect(SOCKS5, "10.1.2.3", 6881)
    assert hs.data_to_send() == b"\x05\x01\x00"
    hs.receive_data(b"\x05\x00")
    assert hs.data_to_send() == b"\x05\x01\x00\x01\x0a\x01\x02\x03\x1a\xe1"
    assert not hs.established
    feed_bytewise(hs, b"\x05\x00\x00\x01\x7f\x00\x00\x01\x04\x38")
    assert hs.established


def test_socks5_username_password_then_a_host_name_and_an_ipv6_bound_address() -> None:
    hs = Socks5Connect(SOCKS5_USER, "tracker.example", 80)
    assert hs.data_to_send() == b"\x05\x02\x00\x02"
    hs.receive_data(b"\x05\x02")
    assert hs.data_to_send() == b"\x01\x05alice\x06s3cret"
    hs.receive_data(b"\x01\x00")
    assert hs.data_to_send() == b"\x05\x01\x00\x03\x0ftracker.example\x00\x50"
    feed_bytewise(hs, b"\x05\x00\x00\x04" + bytes(16) + b"\x00\x01")
    assert hs.established


def test_socks5_reads_a_bound_name_of_its_own_length_and_not_one_byte_past_it() -> None:
    hs = Socks5Connect(SOCKS5, "::1", 1)
    hs.data_to_send()
    hs.receive_data(b"\x05\x00")
    assert hs.data_to_send()[3:4] == b"\x04"
    hs.receive_data(b"\x05\x00\x00\x03")
    assert hs.next_read_size() == 1
    hs.receive_data(b"\x03")
    assert hs.next_read_size() == 5
    hs.receive_data(b"abc\x00\x01")
    assert hs.established


@pytest.mark.parametrize(("proxy", "answers", "reason"), [
    (SOCKS5, [b"\x05\xff"], "accepts none of our authentication methods (no username is set)"),
    (SOCKS5, [b"\x05\x02"], "asks for a username and password, and none is set"),
    (SOCKS5_USER, [b"\x05\x02", b"\x01\x01"], "refused the username and password"),
    (SOCKS5, [b"\x05\x00", b"\x05\x05\x00\x01"], "refused the connection: connection refused"),
    (SOCKS5, [b"\x05\x00", b"\x05\x02\x00\x01"], "connection not allowed by ruleset"),
    (SOCKS5, [b"\x04\x5a"], "not a SOCKS5 proxy"),
    (SOCKS5, [b""], "closed the connection during the SOCKS5 handshake"),
])
def test_socks5_refusals_say_why_and_name_the_proxy(proxy: ProxyConfig, answers: list[bytes],
                                                    reason: str) -> None:
    hs = Socks5Connect(proxy, "10.0.0.1", 80)
    with pytest.raises(ProxyError, match=re.escape(reason)) as caught:
        for answer in answers:
            hs.data_to_send()
            hs.receive_data(answer)
    assert caught.value.proxy == proxy.name and proxy.name.endswith("@127.0.0.1:1080") == bool(proxy.username)
    assert "s3cret" not in str(caught.value)


def test_socks4_and_4a() -> None:
    plain = Socks4Connect(ProxyConfig("socks4", "127.0.0.1", 1080, username="bob"), "10.0.0.2", 6881)
    assert plain.data_to_send() == b"\x04\x01\x1a\xe1\x0a\x00\x00\x02bob\x00"
    feed_bytewise(plain, b"\x00\x5a\x00\x00\x00\x00\x00\x00")
    assert plain.established
    named = Socks4Connect(ProxyConfig("socks4", "127.0.0.1", 1080), "peer.example", 80)
    assert named.data_to_send() == b"\x04\x01\x00\x50\x00\x00\x00\x01\x00peer.example\x00"
    with pytest.raises(ProxyError, match="request rejected or failed"):
        named.receive_data(b"\x00\x5b\x00\x00\x00\x00\x00\x00")
    with pytest.raises(ProxyError, match="SOCKS4 cannot reach the IPv6 address ::1"):
        Socks4Connect(ProxyConfig("socks4", "127.0.0.1", 1080), "::1", 80)


def test_http_connect_with_basic_credentials_never_reads_past_the_blank_line() -> None:
    proxy = ProxyConfig("http", "127.0.0.1", 8888, username="alice", password="s3cret")
    hs = HttpConnect(proxy, "::1", 6881)
    assert hs.data_to_send() == (b"CONNECT [::1]:6881 HTTP/1.1\r\nHost: [::1]:6881\r\n"
                                 b"Proxy-Authorization: Basic YWxpY2U6czNjcmV0\r\n\r\n")
    answer = b"HTTP/1.1 200 Connection established\r\nProxy-agent: x\r\n\r\n"
    tunnel = b"\x13BitTorrent protocol"
    stream = answer + tunnel
    while not hs.established:
        size = hs.next_read_size()
        hs.receive_data(stream[:size])
        stream = stream[size:]
    assert stream == tunnel  # the far end's first bytes are left for the peer connection


@pytest.mark.parametrize(("username", "answer", "reason"), [
    ("", b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n", "asks for a username and password"),
    ("alice", b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n", "refused the username and password"),
    ("", b"HTTP/1.0 403 Access violation\r\n\r\n", "refused CONNECT: 403 Access violation"),
    ("", b"SSH-2.0-OpenSSH\r\n\r\n", "not an HTTP proxy"),
])
def test_http_connect_refusals(username: str, answer: bytes, reason: str) -> None:
    hs = HttpConnect(ProxyConfig("http", "127.0.0.1", 8888, username=username), "10.0.0.1", 80)
    with pytest.raises(ProxyError, match=reason):
        hs.receive_data(answer)


def test_socks5_udp_associate_asks_command_3_and_reads_the_relay_address() -> None:
    hs = Socks5Connect(SOCKS5, "0.0.0.0", 0, command=3)
    hs.data_to_send()
    hs.receive_data(b"\x05\x00")
    assert hs.data_to_send() == b"\x05\x03\x00\x01\x00\x00\x00\x00\x00\x00"  # RFC 1928 section 4
    feed_bytewise(hs, b"\x05\x00\x00\x01\x7f\x00\x00\x01\x9c\x40")
    assert hs.established and hs.bound == ("127.0.0.1", 40000)


def test_socks5_udp_associate_refused_says_so() -> None:
    hs = Socks5Connect(SOCKS5, "0.0.0.0", 0, command=3)
    hs.data_to_send()
    hs.receive_data(b"\x05\x00")
    with pytest.raises(ProxyError, match="refused the UDP association: command not supported"):
        hs.receive_data(b"\x05\x07\x00\x01")
