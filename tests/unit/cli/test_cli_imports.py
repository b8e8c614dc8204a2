"""A command imports what it needs when it runs: ``--version``, ``--help`` and ``info`` do not
load the HTTP API, uvicorn, the job service or the session layer (they cost ~0.9 s of CPU at
every start; the time itself is measured in bench/cli_startup.py, not asserted here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SAMPLE = ROOT / "examples" / "sample.torrent"
HEAVY = ("uvicorn", "starlette", "torrent_engine.api", "torrent_engine.jobs", "torrent_engine.session",
         "torrent_engine.engine.manager", "torrent_engine.net.dht", "anyio")

PROBE = """
import json, sys
from torrent_engine.cli import main
try:
    main(json.loads(sys.argv[1]))
except SystemExit:
    pass
sys.stdout.flush()
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def modules_after(argv: list[str]) -> set[str]:
    """The modules loaded in a fresh interpreter once ``torrent-engine ARGV`` has run."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(argv)], capture_output=True, text=True,
                          env=env, timeout=60, check=True)
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["info", str(SAMPLE)], ["info", "--help"]])
def test_a_light_command_does_not_load_the_service(argv: list[str]) -> None:
    loaded = modules_after(argv)
    assert sorted(m for m in loaded if m.startswith(HEAVY)) == []


def test_a_command_still_loads_what_it_runs() -> None:
    assert "torrent_engine.api.server" in modules_after(["daemon", "--help"])


def test_remote_loads_no_server() -> None:
    """``remote`` is an HTTP client of the daemon: it finds the API (address, token file) without
    loading the server side (uvicorn, starlette, the app, the job service)."""
    loaded = modules_after(["remote", "--help"])
    server_side = ("uvicorn", "starlette", "torrent_engine.api.app", "torrent_engine.api.server",
                   "torrent_engine.jobs", "torrent_engine.session", "anyio")
    assert sorted(m for m in loaded if m.startswith(server_side)) == []
