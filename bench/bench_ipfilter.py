"""IP filter lookups at 500 000 ranges: ``IpFilter.blocked`` (bisection over merged ranges)
against two references in the same run:

- ``ipaddress`` naive: the check one writes first, ``any(net_start <= ip <= net_end ...)`` over
  the ranges as ``IPv4Address`` objects (linear; timed on fewer lookups);
- set of ints: ``int(IPv4Address(text)) in blocked_ints`` — a hash lookup of the address as an
  integer, the floor of any per-address check (it holds single addresses only: no ranges).

Also the time to parse the list (eMule ``ipfilter.dat`` lines) and to build the filter.

Run: python bench/bench_ipfilter.py [--ranges 500000] [--lookups 200000]
"""

from __future__ import annotations

import argparse
import ipaddress
import random
import statistics
import time
from collections.abc import Callable

from torrent_engine.policy.ipfilter import parse_list


def make_list(n: int, rng: random.Random) -> tuple[bytes, list[tuple[int, int]]]:
    """``n`` disjoint ranges of 1..64 addresses spread over IPv4, as eMule lines."""
    step = (1 << 32) // n
    ranges = []
    lines = []
    for i in range(n):
        start = i * step + rng.randrange(0, step - 64)
        end = start + rng.randrange(0, 64)
        ranges.append((start, end))
        a, b = ipaddress.IPv4Address(start), ipaddress.IPv4Address(end)
        lines.append(f"{a} - {b} , 000 , range {i}")
    return "\n".join(lines).encode(), ranges


def per_call(fn: Callable[[str], bool], probes: list[str], repeat: int) -> float:
    """The median over ``repeat`` runs of the time per call, seconds."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for p in probes:
            fn(p)
        times.append((time.perf_counter() - t0) / len(probes))
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ranges", type=int, default=500_000)
    ap.add_argument("--lookups", type=int, default=200_000)
    ap.add_argument("--naive-lookups", type=int, default=20)
    args = ap.parse_args()
    rng = random.Random(7)
    data, ranges = make_list(args.ranges, rng)
    t0 = time.perf_counter()
    parsed = parse_list(data)
    parse_s = time.perf_counter() - t0
    f = parsed.filter
    assert len(f) == args.ranges and parsed.bad_lines == 0
    # half inside a range, half anywhere
    probes = [str(ipaddress.IPv4Address(rng.choice(ranges)[0])) if i % 2 else
              str(ipaddress.IPv4Address(rng.getrandbits(32))) for i in range(args.lookups)]
    ours = per_call(f.blocked, probes, 5)

    blocked_ints = {a for a, _ in ranges}
    floor = per_call(lambda s: int(ipaddress.IPv4Address(s)) in blocked_ints, probes, 5)

    nets = [(ipaddress.IPv4Address(a), ipaddress.IPv4Address(b)) for a, b in ranges]

    def naive(s: str) -> bool:
        ip = ipaddress.IPv4Address(s)
        return any(lo <= ip <= hi for lo, hi in nets)

    few = probes[:args.naive_lookups]
    naive_s = per_call(naive, few, 1)
    for p in few:  # (the same answers)
        assert naive(p) == f.blocked(p)

    print(f"{args.ranges} ranges: parsed and merged in {parse_s:.2f} s")
    print("| lookup | per call | ours vs it |")
    print("|---|---|---|")
    print(f"| `IpFilter.blocked` (bisection) | {ours * 1e6:.2f} µs | 1 |")
    print(f"| set of ints (`int(IPv4Address(s)) in set`, no ranges) | {floor * 1e6:.2f} µs | "
          f"{floor / ours:.2f}x |")
    print(f"| `ipaddress` naive (`any(lo <= ip <= hi)`) | {naive_s * 1e3:.1f} ms | {naive_s / ours:,.0f}x |")


if __name__ == "__main__":
    main()
