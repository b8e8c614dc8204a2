"""``torrent-engine daemon`` as a real process: killed with SIGKILL mid-download and restarted,
stopped with SIGTERM, driven by ``torrent-engine remote``."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx
import pytest

from tests.integration.helpers import loopback_config, make_payload, make_torrent, same_files
from torrent_engine.jobs.store import JobStore
from torrent_engine.session import Session

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

TOKEN = "daemon-test-token-abcdef0123456789"
FILES = (("big.bin", 3_000_000), ("small.bin", 10_000))


class Daemon:
    def __init__(self, proc: subprocess.Popen[bytes], url: str) -> None:
        self.proc = proc
        self.url = url
        self.client = httpx.AsyncClient(base_url=url, timeout=30,
                                        headers={"Authorization": f"Bearer {TOKEN}"})


@asynccontextmanager
async def daemon(tmp_path: Path, *extra: str, token_in_env: bool = False) -> AsyncIterator[Daemon]:
    state = tmp_path / "state"
    api_file = state / "api.json"
    api_file.unlink(missing_ok=True)
    log = open(tmp_path / "daemon.log", "ab")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "torrent_engine", "daemon", "--state-dir", str(state),
         "--download-dir", str(tmp_path / "downloads"), "--api-port", "0",
         *([] if token_in_env else ["--api-token", TOKEN]),
         "--listen-host", "127.0.0.1", "--no-trackers", "--no-dht", "--no-port-mapping", "--no-lsd", *extra],
        stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1",
             **({"TORRENT_ENGINE_API_TOKEN": TOKEN} if token_in_env else {})})
    try:
        with anyio.fail_after(60):
            while not api_file.exists():
                assert proc.poll() is None, (tmp_path / "daemon.log").read_text()
                await anyio.sleep(0.05)
        d = Daemon(proc, json.loads(api_file.read_text())["url"])
        async with d.client:
            yield d
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        log.close()


async def job(d: Daemon, job_id: str) -> dict[str, object]:
    r = await d.client.get(f"/api/jobs/{job_id}")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_sigkill_mid_download_then_restart_continues(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed", FILES), piece_length=64 * 1024)
    cfg = loopback_config(upload_rate_limit=600_000)
    async with Session(torrent, tmp_path / "seed", config=cfg) as seeder:
        await seeder.wait_ready()
        peer = f"127.0.0.1:{seeder.listen_port}"
        async with daemon(tmp_path) as d:
            r = await d.client.post("/api/jobs", json={"source": torrent.magnet_uri(), "peers": [peer]})
            assert r.status_code == 201, r.text
            job_id = r.json()["id"]
            gone = (await d.client.post("/api/jobs", json={
                "source": "magnet:?xt=urn:btih:" + "ee" * 20, "paused": True})).json()["id"]
            await d.client.delete(f"/api/jobs/{gone}")
            with anyio.fail_after(60):
                while int(str((await job(d, job_id))["done_size"])) < torrent.payload_size // 3:
                    await anyio.sleep(0.1)
            d.proc.send_signal(signal.SIGKILL)
            d.proc.wait()
        async with daemon(tmp_path) as d:
            # (the files changed after the last save: the restart checks them, which a loaded
            # machine may not have finished when the API first answers)
            with anyio.fail_after(60):
                while (after := await job(d, job_id))["state"] in ("queued", "checking"):
                    await anyio.sleep(0.05)
            assert after["state"] != "failed", after
            # every piece verified before the kill was found again, none started over
            assert int(str(after["done_size"])) >= torrent.payload_size // 3, after
            assert (await job(d, gone))["state"] == "cancelled"  # the history is intact
            with anyio.fail_after(120):
                while (await job(d, job_id))["state"] not in ("seeding", "completed"):
                    await anyio.sleep(0.2)
            final = await job(d, job_id)
            # Only what was missing at the restart came over the wire after it. (``downloaded``
            # is the job's total over its life: what came before the kill counts in it as far as
            # the record saved before the kill says — up to every byte then, in-flight pieces
            # included, which the whole download can pass; so the bytes after the restart are
            # compared with what was missing then, one piece to spare.)
            since_restart = int(str(final["downloaded"])) - int(str(after["downloaded"]))
            missing = torrent.payload_size - int(str(after["done_size"]))
            assert 0 < since_restart <= missing + torrent.piece_length, (since_restart, missing)
    assert same_files(torrent, tmp_path / "seed", tmp_path / "downloads") == []


async def test_sigterm_stops_cleanly_and_remote_drives_it(tmp_path: Path) -> None:
    async with daemon(tmp_path) as d:
        env = {**os.environ, "TORRENT_ENGINE_API_TOKEN": TOKEN}

        async def remote(*args: str) -> str:
            result = await anyio.run_process(
                [sys.executable, "-m", "torrent_engine", "remote", "--state-dir", str(tmp_path / "state"),
                 *args], env=env, check=False)
            assert result.returncode == 0, result.stderr.decode()
            return result.stdout.decode()

        out = await remote("--json", "add", "magnet:?xt=urn:btih:" + "ab" * 20 + "&dn=remote-test",
                           "--paused")
        job_id = json.loads(out)["id"]
        assert "remote-test" in await remote("list")
        torrent = make_torrent(make_payload(tmp_path / "seed", FILES, name="from-file"))
        (tmp_path / "x.torrent").write_bytes(torrent.to_bytes())
        added = json.loads(await remote("--json", "add", str(tmp_path / "x.torrent"), "--paused",
                                        "--save-path", "sub"))
        assert added["info_hash"] == torrent.info_hash.hex() and added["state"] == "paused"
        again = await anyio.run_process(
            [sys.executable, "-m", "torrent_engine", "remote", "--state-dir", str(tmp_path / "state"),
             "add", str(tmp_path / "x.torrent")], env=env, check=False)
        assert again.returncode == 0 and b"exists already" in again.stderr, again.stderr
        elsewhere = await anyio.run_process(
            [sys.executable, "-m", "torrent_engine", "remote", "--state-dir", str(tmp_path / "state"),
             "add", str(tmp_path / "x.torrent"), "--save-path", "other"], env=env, check=False)
        assert elsewhere.returncode == 1 and b"409" in elsewhere.stderr and b"save_path" in elsewhere.stderr
        port = d.url.rsplit(":", 1)[1]
        second = await anyio.run_process(
            [sys.executable, "-m", "torrent_engine", "daemon", "--state-dir", str(tmp_path / "state2"),
             "--download-dir", str(tmp_path / "downloads2"), "--api-port", port, "--api-token", TOKEN,
             "--listen-host", "127.0.0.1", "--no-trackers", "--no-dht", "--no-port-mapping",
             "--no-lsd"], check=False)
        told = second.stderr.decode()
        assert second.returncode == 1 and f"127.0.0.1:{port}" in told and "--api-port" in told, told
        assert len(told.strip().splitlines()) == 1, told
        assert "from-file" in await remote("list", "--state", "paused")
        assert job_id in await remote("show", job_id)
        assert json.loads(await remote("--json", "resume", job_id))["state"] != "paused"
        assert "paused" in await remote("pause", job_id)
        # `watch JOB` follows the job's events live and ends when the job does (1: not completed).
        watcher = subprocess.Popen(
            [sys.executable, "-m", "torrent_engine", "remote", "--state-dir", str(tmp_path / "state"),
             "watch", job_id], env=env, stdout=subprocess.PIPE, text=True)
        assert watcher.stdout is not None
        try:
            with anyio.fail_after(60):
                first_line = await anyio.to_thread.run_sync(watcher.stdout.readline, abandon_on_cancel=True)
            assert job_id in first_line and "paused" in first_line
            assert "cancelled" in await remote("cancel", job_id, "--delete-files")
            assert await anyio.to_thread.run_sync(lambda: watcher.wait(timeout=60)) == 1
            assert "cancelled" in watcher.stdout.read()
        finally:  # (stopped on every path)
            if watcher.poll() is None:
                watcher.kill()
            watcher.wait()
        result = await anyio.run_process(
            [sys.executable, "-m", "torrent_engine", "remote", "--url", d.url, "--token", "wrong", "list"],
            check=False)
        assert result.returncode == 1 and b"401" in result.stderr
        d.proc.send_signal(signal.SIGTERM)
        with anyio.fail_after(30):
            while d.proc.poll() is None:
                await anyio.sleep(0.1)
        assert d.proc.returncode == 0
        assert not (tmp_path / "state" / "api.json").exists()
        log = (tmp_path / "daemon.log").read_text()
        assert f"{d.url}/#token={TOKEN}" in log and "stopped" in log
    async with daemon(tmp_path) as d:
        assert (await job(d, job_id))["state"] == "cancelled"
        # `remote shutdown` stops it as SIGTERM did (an admin's: the API token)
        assert "the daemon is stopping" in await remote("shutdown")
        with anyio.fail_after(30):
            while d.proc.poll() is None:
                await anyio.sleep(0.1)
        assert d.proc.returncode == 0 and not (tmp_path / "state" / "api.json").exists()
        assert "POST /api/shutdown asked for the stop" in (tmp_path / "daemon.log").read_text()


async def test_a_corrupted_job_record_loses_that_job_only(tmp_path: Path) -> None:
    async with daemon(tmp_path, token_in_env=True) as d:
        ids = []
        for i in (1, 2, 3):
            magnet = f"magnet:?xt=urn:btih:{i:040x}"
            r = await d.client.post("/api/jobs", json={"source": magnet, "paused": True})
            ids.append(r.json()["id"])
        await d.client.delete(f"/api/jobs/{ids[2]}")
        d.proc.send_signal(signal.SIGTERM)
        d.proc.wait(timeout=30)
    store = JobStore(tmp_path / "state")
    raw = store.read(ids[0])
    assert raw is not None
    store.write(ids[0], raw[:40])  # truncated, as by a failing disk
    store.close()
    async with daemon(tmp_path) as d:
        assert (await d.client.get(f"/api/jobs/{ids[0]}")).status_code == 404
        assert (await job(d, ids[1]))["state"] == "paused"
        assert (await job(d, ids[2]))["state"] == "cancelled"
        health = (await d.client.get("/api/health")).json()
        assert [lost["record"].rpartition(":")[2] for lost in health["lost_jobs"]] == [ids[0]]
        assert health["lost_jobs"][0]["reason"]
    assert "job lost" in (tmp_path / "daemon.log").read_text()


async def test_a_config_file_a_state_dir_lock_and_a_reload_on_sighup(tmp_path: Path) -> None:
    config = tmp_path / "te.toml"
    config.write_text('download-limit = "1M"\nhistory-ttl = 3600\n')
    async with daemon(tmp_path, "--config", str(config)) as d:
        async def limit() -> int:
            r = await d.client.get("/api/settings")
            assert r.status_code == 200, r.text
            return int(r.json()["download_limit"])

        assert await limit() == 1024 * 1024
        second = await anyio.run_process(
            [sys.executable, "-m", "torrent_engine", "daemon", "--state-dir", str(tmp_path / "state"),
             "--download-dir", str(tmp_path / "downloads"), "--api-port", "0", "--api-token", TOKEN,
             "--listen-host", "127.0.0.1", "--no-trackers", "--no-dht", "--no-port-mapping",
             "--no-lsd"], check=False)
        told = second.stderr.decode()
        assert second.returncode == 1 and f"another daemon (pid {d.proc.pid})" in told, told
        assert str(tmp_path / "state") in told and len(told.strip().splitlines()) == 1, told
        assert await limit() == 1024 * 1024  # the first one is untouched and still serving
        config.write_text('download-limit = "2M"\napi-port = 1\n')
        d.proc.send_signal(signal.SIGHUP)
        with anyio.fail_after(20):
            while await limit() != 2 * 1024 * 1024:
                await anyio.sleep(0.05)
        config.write_text('download-limit = "3M"\nbogus = 1\n')
        d.proc.send_signal(signal.SIGHUP)
        log = tmp_path / "daemon.log"
        with anyio.fail_after(20):
            while "reload refused" not in log.read_text():
                await anyio.sleep(0.05)
        assert await limit() == 2 * 1024 * 1024  # a bad file changes nothing
        d.proc.send_signal(signal.SIGTERM)
        with anyio.fail_after(40):
            while d.proc.poll() is None:
                await anyio.sleep(0.1)
        assert d.proc.returncode == 0
    text = log.read_text()
    assert "reloaded" in text and "download-limit" in text and "api-port: only at the next start" in text
    assert "te.toml:2: unknown key 'bogus'" in text


async def test_the_daemon_s_log_is_kept_for_clients_and_its_console_keeps_its_level(tmp_path: Path) -> None:
    """The log book: what the daemon says from its start (its first line), its engine's messages
    at ``INFO`` (an IP filter loaded), which the console (at its default, warnings) does not print."""
    rules = tmp_path / "ipfilter.p2p"
    rules.write_text("Somewhere:10.0.0.0-10.0.0.255\n")
    async with daemon(tmp_path) as d:
        r = await d.client.patch("/api/settings",
                                 json={"ip_filter_enabled": True, "ip_filter_path": str(rules)})
        assert r.status_code == 200, r.text
        with anyio.fail_after(30):
            while not any("IP filter" in line["message"] for line in
                          (await d.client.get("/api/log", params={"level": "info"})).json()["lines"]):
                await anyio.sleep(0.1)
        lines = (await d.client.get("/api/log")).json()["lines"]
        assert (lines[0]["id"], lines[0]["level"]) == (0, "normal") and \
            lines[0]["message"].startswith("torrent-engine ") and lines[0]["message"].endswith(" started")
        loaded = next(line for line in lines if "IP filter" in line["message"])
        assert loaded["level"] == "info" and "1 rules" in loaded["message"], loaded
        qbt = (await d.client.get("/api/v2/log/main", params={"last_known_id": str(loaded["id"] - 1)})).json()
        assert qbt[0] == {"id": loaded["id"], "message": loaded["message"], "timestamp": int(loaded["time"]),
                          "type": 2}

        async def remote(*args: str) -> tuple[int, str, str]:
            result = await anyio.run_process(
                [sys.executable, "-m", "torrent_engine", "remote", "--state-dir", str(tmp_path / "state"),
                 *args],
                env={**os.environ, "TORRENT_ENGINE_API_TOKEN": TOKEN}, check=False)
            return result.returncode, result.stdout.decode(), result.stderr.decode()

        code, out, _ = await remote("log")
        assert code == 0 and " normal " in out.splitlines()[0] and out.splitlines()[0].endswith(" started")
        assert any(" info " in line and "IP filter" in line for line in out.splitlines()), out
        code, out, _ = await remote("log", "--level", "warning,critical")
        assert code == 0 and "started" not in out and "IP filter" not in out, out
        code, _, err = await remote("log", "--level", "loud")
        assert code != 0 and "level" in err, err
        code, out, _ = await remote("log", "--peers")
        assert (code, out) == (0, ""), out
        d.proc.send_signal(signal.SIGTERM)
        assert d.proc.wait(timeout=60) == 0
    printed = (tmp_path / "daemon.log").read_text()
    assert "IP filter" not in printed and "INFO" not in printed, printed


async def test_remote_held_names_the_files_an_add_would_take(tmp_path: Path) -> None:
    """``remote held FILE.torrent``: a torrent of a complete job's file under another name (v1,
    another piece length) with a small file of its own; the file held named with where it is,
    the other with why not, the bytes held; nothing added."""
    data = os.urandom(1_572_867)
    held = tmp_path / "downloads" / "A"
    held.mkdir(parents=True)
    (held / "a.mkv").write_bytes(data)
    a = make_torrent(held, piece_length=32 * 1024, version="v1")
    other = tmp_path / "mk" / "Show"
    other.mkdir(parents=True)
    (other / "Show.mkv").write_bytes(data)
    (other / "notes.nfo").write_bytes(b"n" * 5000)
    (tmp_path / "b.torrent").write_bytes(make_torrent(other, piece_length=64 * 1024, version="v1").to_bytes())
    async with daemon(tmp_path) as d:
        r = await d.client.post("/api/jobs", json={"source": base64.b64encode(a.to_bytes()).decode()})
        assert r.status_code == 201, r.text
        job_id = r.json()["id"]
        with anyio.fail_after(30):
            while (await job(d, job_id))["state"] != "seeding":
                await anyio.sleep(0.1)
        env = {**os.environ, "TORRENT_ENGINE_API_TOKEN": TOKEN}
        with anyio.fail_after(30):
            while True:  # (learnt as the job completed: its event, on the daemon's loop)
                result = await anyio.run_process(
                    [sys.executable, "-m", "torrent_engine", "remote", "--state-dir", str(tmp_path / "state"),
                     "held", str(tmp_path / "b.torrent")], env=env, check=False)
                assert result.returncode == 0, result.stderr.decode()
                out = result.stdout.decode()
                if "  held " in out:
                    break
                await anyio.sleep(0.2)
        lines = out.splitlines()
        assert lines[0] == (f"  held    1.5 MiB  Show/Show.mkv  <- {held / 'a.mkv'} "
                            f"(job {job_id}; by length and pieces)"), out
        assert lines[1] == ("  not     4.9 KiB  Show/notes.nfo  (under 1048576 bytes, not looked for by "
                            "length)"), out
        assert lines[2].startswith("1.5 MiB of 1.5 MiB held (99.7 %); dedup reflink"), out
        r = await d.client.get("/api/jobs")
        assert [j["id"] for j in r.json()["jobs"]] == [job_id]  # (nothing added)
        result = await anyio.run_process(
            [sys.executable, "-m", "torrent_engine", "remote", "--state-dir", str(tmp_path / "state"),
             "dedup"], env=env, check=False)
        assert result.returncode == 0, result.stderr.decode()
        assert result.stdout.decode().splitlines() == [
            "dedup reflink: the files of 1 complete jobs known", "  no indexed folder"]


@pytest.mark.parametrize(("extra", "said"), [
    (["--state-dir", "{file}"], "--state-dir {file}: is a file, not a folder"),
    (["--download-dir", "{file}"], "--download-dir {file}: is a file, not a folder"),
    (["--download-dir", "/proc/none/x"],
     "--download-dir /proc/none/x: cannot create the folder: No such file or directory"),
    (["--listen-host", "192.0.2.1"],
     "listen_host: '192.0.2.1' cannot be listened on: Cannot assign requested address"),
    (["--api-host", "192.0.2.1"], "cannot serve the API on 192.0.2.1:0: Cannot assign requested address "
                                  "(no interface of this machine has that address: see --api-host)"),
])
def test_a_daemon_that_cannot_start_says_which_option_is_at_fault(tmp_path: Path, extra: list[str],
                                                                 said: str) -> None:
    """A file where a folder goes said "[Errno 17] File exists"; a listen address of no interface
    (192.0.2.1, TEST-NET-1) gave the kept port up for a free one, then failed on the port; an
    API address of none was told another daemon may be running there."""
    (tmp_path / "a-file").write_bytes(b"")
    args = [a.format(file=tmp_path / "a-file") for a in extra]
    result = subprocess.run(
        [sys.executable, "-m", "torrent_engine", "daemon", "--state-dir", str(tmp_path / "state"),
         "--download-dir", str(tmp_path / "downloads"), "--api-port", "0", "--api-token", TOKEN,
         "--listen-host", "127.0.0.1", "--no-trackers", "--no-dht", "--no-port-mapping", "--no-lsd", *args],
        capture_output=True, timeout=60, check=False)
    assert result.returncode == 1
    lines = [line for line in result.stderr.decode().splitlines() if not line.startswith("WARNING")]
    assert lines == [f"torrent-engine daemon: error: {said.format(file=tmp_path / 'a-file')}"]
