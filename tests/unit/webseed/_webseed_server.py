"""A scripted HTTP/1.1 server on 127.0.0.1 for web seed tests: it answers each range request
with what the test's function returns, keeping the connection open or closing it."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio
import anyio.abc

Behave = Callable[[str, int, int], tuple[bytes, bool]]  # (path, start, end) -> (response, keep open)


@dataclass
class Server:
    port: int
    connections: int = 0
    requests: list[tuple[str, str]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def ranged(data: bytes, start: int, end: int, *, extra: str = "") -> bytes:
    body = data[start:end + 1]
    return (f"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {start}-{end}/{len(data)}\r\n"
            f"Content-Length: {len(body)}\r\n{extra}\r\n").encode() + body


@asynccontextmanager
async def http_server(behave: Behave) -> AsyncIterator[Server]:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    server = Server(listener.extra(anyio.abc.SocketAttribute.local_port))

    async def handle(stream: anyio.abc.SocketStream) -> None:
        server.connections += 1
        buf = b""
        async with stream:
            while True:
                while b"\r\n\r\n" not in buf:
                    try:
                        buf += await stream.receive()
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        return
                head, buf = buf.split(b"\r\n\r\n", 1)
                lines = head.decode().split("\r\n")
                path = lines[0].split(" ")[1]
                fields = (x.partition(":") for x in lines[1:])
                rng = next((v for k, _, v in fields if k.lower() == "range"), "")
                server.requests.append((path, rng.strip()))
                m = re.fullmatch(r"bytes=(\d+)-(\d+)", rng.strip())
                assert m is not None, rng
                response, keep = behave(path, int(m[1]), int(m[2]))
                await stream.send(response)
                if not keep:
                    return

    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        try:
            yield server
        finally:
            tg.cancel_scope.cancel()
