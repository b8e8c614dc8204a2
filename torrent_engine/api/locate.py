"""Where a client finds the API: its default address, the token file in the state directory and
the token's environment variable. No server code here, so the ``remote`` command (a client)
loads this alone, not uvicorn or the job service."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

DEFAULT_API_HOST = "127.0.0.1"
DEFAULT_API_PORT = 8686
TOKEN_FILE = "api_token"
TOKEN_ENV = "TORRENT_ENGINE_API_TOKEN"
API_FILE = "api.json"  # in the state directory: the address a running daemon serves (read by `remote`)


def load_or_create_token(state_dir: Path) -> str:
    """The token kept in ``state_dir/api_token`` (mode 0600), made at the first start."""
    path = state_dir / TOKEN_FILE
    try:
        token = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        token = ""
    if token:
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)
        return token
    state_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    tmp = path.with_name(f".{TOKEN_FILE}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, token.encode("ascii") + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return token


def read_token(state_dir: Path) -> str | None:
    """The API token saved in ``state_dir``, or None when there is none."""
    try:
        return (state_dir / TOKEN_FILE).read_text(encoding="ascii").strip() or None
    except OSError:
        return None
