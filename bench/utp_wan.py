"""uTP over an emulated WAN link (tests/linkemu), ours against libtorrent in the same run.

    python bench/utp_wan.py loss [--losses 0.01,0.02] [--rtt 0.1] [--size-mib 4] [--rounds 2]
    python bench/utp_wan.py yield [--rate 2e6] [--rtt 0.05] [--seconds 10]
    python bench/utp_wan.py fat [--rate 4e6] [--rtt 0.28] [--seconds 20] [--rounds 2]
    python bench/utp_wan.py transports [--rate 8e6] [--rtt 0.05] [--seconds 10] [--rounds 2]

``loss``: one seeder, uTP only, behind a link with random loss (both directions), ``--rtt`` and a
10 MB/s cap (loss, not the cap, is the limit); every pairing of sender and receiver (libtorrent
or ours) downloads the torrent, alternated over rounds. The sender's congestion control sets the
rate; the receiver's acks (selective acks, how soon) feed it.

``yield``: LEDBAT's point. A bulk TCP flow crosses a capped link (one cap, one queue of 200 ms);
its rate alone, then while a seeder behind the same link uploads over uTP to a libtorrent
leecher (ours, then libtorrent's as the reference): the upload starts alone (5 s), then the TCP
flow joins it and is measured. Reported: the share of its rate the TCP
flow keeps (target >= 0.8) and what the uTP upload got meanwhile.

``fat``: a long fat link (lossless, ``--rate`` both ways, ``--rtt``, a queue of 200 ms): its
bandwidth-delay product is larger than a slow start that ends early or a window of 1 MiB
allows. Each seeder (libtorrent, ours) uploads a torrent of about ``--seconds`` at the link's rate
to each receiver, alternated over rounds. Reported: the rate over the whole transfer (connect
and ramp included), its fraction of the link, and its ratio to libtorrent's seeder to the same
receiver in the same run.

``transports``: uTP against TCP over the same link (lossless, ``--rate`` both ways, ``--rtt``, a
queue of 200 ms). Each seeder (libtorrent, ours; one session per transport) uploads a torrent of
about ``--seconds`` at the link's rate to each receiver, which dials only the transport under test
(the link carries only it), uTP and TCP alternated. Reported per sender and receiver: the rate over
the whole transfer (connect and ramp included) over each transport, and uTP's over TCP's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.e2e_download import make_payload  # noqa: E402
from bench.wan_swarm import (  # noqa: E402
    MTU,
    RELAY_HOST,
    RELAY_SOURCE,
    Relays,
    run_download,
    start_seeders,
    stop_child,
)

MB = 1e6
KINDS = ("libtorrent", "ours")
TRANSPORTS = ("utp", "tcp")  # (a seeder of ``transports`` has a session for each, in this order)
UTP_HEAD_START = 5.0  # seconds the uTP upload runs alone before the TCP flow joins it


def make_torrent(work: Path, size_mib: int) -> tuple[Path, Path]:
    from torrent_engine.storage.create import create_torrent

    seed_dir = work / "seed"
    seed_dir.mkdir(parents=True, exist_ok=True)
    make_payload(seed_dir / "payload.bin", size_mib << 20)
    torrent_file = work / "payload.torrent"
    torrent_file.write_bytes(create_torrent(seed_dir / "payload.bin", piece_length=256 * 1024,
                                            version="v1").to_bytes())
    return torrent_file, seed_dir


def spec(rate: float, rtt: float, loss: float = 0.0) -> dict[str, Any]:
    return {"delay": rtt / 2, "rate": rate, "loss": loss, "mtu": MTU,
            "queue_bytes": max(64 * 1024, int(rate * 0.2))}


def transfer(sender: str, receiver: str, seeders: dict[str, tuple[Any, list[int]]], link: dict[str, Any],
             seed: int, args: argparse.Namespace, torrent_file: Path,
             work: Path, transport: str = "utp") -> tuple[float, dict[str, Any]]:
    """One download by ``receiver`` over ``transport`` from ``sender``'s seeder for it (the
    seeders' sessions are in ``TRANSPORTS`` order) behind ``link`` (both directions): its rate
    (MB/s) and the link's counters."""
    port = seeders[sender][1][TRANSPORTS.index(transport)]
    config = {"links": [{"target": ["127.0.0.1", port], "host": RELAY_HOST, "source_host": RELAY_SOURCE,
                         "tcp": transport == "tcp", "udp": transport == "utp", "up": link, "down": link,
                         "seed": seed}]}
    relays = Relays(config, work)
    try:
        result = run_download(receiver, torrent_file, work / "dl", [(RELAY_HOST, relays.ports[0])],
                              args.limit, transport)
    finally:
        stats = relays.stop()["stats"][0]
    return result["bytes"] / result["seconds"] / MB, {**stats, "seconds": result["seconds"]}


def fat_bench(args: argparse.Namespace, work: Path) -> None:
    size_mib = max(4, int(args.rate * args.seconds / (1 << 20)))
    torrent_file, seed_dir = make_torrent(work, size_mib)
    seeders = {kind: start_seeders(kind, torrent_file, seed_dir, ["utp"]) for kind in KINDS}
    rates: dict[tuple[str, str], list[float]] = {}
    try:
        for r in range(args.rounds):
            for receiver in KINDS:
                for sender in (KINDS if r % 2 == 0 else KINDS[::-1]):
                    rate, stats = transfer(sender, receiver, seeders, spec(args.rate, args.rtt), 11 + r, args,
                                           torrent_file, work)
                    rates.setdefault((sender, receiver), []).append(rate)
                    print(json.dumps({"sender": sender, "receiver": receiver, "mb_s": round(rate, 3),
                                      "of_link": round(rate * MB / args.rate, 3),
                                      "seconds": round(stats["seconds"], 1),
                                      "queue_drops_up": stats["up"]["dropped_queue"],
                                      "datagrams_up": stats["up"]["sent_packets"]}), flush=True)
    finally:
        for proc, _ in seeders.values():
            stop_child(proc)
    print(f"uTP on a long fat link: {args.rate / MB:.1f} MB/s, RTT {args.rtt * 1000:.0f} ms, queue 200 ms, "
          f"no loss, {size_mib} MiB, rounds {args.rounds}, load average {os.getloadavg()[0]:.2f}")
    for (sender, receiver), rs in sorted(rates.items()):
        ref = statistics.median(rates[("libtorrent", receiver)])
        med = statistics.median(rs)
        print(f"{sender:10} -> {receiver:10} median {med:.3f} MB/s, {med * MB / args.rate:.2f} of the link "
              f"(runs {', '.join(f'{x:.3f}' for x in rs)}), of libtorrent -> {receiver} {med / ref:.2f}")


def transports_bench(args: argparse.Namespace, work: Path) -> None:
    size_mib = max(4, int(args.rate * args.seconds / (1 << 20)))
    torrent_file, seed_dir = make_torrent(work, size_mib)
    seeders = {kind: start_seeders(kind, torrent_file, seed_dir, list(TRANSPORTS)) for kind in KINDS}
    rates: dict[tuple[str, str, str], list[float]] = {}
    try:
        for r in range(args.rounds):
            for sender in KINDS:
                for receiver in KINDS:
                    for transport in (TRANSPORTS if r % 2 == 0 else TRANSPORTS[::-1]):
                        rate, stats = transfer(sender, receiver, seeders, spec(args.rate, args.rtt), 13 + r,
                                               args, torrent_file, work, transport)
                        rates.setdefault((sender, receiver, transport), []).append(rate)
                        print(json.dumps({"sender": sender, "receiver": receiver, "transport": transport,
                                          "mb_s": round(rate, 3), "of_link": round(rate * MB / args.rate, 3),
                                          "seconds": round(stats["seconds"], 1)}), flush=True)
    finally:
        for proc, _ in seeders.values():
            stop_child(proc)
    print(f"uTP against TCP over one link: {args.rate / MB:.1f} MB/s, RTT {args.rtt * 1000:.0f} ms, queue "
          f"200 ms, no loss, {size_mib} MiB, rounds {args.rounds}, load average {os.getloadavg()[0]:.2f}")
    for sender in KINDS:
        for receiver in KINDS:
            utp, tcp = (rates[(sender, receiver, t)] for t in TRANSPORTS)
            pairs = ", ".join(f"{u / t:.2f}" for u, t in zip(utp, tcp, strict=True))
            print(f"{sender:10} -> {receiver:10} uTP median {statistics.median(utp):.3f} MB/s "
                  f"(runs {', '.join(f'{x:.3f}' for x in utp)}), TCP {statistics.median(tcp):.3f} "
                  f"(runs {', '.join(f'{x:.3f}' for x in tcp)}); uTP / TCP by round {pairs}, "
                  f"medians {statistics.median(utp) / statistics.median(tcp):.2f}")


def loss_bench(args: argparse.Namespace, work: Path) -> None:
    torrent_file, seed_dir = make_torrent(work, args.size_mib)
    seeders = {kind: start_seeders(kind, torrent_file, seed_dir, ["utp"]) for kind in KINDS}
    rates: dict[tuple[float, str, str], list[float]] = {}
    try:
        for loss in (float(x) for x in args.losses.split(",")):
            for r in range(args.rounds):
                for sender in KINDS:
                    for receiver in (KINDS if r % 2 == 0 else KINDS[::-1]):
                        rate, stats = transfer(sender, receiver, seeders, spec(10e6, args.rtt, loss), 7 + r,
                                               args, torrent_file, work)
                        rates.setdefault((loss, sender, receiver), []).append(rate)
                        print(json.dumps({"loss": loss, "sender": sender, "receiver": receiver,
                                          "mb_s": round(rate, 3), "seconds": round(stats["seconds"], 1),
                                          "lost_up": stats["up"]["dropped_loss"],
                                          "queue_drops_up": stats["up"]["dropped_queue"],
                                          "datagrams_up": stats["up"]["sent_packets"]}), flush=True)
    finally:
        for proc, _ in seeders.values():
            stop_child(proc)
    print(f"uTP under loss: RTT {args.rtt * 1000:.0f} ms, cap 10 MB/s, {args.size_mib} MiB, "
          f"rounds {args.rounds}, load average {os.getloadavg()[0]:.2f}")
    for (loss, sender, receiver), rs in sorted(rates.items()):
        ref = statistics.median(rates[(loss, "libtorrent", "libtorrent")])
        print(f"loss {loss:.0%}: {sender:10} -> {receiver:10} median {statistics.median(rs):.3f} MB/s "
              f"(runs {', '.join(f'{x:.3f}' for x in rs)}), "
              f"of libtorrent -> libtorrent {statistics.median(rs) / ref:.2f}")


class BulkSource:
    """A TCP server behind the link that sends bulk data to each client, one at a time, until the
    client goes or ``stop`` is set."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(1.0)
        self.port = self.server.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        data = os.urandom(1 << 16)
        while not self.stop.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            with conn:
                try:
                    while not self.stop.is_set():
                        conn.sendall(data)
                except OSError:
                    pass


class BulkSink:
    """The TCP flow's receiving end: counts bytes; ``rate(seconds)`` measures a window."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection((RELAY_HOST, port))
        self.received = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        buf = bytearray(1 << 16)
        try:
            while not self.done.is_set() and (n := self.sock.recv_into(buf)):
                self.received += n
        except OSError:
            pass

    def rate(self, seconds: float) -> tuple[float, float, float]:
        """The TCP flow's rate over the next ``seconds``, and the window's start and end."""
        before, start = self.received, time.monotonic()
        time.sleep(seconds)
        end = time.monotonic()
        return (self.received - before) / (end - start), start, end

    def close(self) -> None:
        self.done.set()
        self.sock.close()


def yield_round(kind: str, args: argparse.Namespace, work: Path, torrent_file: Path,
                seed_dir: Path) -> dict[str, Any]:
    """The TCP flow alone, then beside ``kind``'s uTP upload, through one link."""
    proc, ports = start_seeders(kind, torrent_file, seed_dir, ["utp"])
    source = BulkSource()
    link = spec(args.rate, args.rtt)
    common = {"host": RELAY_HOST, "source_host": RELAY_SOURCE, "up": link, "down": link, "share": "one",
              "seed": 3}
    config = {"links": [{**common, "target": ["127.0.0.1", source.port], "udp": False},
                        {**common, "target": ["127.0.0.1", ports[0]], "tcp": False}],
              "sample": 0.5}
    relays = Relays(config, work)
    result: dict[str, Any] = {}
    box: list[dict[str, Any]] = []
    leecher = threading.Thread(target=lambda: box.append(run_download(
        "libtorrent", torrent_file, work / "dl", [(RELAY_HOST, relays.ports[1])], args.limit)))
    try:
        sink = BulkSink(relays.ports[0])
        time.sleep(2.0)  # the relay's queue fills
        alone, _, _ = sink.rate(args.seconds)
        sink.close()
        time.sleep(1.0)  # the queue drains
        # the uTP upload starts alone (connects, ramps), then the TCP flow joins it
        leecher.start()
        time.sleep(UTP_HEAD_START)
        u1 = time.monotonic()
        sink = BulkSink(relays.ports[0])
        time.sleep(2.0)
        shared, t0, t1 = sink.rate(args.seconds)
        sink.close()  # the uTP upload alone now finishes the torrent
        leecher.join(timeout=args.limit + 60)
        result = {"seeder": kind, "tcp_alone_mb_s": round(alone / MB, 3),
                  "tcp_shared_mb_s": round(shared / MB, 3), "kept": round(shared / alone, 3),
                  "cap_mb_s": args.rate / MB, "completed": bool(box)}
    finally:
        source.stop.set()
        relay = relays.stop()
        stop_child(proc)
    # what the uTP upload got in the shared window: the link's bytes (one Duplex, so the samples
    # of either relay count both flows) less the TCP flow's
    samples = relay["samples"]
    def at(t: float) -> int:
        return int(next(row[1][0] for row in reversed(samples) if row[0] <= t))

    result["utp_shared_mb_s"] = round(((at(t1) - at(t0)) / (t1 - t0) - shared) / MB, 3)
    result["utp_alone_mb_s"] = round((at(u1) - at(u1 - 2.5)) / 2.5 / MB, 3)  # its last 2.5 s alone
    result["queue_drops"] = relay["stats"][0]["up"]["dropped_queue"]
    print(json.dumps(result), flush=True)
    return result


def yield_bench(args: argparse.Namespace, work: Path) -> None:
    # outlasts the shared window even if uTP kept half the link through it
    size_mib = max(8, int(args.rate * (UTP_HEAD_START + 3 + args.seconds / 2 + 4) / (1 << 20)))
    torrent_file, seed_dir = make_torrent(work, size_mib)
    rows: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
    for r in range(args.rounds):
        for kind in (("ours", "libtorrent") if r % 2 == 0 else ("libtorrent", "ours")):
            rows[kind].append(yield_round(kind, args, work, torrent_file, seed_dir))
    print(f"LEDBAT yield: cap {args.rate / MB:.1f} MB/s, RTT {args.rtt * 1000:.0f} ms, queue 200 ms, "
          f"windows of {args.seconds:.0f} s, rounds {args.rounds}, load average {os.getloadavg()[0]:.2f}")
    for kind, rs in rows.items():
        print(f"uTP upload by {kind:10}: the TCP flow keeps "
              f"{statistics.median(r['kept'] for r in rs):.2f} of its rate "
              f"(runs {', '.join(str(r['kept']) for r in rs)}; alone "
              f"{statistics.median(r['tcp_alone_mb_s'] for r in rs):.2f} MB/s; the uTP upload meanwhile "
              f"{statistics.median(r['utp_shared_mb_s'] for r in rs):.3f} MB/s, alone before "
              f"{statistics.median(r['utp_alone_mb_s'] for r in rs):.2f} MB/s)")


def control(args: argparse.Namespace) -> None:
    """The emulator's control for ``yield``: a datagram flow that does not yield (a constant
    1 400-byte datagram every 1.4 ms, ~1 MB/s) beside the same bulk TCP flow on the same link:
    what a uTP upload would get if it did not back off (so a yielding one's ~0 is LEDBAT's doing,
    not a queue that locks datagrams out)."""
    from tests.linkemu.model import Duplex, LinkSpec
    from tests.linkemu.relay import Emulator, LinkPlan

    # both flows go client -> peer, on the link's ``down`` direction
    duplex = Duplex.symmetric(LinkSpec(delay=args.rtt / 2, rate=args.rate, queue_bytes=int(args.rate * 0.2),
                                       mtu=MTU), seed=1)
    target = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    target.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    target.bind(("127.0.0.1", 0))
    target.settimeout(0.5)
    got = [0]
    done = threading.Event()

    def receive() -> None:
        while not done.is_set():
            with contextlib.suppress(TimeoutError):
                got[0] += len(target.recv(2048))

    threading.Thread(target=receive, daemon=True).start()
    server = socket.create_server(("127.0.0.1", 0))
    tcp_got = [0]

    def tcp_sink() -> None:
        conn, _ = server.accept()
        with conn:
            while not done.is_set() and (data := conn.recv(1 << 16)):
                tcp_got[0] += len(data)

    threading.Thread(target=tcp_sink, daemon=True).start()
    plans = [LinkPlan(server.getsockname(), duplex, udp=False, host=RELAY_HOST),
             LinkPlan(target.getsockname(), duplex, tcp=False, host=RELAY_HOST)]
    with Emulator(plans) as emu:
        client = socket.create_connection((RELAY_HOST, emu.ports[0]))

        def blast() -> None:
            data = os.urandom(1 << 16)
            with contextlib.suppress(OSError):
                while not done.is_set():
                    client.sendall(data)

        threading.Thread(target=blast, daemon=True).start()
        time.sleep(2.0)
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        start, tcp0, udp0, offered = time.monotonic(), tcp_got[0], got[0], 0
        while time.monotonic() - start < args.seconds:
            sender.sendto(b"x" * 1400, (RELAY_HOST, emu.ports[1]))
            offered += 1400
            time.sleep(0.0014)
        seconds = time.monotonic() - start
        tcp_rate, udp_rate = (tcp_got[0] - tcp0) / seconds, (got[0] - udp0) / seconds
        done.set()
        client.close()
        sender.close()
    print(f"control: cap {args.rate / MB:.1f} MB/s, RTT {args.rtt * 1000:.0f} ms, queue 200 ms: beside the "
          f"bulk TCP flow a datagram flow that does not back off ({offered / seconds / MB:.2f} MB/s offered) "
          f"gets {udp_rate / MB:.2f} MB/s, the TCP flow {tcp_rate / MB:.2f} MB/s "
          f"(queue drops {duplex.down.dropped_queue})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=("loss", "yield", "control", "fat", "transports"))
    ap.add_argument("--losses", default="0.01,0.02")
    ap.add_argument("--rtt", type=float, default=None,
                    help="seconds (loss: 0.1, yield: 0.05, fat: 0.28, transports: 0.05)")
    ap.add_argument("--size-mib", type=int, default=4)
    ap.add_argument("--rate", type=float, default=None,
                    help="the link's cap, bytes/s (yield: 2e6, fat: 4e6, transports: 8e6)")
    ap.add_argument("--seconds", type=float, default=None,
                    help="yield: each measuring window (10); fat, transports: the transfer's length at "
                         "the cap (20, 10)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--limit", type=float, default=300.0)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="te-utp-wan-"))
    try:
        if args.what == "loss":
            args.rtt = args.rtt or 0.1
            loss_bench(args, work)
        elif args.what == "fat":
            args.rtt = args.rtt or 0.28
            args.rate = args.rate or 4e6
            args.seconds = args.seconds or 20.0
            fat_bench(args, work)
        elif args.what == "transports":
            args.rtt = args.rtt or 0.05
            args.rate = args.rate or 8e6
            args.seconds = args.seconds or 10.0
            transports_bench(args, work)
        elif args.what == "control":
            args.rtt = args.rtt or 0.05
            args.rate = args.rate or 2e6
            args.seconds = args.seconds or 10.0
            control(args)
        else:
            args.rtt = args.rtt or 0.05
            args.rate = args.rate or 2e6
            args.seconds = args.seconds or 10.0
            yield_bench(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
