"""Transmission 4.1's JSON-RPC 2.0 on ``/transmission/rpc`` (snake_case names, error objects,
batches, notifications), beside the old protocol on the same endpoint, by plain HTTP."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests.integration.api_helpers import TOKEN, running_api
from tests.unit.torrent_factory import make_torrent, payload
from tests.unit.webseed._webseed_server import http_server

pytestmark = pytest.mark.anyio

WEB_SEED = "http://127.0.0.1:9/seed/"  # (the job stays paused: never asked)


class Rpc:
    """A JSON-RPC client of the daemon's Transmission endpoint."""

    def __init__(self, client: httpx.AsyncClient, session_id: str) -> None:
        self.client = client
        self.headers = {"X-Transmission-Session-Id": session_id}

    async def post(self, body: Any = None, *, content: bytes | None = None) -> httpx.Response:
        if content is not None:
            return await self.client.post("/transmission/rpc", content=content, headers=self.headers)
        return await self.client.post("/transmission/rpc", json=body, headers=self.headers)

    async def call(self, method: str, params: dict[str, Any] | None = None, call_id: Any = 1) -> Any:
        request: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": call_id}
        if params is not None:
            request["params"] = params
        r = await self.post(request)
        assert r.status_code == 200, r.text
        return r.json()

    async def result(self, method: str, params: dict[str, Any] | None = None) -> Any:
        answer = await self.call(method, params)
        assert "result" in answer and answer["id"] == 1, answer
        return answer["result"]


@asynccontextmanager
async def rpc(tmp_path: Path) -> AsyncIterator[tuple[Rpc, Any]]:
    async with running_api(tmp_path) as api:
        async with httpx.AsyncClient(base_url=api.url, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            r = await c.post("/transmission/rpc", json={"jsonrpc": "2.0", "method": "session_get", "id": 1})
            assert r.status_code == 409
            assert r.headers["x-transmission-rpc-version"] == "6.0.0"  # (which protocol to speak)
            yield Rpc(c, r.headers["x-transmission-session-id"]), api


def seeded_torrent() -> tuple[bytes, str]:
    t = make_torrent([(("a.bin",), payload(40000, 5)), (("b.bin",), payload(30000, 6))], 16384, name="j")
    t = dataclasses.replace(t, web_seeds=(WEB_SEED,))
    return t.to_bytes(), t.info_hash.hex()


async def test_session_and_torrents_in_snake_case(tmp_path: Path) -> None:
    data, info_hash = seeded_torrent()
    async with rpc(tmp_path) as (c, api):
        asked = ["version", "rpc_version", "rpc_version_semver", "download_dir", "peer_port", "encryption",
                 "units"]
        session = await c.result("session_get", {"fields": asked})
        assert session["rpc_version"] == 18 and session["rpc_version_semver"] == "6.0.0"
        assert session["version"].startswith("4.1.0")
        assert session["download_dir"] == str(api.download_root)
        assert session["encryption"] in ("preferred", "required", "allowed")
        assert session["units"]["speed_bytes"] == 1000
        everything = await c.result("session_get")
        assert all("-" not in k and k == k.lower() for k in everything), everything.keys()
        assert "cache_size_mib" in everything
        await c.result("session_set", {"speed_limit_down": 300, "speed_limit_down_enabled": True})
        assert api.service.get_settings().download_limit == 300_000
        assert everything["sequential_download"] is False
        for refused in ({"sequential_download": True}, {"preferred_transports": ["tcp", "utp", "x"]}):
            answer = await c.call("session_set", refused)
            assert answer.get("error", {}).get("code") == -32602, (refused, answer)  # (said so)

        added = await c.result("torrent_add", {"metainfo": base64.b64encode(data).decode(), "paused": True,
                                               "labels": ["tv"], "files_unwanted": [1],
                                               "sequential_download": True})
        assert added["torrent_added"]["hash_string"] == info_hash
        tid = added["torrent_added"]["id"]
        again = await c.result("torrent_add", {"metainfo": base64.b64encode(data).decode()})
        assert again["torrent_duplicate"]["id"] == tid
        fields = ["id", "hash_string", "percent_done", "rate_download", "download_dir", "total_size", "files",
                  "file_stats", "wanted", "labels", "sequential_download", "webseeds", "webseeds_ex",
                  "webseeds_sending_to_us", "peers_from", "tracker_stats", "status"]
        [row] = (await c.result("torrent_get", {"ids": [tid], "fields": fields}))["torrents"]
        assert set(row) == set(fields)
        assert row["hash_string"] == info_hash and row["download_dir"] == str(api.download_root)
        assert row["total_size"] == 70000 and row["labels"] == ["tv"]
        assert row["wanted"] == [True, False]  # (4.1: booleans; the old protocol: 1/0)
        assert row["sequential_download"] is True
        assert row["files"][0] == {"name": "j/a.bin", "length": 40000, "bytes_completed": 0,
                                   "begin_piece": 0, "end_piece": 3}
        assert (row["files"][1]["begin_piece"], row["files"][1]["end_piece"]) == (2, 5)
        assert row["webseeds"] == [WEB_SEED]
        assert row["webseeds_ex"] == [{"url": WEB_SEED, "is_downloading": False,
                                       "download_bytes_per_second": 0}]
        assert set(row["peers_from"]) >= {"from_tracker", "from_dht", "from_pex"}
        table = (await c.result("torrent_get", {"fields": ["id", "wanted"], "format": "table"}))["torrents"]
        assert table == [["id", "wanted"], [tid, [True, False]]]

        await c.result("torrent_set", {"ids": [tid], "sequential_download": False, "download_limit": 40,
                                       "download_limited": True, "files_wanted": [1]})
        job = api.service.client_jobs()[0]
        assert job.options.sequential is False and job.options.download_limit == 40_000
        old = await c.post({"method": "torrent-get",
                            "arguments": {"fields": ["wanted", "sequentialDownload"]}})
        assert old.json()["arguments"]["torrents"] == [{"wanted": [1, 1], "sequentialDownload": False}]
        recent = await c.result("torrent_get", {"ids": "recently_active", "fields": ["id"]})
        assert recent["torrents"] == [{"id": tid}] and recent["removed"] == []
        space = await c.result("free_space", {"path": str(api.download_root)})
        assert space["size_bytes"] > 0 and space["total_size"] >= space["size_bytes"]
        stats = await c.result("session_stats")
        assert stats["torrent_count"] == 1 and "uploaded_bytes" in stats["cumulative_stats"]
        await c.result("torrent_remove", {"ids": [tid], "delete_local_data": True})
        assert (await c.result("torrent_get", {"fields": ["id"]}))["torrents"] == []


def half_answered(path: str, start: int, end: int) -> tuple[bytes, bool]:
    """A web seed that sends the head and half the body of each range, then waits: in use."""
    length = end - start + 1
    size = 40000 if path.endswith("a.bin") else 30000
    head = f"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {start}-{end}/{size}\r\n" \
           f"Content-Length: {length}\r\n\r\n"
    return head.encode() + bytes(length // 2), True


async def test_webseeds_ex_shows_the_web_seed_a_download_uses(tmp_path: Path) -> None:
    t = make_torrent([(("a.bin",), payload(40000, 5)), (("b.bin",), payload(30000, 6))], 16384, name="w")
    async with http_server(half_answered) as server, rpc(tmp_path) as (c, api):
        url = server.url("/pub/")
        t = dataclasses.replace(t, web_seeds=(url,))
        tid = (await c.result("torrent_add", {"metainfo": base64.b64encode(t.to_bytes()).decode()}))[
            "torrent_added"]["id"]
        fields = ["webseeds_ex", "webseeds_sending_to_us"]
        row: dict[str, Any] = {}
        with anyio.fail_after(20):
            while not row.get("webseeds_sending_to_us"):
                await anyio.sleep(0.05)
                [row] = (await c.result("torrent_get", {"ids": [tid], "fields": fields}))["torrents"]
        assert server.requests  # (asked for a range: in use)
        assert row == {"webseeds_ex": [{"url": url, "is_downloading": True, "download_bytes_per_second": 0}],
                       "webseeds_sending_to_us": 1}
        await c.result("torrent_stop", {"ids": [tid]})
        [row] = (await c.result("torrent_get", {"ids": [tid], "fields": fields}))["torrents"]
        assert row["webseeds_ex"][0]["is_downloading"] is False


async def test_port_test_asks_the_peer_port_on_this_machine(tmp_path: Path) -> None:
    async with rpc(tmp_path) as (c, api):
        if api.service.stats().listen_port == 0:  # (no torrent running: no listener yet)
            assert (await c.result("port_test"))["port_is_open"] is False
        t = make_torrent([(("a.bin",), payload(40000, 5))], 16384, name="p")
        await c.result("torrent_add", {"metainfo": base64.b64encode(t.to_bytes()).decode()})
        for _ in range(100):
            if api.service.stats().listen_port:
                break
            await anyio.sleep(0.05)
        answer = await c.result("port_test", {"ip_protocol": "ipv4"})
        assert answer == {"port_is_open": True, "ip_protocol": "ipv4"}
        assert (await c.result("port_test"))["port_is_open"] is True
        bad = await c.call("port_test", {"ip_protocol": "ipx"})
        assert bad["error"]["code"] == -32602 and "ip protocol" in bad["error"]["data"]["error_string"]
        old = await c.post({"method": "port-test", "arguments": {}})
        assert old.json()["result"] == "success" and old.json()["arguments"]["port-is-open"] is True


async def test_errors_are_json_rpc_error_objects(tmp_path: Path) -> None:
    async with rpc(tmp_path) as (c, api):
        r = await c.post(content=b'{"jsonrpc": "2.0", "method": ')
        assert r.json()["error"]["code"] == -32700 and r.json()["id"] is None
        for bad, code in (({"jsonrpc": "1.0", "method": "session_get", "id": 3}, -32600),
                          ({"jsonrpc": "2.0", "method": 5, "id": 3}, -32600),
                          ({"jsonrpc": "2.0", "method": "session_get", "id": {"x": 1}}, -32600),
                          ({"jsonrpc": "2.0", "method": "torrent-get", "id": 3}, -32601),  # (old name)
                          ({"jsonrpc": "2.0", "method": "no_such", "id": 3}, -32601),
                          ({"jsonrpc": "2.0", "method": "session_get", "params": [1], "id": 3}, -32602),
                          ({"jsonrpc": "2.0", "method": "torrent_get", "params": {"fields": "id"}, "id": 3},
                           -32602)):
            answer = (await c.post(bad)).json()
            assert answer["jsonrpc"] == "2.0" and answer["error"]["code"] == code, (bad, answer)
            assert answer["error"]["message"] and answer["id"] in (3, None)
        corrupt = await c.call("torrent_add", {"metainfo": base64.b64encode(b"not bencode").decode()}, "x")
        assert corrupt["error"]["code"] == 9 and corrupt["id"] == "x"  # Transmission's CORRUPT_TORRENT
        assert corrupt["error"]["message"] == "invalid or corrupt torrent file"
        closed = await c.call("session_close")  # (no daemon behind this API: nothing to stop)
        assert "no daemon to stop" in closed["error"]["data"]["error_string"], closed
        data, _ = seeded_torrent()
        tid = (await c.result("torrent_add", {"metainfo": base64.b64encode(data).decode(),
                                              "paused": True}))["torrent_added"]["id"]
        for bad in (5, " padded", "x" * 200):
            grouped = await c.call("torrent_set", {"ids": [tid], "group": bad})
            assert grouped["error"]["code"] == -32602, grouped
            assert grouped["error"]["data"]["error_string"].startswith("group:"), grouped
        outside = await c.call("torrent_set_location", {"ids": [tid], "location": "/", "move": True})
        assert outside["error"]["code"] == -32602 and outside["error"]["data"]["error_string"]
        out_of_range = await c.call("torrent_set", {"ids": [tid], "files_wanted": [7]})
        assert out_of_range["error"]["code"] == 6  # Transmission's FILE_IDX_OOR
        old = await c.post({"method": "session-close", "tag": 4})
        assert old.json() == {"result": old.json()["result"], "arguments": {}, "tag": 4}
        assert "no daemon to stop" in old.json()["result"]


async def test_batches_and_notifications(tmp_path: Path) -> None:
    async with rpc(tmp_path) as (c, api):
        r = await c.post([{"jsonrpc": "2.0", "method": "session_get", "params": {"fields": ["rpc_version"]},
                           "id": 1},
                          {"jsonrpc": "2.0", "method": "session_set",
                           "params": {"speed_limit_up": 70, "speed_limit_up_enabled": True}},
                          {"jsonrpc": "2.0", "method": "no_such", "id": "b"},
                          5,
                          {"method": "session-get", "id": 9}])
        assert r.status_code == 200
        answers = r.json()
        assert answers[0] == {"jsonrpc": "2.0", "result": {"rpc_version": 18}, "id": 1}
        assert answers[1]["error"]["code"] == -32601 and answers[1]["id"] == "b"
        assert answers[2]["error"]["code"] == -32600 and answers[2]["id"] is None  # (not an object)
        assert answers[3]["error"]["code"] == -32600  # (the old protocol is not part of a batch)
        assert len(answers) == 4  # (the notification: run, not answered)
        assert api.service.get_settings().upload_limit == 70_000
        r = await c.post({"jsonrpc": "2.0", "method": "session_set", "params": {"speed_limit_up": 80}})
        assert r.status_code == 204 and r.content == b""  # a notification: no body
        assert api.service.get_settings().upload_limit == 80_000
        r = await c.post([{"jsonrpc": "2.0", "method": "torrent_get", "params": {"fields": ["id"]}},
                          {"jsonrpc": "2.0", "method": "no_such"}])
        assert r.status_code == 204  # (a batch of notifications)
        r = await c.post([])
        assert r.json()["error"]["code"] == -32600  # (an empty batch is one invalid request)


async def test_the_old_protocol_is_answered_as_before(tmp_path: Path) -> None:
    async with rpc(tmp_path) as (c, api):
        fields = ["rpc-version", "rpc-version-semver", "encryption"]
        r = await c.post({"method": "session-get", "arguments": {"fields": fields}, "tag": 3})
        assert r.json() == {"result": "success", "tag": 3,
                            "arguments": {"rpc-version": 17, "rpc-version-semver": "5.3.0",
                                          "encryption": r.json()["arguments"]["encryption"]}}
        assert r.json()["arguments"]["encryption"] in ("preferred", "required", "tolerated")
        r = await c.post({"method": "torrent-get", "arguments": {"fields": "id"}})
        assert r.json()["result"] != "success" and "error" not in r.json()
        r = await c.post({"method": "no-such"})
        assert r.json()["result"].startswith("method name not recognized")
        r = await c.post(content=b'{"method": "session-get", "tag": ')  # (no "jsonrpc": the old answer)
        assert r.json() == {"result": "the request is not JSON", "arguments": {}}
