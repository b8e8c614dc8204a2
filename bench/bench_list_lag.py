"""How long each full list holds the daemon's event loop, at N seed-mode torrents (issue 47:
"nothing blocks the loop for more than 50 ms").

    python bench/bench_list_lag.py [--torrents 10000] [--seconds 8] [--batch 100] [--keep DIR]

The daemon runs as a process (the ``torrent_engine`` that ``PYTHONPATH`` names: point it at
another tree to compare) over N small complete torrents, added through qBittorrent's
``torrents/add`` with ``skip_checking=true`` (bench_seedbox.py's data and client). Once all seed,
each list is asked for in a loop for ``--seconds`` (one client, each answer read to its last
byte, not parsed): qBittorrent ``torrents/info`` and ``sync/maindata`` full (rid=0),
Transmission ``torrent-get`` (the fields ``transmission-remote -l`` asks for), our
``GET /api/jobs``, the event stream's first snapshot (``GET /api/events`` read to the end of its
first event, then closed), and a phase of no list for comparison. Two readings of the loop's
lag during each phase:

- ``ping``: a second client asks ``GET /api/health`` every 10 ms meanwhile, each answer timed
  (an answer of a few hundred microseconds when the loop is free: its latency is how long the
  loop kept it waiting, as any other client, peer or tracker waits);
- ``probe``: the daemon's own lag probe (``/metrics``, ``torrent_engine_event_loop_lag_seconds``:
  it wakes once a second), its samples during the phase (the difference of the histogram's
  counts before and after) and the bucket bound of the worst of them.

Prints one JSON line per phase and the machine's load average.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.bench_seedbox import (  # noqa: E402
    TOKEN,
    Http,
    OursQb,
    Pinger,
    TrApi,
    load_avg,
    make_torrents,
    ours_get,
    wait_for,
)


def lag_histogram(port: int) -> dict[str, float]:
    """The daemon's lag probe's histogram: cumulative count by bucket bound ("+Inf" too)."""
    body = ours_get(port, "/metrics")
    out = {}
    bucket = rb'^torrent_engine_event_loop_lag_seconds_bucket\{le="([^"]+)"\} (\S+)$'
    for m in re.finditer(bucket, body, re.M):
        out[m.group(1).decode()] = float(m.group(2))
    return out


def probe_during(before: dict[str, float], after: dict[str, float]) -> tuple[int, str]:
    """The probe's samples between two readings, and the bound of the lowest bucket holding all
    of them (the worst sample was at most that)."""
    bounds = sorted(before, key=lambda b: float("inf") if b == "+Inf" else float(b))
    total = int(after["+Inf"] - before["+Inf"])
    for b in bounds:
        if after[b] - before[b] >= total:
            return total, b
    return total, "+Inf"


def sse_snapshot(port: int) -> bytes:
    """``GET /api/events`` to the end of its first event (the snapshot), then closed."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        conn.request("GET", "/api/events", headers={"Authorization": f"Bearer {TOKEN}"})
        r = conn.getresponse()
        if r.status != 200:
            raise RuntimeError(f"/api/events: {r.status}")
        got = b""
        seen_data = False
        while True:
            line = r.fp.readline()
            if not line:
                raise RuntimeError("/api/events ended before its snapshot")
            got += line
            if line.startswith(b"data: ") and b"event: snapshot" in got:
                seen_data = True
            elif seen_data and line == b"\n":
                return got
    finally:
        conn.close()


def phase(name: str, seconds: float, call: Callable[[], int] | None, port: int,
          pinger: Pinger) -> dict[str, Any]:
    before = lag_histogram(port)
    pinger.phase()
    pinger.on = True
    times: list[float] = []
    size = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if call is None:
            time.sleep(0.1)
            continue
        t0 = time.perf_counter()
        size = call()
        times.append((time.perf_counter() - t0) * 1000)
    pinger.on = False
    pings = sorted(pinger.phase())
    after = lag_histogram(port)
    samples, worst_bucket = probe_during(before, after)
    out: dict[str, Any] = {"list": name, "calls": len(times), "bytes": size}
    if times:
        out["call_ms_median"] = round(statistics.median(times), 1)
        out["call_ms_max"] = round(max(times), 1)
    if pings:
        out["ping_ms_median"] = round(statistics.median(pings), 2)
        out["ping_ms_p99"] = round(pings[min(len(pings) - 1, int(0.99 * len(pings)))], 1)
        out["ping_ms_max"] = round(pings[-1], 1)
        out["pings"] = len(pings)
    out["probe_samples"] = samples
    out["probe_worst_at_most_s"] = worst_bucket
    out["load"] = load_avg()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--torrents", type=int, default=10_000)
    p.add_argument("--seconds", type=float, default=8.0, help="each list asked for in a loop this long")
    p.add_argument("--batch", type=int, default=100, help="torrents a torrents/add call")
    p.add_argument("--settle", type=float, default=10.0, help="seconds after all seed before the lists")
    p.add_argument("--keep", type=Path, help="a folder for the data, kept between runs (made once)")
    args = p.parse_args()
    where = subprocess.run([sys.executable, "-c", "import torrent_engine; print(torrent_engine.__file__)"],
                           capture_output=True, text=True, cwd="/", check=True).stdout.strip()
    print(json.dumps({"daemon_code": where, "torrents": args.torrents, "load": load_avg()}), flush=True)
    root = args.keep or Path(tempfile.mkdtemp(prefix="list-lag-"))
    data, files = make_torrents(root, args.torrents)
    work = Path(tempfile.mkdtemp(prefix="list-lag-daemon-"))
    client = OursQb(work, data)
    client.skip_checking = True
    client.prepare()
    client.start()
    try:
        wait_for("the daemon answers", client.ready, 60, 0.05)
        t0 = time.monotonic()
        client.add_all(files, args.batch)
        wait_for("all seeding", lambda: client.seeding(len(files)), 3600, 2.0)
        print(json.dumps({"added_and_seeding_s": round(time.monotonic() - t0, 1), "load": load_avg()}),
              flush=True)
        time.sleep(args.settle)
        port = client.api_port
        qb = client.api()
        tr = TrApi(port, "/transmission/rpc", TOKEN)
        jobs = Http(port)
        jobs.headers["Authorization"] = f"Bearer {TOKEN}"

        def api_jobs() -> int:
            status, headers, body = jobs.request("GET", "/api/jobs")
            if status != 200 or int(headers["content-length"]) != len(body):
                raise RuntimeError(f"/api/jobs: {status} {body[:200]!r}")
            return len(body)

        lists: list[tuple[str, Callable[[], int] | None]] = [
            ("none (idle)", None),
            ("torrents/info", lambda: len(qb.info_answer())),
            ("sync/maindata rid=0", lambda: qb.maindata(0)),
            ("torrent-get", lambda: len(tr.get_answer())),
            ("GET /api/jobs", api_jobs),
            ("SSE snapshot", lambda: len(sse_snapshot(port))),
        ]
        pinger = Pinger(port)
        pinger.start()
        try:
            for name, call in lists:
                print(json.dumps(phase(name, args.seconds, call, port, pinger)), flush=True)
        finally:
            pinger.stop()
    finally:
        client.stop()
        shutil.rmtree(work, ignore_errors=True)
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
