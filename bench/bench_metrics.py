"""A ``/metrics`` scrape at N jobs, in this process: how long the jobs' series take and how long
the event loop is held at once, against ``prometheus_client`` building and formatting the same
per-job families in one go (how ``/metrics`` made them before), on the same jobs in the same run.

    python bench/bench_metrics.py [--torrents 10000] [--rounds 5]

N small single-file torrents (``bench_seedbox``'s) are added in seed mode to a fresh
``JobService`` (state folder in a temporary directory, no DHT, LSD, port mapping or trackers);
then, ``--rounds`` times each, alternated: ``JobSeries.text()`` (pages of ``JOB_PAGE`` jobs, the
loop let run between pages) and the reference. A probe task that sleeps 1 ms measures the longest
time the loop was held while each ran. The first round of each is left out (the jobs' views are
made then).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_seedbox import make_torrents  # noqa: E402
from prometheus_client import CollectorRegistry, generate_latest  # noqa: E402
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric  # noqa: E402

from torrent_engine.api.metrics import _JOB_FAMILIES, PREFIX, JobSeries  # noqa: E402
from torrent_engine.config import Config  # noqa: E402
from torrent_engine.jobs import AddOptions, JobService  # noqa: E402


class OneGo:
    """The per-job families as ``prometheus_client`` families, all jobs read at once (no
    session is running for a seed-mode seed: its pieces and trackers have no series)."""

    def __init__(self, service: JobService) -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        labels = ["job", "info_hash"]
        families: list[GaugeMetricFamily | CounterMetricFamily] = []
        for name, kind, doc, extra in _JOB_FAMILIES:
            cls = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
            families.append(cls(f"{PREFIX}_{name.removesuffix('_total')}", doc, labels=[*labels, *extra]))
        info, down, up, down_rate, up_rate, peers, seeds, wanted, verified, *_rest = families
        position = families[11]
        total = 0
        for job in self.service.active():
            ids = [job.id, job.info_hash]
            info.add_metric([*ids, job.name, job.state.value], 1)
            down.add_metric(ids, job.downloaded)
            up.add_metric(ids, job.uploaded)
            down_rate.add_metric(ids, job.download_rate)
            up_rate.add_metric(ids, job.upload_rate)
            peers.add_metric(ids, job.peers)
            total += job.peers
            seeds.add_metric(ids, job.seeds)
            wanted.add_metric(ids, job.total_size)
            verified.add_metric(ids, job.done_size)
            position.add_metric(ids, job.queue_position)
        yield GaugeMetricFamily(f"{PREFIX}_peers", "Peers connected, all jobs together.", value=total)
        yield from families


async def held(work: Callable[[], Awaitable[bytes]]) -> tuple[float, float, int, float]:
    """``work``'s seconds, the longest the loop was held meanwhile, its answer's size, and the
    longest full collection of the garbage collector meanwhile (a hold the code cannot page)."""
    gaps: list[float] = []
    full: list[float] = []
    started = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if info["generation"] == 2:
            if phase == "start":
                started[0] = time.perf_counter()
            else:
                full.append(time.perf_counter() - started[0])

    async def probe() -> None:
        while True:
            t = time.perf_counter()
            await asyncio.sleep(0.001)
            gaps.append(time.perf_counter() - t - 0.001)

    task = asyncio.create_task(probe())
    await asyncio.sleep(0.01)
    gaps.clear()
    gc.callbacks.append(on_gc)
    t0 = time.perf_counter()
    body = await work()
    seconds = time.perf_counter() - t0
    await asyncio.sleep(0.005)  # (the gap that ends after the work: the probe's wake-up)
    gc.callbacks.remove(on_gc)
    task.cancel()
    return seconds, max(gaps, default=0.0), len(body), max(full, default=0.0)


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data, files = make_torrents(work, args.torrents)
        blobs = [f.read_bytes() for f in files]
        config = Config(listen_host="127.0.0.1", listen_port=0, dht_enabled=False, port_mapping=False,
                        lsd_enabled=False, tracker_enabled=False, seed=True, state_dir=work / "state")
        async with JobService(config, download_root=data, state_dir=work / "state") as jobs:
            options = AddOptions(save_path=str(data), seed_mode=True)
            for i in range(0, len(blobs), 25):
                await jobs.add_many(blobs[i:i + 25], options)
            series = JobSeries(jobs)
            registry = CollectorRegistry(auto_describe=False)
            registry.register(OneGo(jobs))

            async def paged() -> bytes:
                return b"".join(await series.text())

            async def one_go() -> bytes:
                return generate_latest(registry)

            results: dict[str, list[tuple[float, float, int, float]]] = {"paged": [], "one go": []}
            for n in range(args.rounds + 1):
                for name, how in (("paged", paged), ("one go", one_go)):
                    r = await held(how)
                    if n:
                        results[name].append(r)
        print(f"{args.torrents} jobs, {args.rounds} rounds each (load "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())})")
        for name, rs in results.items():
            took = statistics.median(r[0] for r in rs) * 1000
            print(f"  {name:6}: {took:7.1f} ms a scrape's job series (median), loop held at most "
                  f"{max(r[1] for r in rs) * 1000:6.1f} ms (the longest full garbage collection "
                  f"meanwhile {max(r[3] for r in rs) * 1000:.1f} ms), {rs[0][2] / 1e6:.1f} MB")
        ratio = statistics.median(r[0] for r in results["paged"]) / statistics.median(
            r[0] for r in results["one go"])
        print(f"  time paged / one go: {ratio:.2f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--torrents", type=int, default=10000)
    p.add_argument("--rounds", type=int, default=5)
    asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    main()
