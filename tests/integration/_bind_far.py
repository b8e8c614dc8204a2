"""The far side of the interface-binding test (tests/integration/test_bind_interface.py), run in
its own network namespace: a seeder of the torrents given, an HTTP tracker that names it, and a
UDP port standing for a DHT node that counts the datagrams it gets (written to a file), all on
FAR_HOST. Prints "ready" once serving; runs until killed.

    python -m tests.integration._bind_far WORKDIR TORRENT...
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import anyio
import anyio.abc

from torrent_engine import Config, TorrentManager
from torrent_engine.formats.bencode import encode
from torrent_engine.formats.metainfo import Torrent

FAR_HOST, SEED_PORT, TRACKER_PORT, DHT_PORT = "10.9.0.1", 6881, 8000, 6882


async def tracker(listener: anyio.abc.Listener[anyio.abc.SocketStream], seen: Path) -> None:
    peers = socket.inet_aton(FAR_HOST) + SEED_PORT.to_bytes(2, "big")
    body = encode({b"interval": 60, b"peers": peers})

    async def answer(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            request = b""
            while b"\r\n\r\n" not in request:
                request += await stream.receive()
            with seen.open("a") as out:
                out.write(request.split(b"\r\n", 1)[0].decode(errors="replace") + "\n")
            await stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                              % len(body) + body)

    await listener.serve(answer)


async def dht_counter(counted: Path) -> None:
    async with await anyio.create_udp_socket(local_host=FAR_HOST, local_port=DHT_PORT) as udp:
        n = 0
        async for _ in udp:
            n += 1
            counted.write_text(str(n))


async def main(workdir: Path, torrents: list[str]) -> None:
    config = Config(listen_host=FAR_HOST, listen_port=SEED_PORT, dht_enabled=False, lsd_enabled=False,
                    port_mapping=False, tracker_enabled=False, state_dir=workdir / "far-state")
    async with TorrentManager(config) as manager, anyio.create_task_group() as tg:
        for path in torrents:
            session = await manager.add(Torrent.from_bytes(Path(path).read_bytes()), workdir / "seed")
            await session.wait_ready()
        listener = await anyio.create_tcp_listener(local_host=FAR_HOST, local_port=TRACKER_PORT)
        tg.start_soon(tracker, listener, workdir / "announces.txt")
        tg.start_soon(dht_counter, workdir / "dht.txt")
        print("ready", flush=True)
        await anyio.sleep_forever()


if __name__ == "__main__":
    anyio.run(main, Path(sys.argv[1]), sys.argv[2:])
