"""uTP download benchmark: one torrent from a libtorrent seeder on 127.0.0.1 (uTP and TCP both
on), fetched in the same run by our engine over uTP only, by our engine over TCP only, and by
libtorrent over uTP only. Each downloader runs in its own process.

    python bench/bench_utp.py [--size-mib 128] [--piece-kib 1024] [--rounds 1] [--profile DIR]

Prints one JSON line per download and a summary: MB/s of each (best and median), our uTP / our
TCP, our uTP / libtorrent's uTP (targets: >= 0.7 and >= 1.0), and for our uTP download the
datagrams received and sent and the process CPU time per datagram received. ``--profile DIR``
runs our uTP download under cProfile and writes ``DIR/utp-<round>.prof``. Each line also gives
the event-loop thread's CPU time during the transfer (``main_thread_cpu``), and for our uTP
download the part of it spent in the UDP socket's read callback per datagram
(``socket_us_per_datagram_in``: recvfrom, routing, the cores, acks) and the process CPU while
transferring over the transfer's wall time (``cpu_busy``). The seeder runs in this process: each
line gives its CPU time during that download (``seeder_cpu``, all libtorrent's threads) and that
of its busiest thread (``seeder_thread_cpu``, libtorrent's network thread; Linux), and the summary
what both ends spent per download (their TCP / uTP quotient is what the rate ratio would be if
that CPU, on cores the two ends share, were all that limited the transfer) and how fast the
seeder's busiest thread would let a uTP download go if it never waited.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.e2e_download import lt_download  # noqa: E402

CHUNK = 8 * 1024 * 1024


def lt_settings(lt: Any, *, tcp: bool, utp: bool) -> dict[str, Any]:
    return {
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
        "allow_multiple_connections_per_ip": True,
        "enable_outgoing_utp": utp, "enable_incoming_utp": utp,
        "enable_outgoing_tcp": tcp, "enable_incoming_tcp": tcp,
        "out_enc_policy": lt.enc_policy.disabled, "in_enc_policy": lt.enc_policy.enabled,
        "alert_mask": 0,
    }


def child_ours(torrent_file: str, dest: str, port: int, transport: str,
               profile: str | None = None) -> dict[str, Any]:
    import anyio

    from torrent_engine.config import Config
    from torrent_engine.engine.runtime import run
    from torrent_engine.engine.shared import SharedResources
    from torrent_engine.formats.metainfo import Torrent
    from torrent_engine.session import Session

    torrent = Torrent.load(torrent_file)
    counts: dict[str, int] = {}
    transfer_cpu: list[float] = []
    main_cpu: list[float] = []
    socket_cpu = [0.0]  # main-thread CPU inside the uTP socket's read callback (reads, cores, acks)
    try:
        from torrent_engine.net.utp.socket import UtpSocket
        on_readable = UtpSocket._on_readable

        def timed(self: Any) -> None:
            t0 = time.thread_time()
            on_readable(self)
            socket_cpu[0] += time.thread_time() - t0

        UtpSocket._on_readable = timed  # type: ignore[method-assign]
    except AttributeError:  # older code without the batch reader
        pass

    async def main() -> float:
        cfg = Config(listen_host="127.0.0.1", encryption="disable", tracker_enabled=False, seed=True,
                     dht_enabled=False, port_mapping=False, lsd_enabled=False,
                     transport=transport)  # type: ignore[arg-type]
        async with SharedResources(cfg) as shared, \
                Session(torrent, dest, config=cfg, shared=shared, peers=[("127.0.0.1", port)]) as session:
            await session.wait_ready()
            start = time.monotonic()
            cpu_start = time.process_time()
            thread_start = time.thread_time()
            socket_cpu[0] = 0.0
            with anyio.fail_after(1800):
                await session.wait_completed()
            seconds = time.monotonic() - start
            transfer_cpu.append(time.process_time() - cpu_start)
            main_cpu.append(time.thread_time() - thread_start)
            if shared.utp is not None and hasattr(shared.utp, "datagrams_received"):  # (older code: none)
                counts["datagrams_in"] = shared.utp.datagrams_received
                counts["datagrams_out"] = shared.utp.datagrams_sent
            return seconds

    profiler = None
    if profile:
        import cProfile
        profiler = cProfile.Profile()
        profiler.enable()
    cpu0 = time.process_time()
    seconds = run(main)
    cpu = time.process_time() - cpu0
    if profiler is not None and profile:
        profiler.disable()
        profiler.dump_stats(profile)
    result: dict[str, Any] = {"who": f"torrent_engine {transport}", "seconds": seconds,
                              "bytes": torrent.payload_size, "cpu": cpu,
                              "cpu_busy": transfer_cpu[0] / seconds, "main_thread_cpu": main_cpu[0], **counts}
    if counts.get("datagrams_in"):
        result["cpu_us_per_datagram_in"] = cpu * 1e6 / counts["datagrams_in"]
        result["socket_us_per_datagram_in"] = socket_cpu[0] * 1e6 / counts["datagrams_in"]
    return result


def child_lt(torrent_file: str, dest: str, port: int) -> dict[str, Any]:
    import libtorrent as lt

    ses, handle, cpu0 = lt_download(lt, lt_settings(lt, tcp=False, utp=True), torrent_file, dest)
    handle.connect_peer(("127.0.0.1", port))
    start = time.monotonic()
    deadline = start + 1800
    while not handle.status().is_seeding:
        if time.monotonic() > deadline:
            raise TimeoutError("libtorrent did not finish")
        time.sleep(0.01)
    return {"who": "libtorrent utp", "seconds": time.monotonic() - start,
            "bytes": handle.torrent_file().total_size(), "cpu": time.process_time() - cpu0}


def thread_cpu() -> dict[str, float]:
    """CPU seconds of each of this process's threads (Linux ``schedstat``; empty elsewhere)."""
    out: dict[str, float] = {}
    try:
        for tid in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{tid}/schedstat") as f:
                out[tid] = int(f.read().split()[0]) / 1e9
    except OSError:
        pass
    return out


def run_child(kind: str, torrent_file: Path, dest: Path, port: int,
              profile: str | None = None) -> dict[str, Any]:
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    extra = ["--profile", profile] if profile else []
    seeder_cpu0 = time.process_time()  # this process is the seeder: libtorrent's threads
    threads0 = thread_cpu()
    out = subprocess.run([sys.executable, __file__, "--child", kind, str(torrent_file), str(dest), str(port),
                          *extra], check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    result["mb_s"] = result["bytes"] / result["seconds"] / 1e6
    result["seeder_cpu"] = time.process_time() - seeder_cpu0
    threads1 = thread_cpu()
    # the seeder's busiest thread (libtorrent's network thread) during the whole child's run
    result["seeder_thread_cpu"] = max((threads1[t] - threads0.get(t, 0.0) for t in threads1), default=0.0)
    print(json.dumps(result), flush=True)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--size-mib", type=int, default=128)
    ap.add_argument("--piece-kib", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--profile", help="run our uTP download under cProfile, writing DIR/utp-<round>.prof "
                    "(or, with --child, this file)")
    ap.add_argument("--child", nargs=4, metavar=("KIND", "TORRENT", "DEST", "PORT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, torrent_file, dest, port = args.child
        if kind == "lt":
            print(json.dumps(child_lt(torrent_file, dest, int(port))))
        else:
            print(json.dumps(child_ours(torrent_file, dest, int(port), kind, args.profile)))
        return 0

    import libtorrent as lt

    from torrent_engine.storage.create import create_torrent

    work = Path(tempfile.mkdtemp(prefix="te-bench-utp-"))
    seed_dir = work / "seed"
    seed_dir.mkdir()
    payload = seed_dir / "payload.bin"
    with open(payload, "wb") as f:
        left = args.size_mib * 1024 * 1024
        while left:
            n = min(CHUNK, left)
            f.write(os.urandom(n))
            left -= n
    torrent = create_torrent(payload, piece_length=args.piece_kib * 1024, version="v1")
    torrent_file = work / "payload.torrent"
    torrent_file.write_bytes(torrent.to_bytes())
    ses = lt.session(lt_settings(lt, tcp=True, utp=True))
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(str(torrent_file))
    params.save_path = str(seed_dir)
    handle = ses.add_torrent(params)
    while not handle.status().is_seeding:
        time.sleep(0.05)
    port = ses.listen_port()
    results: dict[str, list[dict[str, Any]]] = {"utp": [], "tcp": [], "lt": []}
    try:
        if args.profile:
            os.makedirs(args.profile, exist_ok=True)
        for round_no in range(1, args.rounds + 1):
            for kind in results:
                prof = None
                if args.profile and kind == "utp":
                    prof = os.path.join(args.profile, f"utp-{round_no}.prof")
                results[kind].append(run_child(kind, torrent_file, work / kind, port, prof))
    finally:
        del handle, ses
        shutil.rmtree(work, ignore_errors=True)
    best = {k: max(r["mb_s"] for r in v) for k, v in results.items()}
    median = {k: statistics.median(r["mb_s"] for r in v) for k, v in results.items()}
    names = {"utp": "torrent_engine uTP", "tcp": "torrent_engine TCP", "lt": "libtorrent uTP    "}
    print(f"size {args.size_mib} MiB, pieces {args.piece_kib} KiB, rounds {args.rounds}")
    for kind, name in names.items():
        main = [r["main_thread_cpu"] for r in results[kind] if "main_thread_cpu" in r]
        print(f"{name}: best {best[kind]:.1f} MB/s, median {median[kind]:.1f} MB/s "
              f"(CPU {min(r['cpu'] for r in results[kind]):.2f} s"
              + (f", event-loop thread {statistics.median(main):.3f} s median" if main else "")
              + f", seeder CPU {statistics.median(r['seeder_cpu'] for r in results[kind]):.3f} s median)")
    per_dgram = [r["cpu_us_per_datagram_in"] for r in results["utp"] if "cpu_us_per_datagram_in" in r]
    if per_dgram:
        sock_us = statistics.median(r["socket_us_per_datagram_in"] for r in results["utp"])
        print(f"our uTP: {results['utp'][0]['datagrams_in']} datagrams in, "
              f"{[r['datagrams_out'] for r in results['utp']]} out by round; process CPU per datagram in: "
              f"{min(per_dgram):.1f} us best, {statistics.median(per_dgram):.1f} us median; "
              f"of it in the uTP socket's read callback: {sock_us:.2f} us median")
    # what both ends spent (our process and the seeder's), and the seeder's busiest thread
    both = {k: statistics.median(r["cpu"] + r["seeder_cpu"] for r in results[k]) for k in ("utp", "tcp")}
    thread = {k: statistics.median(r["seeder_thread_cpu"] for r in results[k]) for k in ("utp", "tcp")}
    quotient = both["tcp"] / both["utp"]
    most = args.size_mib * 1.048576 / thread["utp"]  # MB/s
    print(f"CPU of both ends per download (median): our uTP {both['utp']:.3f} s, our TCP {both['tcp']:.3f} s "
          f"(TCP / uTP {quotient:.2f}: the rate ratio if that CPU on shared cores were all that limited "
          f"it); the seeder's busiest thread {thread['utp']:.3f} s over uTP, {thread['tcp']:.3f} s over "
          f"TCP ({most:.0f} MB/s at most over uTP with it always running)")
    for ref, target in (("tcp", 0.7), ("lt", 1.0)):
        print(f"ratio our uTP / {names[ref].strip()}: best {best['utp'] / best[ref]:.2f}, "
              f"median {median['utp'] / median[ref]:.2f} (target >= {target})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
