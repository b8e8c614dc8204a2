"""Write tokens (BEP 5): tied to the IP, rotated every 5 minutes, accepted for up to 10."""

from __future__ import annotations

import random

from torrent_engine.net.dht.tokens import TOKEN_ROTATION, TokenManager


def test_token_is_bound_to_the_address_and_key() -> None:
    tm = TokenManager(random.Random(1), now=0.0)
    tok = tm.token_for("10.0.0.1", 0.0)
    assert tm.check(tok, "10.0.0.1", 1.0)
    assert not tm.check(tok, "10.0.0.2", 1.0)
    assert not tm.check(b"garbage", "10.0.0.1", 1.0)
    keyed = tm.token_for("10.0.0.1", 0.0, key=b"x" * 20)
    assert tm.check(keyed, "10.0.0.1", 0.0, key=b"x" * 20)
    assert not tm.check(keyed, "10.0.0.1", 0.0, key=b"y" * 20)


def test_token_lives_one_rotation_more_then_expires() -> None:
    tm = TokenManager(random.Random(2), now=0.0)
    tok = tm.token_for("10.0.0.1", 0.0)
    assert tm.check(tok, "10.0.0.1", TOKEN_ROTATION - 1)
    assert tm.check(tok, "10.0.0.1", TOKEN_ROTATION + 1)  # previous secret still accepted
    assert tm.token_for("10.0.0.1", TOKEN_ROTATION + 1) != tok
    assert not tm.check(tok, "10.0.0.1", 2 * TOKEN_ROTATION + 1)  # two rotations later: refused


def test_long_idle_does_not_keep_old_tokens_alive() -> None:
    tm = TokenManager(random.Random(3), now=0.0)
    tok = tm.token_for("10.0.0.1", 0.0)
    assert not tm.check(tok, "10.0.0.1", 100 * TOKEN_ROTATION)
