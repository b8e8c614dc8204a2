"""A state folder whose file system is full: every change is refused with 507 naming the folder
(nothing is half made, and nothing answers as done that is not on disk); reads go on."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import torrent_engine.engine.manager
import torrent_engine.jobs.organising.categories
import torrent_engine.jobs.tuning.settings
from tests.integration.api_helpers import running_api
from tests.kept import kept_hashes
from tests.unit.torrent_factory import make_torrent, payload
from torrent_engine.jobs import JobService, JobState
from torrent_engine.storage import database

from .helpers import loopback_config

pytestmark = pytest.mark.anyio

WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


class FullStateFolder:
    """The state folder's file system, full while ``full`` is set: fault injection where the
    engine writes there (its atomic file writes, and SQLite's writes, which fail as SQLite does
    on a full disk)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, state_dir: Path) -> None:
        self.full = False
        self.database_only = False  # (SQLite's file grows; the others still fit)
        folder = self

        for module in (torrent_engine.jobs.organising.categories, torrent_engine.jobs.tuning.settings,
                       torrent_engine.engine.manager):
            real_write = module.write_atomic

            def write_atomic(path: Path, data: bytes, _real: Any = real_write) -> None:
                if folder.full and not folder.database_only and state_dir in Path(path).parents:
                    raise OSError(errno.ENOSPC, "No space left on device", str(path))
                _real(path, data)

            monkeypatch.setattr(module, "write_atomic", write_atomic)

        class Connection:
            def __init__(self, db: sqlite3.Connection) -> None:
                self._db = db

            def execute(self, sql: str, *args: Any) -> Any:
                self._refuse(sql)
                return self._db.execute(sql, *args)

            def executemany(self, sql: str, *args: Any) -> Any:
                self._refuse(sql)
                return self._db.executemany(sql, *args)

            def _refuse(self, sql: str) -> None:
                if folder.full and sql.lstrip().upper().startswith(WRITES):
                    exc = sqlite3.OperationalError("database or disk is full")
                    exc.sqlite_errorcode = sqlite3.SQLITE_FULL  # type: ignore[attr-defined]
                    raise exc

            def __getattr__(self, name: str) -> Any:
                return getattr(self._db, name)

        # (every database of the state folder: the job store's, and the manager's metainfo)
        real_open = database.open_database
        monkeypatch.setattr(database, "open_database", lambda *args: Connection(real_open(*args)))


def torrent_bytes(name: str) -> bytes:
    return make_torrent([(("a.bin",), payload(40000, 3))], 16384, name=name).to_bytes()


async def test_changes_are_refused_with_507_naming_the_folder_and_reads_go_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    disk = FullStateFolder(monkeypatch, tmp_path / "state")
    async with running_api(tmp_path) as api:
        c = api.client
        r = await c.post("/api/jobs", files={"torrent": ("t.torrent", torrent_bytes("before"))})
        assert r.status_code == 201, r.text
        job_id = r.json()["id"]
        disk.full = True
        r = await c.post("/api/jobs", files={"torrent": ("t.torrent", torrent_bytes("during"))})
        assert r.status_code == 507, r.text
        assert str(tmp_path / "state") in r.json()["error"]
        r = await c.post("/api/categories", json={"name": "tv"})
        assert r.status_code == 507 and str(tmp_path / "state") in r.json()["error"]
        r = await c.post(f"/api/jobs/{job_id}/pause")
        assert r.status_code == 507, r.text
        r = await c.post("/api/v2/torrents/pause", data={"hashes": "all"})
        assert r.status_code == 507, r.text
        # nothing of it was made, and reads are served
        jobs = (await c.get("/api/jobs")).json()["jobs"]
        assert [j["name"] for j in jobs] == ["before"]
        assert jobs[0]["state"] != "paused" and not jobs[0]["options"]["paused"]
        assert len(api.service.manager.sessions) == 1
        assert (await c.get("/api/categories")).json() in ([], {"categories": []})
        assert (await c.get("/api/stats")).status_code == 200
        disk.full = False
        r = await c.post(f"/api/jobs/{job_id}/pause")
        assert r.status_code == 200 and r.json()["state"] == "paused"
        disk.full = True
        r = await c.post(f"/api/jobs/{job_id}/resume")
        assert r.status_code == 507
        assert api.service.get(job_id).state is JobState.PAUSED
    disk.full = False
    async with JobService(loopback_config(state_dir=tmp_path / "state"), download_root=tmp_path / "downloads",
                          state_dir=tmp_path / "state") as again:  # (as after a crash)
        assert [j.state for j in again.list()] == [JobState.PAUSED]


async def test_an_add_whose_record_cannot_be_saved_is_undone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    disk = FullStateFolder(monkeypatch, tmp_path / "state")
    disk.full = disk.database_only = True
    async with running_api(tmp_path) as api:
        r = await api.client.post("/api/jobs", files={"torrent": ("t.torrent", torrent_bytes("lost"))},
                                  data={"save_path": "sub"})
        assert r.status_code == 507, r.text
        assert "its file system is full" in r.json()["error"]
        assert api.service.list() == [] and api.service.manager.sessions == []
        assert not (tmp_path / "downloads" / "sub").exists()  # the folder it made is gone too
        assert list((tmp_path / "state").rglob("*.torrent")) == []
        assert kept_hashes(tmp_path / "state") == set()


async def test_every_other_change_is_refused_with_507_and_leaves_nothing_changed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Limits, features, settings, queue moves and moves were made, answered 200 and only logged
    as not saved: after a crash the job came back without them."""
    disk = FullStateFolder(monkeypatch, tmp_path / "state")
    async with running_api(tmp_path) as api:
        c = api.client
        ids = []
        for name in ("one", "two"):
            r = await c.post("/api/jobs", files={"torrent": ("t.torrent", torrent_bytes(name))},
                             data={"paused": "true"})
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        r = await c.patch("/api/settings", json={"queueing": True})
        assert r.status_code == 200, r.text
        before = {i: (await c.get(f"/api/jobs/{i}")).json() for i in ids}
        disk.full = disk.database_only = True  # (the job store cannot grow)
        for body in ({"download_limit": 1000}, {"sequential": True}, {"tags": ["kept"]}):
            r = await c.patch(f"/api/jobs/{ids[0]}", json=body)
            assert r.status_code == 507, (body, r.text)
        r = await c.post(f"/api/jobs/{ids[1]}/queue", json={"move": "top"})
        assert r.status_code == 507, r.text
        r = await c.post(f"/api/jobs/{ids[0]}/move", json={"save_path": "elsewhere"})
        assert r.status_code == 507, r.text
        disk.database_only = False  # (nor can any file be written)
        r = await c.patch("/api/settings", json={"ratio_limit": 2.0})
        assert r.status_code == 507, r.text
        for i in ids:  # nothing of it was made
            now = (await c.get(f"/api/jobs/{i}")).json()
            for key in ("options", "features", "queue_position"):
                assert now[key] == before[i][key], key
        assert (await c.get("/api/settings")).json()["ratio_limit"] != 2.0
    disk.full = False
    async with JobService(loopback_config(state_dir=tmp_path / "state"), download_root=tmp_path / "downloads",
                          state_dir=tmp_path / "state") as again:  # (as after a crash)
        for i in ids:
            job = again.get(i)
            assert job.options.download_limit == 0 and not job.options.sequential and job.features.tags == ()
            assert job.options.save_path == before[i]["options"]["save_path"]
        assert again.queue_order() == ids


async def test_a_qbittorrent_add_of_several_torrents_whose_records_cannot_be_saved_is_refused_with_507(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``torrents/add`` with several ``.torrent`` files (one batch, added together) while the
    state folder's database is full: 507 naming the folder, as a single add is refused, and none
    of them added (before, the batch's error came out of its task group wrapped in a group, and
    the call failed as an error of the server's)."""
    disk = FullStateFolder(monkeypatch, tmp_path / "state")
    disk.full = disk.database_only = True
    async with running_api(tmp_path) as api:
        files = [("torrents", (f"{name}.torrent", torrent_bytes(name), "application/x-bittorrent"))
                 for name in ("one", "two", "three")]
        r = await api.client.post("/api/v2/torrents/add", files=files)
        assert r.status_code == 507, r.text
        assert str(tmp_path / "state") in r.text
        assert api.service.list() == [] and api.service.manager.sessions == []
        assert kept_hashes(tmp_path / "state") == set()


async def test_a_seed_mode_add_of_data_there_whose_records_cannot_be_saved_is_refused_with_507(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``torrents/add`` of complete torrents in seed mode (each a dormant seed from its add on)
    while the state folder's database is full: 507 naming the folder, and none of them added,
    after a restart either. Before, the undo's own delete of the kept metainfo failed on the full
    disk too: that error replaced the 507 (a 500), and the undo stopped half way, the jobs left
    in the table, written at the service's stop, there after the restart."""
    disk = FullStateFolder(monkeypatch, tmp_path / "state")
    names = ("one", "two", "three")
    for name in names:  # (their data is there: seed mode takes them as complete)
        (tmp_path / "downloads" / name).mkdir(parents=True)
        (tmp_path / "downloads" / name / "a.bin").write_bytes(payload(40000, 3))
    disk.full = disk.database_only = True
    async with running_api(tmp_path) as api:
        files = [("torrents", (f"{name}.torrent", torrent_bytes(name), "application/x-bittorrent"))
                 for name in names]
        r = await api.client.post("/api/v2/torrents/add", files=files, data={"skip_checking": "true"})
        assert r.status_code == 507, r.text
        assert str(tmp_path / "state") in r.text
        assert api.service.list() == [] and api.service.manager.sessions == []
        disk.full = False  # (room again before the service's stop writes what it holds)
    assert kept_hashes(tmp_path / "state") == set()
    async with JobService(loopback_config(state_dir=tmp_path / "state"), download_root=tmp_path / "downloads",
                          state_dir=tmp_path / "state") as again:  # (as after a restart)
        assert again.list() == []
    assert all((tmp_path / "downloads" / name / "a.bin").exists() for name in names)  # (their data stays)


async def test_a_bulk_action_the_state_folder_cannot_hold_is_refused_with_507(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``POST /api/jobs/bulk`` (the web UI's selection) while the state folder's database is
    full: 507 naming the folder, as the action on one job is refused, and no job changed
    (before, the first job's ``StateNotSaved`` came out of the bulk's task group wrapped in a
    group, and the call failed as an error of the server's)."""
    disk = FullStateFolder(monkeypatch, tmp_path / "state")
    async with running_api(tmp_path) as api:
        c = api.client
        ids = []
        for name in ("one", "two", "three"):
            r = await c.post("/api/jobs", files={"torrent": (f"{name}.torrent", torrent_bytes(name))})
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        disk.full = disk.database_only = True
        r = await c.post("/api/jobs/bulk", json={"action": "pause", "ids": ids})
        assert r.status_code == 507, r.text
        assert str(tmp_path / "state") in r.json()["error"]
        assert all(not api.service.get(i).options.paused for i in ids)
