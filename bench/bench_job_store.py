"""The job store at scale: start-up and job-list pages with 10 000 jobs and with 100 000 history
entries (the SQLite job store, ``state_dir/jobs.sqlite3``).

State directories are filled as the earlier JSON store kept them (one file per job, written
straight through ``JobStore.encode``), so the first start migrates them (timed on its own):
- ``10k``: 10 000 paused magnet jobs (all unfinished: each is a job the service takes back);
- ``10k-mixed``: 200 paused and 9 800 cancelled jobs;
- ``100k-history``: 100 000 cancelled jobs (history) and 20 paused ones;
- ``10k-queued``: 10 000 magnet jobs that are not paused, with the job queue on (3 downloads at
  once): all but three wait for a slot.
The finished ones finished within the last hour (the daemon forgets history older than its
``--history-ttl``, a day by default, at start).

For each, measured beside a same-run reference:
- start-up: entering a ``JobService`` on the state dir (library part), against reading and
  parsing the records alone (``SELECT`` + ``json.loads`` of every row); and a real
  ``torrent-engine daemon`` process from spawn until its API answers (interpreter and imports
  included);
- the service's one-second timer round (``JobService.tick``: leases, the history's age, the stats
  event), the queue's round in it (``enforce()``) and ``stats()`` alone, once started, against
  a walk over every record that only reads its state (what counting the jobs per state by
  walking them costs at least);
- a page of 100 jobs through the real HTTP API of that running daemon (``GET /api/jobs?limit=100
  &offset=...``, and a history page with ``state=cancelled``), against ``json.dumps`` of the same
  page; and the whole list without ``limit`` for comparison.

Budgets: start-up <= 2 s with 10 000 jobs; a page of 100 jobs <= 50 ms.

Run: PYTHONPATH=. python bench/bench_job_store.py [--only 10k|100k-history|10k-queued] [--timer-only]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
import httpx

from torrent_engine.config import Config
from torrent_engine.jobs import JobService, JobState
from torrent_engine.jobs.model import JobOptions
from torrent_engine.jobs.store import JobRecord, JobStore

TOKEN = "bench-token-0123456789abcdef"
SCENARIOS = {"10k": (10_000, 0), "10k-mixed": (200, 9_800),
             "100k-history": (20, 100_000), "10k-queued": (10_000, 0)}  # (unfinished, cancelled)
QUEUED = {"10k-queued"}  # the unfinished ones are not paused, and the queue is on
m = statistics.median


def config() -> Config:
    return Config(listen_host="127.0.0.1", dht_enabled=False, port_mapping=False,
                  lsd_enabled=False, tracker_enabled=False)


def fill(root: Path, paused: int, cancelled: int, *, queued: bool = False) -> None:
    """``paused`` unfinished and ``cancelled`` finished job records in ``root/state/jobs``
    (``queued``: the unfinished ones not paused, and the job queue on with 3 downloads)."""
    folder = root / "state" / "jobs"
    folder.mkdir(parents=True)
    if queued:
        settings = {"queueing": True, "max_active_downloads": 3, "max_active_uploads": -1,
                    "max_active_torrents": -1}
        (root / "state" / "settings.json").write_text(json.dumps(settings))
    save = str(root / "dl")
    now = time.time() - 3600  # (finished within the daemon's default history lifetime, a day)
    for n in range(paused + cancelled):
        state = JobState.PAUSED if n < paused else JobState.CANCELLED
        rec = JobRecord(
            id=f"{n:016x}", info_hash=f"{n + 1:040x}", name=f"job {n}",
            source=f"magnet:?xt=urn:btih:{n + 1:040x}&dn=job{n}",
            options=JobOptions(save_path=save, files=None, sequential=False,
                               paused=state is JobState.PAUSED and not queued,
                               peers=(), client=None, download_limit=0, upload_limit=0),
            state=state, created_at=now + n * 0.01, updated_at=now + n * 0.01,
            completed_at=None if state is JobState.PAUSED else now + n * 0.01 + 1,
            queue_position=n, number=n + 1)
        (folder / f"{rec.id}.json").write_bytes(JobStore.encode(rec))


def read_records(root: Path) -> int:
    db = sqlite3.connect(root / "state" / "jobs.sqlite3")
    try:
        return len([json.loads(text) for (text,) in db.execute("SELECT record FROM jobs")])
    finally:
        db.close()


async def migrate(root: Path) -> float:
    """Seconds of the first start, which migrates the JSON records into the database."""
    t0 = time.perf_counter()
    async with JobService(config(), download_root=root / "dl", state_dir=root / "state") as jobs:
        seconds = time.perf_counter() - t0
        assert jobs.store.migrated is not None, "nothing was migrated"
    return seconds


async def library_startup(root: Path, rounds: int) -> tuple[list[float], list[float]]:
    start_ms, read_ms = [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        read_records(root)
        read_ms.append((time.perf_counter() - t0) * 1e3)
        t0 = time.perf_counter()
        async with JobService(config(), download_root=root / "dl", state_dir=root / "state"):
            start_ms.append((time.perf_counter() - t0) * 1e3)
    return start_ms, read_ms


async def timer_round(root: Path, rounds: int) -> tuple[list[float], list[float], list[float], list[float]]:
    """Milliseconds of ``tick()``, of the queue's round in it (``enforce()``) and of ``stats()``
    on the started service, and of the reference walk over every record."""
    tick_ms, enforce_ms, stats_ms, walk_ms = [], [], [], []
    async with JobService(config(), download_root=root / "dl", state_dir=root / "state") as jobs:
        records = [jobs.get(job.id) for job in jobs.list(limit=1)]  # (warm: the snapshot path)
        assert records
        for _ in range(rounds):
            t0 = time.perf_counter()
            await jobs.tick()
            tick_ms.append((time.perf_counter() - t0) * 1e3)
            t0 = time.perf_counter()
            await jobs.enforce()
            enforce_ms.append((time.perf_counter() - t0) * 1e3)
            t0 = time.perf_counter()
            stats = jobs.stats()
            stats_ms.append((time.perf_counter() - t0) * 1e3)
            t0 = time.perf_counter()
            counts: dict[str, int] = {}
            for rec in jobs._run.jobs.view():  # the reference: one read of each record's state
                counts[rec.state.value] = counts.get(rec.state.value, 0) + 1
            walk_ms.append((time.perf_counter() - t0) * 1e3)
            assert counts == {k: v for k, v in stats.jobs.items() if v}, (counts, stats.jobs)
    return tick_ms, enforce_ms, stats_ms, walk_ms


def daemon(root: Path) -> tuple[subprocess.Popen[bytes], str, float]:
    """A daemon on ``root/state``; its URL and the seconds from spawn until its API answered."""
    api_file = root / "state" / "api.json"
    api_file.unlink(missing_ok=True)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "torrent_engine", "daemon", "--state-dir", str(root / "state"),
         "--download-dir", str(root / "dl"), "--api-port", "0", "--api-token", TOKEN,
         "--listen-host", "127.0.0.1", "--no-trackers", "--no-dht", "--no-port-mapping", "--no-lsd"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while True:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("the daemon did not start")
        if api_file.exists():
            url = json.loads(api_file.read_text())["url"]
            try:
                auth = {"Authorization": f"Bearer {TOKEN}"}
                if httpx.get(url + "/api/health", headers=auth).status_code == 200:
                    return proc, url, time.perf_counter() - t0
            except httpx.HTTPError:
                pass
        time.sleep(0.01)


def http_pages(url: str, params: dict[str, str], rounds: int) -> tuple[list[float], list[float], int]:
    """Milliseconds per GET (client side: request sent to body parsed), and per json.dumps of it."""
    get_ms, dumps_ms = [], []
    n = 0
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        c.get("/api/jobs", params=params)  # warm
        for _ in range(rounds):
            t0 = time.perf_counter()
            r = c.get("/api/jobs", params=params)
            body = r.json()
            t1 = time.perf_counter()
            json.dumps(body)
            t2 = time.perf_counter()
            assert r.status_code == 200, r.text
            n = len(body["jobs"])
            get_ms.append((t1 - t0) * 1e3)
            dumps_ms.append((t2 - t1) * 1e3)
    return get_ms, dumps_ms, n


def run(name: str, rounds: int, *, timer_only: bool = False, timer_rounds: int = 7) -> None:
    paused, cancelled = SCENARIOS[name]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        fill(root, paused, cancelled, queued=name in QUEUED)
        print(f"[{name}] {paused} unfinished + {cancelled} cancelled records written in "
              f"{time.perf_counter() - t0:.1f} s")
        print(f"[{name}] first start, migrating the JSON records: {anyio.run(migrate, root):.1f} s")
        if not timer_only:
            start_ms, read_ms = anyio.run(library_startup, root, rounds)
            print(f"[{name}] JobService start-up: median {m(start_ms):.0f} ms (min {min(start_ms):.0f}); "
                  f"reference reading+parsing the records {m(read_ms):.0f} ms (budget 2000 ms)")
        tick_ms, enforce_ms, stats_ms, walk_ms = anyio.run(timer_round, root, timer_rounds)
        print(f"[{name}] timer round tick(): median {m(tick_ms):.1f} ms (max {max(tick_ms):.1f}); "
              f"enforce() {m(enforce_ms):.1f} ms; stats() {m(stats_ms):.2f} ms; reference walk reading "
              f"every record's state {m(walk_ms):.1f} ms; tick / walk {m(tick_ms) / m(walk_ms):.1f}")
        if timer_only:
            return
        spawn = []
        for i in range(rounds):
            proc, url, seconds = daemon(root)
            spawn.append(seconds * 1e3)
            try:
                if i == rounds - 1:
                    total = paused + cancelled
                    for label, params in (
                            ("page 1", {"limit": "100"}),
                            ("page in the middle", {"limit": "100", "offset": str(total // 2)}),
                            ("history page", {"state": "cancelled", "limit": "100", "offset": "100"}),
                            ("whole list", {})):
                        get_ms, dumps_ms, n = http_pages(url, params, 5 if not params else 30)
                        print(f"[{name}] GET /api/jobs {label} ({n} jobs): median {m(get_ms):.1f} ms "
                              f"(min {min(get_ms):.1f}); reference json.dumps of it {m(dumps_ms):.1f} ms")
            finally:
                proc.kill()
                proc.wait()
        print(f"[{name}] daemon process spawn until its API answers: median {m(spawn):.0f} ms "
              f"(min {min(spawn):.0f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=sorted(SCENARIOS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timer-only", action="store_true",
                        help="only the timer round (no start-up rounds, no daemon), --timer-rounds times")
    parser.add_argument("--timer-rounds", type=int, default=7)
    args = parser.parse_args()
    for name in SCENARIOS if args.only is None else [args.only]:
        run(name, args.rounds, timer_only=args.timer_only, timer_rounds=args.timer_rounds)


if __name__ == "__main__":
    main()
