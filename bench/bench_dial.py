"""What a peer connection's start costs each end: a TCP connect on loopback and both handshakes
(MSE offered, as our default and libtorrent's are, and plaintext), then a close. The other end
runs in its own process, so the CPU time measured (``time.process_time`` of this process over
``--dials`` connections, ``--at-once`` at a time) is one side's alone.

Dials: a libtorrent peer dialed three ways, alternated over ``--rounds`` rounds in the same run:
- ``ours``: ``handshake.connect`` as the engine dials a peer (the handshakes in the loop's
  callbacks, the transport handed to the peer protocol);
- ``ours over a stream``: the same handshakes over an anyio stream from ``anyio.connect_tcp``,
  then moved onto the peer protocol (``take_over``): how every TCP dial went before, and how a
  dial through a proxy or to a host name goes;
- ``raw``: the reference, the least Python can do per dial: a socket connected by the loop,
  an asyncio protocol that sends our 68-byte handshake and waits for the peer's 68, then a
  close (plaintext only, no parsing).

Answers: our own ``connect`` in another process dials this one, whose engine listener
(``SharedResources``, the daemon's: the accept, the checks of an incoming connection, ``accept``'s
handshakes) answers for a registered torrent that then refuses the peer (the listener closes it),
against the reference: an asyncio server whose protocol reads 68 bytes and sends 68 back
(plaintext only).

Run: python bench/bench_dial.py [--dials 1000] [--at-once 50] [--rounds 3]
Needs the ``libtorrent`` module (``pip install '.[interop]'``).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import anyio
import anyio.abc

from torrent_engine.config import Config
from torrent_engine.engine.runtime import run
from torrent_engine.engine.shared import SharedResources
from torrent_engine.formats.bencode import encode
from torrent_engine.net.peer import handshake
from torrent_engine.net.peer.messages import PROTOCOL_HEADER
from torrent_engine.session.peer_io import handshaker_for

PIECE = 16 * 1024
PEER = r"""
import json, sys
import libtorrent as lt
ses = lt.session({"listen_interfaces": "127.0.0.1:0", "enable_dht": False, "enable_lsd": False,
    "enable_upnp": False, "enable_natpmp": False, "enable_incoming_utp": False,
    "enable_outgoing_utp": False, "alert_mask": 0, "connections_limit": 20000,
    "allow_multiple_connections_per_ip": True, "listen_queue_size": 2000})
p = lt.add_torrent_params()
p.ti = lt.torrent_info(sys.argv[1])
p.save_path = sys.argv[2]
p.flags = lt.torrent_flags.seed_mode
h = ses.add_torrent(p)
print(json.dumps({"port": ses.listen_port(), "info_hash": str(h.info_hash())}), flush=True)
sys.stdin.read()
"""


def make_torrent(folder: Path) -> Path:
    """One 64 KiB file and its v1 torrent (the peer seeds it; no byte of it is sent)."""
    data = os.urandom(4 * PIECE)
    (folder / "payload.bin").write_bytes(data)
    pieces = b"".join(hashlib.sha1(data[i:i + PIECE]).digest() for i in range(0, len(data), PIECE))
    info = {b"name": b"payload.bin", b"length": len(data), b"piece length": PIECE, b"pieces": pieces}
    path = folder / "payload.torrent"
    path.write_bytes(encode({b"info": info}))
    return path


class _RawDial(asyncio.Protocol):
    """Sends a handshake, waits for 68 bytes back."""

    def __init__(self, hello: bytes, done: asyncio.Future[None]) -> None:
        self._hello, self._done, self._got = hello, done, 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(self._hello)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self._got += len(data)
        if self._got >= 68 and not self._done.done():
            self._done.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._done.done():
            self._done.set_exception(ConnectionError("closed"))


async def raw_dial(port: int, info_hash: bytes) -> None:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    await loop.sock_connect(sock, ("127.0.0.1", port))
    done: asyncio.Future[None] = loop.create_future()
    hello = PROTOCOL_HEADER + bytes(8) + info_hash + os.urandom(20)
    transport, _ = await loop.create_connection(lambda: _RawDial(hello, done), sock=sock)
    try:
        await done
    finally:
        transport.abort()


Dial = Callable[[], Coroutine[Any, Any, None]]

DIALER = r"""
import os, sys
import anyio
from torrent_engine.engine.runtime import run
from torrent_engine.net.peer.handshake import connect
port, dials, at_once, encryption = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
info_hash = bytes.fromhex(sys.argv[5])

async def one():
    conn = await connect("127.0.0.1", port, info_hash=info_hash, peer_id=os.urandom(20),
                         encryption=encryption)
    await conn.aclose()

async def main():
    for _ in range(dials // at_once):
        async with anyio.create_task_group() as tg:
            for _ in range(at_once):
                tg.start_soon(one)

run(main)
"""


class _RawAnswer(asyncio.Protocol):
    """Reads a handshake (68 bytes), sends one back."""

    def __init__(self, hello: bytes) -> None:
        self._hello, self._got = hello, 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        before, self._got = self._got, self._got + len(data)
        if before < 68 <= self._got:
            self._transport.write(self._hello)  # type: ignore[attr-defined]


async def answers(encryption: str, dials: int, at_once: int, raw: bool) -> float:
    """CPU seconds of this process an answer to ``dials`` connections from another process."""
    info_hash = bytes(range(20))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}

    async def dial_us(port: int) -> float:
        t0 = time.process_time()
        await anyio.run_process([sys.executable, "-c", DIALER, str(port), str(dials), str(at_once),
                                 encryption, info_hash.hex()], env=env, check=True)
        return (time.process_time() - t0) / (dials // at_once * at_once)

    if raw:
        hello = PROTOCOL_HEADER + bytes(8) + info_hash + os.urandom(20)
        server = await asyncio.get_running_loop().create_server(lambda: _RawAnswer(hello), "127.0.0.1", 0)
        try:
            return await dial_us(server.sockets[0].getsockname()[1])
        finally:
            server.close()

    config = Config(listen_host="127.0.0.1", listen_port=0, transport="tcp", encryption="prefer",
                    dht_enabled=False, lsd_enabled=False, port_mapping=False)
    async with SharedResources(config) as shared:
        shared.set_handshaker(handshaker_for(shared))
        await shared.acquire()
        shared.register(info_hash, lambda peer: False)  # (handshaken, then refused: the listener closes it)
        try:
            return await dial_us(shared.listen_port)
        finally:
            shared.unregister(info_hash)
            await shared.release()


def our_dial(port: int, info_hash: bytes, encryption: str, stream: bool) -> Dial:
    async def dial() -> None:
        conn = await handshake.connect("127.0.0.1", port, info_hash=info_hash, peer_id=os.urandom(20),
                                       encryption=encryption,  # type: ignore[arg-type]
                                       opener=handshake._open if stream else None)
        await conn.aclose()

    return dial


async def measure(dial: Dial, dials: int, at_once: int) -> float:
    """CPU seconds of this process a dial."""
    t0 = time.process_time()
    for _ in range(dials // at_once):
        async with anyio.create_task_group() as tg:
            for _ in range(at_once):
                tg.start_soon(dial)
    return (time.process_time() - t0) / (dials // at_once * at_once)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dials", type=int, default=1000)
    ap.add_argument("--at-once", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        torrent = make_torrent(Path(tmp))
        peer = subprocess.Popen([sys.executable, "-c", PEER, str(torrent), tmp], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        try:
            assert peer.stdout is not None
            info = json.loads(peer.stdout.readline())
            port, info_hash = int(info["port"]), bytes.fromhex(info["info_hash"])
            ways: dict[str, Dial] = {
                "raw (plaintext)": lambda: raw_dial(port, info_hash),
                "ours, plaintext": our_dial(port, info_hash, "disable", False),
                "ours over a stream, plaintext": our_dial(port, info_hash, "disable", True),
                "ours, MSE offered": our_dial(port, info_hash, "prefer", False),
                "ours over a stream, MSE offered": our_dial(port, info_hash, "prefer", True),
            }
            times: dict[str, list[float]] = {name: [] for name in ways}
            answered: dict[str, list[float]] = {"raw (plaintext)": [], "ours, plaintext": [],
                                                "ours, MSE offered": []}

            async def rounds() -> None:
                for _ in range(args.rounds):
                    for name, dial in ways.items():
                        times[name].append(await measure(dial, args.dials, args.at_once))
                        await anyio.sleep(0.5)  # (the peer closes its ends)
                    for name in answered:
                        answered[name].append(await answers("prefer" if "MSE" in name else "disable",
                                                            args.dials, args.at_once, name.startswith("raw")))

            run(rounds)
        finally:
            peer.communicate(timeout=10)
    print(f"{args.dials} dials of a libtorrent peer on loopback, {args.at_once} at once, {args.rounds} "
          f"rounds alternated; the dialing process's CPU a dial, median (each round):")
    show(times)
    for what in ("plaintext", "MSE offered"):
        ours = statistics.median(times[f"ours, {what}"])
        stream = statistics.median(times[f"ours over a stream, {what}"])
        print(f"  {what}: ours / ours over a stream = {ours / stream:.2f}")
    print(f"{args.dials} connections from our connect in another process, answered here; this process's CPU "
          f"an answer, median (each round):")
    show(answered)


def show(times: dict[str, list[float]]) -> None:
    """A row a way: its median, each round's, and its ratio to the raw reference's median."""
    raw = statistics.median(times["raw (plaintext)"])
    for name, values in times.items():
        med = statistics.median(values)
        each = ", ".join(f"{v * 1e6:.0f}" for v in values)
        print(f"  {name:34s} {med * 1e6:6.0f} us ({each}); {med / raw:.2f}x raw")

if __name__ == "__main__":
    main()
