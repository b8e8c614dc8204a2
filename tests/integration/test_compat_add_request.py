"""One add, one step, through each door: a Transmission ``torrent-add`` with priorities and
unwanted files, a qBittorrent add to the top of the queue and our API's add with priorities give
a job that has them from its first snapshot (its ``job.added`` event), not after a second call."""

from __future__ import annotations

import base64
from pathlib import Path

import anyio
import pytest

from tests.integration.api_helpers import qbt_added, running_api
from tests.unit.torrent_factory import make_torrent, payload
from torrent_engine.events import Event
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.jobs import JobAdded

pytestmark = pytest.mark.anyio


def three_files(name: str) -> Torrent:
    return make_torrent([(("a.bin",), payload(40000, 1)), (("b.bin",), payload(30000, 2)),
                         (("c.bin",), payload(20000, 3))], 16384, name=name)


async def _flushed() -> None:
    for _ in range(5):
        await anyio.sleep(0)


async def test_a_transmission_add_with_priorities_and_unwanted_files_is_one_step(tmp_path: Path) -> None:
    torrent = three_files("tr")
    async with running_api(tmp_path) as api:
        events: list[Event] = []
        api.service.events.subscribe("*", events.append)
        r = await api.client.post("/transmission/rpc", json={"method": "session-get"})
        sid = r.headers["x-transmission-session-id"]
        add = {"metainfo": base64.b64encode(torrent.to_bytes()).decode(), "paused": True,
               "files-unwanted": [1], "priority-high": [0], "priority-low": [2], "peer-limit": 7}
        r = await api.client.post("/transmission/rpc", headers={"X-Transmission-Session-Id": sid},
                                  json={"method": "torrent-add", "arguments": add})
        assert r.json()["result"] == "success" and "torrent-added" in r.json()["arguments"]
        await _flushed()
        added = [e for e in events if isinstance(e, JobAdded)]
        assert len(added) == 1
        assert [f.priority for f in added[0].job.files] == [7, 0, 1]
        assert added[0].job.total_size == 40000 + 20000 and added[0].job.options.max_peers == 7
        assert [e.name for e in events if e.name == "job.updated"] == []  # (no second call)
        session = api.service.manager.get(torrent.info_hash)
        assert session is not None and session.file_priorities == [7, 0, 1]
        r = await api.client.post("/transmission/rpc", headers={"X-Transmission-Session-Id": sid}, json={
            "method": "torrent-get", "arguments": {"fields": ["priorities", "wanted"]}})
        shown = r.json()["arguments"]["torrents"][0]
        assert shown["priorities"] == [1, 0, -1] and shown["wanted"] in ([1, 0, 1], [True, False, True])


async def test_a_transmission_add_with_a_priority_out_of_range_adds_nothing(tmp_path: Path) -> None:
    torrent = three_files("tr-bad")
    async with running_api(tmp_path) as api:
        r = await api.client.post("/transmission/rpc", json={"method": "session-get"})
        sid = r.headers["x-transmission-session-id"]
        add = {"metainfo": base64.b64encode(torrent.to_bytes()).decode(), "paused": True,
               "files-wanted": [0, 1], "priority-high": [9]}
        r = await api.client.post("/transmission/rpc", headers={"X-Transmission-Session-Id": sid},
                                  json={"method": "torrent-add", "arguments": add})
        assert "no file 9" in r.json()["result"]
        assert api.service.list() == []  # (refused whole: not added and left half-done)


async def test_a_qbittorrent_add_to_the_top_of_the_queue_is_first_from_its_first_snapshot(
        tmp_path: Path) -> None:
    torrents = [three_files(f"q{n}") for n in range(3)]
    async with running_api(tmp_path, config_options={"max_active_downloads": 1}) as api:
        assert api.service.get_settings().queueing
        added: list[JobAdded] = []
        api.service.events.subscribe(JobAdded, added.append)
        for n, torrent in enumerate(torrents):
            r = await api.client.post("/api/v2/torrents/add", data={
                "paused": "true", "addToTopOfQueue": "true" if n == 2 else "false"},
                files={"torrents": (f"{n}.torrent", torrent.to_bytes())})
            qbt_added(r)
        await _flushed()
        assert [e.job.queue_position for e in added] == [1, 2, 1]
        r = await api.client.get("/api/v2/torrents/info", params={"sort": "priority"})
        assert [(t["name"], t["priority"]) for t in r.json()] == [("q2", 1), ("q0", 2), ("q1", 3)]


async def test_our_api_adds_with_priorities_and_at_the_top_in_one_step(tmp_path: Path) -> None:
    torrent = three_files("ours")
    async with running_api(tmp_path, config_options={"max_active_downloads": 1}) as api:
        first = make_torrent([(("x",), payload(5000))], 16384, name="first")
        r = await api.client.post("/api/jobs", json={"source": base64.b64encode(first.to_bytes()).decode(),
                                                    "paused": True})
        assert r.status_code == 201
        added: list[JobAdded] = []
        api.service.events.subscribe(JobAdded, added.append)
        r = await api.client.post("/api/jobs", json={
            "source": base64.b64encode(torrent.to_bytes()).decode(), "paused": True, "files": [0, 2],
            "file_priorities": {"2": 7}, "queue_top": True, "max_peers": 9})
        assert r.status_code == 201, r.text
        await _flushed()
        assert [f["priority"] for f in r.json()["files"]] == [4, 0, 7]
        assert [f.priority for f in added[0].job.files] == [4, 0, 7] and added[0].job.queue_position == 1
        assert added[0].job.options.max_peers == 9
        r = await api.client.post("/api/jobs", json={
            "source": base64.b64encode(three_files("bad").to_bytes()).decode(), "files": [0],
            "file_priorities": {"1": 3}})
        assert r.status_code == 400 and r.json()["field"] == "file_priorities"
