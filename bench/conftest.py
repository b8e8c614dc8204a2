"""Benchmarks report ratios: within a pytest-benchmark group, every entry is compared with the
group's reference entry (the one whose name contains ``reference``), measured in the same run."""

from __future__ import annotations

from typing import Any


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: Any) -> None:
    session = getattr(config, "_benchmarksession", None)
    if session is None or not session.benchmarks:
        return
    groups: dict[str, list[Any]] = {}
    for bench in session.benchmarks:
        groups.setdefault(bench.group or "", []).append(bench)
    lines = []
    for group, benches in sorted(groups.items()):
        refs = [b for b in benches if "reference" in b.name]
        if not refs:
            continue
        ref = refs[0]
        for b in benches:
            if b is ref:
                continue
            ratio = ref.stats.median / b.stats.median
            lines.append(
                f"{group}: {b.name} median {b.stats.median * 1e3:.3f} ms, reference "
                f"{ref.name} {ref.stats.median * 1e3:.3f} ms -> {ratio:.2f}x the reference's speed"
            )
    if lines:
        terminalreporter.write_sep("=", "ratios against the reference in the same run")
        for line in lines:
            terminalreporter.write_line(line)
