"""LSD (BEP 14): the announce codec, the announce schedule, and the service's handling of
received datagrams (no sockets: datagrams are handed in directly)."""

from __future__ import annotations

import pytest

from torrent_engine.errors import LsdError
from torrent_engine.net.lsd import (
    MULTICAST_V4,
    MULTICAST_V6,
    AnnounceSchedule,
    LsdService,
    encode_announce,
    parse_announce,
)
from torrent_engine.net.lsd.codec import MAX_DATAGRAM, MAX_INFO_HASHES, SEND_LIMIT, host_header

IH1 = bytes(range(20))
IH2 = bytes(range(20, 40))


# -- codec ---------------------------------------------------------------------------------
def test_encode_matches_bep14_layout() -> None:
    data = encode_announce(6881, [IH1], cookie="abc123")
    assert data == (b"BT-SEARCH * HTTP/1.1\r\nHost: 239.192.152.143:6771\r\nPort: 6881\r\n"
                    b"Infohash: " + IH1.hex().encode() + b"\r\ncookie: abc123\r\n\r\n\r\n")


def test_ipv6_host_header_has_brackets() -> None:
    assert host_header(MULTICAST_V6) == "[ff15::efc0:988f]:6771"
    assert b"Host: [ff15::efc0:988f]:6771\r\n" in encode_announce(1, [IH1], group=MULTICAST_V6)


def test_round_trip_with_several_info_hashes() -> None:
    hashes = [bytes([i]) * 20 for i in range(MAX_INFO_HASHES)]
    data = encode_announce(65535, hashes, cookie="c", group=MULTICAST_V6)
    assert len(data) <= SEND_LIMIT
    announce = parse_announce(data)
    assert announce.port == 65535 and list(announce.info_hashes) == hashes and announce.cookie == "c"
    assert announce.host == "[ff15::efc0:988f]:6771"


def test_parse_what_libtorrent_sends() -> None:
    # libtorrent: upper-case hex is allowed, the cookie is a hex number, and a trailing blank line
    data = (b"BT-SEARCH * HTTP/1.1\r\nHost: 239.192.152.143:6771\r\nPort: 6881\r\n"
            b"Infohash: " + IH1.hex().upper().encode() + b"\r\ncookie: 5f3a\r\n\r\n\r\n")
    announce = parse_announce(data)
    assert announce == parse_announce(data.replace(b"\r\n", b"\n"))
    assert announce.info_hashes == (IH1,) and announce.port == 6881 and announce.cookie == "5f3a"


def test_header_names_are_case_insensitive_and_unknown_ones_ignored() -> None:
    data = (b"BT-SEARCH * HTTP/1.1\r\nPORT: 7000\r\nX-Future: yes\r\ninfohash: " + IH2.hex().encode()
            + b"\r\n\r\n")
    announce = parse_announce(data)
    assert announce.port == 7000 and announce.info_hashes == (IH2,) and announce.cookie is None


def test_duplicate_info_hashes_count_once() -> None:
    line = b"Infohash: " + IH1.hex().encode() + b"\r\n"
    assert parse_announce(b"BT-SEARCH * HTTP/1.1\r\nPort: 1\r\n" + line * 3 + b"\r\n").info_hashes == (IH1,)


@pytest.mark.parametrize(("data", "field"), [
    (b"M-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: " + IH1.hex().encode() + b"\r\n\r\n", "request line"),
    (b"BT-SEARCH / HTTP/1.1\r\nPort: 1\r\nInfohash: " + IH1.hex().encode() + b"\r\n\r\n", "request line"),
    (b"", "request line"),
    (b"BT-SEARCH * HTTP/1.1\r\nInfohash: " + IH1.hex().encode() + b"\r\n\r\n", "Port"),
    (b"BT-SEARCH * HTTP/1.1\r\nPort: 0\r\nInfohash: " + IH1.hex().encode() + b"\r\n\r\n", "Port"),
    (b"BT-SEARCH * HTTP/1.1\r\nPort: 70000\r\nInfohash: " + IH1.hex().encode() + b"\r\n\r\n", "Port"),
    (b"BT-SEARCH * HTTP/1.1\r\nPort: -1\r\nInfohash: " + IH1.hex().encode() + b"\r\n\r\n", "Port"),
    (b"BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nPort: 2\r\nInfohash: " + IH1.hex().encode() + b"\r\n\r\n", "Port"),
    (b"BT-SEARCH * HTTP/1.1\r\nPort: 1\r\n\r\n", "Infohash"),
    (b"BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: abc\r\n\r\n", "Infohash"),
    (b"BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: " + b"zz" * 20 + b"\r\n\r\n", "Infohash"),
    (b"BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nno colon here\r\n\r\n", "header"),
    (b"BT-SEARCH * HTTP/1.1\r\nPort: \xff\r\n\r\n", "datagram"),
    (b"BT-SEARCH * HTTP/1.1\r\n" + b"X: y\r\n" * 500, "datagram"),
])
def test_malformed_announces_are_typed_errors(data: bytes, field: str) -> None:
    with pytest.raises(LsdError) as info:
        parse_announce(data)
    assert info.value.field == field


def test_too_many_info_hashes_received() -> None:
    lines = b"".join(b"Infohash: " + bytes([i, 1]).hex().encode() * 10 + b"\r\n" for i in range(33))
    data = b"BT-SEARCH * HTTP/1.1\r\nPort: 1\r\n" + lines + b"\r\n"
    assert len(data) <= MAX_DATAGRAM
    with pytest.raises(LsdError, match="more than 32"):
        parse_announce(data)


def test_encode_refuses_what_it_cannot_send() -> None:
    with pytest.raises(LsdError):
        encode_announce(0, [IH1])
    with pytest.raises(LsdError):
        encode_announce(1, [])
    with pytest.raises(LsdError):
        encode_announce(1, [b"short"])
    with pytest.raises(LsdError):
        encode_announce(1, [IH1] * (MAX_INFO_HASHES + 1))
    with pytest.raises(LsdError):
        encode_announce(1, [IH1], cookie="bad\r\ncookie")


# -- schedule ------------------------------------------------------------------------------
def test_new_torrent_is_announced_at_once_then_every_five_minutes() -> None:
    schedule = AnnounceSchedule()
    schedule.add(IH1, 100.0)
    assert schedule.due(100.0) == [IH1]
    assert schedule.due(100.0) == []
    assert schedule.next_time(100.0) == 400.0
    assert schedule.due(399.0) == []
    assert schedule.due(400.0) == [IH1]


def test_torrents_due_together_share_one_announce() -> None:
    schedule = AnnounceSchedule(per_message=2)
    for i in range(3):
        schedule.add(bytes([i]) * 20, 0.0)
    assert schedule.due(0.0) == [bytes([0]) * 20, bytes([1]) * 20]
    assert schedule.due(0.0) == [bytes([2]) * 20]


def test_global_message_budget() -> None:
    schedule = AnnounceSchedule(burst=2, message_interval=60.0, per_message=1)
    for i in range(5):
        schedule.add(bytes([i]) * 20, 0.0)
    assert len(schedule.due(0.0)) == 1 and len(schedule.due(0.0)) == 1
    assert schedule.due(0.0) == []  # the burst is spent
    assert schedule.next_time(0.0) == 60.0
    assert schedule.due(59.0) == []
    assert len(schedule.due(60.0)) == 1
    assert schedule.due(60.0) == []


def test_restart_within_the_interval_is_not_announced_again() -> None:
    schedule = AnnounceSchedule()
    schedule.add(IH1, 0.0)
    assert schedule.due(0.0) == [IH1]
    schedule.remove(IH1)
    assert IH1 not in schedule and schedule.next_time(10.0) is None
    schedule.add(IH1, 10.0)  # paused and resumed: no second announce on this start
    assert schedule.due(10.0) == [] and schedule.next_time(10.0) == 300.0
    schedule.remove(IH1)
    schedule.add(IH1, 1000.0)  # long after: announced at once
    assert schedule.due(1000.0) == [IH1]


# -- the service without sockets -----------------------------------------------------------
def _service() -> tuple[LsdService, list[tuple[str, int]]]:
    service = LsdService(listen_port=6881, clock=lambda: 0.0)
    found: list[tuple[str, int]] = []
    service.add_torrent(IH1, found.extend)
    return service, found


def test_peers_go_to_the_torrent_announced() -> None:
    service, found = _service()
    other: list[tuple[str, int]] = []
    service.add_torrent(IH2, other.extend)
    service.datagram_received(encode_announce(7000, [IH1], cookie="theirs"), ("10.0.0.7", 6771))
    assert found == [("10.0.0.7", 7000)] and other == []
    service.datagram_received(encode_announce(7001, [bytes(20)], cookie="theirs"), ("10.0.0.8", 6771))
    assert found == [("10.0.0.7", 7000)] and other == []  # a torrent we do not run


def test_own_announces_are_ignored_by_cookie() -> None:
    service, found = _service()
    service.datagram_received(encode_announce(6881, [IH1], cookie=service.cookie), ("10.0.0.1", 6771))
    assert found == [] and service.announces_received == 0


def test_malformed_datagrams_are_counted_and_dropped() -> None:
    service, found = _service()
    service.datagram_received(b"GET / HTTP/1.1\r\n\r\n", ("10.0.0.7", 6771))
    assert found == [] and service.malformed == 1


def test_a_flooding_host_is_rate_limited() -> None:
    service, found = _service()
    for port in range(1000, 1100):
        service.datagram_received(encode_announce(port, [IH1], cookie="x"), ("10.0.0.9", 6771))
    assert 0 < len(found) <= 10


def test_removed_torrent_gets_no_peers() -> None:
    service, found = _service()
    service.remove_torrent(IH1)
    service.datagram_received(encode_announce(7000, [IH1], cookie="x"), ("10.0.0.7", 6771))
    assert found == [] and IH1 not in service.schedule


def test_groups_are_the_bep14_ones() -> None:
    assert MULTICAST_V4 == ("239.192.152.143", 6771) and MULTICAST_V6 == ("ff15::efc0:988f", 6771)
