"""The service's cookies for .torrent URLs (``jobs/intake/cookies.py``): what is kept in the
state folder and read back, what a refusal leaves."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from torrent_engine.jobs import InvalidJobRequest, StateNotSaved
from torrent_engine.jobs.intake.cookies import COOKIES_FILE, UrlCookies
from torrent_engine.net.httpclient.cookies import MAX_COOKIES, check_cookie

NOW = 1_800_000_000.0


def test_cookies_with_an_expiry_are_kept_and_read_back(tmp_path: Path) -> None:
    jar = UrlCookies(tmp_path, lambda: NOW)
    kept = check_cookie("uid", "7", "t.example", "/", int(NOW) + 60)
    session = check_cookie("s", "1", "t.example", "/", None)
    gone = check_cookie("old", "1", "t.example", "/", int(NOW) - 1)
    jar.replace([kept, session, gone])
    assert jar.cookies() == [kept, session]
    assert jar.header_for("http://t.example/x.torrent") == "uid=7; s=1"
    path = tmp_path / COOKIES_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == [
        {"name": "uid", "value": "7", "domain": "t.example", "path": "/", "expirationDate": int(NOW) + 60}]
    assert UrlCookies(tmp_path, lambda: NOW).cookies() == [kept]  # (the session cookie: not kept)
    assert UrlCookies(tmp_path, lambda: NOW + 61).cookies() == []  # (expired since)


def test_a_bad_row_in_the_file_is_passed_over(tmp_path: Path) -> None:
    (tmp_path / COOKIES_FILE).write_text(json.dumps([
        {"name": "a b", "value": "1", "domain": "t.example", "path": "/", "expirationDate": int(NOW) + 60},
        "junk",
        {"name": "ok", "value": "1", "domain": "t.example", "path": "/", "expirationDate": int(NOW) + 60}]))
    assert [c.name for c in UrlCookies(tmp_path, lambda: NOW).cookies()] == ["ok"]
    (tmp_path / COOKIES_FILE).write_text("{not json")
    assert UrlCookies(tmp_path, lambda: NOW).cookies() == []


def test_a_change_that_cannot_be_made_changes_nothing(tmp_path: Path) -> None:
    jar = UrlCookies(tmp_path / "state", lambda: NOW)
    one = check_cookie("a", "1", "t.example", "/", int(NOW) + 60)
    jar.replace([one])
    with pytest.raises(InvalidJobRequest) as refused:
        jar.replace([one] * (MAX_COOKIES + 1))
    assert refused.value.field == "cookies"
    (tmp_path / "state" / COOKIES_FILE).unlink()
    (tmp_path / "state").rmdir()
    (tmp_path / "state").write_text("a file where the folder was")
    with pytest.raises(StateNotSaved):
        jar.replace([])
    assert jar.cookies() == [one]
