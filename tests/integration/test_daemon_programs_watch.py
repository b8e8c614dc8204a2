"""The daemon as a real process runs programs when a job is added and when its download completes
(set through qBittorrent's ``app/setPreferences`` and Transmission's ``session-set``, kept over a
restart), and adds the files dropped into a watched folder (set by its config file, then by both
dialects)."""

from __future__ import annotations

import base64
import json
import shlex
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.integration.helpers import loopback_config, make_payload, make_torrent
from tests.integration.test_api_daemon import Daemon, daemon
from tests.unit.torrent_factory import make_torrent as make_small_torrent
from tests.unit.torrent_factory import payload
from torrent_engine.session import Session

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

RECORDER = """import json, os, sys
env = {k: v for k, v in os.environ.items() if k.startswith("TR_")}
with open(LOG, "a") as f:
    f.write(json.dumps({"argv": sys.argv[1:], "env": env}) + "\\n")
"""


def recorder(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """An executable script (as Transmission runs one: no arguments of its own) that notes its
    arguments and Transmission's variables in a file, one line a run; (script, log)."""
    log = tmp_path / "runs.jsonl"
    script = tmp_path / name
    script.write_text(f"#!{sys.executable}\nLOG = {str(log)!r}\n{RECORDER}")
    script.chmod(0o755)
    return script, log


async def runs(log: Path, count: int) -> list[dict[str, Any]]:
    with anyio.fail_after(90):
        while not log.exists() or len(log.read_text().splitlines()) < count:
            await anyio.sleep(0.1)
    return [json.loads(line) for line in log.read_text().splitlines()]


async def rpc(d: Daemon, method: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """A Transmission RPC call (with its session-id hand-shake)."""
    r = await d.client.post("/transmission/rpc", json={"method": method, "arguments": arguments})
    if r.status_code == 409:
        sid = r.headers["x-transmission-session-id"]
        r = await d.client.post("/transmission/rpc", json={"method": method, "arguments": arguments},
                                headers={"X-Transmission-Session-Id": sid})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_programs_on_add_and_on_completion_of_a_real_download(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed", (("a.bin", 200_000), ("b.bin", 30_000))))
    script, log = recorder(tmp_path, "on added.py")  # (a space in its path: one argument still)
    command = (f"{sys.executable} {shlex.quote(str(script))} completed %N %L %G %F %R %D %C %Z %I %J %K "
               "--name=%N 100%%")
    async with Session(torrent, tmp_path / "seed", config=loopback_config()) as seeder:
        await seeder.wait_ready()
        async with daemon(tmp_path) as d:
            r = await d.client.post("/api/v2/app/setPreferences", data={"json": json.dumps(
                {"autorun_enabled": True, "autorun_program": command})})
            assert r.status_code == 200, r.text
            bad = await d.client.post("/api/v2/app/setPreferences", data={"json": json.dumps(
                {"autorun_on_torrent_added_program": "prog %Q"})})
            assert bad.status_code == 400 and bad.text.startswith("autorun_on_torrent_added_program: ")
            assert "(the setting run_on_added)" in bad.text and "%Q" in bad.text  # (as the client named it)
            answer = await rpc(d, "session-set", {"script-torrent-added-enabled": True,
                                                  "script-torrent-added-filename": str(script)})
            assert answer["result"] == "success", answer
            r = await d.client.post("/api/jobs", json={
                "source": base64.b64encode(torrent.to_bytes()).decode(), "category": "tv",
                "tags": ["hd", "new"], "peers": [f"127.0.0.1:{seeder.listen_port}"]})
            assert r.status_code == 201, r.text
            job = r.json()
            seen = await runs(log, 2)
            with anyio.fail_after(30):  # (a run is shown on the job once it ended)
                while (await d.client.get(f"/api/jobs/{job['id']}")).json()["last_program"] is None:
                    await anyio.sleep(0.1)
            shown = (await d.client.get(f"/api/jobs/{job['id']}")).json()["last_program"]
            assert shown["exit_code"] == 0 and not shown["timed_out"], shown
        async with daemon(tmp_path) as d:  # a restart keeps the settings
            prefs = (await d.client.get("/api/v2/app/preferences")).json()
            assert prefs["autorun_enabled"] is True and prefs["autorun_program"] == command
            assert prefs["autorun_on_torrent_added_enabled"] is True
            session = (await rpc(d, "session-get", {}))["arguments"]
            assert session["script-torrent-added-filename"] == str(script)
            assert session["script-torrent-added-enabled"] is True
            assert session["script-torrent-done-enabled"] is True
    by_event = {r["argv"][0] if r["argv"] else "added": r for r in seen}
    assert sorted(by_event) == ["added", "completed"]
    added = by_event["added"]
    assert added["argv"] == []  # (Transmission's script: told by its environment)
    info_hash = torrent.info_hash.hex()
    env = added["env"]
    assert env["TR_TORRENT_NAME"] == torrent.name and env["TR_TORRENT_HASH"] == info_hash
    assert env["TR_TORRENT_ID"] == "1" and env["TR_TORRENT_LABELS"] == "hd,new"
    save = str((tmp_path / "downloads").resolve())
    assert env["TR_TORRENT_DIR"] == save and env["TR_APP_VERSION"]
    assert torrent.info_hash_v2 is not None
    assert by_event["completed"]["argv"] == [
        "completed", torrent.name, "tv", "hd,new", f"{save}/{torrent.name}", f"{save}/{torrent.name}", save,
        "2", str(torrent.payload_size), info_hash, torrent.info_hash_v2.hex(), info_hash,
        f"--name={torrent.name}", "100%"]
    assert by_event["completed"]["env"]["TR_TORRENT_BYTES_DOWNLOADED"] != "0"


async def test_a_watched_folder_from_the_config_file_then_both_dialects(tmp_path: Path) -> None:
    watch = tmp_path / "watch"
    (watch / "tv").mkdir(parents=True)
    config = tmp_path / "te.toml"
    config.write_text(f"watch-folder = [{json.dumps(str(watch))}]\nwatch-interval = 0.2\n")
    one = make_small_torrent([(("a.bin",), payload(20000, 1))], 16384, name="one")
    two = make_small_torrent([(("b.bin",), payload(20000, 2))], 16384, name="two")
    three = make_small_torrent([(("c.bin",), payload(20000, 3))], 16384, name="three")
    four = make_small_torrent([(("d.bin",), payload(20000, 4))], 16384, name="four")
    magnet = "magnet:?xt=urn:btih:" + "d" * 40 + "&dn=from-a-magnet"
    async with daemon(tmp_path, "--config", str(config)) as d:
        (watch / "one.torrent").write_bytes(one.to_bytes())
        (watch / "tv" / "two.torrent").write_bytes(two.to_bytes())
        (watch / "link.magnet").write_text(magnet + "\n")
        (watch / "broken.torrent").write_bytes(b"this is not bencode")
        (watch / "readme.txt").write_text("left alone")
        done = ["one.torrent.added", "tv/two.torrent.added", "link.magnet.added", "broken.torrent.invalid"]
        with anyio.fail_after(30):
            while not all((watch / name).exists() for name in done):
                await anyio.sleep(0.1)
        assert (watch / "readme.txt").exists()
        jobs = {j["name"]: j for j in (await d.client.get("/api/jobs")).json()["jobs"]}
        assert sorted(jobs) == ["from-a-magnet", "one", "two"]
        assert jobs["two"]["features"]["category"] == "tv" and jobs["one"]["features"]["category"] == ""
        categories = (await d.client.get("/api/categories")).json()["categories"]
        assert [c["name"] for c in categories] == ["tv"]  # (made, as qBittorrent makes it)
        status = (await d.client.get("/api/watch")).json()
        refused = [e for e in status["recent"] if not e["added"]]
        assert [Path(e["file"]).name for e in refused] == ["broken.torrent"] and refused[0]["reason"]
        assert status["folders"] == [{"folder": str(watch), "save_path": None, "error": None}]

        prefs = (await d.client.get("/api/v2/app/preferences")).json()
        assert prefs["scan_dirs"] == {str(watch): 1}  # (1: the default save path, as qBittorrent says)
        r = await d.client.post("/api/v2/app/setPreferences", data={"json": json.dumps(
            {"scan_dirs": {str(tmp_path / "missing"): 1}})})
        assert r.status_code == 400 and "scan_dirs" in r.text and "no such folder" in r.text
        r = await d.client.post("/api/v2/app/setPreferences", data={"json": json.dumps(
            {"scan_dirs": {str(watch): 1}})})  # (as a qBittorrent client sets it)
        assert r.status_code == 200, r.text
        (watch / "four.torrent").write_bytes(four.to_bytes())
        with anyio.fail_after(30):
            while not (watch / "four.torrent.added").exists():
                await anyio.sleep(0.1)
        jobs = {j["name"]: j for j in (await d.client.get("/api/jobs")).json()["jobs"]}
        assert jobs["four"]["options"]["save_path"] == jobs["one"]["options"]["save_path"]
        session = (await rpc(d, "session-get", {"fields": ["watch-dir", "watch-dir-enabled"]}))["arguments"]
        assert session == {"watch-dir": str(watch), "watch-dir-enabled": True}
        other = tmp_path / "other"
        other.mkdir()
        answer = await rpc(d, "session-set", {"watch-dir": str(other)})
        assert answer["result"] == "success", answer
        (other / "three.torrent").write_bytes(three.to_bytes())
        with anyio.fail_after(30):
            while not (other / "three.torrent.added").exists():
                await anyio.sleep(0.1)
        assert "three" in {j["name"] for j in (await d.client.get("/api/jobs")).json()["jobs"]}
        # qBittorrent's auto_delete_mode 1 (Transmission's trash-original-torrent-files): deleted
        r = await d.client.post("/api/v2/app/setPreferences",
                                data={"json": json.dumps({"auto_delete_mode": 1})})
        assert r.status_code == 200, r.text
        session = (await rpc(d, "session-get", {"fields": ["trash-original-torrent-files"]}))["arguments"]
        assert session == {"trash-original-torrent-files": True}
        five = make_small_torrent([(("e.bin",), payload(20000, 5))], 16384, name="five")
        (other / "five.torrent").write_bytes(five.to_bytes())
        with anyio.fail_after(30):
            while "five" not in {j["name"] for j in (await d.client.get("/api/jobs")).json()["jobs"]}:
                await anyio.sleep(0.1)
            while (other / "five.torrent").exists():
                await anyio.sleep(0.1)
        assert sorted(p.name for p in other.iterdir()) == ["three.torrent.added"]
        r = await d.client.post("/api/v2/app/setPreferences",
                                data={"json": json.dumps({"auto_delete_mode": 2})})
        assert r.status_code == 400 and r.text.startswith("auto_delete_mode: "), r.text
        assert (await rpc(d, "session-set", {"trash-original-torrent-files": False}))["result"] == "success"
        assert (await d.client.get("/api/v2/app/preferences")).json()["auto_delete_mode"] == 0
        answer = await rpc(d, "session-set", {"watch-dir": str(tmp_path / "missing")})
        assert answer["result"] != "success" and "watch-dir" in answer["result"]
    async with daemon(tmp_path, "--config", str(config)) as d:  # the dialects' change is kept
        settings = (await d.client.get("/api/settings")).json()
        assert settings["watch_folders"] == {str(other): None} and settings["watch_interval"] == 0.2


async def test_a_missing_watched_folder_or_a_bad_program_stops_the_start_saying_which(tmp_path: Path) -> None:
    base = [sys.executable, "-m", "torrent_engine", "daemon", "--state-dir", str(tmp_path / "state"),
            "--download-dir", str(tmp_path / "downloads"), "--api-port", "0", "--listen-host", "127.0.0.1",
            "--no-trackers", "--no-dht", "--no-port-mapping", "--no-lsd"]
    done = await anyio.run_process([*base, "--watch-folder", str(tmp_path / "nowhere")], check=False)
    told = done.stderr.decode()
    assert done.returncode == 1 and "watch_folders" in told and str(tmp_path / "nowhere") in told, told
    done = await anyio.run_process([*base, "--run-on-completed", "notify %Q"], check=False)
    told = done.stderr.decode()
    assert done.returncode == 1 and "run_on_completed" in told and "%Q" in told, told
