"""Real proxies for tests, each on 127.0.0.1 with its outgoing side bound to 127.0.0.3 (so the
far end sees the proxy's address, never ours): Dante (``danted``: SOCKS5 and SOCKS4, with or
without RFC 1929 username/password) and tinyproxy (HTTP CONNECT, with Basic credentials).

Dante's rules name no ``command``, so every one is allowed: CONNECT, BIND and UDP ASSOCIATE
(its relay listens on the internal address, 127.0.0.1, and sends from the external one).

Both run as root (Dante checks a username against the system's password database, so a system
user is made for it once); without them, or not as root, a test is skipped (a failure in CI).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import IN_CI, require_program
from torrent_engine.net.proxy import ProxyConfig, ProxyKind

OUTSIDE = "127.0.0.3"  # the proxies' outgoing address
SOCKS_USER = "te-proxy"
SOCKS_PASSWORD = "Pr0xy-pass"  # (a test account's, for a proxy on loopback)


@dataclass(frozen=True)
class RunningProxy:
    port: int
    log: Path

    def config(self, kind: ProxyKind, *, username: str = "", password: str = "", remote_dns: bool = True,
               only: bool = True) -> ProxyConfig:
        return ProxyConfig(kind, "127.0.0.1", self.port, username=username, password=password,
                           remote_dns=remote_dns, only=only)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _need_root(what: str) -> None:
    if os.geteuid() != 0:
        if IN_CI:
            pytest.fail(f"{what} needs root in CI")
        pytest.skip(f"{what} needs root")


def _wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the proxy exited ({proc.returncode}): {log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"the proxy is not listening on {port}: {log.read_text()[-2000:]}")


@contextmanager
def _running(argv: list[str], port: int, log: Path) -> Iterator[RunningProxy]:
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_listening(port, proc, log)
        yield RunningProxy(port, log)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # (its own group: Dante's children with it)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _socks_user() -> None:
    """The system user Dante checks our username and password against (made once)."""
    if subprocess.run(["id", SOCKS_USER], capture_output=True).returncode != 0:
        for tool in ("useradd", "chpasswd"):
            require_program(tool)
        subprocess.run(["useradd", "-M", "-s", "/usr/sbin/nologin", SOCKS_USER], check=True)
    subprocess.run(["chpasswd"], input=f"{SOCKS_USER}:{SOCKS_PASSWORD}".encode(), check=True)


@contextmanager
def dante(tmp: Path, *, username: bool = False) -> Iterator[RunningProxy]:
    """danted on 127.0.0.1:<free port>, going out from 127.0.0.3; SOCKS5 and SOCKS4 (with
    ``username``: SOCKS5 with RFC 1929 only, checked against the system user ``te-proxy``)."""
    binary = shutil.which("danted") or "/usr/sbin/danted"
    if not Path(binary).exists():
        require_program("danted")
    _need_root("danted")
    if username:
        _socks_user()
    port = free_port()
    conf = tmp / f"danted-{port}.conf"
    conf.write_text(
        "logoutput: stderr\n"
        f"internal: 127.0.0.1 port = {port}\n"
        f"external: {OUTSIDE}\n"
        "clientmethod: none\n"
        f"socksmethod: {'username' if username else 'none'}\n"
        "user.privileged: root\n"
        "user.unprivileged: nobody\n"
        "client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }\n"
        "socks pass { from: 127.0.0.0/8 to: 0.0.0.0/0 log: connect error }\n")
    with _running([binary, "-f", str(conf), "-N", "1"], port, tmp / f"danted-{port}.log") as proxy:
        yield proxy


@contextmanager
def tinyproxy(tmp: Path, *, credentials: tuple[str, str] | None = None) -> Iterator[RunningProxy]:
    """tinyproxy on 127.0.0.1:<free port>, CONNECT to any port (no ConnectPort line), going out
    from 127.0.0.3; ``credentials``: Basic authentication asked."""
    binary = require_program("tinyproxy")
    _need_root("tinyproxy")  # (it drops to nobody after binding)
    port = free_port()
    conf = tmp / f"tinyproxy-{port}.conf"
    lines = [f"Port {port}", "Listen 127.0.0.1", f"Bind {OUTSIDE}", "Timeout 30", "Allow 127.0.0.1",
             "MaxClients 50", "LogLevel Info", "User nobody", "Group nogroup"]
    if credentials is not None:
        lines.append(f"BasicAuth {credentials[0]} {credentials[1]}")
    conf.write_text("\n".join(lines) + "\n")
    with _running([binary, "-d", "-c", str(conf)], port, tmp / f"tinyproxy-{port}.log") as proxy:
        yield proxy
