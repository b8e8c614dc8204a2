"""``torrent-engine user``: add, list, passwd, key add/list/revoke and remove, the password
read from standard input (not a terminal), errors said as such with exit code 1."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from torrent_engine.api.users import UserStore
from torrent_engine.cli import main


def run(argv: list[str], monkeypatch: pytest.MonkeyPatch, stdin: str = "") -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return main(argv)


def test_a_user_is_added_listed_given_a_new_password_and_removed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    state = ["--state-dir", str(tmp_path)]
    assert run(["user", "add", "alice", "--role", "user", "--max-torrents", "3", "--max-bytes", "2G", *state],
               monkeypatch, "first password\n") == 0
    assert UserStore(tmp_path).check_password("alice", "first password") is not None
    assert run(["user", "list", "--json", *state], monkeypatch) == 0
    out = capsys.readouterr().out
    listed = json.loads(out[out.index("["):])
    assert listed[0]["name"] == "alice" and listed[0]["role"] == "user"
    assert listed[0]["max_torrents"] == 3 and listed[0]["max_bytes"] == 2 * 1024**3
    assert "password" not in listed[0] and "first password" not in out
    assert run(["user", "passwd", "alice", *state], monkeypatch, "second password\n") == 0
    store = UserStore(tmp_path)
    assert store.check_password("alice", "first password") is None
    assert store.check_password("alice", "second password") is not None
    assert run(["user", "key", "add", "alice", "--scope", "read", *state], monkeypatch) == 0
    key = capsys.readouterr().out.strip().splitlines()[-1]
    assert key.startswith("te_") and UserStore(tmp_path).check_key(key) is not None
    assert run(["user", "key", "list", *state], monkeypatch) == 0
    out = capsys.readouterr().out
    key_id = key.split("_")[1]
    assert key_id in out and key not in out and "read" in out
    assert run(["user", "key", "revoke", "alice", key_id, *state], monkeypatch) == 0
    assert UserStore(tmp_path).check_key(key) is None
    assert run(["user", "remove", "alice", *state], monkeypatch) == 0
    assert UserStore(tmp_path).users() == []


@pytest.mark.parametrize(("argv", "stdin", "said"), [
    (["user", "add", "bob", "--role", "boss"], "a good password\n", "unknown role 'boss'"),
    (["user", "add", "bob", "--role", "user"], "\n", "the password is empty"),
    (["user", "add", "bob", "--role", "user"], "short\n", "shorter than 8"),
    (["user", "add", "alice", "--role", "user"], "a good password\n", "exists already"),
    (["user", "remove", "zed"], "", "no user named 'zed'"),
    (["user", "passwd", "zed"], "a good password\n", "no user named 'zed'"),
    (["user", "key", "add", "alice", "--scope", "admin"], "", "cannot hold a key with scope admin"),
    (["user", "quota", "alice", "--max-torrents", "-1"], "",
     "max_torrents must be a whole number from 0 (0: no quota), got -1"),  # (-1 is a whole number)
])
def test_bad_requests_are_said_with_exit_code_1(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        argv: list[str], stdin: str, said: str) -> None:
    UserStore(tmp_path).add("alice", "user", "alice's password")
    assert run([*argv, "--state-dir", str(tmp_path)], monkeypatch, stdin) == 1
    err = capsys.readouterr().err
    assert said in err and "a good password" not in err


@pytest.mark.parametrize("argv", [["user", "list"], ["user", "key", "list"]])
def test_a_listing_of_a_state_folder_that_is_not_there_says_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        argv: list[str]) -> None:
    """A mistyped ``--state-dir`` listed "no users", as a daemon without users does."""
    assert run([*argv, "--state-dir", str(tmp_path / "typo")], monkeypatch) == 1
    assert f"no state folder at {tmp_path / 'typo'}" in capsys.readouterr().err
    assert run(["user", "list", "--state-dir", str(tmp_path)], monkeypatch) == 0  # (there, without users)
    assert f"no users in {tmp_path / 'users.json'}" in capsys.readouterr().out
