"""What users cost, against the daemon as a real process (``bench_api.Daemon``).

    python bench/bench_users.py [--jobs 400] [--requests 200] [--magnets 0] [--adds 20] [--workdir DIR]

With ``--jobs`` paused jobs in the service, half of them alice's (added with her session), the
median time of: ``POST /api/login`` (one scrypt); Transmission's ``torrent-get`` with HTTP Basic
by the API token and by alice's name and password (scrypt once, then remembered);
qBittorrent's ``torrents/info`` and ``GET /api/jobs`` as the admin (every job) and as alice (hers).
Then, with ``--magnets`` more paused magnets (the admin's, added 500 a request), the median of
``--adds`` adds of a paused magnet (``POST /api/jobs``) by the API token and by alice, who has
quotas (a number of torrents and of bytes, far from reached: each add counts what she holds),
and of ``GET /api/categories`` and a full ``sync/maindata`` by each (a user's name the
categories and tags her jobs carry).
Prints one JSON line per measure.
"""

from __future__ import annotations

import argparse
import base64
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.bench_api import HEADERS, TOKEN, Daemon  # noqa: E402
from torrent_engine.api.users import UserStore  # noqa: E402
from torrent_engine.formats.metainfo import Torrent  # noqa: E402
from torrent_engine.storage.create import create_torrent  # noqa: E402

PASSWORD = "alice's long password"


def median_ms(call: Callable[[], httpx.Response], n: int) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        call().raise_for_status()
        times.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(times), 2)


def torrents(work: Path, count: int) -> list[Torrent]:
    out = []
    for i in range(count):
        folder = work / "payloads" / f"p{i}"
        folder.mkdir(parents=True)
        (folder / "a.bin").write_bytes(i.to_bytes(4, "big") * 256)
        out.append(create_torrent(folder, piece_length=16 * 1024))
    return out


def magnet(i: int) -> str:
    return f"magnet:?xt=urn:btih:{i:040x}"


def adds(c: httpx.Client, alice: dict[str, str], magnets: int, count: int, jobs: int) -> None:
    """``magnets`` more paused magnets (the admin's), then the median of ``count`` adds by each."""
    for start in range(0, magnets, 500):
        urls = "\n".join(magnet(10**6 + i) for i in range(start, min(magnets, start + 500)))
        answer = c.post("/api/v2/torrents/add", data={"urls": urls, "paused": "true"}, headers=HEADERS)
        answer.raise_for_status()
    serial = iter(range(2 * 10**6, 3 * 10**6))
    for who, headers in (("token", HEADERS), ("alice, with quotas", alice)):
        def add(h: dict[str, str] = headers) -> httpx.Response:
            return c.post("/api/jobs", json={"source": magnet(next(serial)), "paused": True}, headers=h)

        print(json.dumps({"measure": f"POST /api/jobs (a paused magnet) as {who}", "jobs": jobs + magnets,
                          "ms": median_ms(add, count)}))
    for who, headers in (("token", HEADERS), ("alice", alice)):  # (a user's: the labels her jobs carry)
        for path in ("/api/categories", "/api/v2/sync/maindata", "/api/v2/torrents/info", "/api/jobs"):
            print(json.dumps({"measure": f"GET {path} as {who}", "jobs": jobs + magnets + 2 * count,
                              "ms": median_ms(lambda p=path, h=headers: c.get(p, headers=h), count)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--magnets", type=int, default=0)
    parser.add_argument("--adds", type=int, default=20)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-users-"))
    daemon = Daemon(work, "users")
    UserStore(daemon.state).add("alice", "user", PASSWORD, max_torrents=10**6, max_bytes=10**15)
    made = torrents(work, args.jobs)
    daemon.start()
    try:
        with httpx.Client(base_url=daemon.url, timeout=60) as c:
            t0 = time.perf_counter()
            session = c.post("/api/login", json={"name": "alice", "password": PASSWORD}).json()["token"]
            print(json.dumps({"measure": "login (scrypt N=2^15 r=8)",
                              "ms": round((time.perf_counter() - t0) * 1000, 1)}))
            alice = {"Authorization": f"Bearer {session}"}
            for i, t in enumerate(made):
                body = {"source": base64.b64encode(t.to_bytes()).decode(), "paused": True}
                c.post("/api/jobs", json=body, headers=alice if i % 2 else HEADERS).raise_for_status()
            rpc = {"method": "torrent-get", "arguments": {"fields": ["id", "name", "percentDone"]}}
            for who, auth in (("token", ("admin", TOKEN)), ("alice", ("alice", PASSWORD))):
                sid = c.post("/transmission/rpc", json=rpc, auth=auth).headers["x-transmission-session-id"]
                print(json.dumps({"measure": f"transmission torrent-get, Basic as {who}", "jobs": args.jobs,
                                  "ms": median_ms(lambda a=auth, s=sid: c.post(
                                      "/transmission/rpc", json=rpc, auth=a,
                                      headers={"X-Transmission-Session-Id": s}), args.requests)}))
            for who, headers in (("token", HEADERS), ("alice", alice)):
                print(json.dumps({"measure": f"qbittorrent torrents/info as {who}", "jobs": args.jobs,
                                  "ms": median_ms(lambda h=headers: c.get("/api/v2/torrents/info", headers=h),
                                                  args.requests)}))
                print(json.dumps({"measure": f"GET /api/jobs as {who}", "jobs": args.jobs,
                                  "ms": median_ms(lambda h=headers: c.get("/api/jobs", headers=h),
                                                  args.requests)}))
            adds(c, alice, args.magnets, args.adds, args.jobs)
    finally:
        daemon.stop()
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
