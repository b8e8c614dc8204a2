"""The qBittorrent dialect's API key and Authorization header parsing, without a server."""

from __future__ import annotations

import base64
from pathlib import Path

from torrent_engine.api.compat.qbittorrent_auth import (
    KEY_ALPHABET,
    KEY_FILE,
    ApiKey,
    authorization,
    basic_credentials,
)


def test_a_key_is_qbittorrents_shape_and_only_its_hash_is_kept(tmp_path: Path) -> None:
    keys = ApiKey(tmp_path)
    assert not keys.exists and not keys.matches("")
    key = keys.rotate()
    assert key.startswith("qbt_") and len(key) == 32 and set(key[4:]) <= set(KEY_ALPHABET)
    assert keys.matches(key) and not keys.matches(key[:-1]) and not keys.matches("")
    assert key not in (tmp_path / KEY_FILE).read_text()
    assert ApiKey(tmp_path).matches(key)  # (read again at a start)
    keys.delete()
    assert not ApiKey(tmp_path).exists and not keys.matches(key)


def test_a_key_file_that_is_not_ours_is_no_key(tmp_path: Path) -> None:
    (tmp_path / KEY_FILE).write_text("qbt_plaintextkeyxxxxxxxxxxxxxxxx\n")
    assert not ApiKey(tmp_path).exists


def test_without_a_state_folder_a_key_lives_in_memory() -> None:
    keys = ApiKey(None)
    key = keys.rotate()
    assert keys.matches(key)


def test_authorization_headers_are_split_as_qbittorrent_splits_them() -> None:
    assert authorization("Bearer  abc ") == ("bearer", "abc")
    assert authorization("BASIC\tx") == ("basic", "x")
    assert authorization("Bearer") == authorization("") == ("", "")
    good = base64.b64encode(b"me:pa:ss").decode()
    assert basic_credentials(good) == ("me", "pa:ss")
    for bad in ("!!", base64.b64encode(b"nocolon").decode(), base64.b64encode(b":pw").decode(),
                base64.b64encode(b"\xff:x").decode()):
        assert basic_credentials(bad) is None, bad
