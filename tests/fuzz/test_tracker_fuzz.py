"""Property tests: arbitrary bytes from a tracker give a parsed value, None or TrackerError."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from torrent_engine.errors import HttpError, TrackerError
from torrent_engine.formats.bencode import encode
from torrent_engine.net.httpclient import ResponseReader
from torrent_engine.net.tracker.messages import (
    AnnounceRequest,
    announce_url,
    parse_announce_response,
    parse_scrape_response,
    parse_udp_announce,
    parse_udp_connect,
    parse_udp_options,
    parse_udp_scrape,
    udp_announce_request,
)

bvalues = st.recursive(
    st.integers(-(2**63), 2**63 - 1) | st.binary(max_size=40),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(
            st.sampled_from(
                [
                    b"interval",
                    b"peers",
                    b"peers6",
                    b"min interval",
                    b"failure reason",
                    b"retry in",
                    b"external ip",
                    b"tracker id",
                    b"files",
                    b"complete",
                    b"ip",
                    b"port",
                    b"x",
                ]
            ),
            children,
            max_size=6,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_http_parsers_on_random_bytes(data: bytes) -> None:
    for parse in (parse_announce_response, parse_scrape_response):
        try:
            parse(data)
        except TrackerError:
            pass


@settings(max_examples=400, deadline=None)
@given(bvalues)
def test_http_parsers_on_random_bencoded_structures(value: object) -> None:
    data = encode(value)
    for parse in (parse_announce_response, parse_scrape_response):
        try:
            parse(data)
        except TrackerError:
            pass


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 4), st.binary(max_size=120), st.integers(0, 2**32 - 1))
def test_udp_parsers_on_random_datagrams(tid: int, action: int, rest: bytes, expected: int) -> None:
    data = struct.pack(">II", action, tid) + rest
    two = [b"a" * 20, b"b" * 20]
    for candidate in (data, data[: len(rest) % 9], rest):
        for tid_wanted in (expected, tid):
            for call in (parse_udp_connect, parse_udp_announce):
                try:
                    call(candidate, tid_wanted)
                except TrackerError:
                    pass
            try:
                parse_udp_announce(candidate, tid_wanted, ipv6=True)
            except TrackerError:
                pass
            try:
                parse_udp_scrape(candidate, tid_wanted, two)
            except TrackerError:
                pass
    parse_udp_options(rest)


@settings(max_examples=200, deadline=None)
@given(
    st.binary(min_size=20, max_size=20),
    st.binary(min_size=20, max_size=20),
    st.binary(max_size=300),
    st.integers(0, 2**64 - 1),
    st.integers(-(2**40), 2**40),
)
def test_builders_accept_any_binary_ids(
    ih: bytes, pid: bytes, url_data: bytes, left: int, numwant: int
) -> None:
    req = AnnounceRequest(info_hash=ih, peer_id=pid, port=1, left=left, numwant=numwant)
    url = announce_url("http://t/announce", req)
    assert url.isascii() and " " not in url
    packet = udp_announce_request(1, 2, req, url_data)
    assert parse_udp_options(packet[98:]) == url_data


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.lists(st.integers(1, 50), max_size=10))
def test_http_response_reader_on_random_bytes(data: bytes, cuts: list[int]) -> None:
    for prefix in (
        b"",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n\r\n",
    ):
        reader = ResponseReader(max_body=1000)
        stream = prefix + data
        try:
            pos = 0
            for cut in cuts:
                reader.feed(stream[pos : pos + cut])
                pos += cut
            reader.feed(stream[pos:])
            reader.feed_eof()
        except HttpError:
            continue
        assert reader.response is not None
        assert len(reader.response.body) <= 1000
