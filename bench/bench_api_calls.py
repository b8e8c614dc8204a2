"""Every read call a client makes, at N torrents: ours against qbittorrent-nox in the same run.

    python bench/bench_api_calls.py [--torrents 10000] [--samples 5] [--settle 10] [--keep DIR]

N single-file torrents (``bench_seedbox``'s, their data on disk) are added to each daemon in turn
in seed mode through the qBittorrent WebAPI, 25 a call. Once every torrent seeds and ``--settle``
seconds passed, each call below is asked ``--samples`` times, its answer read to the last byte,
and its median reported: the qBittorrent WebAPI's calls on both daemons with the ratio; our own
API's, ``/metrics`` and the Transmission RPC's on ours alone (qbittorrent-nox has none of them; a
list of every torrent is their measure: the same call asking for one torrent should cost a
small part of it). Issue 47's item 3 asks every call's median to stay at or under 100 ms at
10 000 torrents. A call about one torrent names the first torrent listed.

Only loopback: as root with ``unshare`` it re-executes itself in a network namespace with only
loopback, as ``bench_seedbox`` does. Every wait is bounded.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_seedbox as seedbox  # noqa: E402

# the qBittorrent WebAPI's read calls a front end makes ("{one}": a torrent's hash)
QB_CALLS = ("app/version", "app/preferences", "transfer/info", "torrents/categories", "torrents/tags",
            "torrents/info", "torrents/info?filter=downloading", "torrents/info?category=tv",
            "torrents/info?limit=50&sort=name",
            "torrents/info?hashes={one}", "sync/maindata?rid=0", "torrents/properties?hash={one}",
            "torrents/trackers?hash={one}", "torrents/files?hash={one}", "torrents/pieceStates?hash={one}",
            "log/main")
OUR_CALLS = ("/api/jobs", "/api/jobs?limit=50", "/api/jobs/{job}", "/api/stats", "/metrics")
TR_FIELDS = ["id", "name", "status", "percentDone", "rateDownload", "rateUpload", "totalSize", "uploadRatio",
             "eta", "error"]


def timed(samples: int, call: Callable[[], Any]) -> float:
    """The median of ``samples`` calls, in ms."""
    took = []
    for _ in range(samples):
        t0 = time.perf_counter()
        call()
        took.append((time.perf_counter() - t0) * 1000)
    return statistics.median(took)


def measure(kind: str, root: Path, data: Path, files: list[Path],
            args: argparse.Namespace) -> dict[str, float]:
    """Start the daemon ``kind``, add every torrent in seed mode, wait until all seed, then time
    each call; its medians by call."""
    seedbox.page_cache(data, len(files), "warm")
    work = Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=root))
    client = seedbox.CLIENTS[kind](work, data)
    client.prepare()
    client.skip_checking = True
    client.start()
    out: dict[str, float] = {}
    try:
        seedbox.wait_for(f"{client.name} answers", client.ready, 60, 0.05)
        t0 = time.monotonic()
        client.add_all(files, 25)
        seedbox.wait_for(f"{client.name}: all seeding", lambda: client.seeding(len(files)),
                         seedbox.WAIT_LIMIT, 0.5)
        print(f"{client.name}: {len(files)} added, all seeding after {time.monotonic() - t0:.1f} s",
              flush=True)
        time.sleep(args.settle)
        qb = client.api()
        one = qb.info()[0]["hash"]
        for call in QB_CALLS:
            asked = call.format(one=one)
            try:
                out[call.replace("{one}", "(one)")] = timed(args.samples, lambda c=asked: qb.get(c))
            except RuntimeError as exc:  # (a call this daemon does not answer: said, not timed)
                print(f"{client.name}: {exc}", flush=True)
        if isinstance(client, seedbox.Ours):
            ours = seedbox.Http(client.api_port)
            ours.headers["Authorization"] = f"Bearer {seedbox.TOKEN}"

            def get(path: str) -> None:
                status, _, body = ours.request("GET", path)
                if status != 200:
                    raise RuntimeError(f"{path}: {status} {body[:200]!r}")

            job = json.loads(ours.request("GET", "/api/jobs?limit=1")[2])["jobs"][0]["id"]
            for path in OUR_CALLS:
                asked = path.format(job=job)
                out[path.replace("{job}", "(one)")] = timed(args.samples, lambda p=asked: get(p))
            tr = seedbox.TrApi(client.api_port, "/transmission/rpc", seedbox.TOKEN)
            number = tr.call("torrent-get", {"fields": ["id"], "ids": [one]})["torrents"][0]["id"]
            for name, method, arguments in (
                    ("torrent-get (every torrent, 10 fields)", "torrent-get", {"fields": TR_FIELDS}),
                    ("torrent-get ids=[one]", "torrent-get", {"fields": TR_FIELDS, "ids": [number]}),
                    ("session-stats", "session-stats", {})):
                out[f"Transmission {name}"] = timed(args.samples, lambda m=method, a=arguments: tr.call(m, a))
    finally:
        client.stop()
        shutil.rmtree(work, ignore_errors=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--torrents", type=int, default=10_000)
    p.add_argument("--samples", type=int, default=5)
    p.add_argument("--settle", type=float, default=10.0, help="seconds from all seeding to the first call")
    p.add_argument("--keep", type=Path, help="make the data here and keep it (else a temporary folder)")
    args = p.parse_args()
    seedbox.in_loopback_namespace()
    root = args.keep or Path(tempfile.mkdtemp(prefix="api-calls-"))
    try:
        data, files = seedbox.make_torrents(root, args.torrents)
        ours = measure("ours-qb", root, data, files, args)
        theirs = measure("qbittorrent", root, data, files, args)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    print(f"\nmedian of {args.samples} calls at {args.torrents} torrents (ms; over 100 marked !)")
    print(f"{'call':48s} {'ours':>9s} {'qbittorrent-nox':>16s} {'ratio':>7s}")
    for call, ms in ours.items():
        ref = theirs.get(call)
        mark = " !" if ms > 100 else ""
        print(f"{call:48s} {ms:9.1f} {'' if ref is None else f'{ref:16.1f}'} "
              f"{'' if ref is None else f'{ms / ref:7.2f}'}{mark}")


if __name__ == "__main__":
    main()
