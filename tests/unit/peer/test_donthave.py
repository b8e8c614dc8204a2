"""BEP 54 lt_donthave codec: a piece index, 4 bytes big-endian, within the torrent."""

from __future__ import annotations

import pytest

from torrent_engine.errors import PeerProtocolError
from torrent_engine.net.peer.donthave import decode_donthave, encode_donthave


def test_layout_matches_bep54() -> None:
    assert encode_donthave(0x01020304) == b"\x01\x02\x03\x04"
    assert decode_donthave(encode_donthave(20), num_pieces=21) == 20


@pytest.mark.parametrize(("raw", "what"), [
    (b"\x00\x00\x03", "3 bytes"),
    (b"\x00\x00\x00\x03\x00", "5 bytes"),
    (b"\x00\x00\x00\x15", "piece 21 of a torrent of 21"),
])
def test_a_malformed_donthave_is_a_protocol_error(raw: bytes, what: str) -> None:
    with pytest.raises(PeerProtocolError, match=what):
        decode_donthave(raw, num_pieces=21)
