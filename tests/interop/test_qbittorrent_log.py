"""``log/main`` and ``log/peers`` against a real ``qbittorrent-nox`` on 127.0.0.1: the same calls
to both (an address banned, peers on privileged ports blocked, a torrent added, peers added that
the filters refuse), then the same peer log, the same fields of the same kinds in the main log,
and the same reading of ``last_known_id`` and the level fields."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests.integration.api_helpers import TOKEN, running_api
from tests.interop.test_qbittorrent_types import qbittorrent_nox, type_differences
from tests.unit.torrent_factory import make_torrent, payload
from torrent_engine.logbook import LogBook

pytestmark = [pytest.mark.interop, pytest.mark.anyio]

PEERS = "127.0.0.9:6881|127.0.0.10:80|127.0.0.11:6000"  # banned; a privileged port; neither


async def _logs(c: httpx.AsyncClient, data: bytes, info_hash: str) -> dict[str, Any]:
    r = await c.post("/api/v2/app/setPreferences", data={"json": json.dumps(
        {"banned_IPs": "127.0.0.9", "block_peers_on_privileged_ports": True})})
    assert r.status_code == 200, r.text
    r = await c.post("/api/v2/torrents/add", files={"torrents": ("t.torrent", data)})
    assert r.status_code == 200, r.text
    with anyio.fail_after(30):
        while not (await c.get("/api/v2/torrents/info", params={"hashes": info_hash})).json():
            await anyio.sleep(0.1)
    r = await c.post("/api/v2/torrents/addPeers", data={"hashes": info_hash, "peers": PEERS})
    assert r.status_code == 200, r.text
    with anyio.fail_after(30):
        while len((await c.get("/api/v2/log/peers")).json()) < 2:
            await anyio.sleep(0.1)
    await anyio.sleep(0.5)  # (a third refusal, were there one, in time to be seen)
    out = {"peers": (await c.get("/api/v2/log/peers")).json(),
           "peers after 0": (await c.get("/api/v2/log/peers", params={"last_known_id": "0"})).json(),
           "main": (await c.get("/api/v2/log/main")).json()}
    last = out["main"][-1]["id"]
    for name, params in (("not a number", {"last_known_id": "abc"}), ("below -1", {"last_known_id": "-5"}),
                         ("maybe", {"normal": "maybe"}), ("after the last", {"last_known_id": str(last)}),
                         ("no normal", {"normal": "false"}),
                         ("normal only", {"info": "false", "warning": "FALSE", "critical": "false"})):
        out[name] = (await c.get("/api/v2/log/main", params=params)).json()
    return out


async def test_the_logs_read_as_a_real_qbittorrent_s(tmp_path: Path) -> None:
    t = make_torrent([(("a.bin",), payload(40000, 3))], 16384, name="logged")
    data, info_hash = t.to_bytes(), t.info_hash.hex()
    with qbittorrent_nox(tmp_path / "qbt") as qbt_url:
        async with httpx.AsyncClient(base_url=qbt_url, timeout=30) as c:
            theirs = await _logs(c, data, info_hash)
    book = LogBook()
    with book.capturing(logging.getLogger("torrent_engine")):
        async with running_api(tmp_path / "ours", logbook=book) as api:
            async with httpx.AsyncClient(base_url=api.url, timeout=30,
                                         headers={"Authorization": f"Bearer {TOKEN}"}) as c:
                ours = await _logs(c, data, info_hash)

    def peers(entries: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return [(p["id"], p["ip"], p["blocked"], p["reason"]) for p in entries]

    assert peers(ours["peers"]) == peers(theirs["peers"]) == [
        (0, "127.0.0.9", True, "IP filter"), (1, "127.0.0.10", True, "port filter")]
    assert peers(ours["peers after 0"]) == peers(theirs["peers after 0"])
    for side in (theirs, ours):
        assert {frozenset(e) for e in side["peers"]} == {frozenset({"id", "ip", "timestamp", "blocked",
                                                                    "reason"})}
        assert {frozenset(e) for e in side["main"]} == {frozenset({"id", "message", "timestamp", "type"})}
        assert [e["id"] for e in side["main"]] == list(range(len(side["main"])))
        added = [e for e in side["main"] if "logged" in e["message"] and e["message"].startswith("Added")]
        assert [e["type"] for e in added] == [1], side["main"]
        everything = len(side["main"])
        assert len(side["not a number"]) == len(side["below -1"]) == len(side["maybe"]) >= everything
        assert side["after the last"] == []
        assert all(e["type"] != 1 for e in side["no normal"])  # (ours, in process: no line but the add's)
        assert [e for e in side["main"] if e["type"] == 1] == side["normal only"]
        assert added[0] in side["normal only"]
    differences = type_differences(theirs["main"][0], ours["main"][0], "log/main") + \
        type_differences(theirs["peers"][0], ours["peers"][0], "log/peers")
    assert differences == [], differences
