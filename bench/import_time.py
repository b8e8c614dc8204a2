"""What ``import torrent_engine`` costs, and ``from torrent_engine import Session``, measured
with ``python -X importtime`` in fresh interpreters, beside the bare interpreter (a same-run
reference); and which modules each loads of those only the daemon and the command line need.

    python bench/import_time.py [--rounds 5]

Each figure is the median of ``--rounds`` runs of the cumulative import time that ``-X importtime``
reports for the statement's top-level modules (microseconds).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STATEMENTS = {
    "bare interpreter": "pass",
    "import torrent_engine": "import torrent_engine",
    "from torrent_engine import Session": "from torrent_engine import Session",
    "te.TorrentManager, te.download": "import torrent_engine as te; te.TorrentManager; te.download",
}
EXTRAS_ONLY = ("starlette", "uvicorn", "prometheus_client", "rich", "httpx")


def measure(statement: str) -> tuple[int, set[str]]:
    """Total cumulative import time (µs) of the top-level imports, and the top-level modules loaded."""
    run = subprocess.run([sys.executable, "-X", "importtime", "-c", statement], cwd=REPO,
                         capture_output=True, text=True, check=True)
    total = 0
    loaded: set[str] = set()
    for line in run.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        _, cumulative, name = (part.strip() for part in line[len("import time:"):].split("|"))
        loaded.add(name.strip().split(".")[0])
        if not name.startswith(" "):  # a top-level entry: its cumulative time includes its children
            total += int(cumulative)
    return total, loaded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"{'statement':40} {'median ms':>10}  extras' modules loaded")
    for label, statement in STATEMENTS.items():
        times = []
        loaded: set[str] = set()
        for _ in range(args.rounds):
            total, loaded = measure(statement)
            times.append(total)
        extras = sorted(loaded & set(EXTRAS_ONLY)) or "none"
        print(f"{label:40} {statistics.median(times) / 1000:10.1f}  {extras}")


if __name__ == "__main__":
    main()
