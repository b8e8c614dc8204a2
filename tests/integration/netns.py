"""Run a program inside a network namespace of its own, with only a loopback interface that
carries IPv4 multicast (the LSD group routes to ``lo``): multicast sent there can never leave
the machine. Needs root and ``unshare``/``ip``; missing ones skip the test (fail under CI)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import _missing, require_program

ROOT = Path(__file__).resolve().parents[2]
SETUP = "ip link set lo up && ip link set lo multicast on && ip route add 239.0.0.0/8 dev lo"


def require_netns() -> None:
    """Skip (fail under CI) unless this process may make network namespaces."""
    require_program("unshare")
    require_program("ip")
    probe = subprocess.run(["unshare", "-n", "sh", "-c", SETUP], capture_output=True, timeout=30)
    if probe.returncode != 0:
        why = probe.stderr.decode(errors="replace").strip()
        _missing(f"a network namespace with multicast on lo ({why})")


def run_in_netns(module: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -m module args`` inside a fresh loopback-only namespace; its output and exit code."""
    require_netns()
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, PYTHONPATH=path)
    command = f'{SETUP} && exec "$0" -m {module} "$@"'
    return subprocess.run(["unshare", "-n", "sh", "-c", command, sys.executable, *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT, env=env)
