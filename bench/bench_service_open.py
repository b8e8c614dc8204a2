"""Opening a job service that holds N jobs: how long from ``JobService.__aenter__`` until it
answers (its records read, its torrents being loaded), in this process.

    python bench/bench_service_open.py [--jobs 10000] [--rounds 5]

N paused magnet jobs (no session, no data: what a restart of a daemon holding many torrents reads
before its API answers) are added once to a state folder in a temporary directory (DHT, LSD, port
mapping and trackers off); then the service is opened and closed ``--rounds`` times over it, the
collector tuned as the daemon tunes it. Prints the median and the spread of the open.

The reference is the same script run from another tree (``PYTHONPATH=OTHER python
OTHER/bench/bench_service_open.py``), alternated.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from torrent_engine.config import Config  # noqa: E402
from torrent_engine.jobs import AddOptions, JobService  # noqa: E402


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "dl").mkdir()
        config = Config(listen_host="127.0.0.1", listen_port=0, dht_enabled=False, port_mapping=False,
                        lsd_enabled=False, tracker_enabled=False, seed=True, state_dir=work / "state")
        async with JobService(config, download_root=work / "dl", state_dir=work / "state") as jobs:
            magnets = [f"magnet:?xt=urn:btih:{i + 1:040x}&dn=m{i}" for i in range(args.jobs)]
            for i in range(0, args.jobs, 500):
                await jobs.add_many(magnets[i:i + 500], AddOptions(paused=True))
        opens = []
        for _ in range(args.rounds):
            gc.collect()
            t0 = time.perf_counter()
            async with JobService(config, download_root=work / "dl", state_dir=work / "state") as jobs:
                opens.append(time.perf_counter() - t0)
                assert len(jobs) == args.jobs
        print(f"{args.jobs} jobs: open median {statistics.median(opens):.3f} s "
              f"(min {min(opens):.3f}, max {max(opens):.3f}, {args.rounds} rounds)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=10000)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    gc.set_threshold(50_000, 20, 20)  # (the daemon's: cli/collector.py GC_THRESHOLDS)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
