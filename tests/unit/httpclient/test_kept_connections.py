"""HTTP connections kept open between requests (``KeptConnections``): reused while the server
keeps them, never when it says or shows otherwise, a stale one replaced once, closed when idle
for long or over the bounds."""

from __future__ import annotations

import socket
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import anyio.abc
import pytest
from anyio.streams.tls import TLSListener

from tests.unit.tracker._tracker_servers import self_signed, serving
from torrent_engine.errors import HttpError
from torrent_engine.net.httpclient import http_get
from torrent_engine.net.httpclient.kept import KeptConnections

pytestmark = pytest.mark.anyio

BODY = b"d8:intervali1800e5:peers0:e"


@dataclass
class Server:
    port: int
    mode: str  # keep | close | http10 | drop | race | garbage
    connections: int = 0
    requests: int = 0
    closed: list[bool] = field(default_factory=list)  # each connection: whether the client closed it
    targets: list[bytes] = field(default_factory=list)  # each request's path and query


@asynccontextmanager
async def server(mode: str, *, tls_context: ssl.SSLContext | None = None) -> AsyncIterator[Server]:
    """An HTTP/1.1 server on 127.0.0.1 answering requests one after another on each connection
    (``mode``: ``keep`` keeps it; ``close`` says ``Connection: close`` and closes; ``http10``
    answers as HTTP/1.0 and closes; ``drop`` closes without a word 20 ms after each answer; ``race``
    reads a connection's second request and closes without an answer; ``garbage`` sends a byte
    after each answer)."""
    tcp = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    state = Server(tcp.extra(anyio.abc.SocketAttribute.local_port), mode)
    listener: anyio.abc.Listener[anyio.abc.ByteStream] = (
        TLSListener(tcp, tls_context, standard_compatible=False) if tls_context is not None else tcp)

    async def serve(stream: anyio.abc.ByteStream) -> None:
        state.connections += 1
        index = len(state.closed)
        state.closed.append(False)
        data = b""
        served = 0
        async with stream:
            while True:
                try:
                    while b"\r\n\r\n" not in data:
                        data += await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                    state.closed[index] = True
                    return
                head, _, data = data.partition(b"\r\n\r\n")
                state.targets.append(head.split(b" ")[1])
                state.requests += 1
                served += 1
                if mode == "race" and served == 2:
                    return
                version = "HTTP/1.0" if mode == "http10" else "HTTP/1.1"
                extra = "Connection: close\r\n" if mode == "close" else ""
                await stream.send(f"{version} 200 OK\r\nContent-Length: {len(BODY)}\r\n{extra}\r\n".encode()
                                  + BODY + (b"x" if mode == "garbage" else b""))
                if mode == "drop":
                    await anyio.sleep(0.02)  # (a while after the answer: idle on the client's side)
                if mode in ("close", "http10", "drop"):
                    return

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, serve)
        yield state
        tg.cancel_scope.cancel()


async def gets(port: int, kept: KeptConnections | None, n: int, *, scheme: str = "http",
               context: ssl.SSLContext | None = None) -> None:
    for i in range(n):
        response = await http_get(f"{scheme}://127.0.0.1:{port}/announce?n={i}", timeout=5, kept=kept,
                                  ssl_context=context)
        assert response.body == BODY


async def test_a_server_that_keeps_connections_gets_one_for_many_requests() -> None:
    kept = KeptConnections(30.0)
    async with server("keep") as s:
        await gets(s.port, kept, 10)
        assert (s.connections, s.requests, kept.reused, len(kept)) == (1, 10, 9, 1)
    async with server("keep") as s:  # without: a connection a request, as before
        await gets(s.port, None, 3)
        assert (s.connections, s.requests) == (3, 3)


async def test_tls_connections_are_kept_too(tmp_path: Path) -> None:
    server_context, client_context = self_signed(tmp_path)
    kept = KeptConnections(30.0)
    async with server("keep", tls_context=server_context) as s:
        await gets(s.port, kept, 5, scheme="https", context=client_context)
        assert (s.connections, s.requests, kept.reused) == (1, 5, 4)


@pytest.mark.parametrize("mode", ["close", "http10", "garbage"])
async def test_a_connection_the_server_does_not_keep_is_not_reused(mode: str) -> None:
    kept = KeptConnections(30.0)
    async with server(mode) as s:
        await gets(s.port, kept, 4)
        assert (s.connections, s.requests, kept.reused, len(kept)) == (4, 4, 0, 0)


async def test_a_connection_the_server_closed_while_idle_is_not_used() -> None:
    kept = KeptConnections(30.0)
    async with server("drop") as s:
        for _ in range(4):
            await gets(s.port, kept, 1)
            await anyio.sleep(0.1)  # (the server's close has come)
        # each kept one was found closed before a byte was sent on it: a new connection each
        assert (s.connections, s.requests, kept.reused, len(kept)) == (4, 4, 0, 1)


async def test_a_kept_connection_closed_as_the_request_goes_is_replaced_once() -> None:
    kept = KeptConnections(30.0)
    async with server("race") as s:
        await gets(s.port, kept, 3)
        # the 2nd request read on the first connection, closed unanswered: sent again on a new one
        # (whose own 2nd, the 3rd request, is sent a third time on a third)
        assert (s.connections, s.requests) == (3, 5)


async def test_a_new_connection_closed_unanswered_is_an_error_not_retried() -> None:
    async def hang_up(stream: anyio.abc.SocketStream) -> None:
        await stream.receive()
        await stream.aclose()

    async with serving(hang_up) as port:
        with pytest.raises(HttpError, match="closed before"):
            await http_get(f"http://127.0.0.1:{port}/a", timeout=5, kept=KeptConnections(30.0))


class FakeStream:
    """Enough of a stream for the bookkeeping (no socket: ``take`` trusts it)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def extra(self, attribute: object, default: object = None) -> object:
        raise anyio.TypedAttributeLookupError


def test_idle_connections_expire_and_are_bounded() -> None:
    now = [0.0]
    asked: list[float] = []
    closed: list[str] = []
    kept = KeptConnections(30.0, per_server=2, total=3, now=lambda: now[0])
    kept.on_idle = asked.append
    kept.closer = lambda streams: closed.extend(s.name for s in streams)  # type: ignore[attr-defined]
    streams = [FakeStream(f"s{i}") for i in range(5)]
    assert kept.give("a", streams[0]) == [] and asked == [30.0]  # type: ignore[arg-type]
    now[0] = 1.0
    assert kept.give("a", streams[1]) == []  # type: ignore[arg-type]
    now[0] = 2.0
    assert kept.give("a", streams[2]) == [streams[0]]  # type: ignore[arg-type] # (two a server)
    assert kept.give("b", streams[3]) == []  # type: ignore[arg-type]
    now[0] = 3.0
    assert kept.give("c", streams[4]) == [streams[1]]  # type: ignore[arg-type] # (three in all: the oldest)
    assert len(kept) == 3 and asked == [30.0]
    # the most recent first; expired ones dropped on the way
    assert kept.take("a") == (streams[2], [])
    assert kept.take("a") == (None, [])
    now[0] = 32.5
    assert kept.on_tick(now[0]) is False
    assert closed == ["s3"] and asked == [30.0, 33.0] and len(kept) == 1
    now[0] = 40.0
    assert kept.take("c") == (None, [streams[4]])
    assert len(kept) == 0
    assert kept.on_tick(now[0]) is False and closed == ["s3"]  # (nothing left: no deadline asked)
    assert asked == [30.0, 33.0]


def test_nothing_is_kept_when_idle_for_is_0() -> None:
    kept = KeptConnections(0.0)
    stream = FakeStream("s")
    assert kept.give("a", stream) == [stream]  # type: ignore[arg-type]
    assert len(kept) == 0


class SocketStream:
    """A stream as ``_quiet`` sees it: its socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def extra(self, attribute: object, default: object = None) -> object:
        return self.sock


def test_a_socket_with_something_to_read_is_not_quiet() -> None:
    from torrent_engine.net.httpclient.kept import _quiet

    a, b = socket.socketpair()
    with a, b:
        assert _quiet(SocketStream(a))  # type: ignore[arg-type]
        b.sendall(b"x")
        assert not _quiet(SocketStream(a))  # type: ignore[arg-type]
        a.recv(1)
        b.close()
        assert not _quiet(SocketStream(a))  # type: ignore[arg-type] # (EOF: readable)


def test_a_socket_past_fd_setsize_is_looked_at_too() -> None:
    """A daemon of thousands of torrents holds descriptors past select()'s 1 024."""
    import os
    import resource

    from torrent_engine.net.httpclient.kept import _quiet

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2048:
        pytest.skip(f"descriptors limited to {hard} here")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2048), hard))
    a, b = socket.socketpair()
    try:
        high = socket.socket(fileno=os.dup2(a.fileno(), 1500))
        with high:
            assert _quiet(SocketStream(high))  # type: ignore[arg-type]
            b.sendall(b"x")
            assert not _quiet(SocketStream(high))  # type: ignore[arg-type]
    finally:
        a.close()
        b.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

