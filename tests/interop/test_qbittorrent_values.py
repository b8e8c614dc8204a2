"""The values (not only the types: ``test_qbittorrent_types.py``) a real ``qbittorrent-nox`` gives a
paused torrent that has its metadata, against ours: ``torrents/properties``' limits, completion
and last-seen dates (``-1``: none, where ours said ``0``), ``torrents/info``'s and
``torrents/files``' availability (``0`` while it does not run, where ours said ``-1``),
``sync/torrentPeers``' ``show_flags`` (``false`` while peers' countries are not resolved, where
ours said ``true``: a web UI drew a flag without a country on every peer's row), and
``transfer/info``'s ``connection_status`` ("firewalled" until a peer from outside this host and
its network connected, where ours said "connected" whenever it listened)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests.integration.api_helpers import TOKEN, running_api
from tests.integration.helpers import make_payload, make_torrent
from tests.interop.test_qbittorrent_types import qbittorrent_nox

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

PROPERTIES = ("dl_limit", "up_limit", "completion_date", "last_seen", "total_wasted", "total_downloaded",
              "total_downloaded_session", "piece_size", "pieces_num", "pieces_have", "total_size")
INFO = ("availability", "downloaded_session", "amount_left", "size", "total_size", "completion_on",
        "seen_complete", "infohash_v1", "infohash_v2")


async def _values(c: httpx.AsyncClient, *, settle: bool = False, state: str | None = None) -> dict[str, Any]:
    """``settle``: qbittorrent-nox answers Ok. before the torrent is there, and says availability
    -1 a moment after (until its torrent is loaded): wait for its settled answer; ``state``: wait
    until the torrent is in it."""
    with anyio.fail_after(30):
        while not (rows := (await c.get("/api/v2/torrents/info")).json()) \
                or settle and rows[0]["availability"] == -1 \
                or state is not None and rows[0]["state"] != state:
            await anyio.sleep(0.1)
    row = rows[0]
    props = (await c.get("/api/v2/torrents/properties", params={"hash": row["hash"]})).json()
    files = (await c.get("/api/v2/torrents/files", params={"hash": row["hash"]})).json()
    peers = (await c.get("/api/v2/sync/torrentPeers", params={"hash": row["hash"]})).json()
    return {**{f"info {k}": row[k] for k in INFO}, **{f"properties {k}": props[k] for k in PROPERTIES},
            "files availability": [f["availability"] for f in files],
            "peers show_flags": peers["show_flags"],  # (its countries resolved: no, on both)
            "transfer connection_status": (await c.get("/api/v2/transfer/info")).json()["connection_status"]}


async def test_a_paused_torrent_has_the_values_a_real_qbittorrent_gives_it(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "p", [("a.bin", 70_000), ("b.bin", 50_000)]))
    add = {"files": {"torrents": ("t.torrent", torrent.to_bytes())}, "data": {"paused": "true"}}
    with qbittorrent_nox(tmp_path / "qbt") as qbt_url:
        async with httpx.AsyncClient(base_url=qbt_url, timeout=30) as c:
            assert (await c.post("/api/v2/torrents/add", **add)).text == "Ok."
            theirs = await _values(c, settle=True)
    async with running_api(tmp_path / "ours") as api:
        async with httpx.AsyncClient(base_url=api.url, timeout=30,
                                     headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            assert (await c.post("/api/v2/torrents/add", **add)).status_code == 200
            ours = await _values(c)
    assert theirs["properties dl_limit"] == theirs["properties completion_date"] == -1  # (compared something)
    assert theirs["files availability"] == [0, 0]
    assert theirs["transfer connection_status"] == "firewalled"  # (no peer from outside; ours: "connected")
    assert {k: v for k, v in ours.items() if v != theirs[k]} == {}, theirs


async def test_a_torrent_seeding_what_was_there_has_the_values_a_real_qbittorrent_gives_it(
        tmp_path: Path) -> None:
    """Its data whole in the save path at the add: checked, it seeds, with no peer. Its swarm was
    never seen complete (``seen_complete`` 0, ``last_seen`` -1: ours said when it completed
    itself), the dates of the add and of its completion aside."""
    files = [("a.bin", 70_000), ("b.bin", 50_000)]
    torrent = make_torrent(make_payload(tmp_path / "qbt" / "downloads", files))
    make_payload(tmp_path / "ours" / "downloads", files)
    add = {"files": {"torrents": ("t.torrent", torrent.to_bytes())}}
    with qbittorrent_nox(tmp_path / "qbt") as qbt_url:
        async with httpx.AsyncClient(base_url=qbt_url, timeout=30) as c:
            assert (await c.post("/api/v2/torrents/add", **add)).text == "Ok."
            theirs = await _values(c, state="stalledUP")
    async with running_api(tmp_path / "ours") as api:
        async with httpx.AsyncClient(base_url=api.url, timeout=30,
                                     headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            assert (await c.post("/api/v2/torrents/add", **add)).status_code == 200
            ours = await _values(c, state="stalledUP")
    dates = ("info completion_on", "properties completion_date")
    assert all(theirs[k] > 0 and ours[k] > 0 for k in dates)  # (when each completed: at its add)
    assert (theirs["info seen_complete"], theirs["properties last_seen"]) == (0, -1)
    assert {k: (theirs[k], v) for k, v in ours.items() if v != theirs[k] and k not in dates} == {}
