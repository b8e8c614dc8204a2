"""Downloads at scale: our daemon downloading N small torrents at once from a few libtorrent
seeders on loopback, against the same daemon downloading one large torrent of the same total size
from the same seeders, in the same run.

    python bench/bench_many_downloads.py [--torrents 1000] [--seeders 4] [--seed 47] [--batch 25]
                                         [--piece-kib 0] [--large-piece-kib 1024] [--limit 1800]
                                         [--daemon-arg=--max-connections=2000] [--profile FILE]
                                         [--profile-phase many|one]
                                         [--keep DIR] [--json FILE] [--client ours|qbittorrent]

The data: N single-file torrents of random sizes from 1 to 4 MiB (the RNG seeded with ``--seed``;
pieces of 64 KiB under 2 MiB, 128 KiB above, as a tool would choose for such sizes, or
``--piece-kib``) and one single-file torrent of their total size (``--large-piece-kib``), made in
a temporary folder (or ``--keep DIR``, kept and reused). ``--seeders`` libtorrent processes, each
its own session on 127.0.0.1 (TCP only; DHT, LSD, UPnP, NAT-PMP off), seed every torrent in seed
mode (each piece hashed when first served) with no connection, unchoke or rate limit. The daemon
finds them through an HTTP tracker on 127.0.0.1 in this process, which answers every announce
with the seeders' addresses; the seeders' own copies of the torrents name no tracker.

Two phases, each with a fresh daemon (``python -m torrent_engine daemon``, loopback, no DHT, LSD
or port mapping, its defaults otherwise, plus any ``--daemon-arg``):

- ``many``: the N torrents added through the qBittorrent API (``torrents/add``, ``--batch`` files
  a call); ``one``: the large torrent added the same way;
- measured from the first add until every torrent is complete (seen by a client polling
  ``sync/maindata`` with its rid once a second, as the *arr apps and web UIs do): the wall time,
  the daemon's CPU time (utime+stime from /proc), CPU seconds per GiB downloaded, its peak RSS
  (VmHWM), the poll's answer times (median, p95, max: the API answering while downloading) and the
  event loop's worst lag (``/metrics``).

Also printed per phase: the add calls' answer times and the daemon's CPU until the last answered,
the payload it received (beyond the torrents' size: endgame's duplicates), its user and system
CPU, its event loop thread's CPU apart from the other threads' (storage, resume data), and its
minor page faults (fresh pages first touched: new piece buffers among them). Then
the ratio of the two phases' CPU per GiB (many / one; the target of issue 47 is at most 1.5), the
CPU the many cost beyond the one, a torrent, and the load average. ``--phases add`` (or
``many,one,add``): the N torrents added to a daemon that announces to no tracker, its CPU until
the last add answered and 5 s later: what adding alone costs.

``--client qbittorrent`` runs the same phases with qbittorrent-nox in place of our daemon
(bench_seedbox's configuration, its queue off, every torrent checked at once, several connections
to one address allowed, no connection limit: the seeders all listen on 127.0.0.1), for its own
many / one ratio on this machine; its event loop's lag is not measured.

Every process is killed on every path; every wait is bounded (``--limit`` a phase; the seeders exit
by themselves after their own limit or when this process goes). Only loopback: as root with
``unshare`` the run re-executes itself in a network namespace that has only loopback. ``--profile
FILE`` records the ``many`` daemon (``--profile-phase one``: the one's) with py-spy (non-blocking,
50 Hz; ``.svg`` a flame graph, ``.json`` speedscope, else raw collapsed stacks; its figures are
then not clean ones). ``--cprofile DIR`` runs each phase's daemon under cProfile instead (exact call
counts, the loop's thread alone, its figures slower still) and prints, by function, where the many's
own time went beyond the one's.
"""

from __future__ import annotations

import argparse
import hashlib
import http.server
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_seedbox import (  # noqa: E402
    TICKS,
    OursQb,
    Poller,
    QbittorrentNox,
    cpu_seconds,
    in_loopback_namespace,
    load_avg,
    peak_rss_mib,
    quantiles,
    wait_for,
)

from torrent_engine.formats.bencode import decode, encode  # noqa: E402

MIB = 1 << 20
GIB = 1 << 30

# One seeder: a libtorrent session seeding every torrent named on the command line (seed mode,
# no tracker), TCP on 127.0.0.1 only; prints its port once all are added, then its figures when
# stdin closes or after ``limit`` seconds, whichever comes first.
SEEDER = r"""
import json, os, select, sys, time
import libtorrent as lt
save, limit, listing = sys.argv[1], float(sys.argv[2]), sys.argv[3]
ses = lt.session({
    "listen_interfaces": "127.0.0.1:0", "enable_dht": False, "enable_lsd": False, "enable_upnp": False,
    "enable_natpmp": False, "enable_incoming_utp": False, "enable_outgoing_utp": False,
    "alert_mask": 0, "connections_limit": 20000, "unchoke_slots_limit": -1, "listen_queue_size": 2000,
    "active_downloads": -1, "active_seeds": -1, "active_limit": -1, "active_checking": -1,
    "allow_multiple_connections_per_ip": True, "upload_rate_limit": 0, "download_rate_limit": 0,
    "send_buffer_watermark": 4 * 1024 * 1024, "file_pool_size": 500,
})
handles = []
for f in open(listing).read().split("\n"):
    if not f:
        continue
    p = lt.add_torrent_params()
    p.ti = lt.torrent_info(f)
    p.save_path = save
    p.flags = lt.torrent_flags.seed_mode
    handles.append(ses.add_torrent(p))
print(json.dumps({"port": ses.listen_port(), "torrents": len(handles)}), flush=True)
end = time.monotonic() + limit
while time.monotonic() < end:
    ready, _, _ = select.select([sys.stdin], [], [], 1.0)
    if ready and not os.read(sys.stdin.fileno(), 4096):
        break
up = sum(h.status().total_payload_upload for h in handles)
print(json.dumps({"uploaded": up, "cpu": time.process_time()}), flush=True)
"""


# -- the data ----------------------------------------------------------------------------------

def piece_for(size: int, piece_kib: int) -> int:
    if piece_kib:
        return piece_kib * 1024
    return 64 * 1024 if size < 2 * MIB else 128 * 1024


def write_torrent(data: Path, name: str, size: int, piece: int, meta: Path) -> None:
    """``data/name`` (random, ``size`` bytes; kept if it has that size) and its v1 torrent with no
    tracker at ``meta``."""
    path = data / name
    fresh = not (path.exists() and path.stat().st_size == size)
    hashes = []
    with open(path, "wb" if fresh else "rb") as f:
        left = size
        while left:
            n = min(piece, left)
            if fresh:
                chunk = os.urandom(n)
                f.write(chunk)
            else:
                chunk = f.read(n)
            hashes.append(hashlib.sha1(chunk).digest())
            left -= n
    info = {b"name": name.encode(), b"length": size, b"piece length": piece, b"pieces": b"".join(hashes)}
    meta.write_bytes(encode({b"info": info, b"created by": b"bench_many_downloads"}))


def make_data(root: Path, n: int, seed: int, piece_kib: int, large_piece_kib: int) -> tuple[Path, list[Path],
                                                                                            Path, list[int]]:
    """``root/data`` with the N small files and ``large.bin``; ``root/meta`` with their torrents
    (no tracker); kept from an earlier run with the same N, seed and piece sizes."""
    data, meta = root / "data", root / "meta"
    data.mkdir(parents=True, exist_ok=True)
    meta.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    sizes = [rng.randint(MIB, 4 * MIB) for _ in range(n)]
    stamp = json.dumps({"n": n, "seed": seed, "piece_kib": piece_kib, "large_piece_kib": large_piece_kib})
    done = (root / "made.json").exists() and (root / "made.json").read_text() == stamp
    small = []
    for i, size in enumerate(sizes):
        tpath = meta / f"m{i:05d}.torrent"
        if not done:
            write_torrent(data, f"m{i:05d}.bin", size, piece_for(size, piece_kib), tpath)
        small.append(tpath)
    large = meta / "large.torrent"
    if not done:
        write_torrent(data, "large.bin", sum(sizes), large_piece_kib * 1024, large)
        (root / "made.json").write_text(stamp)
    return data, small, large, sizes


def with_tracker(files: list[Path], folder: Path, url: str) -> list[Path]:
    """Copies of ``files`` in ``folder`` that name the tracker at ``url`` (the same info-hashes)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for f in files:
        meta = decode(f.read_bytes())
        meta[b"announce"] = url.encode()
        out.append(folder / f.name)
        out[-1].write_bytes(encode(meta))
    return out


# -- the tracker ---------------------------------------------------------------------------------

class Tracker:
    """An HTTP tracker on 127.0.0.1 (a thread of this process) that answers every announce with
    the seeders' addresses (compact) and counts the announces and connections. ``keep_alive``:
    it answers as HTTP/1.1 and keeps connections the client keeps (as a tracker behind nginx),
    else as HTTP/1.0, closing each (as opentracker)."""

    def __init__(self, keep_alive: bool = False) -> None:
        self.peers = b""
        self.announces = 0
        self.connections = 0
        tracker = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"
            disable_nagle_algorithm = keep_alive  # (head and body are two writes)

            def setup(self) -> None:
                tracker.connections += 1
                super().setup()

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                query = urllib.parse.urlsplit(self.path).query
                if not self.path.startswith("/announce") or "info_hash=" not in query:
                    self.send_error(404)
                    return
                tracker.announces += 1
                body = encode({b"interval": 1800, b"complete": 4, b"incomplete": 0, b"peers": tracker.peers})
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                try:
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # (a client that hung up first: one stopping with announces under way)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/announce"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.5},
                                       daemon=True)

    def __enter__(self) -> Tracker:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


# -- the seeders ---------------------------------------------------------------------------------

class Seeders:
    """``k`` libtorrent seeder processes over ``data``, each seeding every torrent in ``files``."""

    def __init__(self, k: int, data: Path, files: list[Path], work: Path, limit: float) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.ports: list[int] = []
        listing = work / "seeded.txt"
        listing.write_text("\n".join(str(f) for f in files) + "\n")
        self.args = [str(data), str(limit), str(listing)]
        self.k = k
        self.reports: list[dict[str, Any]] = []

    def __enter__(self) -> Seeders:
        try:
            for _ in range(self.k):
                self.procs.append(subprocess.Popen(
                    [sys.executable, "-c", SEEDER, *self.args],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
            for p in self.procs:
                line = self._line(p, 300)
                self.ports.append(int(json.loads(line)["port"]))
        except BaseException:
            self.kill()
            raise
        return self

    @staticmethod
    def _line(p: subprocess.Popen[bytes], limit: float) -> str:
        assert p.stdout is not None
        result: list[bytes] = []
        reader = threading.Thread(target=lambda: result.append(p.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(limit)
        if not result or not result[0].strip().startswith(b"{"):
            rest = result[0] if result else b""
            raise RuntimeError(f"a seeder did not start: {rest.decode(errors='replace')[-2000:]}")
        return result[0].decode()

    def compact(self) -> bytes:
        return b"".join(bytes([127, 0, 0, 1]) + port.to_bytes(2, "big") for port in self.ports)

    def cpu(self) -> float:
        total = 0.0
        for p in self.procs:
            try:
                total += cpu_seconds(p.pid)
            except OSError:
                pass
        return total

    def kill(self) -> None:
        for p in self.procs:
            if p.poll() is None and p.stdin is not None:
                try:
                    p.stdin.close()  # (it prints its figures and exits)
                except OSError:
                    pass
        for p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                continue
            assert p.stdout is not None
            last = p.stdout.read().decode(errors="replace").strip().splitlines()[-1:]
            try:
                if last and last[0].startswith("{"):
                    self.reports.append(json.loads(last[0]))
            except ValueError:
                pass
        self.procs = []

    def __exit__(self, *exc: object) -> None:
        self.kill()


def cpu_split(pid: int) -> tuple[float, float, float, float]:
    """The process's user and system CPU seconds, its main thread's (the event loop's) CPU, and
    its minor page faults (each first touch of a fresh page: new piece buffers, grown heaps)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    with open(f"/proc/{pid}/task/{pid}/stat") as f:
        main = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) / TICKS, int(fields[12]) / TICKS, (int(main[11]) + int(main[12])) / TICKS,
            float(fields[7]))


# -- one phase -----------------------------------------------------------------------------------

class Daemon(OursQb):
    """Our daemon (bench_seedbox's, qBittorrent dialect), with extra command-line arguments;
    ``cprofile``: run under the standard library's deterministic profiler, written there at its stop."""

    extra: list[str] = []
    cprofile: Path | None = None

    def command(self) -> list[str]:
        python, *rest = [*super().command(), *self.extra]
        profiler = ["-m", "cProfile", "-o", str(self.cprofile)] if self.cprofile else []
        return [python, *profiler, *rest]


class Qbittorrent(QbittorrentNox):
    """qbittorrent-nox (bench_seedbox's configuration) allowed what this bench's swarm needs:
    several connections to one address (every seeder is on 127.0.0.1) and no connection limit."""

    extra: list[str] = []

    def prepare(self) -> None:
        super().prepare()
        conf = self.work / "profile" / "qBittorrent" / "config" / "qBittorrent.conf"
        allowed = ("Session\\MultiConnectionsPerIp=true\nSession\\MaxConnections=-1\n"
                   "Session\\MaxConnectionsPerTorrent=-1\nSession\\MaxUploads=-1\nSession\\MaxUploadsPerTorrent=-1\n")
        text = conf.read_text().replace("[BitTorrent]\n", "[BitTorrent]\n" + allowed, 1)
        conf.write_text(text)

    def loop_lag(self) -> tuple[float, int, int]:
        return (float("nan"), 0, 0)


def make_client(args: argparse.Namespace, work: Path, dl: Path) -> Daemon | Qbittorrent:
    client: Daemon | Qbittorrent = Qbittorrent(work, dl) if args.client == "qbittorrent" else Daemon(work, dl)
    if isinstance(client, Qbittorrent):
        client.prepare()
    return client


def run_phase(name: str, files: list[Path], total: int, work: Path, seeders: Seeders,
              args: argparse.Namespace) -> dict[str, Any]:
    dl = work / "dl"
    dl.mkdir(parents=True)
    client = make_client(args, work, dl)
    client.extra = list(args.daemon_arg)
    if args.cprofile and isinstance(client, Daemon):
        client.cprofile = args.cprofile / f"{name}.prof"
    n = len(files)
    out: dict[str, Any] = {"phase": name, "n": n, "bytes": total, "load_before": load_avg()}
    profiler: subprocess.Popen[bytes] | None = None
    client.start()
    poller: Poller | None = None
    try:
        out["first_answer_s"] = wait_for("the daemon answers", client.ready, 60, 0.05)
        poller = Poller(client.api_port, client.password)
        poller.start()
        if args.profile and name == args.profile_phase:
            profiler = subprocess.Popen(
                [args.spy, "record", "--nonblocking", "-r", "50", "-o", str(args.profile),
                 "--format", PROFILE_FORMATS.get(args.profile.suffix, "raw"), "--pid",
                 str(client.pid), "-d", str(int(args.limit))],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cpu0, split0 = cpu_seconds(client.pid), cpu_split(client.pid)
        t0 = time.monotonic()
        calls = client.add_all(files, args.batch)
        out["add_s"] = time.monotonic() - t0
        out["add_call_ms"] = quantiles(calls)
        out["add_cpu_s"] = cpu_seconds(client.pid) - cpu0
        complete = 0
        next_report = time.monotonic() + 15
        while True:
            client.alive()
            with poller._lock:
                complete = sum(1 for s in poller.states.values() if s in SEEDING)
            if complete == n and len(poller.states) == n:
                break
            now = time.monotonic()
            if now - t0 > args.limit:
                print(f"  {name}: not complete within {args.limit:.0f} s", flush=True)
                break
            if now >= next_report:
                print(f"  {name}: {complete}/{n} complete at {now - t0:.0f} s; daemon CPU "
                      f"{cpu_seconds(client.pid) - cpu0:.1f} s; load {load_avg()}", flush=True)
                next_report = now + 15
            time.sleep(0.2)
        out["s"] = time.monotonic() - t0
        out["cpu_s"] = cpu_seconds(client.pid) - cpu0
        out["cpu_split_s"] = [b - a for a, b in zip(split0, cpu_split(client.pid), strict=True)]
        out["complete"] = complete
        out["done_bytes"] = total if complete == n else None
        out["cpu_s_per_gib"] = out["cpu_s"] / (total / GIB)
        out["cpu_pct"] = 100 * out["cpu_s"] / out["s"]
        out["mib_s"] = total / MIB / out["s"]
        out["peak_rss_mib"] = peak_rss_mib(client.pid)
        out["received"] = sum(int(t.get("downloaded", 0)) for t in client.api().info())
        out["loop_lag"] = client.loop_lag()
        out["load_after"] = load_avg()
        poller.stop()
        out["poll_ms"] = (*quantiles(poller.latencies), max(poller.latencies)) if poller.latencies else None
        out["polls"] = len(poller.latencies)
        out["poll_errors"] = poller.errors[:5]
        out["tracker_announces"] = args.tracker.announces
        out["tracker_connections"] = args.tracker.connections
        got = [dl / f"{f.stem}.bin" for f in files]
        out["files_right"] = sum(1 for g, size in zip(got, args.sizes_of[name], strict=True)
                                 if g.exists() and g.stat().st_size == size)
        out["stop_s"] = client.stop()
    finally:
        if poller is not None and poller.is_alive():
            poller.stop()
        if profiler is not None:
            if name == args.profile_phase:
                profiler.send_signal(2)  # py-spy writes what it has on SIGINT
            try:
                profiler.wait(60)
            except subprocess.TimeoutExpired:
                profiler.kill()
                profiler.wait()
        if client.proc is not None and client.proc.poll() is None:
            client.proc.kill()
            client.proc.wait()
    return out


def run_adds_only(files: list[Path], work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Phase ``add``: the N torrents added as in ``many`` to a fresh daemon that announces to no
    tracker (so finds no peer): the part of ``many``'s CPU that adding alone costs."""
    dl = work / "dl"
    dl.mkdir(parents=True)
    client = Daemon(work, dl)
    client.extra = [*args.daemon_arg, "--no-trackers"]
    out: dict[str, Any] = {"phase": "add", "n": len(files), "load_before": load_avg()}
    client.start()
    try:
        wait_for("the daemon answers", client.ready, 60, 0.05)
        cpu0 = cpu_seconds(client.pid)
        t0 = time.monotonic()
        out["add_call_ms"] = quantiles(client.add_all(files, args.batch))
        out["add_s"] = time.monotonic() - t0
        out["add_cpu_s"] = cpu_seconds(client.pid) - cpu0
        time.sleep(ADD_SETTLE)
        client.alive()
        out["settled_cpu_s"] = cpu_seconds(client.pid) - cpu0
        out["peak_rss_mib"] = peak_rss_mib(client.pid)
        out["stop_s"] = client.stop()
    finally:
        if client.proc is not None and client.proc.poll() is None:
            client.proc.kill()
            client.proc.wait()
    return out


ADD_SETTLE = 5.0  # seconds from the last add's answer until phase add's CPU is read
SEEDING = frozenset({"uploading", "stalledUP", "queuedUP", "forcedUP"})
PROFILE_FORMATS = {".svg": "flamegraph", ".json": "speedscope"}  # (else py-spy's raw collapsed stacks)


def print_phase(r: dict[str, Any]) -> None:
    what = f"{r['n']} torrents" if r["n"] > 1 else "one torrent"
    print(f"\n== {r['phase']}: {what}, {r['bytes'] / GIB:.3f} GiB; load before {r['load_before']}")
    med, p95 = r["add_call_ms"]
    print(f"  add: {r['add_s']:.2f} s (a call: median {med:.0f} ms, p95 {p95:.0f} ms); the daemon's CPU "
          f"until the last add answered {r['add_cpu_s']:.1f} s")
    print(f"  complete: {r['complete']}/{r['n']} in {r['s']:.1f} s ({r['mib_s']:.1f} MiB/s); files of the "
          f"right size {r['files_right']}/{r['n']}; payload received {r['received'] / GIB:.3f} GiB "
          f"({100 * (r['received'] / r['bytes'] - 1):+.1f} %)")
    print(f"  daemon CPU: {r['cpu_s']:.1f} s ({r['cpu_pct']:.0f} % of a core) = {r['cpu_s_per_gib']:.2f} s "
          f"per GiB; peak RSS {r['peak_rss_mib']:.0f} MiB")
    user, system, loop, faults = r["cpu_split_s"]
    print(f"    user {user:.1f} s, system {system:.1f} s; the event loop's thread {loop:.1f} s, the others "
          f"{user + system - loop:.1f} s; minor page faults {faults:,.0f}")
    if r["poll_ms"]:
        pm, pp, px = r["poll_ms"]
        errors = f"; errors {r['poll_errors']}" if r["poll_errors"] else ""
        print(f"  sync/maindata polled once a second: {r['polls']} answers, median {pm:.1f} ms, p95 "
              f"{pp:.1f} ms, max {px:.1f} ms{errors}")
    worst, wakes, late = r["loop_lag"]
    if wakes:
        print(f"  event loop: worst lag {worst * 1000:.0f} ms; {late} of {wakes} probe wake-ups over 50 ms "
              "late")
    print(f"  tracker announces so far: {r['tracker_announces']} over {r['tracker_connections']} "
          f"connections; stop {r['stop_s']:.2f} s; "
          f"load after {r['load_after']}", flush=True)


def print_profile_diff(many: Path, one: Path, torrents: int, rows: int = 25) -> None:
    """The functions whose own time (cProfile's, in the event loop's thread) the many spent beyond
    the one, most first, with their calls a torrent (a coroutine's resumptions count as calls):
    where the many's extra CPU goes, counted where py-spy samples."""
    import pstats
    m, o = pstats.Stats(str(many)).stats, pstats.Stats(str(one)).stats  # type: ignore[attr-defined]
    total_m, total_o = (sum(v[2] for v in st.values()) for st in (m, o))
    print(f"\n== cProfile, own time: many {total_m:.1f} s, one {total_o:.1f} s; the many's beyond the one, "
          "by function (calls a torrent in the many):")
    empty: tuple[int, int, float, float, dict[Any, Any]] = (0, 0, 0.0, 0.0, {})
    diff = sorted(((m.get(k, empty)[2] - o.get(k, empty)[2], k) for k in m.keys() | o.keys()), reverse=True)
    gap = max(total_m - total_o, 1e-9)
    for extra, (path, line, fn) in diff[:rows]:
        calls = m.get((path, line, fn), empty)[1]
        print(f"  {extra:6.2f} s {100 * extra / gap:5.1f} %  {calls / torrents:8.1f}  "
              f"{path.rsplit('site-packages/', 1)[-1].rsplit('torrent_engine/', 1)[-1]}:{line} {fn}")


def print_adds(a: dict[str, Any]) -> None:
    med, p95 = a["add_call_ms"]
    print(f"\n== add: {a['n']} torrents added to a daemon with no tracker in {a['add_s']:.2f} s (a call: "
          f"median {med:.0f} ms, p95 {p95:.0f} ms); its CPU until the last answer {a['add_cpu_s']:.1f} s, "
          f"{ADD_SETTLE:.0f} s later {a['settled_cpu_s']:.1f} s ({1000 * a['settled_cpu_s'] / a['n']:.1f} ms "
          f"a torrent); peak RSS {a['peak_rss_mib']:.0f} MiB; load before {a['load_before']}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--torrents", type=int, default=1000)
    p.add_argument("--tracker-keep-alive", action="store_true",
                   help="the tracker answers as HTTP/1.1 and keeps connections (else HTTP/1.0, one each)")
    p.add_argument("--seeders", type=int, default=4, help="libtorrent seeder processes")
    p.add_argument("--seed", type=int, default=47, help="the RNG seed of the sizes")
    p.add_argument("--batch", type=int, default=25, help="torrent files a torrents/add call")
    p.add_argument("--piece-kib", type=int, default=0,
                   help="the small torrents' piece size (0: 64 KiB under 2 MiB, 128 KiB above)")
    p.add_argument("--large-piece-kib", type=int, default=1024, help="the large torrent's piece size")
    p.add_argument("--limit", type=float, default=1800.0, help="seconds a phase may take")
    p.add_argument("--daemon-arg", action="append", default=[],
                   help="an extra argument of the daemon, e.g. --daemon-arg=--max-connections=2000")
    p.add_argument("--phases", default="many,one",
                   help="of many, one and add (the adds alone, to a daemon with no tracker; not by "
                        "default), comma-separated (default: many,one)")
    p.add_argument("--profile", type=Path,
                   help="py-spy record the many-torrent daemon into this file (.svg, .json or raw)")
    p.add_argument("--profile-phase", choices=("many", "one"), default="many",
                   help="the phase --profile records (default: many)")
    p.add_argument("--cprofile", type=Path,
                   help="run each phase's daemon under cProfile, into DIR/<phase>.prof; with both "
                        "phases, print the functions the many spent its extra time in")
    p.add_argument("--keep", type=Path, help="make the data here and keep it (else a temporary folder)")
    p.add_argument("--json", type=Path, help="also write the figures here")
    p.add_argument("--client", choices=("ours", "qbittorrent"), default="ours",
                   help="the downloader: our daemon or qbittorrent-nox (phases many and one)")
    args = p.parse_args()

    in_loopback_namespace()
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(HERE.parent), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))])
    phases = [x.strip() for x in args.phases.split(",") if x.strip()]
    if not phases or any(x not in ("many", "one", "add") for x in phases):
        p.error("--phases: of many, one and add")
    if args.client == "qbittorrent" and ("add" in phases or args.daemon_arg or args.profile or args.cprofile):
        p.error("--client qbittorrent: phases many and one only, no --daemon-arg, --profile or --cprofile")
    if args.cprofile:
        args.cprofile.mkdir(parents=True, exist_ok=True)
    args.spy = None
    if args.profile:  # (on the PATH, or beside this Python: a venv's, not activated)
        args.spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
        if args.spy is None:
            p.error("--profile needs py-spy (pip install py-spy): not on the PATH nor beside this Python")

    root = args.keep or Path(tempfile.mkdtemp(prefix="many-downloads-"))
    results: list[dict[str, Any]] = []
    run: Path | None = None
    try:
        t0 = time.monotonic()
        data, small, large, sizes = make_data(root, args.torrents, args.seed, args.piece_kib,
                                              args.large_piece_kib)
        total = sum(sizes)
        print(f"{time.strftime('%H:%M:%S')} {len(small)} torrents of 1 to 4 MiB ({total / GIB:.3f} GiB) and "
              f"one of {total / GIB:.3f} GiB in {root} ({time.monotonic() - t0:.1f} s); "
              f"load {load_avg()}", flush=True)
        for f in [*(data / f"m{i:05d}.bin" for i in range(len(small))), data / "large.bin"]:
            with open(f, "rb") as fh:  # (in the page cache for the seeders: both phases alike)
                while fh.read(8 * MIB):
                    pass
        run = Path(tempfile.mkdtemp(prefix="run-", dir=root))
        with Tracker(args.tracker_keep_alive) as tracker, Seeders(args.seeders, data, [*small, large], run,
                                           args.limit * len(phases) + 600) as seeders:
            tracker.peers = seeders.compact()
            args.tracker = tracker
            print(f"{args.seeders} libtorrent seeders on ports {seeders.ports}; tracker {tracker.url}; "
                  f"load {load_avg()}", flush=True)
            files = {"many": with_tracker(small, run / "many-torrents", tracker.url),
                     "one": with_tracker([large], run / "one-torrent", tracker.url)}
            args.sizes_of = {"many": sizes, "one": [total]}
            for name in phases:
                work = run / name
                seeder_cpu0 = seeders.cpu()
                if name == "add":
                    a = run_adds_only(files["many"], work, args)
                    results.append(a)
                    print_adds(a)
                    shutil.rmtree(work, ignore_errors=True)
                    continue
                r = run_phase(name, files[name], total, work, seeders, args)
                r["seeders_cpu_s"] = seeders.cpu() - seeder_cpu0
                results.append(r)
                print_phase(r)
                print(f"  seeders' CPU meanwhile: {r['seeders_cpu_s']:.1f} s", flush=True)
                shutil.rmtree(work, ignore_errors=True)
        uploaded = sum(int(x.get("uploaded", 0)) for x in seeders.reports)
        print(f"\nseeders uploaded {uploaded / GIB:.3f} GiB in all; CPU each "
              f"{[round(float(x.get('cpu', 0)), 1) for x in seeders.reports]} s")
        by = {r["phase"]: r for r in results}
        if "many" in by and "one" in by:
            ratio = by["many"]["cpu_s_per_gib"] / by["one"]["cpu_s_per_gib"]
            extra = (by["many"]["cpu_s"] - by["one"]["cpu_s"]) / by["many"]["n"]
            if by["many"]["complete"] < by["many"]["n"] or by["one"]["complete"] < 1:
                print("(a phase did not complete: its CPU per GiB is over bytes it did not all get)")
            print(f"CPU per GiB, many / one: {by['many']['cpu_s_per_gib']:.2f} / "
                  f"{by['one']['cpu_s_per_gib']:.2f} = {ratio:.2f} (target: at most 1.5); wall time "
                  f"many / one: {by['many']['s'] / by['one']['s']:.2f}; CPU beyond the one download's: "
                  f"{extra * 1000:.1f} ms a torrent")
            if args.cprofile and all((args.cprofile / f"{x}.prof").exists() for x in ("many", "one")):
                print_profile_diff(args.cprofile / "many.prof", args.cprofile / "one.prof", by["many"]["n"])
        print(f"{time.strftime('%H:%M:%S')} load {load_avg()}", flush=True)
    finally:
        if run is not None:
            shutil.rmtree(run, ignore_errors=True)
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
