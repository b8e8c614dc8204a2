"""Our API's torrent creator (``/api/creations``): a torrent made in the background from a folder
of the download root, fetched as a .torrent whose info-hash is the folder's, seeded at once when
asked (a job over the source, complete), written to a file of the download root (never over one
that is there), the same tasks qBittorrent's ``torrentcreator/status`` lists; a running one
deleted stops and leaves nothing; bad input refused naming the field; making one an admin's."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

import torrent_engine.jobs.intake.creations as creator
from tests.integration.api_helpers import Api, running_api
from tests.integration.test_api_users import as_user, users
from tests.integration.test_compat_qbittorrent_creator import share
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.storage.create import create_torrent

pytestmark = pytest.mark.anyio


async def ended(client: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    with anyio.fail_after(30):
        while (task := (await client.get(f"/api/creations/{task_id}")).json())["status"] in (
                "queued", "running"):
            await anyio.sleep(0.02)
    return dict(task)


async def shared_to_a_file(api: Api, torrent_file_path: str) -> tuple[Path, dict[str, Any]]:
    """The download root, with ``share`` in it made into a torrent written to
    ``torrent_file_path``, and the task once it ended."""
    root = api.download_root.resolve()
    share(root)
    r = await api.client.post("/api/creations", json={"source_path": "share",
                                                     "torrent_file_path": torrent_file_path})
    return root, await ended(api.client, r.json()["id"])


async def test_a_folder_made_into_a_torrent_fetched_seeded_and_listed_by_both_doors(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        root = api.download_root.resolve()
        folder = share(root)
        r = await api.client.post("/api/creations", json={
            "source_path": "share", "version": "hybrid", "piece_length": 16384, "private": True,
            "comment": "made here", "source": "SITE", "web_seeds": ["http://seed.example/files/"],
            "trackers": [["http://t1.example/announce", " udp://t2.example:6969 "], [], ["", "http://t3.example/a"]]})
        assert r.status_code == 201, r.text
        assert r.json()["status"] in ("queued", "running") and r.json()["start_seeding"] is True
        task = await ended(api.client, r.json()["id"])
        assert task["status"] == "finished" and task["progress"] == 100 and task["error"] is None, task
        assert task["source_path"] == str(folder) and task["name"] == "share" and task["size"] == 90000
        assert task["trackers"] == [["http://t1.example/announce", "udp://t2.example:6969"],
                                    ["http://t3.example/a"]]
        assert task["added"] <= task["started"] <= task["finished"] and task["piece_length"] == 16384
        got = await api.client.get(f"/api/creations/{task['id']}/torrent")
        assert got.status_code == 200 and got.headers["content-type"] == "application/x-bittorrent"
        assert got.headers["content-disposition"] == \
            "attachment; filename=\"share.torrent\"; filename*=UTF-8''share.torrent"
        torrent = Torrent.from_bytes(got.content)
        again = create_torrent(folder, version="hybrid", piece_length=16384, private=True, source="SITE",
                               skip_hidden=True)
        assert (torrent.info_hash_v1, torrent.info_hash_v2) == (again.info_hash_v1, again.info_hash_v2)
        assert task["info_hash"] == torrent.info_hash.hex()
        assert torrent.trackers == (("http://t1.example/announce", "udp://t2.example:6969"),
                                    ("http://t3.example/a",))
        assert torrent.web_seeds == ("http://seed.example/files/",) and torrent.comment == "made here"
        # seeded at once (no .torrent file asked for; there once it is finished): a job over the
        # folder, complete
        assert task["job_id"] is not None
        with anyio.fail_after(10):
            while (job := (await api.client.get(f"/api/jobs/{task['job_id']}")).json())["progress"] < 1:
                await anyio.sleep(0.05)
        assert job["info_hash"] == torrent.info_hash.hex() and job["options"]["save_path"] == str(root)
        # qBittorrent's door lists the same task
        listed = (await api.client.get("/api/v2/torrentcreator/status")).json()
        assert [(t["taskID"], t["status"]) for t in listed] == [(task["id"], "Finished")]
        assert (await api.client.delete(f"/api/creations/{task['id']}")).json() == {"deleted": task["id"]}
        assert (await api.client.get("/api/creations")).json() == {"creations": []}
        assert (await api.client.get(f"/api/creations/{task['id']}")).status_code == 404
        assert (await api.client.get(f"/api/jobs/{task['job_id']}")).status_code == 200  # (the job stays)


@pytest.mark.parametrize("version", ["v2", "hybrid", "v1"])
async def test_a_folder_of_one_file_is_seeded_where_its_torrent_puts_that_file(tmp_path: Path,
                                                                                version: str) -> None:
    async with running_api(tmp_path) as api:
        root = api.download_root.resolve()
        (root / "one").mkdir()
        (root / "one" / "only.bin").write_bytes(bytes(range(256)) * 300)
        r = await api.client.post("/api/creations", json={"source_path": "one", "version": version,
                                                         "piece_length": 16384})
        task = await ended(api.client, r.json()["id"])
        assert task["status"] == "finished" and task["job_id"] is not None, task
        torrent = Torrent.from_bytes((await api.client.get(f"/api/creations/{task['id']}/torrent")).content)
        # (a v2 tree of one file holds no folder, as BEP 52 reads it: the file alone; the v1 view's
        # file list holds the folder)
        single = version == "v2"
        paths = [f.path for f in torrent.files if not f.pad]
        assert paths == [("only.bin",) if single else ("one", "only.bin")]
        with anyio.fail_after(10):
            while (job := (await api.client.get(f"/api/jobs/{task['job_id']}")).json())["state"] != "seeding":
                assert job["state"] not in ("error", "failed"), job
                await anyio.sleep(0.05)
        assert job["progress"] == 1 and job["options"]["save_path"] == str(root / "one" if single else root)
        assert sorted(p.name for p in root.rglob("*")) == ["one", "only.bin"]  # (nothing written beside it)


async def test_a_torrent_file_is_written_once_and_never_over_what_is_there(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        root = api.download_root.resolve()
        share(root)
        r = await api.client.post("/api/creations", json={
            "source_path": "share/a.bin", "torrent_file_path": "made/a.torrent", "version": "v1"})
        task = await ended(api.client, r.json()["id"])
        assert task["status"] == "finished" and task["start_seeding"] is False and task["job_id"] is None
        written = root / "made" / "a.torrent"
        assert written.read_bytes() == (await api.client.get(f"/api/creations/{task['id']}/torrent")).content
        assert [p.name for p in written.parent.iterdir()] == ["a.torrent"]  # (no temporary file left)
        assert Torrent.from_bytes(written.read_bytes()).name == "a.bin"
        for there in ("made/a.torrent", "share/a.bin"):  # (a .torrent made before; the user's data)
            before = (root / there).read_bytes()
            r = await api.client.post("/api/creations", json={"source_path": "share",
                                                             "torrent_file_path": there})
            assert (r.status_code, r.json()["field"]) == (409, "torrent_file_path"), r.text
            assert (root / there).read_bytes() == before
        assert len((await api.client.get("/api/creations")).json()["creations"]) == 1
        assert api.service.client_jobs() == []


async def test_a_running_creation_deleted_stops_and_leaves_nothing(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    hashed: list[int] = []
    let_go = anyio.Event()  # (never set: the hashing waits between chunks until it is cancelled)

    def slow_create(*args: Any, progress: Any, **kwargs: Any) -> Torrent:
        def slowly(done: int, total: int) -> None:
            hashed.append(done)
            while not let_go.is_set():
                progress(done, total)  # (the cancel is looked at here)
                import time
                time.sleep(0.01)
        return create_torrent(*args, progress=slowly, **kwargs)

    monkeypatch.setattr(creator, "create_torrent", slow_create)
    monkeypatch.setattr("torrent_engine.storage.create.CHUNK_SIZE", 16384)
    async with running_api(tmp_path) as api:
        root = api.download_root.resolve()
        share(root)
        r = await api.client.post("/api/creations", json={
            "source_path": "share", "torrent_file_path": "x.torrent", "piece_length": 16384})
        task_id = r.json()["id"]
        with anyio.fail_after(10):
            while (await api.client.get(f"/api/creations/{task_id}")).json()["status"] != "running":
                await anyio.sleep(0.02)
        early = await api.client.get(f"/api/creations/{task_id}/torrent")
        assert (early.status_code, early.json()["field"]) == (409, "id")
        assert "running" in early.json()["error"]
        assert (await api.client.delete(f"/api/creations/{task_id}")).status_code == 200
        await anyio.sleep(0.3)  # (the worker thread sees the cancel at its next chunk)
        assert hashed and sorted(p.name for p in root.iterdir()) == ["share"]
        assert (await api.client.get("/api/creations")).json() == {"creations": []}


@pytest.mark.parametrize(("body", "field", "said"), [
    ({}, "source_path", "is required"),
    ({"source_path": "/etc"}, "source_path", "outside the download root"),
    ({"source_path": "share/../.."}, "source_path", "outside the download root"),
    ({"source_path": "."}, "source_path", "the download root itself"),
    ({"source_path": "share", "torrent_file_path": "/tmp/x.torrent"}, "torrent_file_path", "outside"),
    ({"source_path": "share", "version": "v3"}, "version", "v1, v2 or hybrid"),
    ({"source_path": "share", "version": ""}, "version", "v1, v2 or hybrid"),
    ({"source_path": "share", "piece_length": 1000}, "piece_length", "power of two"),
    ({"source_path": "share", "piece_length": 1 << 29}, "piece_length", "power of two"),
    ({"source_path": "share", "piece_length": "16384"}, "piece_length", "whole number"),
    ({"source_path": "share", "private": "yes"}, "private", "true or false"),
    ({"source_path": "share", "start_seeding": None}, "start_seeding", "true or false"),
    ({"source_path": "share", "trackers": ["http://t/"]}, "trackers", "list of strings"),
    ({"source_path": "share", "trackers": "http://t/"}, "trackers", "list of tiers"),
    ({"source_path": "share", "trackers": [["ftp://x/"]]}, "trackers", "'ftp://x/'"),
    ({"source_path": "share", "web_seeds": ["udp://x:1"]}, "web_seeds", "'udp://x:1'"),
    ({"source_path": "share", "trackers": [["http://a b/announce"]]}, "trackers", "a space"),
    ({"source_path": "share", "web_seeds": ["http://s/" + "x" * 5000]}, "web_seeds", "too long"),
    ({"source_path": "share", "comment": 3}, "comment", "must be a string"),
    ({"source_path": "share", "seed": True}, "seed", "unknown field"),
])
async def test_bad_input_is_refused_naming_the_field(tmp_path: Path, body: dict[str, Any], field: str,
                                                     said: str) -> None:
    async with running_api(tmp_path) as api:
        share(api.download_root.resolve())
        r = await api.client.post("/api/creations", json=body)
        assert (r.status_code, r.json()["field"]) == (400, field), r.text
        assert said in r.json()["error"], r.text
        assert (await api.client.get("/api/creations")).json() == {"creations": []}


async def test_making_one_is_an_admins_and_reading_them_anyones(tmp_path: Path) -> None:
    users(tmp_path / "state")
    async with running_api(tmp_path) as api:
        share(api.download_root.resolve())
        async with as_user(api, "alice") as alice, as_user(api, "vera") as vera:
            r = await alice.post("/api/creations", json={"source_path": "share"})
            assert r.status_code == 403 and "'admin' scope" in r.json()["error"], r.text
            made = (await api.client.post("/api/creations", json={"source_path": "share",
                                                                 "start_seeding": False})).json()
            await ended(api.client, made["id"])
            assert [t["id"] for t in (await vera.get("/api/creations")).json()["creations"]] == [made["id"]]
            assert (await vera.delete(f"/api/creations/{made['id']}")).status_code == 403
            assert (await vera.get(f"/api/creations/{made['id']}/torrent")).status_code == 200


async def test_a_file_come_where_the_torrent_goes_while_hashing_is_kept_and_the_task_fails(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def meanwhile(path: Path, **kwargs: Any) -> Torrent:
        (path.parent / "late.torrent").write_bytes(b"the user's")
        return create_torrent(path, **kwargs)

    monkeypatch.setattr(creator, "create_torrent", meanwhile)
    async with running_api(tmp_path) as api:
        root, task = await shared_to_a_file(api, "late.torrent")
        assert task["status"] == "failed" and "File exists" in task["error"], task
        assert (root / "late.torrent").read_bytes() == b"the user's"
        assert sorted(p.name for p in root.iterdir()) == ["late.torrent", "share"]  # (no temporary file)


async def test_on_a_file_system_without_hard_links_the_torrent_file_is_renamed_into_place(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_links(source: object, target: object) -> None:
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(creator.os, "link", no_links)
    async with running_api(tmp_path) as api:
        root, task = await shared_to_a_file(api, "s.torrent")
        assert task["status"] == "finished", task
        made = await api.client.get(f"/api/creations/{task['id']}/torrent")
        assert (root / "s.torrent").read_bytes() == made.content
        assert sorted(p.name for p in root.iterdir()) == ["s.torrent", "share"]


async def test_the_torrent_file_is_named_for_the_browser_whatever_the_name_holds(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        root = api.download_root.resolve()
        (root / 'Fête "d\'été"; 1').write_bytes(b"x" * 1000)
        r = await api.client.post("/api/creations", json={"source_path": 'Fête "d\'été"; 1',
                                                         "start_seeding": False})
        task = await ended(api.client, r.json()["id"])
        got = await api.client.get(f"/api/creations/{task['id']}/torrent")
        assert got.headers["content-disposition"] == (
            "attachment; filename=\"F_te _d'_t__; 1.torrent\"; "
            "filename*=UTF-8''F%C3%AAte%20%22d%27%C3%A9t%C3%A9%22%3B%201.torrent")
