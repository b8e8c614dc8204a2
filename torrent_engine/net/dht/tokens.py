"""Write tokens for announce_peer / put (BEP 5): a keyed hash of the requester's IP.

Sans-I/O: the secrets come from a handed-in random source and the time is handed in. The
secret rotates every 5 minutes and a token is accepted while made with the current or the
previous secret, so a token lives 5 to 10 minutes.
"""

from __future__ import annotations

import hashlib
import hmac
import random

__all__ = ["TokenManager"]

TOKEN_ROTATION = 5 * 60  # BEP 5: "tokens up to ten minutes old are accepted"
TOKEN_LEN = 8


class TokenManager:
    """BEP 5 announce tokens: an HMAC of the requester's IP under a secret that rotates every five minutes;
    the previous secret's tokens stay valid."""

    def __init__(self, rng: random.Random, now: float) -> None:
        self._rng = rng
        self._current = rng.randbytes(16)
        self._previous = rng.randbytes(16)
        self._rotated_at = now

    def _rotate(self, now: float) -> None:
        while now - self._rotated_at >= TOKEN_ROTATION:
            self._previous = self._current
            self._current = self._rng.randbytes(16)
            self._rotated_at += TOKEN_ROTATION
            if now - self._rotated_at >= 2 * TOKEN_ROTATION:
                # Long idle: both secrets are stale, start over.
                self._previous = self._rng.randbytes(16)
                self._rotated_at = now

    @staticmethod
    def _make(secret: bytes, ip: str, key: bytes) -> bytes:
        return hashlib.sha1(secret + ip.encode() + key).digest()[:TOKEN_LEN]

    def token_for(self, ip: str, now: float, key: bytes = b"") -> bytes:
        """The token to hand to ``ip`` (optionally tied to an info-hash / BEP 44 target)."""
        self._rotate(now)
        return self._make(self._current, ip, key)

    def check(self, token: bytes, ip: str, now: float, key: bytes = b"") -> bool:
        """Whether ``token`` is one we handed to ``ip`` (for ``key``) under the current or previous secret."""
        self._rotate(now)
        return any(
            hmac.compare_digest(token, self._make(secret, ip, key))
            for secret in (self._current, self._previous)
        )
