"""Smart ban (pure): who gets a strike, who is proven to have lied, and who is never blamed."""

from __future__ import annotations

from torrent_engine.net.peer.messages import BLOCK_SIZE
from torrent_engine.session.smart_ban import SmartBan

GOOD = bytes(range(256)) * (3 * BLOCK_SIZE // 256)  # a piece of three blocks


def _with_bad_block(block: int) -> bytes:
    bad = bytearray(GOOD)
    bad[block * BLOCK_SIZE] ^= 0xFF
    return bytes(bad)


def test_a_lone_sender_gets_a_strike_and_is_banned_at_the_limit() -> None:
    ban = SmartBan(max_strikes=2)
    sources = {0: "a", 1: "a", 2: "a"}
    assert ban.piece_failed(7, _with_bad_block(1), sources) == []
    assert ban.strikes("a") == 1
    assert ban.piece_failed(8, _with_bad_block(0), sources) == ["a"]


def test_among_several_senders_only_the_one_whose_block_differs_is_banned_once_the_piece_passes() -> None:
    ban = SmartBan(max_strikes=5)
    sources = {0: "a", 1: "liar", 2: "b"}
    assert ban.piece_failed(3, _with_bad_block(1), sources) == []  # nobody blamed yet
    assert ban.strikes("a") == ban.strikes("b") == ban.strikes("liar") == 0
    assert ban.piece_passed(3, GOOD) == ["liar"]  # proven: banned at once, whatever the limit
    assert ban.strikes("a") == ban.strikes("b") == 0
    assert ban.piece_passed(3, GOOD) == []  # the record is used once


def test_a_piece_without_a_copy_blames_only_a_lone_sender() -> None:
    ban = SmartBan(max_strikes=1)
    assert ban.piece_failed(1, None, {0: "a", 1: "b"}) == []  # written to disk: nothing to compare
    assert ban.piece_passed(1, GOOD) == []
    assert ban.piece_failed(2, None, {0: "c"}) == ["c"]


def test_a_passing_piece_nobody_suspected_bans_nobody() -> None:
    assert SmartBan(max_strikes=1).piece_passed(9, GOOD) == []
