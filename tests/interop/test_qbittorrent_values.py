"""The values (not only the types: ``test_qbittorrent_types.py``) a real ``qbittorrent-nox`` gives a
paused torrent that has its metadata, against ours: ``torrents/properties``' limits, completion
and last-seen dates (``-1``: none, where ours said ``0``), ``torrents/info``'s and
``torrents/files``' availability (``0`` while it does not run, where ours said ``-1``),
``sync/torrentPeers``' ``show_flags`` (``false`` while peers' countries are not resolved, where
ours said ``true``: a web UI drew a flag without a country on every peer's row), and
``transfer/info``'s ``connection_status`` ("firewalled" until a peer from outside this host and
its network connected, where ours said "connected" whenever it listened)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests.conftest import require_libtorrent
from tests.integration.api_helpers import TOKEN, running_api
from tests.integration.helpers import make_payload, make_torrent
from tests.interop.test_libtorrent_transfer import lt_add, wait_lt
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


async def _downloading(c: httpx.AsyncClient, h: str, seeder: tuple[str, int]) -> dict[str, Any]:
    """``h``'s row, its properties and its one peer's row once it downloads from ``seeder`` (given
    by ``torrents/addPeers``, again while it has no peer), a fifth of it had at least."""
    with anyio.fail_after(60):
        while not (rows := (await c.get("/api/v2/torrents/info")).json()) or rows[0]["num_seeds"] == 0 \
                or rows[0]["progress"] < 0.2:
            if rows and rows[0]["num_seeds"] == 0:
                peer = f"{seeder[0]}:{seeder[1]}"
                await c.post("/api/v2/torrents/addPeers", data={"hashes": h, "peers": peer})
            await anyio.sleep(0.3)
    props = (await c.get("/api/v2/torrents/properties", params={"hash": h})).json()
    peers = (await c.get("/api/v2/sync/torrentPeers", params={"hash": h})).json()["peers"]
    return {"info": rows[0], "props": props, "peer": next(iter(peers.values()))}


async def test_a_download_from_a_seed_shows_what_a_real_qbittorrent_shows_of_it(tmp_path: Path) -> None:
    """Both download one torrent from one libtorrent seed (its upload to loopback held to
    150 kB/s), asked mid-way. Its peer's flags said where it came from alone (qbittorrent-nox: D,
    we download and it unchokes us), its swarm was never seen complete (qbittorrent-nox: now,
    while the seed is connected), and the availability left our own pieces out (libtorrent counts
    them: more than 1 copy with one seed and some pieces had)."""
    lt = require_libtorrent()
    torrent = make_torrent(make_payload(tmp_path / "seed", [("a.bin", 2_000_000), ("b.bin", 500_000)]),
                           piece_length=64 * 1024, version="v1")
    # (TCP and uTP both: qbittorrent-nox's libtorrent dials it over uTP first)
    ses = lt.session({"listen_interfaces": "127.0.0.1:0", "enable_dht": False, "enable_lsd": False,
                      "enable_upnp": False, "enable_natpmp": False,
                      "allow_multiple_connections_per_ip": True})
    ses.set_peer_class(lt.session.local_peer_class_id, {
        "upload_limit": 150_000, "download_limit": 0, "label": "local", "connection_limit_factor": 100,
        "upload_priority": 1, "download_priority": 1, "ignore_unchoke_slots": True})
    handle = lt_add(lt, ses, torrent, tmp_path / "seed")
    await wait_lt(handle, seeding=True)
    seeder = ("127.0.0.1", ses.listen_port())
    add = {"files": {"torrents": ("t.torrent", torrent.to_bytes())}}
    h = torrent.info_hash.hex()
    try:
        with qbittorrent_nox(tmp_path / "qbt") as qbt_url:
            async with httpx.AsyncClient(base_url=qbt_url, timeout=30) as c:
                assert (await c.post("/api/v2/torrents/add", **add)).text == "Ok."
                theirs = await _downloading(c, h, seeder)
                theirs["at"] = time.time()
        async with running_api(tmp_path / "ours") as api:
            async with httpx.AsyncClient(base_url=api.url, timeout=30,
                                         headers={"Authorization": f"Bearer {TOKEN}"}) as c:
                assert (await c.post("/api/v2/torrents/add", **add)).status_code == 200
                ours = await _downloading(c, h, seeder)
                ours["at"] = time.time()
    finally:
        ses.remove_torrent(handle)

    def seen(got: dict[str, Any]) -> list[object]:
        info, props, peer = got["info"], got["props"], got["peer"]
        return [info["state"], info["num_seeds"], info["availability"] > 1,
                abs(info["seen_complete"] - got["at"]) < 5, props["last_seen"] == info["seen_complete"],
                [f for f in peer["flags"].split() if f not in ("E", "e", "P")], peer["relevance"]]

    assert seen(theirs) == ["downloading", 1, True, True, True, ["D"], 1], theirs
    assert seen(ours) == seen(theirs), ours


async def _nothing_wanted(c: httpx.AsyncClient, add: dict[str, Any], *, settle: bool) -> dict[str, Any]:
    """The torrent added paused, then every file of it skipped (priority 0): what a list says."""
    r = await c.post("/api/v2/torrents/add", **add)
    assert r.status_code == 200, r.text
    await _values(c, settle=settle)
    h = (await c.get("/api/v2/torrents/info")).json()[0]["hash"]
    r = await c.post("/api/v2/torrents/filePrio", data={"hash": h, "id": "0|1", "priority": "0"})
    assert r.status_code == 200, r.text
    with anyio.fail_after(30):
        while (row := (await c.get("/api/v2/torrents/info")).json()[0])["size"] != 0:
            await anyio.sleep(0.1)
    return {k: row[k] for k in ("progress", "size", "amount_left", "completed", "state")}


async def test_a_torrent_none_of_whose_files_is_wanted_has_the_values_a_real_qbittorrent_gives_it(
        tmp_path: Path) -> None:
    """Every file skipped: qbittorrent-nox's progress is 0 (nothing wanted is nothing done, as
    libtorrent's ``total_wanted`` 0 reads there); ours said 1."""
    torrent = make_torrent(make_payload(tmp_path / "p", [("a.bin", 70_000), ("b.bin", 50_000)]))
    add = {"files": {"torrents": ("t.torrent", torrent.to_bytes())}, "data": {"paused": "true"}}
    with qbittorrent_nox(tmp_path / "qbt") as qbt_url:
        async with httpx.AsyncClient(base_url=qbt_url, timeout=30) as c:
            theirs = await _nothing_wanted(c, add, settle=True)
    async with running_api(tmp_path / "ours") as api:
        async with httpx.AsyncClient(base_url=api.url, timeout=30,
                                     headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            ours = await _nothing_wanted(c, add, settle=False)
    assert theirs["size"] == 0 and theirs["progress"] == 0  # (compared something)
    # (paused, every wanted piece had: 4.5.2's pausedUP is WebAPI 2.11's stoppedUP, ours)
    assert (theirs.pop("state"), ours.pop("state")) == ("pausedUP", "stoppedUP")
    assert ours == theirs
