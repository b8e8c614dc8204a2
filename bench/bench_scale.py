"""Scale benchmarks: many peers, many idle peers, many torrents. Loopback only; DHT, LSD, port
mapping and trackers off everywhere; every wait is bounded.

    python bench/bench_scale.py many-peers [--size-mib 256] [--seeders 20] [--rounds 3] [--uncapped]
    python bench/bench_scale.py idle-peers [--peers 200] [--seconds 60]
    python bench/bench_scale.py many-torrents [--torrents 1000] [--seconds 60]

``many-peers``: our download (its own process) from one uncapped libtorrent seeder (its own
process), which sets the link rate R, alternated with our download from ``--seeders`` libtorrent
seeders (one libtorrent session each, own listen port, in one process) each capped at R/N:
CPU s per GiB of both and their ratio (target ≤ 1.3).
``idle-peers``: one of our sessions seeding a complete torrent, with ``--peers`` fake peers of
this driver connected (handshake, then keep-alives only): the seeder process's CPU over
``--seconds`` as % of one core (target < 2 %).
``many-torrents``: ``--torrents`` small torrents with their data on disk are added to a
TorrentManager with a state directory once (which writes their resume data); then a fresh
TorrentManager in a fresh process adds each saved torrent again (as the job service's start
does from its records): seconds until every torrent
seeds (target ≤ 5 s), CPU over ``--seconds`` idle (target < 2 %), peak RSS (VmHWM, ≤ 300 MiB).
Process CPU is ``time.process_time`` (user + system of the whole process, all threads).
"""

from __future__ import annotations

import argparse
import asyncio
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

from bench.e2e_download import lt_settings, make_payload, peak_rss_mib  # noqa: E402

GIB = 1024 ** 3


def our_config(**extra: Any) -> Any:
    from torrent_engine.config import Config

    # TCP only, as the libtorrent sessions here (lt_settings): dialed over uTP first ("any"),
    # they do not answer, and each download waited utp_connect_timeout (3 s) before starting
    return Config(listen_host="127.0.0.1", encryption="disable", tracker_enabled=False,
                  dht_enabled=False, port_mapping=False, lsd_enabled=False, transport="tcp", **extra)


def load_avg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# -- many peers --------------------------------------------------------------------------------

def child_download(torrent_file: str, dest: str, ports: list[int]) -> dict[str, Any]:
    """Our download from the given loopback ports; CPU and wall time of the whole process."""
    import anyio

    from torrent_engine.engine.runtime import run
    from torrent_engine.formats.metainfo import Torrent
    from torrent_engine.session import Session

    torrent = Torrent.load(torrent_file)

    async def main() -> tuple[float, int]:
        peers = [("127.0.0.1", p) for p in ports]
        async with Session(torrent, dest, config=our_config(), peers=peers) as session:
            await session.wait_ready()
            start = time.monotonic()
            most = 0

            async def count() -> None:
                nonlocal most
                while True:
                    most = max(most, session.status().peers)
                    await anyio.sleep(0.5)

            async with anyio.create_task_group() as tg:
                tg.start_soon(count)
                with anyio.fail_after(900):
                    await session.wait_completed()
                tg.cancel_scope.cancel()
            return time.monotonic() - start, most

    cpu0 = time.process_time()
    seconds, most = run(main)
    return {"peers_given": len(ports), "peers_seen": most, "seconds": seconds,
            "bytes": torrent.payload_size, "cpu": time.process_time() - cpu0,
            "peak_rss_mib": peak_rss_mib()}


def child_lt_seeders(torrent_file: str, save_path: str, count: int, limit: int) -> None:
    """``count`` libtorrent sessions seeding, each with its own port and, if ``limit``, an upload
    cap of ``limit`` B/s on its torrent (a torrent's limit applies to loopback peers too, where
    the session-wide one would not: libtorrent puts local peers in a class without limits)."""
    import libtorrent as lt

    sessions, handles = [], []
    for _ in range(count):
        ses = lt.session(lt_settings(lt))
        params = lt.add_torrent_params()
        params.ti = lt.torrent_info(torrent_file)
        params.save_path = save_path
        handle = ses.add_torrent(params)
        if limit:
            handle.set_upload_limit(limit)
        sessions.append(ses)
        handles.append(handle)
    deadline = time.monotonic() + 600
    while not all(h.status().is_seeding for h in handles):
        if time.monotonic() > deadline:
            raise TimeoutError("libtorrent seeders did not start seeding")
        time.sleep(0.05)
    print(json.dumps({"ports": [s.listen_port() for s in sessions]}), flush=True)
    sys.stdin.read()


def run_download(torrent_file: Path, dest: Path, ports: list[int]) -> dict[str, Any]:
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    out = subprocess.run([sys.executable, __file__, "child-download", str(torrent_file), str(dest),
                          json.dumps(ports)], check=True, capture_output=True, text=True, timeout=1200)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    result["mb_s"] = result["bytes"] / result["seconds"] / 1e6
    result["cpu_s_per_gib"] = result["cpu"] / (result["bytes"] / GIB)
    result["load"] = load_avg()
    print(json.dumps(result), flush=True)
    return result


class Seeders:
    """A child process of libtorrent seeders, until closed."""

    def __init__(self, torrent_file: Path, save_path: Path, count: int, limit: int) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__, "child-lt-seeders", str(torrent_file),
                                      str(save_path), str(count), str(limit)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.ports: list[int] = json.loads(self.proc.stdout.readline())["ports"]

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def many_peers(work: Path, size_mib: int, piece_kib: int, count: int, rounds: int, *,
               capped: bool = True) -> None:
    from torrent_engine.storage.create import create_torrent

    seed_dir = work / "seed"
    seed_dir.mkdir()
    payload = seed_dir / "payload.bin"
    make_payload(payload, size_mib * 1024 * 1024)
    torrent_file = work / "payload.torrent"
    torrent_file.write_bytes(create_torrent(payload, piece_length=piece_kib * 1024, version="v1").to_bytes())
    one: list[dict[str, Any]] = []
    many: list[dict[str, Any]] = []
    for _ in range(rounds):
        single = Seeders(torrent_file, seed_dir, 1, 0)
        try:
            r = run_download(torrent_file, work / "dl", single.ports)
        finally:
            single.close()
        one.append(r)
        link = int(r["bytes"] / r["seconds"])  # the link rate of this round: one uncapped seeder
        swarm = Seeders(torrent_file, seed_dir, count, link // count if capped else 0)
        try:
            r = run_download(torrent_file, work / "dl", swarm.ports)
        finally:
            swarm.close()
        r["cap_per_seeder_mb_s"] = link / count / 1e6 if capped else None
        many.append(r)
    shutil.rmtree(work / "dl", ignore_errors=True)
    one_cpu = sorted(r["cpu_s_per_gib"] for r in one)
    many_cpu = sorted(r["cpu_s_per_gib"] for r in many)
    med_one, med_many = one_cpu[len(one_cpu) // 2], many_cpu[len(many_cpu) // 2]
    print(json.dumps({"summary": "many-peers", "size_mib": size_mib, "piece_kib": piece_kib,
                      "seeders": count, "capped": capped, "rounds": rounds,
                      "one_peer_cpu_s_per_gib": {"best": one_cpu[0], "median": med_one},
                      "many_peers_cpu_s_per_gib": {"best": many_cpu[0], "median": med_many},
                      "ratio_median": med_many / med_one, "ratio_best": many_cpu[0] / one_cpu[0],
                      "one_peer_mb_s": [round(r["mb_s"], 1) for r in one],
                      "many_peers_mb_s": [round(r["mb_s"], 1) for r in many],
                      "load": load_avg()}), flush=True)


# -- idle peers --------------------------------------------------------------------------------

def child_idle_seed(torrent_file: str, save_path: str, want: int, seconds: float) -> None:
    """Seed; print the port; once ``want`` peers are connected, CPU over ``seconds``."""
    import anyio

    from torrent_engine.engine.runtime import run
    from torrent_engine.formats.metainfo import Torrent
    from torrent_engine.session import Session

    torrent = Torrent.load(torrent_file)

    async def main() -> None:
        cfg = our_config(max_peers_per_torrent=want + 20)
        async with Session(torrent, save_path, config=cfg) as session:
            await session.wait_ready()
            print(json.dumps({"port": session.listen_port}), flush=True)
            with anyio.fail_after(120):
                while session.status().peers < want:
                    await anyio.sleep(0.1)
            await anyio.sleep(2)  # the last handshakes' follow-ups
            cpu0, t0 = time.process_time(), time.monotonic()
            await anyio.sleep(seconds)
            cpu, wall = time.process_time() - cpu0, time.monotonic() - t0
            print(json.dumps({"peers_at_end": session.status().peers, "cpu": cpu, "wall": wall,
                              "cpu_percent": cpu / wall * 100, "state": session.status().state,
                              "peak_rss_mib": peak_rss_mib(), "load": load_avg()}), flush=True)

    run(main)


async def fake_peers(port: int, info_hash: bytes, count: int, done: asyncio.Event) -> int:
    """``count`` connections that handshake (no extension bits), have nothing and only send a
    keep-alive every 30 s, reading and dropping whatever the seeder sends; until ``done``."""
    alive = 0

    async def one(i: int) -> None:
        nonlocal alive
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        peer_id = b"-FK0001-" + i.to_bytes(12, "big")
        writer.write(b"\x13BitTorrent protocol" + bytes(8) + info_hash + peer_id)
        await writer.drain()
        await reader.readexactly(68)
        alive += 1

        async def drain_incoming() -> None:
            while await reader.read(65536):
                pass

        reading = asyncio.create_task(drain_incoming())
        try:
            while not done.is_set():
                try:
                    await asyncio.wait_for(done.wait(), 30)
                except TimeoutError:
                    writer.write(bytes(4))  # keep-alive
                    await writer.drain()
        finally:
            reading.cancel()
            writer.close()

    tasks = []
    for i in range(count):
        tasks.append(asyncio.create_task(one(i)))
        if i % 40 == 39:  # within the seeder's max_pending_handshakes
            await asyncio.sleep(0.2)
    while alive < count and not done.is_set():
        await asyncio.sleep(0.1)
    connected = alive
    await asyncio.gather(*tasks, return_exceptions=True)
    return connected


def idle_peers(work: Path, count: int, seconds: float) -> None:
    from torrent_engine.storage.create import create_torrent

    payload = work / "idle.bin"
    make_payload(payload, 16 * 1024 * 1024)
    torrent = create_torrent(payload, piece_length=256 * 1024, version="v1")
    torrent_file = work / "idle.torrent"
    torrent_file.write_bytes(torrent.to_bytes())
    proc = subprocess.Popen([sys.executable, __file__, "child-idle-seed", str(torrent_file), str(work),
                             str(count), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    port = json.loads(proc.stdout.readline())["port"]

    async def drive() -> dict[str, Any]:
        done = asyncio.Event()
        peers = asyncio.create_task(fake_peers(port, torrent.info_hash, count, done))
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), seconds + 180)  # type: ignore[union-attr]
        done.set()
        connected = await peers
        result: dict[str, Any] = json.loads(line)
        result["fake_peers_connected"] = connected
        return result

    try:
        result = asyncio.run(drive())
    finally:
        proc.wait(timeout=60)
    print(json.dumps({"summary": "idle-peers", "peers": count, "seconds": seconds, **result}), flush=True)


# -- many torrents -----------------------------------------------------------------------------

def make_torrents(work: Path, count: int) -> Path:
    """``count`` small torrents (64 KiB, 16 KiB pieces) with their data in ``work/data``; the
    .torrent files in ``work/torrents``."""
    from torrent_engine.storage.create import create_torrent

    data, torrents = work / "data", work / "torrents"
    data.mkdir()
    torrents.mkdir()
    for i in range(count):
        path = data / f"t{i:04d}.bin"
        path.write_bytes(os.urandom(64 * 1024))
        t = create_torrent(path, piece_length=16 * 1024, version="v1")
        (torrents / f"t{i:04d}.torrent").write_bytes(t.to_bytes())
    return data


def child_manager_add(state: str, torrents: str, data: str) -> None:
    """Add every torrent to a TorrentManager over ``state``, wait until all seed, stop (which
    writes their resume data)."""
    import anyio

    from torrent_engine.engine.manager import TorrentManager
    from torrent_engine.engine.runtime import run

    async def main() -> None:
        async with TorrentManager(our_config(state_dir=state)) as manager:
            for f in sorted(Path(torrents).glob("*.torrent")):
                await manager.add(f, data)
            with anyio.fail_after(600):
                while not all(s.status().state == "seeding" for s in manager.sessions):
                    await anyio.sleep(0.2)
            print(json.dumps({"added": len(manager.sessions)}), flush=True)

    run(main)


def child_manager_idle(state: str, data: str, count: int, seconds: float) -> None:
    """A fresh TorrentManager over ``state``, each saved torrent added again (its metainfo read
    for all in one worker-thread hop, as the job service's start does from its records; the
    manager reloads none of its own): start-up until all ``count`` seed, then idle CPU."""
    import anyio

    from torrent_engine.engine.manager import TorrentManager
    from torrent_engine.engine.runtime import run

    async def main() -> None:
        t0 = time.monotonic()
        cpu_start = time.process_time()
        async with TorrentManager(our_config(state_dir=state)) as manager:
            def read_saved() -> list[tuple[bytes, Any]]:
                out = []
                for ih in manager.saved():
                    torrent = manager.saved_metainfo(ih)
                    assert torrent is not None
                    out.append((ih, torrent))
                return out

            for ih, torrent in await anyio.to_thread.run_sync(read_saved):
                await manager.add_saved(torrent, data, info_hash=ih)
            with anyio.fail_after(600):
                while not (len(manager.sessions) == count
                           and all(s.status().state == "seeding" for s in manager.sessions)):
                    await anyio.sleep(0.05)
            startup = time.monotonic() - t0
            startup_cpu = time.process_time() - cpu_start
            await anyio.sleep(3)  # let start-up settle
            cpu0, w0 = time.process_time(), time.monotonic()
            await anyio.sleep(seconds)
            cpu, wall = time.process_time() - cpu0, time.monotonic() - w0
            seeding = sum(1 for s in manager.sessions if s.status().state == "seeding")
            print(json.dumps({"torrents": len(manager.sessions), "seeding": seeding,
                              "startup_s": startup, "startup_cpu_s": startup_cpu,
                              "idle_cpu": cpu, "idle_wall": wall, "idle_cpu_percent": cpu / wall * 100,
                              "peak_rss_mib": peak_rss_mib(), "load": load_avg()}), flush=True)

    run(main)


def many_torrents(work: Path, count: int, seconds: float) -> None:
    data = make_torrents(work, count)
    state = work / "state"
    subprocess.run([sys.executable, __file__, "child-manager-add", str(state), str(work / "torrents"),
                    str(data)], check=True, timeout=900)
    out = subprocess.run([sys.executable, __file__, "child-manager-idle", str(state), str(data), str(count),
                          str(seconds)], check=True, capture_output=True, text=True, timeout=900)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(json.dumps({"summary": "many-torrents", **result}), flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("many-peers")
    p.add_argument("--size-mib", type=int, default=256)
    p.add_argument("--piece-kib", type=int, default=1024)
    p.add_argument("--seeders", type=int, default=20)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--uncapped", action="store_true",
                   help="(diagnosis) the many seeders uncapped: both downloads last about as long")
    p = sub.add_parser("idle-peers")
    p.add_argument("--peers", type=int, default=200)
    p.add_argument("--seconds", type=float, default=60.0)
    p = sub.add_parser("many-torrents")
    p.add_argument("--torrents", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=60.0)
    for name in ("many-peers", "idle-peers", "many-torrents"):
        sub.choices[name].add_argument("--workdir", type=Path, default=None)
    p = sub.add_parser("child-download")
    p.add_argument("args", nargs=3)
    p = sub.add_parser("child-lt-seeders")
    p.add_argument("args", nargs=4)
    p = sub.add_parser("child-idle-seed")
    p.add_argument("args", nargs=4)
    p = sub.add_parser("child-manager-add")
    p.add_argument("args", nargs=3)
    p = sub.add_parser("child-manager-idle")
    p.add_argument("args", nargs=4)
    args = ap.parse_args()
    if args.cmd == "child-download":
        a = args.args
        print(json.dumps(child_download(a[0], a[1], json.loads(a[2]))), flush=True)
        return 0
    if args.cmd == "child-lt-seeders":
        a = args.args
        child_lt_seeders(a[0], a[1], int(a[2]), int(a[3]))
        return 0
    if args.cmd == "child-idle-seed":
        a = args.args
        child_idle_seed(a[0], a[1], int(a[2]), float(a[3]))
        return 0
    if args.cmd == "child-manager-add":
        child_manager_add(*args.args)
        return 0
    if args.cmd == "child-manager-idle":
        a = args.args
        child_manager_idle(a[0], a[1], int(a[2]), float(a[3]))
        return 0
    work = Path(tempfile.mkdtemp(prefix="bench-scale-", dir=args.workdir))
    print(json.dumps({"case": args.cmd, "cpus": os.cpu_count(), "load_at_start": load_avg()}), flush=True)
    try:
        if args.cmd == "many-peers":
            many_peers(work, args.size_mib, args.piece_kib, args.seeders, args.rounds,
                       capped=not args.uncapped)
        elif args.cmd == "idle-peers":
            idle_peers(work, args.peers, args.seconds)
        else:
            many_torrents(work, args.torrents, args.seconds)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
