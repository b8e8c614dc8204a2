"""WAN swarm benchmark: downloads through emulated links (tests/linkemu), ours against libtorrent in
the same run.

    python bench/wan_swarm.py [--seeders 20] [--size-mib 512] [--rounds 2] [--transport any|tcp]
    python bench/wan_swarm.py --preset issue [--transport tcp]   # 8 lossless links, 0.5-4 MB/s, 10-400 ms RTT
    python bench/wan_swarm.py --flash [--leechers 30] [--size-mib 32]            # a flash crowd

Many seeders: one downloader fetches a torrent from N seeders (libtorrent and ours alternating,
each group in one process), each behind its own link (``seeder_links``: 0.5-5 MB/s and 10-300 ms
RTT spread evenly, a queue of 200 ms, 2 ms jitter, a 1 500-byte path MTU for datagrams; every
fourth link lossy at 1-2 %, its seeder on uTP only, as a TCP relay cannot lose bytes). The other
links carry both transports (``--transport any``: both downloaders dial uTP first, so their
traffic is uTP) or TCP only (``tcp``: their seeders too). ``--rate-min/--rate-max`` and
``--rtt-min/--rtt-max`` move the spread; ``--preset`` names a configuration (``PRESETS``). Our
downloader and libtorrent's alternate over rounds, each in its own process at its default
transport choice; the relays start afresh for each download in a process of their own (``python -m
tests.linkemu``). Reported per download: time to complete, rate against the ceiling (the sum of
the seeders' link rates, and of the lossless ones), the rate curve per second (what the seeders'
links carried), wasted bytes (what crossed the links beyond the payload: protocol overhead, uTP
headers, redundant and failed blocks; the downloader's own count of redundant bytes beside it),
the share of the first 10 s's bytes from the fastest quarter of the links (against that quarter's
share of the ceiling), and what each group of links carried of its capacity.

Flash crowd: one seeder (``--flash-seeder``) and L leechers (half ours, half libtorrent; one link
drawn per pair, so each of ours has a libtorrent twin on the same link), every one behind its own
link, TCP; every leecher is told every link. A connection crosses the link of the peer it was
dialled to (so the seeder's uploads are always capped by its link). Reported: everyone's
completion time.

The links listen on 127.0.0.2 and connect to the peers from 127.0.0.3, where nobody listens: an
address learnt by PEX from a relayed connection is dead, so no two peers talk past the links.
``WAN_DETAIL=1`` adds per-link curves (the first 15 s, the last 5) and counters to each JSON line;
``WAN_LOG=PREFIX`` writes our downloader's debug log to PREFIX.ours and libtorrent seeders' peer
alerts to stderr. ``WAN_OUR_CONFIG='{"name": value}'`` sets Config fields of our downloader.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.e2e_download import (  # noqa: E402
    lt_download,
    lt_settings,
    our_encryption,
    payload_torrent,
    peak_rss_mib,
)

MB = 1e6
RELAY_SOURCE = "127.0.0.3"  # the relays' side towards the peers: nobody listens there
RELAY_HOST = "127.0.0.2"  # where the links listen
QUEUE_SECONDS = 0.2
JITTER = 0.002
MTU = 1500
FIRST_SECONDS = 10.0


# -- links --------------------------------------------------------------------------------------

def seeder_links(n: int, seed: int, lossy_every: int, transport: str = "any",
                 rates: tuple[float, float] = (0.5e6, 5e6),
                 rtts: tuple[float, float] = (0.010, 0.300)) -> list[dict[str, Any]]:
    """N links spread evenly over ``rates`` (log scale; 0.5-5 MB/s) and ``rtts`` (10-300 ms),
    the two shuffled against each other; every ``lossy_every``-th link (0: none) lossy at 1-2 %
    and its seeder reachable over uTP only (a TCP relay cannot lose bytes); the others carry
    ``transport`` ("any": both, "tcp": TCP only, their seeders too)."""
    rng = random.Random(seed)
    (rate_lo, rate_hi), (rtt_lo, rtt_hi) = rates, rtts
    link_rates = [rate_lo * (rate_hi / rate_lo) ** (i / max(1, n - 1)) for i in range(n)]
    link_rtts = [rtt_lo + (rtt_hi - rtt_lo) * i / max(1, n - 1) for i in range(n)]
    rng.shuffle(link_rtts)
    order = list(range(n))
    rng.shuffle(order)
    links = []
    for k, i in enumerate(order):
        lossy = bool(lossy_every) and k % lossy_every == lossy_every - 1
        links.append({"rate": link_rates[i], "rtt": link_rtts[i],
                      "loss": 0.01 + 0.01 * rng.random() if lossy else 0.0,
                      "transport": "utp" if lossy else transport})
    return links


def relay_config(links: list[dict[str, Any]], ports: list[int], seed: int) -> dict[str, Any]:
    items = []
    for i, (link, port) in enumerate(zip(links, ports, strict=True)):
        spec = {"delay": link["rtt"] / 2, "jitter": JITTER, "rate": link["rate"], "loss": link["loss"],
                "queue_bytes": max(64 * 1024, int(link["rate"] * QUEUE_SECONDS)), "mtu": MTU}
        items.append({"name": str(i), "target": ["127.0.0.1", port], "host": RELAY_HOST,
                      "source_host": RELAY_SOURCE, "tcp": link["transport"] != "utp",
                      "udp": link["transport"] != "tcp", "up": spec, "down": spec, "seed": seed + 2 * i})
    return {"links": items, "sample": 0.5}


class Relays:
    """The links in their own process, for one round."""

    def __init__(self, config: dict[str, Any], work: Path) -> None:
        path = work / "links.json"
        path.write_text(json.dumps(config))
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.linkemu", str(path)], cwd=ROOT,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.ports: list[int] = json.loads(self.proc.stdout.readline())["ports"]
        self.cpu0 = proc_cpu(self.proc.pid)

    def stop(self) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        cpu = proc_cpu(self.proc.pid) - self.cpu0
        self.proc.stdin.close()
        out: dict[str, Any] = json.loads(self.proc.stdout.readline())
        self.proc.wait(timeout=60)
        out["cpu"] = cpu
        return out


def proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- peers (children) ---------------------------------------------------------------------------

def internet_paths() -> None:
    """Our uTP offers 64 KiB datagrams to a loopback address (utp/socket.py); the links stand for
    Internet paths (1 500-byte MTU, datagrams above it dropped), so in this process it offers
    the standard size to every peer, as it does to any non-loopback one. Its connections then
    look for the path MTU from there up to an IPv4 peer's ceiling (``UtpSocket.mtu_ceiling``,
    1 472 bytes, unchanged here) as they would on the Internet."""
    from torrent_engine.net.utp import socket as utp_socket

    utp_socket.UtpSocket.max_datagram = lambda self, host: utp_socket.PACKET_SIZE  # type: ignore[method-assign]


def our_child_torrent(torrent_file: str) -> Any:
    """What each child process of ours does first: the torrent, datagrams of the internet's size
    (``internet_paths``), and with ``WAN_LOG`` set a debug log on stderr."""
    from torrent_engine.formats.metainfo import Torrent

    internet_paths()
    if os.environ.get("WAN_LOG"):
        import logging

        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr,
                            format="%(relativeCreated)7.0f %(name)s %(message)s")
    return Torrent.load(torrent_file)


def our_config(transport: str, **extra: Any) -> Any:
    from torrent_engine.config import Config

    return Config(listen_host="127.0.0.1", **our_encryption(), tracker_enabled=False, dht_enabled=False,
                  port_mapping=False, lsd_enabled=False, transport=transport, **extra)  # type: ignore[arg-type]


def lt_peer_settings(lt: Any, transport: str) -> dict[str, Any]:
    """libtorrent as the e2e benchmark sets it up, at the given transport ("any": its defaults)."""
    settings = lt_settings(lt)
    settings.update({"enable_outgoing_utp": transport != "tcp", "enable_incoming_utp": transport != "tcp",
                     "enable_outgoing_tcp": transport != "utp", "enable_incoming_tcp": transport != "utp"})
    return settings


def child_seeders(kind: str, torrent_file: str, save_path: str, transports: list[str]) -> None:
    """Seed with one session per transport until stdin closes; print the ports, then CPU seconds."""
    if kind == "libtorrent":
        import libtorrent as lt

        sessions, handles = [], []
        for transport in transports:
            settings = lt_peer_settings(lt, transport)
            if os.environ.get("WAN_LOG"):
                category = lt.alert.category_t
                settings["alert_mask"] = category.peer_notification | category.error_notification
            ses = lt.session(settings)
            params = lt.add_torrent_params()
            params.ti = lt.torrent_info(torrent_file)
            params.save_path = save_path
            handles.append(ses.add_torrent(params))
            sessions.append(ses)
        while not all(h.status().is_seeding for h in handles):
            time.sleep(0.05)
        print(json.dumps({"ports": [s.listen_port() for s in sessions]}), flush=True)
        cpu0 = time.process_time()
        if os.environ.get("WAN_LOG"):
            import threading

            def log_alerts() -> None:  # diagnosis only: why libtorrent closed a connection
                t0 = time.monotonic()
                while True:
                    for i, ses in enumerate(sessions):
                        for a in ses.pop_alerts():
                            print(f"{time.monotonic() - t0:7.2f} lt seeder {i}: {a.message()}",
                                  file=sys.stderr)
                    time.sleep(0.1)

            threading.Thread(target=log_alerts, daemon=True).start()
        sys.stdin.read()
        print(json.dumps({"cpu": time.process_time() - cpu0, "peak_rss_mib": peak_rss_mib()}), flush=True)
        return

    import anyio

    from torrent_engine.engine.runtime import run
    from torrent_engine.session import Session

    torrent = our_child_torrent(torrent_file)

    async def main() -> None:
        async with contextlib.AsyncExitStack() as stack:
            sessions = [await stack.enter_async_context(Session(torrent, save_path, config=our_config(t)))
                        for t in transports]
            for s in sessions:
                await s.wait_ready()
            print(json.dumps({"ports": [s.listen_port for s in sessions]}), flush=True)
            cpu0 = time.process_time()
            await anyio.to_thread.run_sync(sys.stdin.read)
            print(json.dumps({"cpu": time.process_time() - cpu0, "peak_rss_mib": peak_rss_mib()}),
                  flush=True)

    run(main)


def child_download(kind: str, torrent_file: str, dest: str, peers: list[tuple[str, int]],
                   limit: float, transport: str = "any") -> dict[str, Any]:
    """Download from ``peers`` over ``transport`` ("any": the default choice, uTP dialled first);
    the progress curve each second."""
    curve: list[tuple[float, int]] = []
    if kind == "libtorrent":
        import libtorrent as lt

        ses, handle, cpu0 = lt_download(lt, lt_peer_settings(lt, transport), torrent_file, dest)
        start = time.monotonic()
        for peer in peers:
            handle.connect_peer(peer)
        next_sample = start
        while True:
            status = handle.status()
            now = time.monotonic()
            if now >= next_sample:
                curve.append((now - start, status.total_wanted_done))
                next_sample += 1.0
            if status.is_seeding:
                break
            if now - start > limit:
                raise TimeoutError(f"libtorrent did not finish in {limit} s")
            time.sleep(0.01)
        seconds = time.monotonic() - start
        status = handle.status()
        return {"who": "libtorrent", "start": start, "seconds": seconds,
                "bytes": handle.torrent_file().total_size(), "cpu": time.process_time() - cpu0,
                "curve": curve, "redundant": status.total_redundant_bytes,
                "failed": status.total_failed_bytes, "peak_rss_mib": peak_rss_mib()}

    import anyio

    from torrent_engine.engine.runtime import run
    from torrent_engine.session import Session

    torrent = our_child_torrent(torrent_file)

    async def main() -> dict[str, Any]:
        config = our_config(transport, seed=False, **json.loads(os.environ.get("WAN_OUR_CONFIG") or "{}"))
        async with Session(torrent, dest, config=config, peers=peers) as session:
            await session.wait_ready()
            start = time.monotonic()
            cpu0 = time.process_time()

            async def sample() -> None:
                while True:
                    curve.append((time.monotonic() - start, session.status().have_bytes))
                    await anyio.sleep(1.0)

            async with anyio.create_task_group() as tg:
                tg.start_soon(sample)
                with anyio.fail_after(limit):
                    await session.wait_completed()
                tg.cancel_scope.cancel()
            seconds = time.monotonic() - start
            status = session.status()
            return {"who": "torrent_engine", "start": start, "seconds": seconds,
                    "bytes": torrent.payload_size,
                    "cpu": time.process_time() - cpu0, "curve": curve,
                    "redundant": max(0, status.downloaded - torrent.payload_size),
                    "failed": session.hash_failures, "peak_rss_mib": peak_rss_mib()}

    return run(main)


def start_seeders(kind: str, torrent_file: Path, seed_dir: Path,
                  transports: list[str]) -> tuple[Any, list[int]]:
    proc = subprocess.Popen([sys.executable, __file__, "--seeders-child", kind, str(torrent_file),
                             str(seed_dir), ",".join(transports)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, json.loads(proc.stdout.readline())["ports"]


def stop_child(proc: Any) -> dict[str, Any]:
    proc.stdin.close()
    line = proc.stdout.readline()
    proc.wait(timeout=60)
    return json.loads(line) if line else {}


def run_download(kind: str, torrent_file: Path, dest: Path, peers: list[tuple[str, int]],
                 limit: float, transport: str = "any") -> dict[str, Any]:
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    out = subprocess.run([sys.executable, __file__, "--download-child", kind, str(torrent_file), str(dest),
                          json.dumps(peers), str(limit), transport], capture_output=True, text=True)
    if os.environ.get("WAN_LOG"):
        Path(os.environ["WAN_LOG"] + f".{kind}").write_text(out.stderr)
    if out.returncode:
        raise RuntimeError(f"{kind} download failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# The named configurations (``--preset``): defaults in place of the options' (given options win).
PRESETS: dict[str, dict[str, Any]] = {
    # 8 lossless links, 5-200 ms one way, 0.5-4 MB/s: a ceiling of 14.1 MB/s
    "issue": {"seeders": 8, "lossy_every": 0, "rate_min": 0.5e6, "rate_max": 4e6,
              "rtt_min": 0.010, "rtt_max": 0.400},
}


# -- the many-seeders round ---------------------------------------------------------------------

def analyse(result: dict[str, Any], relay: dict[str, Any], links: list[dict[str, Any]]) -> dict[str, Any]:
    """Rates, ceiling, wasted bytes, per-second curve and the fast quarter's share of 10 s."""
    ceiling = sum(link["rate"] for link in links)
    start, seconds, size = result["start"], result["seconds"], result["bytes"]
    carried = [s["up"]["sent_bytes"] for s in relay["stats"]]
    samples = relay["samples"]

    def bytes_at(t: float) -> list[int]:
        """Each link's bytes at time ``start + t`` (from the samples, the nearest before)."""
        before = [row for row in samples if row[0] <= start + t]
        return before[-1][1] if before else [0] * len(links)

    base = bytes_at(0.0)
    curve = []
    for sec in range(1, int(seconds) + 2):
        a, b = bytes_at(sec - 1.0), bytes_at(float(sec))
        curve.append(round((sum(b) - sum(a)) / MB, 2))
    first = [x - y for x, y in zip(bytes_at(FIRST_SECONDS), base, strict=True)]
    ranked = sorted(range(len(links)), key=lambda i: links[i]["rate"], reverse=True)
    top = ranked[:max(1, len(links) // 4)]
    rate = size / seconds
    during = [c - b for c, b in zip(carried, base, strict=True)]
    fill: dict[str, float] = {}  # what each group of links carried, of what it could have
    for seeder in ("libtorrent", "ours"):
        for lossy in (False, True):
            group = [i for i, link in enumerate(links)
                     if link.get("seeder") == seeder and bool(link["loss"]) == lossy]
            if group:
                could = sum(links[i]["rate"] for i in group) * seconds
                fill[f"{seeder}{' lossy' if lossy else ''}"] = round(sum(during[i] for i in group) / could, 2)
    return {
        "who": result["who"], "seconds": round(seconds, 2), "mb_s": round(rate / MB, 2),
        "of_ceiling": round(rate / ceiling, 3), "ceiling_mb_s": round(ceiling / MB, 2),
        "of_lossless_ceiling": round(rate / sum(link["rate"] for link in links if not link["loss"]), 3),
        "wasted_mb": round((sum(carried) - sum(base) - size) / MB, 2),
        "utp_share": round(sum(s["udp_bytes_up"] for s in relay["stats"]) / max(1, sum(carried)), 3),
        "redundant_mb": round(result["redundant"] / MB, 2), "failed": result["failed"],
        "top_quarter_share_10s": round(sum(first[i] for i in top) / max(1, sum(first)), 3),
        "top_quarter_share_ceiling": round(sum(links[i]["rate"] for i in top) / ceiling, 3),
        "first_10s_mb": round(sum(first) / MB, 1), "cpu": round(result["cpu"], 1),
        "relay_cpu": round(relay["cpu"], 1), "link_fill": fill, "curve_mb_s": curve,
        "per_link_mb_s": [round(carried_i / MB / seconds, 2) for carried_i in
                          (c - b for c, b in zip(carried, base, strict=True))],
        "per_link_curve": [[round((b[i] - a[i]) / MB, 2) for i in range(len(links))]
                           for a, b in ((bytes_at(t - 1.0), bytes_at(float(t)))
                                        for t in range(1, min(int(seconds) + 2, 16)))]
        if os.environ.get("WAN_DETAIL") else None,
        "per_link_tail": [[round((b[i] - a[i]) / MB, 2) for i in range(len(links))]
                          for a, b in ((bytes_at(t - 1.0), bytes_at(float(t)))
                                       for t in range(max(1, int(seconds) - 3), int(seconds) + 2))]
        if os.environ.get("WAN_DETAIL") else None,
        "link_stats": relay["stats"] if os.environ.get("WAN_DETAIL") else None,
    }


def many_seeders(args: argparse.Namespace, work: Path, torrent_file: Path, seed_dir: Path) -> None:
    links = seeder_links(args.seeders, args.seed, args.lossy_every, args.transport,
                         (args.rate_min, args.rate_max), (args.rtt_min, args.rtt_max))
    # libtorrent and ours alternate within the lossless links and within the lossy ones
    counts = {True: 0, False: 0}
    kinds = []
    for link in links:
        lossy = bool(link["loss"])
        kinds.append("libtorrent" if counts[lossy] % 2 == 0 else "ours")
        counts[lossy] += 1
    procs: dict[str, Any] = {}
    ports = [0] * args.seeders
    for kind in ("libtorrent", "ours"):
        idx = [i for i, k in enumerate(kinds) if k == kind]
        if not idx:
            continue
        proc, got = start_seeders(kind, torrent_file, seed_dir, [links[i]["transport"] for i in idx])
        procs[kind] = proc
        for i, port in zip(idx, got, strict=True):
            ports[i] = port
    for link, kind in zip(links, kinds, strict=True):
        link["seeder"] = kind
    print(json.dumps({"links": links}), flush=True)
    results: dict[str, list[dict[str, Any]]] = {kind: [] for kind in args.downloaders.split(",")}
    try:
        for r in range(args.rounds):
            order = args.downloaders.split(",")
            for kind in (order if r % 2 == 0 else order[::-1]):
                relays = Relays(relay_config(links, ports, args.seed + 100 * r), work)
                try:
                    peers = [(RELAY_HOST, p) for p in relays.ports]
                    result = run_download(kind, torrent_file, work / "dl", peers, args.limit)
                finally:
                    relay = relays.stop()
                row = analyse(result, relay, links)
                results[kind].append(row)
                print(json.dumps(row), flush=True)
    finally:
        seeders = {kind: stop_child(proc) for kind, proc in procs.items()}
    print(json.dumps({"seeders": seeders}))
    print(f"many seeders: {args.seeders} ({kinds.count('libtorrent')} libtorrent, "
          f"lossless links: {args.transport}, "
          f"{kinds.count('ours')} ours; "
          f"{sum(link['transport'] == 'utp' for link in links)} lossy over uTP), {args.size_mib} MiB, "
          f"pieces {args.piece_kib} KiB, rounds {args.rounds}, "
          f"ceiling {next(iter(results.values()))[0]['ceiling_mb_s']} MB/s, "
          f"load average {os.getloadavg()[0]:.2f}")
    for kind, rows in results.items():
        med = statistics.median
        print(f"{kind:10}: {med(r['seconds'] for r in rows):.1f} s, {med(r['mb_s'] for r in rows):.2f} MB/s "
              f"(runs {', '.join(str(r['mb_s']) for r in rows)}), "
              f"of ceiling {med(r['of_ceiling'] for r in rows):.2f} "
              f"(of the lossless links' {med(r['of_lossless_ceiling'] for r in rows):.2f}), "
              f"wasted {med(r['wasted_mb'] for r in rows):.1f} MB, "
              f"over uTP {med(r['utp_share'] for r in rows):.2f}, top quarter's share of the first 10 s "
              f"{med(r['top_quarter_share_10s'] for r in rows):.2f} (of the ceiling "
              f"{rows[0]['top_quarter_share_ceiling']:.2f}), CPU {med(r['cpu'] for r in rows):.1f} s")
    if results.get("ours") and results.get("libtorrent"):
        ratio = statistics.median(r["mb_s"] for r in results["ours"]) / statistics.median(
            r["mb_s"] for r in results["libtorrent"])
        print(f"ratio ours/libtorrent (median rate): {ratio:.2f}")


# -- the flash crowd ----------------------------------------------------------------------------

def child_crowd(kind: str, torrent_file: str, dest: str, count: int, limit: float) -> None:
    """``count`` leechers in this process: print their ports, read the peer list (one JSON line),
    download, then print each one's completion time (from the line's arrival) and stay to seed
    until stdin closes."""
    if kind == "libtorrent":
        import libtorrent as lt

        sessions, handles = [], []
        for i in range(count):
            ses = lt.session(lt_peer_settings(lt, "tcp"))
            params = lt.add_torrent_params()
            params.ti = lt.torrent_info(torrent_file)
            params.save_path = os.path.join(dest, str(i))
            handles.append(ses.add_torrent(params))
            sessions.append(ses)
        print(json.dumps({"ports": [s.listen_port() for s in sessions]}), flush=True)
        peers = [tuple(p) for p in json.loads(sys.stdin.readline())]
        start = time.monotonic()
        for h in handles:
            for peer in peers:
                h.connect_peer(peer)
        done: dict[int, float] = {}
        while len(done) < count and time.monotonic() - start < limit:
            for i, h in enumerate(handles):
                if i not in done and h.status().is_seeding:
                    done[i] = time.monotonic() - start
            time.sleep(0.05)
        print(json.dumps({"who": "libtorrent", "done": [done.get(i) for i in range(count)], "start": start}),
              flush=True)
        sys.stdin.read()
        return

    import anyio

    from torrent_engine.engine.runtime import run
    from torrent_engine.session import Session

    torrent = our_child_torrent(torrent_file)

    async def main() -> None:
        async with contextlib.AsyncExitStack() as stack:
            sessions = [await stack.enter_async_context(
                Session(torrent, os.path.join(dest, str(i)), config=our_config("tcp")))
                for i in range(count)]
            for s in sessions:
                await s.wait_ready()
            print(json.dumps({"ports": [s.listen_port for s in sessions]}), flush=True)
            line = await anyio.to_thread.run_sync(sys.stdin.readline)
            peers = [tuple(p) for p in json.loads(line)]
            start = time.monotonic()
            done: list[float | None] = [None] * count

            async def one(i: int, s: Session) -> None:
                s.add_peers(peers)  # type: ignore[arg-type]
                await s.wait_completed()
                done[i] = time.monotonic() - start

            with anyio.move_on_after(limit):
                async with anyio.create_task_group() as tg:
                    for i, s in enumerate(sessions):
                        tg.start_soon(one, i, s)
            print(json.dumps({"who": "torrent_engine", "done": done, "start": start}), flush=True)
            await anyio.to_thread.run_sync(sys.stdin.read)

    run(main)


def flash_crowd(args: argparse.Namespace, work: Path, torrent_file: Path, seed_dir: Path) -> None:
    rng = random.Random(args.seed)
    n = args.leechers
    per_proc = args.per_process
    seeder_proc, seeder_ports = start_seeders(args.flash_seeder, torrent_file, seed_dir, ["tcp"])
    groups: list[tuple[str, Any, list[int]]] = []
    kinds = ["ours" if i % 2 == 0 else "libtorrent" for i in range(n)]
    for kind in ("ours", "libtorrent"):
        count = kinds.count(kind)
        chunk = per_proc if kind == "ours" else count  # libtorrent's sessions use their own threads
        for first in range(0, count, chunk):
            size = min(chunk, count - first)
            dest = work / f"crowd-{kind}-{first}"
            shutil.rmtree(dest, ignore_errors=True)
            proc = subprocess.Popen([sys.executable, __file__, "--crowd-child", kind, str(torrent_file),
                                     str(dest), str(size), str(args.limit)],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            assert proc.stdout is not None
            groups.append((kind, proc, json.loads(proc.stdout.readline())["ports"]))
    targets = seeder_ports + [p for _, _, ports in groups for p in ports]
    who = ["seeder"] + [kind for kind, _, ports in groups for _ in ports]
    links = [{"rate": args.seeder_rate, "rtt": 0.05, "loss": 0.0, "transport": "tcp"}]
    # one link drawn per pair of leechers, given to one of ours and one of libtorrent's alike
    pairs = [{"rate": 0.5e6 * (args.leecher_max / 0.5e6) ** rng.random(), "rtt": rng.uniform(0.01, 0.3),
              "loss": 0.0, "transport": "tcp"} for _ in range((n + 1) // 2)]
    slot = {"ours": 0, "libtorrent": 0}
    for kind in who[1:]:
        links.append(dict(pairs[slot[kind]]))
        slot[kind] += 1
    relays = Relays(relay_config(links, targets, args.seed), work)
    peers = [[RELAY_HOST, p] for p in relays.ports]
    rows: list[dict[str, Any]] = []
    try:
        for _, proc, _ in groups:
            proc.stdin.write(json.dumps(peers) + "\n")
            proc.stdin.flush()
        for _, proc, _ in groups:
            rows.append(json.loads(proc.stdout.readline()))
    finally:
        for _, proc, _ in groups:
            stop_child(proc)
        relay = relays.stop()
        stop_child(seeder_proc)
    times: dict[str, list[float | None]] = {"torrent_engine": [], "libtorrent": []}
    for row in rows:
        times[row["who"]].extend(row["done"])
    print(json.dumps({"times": times,
                      "links": [{**link, "who": w} for link, w in zip(links, who, strict=True)],
                      "seeder_uploaded_mb": relay["stats"][0]["up"]["sent_bytes"] / MB,
                      "relay_cpu": relay["cpu"]}))
    print(f"flash crowd: 1 {args.flash_seeder} seeder at {args.seeder_rate / MB:.1f} MB/s, {n} leechers "
          f"({kinds.count('ours')} ours, {kinds.count('libtorrent')} libtorrent) "
          f"at 0.5-{args.leecher_max / MB:.1f} MB/s, {args.size_mib} MiB, "
          f"load average {os.getloadavg()[0]:.2f}")
    for who_, ts in times.items():
        got = sorted(t for t in ts if t is not None)
        missing = len(ts) - len(got)
        if got:
            print(f"{who_:15}: completion median {statistics.median(got):.1f} s, first {got[0]:.1f} s, "
                  f"last {got[-1]:.1f} s{f', {missing} did not finish' if missing else ''}; "
                  f"all: {', '.join(f'{t:.1f}' for t in got)}")
        else:
            print(f"{who_:15}: none finished")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeders", type=int, default=20)
    ap.add_argument("--size-mib", type=int, default=512)
    ap.add_argument("--piece-kib", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=2, help="downloads of each, alternated")
    ap.add_argument("--lossy-every", type=int, default=4, help="every k-th link lossy over uTP (0: none)")
    ap.add_argument("--transport", default="any", choices=("any", "tcp"),
                    help="the lossless links: both transports (any) or TCP only, their seeders too")
    ap.add_argument("--downloaders", default="ours,libtorrent", help="which downloaders, in this order")
    ap.add_argument("--seed", type=int, default=1, help="the links' random choices")
    ap.add_argument("--limit", type=float, default=600.0, help="seconds before a download counts as failed")
    ap.add_argument("--flash", action="store_true", help="the flash crowd instead")
    ap.add_argument("--leechers", type=int, default=30)
    ap.add_argument("--per-process", type=int, default=5, help="our leechers per process (flash crowd)")
    ap.add_argument("--flash-seeder", default="libtorrent", choices=("libtorrent", "ours"))
    ap.add_argument("--seeder-rate", type=float, default=5e6)
    ap.add_argument("--leecher-max", type=float, default=2e6)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--seeders-child", nargs=4, help=argparse.SUPPRESS)
    ap.add_argument("--download-child", nargs=6, help=argparse.SUPPRESS)
    ap.add_argument("--crowd-child", nargs=5, help=argparse.SUPPRESS)
    ap.add_argument("--rate-min", type=float, default=0.5e6, help="the slowest link, bytes/s")
    ap.add_argument("--rate-max", type=float, default=5e6, help="the fastest link, bytes/s")
    ap.add_argument("--rtt-min", type=float, default=0.010, help="the shortest link's RTT, s")
    ap.add_argument("--rtt-max", type=float, default=0.300, help="the longest link's RTT, s")
    ap.add_argument("--preset", choices=sorted(PRESETS), default=None,
                    help="a named configuration: its values become the defaults (given options win)")
    preset = ap.parse_known_args()[0].preset
    if preset:
        ap.set_defaults(**PRESETS[preset])
    args = ap.parse_args()
    if args.seeders_child:
        kind, torrent_file, save_path, transports = args.seeders_child
        child_seeders(kind, torrent_file, save_path, transports.split(","))
        return 0
    if args.download_child:
        kind, torrent_file, dest, peers, limit, transport = args.download_child
        result = child_download(kind, torrent_file, dest, [tuple(p) for p in json.loads(peers)], float(limit),
                                transport)
        print(json.dumps(result))
        return 0
    if args.crowd_child:
        kind, torrent_file, dest, count, limit = args.crowd_child
        child_crowd(kind, torrent_file, dest, int(count), float(limit))
        return 0

    work, _torrent = payload_torrent(args.workdir, "te-wan-", args.size_mib, args.piece_kib)
    seed_dir, torrent_file = work / "seed", work / "payload.torrent"
    try:
        if args.flash:
            flash_crowd(args, work, torrent_file, seed_dir)
        else:
            many_seeders(args, work, torrent_file, seed_dir)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
