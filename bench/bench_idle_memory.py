"""What an idle seeding torrent costs in memory: N torrents seeding in one ``JobService`` in this
process, none with a peer, none with an address to dial, nothing unsaved.

    python bench/bench_idle_memory.py [--torrents 1000] [--batch 50] [--warm 20] [--work DIR]

N small single-file torrents (256 KiB, 32 KiB pieces, data on disk: ``bench_seedbox``'s) are
added with ``seed_mode=True`` (nothing hashed at the add) to a fresh service (state folder in a
temporary directory, DHT, LSD, port mapping and trackers off, loopback only). ``--warm``
torrents are added first and left out (imports, the listener, the first worker threads); then
the process's RSS is read, the N are added, and once every job seeds and the tasks settled
(each session saved its resume data, its loops went idle) RSS is read again: the delta over N
is the cost of one idle seeding torrent. The asyncio tasks alive per torrent are counted too.
``--work DIR`` keeps the generated torrents and data for the next run. ``--checked`` adds them
without seed mode (each hashed in a session, which then seeds: a completed download's case);
``--dormant-after S`` sets ``Config.dormant_after`` (default 0 here: sessions kept) and, above 0,
waits until every session went dormant before reading RSS.

The reference is the same script run from another tree (``PYTHONPATH=OTHER python
OTHER/bench/bench_idle_memory.py``, with this file copied there if it has none), alternated:
RSS depends on the allocator's history, so compare runs of the same N on the same machine.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_seedbox import make_torrents  # noqa: E402

from torrent_engine.config import Config  # noqa: E402
from torrent_engine.jobs import AddOptions, JobService  # noqa: E402
from torrent_engine.jobs.model import JobState  # noqa: E402


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise SystemExit("no VmRSS in /proc/self/status")


async def settle(jobs: JobService, count: int, timeout: float = 600.0, *, dormant: bool = False) -> None:
    """Until ``count`` jobs seed (``dormant``: and have no session), then until the number of
    tasks stays put for 3 s."""
    deadline = time.monotonic() + timeout
    while len(jobs.list(JobState.SEEDING)) < count or (dormant and jobs.manager.sessions):
        if time.monotonic() > deadline:
            states = sorted({j.state for j in jobs.list()})
            raise SystemExit(f"not all seeding after {timeout:.0f} s: {states}")
        await asyncio.sleep(0.2)
    last, stable_since = -1, time.monotonic()
    while time.monotonic() - stable_since < 3.0:
        n = len(asyncio.all_tasks())
        if n != last:
            last, stable_since = n, time.monotonic()
        await asyncio.sleep(0.2)


async def add(jobs: JobService, blobs: list[bytes], options: AddOptions, batch: int) -> None:
    for i in range(0, len(blobs), batch):
        results = await jobs.add_many(blobs[i:i + batch], options)
        refused = [r for r in results if not isinstance(r, tuple)]
        if refused:
            raise SystemExit(f"refused: {refused[0]}")


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work) if args.work else Path(tmp)
        state = Path(tmp) / "state"
        data, files = make_torrents(work, args.warm + args.torrents)
        blobs = [f.read_bytes() for f in files]
        config = Config(listen_host="127.0.0.1", listen_port=0, dht_enabled=False, port_mapping=False,
                        lsd_enabled=False, tracker_enabled=False, seed=True, state_dir=state,
                        dormant_after=args.dormant_after)
        dormant = args.dormant_after > 0
        async with JobService(config, download_root=data, state_dir=state) as jobs:
            options = AddOptions(save_path=str(data), seed_mode=not args.checked)
            await add(jobs, blobs[:args.warm], options, args.batch)
            await settle(jobs, args.warm, dormant=dormant)
            gc.collect()
            rss0, tasks0 = rss_kib(), len(asyncio.all_tasks())
            await add(jobs, blobs[args.warm:], options, args.batch)
            await settle(jobs, args.warm + args.torrents, dormant=dormant)
            gc.collect()
            rss1, tasks1 = rss_kib(), len(asyncio.all_tasks())
        n = args.torrents
        print(f"{n} idle seeding torrents: RSS {rss0 / 1024:.1f} -> {rss1 / 1024:.1f} MiB, "
              f"{(rss1 - rss0) / n:.1f} KiB a torrent; {(tasks1 - tasks0) / n:.2f} tasks a torrent "
              f"(load {' '.join(f'{x:.2f}' for x in os.getloadavg())})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--torrents", type=int, default=1000)
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--warm", type=int, default=20)
    p.add_argument("--work", default="")
    p.add_argument("--checked", action="store_true")
    p.add_argument("--dormant-after", type=float, default=0.0)
    asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    main()
