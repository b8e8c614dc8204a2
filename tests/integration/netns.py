"""Run a program inside a network namespace of its own, with only a loopback interface that
carries IPv4 multicast (the LSD group routes to ``lo``): multicast sent there can never leave
the machine. Linux does not loop IPv6 multicast back on ``lo``, so ``ipv6=True`` adds a veth
pair inside the namespace (``v0`` with fd00::1, its other end ``v1`` without IPv6): IPv6
multicast goes out of ``v0``, is looped back to the namespace's own sockets and dropped at
``v1``. Needs root and ``unshare``/``ip``; missing ones skip the test (fail under CI)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import _missing, require_program

ROOT = Path(__file__).resolve().parents[2]
SETUP = "ip link set lo up && ip link set lo multicast on && ip route add 239.0.0.0/8 dev lo"
SETUP_V6 = ("ip link add v0 type veth peer name v1 && sysctl -qw net.ipv6.conf.v1.disable_ipv6=1"
            " && ip link set v1 up && ip link set v0 up && ip -6 addr add fd00::1/64 dev v0 nodad")


def require_netns(*, ipv6: bool = False) -> None:
    """Skip (fail under CI) unless this process may make network namespaces (with veth: IPv6)."""
    require_program("unshare")
    require_program("ip")
    setup = f"{SETUP} && {SETUP_V6}" if ipv6 else SETUP
    probe = subprocess.run(["unshare", "-n", "sh", "-c", setup], capture_output=True, timeout=30)
    if probe.returncode != 0:
        why = probe.stderr.decode(errors="replace").strip()
        _missing(f"a network namespace with multicast on lo ({why})")


def run_in_netns(module: str, *args: str, timeout: float = 120,
                 ipv6: bool = False) -> subprocess.CompletedProcess[str]:
    """``python -m module args`` inside a fresh namespace of its own; its output and exit code."""
    require_netns(ipv6=ipv6)
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, PYTHONPATH=path)
    setup = f"{SETUP} && {SETUP_V6}" if ipv6 else SETUP
    command = f'{setup} && exec "$0" -m {module} "$@"'
    return subprocess.run(["unshare", "-n", "sh", "-c", command, sys.executable, *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT, env=env)
