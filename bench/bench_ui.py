"""The web UI at 10 000 jobs, timed in headless Chromium with the Performance API: the steps of
tests/browser/test_ui_perf.py (tests/browser/ui_perf.py), each page load a fresh navigation.

    python bench/bench_ui.py [--jobs 10000] [--runs 3]

Prints, per run and as medians: the list's first paint (navigation start to the first frame that
shows every job counted and its rows, the 10 000-job list fetched and drawn), the first
contentful paint, a filter click (category "linux", a tenth of the jobs; then all again), a sort
click (by name, ascending then descending), a jump to the middle of the list (its rows drawn),
and a scroll of the whole list one step a frame (the frames' intervals: median, p95, worst) with
the long tasks (> 50 ms) seen. Each time runs from the act to the end of the frame that drew its
result. Targets (issue 44): first paint <= 1 s, a filter or sort <= 200 ms, virtualised rows.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.browser.test_ui import chromium, in_thread  # noqa: E402
from tests.browser.ui_perf import Figures, run_steps, ten_thousand  # noqa: E402
from tests.integration.api_helpers import running_api  # noqa: E402


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


def line(f: Figures) -> str:
    gaps = f.frame_gaps
    return (f"first paint {f.first_paint:7.1f} ms (FCP {f.first_contentful_paint:6.1f})  "
            f"filter {f.filter_ms[0]:6.1f} / {f.filter_ms[1]:6.1f} ms  "
            f"sort {f.sort_ms[0]:6.1f} / {f.sort_ms[1]:6.1f} ms  jump {f.jump_ms:6.1f} ms  "
            f"scroll frames median {statistics.median(gaps):5.1f} p95 {p95(gaps):5.1f} "
            f"worst {max(gaps):6.1f} ms  "
            f"long tasks {len(f.longtasks)} (longest {max((d for _, d in f.longtasks), default=0):.0f} ms)")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ui-") as tmp:
        async with running_api(Path(tmp)) as api:
            made = await ten_thousand(api.service, args.jobs)
            print(f"{args.jobs} jobs added in {made:.1f} s; load average {os.getloadavg()[0]:.2f}")
            runs: list[Figures] = []
            with chromium(1400, 900) as driver:
                for i in range(args.runs):
                    started = time.perf_counter()
                    figures = await in_thread(lambda: run_steps(driver, api.url, args.jobs))
                    runs.append(figures)
                    print(f"run {i + 1}: {line(figures)}  ({time.perf_counter() - started:.1f} s)")
                    m = figures.marks
                    size = m.get("snapshotBytes", 0) / 1e6
                    print(f"    event stream asked at {m.get('eventsAsked', -1):.0f} ms, answered "
                          f"{m.get('eventsAnswered', -1):.0f}; snapshot ({size:.1f} MB) "
                          f"received {m.get('snapshotReceived', -1):.0f}, "
                          f"parsed {m.get('snapshotParsed', -1):.0f}; "
                          f"list drawn {figures.first_paint:.0f} ms")
    med = statistics.median
    print(f"median of {len(runs)}: first paint {med(f.first_paint for f in runs):.1f} ms, "
          f"filter {med(x for f in runs for x in f.filter_ms):.1f} ms "
          f"(worst {max(x for f in runs for x in f.filter_ms):.1f}), "
          f"sort {med(x for f in runs for x in f.sort_ms):.1f} ms "
          f"(worst {max(x for f in runs for x in f.sort_ms):.1f}), "
          f"jump {med(f.jump_ms for f in runs):.1f} ms, "
          f"scroll frame p95 {med(p95(f.frame_gaps) for f in runs):.1f} ms; "
          f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    anyio.run(main)
