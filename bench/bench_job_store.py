"""The job store at scale (issue 22 item 5): a JobService started on a state directory of
10 000 jobs (200 paused magnets, the rest finished) and of 100 000 finished jobs, then every
job listed as ``GET /api/jobs`` builds its answer; each beside a same-run reference (reading and
parsing the record files alone; ``json.dumps`` of the listing).

Records are written straight in the store's own format (from a real add and a real cancel made
first), without the store's fsync per record, so the set-up takes seconds, not an hour.

Run: PYTHONPATH=. python bench/bench_job_store.py [--jobs 10000 --active 200] [--history 100000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

from torrent_engine.config import Config
from torrent_engine.jobs import JobService


def config() -> Config:
    return Config(listen_host="127.0.0.1", dht_enabled=False, port_mapping=False, tracker_enabled=False)


async def templates(root: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """One paused magnet's record and one cancelled job's, as the store writes them."""
    async with JobService(config(), download_root=root / "dl", state_dir=root / "state") as jobs:
        active, _ = await jobs.add("magnet:?xt=urn:btih:" + "1" * 40 + "&dn=active", paused=True)
        done, _ = await jobs.add("magnet:?xt=urn:btih:" + "2" * 40 + "&dn=done", paused=True)
        await jobs.cancel(done.id)
    folder = root / "state" / "jobs"
    out = [json.loads((folder / f"{job_id}.json").read_bytes()) for job_id in (active.id, done.id)]
    for path in folder.iterdir():
        path.unlink()
    return out[0], out[1]


def write_records(root: Path, active: dict[str, Any], done: dict[str, Any], total: int, live: int) -> None:
    folder = root / "state" / "jobs"
    for i in range(total):
        record = dict(active if i < live else done)
        info_hash = f"{i:040x}"
        record.update(id=f"{i:016x}", info_hash=info_hash, name=f"job{i}", number=i + 1, queue_position=i + 1,
                      source=f"magnet:?xt=urn:btih:{info_hash}&dn=job{i}")
        (folder / f"{i:016x}.json").write_text(json.dumps(record))


def read_records(root: Path) -> int:
    return len([json.loads(p.read_bytes()) for p in (root / "state" / "jobs").glob("*.json")])


async def measure(total: int, live: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        active, done = await templates(root)
        write_records(root, active, done, total, live)
        start_ms, read_ms, list_ms, dumps_ms, stop_ms = [], [], [], [], []
        for _ in range(rounds):
            t0 = time.perf_counter()
            read_records(root)
            read_ms.append((time.perf_counter() - t0) * 1e3)
            t0 = time.perf_counter()
            async with JobService(config(), download_root=root / "dl", state_dir=root / "state",
                                  history_ttl=0) as jobs:
                start_ms.append((time.perf_counter() - t0) * 1e3)
                assert len(jobs.list()) == total
                for _ in range(3):
                    t0 = time.perf_counter()
                    body = {"jobs": [job.to_json() for job in jobs.list()]}
                    t1 = time.perf_counter()
                    json.dumps(body)
                    list_ms.append((t1 - t0) * 1e3)
                    dumps_ms.append((time.perf_counter() - t1) * 1e3)
                t0 = time.perf_counter()
            stop_ms.append((time.perf_counter() - t0) * 1e3)
        m = statistics.median
        print(f"{total} jobs ({live} paused magnets): start-up median {m(start_ms):.0f} ms "
              f"(rounds {', '.join(f'{x:.0f}' for x in start_ms)}); reference: reading and parsing the "
              f"records {m(read_ms):.0f} ms; stop {m(stop_ms):.0f} ms")
        print(f"  every job as GET /api/jobs builds it: median {m(list_ms):.0f} ms; reference json.dumps "
              f"of it {m(dumps_ms):.0f} ms; a page of 100 would be ~{m(list_ms) / total * 100:.2f} ms "
              "of it (the API has no paging yet)")


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=10_000)
    ap.add_argument("--active", type=int, default=200)
    ap.add_argument("--history", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    await measure(args.jobs, args.active, args.rounds)
    if args.history:
        await measure(args.history, 0, args.rounds)


if __name__ == "__main__":
    anyio.run(main)
