"""Byte-exact transfers between two uTP cores over a lossy, reordering, delaying network."""

from __future__ import annotations

import random

import pytest

from tests.unit.utp.simnet import Link, Pair


def _payload(n: int, seed: int = 7) -> bytes:
    return random.Random(seed).randbytes(n)


CASES = [(0.0, 0), (0.01, 0), (0.05, 0), (0.0, 30_000), (0.05, 30_000)]


@pytest.mark.parametrize(("loss", "jitter_us"), CASES)
def test_transfer_is_byte_exact(loss: float, jitter_us: int) -> None:
    data = _payload(600_000)
    pair = Pair(Link(loss=loss, jitter_us=jitter_us), Link(loss=loss, jitter_us=jitter_us), seed=3)
    pair.run(data)
    assert bytes(pair.received) == data
    assert pair.closed_errors() == [None, None]  # both ends closed cleanly (FIN both ways)
    if loss:
        assert pair.a.packets_resent > 0


def test_sequence_numbers_wrap_around() -> None:
    data = _payload(400_000)
    pair = Pair(Link(loss=0.02), Link(loss=0.02), seq_a=0xFFF0, seq_b=0xFFFE, conn_id=0xFFFF)
    pair.run(data)
    assert bytes(pair.received) == data
    assert pair.a.seq_nr < 0x8000  # it did wrap


def test_connect_fails_when_nothing_answers() -> None:
    pair = Pair(Link(loss=1.0), Link(loss=1.0))
    pair.run(b"x", close=False)
    assert pair.closed_errors() == ["connect timed out"]
