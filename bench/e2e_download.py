"""End-to-end download benchmark: one torrent (default 1 GiB, 1 MiB pieces) from a libtorrent
seeder on 127.0.0.1, fetched by our engine and, in the same run from the same seeder, by
libtorrent itself. Each downloader runs in its own process, so its CPU time and peak RSS are its own.

    python bench/e2e_download.py [--size-mib 1024] [--piece-kib 1024] [--rounds 3] [--rc4] [--upload]
                                 [--disk-write-modes direct,cached] [--seeders 1] [--hog]
                                 [--transports tcp,utp]

Prints one JSON line per download and a summary: best and median MB/s of both, their ratios,
CPU seconds per GiB and peak RSS of both, and (ours) CPU seconds of the event-loop thread per
16 KiB block. ``--rc4`` forces MSE with RC4 on both ends (plaintext otherwise;
``--default-encryption``: each end at its default policy). With
``--upload`` the roles turn: a libtorrent leecher downloads the torrent from our seeder and, in
the same run, from a libtorrent seeder (each seeder in its own process).
``--profile FILE`` writes a cProfile of our downloader (slows it down: for where, not how fast).
``--seeders N``: N libtorrent seeders (each its own session in this process, its own port), both
downloaders connected to all of them. ``--hog``: a process spinning on the CPU for the whole of each
download, ours and libtorrent's alike (the machine's other core busy, as on a shared box).
``--transports tcp,utp``: our downloader once per transport each round (the seeders accept uTP
too); libtorrent's downloader stays on TCP. Every child and hog is killed on every path.
``--check``: instead of a download, each client checks the complete payload from scratch (no
resume data: every piece read and hashed, the files page-cached after the first round), ours and
libtorrent alternated, each in its own process: CPU seconds per GiB checked.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CHUNK = 8 * 1024 * 1024


BLOCK = 16 * 1024
GIB = 1 << 30
# TCP only, as libtorrent is set up here (lt_settings). With Config's default, "any", our
# downloader first dials the seeder over uTP, which this seeder does not answer: the download
# then starts only after utp_connect_timeout (3 s), and every figure taken before 2026-11-22
# 19:45 with uTP wired in (11:46) carries those 3 s.
TRANSPORT = "tcp"


def rc4() -> bool:
    return os.environ.get("E2E_RC4") == "1"


def defaults() -> bool:
    """``--default-encryption``: every end at its default policy (ours "prefer", libtorrent's
    "enabled" with both levels); ``E2E_PREFER_RC4=1`` makes ours choose RC4 when offered both."""
    return os.environ.get("E2E_DEFAULT_ENC") == "1"


def our_transport() -> str:
    """Our downloader's transport this run (``--transports``; TCP by default)."""
    return os.environ.get("E2E_TRANSPORT") or TRANSPORT


def our_encryption() -> dict[str, Any]:
    if defaults():
        return {"encryption": "prefer", "prefer_rc4": os.environ.get("E2E_PREFER_RC4") == "1"}
    return {"encryption": "require" if rc4() else "disable"}


def disk_write_mode() -> dict[str, Any]:
    """Our downloader's ``Config.disk_write_mode`` (``--disk-write-modes``); empty: the default."""
    mode = os.environ.get("E2E_DISK_WRITE_MODE")
    return {"disk_write_mode": mode} if mode else {}


def lt_download(lt: Any, settings: dict[str, Any], torrent_file: str, dest: str, *,
                best_disk: bool = True) -> tuple[Any, Any, float]:
    """A libtorrent session with ``settings`` and the torrent added to download into ``dest``:
    (session, handle, the process CPU time just before the add). ``best_disk``: libtorrent's best
    case on this machine, pwrite like us (not mmap) at normal disk I/O priority."""
    if best_disk:
        settings = {**settings, "disk_write_mode": lt.mmap_write_mode_t.always_pwrite, "low_prio_disk": False}
    ses = lt.session(settings)
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(torrent_file)
    params.save_path = dest
    cpu0 = time.process_time()
    return ses, ses.add_torrent(params), cpu0


def lt_settings(lt: Any) -> dict[str, Any]:
    if defaults():
        enc: dict[str, Any] = {}
    elif rc4():
        enc = {"out_enc_policy": lt.enc_policy.forced, "in_enc_policy": lt.enc_policy.forced,
               "allowed_enc_level": lt.enc_level.rc4}
    else:
        enc = {"out_enc_policy": lt.enc_policy.disabled, "in_enc_policy": lt.enc_policy.enabled}
    return {
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
        "allow_multiple_connections_per_ip": True,
        # TCP only, as we are: libtorrent-to-libtorrent would otherwise pick uTP, whose LEDBAT
        # congestion control crawls on loopback
        "enable_outgoing_utp": False, "enable_incoming_utp": False,
        "alert_mask": 0,
        **enc,
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


def payload_torrent(workdir: Path | None, prefix: str, size_mib: int, piece_kib: int) -> tuple[Path, Any]:
    """The work folder (``workdir``, or a new temporary one), a random payload of ``size_mib``
    MiB in its ``seed/`` (kept from an earlier run of that size) and its v1 torrent, written to
    ``payload.torrent``: ``(work folder, Torrent)``."""
    from torrent_engine.storage.create import create_torrent

    work = workdir or Path(tempfile.mkdtemp(prefix=prefix))
    work.mkdir(parents=True, exist_ok=True)
    seed_dir = work / "seed"
    seed_dir.mkdir(exist_ok=True)
    payload = seed_dir / "payload.bin"
    size = size_mib << 20
    if not payload.exists() or payload.stat().st_size != size:
        make_payload(payload, size)
    torrent = create_torrent(payload, piece_length=piece_kib * 1024, version="v1")
    (work / "payload.torrent").write_bytes(torrent.to_bytes())
    return work, torrent


def child_ours(torrent_file: str, dest: str, ports: list[int]) -> dict[str, Any]:
    import anyio

    from torrent_engine.config import Config
    from torrent_engine.engine.runtime import run
    from torrent_engine.formats.metainfo import Torrent
    from torrent_engine.session import Session

    torrent = Torrent.load(torrent_file)

    loop_cpu = [0.0]
    written = {"direct": 0, "cached": 0}  # bytes the storage wrote with O_DIRECT / through the cache

    async def main() -> float:
        cfg = Config(listen_host="127.0.0.1", **our_encryption(),
                     tracker_enabled=False, dht_enabled=False, port_mapping=False,
                     lsd_enabled=False, seed=True,
                     transport=our_transport(), **disk_write_mode())
        async with Session(torrent, dest, config=cfg, peers=[("127.0.0.1", p) for p in ports]) as session:
            await session.wait_ready()
            start = time.monotonic()
            loop0 = time.thread_time()
            with anyio.fail_after(1800):
                await session.wait_completed()
            loop_cpu[0] = time.thread_time() - loop0
            seconds = time.monotonic() - start
            storage = getattr(session.phase, "storage", None)
            for key in written:
                written[key] = getattr(storage, f"bytes_written_{key}", 0)
            return seconds

    cpu0 = time.process_time()
    profile = os.environ.get("E2E_PROFILE")
    if profile:
        import cProfile

        prof = cProfile.Profile()
        seconds = prof.runcall(run, main)
        prof.dump_stats(profile)
    else:
        seconds = run(main)
    return {"who": "torrent_engine", "seconds": seconds, "bytes": torrent.payload_size,
            "cpu": time.process_time() - cpu0, "loop_cpu": loop_cpu[0],
            "peak_rss_mib": peak_rss_mib(), "mode": os.environ.get("E2E_DISK_WRITE_MODE", ""),
            "transport": our_transport(),
            "direct_bytes": written["direct"], "cached_bytes": written["cached"]}


def child_ours_seed(torrent_file: str, save_path: str) -> None:
    """Seed until stdin closes; print the listen port first, then CPU seconds and peak RSS."""
    import anyio

    from torrent_engine.config import Config
    from torrent_engine.engine.runtime import run
    from torrent_engine.formats.metainfo import Torrent
    from torrent_engine.session import Session

    torrent = Torrent.load(torrent_file)

    async def main() -> None:
        cfg = Config(listen_host="127.0.0.1", **our_encryption(),
                     tracker_enabled=False, dht_enabled=False, port_mapping=False,
                     lsd_enabled=False, transport=TRANSPORT)
        async with Session(torrent, save_path, config=cfg) as session:
            await session.wait_ready()
            print(json.dumps({"port": session.listen_port}), flush=True)
            cpu0 = time.process_time()
            loop0 = time.thread_time()
            await anyio.to_thread.run_sync(sys.stdin.read)
            print(json.dumps({"who": "torrent_engine seeder", "cpu": time.process_time() - cpu0,
                              "loop_cpu": time.thread_time() - loop0,
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
    print(json.dumps({"who": "libtorrent seeder", "cpu": time.process_time() - cpu0, "loop_cpu": None,
                      "peak_rss_mib": peak_rss_mib()}), flush=True)


def upload_round(kind: str, torrent_file: Path, seed_dir: Path, dest: Path) -> dict[str, Any]:
    """A libtorrent leecher (in this process) downloads from a seeder child of ``kind`` ("ours",
    "ours-rc4": ours choosing RC4 when offered both, "libtorrent")."""
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    env = dict(os.environ, E2E_PREFER_RC4="1" if kind == "ours-rc4" else "0")
    argv = [sys.executable, __file__, "--seed-child", kind.removesuffix("-rc4"), str(torrent_file),
            str(seed_dir)]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None and proc.stdin is not None
    port = json.loads(proc.stdout.readline())["port"]
    result = child_libtorrent(str(torrent_file), str(dest), [port])
    proc.stdin.close()
    seeder = json.loads(proc.stdout.readline())
    proc.wait(timeout=60)
    out = {"seeder": seeder["who"] + (" (RC4 chosen)" if kind == "ours-rc4" else ""),
           "leecher_seconds": result["seconds"], "bytes": result["bytes"],
           "mb_s": result["bytes"] / result["seconds"] / 1e6, "cpu": seeder["cpu"],
           "loop_cpu": seeder["loop_cpu"], "peak_rss_mib": seeder["peak_rss_mib"],
           "leecher_cpu": result["cpu"]}
    print(json.dumps(out), flush=True)
    return out


def child_check(kind: str, torrent_file: str, save_path: str) -> dict[str, Any]:
    """Check the complete payload in ``save_path`` from scratch (``kind`` "ours" or libtorrent):
    seconds, CPU and peak RSS of this process over the check."""
    if kind == "ours":
        import anyio

        from torrent_engine.config import Config
        from torrent_engine.engine.runtime import run
        from torrent_engine.formats.metainfo import Torrent
        from torrent_engine.session import Session

        torrent = Torrent.load(torrent_file)
        size = torrent.payload_size

        async def main() -> float:
            cfg = Config(listen_host="127.0.0.1", tracker_enabled=False, dht_enabled=False,
                         port_mapping=False, lsd_enabled=False, transport=TRANSPORT)
            start = time.monotonic()
            async with Session(torrent, save_path, config=cfg) as session:
                with anyio.fail_after(1800):
                    await session.wait_ready()
                seconds = time.monotonic() - start
                if session.status().progress < 1.0:
                    raise RuntimeError(f"the check found {session.status().progress:.3f} of the payload")
                return seconds

        cpu0 = time.process_time()
        seconds = run(main)
    else:
        import libtorrent as lt

        ses = lt.session(lt_settings(lt))
        params = lt.add_torrent_params()
        params.ti = lt.torrent_info(torrent_file)
        params.save_path = save_path
        size = params.ti.total_size()
        cpu0 = time.process_time()
        start = time.monotonic()
        handle = ses.add_torrent(params)
        deadline = start + 1800
        while not handle.status().is_seeding:
            if time.monotonic() > deadline:
                raise TimeoutError("libtorrent's check did not finish")
            time.sleep(0.005)
        seconds = time.monotonic() - start
    return {"who": "torrent_engine" if kind == "ours" else "libtorrent", "what": "check",
            "seconds": seconds, "bytes": size, "cpu": time.process_time() - cpu0,
            "peak_rss_mib": peak_rss_mib()}


def run_check(kind: str, torrent_file: Path, save_path: Path) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--check-child", kind, str(torrent_file), str(save_path)],
                         check=True, capture_output=True, text=True, timeout=1900)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    result["mb_s"] = result["bytes"] / result["seconds"] / 1e6
    print(json.dumps(result), flush=True)
    return result


def child_libtorrent(torrent_file: str, dest: str, ports: list[int]) -> dict[str, Any]:
    import libtorrent as lt

    ses, handle, cpu0 = lt_download(lt, lt_settings(lt), torrent_file, dest,
                                    best_disk=os.environ.get("LT_DEFAULT_DISK") != "1")
    for port in ports:
        handle.connect_peer(("127.0.0.1", port))
    start = time.monotonic()
    deadline = start + 1800
    while not handle.status().is_seeding:
        if time.monotonic() > deadline:
            raise TimeoutError("libtorrent did not finish")
        time.sleep(0.01)
    seconds = time.monotonic() - start
    size = handle.torrent_file().total_size()
    return {"who": "libtorrent", "seconds": seconds, "bytes": size, "cpu": time.process_time() - cpu0,
            "peak_rss_mib": peak_rss_mib()}


def run_child(kind: str, torrent_file: Path, dest: Path, ports: list[int], mode: str = "",
              transport: str = "", hog: bool = False) -> dict[str, Any]:
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    env = dict(os.environ, E2E_DISK_WRITE_MODE=mode, E2E_TRANSPORT=transport)
    # the hog spins for as long as the download runs, and no longer (killed on every path)
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if hog else None
    try:
        out = subprocess.run([sys.executable, __file__, "--child", kind, str(torrent_file), str(dest),
                              ",".join(map(str, ports))],
                             check=True, capture_output=True, text=True, env=env, timeout=1900)
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    result["mb_s"] = result["bytes"] / result["seconds"] / 1e6
    print(json.dumps(result), flush=True)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--piece-kib", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=3, help="alternate ours/libtorrent this many times")
    ap.add_argument("--rc4", action="store_true", help="MSE with RC4 forced on both ends")
    ap.add_argument("--default-encryption", action="store_true",
                    help="every end at its default policy (ours prefer, libtorrent enabled); with "
                         "--upload, our seeder also runs choosing RC4 when offered both (the old way)")
    ap.add_argument("--profile", type=Path, default=None, help="write a cProfile of our downloader here")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--upload", action="store_true", help="measure our seeder instead of our leecher")
    ap.add_argument("--disk-write-modes", default="",
                    help="our downloader's Config.disk_write_mode, comma-separated: each round runs "
                         "ours once per mode, alternating (e.g. direct,cached); default: Config's")
    ap.add_argument("--seeders", type=int, default=1, help="libtorrent seeders, each its own session")
    ap.add_argument("--hog", action="store_true", help="a process spinning on a core during each download")
    ap.add_argument("--transports", default="",
                    help="our downloader's transports, comma-separated (tcp, utp): each round runs ours "
                         "once per transport; default: tcp")
    ap.add_argument("--check", action="store_true", help="measure a check of the payload instead")
    ap.add_argument("--check-child", nargs=3, metavar=("KIND", "TORRENT", "DIR"), help=argparse.SUPPRESS)
    ap.add_argument("--child", nargs=4, metavar=("KIND", "TORRENT", "DEST", "PORT"), help=argparse.SUPPRESS)
    ap.add_argument("--seed-child", nargs=3, metavar=("KIND", "TORRENT", "DIR"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rc4:
        os.environ["E2E_RC4"] = "1"  # the children inherit it
    if args.default_encryption:
        os.environ["E2E_DEFAULT_ENC"] = "1"
    if args.profile:
        os.environ["E2E_PROFILE"] = str(args.profile.resolve())
    if args.seed_child:
        kind, torrent_file, save_path = args.seed_child
        (child_ours_seed if kind == "ours" else child_lt_seed)(torrent_file, save_path)
        return 0
    if args.check_child:
        print(json.dumps(child_check(*args.check_child)))
        return 0
    if args.child:
        kind, torrent_file, dest, ports = args.child
        fn = child_ours if kind == "ours" else child_libtorrent
        print(json.dumps(fn(torrent_file, dest, [int(p) for p in ports.split(",")])))
        return 0

    import libtorrent as lt

    work, _torrent = payload_torrent(args.workdir, "te-bench-", args.size_mib, args.piece_kib)
    seed_dir, torrent_file = work / "seed", work / "payload.torrent"
    if args.check:
        checks: dict[str, list[dict[str, Any]]] = {"ours": [], "libtorrent": []}
        try:
            for _ in range(args.rounds):
                for kind in checks:
                    checks[kind].append(run_check(kind, torrent_file, seed_dir))
        finally:
            if args.workdir is None:
                shutil.rmtree(work, ignore_errors=True)
        summarize(args, checks["ours"], checks["libtorrent"], "checking")
        return 0
    if args.upload:
        kinds = ("ours", "ours-rc4", "libtorrent") if args.default_encryption else ("ours", "libtorrent")
        rounds: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
        try:
            for _ in range(args.rounds):
                for kind in kinds:
                    rounds[kind].append(upload_round(kind, torrent_file, seed_dir, work / "lt-leech"))
        finally:
            if args.workdir is None:
                shutil.rmtree(work, ignore_errors=True)
        summarize(args, rounds["ours"], rounds["libtorrent"], "seeding")
        if args.default_encryption:
            summarize(args, rounds["ours-rc4"], rounds["libtorrent"], "seeding, RC4 chosen")
        return 0

    transports = [t.strip() for t in args.transports.split(",") if t.strip()] or [""]
    seeder_settings = lt_settings(lt)
    if any(t in ("utp", "any") for t in transports):
        seeder_settings["enable_incoming_utp"] = True  # (libtorrent's downloader still dials TCP)
    sessions, handles = [], []
    for _ in range(args.seeders):
        ses = lt.session(seeder_settings)
        params = lt.add_torrent_params()
        params.ti = lt.torrent_info(str(torrent_file))
        params.save_path = str(seed_dir)
        sessions.append(ses)
        handles.append(ses.add_torrent(params))
    for handle in handles:
        while not handle.status().is_seeding:
            time.sleep(0.05)
    ports = [ses.listen_port() for ses in sessions]
    modes = [m.strip() for m in args.disk_write_modes.split(",") if m.strip()] or [""]
    variants = [(m, t) for m in modes for t in transports]
    ours: dict[tuple[str, str], list[dict[str, Any]]] = {v: [] for v in variants}
    theirs: list[dict[str, Any]] = []
    try:
        for _ in range(args.rounds):
            for mode, transport in variants:
                ours[(mode, transport)].append(run_child("ours", torrent_file, work / "ours", ports, mode,
                                                         transport, args.hog))
            theirs.append(run_child("libtorrent", torrent_file, work / "lt", ports, hog=args.hog))
    finally:
        del handles, sessions
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    for mode, transport in variants:
        label = ", ".join(x for x in (mode, transport) if x)
        summarize(args, ours[(mode, transport)], theirs, f"downloading{f' ({label})' if label else ''}")
    if len(transports) > 1:
        base = statistics.median(r["mb_s"] for r in ours[(modes[0], transports[0])])
        for transport in transports[1:]:
            rate = statistics.median(r["mb_s"] for r in ours[(modes[0], transport)])
            print(f"ours over {transport} / over {transports[0] or 'tcp'}, median rate: {rate / base:.2f}")
    return 0


def summarize(args: argparse.Namespace, ours: list[dict[str, Any]], theirs: list[dict[str, Any]],
              what: str) -> None:
    """Best and median rate of both, their ratios, CPU s/GiB, peak RSS, loop-thread µs/block."""
    crypto = "RC4" if args.rc4 else "default encryption" if args.default_encryption else "plaintext"
    extra = "".join([f", {args.seeders} seeders" if getattr(args, "seeders", 1) > 1 else "",
                     ", a CPU hog beside" if getattr(args, "hog", False) else ""])
    print(f"{what}: size {args.size_mib} MiB, pieces {args.piece_kib} KiB, {crypto}{extra}, "
          f"rounds {args.rounds}, load average {os.getloadavg()[0]:.2f}")
    for label, rs in (("torrent_engine", ours), ("libtorrent    ", theirs)):
        rates = [r["mb_s"] for r in rs]
        cpu = [r["cpu"] / (r["bytes"] / GIB) for r in rs]
        rss = max(r["peak_rss_mib"] for r in rs)
        line = (f"{label} {what}: best {max(rates):.1f} MB/s, median {statistics.median(rates):.1f} MB/s; "
                f"CPU {min(cpu):.2f}-{max(cpu):.2f} s/GiB (median {statistics.median(cpu):.2f}); "
                f"peak RSS {rss:.0f} MiB")
        loop = [r["loop_cpu"] / (r["bytes"] / BLOCK) * 1e6 for r in rs if r.get("loop_cpu")]
        if loop:
            line += f"; loop thread {min(loop):.1f}-{max(loop):.1f} us/block"
        print(line)
    best = max(r["mb_s"] for r in ours) / max(r["mb_s"] for r in theirs)
    median = statistics.median(r["mb_s"] for r in ours) / statistics.median(r["mb_s"] for r in theirs)
    print(f"ratio ours/libtorrent: best {best:.2f}, median {median:.2f}")

if __name__ == "__main__":
    sys.exit(main())
