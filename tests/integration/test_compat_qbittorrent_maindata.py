"""``sync/maindata``'s fields of WebAPI 2.10–2.16 (issue 45): real values where the job service
knows them (the metainfo's facts are kept in the job's record, so a restart shows them without
reading a .torrent), qBittorrent's neutral values where it does not; read by ``qbittorrent-api``."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.conftest import require_module
from tests.integration.api_helpers import qbt_added, running_api
from tests.integration.test_compat_qbittorrent_webapi216 import MAGNET, client_of, five_pieces

pytestmark = pytest.mark.anyio

NEW_SERVER_FIELDS = {"last_external_address_v4": "", "last_external_address_v6": "",
                     "request_latency": 0, "queued_tracker_announces": 0}


def maindata(url: str) -> Any:
    return client_of(url).sync_maindata(rid=0)


async def test_new_torrent_and_server_fields(tmp_path: Path) -> None:
    torrent = dataclasses.replace(five_pieces(), comment="c1", created_by="maker 1.0",
                                  creation_date=1700000000, trackers=(("http://127.0.0.1:9/announce",),))
    info_hash = torrent.info_hash.hex()
    async with running_api(tmp_path, config_options={"tracker_enabled": True}) as api:
        c = api.client
        r = await c.post("/api/v2/torrents/add", files={"torrents": ("t.torrent", torrent.to_bytes())},
                         data={"urls": MAGNET, "paused": "true"})
        qbt_added(r, 2)
        data = await anyio.to_thread.run_sync(maindata, api.url)
        state = data["server_state"]
        assert {k: state[k] for k in NEW_SERVER_FIELDS} == NEW_SERVER_FIELDS
        assert state["total_peer_connections"] == 0
        t = data["torrents"][info_hash]
        assert (t["has_metadata"], t["comment"], t["created_by"], t["creation_date"]) == (
            True, "c1", "maker 1.0", 1700000000)
        assert (t["piece_size"], t["pieces_num"], t["pieces_have"]) == (16384, 5, 0)
        assert t["root_path"] == f"{api.download_root}/qbt" and t["connections_count"] == 0
        assert t["connections_limit"] == api.service.get_settings().max_connections_per_torrent
        assert (t["share_limit_action"], t["share_limits_mode"], t["total_wasted"], t["popularity"]) == (
            "Default", "Default", 0, 0)
        assert (t["has_tracker_warning"], t["has_tracker_error"], t["has_other_announce_error"]) == (
            False, False, False)  # (stopped: not announced)
        m = data["torrents"]["c" * 40]
        assert (m["has_metadata"], m["piece_size"], m["pieces_num"], m["root_path"], m["creation_date"]) == (
            False, 0, 0, "", -1)
        r = await c.post("/api/v2/torrents/start", data={"hashes": info_hash})
        with anyio.fail_after(30):  # (the tracker on a closed port fails: Not working)
            while not (await c.get("/api/v2/sync/maindata")).json()["torrents"][info_hash][
                    "has_other_announce_error"]:
                await anyio.sleep(0.1)
        await c.post("/api/v2/torrents/stop", data={"hashes": info_hash})
    async with running_api(tmp_path) as api:  # (a restart: the facts come from the job's record)
        data = await anyio.to_thread.run_sync(maindata, api.url)
        t = data["torrents"][info_hash]
        assert (t["piece_size"], t["created_by"], t["creation_date"], t["comment"]) == (
            16384, "maker 1.0", 1700000000, "c1")


def share_limit_actions(url: str, info_hash: str) -> None:
    qbittorrentapi = require_module("qbittorrentapi")
    client = client_of(url)
    client.torrents_set_share_limits(ratio_limit=2, seeding_time_limit=-2, inactive_seeding_time_limit=-2,
                                     share_limit_action="RemoveWithContent", torrent_hashes=info_hash)
    t = client.torrents_info(torrent_hashes=info_hash)[0]
    assert (t.share_limit_action, t.ratio_limit) == ("RemoveWithContent", 2)
    client.torrents_set_share_limits(ratio_limit=2, seeding_time_limit=-2, inactive_seeding_time_limit=-2,
                                     torrent_hashes=info_hash)  # (not sent: left as it is)
    assert client.torrents_info(torrent_hashes=info_hash)[0].share_limit_action == "RemoveWithContent"
    client.torrents_set_share_limits(ratio_limit=2, seeding_time_limit=-2, inactive_seeding_time_limit=-2,
                                     share_limit_action="Default", torrent_hashes=info_hash)
    assert client.torrents_info(torrent_hashes=info_hash)[0].share_limit_action == "Default"
    client.torrents_set_share_limits(ratio_limit=2, seeding_time_limit=-2, inactive_seeding_time_limit=-2,
                                     share_limit_action="EnableSuperSeeding", torrent_hashes=info_hash)
    assert client.torrents_info(torrent_hashes=info_hash)[0].share_limit_action == "EnableSuperSeeding"
    client.app_set_preferences({"max_ratio_act": 2})  # (the global action: super-seeding too)
    assert client.app_preferences()["max_ratio_act"] == 2
    with pytest.raises(qbittorrentapi.InvalidRequest400Error, match="max_ratio_act"):
        client.app_set_preferences({"max_ratio_act": 4})
    # shareLimitsMode (2.16): either limit reached is enough here (MatchAny); MatchAll is refused
    prefs = client.app_preferences()
    assert (prefs["share_limits_mode"], prefs["add_stopped_enabled"]) == ("MatchAny", False)
    assert (prefs["web_ui_sessions_count_limit"], prefs["web_ui_session_timeout"]) == (1024, 3600)
    with pytest.raises(qbittorrentapi.InvalidRequest400Error, match="share_limits_mode"):
        client.app_set_preferences({"share_limits_mode": "MatchAll"})
    client.torrents_set_share_limits(ratio_limit=2, seeding_time_limit=-2, inactive_seeding_time_limit=-2,
                                     share_limits_mode="MatchAny", torrent_hashes=info_hash)
    with pytest.raises(qbittorrentapi.InvalidRequest400Error, match="shareLimitsMode"):
        client.torrents_set_share_limits(ratio_limit=2, seeding_time_limit=-2, inactive_seeding_time_limit=-2,
                                         share_limits_mode="MatchAll", torrent_hashes=info_hash)
    client.torrents_set_share_limits(ratio_limit=2, seeding_time_limit=-2, inactive_seeding_time_limit=-2,
                                     share_limit_action="Default", torrent_hashes=info_hash)


async def test_share_limit_actions_are_the_jobs_own(tmp_path: Path) -> None:
    torrent = five_pieces()
    info_hash = torrent.info_hash.hex()
    async with running_api(tmp_path) as api:
        r = await api.client.post("/api/v2/torrents/add", data={"paused": "true", "shareLimitAction": "Stop"},
                                  files={"torrents": ("t.torrent", torrent.to_bytes())})
        qbt_added(r)
        [job] = api.service.client_jobs()
        assert job.features.share_limit_action == "stop"
        await anyio.to_thread.run_sync(share_limit_actions, api.url, info_hash)
        assert api.service.client_jobs()[0].features.share_limit_action is None


async def test_trackers_and_the_torrents_announcing_to_each_as_qbittorrent_syncs_them(tmp_path: Path) -> None:
    """``trackers`` (URL -> the torrents announcing to it) in a full answer, and in a delta the
    URLs whose torrents changed (with all of them) and ``trackers_removed``: qBittorrent's WebUI
    and typed clients build their tracker lists from it. It was not answered."""
    one = dataclasses.replace(five_pieces(), trackers=(("http://127.0.0.1:9/announce",),))
    two = dataclasses.replace(five_pieces("two"), trackers=(("http://127.0.0.1:9/announce",),))
    a, b = one.info_hash.hex(), two.info_hash.hex()
    shared, extra = "http://127.0.0.1:9/announce", "udp://127.0.0.1:10"
    async with running_api(tmp_path) as api:
        c = api.client
        for t in (one, two):
            r = await c.post("/api/v2/torrents/add", files={"torrents": ("t.torrent", t.to_bytes())},
                             data={"paused": "true"})
            qbt_added(r)
        r = await c.post("/api/v2/torrents/add", data={"urls": MAGNET, "paused": "true"})  # (no tracker)
        qbt_added(r)
        full = await anyio.to_thread.run_sync(maindata, api.url)
        assert {url: sorted(hashes) for url, hashes in full["trackers"].items()} == {shared: sorted([a, b])}

        async def delta(rid: int) -> dict[str, Any]:
            answer: dict[str, Any] = (await c.get("/api/v2/sync/maindata", params={"rid": rid})).json()
            return answer

        quiet = await delta(full["rid"])
        assert "trackers" not in quiet and "trackers_removed" not in quiet  # (nothing changed)
        await c.post("/api/v2/torrents/addTrackers", data={"hash": a, "urls": extra})
        added = await delta(quiet["rid"])
        assert added["trackers"] == {extra: [a]} and "trackers_removed" not in added
        await c.post("/api/v2/torrents/removeTrackers", data={"hash": a, "urls": f"{shared}|{extra}"})
        removed = await delta(added["rid"])
        assert removed["trackers"] == {shared: [b]} and removed["trackers_removed"] == [extra]
        await c.post("/api/v2/torrents/delete", data={"hashes": b, "deleteFiles": "false"})
        gone = await delta(removed["rid"])
        assert gone["torrents_removed"] == [b] and gone["trackers_removed"] == [shared]
        again = await delta(0)  # (a full answer again: what is left)
        assert again["full_update"] and again["trackers"] == {}
        stale = await delta(removed["rid"])  # (an answer asked again, as after a lost one: the same)
        assert stale["trackers_removed"] == [shared]
