"""A daemon shared by several people, through every door: each user logs in (our API's login,
qBittorrent's auth/login, Transmission's HTTP Basic, a user's API key), sees and changes only
their own torrents (our API, its SSE, qBittorrent's info/maindata/properties/controls,
Transmission's torrent-get and controls, stream links), in their own folder, within their
quotas; a viewer reads everything and changes nothing; failed logins are limited per address;
no password or key shows in a log, an answer or /metrics."""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx
import pytest

from tests.conftest import require_module
from tests.integration.api_helpers import (
    TOKEN,
    Api,
    SseMessage,
    add_late_seed,
    complete_late_seed,
    running_api,
    sse_messages,
)
from tests.integration.helpers import make_payload, make_torrent
from torrent_engine.api.users import UserStore
from torrent_engine.formats.metainfo import Torrent

pytestmark = pytest.mark.anyio

PASSWORDS = {"alice": "alice's long password", "bob": "bob's long password", "vera": "vera's long password",
             "root": "root's long password"}
FILES = (("a.bin", 200_001), ("b.bin", 50_000))


def users(state_dir: Path, **quotas: dict[str, int]) -> UserStore:
    store = UserStore(state_dir)
    store.add("alice", "user", PASSWORDS["alice"], **quotas.get("alice", {}))
    store.add("bob", "user", PASSWORDS["bob"], **quotas.get("bob", {}))
    store.add("vera", "viewer", PASSWORDS["vera"])
    return store


def torrent(tmp_path: Path, seed: int) -> Torrent:
    return make_torrent(make_payload(tmp_path / f"payload{seed}", FILES, seed=seed))


def b64(t: Torrent) -> str:
    return base64.b64encode(t.to_bytes()).decode()


@asynccontextmanager
async def as_user(api: Api, name: str) -> AsyncIterator[httpx.AsyncClient]:
    """Our API's client for ``name``, signed in by ``POST /api/login``."""
    async with httpx.AsyncClient(base_url=api.url, timeout=30) as c:
        r = await c.post("/api/login", json={"name": name, "password": PASSWORDS[name]})
        assert r.status_code == 200, r.text
        c.headers["Authorization"] = f"Bearer {r.json()['token']}"
        yield c


@asynccontextmanager
async def qbt_as(api: Api, name: str) -> AsyncIterator[httpx.AsyncClient]:
    """A qBittorrent dialect client logged in (``auth/login``) as ``name``."""
    async with httpx.AsyncClient(base_url=api.url, timeout=30) as c:
        r = await c.post("/api/v2/auth/login", data={"username": name, "password": PASSWORDS[name]})
        assert r.status_code == 200 and r.text == "Ok." and "SID" in r.cookies
        yield c


async def rpc(api: Api, name: str, method: str, arguments: dict[str, object]) -> dict[str, object]:
    """One Transmission RPC call with ``name``'s HTTP Basic credentials (the session id learnt)."""
    async with httpx.AsyncClient(base_url=api.url, timeout=30, auth=(name, PASSWORDS[name])) as c:
        call = {"method": method, "arguments": arguments}
        r = await c.post("/transmission/rpc", json=call)
        assert r.status_code == 409, r.text
        r = await c.post("/transmission/rpc", json=call,
                         headers={"X-Transmission-Session-Id": r.headers["x-transmission-session-id"]})
        assert r.status_code == 200, r.text
        answer: dict[str, object] = r.json()
        return answer


async def test_each_door_logs_a_user_in_and_a_read_only_key_cannot_add(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    store = users(tmp_path / "state")
    _, read_key = store.add_key("alice", ["read"])
    t = torrent(tmp_path, 1)
    async with running_api(tmp_path) as api:
        seen: list[str] = []
        async with as_user(api, "alice") as alice:  # our login: a session token
            me = (await alice.get("/api/me")).json()
            assert me == {"name": "alice", "role": "user", "scopes": ["add", "control", "read"],
                          "users": True}
            # she may look at a magnet's files before she adds it (the add dialog does)
            r = await alice.post("/api/metadata", json={"source": t.magnet_uri()})
            assert r.status_code == 202 and r.json()["state"] == "fetching", r.text
        async with httpx.AsyncClient(base_url=api.url, timeout=30) as c:
            r = await c.post("/api/login", json={"name": "alice", "password": "not her password"})
            assert r.status_code == 401 and r.json() == {"error": "wrong user name or password"}
            seen.append(r.text)
            # a read-only key reads, and cannot add
            c.headers["Authorization"] = f"Bearer {read_key}"
            assert (await c.get("/api/jobs")).json()["jobs"] == []
            r = await c.post("/api/jobs", json={"source": b64(t), "paused": True})
            assert r.status_code == 403 and "'add' scope" in r.json()["error"]
            seen.append(r.text)
            r = await c.post("/api/metadata", json={"source": t.magnet_uri()})  # (part of an add)
            assert r.status_code == 403 and "'add' scope" in r.json()["error"]
            assert (await c.get("/metrics")).status_code == 401  # (/metrics: the token's alone)
            r = await c.get("/api/v2/torrents/info")  # (the key opens the qBittorrent dialect, read-only)
            assert r.status_code == 200 and r.json() == []
            r = await c.post("/api/v2/torrents/add", files={"torrents": ("t.torrent", t.to_bytes())})
            assert r.status_code == 403 and "'add' scope" in r.text
        async with qbt_as(api, "alice") as q:  # qBittorrent's auth/login with her name and password
            assert (await q.get("/api/v2/torrents/info")).json() == []
            r = await q.post("/api/v2/app/setPreferences", data={"json": json.dumps({"dl_limit": 5})})
            assert r.status_code == 403 and "'admin' scope" in r.text
        async with httpx.AsyncClient(base_url=api.url, timeout=30) as c:
            r = await c.post("/api/v2/auth/login", data={"username": "alice", "password": "wrong one"})
            assert r.status_code == 401 and r.text == "Fails."
        answer = await rpc(api, "alice", "session-get", {"fields": ["version"]})  # Transmission Basic
        assert answer["result"] == "success"
        answer = await rpc(api, "alice", "session-set", {"speed-limit-down": 5})
        assert "'admin' scope" in str(answer["result"])
        async with httpx.AsyncClient(base_url=api.url, timeout=30, auth=("alice", "wrong one")) as c:
            assert (await c.post("/transmission/rpc", json={"method": "session-get"})).status_code == 401
        # the token works as before (the admin)
        assert (await api.client.get("/api/me")).json()["role"] == "admin"
        # failed logins from one address: refused for a while, even with the right password
        async with httpx.AsyncClient(base_url=api.url, timeout=30) as c:
            for _ in range(5):
                await c.post("/api/login", json={"name": "bob", "password": "guess"})
            r = await c.post("/api/login", json={"name": "bob", "password": PASSWORDS["bob"]})
            assert r.status_code == 429 and "too many failed logins" in r.json()["error"]
            assert int(r.headers["retry-after"]) > 0
            r = await c.post("/api/v2/auth/login", data={"username": "bob", "password": PASSWORDS["bob"]})
            assert r.status_code == 403 and "banned" in r.text
        metrics = (await api.client.get("/metrics")).text
    kept = (tmp_path / "state" / "users.json").read_text()
    for secret in (*PASSWORDS.values(), read_key):
        assert secret not in caplog.text and secret not in kept and secret not in metrics
        assert all(secret not in text for text in seen)


async def test_a_user_sees_and_controls_only_their_own_torrents(tmp_path: Path) -> None:
    users(tmp_path / "state")
    t = torrent(tmp_path, 2)
    async with running_api(tmp_path) as api:
        async with as_user(api, "alice") as alice, as_user(api, "bob") as bob, as_user(api, "vera") as vera:
            r = await alice.post("/api/jobs", json={"source": b64(t), "paused": True})
            assert r.status_code == 201, r.text
            job = r.json()
            job_id, info_hash = job["id"], job["info_hash"]
            assert job["options"]["owner"] == "alice"
            assert Path(job["options"]["save_path"]) == api.download_root.resolve() / "users" / "alice"
            r = await bob.post("/api/jobs", json={"source": b64(torrent(tmp_path, 3)), "paused": True,
                                                 "save_path": str(api.download_root / "users" / "alice")})
            assert r.status_code == 400 and r.json()["field"] == "save_path"
            assert "outside" in r.json()["error"]
            r = await bob.post("/api/jobs", json={"source": b64(t), "paused": True})  # (the same torrent)
            assert r.status_code == 409 and "another user" in r.json()["error"]

            # bob: not listed, not found, not changed, no stream link, no event
            assert (await bob.get("/api/jobs")).json()["jobs"] == []
            assert (await bob.get("/api/jobs/active")).json()["jobs"] == []
            assert (await bob.get("/api/jobs?since=0")).json()["jobs"] == []
            for method, path in (("GET", ""), ("POST", "/resume"), ("DELETE", ""), ("GET", "/stream-token"),
                                 ("GET", "/files/0/stream"), ("PATCH", ""), ("GET", "/events")):
                body = {} if method == "PATCH" else None
                r = await bob.request(method, f"/api/jobs/{job_id}{path}", json=body)
                assert r.status_code == 404, (method, path, r.status_code, r.text)
            r = await bob.get(f"/api/jobs/{job_id}")  # (said as of a job that does not exist)
            assert r.json() == {"error": f"id: no job {job_id!r}", "field": "id"}
            assert (await bob.get("/api/jobs/0123456789abcdef")).json() == {
                "error": "id: no job '0123456789abcdef'", "field": "id"}
            r = await bob.post("/api/jobs/bulk", json={"action": "resume", "ids": [job_id]})
            assert r.json()["failed"][0]["status"] == 404 and r.json()["done"] == []
            ticket = (await bob.post("/api/events/ticket")).json()["ticket"]
            async with httpx.AsyncClient(base_url=api.url, timeout=30) as bare, \
                    bare.stream("GET", f"/api/events?ticket={ticket}") as response:
                first = await anext(sse_messages(response))
                assert first.event == "snapshot" and first.data["jobs"] == []
            # alice: hers, in full
            assert [j["id"] for j in (await alice.get("/api/jobs")).json()["jobs"]] == [job_id]
            assert (await alice.get(f"/api/jobs/{job_id}/stream-token")).status_code == 200
            # the viewer reads it all, changes nothing
            assert [j["id"] for j in (await vera.get("/api/jobs")).json()["jobs"]] == [job_id]
            r = await vera.post(f"/api/jobs/{job_id}/resume")
            assert r.status_code == 403 and "viewer" in r.json()["error"]
            assert "'control' scope" in r.json()["error"]
            r = await vera.post("/api/jobs", json={"source": b64(torrent(tmp_path, 4))})
            assert r.status_code == 403

        # qBittorrent's dialect
        async with qbt_as(api, "bob") as q:
            assert (await q.get("/api/v2/torrents/info")).json() == []
            assert (await q.get("/api/v2/torrents/count")).text == "0"
            main = (await q.get("/api/v2/sync/maindata", params={"rid": 0})).json()
            assert main["torrents"] == {}
            assert (await q.get("/api/v2/torrents/properties", params={"hash": info_hash})).status_code == 404
            assert (await q.get("/api/v2/torrents/files", params={"hash": info_hash})).status_code == 404
            assert (await q.post("/api/v2/torrents/resume", data={"hashes": info_hash})).status_code == 200
            assert (await q.post("/api/v2/torrents/delete",
                                 data={"hashes": "all", "deleteFiles": "true"})).status_code == 200
        assert (await api.client.get(f"/api/jobs/{job_id}")).json()["state"] == "paused"  # untouched
        async with qbt_as(api, "alice") as q:
            assert [x["hash"] for x in (await q.get("/api/v2/torrents/info")).json()] == [info_hash]
            main = (await q.get("/api/v2/sync/maindata", params={"rid": 0})).json()
            assert list(main["torrents"]) == [info_hash]
            assert (await q.get("/api/v2/torrents/properties", params={"hash": info_hash})).status_code == 200
        async with qbt_as(api, "bob") as q:  # (alice's rid names nothing of bob's view)
            main = (await q.get("/api/v2/sync/maindata", params={"rid": main["rid"]})).json()
            assert info_hash not in main.get("torrents", {})
        async with qbt_as(api, "vera") as q:
            assert [x["hash"] for x in (await q.get("/api/v2/torrents/info")).json()] == [info_hash]
            r = await q.post("/api/v2/torrents/resume", data={"hashes": info_hash})
            assert r.status_code == 403 and "'control' scope" in r.text

        # Transmission's RPC
        answer = await rpc(api, "bob", "torrent-get", {"fields": ["id", "hashString"]})
        assert answer["arguments"] == {"torrents": []}
        answer = await rpc(api, "bob", "torrent-remove", {"ids": [info_hash], "delete-local-data": True})
        assert answer["result"] == "success"
        assert (await api.client.get(f"/api/jobs/{job_id}")).status_code == 200  # (still there)
        answer = await rpc(api, "alice", "torrent-get", {"fields": ["hashString"]})
        assert answer["arguments"] == {"torrents": [{"hashString": info_hash}]}
        answer = await rpc(api, "vera", "torrent-start", {"ids": [info_hash]})
        assert "'control' scope" in str(answer["result"])

        # the admin (the token) sees and manages it
        assert [j["id"] for j in (await api.client.get("/api/jobs")).json()["jobs"]] == [job_id]


def event_job(event: SseMessage) -> object:
    """The id of the job an event is about (None: the service's totals)."""
    return event.data["job"]["id"] if "job" in event.data else event.data.get("job_id")


async def test_a_user_s_live_events_are_their_own(tmp_path: Path) -> None:
    users(tmp_path / "state")
    async with running_api(tmp_path) as api:
        async with as_user(api, "alice") as alice, as_user(api, "bob") as bob:
            ticket = (await bob.post("/api/events/ticket")).json()["ticket"]
            mine = (await alice.post("/api/events/ticket")).json()["ticket"]
            async with httpx.AsyncClient(base_url=api.url, timeout=30) as bare, \
                    bare.stream("GET", f"/api/events?ticket={ticket}") as bob_events, \
                    bare.stream("GET", f"/api/events?ticket={mine}") as alice_events:
                bob_stream, alice_stream = sse_messages(bob_events), sse_messages(alice_events)
                assert (await anext(bob_stream)).event == "snapshot"
                assert (await anext(alice_stream)).event == "snapshot"
                r = await alice.post("/api/jobs", json={"source": b64(torrent(tmp_path, 5)), "paused": True})
                job_id = r.json()["id"]
                with anyio.fail_after(20):
                    while event_job(await anext(alice_stream)) != job_id:
                        pass
                r = await bob.post("/api/jobs", json={"source": b64(torrent(tmp_path, 6)), "paused": True})
                bobs = r.json()["id"]
                with anyio.fail_after(20):  # (bob's own event comes; none of alice's before it)
                    while True:
                        event = await anext(bob_stream)
                        assert event_job(event) != job_id, event
                        if event_job(event) == bobs:
                            break


async def test_an_add_past_a_quota_is_refused_naming_it(tmp_path: Path) -> None:
    users(tmp_path / "state", alice={"max_torrents": 1}, bob={"max_bytes": 100_000})
    async with running_api(tmp_path) as api:
        async with as_user(api, "alice") as alice, as_user(api, "bob") as bob:
            r = await alice.post("/api/jobs", json={"source": b64(torrent(tmp_path, 7)), "paused": True})
            assert r.status_code == 201
            r = await alice.post("/api/jobs", json={"source": b64(torrent(tmp_path, 8)), "paused": True})
            assert r.status_code == 409 and r.json()["field"] == "max_torrents"
            assert "quota of 1 torrents (has 1, adding 1)" in r.json()["error"]
            r = await bob.post("/api/jobs", json={"source": b64(torrent(tmp_path, 9)), "paused": True})
            assert r.status_code == 409 and r.json()["field"] == "max_bytes"
            assert "quota of 100000 bytes (has 0, adding 250001)" in r.json()["error"]
            assert (await bob.get("/api/jobs")).json()["jobs"] == []
        async with qbt_as(api, "alice") as q:
            r = await q.post("/api/v2/torrents/add",
                             files={"torrents": ("t.torrent", torrent(tmp_path, 10).to_bytes())},
                             data={"paused": "true"})
            assert r.status_code == 409 and "quota of 1 torrents" in r.text
        answer = await rpc(api, "alice", "torrent-add",
                           {"metainfo": b64(torrent(tmp_path, 11)), "paused": True})
        assert "quota of 1 torrents" in str(answer["result"])
        assert len((await api.client.get("/api/jobs")).json()["jobs"]) == 1


async def test_a_quota_counts_the_user_s_own_jobs_but_those_cancelled_or_failed(tmp_path: Path) -> None:
    def added(seed: int) -> dict[str, object]:  # (each in its own folder: all are named "payload")
        return {"source": b64(torrent(tmp_path, seed)), "paused": True, "save_path": f"s{seed}"}

    users(tmp_path / "state", alice={"max_torrents": 2, "max_bytes": 600_000})
    async with running_api(tmp_path) as api:
        async with as_user(api, "alice") as alice, as_user(api, "bob") as bob:
            for seed in (20, 21):  # (bob's and the admin's are not hers)
                r = await bob.post("/api/jobs", json=added(seed))
                assert r.status_code == 201, r.text
            r = await api.client.post("/api/jobs", json=added(22))
            assert r.status_code == 201
            ids = []
            for seed in (23, 24):
                r = await alice.post("/api/jobs", json=added(seed))
                assert r.status_code == 201, r.text
                ids.append(r.json()["id"])
            held = api.service.holdings_of("alice")
            assert (held.jobs, held.bytes) == (2, 500_002)
            r = await alice.post("/api/jobs", json=added(25))
            assert r.status_code == 409 and "has 2, adding 1" in r.json()["error"], r.text
            assert (await alice.delete(f"/api/jobs/{ids[0]}")).status_code == 200  # (cancelled: hers no more)
            held = api.service.holdings_of("alice")
            assert (held.jobs, held.bytes) == (1, 250_001)
            r = await alice.post("/api/jobs", json=added(25))
            assert r.status_code == 201, r.text
            r = await alice.post("/api/jobs", json=added(26))
            assert r.status_code == 409 and r.json()["field"] == "max_torrents", r.text
            # (a user's lists made of their jobs alone: no view of another's made)
            listed = [j for page in api.service.client_pages(2, owner="alice") for j in page]
            assert {j.options.owner for j in listed} == {"alice"} and len(listed) == 2


async def test_the_admin_s_torrents_and_each_user_s_labels_are_theirs(tmp_path: Path) -> None:
    users(tmp_path / "state")
    async with running_api(tmp_path) as api:
        r = await api.client.post("/api/jobs", json={"source": b64(torrent(tmp_path, 12)), "paused": True})
        admins = r.json()
        assert admins["options"]["owner"] == ""  # (the token's, as every job from before users)
        async with as_user(api, "alice") as alice, as_user(api, "bob") as bob, as_user(api, "vera") as vera:
            assert (await alice.get("/api/jobs")).json()["jobs"] == []
            assert (await alice.get(f"/api/jobs/{admins['id']}")).status_code == 404
            assert [j["id"] for j in (await vera.get("/api/jobs")).json()["jobs"]] == [admins["id"]]
            assert (await alice.post("/api/categories", json={"name": "alice-films"})).status_code == 201
            assert (await alice.post("/api/tags", json={"tags": ["alice-hd"]})).status_code == 201
            r = await alice.post("/api/categories", json={"name": "elsewhere", "save_path": "/tmp"})
            assert r.status_code == 400 and r.json()["field"] == "save_path"
            assert [c["name"] for c in (await alice.get("/api/categories")).json()["categories"]] == [
                "alice-films"]
            assert (await alice.get("/api/tags")).json()["tags"] == ["alice-hd"]
            assert (await bob.get("/api/categories")).json()["categories"] == []
            assert (await bob.get("/api/tags")).json()["tags"] == []
            r = await bob.delete("/api/tags/alice-hd")
            assert r.status_code == 403 and "'admin' scope" in r.json()["error"]
            assert "alice-hd" in (await vera.get("/api/tags")).json()["tags"]
        async with qbt_as(api, "bob") as q:
            assert (await q.get("/api/v2/torrents/categories")).json() == {}
            assert (await q.get("/api/v2/torrents/tags")).json() == []
            assert (await q.post("/api/v2/torrents/createTags", data={"tags": "bobs"})).status_code == 200
            assert (await q.get("/api/v2/torrents/tags")).json() == ["bobs"]
            main = (await q.get("/api/v2/sync/maindata")).json()
            assert main["categories"] == {} and main["tags"] == ["bobs"] and main["torrents"] == {}
        async with qbt_as(api, "alice") as q:
            assert list((await q.get("/api/v2/torrents/categories")).json()) == ["alice-films"]
            assert (await q.get("/api/v2/torrents/tags")).json() == ["alice-hd"]


async def test_the_daemon_s_proxy_password_is_shown_to_an_admin_alone(tmp_path: Path) -> None:
    users(tmp_path / "state")
    secret = "proxy-secret-0451"
    async with running_api(tmp_path) as api:
        r = await api.client.patch("/api/settings", json={"proxy_url": f"socks5://me:{secret}@127.0.0.1:1080"})
        assert r.status_code == 200 and secret in r.text
        assert secret in (await api.client.get("/api/settings")).text
        async with as_user(api, "vera") as vera:
            shown = (await vera.get("/api/settings")).json()["proxy_url"]
            assert shown == "socks5://me:***@127.0.0.1:1080"
        async with qbt_as(api, "vera") as q:
            prefs = (await q.get("/api/v2/app/preferences")).json()
            assert prefs["proxy_password"] == "***" and prefs["proxy_ip"] == "127.0.0.1"
        answer = await rpc(api, "bob", "session-get", {"fields": ["proxy_url"]})
        assert secret not in json.dumps(answer) and "***" in json.dumps(answer)


async def test_a_user_cannot_move_their_torrent_out_of_their_folder(tmp_path: Path) -> None:
    users(tmp_path / "state")
    outside = str(tmp_path / "downloads" / "users" / "bob")
    async with running_api(tmp_path) as api:
        async with as_user(api, "alice") as alice:
            job = (await alice.post("/api/jobs", json={"source": b64(torrent(tmp_path, 13)),
                                                       "paused": True})).json()
            r = await alice.post(f"/api/jobs/{job['id']}/move", json={"save_path": outside})
            assert r.status_code == 400 and r.json()["field"] == "save_path"
            assert "outside" in r.json()["error"]
            r = await alice.post(f"/api/jobs/{job['id']}/move", json={"save_path": "sub"})  # (inside hers)
            assert r.status_code == 200, r.text
            assert Path(r.json()["options"]["save_path"]) == api.download_root.resolve() / "users/alice/sub"
        async with qbt_as(api, "alice") as q:
            r = await q.post("/api/v2/torrents/setLocation",
                             data={"hashes": job["info_hash"], "location": outside})
            assert r.status_code == 400 and "outside" in r.text
        for method, arguments in (("torrent-set-location", {"ids": [job["info_hash"]], "location": outside}),
                                  ("torrent-set", {"ids": [job["info_hash"]], "location": outside})):
            answer = await rpc(api, "alice", method, arguments)
            assert "outside" in str(answer["result"]), answer
        saved = (await api.client.get(f"/api/jobs/{job['id']}")).json()["options"]["save_path"]
        assert Path(saved) == api.download_root.resolve() / "users/alice/sub"
        # (automatic management saves a torrent where its category says, outside her folder: not
        # hers to ask; a qBittorrent add that asks for it, or whose preference says it, is saved
        # in her folder, managed by hand)
        async with as_user(api, "alice") as alice:
            r = await alice.patch(f"/api/jobs/{job['id']}", json={"auto_managed": True})
            assert r.status_code == 403 and "automatically" in r.json()["error"], r.text
            r = await alice.post("/api/jobs", json={"source": b64(torrent(tmp_path, 14)), "paused": True,
                                                    "auto_managed": True})
            assert r.status_code == 403, r.text
        await api.service.update_settings(auto_managed_adds=True)
        async with qbt_as(api, "alice") as q:
            r = await q.post("/api/v2/torrents/setAutoManagement",
                             data={"hashes": job["info_hash"], "enable": "true"})
            assert r.status_code == 403, r.text
            other = torrent(tmp_path, 15)
            r = await q.post("/api/v2/torrents/add", data={"autoTMM": "true", "paused": "true"},
                             files={"torrents": ("t.torrent", other.to_bytes())})
            assert r.status_code == 200, r.text
            r = await q.post("/api/v2/torrents/add", data={"paused": "true", "savepath": "second"},
                             files={"torrents": ("t.torrent", torrent(tmp_path, 16).to_bytes())})  # (pref.)
            assert r.status_code == 200, r.text
        hers = api.download_root.resolve() / "users/alice"
        mine = [j for j in api.service.list() if j.options.owner == "alice"]
        assert len(mine) == 3 and not any(j.features.auto_managed for j in mine)
        assert all(Path(j.options.save_path).is_relative_to(hers) for j in mine)
        assert Path(api.service.get(job["id"]).options.save_path) == hers / "sub"


async def test_users_are_managed_through_the_api_by_an_admin_alone(tmp_path: Path) -> None:
    store = users(tmp_path / "state")
    store.add("root", "admin", PASSWORDS["root"])
    async with running_api(tmp_path) as api:
        async with as_user(api, "bob") as bob, as_user(api, "vera") as vera, as_user(api, "root") as root:
            for client in (bob, vera):
                r = await client.get("/api/users")
                assert r.status_code == 403 and "'admin' scope" in r.json()["error"]
                eve = {"name": "eve", "role": "admin", "password": "x" * 12}
                r = await client.post("/api/users", json=eve)
                assert r.status_code == 403
            carol = {"name": "carol", "role": "user", "password": "carol's password", "max_torrents": 2}
            r = await root.post("/api/users", json=carol)
            assert r.status_code == 201 and r.json()["max_torrents"] == 2 and "password" not in r.json()
            assert "carol's password" not in r.text
            listed = (await root.get("/api/users")).json()["users"]
            assert [u["name"] for u in listed] == ["alice", "bob", "carol", "root", "vera"]
            assert all("password" not in u for u in listed)
            key = (await root.post("/api/users/carol/keys", json={"scopes": ["read"]})).json()
            assert key["key"].startswith(f"te_{key['id']}_")
            assert key["key"] not in (await root.get("/api/users/carol")).text
            r = await root.patch("/api/users/carol", json={"role": "boss", "password": "a new password"})
            assert r.status_code == 400 and r.json()["field"] == "role"
        async with httpx.AsyncClient(base_url=api.url, timeout=30) as c:
            r = await c.post("/api/login", json={"name": "carol", "password": "carol's password"})
            assert r.status_code == 200  # (the refused change changed nothing, the password neither)
            c.headers["Authorization"] = f"Bearer {key['key']}"
            assert (await c.get("/api/me")).json()["scopes"] == ["read"]
        assert (await api.client.delete("/api/users/carol")).status_code == 200
        async with httpx.AsyncClient(base_url=api.url, timeout=30,
                                     headers={"Authorization": f"Bearer {key['key']}"}) as c:
            assert (await c.get("/api/me")).status_code == 401  # (her key went with her)
    assert "carol's password" not in (tmp_path / "state" / "users.json").read_text()


def _real_clients(url: str, port: int, torrents: list[bytes]) -> None:
    """qbittorrent-api and transmission-rpc, each logged in as a user: what one adds, the other
    user's client does not list or touch."""
    qbittorrentapi = require_module("qbittorrentapi")
    transmission_rpc = require_module("transmission_rpc")
    alice = qbittorrentapi.Client(host=url, username="alice", password=PASSWORDS["alice"],
                                  REQUESTS_ARGS={"timeout": 30})
    alice.auth_log_in()
    assert alice.torrents_add(torrent_files=torrents[0], is_paused=True)["success_count"] == 1
    [mine] = alice.torrents_info()
    with pytest.raises(qbittorrentapi.LoginFailed):
        qbittorrentapi.Client(host=url, username="alice", password="not hers",
                              REQUESTS_ARGS={"timeout": 30}).auth_log_in()
    bob = transmission_rpc.Client(host="127.0.0.1", port=port, username="bob", password=PASSWORDS["bob"],
                                  timeout=30)
    assert bob.get_torrents() == []
    bob.add_torrent(torrents[1], paused=True)
    [bobs] = bob.get_torrents()
    bob.remove_torrent(mine.hash, delete_data=True)  # (not his: nothing happens)
    assert [t.hash for t in alice.torrents_info()] == [mine.hash]
    assert [t.hash_string for t in bob.get_torrents()] == [bobs.hash_string] != [mine.hash]
    vera = transmission_rpc.Client(host="127.0.0.1", port=port, username="vera", password=PASSWORDS["vera"],
                                   timeout=30)
    assert sorted(t.hash_string for t in vera.get_torrents()) == sorted([mine.hash, bobs.hash_string])
    with pytest.raises(transmission_rpc.TransmissionError, match="'control' scope"):
        vera.start_torrent(mine.hash)


async def test_real_clients_each_logged_in_as_a_user_see_their_own(tmp_path: Path) -> None:
    users(tmp_path / "state")
    async with running_api(tmp_path) as api:
        port = int(api.url.rsplit(":", 1)[1])
        await anyio.to_thread.run_sync(_real_clients, api.url, port,
                                       [torrent(tmp_path, 14).to_bytes(), torrent(tmp_path, 15).to_bytes()])
        owners = sorted(j.options.owner for j in api.service.list())
        assert owners == ["alice", "bob"]


async def test_a_user_s_poll_tells_their_torrent_moved_in_the_queue_and_nothing_of_another_s(
        tmp_path: Path) -> None:
    """A completion moves every job after it in the queue: a user's ``sync/maindata`` delta
    tells their own torrent its new ``priority``, and nothing of another user's that moved too."""
    users(tmp_path / "state")
    async with running_api(tmp_path) as api:
        x = await add_late_seed(api)
        async with as_user(api, "alice") as alice, as_user(api, "bob") as bob:
            sources = [{"source": b64(torrent(tmp_path, n)), "paused": True} for n in (2, 3)]
            a = (await alice.post("/api/jobs", json=sources[0])).json()
            b = (await bob.post("/api/jobs", json=sources[1])).json()
        async with qbt_as(api, "bob") as q:
            full = (await q.get("/api/v2/sync/maindata", params={"rid": 0})).json()
            assert {h: t["priority"] for h, t in full["torrents"].items()} == {b["info_hash"]: 3}
            await complete_late_seed(api, x)
            delta = (await q.get("/api/v2/sync/maindata", params={"rid": full["rid"]})).json()
            assert delta["torrents"] == {b["info_hash"]: {"priority": 2}}  # (not alice's, moved to 1)
            assert a["info_hash"] not in delta.get("torrents_removed", [])


def _login_limits_by_real_clients(url: str, port: int) -> None:
    """qbittorrent-api sets how many failed logins get an address refused, and for how long: its
    own logins are refused so; transmission-rpc reads and sets them as Transmission's
    anti-brute-force."""
    qbittorrentapi = require_module("qbittorrentapi")
    transmission_rpc = require_module("transmission_rpc")

    def qbt(password: str) -> httpx.Response:
        return httpx.post(f"{url}/api/v2/auth/login", data={"username": "alice", "password": password},
                          timeout=30)

    admin = qbittorrentapi.Client(host=url, username="admin", password=TOKEN, REQUESTS_ARGS={"timeout": 30})
    admin.app_set_preferences({"web_ui_max_auth_fail_count": 2, "web_ui_ban_duration": 3600})
    prefs = admin.app_preferences()
    assert (prefs["web_ui_max_auth_fail_count"], prefs["web_ui_ban_duration"]) == (2, 3600)
    for _ in range(2):
        with pytest.raises(qbittorrentapi.LoginFailed):
            qbittorrentapi.Client(host=url, username="alice", password="not hers",
                                  REQUESTS_ARGS={"timeout": 30}).auth_log_in()
    r = qbt(PASSWORDS["alice"])
    assert r.status_code == 403 and "banned" in r.text  # (her right password too, for the hour)
    r = httpx.post(f"{url}/api/login", json={"name": "alice", "password": PASSWORDS["alice"]}, timeout=30)
    assert r.status_code == 429 and 3590 <= int(r.headers["retry-after"]) <= 3601  # (every door)
    admin.app_set_preferences({"web_ui_ban_duration": 1})  # (the ban as long from the last failure)
    time.sleep(1.2)
    assert qbt(PASSWORDS["alice"]).text == "Ok."
    tr = transmission_rpc.Client(host="127.0.0.1", port=port, username="admin", password=TOKEN, timeout=30)
    fields = tr.get_session().fields
    assert (fields["anti-brute-force-enabled"], fields["anti-brute-force-threshold"]) == (True, 2)
    tr.set_session(**{"anti-brute-force-enabled": False})
    assert admin.app_preferences()["web_ui_max_auth_fail_count"] == 0
    with pytest.raises(transmission_rpc.TransmissionError, match="kept only with anti-brute-force-enabled"):
        tr.set_session(**{"anti-brute-force-threshold": 9})  # (while off: not kept, said so)
    for _ in range(4):  # (none refused now)
        assert qbt("not hers").text == "Fails."
    assert qbt(PASSWORDS["alice"]).text == "Ok."
    tr.set_session(**{"anti-brute-force-enabled": True, "anti-brute-force-threshold": 3})
    assert admin.app_preferences()["web_ui_max_auth_fail_count"] == 3
    with pytest.raises(transmission_rpc.TransmissionError, match="anti-brute-force-threshold"):
        tr.set_session(**{"anti-brute-force-threshold": 0})
    with pytest.raises(qbittorrentapi.APIError):
        admin.app_set_preferences({"web_ui_max_auth_fail_count": -1})
    with pytest.raises(qbittorrentapi.APIError):
        admin.app_set_preferences({"web_ui_ban_duration": 0})
    assert admin.app_preferences()["web_ui_max_auth_fail_count"] == 3


async def test_how_many_failed_logins_ban_an_address_and_for_how_long_are_settings(tmp_path: Path) -> None:
    users(tmp_path / "state")
    async with running_api(tmp_path) as api:
        port = int(api.url.rsplit(":", 1)[1])
        await anyio.to_thread.run_sync(_login_limits_by_real_clients, api.url, port)
        settings = api.service.get_settings()
        assert (settings.login_max_failures, settings.login_ban_time) == (3, 1.0)
        r = await api.client.patch("/api/settings", json={"login_max_failures": 1001})
        assert r.status_code == 400 and "login_max_failures" in r.text
        r = await api.client.patch("/api/settings", json={"login_ban_time": "an hour"})
        assert r.status_code == 400 and "login_ban_time" in r.text
