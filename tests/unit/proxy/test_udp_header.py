"""SOCKS5's UDP request header (RFC 1928 section 7), bytes in and bytes out: the layout the RFC
gives for IPv4, IPv6 and host names, fragments read as such, and every malformed header a
typed error saying where it is wrong."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from torrent_engine.net.proxy.udp_header import (
    MalformedUdpHeader,
    RelayedDatagram,
    decode_udp_datagram,
    encode_udp_datagram,
)


def test_an_ipv4_destination_is_rsv_frag_atyp_address_port_then_the_data() -> None:
    assert encode_udp_datagram("10.1.2.3", 6881, b"d1:q4:pinge") == (
        b"\x00\x00" b"\x00" b"\x01" b"\x0a\x01\x02\x03" b"\x1a\xe1" b"d1:q4:pinge")


def test_an_ipv6_destination_carries_sixteen_bytes() -> None:
    datagram = encode_udp_datagram("2001:db8::1", 80, b"x")
    assert datagram[:4] == b"\x00\x00\x00\x04"
    assert datagram[4:20] == ipaddress.IPv6Address("2001:db8::1").packed
    assert datagram[20:] == b"\x00\x50x"


def test_a_host_name_goes_to_the_proxy_with_its_length() -> None:
    assert encode_udp_datagram("tracker.example", 6969, b"") == b"\x00\x00\x00\x03\x0ftracker.example\x1b\x39"


def test_a_reply_from_the_relay_names_its_sender() -> None:
    reply = b"\x00\x00\x00\x01\x7f\x00\x00\x02\x1a\xe1" + b"answer"
    assert decode_udp_datagram(reply) == RelayedDatagram("127.0.0.2", 6881, b"answer", 0)


def test_a_fragment_is_read_with_its_number_for_the_caller_to_drop() -> None:
    assert decode_udp_datagram(b"\x00\x00\x01\x01\x7f\x00\x00\x02\x00\x01x").frag == 1


@pytest.mark.parametrize(("datagram", "reason", "offset"), [
    (b"\x00\x00", "shorter than a header", 2),
    (b"\x00\x01\x00\x01\x7f\x00\x00\x01\x00\x01", "reserved bytes are not zero", 0),
    (b"\x00\x00\x00\x07\x7f\x00\x00\x01\x00\x01", "unknown address type 7", 3),
    (b"\x00\x00\x00\x01\x7f\x00\x00\x01\x00", "IPv4 address and port are cut short", 9),
    (b"\x00\x00\x00\x04" + bytes(15), "IPv6 address and port are cut short", 19),
    (b"\x00\x00\x00\x03\x05abc", "host name and port are cut short", 8),
    (b"\x00\x00\x00\x03\x00\x00\x01", "an empty host name", 4),
    (b"\x00\x00\x00\x03\x02\xff\xfe\x00\x01", "not ASCII", 5),
])
def test_a_malformed_header_says_what_and_where(datagram: bytes, reason: str, offset: int) -> None:
    with pytest.raises(MalformedUdpHeader, match=reason) as caught:
        decode_udp_datagram(datagram)
    assert caught.value.offset == offset
    assert f"byte {offset}" in str(caught.value)


@pytest.mark.parametrize("host", ["", "a" * 256, "bad..name"])
def test_an_address_that_cannot_be_written_is_refused(host: str) -> None:
    with pytest.raises(MalformedUdpHeader):
        encode_udp_datagram(host, 1, b"")


def test_a_port_out_of_range_is_refused() -> None:
    with pytest.raises(MalformedUdpHeader, match="port 65536"):
        encode_udp_datagram("127.0.0.1", 65536, b"")


_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)
_hosts = st.one_of(
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(str),
    st.lists(_label, min_size=1, max_size=5).map(".".join).filter(lambda n: not _is_ip(n)),
)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


@given(host=_hosts, port=st.integers(0, 65535), data=st.binary(max_size=1500))
def test_what_is_encoded_decodes_to_the_same_destination_and_data(host: str, port: int, data: bytes) -> None:
    assert decode_udp_datagram(encode_udp_datagram(host, port, data)) == RelayedDatagram(host, port, data, 0)


@given(st.binary(max_size=300))
def test_any_bytes_decode_or_raise_the_typed_error(datagram: bytes) -> None:
    try:
        decode_udp_datagram(datagram)
    except MalformedUdpHeader:
        pass
