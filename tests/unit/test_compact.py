"""One set of compact-address rules for trackers, PEX and the DHT."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from torrent_engine.errors import PeerProtocolError
from torrent_engine.formats import compact
from torrent_engine.net.dht import krpc
from torrent_engine.net.peer.extensions import PexMessage, decode_compact_peers
from torrent_engine.net.tracker.messages import parse_compact_peers

V4 = bytes([192, 0, 2, 1, 0x1A, 0xE1])
V4_PORT0 = bytes([192, 0, 2, 2, 0, 0])
MAPPED = bytes(10) + b"\xff\xff" + bytes([198, 51, 100, 7]) + b"\x00\x10"
V6 = bytes.fromhex("20010db8000000000000000000000001") + b"\x1a\xe1"


def test_rules() -> None:
    assert compact.decode_peer(V4) == ("192.0.2.1", 6881)
    assert compact.decode_peer(V4_PORT0) is None
    assert compact.decode_peer(MAPPED) == ("198.51.100.7", 16)
    assert compact.decode_peer(V6) == ("2001:db8::1", 6881)
    with pytest.raises(ValueError):
        compact.decode_peer(b"12345")
    assert compact.decode_peers(V4 + V4_PORT0 + V4[:3], ipv6=False) == [("192.0.2.1", 6881)]
    assert compact.decode_peers(V4 * 10, ipv6=False, limit=3) == [("192.0.2.1", 6881)] * 3
    with pytest.raises(ValueError):
        compact.encode_peers([("::1", 1)], ipv6=False)
    with pytest.raises(ValueError):
        compact.encode_peer("127.0.0.1", 70000)


def test_the_three_users_agree() -> None:
    """Tracker, PEX and DHT decoders give the same addresses for the same bytes."""
    v4 = V4 + V4_PORT0
    v6 = MAPPED + V6
    expected4 = [("192.0.2.1", 6881)]
    expected6 = [("198.51.100.7", 16), ("2001:db8::1", 6881)]
    assert parse_compact_peers(v4, ipv6=False) == expected4
    assert parse_compact_peers(v6, ipv6=True) == expected6
    assert decode_compact_peers(v4, ipv6=False) == expected4
    assert decode_compact_peers(v6, ipv6=True) == expected6
    pex = PexMessage(added=(("192.0.2.1", 6881),)).encode()
    assert PexMessage.decode(pex).added == (("192.0.2.1", 6881),)
    node_id = bytes(range(20))
    nodes = krpc.decode_compact_nodes(node_id + v4[:6] + node_id + v4[6:])
    assert [(n.host, n.port) for n in nodes] == expected4
    nodes6 = krpc.decode_compact_nodes(node_id + MAPPED + node_id + V6, v6=True)
    assert [(n.host, n.port) for n in nodes6] == expected6


def test_partial_entries_are_each_protocols_error() -> None:
    with pytest.raises(PeerProtocolError):
        decode_compact_peers(V4[:5], ipv6=False)
    with pytest.raises(krpc.KrpcDecodeError):
        krpc.decode_compact_nodes(bytes(27))


@given(st.lists(st.tuples(st.ip_addresses(v=4).map(str), st.integers(1, 65535)), max_size=20))
def test_round_trip_v4(peers: list[tuple[str, int]]) -> None:
    assert compact.decode_peers(compact.encode_peers(peers, ipv6=False), ipv6=False) == peers


@given(st.lists(st.tuples(st.ip_addresses(v=6), st.integers(0, 65535)), max_size=20))
def test_v6_decoding_follows_the_rules(peers: list[tuple[ipaddress.IPv6Address, int]]) -> None:
    data = compact.encode_peers([(str(h), p) for h, p in peers], ipv6=True)
    expected = [(compact.normalize_host(h), p) for h, p in peers if p]
    assert compact.decode_peers(data, ipv6=True) == expected


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "::ffff:10.0.0.1", "fe80::1%eth0", b"\x7f\x00\x00\x01",
                                  b"\x00" * 15 + b"\x01"])
def test_parse_ip_is_ipaddress_kept_for_the_next_look_up(host: str | bytes) -> None:
    first = compact.parse_ip(host)
    assert first == ipaddress.ip_address(host) and str(first) == str(ipaddress.ip_address(host))
    assert compact.parse_ip(host) is first  # (kept: the same object, not a second parse)


@pytest.mark.parametrize("junk", ["", "example.org", "1.2.3", "01.2.3.4", "256.0.0.1", b"\x01\x02\x03"])
def test_parse_ip_refuses_what_ipaddress_refuses_each_time(junk: str | bytes) -> None:
    for _ in range(2):
        with pytest.raises(ValueError):
            compact.parse_ip(junk)
    assert not isinstance(junk, str) or not compact.is_ip_literal(junk)


def _by_ipaddress(data: bytes, size: int, skip: int, limit: int | None) -> list[tuple[bytes, str, int]]:
    """The rules read the slow, plain way: every whole entry's address through ``ipaddress``."""
    out: list[tuple[bytes, str, int]] = []
    for offset in range(0, len(data) - size + 1, size):
        entry = data[offset + skip:offset + size]
        port = int.from_bytes(entry[-2:], "big")
        if port and (limit is None or len(out) < limit):
            host = compact.normalize_host(ipaddress.ip_address(entry[:-2]))
            out.append((data[offset:offset + skip], host, port))
    return out


@st.composite
def _compact_lists(draw: st.DrawFn) -> tuple[bytes, bool]:
    """A compact list of either family, as lists come: entries with a node id or without, some
    of port 0, IPv4-mapped IPv6 addresses among the others, perhaps a partial entry at the end."""
    ipv6 = draw(st.booleans())
    # (IPv6: hextets mostly zero or one, so that runs of zeros and embedded IPv4 addresses come)
    hextet = st.one_of(st.sampled_from([0, 0, 1, 0xFFFF]), st.integers(0, 0xFFFF)).map(
        lambda h: h.to_bytes(2, "big"))
    address = (st.lists(hextet, min_size=8, max_size=8).map(b"".join) if ipv6
               else st.binary(min_size=4, max_size=4))
    if ipv6:
        mapped = st.binary(min_size=4, max_size=4).map(lambda a: bytes(10) + b"\xff\xff" + a)
        address = st.one_of(address, mapped)
    ports = st.one_of(st.just(0), st.integers(0, 65535)).map(lambda p: p.to_bytes(2, "big"))
    node_id = st.binary(min_size=compact.NODE_ID_LEN, max_size=compact.NODE_ID_LEN)
    with_ids = draw(st.booleans())
    entries = draw(st.lists(st.tuples(node_id, address, ports), max_size=12))
    tail = draw(st.binary(max_size=5))
    return b"".join((i if with_ids else b"") + a + p for i, a, p in entries) + tail, ipv6


@given(_compact_lists(), st.one_of(st.none(), st.integers(-1, 14)))
def test_fast_decoding_gives_what_ipaddress_gives(listed: tuple[bytes, bool], limit: int | None) -> None:
    """Any list (a trailing partial entry, port 0, mapped and plain addresses, a limit): the
    peers and the nodes decoded are those ``ipaddress`` reads, in order."""
    data, ipv6 = listed
    size = compact.peer_entry_size(ipv6)
    peers = [(host, port) for _, host, port in _by_ipaddress(data, size, 0, limit)]
    assert compact.decode_peers(data, ipv6=ipv6, limit=limit) == peers
    assert list(compact.iter_peers(data, ipv6=ipv6, limit=limit)) == peers
    nodes = _by_ipaddress(data, compact.NODE_ID_LEN + size, compact.NODE_ID_LEN, limit)
    assert compact.decode_nodes(data, ipv6=ipv6, limit=limit) == nodes
    if len(data) >= size:
        entry = data[:size]
        one = _by_ipaddress(entry, size, 0, None)
        assert compact.decode_peer(entry) == (one[0][1:] if one else None)
