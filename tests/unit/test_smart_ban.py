"""Smart ban (pure): a lone sender of bad pieces is struck out; among several senders of a
failed piece, only the one whose block differs from the good data is banned."""

from __future__ import annotations

from torrent_engine.peer.messages import BLOCK_SIZE
from torrent_engine.session.smart_ban import SmartBan

GOOD = bytes(range(256)) * (2 * BLOCK_SIZE // 256)  # a piece of two blocks
LIAR, HONEST = ("127.0.0.1", 1), ("127.0.0.1", 2)


def corrupt_block(data: bytes, block: int) -> bytes:
    out = bytearray(data)
    out[block * BLOCK_SIZE] ^= 0xFF
    return bytes(out)


def test_a_lone_sender_is_banned_after_max_strikes() -> None:
    ban = SmartBan(max_strikes=2)
    assert ban.piece_failed(0, corrupt_block(GOOD, 0), {0: LIAR, 1: LIAR}) == []
    assert ban.strikes(LIAR) == 1
    assert ban.piece_failed(1, None, {0: LIAR}) == [LIAR]  # (written straight to disk: no data needed)


def test_of_several_senders_only_the_one_whose_block_differs_is_banned() -> None:
    ban = SmartBan(max_strikes=2)
    bad = corrupt_block(GOOD, 1)
    assert ban.piece_failed(5, bad, {0: HONEST, 1: LIAR}) == []  # nobody can be blamed yet
    assert ban.strikes(LIAR) == ban.strikes(HONEST) == 0
    assert ban.piece_passed(5, GOOD) == [LIAR]  # proven on the first offence
    assert ban.strikes(HONEST) == 0
    assert ban.piece_passed(5, GOOD) == []  # (the suspects of a piece are judged once)


def test_several_senders_without_the_data_blame_nobody() -> None:
    ban = SmartBan(max_strikes=1)
    assert ban.piece_failed(3, None, {0: HONEST, 1: LIAR}) == []
    assert ban.piece_passed(3, GOOD) == []
    assert ban.strikes(LIAR) == 0
