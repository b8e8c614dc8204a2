"""``torrents/info``'s sort at N torrents: ``sorted_by`` (values compared as they are) against a
key per type and value (what the sort was before), on the same records, in one run.

    python bench/bench_info_sort.py [--torrents 30000] [--rounds 5]

The records are N ``Kept`` rows whose fields are a name, a size and a ratio, as qBittorrent's
records give them (str, int, float); each sort is timed ``--rounds`` times and the median
printed, with the ratio.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from torrent_engine.api.compat.kept import Kept  # noqa: E402
from torrent_engine.api.compat.qbittorrent import sorted_by  # noqa: E402
from torrent_engine.jobs import Job  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--torrents", type=int, default=30000)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    rng = random.Random(1)
    rows: list[Kept[Any]] = [
        Kept(cast(Job, None), (), {"name": f"t{rng.random()}", "size": rng.randint(0, 1 << 40),
                                   "ratio": rng.random()}) for _ in range(args.torrents)]
    for field in ("name", "size", "ratio"):
        ours, typed = [], []
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            sorted_by(rows, field)
            ours.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            sorted(rows, key=lambda k: (str(type(k.record[field])), k.record[field]))  # noqa: B023
            typed.append((time.perf_counter() - t0) * 1000)
        a, b = statistics.median(ours), statistics.median(typed)
        print(f"{args.torrents} records by {field}: sorted_by {a:.1f} ms, a key per type {b:.1f} ms "
              f"({b / a:.1f}x)")


if __name__ == "__main__":
    main()
