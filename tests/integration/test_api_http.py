"""Every endpoint of the HTTP API over real HTTP (httpx -> uvicorn on 127.0.0.1), with real
downloads from seeders on loopback, watched through server-sent events."""

from __future__ import annotations

import base64
import gc
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import anyio
import httpx
import pytest

from tests.conftest import require_libtorrent
from tests.integration.api_helpers import Api, SseMessage, running_api, sse_messages
from tests.integration.helpers import loopback_config, make_payload, make_torrent, same_files
from tests.interop.test_libtorrent_transfer import lt_add, lt_session, wait_lt
from torrent_engine.api import EventLog
from torrent_engine.events import Event, EventBus
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.jobs.model import JobProgress, JobState
from torrent_engine.session import Session

pytestmark = pytest.mark.anyio

FILES = (("a.bin", 700_001), ("sub/b.bin", 300_000), ("sub/c.txt", 1_234))


def b64(torrent: Torrent) -> str:
    return base64.b64encode(torrent.to_bytes()).decode()


async def wait_state(api: Api, job_id: str, *states: str, limit: float = 60) -> dict[str, object]:
    with anyio.fail_after(limit):
        while True:
            job = (await api.client.get(f"/api/jobs/{job_id}")).json()
            if job["state"] in states:
                return job  # type: ignore[no-any-return]
            await anyio.sleep(0.1)


async def test_every_endpoint(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed", FILES), piece_length=64 * 1024)
    async with Session(torrent, tmp_path / "seed", config=loopback_config()) as seeder:
        await seeder.wait_ready()
        peer = f"127.0.0.1:{seeder.listen_port}"
        async with running_api(tmp_path) as api:
            c = api.client
            assert (await c.get("/api/health")).json()["status"] == "ok"
            stats = (await c.get("/api/stats")).json()
            assert {"download_rate", "upload_rate", "listen_port", "dht_nodes", "jobs"} <= set(stats)
            free = shutil.disk_usage(api.download_root).free  # (GET /api/stats says it too: the status bar)
            assert 0 < stats["free_space"] == pytest.approx(free, rel=0.05)
            listed = (await c.get("/api/jobs")).json()
            assert listed["jobs"] == [] and isinstance(listed["cursor"], int)  # (to ask ?since= with)

            r = await c.post("/api/jobs", json={"source": torrent.magnet_uri(), "peers": [peer],
                                                "paused": True, "save_path": "mine"})
            assert r.status_code == 201, r.text
            job = r.json()
            assert {"id", "state", "progress", "name", "info_hash"} <= set(job)
            assert job["info_hash"] == torrent.info_hash.hex()
            job_id = job["id"]
            again = await c.post("/api/jobs", json={"source": b64(torrent)})
            assert again.status_code == 200 and again.json()["id"] == job_id

            assert [j["id"] for j in (await c.get("/api/jobs")).json()["jobs"]] == [job_id]
            assert [j["id"] for j in (await c.get("/api/jobs/active")).json()["jobs"]] == [job_id]
            assert (await c.get("/api/jobs", params={"state": "completed"})).json()["jobs"] == []
            assert (await c.get(f"/api/jobs/{job_id}")).json()["id"] == job_id
            assert (await c.get("/api/jobs/nope")).status_code == 404

            r = await c.post(f"/api/jobs/{job_id}/resume")
            assert r.status_code == 200
            await wait_state(api, job_id, "seeding", "completed")
            detail = (await c.get(f"/api/jobs/{job_id}")).json()
            assert [f["path"] for f in detail["files"]] == ["payload/a.bin", "payload/sub/b.bin",
                                                            "payload/sub/c.txt"]
            assert same_files(torrent, tmp_path / "seed", api.download_root / "mine") == []

            r = await c.patch(f"/api/jobs/{job_id}", json={"upload_limit": 100_000, "sequential": True,
                                                            "super_seeding": True})
            assert r.status_code == 200, r.text
            assert r.json()["options"]["super_seeding"] is True
            r = await c.patch(f"/api/jobs/{job_id}", json={"bogus": 1})
            assert r.status_code == 400 and r.json()["field"] == "bogus"
            assert (await c.post(f"/api/jobs/{job_id}/pause")).json()["state"] == "paused"
            r = await c.post(f"/api/jobs/{job_id}/recheck")
            assert r.status_code == 200, r.text
            assert (await c.post(f"/api/jobs/{job_id}/resume")).status_code == 200

            # SSE with a ticket (for EventSource, which cannot send a header): single use.
            ticket = (await c.post("/api/events/ticket")).json()["ticket"]
            async with httpx.AsyncClient(base_url=api.url, timeout=10) as bare:
                async with bare.stream("GET", f"/api/events?ticket={ticket}") as response:
                    assert response.status_code == 200
                    first = await anext(sse_messages(response))
                    assert first.event == "snapshot" and first.data["jobs"][0]["id"] == job_id
                assert (await bare.get(f"/api/events?ticket={ticket}")).status_code == 401
            async with c.stream("GET", f"/api/jobs/{job_id}/events") as response:
                assert response.headers["content-type"].startswith("text/event-stream")
                first = await anext(sse_messages(response))
                assert first.event == "snapshot" and [j["id"] for j in first.data["jobs"]] == [job_id]
            assert (await c.get("/api/jobs/nope/events")).status_code == 404

            lease = (await c.post("/api/clients", json={"ttl": 30})).json()
            assert lease["id"] and lease["ttl"] == 30
            assert (await c.post(f"/api/clients/{lease['id']}/heartbeat")).status_code == 200
            assert (await c.delete(f"/api/clients/{lease['id']}")).status_code == 200
            assert (await c.post(f"/api/clients/{lease['id']}/heartbeat")).status_code == 404
            assert (await c.post("/api/clients", json={"ttl": -1})).json()["field"] == "ttl"

            r = await c.delete(f"/api/jobs/{job_id}", params={"delete_files": "false"})
            assert r.status_code == 200 and r.json()["state"] == "cancelled"
            assert (await c.get("/api/jobs/active")).json() == {"jobs": []}
            cancelled = (await c.get("/api/jobs", params={"state": "cancelled"})).json()["jobs"]
            assert [j["id"] for j in cancelled] == [job_id]
            assert (api.download_root / "mine" / "payload" / "a.bin").exists()
            assert (await c.delete("/api/jobs")).status_code == 400
            for bad in ("nan", "-1", "inf", "soon"):  # an age that is no age: refused, nothing removed
                r = await c.delete("/api/jobs", params={"finished": "true", "older_than": bad})
                assert r.status_code == 400 and r.json()["field"] == "older_than", (bad, r.text)
            r = await c.delete("/api/jobs", params={"finished": "true", "older_than": "3600"})
            assert r.json() == {"removed": 0}  # (it finished just now)
            assert (await c.delete("/api/jobs", params={"finished": "true"})).json() == {"removed": 1}
            assert (await c.get("/api/jobs")).json()["jobs"] == []


async def test_upload_completes_from_libtorrent_watched_through_sse(tmp_path: Path) -> None:
    lt = require_libtorrent()
    torrent = make_torrent(make_payload(tmp_path / "seed", FILES), piece_length=32 * 1024)
    with lt_session(lt) as ses:
        await wait_lt(lt_add(lt, ses, torrent, tmp_path / "seed"), seeding=True)
        peer = f"127.0.0.1:{ses.listen_port()}"
        async with running_api(tmp_path) as api:
            seen: list[SseMessage] = []
            async with api.client.stream("GET", "/api/events") as response:
                messages = sse_messages(response)
                assert (await anext(messages)).event == "snapshot"
                r = await api.client.post("/api/jobs", files={"torrent": ("t.torrent", torrent.to_bytes())},
                                          data={"peers": peer, "sequential": "true"})
                assert r.status_code == 201, r.text
                job_id = r.json()["id"]
                assert r.json()["options"]["sequential"] is True
                # The same torrent again, by magnet: the same job.
                r = await api.client.post("/api/jobs", json={"source": torrent.magnet_uri()})
                assert r.status_code == 200 and r.json()["id"] == job_id
                with anyio.fail_after(90):
                    async for message in messages:
                        seen.append(message)
                        job = message.data.get("job")
                        if job and job["id"] == job_id and job["state"] in ("seeding", "completed"):
                            break
            ids = [int(m.id) for m in seen if m.id]
            assert ids == sorted(ids) and len(set(ids)) == len(ids)
            names = {m.event for m in seen}
            assert {"job.added", "job.state"} <= names
            progress = [m.data["job"]["progress"] for m in seen if m.event in ("job.progress", "job.state")
                        and m.data["job"]["id"] == job_id]
            assert progress[-1] == 1.0
            assert same_files(torrent, tmp_path / "seed", api.download_root) == []


async def test_reconnect_with_last_event_id_loses_no_event(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        async with api.client.stream("GET", "/api/events") as response:
            messages = sse_messages(response)
            snapshot = await anext(messages)
            assert snapshot.event == "snapshot"
            r = await api.client.post("/api/jobs", json={"source": "magnet:?xt=urn:btih:" + "11" * 20,
                                                         "paused": True})
            first_id = r.json()["id"]
            with anyio.fail_after(10):
                async for message in messages:
                    if message.event == "job.added":
                        last_seen = message.id
                        break
        # Disconnected: these happen while nobody listens.
        missed = []
        for i in range(2, 6):
            r = await api.client.post("/api/jobs", json={"source": "magnet:?xt=urn:btih:" + f"{i}{i}" * 20,
                                                         "paused": True})
            missed.append(r.json()["id"])
        await api.client.delete(f"/api/jobs/{first_id}")
        await anyio.sleep(0.2)  # the bus delivers on the next loop tick
        resume_from = {"Last-Event-ID": str(last_seen)}
        async with api.client.stream("GET", "/api/events", headers=resume_from) as response:
            replay: list[SseMessage] = []
            messages = sse_messages(response)
            with anyio.fail_after(10):
                async for message in messages:
                    replay.append(message)
                    if message.event == "job.state" and message.data["job"]["id"] == first_id \
                            and message.data["new"] == "cancelled":
                        break
        assert all(m.event != "snapshot" for m in replay)
        added = [m.data["job"]["id"] for m in replay if m.event == "job.added"]
        assert added == missed
        ids = [int(m.id) for m in replay if m.id]
        assert ids[0] > int(last_seen) and ids == sorted(ids)


async def test_too_old_last_event_id_gets_a_snapshot(tmp_path: Path) -> None:
    async with running_api(tmp_path, buffer_size=4) as api:
        for i in range(1, 8):
            await api.client.post("/api/jobs", json={"source": "magnet:?xt=urn:btih:" + f"{i}{i}" * 20,
                                                    "paused": True})
        await anyio.sleep(0.2)
        async with api.client.stream("GET", "/api/events", headers={"Last-Event-ID": "1"}) as response:
            first = await anext(sse_messages(response))
        assert first.event == "snapshot" and len(first.data["jobs"]) == 7


async def test_a_last_event_id_is_what_the_document_says_and_empty_is_from_now(tmp_path: Path) -> None:
    import re

    async with running_api(tmp_path) as api:
        document = (await api.client.get("/api/openapi.json")).json()
        for path in ("/api/events", "/api/jobs/{job_id}/events"):
            given = document["paths"][path]["get"]["parameters"]
            params = {p["name"]: p["schema"].get("pattern") for p in given}
            assert params["last_event_id"] == params["Last-Event-ID"]
            pattern = re.compile(params["last_event_id"])
        for value in ("", "12", "-1"):  # (empty: as not given, from now)
            assert pattern.search(value)
            async with api.client.stream("GET", f"/api/events?last_event_id={value}") as response:
                assert response.status_code == 200
                assert (await anext(sse_messages(response))).event == "snapshot"
        for value in ("+1", "1_0", " 1", "x", "1.5"):  # (int() takes the first three)
            assert not pattern.search(value)
            r = await api.client.get("/api/events", params={"last_event_id": value})
            assert r.status_code == 400 and r.json()["field"] == "last_event_id", r.text
            r = await api.client.get("/api/events", params={"last_event_id": value},
                                     headers={"Last-Event-ID": "3"})  # (a good header beside it)
            assert r.status_code == 400 and r.json()["field"] == "last_event_id", r.text
            if value == value.strip():  # (a header's value has no surrounding blanks)
                r = await api.client.get("/api/events", headers={"Last-Event-ID": value})
                assert r.status_code == 400, (value, r.text)


async def test_concurrent_adds_of_one_magnet_give_one_job(tmp_path: Path) -> None:
    magnet = "magnet:?xt=urn:btih:" + "cd" * 20 + "&dn=same"
    async with running_api(tmp_path) as api:
        answers: list[httpx.Response] = []

        async def add() -> None:
            answers.append(await api.client.post("/api/jobs", json={"source": magnet, "paused": True}))

        async with anyio.create_task_group() as tg:
            for _ in range(8):
                tg.start_soon(add)
        assert sorted(r.status_code for r in answers) == [200] * 7 + [201]
        assert len({r.json()["id"] for r in answers}) == 1
        assert len((await api.client.get("/api/jobs")).json()["jobs"]) == 1


async def test_cancel_with_delete_files_leaves_nothing(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed", FILES), piece_length=32 * 1024)
    cfg = loopback_config(upload_rate_limit=200_000)  # slow, so the cancel lands mid-download
    async with Session(torrent, tmp_path / "seed", config=cfg) as seeder:
        await seeder.wait_ready()
        async with running_api(tmp_path) as api:
            r = await api.client.post("/api/jobs", json={
                "source": torrent.magnet_uri(), "peers": [f"127.0.0.1:{seeder.listen_port}"],
                "save_path": "target"})
            job_id = r.json()["id"]
            await wait_state(api, job_id, "downloading")
            with anyio.fail_after(30):
                while (await api.client.get(f"/api/jobs/{job_id}")).json()["done_size"] == 0:
                    await anyio.sleep(0.05)
            (api.download_root / "keep.txt").write_text("not the job's")
            r = await api.client.delete(f"/api/jobs/{job_id}", params={"delete_files": "true"})
            assert r.status_code == 200 and r.json()["state"] == "cancelled"
            assert not (api.download_root / "target").exists()
            assert sorted(p.name for p in api.download_root.iterdir()) == ["keep.txt"]
            history = (await api.client.get("/api/jobs", params={"state": "cancelled"})).json()["jobs"]
            assert [j["id"] for j in history] == [job_id]


async def test_lapsed_lease_cancels_only_its_jobs(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        lease = (await api.client.post("/api/clients", json={"ttl": 1})).json()
        bound = (await api.client.post("/api/jobs", json={
            "source": "magnet:?xt=urn:btih:" + "aa" * 20, "client": lease["id"]})).json()
        free = (await api.client.post("/api/jobs", json={
            "source": "magnet:?xt=urn:btih:" + "bb" * 20})).json()
        job = await wait_state(api, bound["id"], "cancelled", limit=30)
        assert "client" in str(job.get("error") or job.get("result")).lower()
        assert (await api.client.get(f"/api/jobs/{free['id']}")).json()["state"] != "cancelled"
        r = await api.client.post("/api/jobs", json={"source": "magnet:?xt=urn:btih:" + "cc" * 20,
                                                     "client": "no-such-lease"})
        assert r.status_code == 404


async def test_heartbeat_comments_keep_a_quiet_stream_open(tmp_path: Path) -> None:
    async with running_api(tmp_path, heartbeat=0.2) as api:
        async with api.client.stream("GET", "/api/jobs/x/events") as response:
            assert response.status_code == 404
        lines: list[str] = []
        with anyio.fail_after(10):
            async with api.client.stream("GET", "/api/events") as response:
                async for line in response.aiter_lines():
                    lines.append(line)
                    if line == ": heartbeat":
                        break
        assert lines[0] == "retry: 2000"


@dataclass(frozen=True, kw_only=True, slots=True)
class _FakeJobEvent(Event):
    name: ClassVar[str] = "job.progress"
    job: Any


@dataclass(frozen=True)
class _Job:
    """A job as the SSE log reads it: what a progress event may change, and its JSON."""

    progress: float
    id: str = "j1"
    download_rate: float = 0.0
    state: JobState = JobState.DOWNLOADING

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "state": self.state.value, "progress": self.progress}


async def test_a_slow_sse_client_is_dropped_and_never_blocks_the_publisher() -> None:
    bus = EventBus()
    log = EventLog(bus, lambda job_id: [], buffer_size=100, queue_size=8)
    first, stalled, _ = log.subscribe(None, None)  # a client that never reads
    assert [e.event for e in first] == ["snapshot"]
    for i in range(50):
        bus.publish(_FakeJobEvent(job=_Job(i / 50)))  # returns at once: delivery is on the next tick
    await anyio.sleep(0.05)
    assert log.clients == 0 and log.dropped_clients == 1
    # It reconnects from the last id it received and is caught up from the buffer.
    received = [stalled.receive_nowait() for _ in range(8)]
    replay, live, _ = log.subscribe(None, received[-1].id)
    assert [e.id for e in replay] == list(range(received[-1].id + 1, log.last_id + 1))
    live.close()
    log.close()


async def test_progress_is_heard_while_a_client_streams_and_a_grace_after_the_last_left() -> None:
    """A ``job.progress`` is made only while it reaches someone (``EngineNews`` asks the bus): the
    event log hears progress while a client streams and ``replay_grace`` seconds after the last
    left, for a replay; then no longer (1 000 downloads made 6 800 views nobody read), and a
    client coming back with an id from before that gets a snapshot, not a replay that lacks it."""
    now = [0.0]
    bus = EventBus()
    log = EventLog(bus, lambda job_id: [], replay_grace=60.0, ticks=lambda: now[0])
    assert not bus.listened(JobProgress)  # (no client yet: none can have missed any)
    stream = log.stream(None, None)
    assert await anext(stream) == b"retry: 2000\n\n"
    assert b"event: snapshot" in await anext(stream)
    bus.publish(_FakeJobEvent(job=_Job(0.1)))
    assert b"event: job.progress" in await anext(stream)
    now[0] = 1000.0  # (a client streams: heard, however long)
    bus.publish(_FakeJobEvent(job=_Job(0.2)))
    assert b"event: job.progress" in await anext(stream)
    seen = log.last_id
    await stream.aclose()  # the last client leaves at 1000
    now[0] = 1059.0
    bus.publish(_FakeJobEvent(job=_Job(0.3)))  # in the grace: kept for a replay
    await anyio.sleep(0.05)
    assert bus.listened(JobProgress) and log.last_id == seen + 1
    stream = log.stream(None, seen)  # a client back in the grace: given what it missed
    assert await anext(stream) == b"retry: 2000\n\n"
    assert b'"progress":0.3' in await anext(stream)
    await stream.aclose()  # (it leaves at 1059)
    now[0] = 1119.0
    bus.publish(_FakeJobEvent(job=_Job(0.4)))  # the grace is over: no longer heard
    await anyio.sleep(0.05)
    assert not bus.listened(JobProgress) and log.last_id == seen + 1
    replay, live, client = log.subscribe(None, seen + 1)  # (its replay would lack what was unheard)
    assert [e.event for e in replay] == ["snapshot"] and bus.listened(JobProgress)
    bus.publish(_FakeJobEvent(job=_Job(0.5)))
    await anyio.sleep(0.05)
    assert json.loads(live.receive_nowait().data)["job"]["progress"] == 0.5
    replay, other, _ = log.subscribe(None, log.last_id - 1)  # (an id from after it: a replay)
    assert [json.loads(e.data)["job"]["progress"] for e in replay] == [0.5]
    for stream_ in (live, other):
        stream_.close()
    log.close()
    assert not bus.listened(JobProgress)


async def test_progress_that_changes_nothing_is_not_sent() -> None:
    bus = EventBus()
    log = EventLog(bus, lambda job_id: [])
    _, stream, _ = log.subscribe(None, None)
    for job in (_Job(0.5, "a", 0.0), _Job(0.5, "a", 0.0), _Job(0.5, "b", 0.0), _Job(0.5, "a", 0.0),
                _Job(0.5, "a", 10.0), _Job(0.6, "a", 10.0), _Job(0.6, "a", 10.0)):
        bus.publish(_FakeJobEvent(job=job))
    await anyio.sleep(0.05)
    sent = []
    while True:
        try:
            sent.append(stream.receive_nowait())
        except anyio.WouldBlock:
            break
    assert [(e.job_id, json.loads(e.data)["job"]["progress"]) for e in sent] == [
        ("a", 0.5), ("b", 0.5), ("a", 0.5), ("a", 0.6)]
    stream.close()
    log.close()


async def test_what_the_replay_buffer_keeps_of_an_event_is_one_object_beyond_the_event() -> None:
    """A kept event's payload is made when first read, from the bus's event: the collector's
    sweeps walk one object for it (its maker) besides the event, where a closure was six; and
    what is kept to skip progress that changes nothing holds the state's text, which the
    collector stops tracking."""
    bus = EventBus()
    log = EventLog(bus, lambda job_id: [])
    _, watching, _ = log.subscribe(None, None)  # (a client streams: progress is heard)
    event = _FakeJobEvent(job=_Job(1.0, "a", state=JobState.SEEDING))
    bus.publish(event)
    await anyio.sleep(0.05)
    (kept,), stream, _ = log.subscribe(None, log.last_id - 1)  # (the buffer's own: replayed)
    for opened in (stream, watching):
        opened.close()
    def below(obj: object) -> list[object]:  # (what the collector walks from it, its class aside)
        return [o for o in gc.get_referents(obj) if gc.is_tracked(o) and not isinstance(o, type)]

    (maker,) = below(kept)  # its maker,
    assert below(maker) == [event]  # and the event
    assert json.loads(kept.data)["job"] == {"id": "a", "state": "seeding", "progress": 1.0}
    assert below(kept) == []  # (read: the maker let go)
    gc.collect()
    assert not [key for key in log._last_progress.values() if gc.is_tracked(key)]
    log.close()


async def test_job_list_pages(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        c = api.client
        ids = []
        for i in range(7):
            magnet = f"magnet:?xt=urn:btih:{i + 1:040x}"
            r = await c.post("/api/jobs", json={"source": magnet, "paused": True})
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        await c.delete(f"/api/jobs/{ids[2]}")
        newest_first = [j["id"] for j in (await c.get("/api/jobs")).json()["jobs"]]
        assert sorted(newest_first) == sorted(ids)

        async def page(**params: str) -> list[str]:
            r = await c.get("/api/jobs", params=params)
            assert r.status_code == 200, r.text
            return [j["id"] for j in r.json()["jobs"]]

        assert await page(limit="3") == newest_first[:3]
        assert await page(limit="3", offset="3") == newest_first[3:6]
        assert await page(limit="3", offset="6") == newest_first[6:]
        assert await page(offset="5") == newest_first[5:]
        assert await page(limit="0") == []
        assert await page(offset="99") == []
        paused = [i for i in newest_first if i != ids[2]]
        assert await page(state="paused", limit="2", offset="1") == paused[1:3]
        assert await page(state="cancelled", limit="5") == [ids[2]]
        for bad in ({"limit": "-1"}, {"offset": "x"}, {"limit": "1.5"}, {"offset": ""}):
            r = await c.get("/api/jobs", params=bad)
            assert r.status_code == 400, (bad, r.text)
            assert next(iter(bad)) in r.json()["error"]


async def test_bulk_action_acts_on_exactly_the_ids_given_and_lists_what_it_refused(tmp_path: Path) -> None:
    """POST /api/jobs/bulk: the web UI's selection in one request; a job the action does not fit
    (a finished one, an unknown id) is listed with its reason, the others are done."""
    async with running_api(tmp_path) as api:
        ids = []
        for i in range(6):
            r = await api.client.post("/api/jobs", json={
                "source": f"magnet:?xt=urn:btih:{i + 1:040x}&dn=job-{i}", "paused": True})
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        cancelled = (await api.client.delete(f"/api/jobs/{ids[5]}")).json()
        assert cancelled["state"] == "cancelled"

        r = await api.client.post("/api/jobs/bulk", json={
            "action": "resume", "ids": [ids[0], ids[2], ids[5], "nosuchjob", ids[0]]})
        assert r.status_code == 200, r.text
        answer = r.json()
        assert answer["done"] == [ids[0], ids[2]]
        assert {j["id"] for j in answer["jobs"]} == {ids[0], ids[2]}
        assert [(f["id"], f["status"]) for f in answer["failed"]] == [(ids[5], 409), ("nosuchjob", 404)]
        states = {j["id"]: j["state"] for j in (await api.client.get("/api/jobs")).json()["jobs"]}
        assert {i for i, s in states.items() if s not in ("paused", "cancelled")} == {ids[0], ids[2]}

        r = await api.client.post("/api/jobs/bulk", json={"action": "pause", "ids": [ids[0], ids[2]]})
        assert r.json()["done"] == [ids[0], ids[2]] and not r.json()["failed"]
        assert all(api.service.get(i).state.value == "paused" for i in ids[:5])

        r = await api.client.post("/api/jobs/bulk", json={"action": "cancel", "ids": ids[3:5]})
        assert r.json()["done"] == ids[3:5]
        r = await api.client.post("/api/jobs/bulk", json={"action": "forget", "ids": ids[3:]})
        assert r.json()["removed"] == ids[3:] and r.json()["jobs"] == []
        assert sorted(j.id for j in api.service.list()) == sorted(ids[:3])

        for body, field in (({"action": "explode", "ids": ids}, "action"),
                            ({"action": "pause", "ids": []}, "ids"),
                            ({"action": "pause", "ids": [1, 2]}, "ids"),
                            ({"action": "pause", "ids": ids, "delete_files": True}, "delete_files")):
            r = await api.client.post("/api/jobs/bulk", json=body)
            assert r.status_code == 400 and r.json()["field"] == field, (body, r.text)


async def test_a_bulk_update_gives_a_patch_body_to_many_jobs_written_together(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """POST /api/jobs/bulk ``update``: the web UI's category, tags, limits or share limits for
    its whole selection in one request (a PATCH a job, one after the other, took seconds for
    thousands): the body is checked once (a bad one changes nothing), each job changed as its
    PATCH would be, their records written a few dozen a transaction; one it cannot change is
    listed with its reason."""
    from tests.spies import records_written

    async with running_api(tmp_path) as api:
        ids = []
        for i in range(16):
            r = await api.client.post("/api/jobs", json={
                "source": f"magnet:?xt=urn:btih:{i + 1:040x}&dn=job-{i}", "paused": True})
            ids.append(r.json()["id"])
        assert (await api.client.post("/api/categories", json={"name": "tv"})).status_code in (200, 201)
        for body, field in (({"action": "update", "ids": ids}, "changes"),
                            ({"action": "pause", "ids": ids, "changes": {}}, "changes"),
                            ({"action": "update", "ids": ids, "changes": []}, "changes"),
                            ({"action": "update", "ids": ids, "changes": {"colour": 1}}, "colour"),
                            ({"action": "update", "ids": ids, "changes": {"upload_limit": "x"}},
                             "upload_limit")):
            r = await api.client.post("/api/jobs/bulk", json=body)
            assert r.status_code == 400 and r.json()["field"] == field, (body, r.text)
        assert all(api.service.get(i).options.upload_limit == 0 for i in ids)

        groups = records_written(monkeypatch)
        r = await api.client.post("/api/jobs/bulk", json={
            "action": "update", "ids": [*ids, "nosuchjob"],
            "changes": {"category": "tv", "tags": ["a"], "upload_limit": 5000, "ratio_limit": 1.5}})
        assert r.status_code == 200, r.text
        answer = r.json()
        assert answer["done"] == ids
        assert [(f["id"], f["status"]) for f in answer["failed"]] == [("nosuchjob", 404)]
        assert {j["id"] for j in answer["jobs"]} == set(ids)
        for i in ids:
            job = api.service.get(i)
            assert (job.features.category, job.features.tags, job.options.upload_limit,
                    job.features.ratio_limit) == ("tv", ("a",), 5000, 1.5)
        assert sum(groups) >= len(ids) and len(groups) < len(ids), groups

        r = await api.client.post("/api/jobs/bulk", json={"action": "update", "ids": ids[:2],
                                                          "changes": {"category": "nosuchcategory"}})
        assert r.json()["done"] == [] and {f["status"] for f in r.json()["failed"]} == {409}


async def test_an_idle_server_wakes_once_a_second_and_stops_at_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from torrent_engine.api import server as server_module

    ticks: list[float] = []
    real = server_module._Server.on_tick

    async def on_tick(self: server_module._Server, counter: int) -> bool:
        ticks.append(anyio.current_time())
        return await real(self, counter)

    monkeypatch.setattr(server_module._Server, "on_tick", on_tick)
    async with running_api(tmp_path) as api:
        await anyio.sleep(2.5)
        assert 2 <= len(ticks) <= 4, ticks  # (uvicorn's own loop wakes ten times a second)
        date = (await api.client.get("/api/health")).headers["date"]
        assert date.endswith(" GMT")  # (the Date header is still renewed, once a second)
        began = anyio.current_time()
        api.server.stop()
        with anyio.fail_after(5):
            while api.server._server is not None and not api.server._server.should_exit:
                await anyio.sleep(0.01)
    assert anyio.current_time() - began < 2.0  # (the stop did not wait for a tick)
