"""Start a real opentracker on a loopback address of its own for a test, with its allow-list written first."""

from __future__ import annotations

import random
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import require_program


@dataclass
class Opentracker:
    host: str
    http_port: int
    udp_port: int

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.http_port}/announce"

    @property
    def udp_url(self) -> str:
        return f"udp://{self.host}:{self.udp_port}/announce"


def _own_loopback_address() -> str:
    """An address of 127.0.0.0/8 for one opentracker alone. opentracker binds its ports with
    SO_REUSEPORT: a second one (another test worker's) started on the same probed port binds it
    too, and the kernel then hands each connection to either, whose allow-list is not ours. Two
    of them sharing an address as well as a port does not happen."""
    draw = random.SystemRandom()
    return f"127.{draw.randrange(1, 255)}.{draw.randrange(256)}.{draw.randrange(1, 255)}"


def _free_port(host: str, kind: socket.SocketKind) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _wait_for_allow_list(tracker: Opentracker, info_hash: bytes, deadline: float) -> bool:
    """opentracker opens its ports before a separate thread has read the allow-list; until then
    it refuses every hash. Ready means: a listed hash is accepted."""
    query = urllib.parse.urlencode(
        {"info_hash": info_hash, "peer_id": b"-TE0100-readyprobe00", "port": 1, "left": 0, "event": "stopped"}
    )
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{tracker.http_url}?{query}", timeout=2) as reply:
                if b"failure reason" not in reply.read():
                    return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


@contextmanager
def opentracker(folder: Path, info_hashes: Iterable[bytes]) -> Iterator[Opentracker]:
    """Debian builds opentracker to serve only the info-hashes of its allow-list (``-w FILE``,
    relative to its ``-d`` folder); the list is written before it starts."""
    program = require_program("opentracker")
    folder.mkdir(parents=True, exist_ok=True)
    hashes = list(info_hashes)
    (folder / "whitelist").write_text("".join(f"{h.hex()}\n" for h in hashes))
    # Run as root, opentracker chroots into the folder and drops to "nobody", who must be able
    # to read the list from there.
    folder.chmod(0o755)
    (folder / "whitelist").chmod(0o644)
    log_path = folder / "log"
    with log_path.open("wb") as log:
        for _attempt in range(5):  # a probed free port may be taken before opentracker binds it
            host = _own_loopback_address()
            ports = _free_port(host, socket.SOCK_STREAM), _free_port(host, socket.SOCK_DGRAM)
            tracker = Opentracker(host, *ports)
            args = [program, "-i", host, "-p", str(tracker.http_port), "-P", str(tracker.udp_port)]
            args += ["-d", str(folder), "-w", "whitelist"]
            process = subprocess.Popen(args, cwd=folder, stdout=log, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 10
            while process.poll() is None and time.monotonic() < deadline:
                try:
                    socket.create_connection((host, tracker.http_port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.05)
            if process.poll() is None and _wait_for_allow_list(tracker, hashes[0], deadline):
                break
            process.terminate()
            process.wait(5)
        else:
            pytest.fail(f"opentracker did not start: {log_path.read_text(errors='replace')}")
        try:
            yield tracker
        finally:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
