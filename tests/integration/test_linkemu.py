"""The link emulator's relays (tests/linkemu/relay.py) carry real sockets' traffic as the model
says: every byte in order through a capped, delayed TCP link, no faster than the cap allows;
datagrams both ways through a lossy UDP link, exactly the model's losses missing."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time

from tests.linkemu.model import Duplex, LinkSpec
from tests.linkemu.relay import Emulator, LinkPlan


def _tcp_sink(server: socket.socket, out: dict[str, object]) -> None:
    conn, _ = server.accept()
    digest = hashlib.sha256()
    total = 0
    with conn:
        while chunk := conn.recv(1 << 16):
            digest.update(chunk)
            total += len(chunk)
        out["end"] = time.monotonic()
    out["bytes"] = total
    out["sha"] = digest.hexdigest()


def test_a_capped_delayed_tcp_link_delivers_every_byte_in_order_at_the_cap() -> None:
    size, rate, delay = 1_500_000, 1_000_000.0, 0.05
    payload = os.urandom(size)
    server = socket.create_server(("127.0.0.1", 0))
    out: dict[str, object] = {}
    sink = threading.Thread(target=_tcp_sink, args=(server, out), daemon=True)
    sink.start()
    spec = LinkSpec(delay=delay, jitter=0.01, rate=rate, queue_bytes=64 * 1024)
    duplex = Duplex.symmetric(spec, seed=5)
    with Emulator([LinkPlan(server.getsockname(), duplex, udp=False)]) as emu:
        with socket.create_connection(("127.0.0.1", emu.ports[0]), timeout=60) as client:
            # a real connect() returns after one RTT; the relay's returned at once, and a client
            # that closes before that RTT is over counts as one that gave up on connecting
            time.sleep(2 * delay)
            start = time.monotonic()
            client.sendall(payload)
            client.shutdown(socket.SHUT_WR)
            sink.join(timeout=60)
            assert not sink.is_alive()
    server.close()
    elapsed = float(out["end"]) - start  # type: ignore[arg-type]
    assert out["bytes"] == size
    assert out["sha"] == hashlib.sha256(payload).hexdigest()  # in order, nothing lost or doubled
    assert duplex.down.sent_bytes == size and duplex.down.dropped_queue == 0
    # the model's time: the bytes after the first queue-full leave at the cap, then the delay
    model = (size - spec.queue_bytes) / rate + delay
    assert elapsed >= model * 0.95, f"{size} bytes in {elapsed:.2f} s through a {rate:.0f} B/s link"
    assert elapsed < model * 5 + 10, f"{elapsed:.2f} s against the model's {model:.2f} s"


def test_a_lossy_udp_link_loses_what_the_model_drops_and_carries_replies_back() -> None:
    echo = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    echo.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    echo.bind(("127.0.0.1", 0))
    echo.settimeout(0.5)
    stop = threading.Event()
    echoed: list[bytes] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                data, addr = echo.recvfrom(2048)
            except TimeoutError:
                continue
            if len(data) != 400 or data != data[:4] * 100:
                continue  # (a stray: another test's datagram to a port this one took after it)
            echoed.append(data)
            echo.sendto(data, addr)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    duplex = Duplex.symmetric(LinkSpec(delay=0.02, jitter=0.02, loss=0.05, reorder=True), seed=9)
    count = 1000
    replies: list[bytes] = []
    with Emulator([LinkPlan(echo.getsockname(), duplex, tcp=False)]) as emu:
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)  # replies wait here
        client.settimeout(1.0)
        for i in range(count):
            client.sendto(i.to_bytes(4, "big") * 100, ("127.0.0.1", emu.ports[0]))
            if i % 50 == 49:
                time.sleep(0.005)  # bounded pace: the kernel's buffers must not be what drops
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                data, source = client.recvfrom(2048)
            except TimeoutError:
                break
            if source == ("127.0.0.1", emu.ports[0]):  # (the relay's: no stray)
                replies.append(data)
        client.close()
    stop.set()
    thread.join(timeout=5)
    echo.close()
    assert len(echoed) == count - duplex.down.dropped_loss
    assert len(replies) == len(echoed) - duplex.up.dropped_loss
    assert 0 < duplex.down.dropped_loss < count * 0.1
    order = [int.from_bytes(r[:4], "big") for r in replies]
    assert len(set(order)) == len(order)  # nothing doubled
    assert order != sorted(order)  # jitter reordered datagrams (it must never reorder a stream)
