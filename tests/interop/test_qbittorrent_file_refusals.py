"""``torrents/filePrio`` and ``torrents/files`` refuse what does not name a file as a real
``qbittorrent-nox`` does, status and words, the first wrong entry judged: an ``id`` that is empty
or not an integer is a ``400`` ("File IDs must be integers"; ours was a ``409``, or took ``1.5``
as ``1``), one out of range a ``409``; an ``indexes`` entry that is not an integer of 0 or more is
a ``409`` naming it (ours was a ``400``, and took ``1.5`` as ``1`` and ``0|`` as ``0``)."""

from __future__ import annotations

from pathlib import Path

import anyio
import httpx
import pytest

from tests.integration.helpers import make_payload, make_torrent
from tests.interop.test_qbittorrent_types import asked_of_both

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

PRIO_IDS = ["", "x", "1.5", "0|x", "-1", "2", "0|2", "0| 1", "1"]
INDEXES = ["a", "-1", "2", "1.5", "0|", "", "2|x", "0|1", " 1"]


async def _answers(c: httpx.AsyncClient, h: str) -> list[tuple[str, int, str]]:
    with anyio.fail_after(30):  # (qbittorrent-nox answers Ok. before the torrent is there)
        while not (await c.get("/api/v2/torrents/info")).json():
            await anyio.sleep(0.1)
    said = []
    for ids in PRIO_IDS:
        r = await c.post("/api/v2/torrents/filePrio", data={"hash": h, "id": ids, "priority": "0"})
        said.append((f"filePrio id={ids!r}", r.status_code, r.text))
    r = await c.post("/api/v2/torrents/filePrio", data={"hash": h, "priority": "0"})
    said.append(("filePrio without id", r.status_code, ""))  # (4.5.2: "Bad Request"; 5.x names it)
    for indexes in INDEXES:
        r = await c.get("/api/v2/torrents/files", params={"hash": h, "indexes": indexes})
        said.append((f"files indexes={indexes!r}", r.status_code, r.text if r.status_code != 200 else
                     str([f["index"] for f in r.json()])))
    return said


async def test_file_operations_refuse_what_names_no_file_as_a_real_qbittorrent_does(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "p", [("a.bin", 70_000), ("b.bin", 50_000)]), version="v1")
    h = torrent.info_hash.hex()
    add = {"files": {"torrents": ("t.torrent", torrent.to_bytes())}, "data": {"paused": "true"}}
    theirs, ours = await asked_of_both(tmp_path, add, lambda c: _answers(c, h))
    assert ("filePrio id='1'", 200, "") in theirs  # (compared something)
    assert ours == theirs
