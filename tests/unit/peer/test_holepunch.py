"""BEP 55 ut_holepunch codec and the relay's answers."""

from __future__ import annotations

import pytest

from torrent_engine.errors import PeerProtocolError
from torrent_engine.net.peer.holepunch import (
    HolepunchError,
    HolepunchMessage,
    HolepunchType,
    answer_rendezvous,
    decode_holepunch,
    encode_holepunch,
)


def test_ipv4_layout_matches_bep55() -> None:
    raw = encode_holepunch(HolepunchMessage(HolepunchType.CONNECT, ("10.1.2.3", 6881)))
    assert raw == b"\x01\x00" + bytes((10, 1, 2, 3)) + b"\x1a\xe1" + b"\x00\x00\x00\x00"
    assert decode_holepunch(raw) == HolepunchMessage(HolepunchType.CONNECT, ("10.1.2.3", 6881))


def test_a_connect_without_err_code_is_read_as_libtorrent_writes_it() -> None:
    # libtorrent writes err_code only in error messages: its connect for IPv4 is 8 bytes (a peer
    # that sent one was dropped as "truncated" until this was read)
    raw = b"\x01\x00" + bytes((127, 0, 0, 3)) + b"\x1a\xe1"
    assert decode_holepunch(raw) == HolepunchMessage(HolepunchType.CONNECT, ("127.0.0.3", 6881))
    raw6 = b"\x00\x01" + bytes(15) + b"\x01" + b"\x00\x50"
    assert decode_holepunch(raw6) == HolepunchMessage(HolepunchType.RENDEZVOUS, ("::1", 80))


def test_ipv6_error_round_trips() -> None:
    msg = HolepunchMessage(HolepunchType.ERROR, ("::1", 443), HolepunchError.NO_SUPPORT)
    raw = encode_holepunch(msg)
    assert len(raw) == 1 + 1 + 16 + 2 + 4 and raw[1] == 1 and raw[-4:] == b"\x00\x00\x00\x03"
    assert decode_holepunch(raw) == msg


@pytest.mark.parametrize(("raw", "what"), [
    (b"\x00", "too short"),
    (b"\x03\x00" + b"\x00" * 10, "unknown msg_type 3"),
    (b"\x00\x02" + b"\x00" * 10, "unknown addr_type 2"),
    (b"\x00\x01" + b"\x00" * 10, "truncated"),
    (b"\x02\x00" + b"\x7f\x00\x00\x01" + b"\x00\x01", "truncated"),  # an error needs its err_code
    (b"\x02\x00" + b"\x7f\x00\x00\x01" + b"\x00\x01" + b"\x00\x00\x00\x09", "unknown err_code 9"),
    (b"\x02\x00" + b"\x7f\x00\x00\x01" + b"\x00\x01" + b"\x00\x00\x00\x00", "does not fit"),
])
def test_malformed_messages_raise_typed_errors(raw: bytes, what: str) -> None:
    with pytest.raises(PeerProtocolError, match=what):
        decode_holepunch(raw)


def test_relay_sends_connect_to_both_sides() -> None:
    a, b = ("127.0.0.2", 1000), ("127.0.0.3", 2000)
    out = answer_rendezvous(a, HolepunchMessage(HolepunchType.RENDEZVOUS, b), connected={a: True, b: True})
    assert out == [(a, HolepunchMessage(HolepunchType.CONNECT, b)),
                   (b, HolepunchMessage(HolepunchType.CONNECT, a))]


@pytest.mark.parametrize(("connected", "target", "code"), [
    ({}, ("127.0.0.3", 2000), HolepunchError.NOT_CONNECTED),
    ({("127.0.0.3", 2000): False}, ("127.0.0.3", 2000), HolepunchError.NO_SUPPORT),
    ({}, ("127.0.0.9", 9), HolepunchError.NO_SELF),
    ({}, ("127.0.0.3", 0), HolepunchError.NO_SUCH_PEER),
])
def test_relay_errors_echo_the_target(connected: dict[tuple[str, int], bool], target: tuple[str, int],
                                      code: HolepunchError) -> None:
    a = ("127.0.0.2", 1000)
    out = answer_rendezvous(a, HolepunchMessage(HolepunchType.RENDEZVOUS, target), connected=connected,
                            own_endpoints={("127.0.0.9", 9)})
    assert out == [(a, HolepunchMessage(HolepunchType.ERROR, target, code))]
