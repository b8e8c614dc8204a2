"""A hybrid torrent (pad files between its files) as a real ``qbittorrent-nox`` and our daemon
number it: ``torrents/files`` gives each file its place among the files with pad files left out
(ours gave the metainfo's index, 0, 2, 4), ``torrents/filePrio`` names a file by that place, and
``infohash_v2`` is the whole v2 info-hash (ours was ``""``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests.integration.helpers import make_payload, make_torrent
from tests.interop.test_qbittorrent_types import asked_of_both

pytestmark = [pytest.mark.anyio, pytest.mark.interop]


async def _numbered(c: httpx.AsyncClient, v1: str) -> dict[str, Any]:
    """The torrent's files before and after ``filePrio`` of its second file, and its v2 hash.
    (``v1``: its v1 info-hash; the client's ``hash`` is read from the list: a real qBittorrent
    names a hybrid by its v2 info-hash, truncated.)"""
    with anyio.fail_after(30):  # (qbittorrent-nox answers Ok. before the torrent is there)
        while not (listed := (await c.get("/api/v2/torrents/info")).json()):
            await anyio.sleep(0.1)
    row = listed[0]
    assert row["infohash_v1"] == v1
    h = row["hash"]

    async def files() -> list[tuple[int, str, int]]:
        r = await c.get("/api/v2/torrents/files", params={"hash": h})
        assert r.status_code == 200, r.text
        return [(f["index"], f["name"], f["priority"]) for f in r.json()]

    before = await files()
    r = await c.post("/api/v2/torrents/filePrio", data={"hash": h, "id": "1", "priority": "0"})
    assert r.status_code == 200, r.text
    one = await c.get("/api/v2/torrents/files", params={"hash": h, "indexes": "2"})
    return {"before": before, "after": await files(), "infohash_v2": row["infohash_v2"],
            "index 2": [(f["index"], f["name"]) for f in one.json()]}


async def test_a_hybrid_torrents_files_are_numbered_as_a_real_qbittorrent_does(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "p", [("a.bin", 70_000), ("b.bin", 50_000), ("c.bin", 9)]))
    assert sum(f.pad for f in torrent.files) == 2 and torrent.info_hash_v1 is not None
    assert torrent.info_hash_v2 is not None
    v1 = torrent.info_hash_v1.hex()
    add = {"files": {"torrents": ("t.torrent", torrent.to_bytes())}, "data": {"paused": "true"}}
    theirs, ours = await asked_of_both(tmp_path, add, lambda c: _numbered(c, v1))
    assert theirs["before"] == [(0, "payload/a.bin", 1), (1, "payload/b.bin", 1), (2, "payload/c.bin", 1)]
    assert theirs["after"][1] == (1, "payload/b.bin", 0)
    assert theirs["infohash_v2"] == torrent.info_hash_v2.hex()
    assert ours == theirs
