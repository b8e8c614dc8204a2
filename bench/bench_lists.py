"""The API's lists at seedbox scale, against the daemon as a real process.

    python bench/bench_lists.py [--jobs 10000] [--rounds 30] [--workdir DIR]

Adds ``--jobs`` paused magnet jobs (qBittorrent's ``torrents/add``, 1 000 links a request), then
times, over HTTP from one client, each list a client polls: our ``GET /api/jobs``, qBittorrent's
``torrents/info``, ``sync/maindata`` in full (rid=0) and incremental (the rid of the answer
before: nothing changed, and after 10 jobs were paused, then resumed), and Transmission's
``torrent-get`` with the fields a Sonarr or a Flood asks for. Prints one JSON line per list:
median and p90 in milliseconds and the answer's size, with the machine's load average.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.bench_api import HEADERS, Daemon, pct  # noqa: E402

TRANSMISSION_FIELDS = ["id", "hashString", "name", "status", "percentDone", "rateDownload",
                       "rateUpload", "totalSize", "sizeWhenDone", "leftUntilDone", "eta",
                       "uploadRatio", "downloadDir", "labels", "error", "errorString",
                       "addedDate", "doneDate", "queuePosition", "isFinished", "seedRatioLimit",
                       "seedRatioMode", "peersConnected", "uploadedEver", "downloadedEver"]


def timed(client: httpx.Client, rounds: int, request: Callable[[], httpx.Response]) -> dict[str, Any]:
    times: list[float] = []
    size = 0
    for _ in range(rounds):
        t0 = time.perf_counter()
        r = request()
        r.raise_for_status()
        times.append((time.perf_counter() - t0) * 1000)
        size = len(r.content)
    return {"median_ms": round(statistics.median(times), 1), "p90_ms": round(pct(times, 0.9), 1),
            "bytes": size}


def add_paused(client: httpx.Client, n: int) -> None:
    batch = 1000
    for start in range(0, n, batch):
        urls = "\n".join(f"magnet:?xt=urn:btih:{i + 1:040x}&dn=job-{i:05d}"
                         for i in range(start, min(n, start + batch)))
        r = client.post("/api/v2/torrents/add", data={"urls": urls, "paused": "true"})
        r.raise_for_status()
    deadline = time.monotonic() + 600
    while len(client.get("/api/jobs").json()["jobs"]) < n:
        if time.monotonic() > deadline:
            raise SystemExit("the jobs were not all added in 10 minutes")
        time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="te-bench-lists-"))
    daemon = Daemon(work, "lists")
    daemon.start()
    try:
        with httpx.Client(base_url=daemon.url, headers=HEADERS, timeout=120) as client:
            t0 = time.perf_counter()
            add_paused(client, args.jobs)
            added = time.perf_counter() - t0
            print(json.dumps({"jobs": args.jobs, "added_s": round(added, 1)}), flush=True)
            time.sleep(2)  # (the adds' aftermath settles)
            sid = client.post("/transmission/rpc", json={"method": "session-get"}).headers[
                "X-Transmission-Session-Id"]
            rpc_headers = {"X-Transmission-Session-Id": sid}
            rpc = {"method": "torrent-get", "arguments": {"fields": TRANSMISSION_FIELDS}}
            rid = client.get("/api/v2/sync/maindata", params={"rid": 0}).json()["rid"]

            def incremental() -> httpx.Response:
                nonlocal rid
                r = client.get("/api/v2/sync/maindata", params={"rid": rid})
                rid = r.json()["rid"]
                return r

            hashes = "|".join(f"{i + 1:040x}" for i in range(10))
            flip = [False]

            def incremental_after_change() -> httpx.Response:
                nonlocal rid
                flip[0] = not flip[0]
                client.post(f"/api/v2/torrents/{'resume' if flip[0] else 'pause'}", data={"hashes": hashes})
                t0 = time.perf_counter()
                r = client.get("/api/v2/sync/maindata", params={"rid": rid})
                r.elapsed_here = time.perf_counter() - t0  # type: ignore[attr-defined]
                rid = r.json()["rid"]
                return r

            lists: dict[str, Callable[[], httpx.Response]] = {
                "GET /api/jobs": lambda: client.get("/api/jobs"),
                "qbittorrent torrents/info": lambda: client.get("/api/v2/torrents/info"),
                "qbittorrent sync/maindata full": lambda: client.get("/api/v2/sync/maindata",
                                                                     params={"rid": 0}),
                "qbittorrent sync/maindata incremental, nothing changed": incremental,
                "transmission torrent-get": lambda: client.post("/transmission/rpc", json=rpc,
                                                                headers=rpc_headers),
            }
            for name, request in lists.items():
                out = timed(client, args.rounds, request)
                print(json.dumps({"list": name, "jobs": args.jobs, **out,
                                  "load": [round(x, 2) for x in os.getloadavg()]}), flush=True)
            times: list[float] = []
            for _ in range(args.rounds):
                r = incremental_after_change()
                times.append(r.elapsed_here * 1000)  # type: ignore[attr-defined]
            print(json.dumps({"list": "qbittorrent sync/maindata incremental, 10 jobs changed",
                              "jobs": args.jobs, "median_ms": round(statistics.median(times), 1),
                              "p90_ms": round(pct(times, 0.9), 1), "bytes": len(r.content),
                              "load": [round(x, 2) for x in os.getloadavg()]}), flush=True)
    finally:
        daemon.stop()


if __name__ == "__main__":
    main()
