"""Soak of a real ``torrent-engine daemon`` process (loopback only) under churn.

About 200 jobs (magnets without peers, plus a few real torrents served by seeders that come and
go: our own engine and, when installed, libtorrent, each in its own process) are added, paused,
resumed, cancelled, rechecked, moved between categories and given limits through the HTTP API,
while SSE clients connect and drop and other clients read job pages, stats and job details. The
daemon's RSS, open descriptors and threads (from /proc) and every series of its ``/metrics`` are
sampled; at the end the least-squares slope per hour of each is printed, then the daemon is
killed with SIGKILL in the middle of the churn, restarted on the same state directory, and every
change the API had acknowledged is checked to be there.

With ``--tracemalloc N`` the daemon runs under ``tracemalloc`` (N frames a traceback) and
dumps a snapshot into the work folder every ``--snapshot-every`` seconds; at the end the lines
whose allocations grew most between the first snapshot after warm-up and the last are printed.

Every loop is bounded in count and in time; all traffic stays on 127.0.0.1.

Run: PYTHONPATH=. python bench/soak_daemon.py --seconds 1800
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx

from tests.integration.helpers import make_payload, make_torrent

TOKEN = "soak-token-0123456789abcdef"
CATEGORIES = ("films", "tv", "music")
MAX_OPS = 1_000_000  # every loop is also bounded in count


@dataclass
class Expected:
    """What the API acknowledged, per job id (only answered requests count)."""

    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> {"cancelled", "paused", ...}
    inflight: set[str] = field(default_factory=set)  # jobs with a request not yet answered
    forgotten: set[str] = field(default_factory=set)  # cancelled jobs whose history was cleared
    acked: int = 0


@dataclass
class Sample:
    t: float
    values: dict[str, float]


def _proc_values(pid: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key == "VmRSS":
            out["proc_rss_mib"] = int(rest.split()[0]) / 1024
        elif key == "Threads":
            out["proc_threads"] = float(rest.strip())
    out["proc_open_fds"] = float(len(os.listdir(f"/proc/{pid}/fd")))
    return out


def _metrics_values(text: str) -> dict[str, float]:
    """Each metric name's value (summed over its labels; histogram buckets left out)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_labels, _, value = line.rpartition(" ")
        name = name_labels.split("{", 1)[0]
        if name.endswith(("_bucket", "_created")):
            continue
        try:
            out["m:" + name] = out.get("m:" + name, 0.0) + float(value)
        except ValueError:
            continue
    return out


def slope_per_hour(samples: list[Sample], key: str) -> float | None:
    """Least-squares slope of ``key`` over time, per hour."""
    pts = [(s.t, s.values[key]) for s in samples if key in s.values]
    if len(pts) < 3:
        return None
    mt = statistics.fmean(t for t, _ in pts)
    mv = statistics.fmean(v for _, v in pts)
    den = sum((t - mt) ** 2 for t, _ in pts)
    return 0.0 if den == 0 else sum((t - mt) * (v - mv) for t, v in pts) / den * 3600


# runs the daemon's CLI with tracemalloc on and a thread that dumps a snapshot every so often
_TRACED = """
import sys, threading, time, tracemalloc
frames, every, folder = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
del sys.argv[1:4]
tracemalloc.start(frames)
def dump():
    for n in range(100_000):
        time.sleep(every)
        tracemalloc.take_snapshot().dump(f"{folder}/snap-{n:05d}.tracemalloc")
threading.Thread(target=dump, daemon=True).start()
from torrent_engine.cli import main
sys.exit(main())
"""


class Daemon:
    """The daemon process on a state directory (``trace``: tracemalloc's frames and the seconds
    between two snapshots, dumped into ``root/tracemalloc``)."""

    def __init__(self, root: Path, trace: tuple[int, float] | None = None) -> None:
        self.root = root
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.trace = trace
        self.killed = False  # (by ``kill``: the run's end, not the daemon's own doing)

    async def start(self) -> None:
        api_file = self.root / "state" / "api.json"
        api_file.unlink(missing_ok=True)
        self.killed = False
        with open(self.root / "daemon.log", "ab") as log:
            prefix = [sys.executable, "-m", "torrent_engine"]
            if self.trace is not None:
                snaps = self.root / "tracemalloc"
                snaps.mkdir(exist_ok=True)
                prefix = [sys.executable, "-c", _TRACED, str(self.trace[0]), str(self.trace[1]), str(snaps)]
                self.trace = None  # (the restart after the kill runs plain)
            self.proc = subprocess.Popen(
                [*prefix, "daemon", "--state-dir", str(self.root / "state"),
                 "--download-dir", str(self.root / "downloads"), "--api-port", "0", "--api-token", TOKEN,
                 "--listen-host", "127.0.0.1", "--no-trackers", "--no-dht", "--no-port-mapping", "--no-lsd"],
                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        with anyio.fail_after(120):
            while not api_file.exists():
                if self.proc.poll() is not None:
                    log_text = (self.root / "daemon.log").read_text()
                    raise RuntimeError("the daemon stopped: " + log_text[-2000:])
                await anyio.sleep(0.05)
        self.url = json.loads(api_file.read_text())["url"]

    def kill(self) -> None:
        self.killed = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def check_alive(self) -> None:
        """``RuntimeError`` with the log's tail if the daemon exited by itself."""
        assert self.proc is not None
        code = self.proc.poll()
        if code is not None and not self.killed:
            log_text = (self.root / "daemon.log").read_text(errors="replace")
            raise RuntimeError(f"the daemon exited by itself (status {code}): " + log_text[-2000:])


class Seeders:
    """Seeder processes on one port, replaced now and then (ours, then libtorrent if installed)."""

    def __init__(self, folders: list[Path], port: int) -> None:
        self.folders, self.port = folders, port
        self.proc: subprocess.Popen[bytes] | None = None
        self.kinds = ["ours"]
        try:
            import libtorrent  # noqa: F401
            self.kinds.append("libtorrent")
        except ImportError:
            pass
        self.starts = 0

    async def start(self) -> None:
        kind = self.kinds[self.starts % len(self.kinds)]
        self.starts += 1
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.integration._soak_seeder", kind, str(self.port),
             *map(str, self.folders)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert self.proc.stdout is not None
        with anyio.fail_after(60):
            line = await anyio.to_thread.run_sync(self.proc.stdout.readline)
        if line.strip() != b"ready":
            raise RuntimeError(f"seeder {kind} did not start")

    def stop(self) -> None:
        if self.proc is not None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _call(c: httpx.AsyncClient, exp: Expected, job_id: str | None, method: str, url: str,
                **kw: Any) -> httpx.Response | None:
    if job_id is not None:
        exp.inflight.add(job_id)
    try:
        r = await c.request(method, url, **kw)
    except httpx.HTTPError:
        return None  # not acknowledged (the job stays uncertain)
    if job_id is not None:
        exp.inflight.discard(job_id)
    return r


async def churn(c: httpx.AsyncClient, exp: Expected, real: list[str], peer: str, jobs: int,
                until: float, rng: random.Random) -> None:
    """Adds, pauses, resumes, cancels, rechecks and changes jobs until ``until``."""
    counter = 0

    async def add() -> None:
        nonlocal counter
        counter += 1
        live_real = {j["source"] for j in exp.jobs.values() if not j["cancelled"]}
        free_real = [s for s in real if s not in live_real]
        if free_real and rng.random() < 0.3:
            source, body = free_real[0], {"source": free_real[0], "peers": [peer]}
        else:
            source = f"magnet:?xt=urn:btih:{rng.getrandbits(160):040x}&dn=soak{counter}"
            body = {"source": source, "paused": rng.random() < 0.5}
        r = await _call(c, exp, None, "POST", "/api/jobs", json=body)
        if r is not None and r.status_code == 201:
            j = r.json()
            exp.jobs[j["id"]] = {"source": source, "cancelled": False, "paused": j["state"] == "paused",
                                 "category": None, "download_limit": 0}
            exp.acked += 1

    for _ in range(jobs):
        await add()
    for _ in range(MAX_OPS):
        if time.monotonic() >= until:
            break
        live = [k for k, v in exp.jobs.items() if not v["cancelled"] and k not in exp.inflight]
        if len(live) < jobs:
            await add()
            continue
        if rng.random() < 0.005:  # forget the history now and then (it would grow without end)
            r = await _call(c, exp, None, "DELETE", "/api/jobs", params={"finished": "true"})
            if r is not None and r.status_code == 200:
                exp.acked += 1
                for k in [k for k, v in exp.jobs.items() if v["cancelled"]]:
                    exp.forgotten.add(k)
                    del exp.jobs[k]
            continue
        job_id = rng.choice(live)
        e = exp.jobs[job_id]
        op = rng.choice(("pause", "resume", "cancel", "recheck", "category", "limit"))
        if op in ("pause", "resume", "recheck"):
            r = await _call(c, exp, job_id, "POST", f"/api/jobs/{job_id}/{op}")
            if r is not None and r.status_code == 200:
                exp.acked += 1
                if op != "recheck":
                    e["paused"] = op == "pause"
        elif op == "cancel":
            r = await _call(c, exp, job_id, "DELETE", f"/api/jobs/{job_id}",
                            params={"delete_files": "true"})
            if r is not None and r.status_code == 200:
                e["cancelled"] = True
                exp.acked += 1
        else:
            body: dict[str, Any] = ({"category": rng.choice(CATEGORIES)} if op == "category"
                                    else {"download_limit": rng.choice((0, 50_000, 1_000_000))})
            r = await _call(c, exp, job_id, "PATCH", f"/api/jobs/{job_id}", json=body)
            if r is not None and r.status_code == 200:
                e.update(body)
                exp.acked += 1
        await anyio.sleep(0.02)


async def sse_clients(url: str, until: float, rng: random.Random) -> None:
    """SSE clients connecting, reading a while and dropping."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    for _ in range(MAX_OPS):
        if time.monotonic() >= until:
            break
        try:
            async with httpx.AsyncClient(base_url=url, headers=headers, timeout=10) as c:
                with anyio.move_on_after(rng.uniform(0.2, 3.0)):
                    async with c.stream("GET", "/api/events") as r:
                        async for _ in r.aiter_bytes():
                            pass
        except httpx.HTTPError:
            pass
        await anyio.sleep(rng.uniform(0.0, 0.3))


async def api_load(c: httpx.AsyncClient, exp: Expected, until: float, rng: random.Random) -> None:
    """Reads of job pages, stats and details."""
    for _ in range(MAX_OPS):
        if time.monotonic() >= until:
            break
        try:
            await c.get("/api/jobs", params={"limit": "100", "offset": str(rng.randrange(0, 200))})
            await c.get("/api/stats")
            if exp.jobs:
                await c.get(f"/api/jobs/{rng.choice(list(exp.jobs))}")
        except httpx.HTTPError:
            pass
        await anyio.sleep(0.05)


async def check_after_restart(c: httpx.AsyncClient, exp: Expected) -> list[str]:
    """Every acknowledged change, as the restarted daemon answers it; the problems found."""
    r = await c.get("/api/jobs")
    r.raise_for_status()
    got = {j["id"]: j for j in r.json()["jobs"]}
    problems = []
    for job_id, e in exp.jobs.items():
        if job_id in exp.inflight:
            continue
        j = got.get(job_id)
        if j is None:
            problems.append(f"{job_id}: acknowledged job missing")
            continue
        if e["cancelled"]:
            if j["state"] != "cancelled":
                problems.append(f"{job_id}: cancelled, found {j['state']}")
            continue
        if e["paused"] and j["state"] != "paused":
            problems.append(f"{job_id}: paused, found {j['state']}")
        if not e["paused"] and j["state"] in ("paused", "cancelled"):
            problems.append(f"{job_id}: resumed, found {j['state']}")
        if e["category"] is not None and j["features"]["category"] != e["category"]:
            problems.append(f"{job_id}: category {e['category']}, found {j['features']['category']}")
        if j["options"]["download_limit"] != e["download_limit"]:
            problems.append(f"{job_id}: download_limit {e['download_limit']}, "
                            f"found {j['options']['download_limit']}")
    problems += [f"{job_id}: forgotten, found again" for job_id in exp.forgotten if job_id in got]
    return problems


@dataclass
class Report:
    samples: list[Sample]
    slopes: dict[str, float | None]
    first: dict[str, float]  # medians of the first quarter after warm-up
    last: dict[str, float]  # medians of the last quarter
    acked: int
    checked: int
    uncertain: int
    problems: list[str]
    seeder_restarts: int


async def soak(root: Path, seconds: float, *, jobs: int = 200, sample_every: float = 5.0,
               warmup: float = 0.2, seed: int = 1, trace: tuple[int, float] | None = None) -> Report:
    """Run the soak in ``root`` for ``seconds``; SIGKILL, restart and check at the end."""
    rng = random.Random(seed)
    folders, real = [], []
    for i in range(6):
        folder = root / f"seed{i}"
        # (a name each: torrents all named "payload" write one x.txt, and the daemon refuses a
        # second job writing a file another writes: its magnet's job failed once its metadata came)
        payload = make_payload(folder, [(f"f{i}.bin", 400_000 + 50_000 * i), ("x.txt", 100)], seed=i,
                               name=f"payload{i}")
        t = make_torrent(payload, piece_length=32 * 1024)
        (folder / "t.torrent").write_bytes(t.to_bytes())
        folders.append(folder)
        real.append(t.magnet_uri())
    seeders = Seeders(folders, _free_port())
    daemon = Daemon(root, trace)
    await seeders.start()
    await daemon.start()
    exp = Expected()
    samples: list[Sample] = []
    headers = {"Authorization": f"Bearer {TOKEN}"}
    start = time.monotonic()
    until = start + seconds
    try:
        async with httpx.AsyncClient(base_url=daemon.url, headers=headers, timeout=30) as c:
            await c.post("/api/categories", json={"name": CATEGORIES[0]})
            for name in CATEGORIES[1:]:
                await c.post("/api/categories", json={"name": name})

            async def sampler() -> None:
                for _ in range(MAX_OPS):
                    # (the kill below comes a second before ``until``)
                    if time.monotonic() >= until or daemon.killed:
                        break
                    daemon.check_alive()
                    values = _proc_values(daemon.pid)
                    try:
                        values.update(_metrics_values((await c.get("/metrics")).text))
                    except httpx.HTTPError:
                        pass
                    samples.append(Sample(time.monotonic() - start, values))
                    await anyio.sleep(sample_every)

            async def peers() -> None:
                for _ in range(MAX_OPS):
                    await anyio.sleep(min(60.0, max(5.0, seconds / 6)))
                    if time.monotonic() >= until - 5:
                        break
                    seeders.stop()
                    await anyio.sleep(3)
                    await seeders.start()

            async with anyio.create_task_group() as tg:
                tg.start_soon(churn, c, exp, real, f"127.0.0.1:{seeders.port}", jobs, until, rng)
                tg.start_soon(sampler)
                tg.start_soon(peers)
                tg.start_soon(api_load, c, exp, until, rng)
                for _ in range(3):
                    tg.start_soon(sse_clients, daemon.url, until, rng)
                # SIGKILL while the churn still runs: requests not answered stay uncertain
                await anyio.sleep(max(0.0, until - 1.0 - time.monotonic()))
                daemon.kill()
        await daemon.start()
        async with httpx.AsyncClient(base_url=daemon.url, headers=headers, timeout=60) as c:
            problems = await check_after_restart(c, exp)
    finally:
        daemon.kill()
        seeders.stop()
    after = [s for s in samples if s.t >= warmup * seconds]
    keys = sorted({k for s in after for k in s.values})
    q = max(1, len(after) // 4)
    return Report(
        samples=samples, slopes={k: slope_per_hour(after, k) for k in keys},
        first={k: statistics.median(s.values.get(k, 0.0) for s in after[:q]) for k in keys},
        last={k: statistics.median(s.values.get(k, 0.0) for s in after[-q:]) for k in keys},
        acked=exp.acked, checked=len(exp.jobs) - len(exp.inflight), uncertain=len(exp.inflight),
        problems=problems, seeder_restarts=seeders.starts - 1)


HEADLINE = {"proc_rss_mib": "RSS (MiB)", "proc_open_fds": "open fds", "proc_threads": "threads",
            "m:torrent_engine_asyncio_tasks": "asyncio tasks"}


def print_report(r: Report, seconds: float) -> None:
    """The figures, one a line."""
    print(f"soak {seconds:.0f} s: {len(r.samples)} samples, {r.acked} acknowledged changes, "
          f"{r.seeder_restarts} seeder restarts")
    for key, label in HEADLINE.items():
        slope = r.slopes.get(key)
        if slope is not None:
            print(f"  {label}: {r.first[key]:.2f} -> {r.last[key]:.2f}, slope {slope:+.2f} per hour")
    print(f"{'series':55} {'first q':>12} {'last q':>12} {'slope/h':>12}")
    for k, s in r.slopes.items():
        if s is None or (r.first[k] == 0 and r.last[k] == 0):
            continue
        print(f"{k:55} {r.first[k]:12.2f} {r.last[k]:12.2f} {s:12.2f}")
    print(f"after SIGKILL + restart: {r.checked} jobs checked, {r.uncertain} uncertain (request "
          f"unanswered at the kill), problems: {len(r.problems)}")
    for p in r.problems[:20]:
        print("  " + p)


def print_growth(folder: Path, *, warmup: float, top: int = 15) -> None:
    """The lines whose allocations grew most from the first snapshot after ``warmup`` (a share of
    the snapshots) to the last."""
    snaps = sorted(folder.glob("snap-*.tracemalloc"))
    if len(snaps) < 2:
        print(f"tracemalloc: {len(snaps)} snapshot(s), nothing to compare")
        return
    first = snaps[min(len(snaps) - 2, int(len(snaps) * warmup))]
    old, new = tracemalloc.Snapshot.load(str(first)), tracemalloc.Snapshot.load(str(snaps[-1]))
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen *>")]
    old, new = old.filter_traces(ignore), new.filter_traces(ignore)
    diffs = new.compare_to(old, "lineno")
    total = sum(d.size_diff for d in diffs)
    print(f"tracemalloc: {first.name} -> {snaps[-1].name}: {total / 1024:+.1f} KiB traced in all; "
          f"the {top} lines that grew most:")
    for d in diffs[:top]:
        print(f"  {d.size_diff / 1024:+9.1f} KiB {d.count_diff:+7d} blocks  {d.traceback}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=1800.0)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--sample-every", type=float, default=5.0)
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--tracemalloc", type=int, default=0, metavar="FRAMES",
                        help="run the daemon under tracemalloc and report where memory grew")
    parser.add_argument("--snapshot-every", type=float, default=120.0)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="soak-"))
    trace = (args.tracemalloc, args.snapshot_every) if args.tracemalloc > 0 else None
    try:
        report = anyio.run(functools.partial(soak, root, args.seconds, jobs=args.jobs,
                                            sample_every=args.sample_every, trace=trace))
        print_report(report, args.seconds)
        if trace is not None:
            print_growth(root / "tracemalloc", warmup=0.2)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    sys.exit(1 if report.problems else 0)


if __name__ == "__main__":
    main()
