"""The users file: scrypt hashes (never the password), hashed API keys with scopes shown once,
atomic writes at mode 0600, typed errors naming what was wrong, and the failed-login limiter."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from torrent_engine.api.access import LoginLimiter, LoginRefused
from torrent_engine.api.users import (
    DuplicateUser,
    Role,
    Scope,
    UnknownKey,
    UnknownUser,
    UserError,
    UserStore,
    WeakPassword,
    hash_password,
    verify_password,
)

PASSWORD = "correct horse battery"


def test_a_password_is_kept_as_an_scrypt_hash_with_its_parameters(tmp_path: Path) -> None:
    store = UserStore(tmp_path)
    store.add("alice", "user", PASSWORD)
    path = tmp_path / "users.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert PASSWORD not in text
    kept = json.loads(text)["users"][0]["password"]
    algo, n, r, p, salt, digest = kept.split("$")
    assert (algo, int(n), int(r), int(p)) == ("scrypt", 2**15, 8, 1) and salt and digest
    assert verify_password(PASSWORD, kept) and not verify_password(PASSWORD + "!", kept)
    assert hash_password(PASSWORD) != hash_password(PASSWORD)  # (a random salt each time)
    assert store.check_password("alice", PASSWORD) is not None
    assert store.check_password("alice", "wrong password") is None
    assert store.check_password("nobody", PASSWORD) is None
    assert not list(tmp_path.glob(".*.tmp"))  # (written whole, then renamed)


def test_bad_users_are_refused_with_typed_errors(tmp_path: Path) -> None:
    store = UserStore(tmp_path)
    store.add("alice", "user", PASSWORD)
    with pytest.raises(DuplicateUser, match="exists already"):
        store.add("alice", "viewer", PASSWORD)
    with pytest.raises(UserError, match="unknown role 'boss'") as bad_role:
        store.add("bob", "boss", PASSWORD)
    assert bad_role.value.field == "role"
    for weak, said in (("", "empty"), ("s3cr", "shorter than 8")):
        with pytest.raises(WeakPassword, match=said) as caught:
            store.add("bob", "user", weak)
        assert caught.value.field == "password" and (not weak or weak not in str(caught.value))
    with pytest.raises(UserError, match="user name"):
        store.add("../etc", "user", PASSWORD)
    with pytest.raises(UnknownUser, match="no user named 'zed'"):
        store.remove("zed")
    with pytest.raises(UnknownUser):
        store.set_password("zed", PASSWORD)
    assert [u.name for u in store.users()] == ["alice"]


def test_a_key_is_shown_once_kept_hashed_scoped_rotated_and_revoked(tmp_path: Path) -> None:
    store = UserStore(tmp_path)
    store.add("alice", "user", PASSWORD)
    store.add("vera", "viewer", PASSWORD)
    record, key = store.add_key("alice", ["read", "add"])
    assert key.startswith(f"te_{record.id}_")
    text = (tmp_path / "users.json").read_text()
    assert key not in text and key.split("_", 2)[2] not in text
    listed = store.get("alice").keys[0].to_json()
    assert listed["id"] == record.id and listed["scopes"] == ["add", "read"] and key not in json.dumps(listed)
    found = store.check_key(key)
    assert found is not None and found[0].name == "alice" and found[1].scopes == {Scope.READ, Scope.ADD}
    assert store.check_key(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    with pytest.raises(UserError, match="a viewer cannot hold a key with scope add"):
        store.add_key("vera", ["add"])
    with pytest.raises(UserError, match="unknown scope 'write'"):
        store.add_key("alice", ["write"])
    new_record, new_key = store.rotate_key("alice", record.id)
    assert store.check_key(key) is None and store.check_key(new_key) is not None
    assert new_record.scopes == record.scopes
    store.revoke_key("alice", new_record.id)
    assert store.check_key(new_key) is None
    with pytest.raises(UnknownKey):
        store.revoke_key("alice", new_record.id)


def test_another_process_s_change_is_read_again(tmp_path: Path) -> None:
    daemon, cli = UserStore(tmp_path), UserStore(tmp_path)
    assert not daemon.any
    cli.add("alice", "admin", PASSWORD)
    assert daemon.any and daemon.get("alice").role is Role.ADMIN
    cli.set_password("alice", "another password")
    assert daemon.check_password("alice", PASSWORD) is None  # (the old one, even remembered, no more)
    assert daemon.check_password("alice", "another password") is not None
    cli.remove("alice")
    assert daemon.find("alice") is None


def test_failed_logins_from_one_address_are_refused_for_a_while_from_the_last() -> None:
    now = [0.0]
    limits = [(3, 60.0)]  # (the settings' as they are at each call)
    limiter = LoginLimiter(lambda: limits[0], clock=lambda: now[0])
    for at in (0.0, 30.0, 50.0):
        now[0] = at
        limiter.check("10.0.0.1")
        limiter.failed("10.0.0.1")
    with pytest.raises(LoginRefused, match="too many failed logins"):
        limiter.check("10.0.0.1")
    assert limiter.wait("10.0.0.1") == 60.0  # (a minute from the third)
    limiter.check("10.0.0.2")  # (another address is not held back)
    now[0] = 109.0
    with pytest.raises(LoginRefused, match="try again in 2 s"):
        limiter.check("10.0.0.1")
    now[0] = 110.0
    limiter.check("10.0.0.1")
    limiter.failed("10.0.0.1")  # (the three went with the ban: one now)
    limiter.check("10.0.0.1")
    limits[0] = (1, 3600.0)  # (fewer, longer: the one had now is enough for an hour)
    assert limiter.wait("10.0.0.1") == 3600.0
    limits[0] = (0, 3600.0)  # (none refused, none counted)
    limiter.check("10.0.0.1")
    for _ in range(50):
        limiter.failed("10.0.0.3")
    limiter.check("10.0.0.3")
    limits[0] = (1, 3600.0)
    limiter.check("10.0.0.3")
