"""What ``tracker_hosts`` adds to a job's summary at seedbox scale, in process.

    python bench/bench_tracker_hosts.py [--jobs 10000] [--trackers 3] [--hosts 20]

Makes ``--jobs`` paused job snapshots, each with ``--trackers`` announce URLs among ``--hosts``
hosts, and times (median of 7) ``Job.to_json()`` over all of them (as a full list or an SSE
snapshot builds them) and ``tracker_hosts`` alone over all of them. Prints one JSON line, with
the machine's load average.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from torrent_engine.jobs.model import Job, JobOptions, JobState, JobTracker, tracker_hosts  # noqa: E402


def median_ms(work: Callable[[], object], rounds: int = 7) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return round(statistics.median(times) * 1000, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--trackers", type=int, default=3)
    parser.add_argument("--hosts", type=int, default=20)
    args = parser.parse_args()
    options = JobOptions(save_path="/downloads", files=None, sequential=False, paused=True, peers=(),
                         client=None, download_limit=0, upload_limit=0)
    jobs = []
    for n in range(args.jobs):
        trackers = tuple(JobTracker(url=f"udp://tracker{(n + k) % args.hosts}.example:6969/announce",
                                    status="unknown", message="", peers=0, tier=k)
                         for k in range(args.trackers))
        jobs.append(Job(id=f"{n:016x}", info_hash=f"{n:040x}", name=f"job {n}", source="torrent",
                        options=options, state=JobState.PAUSED, created_at=0.0, updated_at=0.0,
                        completed_at=None, progress=0.0, total_size=1, done_size=0, downloaded=0, uploaded=0,
                        download_rate=0.0, upload_rate=0.0, peers=0, seeds=0, eta=None, files=(),
                        peer_list=(), trackers=trackers, error=None, result=None))
    print(json.dumps({"jobs": args.jobs, "trackers_each": args.trackers,
                      "to_json_ms": median_ms(lambda: [j.to_json() for j in jobs]),
                      "tracker_hosts_ms": median_ms(lambda: [tracker_hosts(j.trackers) for j in jobs]),
                      "load": os.getloadavg()[0]}))


if __name__ == "__main__":
    main()
