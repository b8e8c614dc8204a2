"""qBittorrent's WebAPI v2 on the daemon's API, driven by the real ``qbittorrent-api`` client
and by plain HTTP (auth, CSRF, answers a real qBittorrent gives), without a swarm."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import httpx
import pytest

from tests.conftest import require_module
from tests.integration.api_helpers import TOKEN, qbt_added, qbt_client, running_api
from tests.unit.torrent_factory import make_torrent, payload

pytestmark = pytest.mark.anyio

MAGNET = "magnet:?xt=urn:btih:" + "c" * 40 + "&dn=from-magnet"


def torrent_bytes(name: str = "qbt") -> tuple[bytes, str]:
    t = make_torrent([(("a.bin",), payload(40000, 3)), (("b.bin",), payload(30000, 4))], 16384, name=name)
    return t.to_bytes(), t.info_hash.hex()


async def test_login_cookie_bearer_and_cross_site_refusal(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        async with httpx.AsyncClient(base_url=api.url) as c:  # no token header
            assert (await c.get("/api/v2/app/version")).status_code == 403
            assert (await c.get(f"/api/v2/auth/login?username=a&password={TOKEN}")).status_code == 405
            r = await c.post("/api/v2/auth/login", data={"username": "admin", "password": "wrong"})
            assert (r.status_code, r.text) == (401, "Fails.") and "SID" not in r.cookies  # (2.14: 401)
            r = await c.post("/api/v2/auth/login", data={"username": "any", "password": TOKEN},
                             headers={"Origin": "http://evil.example"})
            assert r.status_code == 401 and "SID" not in r.cookies
            r = await c.post("/api/v2/auth/login", data={"username": "any", "password": TOKEN})
            assert r.text == "Ok." and r.cookies.get("SID")
            assert "httponly" in r.headers["set-cookie"].lower()
            assert (await c.get("/api/v2/app/webapiVersion")).text == "2.16.0"
            r = await c.post("/api/v2/torrents/pause", data={"hashes": "all"},
                             headers={"Referer": "http://evil.example/x"})
            assert r.status_code == 401
            assert (await c.get("/api/v2/torrents/pause?hashes=all")).status_code == 405
            assert (await c.get("/api/v2/search/plugins")).status_code == 404  # not supported
            await c.post("/api/v2/auth/logout")
            assert (await c.get("/api/v2/app/version")).status_code == 403
            # our own API still wants its token: the SID cookie is no key to it
            await c.post("/api/v2/auth/login", data={"username": "x", "password": TOKEN})
            assert (await c.get("/api/jobs")).status_code == 401
        async with httpx.AsyncClient(base_url=api.url, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            assert (await c.get("/api/v2/app/version")).text.startswith("v5.")
        async with httpx.AsyncClient(base_url=api.url, headers={"Host": "evil.example"}) as c:
            assert (await c.post("/api/v2/auth/login", data={"password": TOKEN})).status_code == 403


async def test_a_configured_user_name_is_required(tmp_path: Path) -> None:
    async with running_api(tmp_path, compat_username="sonarr") as api:
        async with httpx.AsyncClient(base_url=api.url) as c:
            r = await c.post("/api/v2/auth/login", data={"username": "admin", "password": TOKEN})
            assert r.status_code == 401
            r = await c.post("/api/v2/auth/login", data={"username": "sonarr", "password": TOKEN})
            assert r.text == "Ok."


def drive(url: str, data: bytes, info_hash: str, root: Path) -> dict[str, Any]:
    """Everything a tool does through qbittorrent-api (runs in a worker thread)."""
    qbittorrentapi = require_module("qbittorrentapi")
    client = qbittorrentapi.Client(host=url, username="admin", password=TOKEN,
                                   VERIFY_WEBUI_CERTIFICATE=False, REQUESTS_ARGS={"timeout": 30})
    client.auth_log_in()
    seen: dict[str, Any] = {"version": client.app_version(), "api": client.app_web_api_version()}
    prefs = client.app_preferences()
    assert prefs["save_path"] == str(root.resolve()) and prefs["queueing_enabled"] is False
    client.torrents_create_category(name="tv", save_path="shows")
    with pytest.raises(qbittorrentapi.Conflict409Error):
        client.torrents_create_category(name="tv", save_path="other")
    assert client.torrents_categories()["tv"]["savePath"] == str((root / "shows").resolve())
    assert client.torrents_add(torrent_files=data, category="tv", tags=["hd", "new"], is_paused=True,
                               ratio_limit=2, seeding_time_limit=90, is_first_last_piece_priority=True,
                               upload_limit=5000)["success_count"] == 1
    assert client.torrents_add(urls=MAGNET, category="films", is_paused=True,
                               inactive_seeding_time_limit=45)["success_count"] == 1
    multi = torrent_bytes("multi")[0]
    for refused in ({"torrent_files": data},  # (already there)
                    {"urls": "magnet:?xt=urn:btih:zz"},
                    {"torrent_files": multi, "content_layout": "NoSubfolder"}):
        with pytest.raises(qbittorrentapi.Conflict409Error):  # (2.14: none added)
            client.torrents_add(**refused)
    with pytest.raises(qbittorrentapi.InvalidRequest400Error, match="savepath: '/etc' is outside"):
        client.torrents_add(urls=MAGNET.replace("c", "d"), save_path="/etc")  # (the request's option)
    tv = client.torrents_info(category="tv")
    assert [t.hash for t in tv] == [info_hash]
    t = tv[0]
    assert t.state == "stoppedDL" and t.tags == "hd, new" and t.category == "tv"
    assert t.save_path == str((root / "shows").resolve()) and t.content_path.endswith("shows/qbt")
    assert (t.ratio_limit, t.seeding_time_limit, t.f_l_piece_prio, t.up_limit) == (2, 90, True, 5000)
    assert t.size == 70000 and t.amount_left == 70000 and t.added_on > 0 and t.completion_on == 0
    assert t.priority == 1 and t.dl_limit == 0  # (as qBittorrent: a queue position even with queueing off)
    assert [x.name for x in client.torrents_info(tag="new")] == ["qbt"]
    films = client.torrents_info(category="films")
    assert [(x.name, x.inactive_seeding_time_limit, x.max_inactive_seeding_time) for x in films] == [
        ("from-magnet", 45, 45)]
    assert {x.name for x in client.torrents_info(status_filter="paused")} == {"qbt", "from-magnet"}
    assert client.torrents_info(status_filter="seeding") == []
    assert [x.name for x in client.torrents_info(sort="name", reverse=True)] == ["qbt", "from-magnet"]
    assert [x.name for x in client.torrents_info(sort="size")] == ["from-magnet", "qbt"]
    props = client.torrents_properties(torrent_hash=info_hash)
    assert props.piece_size == 16384 and props.pieces_num == 5 and props.total_size == 70000
    files = client.torrents_files(torrent_hash=info_hash)
    assert [(f.name, f.size, f.priority, list(f.piece_range)) for f in files] == [
        ("qbt/a.bin", 40000, 1, [0, 2]), ("qbt/b.bin", 30000, 1, [2, 4])]
    client.torrents_file_priority(torrent_hash=info_hash, file_ids=1, priority=0)
    assert client.torrents_files(torrent_hash=info_hash)[1].priority == 0
    with pytest.raises(qbittorrentapi.Conflict409Error):
        client.torrents_file_priority(torrent_hash=info_hash, file_ids=7, priority=1)
    assert [f.name for f in client.torrents_files(torrent_hash=info_hash, indexes=1)] == ["qbt/b.bin"]
    with pytest.raises(qbittorrentapi.Conflict409Error, match="Index 7 is out of bounds"):
        client.torrents_files(torrent_hash=info_hash, indexes=[1, 7])  # (an empty list before)
    assert [x.url for x in client.torrents_trackers(torrent_hash=info_hash)][:3] == [
        "** [DHT] **", "** [PeX] **", "** [LSD] **"]
    assert client.torrents_piece_states(torrent_hash=info_hash) == [0] * 5
    assert client.torrents_export(torrent_hash=info_hash) == data  # the very .torrent
    assert client.sync_torrent_peers(torrent_hash=info_hash).peers == {}
    with pytest.raises(qbittorrentapi.Conflict409Error):
        client.torrents_export(torrent_hash="c" * 40)  # a magnet without its metadata yet
    assert len(client.torrents_piece_hashes(torrent_hash=info_hash)) == 5
    with pytest.raises(qbittorrentapi.NotFound404Error):
        client.torrents_properties(torrent_hash="0" * 40)
    with pytest.raises(qbittorrentapi.Conflict409Error):  # queueing is off
        client.torrents_top_priority(torrent_hashes=info_hash)
    client.torrents_add_tags(tags="x", torrent_hashes=info_hash)
    client.torrents_remove_tags(tags="new", torrent_hashes=info_hash)
    assert set(client.torrents_tags()) == {"hd", "new", "x"}
    client.torrents_set_share_limits(ratio_limit=-1, seeding_time_limit=-2, torrent_hashes=info_hash)
    t = client.torrents_info(torrent_hashes=info_hash)[0]
    assert (t.tags, t.ratio_limit, t.seeding_time_limit) == ("hd, x", -1, -2)
    # the inactive seeding time limit (4.6): the service's in its preferences, a torrent's own
    assert (t.inactive_seeding_time_limit, t.max_inactive_seeding_time) == (-2, -1)
    client.app_set_preferences({"max_inactive_seeding_time_enabled": True, "max_inactive_seeding_time": 15})
    prefs = client.app_preferences()
    assert (prefs["max_inactive_seeding_time_enabled"], prefs["max_inactive_seeding_time"]) == (True, 15)
    t = client.torrents_info(torrent_hashes=info_hash)[0]
    assert (t.inactive_seeding_time_limit, t.max_inactive_seeding_time) == (-2, 15)
    client.torrents_set_share_limits(ratio_limit=-1, seeding_time_limit=-2, inactive_seeding_time_limit=30,
                                     torrent_hashes=info_hash)
    t = client.torrents_info(torrent_hashes=info_hash)[0]
    assert (t.ratio_limit, t.inactive_seeding_time_limit, t.max_inactive_seeding_time) == (-1, 30, 30)
    client.torrents_set_share_limits(ratio_limit=-1, seeding_time_limit=-2, inactive_seeding_time_limit=-1,
                                     torrent_hashes=info_hash)
    t = client.torrents_info(torrent_hashes=info_hash)[0]
    assert (t.inactive_seeding_time_limit, t.max_inactive_seeding_time) == (-1, -1)
    # (at most qBittorrent's ceilings, 9999 and a year, as qbittorrent-nox takes them)
    client.torrents_set_share_limits(ratio_limit=10**6, seeding_time_limit=10**9,
                                     inactive_seeding_time_limit=10**9, torrent_hashes=info_hash)
    t = client.torrents_info(torrent_hashes=info_hash)[0]
    assert (t.ratio_limit, t.seeding_time_limit, t.inactive_seeding_time_limit) == (9999, 525600, 525600)
    client.app_set_preferences({"max_inactive_seeding_time_enabled": False})
    assert client.app_preferences()["max_inactive_seeding_time"] == -1
    with pytest.raises(qbittorrentapi.Conflict409Error):
        client.torrents_set_category(category="nope", torrent_hashes=info_hash)
    client.torrents_set_download_limit(limit=1000, torrent_hashes=info_hash)
    assert client.torrents_download_limit(torrent_hashes=info_hash)[info_hash] == 1000
    client.torrents_toggle_sequential_download(torrent_hashes=info_hash)
    assert client.torrents_info(torrent_hashes=info_hash)[0].seq_dl is True
    client.torrents_rename(torrent_hash=info_hash, new_torrent_name="renamed")
    assert client.torrents_info(torrent_hashes=info_hash)[0].name == "renamed"
    client.torrents_set_location(location="moved", torrent_hashes=info_hash)
    assert client.torrents_info(torrent_hashes=info_hash)[0].save_path == str((root / "moved").resolve())
    with pytest.raises(qbittorrentapi.exceptions.HTTPError):
        client.torrents_set_location(location="/etc", torrent_hashes=info_hash)
    slow = ("dont_count_slow_torrents", "slow_torrent_dl_rate_threshold", "slow_torrent_ul_rate_threshold",
            "slow_torrent_inactive_timer")
    assert tuple(client.app_preferences()[k] for k in slow) == (False, 2, 2, 60)  # (qBittorrent's defaults)
    client.app_set_preferences({"queueing_enabled": True, "max_active_downloads": 1,
                                "max_ratio_enabled": True, "max_ratio": 1.5, "max_ratio_act": 1,
                                "dont_count_slow_torrents": True, "slow_torrent_dl_rate_threshold": 5,
                                "slow_torrent_ul_rate_threshold": 0, "slow_torrent_inactive_timer": 120})
    prefs = client.app_preferences()
    assert (prefs["queueing_enabled"], prefs["max_ratio"], prefs["max_ratio_act"]) == (True, 1.5, 1)
    assert tuple(prefs[k] for k in slow) == (True, 5, 0, 120)  # (KiB/s, seconds)
    assert (prefs["start_paused_enabled"], prefs["add_stopped_enabled"]) == (False, False)
    client.app_set_preferences({"start_paused_enabled": True})  # (an add that says nothing: stopped)
    assert client.app_preferences()["add_stopped_enabled"] is True
    client.torrents_add(urls=f"magnet:?xt=urn:btih:{'e' * 40}")
    # (is_stopped: qbittorrent-api sends nothing for is_paused=False)
    client.torrents_add(urls=f"magnet:?xt=urn:btih:{'f' * 40}", is_stopped=False)
    states = {t.hash: t.state for t in client.torrents_info(torrent_hashes=["e" * 40, "f" * 40])}
    assert states["e" * 40] in ("pausedDL", "stoppedDL") and states["f" * 40] not in ("pausedDL", "stoppedDL")
    client.app_set_preferences({"add_stopped_enabled": False})
    client.torrents_delete(delete_files=False, torrent_hashes=["e" * 40, "f" * 40])
    for bad in ({"slow_torrent_dl_rate_threshold": -1}, {"slow_torrent_inactive_timer": 0}):
        with pytest.raises(qbittorrentapi.exceptions.HTTPError):
            client.app_set_preferences(bad)
    with socket.socket() as taken:  # (the port is a run-time setting: one in use is refused, no fake success)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(qbittorrentapi.exceptions.HTTPError):
            client.app_set_preferences({"listen_port": taken.getsockname()[1]})
    client.torrents_bottom_priority(torrent_hashes=info_hash)
    assert client.torrents_info(torrent_hashes=info_hash)[0].priority == 2
    client.torrents_resume(torrent_hashes=info_hash)
    client.transfer_set_download_limit(limit=123456)
    assert client.transfer_download_limit() == 123456
    assert client.transfer_info().dl_rate_limit == 123456
    main = client.sync_maindata()
    assert main.full_update and set(main.torrents) == {info_hash, "c" * 40}
    assert main.categories["tv"]["name"] == "tv" and "x" in main.tags
    client.torrents_delete(delete_files=False, torrent_hashes="c" * 40)
    client.torrents_remove_categories(categories="films")
    delta = client.sync_maindata(rid=main.rid)
    assert delta.rid > main.rid and not delta.get("full_update")
    assert list(delta.torrents_removed) == ["c" * 40] and list(delta.categories_removed) == ["films"]
    client.torrents_delete(delete_files=True, torrent_hashes="all")
    assert client.torrents_info() == []
    client.auth_log_out()
    return seen


async def test_qbittorrent_api_client_drives_the_daemon(tmp_path: Path) -> None:
    data, info_hash = torrent_bytes()
    async with running_api(tmp_path) as api:
        seen = await anyio.to_thread.run_sync(drive, api.url, data, info_hash, api.download_root)
        assert seen == {"version": "v5.3.0alpha1", "api": "2.16.0"}
        assert api.service.list()[0].state.value == "cancelled"  # one model underneath


@contextmanager
def serving(files: dict[str, bytes]) -> Iterator[str]:
    """A loopback HTTP server of ``files`` (path -> body); yields its base URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            body = files.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def test_torrent_urls_are_fetched_by_both_dialects(tmp_path: Path) -> None:
    one, hash_one = torrent_bytes("by-url")
    two, hash_two = torrent_bytes("by-url-too")
    with serving({"/one.torrent": one, "/two.torrent": two}) as base:
        async with running_api(tmp_path) as api:
            async with httpx.AsyncClient(base_url=api.url, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
                urls = f"{base}/one.torrent\n{base}/missing.torrent"
                r = await c.post("/api/v2/torrents/add", data={"urls": urls, "paused": "true"})
                qbt_added(r)
                r = await c.post("/api/v2/torrents/add", data={"urls": f"{base}/missing.torrent"})
                assert (r.status_code, r.text) == (409, "Conflict")
                r = await c.post("/transmission/rpc", json={"method": "session-get"})
                sid = r.headers["x-transmission-session-id"]
                add = {"filename": f"{base}/two.torrent", "paused": True}
                r = await c.post("/transmission/rpc", headers={"X-Transmission-Session-Id": sid},
                                 json={"method": "torrent-add", "arguments": add})
                assert r.json()["arguments"]["torrent-added"]["hashString"] == hash_two
            assert {j.info_hash for j in api.service.active()} == {hash_one, hash_two}


async def test_answers_match_a_real_qbittorrent(tmp_path: Path) -> None:
    """What qBittorrent (4.5.2, probed by hand) answers where the wiki is silent or wrong."""
    async with running_api(tmp_path) as api:
        async with httpx.AsyncClient(base_url=api.url, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            r = await c.post("/api/v2/torrents/add", files={"urls": (None, MAGNET), "paused": (None, "true")})
            qbt_added(r)
            r = await c.post("/api/v2/torrents/add", files={"urls": (None, MAGNET)})
            assert (r.status_code, r.text) == (409, "Conflict")  # already there
            info = (await c.get("/api/v2/torrents/info")).json()[0]
            assert (info["total_size"], info["content_path"], info["completion_on"], info["dl_limit"],
                    info["eta"], info["priority"], info["state"]) == (-1, "", 0, 0, 8640000, 1, "stoppedDL")
            r = await c.post("/api/v2/torrents/filePrio", data={"hash": "c" * 40, "id": "0", "priority": "1"})
            assert (r.status_code, r.text) == (409, "Torrent's metadata has not yet downloaded")
            r = await c.post("/api/v2/torrents/filePrio", data={"hash": "c" * 40, "id": "0", "priority": "3"})
            assert (r.status_code, r.text) == (400, "Priority is not valid")
            r = await c.post("/api/v2/torrents/createCategory", data={"category": "", "savePath": ""})
            assert (r.status_code, r.text) == (400, "Category cannot be empty")
            r = await c.post("/api/v2/torrents/createCategory", data={"category": "a//b", "savePath": ""})
            assert (r.status_code, r.text) == (
                409, "Incorrect category name: 'a//b' is not a valid category name")  # (why, after its words)
            r = await c.post("/api/v2/torrents/topPrio", data={"hashes": "all"})
            assert (r.status_code, r.text) == (409, "Torrent queueing must be enabled")
            assert (await c.post("/api/v2/torrents/delete", data={"hashes": "all"})).status_code == 400
            prefs = '{"max_ratio": "lots", "max_ratio_enabled": true}'
            r = await c.post("/api/v2/app/setPreferences", data={"json": prefs})
            assert r.status_code == 400
            assert (await c.get("/api/v2/torrents/nosuch")).text == "Endpoint does not exist"  # (2.14)
            r = await c.post("/api/v2/torrents/add", files={"torrents": ("g.torrent", b"garbage")})
            assert r.status_code == 415
            r = await c.post("/api/v2/torrents/delete", data={"hashes": "all", "deleteFiles": "false"})
            assert r.status_code == 200 and (await c.get("/api/v2/torrents/info")).json() == []
            other = MAGNET.replace("c", "f")
            fields = {"urls": (None, other), "useDownloadPath": (None, "true"), "downloadPath": (None, "x")}
            r = await c.post("/api/v2/torrents/add", files=fields)
            qbt_added(r)  # its data in x while it downloads
            info = (await c.get("/api/v2/torrents/info")).json()[0]
            assert info["download_path"] == str((api.download_root / "x").resolve())
            await c.post("/api/v2/torrents/delete", data={"hashes": "f" * 40, "deleteFiles": "false"})
            await c.post("/api/v2/torrents/createCategory", data={"category": "tv", "savePath": "shows"})
            fields = {"urls": (None, MAGNET), "category": (None, "tv"), "autoTMM": (None, "true"),
                      "savepath": (None, "x")}
            r = await c.post("/api/v2/torrents/add", files=fields)
            qbt_added(r)
            info = (await c.get("/api/v2/torrents/info")).json()[0]
            assert info["save_path"] == str((api.download_root / "shows").resolve())


async def test_add_peers_with_a_port_that_is_no_ascii_number_is_a_400(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        async with httpx.AsyncClient(base_url=api.url, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            data, info_hash = torrent_bytes()
            r = await c.post("/api/v2/torrents/add", files={"torrents": ("t.torrent", data)},
                             data={"paused": "true"})
            qbt_added(r)
            for peers in ("127.0.0.1:²", "127.0.0.1:x", "nocolon"):
                r = await c.post("/api/v2/torrents/addPeers", data={"hashes": info_hash, "peers": peers})
                assert r.status_code == 400 and "bad peer" in r.text, (peers, r.status_code, r.text)


async def test_add_peers_leaves_out_the_bad_ones_as_qbittorrent(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api, await anyio.create_tcp_listener(local_host="127.0.0.1") as peer:
        port = peer.extra(anyio.abc.SocketAttribute.local_port)
        async with httpx.AsyncClient(base_url=api.url, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            data, info_hash = torrent_bytes()
            qbt_added(await c.post("/api/v2/torrents/add", files={"torrents": ("t.torrent", data)}))
            dialed = anyio.Event()

            async def accept(stream: anyio.abc.SocketStream) -> None:
                dialed.set()
                await stream.aclose()

            async with anyio.create_task_group() as tg:
                tg.start_soon(peer.serve, accept)
                r = await c.post("/api/v2/torrents/addPeers", data={
                    "hashes": info_hash, "peers": f"127.0.0.1:x|::1:{port}|127.0.0.1:{port}"})
                assert r.status_code == 200 and r.json() == {info_hash: {"added": 1, "failed": 0}}, r.text
                with anyio.fail_after(10):
                    await dialed.wait()
                tg.cancel_scope.cancel()


async def test_a_preference_of_the_wrong_type_is_a_400_naming_it(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        async with httpx.AsyncClient(base_url=api.url, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            for prefs, name in (
                    ('{"max_ratio_enabled": true, "max_ratio": [2]}', "max_ratio"),
                    ('{"max_seeding_time_enabled": true, "max_seeding_time": {}}', "max_seeding_time"),
                    # (beyond the int qBittorrent keeps them in: shown back as a 301-digit integer)
                    ('{"max_seeding_time_enabled": true, "max_seeding_time": 1e300}', "max_seeding_time"),
                    ('{"max_inactive_seeding_time_enabled": true, "max_inactive_seeding_time": 2147483648}',
                     "max_inactive_seeding_time")):
                r = await c.post("/api/v2/app/setPreferences", data={"json": prefs})
                assert r.status_code == 400 and name in r.text, (prefs, r.status_code, r.text)
            prefs = (await c.get("/api/v2/app/preferences")).json()
            assert (prefs["max_ratio_enabled"], prefs["max_seeding_time_enabled"]) == (False, False)


async def test_flood_adds_with_content_layout_undefined(tmp_path: Path) -> None:
    """Flood sends every add field on every add, ``contentLayout=undefined`` among them: qBittorrent
    takes a layout it does not know as ``Original`` and answers ``Ok.``."""
    data, info_hash = torrent_bytes("flood")
    async with running_api(tmp_path) as api:
        async with httpx.AsyncClient(base_url=api.url, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            fields = {"torrents": ("flood.torrent", data), "savepath": (None, str(api.download_root / "f")),
                      "tags": (None, ""), "paused": (None, "false"), "root_folder": (None, "true"),
                      "contentLayout": (None, "undefined"), "sequentialDownload": (None, "false"),
                      "skip_checking": (None, "false")}
            r = await c.post("/api/v2/torrents/add", files=fields)
            qbt_added(r)
            info = (await c.get("/api/v2/torrents/info")).json()
            assert [(t["hash"], t["content_path"]) for t in info] == [
                (info_hash, str((api.download_root / "f" / "flood").resolve()))]


async def test_add_reads_its_fields_as_qbittorrent_does(tmp_path: Path) -> None:
    """qBittorrent's ``parseBool`` knows ``true``/``false`` (any case) and nothing else, its
    ``parseInt``/``parseDouble`` fall back to the default on what is not a number, and an enum it
    does not know is its default: none of these is a refusal."""
    async with running_api(tmp_path) as api:
        async with httpx.AsyncClient(base_url=api.url, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            fields = {"urls": MAGNET, "paused": "1", "ratioLimit": "lots", "seedingTimeLimit": "1.5",
                      "upLimit": "fast", "dlLimit": "", "stopCondition": "Whenever", "autoTMM": "maybe",
                      "inactiveSeedingTimeLimit": "soon", "sequentialDownload": "TRUE",
                      "shareLimitAction": "Sometimes", "useDownloadPath": "no", "forced": "yes"}
            r = await c.post("/api/v2/torrents/add", data=fields)
            qbt_added(r)
            t = (await c.get("/api/v2/torrents/info")).json()[0]
            assert (t["state"], t["ratio_limit"], t["seeding_time_limit"], t["inactive_seeding_time_limit"],
                    t["up_limit"], t["dl_limit"], t["seq_dl"], t["force_start"]) == (
                "metaDL", -2, -2, -2, 0, 0, True, False)
            # (a stop condition it knows is the job's: test_stop_conditions.py)
            r = await c.post("/api/v2/torrents/add", data={"urls": MAGNET.replace("c", "e"),
                                                           "stopCondition": "metadatareceived"})
            qbt_added(r)


async def test_an_add_refused_for_its_save_path_says_so(tmp_path: Path) -> None:
    """Every torrent of an add refused for what the request asks of all (a ``savepath`` outside
    the download root) is a ``400`` naming it: it was ``409 Conflict``, the reason in the log
    alone. A torrent refused for itself among others added is counted, as before."""
    async with running_api(tmp_path) as api:
        async with httpx.AsyncClient(base_url=api.url, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            urls = f"{MAGNET}\n{MAGNET.replace('c', 'e')}"
            r = await c.post("/api/v2/torrents/add", data={"urls": urls, "savepath": "/etc"})
            assert (r.status_code, r.text) == (
                400, f"savepath: '/etc' is outside the download root {str(api.download_root)!r}")
            r = await c.post("/api/v2/torrents/add", data={"urls": urls, "downloadPath": "/etc",
                                                           "useDownloadPath": "true"})
            assert r.status_code == 400 and r.text.startswith("downloadPath: '/etc' is outside"), r.text
            assert (await c.get("/api/v2/torrents/info")).json() == []
            qbt_added(await c.post("/api/v2/torrents/add", data={"urls": MAGNET}))
            r = await c.post("/api/v2/torrents/add", data={"urls": MAGNET})  # (there already: no option's)
            assert (r.status_code, r.text) == (409, "Conflict")


async def test_set_super_seeding(tmp_path: Path) -> None:
    """Super-seeding (BEP 16) per torrent: on and off (Flood turns it off after each add), shown
    in torrents/info and sync/maindata, kept in the job's options."""
    async with running_api(tmp_path) as api:
        async with httpx.AsyncClient(base_url=api.url, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            r = await c.post("/api/v2/torrents/add", data={"urls": MAGNET, "paused": "true"})
            qbt_added(r)
            r = await c.post("/api/v2/torrents/setSuperSeeding", data={"hashes": "c" * 40, "value": "false"})
            assert (r.status_code, r.text) == (200, "")
            assert (await c.get("/api/v2/torrents/info")).json()[0]["super_seeding"] is False
            rid = (await c.get("/api/v2/sync/maindata")).json()["rid"]
            r = await c.post("/api/v2/torrents/setSuperSeeding", data={"hashes": "all", "value": "true"})
            assert (r.status_code, r.text) == (200, "")
            assert (await c.get("/api/v2/torrents/info")).json()[0]["super_seeding"] is True
            changed = (await c.get("/api/v2/sync/maindata", params={"rid": rid})).json()["torrents"]
            assert changed["c" * 40]["super_seeding"] is True
            assert api.service.list()[0].options.super_seeding
            r = await c.post("/api/v2/torrents/setSuperSeeding", data={"hashes": "c" * 40, "value": "false"})
            assert (await c.get("/api/v2/torrents/info")).json()[0]["super_seeding"] is False
            r = await c.post("/api/v2/torrents/setSuperSeeding", data={"hashes": "all"})
            assert r.status_code == 400


async def test_kept_records_follow_every_change_in_both_dialects(tmp_path: Path) -> None:
    """torrents/info, sync/maindata and torrent-get keep each job's record while its snapshot is
    the same: a change of one job (a category, a tag, a pause) or of the share settings shows at
    once, in the incremental answer only for what changed."""
    hashes = [f"{i + 1:040x}" for i in range(3)]
    async with running_api(tmp_path) as api:
        async with httpx.AsyncClient(base_url=api.url, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            urls = "\n".join(f"magnet:?xt=urn:btih:{h}&dn=kept-{h[-1]}" for h in hashes)
            qbt_added(await c.post("/api/v2/torrents/add", data={"urls": urls, "paused": "true"}), 3)
            await c.post("/api/v2/torrents/createCategory", data={"category": "tv", "savePath": ""})
            sid = (await c.post("/transmission/rpc", json={})).headers["x-transmission-session-id"]
            fields = ["labels", "id", "seedRatioLimit", "name"]

            async def rows() -> list[dict[str, Any]]:
                r = await c.post("/transmission/rpc", headers={"X-Transmission-Session-Id": sid},
                                 json={"method": "torrent-get", "arguments": {"fields": fields}})
                return r.json()["arguments"]["torrents"]  # type: ignore[no-any-return]

            async def maindata(rid: int) -> dict[str, Any]:
                return (await c.get("/api/v2/sync/maindata", params={"rid": rid})).json()  # type: ignore[no-any-return]

            full = await maindata(0)
            assert full["full_update"] and sorted(full["torrents"]) == hashes
            info = {t["hash"]: t for t in (await c.get("/api/v2/torrents/info")).json()}
            assert [info[h] == full["torrents"][h] for h in hashes] == [True] * 3
            before = await rows()
            assert [list(row) for row in before] == [fields] * 3  # (in the order asked)
            with anyio.fail_after(10):  # (the jobs fall quiet: their snapshots are kept)
                while (await maindata(full["rid"])).get("torrents"):
                    full = await maindata(0)
                    await anyio.sleep(0.2)
            quiet = await maindata(full["rid"])
            assert "torrents" not in quiet

            await c.post("/api/v2/torrents/setCategory", data={"hashes": hashes[0], "category": "tv"})
            await c.post("/api/v2/torrents/addTags", data={"hashes": hashes[1], "tags": "hd"})
            delta = await maindata(quiet["rid"])
            # (last_activity is the job's last change here: it moves too when the second turned)
            changed = {h: {k: v for k, v in t.items() if k != "last_activity"}
                       for h, t in delta["torrents"].items()}
            assert changed == {hashes[0]: {"category": "tv"}, hashes[1]: {"tags": "hd"}}
            info = {t["hash"]: t for t in (await c.get("/api/v2/torrents/info")).json()}
            assert (info[hashes[0]]["category"], info[hashes[1]]["tags"]) == ("tv", "hd")
            after = await rows()
            assert [row["labels"] for row in after] == [[], ["hd"], []]

            r = await c.patch("/api/settings", json={"ratio_limit": 3.5})
            assert r.status_code == 200, r.text
            delta = await maindata(delta["rid"])
            assert {h: t.get("max_ratio") for h, t in delta["torrents"].items()} == dict.fromkeys(hashes, 3.5)
            assert {t["max_ratio"] for t in (await c.get("/api/v2/torrents/info")).json()} == {3.5}
            assert [row["seedRatioLimit"] for row in await rows()] == [3.5] * 3
            assert "torrents" not in await maindata(delta["rid"])


def keep_existing(url: str, info_hash: str, root: Path, data: dict[str, bytes]) -> None:
    """(In a worker thread.) setLocation to a folder that has one of the torrent's files already."""
    client = qbt_client(url)
    client.torrents_set_location(location="new", torrent_hashes=info_hash)
    assert client.torrents_info(torrent_hashes=info_hash)[0].save_path == str((root / "new").resolve())
    client.torrents_delete(delete_files=True, torrent_hashes=info_hash)


async def test_set_location_takes_a_file_already_there_as_qbittorrent_does(tmp_path: Path) -> None:
    """qBittorrent's setLocation keeps the files already at the new place (libtorrent's
    ``dont_replace``): the job takes them there (verified, and the user's: its delete leaves
    them) and moves the rest; its own copy of a file taken stays at the old place. Before, a
    file in the way refused the move (409)."""
    body, info_hash = torrent_bytes("kept")
    data = {"a.bin": payload(40000, 3), "b.bin": payload(30000, 4)}
    async with running_api(tmp_path) as api:
        root = api.download_root
        job, _ = await api.service.add(body, save_path="old", paused=True)
        for name, content in data.items():  # (the job's own, as if downloaded)
            (root / "old" / "kept").mkdir(parents=True, exist_ok=True)
            (root / "old" / "kept" / name).write_bytes(content)
        (root / "new" / "kept").mkdir(parents=True)
        (root / "new" / "kept" / "a.bin").write_bytes(data["a.bin"])  # (the user's copy)
        await anyio.to_thread.run_sync(keep_existing, api.url, info_hash, root, data)
    assert (root / "new" / "kept" / "a.bin").read_bytes() == data["a.bin"]  # (taken, then kept)
    assert not (root / "new" / "kept" / "b.bin").exists()  # (moved there, then deleted)
    assert (root / "old" / "kept" / "a.bin").read_bytes() == data["a.bin"]  # (its copy, left)
    assert not (root / "old" / "kept" / "b.bin").exists()


def paths_and_mode(url: str, info_hash: str, root: Path) -> None:
    """(In a worker thread.) The calls qbittorrent-api makes with 2.8.4's and 2.8.14's names:
    ``setDownloadPath`` and ``setSavePath`` name their torrents ``id``; the alternative limits
    are set, not toggled, from WebAPI 2.8.14 on."""
    client = qbt_client(url)
    client.torrents_set_download_path(download_path="part", torrent_hashes=info_hash)
    assert client.torrents_info(torrent_hashes=info_hash)[0].download_path == str((root / "part").resolve())
    client.torrents_set_save_path(save_path="moved", torrent_hashes=info_hash)
    assert client.torrents_info(torrent_hashes=info_hash)[0].save_path == str((root / "moved").resolve())
    for on in (True, True, False):
        client.transfer_set_speed_limits_mode(intended_state=on)
        assert client.transfer_speed_limits_mode() == ("1" if on else "0")


async def test_set_save_path_set_download_path_and_set_speed_limits_mode_as_qbittorrent_api_calls_them(
        tmp_path: Path) -> None:
    """Before, ``setSavePath`` and ``setSpeedLimitsMode`` were 404 and ``setDownloadPath`` a 400
    (it read ``hashes``): a tool on qbittorrent-api failed at each."""
    body, info_hash = torrent_bytes("paths")
    async with running_api(tmp_path) as api:
        await api.service.add(body, save_path="old", paused=True)
        await anyio.to_thread.run_sync(paths_and_mode, api.url, info_hash, api.download_root)
        c = api.client
        for form, said in (({}, "Missing required parameters: mode"),
                           ({"mode": "on"}, "'mode': invalid argument")):
            r = await c.post("/api/v2/transfer/setSpeedLimitsMode", data=form)
            assert (r.status_code, r.text) == (400, said)
        r = await c.post("/api/v2/transfer/setSpeedLimitsMode", data={"mode": "2"})  # (not 0: on)
        assert r.status_code == 200 and (await c.get("/api/v2/transfer/speedLimitsMode")).text == "1"
        r = await c.post("/api/v2/torrents/setSavePath", data={"id": info_hash, "path": ""})
        assert (r.status_code, r.text) == (400, "Save path cannot be empty")
        r = await c.post("/api/v2/torrents/setSavePath", data={"id": info_hash, "path": "/etc"})
        assert r.status_code == 400 and r.text.startswith("path: '/etc' is outside the download root"), r.text
        r = await c.post("/api/v2/torrents/setDownloadPath", data={"id": info_hash, "path": "/etc"})
        assert r.status_code == 400 and r.text.startswith("path: '/etc' is outside the download root"), r.text
        r = await c.post("/api/v2/torrents/setLocation", data={"hashes": info_hash, "location": "/etc"})
        assert r.status_code == 400 and r.text.startswith("location: '/etc' is outside"), r.text
        r = await c.post("/api/v2/torrents/createCategory", data={"category": "tv", "savePath": "/etc"})
        assert r.status_code == 400 and r.text.startswith("savePath: '/etc' is outside"), r.text
        r = await c.post("/api/v2/torrents/setSavePath",
                         data={"id": f"{info_hash}|{'e' * 40}", "path": "again"})  # (an unknown one skipped)
        assert r.status_code == 200, r.text
        info = (await c.get("/api/v2/torrents/info", params={"hashes": info_hash})).json()[0]
        assert info["save_path"] == str((api.download_root / "again").resolve())


def auto_management(url: str, info_hash: str, root: Path) -> None:
    """(In a worker thread.) qbit_manage's ``force_auto_tmm``, a category change, the preference
    an add without ``autoTMM`` follows, and a location given by hand, through qbittorrent-api."""
    client = qbt_client(url)
    client.torrents_create_category(name="tv")  # (no save path: a folder of its name in the root)
    client.torrents_create_category(name="movies", save_path="films")
    client.torrents_set_category(category="tv", torrent_hashes=info_hash)
    [info] = client.torrents_info(torrent_hashes=info_hash)
    assert (info.auto_tmm, info.save_path) == (False, str(root / "old"))
    client.torrents_set_auto_management(enable=True, torrent_hashes=info_hash)
    [info] = client.torrents_info(torrent_hashes=info_hash)
    assert (info.auto_tmm, info.save_path) == (True, str(root / "tv"))
    assert (root / "tv" / "managed" / "a.bin").is_file() and not (root / "old" / "managed").exists()
    client.torrents_set_category(category="movies", torrent_hashes=info_hash)
    assert client.torrents_info(torrent_hashes=info_hash)[0].save_path == str(root / "films")
    assert (root / "films" / "managed" / "b.bin").is_file()
    client.torrents_set_location(location="mine", torrent_hashes=info_hash)
    [info] = client.torrents_info(torrent_hashes=info_hash)
    assert (info.auto_tmm, info.save_path) == (False, str(root / "mine"))
    prefs = client.app_preferences()
    shown = (prefs.auto_tmm_enabled, prefs.torrent_changed_tmm_enabled, prefs.category_changed_tmm_enabled)
    assert shown == (False, True, False)
    client.app_set_preferences({"auto_tmm_enabled": True, "category_changed_tmm_enabled": True})
    prefs = client.app_preferences()
    assert (prefs.auto_tmm_enabled, prefs.category_changed_tmm_enabled) == (True, True)


async def test_automatic_torrent_management_moves_a_torrent_where_its_category_says(tmp_path: Path) -> None:
    """``setAutoManagement`` was a 400 ("not supported") for ``enable=true``: qbit_manage's
    ``force_auto_tmm`` failed. Now a torrent so managed moves to its category's folder (its save
    path, else a folder of its name), follows a category change, and is managed by hand once
    given a location; an add follows ``autoTMM``, else the preference ``auto_tmm_enabled``."""
    body, info_hash = torrent_bytes("managed")
    async with running_api(tmp_path) as api:
        root = api.download_root.resolve()
        await api.service.add(body, save_path="old", paused=True)
        (root / "old" / "managed").mkdir(parents=True)
        (root / "old" / "managed" / "a.bin").write_bytes(payload(40000, 3))
        (root / "old" / "managed" / "b.bin").write_bytes(payload(30000, 4))
        await anyio.to_thread.run_sync(auto_management, api.url, info_hash, root)
        c = api.client
        other, other_hash = torrent_bytes("later")
        r = await c.post("/api/v2/torrents/add", data={"category": "tv", "paused": "true", "savepath": "x"},
                         files={"torrents": ("later.torrent", other)})  # (the preference's: managed)
        qbt_added(r)
        info = (await c.get("/api/v2/torrents/info", params={"hashes": other_hash})).json()[0]
        assert (info["auto_tmm"], info["save_path"]) == (True, str(root / "tv"))
        r = await c.post("/api/v2/torrents/editCategory", data={"category": "tv", "savePath": "shows"})
        assert r.status_code == 200, r.text  # (category_changed_tmm_enabled: it follows)
        info = (await c.get("/api/v2/torrents/info", params={"hashes": other_hash})).json()[0]
        assert (info["auto_tmm"], info["save_path"]) == (True, str(root / "shows"))
        r = await c.post("/api/v2/torrents/setAutoManagement", data={"hashes": other_hash, "enable": "false"})
        assert r.status_code == 200
        [job] = [j for j in api.service.list() if j.info_hash == other_hash]
        assert not job.features.auto_managed


async def test_preferences_this_daemon_cannot_change_are_shown_and_a_change_refused(tmp_path: Path) -> None:
    """qBittorrent's WebUI, DNS, embedded tracker and file pool preferences: shown as this
    daemon has them (the API's port, HTTPS or not; no alternative WebUI, no subnet that skips the
    login …), so that a settings page does not show them empty; sent with their value, accepted;
    a change is a 400 naming the field (it was ignored with a 200: a change that never happened)."""
    async with running_api(tmp_path) as api:
        async with httpx.AsyncClient(base_url=api.url, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            prefs = (await c.get("/api/v2/app/preferences")).json()
            assert (prefs["web_ui_port"], prefs["use_https"]) == (api.server.bound_port, False)
            assert (prefs["bypass_auth_subnet_whitelist_enabled"], prefs["alternative_webui_enabled"],
                    prefs["enable_embedded_tracker"], prefs["web_ui_host_header_validation_enabled"]) == (
                False, False, False, True)
            assert prefs["file_pool_size"] == api.service.config.max_open_files
            assert {"127.0.0.1", "localhost"} <= set(prefs["web_ui_domain_list"].split(";"))
            same = {k: prefs[k] for k in ("web_ui_port", "dyndns_enabled", "file_pool_size", "use_https")}
            r = await c.post("/api/v2/app/setPreferences", data={"json": json.dumps(same)})
            assert r.status_code == 200, r.text
            for change in ({"web_ui_port": 8080}, {"bypass_auth_subnet_whitelist_enabled": True},
                           {"dyndns_enabled": True}, {"file_pool_size": 7},
                           {"web_ui_domain_list": "*"}):
                r = await c.post("/api/v2/app/setPreferences", data={"json": json.dumps(change)})
                [name] = change
                assert r.status_code == 400 and name in r.text, (change, r.text)
                assert "cannot be changed" in r.text


@pytest.mark.parametrize("call, form, shown", [
    ("setUploadLimit", {"limit": "100000"}, ("up_limit", 100000)),
    ("setDownloadLimit", {"limit": "200000"}, ("dl_limit", 200000)),
    ("toggleSequentialDownload", {}, ("seq_dl", True)),
    ("toggleFirstLastPiecePrio", {}, ("f_l_piece_prio", True)),
    ("setSuperSeeding", {"value": "true"}, ("super_seeding", True)),
    ("setForceStart", {"value": "true"}, ("force_start", True)),
    ("addTags", {"tags": "one,two"}, ("tags", "one, two")),
    ("setShareLimits", {"ratioLimit": "2", "seedingTimeLimit": "60"}, ("ratio_limit", 2)),
])
async def test_an_edit_of_many_torrents_writes_their_records_together(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, call: str, form: dict[str, str],
        shown: tuple[str, object]) -> None:
    """``hashes=all`` of a limit, a toggle, force-start, tags or share limits: the torrents'
    records are written a few dozen a transaction, not one (two) a torrent after the other
    (10 000 took 6-13 s, force-start 35: bench/RESULTS.md). A force-start resumes the paused
    torrents alone: one running already runs forced (a resume of each looked at its files)."""
    from tests.spies import records_written
    from torrent_engine.jobs.service import JobService

    resumed: list[str] = []
    resume = JobService.resume

    async def noted(self: JobService, job_id: str) -> Any:
        resumed.append(job_id)
        return await resume(self, job_id)

    async with running_api(tmp_path) as api:
        async with httpx.AsyncClient(base_url=api.url, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            for i in range(16):
                data, _ = torrent_bytes(f"edit{i}")
                qbt_added(await c.post("/api/v2/torrents/add", files={"torrents": (f"{i}.torrent", data)},
                                       data={"paused": "true" if i < 4 else "false"}))
            groups = records_written(monkeypatch)
            monkeypatch.setattr(JobService, "resume", noted)
            answer = await c.post(f"/api/v2/torrents/{call}", data={"hashes": "all", **form})
            assert answer.status_code == 200, answer.text
            torrents = (await c.get("/api/v2/torrents/info")).json()
            key, value = shown
            assert len(torrents) == 16 and all(t[key] == value for t in torrents), [t[key] for t in torrents]
            assert sum(groups) >= 16 and len(groups) < 8, groups
            assert len(resumed) == (4 if call == "setForceStart" else 0)


@pytest.mark.parametrize("call", ["pause", "resume", "recheck", "delete"])
async def test_an_action_on_many_torrents_makes_one_round_of_the_queue(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, call: str) -> None:
    """``torrents/pause|resume|recheck|delete`` with ``hashes=all`` changes the torrents together
    (``JobService.each``): the queue's rounds each change asks for are one, after all of them
    (one a torrent, each walking the awake jobs, made a pause of 10 000 take seconds)."""
    from tests.spies import queue_rounds

    async with running_api(tmp_path) as api:
        async with httpx.AsyncClient(base_url=api.url, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            for i in range(12):
                data, _ = torrent_bytes(f"many{i}")
                qbt_added(await c.post("/api/v2/torrents/add", files={"torrents": (f"{i}.torrent", data)}))
            if call == "resume":
                assert (await c.post("/api/v2/torrents/pause", data={"hashes": "all"})).status_code == 200
            rounds = queue_rounds(monkeypatch)
            form = {"hashes": "all", **({"deleteFiles": "false"} if call == "delete" else {})}
            assert (await c.post(f"/api/v2/torrents/{call}", data=form)).status_code == 200
            assert 1 <= len(rounds) <= 2  # (the one after them; the service's tick may fall in between)
            states = {t["state"] for t in (await c.get("/api/v2/torrents/info")).json()}
            if call == "delete":
                assert states == set()
            elif call == "pause":
                assert states == {"pausedDL"} or states == {"stoppedDL"}
            else:
                assert "pausedDL" not in states and "stoppedDL" not in states
