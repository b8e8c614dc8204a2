"""What a batch of adds' state-folder writes cost: ``write_atomic_many`` of ``--batch`` metainfo
files (durable: fsynced) and as many resume placeholders (not fsynced), as 25 seed-mode adds write
them, into one folder that fills as the batches go (a state folder at thousands of torrents).

    python bench/bench_write_many.py [--batches 60] [--batch 25] [--syncs]

The reference is the same script run against another tree, alternated
(``PYTHONPATH=OTHER python bench/bench_write_many.py``): the disk's speed changes from minute to
minute on a shared machine, so only runs side by side compare. Prints the median and p90 of a batch.
``--syncs`` times the sync stage alone instead: the same files written, then their fsyncs one
after the other against the same from ``resume._SYNC_THREADS`` threads, batches alternated.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from torrent_engine.storage import resume
from torrent_engine.storage.resume import write_atomic_many


def syncs(batches: int, batch: int, metainfo: bytes, placeholder: bytes) -> None:
    """The sync stage alone: one after the other against from threads, batches alternated."""
    times: dict[str, list[float]] = {"one after the other": [], "from threads": []}
    with tempfile.TemporaryDirectory(prefix="te-write-many-") as tmp:
        for b in range(batches):
            for way, seconds in times.items():
                fds = []
                for i in range(batch):
                    fd, _ = tempfile.mkstemp(dir=tmp, prefix=f"{b}-{i}.torrent.")
                    os.write(fd, metainfo)
                    fds.append(fd)
                    other, _ = tempfile.mkstemp(dir=tmp, prefix=f"{b}-{i}.resume.")
                    os.write(other, placeholder)
                    os.close(other)
                t0 = time.perf_counter()
                if way == "from threads":
                    with ThreadPoolExecutor(resume._SYNC_THREADS) as pool:
                        list(pool.map(os.fsync, fds))
                else:
                    for fd in fds:
                        os.fsync(fd)
                seconds.append(time.perf_counter() - t0)
                for fd in fds:
                    os.close(fd)
    for way, seconds in times.items():
        print(f"{batch} syncs {way}: median {statistics.median(seconds) * 1e3:.1f} ms a batch")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--batch", type=int, default=25)
    parser.add_argument("--syncs", action="store_true")
    args = parser.parse_args()
    metainfo, placeholder = os.urandom(600), os.urandom(100)
    if args.syncs:
        syncs(args.batches, args.batch, metainfo, placeholder)
        return
    times: list[float] = []
    with tempfile.TemporaryDirectory(prefix="te-write-many-") as tmp:
        folder = Path(tmp)
        for b in range(args.batches):
            files = []
            for i in range(args.batch):
                files.append((folder / f"{b:05d}-{i:03d}.torrent", metainfo, True))
                files.append((folder / f"{b:05d}-{i:03d}.resume", placeholder, False))
            t0 = time.perf_counter()
            write_atomic_many(files)
            times.append(time.perf_counter() - t0)
    p90 = sorted(times)[int(len(times) * 0.9)]
    print(f"{args.batches} batches of {args.batch} durable + {args.batch} other files: "
          f"median {statistics.median(times) * 1e3:.1f} ms, p90 {p90 * 1e3:.1f} ms a batch "
          f"(load {' '.join(f'{x:.2f}' for x in os.getloadavg())})")


if __name__ == "__main__":
    main()
