"""Deduplication's placing: how long it takes to make a 256 MiB file held already into a new
torrent's file by each way (reflink where the file system can, hard link, copy), and how fast a
file's BEP 52 pieces root is hashed (what an indexed folder's walk pays per file once).

v1 files, found by length: what an add pays to look at a candidate of a v1 torrent's file
(``find_among`` with ``SAMPLED_PIECES`` of its pieces, and with every one, as for a hard link)
against hashlib's SHA-1 over the whole file in one read loop (the reference: what a look that
verified every piece costs at least); and what a start pays to learn the complete jobs' files by
length from ``--learn`` records (the loop's longest page and the whole).

Run: python bench/dedup_place.py [folder] [--learn 30000]   (default: a temporary folder; the
figures depend on its file system: reflink is refused on ext4 and falls back to a copy)
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from torrent_engine.cli.collector import GC_THRESHOLDS
from torrent_engine.jobs.disk.dedup import SAMPLED_PIECES, Deduplicator
from torrent_engine.jobs.model import JobState
from torrent_engine.jobs.store import JobOptions, JobRecord
from torrent_engine.storage.create import create_torrent
from torrent_engine.storage.dedup import file_pieces_root, place_file
from torrent_engine.storage.findfiles import find_among

SIZE = 256 * 1024 * 1024
ROUNDS = 3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", type=Path)
    parser.add_argument("--learn", type=int, default=30_000, help="complete job records learnt by length")
    args = parser.parse_args()
    where = args.folder
    with tempfile.TemporaryDirectory(dir=where) as tmp:
        src = Path(tmp) / "src.bin"
        with open(src, "wb") as f:
            for _ in range(SIZE // (1 << 20)):
                f.write(os.urandom(1 << 20))
        print(f"{SIZE >> 20} MiB in {tmp}")
        for ways in (["reflink", "copy"], ["hardlink", "copy"], ["copy"]):
            best = float("inf")
            used = ""
            for n in range(ROUNDS):
                target = Path(tmp) / f"t{n}.bin"
                start = time.perf_counter()
                placed = place_file(src, target, SIZE, ways)
                best = min(best, time.perf_counter() - start)
                used = placed.method + (f" (after {placed.refused[0][0]}: {placed.refused[0][1]})"
                                        if placed.refused else "")
                target.unlink()
            print(f"  {'/'.join(ways):15s} {best * 1000:8.1f} ms  by {used}")
        best = float("inf")
        for _ in range(ROUNDS):
            start = time.perf_counter()
            file_pieces_root(src)
            best = min(best, time.perf_counter() - start)
        print(f"  pieces root     {best * 1000:8.1f} ms  ({SIZE / best / 2**20:.0f} MiB/s, page-cached)")
        v1_look(Path(tmp), src)
    learn(args.learn)


def v1_look(tmp: Path, src: Path) -> None:
    """A v1 torrent of the same bytes under another name; its file looked for in ``src``."""
    folder = tmp / "v1" / "renamed"
    folder.mkdir(parents=True)
    os.link(src, folder / "renamed.bin")
    for piece_kib in (256, 1024):
        torrent = create_torrent(folder / "renamed.bin", version="v1", piece_length=piece_kib * 1024)
        candidates = {SIZE: [src]}
        times = {}
        for label, most in ((f"{SAMPLED_PIECES} pieces", SAMPLED_PIECES), ("every piece", None)):
            best = float("inf")
            for _ in range(ROUNDS):
                start = time.perf_counter()
                [found] = find_among(torrent, [0], candidates, most=most)
                best = min(best, time.perf_counter() - start)
                assert found.source == src, found
            times[label] = best
        best = float("inf")
        for _ in range(ROUNDS):
            start = time.perf_counter()
            h = hashlib.sha1()
            with open(src, "rb", buffering=0) as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
            best = min(best, time.perf_counter() - start)
        sampled, every = times[f"{SAMPLED_PIECES} pieces"], times["every piece"]
        print(f"  v1 look, {piece_kib} KiB pieces: {SAMPLED_PIECES} pieces {sampled * 1000:.1f} ms, "
              f"every piece {every * 1000:.1f} ms; hashlib SHA-1 of the file {best * 1000:.1f} ms "
              f"(every piece / hashlib {every / best:.2f}; "
              f"{SAMPLED_PIECES} pieces / hashlib {sampled / best:.4f})")


def learn(n: int) -> None:
    """A start's learning of ``n`` complete single-file jobs (about 2 MiB each) by length, with
    a task beside it that measures the longest the loop was held; the records frozen and the
    collector's thresholds the daemon's, as a start leaves them (``cli/collector.py``)."""
    options = JobOptions(save_path="/srv", files=None, sequential=False, paused=False, peers=(),
                         client=None, download_limit=0, upload_limit=0)
    recs = [JobRecord(id=f"{i:016x}", info_hash=f"{i:040x}", name=f"t{i}", source="torrent", options=options,
                      state=JobState.SEEDING, created_at=0.0, updated_at=0.0, completed_at=1.0,
                      file_paths=((f"t{i}.bin",),), file_sizes=(2 * 1024 * 1024 + i,), file_priorities=(1,))
             for i in range(n)]
    by_id = {r.id: r for r in recs}
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)

    class Table:
        def __iter__(self) -> Iterator[JobRecord]:
            return iter(recs)

        def get(self, job_id: str) -> JobRecord | None:
            return by_id.get(job_id)

    run: Any = SimpleNamespace(state_dir=None, jobs=Table())
    dedup = Deduplicator(run, mode="copy")
    held = [0.0]

    async def probe() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0)
            now = time.perf_counter()
            held[0] = max(held[0], now - last)
            last = now

    async def go() -> float:
        task = asyncio.ensure_future(probe())
        await asyncio.sleep(0)
        start = time.perf_counter()
        await dedup._learn_lengths_of_all()
        took = time.perf_counter() - start
        task.cancel()
        return took

    took = asyncio.run(go())
    print(f"  learning {n} complete jobs by length at a start: {took * 1000:.1f} ms, the loop held at most "
          f"{held[0] * 1000:.1f} ms at once; {len(dedup._by_length)} lengths known")


if __name__ == "__main__":
    main()
