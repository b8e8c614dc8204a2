"""Job service with 1 000 jobs (980 finished, 20 paused magnets): list() and start-up.

The issue's budgets: GET /api/jobs <= 50 ms and daemon start-up <= 5 s with 1 000 jobs. This
measures the library part of both, each beside a same-run reference:
- ``list()`` + ``to_json()`` of every job, against ``json.dumps`` of that result (what the API
  does with it next);
- entering a ``JobService`` on the state directory (records loaded, 20 magnets started again)
  and leaving it, against reading and parsing the 1 000 record files alone.

Run: PYTHONPATH=. python bench/bench_jobs.py
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

import anyio

from torrent_engine.config import Config
from torrent_engine.jobs import JobService

JOBS, ACTIVE, ROUNDS = 1000, 20, 7


def config() -> Config:
    return Config(listen_host="127.0.0.1", dht_enabled=False, port_mapping=False,
                  lsd_enabled=False, tracker_enabled=False)


async def fill(root: Path) -> None:
    async with JobService(config(), download_root=root / "dl", state_dir=root / "state") as jobs:
        for i in range(JOBS):
            job, _ = await jobs.add(f"magnet:?xt=urn:btih:{i:040x}&dn=job{i}", paused=True)
            if i >= ACTIVE:
                await jobs.cancel(job.id)


def read_records(root: Path) -> int:
    return len([json.loads(p.read_bytes()) for p in (root / "state" / "jobs").glob("*.json")])


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        await fill(root)
        list_ms, dumps_ms, start_ms, read_ms = [], [], [], []
        for _ in range(ROUNDS):
            t0 = time.perf_counter()
            read_records(root)
            read_ms.append((time.perf_counter() - t0) * 1e3)
            t0 = time.perf_counter()
            async with JobService(config(), download_root=root / "dl", state_dir=root / "state") as jobs:
                start_ms.append((time.perf_counter() - t0) * 1e3)
                for _ in range(10):
                    t0 = time.perf_counter()
                    body = {"jobs": [job.to_json() for job in jobs.list()]}
                    t1 = time.perf_counter()
                    json.dumps(body)
                    t2 = time.perf_counter()
                    list_ms.append((t1 - t0) * 1e3)
                    dumps_ms.append((t2 - t1) * 1e3)
        m = statistics.median
        print(f"list()+to_json() of {JOBS} jobs: median {m(list_ms):.2f} ms; reference json.dumps of it "
              f"{m(dumps_ms):.2f} ms -> {m(dumps_ms) / m(list_ms):.2f}x the reference's speed (budget 50 ms)")
        print(f"start-up with {JOBS} jobs: median {m(start_ms):.1f} ms; reference reading the records "
              f"{m(read_ms):.1f} ms -> {m(read_ms) / m(start_ms):.2f}x the reference's speed (budget 5 s)")


if __name__ == "__main__":
    anyio.run(main)
