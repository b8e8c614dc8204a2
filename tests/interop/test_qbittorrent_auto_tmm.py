"""Automatic torrent management against a real ``qbittorrent-nox`` on 127.0.0.1: the same calls
(``setAutoManagement``, ``setCategory``, ``editCategory``, ``setLocation``, an add that follows
the preference ``auto_tmm_enabled``) made to both, and after each where the torrent is saved,
relative to the default save path (ours: the download root), whether it is managed, and whether
its data is there. ``setAutoManagement enable=true`` was a 400 here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests.integration.api_helpers import TOKEN, running_api
from tests.interop.test_qbittorrent_types import qbittorrent_nox
from tests.unit.torrent_factory import make_torrent, payload

pytestmark = [pytest.mark.interop, pytest.mark.anyio]

FIRST = make_torrent([(("a.bin",), payload(40000, 3)), (("b.bin",), payload(30000, 4))], 16384, name="auto")
SECOND = make_torrent([(("c.bin",), payload(20000, 5))], 16384, name="later")
Seen = tuple[str, bool, str, bool]  # the step, auto_tmm, the save path relative to the root, data there
# Where qbittorrent-nox 4.5.2 does otherwise, on purpose: a category's save path edited with
# category_changed_tmm_enabled off ("switch affected torrents to manual mode") switches its
# torrents to manual mode and moves them to the new path all the same (its
# TorrentImpl::setAutoTMMEnabled(false) takes the category's path as it is now); ours stay where
# they are, as the setting says.
THEIRS = {"category's path edited": ("category's path edited", False, "films2", True)}


async def _observe(c: httpx.AsyncClient, root: Path, step: str, info_hash: str) -> Seen:
    r = await c.get("/api/v2/torrents/info", params={"hashes": info_hash})
    assert r.status_code == 200, r.text
    found = r.json()
    if not found:
        return step, False, "(not there)", False
    info = found[0]
    where = Path(info["save_path"])
    relative = where.relative_to(root).as_posix() if where.is_relative_to(root) else str(where)
    data = (where / "auto" / "a.bin").is_file() if info_hash == FIRST.info_hash.hex() else True
    return step, bool(info["auto_tmm"]), relative, data


async def _post(c: httpx.AsyncClient, method: str, **form: Any) -> None:
    r = await c.post(f"/api/v2/{method}", data=form)
    assert r.status_code == 200, (method, form, r.status_code, r.text)


async def _drive(c: httpx.AsyncClient, root: Path, expected: list[Seen] | None) -> list[Seen]:
    """The calls, each observed; with ``expected`` (ours), each observation is waited for (a move
    in qbittorrent-nox is finished after its answer) up to 15 s."""
    seen: list[Seen] = []
    first = FIRST.info_hash.hex()

    async def step(name: str, info_hash: str = first) -> None:
        want = expected[len(seen)] if expected is not None else None
        got = await _observe(c, root, name, info_hash)
        with anyio.move_on_after(15):
            while want is not None and got != want:
                await anyio.sleep(0.2)
                got = await _observe(c, root, name, info_hash)
        seen.append(got)

    (root / "old" / "auto").mkdir(parents=True)
    (root / "old" / "auto" / "a.bin").write_bytes(payload(40000, 3))
    (root / "old" / "auto" / "b.bin").write_bytes(payload(30000, 4))
    await _post(c, "torrents/createCategory", category="tv", savePath="")
    await _post(c, "torrents/createCategory", category="movies", savePath=str(root / "films"))
    r = await c.post("/api/v2/torrents/add", files={"torrents": ("a.torrent", FIRST.to_bytes())},
                     data={"savepath": str(root / "old"), "category": "tv", "paused": "true",
                           "autoTMM": "false"})
    assert r.status_code == 200, r.text
    await step("added by hand")
    await _post(c, "torrents/setAutoManagement", hashes=first, enable="true")
    await step("managed")
    await _post(c, "torrents/setCategory", hashes=first, category="movies")
    await step("category changed")
    await _post(c, "torrents/editCategory", category="movies", savePath=str(root / "films2"))
    await step("category's path edited")
    await _post(c, "torrents/setAutoManagement", hashes=first, enable="true")
    await step("managed again")
    await _post(c, "torrents/setCategory", hashes=first, category="")
    await step("no category")
    await _post(c, "torrents/setLocation", hashes=first, location=str(root / "mine"))
    await step("a location by hand")
    await _post(c, "app/setPreferences", json=json.dumps({"auto_tmm_enabled": True}))
    r = await c.post("/api/v2/torrents/add", files={"torrents": ("b.torrent", SECOND.to_bytes())},
                     data={"savepath": str(root / "ignored"), "category": "tv", "paused": "true"})
    assert r.status_code == 200, r.text
    await step("added after auto_tmm_enabled", SECOND.info_hash.hex())
    prefs = (await c.get("/api/v2/app/preferences")).json()
    seen.append(("preferences", prefs["auto_tmm_enabled"], json.dumps(
        [prefs["torrent_changed_tmm_enabled"], prefs["category_changed_tmm_enabled"]]), True))
    return seen


async def test_automatic_torrent_management_moves_torrents_as_a_real_qbittorrent_does(tmp_path: Path) -> None:
    async with running_api(tmp_path / "ours") as api:
        root = api.download_root.resolve()
        async with httpx.AsyncClient(base_url=api.url, timeout=30,
                                     headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            ours = await _drive(c, root, None)
    with qbittorrent_nox(tmp_path / "qbt") as qbt_url:
        async with httpx.AsyncClient(base_url=qbt_url, timeout=30) as c:
            root = (tmp_path / "qbt" / "downloads").resolve()
            theirs = await _drive(c, root, [THEIRS.get(seen[0], seen) for seen in ours])
    assert [THEIRS.get(seen[0], seen) for seen in ours] == theirs
    assert [s[1:3] for s in ours[:7]] == [
        (False, "old"), (True, "tv"), (True, "films"), (False, "films"), (True, "films2"), (True, "."),
        (False, "mine")]
