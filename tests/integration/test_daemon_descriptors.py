"""``torrent-engine daemon`` and the process's descriptor limit: it raises its soft limit to the
hard one at start, and at a limit it cannot raise it refuses new work with the reason and keeps
answering (it never wedges)."""

from __future__ import annotations

import base64
import json
import os
import resource
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import anyio.abc
import httpx
import pytest

from torrent_engine.engine import fdlimit

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

TOKEN = "daemon-fds-token-abcdef0123456789"


class Daemon:
    def __init__(self, proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.proc = proc
        self.url = url
        self.log = log
        self.client = httpx.AsyncClient(base_url=url, timeout=30,
                                        headers={"Authorization": f"Bearer {TOKEN}"})

    def limits(self) -> tuple[int, int]:
        """The daemon's (soft, hard) RLIMIT_NOFILE, as the kernel shows it."""
        for line in Path(f"/proc/{self.proc.pid}/limits").read_text().splitlines():
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return int(soft), int(hard)
        raise AssertionError("no 'Max open files' line")

    def open_fds(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))


@asynccontextmanager
async def daemon(tmp_path: Path, soft: int, hard: int, *extra: str) -> AsyncIterator[Daemon]:
    state = tmp_path / "state"
    log_path = tmp_path / "daemon.log"
    log = open(log_path, "ab")  # noqa: SIM115 - closed below

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    proc = subprocess.Popen(
        [sys.executable, "-m", "torrent_engine", "-vv", "daemon", "--state-dir", str(state),
         "--download-dir", str(tmp_path / "downloads"), "--api-port", "0", "--api-token", TOKEN,
         "--listen-host", "127.0.0.1", "--no-trackers", "--no-dht", "--no-port-mapping", "--no-lsd", *extra],
        stdout=log, stderr=subprocess.STDOUT, preexec_fn=limit,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        with anyio.fail_after(60):
            while not (state / "api.json").exists():
                assert proc.poll() is None, log_path.read_text()
                await anyio.sleep(0.05)
        d = Daemon(proc, json.loads((state / "api.json").read_text())["url"], log_path)
        async with d.client:
            yield d
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        log.close()


async def test_the_daemon_raises_its_soft_descriptor_limit_to_the_hard_one(tmp_path: Path) -> None:
    async with daemon(tmp_path, 256, 2048) as d:
        assert d.limits() == (2048, 2048)
        assert (await d.client.get("/api/jobs")).status_code == 200
    assert "descriptor limit raised from 256 to 2048" in d.log.read_text()


class SilentPeers:
    """Peers that answer the handshake for any torrent and then say nothing, keeping the
    connection: each one a torrent dials holds one of its descriptors."""

    def __init__(self) -> None:
        self.port = 0
        self.held = 0

    async def serve(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        self.port = listener.extra(anyio.abc.SocketAttribute.local_port)
        task_status.started()
        async with listener:
            await listener.serve(self._hold)

    async def _hold(self, stream: anyio.abc.SocketStream) -> None:
        async with stream:
            got = b""
            while len(got) < 68:  # BEP 3: pstrlen, pstr, reserved, info_hash, peer_id
                got += await stream.receive(68 - len(got))
            await stream.send(got[:48] + os.urandom(20))
            self.held += 1
            try:
                while await stream.receive():
                    pass
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                pass
            finally:
                self.held -= 1


async def request(d: Daemon, method: str, path: str, **kw: object) -> httpx.Response:
    """Over a new connection, as a client that connects for each call does."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=d.url, timeout=30, headers=headers) as c:
        return await c.request(method, path, **kw)  # type: ignore[arg-type]


async def test_at_the_descriptor_limit_adds_are_refused_with_the_reason_and_the_daemon_answers(
        tmp_path: Path) -> None:
    """Each torrent keeps a connection to a peer; the limit (soft = hard = 200: the daemon cannot
    raise it) runs out. Adds are refused with a 503 naming the limit, and the daemon keeps
    answering: the job list, qBittorrent's torrents/info, the jobs it runs."""
    from tests.unit.torrent_factory import make_torrent, payload

    limit = 200
    async with anyio.create_task_group() as tg:
        peers = SilentPeers()
        await tg.start(peers.serve)
        async with daemon(tmp_path, limit, limit, "--encryption", "disable") as d:
            assert d.limits() == (limit, limit)
            added: list[str] = []
            refusal: httpx.Response | None = None
            for n in range(2 * limit):
                t = make_torrent([(("f",), payload(16384, n))], 16384, name=f"t{n}", single=True)
                source = base64.b64encode(t.to_bytes()).decode()
                r = await request(d, "POST", "/api/jobs", json={"source": source,
                                                                 "peers": [f"127.0.0.1:{peers.port}"]})
                if r.status_code != 201:
                    refusal = r
                    break
                added.append(r.json()["id"])
                with anyio.fail_after(30):  # (its peer connection is up before the next add)
                    while peers.held < len(added):
                        await anyio.sleep(0.01)
            assert refusal is not None, f"{len(added)} adds, {d.open_fds()} descriptors"
            assert refusal.status_code == 503, refusal.text
            assert f"too many open files: the process's descriptor limit ({limit}) is reached" \
                in refusal.json()["error"]
            assert "LimitNOFILE" in refusal.json()["error"] and refusal.headers["retry-after"]
            assert len(added) > limit // 2, (len(added), d.open_fds())
            # reads keep working, over new connections, and every job added runs on
            for _ in range(3):
                jobs = await request(d, "GET", "/api/jobs")
                assert jobs.status_code == 200, jobs.text
                listed = {j["id"]: j for j in jobs.json()["jobs"]}
                assert set(added) <= set(listed)
                assert all(listed[i]["state"] == "downloading" for i in added), \
                    {i: (listed[i]["state"], listed[i].get("error")) for i in added
                     if listed[i]["state"] != "downloading"}
                info = await request(d, "GET", "/api/v2/torrents/info")
                assert info.status_code == 200 and len(info.json()) == len(added)
            # at the limit still: adds are refused again. (A few more may be taken first: the
            # descriptors a worker thread or a connection of the API held at the refusal are free
            # again, and they are at most the reserve's.)
            for n in range(2 * limit, 2 * limit + fdlimit.reserve(limit) + 5):
                t = make_torrent([(("f",), payload(16384, n))], 16384, name=f"t{n}", single=True)
                again = await request(d, "POST", "/api/jobs", json={
                    "source": base64.b64encode(t.to_bytes()).decode(), "peers": [f"127.0.0.1:{peers.port}"]})
                if again.status_code != 201:
                    break
                with anyio.fail_after(30):
                    while peers.held < len(added) + n - 2 * limit + 1:
                        await anyio.sleep(0.01)
            assert again.status_code == 503, again.text
            assert d.proc.poll() is None
        tg.cancel_scope.cancel()
    assert "too many open files: the process's descriptor limit (200)" in d.log.read_text()
