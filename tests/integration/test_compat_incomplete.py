"""The incomplete folder through our API, qBittorrent's WebAPI and Transmission's RPC: set as
each client sets it, a real download from a seeder on loopback lands there, then moves to its
save path once complete and seeds from there; a restart keeps the setting."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests.integration.api_helpers import TOKEN, qbt_added, running_api
from tests.integration.helpers import loopback_config, make_payload, make_torrent, same_files
from torrent_engine.session import Session

pytestmark = pytest.mark.anyio

FILES = (("big.bin", 1_500_000), ("small.bin", 20_000))
SLOW_SEEDER = loopback_config(upload_rate_limit=500_000)  # (the download lasts a few seconds)


def files_under(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


async def follow(get: Any, done: Any) -> list[Any]:
    """What ``get()`` answered, each time it changed, until ``done`` of it."""
    seen: list[Any] = []
    with anyio.fail_after(90):
        while True:
            now = await get()
            if not seen or seen[-1] != now:
                seen.append(now)
            if done(now):
                return seen
            await anyio.sleep(0.05)


async def test_qbittorrent_temp_path_a_download_lands_there_then_moves_and_seeds(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed", FILES, name="show"), piece_length=64 * 1024)
    async with Session(torrent, tmp_path / "seed", config=SLOW_SEEDER) as seeder:
        await seeder.wait_ready()
        async with running_api(tmp_path) as api:
            root = api.download_root.resolve()
            async with httpx.AsyncClient(base_url=api.url + "/api/v2", timeout=30,
                                         headers={"Authorization": f"Bearer {TOKEN}"}) as c:
                r = await c.post("/app/setPreferences", data={"json": json.dumps(
                    {"temp_path_enabled": True, "temp_path": "part"})})
                assert r.status_code == 200, r.text
                prefs = (await c.get("/app/preferences")).json()
                assert (prefs["temp_path_enabled"], prefs["temp_path"]) == (True, str(root / "part"))
                r = await c.post("/torrents/add", data={"savepath": "tv"},
                                 files={"torrents": ("show.torrent", torrent.to_bytes())})
                qbt_added(r)
                info_hash = torrent.info_hash.hex()
                r = await c.post("/torrents/addPeers", data={"hashes": info_hash,
                                                            "peers": f"127.0.0.1:{seeder.listen_port}"})
                assert r.status_code == 200, r.text

                async def info() -> tuple[str, str, str, bool, list[str], list[str]]:
                    t = (await c.get("/torrents/info", params={"hashes": info_hash})).json()[0]
                    return (t["download_path"], t["save_path"], t["content_path"], t["progress"] == 1,
                            files_under(root / "part"), files_under(root / "tv"))

                def seeds_from_the_save_path(now: tuple[str, str, str, bool, list[str], list[str]]) -> bool:
                    session = api.service.manager.get(info_hash)  # (the move over: its session there)
                    return (now[0] == "" and now[3] and now[4] == [] and session is not None
                            and Path(session.save_path) == root / "tv")

                seen = await follow(info, seeds_from_the_save_path)
                # (downloading: before the job leaves its incomplete folder. Once moved, its
                # session starts again at the save path and shows 0 % until it has read its
                # resume data: those answers are not the download's)
                moved = next(i for i, s in enumerate(seen) if s[0] == "")
                while_downloading = [s for s in seen[:moved] if not s[3]]
                assert while_downloading, seen
                for s in while_downloading:  # its data in the incomplete folder, none at the save path
                    assert s[:3] == (str(root / "part"), str(root / "tv"), str(root / "part" / "show"))
                    assert s[5] == []
                assert any(s[4] for s in while_downloading)
                assert seen[-1][1:3] == (str(root / "tv"), str(root / "tv" / "show"))
                assert same_files(torrent, tmp_path / "seed", root / "tv") == []
                state = (await c.get("/torrents/info", params={"hashes": info_hash})).json()[0]["state"]
                assert state in ("uploading", "stalledUP")  # it seeds from the save path
                with anyio.fail_after(10):  # (its record says it moved as its session starts there)
                    while (session := api.service.manager.get(info_hash)) is None:
                        await anyio.sleep(0.02)
                assert Path(session.save_path) == root / "tv"
        async with running_api(tmp_path) as api, httpx.AsyncClient(
                base_url=api.url + "/api/v2", headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            prefs = (await c.get("/app/preferences")).json()
            assert (prefs["temp_path_enabled"], prefs["temp_path"]) == (True, str(root / "part"))
            bad = await c.post("/app/setPreferences", data={"json": json.dumps({"temp_path": "/etc"})})
            assert bad.status_code == 400 and "incomplete_dir" in bad.text
            added = await c.post("/torrents/add", data={"urls": "magnet:?xt=urn:btih:" + "d" * 40,
                                                        "useDownloadPath": "true", "downloadPath": "mine",
                                                        "paused": "true"})
            qbt_added(added)
            t = (await c.get("/torrents/info", params={"hashes": "d" * 40})).json()[0]
            assert t["download_path"] == str(root / "mine")
            r = await c.post("/torrents/setDownloadPath", data={"id": "d" * 40, "path": "elsewhere"})
            assert r.status_code == 200, r.text
            t = (await c.get("/torrents/info", params={"hashes": "d" * 40})).json()[0]
            assert t["download_path"] == str(root / "elsewhere")


async def test_transmission_incomplete_dir_a_download_lands_there_then_moves(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed", FILES, name="film"), piece_length=64 * 1024)
    async with Session(torrent, tmp_path / "seed", config=SLOW_SEEDER) as seeder:
        await seeder.wait_ready()
        async with running_api(tmp_path) as api:
            root = api.download_root.resolve()
            async with httpx.AsyncClient(base_url=api.url, timeout=30, auth=("u", TOKEN)) as c:
                sid = (await c.post("/transmission/rpc", json={"method": "session-get"})).headers[
                    "x-transmission-session-id"]
                c.headers["X-Transmission-Session-Id"] = sid

                async def rpc(method: str, **arguments: Any) -> dict[str, Any]:
                    r = await c.post("/transmission/rpc", json={"method": method, "arguments": arguments})
                    answer: dict[str, Any] = r.json()
                    assert answer["result"] == "success", answer
                    return answer["arguments"]  # type: ignore[no-any-return]

                await rpc("session-set", **{"incomplete-dir-enabled": True, "incomplete-dir": "tmp"})
                s = await rpc("session-get", fields=["incomplete-dir-enabled", "incomplete-dir"])
                assert s == {"incomplete-dir-enabled": True, "incomplete-dir": str(root / "tmp")}
                added = await rpc("torrent-add", metainfo=base64.b64encode(torrent.to_bytes()).decode(),
                                  **{"download-dir": "films"})
                number = added["torrent-added"]["id"]
                # (Transmission's RPC names no peer: the seeder is given through the service)
                job_id = api.service.by_number(number).id
                await api.service.add_peers(job_id, [("127.0.0.1", seeder.listen_port)])

                async def get() -> tuple[str, float, list[str], list[str], tuple[int, ...]]:
                    t = (await rpc("torrent-get", ids=[number],
                                   fields=["downloadDir", "percentDone", "availability"]))
                    one = t["torrents"][0]
                    return one["downloadDir"], one["percentDone"], files_under(root / "tmp"), \
                        files_under(root / "films"), tuple(one["availability"])

                seen = await follow(get, lambda now: now[1] == 1 and now[2] == [] and now[3] != [])
                assert all(s[0] == str(root / "films") for s in seen)  # the final folder, throughout
                # (4.1's availability: the one peer's pieces counted, -1 those verified here; none
                # while the move to its folder has no session)
                assert all(len(s[4]) in (0, torrent.num_pieces) and set(s[4]) <= {-1, 0, 1} for s in seen)
                assert any(1 in s[4] and -1 in s[4] for s in seen)
                with anyio.fail_after(10):  # (its session at its folder: every piece its own)
                    while (await get())[4] != (-1,) * torrent.num_pieces:
                        await anyio.sleep(0.05)
                assert any(s[2] and not s[3] for s in seen if s[1] < 1)  # it downloaded into tmp
                assert same_files(torrent, tmp_path / "seed", root / "films") == []
        async with running_api(tmp_path) as api, httpx.AsyncClient(base_url=api.url, auth=("u", TOKEN)) as c:
            sid = (await c.post("/transmission/rpc", json={"method": "session-get"})).headers[
                "x-transmission-session-id"]
            call = {"method": "session-get", "arguments": {"fields": ["incomplete-dir-enabled"]}}
            r = await c.post("/transmission/rpc", headers={"X-Transmission-Session-Id": sid}, json=call)
            assert r.json()["arguments"] == {"incomplete-dir-enabled": True}



async def test_our_api_takes_an_add_s_download_path_and_names_a_bad_folder(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        root = api.download_root.resolve()
        c = api.client
        r = await c.post("/api/jobs", json={"source": "magnet:?xt=urn:btih:" + "a" * 40, "paused": True,
                                            "download_path": "mine"})
        assert r.status_code == 201, r.text
        assert r.json()["options"]["download_path"] == str(root / "mine")
        for bad in (5, "../outside"):
            r = await c.post("/api/jobs", json={"source": "magnet:?xt=urn:btih:" + "b" * 40,
                                                "download_path": bad})
            assert (r.status_code, r.json()["field"]) == (400, "download_path"), r.text
        r = await c.patch("/api/settings", json={"upload_limit": 1000, "incomplete_dir": "/etc"})
        assert (r.status_code, r.json()["field"]) == (400, "incomplete_dir"), r.text
        settings = (await c.get("/api/settings")).json()
        assert (settings["upload_limit"], settings["incomplete_dir"]) == (0, "")  # nothing half-applied
