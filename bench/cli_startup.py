"""What a CLI command costs before it does anything: wall time (best of N runs) and the modules
it imports (``-X importtime``'s cumulative microseconds, the heaviest first), for
``torrent-engine --version`` and ``torrent-engine info FILE``, beside ``transmission-show FILE``
and a bare ``python3 -c pass`` (the interpreter's own start) in the same run.

    python bench/cli_startup.py [--runs 20] [--torrent FILE]

Without ``--torrent`` it makes a v1 .torrent of 4 MiB in a temporary folder (transmission-show
3.00 cannot read the hybrid examples/sample.torrent).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def best_wall(argv: list[str], runs: int, env: dict[str, str]) -> float:
    """The fastest of ``runs`` runs of ``argv``, in seconds (the least disturbed by other work)."""
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=True)
        best = min(best, time.perf_counter() - start)
    return best


def heaviest_imports(args: list[str], env: dict[str, str], count: int = 5) -> list[tuple[str, int]]:
    """The ``count`` top-level imports with the largest cumulative time (µs), from -X importtime."""
    done = subprocess.run([sys.executable, "-X", "importtime", *args], capture_output=True, text=True,
                          env=env, check=True)
    rows: list[tuple[str, int]] = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        if not name.startswith(" "):  # (indented names were imported by another module)
            rows.append((name, int(cumulative)))
    return sorted(rows, key=lambda r: -r[1])[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--torrent", type=Path)
    opts = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    with tempfile.TemporaryDirectory() as tmp:
        torrent = opts.torrent
        if torrent is None:
            data = Path(tmp) / "payload.bin"
            data.write_bytes(os.urandom(4 * 1024 * 1024))
            torrent = Path(tmp) / "payload.torrent"
            subprocess.run([sys.executable, "-m", "torrent_engine", "create", str(data), "-o", str(torrent)],
                           env=env, check=True, stdout=subprocess.DEVNULL)
        measure(str(torrent), opts.runs, env)


def measure(torrent: str, runs: int, env: dict[str, str]) -> None:
    """Print the table of wall times and the heaviest imports."""
    cases: list[tuple[str, list[str]]] = [
        ("python3 -c pass", [sys.executable, "-c", "pass"]),
        ("torrent-engine --version", [sys.executable, "-m", "torrent_engine", "--version"]),
        ("torrent-engine info FILE", [sys.executable, "-m", "torrent_engine", "info", torrent]),
    ]
    show = shutil.which("transmission-show")
    if show:
        cases.append(("transmission-show FILE", [show, torrent]))
    print(f"best of {runs} runs, {time.strftime('%Y-%m-%d')}, load average "
          f"{os.getloadavg()[0]:.2f}")
    print("| command | wall |")
    print("|---|---|")
    for name, argv in cases:
        print(f"| `{name}` | {best_wall(argv, runs, env) * 1000:.0f} ms |")
    for name, args in (("--version", ["-m", "torrent_engine", "--version"]),
                       ("info", ["-m", "torrent_engine", "info", torrent])):
        top = ", ".join(f"{module} {us / 1000:.1f} ms" for module, us in heaviest_imports(args, env))
        print(f"heaviest imports of {name}: {top}")


if __name__ == "__main__":
    main()
