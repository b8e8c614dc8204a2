"""The link emulator's own ceiling: MB/s of one TCP stream through an uncapped relay
(``python -m tests.linkemu`` in its own process) against the same sender and receiver connected
directly (a raw socket copy), alternated over rounds, and through a link capped at 400 MB/s with
5 ms delay (the pacing's own ceiling); and datagrams/s through an uncapped UDP
relay against direct.

    python bench/bench_linkemu.py [--mib 512] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CHUNK = 1 << 20
SHAPED = 400e6  # bytes/s: a cap far above any benchmark link, to see the pacing's own cost


def sink(server: socket.socket, got: list[int]) -> None:
    conn, _ = server.accept()
    total = 0
    buf = bytearray(CHUNK)
    with conn:
        while n := conn.recv_into(buf):
            total += n
    got.append(total)


def tcp_round(port: int, server: socket.socket, size: int) -> float:
    got: list[int] = []
    thread = threading.Thread(target=sink, args=(server, got))
    thread.start()
    data = os.urandom(CHUNK)
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port)) as s:
        for _ in range(size // CHUNK):
            s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        thread.join()
    seconds = time.monotonic() - start
    assert got == [size], got
    return size / seconds / 1e6


def udp_round(port: int, target: socket.socket, count: int) -> float:
    """Datagrams of 1400 bytes sent in bursts of 64 (the sender waits for the receiver to catch
    up within 200 datagrams, so neither kernel buffer drops): delivered datagrams per second."""
    got = [0]
    done = threading.Event()

    def receive() -> None:
        target.settimeout(1.0)
        while got[0] < count:
            try:
                target.recv(2048)
            except TimeoutError:
                break
            got[0] += 1
        done.set()

    thread = threading.Thread(target=receive)
    thread.start()
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    payload = b"x" * 1400
    start = time.monotonic()
    sent = 0
    while sent < count and not done.is_set():
        while sent - got[0] > 200 and not done.is_set():
            time.sleep(0.0002)
        for _ in range(64):
            client.sendto(payload, ("127.0.0.1", port))
            sent += 1
    thread.join()
    seconds = time.monotonic() - start
    client.close()
    return got[0] / seconds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=512)
    ap.add_argument("--datagrams", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    server = socket.create_server(("127.0.0.1", 0))
    udp_target = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp_target.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    udp_target.bind(("127.0.0.1", 0))
    config = {"links": [
        {"name": "tcp", "target": ["127.0.0.1", server.getsockname()[1]], "udp": False},
        {"name": "shaped", "target": ["127.0.0.1", server.getsockname()[1]], "udp": False,
         "up": {"delay": 0.005, "rate": SHAPED}, "down": {"delay": 0.005, "rate": SHAPED}},
        {"name": "udp", "target": ["127.0.0.1", udp_target.getsockname()[1]], "tcp": False},
    ]}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(config, f)
    relay = subprocess.Popen([sys.executable, "-m", "tests.linkemu", f.name], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent)
    assert relay.stdout is not None and relay.stdin is not None
    tcp_port, shaped_port, udp_port = json.loads(relay.stdout.readline())["ports"]
    size = args.mib << 20
    direct, relayed, shaped, udp_direct, udp_relayed = [], [], [], [], []
    relay_cpu = 0.0
    try:
        for _ in range(args.rounds):
            direct.append(tcp_round(server.getsockname()[1], server, size))
            before = _cpu(relay.pid)
            relayed.append(tcp_round(tcp_port, server, size))
            relay_cpu += _cpu(relay.pid) - before
            shaped.append(tcp_round(shaped_port, server, size))
            print(json.dumps({"direct_mb_s": direct[-1], "relayed_mb_s": relayed[-1],
                              "shaped_mb_s": shaped[-1]}), flush=True)
            udp_direct.append(udp_round(udp_target.getsockname()[1], udp_target, args.datagrams))
            udp_relayed.append(udp_round(udp_port, udp_target, args.datagrams))
            print(json.dumps({"udp_direct_per_s": udp_direct[-1], "udp_relayed_per_s": udp_relayed[-1]}),
                  flush=True)
    finally:
        relay.stdin.close()
        relay.wait(timeout=30)
        os.unlink(f.name)
    med = statistics.median
    print(f"TCP, one stream, {args.mib} MiB x {args.rounds}, load average {os.getloadavg()[0]:.2f}: "
          f"direct median {med(direct):.0f} MB/s, through the relay median {med(relayed):.0f} MB/s "
          f"(best {max(relayed):.0f}), ratio {med(relayed) / med(direct):.2f}; relay CPU "
          f"{relay_cpu / (args.rounds * size / 1e9):.2f} s per GB; through a link capped at "
          f"{SHAPED / 1e6:.0f} MB/s with 5 ms one-way delay: median {med(shaped):.0f} MB/s")
    print(f"UDP, 1400-byte datagrams: direct median {med(udp_direct):.0f}/s, through the relay "
          f"median {med(udp_relayed):.0f}/s ({med(udp_relayed) * 1400 / 1e6:.0f} MB/s), "
          f"ratio {med(udp_relayed) / med(udp_direct):.2f}")
    return 0


def _cpu(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    sys.exit(main())
