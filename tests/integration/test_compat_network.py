"""The IP filter through both dialects, in their names and units: qBittorrent's ip_filter_*,
banned_IPs and transfer/banPeers; Transmission's blocklist-* and blocklist-update (from a list
served on 127.0.0.1); our own /api/ipfilter shows what the lists gave."""

from __future__ import annotations

import base64
import gzip
import http.server
import json
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests.conftest import require_module, require_program
from tests.integration.api_helpers import TOKEN, Api, running_api
from tests.unit.torrent_factory import make_torrent, payload

pytestmark = pytest.mark.anyio


@contextmanager
def serving(body: bytes) -> Iterator[str]:
    """A URL on 127.0.0.1 answering ``body`` (and counting the requests in the URL's server)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            self.send_response(200 if self.path == "/list.gz" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


async def rpc(api: Api, method: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=api.url, auth=("u", TOKEN), timeout=30) as c:
        r = await c.post("/transmission/rpc", json={"method": method})
        sid = r.headers["x-transmission-session-id"]
        r = await c.post("/transmission/rpc", json={"method": method, "arguments": arguments or {}},
                         headers={"X-Transmission-Session-Id": sid})
        assert r.status_code == 200, r.text
        answer: dict[str, Any] = r.json()
        return answer


async def test_qbittorrent_sets_the_ip_filter_and_bans_peers(tmp_path: Path) -> None:
    blocklist = tmp_path / "ipfilter.dat"
    blocklist.write_bytes(b"010.000.000.000 - 010.255.255.255 , 000 , private\n"
                          b"192.000.002.000 - 192.000.002.255 , 200 , allowed\nnot a rule\n")
    async with running_api(tmp_path) as api:
        c = api.client
        prefs = (await c.get("/api/v2/app/preferences")).json()
        assert (prefs["ip_filter_enabled"], prefs["ip_filter_path"], prefs["ip_filter_trackers"],
                prefs["banned_IPs"]) == (False, "", False, "")
        r = await c.post("/api/v2/app/setPreferences", data={"json": json.dumps(
            {"ip_filter_enabled": True, "ip_filter_path": str(blocklist), "ip_filter_trackers": True,
             "banned_IPs": "127.0.0.9\n::7\n"})})
        assert r.status_code == 200, r.text
        prefs = (await c.get("/api/v2/app/preferences")).json()
        assert prefs["ip_filter_enabled"] is True and prefs["ip_filter_path"] == str(blocklist)
        assert prefs["ip_filter_trackers"] is True and prefs["banned_IPs"] == "127.0.0.9\n::7"
        shared = api.service.manager.shared
        assert shared.ip_filter.blocked("10.1.2.3") and shared.ip_filter.blocked("127.0.0.9")
        assert not shared.ip_filter.blocked("192.0.2.1") and not shared.ip_filter.blocked("127.0.0.1")
        status = (await c.get("/api/ipfilter")).json()
        assert status["file"]["ranges"] == 1 and status["file"]["bad_lines"] == 1
        assert status["file"]["first_bad"][0]["line"] == 3 and status["banned"] == 2

        r = await c.post("/api/v2/transfer/banPeers", data={"peers": "127.0.0.5:6881|[::5]:51413"})
        assert r.status_code == 200, r.text
        prefs = (await c.get("/api/v2/app/preferences")).json()
        assert prefs["banned_IPs"].split("\n") == ["127.0.0.9", "::7", "127.0.0.5", "::5"]
        assert shared.ip_filter.blocked("::5")
        assert (await c.get("/api/settings")).json()["banned_ips"] == ["127.0.0.9", "::7", "127.0.0.5", "::5"]

        # a bad value names its field, and nothing of the call is applied
        for bad, field in (({"ip_filter_path": str(tmp_path / "missing.dat")}, "ip_filter_path"),
                           ({"ip_filter_enabled": False, "banned_IPs": "1.2.3.4\nnonsense"}, "banned_IPs"),
                           ({"ip_filter_trackers": "yes"}, "ip_filter_trackers")):
            r = await c.post("/api/v2/app/setPreferences", data={"json": json.dumps(bad)})
            assert r.status_code == 400 and field in r.text, (bad, r.text)
        r = await c.post("/api/v2/transfer/banPeers", data={"peers": "127.0.0.6:1|nohost"})
        assert r.status_code == 400 and "peers" in r.text
        assert (await c.get("/api/v2/app/preferences")).json()["ip_filter_enabled"] is True
        assert not shared.ip_filter.blocked("127.0.0.6")


async def test_transmission_blocklist_url_and_update(tmp_path: Path) -> None:
    text = b"Org:10.0.0.0-10.0.0.255\n172.16.0.0/12\n2001:db8::/32\njunk\n"
    with serving(gzip.compress(text)) as base:
        async with running_api(tmp_path) as api:
            got = (await rpc(api, "session-get", {"fields": ["blocklist-enabled", "blocklist-url",
                                                             "blocklist-size"]}))["arguments"]
            assert got == {"blocklist-enabled": False, "blocklist-url": "", "blocklist-size": 0}
            answer = await rpc(api, "blocklist-update")
            assert answer["result"] != "success" and "URL" in answer["result"]
            answer = await rpc(api, "session-set", {"blocklist-enabled": True,
                                                    "blocklist-url": f"{base}/list.gz"})
            assert answer["result"] == "success", answer
            answer = await rpc(api, "blocklist-update")
            assert answer == {"result": "success", "arguments": {"blocklist-size": 3}}
            assert (await rpc(api, "session-get"))["arguments"]["blocklist-size"] == 3
            shared = api.service.manager.shared
            assert shared.ip_filter.blocked("172.20.1.1") and shared.ip_filter.blocked("2001:db8::9")
            status = (await api.client.get("/api/ipfilter")).json()
            assert status["url"]["source"] == f"{base}/list.gz" and status["url"]["bad_lines"] == 1

            # a failed fetch says why and keeps the list in force
            answer = await rpc(api, "session-set", {"blocklist-url": f"{base}/gone"})
            assert answer["result"] == "success"
            answer = await rpc(api, "blocklist-update")
            assert answer["result"] != "success" and "404" in answer["result"]
            answer = await rpc(api, "session-set", {"blocklist-url": "ftp://x/list"})
            assert answer["result"] != "success" and "blocklist-url" in answer["result"]
            answer = await rpc(api, "session-set", {"blocklist-size": 7})
            assert answer["result"] != "success" and "blocklist-size" in answer["result"]
            r = await api.client.post("/api/ipfilter/update")
            assert r.status_code == 409 and "404" in r.text

            await rpc(api, "session-set", {"blocklist-url": f"{base}/list.gz"})
            assert (await api.client.post("/api/ipfilter/update")).json()["list_ranges"] == 3
        # the copy fetched is kept over a restart (no fetch needed)
        async with running_api(tmp_path) as api:
            with anyio.fail_after(10):
                while not api.service.manager.shared.ip_filter.blocked("10.0.0.1"):
                    await anyio.sleep(0.05)
            assert (await rpc(api, "session-get"))["arguments"]["blocklist-size"] == 3
            await rpc(api, "session-set", {"blocklist-enabled": False})
            assert not api.service.manager.shared.ip_filter.blocked("10.0.0.1")
            # an update while it is off fetches the list, which applies once it is on
            assert (await rpc(api, "blocklist-update"))["arguments"] == {"blocklist-size": 3}
            assert not api.service.manager.shared.ip_filter.blocked("10.0.0.1")
            await rpc(api, "session-set", {"blocklist-enabled": True})
            assert api.service.manager.shared.ip_filter.blocked("10.0.0.1")


async def test_qbittorrent_alternative_limits_schedule_and_toggle(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        c = api.client
        prefs = (await c.get("/api/v2/app/preferences")).json()
        assert (prefs["alt_dl_limit"], prefs["alt_up_limit"], prefs["scheduler_enabled"]) == (0, 0, False)
        r = await c.post("/api/v2/app/setPreferences", data={"json": json.dumps(
            {"dl_limit": 500_000, "alt_dl_limit": 10_240, "alt_up_limit": 20_480, "scheduler_enabled": False,
             "schedule_from_hour": 23, "schedule_from_min": 30, "schedule_to_hour": 6,
             "schedule_to_min": 15, "scheduler_days": 1})})
        assert r.status_code == 200, r.text
        prefs = (await c.get("/api/v2/app/preferences")).json()
        assert (prefs["alt_dl_limit"], prefs["alt_up_limit"]) == (10_240, 20_480)
        assert (prefs["schedule_from_hour"], prefs["schedule_from_min"], prefs["schedule_to_hour"],
                prefs["schedule_to_min"], prefs["scheduler_days"]) == (23, 30, 6, 15, 1)
        settings = (await c.get("/api/settings")).json()
        assert (settings["alt_schedule_from"], settings["alt_schedule_to"], settings["alt_schedule_days"]) \
            == (23 * 60 + 30, 6 * 60 + 15, 0b0111110)  # (weekdays: Monday 2 … Friday 32)

        assert (await c.get("/api/v2/transfer/speedLimitsMode")).text == "0"
        assert (await c.get("/api/v2/transfer/downloadLimit")).text == "500000"
        assert (await c.post("/api/v2/transfer/toggleSpeedLimitsMode")).status_code == 200
        assert (await c.get("/api/v2/transfer/speedLimitsMode")).text == "1"
        assert (await c.get("/api/v2/transfer/downloadLimit")).text == "10240"  # (the one in force)
        state = (await c.get("/api/v2/sync/maindata")).json()["server_state"]
        assert state["use_alt_speed_limits"] is True and state["dl_rate_limit"] == 10_240
        assert api.service.manager.shared.download_limit.rate == 10_240
        # while they are on, setDownloadLimit sets the alternative limit, as qBittorrent does
        await c.post("/api/v2/transfer/setDownloadLimit", data={"limit": "30000"})
        prefs = (await c.get("/api/v2/app/preferences")).json()
        assert (prefs["alt_dl_limit"], prefs["dl_limit"]) == (30_000, 500_000)
        await c.post("/api/v2/transfer/toggleSpeedLimitsMode")
        assert api.service.manager.shared.download_limit.rate == 500_000

        for bad, field in (({"schedule_to_hour": 24}, "schedule_to_hour"),
                           ({"scheduler_days": 10}, "scheduler_days"),
                           ({"alt_dl_limit": 10, "alt_up_limit": "fast"}, "alt_up_limit")):
            r = await c.post("/api/v2/app/setPreferences", data={"json": json.dumps(bad)})
            assert r.status_code == 400 and field in r.text, (bad, r.text)
        assert (await c.get("/api/v2/app/preferences")).json()["alt_dl_limit"] == 30_000


async def test_transmission_alternative_speeds_in_its_units(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        answer = await rpc(api, "session-set", {"alt-speed-down": 50, "alt-speed-up": 20,
                                                "alt-speed-time-begin": 1320, "alt-speed-time-end": 420,
                                                "alt-speed-time-day": 65, "alt-speed-enabled": True})
        assert answer["result"] == "success", answer
        got = (await rpc(api, "session-get"))["arguments"]
        assert {k: got[k] for k in ("alt-speed-enabled", "alt-speed-down", "alt-speed-up",
                                    "alt-speed-time-enabled", "alt-speed-time-begin",
                                    "alt-speed-time-end", "alt-speed-time-day")} == {
            "alt-speed-enabled": True, "alt-speed-down": 50, "alt-speed-up": 20,
            "alt-speed-time-enabled": False, "alt-speed-time-begin": 1320, "alt-speed-time-end": 420,
            "alt-speed-time-day": 65}
        settings = (await api.client.get("/api/settings")).json()
        assert (settings["alt_download_limit"], settings["alt_upload_limit"]) == (50_000, 20_000)
        assert api.service.manager.shared.upload_limit.rate == 20_000
        prefs = (await api.client.get("/api/v2/app/preferences")).json()
        assert prefs["scheduler_days"] == 2  # (Saturday and Sunday: qBittorrent's weekends)
        for bad, field in (({"alt-speed-time-end": 1440}, "alt-speed-time-end"),
                           ({"alt-speed-time-day": 128}, "alt-speed-time-day"),
                           ({"alt-speed-down": -1}, "alt-speed-down"),
                           ({"alt-speed-up": 5, "alt-speed-enabled": "no"}, "alt-speed-enabled")):
            answer = await rpc(api, "session-set", bad)
            assert answer["result"] != "success" and field in answer["result"], (bad, answer)
        assert (await rpc(api, "session-get"))["arguments"]["alt-speed-up"] == 20


async def test_connection_limits_in_both_dialects(tmp_path: Path) -> None:
    t = make_torrent([(("a.bin",), payload(40000, 3))], 16384, name="limits")
    async with running_api(tmp_path) as api:
        c = api.client
        prefs = (await c.get("/api/v2/app/preferences")).json()
        assert (prefs["max_connec"], prefs["max_connec_per_torrent"], prefs["max_uploads"],
                prefs["max_uploads_per_torrent"]) == (500, 60, -1, 4)  # (per torrent: the Config's)
        r = await c.post("/api/v2/app/setPreferences", data={"json": json.dumps(
            {"max_connec": 300, "max_connec_per_torrent": -1, "max_uploads": 8,
             "max_uploads_per_torrent": 2})})
        assert r.status_code == 200, r.text
        limits = api.service.manager.shared.limits
        assert (limits.max_connections, limits.max_uploads, limits.max_uploads_per_torrent) == (300, 8, 2)
        # qBittorrent's "outgoing connections per second" (30 by default, as there): below 0 is no
        # limit, and 0 no outgoing connection at all (libtorrent's connection_speed)
        assert (prefs["connection_speed"], limits.connection_speed) == (30, 30)
        for sent, kept, ours in ((12, 12, 12), (0, 0, 0), (-1, 0, -1), (-5, 0, -1), (30, 30, 30)):
            r = await c.post("/api/v2/app/setPreferences",
                             data={"json": json.dumps({"connection_speed": sent})})
            assert r.status_code == 200, r.text
            assert (limits.connection_speed, limits.dial_out) == (kept, sent != 0)
            assert (await c.get("/api/settings")).json()["connection_speed"] == ours
            assert (await c.get("/api/v2/app/preferences")).json()["connection_speed"] == ours
        got = (await rpc(api, "session-get", {"fields": ["peer-limit-global", "peer-limit-per-torrent"]}))
        assert got["arguments"] == {"peer-limit-global": 300, "peer-limit-per-torrent": 65535}
        answer = await rpc(api, "session-set", {"peer-limit-global": 240, "peer-limit-per-torrent": 40})
        assert answer["result"] == "success", answer
        settings = (await c.get("/api/settings")).json()
        assert (settings["max_connections"], settings["max_connections_per_torrent"]) == (240, 40)

        answer = await rpc(api, "torrent-add", {"metainfo": base64.b64encode(t.to_bytes()).decode(),
                                                "paused": True})
        number = answer["arguments"]["torrent-added"]["id"]
        row = (await rpc(api, "torrent-get", {"ids": [number], "fields": ["peer-limit"]}))["arguments"]
        assert row["torrents"] == [{"peer-limit": 40}]
        answer = await rpc(api, "torrent-set", {"ids": [number], "peer-limit": 7})
        assert answer["result"] == "success", answer
        row = await rpc(api, "torrent-get", {"ids": [number], "fields": ["peer-limit", "maxConnectedPeers"]})
        assert row["arguments"]["torrents"] == [{"peer-limit": 7, "maxConnectedPeers": 7}]
        job = (await c.get("/api/jobs")).json()["jobs"][0]
        assert job["options"]["max_peers"] == 7
        r = await c.patch(f"/api/jobs/{job['id']}", json={"max_peers": 9})
        assert r.status_code == 200 and r.json()["options"]["max_peers"] == 9

        for bad, field in (({"peer-limit-global": 0}, "peer-limit-global"),
                           ({"peer-limit-per-torrent": 70000}, "peer-limit-per-torrent")):
            answer = await rpc(api, "session-set", bad)
            assert answer["result"] != "success" and field in answer["result"], (bad, answer)
        answer = await rpc(api, "torrent-set", {"ids": [number], "peer-limit": -2})
        assert answer["result"] != "success" and "peer-limit" in answer["result"]
        r = await c.post("/api/v2/app/setPreferences", data={"json": json.dumps({"max_uploads": "many"})})
        assert r.status_code == 400 and "max_uploads" in r.text
        r = await c.patch(f"/api/jobs/{job['id']}", json={"max_peers": -1})
        assert r.status_code == 400 and "max_peers" in r.text
        assert (await c.get("/api/settings")).json()["max_connections"] == 240


async def test_transmission_remote_sets_them(tmp_path: Path) -> None:
    """The real ``transmission-remote``: alternative speeds and their schedule, a torrent's peer
    limit, a blocklist update; ``-si`` shows what was set."""
    exe = require_program("transmission-remote")
    t = make_torrent([(("a.bin",), payload(40000, 4))], 16384, name="remote-limits")

    def remote(port: int, *args: str) -> str:
        done = subprocess.run([exe, f"127.0.0.1:{port}", "-n", f"user:{TOKEN}", *args], capture_output=True,
                              text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    with serving(b"Org:10.0.0.0-10.0.0.255\n") as base:
        async with running_api(tmp_path) as api:
            port = api.server.bound_port
            job, _ = await api.service.add(t.to_bytes(), paused=True)
            run = anyio.to_thread.run_sync
            await run(remote, port, "-as", "-asd", "300", "-asu", "40", "--alt-speed-time-begin", "2215",
                      "--alt-speed-time-end", "0630", "--alt-speed-days", "1-5")
            await run(remote, port, "-t", str(job.number), "-pr", "12")
            s = api.service.get_settings()
            assert (s.alt_speed_enabled, s.alt_download_limit, s.alt_upload_limit) == (True, 300_000, 40_000)
            schedule = (s.alt_schedule_from, s.alt_schedule_to, s.alt_schedule_days)
            assert schedule == (22 * 60 + 15, 6 * 60 + 30, 0b0111110)  # (Monday to Friday)
            assert api.service.get(job.id).options.max_peers == 12
            await api.service.update_settings(ip_filter_enabled=True, ip_filter_url=f"{base}/list.gz")
            assert "success" in await run(remote, port, "--blocklist-update")
            assert api.service.manager.shared.ip_filter.blocked("10.0.0.9")
            info: str = await run(remote, port, "-si")
            assert "300" in info and "40" in info


async def test_qbittorrent_api_client_sets_them(tmp_path: Path) -> None:
    """The real ``qbittorrent-api`` client: preferences, the speed limits mode, banning peers."""
    qbittorrentapi = require_module("qbittorrentapi")
    blocklist = tmp_path / "list.p2p"
    blocklist.write_text("Org:10.0.0.0-10.0.0.255\n")

    def drive(url: str) -> dict[str, Any]:
        client = qbittorrentapi.Client(host=url, username="admin", password=TOKEN,
                                       REQUESTS_ARGS={"timeout": 30})
        client.auth_log_in()
        before = client.app_preferences()["block_peers_on_privileged_ports"]
        client.app_set_preferences({"ip_filter_enabled": True, "ip_filter_path": str(blocklist),
                                    "alt_dl_limit": 51200, "max_connec": 150, "scheduler_days": 2,
                                    "block_peers_on_privileged_ports": True, "upload_choking_algorithm": 2,
                                    "enable_multi_connections_from_same_ip": False})
        client.transfer_toggle_speed_limits_mode()
        client.transfer_ban_peers(peers=["127.0.0.7:6881"])
        prefs = client.app_preferences()
        with pytest.raises(qbittorrentapi.InvalidRequest400Error, match="block_peers_on_privileged_ports"):
            client.app_set_preferences({"block_peers_on_privileged_ports": "yes"})
        with pytest.raises(qbittorrentapi.InvalidRequest400Error, match="upload_choking_algorithm"):
            client.app_set_preferences({"upload_choking_algorithm": 3})
        return {"mode": client.transfer_speed_limits_mode(), "banned": prefs["banned_IPs"],
                "max_connec": prefs["max_connec"], "days": prefs["scheduler_days"],
                "limit": client.transfer_download_limit(),
                "privileged": (before, prefs["block_peers_on_privileged_ports"]),
                "choker": prefs["upload_choking_algorithm"],
                "multi": prefs["enable_multi_connections_from_same_ip"]}

    async with running_api(tmp_path) as api:
        seen = await anyio.to_thread.run_sync(drive, api.url)
        assert seen == {"mode": "1", "banned": "127.0.0.7", "max_connec": 150, "days": 2, "limit": 51200,
                        "privileged": (False, True), "choker": 2, "multi": False}
        limits = api.service.manager.shared.limits
        assert limits.block_privileged_ports and limits.seeding_choker == "anti_leech"
        assert not limits.multiple_connections_per_ip
        f = api.service.manager.shared.ip_filter
        assert f.blocked("10.0.0.3") and f.blocked("127.0.0.7")
