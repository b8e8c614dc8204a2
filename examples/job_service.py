"""Many torrents with a queue, kept across restarts: the job service in this process
(``te.JobService``, what the daemon runs, without its HTTP API).

    python examples/job_service.py downloads/ a.torrent b.torrent 'magnet:?xt=urn:btih:...'
    python examples/job_service.py downloads/        # later: the unfinished jobs go on
    python examples/job_service.py downloads/ a.torrent --local --peer 127.0.0.1:6881

At most ``--max-active`` jobs download at once; the others wait, queued. The jobs live in
``--state-dir`` (their records, each torrent's metainfo and resume data): run it again, with or
without sources, and every unfinished job goes on from what was verified; a source already
there is the same job. Prints each job's changes of state, and a line per job once none runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import anyio

import torrent_engine as te
from torrent_engine.jobs import JobStateChanged

# what a job ends in here: the jobs do not seed (``Config(seed=False)``), so one that has its data
# passes through seeding to completed (waiting for seeding too printed a job's passing state)
DONE = frozenset({te.JobState.COMPLETED, te.JobState.FAILED, te.JobState.CANCELLED})


def address(text: str) -> tuple[str, int]:
    """``host:port`` as a pair."""
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def show(event: JobStateChanged) -> None:
    """Print a job's change of state."""
    print(f"{event.job.name}: {event.old.value} -> {event.new.value}", flush=True)


async def run_jobs(root: Path, sources: list[str], state_dir: Path, config: te.Config,
                   peers: tuple[tuple[str, int], ...]) -> None:
    """Add every source as a job (the service's records bring back those of earlier runs) and
    wait until none downloads any more."""
    async with te.JobService(config, download_root=root, state_dir=state_dir) as jobs:
        jobs.events.subscribe(JobStateChanged, show)
        print(f"{len(jobs.list())} jobs in {state_dir}", flush=True)
        for source in sources:
            job, created = await jobs.add(source, peers=peers)
            print(f"{'added' if created else 'already there'}: {job.name}", flush=True)
        while any(job.state not in DONE for job in jobs.list()):
            await anyio.sleep(0.2)
        for job in reversed(jobs.list()):  # (oldest first)
            print(f"done: {job.name} {job.state.value} {job.total_size} bytes", flush=True)


def main() -> int:
    """Parse the arguments and run the jobs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("download_root", type=Path, help="every job's files go below this folder")
    parser.add_argument("sources", nargs="*", help=".torrent files or magnet links to add")
    parser.add_argument("--state-dir", type=Path, default=Path("job-state"),
                        help="where the jobs are kept (default: ./job-state)")
    parser.add_argument("--max-active", type=int, default=2, help="jobs downloading at once (0: all)")
    parser.add_argument("--peer", type=address, action="append", default=[], help="HOST:PORT to dial")
    parser.add_argument("--local", action="store_true",
                        help="loopback only: no DHT, trackers, LSD or port mapping")
    args = parser.parse_args()
    # (Config.max_active_downloads: the service's download slots, its one queue)
    config = te.Config(max_active_downloads=args.max_active, seed=False)
    if args.local:
        config = te.Config(max_active_downloads=args.max_active, seed=False, listen_host="127.0.0.1",
                           dht_enabled=False, tracker_enabled=False, lsd_enabled=False, port_mapping=False)
    te.run(run_jobs, args.download_root, args.sources, args.state_dir, config, tuple(args.peer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
