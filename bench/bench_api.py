"""The job service's HTTP API under load, against the daemon as a real process.

    python bench/bench_api.py [--size-mib 256] [--jobs 1000] [--workdir DIR]

1. A download from a libtorrent seeder (its own process) through ``torrent-engine daemon``, once
   with no API traffic and once with 10 SSE clients connected and ``GET /api/jobs`` polled 20
   times a second: the rate ratio, the poll's p99, and the event publish -> SSE client p99 (the
   API stamps each event with the time it numbered it; the clients note when they read it).
2. With ``--jobs`` jobs in the service (90 % of them finished): ``GET /api/jobs`` time, the
   daemon's start-up time (process start to a first answer), and its idle CPU over 10 s.
Prints one JSON line per measure.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.e2e_download import make_payload  # noqa: E402
from torrent_engine.storage.create import create_torrent  # noqa: E402

TOKEN = "bench-token-0123456789abcdefghij"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


class Daemon:
    def __init__(self, work: Path, name: str) -> None:
        self.state = work / f"{name}-state"
        self.downloads = work / f"{name}-dl"
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> float:
        """Start it; the seconds until it answers."""
        api_file = self.state / "api.json"
        api_file.unlink(missing_ok=True)
        started = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "torrent_engine", "daemon", "--state-dir", str(self.state),
             "--download-dir", str(self.downloads), "--api-port", "0", "--api-token", TOKEN,
             "--listen-host", "127.0.0.1", "--no-trackers", "--no-dht", "--no-port-mapping", "--no-lsd"],
            stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(HERE.parent)})
        while not api_file.exists():
            if self.proc.poll() is not None:
                raise SystemExit("the daemon exited at start")
            time.sleep(0.01)
        self.url = json.loads(api_file.read_text())["url"]
        while True:
            try:
                if httpx.get(f"{self.url}/api/health", headers=HEADERS).status_code == 200:
                    return time.perf_counter() - started
            except httpx.HTTPError:
                time.sleep(0.01)

    def cpu_seconds(self) -> float:
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)


async def download(daemon: Daemon, torrent_b64: str, peer: str, *, load: bool) -> dict[str, Any]:
    poll_ms: list[float] = []
    latency_ms: list[float] = []
    done = asyncio.Event()

    async with httpx.AsyncClient(base_url=daemon.url, headers=HEADERS, timeout=60) as client:
        async def sse_client() -> None:
            async with client.stream("GET", "/api/events") as response:
                async for line in response.aiter_lines():
                    if line.startswith("data: "):
                        now = time.time()
                        data = json.loads(line[6:])
                        latency_ms.append((now - data["time"]) * 1000)
                    if done.is_set():
                        return

        async def poller() -> None:
            while not done.is_set():
                t0 = time.perf_counter()
                r = await client.get("/api/jobs")
                r.raise_for_status()
                poll_ms.append((time.perf_counter() - t0) * 1000)
                await asyncio.sleep(max(0.0, 0.05 - (time.perf_counter() - t0)))

        tasks = []
        if load:
            tasks = [asyncio.create_task(sse_client()) for _ in range(10)]
            tasks.append(asyncio.create_task(poller()))
            await asyncio.sleep(0.5)
        t0 = time.perf_counter()
        r = await client.post("/api/jobs", json={"source": torrent_b64, "peers": [peer]})
        r.raise_for_status()
        job_id = r.json()["id"]
        while True:
            job = (await client.get(f"/api/jobs/{job_id}")).json()
            if job["state"] in ("seeding", "completed", "failed"):
                break
            await asyncio.sleep(0.05)
        seconds = time.perf_counter() - t0
        done.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return {"load": load, "state": job["state"], "seconds": seconds,
            "mb_s": job["total_size"] / seconds / 1e6,
            "poll_p50_ms": pct(poll_ms, 0.5), "poll_p99_ms": pct(poll_ms, 0.99), "polls": len(poll_ms),
            "event_p50_ms": pct(latency_ms, 0.5), "event_p99_ms": pct(latency_ms, 0.99),
            "events": len(latency_ms)}


def part_download(work: Path, size_mib: int) -> None:
    payload = work / "payload.bin"
    make_payload(payload, size_mib * 1024 * 1024)
    torrent = create_torrent(payload, piece_length=1024 * 1024)
    torrent_file = work / "payload.torrent"
    torrent_file.write_bytes(torrent.to_bytes())
    seeder = subprocess.Popen([sys.executable, str(HERE / "e2e_download.py"), "--seed-child", "lt",
                               str(torrent_file), str(work)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert seeder.stdout is not None and seeder.stdin is not None
    peer = f"127.0.0.1:{json.loads(seeder.stdout.readline())['port']}"
    b64 = base64.b64encode(torrent.to_bytes()).decode()
    results: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
    try:
        for round_ in range(2):
            for load in (False, True) if round_ % 2 == 0 else (True, False):
                daemon = Daemon(work, f"dl{round_}{int(load)}")
                daemon.start()
                try:
                    out = asyncio.run(download(daemon, b64, peer, load=load))
                finally:
                    daemon.stop()
                    shutil.rmtree(daemon.downloads, ignore_errors=True)
                print(json.dumps(out), flush=True)
                results[load].append(out)
    finally:
        seeder.stdin.close()
        seeder.wait(timeout=60)
    quiet = statistics.mean(r["mb_s"] for r in results[False])
    loaded = statistics.mean(r["mb_s"] for r in results[True])
    print(json.dumps({"summary": "download", "size_mib": size_mib, "quiet_mb_s": quiet,
                      "loaded_mb_s": loaded, "ratio": loaded / quiet,
                      "poll_p99_ms": max(r["poll_p99_ms"] for r in results[True]),
                      "event_p99_ms": max(r["event_p99_ms"] for r in results[True])}), flush=True)


def part_many_jobs(work: Path, count: int) -> None:
    daemon = Daemon(work, "many")
    daemon.start()
    try:
        with httpx.Client(base_url=daemon.url, headers=HEADERS, timeout=60) as client:
            ids = []
            for i in range(count):
                magnet = f"magnet:?xt=urn:btih:{i:040x}&dn=job-{i}"
                r = client.post("/api/jobs", json={"source": magnet, "paused": True})
                r.raise_for_status()
                ids.append(r.json()["id"])
            for job_id in ids[: count * 9 // 10]:
                client.delete(f"/api/jobs/{job_id}").raise_for_status()
            times = []
            for _ in range(50):
                t0 = time.perf_counter()
                r = client.get("/api/jobs")
                times.append((time.perf_counter() - t0) * 1000)
                assert len(r.json()["jobs"]) == count
        daemon.stop()
        startup = daemon.start()
        time.sleep(3)  # let the start-up settle before measuring idle
        cpu0, t0 = daemon.cpu_seconds(), time.perf_counter()
        time.sleep(10)
        idle = (daemon.cpu_seconds() - cpu0) / (time.perf_counter() - t0) * 100
        print(json.dumps({"summary": "many jobs", "jobs": count, "get_jobs_p50_ms": pct(times, 0.5),
                          "get_jobs_p99_ms": pct(times, 0.99), "startup_s": startup,
                          "idle_cpu_percent": idle}), flush=True)
    finally:
        daemon.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--jobs", type=int, default=1000)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--skip-download", action="store_true")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-api-", dir=args.workdir))
    try:
        if not args.skip_download:
            part_download(work, args.size_mib)
        part_many_jobs(work, args.jobs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
