"""Bitfield: BEP 3 bit order, strict parsing of wire bitfields, set operations."""

from __future__ import annotations

import pytest

from torrent_engine.formats.bitfield import Bitfield


def test_bit_order_is_msb_first_as_on_the_wire() -> None:
    bf = Bitfield(10, [0, 7, 9])
    assert bf.to_bytes() == bytes([0b1000_0001, 0b0100_0000])
    assert list(bf) == [0, 7, 9] and len(bf) == 3
    assert 9 in bf and 8 not in bf and 10 not in bf and -1 not in bf


def test_from_bytes_checks_length_and_spare_bits() -> None:
    assert list(Bitfield.from_bytes(bytes([0xFF, 0xC0]), 10)) == list(range(10))
    with pytest.raises(ValueError):
        Bitfield.from_bytes(bytes([0xFF]), 10)  # too short
    with pytest.raises(ValueError):
        Bitfield.from_bytes(bytes([0xFF, 0xE0]), 10)  # a spare bit set


def test_full_add_discard_copy_and_intersection() -> None:
    full = Bitfield.full(10)
    assert full.all() and len(full) == 10 and full.to_bytes() == bytes([0xFF, 0xC0])
    bf = Bitfield(10)
    bf.add(3)
    bf.add(3)
    copy = bf.copy()
    bf.discard(3)
    bf.discard(3)
    assert len(bf) == 0 and list(copy) == [3] and copy != bf
    assert copy.any_of(full) and not bf.any_of(full)
    with pytest.raises(IndexError):
        bf.add(10)
    assert Bitfield.full(0).all() and Bitfield(0).to_bytes() == b""
