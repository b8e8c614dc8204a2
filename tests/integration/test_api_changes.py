"""Answers from the job service's change log, through the HTTP app: ``/api/jobs?since=``,
Transmission's ``recently-active`` and qBittorrent's ``sync/maindata`` with a known ``rid``. A
job whose view changed is in the answer (one test per kind of change); one that did not is not:
a missed mark would leave a client showing stale data."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
import httpx
import pytest

from tests.integration.api_helpers import TOKEN, Api, add_late_seed, complete_late_seed, running_api
from tests.unit.loop_turns import counted_turns
from tests.unit.torrent_factory import make_torrent, payload
from torrent_engine.engine import turns as turns_module
from torrent_engine.events import StatsUpdate
from torrent_engine.jobs import JobState

pytestmark = pytest.mark.anyio

T = TypeVar("T")


def torrent(name: str) -> bytes:
    return make_torrent([((f"{name}.bin",), payload(40000, len(name)))], 16384, name=name).to_bytes()


async def since(api: Api, cursor: int) -> dict[str, Any]:
    r = await api.client.get("/api/jobs", params={"since": cursor})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def cursor_now(api: Api) -> int:
    r = await api.client.get("/api/jobs")
    cursor: int = r.json()["cursor"]
    return cursor


async def test_since_answers_the_jobs_changed_after_the_cursor_and_none_other(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        a, _ = await api.service.add(torrent("alpha"), paused=True)
        b, _ = await api.service.add(torrent("bravo"), paused=True)
        first = await api.client.get("/api/jobs")
        assert {j["id"] for j in first.json()["jobs"]} == {a.id, b.id}
        cursor = first.json()["cursor"]
        quiet = await since(api, cursor)
        assert quiet == {"jobs": [], "removed": [], "cursor": quiet["cursor"], "full": False}

        # a record edit: rename
        await api.service.set_features([a.id], rename="renamed")
        told = await since(api, cursor)
        assert [j["id"] for j in told["jobs"]] == [a.id] and told["jobs"][0]["name"] == "renamed"
        assert told["full"] is False and told["removed"] == []
        cursor = told["cursor"]
        # tags and a category
        await api.service.add_tags([b.id], ["tv"])
        told = await since(api, cursor)
        assert [j["id"] for j in told["jobs"]] == [b.id]
        await api.service.create_category("films")
        cursor = told["cursor"]
        await api.service.set_features([a.id], category="films")
        told = await since(api, cursor)
        assert [j["id"] for j in told["jobs"]] == [a.id]
        # a state change
        cursor = told["cursor"]
        await api.service.resume(b.id)
        told = await since(api, cursor)
        assert [j["id"] for j in told["jobs"]] == [b.id] and told["jobs"][0]["state"] != "paused"
        # an add
        cursor = told["cursor"]
        c, _ = await api.service.add(torrent("charlie"), paused=True)
        told = await since(api, cursor)
        assert [j["id"] for j in told["jobs"]] == [c.id]
        # an end, then a removal
        cursor = told["cursor"]
        await api.service.cancel(c.id)
        told = await since(api, cursor)
        assert [j["id"] for j in told["jobs"]] == [c.id] and told["jobs"][0]["state"] == "cancelled"
        cursor = told["cursor"]
        await api.service.forget(c.id)
        told = await since(api, cursor)
        assert told["jobs"] == [] and told["removed"] == [c.id]


async def test_progress_of_a_downloading_job_marks_it(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        a, _ = await api.service.add(torrent("alpha"))
        await api.service.add(torrent("bravo"), paused=True)
        for _ in range(200):  # (its session's first news: downloading, with no peer on loopback)
            if api.service.get(a.id).state is JobState.DOWNLOADING:
                break
            await _sleep()
        cursor = await cursor_now(api)
        assert (await since(api, cursor))["jobs"] == []
        # what a session's tick publishes when its numbers move (the one way a job's progress is told)
        api.service.manager.events.publish(StatsUpdate(
            info_hash=a.info_hash, state="downloading", downloaded=16384, uploaded=0, download_rate=1000.0,
            upload_rate=0.0, peers=1, progress=0.4, eta=10.0))
        await _sleep()
        told = await since(api, cursor)
        assert [j["id"] for j in told["jobs"]] == [a.id]


async def test_since_refuses_what_is_not_a_cursor_and_answers_an_unknown_one_in_full(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        a, _ = await api.service.add(torrent("alpha"), paused=True)
        for bad in ("x", "-1", "1.5", ""):
            r = await api.client.get("/api/jobs", params={"since": bad})
            assert r.status_code == 400 and r.json()["field"] == "since", (bad, r.text)
        r = await api.client.get("/api/jobs", params={"since": 1, "state": "paused"})
        assert r.status_code == 400 and r.json()["field"] == "since"
        told = await since(api, 1)  # (below this run's first change number: from an earlier run)
        assert told["full"] is True and [j["id"] for j in told["jobs"]] == [a.id]
        told = await since(api, told["cursor"] + 10)  # (ahead: not one this run gave)
        assert told["full"] is True


async def _sleep() -> None:
    await anyio.sleep(0.02)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def rpc(c: httpx.AsyncClient, method: str, arguments: dict[str, Any]) -> dict[str, Any]:
    r = await c.post("/transmission/rpc", json={"method": method, "arguments": arguments}, auth=("u", TOKEN))
    if r.status_code == 409:
        c.headers["X-Transmission-Session-Id"] = r.headers["x-transmission-session-id"]
        r = await c.post("/transmission/rpc", json={"method": method, "arguments": arguments},
                         auth=("u", TOKEN))
    body: dict[str, Any] = r.json()
    assert body["result"] == "success", body
    return body["arguments"]  # type: ignore[no-any-return]


async def test_recently_active_is_the_jobs_changed_in_the_last_minute(tmp_path: Path) -> None:
    clock = Clock()
    async with running_api(tmp_path, clock=clock) as api, httpx.AsyncClient(base_url=api.url) as c:
        a, _ = await api.service.add(torrent("alpha"), paused=True)
        b, _ = await api.service.add(torrent("bravo"), paused=True)
        d, _ = await api.service.add(torrent("delta"), paused=True)
        got = await rpc(c, "torrent-get", {"fields": ["id", "name"], "ids": "recently-active"})
        assert {t["id"] for t in got["torrents"]} == {a.number, b.number, d.number}
        clock.now += 120  # (a minute later than RECENT: none of them changed since)
        got = await rpc(c, "torrent-get", {"fields": ["id", "name"], "ids": "recently-active"})
        assert got == {"torrents": [], "removed": []}
        await rpc(c, "torrent-set", {"ids": [a.number], "labels": ["tv"]})
        got = await rpc(c, "torrent-get", {"fields": ["id", "labels"], "ids": "recently-active"})
        assert got == {"torrents": [{"id": a.number, "labels": ["tv"]}], "removed": []}  # not b nor d
        clock.now += 120
        await api.service.cancel(b.id)
        got = await rpc(c, "torrent-get", {"fields": ["id", "queuePosition"], "ids": "recently-active"})
        assert got["removed"] == [b.number]  # (cancelled: gone for a download client)
        # (d's queue position moved up: a change of its view; a's did not)
        assert got["torrents"] == [{"id": d.number, "queuePosition": 1}]
        clock.now += 120
        await api.service.forget(b.id)
        got = await rpc(c, "torrent-get", {"fields": ["id"], "ids": "recently-active"})
        assert got == {"torrents": [], "removed": [b.number]}


async def test_maindata_with_a_known_rid_shows_what_changed_and_only_that(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        a, _ = await api.service.add(torrent("alpha"), paused=True)
        b, _ = await api.service.add(torrent("bravo"), paused=True)
        q = httpx.AsyncClient(base_url=api.url)
        async with q:
            r = await q.post("/api/v2/auth/login", data={"username": "admin", "password": TOKEN})
            assert r.status_code == 200
            full = (await q.get("/api/v2/sync/maindata", params={"rid": 0})).json()
            assert full["full_update"] is True and set(full["torrents"]) == {a.info_hash, b.info_hash}
            rid = full["rid"]
            await api.service.set_features([a.id], rename="renamed")
            await api.service.add_tags([a.id], ["tv"])
            delta = (await q.get("/api/v2/sync/maindata", params={"rid": rid})).json()
            assert "full_update" not in delta and set(delta["torrents"]) == {a.info_hash}  # not b
            shown = delta["torrents"][a.info_hash]
            assert shown["name"] == "renamed" and shown["tags"] == "tv" and "state" not in shown
            await api.service.cancel(b.id)
            after = (await q.get("/api/v2/sync/maindata", params={"rid": delta["rid"]})).json()
            assert after.get("torrents_removed") == [b.info_hash] and "torrents" not in after
            # (the rid an answer was last made from is kept, for a client whose answer was lost:
            # the same changes again; an older one is not, as in qBittorrent: a full answer)
            again = (await q.get("/api/v2/sync/maindata", params={"rid": delta["rid"]})).json()
            assert again.get("torrents_removed") == [b.info_hash] and "torrents" not in again
            older = (await q.get("/api/v2/sync/maindata", params={"rid": rid})).json()
            assert older["full_update"] is True and set(older["torrents"]) == {a.info_hash}




async def test_a_seed_whose_listed_seeding_time_moved_a_minute_is_marked(tmp_path: Path) -> None:
    """(No event says a seed's seeding time moved: the list shows it to the minute, and a
    cursor's answer has the seed once it moved a minute, not before.)"""
    from tests.integration.helpers import loopback_config
    from tests.integration.test_jobs_dormant_seeds import seeds_in
    from torrent_engine.jobs import JobService

    clock = Clock()
    seed = seeds_in(tmp_path, 1)[0]
    async with JobService(loopback_config(), download_root=tmp_path / "dl", state_dir=tmp_path / "state",
                          clock=clock) as jobs:
        job, _ = await jobs.add(seed.to_bytes(), seed_mode=True)
        for _ in range(200):
            if jobs.get(job.id).state is JobState.SEEDING:
                break
            await _sleep()
        await jobs.enforce()
        cursor = jobs.changes(None).cursor  # (every job listed: its view made now)
        clock.now += 30
        await jobs.enforce()
        told = jobs.changes(cursor)
        assert told.jobs == [] and not told.full  # (30 s more: the list shows the same minute)
        clock.now += 40
        await jobs.enforce()
        told = jobs.changes(cursor)
        assert [j.id for j in told.jobs] == [job.id] and told.jobs[0].seeding_time >= 70


async def test_a_completion_moves_the_jobs_after_it_and_maindata_tells_their_priority_alone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A job that completes leaves the queue and every job after it moves up one: a poll tells
    each of them its new ``priority`` and nothing else, without making their views again (a
    thousand checks ending between two polls moved thousands of jobs each time)."""
    from torrent_engine.jobs.lifecycle import JobLifecycle

    async with running_api(tmp_path) as api:
        x = await add_late_seed(api)
        a, _ = await api.service.add(torrent("alpha"), paused=True)
        b, _ = await api.service.add(torrent("bravo"), paused=True)
        async with httpx.AsyncClient(base_url=api.url) as q:
            r = await q.post("/api/v2/auth/login", data={"username": "admin", "password": TOKEN})
            assert r.status_code == 200
            full = (await q.get("/api/v2/sync/maindata", params={"rid": 0})).json()
            assert [full["torrents"][j.info_hash]["priority"] for j in (x, a, b)] == [1, 2, 3]
            # (past their sessions' first tick, a second after the add: a paused job's session
            # told its unchanged stats then, and the next poll viewed the job again)
            await anyio.sleep(1.5)
            await complete_late_seed(api, x)
            viewed: list[str] = []
            listed = JobLifecycle.listed

            def counted(self: JobLifecycle, rec: Any) -> Any:
                viewed.append(rec.id)
                return listed(self, rec)

            monkeypatch.setattr(JobLifecycle, "listed", counted)
            delta = (await q.get("/api/v2/sync/maindata", params={"rid": full["rid"]})).json()
            assert delta["torrents"][a.info_hash] == {"priority": 1}
            assert delta["torrents"][b.info_hash] == {"priority": 2}
            assert delta["torrents"][x.info_hash]["priority"] == 0
            assert a.id not in viewed and b.id not in viewed and x.id in viewed
            info = {t["hash"]: t for t in (await q.get("/api/v2/torrents/info")).json()}
            merged = {h: {**t, **delta["torrents"].get(h, {})} for h, t in full["torrents"].items()}
            assert {h: (t["priority"], t["state"]) for h, t in merged.items()} == \
                {h: (t["priority"], t["state"]) for h, t in info.items()}
            assert [info[j.info_hash]["priority"] for j in (x, a, b)] == [0, 1, 2]


async def test_a_poll_reads_the_changes_in_steps_that_let_the_loop_run_and_tell_the_same(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``sync/maindata`` reads the change log in steps (``client_changes_in_steps``): between two
    pages of torrents listed, and of moved ones, it yields (the caller lets the loop run: a poll
    during a mass check told thousands in one go, the loop held up to 60 ms); what it returns is
    what one call of ``client_changes`` returns."""
    from torrent_engine.jobs import control

    monkeypatch.setattr(control, "MOVED_STEP", 1)
    async with running_api(tmp_path) as api:
        x = await add_late_seed(api)
        others = [(await api.service.add(torrent(name), paused=True))[0]
                  for name in ("alpha", "bravo", "charlie", "delta")]
        cursor = api.service.change_cursor()
        await complete_late_seed(api, x)  # (it changes whole; the four after it move up)

        def run(page: int) -> tuple[int, Any]:
            steps, yields = api.service.client_changes_in_steps(cursor, positions=True, page=page), 0
            while True:
                try:
                    next(steps)
                except StopIteration as done:
                    return yields, done.value
                yields += 1

        once = api.service.client_changes(cursor, positions=True)
        assert once.moved == {j.info_hash: (n, j.id) for n, j in enumerate(others, 1)}
        assert list(once.torrents) == [x.info_hash]
        for page, between in ((1, 3), (2, 1), (4, 0), (0, 0)):  # (between the 4 moved: none before or after)
            yields, stepped = run(page)
            assert yields == between
            assert (stepped.cursor, stepped.moved, list(stepped.torrents)) == \
                (once.cursor, once.moved, list(once.torrents))
            assert [j.id for j in stepped.torrents[x.info_hash]] == [x.id]


async def turns_of_views(api: Api, monkeypatch: pytest.MonkeyPatch, ask: Callable[[], Awaitable[T]],
                         ) -> tuple[T, list[int]]:
    """``ask()``'s answer, and the turn of the loop in which each job view it made was made (a
    task counts the turns meanwhile)."""
    run = api.service._run
    seen: list[int] = []
    listed = run.listed
    async with counted_turns() as turns:
        def counted(rec: Any) -> Any:
            seen.append(turns.n)
            return listed(rec)

        monkeypatch.setattr(run, "listed", counted)
        got = await ask()
    return got, seen


async def test_recently_active_reads_the_changes_in_steps_that_let_the_loop_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Transmission's ``recently-active`` reads the change log in steps, as ``sync/maindata``
    does: during a mass add or check nearly every torrent changed within the minute, and 10 000
    read in one go held the loop 100 ms a poll. The torrents' views are made a page at a time,
    each page in its own turn of the loop, and the answer is every torrent changed."""
    from torrent_engine.api import pages

    monkeypatch.setattr(pages, "STEP", 2)
    monkeypatch.setattr(turns_module, "TURN", 0.0)  # (a turn at each step)
    async with running_api(tmp_path) as api, httpx.AsyncClient(base_url=api.url) as c:
        jobs = [(await api.service.add(torrent(name), paused=True))[0]
                for name in ("alpha", "bravo", "charlie", "delta", "echo")]
        got, seen = await turns_of_views(api, monkeypatch, lambda: rpc(
            c, "torrent-get", {"fields": ["id", "name"], "ids": "recently-active"}))
        assert sorted(t["id"] for t in got["torrents"]) == sorted(j.number for j in jobs)
        assert got["removed"] == []
        assert len(seen) == 5 and len(set(seen)) == 3  # (pages of 2, 2 and 1, each in its own turn)


async def test_jobs_since_a_cursor_are_read_in_steps_that_let_the_loop_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``GET /api/jobs?since=`` makes the views of the jobs changed a page at a time, each page in
    its own turn of the loop (an unknown cursor's answer is every job); the answer is the same."""
    from torrent_engine.api import pages

    monkeypatch.setattr(pages, "STEP", 2)
    monkeypatch.setattr(turns_module, "TURN", 0.0)  # (a turn at each step)
    async with running_api(tmp_path) as api:
        cursor = await cursor_now(api)
        jobs = [(await api.service.add(torrent(name), paused=True))[0]
                for name in ("alpha", "bravo", "charlie", "delta", "echo")]
        told, seen = await turns_of_views(api, monkeypatch, lambda: since(api, cursor))
        assert [j["id"] for j in told["jobs"]] == [j.id for j in reversed(jobs)]  # (newest first)
        assert told["full"] is False and told["removed"] == [] and told["cursor"] > cursor
        assert len(seen) == 5 and len(set(seen)) == 3  # (pages of 2, 2 and 1, each in its own turn)
        full, seen = await turns_of_views(api, monkeypatch, lambda: since(api, told["cursor"] + 10**6))
        assert full["full"] is True and [j["id"] for j in full["jobs"]] == [j.id for j in reversed(jobs)]
        assert len(set(seen)) == 3
