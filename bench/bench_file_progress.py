"""Each file's verified bytes (``jobs.snapshot.files_done``, in every job snapshot: each poll's
files and each progress event) against the test per piece it replaced, in the same run, for
files of 1 000 to 160 000 pieces with half of them had.

Run: python bench/bench_file_progress.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from torrent_engine.formats.bitfield import Bitfield
from torrent_engine.jobs.snapshot import files_done


@dataclass
class File:
    offset: int
    length: int
    pad: bool = False


@dataclass
class Layout:  # (the fields files_done reads of a torrent)
    files: list[File]
    piece_length: int


def per_piece(torrent: Layout, have: Bitfield) -> list[int]:
    """The reference: each piece of each file tested (how files_done counted before)."""
    pl = torrent.piece_length
    out = []
    for f in torrent.files:
        end = f.offset + f.length
        done = 0
        if f.length:
            for p in range(f.offset // pl, (end - 1) // pl + 1):
                if p in have:
                    done += min(end, (p + 1) * pl) - max(f.offset, p * pl)
        out.append(done)
    return out


def per_call(func: Callable[[], object], rounds: int) -> float:
    """The median over ``rounds`` of one call's time, in microseconds (enough calls a round)."""
    times = []
    for _ in range(rounds):
        n, began = 0, time.perf_counter()
        while time.perf_counter() - began < 0.2:
            func()
            n += 1
        times.append((time.perf_counter() - began) / n * 1e6)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(3)
    for pieces, piece_length, files in ((1_000, 64 * 1024, 1), (40_000, 64 * 1024, 1),
                                        (40_000, 64 * 1024, 200), (160_000, 16 * 1024, 1)):
        total = pieces * piece_length - 777
        cuts = sorted(rng.sample(range(1, total), files - 1))
        bounds = [0, *cuts, total]
        layout = Layout([File(a, b - a) for a, b in zip(bounds, bounds[1:], strict=False)], piece_length)
        have = Bitfield(pieces, (i for i in range(pieces) if rng.random() < 0.5))
        assert files_done(layout, have) == per_piece(layout, have)  # type: ignore[arg-type]
        ours = per_call(partial(files_done, layout, have), args.rounds)  # type: ignore[arg-type]
        ref = per_call(partial(per_piece, layout, have), args.rounds)
        print(f"{pieces:7d} pieces of {piece_length // 1024} KiB, {files:3d} files: "
              f"files_done {ours:8.1f} us, a test per piece {ref:8.1f} us: {ref / ours:.0f}x")


if __name__ == "__main__":
    main()
