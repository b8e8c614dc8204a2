"""Dials called off while they wait for their turn (``engine/dialgate.py``, ``DialGate.leave``):
what calling off N waiting dials costs, against a reference measured in the same run (the same
tickets put in a set and taken out: the floor of any bookkeeping of them).

    python bench/bench_dialgate.py [--waiting 1000 10000]

A torrent removed, paused or completed while its dials wait calls each of them off; before the
gate kept the waiting tickets in a set, each call walked the whole heap (bench/RESULTS.md).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from torrent_engine.engine.dialgate import DialGate  # noqa: E402


def called_off(n: int) -> float:
    gate = DialGate(rate=1, burst=1)
    gate.ask("first", 0, 0.0)  # (the one token taken: the others wait)
    for i in range(n):
        gate.ask(i, i, 0.0)
    start = time.perf_counter()
    for i in range(n):
        gate.leave(i)
    took = time.perf_counter() - start
    assert len(gate) == 0
    return took


def reference(n: int) -> float:
    kept: set[int] = set(range(n))
    start = time.perf_counter()
    for i in range(n):
        kept.discard(i)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--waiting", type=int, nargs="+", default=[1000, 10000])
    for n in parser.parse_args().waiting:
        ours, ref = min(called_off(n) for _ in range(3)), min(reference(n) for _ in range(3))
        print(f"{n} waiting dials called off: {ours * 1000:.2f} ms (a set's discards: {ref * 1000:.2f} ms; "
              f"{ours / ref:.1f}x)")


if __name__ == "__main__":
    main()
