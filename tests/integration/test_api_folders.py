"""Our API's ``GET /api/folders``: a folder of the download root listed for a client picking a
path (its folders, its files when asked, names beginning with a prefix, sorted, hidden ones and
symlinks out of the root left out, at most a limit), with the space free there; a user sees their
own folder alone, a viewer nothing; bad input refused naming the field."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

from tests.integration.api_helpers import running_api
from tests.integration.test_api_users import as_user, users
from torrent_engine.api import folder_routes

pytestmark = pytest.mark.anyio


def tree(root: Path) -> None:
    """``root`` with folders, files, a hidden one and symlinks in and out."""
    for folder in ("Shows/Alpha", "Shows/beta", "shorts", "Movies", ".cache"):
        (root / folder).mkdir(parents=True)
    (root / "Shows" / "notes.txt").write_bytes(b"12345")
    (root / "sh.nfo").write_bytes(b"abc")
    (root / ".hidden.txt").write_bytes(b"x")
    outside = root.parent / "outside"
    outside.mkdir()
    (root / "escape").symlink_to(outside)
    (root / "dangling").symlink_to(root / "nothing")
    (root / "films").symlink_to(root / "Movies")


async def test_a_folder_is_listed_sorted_with_its_free_space_folders_alone_unless_files_asked(
        tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        root = api.download_root.resolve()
        tree(root)
        r = await api.client.get("/api/folders")
        assert r.status_code == 200, r.text
        listing = r.json()
        assert listing["path"] == listing["root"] == str(root) and listing["parent"] is None
        assert [e["name"] for e in listing["entries"]] == ["Movies", "Shows", "films", "shorts"]
        assert all(e["type"] == "dir" and "size" not in e for e in listing["entries"])
        assert listing["entries"][1]["path"] == str(root / "Shows")
        assert listing["truncated"] is False and listing["free_bytes"] > 0
        assert abs(listing["entries"][0]["modified"] - (root / "Movies").stat().st_mtime) < 1

        r = await api.client.get("/api/folders", params={"path": "Shows", "files": "true"})
        listing = r.json()
        assert listing["path"] == str(root / "Shows") and listing["parent"] == str(root)
        assert [(e["name"], e["type"], e.get("size")) for e in listing["entries"]] == [
            ("Alpha", "dir", None), ("beta", "dir", None), ("notes.txt", "file", 5)]
        # an absolute path, and a folder reached by a symlink inside the root: where it leads
        r = await api.client.get("/api/folders", params={"path": str(root / "films")})
        assert r.json()["path"] == str(root / "Movies"), r.text


async def test_a_prefix_of_any_case_and_a_limit_narrow_the_listing(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        root = api.download_root.resolve()
        tree(root)
        r = await api.client.get("/api/folders", params={"prefix": "sh", "files": "true"})
        assert [e["name"] for e in r.json()["entries"]] == ["Shows", "sh.nfo", "shorts"], r.text
        r = await api.client.get("/api/folders", params={"prefix": "sh", "files": "true", "limit": "2"})
        assert [e["name"] for e in r.json()["entries"]] == ["Shows", "sh.nfo"]
        assert r.json()["truncated"] is True
        r = await api.client.get("/api/folders", params={"prefix": "sh", "limit": "2"})
        assert [e["name"] for e in r.json()["entries"]] == ["Shows", "shorts"]
        assert r.json()["truncated"] is False  # (the file was not counted against the limit)
        r = await api.client.get("/api/folders", params={"prefix": "zz"})
        assert r.json()["entries"] == [] and r.json()["truncated"] is False


async def test_a_large_folder_is_listed_up_to_the_limit(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        big = api.download_root.resolve() / "big"
        big.mkdir()
        for i in range(1005):
            (big / f"d{i:04d}").mkdir()
        listing = (await api.client.get("/api/folders", params={"path": "big"})).json()
        assert len(listing["entries"]) == 200 and listing["truncated"] is True
        assert listing["entries"][-1]["name"] == "d0199"
        listing = (await api.client.get("/api/folders", params={"path": "big", "limit": "1000"})).json()
        assert len(listing["entries"]) == 1000 and listing["truncated"] is True


@pytest.mark.parametrize(("params", "status", "field", "said"), [
    ({"path": "../outside"}, 400, "path", "outside the download root"),
    ({"path": "escape"}, 400, "path", "outside the download root"),
    ({"path": "/etc"}, 400, "path", "outside the download root"),
    ({"path": "a\x00b"}, 400, "path", "NUL"),
    ({"path": "Shows/notes.txt"}, 400, "path", "is a file, not a folder"),
    ({"path": "nothing/here"}, 404, "path", "no folder 'nothing/here'"),
    ({"prefix": "a/b"}, 400, "prefix", "the start of one name"),
    ({"prefix": "x" * 256}, 400, "prefix", "at most 255"),
    ({"files": "maybe"}, 400, "files", "must be true or false"),
    ({"limit": "0"}, 400, "limit", "from 1 to 1000"),
    ({"limit": "1001"}, 400, "limit", "from 1 to 1000"),
    ({"limit": "ten"}, 400, "limit", "from 1 to 1000"),
])
async def test_bad_input_is_refused_naming_the_field(
        tmp_path: Path, params: dict[str, str], status: int, field: str, said: str) -> None:
    async with running_api(tmp_path) as api:
        tree(api.download_root.resolve())
        r = await api.client.get("/api/folders", params=params)
        assert (r.status_code, r.json().get("field")) == (status, field), r.text
        assert said in r.json()["error"], r.text


def listing_fails(monkeypatch: pytest.MonkeyPatch, module: Any, error: int) -> None:
    """``module``'s ``folder_entries`` fails with ``error`` (as root, as CI runs, any folder reads)."""
    def refused(root: Path, folder: Path, **kwargs: Any) -> Any:
        raise OSError(error, os.strerror(error), str(folder))

    monkeypatch.setattr(module, "folder_entries", refused)


@pytest.mark.parametrize(("error", "status", "said"), [
    (errno.EACCES, 400, "'locked' cannot be read: Permission denied"),
    (errno.EIO, 400, "'locked' cannot be read: Input/output error"),
    (errno.ENOENT, 404, "no folder 'locked'"),  # (gone in the moment between)
    (errno.EMFILE, 503, "descriptor"),
])
async def test_a_folder_that_cannot_be_read_is_refused_saying_why(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: int, status: int, said: str) -> None:
    listing_fails(monkeypatch, folder_routes, error)
    async with running_api(tmp_path) as api:
        (api.download_root / "locked").mkdir()
        r = await api.client.get("/api/folders", params={"path": "locked"})
        assert r.status_code == status, r.text
        assert said in r.json()["error"], r.text
        assert status == 503 or r.json()["field"] == "path"


async def test_a_user_lists_their_own_folder_alone_and_a_viewer_none(tmp_path: Path) -> None:
    users(tmp_path / "state")
    async with running_api(tmp_path) as api:
        root = api.download_root.resolve()
        tree(root)
        async with as_user(api, "alice") as alice, as_user(api, "vera") as vera:
            mine = root / "users" / "alice"
            # their folder before their first torrent: there, empty
            r = await alice.get("/api/folders")
            assert r.status_code == 200, r.text
            assert (r.json()["path"], r.json()["root"], r.json()["entries"]) == (str(mine), str(mine), [])
            (mine / "Music").mkdir(parents=True)
            (mine / "next").symlink_to(root / "users" / "bob")
            (root / "users" / "bob").mkdir()
            r = await alice.get("/api/folders")
            assert [e["name"] for e in r.json()["entries"]] == ["Music"], r.text  # (not bob's by a link)
            assert (await alice.get("/api/folders", params={"path": "Music"})).json()["parent"] == str(mine)
            for path in ("..", str(root), "../bob", "next"):
                r = await alice.get("/api/folders", params={"path": path})
                assert (r.status_code, r.json()["field"]) == (400, "path"), (path, r.text)
            r = await vera.get("/api/folders")
            assert r.status_code == 403 and "'add' scope" in r.json()["error"], r.text
