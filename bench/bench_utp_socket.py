"""uTP socket read path per datagram: a raw UDP peer on 127.0.0.1 fills our UtpSocket's buffer
with in-order data for one accepted connection, and the thread CPU time of the socket's read
callback (reads, routing, the core, acks) is divided by the datagrams it took.

    python bench/bench_utp_socket.py [--bursts 30] [--burst 1024]

Each burst is sent before the event loop reads any of it, so the callback reads full batches
(as in a fast download). Run with both ways of reading: ``recvmmsg`` (Linux) and ``recvfrom``.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import time
from typing import Any

import anyio

try:
    from torrent_engine.net.utp import mmsg
except ImportError:  # code from before recvmmsg
    mmsg = None  # type: ignore[assignment]
from torrent_engine.net.utp.packet import PacketType, decode, encode_header
from torrent_engine.net.utp.socket import UtpSocket
from torrent_engine.net.utp.stream import UtpStream

PAYLOAD = 1428  # what libtorrent's ~1 448-byte datagrams carry


async def one_run(use_mmsg: bool, bursts: int, burst: int) -> list[float]:
    accepted: list[UtpStream] = []
    try:
        server = UtpSocket(on_accept=accepted.append, recvmmsg=use_mmsg)
    except TypeError:  # code from before recvmmsg (to measure it with this same script)
        server = UtpSocket(on_accept=accepted.append)
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.setblocking(False)
    per_datagram: list[float] = []
    spent = [0.0]
    async with anyio.create_task_group() as tg:
        await tg.start(server.run, "127.0.0.1", 0)
        dest = server.local_address
        conn_id, seq = 0x2222, 700
        peer.sendto(encode_header(PacketType.SYN, conn_id, 0, 0, 1 << 20, seq, 0), dest)
        await anyio.wait_readable(peer)
        syn_ack = decode(peer.recv(65536))
        stream = accepted[0]
        callback = server._on_readable

        def timed() -> None:
            t0 = time.thread_time()
            callback()
            spent[0] += time.thread_time() - t0

        loop: Any = server._reader
        fd = server._sock.fileno()  # type: ignore[union-attr]
        loop.remove_reader(fd)
        loop.add_reader(fd, timed)
        payload = bytes(PAYLOAD)
        sent = 1
        for _ in range(bursts):
            datagrams = [encode_header(PacketType.DATA, conn_id + 1, 0, 0, 1 << 20, (seq + sent + i) & 0xFFFF,
                                       syn_ack.seq_nr - 1) + payload for i in range(burst)]
            sent += burst
            spent[0] = 0.0
            for d in datagrams:
                peer.sendto(d, dest)
            got = 0
            with anyio.fail_after(30):
                while got < burst * PAYLOAD:
                    got += len(await stream.receive(1 << 30))
            while True:  # the acks
                try:
                    peer.recv(65536)
                except BlockingIOError:
                    break
            per_datagram.append(spent[0] * 1e6 / burst)
        tg.cancel_scope.cancel()
    peer.close()
    return per_datagram


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--bursts", type=int, default=30)
    ap.add_argument("--burst", type=int, default=1024)
    args = ap.parse_args()
    ways = [True, False] if getattr(mmsg, "available", lambda: False)() else [False]
    for _ in range(2):
        for use_mmsg in ways:
            us = asyncio.run(one_run(use_mmsg, args.bursts, args.burst))
            print(f"{'recvmmsg' if use_mmsg else 'recvfrom'}: read callback {statistics.median(us):.2f} us "
                  f"median, {min(us):.2f} us best per datagram ({args.bursts} bursts of {args.burst})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
