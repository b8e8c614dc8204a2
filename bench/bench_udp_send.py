"""What a burst of uTP-sized datagrams costs to hand to the kernel over loopback, by way of sending
(Linux): ``sendto`` per datagram, ``sendmmsg`` (ctypes) for the burst, one segmented
``sendmsg`` (``UDP_SEGMENT``, as ``UtpSocket.send_many`` sends), and the same into a receiver
that coalesces (``UDP_GRO``, as ``UtpSocket`` reads). Thread CPU time per datagram, of the
sending call and of reading the burst with ``recvmsg`` (one call per datagram, or per coalesced
run), median over the bursts.

    python bench/bench_udp_send.py [--bursts 300] [--burst 46] [--size 1400]
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import mmap
import socket
import statistics
import struct
import time
from collections.abc import Callable

from torrent_engine.net.utp import mmsg

SOL_UDP = getattr(socket, "SOL_UDP", 17)
UDP_SEGMENT = 103  # Linux >= 4.18 (netinet/udp.h)
UDP_GRO = 104  # Linux >= 5.0


def _sendmmsg() -> Callable[[int, int, int, int], int]:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    fn = libc.sendmmsg
    fn.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn  # type: ignore[no-any-return]


def one_way(way: str, bursts: int, burst: int, size: int) -> tuple[float, float]:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    rx.setblocking(False)
    coalesce = way == "segmented+coalesced"
    if coalesce:
        rx.setsockopt(SOL_UDP, UDP_GRO, 1)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.bind(("127.0.0.1", 0))
    dest = rx.getsockname()
    datagrams = [bytes([i % 256]) * size for i in range(burst)]
    send: Callable[[], None]
    if way == "sendto":
        def send() -> None:
            for d in datagrams:
                tx.sendto(d, dest)
    elif way == "sendmmsg":
        fn = _sendmmsg()
        stride = 2048
        memory = mmap.mmap(-1, burst * stride)
        base = ctypes.addressof(ctypes.c_char.from_buffer(memory))
        name = bytearray(16)
        name[0:2] = socket.AF_INET.to_bytes(2, "little")
        name[2:4] = dest[1].to_bytes(2, "big")
        name[4:8] = socket.inet_aton(dest[0])
        name_buf = (ctypes.c_char * 16).from_buffer(name)
        iovecs = (mmsg._Iovec * burst)()
        hdrs = (mmsg._Mmsghdr * burst)()
        for i in range(burst):
            iovecs[i].iov_base = base + i * stride
            hdr = hdrs[i].msg_hdr
            hdr.msg_name = ctypes.addressof(name_buf)
            hdr.msg_namelen = 16
            hdr.msg_iov = ctypes.pointer(iovecs[i])
            hdr.msg_iovlen = 1
        lengths = memoryview(iovecs).cast("B").cast("Q")  # iov_len is every second word
        view = memoryview(memory)
        address, fd = ctypes.addressof(hdrs), tx.fileno()

        def send() -> None:
            for i, d in enumerate(datagrams):  # copied into the slots, as a flush would
                view[i * stride:i * stride + len(d)] = d
                lengths[2 * i + 1] = len(d)
            if fn(fd, address, burst, 0) != burst:
                raise OSError(ctypes.get_errno(), "sendmmsg sent less")
    else:
        control = [(SOL_UDP, UDP_SEGMENT, struct.pack("=H", size))]

        def send() -> None:
            tx.sendmsg(datagrams, control, 0, dest)

    send_us: list[float] = []
    recv_us: list[float] = []
    clock = time.thread_time
    for _ in range(bursts):
        t0 = clock()
        send()
        t1 = clock()
        got = 0
        while True:
            try:
                data, ancillary, _, _ = rx.recvmsg(65536, 64)
            except BlockingIOError:
                break
            segment = next((struct.unpack("=i", d[:4])[0] for level, kind, d in ancillary
                            if level == SOL_UDP and kind == UDP_GRO), 0)
            got += -(-len(data) // segment) if segment else 1
        t2 = clock()
        if got != burst:
            raise RuntimeError(f"{way}: {got} of {burst} datagrams arrived")
        send_us.append((t1 - t0) * 1e6 / burst)
        recv_us.append((t2 - t1) * 1e6 / burst)
    rx.close()
    tx.close()
    return statistics.median(send_us), statistics.median(recv_us)


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--bursts", type=int, default=300)
    ap.add_argument("--burst", type=int, default=46, help="datagrams per burst (46 fill one segmented send)")
    ap.add_argument("--size", type=int, default=1400)
    args = ap.parse_args()
    for way in ("sendto", "sendmmsg", "segmented", "segmented+coalesced"):
        s, r = one_way(way, args.bursts, args.burst, args.size)
        print(f"{way:20s} send {s:.2f} us, receive {r:.2f} us per datagram")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
