"""uTP datagram size over loopback: two ``UtpSocket``s in one event loop (as the demo's two
sessions), one stream uploading ``--mib`` MiB to the other, once per datagram size offered
(``UtpSocket(loopback_datagram=...)``; 1 400 is the standard size, no offer), sizes alternated
round by round.

    python bench/bench_utp_datagram.py [--mib 256] [--rounds 3] [--sizes 1400,16427,32768,65000]

Per size: MB/s (wall) and the event-loop thread's CPU time per MiB (both ends' Python and
system calls; this thread's CPU time, so other work on a shared machine inflates it less than
the wall time), the datagrams the receiving socket took and the resends.
"""

from __future__ import annotations

import argparse
import statistics
import time

import anyio

from torrent_engine.net.utp.socket import UtpSocket
from torrent_engine.net.utp.stream import UtpStream

CHUNK = 1 << 20


async def one(size: int, mib: int) -> dict[str, float]:
    accepted: list[UtpStream] = []
    got = anyio.Event()

    def on_accept(s: UtpStream) -> None:
        accepted.append(s)
        got.set()

    server = UtpSocket(on_accept=on_accept, loopback_datagram=size)
    client = UtpSocket(loopback_datagram=size)
    data = bytes(range(256)) * (CHUNK // 256)
    async with anyio.create_task_group() as tg:
        await tg.start(server.run, "127.0.0.1", 0)
        await tg.start(client.run, "127.0.0.1", 0)
        with anyio.fail_after(600):
            stream = await client.connect("127.0.0.1", server.local_address[1])
            await got.wait()
            receiver = accepted[0]

            async def write() -> None:
                for _ in range(mib):
                    await stream.send(data)
                await stream.send_eof()

            start, cpu0 = time.monotonic(), time.thread_time()
            received = 0
            tg.start_soon(write)
            while True:
                try:
                    received += len(await receiver.receive(1 << 20))
                except anyio.EndOfStream:
                    break
            seconds, cpu = time.monotonic() - start, time.thread_time() - cpu0
        if received != mib * CHUNK:
            raise AssertionError(f"received {received} bytes of {mib * CHUNK}")
        tg.cancel_scope.cancel()
    return {"mb_s": received / seconds / 1e6, "cpu_ms_per_mib": cpu * 1e3 / mib,
            "datagrams_in": server.datagrams_received, "resent": stream.conn.packets_resent,
            "packet_size": stream.conn.packet_size}


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sizes", default="1400,16427,32768,65000")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    results: dict[int, list[dict[str, float]]] = {s: [] for s in sizes}
    for r in range(args.rounds):
        for size in sizes:
            res = anyio.run(one, size, args.mib)
            results[size].append(res)
            print(f"round {r + 1} size {size}: {res['mb_s']:.1f} MB/s, loop CPU {res['cpu_ms_per_mib']:.2f} "
                  f"ms/MiB, {res['datagrams_in']} datagrams in, {res['resent']} resent "
                  f"(packet size {res['packet_size']})", flush=True)
    for size in sizes:
        rs = results[size]
        print(f"size {size}: median {statistics.median(r['mb_s'] for r in rs):.1f} MB/s, "
              f"loop CPU median {statistics.median(r['cpu_ms_per_mib'] for r in rs):.2f} ms/MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
