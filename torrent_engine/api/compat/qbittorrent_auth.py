"""qBittorrent's WebAPI key (WebAPI 2.14.1) and its HTTP Basic credentials (2.15).

The key is made as qBittorrent makes it (``qbt_`` and 28 characters of its alphabet) and shown
once, in ``app/rotateAPIKey``'s answer; what is kept (``STATE_DIR/qbittorrent_api_key``, mode
0600) is its SHA-256, so the state folder never holds a key that opens the API. qBittorrent keeps
the key itself in its settings; a hash is enough here since the key is checked, never shown again.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path

KEY_FILE = "qbittorrent_api_key"
_AUTHORIZATION = re.compile(r"(\S+)\s+(.+)", re.DOTALL)
KEY_PREFIX = "qbt_"  # qBittorrent's Utils::APIKey
KEY_LENGTH = 28
KEY_ALPHABET = "23456789ABCDEFGHIJKLMNPQRSTUVWXYZabcdefghjkmnpqrstuvwxyz"  # Utils::Password::generate


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


class ApiKey:
    """The one API key of the qBittorrent dialect (or none), kept hashed in ``state_dir`` (a
    service without one: for as long as the process runs)."""

    def __init__(self, state_dir: Path | None) -> None:
        self.path = state_dir / KEY_FILE if state_dir is not None else None
        self._digest: bytes | None = self._read()

    def _read(self) -> bytes | None:
        if self.path is None:
            return None
        try:
            text = self.path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return None
        try:
            digest = bytes.fromhex(text)
        except ValueError:
            return None  # (not ours: no key, rather than one nobody can name)
        return digest if len(digest) == hashlib.sha256().digest_size else None

    @property
    def exists(self) -> bool:
        """Whether a key is set."""
        return self._digest is not None

    def matches(self, given: str) -> bool:
        """Whether ``given`` is the key (compared in constant time; never with no key set)."""
        return self._digest is not None and hmac.compare_digest(_digest(given), self._digest)

    def rotate(self) -> str:
        """Make a new key (the old one no longer works), keep its hash, and return it."""
        key = KEY_PREFIX + "".join(secrets.choice(KEY_ALPHABET) for _ in range(KEY_LENGTH))
        digest = _digest(key)
        self._write(digest.hex().encode("ascii") + b"\n")
        self._digest = digest
        return key

    def delete(self) -> None:
        """No key from now on."""
        if self.path is not None:
            self.path.unlink(missing_ok=True)
        self._digest = None

    def _write(self, data: bytes) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{KEY_FILE}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)


def authorization(header: str) -> tuple[str, str]:
    """An ``Authorization`` header's scheme (lower case) and credentials, as qBittorrent splits
    it (``^(\\S+)\\s+(.+)$``); ("", "") for anything else."""
    match = _AUTHORIZATION.fullmatch(header.strip())
    if match is None:
        return "", ""
    return match.group(1).lower(), match.group(2).strip()


def basic_credentials(data: str) -> tuple[str, str] | None:
    """The user name and password of HTTP Basic credentials (a user name is required, as in
    qBittorrent); None when they are not base64 of ``user:password``."""
    try:
        text = base64.b64decode(data.encode("ascii"), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        return None
    user, colon, password = text.partition(":")
    if not colon or not user:
        return None
    return user, password
