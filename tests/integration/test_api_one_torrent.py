"""A download client's call about one torrent (qBittorrent's ``torrents/properties``, ``files``,
``trackers``, ``torrents/info`` of chosen hashes, an action on chosen hashes; Transmission's
``torrent-get`` of chosen ids) makes the view of that torrent alone, and a count makes none: a
details panel polled each second made the view of every torrent (30 ms a call at 10 000), and
so did ``session-stats``."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.api_helpers import running_api
from tests.integration.test_api_changes import rpc, torrent, turns_of_views
from tests.integration.test_api_users import as_user, users

pytestmark = pytest.mark.anyio

NAMES = ("alpha", "bravo", "charlie", "delta", "echo")


async def test_a_qbittorrent_call_about_one_torrent_makes_its_view_alone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with running_api(tmp_path) as api:
        jobs = [(await api.service.add(torrent(name), paused=True))[0] for name in NAMES]
        b, d = jobs[1], jobs[3]
        q = api.client

        async def get(path: str, **params: str) -> httpx.Response:
            return await q.get(f"/api/v2/{path}", params=params)

        for path in ("torrents/properties", "torrents/files", "torrents/trackers", "torrents/pieceStates"):
            answer, seen = await turns_of_views(api, monkeypatch,
                                                lambda p=path: get(p, hash=b.info_hash.upper()))
            assert answer.status_code == 200, (path, answer.text)
            assert len(seen) == 1, path
        assert (await get("torrents/properties", hash=b.info_hash)).json()["name"] == "bravo"
        files = (await get("torrents/files", hash=d.info_hash)).json()
        assert [f["name"] for f in files] == ["delta/delta.bin"]
        missing, seen = await turns_of_views(api, monkeypatch,
                                             lambda: get("torrents/properties", hash="0" * 40))
        assert missing.status_code == 404 and seen == []

        # torrents/info of chosen hashes (newest first, as the whole list orders them), a filter beside
        chosen = f"{b.info_hash}|{'0' * 40}|{d.info_hash.upper()}"
        info, seen = await turns_of_views(api, monkeypatch, lambda: get("torrents/info", hashes=chosen))
        assert [t["name"] for t in info.json()] == ["delta", "bravo"] and len(seen) == 2
        assert (await get("torrents/info", hashes=chosen, filter="seeding")).json() == []
        stopped = (await get("torrents/info", hashes=b.info_hash, filter="stopped")).json()
        assert [t["name"] for t in stopped] == ["bravo"]
        assert (await get("torrents/info", hashes=b.info_hash, filter="bogus")).status_code == 400

        count, seen = await turns_of_views(api, monkeypatch, lambda: get("torrents/count"))
        assert count.text == "5" and seen == []

        # an action on two hashes (and one unknown, skipped, as qBittorrent does)
        hashes = f"{b.info_hash}|{'0' * 40}|{d.info_hash}"
        done, seen = await turns_of_views(api, monkeypatch, lambda: q.post(
            "/api/v2/torrents/addTags", data={"hashes": hashes, "tags": "picked"}))
        assert done.status_code == 200 and len(seen) == 2
        tagged = {t["name"] for t in (await get("torrents/info", tag="picked")).json()}
        assert tagged == {"bravo", "delta"}
        everyone = await q.post("/api/v2/torrents/addTags", data={"hashes": "all", "tags": "every"})
        assert everyone.status_code == 200
        assert len((await get("torrents/info", tag="every")).json()) == 5


async def test_a_filtered_torrents_info_makes_the_records_of_the_torrents_it_lists_alone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``torrents/info?category=`` (each poll of an *arr app), ``tag=`` and ``filter=`` choose the
    torrents before their records are made: a category or tag by each job's record (no view of
    the others), a status by each job's view (no record of those it passes over). A filtered
    list made the record of every torrent first (54 ms at 10 000 for an empty answer)."""
    from torrent_engine.api.compat.qbittorrent import QbittorrentApi

    async with running_api(tmp_path) as api:
        jobs = [(await api.service.add(torrent(name), paused=True))[0] for name in NAMES]
        for category in ("tv", "films"):
            await api.service.create_category(category, "")
        await api.service.set_features([jobs[1].id, jobs[3].id], category="tv", tags=("hd",))
        await api.service.set_features([jobs[2].id], category="films")
        await api.service.resume(jobs[4].id)
        q = api.client
        made: list[str] = []
        record = QbittorrentApi._record

        def counted(self: QbittorrentApi, job: Any, settings: Any) -> Any:
            made.append(job.name)
            return record(self, job, settings)

        monkeypatch.setattr(QbittorrentApi, "_record", counted)

        async def names(**params: str) -> tuple[list[str], int]:
            made.clear()
            got, seen = await turns_of_views(api, monkeypatch, lambda: q.get("/api/v2/torrents/info",
                                                                           params=params))
            assert got.status_code == 200, got.text
            return sorted(t["name"] for t in got.json()), len(seen)  # (how many views made)

        # a status: the view of each job, the record of those it lists alone
        assert await names(filter="resumed") == (["echo"], 5) and made == ["echo"]
        # a category or a tag: the views and records of its jobs alone
        assert await names(category="tv") == (["bravo", "delta"], 2)
        assert made == ["delta", "bravo"]
        assert await names(category="tv", tag="hd") == (["bravo", "delta"], 2) and made == []  # (kept)
        assert await names(category="") == (["alpha", "echo"], 2)
        assert "alpha" in made and set(made) <= {"alpha", "echo"}  # (echo runs: its view may move)
        assert await names(category="none of them") == ([], 0)
        assert (await names(filter="stopped"))[0] == ["alpha", "bravo", "charlie", "delta"]
        assert made == ["charlie"]
        assert (await names(tag=""))[0] == ["alpha", "charlie", "echo"]
        assert (await names(filter="stopped", category="tv", tag="hd"))[0] == ["bravo", "delta"]
        assert (await q.get("/api/v2/torrents/info", params={"filter": "bogus"})).status_code == 400
        # the unfiltered list afterwards: every record kept (a filtered list forgets none)
        assert (await names())[0] == sorted(NAMES) and set(made) <= {"echo"}


async def test_a_transmission_call_about_chosen_ids_makes_their_views_alone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with running_api(tmp_path) as api, httpx.AsyncClient(base_url=api.url) as c:
        jobs = [(await api.service.add(torrent(name), paused=True))[0] for name in NAMES]
        a, c_, e = jobs[0], jobs[2], jobs[4]

        def get(ids: Any) -> Any:
            return rpc(c, "torrent-get", {"fields": ["id", "name", "hashString"], "ids": ids})

        got, seen = await turns_of_views(api, monkeypatch, lambda: get([c_.number]))
        assert [t["name"] for t in got["torrents"]] == ["charlie"] and len(seen) == 1
        # a number and a hash, the same torrent twice, an unknown one: each asked torrent once
        got, seen = await turns_of_views(api, monkeypatch, lambda: get(
            [e.number, a.info_hash.upper(), e.info_hash, 999, "f" * 40]))
        assert [t["name"] for t in got["torrents"]] == ["alpha", "echo"] and len(seen) == 2
        got, seen = await turns_of_views(api, monkeypatch, lambda: get(c_.info_hash))
        assert [t["id"] for t in got["torrents"]] == [c_.number] and len(seen) == 1

        stats, seen = await turns_of_views(api, monkeypatch, lambda: rpc(c, "session-stats", {}))
        assert seen == []
        assert (stats["torrentCount"], stats["pausedTorrentCount"], stats["activeTorrentCount"]) == (5, 5, 0)
        assert stats["cumulative-stats"]["filesAdded"] == 5

        # an action on chosen ids: those alone
        await rpc(c, "torrent-start", {"ids": [a.number, e.info_hash]})
        listed = (await rpc(c, "torrent-get", {"fields": ["name", "status"]}))["torrents"]
        states = {t["name"]: t["status"] for t in listed}
        assert {n for n, s in states.items() if s != 0} == {"alpha", "echo"}
        stats = await rpc(c, "session-stats", {})
        assert (stats["torrentCount"], stats["pausedTorrentCount"], stats["activeTorrentCount"]) == (5, 3, 2)


async def test_a_users_add_looks_its_torrent_up_among_the_others_jobs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whether a torrent a user adds is another user's already is looked up by its info-hash: each
    add of a user made the view of every job (and still refuses another's torrent)."""
    users(tmp_path / "state")
    async with running_api(tmp_path) as api:
        for name in NAMES[:4]:
            await api.service.add(torrent(name), paused=True)
        async with as_user(api, "alice") as alice:
            def add(name: str) -> Any:
                return alice.post("/api/jobs", json={"source": base64.b64encode(torrent(name)).decode(),
                                                     "paused": True})
            added, seen = await turns_of_views(api, monkeypatch, lambda: add("echo"))
            assert added.status_code == 201, added.text
            assert len(seen) <= 1, seen  # (its own, at most)
            r = await add("alpha")  # (the admin's)
            assert r.status_code == 409 and "another user" in r.json()["error"], r.text
