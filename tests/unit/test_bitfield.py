"""Bitfield: BEP 3 bit order, strict parsing of wire bitfields, set operations."""

from __future__ import annotations

import pytest

from torrent_engine.formats.bitfield import Bitfield


def test_bit_order_is_msb_first_as_on_the_wire() -> None:
    bf = Bitfield(10, [0, 7, 9])
    assert bf.to_bytes() == bytes([0b1000_0001, 0b0100_0000])
    assert list(bf) == [0, 7, 9] and len(bf) == 3
    assert 9 in bf and 8 not in bf and 10 not in bf and -1 not in bf


def test_flags_are_a_byte_a_piece() -> None:
    assert Bitfield(0).flags() == b""
    assert Bitfield(11, [0, 3, 8, 10]).flags() == bytes([1, 0, 0, 1, 0, 0, 0, 0, 1, 0, 1])
    assert Bitfield.full(9).flags() == b"\x01" * 9


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


def test_count_not_in_counts_the_pieces_set_here_alone() -> None:
    theirs, ours = Bitfield(20, [0, 3, 9, 19]), Bitfield(20, [3, 4, 19])
    assert theirs.count_not_in(ours) == 2 and ours.count_not_in(theirs) == 1
    assert Bitfield.full(20).count_not_in(Bitfield(20)) == 20 and Bitfield(20).count_not_in(ours) == 0


def test_count_in_counts_the_pieces_set_in_a_range_at_any_bit_offsets() -> None:
    import random

    rng = random.Random(5)
    for n in (0, 1, 7, 8, 9, 64, 77):
        bf = Bitfield(n, (i for i in range(n) if rng.random() < 0.5))
        for start in range(-2, n + 3):
            for stop in range(start - 1, n + 3):
                want = sum(1 for i in range(start, stop) if i in bf)
                assert bf.count_in(start, stop) == want, (n, start, stop)
    assert Bitfield.full(20).count_in(3, 17) == 14
