"""The IP filter lists: each format, gzip, IPv6, merging, bad lines counted; the lookup against
a brute-force check of every range."""

from __future__ import annotations

import gzip
import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from torrent_engine.policy.ipfilter import IpFilter, IpFilterError, parse_list


def _ip(text: str) -> int:
    return int(ipaddress.ip_address(text))


def test_emule_dat_levels_below_127_block() -> None:
    parsed = parse_list(b"001.002.004.000 - 001.002.004.255 , 000 , China Internet Information Center\n"
                        b"001.002.005.000 - 001.002.005.255 , 126 , blocked too\n"
                        b"001.002.006.000 - 001.002.006.255 , 127 , allowed (eMule's filter level)\n"
                        b"001.002.007.000 - 001.002.007.255 , 200 , allowed\n")
    f = parsed.filter
    assert f.blocked("1.2.4.0") and f.blocked("1.2.4.255") and f.blocked("1.2.5.9")
    assert not f.blocked("1.2.6.1") and not f.blocked("1.2.7.1") and not f.blocked("1.2.3.255")
    assert parsed.rules == 2 and parsed.bad_lines == 0
    assert f.ranges()[0] == ((_ip("1.2.4.0"), _ip("1.2.5.255")),)  # (adjacent: one range)


def test_peerguardian_p2p_with_colons_and_commas_in_the_description() -> None:
    parsed = parse_list(b"# PeerGuardian list\nSome Org, Inc:10.0.0.0-10.0.0.255\r\n"
                        b"a:b:c - d:192.0.2.1-192.0.2.9\n")
    assert parsed.rules == 2 and parsed.bad_lines == 0
    f = parsed.filter
    assert f.blocked("10.0.0.77") and f.blocked("192.0.2.9")
    assert not f.blocked("10.0.1.0") and not f.blocked("192.0.2.10")


def test_cidr_lines_single_addresses_and_ipv6() -> None:
    parsed = parse_list(b"192.168.0.0/16\n203.0.113.7\n2001:db8::/32\n"
                        b"2001:db9::1 - 2001:db9::ff , 0 , six\n// comment\n\n")
    f = parsed.filter
    assert parsed.rules == 4
    assert f.blocked("192.168.255.255") and not f.blocked("192.169.0.0")
    assert f.blocked("203.0.113.7") and not f.blocked("203.0.113.8")
    assert f.blocked("2001:db8:ffff::1") and not f.blocked("2001:db7::1")
    assert f.blocked("2001:db9::80") and not f.blocked("2001:db9::100")
    assert f.blocked("::ffff:192.168.1.1")  # (an IPv4-mapped address is the IPv4 one)
    assert not f.blocked("tracker.example")  # (a host name is judged by its addresses)


def test_gzip_of_any_format_is_read_by_its_magic() -> None:
    raw = b"1.0.0.0 - 1.0.0.255 , 0 , x\nOrg:2.0.0.0-2.0.0.255\n3.0.0.0/24\n"
    parsed = parse_list(gzip.compress(raw))
    assert parsed.rules == 3
    assert all(parsed.filter.blocked(a) for a in ("1.0.0.1", "2.0.0.1", "3.0.0.1"))


def test_a_damaged_gzip_stream_is_refused_whole() -> None:
    with pytest.raises(IpFilterError, match="gzip"):
        parse_list(gzip.compress(b"1.0.0.0/8\n" * 100)[:-20])


def test_overlapping_ranges_merge() -> None:
    parsed = parse_list(b"10.0.0.0 - 10.0.0.100\n10.0.0.50 - 10.0.0.200\n10.0.0.0/28\n10.0.1.0-10.0.1.1\n")
    v4, v6 = parsed.filter.ranges()
    assert v4 == ((_ip("10.0.0.0"), _ip("10.0.0.200")), (_ip("10.0.1.0"), _ip("10.0.1.1")))
    assert v6 == ()
    assert parsed.rules == 4 and len(parsed.filter) == 2


def test_bad_lines_are_counted_and_the_first_reported_with_number_and_reason() -> None:
    lines = [b"1.2.3.0/24", b"nonsense"] + [b"300.1.1.1 - 300.1.1.2"] * 8 + [b"5.5.5.9 - 5.5.5.1",
                                                                             b"1.1.1.1 - ::1"]
    parsed = parse_list(b"\n".join(lines))
    assert parsed.rules == 1
    assert parsed.bad_lines == 11
    assert [b.line for b in parsed.first_bad] == [2, 3, 4, 5, 6]
    assert "nonsense" in parsed.first_bad[0].reason
    assert "not an IP address" in parsed.first_bad[1].reason
    assert parsed.filter.blocked("1.2.3.4")


def test_bad_level_and_reversed_range_say_why() -> None:
    parsed = parse_list(b"1.1.1.1 - 1.1.1.2 , high , x\n9.9.9.9 - 9.9.9.1\n")
    assert parsed.bad_lines == 2
    assert "level" in parsed.first_bad[0].reason
    assert "start is after its end" in parsed.first_bad[1].reason


def test_union() -> None:
    a = parse_list(b"1.0.0.0/24\n").filter
    b = parse_list(b"1.0.1.0/24\n::1\n").filter
    u = a.union(b)
    assert len(u) == 2 and u.blocked("1.0.1.5") and u.blocked("1.0.0.5") and u.blocked("::1")


_V4 = st.integers(0, 2**32 - 1)


@given(st.lists(st.tuples(_V4, _V4).map(sorted), max_size=40), st.lists(_V4, min_size=1, max_size=40))
def test_blocked_is_any_range_containing_it(ranges: list[list[int]], probes: list[int]) -> None:
    f = IpFilter([(a, b) for a, b in ranges])
    edges = [x for a, b in ranges for x in (a - 1, a, b, b + 1) if 0 <= x < 2**32]
    for n in probes + edges:
        address = str(ipaddress.IPv4Address(n))
        assert f.blocked(address) == any(a <= n <= b for a, b in ranges)


@given(st.lists(st.tuples(st.integers(0, 2**128 - 1), st.integers(0, 2**128 - 1)).map(sorted), max_size=20),
       st.lists(st.integers(0, 2**128 - 1), min_size=1, max_size=20))
def test_blocked_ipv6_is_any_range_containing_it(ranges: list[list[int]], probes: list[int]) -> None:
    f = IpFilter(v6=[(a, b) for a, b in ranges])
    for n in probes + [a for a, _ in ranges] + [b for _, b in ranges]:
        address = str(ipaddress.IPv6Address(n))
        mapped = n >> 32 == 0xFFFF  # (::ffff:a.b.c.d is looked up as IPv4)
        assert f.blocked(address) == (not mapped and any(a <= n <= b for a, b in ranges))


@pytest.mark.anyio
async def test_trackers_at_blocked_addresses_are_refused_by_literal_or_by_name() -> None:
    from torrent_engine.config import Config
    from torrent_engine.engine.shared import SharedResources

    shared = SharedResources(Config(dht_enabled=False, port_mapping=False, lsd_enabled=False))
    loopback = parse_list(b"127.0.0.0/8\n::1\n").filter
    shared.set_ip_filter(loopback, trackers=False)
    assert await shared.tracker_refused("http://localhost:6969/announce") is None  # (trackers: off)
    shared.set_ip_filter(loopback, trackers=True)
    why = await shared.tracker_refused("http://localhost:6969/announce")
    assert why is not None and "localhost resolves to" in why
    assert "127.0.0.5 is blocked" in str(await shared.tracker_refused("udp://127.0.0.5:80"))
    shared.set_ip_filter(parse_list(b"127.0.0.5\n").filter, trackers=True)
    assert await shared.tracker_refused("http://127.0.0.1:6969/announce") is None
    assert await shared.tracker_refused("http://[::1]:6969/announce") is None
