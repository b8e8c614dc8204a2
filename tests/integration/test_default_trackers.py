"""Trackers added to every new torrent that is not private (qBittorrent's "automatically add these
trackers to new downloads", Transmission's ``default-trackers``): set through both dialects and our
API, kept in each new job's trackers after its own, announced to; never a private torrent's."""

from __future__ import annotations

import base64
from pathlib import Path

import anyio
import anyio.abc
import httpx
import pytest

from tests.conftest import require_module
from tests.integration.api_helpers import TOKEN, running_api
from tests.integration.helpers import make_payload
from tests.unit.tracker._tracker_servers import HttpRequest, announce_body, http_response, http_tracker
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.jobs import JobState
from torrent_engine.storage.create import create_torrent

pytestmark = pytest.mark.anyio

TRACKERS = {"tracker_enabled": True}


async def answer(request: HttpRequest, stream: anyio.abc.ByteStream) -> None:
    await stream.send(http_response(announce_body(interval=1800)))


def announced(server: object) -> set[str]:
    """The info-hashes a fake tracker was announced to, in hex."""
    return {h.hex() for r in server.requests for h in r.query().get("info_hash", [])}  # type: ignore[attr-defined]


def on_disk(root: Path, name: str, own: str, *, private: bool = False) -> Torrent:
    """A torrent whose data is in the download folder (it seeds once checked), announcing to ``own``."""
    return create_torrent(make_payload(root, ((f"{name}.bin", 40_000),), name=name), version="v1",
                          trackers=[own], private=private)


async def test_qbittorrent_add_trackers_reach_new_public_torrents_and_never_a_private_one(
        tmp_path: Path) -> None:
    qbittorrentapi = require_module("qbittorrentapi")
    root = tmp_path / "downloads"
    async with http_tracker(answer) as own, http_tracker(answer) as first, http_tracker(answer) as second:
        mine, one, two = (f"http://127.0.0.1:{t.port}/announce" for t in (own, first, second))
        public, private = on_disk(root, "public", mine), on_disk(root, "private", mine, private=True)
        before = on_disk(root, "before", mine)
        async with running_api(tmp_path, config_options=TRACKERS) as api:
            def drive() -> tuple[dict[str, object], list[list[str]], str]:
                qbt = qbittorrentapi.Client(host=api.url, username="admin", password=TOKEN,
                                            REQUESTS_ARGS={"timeout": 30})
                qbt.torrents_add(torrent_files=before.to_bytes())  # (before the setting: none added)
                qbt.app_set_preferences({"add_trackers_enabled": True, "add_trackers": f"{one}\n\n{two}\n"})
                prefs = qbt.app_preferences()
                with pytest.raises(qbittorrentapi.InvalidRequest400Error, match="add_trackers"):
                    qbt.app_set_preferences({"add_trackers": "ftp://127.0.0.1/announce"})
                qbt.torrents_add(torrent_files=[public.to_bytes(), private.to_bytes()])
                rows = [[t.url for t in qbt.torrents_trackers(torrent_hash=t.info_hash.hex())
                         if not t.url.startswith("** [")] for t in (public, private, before)]
                qbt.app_set_preferences({"add_trackers_enabled": False})
                return {k: prefs[k] for k in ("add_trackers_enabled", "add_trackers", "announce_to_all_tiers",
                                              "announce_to_all_trackers")}, rows, \
                    str(qbt.app_preferences()["add_trackers"])

            prefs, rows, kept = await anyio.to_thread.run_sync(drive)
            assert prefs == {"add_trackers_enabled": True, "add_trackers": f"{one}\n{two}",
                             "announce_to_all_tiers": True, "announce_to_all_trackers": False}
            assert rows == [[mine, one, two], [mine], [mine]]  # (after its own; none to the private one)
            assert kept == f"{one}\n{two}"  # (turned off, kept)
            with anyio.fail_after(20):  # (each new public torrent announced to them)
                while not {public.info_hash.hex()} <= announced(first) & announced(second):
                    await anyio.sleep(0.02)
            with anyio.fail_after(20):
                while not {j.state for j in api.service.list()} == {JobState.SEEDING}:
                    await anyio.sleep(0.02)
            with anyio.fail_after(20):  # (seeding once checked; its announce follows)
                while private.info_hash.hex() not in announced(own):
                    await anyio.sleep(0.02)
            assert private.info_hash.hex() not in announced(first) | announced(second)
            assert before.info_hash.hex() not in announced(first) | announced(second)


async def test_transmission_default_trackers_are_tiers_and_reach_a_magnet(tmp_path: Path) -> None:
    one, two, three = ("http://127.0.0.1:9/a", "udp://127.0.0.1:9/b", "http://127.0.0.1:9/c")
    async with running_api(tmp_path) as api:
        async with httpx.AsyncClient(base_url=api.url, timeout=30, auth=("u", TOKEN)) as c:
            c.headers["X-Transmission-Session-Id"] = (await c.post(
                "/transmission/rpc", json={"method": "session-get"})).headers["x-transmission-session-id"]

            async def rpc(method: str, **arguments: object) -> dict[str, object]:
                r = await c.post("/transmission/rpc", json={"method": method, "arguments": arguments})
                return r.json()  # type: ignore[no-any-return]

            got = await rpc("session-get", fields=["default-trackers"])
            assert got["arguments"] == {"default-trackers": ""}
            text = f"{one}\n{two}\n\n{three}"
            assert (await rpc("session-set", **{"default-trackers": text}))["result"] == "success"
            got = await rpc("session-get", fields=["default-trackers"])
            assert got["arguments"] == {"default-trackers": text}
            bad = await rpc("session-set", **{"default-trackers": "not a url"})
            assert bad["result"] != "success" and "default-trackers" in str(bad["result"])
            magnet = "magnet:?xt=urn:btih:" + "c" * 40 + "&dn=m&tr=http://127.0.0.1:9/own"
            added = await rpc("torrent-add", filename=magnet, paused=True)
            number = added["arguments"]["torrent-added"]["id"]  # type: ignore[index]
            row = await rpc("torrent-get", ids=[number], fields=["trackerList"])
            assert row["arguments"]["torrents"][0]["trackerList"] == (  # type: ignore[index]
                f"http://127.0.0.1:9/own\n\n{one}\n{two}\n\n{three}")
            assert (await rpc("session-set", **{"default-trackers": ""}))["result"] == "success"
            assert api.service.get_settings().default_trackers_enabled is False
            metainfo = base64.b64encode(on_disk(api.download_root, "later", one).to_bytes()).decode()
            added = await rpc("torrent-add", metainfo=metainfo, paused=True)
            number = added["arguments"]["torrent-added"]["id"]  # type: ignore[index]
            row = await rpc("torrent-get", ids=[number], fields=["trackerList"])
            assert row["arguments"]["torrents"][0]["trackerList"] == one  # type: ignore[index]


async def test_our_api_takes_default_trackers_as_tiers_and_names_a_bad_one(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        for bad in ("http://127.0.0.1/a", ["http://127.0.0.1/a"], [["ftp://127.0.0.1/a"]], [[5]]):
            r = await api.client.patch("/api/settings", json={"default_trackers": bad})
            assert r.status_code == 400 and r.json()["field"] == "default_trackers", (bad, r.text)
        tiers = [["udp://127.0.0.1:9/a", "udp://127.0.0.1:9/a"], [], ["http://127.0.0.1:9/b"]]
        r = await api.client.patch("/api/settings", json={"default_trackers": tiers,
                                                          "default_trackers_enabled": True})
        assert r.status_code == 200, r.text
        assert r.json()["default_trackers"] == [["udp://127.0.0.1:9/a"], ["http://127.0.0.1:9/b"]]
        job, _ = await api.service.add("magnet:?xt=urn:btih:" + "d" * 40, paused=True)
        assert [t.url for t in job.trackers] == ["udp://127.0.0.1:9/a", "http://127.0.0.1:9/b"]
        assert api.service.tracker_tiers(job.id) == (("udp://127.0.0.1:9/a",), ("http://127.0.0.1:9/b",))
    async with running_api(tmp_path) as again:  # (kept across a restart)
        assert again.service.get_settings().default_trackers == (("udp://127.0.0.1:9/a",),
                                                                 ("http://127.0.0.1:9/b",))
