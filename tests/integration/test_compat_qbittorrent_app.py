"""qBittorrent's ``app/getDirectoryContent``, ``app/getFreeSpaceAtPath``, ``app/processInfo`` and
``clientdata/load``/``store`` on the dialect, through the real ``qbittorrent-api`` client, within
the download root, with the refusals qBittorrent gives."""

from __future__ import annotations

import errno
import json
import os
import shutil
import time
from pathlib import Path

import anyio
import httpx
import pytest

from tests.conftest import require_module
from tests.integration.api_helpers import TOKEN, running_api
from tests.integration.api_helpers import qbt_client as client_of

pytestmark = pytest.mark.anyio




def drive(url: str, root: Path) -> None:
    qbittorrentapi = require_module("qbittorrentapi")
    client = client_of(url)
    assert sorted(client.app_get_directory_content(directory_path=root)) == [
        str(root / "a.bin"), str(root / "shows")]  # (hidden ones left out, as QDir does)
    rows = client.app_get_directory_content(directory_path=root, with_metadata=True)
    assert [(r["name"], r["type"], r.get("size")) for r in rows] == [
        ("a.bin", "file", 5), ("shows", "dir", None)]
    assert abs(rows[0]["last_modification_date"] - time.time()) < 60
    with pytest.raises(qbittorrentapi.NotFound404Error):
        client.app_get_directory_content(directory_path=root / "missing")
    with pytest.raises(qbittorrentapi.InvalidRequest400Error):
        client.app_get_directory_content(directory_path="/etc")  # (outside the download root)
    with pytest.raises(qbittorrentapi.InvalidRequest400Error):
        client.app_get_directory_content(directory_path="shows")  # (not absolute, as qBittorrent)

    free = client.app_get_free_space_at_path(path=root / "not" / "yet")  # (its nearest folder)
    assert abs(free - shutil.disk_usage(root).free) < 1 << 30
    with pytest.raises(qbittorrentapi.InvalidRequest400Error):
        client.app_get_free_space_at_path(path="/")

    launched = client.app_process_info()["launch_time"]
    assert 0 < time.time() - launched < 24 * 3600

    assert client.clientdata_load() == {}
    client.clientdata_store(data={"theme": "dark", "columns": [1, 2], "gone": True})
    client.clientdata_store(data={"gone": None, "columns": {"w": 3}})
    assert client.clientdata_load() == {"theme": "dark", "columns": {"w": 3}}
    assert client.clientdata_load(keys=["theme", "nope"]) == {"theme": "dark"}


async def test_the_app_and_clientdata_calls(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        root = api.download_root.resolve()
        (root / "shows").mkdir()
        (root / "a.bin").write_bytes(b"12345")
        (root / ".hidden").write_bytes(b"")
        await anyio.to_thread.run_sync(drive, api.url, root)
        kept = api.state_dir / "qbittorrent_clientdata.json"
        assert json.loads(kept.read_text()) == {"theme": "dark", "columns": {"w": 3}}
    async with running_api(tmp_path) as api:  # (a restart: the client's data is kept)
        r = await api.client.get("/api/v2/clientdata/load")
        assert r.json() == {"theme": "dark", "columns": {"w": 3}}


async def test_bad_input_is_refused_as_qbittorrent_refuses_it(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        root = str(api.download_root.resolve())
        os.symlink("/etc", api.download_root / "out")
        async with httpx.AsyncClient(base_url=api.url, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            for method, fields, status, text in (
                    ("app/getDirectoryContent", {}, 400, "Missing required parameters: dirPath"),
                    ("app/getDirectoryContent", {"dirPath": ""}, 400, "Invalid directory path"),
                    ("app/getDirectoryContent", {"dirPath": root, "mode": "links"}, 400,
                     "Invalid mode, allowed values: all, dirs, files"),
                    ("app/getDirectoryContent", {"dirPath": f"{root}/out"}, 400, "Invalid directory path"),
                    ("app/getDirectoryContent", {"dirPath": f"{root}/../.."}, 400, "Invalid directory path"),
                    ("app/getFreeSpaceAtPath", {}, 400, "Missing required parameters: path"),
                    ("clientdata/store", {}, 400, "Missing required parameters: data"),
                    ("clientdata/store", {"data": "[1]"}, 400, "`data` must be an object"),
                    ("clientdata/store", {"data": "{"}, 400, "data is not JSON"),
                    ("clientdata/store", {"data": json.dumps({"big": "x" * (1 << 20)})}, 409,
                     "Total web client data must not be larger than 1048576 bytes"),
                    ("clientdata/load", {"keys": '"theme"'}, 400, "`keys` must be an array"),
                    ("clientdata/load", {"keys": "[1]"}, 400, "Items of `keys` must be strings")):
                r = await c.post(f"/api/v2/{method}", data=fields)
                assert (r.status_code, r.text[:len(text)]) == (status, text), (method, fields, r.text)
            dirs = await c.post("/api/v2/app/getDirectoryContent", data={"dirPath": root, "mode": "dirs"})
            assert dirs.json() == []  # (a symlink to a folder outside the root is not shown)
            assert (await c.get("/api/v2/clientdata/load")).json() == {}
            assert (await c.get("/api/v2/clientdata/store", params={"data": "{}"})).status_code == 405


async def test_a_user_lists_their_own_folder_and_a_viewer_none(tmp_path: Path) -> None:
    """``app/getDirectoryContent`` is picking a path (qBittorrent's WebUI completes its save
    paths with it): a user's, inside their own folder, as their paths lead there; a viewer's
    refused."""
    from tests.integration.test_api_users import qbt_as, users

    users(tmp_path / "state")
    async with running_api(tmp_path) as api:
        root = api.download_root.resolve()
        mine = root / "users" / "alice"
        (mine / "Music").mkdir(parents=True)
        (root / "elsewhere").mkdir()
        async with qbt_as(api, "alice") as alice, qbt_as(api, "vera") as vera:
            r = await alice.post("/api/v2/app/getDirectoryContent", data={"dirPath": str(mine)})
            assert (r.status_code, r.json()) == (200, [str(mine / "Music")]), r.text
            r = await alice.post("/api/v2/app/getDirectoryContent", data={"dirPath": str(root)})
            assert r.status_code == 400 and r.text.startswith("Invalid directory path"), r.text
            r = await vera.post("/api/v2/app/getDirectoryContent", data={"dirPath": str(root)})
            assert r.status_code == 403, r.text


@pytest.mark.parametrize(("error", "status", "said"), [
    (errno.EACCES, 400, "Invalid directory path: it cannot be read: Permission denied"),
    (errno.ENOENT, 404, "Directory does not exist"),  # (gone in the moment between)
])
async def test_a_folder_that_cannot_be_read_is_refused_saying_why(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: int, status: int, said: str) -> None:
    import torrent_engine.api.compat.qbittorrent_app as app_calls
    from tests.integration.test_api_folders import listing_fails

    listing_fails(monkeypatch, app_calls, error)
    async with running_api(tmp_path) as api:
        (api.download_root / "locked").mkdir()
        r = await api.client.post("/api/v2/app/getDirectoryContent",
                                  data={"dirPath": str(api.download_root.resolve() / "locked")})
        assert (r.status_code, r.text) == (status, said)
