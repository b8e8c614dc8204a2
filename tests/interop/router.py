"""A home router nobody here wrote, for the port-mapping tests: three network namespaces the test
makes (``lan``, ``router``, ``wan``) joined by two veth pairs, the router forwarding and
masquerading with nftables, and Debian's ``miniupnpd`` on its LAN side offering UPnP IGD and/or
NAT-PMP/PCP, as a home router does.

    lan  192.168.77.2 ── 192.168.77.1  router  11.22.33.1 ── 11.22.33.2  wan

The router's "public" side uses 11.22.33.0/24 because miniupnpd refuses to serve with a private
or reserved external address; the link exists only between two namespaces this test made, so
nothing is routed anywhere else (the namespaces have no other interface). Needs root, ``ip``,
``nft`` and ``miniupnpd``: missing ones skip the test (fail under CI).
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from tests.conftest import _missing, require_program

ROOT = Path(__file__).resolve().parents[2]
LAN_HOST, LAN_GATEWAY = "192.168.77.2", "192.168.77.1"
WAN_ROUTER, WAN_HOST = "11.22.33.1", "11.22.33.2"
UUID = "4c9a3ca5-69ae-4150-97a2-b2feb8a4303a"
_PROTO = {"0x6": "tcp", "0x11": "udp"}


@dataclass(frozen=True)
class Forward:
    """One port the router forwards: protocol, external port, internal host and port."""

    protocol: str
    external_port: int
    internal_host: str
    internal_port: int


def _run(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {done.returncode}: {done.stderr.strip()}")
    return done.stdout


def require_router() -> None:
    """Skip (fail under CI) unless this process can make the router's namespaces."""
    for program in ("ip", "nft", "miniupnpd"):
        require_program(program)
    if os.geteuid() != 0:
        _missing("root (to make network namespaces)")
    name = f"te-probe-{secrets.token_hex(3)}"
    probe = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        _missing(f"named network namespaces ({probe.stderr.strip()})")
    subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)


class Router:
    """The three namespaces and miniupnpd (``upnp``/``natpmp``: which protocols it offers);
    removed again on exit."""

    def __init__(self, workdir: Path, *, upnp: bool = True, natpmp: bool = True) -> None:
        self.tag = secrets.token_hex(3)
        self.lan, self.router, self.wan = (f"te-{kind}-{self.tag}" for kind in ("lan", "rtr", "wan"))
        self.workdir = workdir
        self.upnp, self.natpmp = upnp, natpmp
        self.log_path = workdir / "miniupnpd.log"
        self._daemon: subprocess.Popen[bytes] | None = None
        self._made: list[str] = []

    # -- setup ---------------------------------------------------------------------------
    def __enter__(self) -> Router:
        require_router()
        try:
            self._setup()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _setup(self) -> None:
        t = self.tag
        for ns in (self.lan, self.router, self.wan):
            _run("ip", "netns", "add", ns)
            self._made.append(ns)
            _run("ip", "-n", ns, "link", "set", "lo", "up")
        for ns, inner, outer in ((self.lan, f"l0-{t}", f"rl-{t}"), (self.wan, f"w0-{t}", f"rw-{t}")):
            _run("ip", "link", "add", inner, "type", "veth", "peer", "name", outer)
            _run("ip", "link", "set", inner, "netns", ns)
            _run("ip", "link", "set", outer, "netns", self.router)
        self.lan_if, self.router_lan_if = f"l0-{t}", f"rl-{t}"
        self.wan_if, self.router_wan_if = f"w0-{t}", f"rw-{t}"
        for ns, dev, address in ((self.lan, self.lan_if, f"{LAN_HOST}/24"),
                                 (self.router, self.router_lan_if, f"{LAN_GATEWAY}/24"),
                                 (self.router, self.router_wan_if, f"{WAN_ROUTER}/24"),
                                 (self.wan, self.wan_if, f"{WAN_HOST}/24")):
            _run("ip", "-n", ns, "addr", "add", address, "dev", dev)
            _run("ip", "-n", ns, "link", "set", dev, "up")
        _run("ip", "-n", self.lan, "route", "add", "default", "via", LAN_GATEWAY)
        _run("ip", "netns", "exec", self.router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        ruleset = self.workdir / "router.nft"
        ruleset.write_text(f"""table inet filter {{
  chain miniupnpd {{
  }}
  chain prerouting_miniupnpd {{
  }}
  chain postrouting_miniupnpd {{
  }}
  chain forward {{
    type filter hook forward priority 0; policy drop;
    ct state established,related accept
    iifname "{self.router_lan_if}" accept
    jump miniupnpd
  }}
  chain prerouting {{
    type nat hook prerouting priority -100; policy accept;
    jump prerouting_miniupnpd
  }}
  chain postrouting {{
    type nat hook postrouting priority 100; policy accept;
    jump postrouting_miniupnpd
    oifname "{self.router_wan_if}" masquerade
  }}
}}
""")
        _run("ip", "netns", "exec", self.router, "nft", "-f", str(ruleset))
        conf = self.workdir / "miniupnpd.conf"
        conf.write_text("\n".join([
            f"ext_ifname={self.router_wan_if}", f"listening_ip={self.router_lan_if}", "port=0",
            f"enable_upnp={'yes' if self.upnp else 'no'}", f"enable_natpmp={'yes' if self.natpmp else 'no'}",
            "secure_mode=yes", "system_uptime=yes", f"uuid={UUID}",
            "upnp_table_name=filter", "upnp_nat_table_name=filter", "upnp_forward_chain=miniupnpd",
            "upnp_nat_chain=prerouting_miniupnpd", "upnp_nat_postrouting_chain=postrouting_miniupnpd",
            f"lease_file={self.workdir / 'miniupnpd.leases'}",
            "allow 1024-65535 192.168.77.0/24 1024-65535", "deny 0-65535 0.0.0.0/0 0-65535", ""]))
        log = open(self.log_path, "wb")  # noqa: SIM115 - the daemon holds it; closed in close()
        self._log = log
        self._daemon = subprocess.Popen(
            ["ip", "netns", "exec", self.router, "miniupnpd", "-d", "-f", str(conf),
             "-P", str(self.workdir / "miniupnpd.pid")], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        want = "Listening for NAT-PMP" if self.natpmp else "HTTP listening on port"
        while want not in self.log_path.read_text(errors="replace"):
            if self._daemon.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"miniupnpd did not start:\n{self.log()}")
            time.sleep(0.05)

    def close(self) -> None:
        """Stop miniupnpd and remove the namespaces (their veths go with them)."""
        if self._daemon is not None:
            if self._daemon.poll() is None:
                self._daemon.send_signal(signal.SIGTERM)
                try:
                    self._daemon.wait(10)
                except subprocess.TimeoutExpired:
                    self._daemon.kill()
                    self._daemon.wait()
            self._log.close()
            self._daemon = None
        for ns in reversed(self._made):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
        self._made.clear()

    # -- what a test reads and runs ------------------------------------------------------
    def log(self) -> str:
        """miniupnpd's output so far (for a failing test's message)."""
        return self.log_path.read_text(errors="replace")[-4000:]

    def forwards(self) -> list[Forward]:
        """The ports the router forwards now, read from its NAT table (what miniupnpd set up)."""
        text = _run("ip", "netns", "exec", self.router, "nft", "list", "chain", "inet", "filter",
                    "prerouting_miniupnpd")
        found = []
        for line in text.splitlines():
            if "dnat" not in line:
                continue
            match = re.search(r"dport (\d+) dnat ip to ([\d.]+):(\d+)", line)
            proto = re.search(r"@nh,72,8 (0x[0-9a-f]+)|\b(tcp|udp) dport", line)
            if match is None or proto is None:
                continue
            protocol = _PROTO.get(proto.group(1) or "", proto.group(2) or "?")
            found.append(Forward(protocol, int(match.group(1)), match.group(2), int(match.group(3))))
        return found

    def popen(self, ns: str, module: str, *args: str) -> subprocess.Popen[str]:
        """``python -m module args`` in namespace ``ns`` (this checkout on its path), with pipes,
        in a process group of its own: ``kill`` ends it and every process it started."""
        path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        return subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-m", module, *args],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, cwd=ROOT, start_new_session=True,
                                env={**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"})


def kill(proc: subprocess.Popen[str]) -> None:
    """End a process ``Router.popen`` started and whatever it started (its process group)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(30)
