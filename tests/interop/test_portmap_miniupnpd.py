"""Port mapping against a router nobody here wrote: Debian's ``miniupnpd`` in a network namespace
set up as a NAT router between a "LAN" namespace (our daemon, port mapping at its default) and a
"WAN" namespace (a libtorrent peer). For UPnP IGD and for NAT-PMP, each offered alone by the
router: the mapping appears in the router's NAT table, the external address reaches our API,
libtorrent downloads from us through the mapped port only (which turns our "firewalled" into
"connected", as qBittorrent says it), the leases are renewed before they
run out, and the mappings are removed when the daemon stops (see tests/interop/router.py)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_libtorrent
from tests.integration.helpers import make_payload, make_torrent, same_files
from tests.interop.router import LAN_HOST, WAN_ROUTER, Router, kill

pytestmark = [pytest.mark.interop]

LEASE = 6  # seconds asked of the router, renewed at half-time: a test can outlive a few leases


def read_json(proc: subprocess.Popen[str], what: str) -> dict[str, Any]:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        err = proc.stderr.read() if proc.stderr is not None else ""
        raise AssertionError(f"{what}: no answer (exit {proc.wait(10)}):\n{err[-3000:]}")
    return json.loads(line)  # type: ignore[no-any-return]


def ask(proc: subprocess.Popen[str], command: str) -> dict[str, Any]:
    assert proc.stdin is not None
    proc.stdin.write(command + "\n")
    proc.stdin.flush()
    return read_json(proc, command)


@pytest.mark.parametrize("method", ["upnp", "natpmp"])
def test_a_libtorrent_peer_reaches_our_daemon_through_the_mapped_port(tmp_path: Path, method: str) -> None:
    require_libtorrent()
    payload = make_payload(tmp_path / "lan" / "downloads", (("movie.bin", 1_500_000), ("notes.txt", 20_000)))
    torrent = make_torrent(payload, piece_length=64 * 1024, version="v1")
    torrent_file = tmp_path / "t.torrent"
    torrent_file.write_bytes(torrent.to_bytes())
    (tmp_path / "wan").mkdir()
    with Router(tmp_path, upnp=method == "upnp", natpmp=method == "natpmp") as router:
        lan = router.popen(router.lan, "tests.interop._portmap_lan", str(tmp_path / "lan"), str(torrent_file),
                           str(LEASE))
        try:
            stats = read_json(lan, "the daemon's first mapping")
            mapped_at = time.monotonic()
            pm, port = stats["port_mapping"], stats["listen_port"]
            assert pm["method"] == method and pm["error"] is None, pm
            assert stats["incoming_connections"] is False  # (no peer from outside yet: "firewalled")
            assert pm["external_ip"] == WAN_ROUTER, pm  # the router's, as it reported it
            ours = {(m["protocol"], m["internal_port"], m["external_port"]) for m in pm["mappings"]}
            assert ("tcp", port, port) in ours and ("udp", port, port) in ours, ours  # TCP, and uTP's UDP
            assert all(m["lifetime"] == LEASE for m in pm["mappings"]), pm
            forwards = {(f.protocol, f.external_port): (f.internal_host, f.internal_port)
                        for f in router.forwards()}
            assert forwards.get(("tcp", port)) == (LAN_HOST, port), (forwards, router.log())
            assert forwards.get(("udp", port)) == (LAN_HOST, port), (forwards, router.log())

            # a peer on the WAN side that knows only the router's address and the mapped port
            wan = router.popen(router.wan, "tests.interop._portmap_wan", str(torrent_file),
                               str(tmp_path / "wan"), WAN_ROUTER, str(port))
            try:
                got = read_json(wan, "libtorrent's download")
                assert wan.wait(30) == 0
            finally:
                kill(wan)
            assert got["done"], (got, router.log())
            assert same_files(torrent, tmp_path / "lan" / "downloads", tmp_path / "wan") == []
            assert ask(lan, "stats")["incoming_connections"] is True  # (it came from outside: "connected")

            # renewal: outlive several leases; the router still forwards (it drops expired ones)
            time.sleep(max(0.0, mapped_at + 3 * LEASE - time.monotonic()))
            again = ask(lan, "stats")["port_mapping"]
            assert again["error"] is None and again["external_ip"] == WAN_ROUTER, again
            forwards = {(f.protocol, f.external_port) for f in router.forwards()}
            assert {("tcp", port), ("udp", port)} <= forwards, (forwards, router.log())

            # a graceful stop removes every mapping
            assert ask(lan, "stop") == {"exit": 0}
            assert lan.wait(30) == 0
            assert router.forwards() == [], router.log()
        finally:
            kill(lan)  # (and the daemon it started, whatever happened above)
