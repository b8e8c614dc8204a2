"""Where the event loop's thread spends its time, from a py-spy raw profile (``py-spy record
--format raw``, or ``bench_many_downloads.py --profile FILE``): the samples of the main thread
outside its wait, each counted once under the first kind of work its stack names (dialing,
reading the peers' messages, hashing, ...), and each kind's share.

    python bench/pyspy_share.py PROFILE [--workers]

``--workers``: the worker threads' busy samples instead (outside their wait for work), and the
share of them under ``save_resume`` (resume files written).
"""

from __future__ import annotations

import argparse
import collections
import sys

# (the first that matches a stack names its kind; the order settles a stack that names several)
KINDS = [
    ("SHA-1 of the pieces", ["_hash_prefix", "judge"]),
    ("reading the peers' messages", ["buffer_updated", "PeerProtocol._deliver"]),
    ("dialing", ["Connector.dial", "Connector._dial", "open_connection", "_mse_", "Mse"]),
    ("serving peers", ["PeerHandler"]),
    ("trackers", ["announce", "Announcer", "tracker"]),
    ("the API", ["starlette", "routing.py", "h11_impl", "Starlette", "RequestResponseCycle"]),
    ("adds", ["add_many", "intake", "adding.py"]),
    ("events", ["news.py", "publish", "EventBus"]),
    ("starting sessions", ["Session.__init__", "Life.", "lifecycle.py"]),
    ("writing", ["write_verified", "storage/core.py"]),
    ("the collector", ["gc_", "collect"]),
]


def samples(path: str) -> list[tuple[str, int]]:
    out = []
    with open(path) as f:
        for line in f:
            stack, _, count = line.rstrip().rpartition(" ")
            if stack:
                out.append((stack, int(count)))
    return out


def loop_shares(rows: list[tuple[str, int]]) -> None:
    kinds: collections.Counter[str] = collections.Counter()
    total = 0
    for stack, n in rows:
        if not stack.startswith("_run_module_as_main"):
            continue  # (another thread)
        if stack.endswith("Runner.run (asyncio/runners.py:118)") or "select" in stack.split(";")[-1]:
            continue  # (the loop waiting)
        total += n
        kinds[next((name for name, keys in KINDS if any(k in stack for k in keys)), "other")] += n
    print(f"the loop's thread, outside its wait: {total} samples")
    for name, n in kinds.most_common():
        print(f"  {n:6d} {100 * n / max(total, 1):5.1f} %  {name}")


def worker_shares(rows: list[tuple[str, int]]) -> None:
    busy = resume = 0
    for stack, n in rows:
        if not stack.startswith("Thread._bootstrap"):
            continue
        last = stack.split(";")[-1]
        if "Condition.wait" in last or last.startswith("wait ") or ("Queue.get" in stack and "wait" in last):
            continue  # (waiting for work)
        busy += n
        if "save_resume" in stack:
            resume += n
    print(f"worker threads, busy: {busy} samples; under save_resume: {resume} "
          f"({100 * resume / max(busy, 1):.1f} %)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profile")
    parser.add_argument("--workers", action="store_true")
    args = parser.parse_args()
    rows = samples(args.profile)
    if not rows:
        sys.exit(f"{args.profile}: no samples")
    (worker_shares if args.workers else loop_shares)(rows)


if __name__ == "__main__":
    main()
