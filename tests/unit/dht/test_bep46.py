"""BEP 46 item values: ``{"ih": <20-byte info-hash>}`` put, and read back with typed refusals."""

from __future__ import annotations

import pytest

from torrent_engine.formats.bencode import BValue, encode
from torrent_engine.net.dht import bep46
from torrent_engine.net.dht.bep46 import MutableTorrentError


def test_value_is_a_dict_with_ih() -> None:
    ih = bytes(range(20))
    value = bep46.torrent_value(ih)
    assert encode(value) == b"d2:ih20:" + ih + b"e"
    assert bep46.info_hash_of(value) == ih


def test_value_of_a_wrong_length_hash_is_refused() -> None:
    with pytest.raises(MutableTorrentError, match="20 bytes, got 32"):
        bep46.torrent_value(b"\x00" * 32)


@pytest.mark.parametrize(("value", "words"), [
    (b"d2:ih20:" + b"\x00" * 20 + b"e", "a bytes, not a dictionary"),
    (7, "a int, not a dictionary"),
    ({b"other": b"x"}, "no 'ih' key"),
    ({b"ih": b"\x00" * 19}, r"not a 20-byte info-hash \(19\)"),
    ({b"ih": 5}, r"not a 20-byte info-hash \(int\)"),
])
def test_values_that_name_no_torrent(value: BValue, words: str) -> None:
    with pytest.raises(MutableTorrentError, match=words):
        bep46.info_hash_of(value)
