"""The daemon's log as clients read it: qBittorrent's ``log/main`` and ``log/peers`` driven by
qbittorrent-api (a job's events, an engine's message, the peers the IP filter and the port filter
refused), read after the last line seen and by level as qBittorrent reads its fields; our
``/api/log``; an admin's alone."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.integration.api_helpers import qbt_client, running_api
from tests.integration.helpers import small_v1
from tests.integration.test_api_users import as_user, qbt_as, users
from torrent_engine.logbook import LogBook

pytestmark = pytest.mark.anyio

DEAD_TRACKER = "http://127.0.0.1:1/announce"  # (nothing listens on port 1: each announce fails)


def _drive(url: str, data: bytes, info_hash: str) -> dict[str, Any]:
    """What a tool does through qbittorrent-api (in a worker thread): add, pause, resume and
    delete a torrent, ban an address, add peers the filters refuse; what the log then says."""
    qbt = qbt_client(url)
    first = qbt.log_main()
    qbt.app_set_preferences({"banned_IPs": "127.0.0.9", "block_peers_on_privileged_ports": True})
    qbt.torrents_add(torrent_files=data, save_path="got")
    qbt.torrents_add_trackers(torrent_hash=info_hash, urls=DEAD_TRACKER)
    qbt.torrents_pause(torrent_hashes=info_hash)
    qbt.torrents_resume(torrent_hashes=info_hash)
    refused = ["127.0.0.9:6881", "127.0.0.10:80", "127.0.0.11:6000"]  # (banned; a privileged port; neither)
    qbt.torrents_add_peers(peers=refused, torrent_hashes=info_hash)
    return {"first": first, "qbt": qbt}


async def test_a_tool_reads_the_log_of_its_torrents_and_the_peers_refused(tmp_path: Path) -> None:
    t = small_v1(tmp_path / "payload", [("a.bin", 70_000)], "logged")
    info_hash = t.info_hash.hex()
    book = LogBook()
    with book.capturing(logging.getLogger("torrent_engine")):
        async with running_api(tmp_path, config_options={"tracker_enabled": True}, logbook=book) as api:
            got = await anyio.to_thread.run_sync(_drive, api.url, t.to_bytes(), info_hash)
            qbt = got["qbt"]
            # (nothing logged before but the port chosen at the start: the add's lines come next)
            port = api.service.get_settings().listen_port
            assert [e["message"] for e in got["first"]] == [
                f"listening port {port} chosen for incoming peers, a free one"]

            def lines() -> list[dict[str, Any]]:
                return [dict(entry) for entry in qbt.log_main()]

            with anyio.fail_after(30):  # (the tracker's failure, the peers' refusals: as they come)
                while not any(DEAD_TRACKER in e["message"] for e in await anyio.to_thread.run_sync(lines)) \
                        or len(await anyio.to_thread.run_sync(qbt.log_peers)) < 2:
                    await anyio.sleep(0.1)
            mine = [e for e in await anyio.to_thread.run_sync(lines) if '"logged"' in e["message"]]
            assert [(e["type"], e["message"].split('"')[0]) for e in mine] == [
                (1, "Added "), (1, "Paused "), (1, "Resumed ")], mine
            everything = await anyio.to_thread.run_sync(lines)
            assert [e["id"] for e in everything] == list(range(len(everything)))
            assert all(set(e) == {"id", "message", "timestamp", "type"} and isinstance(e["timestamp"], int)
                       for e in everything)
            failed = next(e for e in everything if DEAD_TRACKER in e["message"])
            assert failed["type"] == 2 and "failed" in failed["message"], failed  # (retried: info)
            # the peers, as a real qbittorrent-nox logs the same (tests/interop/test_qbittorrent_log.py)
            peers = [dict(p) for p in await anyio.to_thread.run_sync(qbt.log_peers)]
            assert [(p["id"], p["ip"], p["blocked"], p["reason"]) for p in peers] == [
                (0, "127.0.0.9", True, "IP filter"), (1, "127.0.0.10", True, "port filter")]
            assert [p["ip"] for p in await anyio.to_thread.run_sync(
                lambda: qbt.log_peers(last_known_id=0))] == ["127.0.0.10"]

            # read after the last line seen, by level, as qBittorrent reads the fields
            added = mine[0]["id"]
            after = await anyio.to_thread.run_sync(lambda: list(map(dict, qbt.log_main(last_known_id=added))))
            assert after == everything[added + 1:]
            no_normal = await anyio.to_thread.run_sync(lambda: qbt.log_main(normal=False))
            assert no_normal and all(e["type"] != 1 for e in no_normal)
            only_normal = await anyio.to_thread.run_sync(
                lambda: qbt.log_main(info=False, warning=False, critical=False))
            assert [e["id"] for e in only_normal] == [e["id"] for e in everything if e["type"] == 1]
            c = api.client
            for query, ids in (("last_known_id=abc", len(everything)), ("last_known_id=-7", len(everything)),
                               ("normal=maybe", len(everything)), (f"last_known_id={10**6}", 0)):
                r = await c.get(f"/api/v2/log/main?{query}")
                n = len(r.json())
                assert r.status_code == 200 and (n >= ids if ids else n == 0), (query, r.text)

            await anyio.to_thread.run_sync(lambda: qbt.torrents_delete(True, torrent_hashes=info_hash))
            with anyio.fail_after(30):
                while not any(e["message"].startswith('Removed "logged"')
                              for e in await anyio.to_thread.run_sync(lines)):
                    await anyio.sleep(0.1)
            mine = [e for e in await anyio.to_thread.run_sync(lines) if '"logged"' in e["message"]]
            assert [e["message"].split('"')[0] for e in mine] == ["Added ", "Paused ", "Resumed ", "Removed "]

            # our own API: the same lines and peers, by level name and after an id
            r = await c.get("/api/log", params={"level": "normal"})
            ours = r.json()["lines"]
            assert r.status_code == 200
            assert [line["message"] for line in ours if '"logged"' in line["message"]] == \
                [e["message"] for e in mine]
            assert {line["level"] for line in ours} == {"normal"}
            r = await c.get("/api/log/peers", params={"after": "0"})
            assert [(p["ip"], p["reason"]) for p in r.json()["peers"]] == [("127.0.0.10", "port filter")]
            for params, field in (({"after": "x"}, "after"), ({"after": "-2"}, "after"),
                                  ({"level": "loud"}, "level")):
                r = await c.get("/api/log", params=params)
                assert (r.status_code, r.json()["field"]) == (400, field), r.text


async def test_the_log_is_an_admin_s_to_read(tmp_path: Path) -> None:
    users(tmp_path / "state")
    async with running_api(tmp_path) as api:
        assert (await api.client.get("/api/log")).status_code == 200
        assert (await api.client.get("/api/v2/log/main")).status_code == 200
        async with as_user(api, "alice") as alice:
            for path in ("/api/log", "/api/log/peers"):
                assert (await alice.get(path)).status_code == 403
        async with qbt_as(api, "alice") as q:
            for path in ("/api/v2/log/main", "/api/v2/log/peers"):
                assert (await q.get(path)).status_code == 403
