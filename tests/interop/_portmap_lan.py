"""The LAN side of the router tests: a real ``torrent-engine daemon`` (port mapping at its
default: on) seeding one torrent, behind the router of ``tests/interop/router.py``.

``python -m tests.interop._portmap_lan WORKDIR TORRENT LEASE`` starts the daemon (its download
dir ``WORKDIR/downloads`` already holds the torrent's data), adds the torrent through the API,
waits until it seeds and the gateway forwards its ports (one round of mapping over), and prints one JSON line
(``/api/stats``). Then it answers lines on stdin: ``stats`` prints ``/api/stats`` again, ``stop``
sends SIGTERM, waits for the daemon to exit and prints ``{"exit": code}``. ``LEASE`` > 0 asks
the gateway for leases of that many seconds (renewed at half-time, not the usual 30 s floor), so
that a test can watch a renewal.
"""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

TOKEN = "router-test-token"
PATCH = """import sys
import torrent_engine.net.portmap.natpmp as natpmp, torrent_engine.net.portmap.service as service
lease = int(sys.argv.pop(1))
if lease:
    natpmp.RECOMMENDED_LIFETIME = service.UPNP_LEASE = lease
    service.MIN_RENEWAL = 1.0
from torrent_engine.cli import main
sys.exit(main(sys.argv[1:]))
"""


def say(obj: object) -> None:
    print(json.dumps(obj), flush=True)


def until(what: str, check: Any, proc: subprocess.Popen[bytes], log: Path, seconds: float = 60) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found:
            return found
        if proc.poll() is not None:
            raise SystemExit(f"the daemon exited ({proc.returncode}) before {what}:\n"
                             f"{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise SystemExit(f"no {what} within {seconds:g} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


def main() -> int:
    workdir, torrent, lease = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    state = workdir / "state"
    log = workdir / "daemon.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", PATCH, lease, "daemon", "--state-dir", str(state),
             "--download-dir", str(workdir / "downloads"), "--api-port", "0", "--api-token", TOKEN,
             "--no-trackers", "--no-dht", "--no-lsd", "-v"], stdout=out, stderr=subprocess.STDOUT)
        try:
            api_file = state / "api.json"
            until("API", api_file.exists, proc, log)
            url = json.loads(api_file.read_text())["url"]
            with httpx.Client(base_url=url, timeout=30, headers={"Authorization": f"Bearer {TOKEN}"}) as api:
                source = base64.b64encode(torrent.read_bytes()).decode()
                added = api.post("/api/jobs", json={"source": source})
                if added.status_code not in (200, 201):
                    raise SystemExit(f"add: {added.status_code} {added.text}")
                job_id = added.json()["id"]
                until("seeding", lambda: api.get(f"/api/jobs/{job_id}").json()["state"] == "seeding",
                      proc, log)

                def mapped() -> dict[str, Any] | None:
                    stats = api.get("/api/stats").json()
                    pm = stats["port_mapping"] or {}
                    tcp = [m for m in pm.get("mappings", []) if m["protocol"] == "tcp"
                           and m["internal_port"] == stats["listen_port"]]
                    return stats if tcp and pm.get("external_ip") and pm.get("method") else None

                say(until("port mapping", mapped, proc, log))
                for line in sys.stdin:
                    if line.strip() == "stats":
                        say(api.get("/api/stats").json())
                    elif line.strip() == "stop":
                        break
            proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
            say({"exit": code})
            return 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


if __name__ == "__main__":
    sys.exit(main())
