"""Sans-I/O tracker messages: announce/scrape URLs, HTTP responses, UDP packets (BEP 3, 7, 12,
15, 23, 24, 31, 41, 48), including malformed input, which gives TrackerError or None, nothing else."""

from __future__ import annotations

import struct
from urllib.parse import parse_qs, unquote_to_bytes, urlsplit

import pytest

from torrent_engine.errors import TrackerError, TrackerRefused
from torrent_engine.formats.bencode import encode
from torrent_engine.net.tracker.messages import (
    MAX_RESPONSE_SIZE,
    RETRY_NEVER,
    UDP_PROTOCOL_ID,
    AnnounceRequest,
    announce_ip_refusal,
    announce_url,
    parse_announce_response,
    parse_compact_peers,
    parse_scrape_response,
    parse_udp_announce,
    parse_udp_connect,
    parse_udp_options,
    parse_udp_scrape,
    scrape_url,
    scrape_url_for,
    udp_announce_request,
    udp_connect_request,
    udp_scrape_request,
    udp_url_data,
)

INFO_HASH = bytes(range(0, 200, 10))  # 20 bytes: unreserved, reserved and non-ASCII values
PEER_ID = b"-TE0100-" + b"\x00\xff %&?=abcde"


def request(**kw: object) -> AnnounceRequest:
    base: dict[str, object] = dict(
        info_hash=INFO_HASH, peer_id=PEER_ID, port=6881, uploaded=1, downloaded=2, left=3
    )
    base.update(kw)
    return AnnounceRequest(**base)  # type: ignore[arg-type]


def raw_query(url: str) -> dict[str, list[bytes]]:
    """Query parameters with values decoded to raw bytes (not text)."""
    result: dict[str, list[bytes]] = {}
    for pair in urlsplit(url).query.split("&"):
        name, _, value = pair.partition("=")
        result.setdefault(name, []).append(unquote_to_bytes(value))
    return result


# ------------------------------------------------------------------ announce URL


def test_announce_url_carries_every_bep3_parameter_with_binary_hashes() -> None:
    url = announce_url(
        "http://t.example:8080/announce",
        request(event="started", numwant=80, key=0xDEADBEEF, tracker_id=b"id 1"),
    )
    q = raw_query(url)
    assert url.startswith("http://t.example:8080/announce?")
    assert q["info_hash"] == [INFO_HASH]
    assert q["peer_id"] == [PEER_ID]
    assert q["port"] == [b"6881"] and q["uploaded"] == [b"1"] and q["downloaded"] == [b"2"]
    assert q["left"] == [b"3"] and q["event"] == [b"started"] and q["compact"] == [b"1"]
    assert q["numwant"] == [b"80"] and q["key"] == [b"deadbeef"] and q["trackerid"] == [b"id 1"]
    # binary bytes are escaped, never sent raw
    assert " " not in url and "\x00" not in url


def test_announce_url_without_event_or_tracker_id_omits_them() -> None:
    q = raw_query(announce_url("http://t/announce", request()))
    assert "event" not in q and "trackerid" not in q and "ip" not in q


@pytest.mark.parametrize("ip", ["203.0.113.7", "2001:db8::7", "seedbox.example.org"])
def test_an_announced_address_is_the_ip_parameter_and_an_ipv4_one_the_udp_field(ip: str) -> None:
    assert announce_ip_refusal(ip) is None
    assert raw_query(announce_url("http://t/announce", request(ip=ip)))["ip"] == [ip.encode()]
    field = struct.unpack_from(">I", udp_announce_request(1, 1, request(ip=ip)), 84)[0]
    assert field == (0xCB007107 if ip == "203.0.113.7" else 0)  # (the field holds IPv4 alone)


@pytest.mark.parametrize("bad", ["a b", "a..b", "-a.b", "1.2.3", "x" * 254, "host/path", "h?x=1", 7, None])
def test_an_announced_address_that_is_neither_an_ip_address_nor_a_host_name_is_refused(bad: object) -> None:
    assert announce_ip_refusal(bad) is not None
    assert announce_ip_refusal("") is None  # (none)


def test_announce_url_keeps_existing_query_and_drops_fragment() -> None:
    url = announce_url("http://t/announce.php?passkey=abc#frag", request())
    assert url.startswith("http://t/announce.php?passkey=abc&info_hash=")
    assert "#" not in url
    assert parse_qs(urlsplit(url).query)["passkey"] == ["abc"]
    assert announce_url("http://t/a?", request()).startswith("http://t/a?info_hash=")


def test_announce_request_validates_its_fields() -> None:
    with pytest.raises(ValueError):
        request(info_hash=b"short")
    with pytest.raises(ValueError):
        request(port=70000)
    with pytest.raises(ValueError):
        request(event="paused")


# ------------------------------------------------------------------ announce response


def test_compact_response_with_every_optional_field() -> None:
    body = encode(
        {
            "interval": 1800,
            "min interval": 900,
            "complete": 5,
            "incomplete": 7,
            "tracker id": b"xyz",
            "warning message": "be nice",
            "external ip": bytes([203, 0, 113, 9]),
            "peers": bytes([10, 0, 0, 1, 0x1A, 0xE1, 10, 0, 0, 2, 0, 80]),
            "peers6": bytes(15) + b"\x01" + b"\x1a\xe1",
        }
    )
    r = parse_announce_response(body)
    assert r.interval == 1800 and r.min_interval == 900
    assert r.seeders == 5 and r.leechers == 7
    assert r.tracker_id == b"xyz" and r.warning == "be nice"
    assert r.external_ip == "203.0.113.9"
    assert r.peers == [("10.0.0.1", 6881), ("10.0.0.2", 80), ("::1", 6881)]
    assert r.retry_in is None


def test_dictionary_peers_ipv4_ipv6_and_names_bad_entries_skipped() -> None:
    body = encode(
        {
            "interval": 60,
            "peers": [
                {"ip": "192.168.1.5", "port": 51413, "peer id": b"x" * 20},
                {"ip": "2001:db8::7", "port": 6881},
                {"ip": "::ffff:10.1.2.3", "port": 1},
                {"ip": "peer.example.org", "port": 2},
                {"ip": "bad host!", "port": 3},
                {"ip": "10.0.0.1", "port": 0},
                {"ip": "10.0.0.1", "port": 70000},
                {"port": 5},
                b"not a dict",
            ],
        }
    )
    assert parse_announce_response(body).peers == [
        ("192.168.1.5", 51413),
        ("2001:db8::7", 6881),
        ("10.1.2.3", 1),
        ("peer.example.org", 2),
    ]


def test_external_ip_ipv6_and_garbage() -> None:
    v6 = parse_announce_response(encode({"interval": 1, "peers": b"", "external ip": bytes(15) + b"\x01"}))
    assert v6.external_ip == "::1"
    odd = parse_announce_response(encode({"interval": 1, "peers": b"", "external ip": b"abc"}))
    assert odd.external_ip is None


def test_failure_reason_raises_tracker_refused_with_retry_in() -> None:
    with pytest.raises(TrackerRefused) as info:
        parse_announce_response(encode({"failure reason": "Overloaded", "retry in": "5"}), "http://t/a")
    assert info.value.reason == "Overloaded" and info.value.retry_in == 300
    assert info.value.url == "http://t/a"
    with pytest.raises(TrackerRefused) as info:
        parse_announce_response(encode({"failure reason": "Not a tracker", "retry in": "never"}))
    assert info.value.retry_in == RETRY_NEVER
    with pytest.raises(TrackerRefused) as info:
        parse_announce_response(encode({"failure reason": "x", "retry in": 2}))
    assert info.value.retry_in == 120
    with pytest.raises(TrackerRefused) as info:
        parse_announce_response(encode({"failure reason": "x"}))
    assert info.value.retry_in is None


@pytest.mark.parametrize(
    "body, message",
    [
        (b"d8:intervali5e5:peers7:abcdefge", "multiple of 6"),
        (b"<html>Not Found</html>", "not valid bencode"),
        (b"d8:intervali5e", "not valid bencode"),
        (b"", "not valid bencode"),
        (b"li1ee", "not a bencoded dictionary"),
        (b"d5:peers0:e", "interval"),
        (b"d8:interval3:abc5:peers0:e", "interval"),
        (b"d8:intervali-5e5:peers0:e", "interval"),
        (b"d8:intervali5e5:peersi3ee", "neither a string nor a list"),
    ],
)
def test_malformed_announce_responses_are_tracker_errors(body: bytes, message: str) -> None:
    with pytest.raises(TrackerError, match=message):
        parse_announce_response(body, "http://t/announce")


def test_huge_body_is_refused_before_decoding() -> None:
    with pytest.raises(TrackerError, match="larger than"):
        parse_announce_response(b"d8:intervali5e5:peers" + b"0:" + b" " * MAX_RESPONSE_SIZE + b"e")


def test_unsorted_keys_from_sloppy_trackers_are_accepted() -> None:
    assert parse_announce_response(b"d5:peers0:8:intervali9ee").interval == 9


def test_compact_peer_parsing_drops_port_zero_and_maps_v4_in_v6() -> None:
    data = bytes([1, 2, 3, 4, 0, 0, 5, 6, 7, 8, 0, 9])
    assert parse_compact_peers(data, ipv6=False) == [("5.6.7.8", 9)]
    mapped = bytes(10) + b"\xff\xff" + bytes([9, 9, 9, 9]) + b"\x00\x10"
    assert parse_compact_peers(mapped, ipv6=True) == [("9.9.9.9", 16)]


# ------------------------------------------------------------------ scrape (BEP 48)


@pytest.mark.parametrize(
    "announce, expected",
    [
        ("http://example.com/announce", "http://example.com/scrape"),
        ("http://example.com/x/announce", "http://example.com/x/scrape"),
        ("http://example.com/announce.php", "http://example.com/scrape.php"),
        ("http://example.com/announce?x2%0644", "http://example.com/scrape?x2%0644"),
        ("https://example.com:8443/a/announce?passkey=1", "https://example.com:8443/a/scrape?passkey=1"),
        ("http://example.com/a", None),
        ("http://example.com/announce/x", None),
        ("http://example.com/x%064announce", None),
        ("http://example.com/", None),
        ("udp://example.com:80/announce", None),
        ("http://[::1/announce", None),  # (cannot be parsed: not scraped, nothing raised)
    ],
)
def test_scrape_url_derivation(announce: str, expected: str | None) -> None:
    assert scrape_url(announce) == expected


def test_scrape_url_for_several_hashes_and_unsupported() -> None:
    url = scrape_url_for("http://t/announce?k=v", [b"\x01" * 20, b"\xfe" * 20])
    assert url.startswith("http://t/scrape?k=v&")
    assert raw_query(url)["info_hash"] == [b"\x01" * 20, b"\xfe" * 20]
    with pytest.raises(TrackerError, match="scrape"):
        scrape_url_for("http://t/tracker", [b"\x01" * 20])
    with pytest.raises(TrackerError, match="malformed tracker URL"):
        scrape_url_for("http://[::1/announce", [b"\x01" * 20])


def test_scrape_response() -> None:
    body = encode(
        {
            "files": {
                b"a" * 20: {"complete": 3, "downloaded": 10, "incomplete": 4, "name": "x"},
                b"b" * 20: {"complete": 1},
                b"short": {"complete": 1},
                b"c" * 20: 5,
            },
            "flags": {"min_request_interval": 60},
        }
    )
    r = parse_scrape_response(body)
    assert set(r.files) == {b"a" * 20, b"b" * 20}
    a = r.files[b"a" * 20]
    assert (a.complete, a.downloaded, a.incomplete) == (3, 10, 4)
    b = r.files[b"b" * 20]
    assert (b.complete, b.downloaded, b.incomplete) == (1, 0, 0)


@pytest.mark.parametrize("body", [b"d5:filesi1ee", b"de", b"garbage", b"d5:filesle"])
def test_malformed_scrape_responses(body: bytes) -> None:
    with pytest.raises(TrackerError):
        parse_scrape_response(body)


def test_scrape_failure_reason() -> None:
    with pytest.raises(TrackerRefused, match="no scrape"):
        parse_scrape_response(encode({"failure reason": "no scrape"}))


# ------------------------------------------------------------------ UDP (BEP 15, BEP 41)


def test_udp_connect_roundtrip() -> None:
    assert udp_connect_request(0x01020304) == struct.pack(">QII", UDP_PROTOCOL_ID, 0, 0x01020304)
    reply = struct.pack(">IIQ", 0, 0x01020304, 0xAABBCCDDEEFF0011)
    assert parse_udp_connect(reply, 0x01020304) == 0xAABBCCDDEEFF0011


def test_udp_announce_packet_layout_and_url_data_option() -> None:
    r = request(event="completed", numwant=-1, key=7, uploaded=2**40)
    packet = udp_announce_request(0x1122, 99, r, b"/announce?passkey=x")
    fields = struct.unpack_from(">QII20s20sQQQIIIiH", packet)
    assert fields == (0x1122, 1, 99, INFO_HASH, PEER_ID, 2, 3, 2**40, 1, 0, 7, -1, 6881)
    assert packet[98:] == b"\x02\x13/announce?passkey=x"
    assert parse_udp_options(packet[98:]) == b"/announce?passkey=x"
    events = {"": 0, "completed": 1, "started": 2, "stopped": 3}
    for name, code in events.items():
        p = udp_announce_request(1, 1, request(event=name))
        assert struct.unpack_from(">I", p, 80)[0] == code and len(p) == 98


def test_udp_url_data_is_chunked_by_255_bytes() -> None:
    long = b"/" + b"a" * 600
    options = udp_announce_request(1, 1, request(), long)[98:]
    assert options[0] == 2 and options[1] == 255 and options[257] == 2 and options[258] == 255
    assert options[514] == 2 and options[515] == 601 - 510
    assert parse_udp_options(options) == long
    # NOP and EndOfOptions (BEP 41), unknown options are skipped by their length
    assert parse_udp_options(b"\x01\x02\x02/a\x09\x01z\x02\x01b\x00\x02\x01c") == b"/ab"


def test_udp_url_data_from_url() -> None:
    assert udp_url_data("udp://t:80") == b""
    assert udp_url_data("udp://t:80/") == b""
    assert udp_url_data("udp://t:80/announce?k=1") == b"/announce?k=1"


def test_udp_announce_reply_ipv4_and_ipv6() -> None:
    head = struct.pack(">IIIII", 1, 5, 1800, 3, 4)
    r = parse_udp_announce(head + bytes([1, 2, 3, 4, 0x1A, 0xE1]), 5)
    assert r is not None
    assert (r.interval, r.leechers, r.seeders, r.peers) == (1800, 3, 4, [("1.2.3.4", 6881)])
    r6 = parse_udp_announce(head + bytes(15) + b"\x01\x00\x50", 5, ipv6=True)
    assert r6 is not None and r6.peers == [("::1", 80)]
    # trailing partial peer entry is ignored (BEP 15: do not assume exact sizes)
    r7 = parse_udp_announce(head + bytes([1, 2, 3, 4, 0, 1, 9, 9]), 5)
    assert r7 is not None and r7.peers == [("1.2.3.4", 1)]


def test_udp_scrape_roundtrip() -> None:
    hashes = [b"a" * 20, b"b" * 20]
    packet = udp_scrape_request(7, 8, hashes)
    assert packet == struct.pack(">QII", 7, 2, 8) + b"a" * 20 + b"b" * 20
    reply = struct.pack(">II", 2, 8) + struct.pack(">III", 1, 2, 3) + struct.pack(">III", 4, 5, 6)
    r = parse_udp_scrape(reply, 8, hashes)
    assert r is not None
    assert (r.files[b"b" * 20].complete, r.files[b"b" * 20].downloaded, r.files[b"b" * 20].incomplete) == (
        4,
        5,
        6,
    )
    with pytest.raises(TrackerError, match="entries"):
        parse_udp_scrape(reply[:-1], 8, hashes)
    with pytest.raises(ValueError):
        udp_scrape_request(7, 8, [])


def test_udp_replies_not_for_us_are_ignored() -> None:
    good = struct.pack(">IIQ", 0, 42, 1)
    assert parse_udp_connect(good, 43) is None  # wrong transaction
    assert parse_udp_connect(good[:7], 42) is None  # shorter than a header
    assert parse_udp_connect(b"", 42) is None
    assert parse_udp_announce(struct.pack(">IIIII", 1, 41, 1, 1, 1), 42) is None
    assert parse_udp_scrape(struct.pack(">II", 2, 41), 42, [b"a" * 20]) is None


def test_udp_wrong_action_truncated_and_error_replies_are_tracker_errors() -> None:
    with pytest.raises(TrackerError, match="action 1, expected 0"):
        parse_udp_connect(struct.pack(">IIQ", 1, 42, 1), 42)
    with pytest.raises(TrackerError, match="truncated"):
        parse_udp_connect(struct.pack(">IIH", 0, 42, 1), 42)
    with pytest.raises(TrackerRefused, match="go away"):
        parse_udp_announce(struct.pack(">II", 3, 42) + b"go away\x00", 42, url="udp://t:1")
    with pytest.raises(TrackerRefused, match="tracker error"):
        parse_udp_connect(struct.pack(">II", 3, 42), 42)


def test_opentracker_bare_header_for_unknown_torrent() -> None:
    # opentracker answers an announce for an info-hash off its allow-list with just the header.
    with pytest.raises(TrackerError, match="does not know this torrent"):
        parse_udp_announce(struct.pack(">II", 1, 42), 42)


def test_a_malformed_optional_field_is_left_out_not_fatal() -> None:
    good = b"\x01\x02\x03\x04\x1a\xe1"
    body = (b"d8:intervali1800e11:external ip3:abc5:peers6:" + good + b"6:peers617:" + bytes(17) + b"e")
    response = parse_announce_response(body, "http://t/announce")
    assert response.peers == [("1.2.3.4", 6881)] and response.external_ip is None
    assert response.ignored == ("'peers6' length 17 is not a multiple of 18",
                                "'external ip' is not a 4- or 16-byte address")
    body = b"d8:intervali1800e5:peers6:" + good + b"6:peers6i3ee"
    assert parse_announce_response(body).ignored == ("'peers6' is neither a string nor a list",)


def test_a_huge_peer_list_costs_only_what_the_pool_keeps() -> None:
    import tracemalloc

    from torrent_engine.net.tracker.messages import MAX_REPLY_PEERS

    count = 349_000  # just under the 2 MiB reply cap
    compact = b"".join(struct.pack(">IH", 0x0A000000 + i, 6881) for i in range(count))  # ~2 MiB
    body = b"d8:intervali1800e5:peers" + str(len(compact)).encode() + b":" + compact + b"e"
    tracemalloc.start()
    try:
        response = parse_announce_response(body)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(response.peers) == MAX_REPLY_PEERS
    assert peak < len(body) + 8 * 1024 * 1024  # the decoded copy plus the kept peers, not 349 000 tuples
    six = parse_announce_response(b"d8:intervali1800e5:peers12:" + compact[:12] + b"e", max_peers=1)
    assert six.peers == [("10.0.0.0", 6881)]
