"""Two ``UtpSocket``s on 127.0.0.1 with one connection between them, for the socket tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from torrent_engine.net.utp.socket import LOOPBACK_DATAGRAM, UtpSocket
from torrent_engine.net.utp.stream import UtpStream


@asynccontextmanager
async def utp_pair(*, coalesce: bool = True, server_host: str = "127.0.0.1", timeout: float = 30,
                   client_datagram: int = LOOPBACK_DATAGRAM, server_datagram: int = LOOPBACK_DATAGRAM,
                   ) -> AsyncIterator[tuple[UtpStream, UtpStream, UtpSocket, UtpSocket]]:
    """The dialed stream, the accepted one and the two sockets (the server bound on
    ``server_host``, "" for every interface, and reading coalesced runs of datagrams if
    ``coalesce``; the client dials it at 127.0.0.1; each offers datagrams up to its
    ``*_datagram`` bytes), in a task group cancelled on exit; the body has ``timeout`` seconds."""
    accepted: list[UtpStream] = []
    got = anyio.Event()

    def on_accept(s: UtpStream) -> None:
        accepted.append(s)
        got.set()

    server = UtpSocket(on_accept=on_accept, coalesce=coalesce, loopback_datagram=server_datagram)
    client = UtpSocket(loopback_datagram=client_datagram)
    async with anyio.create_task_group() as tg:
        await tg.start(server.run, server_host, 0)
        await tg.start(client.run, "127.0.0.1", 0)
        with anyio.fail_after(timeout):
            dialed = await client.connect("127.0.0.1", server.local_address[1])
            await got.wait()
            yield dialed, accepted[0], server, client
        tg.cancel_scope.cancel()


async def upload(sender: UtpStream, receiver: UtpStream, data: bytes) -> bytes:
    """Send ``data`` and an EOF from ``sender`` while ``receiver`` reads to the end: what it read."""
    async def write() -> None:
        await sender.send(data)
        await sender.send_eof()

    received = bytearray()
    async with anyio.create_task_group() as tg:
        tg.start_soon(write)
        while True:
            try:
                received += await receiver.receive()
            except anyio.EndOfStream:
                break
    return bytes(received)
