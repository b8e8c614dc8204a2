"""The DHT node: a thin async shell (one UDP socket, one task group) around the sans-I/O parts.

``DhtNode.run()`` binds the socket, loads the saved routing table, bootstraps, answers queries
and keeps the table fresh until cancelled; then it saves the table and closes the socket.
Lookups (``get_peers``, ``announce_peer``, BEP 44 ``get``/``put``) run in the caller's task,
each with its own small task group for the α parallel queries.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import random
import socket
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import anyio
from anyio.abc import TaskGroup, TaskStatus
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ...errors import BencodeError, DHTError
from ...events import DhtBootstrapped, EventBus
from ...formats.bencode import BValue
from ...formats.compact import is_ip_literal
from . import bep44, items, krpc
from .bep42 import generate_node_id, is_exempt, is_valid_node_id
from .ip_voting import ExternalIpVotes
from .krpc import Address, NodeInfo
from .lookup import ALPHA, Lookup
from .peer_store import PeerStore, bloom_contains, bloom_estimate, bloom_insert, new_bloom
from .persistence import decode_state, encode_state, write_atomically
from .ratelimit import ByteLimiter, RateLimiter
from .routing import K, RoutingTable
from .server import QueryHandler
from .tokens import TokenManager
from .transport import DatagramTransport, UdpTransport

__all__ = ["DhtNode", "LookupStats", "RemoteError"]

log = logging.getLogger(__name__)

VERSION = b"TE01"  # "v" key: client id + version (BEP 5 / BEP 20 style)
QUERY_TIMEOUT = 2.0  # seconds before a query counts as failed
MAINTENANCE_INTERVAL = 60.0  # seconds between table maintenance passes
MAX_PINGS_IN_FLIGHT = 16


class RemoteError(DHTError):
    """The remote node answered with a KRPC error."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"remote error {code}: {message}")
        self.code = code
        self.message = message


@dataclass
class LookupStats:
    """Figures of one lookup (for benchmarks and debugging)."""

    queries: int = 0
    responses: int = 0
    failures: int = 0
    hops: int = 0


@dataclass
class _Pending:
    address: Address
    event: anyio.Event = field(default_factory=anyio.Event)
    reply: krpc.Message | None = None


class DhtNode:
    """A BEP 5 DHT node (with BEP 32/33/42/43/44/51), on a UDP socket or an injected transport."""

    def __init__(
        self,
        *,
        bind: tuple[str, int] = ("0.0.0.0", 0),
        node_id: bytes | None = None,
        bootstrap: Sequence[tuple[str, int]] = (),
        state_path: Path | None = None,
        events: EventBus | None = None,
        enforce_bep42: bool = True,
        rng: random.Random | None = None,
        transport: DatagramTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        read_only: bool = False,
        query_timeout: float = QUERY_TIMEOUT,
        rate: float = 20.0,
        burst: float = 40.0,
        reply_bytes_rate: float = 2048.0,
        reply_bytes_burst: float = 8192.0,
        reply_bytes_total_rate: float = 128 * 1024.0,
        reply_bytes_total_burst: float = 256 * 1024.0,
        maintenance_interval: float = MAINTENANCE_INTERVAL,
        k: int = K,
        alpha: int = ALPHA,
        version: bytes | None = VERSION,
        lookup_names: bool = True,
        on_external_ip: Callable[[str], None] | None = None,
    ) -> None:
        if node_id is not None and len(node_id) != 20:
            raise DHTError("node id must be 20 bytes")
        self._bind = bind
        self._bootstrap_nodes = list(bootstrap)
        # False: a bootstrap node's host name is not looked up here (through a proxy that must
        # see all traffic, a DNS query would leave outside it); such nodes are skipped
        self._lookup_names = lookup_names
        # their addresses (names resolved by the first bootstrap): what a lookup asks first while
        # no node of the table has answered
        self._seeds: list[Address] = [(h, p) for h, p in self._bootstrap_nodes if is_ip_literal(h)]
        self._state_path = state_path
        self._events = events
        self._enforce_bep42 = enforce_bep42
        self._rng = rng or random.Random()
        self._clock = clock
        self._transport = transport
        self._own_transport = transport is None
        self.read_only = read_only
        self.query_timeout = query_timeout
        self.maintenance_interval = maintenance_interval
        self.k = k
        self.alpha = alpha
        self.version = version
        self._fixed_id = node_id is not None
        now = clock()
        self.table = RoutingTable(
            node_id or self._rng.randbytes(20), now=now, k=k, enforce_bep42=enforce_bep42
        )
        self.tokens = TokenManager(self._rng, now)
        self.peers = PeerStore()
        self.items = bep44.ItemStore()
        self.handler = QueryHandler(
            table=lambda: self.table,
            tokens=self.tokens,
            peers=self.peers,
            items=self.items,
            rng=self._rng,
            version=version,
        )
        self.rate_limiter = RateLimiter(rate=rate, burst=burst)
        # Packets alone do not bound amplification (a BEP 44 "get" reply is ~15x its query):
        # reply bytes are bounded per source and in total.
        self.byte_limiter = ByteLimiter(reply_bytes_rate, reply_bytes_burst,
                                        reply_bytes_total_rate, reply_bytes_total_burst)
        self.stats: Counter[str] = Counter()
        self.external_ip: str | None = None
        self._on_external_ip = on_external_ip  # (told each address the votes adopt)
        self._ip_votes = ExternalIpVotes()
        self._pending: dict[bytes, _Pending] = {}
        self._next_tid = self._rng.getrandbits(16)
        self._tg: TaskGroup | None = None
        self._started = anyio.Event()
        self._bootstrapped = anyio.Event()
        self._bootstrap_done: anyio.Event | None = None
        self._pinging: set[bytes] = set()
        self._stopped = False

    # ------------------------------------------------------------ properties
    @property
    def node_id(self) -> bytes:
        """Our DHT node id."""
        return self.table.own_id

    @property
    def port(self) -> int:
        """The UDP port the node listens on; ``DHTError`` if it is not running."""
        if self._transport is None:
            raise DHTError("the DHT node is not running")
        return self._transport.local_address[1]

    @property
    def _is_v6(self) -> bool:
        return self._transport is not None and ":" in self._transport.local_address[0]

    @property
    def address(self) -> Address:
        """The node's bound ``(host, port)``; ``DHTError`` if it is not running."""
        if self._transport is None:
            raise DHTError("the DHT node is not running")
        return self._transport.local_address

    # ------------------------------------------------------------ lifecycle
    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Bind, load the saved table, bootstrap and serve until cancelled; then save and close."""
        if self._transport is None:
            self._transport = await UdpTransport.bind(*self._bind)
        self._stopped = False
        try:
            await self._load_state()
            async with anyio.create_task_group() as tg:
                self._tg = tg
                tg.start_soon(self._receive_loop)
                tg.start_soon(self._maintenance_loop)
                self._started.set()
                tg.start_soon(self._bootstrap_once)
                task_status.started()
                await anyio.sleep_forever()
        finally:
            self._tg = None
            self._stopped = True
            for pending in self._pending.values():
                pending.event.set()  # wake callers still waiting: the node is gone
            with anyio.CancelScope(shield=True):
                try:
                    await self._save_state()
                except OSError as exc:
                    log.warning("could not save DHT state to %s: %s", self._state_path, exc)
                if self._own_transport:
                    await self._transport.aclose()
                    self._transport = None
                else:
                    await self._transport.aclose()

    async def wait_bootstrapped(self) -> None:
        """Return once the first bootstrap has finished (successfully or with no nodes found)."""
        await self._bootstrapped.wait()

    async def bootstrap(self) -> int:
        """Bootstrap now (single-flight: concurrent callers share one run). Returns table size."""
        await self._started.wait()
        if self._bootstrap_done is None:
            done = self._bootstrap_done = anyio.Event()
            assert self._tg is not None
            self._tg.start_soon(self._bootstrap_task, done)
        else:
            done = self._bootstrap_done
        await done.wait()
        return len(self.table)

    async def _bootstrap_once(self) -> None:
        await self.bootstrap()

    async def _bootstrap_task(self, done: anyio.Event) -> None:
        self.stats["bootstraps"] += 1
        try:
            seeds = await self._resolve(self._bootstrap_nodes)
            if seeds:
                self._seeds = seeds
            lookup = self._new_lookup(self.node_id, seeds)
            await self._iterate(
                lookup, lambda n: krpc.FindNode(tid=b"", node_id=self.node_id, target=self.node_id)
            )
        except DHTError as exc:
            log.info("DHT bootstrap failed: %s", exc)
        finally:
            self._bootstrap_done = None
            done.set()
            if not self._bootstrapped.is_set():
                self._bootstrapped.set()
                if self._events is not None:
                    self._events.publish(DhtBootstrapped(nodes=len(self.table)))

    async def _resolve(self, nodes: Sequence[tuple[str, int]]) -> list[Address]:
        out = []
        for host, port in nodes:
            try:
                ipaddress.ip_address(host)
                out.append((host, port))
                continue
            except ValueError:
                pass
            if not self._lookup_names:
                log.info("DHT bootstrap node %s:%d skipped: host names are not looked up outside the proxy",
                         host, port)
                continue
            try:
                infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
            except OSError as exc:
                log.info("cannot resolve DHT bootstrap node %s: %s", host, exc)
                continue
            for _family, _type, _proto, _canon, sockaddr in infos:
                out.append((str(sockaddr[0]), int(sockaddr[1])))
        return out

    # ------------------------------------------------------------ state file
    async def _load_state(self) -> None:
        path = self._state_path
        if path is None:
            return
        try:
            data = await anyio.to_thread.run_sync(path.read_bytes)
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning("cannot read DHT state %s: %s", path, exc)
            return
        try:
            saved = decode_state(data)
        except (BencodeError, DHTError) as exc:
            log.warning("ignoring unreadable DHT state %s: %s", path, exc)
            return
        if not self._fixed_id and saved.node_id is not None:
            self.table = RoutingTable(
                saved.node_id, now=self._clock(), k=self.k, enforce_bep42=self._enforce_bep42
            )
        nodes = saved.nodes
        self.table.add_all(nodes, self._clock())
        self.stats["state_nodes_loaded"] = len(self.table)

    def state_bytes(self) -> bytes:
        """The routing table and node id as bencoded bytes for the state file."""
        return encode_state(self.node_id, [n.info for n in self.table])

    async def _save_state(self) -> None:
        if self._state_path is not None:
            await anyio.to_thread.run_sync(write_atomically, self._state_path, self.state_bytes())

    # ------------------------------------------------------------ receiving
    async def _receive_loop(self) -> None:
        assert self._transport is not None
        while True:
            data, address = await self._transport.receive()
            await self.datagram_received(data, address)

    async def datagram_received(self, data: bytes, address: Address) -> None:
        """Handle one datagram. Never raises for bad input: every drop is counted in ``stats``."""
        self.stats["packets_in"] += 1
        try:
            msg = krpc.decode_message(data)
        except krpc.KrpcDecodeError as exc:
            self.stats["dropped_malformed"] += 1
            source = _rate_key(address[0])
            if exc.is_query and exc.tid is not None and self.rate_limiter.allow(source, self._clock()):
                await self._send_reply(
                    krpc.Error(tid=exc.tid, code=krpc.ERROR_PROTOCOL, message=exc.reason), address
                )
            return
        if isinstance(msg, krpc.Query):
            await self._on_query(msg, address)
        else:
            self._on_reply(msg, address)

    async def _on_query(self, q: krpc.Query, address: Address) -> None:
        now = self._clock()
        if not self.rate_limiter.allow(_rate_key(address[0]), now):
            self.stats["dropped_rate_limited"] += 1
            return
        self.stats["queries_in"] += 1
        if self.read_only:
            return  # BEP 43: a read-only node does not answer queries
        if not q.read_only:  # BEP 43: never put read-only nodes in the table
            self._heard_from(q.node_id, address, now, responded=False)
        reply = self.handler.handle(q, address, now)
        await self._send_reply(reply, address)

    def _on_reply(self, msg: krpc.Message, address: Address) -> None:
        pending = self._pending.get(msg.tid)
        if pending is None or pending.address != address:
            self.stats["dropped_unexpected_reply"] += 1
            return
        del self._pending[msg.tid]
        pending.reply = msg
        pending.event.set()
        if isinstance(msg, krpc.Response):
            now = self._clock()
            self._heard_from(msg.node_id, address, now, responded=True)
            if msg.ip is not None:
                self._vote_external_ip(msg.ip[0], address)

    def _heard_from(self, node_id: bytes, address: Address, now: float, *, responded: bool) -> None:
        if not responded and self.table.get(node_id) is None:
            # A stranger that queried us enters the table only once it answers a ping of ours:
            # a forged source address never does.
            if self.table.has_room_for(node_id, address[0], now):
                self._start_ping(NodeInfo(node_id, address[0], address[1]))
            return
        to_ping = self.table.heard_from(node_id, address[0], address[1], now, responded=responded)
        for node in to_ping[:2]:
            self._start_ping(node.info)

    def _start_ping(self, node: NodeInfo) -> None:
        if (
            self._tg is not None
            and node.node_id not in self._pinging
            and len(self._pinging) < MAX_PINGS_IN_FLIGHT
        ):
            self._pinging.add(node.node_id)
            self._tg.start_soon(self._ping_questionable, node)

    async def _ping_questionable(self, node: NodeInfo) -> None:
        self.stats["pings_out"] += 1
        try:
            await self.ping(node.address)  # an answer updates the table in _on_reply
        except DHTError:
            self.table.failed(node.node_id, self._clock())
        finally:
            self._pinging.discard(node.node_id)

    def external_ip_seen(self, ip: str, source: Address) -> None:
        """Report our address as another party saw it (e.g. BEP 10 ``yourip`` from a peer at
        ``source``). Counts like the ``ip`` field of DHT replies (BEP 42)."""
        try:
            ip = str(ipaddress.ip_address(ip))
        except ValueError:
            return
        self._vote_external_ip(ip, source)

    def _vote_external_ip(self, ip: str, voter: Address) -> None:
        """BEP 42: learn our external address from the ``ip`` field of replies; once enough
        distinct nodes agree, derive our id from it (unless an id was given explicitly)."""
        if self._ip_votes.vote(ip, voter[0]) and ip != self.external_ip:
            self._adopt_external_ip(ip)
            if self._on_external_ip is not None:
                self._on_external_ip(ip)

    def external_ip_known(self, ip: str) -> None:
        """Our external address from a source we trust without a vote: our own gateway, through
        port mapping (NAT-PMP or UPnP). BEP 42: the node id is derived from it."""
        try:
            ip = str(ipaddress.ip_address(ip))
        except ValueError:
            return
        if ip != self.external_ip:
            self._adopt_external_ip(ip)

    def _adopt_external_ip(self, ip: str) -> None:
        self.external_ip = ip
        if self._fixed_id or not self._enforce_bep42 or is_exempt(ip) or is_valid_node_id(self.node_id, ip):
            return
        new_id = generate_node_id(ip, self._rng)
        log.info("DHT: external address %s, new BEP 42 node id %s", ip, new_id.hex())
        old = [n.info for n in self.table]
        self.table = RoutingTable(new_id, now=self._clock(), k=self.k, enforce_bep42=self._enforce_bep42)
        self.table.add_all(old, self._clock())

    # ------------------------------------------------------------ sending
    async def _send(self, msg: krpc.Message, address: Address) -> None:
        await self._send_encoded(msg, address, reply=False)

    async def _send_reply(self, msg: krpc.Message, address: Address) -> None:
        """A reply to a query: sent only within the reply byte budgets (per source and total)."""
        await self._send_encoded(msg, address, reply=True)

    async def _send_encoded(self, msg: krpc.Message, address: Address, *, reply: bool) -> None:
        if self._transport is None:
            raise DHTError("the DHT node is not running")
        try:
            data = krpc.encode_message(msg)
        except DHTError:
            self.stats["encode_errors"] += 1
            return
        if reply:
            if not self.byte_limiter.allow(_rate_key(address[0]), len(data), self._clock()):
                self.stats["dropped_byte_limited"] += 1
                return
            self.stats["reply_bytes_out"] += len(data)
        self.stats["packets_out"] += 1
        await self._transport.send(data, address)

    def _new_tid(self) -> bytes:
        for _ in range(1 << 16):
            self._next_tid = (self._next_tid + 1) & 0xFFFF
            tid = self._next_tid.to_bytes(2, "big")
            if tid not in self._pending:
                return tid
        raise DHTError("too many queries in flight")

    async def query(self, address: Address, q: krpc.Query) -> krpc.Response:
        """Send ``q`` (its tid and id are filled in) and wait for the response.

        Raises DHTError on timeout and :class:`RemoteError` on a KRPC error reply.
        """
        await self._started.wait()
        tid = self._new_tid()
        q = dataclasses.replace(q, tid=tid, node_id=self.node_id, read_only=self.read_only,
                                version=self.version)
        pending = self._pending[tid] = _Pending(address)
        self.stats["queries_out"] += 1
        try:
            await self._send(q, address)
            with anyio.move_on_after(self.query_timeout):
                await pending.event.wait()
        finally:
            self._pending.pop(tid, None)
        reply = pending.reply
        if reply is None and self._stopped:
            raise DHTError("the DHT node stopped")
        if reply is None:
            self.stats["timeouts"] += 1
            raise DHTError(f"{q.method.decode()} to {address[0]}:{address[1]} timed out")
        if isinstance(reply, krpc.Error):
            raise RemoteError(reply.code, reply.message)
        assert isinstance(reply, krpc.Response)
        return reply

    async def ping(self, address: Address) -> bytes:
        """Ping ``address``; returns the remote node id."""
        r = await self.query(address, krpc.Ping(tid=b"", node_id=self.node_id))
        return r.node_id

    # ------------------------------------------------------------ lookups
    def _new_lookup(self, target: bytes, extra_seeds: Sequence[Address] = ()) -> Lookup:
        now = self._clock()
        lookup = Lookup(target, k=self.k, alpha=self.alpha, exclude_id=self.node_id)
        # Until some node of the table has answered us (a saved table may hold only nodes that
        # are gone), the bootstrap nodes and the table's closest are all asked at once, rather
        # than α at a time with the bootstrap nodes last, behind every saved node's time-out.
        cold = bool(extra_seeds) or not self.table.good_count(now)
        if cold:
            seeds = [(h, p) for h, p in (list(extra_seeds) or self._seeds) if (":" in h) == self._is_v6]
            lookup.add([NodeInfo(bytes(20), h, p) for h, p in seeds], unknown_id=True, urgent=True)
        lookup.add(self.table.closest(target, self.k * 2, now=now), urgent=cold)
        return lookup

    async def _iterate(
        self,
        lookup: Lookup,
        make_query: Callable[[NodeInfo], krpc.Query],
        on_response: Callable[[NodeInfo, krpc.Response], None] | None = None,
    ) -> LookupStats:
        """Run ``lookup`` to completion with α parallel queries, closest first."""
        changed = anyio.Event()

        async def one(node: NodeInfo) -> None:
            nonlocal changed
            try:
                try:
                    r = await self.query(node.address, make_query(node))
                except RemoteError:
                    raise
                except DHTError:
                    # Overdue: let another query take its slot, and ask once more (UDP loses
                    # packets; one loss should not drop one of the k closest from the result).
                    lookup.on_slow(node.address)
                    changed.set()
                    r = await self.query(node.address, make_query(node))
            except DHTError:
                lookup.on_failure(node.address)
                self.table.failed(node.node_id, self._clock())
            else:
                # Only contacts our socket can reach (BEP 32: one table per address family).
                v6 = self._is_v6
                found = [n for n in (*r.nodes, *r.nodes6) if (":" in n.host) == v6]
                lookup.on_response(node.address, found, token=r.token)
                if on_response is not None:
                    on_response(node, r)
            changed.set()

        async with anyio.create_task_group() as tg:
            while True:
                for node in lookup.next_queries():
                    tg.start_soon(one, node)
                if lookup.done:
                    break
                await changed.wait()
                changed = anyio.Event()
            tg.cancel_scope.cancel()
        return LookupStats(lookup.queries_sent, lookup.responses, lookup.failures, lookup.hops)

    async def find_node(self, target: bytes) -> list[NodeInfo]:
        """Iterative find_node: the k closest nodes to ``target`` that answered."""
        await self._started.wait()
        lookup = self._new_lookup(target)
        await self._iterate(lookup, lambda n: krpc.FindNode(tid=b"", node_id=self.node_id, target=target))
        return [c.info for c in lookup.results()]

    async def get_peers_lookup(
        self,
        info_hash: bytes,
        *,
        scrape: bool = False,
        on_response: Callable[[NodeInfo, krpc.Response], None] | None = None,
        on_peers: Callable[[list[Address]], None] | None = None,
    ) -> tuple[list[Address], Lookup, LookupStats]:
        """The get_peers lookup itself: peers found, the finished lookup (tokens) and its figures.

        ``on_peers`` gets the peers of each answer as it arrives (only those not seen before in
        this lookup), so the caller can dial them while the lookup goes on."""
        if len(info_hash) != 20:
            raise DHTError("info-hash must be 20 bytes")
        await self._started.wait()
        peers: dict[Address, None] = {}
        lookup = self._new_lookup(info_hash)

        def collect(node: NodeInfo, r: krpc.Response) -> None:
            new = [p for p in r.values if p not in peers]
            for p in new:
                peers[p] = None
            if on_response is not None:
                on_response(node, r)
            if new and on_peers is not None:
                on_peers(new)

        stats = await self._iterate(
            lookup,
            lambda n: krpc.GetPeers(tid=b"", node_id=self.node_id, info_hash=info_hash, scrape=scrape),
            collect,
        )
        self.stats["lookups"] += 1
        return list(peers), lookup, stats

    async def scrape(self, info_hash: bytes) -> tuple[float, float]:
        """BEP 33 DHT scrape: estimated (seeds, peers) of a swarm, from the union of the bloom
        filters of the nodes along a get_peers lookup."""
        seeds, peers = new_bloom(), new_bloom()
        legacy: set[str] = set()

        def collect(node: NodeInfo, r: krpc.Response) -> None:
            if r.bf_seeds is not None and r.bf_peers is not None:
                for acc, bf in ((seeds, r.bf_seeds), (peers, r.bf_peers)):
                    for i, b in enumerate(bf):
                        acc[i] |= b
            else:
                legacy.update(host for host, _ in r.values)  # BEP 33: legacy replies count as peers

        await self.get_peers_lookup(info_hash, scrape=True, on_response=collect)
        for host in legacy:
            if not bloom_contains(seeds, host):
                bloom_insert(peers, host)
        return bloom_estimate(seeds), bloom_estimate(peers)

    async def get_peers(
        self, info_hash: bytes, *, on_peers: Callable[[list[Address]], None] | None = None
    ) -> list[tuple[str, int]]:
        """Peers announced for ``info_hash``, found by an iterative get_peers lookup (``on_peers``:
        each answer's new peers as they arrive)."""
        peers, _, _ = await self.get_peers_lookup(info_hash, on_peers=on_peers)
        return peers

    async def announce_peer(
        self, info_hash: bytes, port: int, *, implied_port: bool = False, seed: bool = False,
        on_peers: Callable[[list[Address]], None] | None = None,
    ) -> int:
        """get_peers, then announce_peer to the k closest nodes that gave a token.
        Returns how many accepted the announce. ``on_peers`` gets the peers the lookup finds as
        they arrive (one lookup both finds peers and announces)."""
        _, lookup, _ = await self.get_peers_lookup(info_hash, on_peers=on_peers)
        targets = [c for c in lookup.results() if c.token is not None]
        return await self._fan_out(
            [
                (
                    c.info.address,
                    krpc.AnnouncePeer(
                        tid=b"",
                        node_id=self.node_id,
                        info_hash=info_hash,
                        port=port,
                        token=c.token or b"",
                        implied_port=implied_port,
                        seed=seed,
                    ),
                )
                for c in targets
            ]
        )

    async def _fan_out(self, queries: list[tuple[Address, krpc.Query]]) -> int:
        ok = 0

        async def one(address: Address, q: krpc.Query) -> None:
            nonlocal ok
            try:
                await self.query(address, q)
                ok += 1
            except DHTError as exc:
                log.debug("%s to %s failed: %s", q.method.decode(), address, exc)

        async with anyio.create_task_group() as tg:
            for address, q in queries:
                tg.start_soon(one, address, q)
        return ok

    # ------------------------------------------------------------ BEP 44 (dht/items.py)
    async def item_lookup(
        self, target: bytes, accept: Callable[[krpc.Response], bool]
    ) -> tuple[Lookup, list[krpc.Response]]:
        """A BEP 44 ``get`` lookup of ``target``: the lookup (its closest nodes with their
        tokens) and the replies whose value ``accept`` takes."""
        await self._started.wait()
        found: list[krpc.Response] = []
        lookup = self._new_lookup(target)

        def collect(node: NodeInfo, r: krpc.Response) -> None:
            if r.value is not None and accept(r):
                found.append(r)

        await self._iterate(
            lookup, lambda n: krpc.GetItem(tid=b"", node_id=self.node_id, target=target, seq=None), collect
        )
        return lookup, found

    async def put_to(self, lookup: Lookup, make: Callable[[bytes], krpc.Query]) -> int:
        """Send ``make(token)`` to each node of ``lookup`` that gave a token; how many stored it."""
        return await self._fan_out([(c.info.address, make(c.token)) for c in lookup.results()
                                    if c.token is not None])

    async def get_immutable(self, target: bytes) -> BValue | None:
        """BEP 44 get of an immutable item; the value is checked against its hash."""
        return await items.get_immutable(self, target)

    async def put_immutable(self, value: BValue) -> tuple[bytes, int]:
        """BEP 44 put of an immutable item. Returns (target, number of nodes that stored it)."""
        return await items.put_immutable(self, value)

    async def get_mutable(self, public_key: bytes, salt: bytes = b"") -> tuple[BValue, int] | None:
        """BEP 44 get of a mutable item: the verified value with the highest seq, and that seq."""
        return await items.get_mutable(self, public_key, salt)

    async def put_mutable(self, private_key: Ed25519PrivateKey, value: BValue, *, seq: int | None = None,
                          salt: bytes = b"", cas: int | None = None) -> tuple[bytes, int, int]:
        """BEP 44 put of a mutable item (see ``items.put_mutable``)."""
        return await items.put_mutable(self, private_key, value, seq=seq, salt=salt, cas=cas)

    async def sample_infohashes(self, address: Address, target: bytes | None = None) -> krpc.Response:
        """BEP 51 query to one node (for indexers and tests)."""
        t = target or self._rng.randbytes(20)
        return await self.query(address, krpc.SampleInfohashes(tid=b"", node_id=self.node_id, target=t))

    # ------------------------------------------------------------ maintenance
    async def _maintenance_loop(self) -> None:
        while True:
            await anyio.sleep(self.maintenance_interval)
            await self.maintain()

    async def maintain(self) -> None:
        """One maintenance pass: expire stored data, refresh stale buckets, re-bootstrap if empty."""
        now = self._clock()
        self.peers.expire(now)
        if not len(self.table):
            if self._bootstrap_nodes:
                await self.bootstrap()
            return
        for target in self.table.refresh_targets(now, self._rng)[:8]:
            with anyio.move_on_after(self.query_timeout * 10):
                await self.find_node(target)


def _rate_key(host: str) -> str:
    """The rate-limit bucket of a source: its IPv4 address, or its IPv6 /64, since one host
    or site holds a whole /64 and per-address buckets would cost it nothing."""
    try:
        ip = ipaddress.IPv6Address(host)
    except ValueError:
        return host
    if ip.ipv4_mapped is not None:  # an IPv4 peer on a dual-stack socket
        return str(ip.ipv4_mapped)
    return f"{int(ip) >> 64:x}::/64"


