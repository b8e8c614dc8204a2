"""The OpenAPI document against a running API: every operation it describes is called here, and
every real answer (successes and errors) must match the schema the document gives for its status."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from jsonschema import Draft202012Validator

from tests.integration.api_helpers import TOKEN, running_api
from tests.integration.helpers import make_payload, make_torrent
from torrent_engine.api.users import UserStore

pytestmark = pytest.mark.anyio

MAGNET = "magnet:?xt=urn:btih:" + "c" * 40 + "&dn=described"


class Checker:
    """Sends requests and checks each answer against the document; remembers what it covered."""

    def __init__(self, client: httpx.AsyncClient, document: dict[str, Any]) -> None:
        self.client = client
        self.document = document
        self.covered: set[tuple[str, str]] = set()

    def schema(self, method: str, template: str, status: int) -> dict[str, Any]:
        responses = self.document["paths"][template][method.lower()]["responses"]
        assert str(status) in responses, f"{method} {template}: {status} is not documented"
        response = responses[str(status)]
        if "$ref" in response:
            response = self.document["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
        schema: dict[str, Any] = response["content"]["application/json"]["schema"]
        return schema

    async def call(self, method: str, template: str, expect: int, *, path: dict[str, str] | None = None,
                   **kwargs: Any) -> Any:
        url = template.format(**(path or {}))
        r = await self.client.request(method, url, **kwargs)
        assert r.status_code == expect, (method, url, r.status_code, r.text)
        assert r.headers["content-type"].startswith("application/json"), r.headers
        # The schema's references point into the document: give it the document's components.
        schema = {**self.schema(method, template, r.status_code), "components": self.document["components"]}
        errors = sorted(Draft202012Validator(schema).iter_errors(r.json()), key=str)
        assert not errors, f"{method} {url} -> {r.status_code}: {errors[0].message} at " \
                           f"{list(errors[0].absolute_path)} in {json.dumps(r.json())[:2000]}"
        self.covered.add((method, template))
        return r.json()


async def test_every_described_operation_answers_as_the_document_says(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed", (("a.bin", 70_000), ("b/c.bin", 5_000))))
    asked: list[str] = []  # (the daemon's stop, asked for: recorded)
    async with running_api(tmp_path, shutdown=asked.append) as api:
        r = await api.client.get("/api/openapi.json")
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        document = r.json()
        assert document["openapi"] == "3.1.0"
        c = Checker(api.client, document)
        await c.call("GET", "/api/openapi.json", 200)
        await c.call("GET", "/api/health", 200)
        await c.call("GET", "/api/stats", 200)
        await c.call("GET", "/api/stats/history", 200)
        await c.call("POST", "/api/shutdown", 202)
        assert asked == ["POST /api/shutdown"]
        lease = await c.call("POST", "/api/clients", 201, json={"ttl": 600})
        await c.call("POST", "/api/clients", 400, json={"ttl": "long"})
        await c.call("POST", "/api/clients/{lease_id}/heartbeat", 200, path={"lease_id": lease["id"]})
        await c.call("POST", "/api/clients/{lease_id}/heartbeat", 404, path={"lease_id": "nope"})
        await c.call("POST", "/api/categories", 201, json={"name": "films", "save_path": "movies"})
        await c.call("POST", "/api/categories", 409, json={"name": "films"})
        await c.call("PATCH", "/api/categories/{name}", 200, path={"name": "films"}, json={"save_path": "m2"})
        await c.call("GET", "/api/categories", 200)
        await c.call("POST", "/api/tags", 201, json={"tags": ["hd", "old"]})
        await c.call("DELETE", "/api/tags/{tag}", 200, path={"tag": "old"})
        await c.call("GET", "/api/tags", 200)

        job = await c.call("POST", "/api/jobs", 201, json={
            "source": base64.b64encode(torrent.to_bytes()).decode(), "paused": True, "category": "films",
            "tags": ["hd"], "ratio_limit": 2, "client": lease["id"]})
        assert [f["path"] for f in job["files"]] == ["payload/a.bin", "payload/b/c.bin"]
        await c.call("POST", "/api/jobs", 200, json={"source": base64.b64encode(torrent.to_bytes()).decode()})
        magnet = await c.call("POST", "/api/jobs", 201, json={"source": MAGNET, "paused": True})
        await c.call("POST", "/api/jobs", 400, json={"source": "magnet:?xt=urn:btih:zz"})
        await c.call("POST", "/api/metadata", 202, json={"source": f"magnet:?xt=urn:btih:{5:040x}"})
        await c.call("POST", "/api/metadata", 400, json={"source": "nonsense"})
        await c.call("POST", "/api/dedup/match", 200,
                     json={"source": base64.b64encode(torrent.to_bytes()).decode()})
        await c.call("POST", "/api/dedup/match", 400, json={"source": MAGNET})
        await c.call("POST", "/api/jobs", 415, content=b"x", headers={"content-type": "text/plain"})
        await c.call("GET", "/api/jobs", 200)
        await c.call("GET", "/api/jobs", 200, params={"state": "paused"})
        await c.call("GET", "/api/jobs", 400, params={"state": "sleeping"})
        await c.call("GET", "/api/jobs", 200, params={"state": "paused", "limit": "1", "offset": "1"})
        await c.call("GET", "/api/jobs", 400, params={"limit": "-1"})
        await c.call("GET", "/api/jobs/active", 200)
        ids = {"job_id": job["id"]}
        await c.call("GET", "/api/jobs/{job_id}", 200, path=ids)
        await c.call("GET", "/api/jobs/{job_id}", 404, path={"job_id": "nope"})
        tokens = await c.call("GET", "/api/jobs/{job_id}/stream-token", 200, path=ids)
        assert tokens["files"][0]["url"].startswith(f"/api/jobs/{job['id']}/files/0/stream?token=")
        await c.call("GET", "/api/jobs/{job_id}/stream-token", 404, path={"job_id": "nope"})
        # (its bytes, 200/206/416, are checked in test_api_stream.py; here the JSON errors)
        stream = "/api/jobs/{job_id}/files/{index}/stream"
        await c.call("GET", stream, 400, path={**ids, "index": "x"})
        await c.call("GET", stream, 404, path={"job_id": "nope", "index": "0"})
        await c.call("PATCH", "/api/jobs/{job_id}", 200, path=ids,
                     json={"file_priorities": {"1": 0}, "sequential": True, "upload_limit": 1000,
                           "super_seeding": True})
        await c.call("PATCH", "/api/jobs/{job_id}", 400, path=ids, json={"colour": "red"})
        await c.call("PATCH", "/api/jobs/{job_id}", 400, path=ids, json={"super_seeding": "yes"})
        await c.call("POST", "/api/groups", 201, json={"name": "slow", "weight": 3, "download_limit": 10_000,
                                                       "categories": ["films"], "tags": ["hd"]})
        await c.call("POST", "/api/groups", 409, json={"name": "slow"})
        await c.call("POST", "/api/groups", 400, json={"name": "bad", "weight": 0})
        await c.call("PATCH", "/api/groups/{name}", 200, path={"name": "slow"}, json={"upload_limit": 5000})
        await c.call("PATCH", "/api/groups/{name}", 404, path={"name": "none"}, json={"weight": 2})
        await c.call("GET", "/api/groups/{name}", 200, path={"name": "slow"})
        await c.call("POST", "/api/groups", 201, json={"name": "a/b c"})  # (any name: the path takes it)
        await c.call("GET", "/api/groups/{name}", 200, path={"name": "a/b%20c"})
        await c.call("DELETE", "/api/groups/{name}", 200, path={"name": "a/b%20c"})
        await c.call("GET", "/api/groups/{name}", 404, path={"name": "none"})
        await c.call("GET", "/api/groups", 200)
        in_group = await c.call("GET", "/api/jobs/{job_id}/group", 200, path=ids)
        assert in_group == {"group": "", "in": "slow"}  # (its category's group)
        await c.call("GET", "/api/jobs/{job_id}/group", 404, path={"job_id": "nope"})
        await c.call("PUT", "/api/jobs/{job_id}/group", 200, path=ids, json={"group": "slow"})
        await c.call("PUT", "/api/jobs/{job_id}/group", 409, path=ids, json={"group": "none"})
        await c.call("PATCH", "/api/jobs/{job_id}", 200, path=ids, json={"group": ""})
        await c.call("PATCH", "/api/jobs/{job_id}", 409, path=ids, json={"group": "none"})
        await c.call("POST", "/api/jobs/{job_id}/resume", 200, path=ids)
        await c.call("POST", "/api/jobs/{job_id}/pause", 200, path=ids)
        await c.call("POST", "/api/jobs/{job_id}/recheck", 200, path=ids)
        await c.call("POST", "/api/jobs/{job_id}/reannounce", 200, path=ids)
        await c.call("POST", "/api/jobs/{job_id}/reannounce", 400, path=ids,
                     json={"trackers": ["http://127.0.0.1:9/not-its-tracker"]})
        await c.call("POST", "/api/jobs/{job_id}/reannounce", 404, path={"job_id": "0" * 16})
        bulk = await c.call("POST", "/api/jobs/bulk", 200,
                            json={"action": "pause", "ids": [job["id"], "nope"]})
        assert bulk["done"] == [job["id"]] and bulk["failed"][0]["status"] == 404
        await c.call("POST", "/api/jobs/bulk", 400, json={"action": "pause", "ids": []})
        await c.call("POST", "/api/jobs/{job_id}/move", 200, path=ids, json={"save_path": "moved"})
        await c.call("POST", "/api/jobs/{job_id}/move", 400, path=ids, json={"save_path": "../../out"})
        await c.call("POST", "/api/jobs/{job_id}/queue", 409, path=ids, json={"move": "top"})
        renamed = await c.call("POST", "/api/jobs/{job_id}/rename", 200, path=ids,
                               json={"old_path": "payload/b", "new_path": "payload/d", "kind": "folder"})
        assert [f["path"] for f in renamed["files"]] == ["payload/a.bin", "payload/d/c.bin"]
        await c.call("POST", "/api/jobs/{job_id}/rename", 400, path=ids,
                     json={"old_path": "payload/a.bin", "new_path": "../a.bin"})
        await c.call("POST", "/api/jobs/{job_id}/rename", 409, path=ids,
                     json={"old_path": "payload/a.bin", "new_path": "payload/d/c.bin"})
        tracker = "udp://127.0.0.1:9/announce"
        edited = await c.call("PUT", "/api/jobs/{job_id}/trackers", 200, path=ids,
                              json={"tiers": [[tracker]]})
        assert [(t["url"], t["tier"]) for t in edited["trackers"]] == [(tracker, 0)]
        await c.call("PUT", "/api/jobs/{job_id}/trackers", 400, path=ids, json={"tiers": [["ftp://x/"]]})
        tiers = await c.call("GET", "/api/jobs/{job_id}/trackers", 200, path=ids)
        assert tiers == {"tiers": [[tracker]]}
        await c.call("GET", "/api/jobs/{job_id}/trackers", 404, path={"job_id": "nope"})
        assert await c.call("GET", "/api/jobs/{job_id}/webseeds", 200, path=ids) == {"urls": []}
        seed = "http://127.0.0.1:9/pub/"
        await c.call("PUT", "/api/jobs/{job_id}/webseeds", 200, path=ids, json={"urls": [seed]})
        await c.call("PUT", "/api/jobs/{job_id}/webseeds", 400, path=ids, json={"urls": ["ftp://x/"]})
        await c.call("PUT", "/api/jobs/{job_id}/webseeds", 400, path=ids, json={"url": [seed]})
        assert await c.call("GET", "/api/jobs/{job_id}/webseeds", 200, path=ids) == {"urls": [seed]}
        await c.call("GET", "/api/jobs/{job_id}/webseeds", 404, path={"job_id": "nope"})
        await c.call("PUT", "/api/jobs/{job_id}/webseeds", 404, path={"job_id": "nope"}, json={"urls": []})
        pieces = await c.call("GET", "/api/jobs/{job_id}/pieces", 200, path=ids)
        assert pieces["num_pieces"] is None or pieces["num_pieces"] > 0
        await c.call("GET", "/api/jobs/{job_id}/pieces", 404, path={"job_id": "nope"})
        facts = await c.call("GET", "/api/jobs/{job_id}/torrent", 200, path=ids)
        assert facts["info_hash_v1"] or facts["info_hash_v2"]
        await c.call("GET", "/api/jobs/{job_id}/torrent", 404, path={"job_id": "nope"})
        r = await api.client.get(f"/api/jobs/{job['id']}/torrent/file")
        answers = document["paths"]["/api/jobs/{job_id}/torrent/file"]["get"]["responses"]
        assert r.status_code == 200 and r.headers["content-type"] in answers["200"]["content"]
        assert r.content == torrent.to_bytes()
        c.covered.add(("GET", "/api/jobs/{job_id}/torrent/file"))
        await c.call("GET", "/api/jobs/{job_id}/torrent/file", 404, path={"job_id": "nope"})
        await c.call("GET", "/api/jobs/{job_id}/torrent/file", 409, path={"job_id": magnet["id"]})
        banned = await c.call("POST", "/api/peers/ban", 200, json={"peers": ["192.0.2.7:6881"]})
        assert "192.0.2.7" in banned["banned_ips"]
        await c.call("POST", "/api/peers/ban", 400, json={"peers": ["nowhere:1"]})
        await c.call("PATCH", "/api/settings", 200, json={"queueing": True, "max_active_downloads": 2})
        await c.call("PATCH", "/api/settings", 400, json={"queueing": "sometimes"})
        await c.call("GET", "/api/settings", 200)
        watched = api.download_root.parent / "watched"
        watched.mkdir()
        await c.call("PATCH", "/api/settings", 200, json={
            "watch_folders": {str(watched): None}, "run_on_completed": "/bin/true %N",
            "run_on_completed_enabled": True, "run_timeout": 30})
        await c.call("PATCH", "/api/settings", 400, json={"watch_folders": {str(watched / "no"): None}})
        await c.call("PATCH", "/api/settings", 400, json={"run_on_added": "prog %Q"})
        await c.call("GET", "/api/watch", 200)
        await c.call("GET", "/api/dedup", 200)
        ip_list = api.download_root.parent / "ipfilter.p2p"
        ip_list.write_text("Somewhere:10.0.0.0-10.0.0.255\nnot a rule\n")
        await c.call("PATCH", "/api/settings", 200, json={
            "ip_filter_enabled": True, "ip_filter_path": str(ip_list), "banned_ips": ["127.0.0.9"]})
        await c.call("PATCH", "/api/settings", 400, json={"banned_ips": ["not an address"]})
        await c.call("GET", "/api/ipfilter", 200)
        await c.call("PUT", "/api/cookies", 200, json={"cookies": [
            {"name": "uid", "value": "7", "domain": ".t.example", "path": "/dl", "expires": 4102444800},
            {"name": "s", "value": "", "domain": "t.example"}]})
        await c.call("PUT", "/api/cookies", 400,
                     json={"cookies": [{"name": "a b", "value": "", "domain": "x"}]})
        await c.call("GET", "/api/cookies", 200)
        await c.call("GET", "/api/log", 200)
        await c.call("GET", "/api/log", 200, params={"after": "0", "level": "normal,warning"})
        await c.call("GET", "/api/log", 400, params={"level": "loud"})
        await c.call("GET", "/api/log/peers", 200, params={"after": "-1"})
        await c.call("GET", "/api/log/peers", 400, params={"after": "-2"})
        await c.call("POST", "/api/ipfilter/update", 409)  # (no list URL set)
        await c.call("POST", "/api/settings/test-mail", 400)  # (no server set)
        await c.call("PATCH", "/api/settings", 200, json={"mail_server": "127.0.0.1:9", "mail_from": "a@b.c",
                                                          "mail_to": "d@e.f"})
        await c.call("POST", "/api/settings/test-mail", 502)  # (nothing listens there)
        feed = {"url": "http://127.0.0.1:9/feed.xml", "path": "Shows"}  # (processing off: never read)
        await c.call("POST", "/api/feeds/folders", 201, json={"path": "TV"})
        await c.call("POST", "/api/feeds/folders", 409, json={"path": "TV"})
        await c.call("POST", "/api/feeds", 201, json=feed)
        await c.call("POST", "/api/feeds", 409, json=feed)
        await c.call("POST", "/api/feeds", 400, json={"url": "ftp://x/"})
        await c.call("PATCH", "/api/feeds", 200, json={"path": "Shows", "refresh_interval": 600})
        await c.call("PATCH", "/api/feeds", 200, json={"path": "TV", "to": "Series"})
        await c.call("PATCH", "/api/feeds", 404, json={"path": "Nothing", "to": "X"})
        await c.call("GET", "/api/feeds", 200)
        await c.call("POST", "/api/feeds/read", 200, json={"path": "Shows"})
        await c.call("POST", "/api/feeds/read", 404, json={"path": "Nothing"})
        await c.call("POST", "/api/feeds/refresh", 404, json={"path": "Nothing"})
        rule = {"name": "r", "must_contain": "x", "feeds": [feed["url"]], "content_layout": "subfolder"}
        await c.call("PUT", "/api/feeds/rules", 200, json=rule)
        await c.call("PUT", "/api/feeds/rules", 400, json={"name": "r", "ignore_days": -1})
        await c.call("GET", "/api/feeds/rules", 200)
        await c.call("GET", "/api/feeds/rules/matches", 200, params={"name": "r"})
        await c.call("GET", "/api/feeds/rules/matches", 404, params={"name": "none"})
        await c.call("POST", "/api/feeds/rules/rename", 200, json={"name": "r", "to": "s"})
        await c.call("POST", "/api/feeds/rules/rename", 404, json={"name": "r", "to": "t"})
        await c.call("DELETE", "/api/feeds/rules", 200, params={"name": "s"})
        await c.call("DELETE", "/api/feeds/rules", 404, params={"name": "s"})
        await c.call("DELETE", "/api/feeds", 200, params={"path": "Shows"})
        await c.call("DELETE", "/api/feeds", 404, params={"path": "Shows"})
        await c.call("POST", "/api/feeds/refresh", 202, json={})  # (no feed left: nothing read)

        (api.download_root / "made").mkdir()
        (api.download_root / "made" / "m.bin").write_bytes(b"m" * 40_000)
        made = await c.call("POST", "/api/creations", 201, json={
            "source_path": "made", "start_seeding": False, "trackers": [["udp://t.example:1"]]})
        await c.call("POST", "/api/creations", 400, json={"source_path": "made", "version": "v3"})
        await c.call("POST", "/api/creations", 409,
                     json={"source_path": "made", "torrent_file_path": "made/m.bin"})
        task = {"task_id": made["id"]}
        with anyio.fail_after(30):
            while (await c.call("GET", "/api/creations/{task_id}", 200, path=task))["status"] != "finished":
                await anyio.sleep(0.02)
        await c.call("GET", "/api/creations", 200)
        await c.call("GET", "/api/creations/{task_id}", 404, path={"task_id": "nope"})
        r = await api.client.get(f"/api/creations/{made['id']}/torrent")
        answers = document["paths"]["/api/creations/{task_id}/torrent"]["get"]["responses"]
        assert r.status_code == 200 and r.headers["content-type"] in answers["200"]["content"]
        c.covered.add(("GET", "/api/creations/{task_id}/torrent"))
        await c.call("GET", "/api/creations/{task_id}/torrent", 404, path={"task_id": "nope"})
        await c.call("DELETE", "/api/creations/{task_id}", 200, path=task)
        await c.call("DELETE", "/api/creations/{task_id}", 404, path=task)
        await c.call("GET", "/api/folders", 200, params={"path": "made", "files": "true", "limit": "5"})
        await c.call("GET", "/api/folders", 200, params={"prefix": "ma"})
        await c.call("GET", "/api/folders", 400, params={"path": "made/m.bin"})
        await c.call("GET", "/api/folders", 404, params={"path": "not/there"})
        await c.call("POST", "/api/jobs/{job_id}/queue", 200, path=ids, json={"move": "bottom"})
        await c.call("GET", "/api/queue", 200)
        await c.call("POST", "/api/events/ticket", 201)
        await c.call("GET", "/api/me", 200)
        UserStore(api.state_dir).add("alice", "user", "alice's password")
        await c.call("POST", "/api/login", 200, json={"name": "alice", "password": "alice's password"})
        await c.call("POST", "/api/login", 401, json={"name": "alice", "password": "wrong"})
        await c.call("POST", "/api/login", 400, json={"name": 5, "password": "wrong"})
        await c.call("POST", "/api/logout", 200)
        await c.call("GET", "/api/users", 200)
        bob = {"name": "bob", "role": "viewer", "password": "bob's password"}
        await c.call("POST", "/api/users", 201, json=bob)
        await c.call("POST", "/api/users", 409, json=bob)
        await c.call("POST", "/api/users", 400, json={**bob, "name": "carl", "role": "boss"})
        named = {"name": "bob"}
        await c.call("GET", "/api/users/{name}", 200, path=named)
        await c.call("GET", "/api/users/{name}", 404, path={"name": "zed"})
        await c.call("PATCH", "/api/users/{name}", 200, path=named, json={"max_torrents": 5})
        await c.call("PATCH", "/api/users/{name}", 400, path=named, json={"password": "short"})
        key = await c.call("POST", "/api/users/{name}/keys", 201, path=named, json={"scopes": ["read"]})
        await c.call("POST", "/api/users/{name}/keys", 400, path=named, json={"scopes": ["add"]})
        key_path = "/api/users/{name}/keys/{key_id}"
        await c.call("DELETE", key_path, 200, path={**named, "key_id": key["id"]})
        await c.call("DELETE", key_path, 404, path={**named, "key_id": key["id"]})
        await c.call("DELETE", "/api/users/{name}", 200, path=named)
        await c.call("DELETE", "/api/users/{name}", 404, path={"name": "bob"})
        await c.call("DELETE", "/api/jobs/{job_id}", 200, path={"job_id": magnet["id"]},
                     params={"delete_files": "true"})
        await c.call("DELETE", "/api/jobs", 400)
        await c.call("DELETE", "/api/jobs", 200, params={"finished": "true"})
        await c.call("DELETE", "/api/clients/{lease_id}", 200, path={"lease_id": lease["id"]})
        await c.call("DELETE", "/api/categories/{name}", 200, path={"name": "films"})
        await c.call("DELETE", "/api/groups/{name}", 200, path={"name": "slow"})
        await c.call("DELETE", "/api/groups/{name}", 404, path={"name": "slow"})

        # The event streams: text/event-stream, as documented (their content is tested elsewhere).
        for template, path in (("/api/events", {}), ("/api/jobs/{job_id}/events", ids)):
            async with api.client.stream("GET", template.format(**path)) as r:
                assert r.status_code == 200
                documented = document["paths"][template]["get"]["responses"]["200"]["content"]
                assert "text/event-stream" in documented
                assert r.headers["content-type"].startswith("text/event-stream")
            c.covered.add(("GET", template))
        await c.call("GET", "/api/jobs/{job_id}/events", 404, path={"job_id": "nope"})

        described = {(m.upper(), p) for p, item in document["paths"].items() for m in item}
        assert described - c.covered == set(), "operations the test does not call"

        # and the token guards the document itself
        async with httpx.AsyncClient(base_url=api.url) as bare:
            assert (await bare.get("/api/openapi.json")).status_code == 401
            r = await bare.get("/api/openapi.json", headers={"X-Api-Token": TOKEN})
            assert r.json() == document


Schema = dict[str, Any]


def event_schemas(document: Schema, template: str) -> tuple[Schema, dict[str, Schema]]:
    """The schema the document gives one event of ``template``'s stream, and the schema of each
    event name's ``data`` (its ``contentSchema``), both with the document's components."""
    media = document["paths"][template]["get"]["responses"]["200"]["content"]["text/event-stream"]
    schema = {**media["schema"], "components": document["components"]}
    if "$ref" in media["schema"]:
        schema = {**document["components"]["schemas"][media["schema"]["$ref"].rsplit("/", 1)[1]],
                  "components": document["components"]}
    data: dict[str, Schema] = {}
    for branch in schema.get("oneOf", []):
        for name in branch["properties"]["event"]["enum"]:
            content = branch["properties"]["data"]["contentSchema"]
            data[name] = {**content, "components": document["components"]}
    return schema, data


async def test_every_event_of_the_streams_is_as_the_document_describes_it(tmp_path: Path) -> None:
    """Each event (``event``, ``data``, ``id``, as an SSE parser reads it, schemathesis among
    them) matches the document's schema, and its JSON ``data`` the schema of that event name."""
    from tests.integration.api_helpers import sse_messages

    async with running_api(tmp_path, heartbeat=0.2) as api:
        document = (await api.client.get("/api/openapi.json")).json()
        r = await api.client.post("/api/jobs", json={"source": MAGNET, "paused": True})
        job_id = r.json()["id"]
        seen: set[str] = set()
        for template, url in (("/api/events", "/api/events"),
                              ("/api/jobs/{job_id}/events", f"/api/jobs/{job_id}/events")):
            schema, data_schemas = event_schemas(document, template)
            async with api.client.stream("GET", url) as response:
                messages = sse_messages(response)
                first = await anext(messages)  # the snapshot
                await api.client.post(f"/api/jobs/{job_id}/resume")
                await api.client.post(f"/api/jobs/{job_id}/pause")
                events = [first]
                with anyio.move_on_after(2):  # what came in that time (events go on)
                    async for m in messages:
                        events.append(m)
            for m in events:
                event = {"event": m.event, "data": json.dumps(m.data), "id": m.id}
                errors = sorted(Draft202012Validator(schema).iter_errors(event), key=str)
                assert not errors, (template, m.event, errors[0].message)
                assert m.event in data_schemas, (template, m.event)
                errors = sorted(Draft202012Validator(data_schemas[m.event]).iter_errors(m.data), key=str)
                assert not errors, (template, m.event, errors[0].message, list(errors[0].absolute_path))
                seen.add(m.event)
        assert {"snapshot", "job.state"} <= seen, seen
