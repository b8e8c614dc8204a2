"""End-to-end download benchmark: one torrent (default 1 GiB, 1 MiB pieces) from a libtorrent
seeder on 127.0.0.1, fetched by our engine and, in the same run from the same seeder, by
libtorrent itself. Each downloader runs in its own process, so its CPU time and peak RSS are its own.

    python bench/e2e_download.py [--size-mib 1024] [--piece-kib 1024] [--rounds 1] [--workdir DIR]

Prints one JSON line per download and a summary (MB/s of both, ratio, CPU s, our peak RSS).
With ``--upload`` the roles turn: a libtorrent leecher downloads the torrent from our seeder and,
in the same run, from a libtorrent seeder (each seeder in its own process).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CHUNK = 8 * 1024 * 1024


def lt_settings(lt: Any) -> dict[str, Any]:
    return {
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
        "allow_multiple_connections_per_ip": True,
        # TCP only, as we are: libtorrent-to-libtorrent would otherwise pick uTP, whose LEDBAT
        # congestion control crawls on loopback
        "enable_outgoing_utp": False, "enable_incoming_utp": False,
        "out_enc_policy": lt.enc_policy.disabled, "in_enc_policy": lt.enc_policy.enabled,
        "alert_mask": 0,
    }


def peak_rss_mib() -> float:
    """This process's peak RSS (VmHWM). Not ru_maxrss: Linux carries that over fork+exec from the
    parent, so a child would report at least the benchmark driver's own size."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_payload(path: Path, size: int) -> None:
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(CHUNK, left)
            f.write(os.urandom(n))
            left -= n


def child_ours(torrent_file: str, dest: str, port: int) -> dict[str, Any]:
    import anyio

    from torrent_engine.config import Config
    from torrent_engine.metainfo import Torrent
    from torrent_engine.runtime import run
    from torrent_engine.session import Session

    torrent = Torrent.load(torrent_file)

    async def main() -> float:
        cfg = Config(listen_host="127.0.0.1", encryption="disable", tracker_enabled=False,
                     dht_enabled=False, port_mapping=False, seed=True)
        async with Session(torrent, dest, config=cfg, peers=[("127.0.0.1", port)]) as session:
            await session.wait_ready()
            start = time.monotonic()
            with anyio.fail_after(1800):
                await session.wait_completed()
            return time.monotonic() - start

    cpu0 = time.process_time()
    seconds = run(main)
    return {"who": "torrent_engine", "seconds": seconds, "bytes": torrent.payload_size,
            "cpu": time.process_time() - cpu0,
            "peak_rss_mib": peak_rss_mib()}


def child_ours_seed(torrent_file: str, save_path: str) -> None:
    """Seed until stdin closes; print the listen port first, then CPU seconds and peak RSS."""
    import anyio

    from torrent_engine.config import Config
    from torrent_engine.metainfo import Torrent
    from torrent_engine.runtime import run
    from torrent_engine.session import Session

    torrent = Torrent.load(torrent_file)

    async def main() -> None:
        cfg = Config(listen_host="127.0.0.1", encryption="disable", tracker_enabled=False,
                     dht_enabled=False, port_mapping=False)
        async with Session(torrent, save_path, config=cfg) as session:
            await session.wait_ready()
            print(json.dumps({"port": session.listen_port}), flush=True)
            cpu0 = time.process_time()
            await anyio.to_thread.run_sync(sys.stdin.read)
            print(json.dumps({"who": "torrent_engine seeder", "cpu": time.process_time() - cpu0,
                              "uploaded": session.uploaded,
                              "peak_rss_mib": peak_rss_mib()}),
                  flush=True)

    run(main)


def child_lt_seed(torrent_file: str, save_path: str) -> None:
    import libtorrent as lt

    ses = lt.session(lt_settings(lt))
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(torrent_file)
    params.save_path = save_path
    handle = ses.add_torrent(params)
    while not handle.status().is_seeding:
        time.sleep(0.05)
    print(json.dumps({"port": ses.listen_port()}), flush=True)
    cpu0 = time.process_time()
    sys.stdin.read()
    print(json.dumps({"who": "libtorrent seeder", "cpu": time.process_time() - cpu0,
                      "peak_rss_mib": peak_rss_mib()}), flush=True)


def upload_round(kind: str, torrent_file: Path, seed_dir: Path, dest: Path) -> dict[str, Any]:
    """A libtorrent leecher (in this process) downloads from a seeder child of ``kind``."""
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    argv = [sys.executable, __file__, "--seed-child", kind, str(torrent_file), str(seed_dir)]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdin is not None
    port = json.loads(proc.stdout.readline())["port"]
    result = child_libtorrent(str(torrent_file), str(dest), port)
    proc.stdin.close()
    seeder = json.loads(proc.stdout.readline())
    proc.wait(timeout=60)
    out = {"seeder": seeder["who"], "leecher_seconds": result["seconds"], "bytes": result["bytes"],
           "mb_s": result["bytes"] / result["seconds"] / 1e6, "seeder_cpu": seeder["cpu"],
           "seeder_peak_rss_mib": seeder["peak_rss_mib"]}
    print(json.dumps(out), flush=True)
    return out


def child_libtorrent(torrent_file: str, dest: str, port: int) -> dict[str, Any]:
    import libtorrent as lt

    settings = lt_settings(lt)
    if os.environ.get("LT_DEFAULT_DISK") != "1":
        # its best case on this machine: pwrite like us (not mmap), normal disk I/O priority
        settings.update({"disk_write_mode": lt.mmap_write_mode_t.always_pwrite, "low_prio_disk": False})
    ses = lt.session(settings)
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(torrent_file)
    params.save_path = dest
    cpu0 = time.process_time()
    handle = ses.add_torrent(params)
    handle.connect_peer(("127.0.0.1", port))
    start = time.monotonic()
    deadline = start + 1800
    while not handle.status().is_seeding:
        if time.monotonic() > deadline:
            raise TimeoutError("libtorrent did not finish")
        time.sleep(0.01)
    seconds = time.monotonic() - start
    size = params.ti.total_size()
    return {"who": "libtorrent", "seconds": seconds, "bytes": size, "cpu": time.process_time() - cpu0,
            "peak_rss_mib": peak_rss_mib()}


def run_child(kind: str, torrent_file: Path, dest: Path, port: int) -> dict[str, Any]:
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    out = subprocess.run([sys.executable, __file__, "--child", kind, str(torrent_file), str(dest), str(port)],
                         check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    result["mb_s"] = result["bytes"] / result["seconds"] / 1e6
    print(json.dumps(result), flush=True)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--piece-kib", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=1, help="alternate ours/libtorrent this many times")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--upload", action="store_true", help="measure our seeder instead of our leecher")
    ap.add_argument("--child", nargs=4, metavar=("KIND", "TORRENT", "DEST", "PORT"), help=argparse.SUPPRESS)
    ap.add_argument("--seed-child", nargs=3, metavar=("KIND", "TORRENT", "DIR"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.seed_child:
        kind, torrent_file, save_path = args.seed_child
        (child_ours_seed if kind == "ours" else child_lt_seed)(torrent_file, save_path)
        return 0
    if args.child:
        kind, torrent_file, dest, port = args.child
        fn = child_ours if kind == "ours" else child_libtorrent
        print(json.dumps(fn(torrent_file, dest, int(port))))
        return 0

    import libtorrent as lt

    from torrent_engine.create import create_torrent

    work = args.workdir or Path(tempfile.mkdtemp(prefix="te-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    seed_dir = work / "seed"
    seed_dir.mkdir(exist_ok=True)
    payload = seed_dir / "payload.bin"
    size = args.size_mib * 1024 * 1024
    if not payload.exists() or payload.stat().st_size != size:
        make_payload(payload, size)
    torrent = create_torrent(payload, piece_length=args.piece_kib * 1024, version="v1")
    torrent_file = work / "payload.torrent"
    torrent_file.write_bytes(torrent.to_bytes())
    if args.upload:
        rounds: dict[str, list[dict[str, Any]]] = {"ours": [], "libtorrent": []}
        try:
            for _ in range(args.rounds):
                for kind in ("ours", "libtorrent"):
                    rounds[kind].append(upload_round(kind, torrent_file, seed_dir, work / "lt-leech"))
        finally:
            if args.workdir is None:
                shutil.rmtree(work, ignore_errors=True)
        best = {k: max(r["mb_s"] for r in v) for k, v in rounds.items()}
        print(f"size {args.size_mib} MiB, pieces {args.piece_kib} KiB, rounds {args.rounds} (best of each)")
        for kind, label in (("ours", "torrent_engine"), ("libtorrent", "libtorrent    ")):
            rs = rounds[kind]
            cpu = min(r["seeder_cpu"] for r in rs)
            rss = max(r["seeder_peak_rss_mib"] for r in rs)
            print(f"{label} seeding: {best[kind]:.1f} MB/s, seeder CPU {cpu:.1f} s, peak RSS {rss:.0f} MiB")
        print(f"ratio ours/libtorrent: {best['ours'] / best['libtorrent']:.2f}")
        return 0

    ses = lt.session(lt_settings(lt))
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(str(torrent_file))
    params.save_path = str(seed_dir)
    handle = ses.add_torrent(params)
    while not handle.status().is_seeding:
        time.sleep(0.05)
    port = ses.listen_port()
    ours: list[dict[str, Any]] = []
    theirs: list[dict[str, Any]] = []
    try:
        for _ in range(args.rounds):
            ours.append(run_child("ours", torrent_file, work / "ours", port))
            theirs.append(run_child("libtorrent", torrent_file, work / "lt", port))
    finally:
        del handle, ses
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    best_ours = max(r["mb_s"] for r in ours)
    best_lt = max(r["mb_s"] for r in theirs)
    print(f"size {args.size_mib} MiB, pieces {args.piece_kib} KiB, rounds {args.rounds} (best of each)")
    print(f"torrent_engine: {best_ours:.1f} MB/s, CPU {min(r['cpu'] for r in ours):.1f} s, "
          f"peak RSS {max(r['peak_rss_mib'] for r in ours):.0f} MiB")
    print(f"libtorrent:     {best_lt:.1f} MB/s, CPU {min(r['cpu'] for r in theirs):.1f} s, "
          f"peak RSS {max(r['peak_rss_mib'] for r in theirs):.0f} MiB")
    print(f"ratio ours/libtorrent: {best_ours / best_lt:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
