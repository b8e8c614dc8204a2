"""What one ``O_DIRECT`` write costs by its size: 256 MiB written into a new file (sized first)
from one page-aligned buffer, in writes of 64 KiB to 1 MiB, CPU and wall time per GiB, against
1 MiB writes (what ``storage.core.DIRECT_CHUNK`` writes at most) measured in the same run. A
verified piece's aligned part is written in one such write, so small pieces pay the small
writes' price (bench/RESULTS.md).

Run: python bench/bench_direct_writes.py [--dir DIR] [--mib 256]   (DIR: a folder on the disk to
measure; default the temporary folder; a file system without O_DIRECT says so and stops)
"""

from __future__ import annotations

import argparse
import mmap
import os
import tempfile
import time
from pathlib import Path


def write_all(path: Path, total: int, chunk: int) -> tuple[float, float]:
    """CPU and wall seconds of writing ``total`` bytes in ``chunk``-byte O_DIRECT writes."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o600)
    try:
        os.ftruncate(fd, total)
        buf = mmap.mmap(-1, chunk)
        buf.write(os.urandom(chunk))
        cpu, wall = time.process_time(), time.perf_counter()
        for offset in range(0, total, chunk):
            os.pwrite(fd, buf, offset)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        os.fsync(fd)
    finally:
        os.close(fd)
        path.unlink(missing_ok=True)
    return cpu, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--mib", type=int, default=256)
    args = parser.parse_args()
    if not hasattr(os, "O_DIRECT"):
        raise SystemExit("this system has no O_DIRECT")
    total = args.mib << 20
    path = args.dir / f"bench_direct_writes.{os.getpid()}"
    gib = total / (1 << 30)
    try:
        ref_cpu, ref_wall = write_all(path, total, 1 << 20)
    except OSError as exc:
        raise SystemExit(f"{args.dir}: O_DIRECT refused: {exc.strerror or exc}") from exc
    for kib in (64, 128, 256, 1024):
        cpu, wall = write_all(path, total, kib << 10)
        print(f"{kib:5d} KiB writes: CPU {cpu / gib:.3f} s a GiB ({cpu / ref_cpu:.1f}x 1 MiB's "
              f"{ref_cpu / gib:.3f}), wall {wall / gib:.3f} s a GiB")


if __name__ == "__main__":
    main()
