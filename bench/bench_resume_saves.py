"""What one resume save costs: a file each (``save_resume``: a temporary file, fsync, rename,
fsync of the folder — a session's save before its resume data was a row) against a row of the
manager's store (``MetainfoStore.put_resume_many``: one transaction, the WAL fsynced), alone
and in groups as ``TorrentManager.keep_resume`` makes them when saves come together.

    python bench/bench_resume_saves.py [--saves 500] [--group 10]

Each way into a fresh folder under ``TMPDIR``, in the same run; wall time and CPU time a save.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from torrent_engine.storage.kept import MetainfoStore  # noqa: E402
from torrent_engine.storage.resume import ResumeData, encode_resume, save_resume  # noqa: E402


def data(i: int) -> ResumeData:
    return ResumeData(info_hash=i.to_bytes(20, "big"), save_path="/srv/downloads", have=os.urandom(32),
                      num_pieces=256, file_priorities=[4] * 3, added_time=1_790_000_000)


def timed(saves: int, run: Callable[[], None]) -> tuple[float, float]:
    """Microseconds of wall time and of CPU time a save."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return ((time.perf_counter() - wall) / saves * 1e6, (time.process_time() - cpu) / saves * 1e6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--saves", type=int, default=500)
    parser.add_argument("--group", type=int, default=10)
    args = parser.parse_args()
    n, group = args.saves, args.group
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        files = root / "files"
        files.mkdir()
        store = MetainfoStore(root / "rows" / "torrents.sqlite3")
        (root / "rows").mkdir()
        store.put_resume_many([(bytes(20), encode_resume(data(0)))])  # (opened, its tables made)
        try:
            results = {
                "a file each, created": timed(n, lambda: [
                    save_resume(files / f"{i:040x}.resume", data(i)) for i in range(n)]),
                "a file each, replaced": timed(n, lambda: [
                    save_resume(files / f"{i:040x}.resume", data(i)) for i in range(n)]),
                "a row each": timed(n, lambda: [
                    store.put_resume_many([(data(i).info_hash, encode_resume(data(i)))]) for i in range(n)]),
                f"rows in groups of {group}": timed(n, lambda: [
                    store.put_resume_many([(data(i).info_hash, encode_resume(data(i)))
                                           for i in range(start, min(start + group, n))])
                    for start in range(0, n, group)]),
            }
        finally:
            store.close()
    ref_wall, ref_cpu = results["a file each, created"]
    for name, (wall, cpu) in results.items():
        print(f"{name:24s} {wall:7.1f} us wall, {cpu:6.1f} us CPU a save "
              f"(a file created / this: {ref_wall / wall:5.1f}x wall, {ref_cpu / cpu:5.1f}x CPU)")


if __name__ == "__main__":
    main()
