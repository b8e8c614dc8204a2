"""Resources that every session of one process borrows: listen socket, DHT node, LSD, bandwidth,
the cache of open data files.

``SharedResources`` is an async context manager that owns a task group; inside it the services
(listener, DHT) are reference counted: the first ``acquire()`` starts them (single-flight:
concurrent first acquires share one start-up, and a failure reaches every waiter), the last
``release()`` stops them and waits until their sockets are closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import math
import os
import secrets
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Literal, Protocol
from urllib.parse import urlsplit

import anyio
import anyio.abc
import anyio.to_thread

from ..beats import sleep_to_beat
from ..config import Config, Transport
from ..errors import ConfigError, SessionError
from ..events import EventBus
from ..logbook import peer_event
from ..net.httpclient.kept import KeptConnections, close_all
from ..net.netbind import bind_socket, check_address, check_interface, tcp_listener, udp_socket
from ..net.peer.peer_id import generate_peer_id
from ..net.peer.protocol import on_asyncio
from ..net.ssrf import is_local
from ..net.tracker.udp import ConnectionIds
from ..policy.choker import SeedingChoker
from ..policy.ipfilter import IpFilter, address_int
from ..storage.buffers import BufferPool
from ..storage.descriptors import FileCache
from ..storage.lanes import LanePool, shared_pool_size
from ..storage.read_cache import ReadCache
from . import fdlimit
from .bandwidth import Bandwidth
from .bandwidth import TokenBucket as TokenBucket  # (where the sessions and the jobs long took it)
from .clock import EngineClock
from .dialgate import DialGate
from .runtime import mark_asyncio_context
from .unwind import ExitStack

if TYPE_CHECKING:
    from ..net.dht.node import DhtNode
    from ..net.lsd import LsdService
    from ..net.portmap import PortMapper
    from ..net.proxy.udp_relay import UdpRelay
    from ..net.utp.socket import UtpSocket
    from ..net.utp.stream import UtpStream

log = logging.getLogger(__name__)

# An incoming connection after the handshake: the session gets the open stream and what the
# handshake told us. The handler is synchronous: it hands the peer to the session's own task
# group and returns, so the connection's lifetime is owned by the session, not the listener.
class IncomingPeer(Protocol):
    """What the listener needs of a handshaken incoming peer (``peer_io.PeerLink`` is one): it
    only hands it on, or closes it when no session takes it."""

    async def aclose(self) -> None:
        """Close the connection."""


IncomingHandler = Callable[[IncomingPeer], bool]  # takes the handshaker's peer: True if it kept it
# What the listeners hand on: a TCP socket accepted by the loop (on asyncio), else a stream (TCP
# on another anyio backend, or uTP: ``utp.stream.UtpStream``).
Incoming = anyio.abc.ByteStream | socket.socket
# Turns a freshly accepted connection into (info_hash, peer) or raises; supplied by the session
# layer so this module does not depend on the wire protocol. A socket is the handshaker's from
# the call on (it closes it if it fails); a stream stays the listener's, which closes it unless
# the peer was handed on.
Handshaker = Callable[[Incoming, Callable[[bytes], bool]], Awaitable[tuple[bytes, IncomingPeer]]]
# Starts the session of a torrent that has none (a dormant seed of the job service) and returns
# once that session takes incoming peers (it registered its handler); raises when it cannot.
DormantWake = Callable[[], Awaitable[None]]


# The receive buffers of every connected peer, in all: each may grow to the power of two at or
# below its share (a connection's own ceiling, 1 MiB, for up to 8 peers; 256 KiB for 32; never
# below 64 KiB). Shared by every session: a budget each made 1 000 torrents downloading from 4
# peers each hold 800 MiB of buffers that reads seldom fill (bench_many_downloads, RESULTS).
RECEIVE_BUDGET = 8 * 1024 * 1024
# Seconds the piece buffers given back stay in the pool after the last torrent downloading stops:
# a torrent added within them takes them rather than fresh ones (a fresh 128 KiB mapping filled
# and unmapped cost 90-100 us against 3.5 us for one used before; bench/RESULTS.md, "Piece buffers
# kept between downloads"). At most the pool's cap (``Config.piece_buffer_bytes``) stays mapped.
BUFFER_LINGER = 10.0


class SizedBuffer(Protocol):
    """A connection whose receive buffer's ceiling can be set."""

    def set_max_buffer(self, size: int) -> None:
        """The most bytes the receive buffer may grow to."""


class ReceiveBudget:
    """Splits ``total`` bytes of receive buffers among the connections that joined: one that joins
    gets the share; when the share changes (the count crosses a power of two), every one does."""

    def __init__(self, total: int = RECEIVE_BUDGET) -> None:
        self.total = total
        self.share = 0
        self._members: set[SizedBuffer] = set()

    def __len__(self) -> int:
        return len(self._members)

    def join(self, link: SizedBuffer) -> None:
        """``link`` shares the budget from now on (its ceiling set)."""
        self._members.add(link)
        self._reshare(link)

    def leave(self, link: SizedBuffer) -> None:
        """``link`` no longer shares the budget (closed)."""
        if link in self._members:
            self._members.discard(link)
            self._reshare(None)

    def _reshare(self, joined: SizedBuffer | None) -> None:
        share = 1 << max(0, (self.total // max(1, len(self._members))).bit_length() - 1)
        if share != self.share:
            self.share = share
            targets: list[SizedBuffer] = list(self._members)
        else:
            targets = [joined] if joined is not None else []
        for link in targets:
            link.set_max_buffer(share)


@dataclass(slots=True)
class PeerLimits:
    """Connection and upload-slot limits over every session of a process (0: none; per torrent,
    None: the ``Config``'s ``max_peers_per_torrent`` / ``upload_slots``)."""

    max_connections: int = 0  # peers connected or being dialed, over every torrent
    max_peers_per_torrent: int | None = None  # a torrent's own (``Session.set_max_peers``) wins
    max_uploads: int = 0  # peers unchoked, over every torrent
    max_uploads_per_torrent: int | None = None  # regular unchoke slots (plus one optimistic)
    connection_speed: int = 0  # outgoing connection attempts a second, over every torrent (dialgate.py)
    # whether sessions make outgoing connections at all (libtorrent's and qBittorrent's
    # ``connection_speed`` 0: none, incoming peers only): ``SharedResources.set_dial_out``
    dial_out: bool = True
    # whether peers on a privileged port (below ``PRIVILEGED_PORTS``) are never dialed: a swarm's
    # addresses cannot then make this client knock on other hosts' services (libtorrent's
    # ``no_connect_privileged_ports``, qBittorrent's "block peers on privileged ports")
    block_privileged_ports: bool = False
    # whether a torrent may hold several connections with one IP address (libtorrent's
    # allow_multiple_connections_per_ip; off: one, the others refused or not dialed, so that one
    # host cannot take many of a torrent's slots). On by default: peers on one host, as on
    # loopback, each count
    multiple_connections_per_ip: bool = True
    # how a seeding torrent chooses the peers it unchokes (policy/choker.py; qBittorrent's
    # upload_choking_algorithm)
    seeding_choker: SeedingChoker = "round_robin"

    def dialable(self, port: int) -> bool:
        """Whether a peer's ``port`` may be dialed."""
        return port >= PRIVILEGED_PORTS or not self.block_privileged_ports


PRIVILEGED_PORTS = 1024  # the first port that is not a privileged one
NO_LIMIT_ROOM = sys.maxsize  # the room left when there is no limit
TRACKER_LOOKUP_TIMEOUT = 10.0  # seconds a tracker's host name is looked up for the IP filter
MAX_PORT = 65535
# the system's ports for outgoing connections (Linux's default, where the system does not say)
OUTGOING_PORTS = (32768, 60999)
OUTGOING_PORTS_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")


class DialTurns:
    """The ``DialGate`` on the engine's clock: a dial that must wait sleeps on an event, which
    the clock's deadline at the next turn sets (no timer while no dial waits)."""

    def __init__(self, clock: EngineClock) -> None:
        self.gate = DialGate()
        self._clock = clock

    def set_rate(self, rate: int) -> None:
        """``rate`` dials a second from now on (0: none); a higher rate, or none, lets the waiting
        dials go sooner (at once, for none)."""
        if rate != self.gate.rate:
            self.gate.set_rate(rate)
            self.on_tick(self._clock.now())

    async def turn(self, rank: int, rate: int) -> None:
        """Wait for the turn of a dial of ``rank`` at ``rate`` dials a second (0: none; a rate
        set on ``PeerLimits`` directly is taken here)."""
        self.set_rate(rate)
        if not rate:  # (none: every dial at once)
            return
        gate = self.gate
        ticket = anyio.Event()
        now = self._clock.now()
        if gate.ask(ticket, rank, now):
            return
        self._arm(now)
        try:
            await ticket.wait()
        finally:
            if not ticket.is_set():  # (called off while it waited)
                gate.leave(ticket)

    def on_tick(self, now: float) -> bool:
        """The clock's deadline: the dials whose turn it is go."""
        for ticket in self.gate.due(now):
            assert isinstance(ticket, anyio.Event)
            ticket.set()
        self._arm(now)
        return False

    def _arm(self, now: float) -> None:
        when = self.gate.next_turn(now)
        if when is not None:
            self._clock.at(when, self)


def _listen_refusal(exc: OSError, host: str, port_said: str) -> ConfigError:
    """Why the engine cannot listen, naming the setting at fault: ``listen_host`` when the
    address is of no interface here or the name none at all (no port is better there: a kept
    port was given up for a free one, then "no port can be listened on"), else ``listen_port``
    (``port_said``, with the system's reason)."""
    if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
        return ConfigError(f"{host!r} cannot be listened on: {exc.strerror or exc}", "listen_host")
    return ConfigError(f"{port_said}: {exc.strerror or exc}", "listen_port")


class SharedResources:
    """Listen socket + DHT + bandwidth + open data files for all sessions of a process.

    ``async with SharedResources(config) as shared:`` opens the task group that owns the
    services; ``await shared.acquire()`` / ``await shared.release()`` count the sessions that use
    them. Incoming peers are routed by info-hash to the handler a session registered.
    """

    def __init__(self, config: Config, *, events: EventBus | None = None,
                 handshaker: Handshaker | None = None) -> None:
        self.config = config
        self.events = events if events is not None else EventBus()
        self.peer_id = generate_peer_id()
        self._tracker_slots: anyio.CapacityLimiter | None = None  # (made on the loop, when asked)
        self._dht_slots: anyio.CapacityLimiter | None = None
        self._http_announce_slots: anyio.CapacityLimiter | None = None
        self._check_slots: anyio.CapacityLimiter | None = None
        # the global limits, the bandwidth groups' and the torrents' own, every transfer passes
        self.bandwidth = Bandwidth(config.download_rate_limit, config.upload_rate_limit)
        self.read_cache = ReadCache()  # the pieces read for the peers every torrent serves
        # how long a piece a peer asked for takes to be read from disk, µs, blended as libtorrent's
        # disk.request_latency (each read weighs 5 %): qBittorrent's "request latency"
        self.request_latency = 0.0
        # the one clock of every session's tick: a round a second over the sessions that have
        # something to do, and deadlines (a torrent with nothing to do costs no timer)
        self.clock = EngineClock(config.stats_interval)
        self.limits = PeerLimits()
        self.dials = DialTurns(self.clock)  # every session's dials, ``limits.connection_speed`` a second
        self.connections = 0  # peers connected or being dialed, over every session (``limits``)
        self.unchoked = 0  # peers unchoked, over every session
        self.receive = ReceiveBudget()  # every connected peer's receive buffer, in all
        # every session's storage opens its files through it: the process's descriptors for
        # torrent data follow Config.max_open_files, not the number of torrents; while the
        # services run, files idle for Config.close_idle_files_after are closed
        self.files = FileCache(config.max_open_files)
        # the threads every session's storage hashes and writes pieces on (each storage's jobs in
        # order): a few for the process, not two a torrent downloading
        self.lanes = LanePool(shared_pool_size(os.cpu_count()), "torrent_engine storage")
        # the piece buffers of every torrent downloading, kept for the next piece of any of them
        # (a fresh one costs its page faults and its unmapping: bench/RESULTS.md), and for the
        # next torrent to download within BUFFER_LINGER seconds of the last one (the clock's
        # deadline frees them then)
        self.buffers = BufferPool(config.piece_buffer_bytes, linger=BUFFER_LINGER)
        self.buffers.on_idle = partial(self.clock.at, ticker=self.buffers)
        # every torrent's HTTP(S) tracker connections kept open between announces (``http_kept``)
        self._kept = KeptConnections(config.tracker_keep_alive)
        self._kept.on_idle = partial(self.clock.at, ticker=self._kept)
        self._kept.closer = self._close_kept
        # every torrent's UDP trackers' connection ids (BEP 15): one connect a minute a tracker
        self.udp_ids = ConnectionIds()
        self._handshaker = handshaker
        self._routes: dict[bytes, IncomingHandler] = {}
        # torrents without a session that incoming peers may ask for: the first peer wakes it
        # (``register_dormant``); the peers of a wake under way wait for it (how many, by hash)
        self._dormant: dict[bytes, DormantWake] = {}
        self._waking: dict[bytes, tuple[anyio.Event, list[None]]] = {}
        # the IP filter every session's peers pass (dialed, accepted, heard of): one for all
        self._ip_filter = IpFilter()
        self._filter_trackers = False  # trackers at blocked addresses are not contacted either
        self._filter_watchers: dict[bytes, Callable[[IpFilter], None]] = {}
        # the dialers stopped while outgoing connections are off, by torrent (``set_dial_out``)
        self._dial_out_waiting: dict[bytes, Callable[[], None]] = {}
        self.refused_by_filter = 0  # incoming connections closed at once: blocked address
        # a peer connection came from an address not on this host nor its local network since
        # the listener opened (libtorrent's ``has_incoming_connections``): the port is reachable
        # from outside (qBittorrent's "connected", else "firewalled")
        self.reached_from_outside = False
        self._stack: ExitStack | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._count = 0
        self._starting: anyio.Event | None = None
        self._start_error: BaseException | None = None
        self._running = False
        self._service_scope: anyio.CancelScope | None = None
        self._services_done: anyio.Event | None = None
        self._listener: anyio.abc.Listener[anyio.abc.SocketStream] | None = None
        self._listen_port = 0
        self._dht: DhtNode | None = None
        self._utp: UtpSocket | None = None
        self._port_mapper: PortMapper | None = None
        self._lsd: LsdService | None = None
        # the services' own task group while they run; the DHT's and LSD's scopes in it (each is
        # stopped and started alone when turned off or on: ``set_dht``, ``set_lsd``) and the
        # event set when it ended
        self._services_tg: anyio.abc.TaskGroup | None = None
        self._dht_scope: tuple[anyio.CancelScope, anyio.Event] | None = None
        self._lsd_scope: tuple[anyio.CancelScope, anyio.Event] | None = None
        self._service_watchers: dict[bytes, Callable[[], None]] = {}  # (``watch_services``)
        # the torrents LSD announces while it runs, whichever LSD service that is (``serve_lsd``)
        self._lsd_torrents: dict[bytes, Callable[[Iterable[tuple[str, int]]], None]] = {}
        self._reconfiguring: anyio.Lock | None = None  # one run-time change of the services at once
        self._udp_relay: UdpRelay | None = None
        self.external_ip: str | None = None  # as our gateway reports it (port mapping)
        # our external address as each source last said it ("gateway", "dht"), and how many
        # times one said another than before (``address_seen``: the sessions' announcers count)
        self._addresses: dict[str, str] = {}
        self.address_changes = 0
        self._address_watchers: list[Callable[[], None]] = []  # (``watch_address``)
        # our local address per (IPv6?, toward loopback?): when found, the address ("" unknown)
        self._local_ips: dict[tuple[bool, bool], tuple[float, str]] = {}
        self.starts = 0  # how many times the services were started (tests: single-flight)
        # incoming connections taken and not yet through their handshake: at max_pending_handshakes
        # no more are taken until one is through (``_handshake_free``)
        self.pending_handshakes = 0
        self.handshakes_deferred = 0  # times a connection was left waiting for that (TCP, uTP)
        self._handshake_room: anyio.Event | None = None  # set when one is through (the TCP accepts wait)
        self._descriptors_seen: tuple[float, int] | None = None  # (when, how many open) last counted

    @property
    def download_limit(self) -> TokenBucket:
        """The global download limit's bucket (``bandwidth.download``)."""
        return self.bandwidth.download.global_limit

    @download_limit.setter
    def download_limit(self, bucket: TokenBucket) -> None:
        self.bandwidth.download.set_global(bucket)

    @property
    def upload_limit(self) -> TokenBucket:
        """The global upload limit's bucket (``bandwidth.upload``)."""
        return self.bandwidth.upload.global_limit

    @upload_limit.setter
    def upload_limit(self, bucket: TokenBucket) -> None:
        self.bandwidth.upload.set_global(bucket)

    @property
    def tracker_slots(self) -> anyio.CapacityLimiter:
        """Tracker announces in flight at once over every torrent (``active_tracker_limit``): a
        start of thousands of torrents paces its announces."""
        if self._tracker_slots is None:
            self._tracker_slots = anyio.CapacityLimiter(self.config.active_tracker_limit)
        return self._tracker_slots

    @property
    def http_announce_slots(self) -> anyio.CapacityLimiter:
        """HTTP(S) tracker announces and scrapes in flight at once over every torrent
        (``max_concurrent_http_announces``, as the Config says it now: a change is taken at the
        next announce)."""
        limit = self.config.max_concurrent_http_announces
        if self._http_announce_slots is None:
            self._http_announce_slots = anyio.CapacityLimiter(limit)
        elif self._http_announce_slots.total_tokens != limit:
            self._http_announce_slots.total_tokens = limit
        return self._http_announce_slots

    @property
    def http_kept(self) -> KeptConnections | None:
        """The HTTP(S) tracker connections kept open between announces, every torrent's
        (``tracker_keep_alive`` as the Config says it now; None when 0: a connection each)."""
        idle_for = self.config.tracker_keep_alive
        if idle_for <= 0 or self._tg is None:
            return None
        self._kept.idle_for = idle_for
        return self._kept

    def _close_kept(self, streams: list[anyio.abc.ByteStream]) -> None:
        """Close the kept connections ``streams`` (expired) in the services' group."""
        if self._tg is not None:
            self._tg.start_soon(close_all, streams)

    @property
    def queued_announces(self) -> int:
        """Tracker announces and scrapes waiting for a slot (``tracker_slots``,
        ``http_announce_slots``): libtorrent's tracker.num_queued_tracker_announces."""
        return sum(slots.statistics().tasks_waiting
                   for slots in (self._tracker_slots, self._http_announce_slots) if slots is not None)

    def piece_read(self, seconds: float) -> None:
        """A piece a peer asked for took ``seconds`` to be read from disk (``request_latency``)."""
        self.request_latency += (seconds * 1e6 - self.request_latency) * 0.05

    @property
    def dht_slots(self) -> anyio.CapacityLimiter:
        """DHT lookups in flight at once over every torrent (``active_dht_limit``)."""
        if self._dht_slots is None:
            self._dht_slots = anyio.CapacityLimiter(self.config.active_dht_limit)
        return self._dht_slots

    @property
    def check_slots(self) -> anyio.CapacityLimiter:
        """Torrents hashing their data at once over every torrent (``active_checking_limit``)."""
        if self._check_slots is None:
            self._check_slots = anyio.CapacityLimiter(_tokens(self.config.active_checking_limit))
        return self._check_slots

    def set_checking_limit(self, limit: int) -> None:
        """Hash at most ``limit`` torrents at once from now on (-1: no limit): a raised limit lets
        waiting checks begin at once, a lowered one lets those under way end."""
        self.check_slots.total_tokens = _tokens(limit)

    # -- context -------------------------------------------------------------------------
    async def __aenter__(self) -> SharedResources:
        mark_asyncio_context()  # (before any task or socket of the engine is started from here)
        stack = ExitStack()
        self._tg = await stack.enter_async_context(anyio.create_task_group())
        self._stack = stack
        self.clock.attach(self._tg)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> bool | None:
        assert self._stack is not None
        stack, self._stack = self._stack, None
        self.clock.detach()
        self.buffers.clear()
        try:
            with anyio.CancelScope(shield=True):
                await close_all(self._kept.clear())
            self._close_udp_relay()
            if self._running:
                await self._stop_services()
        finally:  # (even when this task is being cancelled: the group was entered on it)
            self._tg = None
            suppress = await stack.__aexit__(exc_type, exc, tb)
            if self.lanes.threads:  # (the storages' threads end with their owner)
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(self.lanes.release)
        return suppress

    # -- ref counting --------------------------------------------------------------------
    @property
    def count(self) -> int:
        """How many users hold the services."""
        return self._count

    @property
    def running(self) -> bool:
        """Whether the services run."""
        return self._running

    async def acquire(self) -> None:
        """Count one user; the first starts the services. Raises what the start-up raised."""
        if self._tg is None:
            raise SessionError("SharedResources is not entered (use 'async with')")
        if self._running:
            self._count += 1
            return
        if self._starting is not None:
            starting = self._starting
            await starting.wait()
            if self._start_error is not None:
                raise self._start_error
            self._count += 1
            return
        self._starting = starting = anyio.Event()
        stopping = self._services_done
        if stopping is not None and not stopping.is_set():
            # the last release() is still closing them: their clean-up must not undo the new
            # start (nor hold the listen port it binds)
            with anyio.CancelScope(shield=True):
                await stopping.wait()
        await self._start_services(starting)
        self._count += 1

    async def release(self) -> None:
        """Uncount one user; the last one stops the services and waits for them to close."""
        if self._count <= 0:
            raise SessionError("release() without acquire()")
        self._count -= 1
        if self._count == 0 and self._running:
            await self._stop_services()

    async def restart_services(self, *, same_port: bool = False) -> None:
        """Close the services and start them again as the config now says (proxy only turned on
        or off: listening, uTP, DHT, LSD and port mapping stop or start); nothing when they do
        not run. With ``same_port``, on the port listened on now (one taken at random, when
        ``listen_port`` is 0, is kept), or, when another program took that port meanwhile, on
        the config's as at a start (on any free one when that is the same port: the services
        are not left down), said in the log. Their users stay counted; an acquire meanwhile
        waits for the new start. The sessions are told (their trackers hand out a port that
        changed)."""
        if not self._running or self._tg is None or self._starting is not None:
            return
        port = self._listen_port if same_port and self._listen_port else None
        self._starting = starting = anyio.Event()
        try:
            await self._stop_services()
        except BaseException as exc:
            self._start_error = exc
            self._starting = None
            starting.set()
            raise
        try:
            await self._start_services(starting, port)
        except OSError as exc:
            if port is None:
                raise
            other = 0 if port == self.config.listen_port else None  # (None: the config's)
            log.warning("the services could not start again on port %d (%s): on %s", port, exc,
                        "a free one" if other == 0 else "the configured one")
            await self._start_services(anyio.Event(), other)  # (the failed start left _starting None)
        self._services_changed()

    async def _start_services(self, starting: anyio.Event, port: int | None = None) -> None:
        """Start the services (``starting``, set when it is over, is what an acquire meanwhile
        waits for) on ``port`` (None: the config's); what it raises is kept for those acquires
        too."""
        assert self._tg is not None
        self._start_error = None
        try:
            self.starts += 1
            await self._tg.start(self._services, port)
            self._running = True
        except BaseException as exc:
            self._start_error = exc
            raise
        finally:
            self._starting = None
            starting.set()

    async def _stop_services(self) -> None:
        self._running = False
        self._close_udp_relay()
        if self._service_scope is not None:
            self._service_scope.cancel()
        if self._services_done is not None:
            await self._services_done.wait()

    async def _services(self, port: int | None = None, *,
                        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        done = self._services_done = anyio.Event()
        port = self.config.listen_port if port is None else port
        try:
            with anyio.CancelScope() as scope:
                self._service_scope = scope
                only = self.config.proxy_only
                if only:  # nothing may leave outside the proxy: each part that would is said
                    self._say_proxy_only()
                bind = self.config.netbind()  # (every socket below is bound to its interface)
                if bind is not None:  # (a ConfigError naming the field if it cannot be)
                    check_interface(bind.interface)
                    check_address(bind.address, bind.interface)
                try:
                    listener = None if only else await anyio.create_tcp_listener(
                        local_host=self.config.listen_host or None, local_port=port, reuse_port=False
                    ) if bind is None else await tcp_listener(bind, self.config.listen_host, port)
                except OSError as exc:  # (where, said: a bad listen_host was "Name or service not known")
                    where = f"{self.config.listen_host or 'every address'} port {port}"
                    raise OSError(exc.errno, f"cannot listen on {where}: {exc.strerror or exc}") from None
                self._listener = listener
                self.reached_from_outside = False  # (not yet, at this port)
                if listener is not None:
                    self._listen_port = int(listener.listeners[0].extra(anyio.abc.SocketAttribute.local_port))
                async with ExitStack() as held:
                    if listener is not None:
                        await held.enter_async_context(listener)
                    tg = await held.enter_async_context(anyio.create_task_group())
                    utp = None if only else await self._start_utp(tg)
                    self._services_tg = tg
                    if self.config.dht_enabled:
                        await self._start_dht()
                    if self.config.lsd_enabled:
                        await self._start_lsd()
                    if self.config.port_mapping and bind is not None and not only:
                        log.info("port mapping off: the engine is bound to interface %s (a router "
                                 "elsewhere must not be asked to forward to it)", bind.interface)
                    if self.config.port_mapping and bind is None and not only:
                        from ..net.portmap import PortMapper

                        mapper = PortMapper(natpmp_gateway=self.config.natpmp_gateway,
                                            ssdp_address=self.config.upnp_ssdp_address,
                                            on_external_ip=self._external_ip_learned)
                        ports: list[tuple[Literal["tcp", "udp"], int]] = [("tcp", self._listen_port)]
                        if self._dht is not None:
                            ports.append(("udp", self._dht.port))
                        if utp is not None and ("udp", self._listen_port) not in ports:
                            ports.append(("udp", self._listen_port))  # incoming uTP
                        await tg.start(mapper.run, ports)
                        self._port_mapper = mapper
                    for one in listener.listeners if listener is not None else ():  # (IPv4 and IPv6: two)
                        assert isinstance(one, anyio.abc.SocketListener)
                        tg.start_soon(self._accept_peers, one, tg)
                    tg.start_soon(self._close_idle_files)
                    task_status.started()
                    await anyio.sleep(math.inf)
        finally:
            self._services_tg = None
            self._dht = None
            self._dht_scope = None
            self._lsd_scope = None
            self._utp = None
            self._port_mapper = None
            self._lsd = None
            self._listener = None
            self._listen_port = 0
            self._service_scope = None
            done.set()

    # -- the DHT and LSD, each started and stopped alone ---------------------------------------
    async def _start_dht(self) -> None:
        """Start the DHT node in the services' task group (they run): from the saved routing
        table and the configured routers, as at start-up; on the uTP socket's UDP port when both
        run (the node's end leaves that socket open), by a SOCKS5 proxy's relay under proxy
        only (none there without one)."""
        tg = self._services_tg
        if tg is None or self._dht is not None:
            return
        only = self.config.proxy_only
        relay = self.udp_relay() if only else None  # (a SOCKS5 proxy's: the DHT by it)
        if only and relay is None:
            return
        from ..net.dht.node import DhtNode
        from ..net.dht.transport import UdpTransport

        bind = self.config.netbind()
        utp = self._utp
        state_path = None
        if self.config.state_dir is not None:
            state_path = Path(self.config.state_dir) / "dht.dat"
        dht_host = "127.0.0.1" if self.config.listen_host == "127.0.0.1" else "0.0.0.0"
        # one UDP port for uTP and the DHT (as libtorrent does) unless the DHT was given a port
        # of its own
        shared_udp = self.config.dht_port in (0, self._listen_port)
        own: UdpTransport | None = None
        if bind is not None and relay is None and not (utp and shared_udp):
            own = UdpTransport(await anyio.abc.UDPSocket.from_socket(
                udp_socket(socket.AF_INET, bind, dht_host, self.config.dht_port)))
        node = DhtNode(bind=(dht_host, self.config.dht_port),
                       bootstrap=list(self.config.dht_bootstrap), state_path=state_path,
                       events=self.events, enforce_bep42=self.config.enforce_bep42,
                       transport=relay.dht_transport() if relay is not None
                       else utp.dht_channel() if utp and shared_udp else own,
                       lookup_names=relay is None,
                       on_external_ip=lambda address: self.address_seen(address, "dht"))
        await tg.start(self._run_dht, node)

    async def _run_dht(self, node: DhtNode, *,
                       task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        done = anyio.Event()
        try:
            with anyio.CancelScope() as scope:
                self._dht_scope = (scope, done)

                def started() -> None:
                    self._dht = node
                    task_status.started()
                    self._services_changed()

                await node.run(task_status=_Started(started))
        finally:
            if self._dht is node:
                self._dht = None
            if self._dht_scope is not None and self._dht_scope[1] is done:
                self._dht_scope = None
            done.set()

    def watch_services(self, info_hash: bytes, watcher: Callable[[], None]) -> None:
        """Call ``watcher`` each time the DHT or LSD starts (turned on, or the services started
        again), the listening port changes or our external address does (``address_seen``), while
        ``info_hash`` is registered: its session starts its announces then, and tells its
        trackers a new port or address."""
        self._service_watchers[info_hash] = watcher

    def watch_address(self, watcher: Callable[[], None]) -> None:
        """Call ``watcher`` each time our external address changes, while
        ``Config.reannounce_when_address_changed`` is on (``address_seen``): the job service's
        dormant seeds announce then. The sessions hear it as their ``watch_services`` watchers,
        and see ``address_changes`` moved."""
        if watcher not in self._address_watchers:
            self._address_watchers.append(watcher)

    def unwatch_address(self, watcher: Callable[[], None]) -> None:
        """No more calls to ``watcher``."""
        if watcher in self._address_watchers:
            self._address_watchers.remove(watcher)

    def address_seen(self, address: str, source: str) -> None:
        """Our external address as ``source`` says it (``"gateway"``: port mapping; ``"dht"``: the
        DHT's votes). One that says another address than it said before (its first is none: the
        start) makes every torrent announce to its trackers at once, while
        ``Config.reannounce_when_address_changed`` is on, so that they hand out the new address
        (qBittorrent's behaviour: a tracker learns an address from the request's source). Each
        source is compared with itself: a gateway's WAN address behind a carrier's NAT and the
        public one the DHT sees differ for good, and are no change."""
        before = self._addresses.get(source)
        self._addresses[source] = address
        if before is None or before == address or not self.config.reannounce_when_address_changed:
            return
        log.info("our external address changed (%s: %s to %s): every torrent announces to its trackers",
                 source, before, address)
        self.address_changes += 1
        self._services_changed()
        for watcher in list(self._address_watchers):
            try:
                watcher()
            except Exception as exc:  # (a watcher's trouble is not the service's)
                log.warning("a torrent could not announce our new address: %r", exc)

    def _services_changed(self) -> None:
        for watcher in list(self._service_watchers.values()):
            try:
                watcher()
            except Exception as exc:  # (a session's trouble is not the service's)
                log.warning("a session could not follow the DHT or LSD starting: %r", exc)

    async def _start_lsd(self) -> None:
        """Start LSD in the services' task group (not under proxy only): it announces every
        torrent that ``serve_lsd`` holds."""
        tg = self._services_tg
        if tg is None or self._lsd is not None or self.config.proxy_only:
            return
        from ..net.lsd import LsdService

        lsd = LsdService(listen_port=self._listen_port, listen_host=self.config.listen_host)
        lsd.netbind = self.config.netbind()
        for info_hash, on_peers in self._lsd_torrents.items():
            lsd.add_torrent(info_hash, on_peers)
        await tg.start(self._run_lsd, lsd)

    async def _run_lsd(self, lsd: LsdService, *,
                       task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        done = anyio.Event()
        try:
            with anyio.CancelScope() as scope:
                self._lsd_scope = (scope, done)

                def started() -> None:
                    self._lsd = lsd
                    task_status.started()
                    self._services_changed()

                await lsd.run(task_status=_Started(started))
        finally:
            if self._lsd is lsd:
                self._lsd = None
            if self._lsd_scope is not None and self._lsd_scope[1] is done:
                self._lsd_scope = None
            done.set()

    async def serve_lsd(self, info_hash: bytes,
                        on_peers: Callable[[Iterable[tuple[str, int]]], None]) -> None:
        """Announce ``info_hash`` by LSD for as long as this task runs (cancel it to stop),
        whenever LSD runs: turned on later, or started again, it announces it too."""
        self._lsd_torrents[info_hash] = on_peers
        if self._lsd is not None:
            self._lsd.add_torrent(info_hash, on_peers)
        try:
            await anyio.sleep(math.inf)
        finally:
            if self._lsd_torrents.get(info_hash) is on_peers:
                del self._lsd_torrents[info_hash]
                if self._lsd is not None:
                    self._lsd.remove_torrent(info_hash)

    @staticmethod
    async def _stop_one(held: tuple[anyio.CancelScope, anyio.Event] | None) -> None:
        if held is not None:
            held[0].cancel()
            with anyio.CancelScope(shield=True):
                await held[1].wait()

    def _lock(self) -> anyio.Lock:
        if self._reconfiguring is None:
            self._reconfiguring = anyio.Lock()
        return self._reconfiguring

    async def set_dht(self, enabled: bool) -> None:
        """Turn the DHT on or off (``Config.dht_enabled``) while the services run too: off, the
        node saves its routing table and stops (the UDP socket it shares with uTP stays open);
        on, a node starts and bootstraps as at start-up, and the sessions' DHT announces go on."""
        async with self._lock():
            self.config.dht_enabled = enabled
            if not self._running or self._starting is not None:
                return  # (a start under way reads the config)
            if enabled:
                await self._start_dht()
            else:
                await self._stop_one(self._dht_scope)

    async def set_lsd(self, enabled: bool) -> None:
        """Turn Local Service Discovery on or off (``Config.lsd_enabled``) while the services run
        too: its sockets leave the groups, or join them and announce every running torrent."""
        async with self._lock():
            self.config.lsd_enabled = enabled
            if not self._running or self._starting is not None:
                return
            if enabled:
                await self._start_lsd()
            else:
                await self._stop_one(self._lsd_scope)

    async def check_listen_port(self, port: int) -> None:
        """``ConfigError`` naming ``listen_port``, with the system's reason, when ``port`` cannot
        be listened on now (TCP, and UDP for uTP), or naming ``listen_host`` when no port can be
        there (an address of no interface, a name that is none: ``_listen_refusal``); nothing is
        kept open. 0 (any port) and the port listened on now always can."""
        if port == 0 or (self._running and port == self._listen_port):
            return
        host = self.config.listen_host or None
        bind = self.config.netbind()
        try:
            listener = await anyio.create_tcp_listener(local_host=host, local_port=port, reuse_port=False) \
                if bind is None else await tcp_listener(bind, self.config.listen_host, port)
            await listener.aclose()
            if self.config.transport != "tcp":
                self._probe_udp(port)
        except OSError as exc:
            said = f"port {port} cannot be listened on"
            raise _listen_refusal(exc, self.config.listen_host, said) from None

    async def choose_listen_port(self, tries: int = 20) -> int:
        """A port ``check_listen_port`` finds free now, drawn at random from 1024–65535 outside
        the system's range of ports for outgoing connections (a listener there may find one of
        them holding its port at the next start), as qBittorrent draws one at its first start;
        after ``tries`` taken ones, any free port the system gives (``ConfigError`` naming
        ``listen_port`` when none is). Nothing is kept open: the caller keeps the number."""
        low, high = outgoing_ports()
        skipped = high - low + 1
        others = MAX_PORT + 1 - PRIVILEGED_PORTS - skipped  # (none: the system's pick at once)
        draw = secrets.SystemRandom()
        for _ in range(tries if others > 0 else 0):
            port = PRIVILEGED_PORTS + draw.randrange(others)
            port += skipped if port >= low else 0  # (the outgoing range stepped over)
            try:
                await self.check_listen_port(port)
            except ConfigError as exc:
                if exc.field != "listen_port":  # (the address: no other port is better)
                    raise
                continue
            return port
        host = self.config.listen_host or None
        family = socket.AF_INET6 if host is not None and ":" in host else socket.AF_INET
        try:
            with socket.socket(family) as probe:
                probe.bind((host or "", 0))
                return int(probe.getsockname()[1])
        except OSError as exc:
            raise _listen_refusal(exc, self.config.listen_host, "no port can be listened on") from None

    def _probe_udp(self, port: int) -> None:
        """``OSError`` when uTP's UDP socket could not be bound to ``port`` now (nothing is kept
        open)."""
        host = self.config.listen_host or None
        family = socket.AF_INET6 if host is not None and ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.bind((host or self.config.bind_address or "", port))

    def check_utp(self, transport: Transport) -> None:
        """``ConfigError`` naming ``transport``, with the system's reason, when ``transport``
        turns uTP on and its UDP socket could not be bound to the port listened on now; nothing
        is kept open. Nothing to check when uTP stays off or runs already, when the services do
        not run (their start binds it, or says in the log why it cannot), or under proxy only."""
        if transport == "tcp" or not self._running or self._utp is not None or self.config.proxy_only:
            return
        try:
            self._probe_udp(self._listen_port)
        except OSError as exc:
            raise ConfigError(f"uTP cannot listen on UDP port {self._listen_port}: {exc.strerror or exc}",
                              "transport") from None

    async def set_transport(self, transport: Transport) -> None:
        """Dial and accept peers over ``transport`` from now on (``Config.transport``: uTP and
        TCP, or one alone); the connections made before stay, as libtorrent's protocol settings
        apply to new connections. uTP turned off: its socket stays open (the DHT's too, when on
        it), an incoming uTP connection is refused (reset), none is dialed. uTP turned on while
        no uTP socket runs (the services started with TCP alone): the services start again as
        at a start, so the uTP socket is on the port listened on (UDP), the DHT on it, and port
        mapping asks for that UDP port too (the peers' connections stay, as at a port change);
        a port taken since ``check_utp`` leaves uTP off, said in the log, as at a start. TCP
        turned off: an incoming TCP connection is closed at once, none is dialed (the listener
        stays: peers learn one port for both)."""
        async with self._lock():
            self.config.transport = transport  # (the uTP socket's refusing() reads it)
            if transport == "tcp" or self._utp is not None or self.config.proxy_only:
                return
            await self.restart_services(same_port=True)  # (nothing when they do not run, or start now)

    async def set_listen_port(self, port: int) -> None:
        """Listen on ``port`` (0: any free one) from now on (``Config.listen_port``): while the
        services run, the listener, the uTP socket (and the DHT on it), LSD and port mapping are
        started again on it. A port that cannot be listened on is a ``ConfigError`` naming
        ``listen_port`` with the reason, and the port listened on stays."""
        async with self._lock():
            before = self.config.listen_port
            if not self._running or self._starting is not None:
                self.config.listen_port = port
                return
            if port == self._listen_port and port != 0:
                self.config.listen_port = port
                return
            await self.check_listen_port(port)
            self.config.listen_port = port
            try:
                await self.restart_services()  # (the sessions tell their trackers the new port)
            except OSError as exc:  # (taken between the check and the bind: back to the old one)
                self.config.listen_port = before
                await self._start_services(anyio.Event())  # (the failed start left _starting None)
                self._services_changed()  # (any free one, when that was 0: told too)
                raise ConfigError(f"port {port} cannot be listened on: {exc.strerror or exc}",
                                  "listen_port") from None

    def _say_proxy_only(self) -> None:
        """Log each part that proxy-only mode leaves off (those the config would run)."""
        config = self.config
        socks5 = config.proxy is not None and config.proxy.kind == "socks5"  # (the DHT by its UDP relay)
        parts = {"listening for incoming peer connections": True, "uTP": config.transport != "tcp",
                 "the DHT": config.dht_enabled and not socks5, "LSD": config.lsd_enabled,
                 "port mapping": config.port_mapping}
        name = config.proxy.name if config.proxy is not None else ""
        for part, on in parts.items():
            if on:
                log.warning("proxy only: %s is off (the proxy %s carries outgoing TCP alone)", part, name)
        if socks5:
            log.info("proxy only: the DHT and UDP trackers go by the UDP relay of the proxy %s", name)

    async def _accept_peers(self, listener: anyio.abc.SocketListener,
                            tg: anyio.abc.TaskGroup) -> None:
        """Hand each incoming connection to ``_on_incoming``: on asyncio the socket the loop
        accepts on the listener's own (no stream, no second transport: the handshakes take it
        onto theirs), else the listener's stream. An accept that fails (no descriptor left:
        EMFILE) is tried again after a pause that grows to a second, said once in the log per
        episode: the listener neither spins nor dies (the connection waits in the kernel's
        backlog until a descriptor is free)."""
        raw = listener.extra(anyio.abc.SocketAttribute.raw_socket) if on_asyncio() else None
        pause = 0.0
        incoming: Incoming
        while True:
            await self._room_for_a_handshake()  # (the peer waits in the kernel's backlog meanwhile)
            try:
                if raw is None:
                    incoming = await listener.accept()
                else:
                    if raw.fileno() < 0:
                        return  # (the listener is closed)
                    incoming, _ = await asyncio.get_running_loop().sock_accept(raw)
            except anyio.ClosedResourceError:
                return
            except OSError as exc:
                if pause == 0.0:
                    why = (str(fdlimit.limit_reached("incoming peers wait")) if fdlimit.exhausted(exc)
                           else f"incoming peers wait: accept failed: {exc}")
                    log.warning("%s", why)
                pause = min(1.0, max(0.05, pause * 2))
                await anyio.sleep(pause)
                continue
            if pause:
                log.info("incoming peers accepted again")
                pause = 0.0
            if isinstance(incoming, socket.socket):
                with contextlib.suppress(OSError):  # (gone already: its handshake finds out)
                    incoming.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # (as anyio's stream)
            self.pending_handshakes += 1  # (counted here: the next turn of this loop sees it)
            tg.start_soon(self._on_incoming, incoming)

    async def _close_idle_files(self) -> None:
        """One sweep for every torrent: close the data files nobody read or wrote for a while."""
        idle = self.config.close_idle_files_after
        while True:
            await sleep_to_beat(max(idle / 2, 0.05))  # (woken with the daemon's other timers)
            closed = await anyio.to_thread.run_sync(self.files.close_idle, idle)
            if closed:
                log.debug("closed %d file descriptors idle for %g s", closed, idle)

    async def _start_utp(self, tg: anyio.abc.TaskGroup) -> UtpSocket | None:
        """The UDP socket for uTP on the TCP listen port (peers learn one port for both)."""
        if self.config.transport == "tcp":
            return None
        from ..net.utp.socket import UtpSocket

        def on_accept(stream: UtpStream) -> None:
            self.pending_handshakes += 1
            tg.start_soon(self._on_incoming, stream)

        def accepting() -> bool:  # (a SYN that finds no room is dropped: its sender sends it again)
            free = self._handshake_free()
            if not free:
                self.handshakes_deferred += 1
            return free

        utp = UtpSocket(on_accept=on_accept, accepting=accepting,
                        refusing=lambda: self.config.transport == "tcp")  # (uTP turned off at run time)
        utp.netbind = self.config.netbind()
        try:
            await tg.start(utp.run, self.config.listen_host or self.config.bind_address, self._listen_port)
        except OSError as exc:  # the UDP port is taken: keep TCP, say why uTP is off
            log.warning("uTP disabled: cannot bind UDP %s:%d: %s",
                        self.config.listen_host, self._listen_port, exc)
            return None
        self._utp = utp
        return utp

    # -- the proxy's UDP relay ------------------------------------------------------------
    def udp_relay(self) -> UdpRelay | None:
        """The UDP relay (SOCKS5 UDP ASSOCIATE) of the proxy the config names now, which UDP
        trackers, and under proxy only the DHT, go by; None when there is no SOCKS5 proxy. Made
        when first asked for (it associates at its first datagram) and run in our task group;
        another proxy in the config gets a relay of its own, and the old one is closed."""
        proxy = self.config.proxy
        relay = self._udp_relay
        bind = self.config.netbind()
        if relay is not None and relay.proxy == proxy and relay.bind == bind:
            return relay
        self._close_udp_relay()
        if proxy is None or proxy.kind != "socks5" or self._tg is None:
            return None
        from ..net.proxy.udp_relay import UdpRelay

        relay = self._udp_relay = UdpRelay(proxy, bind=bind)
        self._tg.start_soon(relay.run)
        return relay

    def _close_udp_relay(self) -> None:
        relay, self._udp_relay = self._udp_relay, None
        if relay is not None:
            relay.close()

    # -- services ------------------------------------------------------------------------
    @property
    def utp(self) -> UtpSocket | None:
        """The uTP socket (None when uTP is off or the services are not running)."""
        return self._utp

    @property
    def listen_port(self) -> int:
        """The TCP port incoming peers connect to (0 when the services are not running)."""
        return self._listen_port

    @property
    def dht(self) -> DhtNode | None:
        """The shared DHT node while it runs (``Config.dht_enabled``)."""
        return self._dht

    @property
    def lsd(self) -> LsdService | None:
        """The Local Service Discovery service while it runs (``Config.lsd_enabled``)."""
        return self._lsd

    @property
    def port_mapper(self) -> PortMapper | None:
        """The port mapping service while it runs (``Config.port_mapping``)."""
        return self._port_mapper

    def own_ip(self, toward: str) -> str | None:
        """Our address as a peer at ``toward`` sees it, as far as we know (BEP 40 needs it): the
        gateway's external address (port mapping), else the one the DHT's nodes report, else
        the listen address if it is one, else the local address the system would send from."""
        try:
            peer = ipaddress.ip_address(toward)
        except ValueError:
            return None  # a host name: no lookup here (it would block the loop)
        v6 = peer.version == 6
        dht_ip = self._dht.external_ip if self._dht is not None else None
        for ip in (self.external_ip, dht_ip, self.config.listen_host):
            if ip and _is_specific_ip(ip) and (":" in ip) == v6:
                return ip
        now = time.monotonic()
        key = (v6, peer.is_loopback)
        cached = self._local_ips.get(key)
        if cached is None or now - cached[0] > 60.0:
            try:  # a connected UDP socket knows its source address; nothing is sent
                with socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM) as probe:
                    bind = self.config.netbind()
                    if bind is not None:  # (the source address on the bound interface)
                        bind_socket(probe, bind)
                    probe.connect((toward, 9))
                    local = str(probe.getsockname()[0])
            except OSError:
                local = ""
            cached = self._local_ips[key] = (now, local)
        return cached[1] or None

    def _external_ip_learned(self, address: str) -> None:
        self.external_ip = address
        if self._dht is not None:
            self._dht.external_ip_known(address)  # BEP 42: our node id follows our address
        self.address_seen(address, "gateway")

    def check_descriptors(self, what: str) -> None:
        """Refuse new work (``DescriptorLimitReached``, saying ``what`` was refused, and a log line)
        while fewer than ``fdlimit.reserve()`` descriptors are free once the data files nobody
        uses are closed: what runs keeps its descriptors and the API can still answer."""
        soft = fdlimit.limit()
        now = time.monotonic()
        last = self._descriptors_seen
        if last is not None and now - last[0] < 1.0 and soft - last[1] >= 4 * fdlimit.reserve(soft):
            return  # (counted within the second with room to spare: a batch of adds lists /proc once)
        count = fdlimit.open_count()
        self._descriptors_seen = (now, count)
        if count < 0 or soft - count >= fdlimit.reserve(soft):
            return
        if self.files.shed():
            count = fdlimit.open_count()
            if soft - count >= fdlimit.reserve(soft):
                return
        error = fdlimit.limit_reached(what)
        log.warning("%s", error)
        raise error

    # -- connection and upload-slot limits ---------------------------------------------------
    @property
    def peers_per_torrent(self) -> int:
        """A torrent's connections at most, unless it has its own number."""
        own = self.limits.max_peers_per_torrent
        return own if own is not None else self.config.max_peers_per_torrent

    @property
    def uploads_per_torrent(self) -> int:
        """A torrent's regular unchoke slots."""
        own = self.limits.max_uploads_per_torrent
        return own if own is not None else self.config.upload_slots

    def connection_room(self) -> int:
        """How many more connections the limit over every torrent allows."""
        limit = self.limits.max_connections
        return max(0, limit - self.connections) if limit > 0 else NO_LIMIT_ROOM

    async def dial_turn(self, rank: int) -> None:
        """Wait for a dial's turn: ``limits.connection_speed`` a second over every session (none:
        at once), the lowest ``rank`` first (``engine/dialgate.py``)."""
        await self.dials.turn(rank, self.limits.connection_speed)

    def take_connection(self) -> bool:
        """Count one more connection, if the limit allows it (each taken is given back once)."""
        if self.connection_room() <= 0:
            return False
        self.connections += 1
        return True

    def give_connection(self) -> None:
        """A connection taken with ``take_connection`` ended."""
        self.connections -= 1

    def upload_room(self, held: int) -> int:
        """How many peers a session holding ``held`` unchoked ones may have unchoked."""
        limit = self.limits.max_uploads
        return max(0, limit - (self.unchoked - held)) if limit > 0 else NO_LIMIT_ROOM

    @property
    def ip_filter(self) -> IpFilter:
        """The addresses no session connects to nor accepts (blocklists and banned addresses)."""
        return self._ip_filter

    def set_ip_filter(self, ip_filter: IpFilter, *, trackers: bool = False) -> None:
        """Use ``ip_filter`` from now on: every session drops its peers that it blocks;
        ``trackers``: a tracker whose host is or resolves to a blocked address is not contacted."""
        self._filter_trackers = trackers
        if ip_filter is self._ip_filter:  # (the same lists: nothing to drop)
            return
        self._ip_filter = ip_filter
        for watcher in list(self._filter_watchers.values()):
            watcher(ip_filter)

    async def tracker_refused(self, url: str) -> str | None:
        """Why the tracker at ``url`` may not be contacted (None: it may): its host is, or
        resolves to, an address the IP filter blocks, when the filter applies to trackers."""
        ip_filter = self._ip_filter
        if not self._filter_trackers or not len(ip_filter):
            return None
        try:
            host = urlsplit(url).hostname
        except ValueError:
            return None  # (the tracker's client says why the URL is malformed)
        if not host:
            return None
        if ip_filter.blocked(host):
            return f"the tracker's address {host} is blocked by the IP filter"
        if address_int(host) is not None:
            return None
        infos = []
        with anyio.move_on_after(TRACKER_LOOKUP_TIMEOUT):
            try:
                infos = await anyio.getaddrinfo(host, None, type=socket.SOCK_STREAM)
            except OSError:
                return None  # (the tracker's client reports the failed look-up)
        for info in infos:
            address = str(info[4][0])
            if ip_filter.blocked(address):
                return f"the tracker's host {host} resolves to {address}, blocked by the IP filter"
        return None

    def watch_filter(self, info_hash: bytes, watcher: Callable[[IpFilter], None]) -> None:
        """Call ``watcher`` with each new filter while ``info_hash`` is registered."""
        self._filter_watchers[info_hash] = watcher

    def set_dial_out(self, on: bool) -> None:
        """Whether sessions make outgoing connections (``limits.dial_out``; off: incoming peers
        only, as libtorrent's ``connection_speed`` 0). Turned on, each torrent's dialer that
        stopped for it (``wait_for_dial_out``) starts again at once."""
        self.limits.dial_out = on
        if on:
            waiting, self._dial_out_waiting = self._dial_out_waiting, {}
            for wake in waiting.values():
                wake()

    def wait_for_dial_out(self, info_hash: bytes, wake: Callable[[], None]) -> None:
        """``info_hash``'s dialer stopped because outgoing connections are off: ``wake`` is
        called when they are turned on (no round, no timer meanwhile), unless the torrent is
        unregistered first."""
        self._dial_out_waiting[info_hash] = wake

    def register(self, info_hash: bytes, handler: IncomingHandler) -> None:
        """Route incoming peers asking for ``info_hash`` to ``handler``; ``SessionError`` if taken
        (by a session, or by a dormant torrent: see ``register_dormant``)."""
        if info_hash in self._routes or info_hash in self._dormant:
            raise SessionError(f"torrent {info_hash.hex()} is already registered")
        self._routes[info_hash] = handler

    def register_dormant(self, info_hash: bytes, wake: DormantWake) -> None:
        """Incoming peers may ask for ``info_hash``, a torrent without a session now: the first
        that does calls ``wake`` (which starts its session: that session registers its handler
        and takes the peer), the others that come meanwhile wait for that one wake (single
        flight). The entry goes with the wake, whether it works or not (``wake`` raising: the
        peers that waited are closed); ``SessionError`` if ``info_hash`` is taken."""
        if info_hash in self._routes or info_hash in self._dormant or info_hash in self._waking:
            raise SessionError(f"torrent {info_hash.hex()} is already registered")
        self._dormant[info_hash] = wake

    def unregister_dormant(self, info_hash: bytes) -> None:
        """``info_hash`` no longer wakes on a peer's request (its session is started otherwise,
        or it ended)."""
        self._dormant.pop(info_hash, None)

    def waking(self, info_hash: bytes) -> int:
        """How many incoming peers wait for ``info_hash``'s wake (0: none under way)."""
        waking = self._waking.get(info_hash)
        return len(waking[1]) if waking is not None else 0

    async def _wake(self, info_hash: bytes) -> IncomingHandler | None:
        """Wake the dormant torrent ``info_hash`` (or wait for the wake under way); the handler
        its session registered, None when the wake failed (logged) or it has none."""
        waking = self._waking.get(info_hash)
        if waking is not None:
            waking[1].append(None)
            await waking[0].wait()
            return self._routes.get(info_hash)
        wake = self._dormant.pop(info_hash, None)
        if wake is None:
            return self._routes.get(info_hash)
        done = anyio.Event()
        self._waking[info_hash] = (done, [None])
        try:
            await wake()
        except Exception as exc:
            log.info("torrent %s could not be woken for an incoming peer: %s", info_hash.hex(), exc)
            return None
        finally:
            del self._waking[info_hash]
            done.set()
        return self._routes.get(info_hash)

    def unregister(self, info_hash: bytes) -> None:
        """Stop routing incoming peers for ``info_hash``."""
        self._routes.pop(info_hash, None)
        self._filter_watchers.pop(info_hash, None)
        self._service_watchers.pop(info_hash, None)
        self._dial_out_waiting.pop(info_hash, None)

    def set_handshaker(self, handshaker: Handshaker) -> None:
        """Use ``handshaker`` for incoming connections."""
        self._handshaker = handshaker

    def info_hashes(self) -> list[bytes]:
        """The torrents incoming peers may ask for (MSE finds theirs among these): with a
        session, dormant, or being woken."""
        return [*self._routes, *self._dormant, *(h for h in self._waking if h not in self._routes)]

    def knows(self, info_hash: bytes) -> bool:
        """Whether incoming peers may ask for ``info_hash``."""
        return info_hash in self._routes or info_hash in self._dormant or info_hash in self._waking

    def _handshake_free(self) -> bool:
        """Whether another incoming connection may be taken: fewer than ``max_pending_handshakes``
        are in their handshake (each holds a file descriptor for up to ``handshake_timeout``, so
        an idle flood would otherwise use them all up). Past it, a TCP peer waits in the kernel's
        backlog and a uTP SYN is dropped until one is through, rather than being refused: a burst
        of peers (a thousand torrents' reconnecting after a restart) is taken as fast as the
        handshakes go, not refused and dialled again."""
        return self.pending_handshakes < self.config.max_pending_handshakes

    async def _room_for_a_handshake(self) -> None:
        """Wait until another incoming connection may be taken (``_handshake_free``). The accept
        loops (one a listener: IPv4 and IPv6) wait on one event, which the handshake through sets."""
        while not self._handshake_free():
            self.handshakes_deferred += 1
            if self._handshake_room is None:
                self._handshake_room = anyio.Event()
            await self._handshake_room.wait()

    def _handshake_through(self) -> None:
        self.pending_handshakes -= 1
        room = self._handshake_room
        if room is not None and self._handshake_free():
            self._handshake_room = None
            room.set()

    async def _on_incoming(self, incoming: Incoming) -> None:
        """An incoming connection taken (counted in ``pending_handshakes`` by its taker) through
        its handshake to its torrent's session, or closed."""
        pending = True
        given = handed_off = False
        peer: IncomingPeer | None = None
        try:
            if self.config.transport == "utp" and isinstance(incoming, socket.socket
                                                             | anyio.abc.SocketStream):
                return  # TCP refused: uTP only
            remote = _remote_address(incoming)
            if isinstance(remote, tuple) and not is_local(str(remote[0])):
                self.reached_from_outside = True  # (whatever its handshake: it came through)
            if isinstance(remote, tuple) and self._ip_filter.blocked(str(remote[0])):
                self.refused_by_filter += 1
                peer_event(str(remote[0]), "incoming connection from %s refused: blocked by the IP filter",
                           remote[0], blocked=True, reason="IP filter")
                return
            if self._handshaker is None:
                return
            given = True
            with anyio.fail_after(self.config.handshake_timeout):
                info_hash, peer = await self._handshaker(incoming, self.knows)  # (a socket is its now)
            self._handshake_through()  # (through: a wake's wait is not a handshake's)
            pending = False
            handler = self._routes.get(info_hash)
            if handler is None and (info_hash in self._dormant or info_hash in self._waking):
                handler = await self._wake(info_hash)
            if handler is not None:
                handed_off = handler(peer)
        except Exception as exc:  # a bad peer never breaks the listener
            log.debug("incoming connection dropped: %s", exc)
        finally:
            if pending:
                self._handshake_through()
            if not given:
                await _close_incoming(incoming)
            elif not handed_off:
                with anyio.CancelScope(shield=True):
                    # (it may own the socket now: see peer/protocol.py; a socket is the
                    # handshaker's); a close that fails does not break the listener either
                    for closing in (peer, None if isinstance(incoming, socket.socket) else incoming):
                        try:
                            if closing is not None:
                                await closing.aclose()
                        except Exception as exc:
                            log.debug("incoming connection: closing it failed: %r", exc)


def outgoing_ports(path: Path = OUTGOING_PORTS_FILE) -> tuple[int, int]:
    """The first and last of the ports the system gives outgoing connections (its file's two
    numbers, kept inside the unprivileged ports; ``OUTGOING_PORTS`` when it cannot be read)."""
    try:
        low, high = (int(word) for word in path.read_text().split())
    except (OSError, ValueError):
        return OUTGOING_PORTS
    low, high = max(low, PRIVILEGED_PORTS), min(high, MAX_PORT)
    return (low, high) if low <= high else OUTGOING_PORTS


def _remote_address(incoming: Incoming) -> object:
    """An incoming connection's remote address (None if it is gone already: its handshake will
    find out)."""
    try:
        if isinstance(incoming, socket.socket):
            return incoming.getpeername()
        return incoming.extra(anyio.abc.SocketAttribute.remote_address, None)
    except OSError:
        return None


async def _close_incoming(incoming: Incoming) -> None:
    """Close an incoming connection refused before its handshake (a close that fails does not
    break the listener)."""
    try:
        if isinstance(incoming, socket.socket):
            incoming.close()
            return
        with anyio.CancelScope(shield=True):
            await incoming.aclose()
    except Exception as exc:
        log.debug("incoming connection: closing it failed: %r", exc)


class _Started:
    """A task status that runs ``then`` when the task says it started (the shared resources
    take the service as theirs at that moment)."""

    def __init__(self, then: Callable[[], None]) -> None:
        self._then = then

    def started(self, value: None = None) -> None:
        self._then()


def _is_specific_ip(host: str) -> bool:
    try:
        return not ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def _tokens(limit: int) -> float:
    """A limit as a ``CapacityLimiter``'s tokens (-1: no limit)."""
    return math.inf if limit < 0 else limit
