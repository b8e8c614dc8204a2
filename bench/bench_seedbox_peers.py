"""A seedbox serving many peers at once: ours against qbittorrent-nox, in the same run, on the same
data, both driven through the qBittorrent WebAPI.

    python bench/bench_seedbox_peers.py [--torrents 10000] [--served 500] [--served-kib 1024]
                                        [--leechers 10] [--clients ours-qb,qbittorrent]
                                        [--max-connections 0] [--max-uploads 0] [--keep DIR]

Each client seeds ``--torrents`` small torrents (``bench_seedbox``'s, 256 KiB, added with
``skip_checking=true``: seed mode) plus ``--served`` torrents of ``--served-kib`` KiB that
libtorrent processes download from it: ``--leechers`` processes, each with an equal share of the
served torrents, each torrent told the seeder's address (TCP only; DHT, LSD, PEX, port mapping
off everywhere), so ``--served`` peer connections are wanted at once. ``--served 50 --leechers 1``
is one libtorrent downloader fetching 50 torrents.

Measured from the leechers' start until every served torrent is complete in its leecher: the
time, the upload rate (the served bytes over that time), the seeder's CPU (% of one core), its
peak RSS, and its peak number of sockets, sampled every 0.2 s from ``/proc``; then its RSS 10 s
after the leechers are gone. With
``--max-connections``/``--max-uploads`` both clients get qBittorrent's ``max_connec`` /
``max_uploads`` preferences first, and the peak socket count shows whether the global limit held
(a few sockets are not peers: the API's, the listeners).

Only loopback: as root with ``unshare`` the run re-executes itself in a network namespace that
has only loopback. Every wait is bounded; the leechers stop by themselves after ``--limit`` s.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_seedbox import (  # noqa: E402
    CLIENTS,
    WAIT_LIMIT,
    QbDialect,
    cpu_seconds,
    in_loopback_namespace,
    load_avg,
    make_torrents,
    proc_status,
    wait_for,
)

from torrent_engine.formats.bencode import encode  # noqa: E402

PIECE = 64 * 1024

# One leecher: libtorrent downloading its share, every torrent told the seeder's address; prints
# one JSON line when all are complete (or at its time limit).
LEECHER = r"""
import json, sys, time
import libtorrent as lt
port, save, limit = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
ses = lt.session({
    "listen_interfaces": "127.0.0.1:0", "enable_dht": False, "enable_lsd": False, "enable_upnp": False,
    "enable_natpmp": False, "enable_incoming_utp": False, "enable_outgoing_utp": False,
    "alert_mask": 0, "connections_limit": 5000, "min_reconnect_time": 1, "peer_connect_timeout": 3,
    "active_downloads": -1, "active_seeds": -1, "active_limit": -1, "allow_multiple_connections_per_ip": True,
})
handles = []
for f in sys.argv[4:]:
    p = lt.add_torrent_params()
    p.ti = lt.torrent_info(f)
    p.save_path = save
    handles.append(ses.add_torrent(p))
start = time.monotonic()
for h in handles:
    h.connect_peer(("127.0.0.1", port))
done = 0
reconnect = time.monotonic() + 5
while time.monotonic() - start < limit:
    states = [h.status() for h in handles]
    done = sum(1 for s in states if s.is_seeding)
    if done == len(handles):
        break
    if time.monotonic() > reconnect:  # a torrent whose connection was refused asks again
        for h, s in zip(handles, states):
            if not s.is_seeding and s.num_peers == 0:
                h.connect_peer(("127.0.0.1", port))
        reconnect = time.monotonic() + 5
    time.sleep(0.1)
print(json.dumps({"done": done, "n": len(handles), "s": time.monotonic() - start}), flush=True)
"""


def make_served(root: Path, n: int, kib: int) -> list[Path]:
    """``root/data/sNNNNN.bin`` (random, ``kib`` KiB) and ``root/served/sNNNNN.torrent``; kept from
    an earlier run of that size."""
    data, meta = root / "data", root / "served"
    data.mkdir(parents=True, exist_ok=True)
    meta.mkdir(parents=True, exist_ok=True)
    size = kib * 1024
    out = []
    for i in range(n):
        name = f"s{i:05d}.bin"
        path, tpath = data / name, meta / f"s{i:05d}-{kib}.torrent"
        if not (tpath.exists() and path.exists() and path.stat().st_size == size):
            payload = os.urandom(size)
            path.write_bytes(payload)
            pieces = b"".join(hashlib.sha1(payload[o:o + PIECE]).digest() for o in range(0, size, PIECE))
            info = {b"name": name.encode(), b"length": size, b"piece length": PIECE, b"pieces": pieces}
            tpath.write_bytes(encode({b"info": info, b"created by": b"bench_seedbox_peers"}))
        out.append(tpath)
    return out


def sockets(pid: int) -> int:
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                n += 1
        except OSError:
            pass
    return n


def set_limits(client: QbDialect, connections: int, uploads: int) -> None:
    prefs: dict[str, int] = {}
    if connections:
        prefs["max_connec"] = connections
    if uploads:
        prefs["max_uploads"] = uploads
    if not prefs:
        return
    api = client.api()
    body = ("json=" + json.dumps(prefs)).encode()
    status, _, text = api.http.request("POST", "/api/v2/app/setPreferences", body,
                                       {"Content-Type": "application/x-www-form-urlencoded"})
    if status != 200:
        raise RuntimeError(f"app/setPreferences: {status} {text[:200]!r}")


def serve(client: QbDialect, served: list[Path], args: argparse.Namespace, work: Path) -> dict[str, Any]:
    share = [served[i::args.leechers] for i in range(args.leechers)]
    pid = client.pid
    base_sockets = sockets(pid)
    procs = []
    for i, files in enumerate(share):
        if not files:
            continue
        save = work / f"leecher{i}"
        save.mkdir()
        procs.append(subprocess.Popen(
            [sys.executable, "-c", LEECHER, str(client.peer_port), str(save), str(args.limit),
             *map(str, files)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
    c0, t0 = cpu_seconds(pid), time.monotonic()
    peak_rss = peak_sockets = 0
    while any(p.poll() is None for p in procs):
        st = proc_status(pid)
        peak_rss = max(peak_rss, st["VmRSS"])
        peak_sockets = max(peak_sockets, sockets(pid))
        if time.monotonic() - t0 > args.limit + 30:
            for p in procs:
                p.kill()
            break
        time.sleep(0.2)
    wall, cpu = time.monotonic() - t0, cpu_seconds(pid) - c0
    reports = []
    for p in procs:
        out, _ = p.communicate(timeout=30)
        last = out.decode(errors="replace").strip().splitlines()[-1:] or ["{}"]
        try:
            reports.append(json.loads(last[0]))
        except ValueError:
            raise RuntimeError(f"a leecher failed: {out.decode(errors='replace')[-2000:]}") from None
    client.alive()
    done = sum(int(r.get("done", 0)) for r in reports)
    slowest = max(float(r.get("s", wall)) for r in reports)
    size = args.served_kib * 1024
    return {"done": done, "served": len(served), "s": slowest,
            "mib_s": done * size / 2**20 / slowest if slowest else 0.0,
            "cpu_pct": 100 * cpu / wall, "peak_rss_mib": peak_rss / 1024,
            "peak_sockets": peak_sockets, "base_sockets": base_sockets, "load": load_avg()}


def run_client(kind: str, work: Path, data: Path, seeded: list[Path], served: list[Path],
               args: argparse.Namespace) -> dict[str, Any]:
    client = CLIENTS[kind](work, data)
    assert isinstance(client, QbDialect), "a client driven through the qBittorrent WebAPI"
    client.prepare()
    client.skip_checking = True
    files = seeded + served
    client.start()
    try:
        wait_for(f"{client.name} answers", client.ready, 60, 0.05)
        t0 = time.monotonic()
        client.add_all(files, 25)
        wait_for(f"{client.name}: all seeding", lambda: client.seeding(len(files)), WAIT_LIMIT, 0.5)
        seeding_s = time.monotonic() - t0
        set_limits(client, args.max_connections, args.max_uploads)
        time.sleep(5)
        before = proc_status(client.pid)
        out = serve(client, served, args, work)
        time.sleep(10)  # the leechers are gone: what the serving held is let go
        out["rss_after_mib"] = proc_status(client.pid)["VmRSS"] / 1024
        out.update(client=client.name, n=len(files), seeding_s=seeding_s,
                   rss_before_mib=before["VmRSS"] / 1024)
        client.stop()
    finally:
        if client.proc is not None and client.proc.poll() is None:
            client.proc.kill()
            client.proc.wait()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--torrents", type=int, default=10000, help="small torrents seeded beside the served ones")
    p.add_argument("--served", type=int, default=500, help="torrents the leechers download")
    p.add_argument("--served-kib", type=int, default=1024)
    p.add_argument("--leechers", type=int, default=10,
                   help="libtorrent processes sharing the served torrents")
    p.add_argument("--clients", default="ours-qb,qbittorrent")
    p.add_argument("--max-connections", type=int, default=0,
                   help="qBittorrent's max_connec for both (0: theirs)")
    p.add_argument("--max-uploads", type=int, default=0,
                   help="qBittorrent's max_uploads for both (0: theirs)")
    p.add_argument("--limit", type=float, default=600.0, help="a leecher gives up after this many seconds")
    p.add_argument("--keep", type=Path, help="make the data here and keep it (else a temporary folder)")
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args()

    in_loopback_namespace()

    kinds = [k.strip() for k in args.clients.split(",") if k.strip()]
    for k in kinds:
        if k not in CLIENTS or not issubclass(CLIENTS[k], QbDialect):
            p.error(f"{k!r} is not a client with the qBittorrent WebAPI")
    root = args.keep or Path(tempfile.mkdtemp(prefix="seedbox-peers-"))
    data, seeded = make_torrents(root, args.torrents)
    served = make_served(root, args.served, args.served_kib)
    print(f"{len(seeded)} torrents of 256 KiB and {len(served)} of {args.served_kib} KiB served to "
          f"{args.leechers} libtorrent processes; load {load_avg()}", flush=True)
    results = []
    try:
        for k in kinds:
            work = Path(tempfile.mkdtemp(prefix=f"{k}-", dir=root))
            r = run_client(k, work, data, seeded, served, args)
            results.append(r)
            print(f"\n== {r['client']}, {r['n']} torrents seeding (all seeding {r['seeding_s']:.1f} s "
                  f"after the first add); {r['done']}/{r['served']} served in {r['s']:.1f} s: "
                  f"{r['mib_s']:.1f} MiB/s; CPU {r['cpu_pct']:.0f} % of a core; RSS "
                  f"{r['rss_before_mib']:.0f} MiB before, peak {r['peak_rss_mib']:.0f}, 10 s after "
                  f"{r['rss_after_mib']:.0f}"
                  f"; sockets peak {r['peak_sockets']} (before: {r['base_sockets']}); load {r['load']}",
                  flush=True)
            shutil.rmtree(work, ignore_errors=True)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
