"""``torrent-engine daemon`` and the process's descriptor limit: it raises its soft limit to the
hard one at start, and at a limit it cannot raise it refuses new work with the reason and keeps
answering (it never wedges)."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx
import pytest

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
