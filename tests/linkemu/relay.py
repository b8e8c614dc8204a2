"""The asyncio shell around the link model: a TCP relay and a UDP relay in front of one peer, so
whoever dials the relay's port reaches the peer through its ``Duplex`` (client -> peer on
``down``, peer -> client on ``up``). Both relays of one link listen on the same port number and
share the Duplex, so a TCP flow and a uTP flow through them share one cap and one queue.

The TCP relay ends TCP on both sides: the emulated link delays, paces and queues the byte stream
(back-pressure when the queue is full: the relay stops reading, so the sender's socket buffers
fill), it does not emulate TCP's own congestion control. It connects to the peer one RTT after
it accepted (the three-way handshake the client's connect() skipped), and not at all if the
client closed within that RTT (a dial given up before it connected: the peer never sees it).
Datagrams are delayed, paced, dropped at a full queue (drop-tail) and lost at random, and handed
on in the order of their arrival times (``_Delivery``: the loop's timers alone do not keep it).

One process, one event loop (uvloop when installed), large reads. ``python -m tests.linkemu``
runs a set of links from a JSON description (see ``__main__``); ``Emulator`` runs them on a
thread of the calling process (tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import heapq
import itertools
import socket
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .model import Duplex, Link, LinkSpec, Stream

READ_SIZE = 256 * 1024
# Bytes of one TCP direction in flight inside the relay (queued for the cap plus on the "wire"),
# beyond which the relay stops reading: a bound on its memory, far above any test's BDP.
MAX_PENDING = 16 * 1024 * 1024
UDP_BUFFER = 4 * 1024 * 1024
UDP_MAX = 65535
# The wall clock's slack against the model's times: a stream's bytes are handed on up to this
# early (never late by the relay's choice), so a link costs at most ~1/TICK wakeups a second.
TICK = 0.002


def segment_size(spec: LinkSpec) -> int:
    """How many bytes of a stream the model schedules at once: about 4 ms of the cap (so pacing is
    smooth at 0.5 MB/s and cheap at 50), a whole read when uncapped."""
    if spec.rate is None:
        return READ_SIZE
    return max(2048, min(64 * 1024, int(spec.rate * 0.004)))


class _Pump:
    """One direction of one TCP connection: read, pace through the Link, deliver on time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: Link,
                 early: bytes = b"") -> None:
        self.reader = reader
        self.early = early  # bytes read before the pump started
        self.writer = writer
        self.stream = Stream(link)
        self.segment = segment_size(link.spec)
        self.pending: deque[tuple[float, bytes | None]] = deque()  # None: end of stream
        self.pending_bytes = 0
        self.more = asyncio.Event()  # something was queued
        self.room = asyncio.Event()  # pending_bytes fell under MAX_PENDING
        self.delivered = 0

    async def read_side(self) -> None:
        loop = asyncio.get_running_loop()
        stream, segment = self.stream, self.segment
        while True:
            data, self.early = (self.early or await self.reader.read(READ_SIZE)), b""
            for off in range(0, len(data), segment):
                chunk = data[off:off + segment] if len(data) > segment else data
                # the model runs on its own exact times (``ready``); the wall clock only has to
                # be within a tick of them, so the loop never spins on sub-tick sleeps
                ready = stream.room_at(loop.time(), len(chunk))
                while ready > loop.time() + TICK:
                    await asyncio.sleep(ready - loop.time())
                    ready = stream.room_at(ready, len(chunk))
                self.pending.append((stream.send(ready, len(chunk)), chunk))
                self.pending_bytes += len(chunk)
                self.more.set()
                while self.pending_bytes > MAX_PENDING:
                    self.room.clear()
                    await self.room.wait()
            if not data:
                self.pending.append((stream.last, None))  # the end follows the last byte
                self.more.set()
                return

    async def write_side(self) -> None:
        loop = asyncio.get_running_loop()
        pending = self.pending
        while True:
            while not pending:
                self.more.clear()
                await self.more.wait()
            wait = pending[0][0] - loop.time()
            if wait > TICK:
                await asyncio.sleep(wait)
            horizon = loop.time() + TICK  # everything due within a tick goes in one write
            chunks: list[bytes] = []
            end = False
            while pending and pending[0][0] <= horizon:
                chunk = pending.popleft()[1]
                if chunk is None:
                    end = True
                    break
                chunks.append(chunk)
            if chunks:
                size = sum(map(len, chunks))
                self.writer.write(chunks[0] if len(chunks) == 1 else b"".join(chunks))
                self.pending_bytes -= size
                self.delivered += size
                if self.pending_bytes <= MAX_PENDING:
                    self.room.set()
                await self.writer.drain()
            if end:
                if self.writer.can_write_eof():
                    self.writer.write_eof()
                return


@dataclass
class RelayStats:
    connections: int = 0
    datagrams_in: int = 0
    udp_bytes_up: int = 0  # datagram bytes the peer behind the link sent (delivered or not)


class TcpRelay:
    """Accepts on ``host:port`` and connects each client to ``target`` through ``duplex``."""

    def __init__(self, duplex: Duplex, target: tuple[str, int], *, host: str = "127.0.0.1",
                 port: int = 0, source_host: str | None = None) -> None:
        self.duplex = duplex
        self.target = target
        self.host = host
        self.port = port
        self.source_host = source_host
        self.stats = RelayStats()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accepted, self.host, self.port,
                                                  reuse_address=True, limit=READ_SIZE)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.stats.connections += 1
        up_writer: asyncio.StreamWriter | None = None
        try:
            # TCP's three-way handshake: the client's first byte reaches the peer 1.5 RTT after
            # its connect(), not 0.5 (the kernel accepted for the relay at once); a client that
            # closes within that RTT gave up before its connection was open, so the peer never
            # sees it (without this a cancelled TCP dial that lost a race to uTP still reaches
            # the peer, handshake and all)
            early = bytearray()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.duplex.down.spec.delay + self.duplex.up.spec.delay):
                    while chunk := await reader.read(READ_SIZE):
                        early += chunk
                    return
            source = (self.source_host, 0) if self.source_host else None
            up_reader, up_writer = await asyncio.open_connection(*self.target, limit=READ_SIZE,
                                                                 local_addr=source)
            to_peer = _Pump(reader, up_writer, self.duplex.down, bytes(early))
            to_client = _Pump(up_reader, writer, self.duplex.up)
            async with asyncio.TaskGroup() as tg:
                for pump in (to_peer, to_client):
                    tg.create_task(pump.read_side())
                    tg.create_task(pump.write_side())
        except* OSError:
            pass  # a reset or refused connection ends this relayed connection only
        except* asyncio.CancelledError:
            pass  # close(): the server's callback must not see a cancelled handler
        finally:
            for w in (writer, up_writer):
                if w is not None:
                    w.close()
            self._tasks.discard(task)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def _udp_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        sock.setsockopt(socket.SOL_SOCKET, opt, UDP_BUFFER)
    sock.bind((host, port))
    sock.setblocking(False)
    return sock


class _Delivery:
    """The datagrams of one direction of a link on their way out, handed on in the order of their
    arrival times (offer order among equal ones), as the model gives them: a FIFO link never
    reorders. Each datagram still has its own timer, but a timer hands on every datagram due up
    to and including its own, so a timer that fires before an earlier one (uvloop's timers have
    1 ms resolution and may fire out of order within it: each is rounded against the loop's
    clock read at a slightly different moment) cannot overtake a datagram; the earlier timer
    then finds it gone."""

    __slots__ = ("_heap", "_count", "_loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._heap: list[tuple[float, int, socket.socket, bytes, Any]] = []
        self._count = itertools.count()
        self._loop = loop

    def add(self, arrive: float, sock: socket.socket, data: bytes, to: Any) -> None:
        key = next(self._count)
        heapq.heappush(self._heap, (arrive, key, sock, data, to))
        self._loop.call_at(arrive, self._due, arrive, key)

    def _due(self, arrive: float, key: int) -> None:
        heap = self._heap
        while heap and heap[0][:2] <= (arrive, key):
            _, _, sock, data, to = heapq.heappop(heap)
            _send_datagram(sock, data, to)


class UdpRelay:
    """Receives datagrams on ``host:port``; each client gets its own socket towards ``target``
    (so the peer's replies find their way back), and every datagram crosses ``duplex``."""

    def __init__(self, duplex: Duplex, target: tuple[str, int], *, host: str = "127.0.0.1",
                 port: int = 0, source_host: str | None = None) -> None:
        self.duplex = duplex
        self.target = target
        self.host = host
        self.port = port
        self.source_host = source_host or host
        self.stats = RelayStats()
        self._listen: socket.socket | None = None
        self._upstream: dict[tuple[str, int], socket.socket] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._delivery: dict[Link, _Delivery] = {}  # per direction (``duplex.up``, ``duplex.down``)

    async def start(self) -> int:
        self._loop = asyncio.get_running_loop()
        self._listen = _udp_socket(self.host, self.port)
        self.port = self._listen.getsockname()[1]
        self._loop.add_reader(self._listen.fileno(), self._from_clients)
        return self.port

    def _drain(self, sock: socket.socket, on_datagram: Callable[[bytes, Any], None]) -> None:
        for _ in range(256):  # bounded: let the loop run timers between bursts
            try:
                data, addr = sock.recvfrom(UDP_MAX)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue  # an ICMP error queued on a connected socket: the datagram is gone
            on_datagram(data, addr)

    def _from_clients(self) -> None:
        assert self._listen is not None
        self._drain(self._listen, self._client_datagram)

    def _client_datagram(self, data: bytes, client: Any) -> None:
        assert self._loop is not None
        self.stats.datagrams_in += 1
        sock = self._upstream.get(client)
        if sock is None:
            sock = _udp_socket(self.source_host, 0)
            sock.connect(self.target)
            self._upstream[client] = sock
            self._loop.add_reader(sock.fileno(), self._from_target, sock, client)
        self._forward(self.duplex.down, sock, data, None)

    def _from_target(self, sock: socket.socket, client: Any) -> None:
        assert self._listen is not None
        listen = self._listen
        def reply(data: bytes, _addr: Any) -> None:
            self.stats.udp_bytes_up += len(data)
            self._forward(self.duplex.up, listen, data, client)

        self._drain(sock, reply)

    def _forward(self, link: Link, sock: socket.socket, data: bytes, to: Any) -> None:
        assert self._loop is not None
        arrive = link.send(self._loop.time(), len(data), datagram=True)
        if arrive is None:
            return
        delivery = self._delivery.get(link)
        if delivery is None:
            delivery = self._delivery[link] = _Delivery(self._loop)
        delivery.add(arrive, sock, data, to)

    async def close(self) -> None:
        assert self._loop is not None
        for sock in [self._listen, *self._upstream.values()]:
            if sock is not None:
                self._loop.remove_reader(sock.fileno())
                sock.close()
        self._upstream.clear()


def _send_datagram(sock: socket.socket, data: bytes, to: Any) -> None:
    with contextlib.suppress(OSError):  # a full buffer or a closed socket: lost, as on a wire
        if to is None:
            sock.send(data)
        else:
            sock.sendto(data, to)


@dataclass
class LinkRelays:
    """The TCP and/or UDP relay of one link, both on ``port``."""

    duplex: Duplex
    port: int
    tcp: TcpRelay | None = None
    udp: UdpRelay | None = None
    name: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def stats(self) -> dict[str, Any]:
        return {"name": self.name, "port": self.port, "up": self.duplex.up.stats(),
                "down": self.duplex.down.stats(),
                "tcp_connections": self.tcp.stats.connections if self.tcp else 0,
                "udp_datagrams_in": self.udp.stats.datagrams_in if self.udp else 0,
                "udp_bytes_up": self.udp.stats.udp_bytes_up if self.udp else 0}

    async def close(self) -> None:
        for relay in (self.tcp, self.udp):
            if relay is not None:
                await relay.close()


async def start_link(duplex: Duplex, target: tuple[str, int], *, tcp: bool = True, udp: bool = True,
                     host: str = "127.0.0.1", port: int = 0, source_host: str | None = None,
                     name: str = "") -> LinkRelays:
    """Start the relays of one link, TCP and UDP on the same port number (``port`` 0: any free)."""
    for _ in range(50):
        tcp_relay = TcpRelay(duplex, target, host=host, port=port, source_host=source_host) if tcp else None
        udp_relay = UdpRelay(duplex, target, host=host, port=port, source_host=source_host) if udp else None
        try:
            chosen = await tcp_relay.start() if tcp_relay else port
            if udp_relay:
                udp_relay.port = chosen
                chosen = await udp_relay.start()
        except OSError as exc:
            if tcp_relay:
                await tcp_relay.close()
            if exc.errno == errno.EADDRINUSE and port == 0:
                continue  # the TCP port's UDP twin is taken: try another
            raise
        return LinkRelays(duplex, chosen, tcp_relay, udp_relay, name)
    raise OSError(errno.EADDRINUSE, f"no port free for both TCP and UDP on {host}")


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop when installed (the relay's CPU ceiling), asyncio's otherwise."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


@dataclass(frozen=True)
class LinkPlan:
    """What ``Emulator`` should start: ``target`` behind a Duplex (``duplex``), relays on ``port``."""

    target: tuple[str, int]
    duplex: Duplex
    tcp: bool = True
    udp: bool = True
    host: str = "127.0.0.1"
    port: int = 0
    source_host: str | None = None
    name: str = ""


class Emulator:
    """Runs links on an event loop in a thread of this process: ``with Emulator(plans) as emu:``
    then dial ``(plan.host, emu.ports[i])``. The Duplex objects are read after ``close``."""

    def __init__(self, plans: list[LinkPlan]) -> None:
        self.plans = plans
        self.links: list[LinkRelays] = []
        self._loop = new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="linkemu", daemon=True)

    @property
    def ports(self) -> list[int]:
        return [link.port for link in self.links]

    def __enter__(self) -> Emulator:
        self._thread.start()
        self.links = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=30)
        return self

    async def _start(self) -> list[LinkRelays]:
        return [await start_link(p.duplex, p.target, tcp=p.tcp, udp=p.udp, host=p.host, port=p.port,
                                 source_host=p.source_host, name=p.name) for p in self.plans]

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if not self._thread.is_alive():
            return

        async def stop() -> None:
            for link in self.links:
                await link.close()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()

