"""v2 deduplication's placing: how long it takes to make a 256 MiB file held already into a
new torrent's file by each way (reflink where the file system can, hard link, copy), and how
fast a file's BEP 52 pieces root is hashed (what an indexed folder's walk pays per file once).

Run: python bench/dedup_place.py [folder]   (default: a temporary folder; the figures depend on
its file system: reflink is refused on ext4 and falls back to a copy)
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from torrent_engine.storage.dedup import file_pieces_root, place_file

SIZE = 256 * 1024 * 1024
ROUNDS = 3


def main() -> None:
    where = Path(sys.argv[1]) if len(sys.argv) > 1 else None
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


if __name__ == "__main__":
    main()
