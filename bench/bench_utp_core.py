"""uTP core cost per datagram, without sockets: one connection sends a stream to another in
memory (no loss, no delay), and the Python time each side spends is summed.

    python bench/bench_utp_core.py [--mib 64] [--rounds 3]

Receive path: one data datagram into the receiving core (header parse, ack bookkeeping,
reassembly), its share of the acks that core sends back and of the reads that empty its buffer.
Send path: the sender's share of queueing bytes, packing data datagrams and taking the acks.
Times are this thread's CPU time, so other work on a shared machine does not inflate them.
"""

from __future__ import annotations

import argparse
import statistics
import time

from torrent_engine.net.utp.connection import UtpConnection
from torrent_engine.net.utp.packet import decode

BATCH = 32  # datagrams handed over per "loop wake-up" (what one socket read batch holds)


def feed(conn: UtpConnection, datagrams: list[bytes], now: int) -> None:
    batch = getattr(conn, "receive_datagrams", None)
    if batch is not None:
        batch(datagrams, now)
    else:  # code from before the batch path (to measure it with this same script)
        for d in datagrams:
            conn.receive_packet(decode(d), now)


def one_round(total: int) -> tuple[float, float, int]:
    a = UtpConnection.initiate(0x1234, 100)
    now = 1_000_000
    syn = a.datagrams(now)
    b = UtpConnection.accept(decode(syn[0]), 60000, now)
    feed(a, b.datagrams(now), now)
    chunk = bytes(range(256)) * 256
    sent = received = 0
    send_s = recv_s = 0.0
    data_datagrams = 0
    clock = time.thread_time  # CPU time of this thread: the machine's other load does not count
    while received < total:
        now += 1000
        t0 = clock()
        while sent < total and a.send_space:
            sent += a.send(chunk[: min(len(chunk), total - sent)])
        out = a.datagrams(now)
        t1 = clock()
        acks: list[bytes] = []
        for i in range(0, len(out), BATCH):
            feed(b, out[i:i + BATCH], now)
            received += len(b.read())
            acks += b.datagrams(now)
        if not out:  # (an ack held back for ACK_DELAY_US goes out once the clock reaches it)
            acks += b.datagrams(now)
        t2 = clock()
        feed(a, acks, now)
        a.events()
        b.events()
        t3 = clock()
        data_datagrams += len(out)
        send_s += (t1 - t0) + (t3 - t2)
        recv_s += t2 - t1
    return recv_s, send_s, data_datagrams


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--mib", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    recv_us: list[float] = []
    send_us: list[float] = []
    for _ in range(args.rounds):
        r, s, n = one_round(args.mib << 20)
        recv_us.append(r * 1e6 / n)
        send_us.append(s * 1e6 / n)
        print(f"{n} data datagrams: receive path {recv_us[-1]:.2f} us, send path {send_us[-1]:.2f} us "
              "per datagram")
    for name, values in (("receive path", recv_us), ("send path   ", send_us)):
        print(f"{name}: best {min(values):.2f} us, median {statistics.median(values):.2f} us per datagram")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
