"""qBittorrent's torrent creator (``torrentcreator/*``) on the dialect: v1, v2 and hybrid torrents
made in the background through the real ``qbittorrent-api`` client and read back with our own
metainfo parser, a running task deleted (cancelled, nothing left), seeding what was made, and
the refusals for bad input."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

import torrent_engine.jobs.intake.creations as creator
from tests.integration.api_helpers import TOKEN, running_api
from tests.integration.api_helpers import qbt_client as client_of
from tests.unit.torrent_factory import payload
from torrent_engine.formats.bencode import decode
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.storage.create import create_torrent

pytestmark = pytest.mark.anyio

TRACKERS = ["http://t1.example/announce", "udp://t2.example:6969", "", "http://t3.example/announce"]
WEB_SEED = "http://seed.example/files/"




def share(root: Path) -> Path:
    folder = root / "share"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.bin").write_bytes(payload(70000, 1))
    (folder / "sub" / "b.bin").write_bytes(payload(20000, 2))
    (folder / ".hidden").write_bytes(b"not shared")
    return folder


def finished(client: Any, task_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        (status,) = client.torrentcreator_status(task_id=task_id)
        if status["status"] in ("Finished", "Failed"):
            return dict(status)
        time.sleep(0.02)
    raise AssertionError(f"task {task_id} did not finish")


async def status_of(client: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    statuses = (await client.get("/api/v2/torrentcreator/status", params={"taskID": task_id})).json()
    assert len(statuses) == 1
    return dict(statuses[0])


def drive(url: str, folder: Path) -> None:
    client = client_of(url)
    made: dict[str, Torrent] = {}
    for version in ("v1", "v2", "hybrid"):
        task = client.torrentcreator_add_task(
            source_path=folder, format=version, piece_size=16384, is_private=True,
            comment=f"made as {version}", trackers=TRACKERS, url_seeds=[WEB_SEED], start_seeding=False)
        status = finished(client, task["taskID"])
        assert status["status"] == "Finished", status
        assert status["sourcePath"] == str(folder) and status["format"] == version
        assert status["pieceSize"] == 16384 and status["private"] is True and status["ignoreDotfiles"] is True
        assert status["comment"] == f"made as {version}" and status["trackers"] == TRACKERS
        assert status["urlSeeds"] == [WEB_SEED] and "errorMessage" not in status
        assert status["timeAdded"] <= status["timeStarted"] <= status["timeFinished"]
        torrent = Torrent.from_bytes(client.torrentcreator_torrent_file(task_id=task["taskID"]))
        made[version] = torrent
        # the same info-hash as the data hashed here again, hidden files left out
        again = create_torrent(folder, version=version, piece_length=16384, private=True, skip_hidden=True)
        assert (torrent.info_hash_v1, torrent.info_hash_v2) == (again.info_hash_v1, again.info_hash_v2)
        assert torrent.trackers == (("http://t1.example/announce", "udp://t2.example:6969"),
                                    ("http://t3.example/announce",))
        assert torrent.web_seeds == (WEB_SEED,) and torrent.private
        assert torrent.comment == f"made as {version}"
        assert not any(".hidden" in f.path for f in torrent.files)
    assert made["v1"].info_hash_v2 is None and made["v2"].info_hash_v1 is None
    assert made["hybrid"].info_hash_v1 and made["hybrid"].info_hash_v2
    trees = [decode(made[v].info_bytes)[b"file tree"] for v in ("v2", "hybrid")]  # type: ignore[index]
    assert trees[0] == trees[1]  # (BEP 52: the same v2 view)

    listed = client.torrentcreator_status()
    assert [s["status"] for s in listed] == ["Finished"] * 3
    client.torrentcreator_delete_task(task_id=listed[0]["taskID"])
    assert len(client.torrentcreator_status()) == 2


async def test_v1_v2_and_hybrid_through_qbittorrent_api(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        folder = share(api.download_root.resolve())
        await anyio.to_thread.run_sync(drive, api.url, folder)
        assert api.service.client_jobs() == []  # (startSeeding=false)


async def test_source_a_written_file_and_start_seeding(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        root = api.download_root.resolve()
        folder = share(root)
        out = root / "made" / "share.torrent"
        r = await api.client.post("/api/v2/torrentcreator/addTask", data={
            "sourcePath": str(folder), "torrentFilePath": str(out), "source": "TRACKER", "format": "V2",
            "ignoreDotfiles": "false", "startSeeding": "true"})
        assert r.status_code == 200, r.text
        task_id = r.json()["taskID"]
        with anyio.fail_after(30):
            while (status := await status_of(api.client, task_id))["status"] != "Finished":
                assert status["status"] != "Failed", status
                await anyio.sleep(0.02)
        assert status["source"] == "TRACKER" and status["torrentFilePath"] == str(out)
        assert status["ignoreDotfiles"] is False and status["pieceSize"] > 0
        got = await api.client.get("/api/v2/torrentcreator/torrentFile", params={"taskID": task_id})
        assert got.headers["content-type"] == "application/x-bittorrent"
        assert got.content == out.read_bytes()
        torrent = Torrent.from_bytes(got.content)
        info = decode(torrent.info_bytes)
        assert isinstance(info, dict) and info[b"source"] == b"TRACKER"
        assert any(".hidden" in f.path for f in torrent.files)
        assert [p.name for p in out.parent.iterdir()] == ["share.torrent"]  # (no temporary file left)
        with anyio.fail_after(10):  # startSeeding: a job over the source, seeding at once
            while not (jobs := api.service.client_jobs()) or jobs[0].progress < 1:
                await anyio.sleep(0.05)
        assert jobs[0].info_hash == torrent.info_hash.hex()
        assert jobs[0].options.save_path == str(root)


async def test_a_deleted_running_task_stops_and_leaves_nothing(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    chunks: list[int] = []

    def slow_create(*args: Any, progress: Any, **kwargs: Any) -> Torrent:
        def slowly(done: int, total: int) -> None:
            chunks.append(done)
            time.sleep(0.01)
            progress(done, total)
        return create_torrent(*args, progress=slowly, **kwargs)

    monkeypatch.setattr(creator, "create_torrent", slow_create)
    monkeypatch.setattr("torrent_engine.storage.create.CHUNK_SIZE", 16384)
    async with running_api(tmp_path) as api:
        root = api.download_root.resolve()
        (root / "big.bin").write_bytes(payload(4 << 20, 7))  # 256 chunks: about 3 s
        out = root / "big.torrent"
        add = {"sourcePath": str(root / "big.bin"), "torrentFilePath": str(out), "pieceSize": "16384"}
        first = (await api.client.post("/api/v2/torrentcreator/addTask", data=add)).json()["taskID"]
        second = (await api.client.post("/api/v2/torrentcreator/addTask", data=add)).json()["taskID"]
        with anyio.fail_after(10):
            while (status := await status_of(api.client, first)).get("progress", 0) < 2:
                await anyio.sleep(0.02)
        assert status["status"] == "Running" and "timeFinished" not in status
        queued = await status_of(api.client, second)
        assert queued["status"] == "Queued" and "timeStarted" not in queued  # (one hashing at a time)
        early = (await api.client.get("/api/v2/torrentcreator/torrentFile", params={"taskID": first}))
        assert (early.status_code, early.text) == (409, "Torrent creation is still unfinished.")
        for task_id in (second, first):
            r = await api.client.post("/api/v2/torrentcreator/deleteTask", data={"taskID": task_id})
            assert r.status_code == 200
        seen = len(chunks)
        await anyio.sleep(0.3)
        assert len(chunks) <= seen + 1 and len(chunks) < 200  # (stopped at the next chunk)
        assert (await api.client.get("/api/v2/torrentcreator/status")).json() == []
        assert sorted(p.name for p in root.iterdir()) == ["big.bin"]  # nothing written


async def test_bad_input_is_refused(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        root = api.download_root.resolve()
        folder = share(root)
        async with httpx.AsyncClient(base_url=api.url, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            folder_s = str(folder)
            for method, fields, status, text in (
                    ("addTask", {}, 400, "Missing required parameters: sourcePath"),
                    ("addTask", {"sourcePath": "/etc"}, 400, "sourcePath: '/etc' is outside the download"),
                    ("addTask", {"sourcePath": f"{root}/../.."}, 400, "sourcePath: "),
                    ("addTask", {"sourcePath": str(folder), "torrentFilePath": "/tmp/x.torrent"}, 400,
                     "torrentFilePath: "),
                    ("addTask", {"sourcePath": folder_s, "torrentFilePath": str(folder / "a.bin")}, 409,
                     "torrentFilePath: "),  # (the user's file: never written over)
                    ("addTask", {"sourcePath": folder_s, "format": "v3"}, 400, "format must be v1, v2 or"),
                    ("addTask", {"sourcePath": folder_s, "pieceSize": "1000"}, 400, "pieceSize: must be"),
                    ("addTask", {"sourcePath": folder_s, "pieceSize": "536870912"}, 400, "pieceSize: must"),
                    ("addTask", {"sourcePath": folder_s, "trackers": "ftp://x/"}, 400, "trackers: 'ftp://x/'"),
                    ("addTask", {"sourcePath": folder_s, "urlSeeds": "udp://x:1"}, 400, "urlSeeds: 'udp://x:1'"),
                    ("status", {"taskID": "nope"}, 404, "Not Found"),
                    ("torrentFile", {"taskID": "nope"}, 404, "Not Found"),
                    ("torrentFile", {}, 400, "Missing required parameters: taskID"),
                    ("deleteTask", {"taskID": "nope"}, 404, "Not Found"),
                    ("deleteTask", {}, 400, "Missing required parameters: taskID")):
                r = await c.post(f"/api/v2/torrentcreator/{method}", data=fields)
                assert (r.status_code, r.text[:len(text)]) == (status, text), (method, fields, r.text)
            assert (await c.get("/api/v2/torrentcreator/addTask",
                                params={"sourcePath": str(folder)})).status_code == 405
            # a source that is not there: the task fails, as qBittorrent's does
            r = await c.post("/api/v2/torrentcreator/addTask", data={"sourcePath": str(root / "missing")})
            task_id = r.json()["taskID"]
            with anyio.fail_after(10):
                while (s := (await c.get("/api/v2/torrentcreator/status")).json()[0])["status"] != "Failed":
                    await anyio.sleep(0.02)
            assert s["taskID"] == task_id and s["errorMessage"].startswith("Create new torrent file failed.")
            r = await c.get("/api/v2/torrentcreator/torrentFile", params={"taskID": task_id})
            assert (r.status_code, r.text) == (409, "Torrent creation failed.")


async def test_a_full_list_forgets_its_oldest_finished_task(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(creator, "MAX_TASKS", 2)
    async with running_api(tmp_path) as api:
        root = api.download_root.resolve()
        (root / "f").write_bytes(b"x" * 100)
        add = {"sourcePath": str(root / "f"), "startSeeding": "false"}
        done = (await api.client.post("/api/v2/torrentcreator/addTask", data=add)).json()["taskID"]
        with anyio.fail_after(10):
            while (await api.client.get("/api/v2/torrentcreator/status")).json()[0]["status"] != "Finished":
                await anyio.sleep(0.02)
        assert (await api.client.post("/api/v2/torrentcreator/addTask", data=add)).status_code == 200
        assert (await api.client.post("/api/v2/torrentcreator/addTask", data=add)).status_code == 200
        ids = [s["taskID"] for s in (await api.client.get("/api/v2/torrentcreator/status")).json()]
        assert done not in ids and len(ids) == 2  # (the finished one made room)


async def test_stopping_the_daemon_stops_a_creation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chunks: list[int] = []

    def slow_create(*args: Any, progress: Any, **kwargs: Any) -> Torrent:
        def slowly(done: int, total: int) -> None:
            chunks.append(done)
            time.sleep(0.01)
            progress(done, total)
        return create_torrent(*args, progress=slowly, **kwargs)

    monkeypatch.setattr(creator, "create_torrent", slow_create)
    monkeypatch.setattr("torrent_engine.storage.create.CHUNK_SIZE", 16384)
    root = tmp_path / "downloads"
    with anyio.fail_after(10):
        async with running_api(tmp_path) as api:
            (root / "big.bin").write_bytes(payload(4 << 20, 7))
            r = await api.client.post("/api/v2/torrentcreator/addTask", data={
                "sourcePath": str(root / "big.bin"), "torrentFilePath": str(root / "big.torrent"),
                "pieceSize": "16384"})
            while not chunks:
                await anyio.sleep(0.02)
            assert r.status_code == 200
        stopped = len(chunks)
    await anyio.sleep(0.2)
    assert len(chunks) == stopped < 200  # (the hashing thread ended with the service)
    assert sorted(p.name for p in root.iterdir()) == ["big.bin"]
