"""The API's lists at seedbox scale, against the daemon as a real process.

    python bench/bench_lists.py [--jobs 10000] [--rounds 30] [--workdir DIR]
                                [--reference qbittorrent,transmission]

Adds ``--jobs`` paused magnet jobs (qBittorrent's ``torrents/add``, 1 000 links a request), then
times, over HTTP from one client, each list a client polls: our ``GET /api/jobs``, qBittorrent's
``torrents/info``, ``sync/maindata`` in full (rid=0) and incremental (the rid of the answer
before: nothing changed, and after 10 jobs were paused, then resumed), and Transmission's
``torrent-get`` with the fields a Sonarr or a Flood asks for. Prints one JSON line per list:
median and p90 in milliseconds and the answer's size, with the machine's load average. Then
the answers from the job service's change log with 100 jobs changed before each (our
``/api/jobs?since=``, Transmission's ``recently-active``, ``sync/maindata`` with a rid) beside
the full lists in the same run (``changed_lists``).
``--reference`` runs qbittorrent-nox and transmission-daemon after ours with the same paused
magnets (DHT, LSD, PEX, port mapping off; the magnets name no tracker) and times the same lists
of theirs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
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
from bench.bench_seedbox import write_qbittorrent_conf  # noqa: E402

TRANSMISSION_FIELDS = ["id", "hashString", "name", "status", "percentDone", "rateDownload",
                       "rateUpload", "totalSize", "sizeWhenDone", "leftUntilDone", "eta",
                       "uploadRatio", "downloadDir", "labels", "error", "errorString",
                       "addedDate", "doneDate", "queuePosition", "isFinished", "seedRatioLimit",
                       "seedRatioMode", "peersConnected", "uploadedEver", "downloadedEver"]


SETTLE = 15.0  # seconds after the last add before the timing (each client's aftermath of the adds)


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def magnets(n: int) -> list[str]:
    return [f"magnet:?xt=urn:btih:{i + 1:040x}&dn=job-{i:05d}" for i in range(n)]


def wait_until(what: str, ready: Callable[[], bool], limit: float = 600) -> None:
    deadline = time.monotonic() + limit
    while True:
        try:
            if ready():
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{what}: not ready in {limit:.0f} s")
        time.sleep(0.5)


def report(name: str, n: int, out: dict[str, Any]) -> None:
    print(json.dumps({"list": name, "jobs": n, **out, "load": [round(x, 2) for x in os.getloadavg()]}),
          flush=True)


def reference_qbittorrent(work: Path, n: int, rounds: int) -> None:
    """qbittorrent-nox with the same paused magnets: torrents/info and sync/maindata."""
    port = free_port()
    write_qbittorrent_conf(work / "qbt", port, free_port(), work / "qbt-dl")
    proc = subprocess.Popen(["qbittorrent-nox", f"--profile={work / 'qbt'}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            wait_until("qbittorrent-nox", lambda: client.get("/api/v2/app/version").status_code == 200)
            links = magnets(n)
            for start in range(0, n, 1000):
                client.post("/api/v2/torrents/add", data={
                    "urls": "\n".join(links[start:start + 1000]), "paused": "true", "stopped": "true"
                }).raise_for_status()
            wait_until("qbittorrent-nox's adds", lambda: len(client.get("/api/v2/torrents/info").json()) >= n)
            time.sleep(SETTLE)
            version = client.get("/api/v2/app/version").text
            rid = client.get("/api/v2/sync/maindata", params={"rid": 0}).json()["rid"]

            def incremental() -> httpx.Response:
                nonlocal rid
                r = client.get("/api/v2/sync/maindata", params={"rid": rid})
                rid = r.json()["rid"]
                return r

            for name, request in (
                    ("torrents/info", lambda: client.get("/api/v2/torrents/info")),
                    ("sync/maindata full", lambda: client.get("/api/v2/sync/maindata", params={"rid": 0})),
                    ("sync/maindata incremental, nothing changed", incremental)):
                report(f"qbittorrent-nox {version} {name}", n, timed(client, rounds, request))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)


def reference_transmission(work: Path, n: int, rounds: int) -> None:
    """transmission-daemon with the same paused magnets (one torrent-add each: its RPC has no
    batch): torrent-get."""
    port = free_port()
    conf = work / "tr"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "settings.json").write_text(json.dumps({
        "dht-enabled": False, "lpd-enabled": False, "pex-enabled": False, "utp-enabled": False,
        "port-forwarding-enabled": False, "peer-port": free_port(), "peer-port-random-on-start": False,
        "bind-address-ipv4": "127.0.0.1", "bind-address-ipv6": "::1",
        "rpc-enabled": True, "rpc-port": port, "rpc-bind-address": "127.0.0.1",
        "rpc-authentication-required": False, "rpc-whitelist-enabled": False,
        "rpc-host-whitelist-enabled": False, "download-dir": str(work / "tr-dl"),
        "download-queue-enabled": False, "seed-queue-enabled": False, "queue-stalled-enabled": False,
        "blocklist-enabled": False, "start-added-torrents": False, "message-level": 1}))
    proc = subprocess.Popen(["transmission-daemon", "-f", "-g", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            sid = [""]

            def rpc(call: dict[str, Any]) -> httpx.Response:
                r = client.post("/transmission/rpc", json=call, headers={"X-Transmission-Session-Id": sid[0]})
                if r.status_code == 409:
                    sid[0] = r.headers["X-Transmission-Session-Id"]
                    r = client.post("/transmission/rpc", json=call,
                                    headers={"X-Transmission-Session-Id": sid[0]})
                return r

            wait_until("transmission-daemon", lambda: rpc({"method": "session-get"}).status_code == 200)
            version = rpc({"method": "session-get"}).json()["arguments"]["version"]
            for link in magnets(n):
                add = {"method": "torrent-add", "arguments": {"filename": link, "paused": True}}
                rpc(add).raise_for_status()
            get = {"method": "torrent-get", "arguments": {"fields": TRANSMISSION_FIELDS}}
            wait_until("transmission-daemon's adds",
                       lambda: len(rpc(get).json()["arguments"]["torrents"]) >= n)
            time.sleep(SETTLE)
            report(f"transmission-daemon {version.split()[0]} torrent-get", n,
                   timed(client, rounds, lambda: rpc(get)))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--reference", default="", help="qbittorrent,transmission: time theirs too")
    parser.add_argument("--ours", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="te-bench-lists-"))
    references = {"qbittorrent": reference_qbittorrent, "transmission": reference_transmission}
    if args.ours:
        ours(work, args.jobs, args.rounds)
    for name in filter(None, args.reference.split(",")):
        if shutil.which({"qbittorrent": "qbittorrent-nox", "transmission": "transmission-daemon"}[name]):
            references[name](work, args.jobs, args.rounds)
        else:
            print(json.dumps({"reference": name, "skipped": "not installed"}), flush=True)


def ours(work: Path, jobs: int, rounds: int) -> None:
    """Our daemon: every list, through our API and both dialects."""
    daemon = Daemon(work, "lists")
    daemon.start()
    try:
        with httpx.Client(base_url=daemon.url, headers=HEADERS, timeout=120) as client:
            t0 = time.perf_counter()
            add_paused(client, jobs)
            added = time.perf_counter() - t0
            added_at = time.monotonic()
            print(json.dumps({"jobs": jobs, "added_s": round(added, 1)}), flush=True)
            time.sleep(SETTLE)
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
                out = timed(client, rounds, request)
                print(json.dumps({"list": name, "jobs": jobs, **out,
                                  "load": [round(x, 2) for x in os.getloadavg()]}), flush=True)
            times: list[float] = []
            for _ in range(rounds):
                r = incremental_after_change()
                times.append(r.elapsed_here * 1000)  # type: ignore[attr-defined]
            print(json.dumps({"list": "qbittorrent sync/maindata incremental, 10 jobs changed",
                              "jobs": jobs, "median_ms": round(statistics.median(times), 1),
                              "p90_ms": round(pct(times, 0.9), 1), "bytes": len(r.content),
                              "load": [round(x, 2) for x in os.getloadavg()]}), flush=True)
            changed_lists(client, jobs, rounds, rpc_headers, added_at=added_at)
    finally:
        daemon.stop()


RECENT = 60.0  # Transmission's "recently-active" window (api/compat/transmission.py)
CHANGED = 100  # jobs changed before each timed answer from the change log


def changed_lists(client: httpx.Client, jobs: int, rounds: int, rpc_headers: dict[str, str], *,
                  added_at: float) -> None:
    """Answers from the change log against the full lists, in the same run: before each timed
    request ``CHANGED`` jobs get a tag (then lose it: a change of each), then our
    ``/api/jobs?since=`` (the cursor of the answer before), Transmission's ``recently-active``
    (once the adds are older than its window: only the changed jobs are recent) and
    ``sync/maindata`` with the last rid; the full ``/api/jobs`` and ``torrent-get`` timed the
    same way beside them."""
    wait = added_at + RECENT + 5 - time.monotonic()
    if wait > 0:
        time.sleep(wait)
    hashes = "|".join(f"{i + 1:040x}" for i in range(CHANGED))
    flip = [False]

    def change() -> None:
        flip[0] = not flip[0]
        r = client.post(f"/api/v2/torrents/{'addTags' if flip[0] else 'removeTags'}",
                        data={"hashes": hashes, "tags": "bench"})
        r.raise_for_status()

    cursor = client.get("/api/jobs").json()["cursor"]
    rid = client.get("/api/v2/sync/maindata", params={"rid": 0}).json()["rid"]
    recent = {"method": "torrent-get", "arguments": {"fields": TRANSMISSION_FIELDS, "ids": "recently-active"}}
    every = {"method": "torrent-get", "arguments": {"fields": TRANSMISSION_FIELDS}}

    def since() -> httpx.Response:
        nonlocal cursor
        r = client.get("/api/jobs", params={"since": cursor})
        body = r.json()
        assert not body["full"] and len(body["jobs"]) == CHANGED, (body["full"], len(body["jobs"]))
        cursor = body["cursor"]
        return r

    def recently_active() -> httpx.Response:
        r = client.post("/transmission/rpc", json=recent, headers=rpc_headers)
        assert len(r.json()["arguments"]["torrents"]) == CHANGED, len(r.json()["arguments"]["torrents"])
        return r

    def maindata() -> httpx.Response:
        nonlocal rid
        r = client.get("/api/v2/sync/maindata", params={"rid": rid})
        assert len(r.json()["torrents"]) == CHANGED
        rid = r.json()["rid"]
        return r

    lists: dict[str, Callable[[], httpx.Response]] = {
        "GET /api/jobs?since= (100 changed)": since,
        "GET /api/jobs (full, 100 changed)": lambda: client.get("/api/jobs"),
        "transmission torrent-get recently-active (100 changed)": recently_active,
        "transmission torrent-get (full, 100 changed)": lambda: client.post("/transmission/rpc", json=every,
                                                                              headers=rpc_headers),
        "qbittorrent sync/maindata incremental (100 changed)": maindata,
    }
    for name, request in lists.items():
        times: list[float] = []
        size = 0
        for _ in range(rounds):
            change()
            t0 = time.perf_counter()
            r = request()
            r.raise_for_status()
            times.append((time.perf_counter() - t0) * 1000)
            size = len(r.content)
        print(json.dumps({"list": name, "jobs": jobs, "median_ms": round(statistics.median(times), 1),
                          "p90_ms": round(pct(times, 0.9), 1), "bytes": size,
                          "load": [round(x, 2) for x in os.getloadavg()]}), flush=True)


if __name__ == "__main__":
    main()
