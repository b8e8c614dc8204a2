"""What a batch of adds' metainfo writes cost: ``--batch`` torrents' metainfo kept in the state
folder's database (``MetainfoStore.put_many``: one transaction, WAL fsynced), against the same
written as the earlier layout wrote them, one file a torrent (each written to a temporary name,
the files fsynced from threads, renamed into place, one sync of the folder), into a folder that
fills as the batches go (a state folder at thousands of torrents).

    python bench/bench_write_many.py [--batches 60] [--batch 25]

Both ways run in the same run, their batches alternated (this machine's disk changes its speed
from minute to minute), each into a fresh folder under ``TMPDIR``. Prints the median and p90 of a
batch each way, and their ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from torrent_engine.storage.kept import MetainfoStore  # noqa: E402

SYNC_THREADS = 8  # (the earlier layout's syncs in flight at once)


def files_batch(folder: Path, batch: int, items: list[tuple[bytes, bytes]]) -> None:
    """The reference: one durable file a torrent, as the state folder held them before."""
    written: list[tuple[str, Path]] = []
    fds: list[int] = []
    for key, data in items:
        path = folder / f"{key.hex()}.torrent"
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=folder)
        os.write(fd, data)
        fds.append(fd)
        written.append((tmp, path))
    with ThreadPoolExecutor(min(len(fds), SYNC_THREADS)) as pool:
        list(pool.map(os.fsync, fds))
    for fd in fds:
        os.close(fd)
    for tmp, path in written:
        os.replace(tmp, path)
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--batch", type=int, default=25)
    args = parser.parse_args()
    metainfo = os.urandom(600)
    times: dict[str, list[float]] = {"database": [], "one file a torrent": []}
    with tempfile.TemporaryDirectory(prefix="te-write-many-") as tmp:
        files = Path(tmp) / "torrents"
        files.mkdir()
        store = MetainfoStore(Path(tmp) / "torrents.sqlite3")
        try:
            for _ in range(args.batches):
                for way, seconds in times.items():
                    items = [(os.urandom(20), metainfo) for _ in range(args.batch)]
                    t0 = time.perf_counter()
                    if way == "database":
                        store.put_many(items)
                    else:
                        files_batch(files, args.batch, items)
                    seconds.append(time.perf_counter() - t0)
        finally:
            store.close()
    medians = {}
    for way, seconds in times.items():
        medians[way] = statistics.median(seconds)
        p90 = sorted(seconds)[int(len(seconds) * 0.9)]
        print(f"{args.batches} batches of {args.batch} metainfo, {way}: median {medians[way] * 1e3:.2f} ms, "
              f"p90 {p90 * 1e3:.2f} ms a batch")
    print(f"database / one file a torrent: {medians['database'] / medians['one file a torrent']:.3f} "
          f"(load {' '.join(f'{x:.2f}' for x in os.getloadavg())})")


if __name__ == "__main__":
    main()
