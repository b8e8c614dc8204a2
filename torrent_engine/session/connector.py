"""Dialing peers from the pool within the connection budget, and taking incoming connections
the shared listener hands over."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

import anyio

from ..engine.dialgate import SEEDING_RANK
from ..errors import EncryptionError, TorrentEngineError
from ..formats.infohash import v2_on_wire
from ..logbook import peer_event
from ..policy.turnover import turnover_count, worst_peers
from .peer_io import PeerLink, open_connection
from .phases import FetchingMetadata, Loaded
from .state_table import State

if TYPE_CHECKING:
    from ..engine.shared import IncomingPeer, SharedResources
    from ..policy.ipfilter import IpFilter
    from .context import TorrentContext
    from .peer_pool import PeerSource

log = logging.getLogger("torrent_engine.session")


class PeerGreeting(Protocol):
    """The wire protocol as the connector hands it a connected peer (``peer_handler.PeerHandler``)."""

    async def serve(self, link: PeerLink, host: str, port: int, incoming: bool) -> None:
        """Run one connected peer until it or the session goes."""


class HolepunchDials(Protocol):
    """BEP 55 as the connector asks it for help (``holepunch.Holepunch``)."""

    async def dial_failed(self, key: tuple[str, int]) -> None:
        """A direct dial of ``key`` failed: ask the peer that listed it to put us in touch."""


ROUND = 2.0  # seconds between the dialer's rounds while an address may be dialed soon


class ConnectorHost(Protocol):
    """What dialing needs of its torrent beside the context: the parts a connection is handed to
    (they need the connector too, so the session is given as this)."""

    @property
    def context(self) -> TorrentContext:
        """What every part reads and calls (``context``)."""

    @property
    def handler(self) -> PeerGreeting:
        """Runs a connected peer."""

    @property
    def holepunch(self) -> HolepunchDials:
        """Asked to relay when a direct dial failed (BEP 55)."""


class Connector:
    """Whom to dial and when; the peers being dialed (or fetching metadata) count as connecting."""

    def __init__(self, session: ConnectorHost) -> None:
        self._s = session
        self._ctx = session.context
        self.connecting: set[tuple[str, int]] = set()
        self.encryption_refused: set[tuple[str, int]] = set()  # dialed, refused on the policy
        self._wakeup: anyio.Event | None = None  # (made when run() waits: ``wake`` sets it)
        self._running = False  # run()'s task exists (in the swarm's group)
        self._other_hashes: list[bytes] = []  # a hybrid's other info-hash, routed here too
        self.rounds = 0  # how many times run() looked for peers to dial
        self.max_peers = 0  # this torrent's connections at most (0: the shared default)
        self.dialing = 0  # dials waiting for their turn or under way (``dial``)
        self.turned_over = 0  # peers dropped to try others (``turn_over``)
        self._turnover_at: float | None = None  # when turnover looks next (None: not yet timed)

    def register(self, shared: SharedResources) -> None:
        """Have the shared listener hand this torrent's incoming peers to ``on_incoming``."""
        shared.register(self._ctx.info_hash, self.on_incoming)
        shared.watch_filter(self._ctx.info_hash, self.filter_changed)

    def register_other_hashes(self) -> None:
        """A hybrid is reached by either info-hash (v1, or v2 truncated: BEP 52), so peers that
        came by the other one (e.g. a ``btmh`` magnet) are taken too, unless another session
        of ours has that hash."""
        ctx = self._ctx
        phase, shared = ctx.phase, ctx.shared
        if not isinstance(phase, Loaded) or shared is None:
            return
        t = phase.parts.torrent
        if t.info_hash_v1 is None or t.info_hash_v2 is None:
            return
        for other in (t.info_hash_v1, v2_on_wire(t.info_hash_v2)):
            if other != ctx.info_hash and not shared.knows(other):
                shared.register(other, self.on_incoming)
                self._other_hashes.append(other)

    def unregister(self, shared: SharedResources) -> None:
        """Incoming peers of this torrent are no longer ours (the session ends); nor is a
        deadline to dial again."""
        shared.clock.drop(self)
        shared.unregister(self._ctx.info_hash)
        for other in self._other_hashes:
            shared.unregister(other)
        self._other_hashes.clear()

    def add(self, peers: Iterable[tuple[str, int]], source: PeerSource) -> None:
        """Addresses heard of from ``source``, into the pool (our own and banned ones dropped);
        dial them soon."""
        pool = self._ctx.pool
        shared = self._ctx.shared
        ip_filter = shared.ip_filter if shared is not None else None
        limits = shared.limits if shared is not None else None
        added = False
        for host, port in peers:  # (a full pool takes no new address, but a known one's source)
            key = (host, int(port))
            if ip_filter is not None and ip_filter.blocked(host):
                peer_event(host, "peer %s:%d of %s not dialed: blocked by the IP filter", host, key[1],
                           self._ctx.name, blocked=True, reason="IP filter")
                continue
            if limits is not None and not limits.dialable(key[1]):
                peer_event(host, "peer %s:%d of %s not dialed: a privileged port", host, key[1],
                           self._ctx.name, blocked=True, reason="port filter")
                continue
            if not self._is_self(key) and pool.add(key, source):
                added = True
        if added:
            self.wake()

    def filter_changed(self, ip_filter: IpFilter) -> None:
        """The shared IP filter changed: the connected peers it blocks are dropped (the pool's
        addresses it blocks are passed over when their turn to be dialed comes)."""
        for peer in list(self._ctx.peers.values()):
            if ip_filter.blocked(peer.host):
                peer_event(peer.host, "peer %s of %s dropped: blocked by the IP filter", peer.host,
                           self._ctx.name, blocked=True, reason="IP filter")
                peer.close("blocked by the IP filter")

    def _is_self(self, key: tuple[str, int]) -> bool:
        ctx = self._ctx
        port = ctx.shared.listen_port if ctx.shared is not None else 0
        # literal addresses only; another name for us is caught by the peer id in the handshake
        own_hosts = ("127.0.0.1", "0.0.0.0", "::1", ctx.config.listen_host)
        return port != 0 and key[1] == port and key[0] in own_hosts

    def peer_limit(self) -> int:
        """This torrent's connections at most (its own number, else the shared default)."""
        if self.max_peers > 0:
            return self.max_peers
        shared = self._ctx.shared
        return shared.peers_per_torrent if shared is not None else self._ctx.config.max_peers_per_torrent

    @property
    def running(self) -> bool:
        """Whether the dialing loop's task exists (it ends while nothing is left to dial: ``run``)."""
        return self._running

    def wake(self) -> None:
        """New addresses arrived (or the swarm started): dial now rather than at the next round,
        starting the dialing loop again in the swarm's group if it had ended."""
        if self._running:
            if self._wakeup is not None:
                self._wakeup.set()
            return
        swarm = self._ctx.swarm
        if swarm is not None:
            self._running = True
            swarm.start_soon(self.run)

    def on_tick(self, now: float) -> bool:
        """The engine clock's deadline: a back-off ended; dial (``run``)."""
        self.wake()
        return False

    def turn_over(self, now: float) -> int:
        """Peer turnover (``policy.turnover``), called by the tick while the torrent has peers:
        every ``Config.peer_turnover_interval`` seconds, drop the worst of its peers when it is
        at its limit and has other addresses to dial, and dial them; how many were dropped."""
        ctx = self._ctx
        config = ctx.config
        if self._turnover_at is None:  # (the first look: one interval after the peers came)
            self._turnover_at = now + config.peer_turnover_interval
        if now < self._turnover_at:
            return 0
        self._turnover_at = now + config.peer_turnover_interval
        peers = [peer for peer in ctx.peers.values() if not peer.closed]  # (closing: not held)
        busy = ctx.peers.keys() | self.connecting
        # (the addresses it could dial instead, counted up to as many as it holds: no more is dropped)
        candidates = sum(1 for _ in zip(range(len(peers)), ctx.pool.candidates(now, busy), strict=False))
        count = turnover_count(len(peers), self.peer_limit(), candidates, percent=config.peer_turnover,
                               cutoff=config.peer_turnover_cutoff)
        dropped = worst_peers(peers, count, now)
        for peer in dropped:
            peer.close(f"peer turnover: one of the {len(dropped)} worst of {len(peers)} peers, dropped to "
                       "try others")
        self.turned_over += len(dropped)
        if dropped:
            self.wake()
        return len(dropped)

    def done_connecting(self, key: tuple[str, int]) -> None:
        """The dial (or metadata fetch) of ``key`` is over."""
        self.connecting.discard(key)
        self._nudge()

    def _nudge(self) -> None:
        """An address is no longer being dialed: a dialing loop that waits for that (and not for
        a round) looks again."""
        if self._wakeup is not None:
            self._wakeup.set()

    def reset(self) -> None:
        """The swarm stopped (pause, or the metadata phase ended): nothing is being dialed."""
        self.connecting.clear()

    async def run(self) -> None:
        """Dial candidates every ``ROUND`` seconds, or at once when new addresses arrive; with
        nothing to retry — no address known, or each connected, banned or given up on, and no
        dial under way — it ends (no timer, no task: a thousand torrents each connected to its
        one peer woke every 2 s for nothing) until ``wake`` (new addresses, a peer gone) starts
        it again. While every address is connected or being dialed it waits for a dial's end;
        while none may be dialed before a back-off ends more than a round away, it ends too and
        the engine's clock wakes it then (``on_tick``)."""
        self._running = True
        try:
            while True:
                self.dial_some()
                self.rounds += 1
                if self._wait_for_dial_out():
                    return  # (no round meanwhile: ``SharedResources.set_dial_out`` wakes it)
                pool = self._ctx.pool
                if not len(pool) or not self.connecting and not pool.may_dial(self._ctx.peers.keys()):
                    return  # (no await since the pool was looked at: ``add`` finds it ended)
                self._wakeup = anyio.Event()
                now = time.monotonic()
                after = pool.next_try(self._ctx.peers.keys() | self.connecting)
                if after is not None and after - now <= ROUND:
                    with anyio.move_on_after(ROUND):
                        await self._wakeup.wait()
                else:  # nothing to dial before a back-off ends (seeds dropped for ten minutes,
                    # say) or a dial's end (each other address connected or being dialed, dials
                    # waiting for their turn among them): no round every 2 s meanwhile
                    if after is not None and self._ctx.shared is not None:
                        self._ctx.shared.clock.at(after, self)  # (``on_tick`` wakes it then)
                    if not self.connecting:
                        return
                    await self._wakeup.wait()
                self._wakeup = None
        finally:
            self._running = False
            self._wakeup = None

    def _wait_for_dial_out(self) -> bool:
        """Whether outgoing connections are off over every torrent (``PeerLimits.dial_out``):
        if so, this torrent's dialer is to be woken when they are on again."""
        shared = self._ctx.shared
        if shared is None or shared.limits.dial_out:
            return False
        shared.wait_for_dial_out(self._ctx.info_hash, self.wake)
        return True

    def dial_some(self) -> None:
        """Start dialing as many candidates as the connection budget allows (none while
        outgoing connections are off)."""
        ctx = self._ctx
        swarm = ctx.swarm
        if swarm is None or (ctx.state is State.SEEDING and not ctx.config.seed) \
                or (ctx.shared is not None and not ctx.shared.limits.dial_out):
            return
        now = time.monotonic()
        budget = self.peer_limit() - len(ctx.peers) - len(self.connecting)
        if ctx.shared is not None:  # (and the limit over every torrent)
            budget = min(budget, ctx.shared.connection_room())
        busy = ctx.peers.keys() | self.connecting
        # more addresses than the budget: BEP 40 priority with our own address decides
        own = self.own_address() if len(ctx.pool) > budget > 0 else None
        ip_filter = ctx.shared.ip_filter if ctx.shared is not None else None
        limits = ctx.shared.limits if ctx.shared is not None else None
        # (one connection an address: the addresses connected or dialed, taken as they are chosen)
        hosts = None if limits is None or limits.multiple_connections_per_ip else {k[0] for k in busy}
        for key in ctx.pool.choose(now, busy, budget, own):  # (heard of before the filter, the port rule)
            if (ip_filter is not None and ip_filter.blocked(key[0])) \
                    or (limits is not None and not limits.dialable(key[1])):
                ctx.pool.failed(key, now)
                continue
            if hosts is not None:
                if key[0] in hosts:  # (tried again later: put back, so that others are chosen)
                    ctx.pool.failed(key, now, quick=True)
                    continue
                hosts.add(key[0])
            self.connecting.add(key)
            swarm.start_soon(self.dial, key)

    def _address_taken(self, host: str) -> bool:
        """Whether a new connection with ``host`` is refused: one connection an address is
        asked (``PeerLimits.multiple_connections_per_ip`` off) and it has one, or is dialed."""
        shared = self._ctx.shared
        if shared is None or shared.limits.multiple_connections_per_ip:
            return False
        return any(p.host == host for p in self._ctx.peers.values()) \
            or any(k[0] == host for k in self.connecting)

    def own_address(self) -> tuple[str, int] | None:
        """Our (ip, listen port) as peers see it, for BEP 40 (None while unknown)."""
        ctx = self._ctx
        shared = ctx.shared
        first = next(iter(ctx.pool), None)
        if shared is None or not shared.listen_port or first is None:
            return None
        ip = shared.own_ip(first[0])
        return (ip, shared.listen_port) if ip else None

    def punch(self, key: tuple[str, int]) -> None:
        """Dial ``key`` over uTP now, outside the pool and the budget: a BEP 55 ``connect``
        (the other side dials us at the same moment)."""
        swarm = self._ctx.swarm
        if swarm is None or key in self.connecting:
            return
        shared = self._ctx.shared
        if shared is not None and (shared.ip_filter.blocked(key[0]) or not shared.limits.dial_out
                                   or not shared.limits.dialable(key[1]) or self._address_taken(key[0])):
            return
        self.connecting.add(key)
        swarm.start_soon(lambda: self.dial(key, transport="utp"))

    async def dial(self, key: tuple[str, int], *, transport: str | None = None) -> None:
        """Connect to ``key`` and hand the link on (metadata phase, or the peer protocol);
        ``transport`` overrides the config's."""
        ctx = self._ctx
        shared = ctx.shared
        assert shared is not None
        self.dialing += 1
        try:
            if not await self._turn(key, shared):
                return
            if not shared.take_connection():  # (the limit over every torrent was reached meanwhile)
                self.done_connecting(key)
                return
            try:
                await self._dial(key, transport)
            finally:
                shared.give_connection()
        finally:
            self.dialing -= 1

    async def _turn(self, key: tuple[str, int], shared: SharedResources) -> bool:
        """Wait for the dial's turn among every torrent's (``Limits.connection_speed`` a second,
        the torrents with the fewest peers and dials first, a seeding one's after every
        downloading one's: ``engine/dialgate.py``); whether it is still to be made. One asked
        while the torrent downloaded and that finds it complete is not: its address waits, as
        one connected the other way does (a seed dials to upload, at a seed's rank)."""
        ctx = self._ctx
        seeding = ctx.state is State.SEEDING
        await shared.dial_turn(len(ctx.peers) + self.dialing - 1 + (SEEDING_RANK if seeding else 0))
        if not shared.limits.dial_out:  # (turned off while it waited: not made, dialed when on again)
            self.done_connecting(key)
            self._wait_for_dial_out()
            return False
        if key in ctx.peers or (not seeding and ctx.state is State.SEEDING):
            self.done_connecting(key)
            ctx.pool.later(key, time.monotonic())
            return False
        return True

    async def _dial(self, key: tuple[str, int], transport: str | None) -> None:
        ctx = self._ctx
        s = self._s
        assert ctx.shared is not None
        try:
            with anyio.fail_after(ctx.config.connect_timeout + ctx.config.handshake_timeout):
                t = phase.parts.torrent if isinstance(phase := ctx.phase, Loaded) else None
                link = await open_connection(key[0], key[1], info_hash=ctx.info_hash,
                                             peer_id=ctx.shared.peer_id, config=ctx.config,
                                             num_pieces=t.num_pieces if t is not None else None,
                                             piece_size=t.piece_size if t is not None else None,
                                             shared=ctx.shared, transport=transport)
        except (OSError, TimeoutError, TorrentEngineError) as exc:
            log.debug("connect to %s:%d failed: %s", key[0], key[1], exc)
            if isinstance(exc, EncryptionError):
                self.encryption_refused.add(key)
            self.done_connecting(key)
            ctx.pool.failed(key, time.monotonic())
            if transport is None:  # a direct dial: a relay may still put us in touch (BEP 55)
                await s.holepunch.dial_failed(key)
            return
        if ctx.shared.ip_filter.blocked(key[0]):  # (the filter changed while it was dialed)
            self.done_connecting(key)
            with anyio.CancelScope(shield=True):
                await link.aclose()
            return
        phase = ctx.phase
        if isinstance(phase, FetchingMetadata):
            await phase.metadata.fetch_from(link, key)  # (counted as connecting until it is done)
        else:
            self.done_connecting(key)
            await s.handler.serve(link, key[0], key[1], incoming=False)

    def on_incoming(self, link: IncomingPeer) -> bool:
        """The shared listener's hand-off: take the connection (True) or refuse it. The
        listener's handshaker is ``peer_io``'s, whose peers are ``PeerLink``s."""
        ctx = self._ctx
        if not isinstance(link, PeerLink):
            raise TypeError(f"an incoming peer must be a PeerLink, not {type(link).__name__}")
        swarm = ctx.swarm
        if swarm is None or ctx.state is State.PAUSED or ctx.run.stop_requested:
            return False
        host, port = link.remote_address
        connected = len(ctx.peers) + len(self.connecting)
        shared = ctx.shared
        if shared is None or shared.ip_filter.blocked(host) or ctx.pool.is_banned((host, port)) \
                or connected >= self.peer_limit() + 10 or shared.connection_room() <= 0 \
                or self._address_taken(host):
            return False
        metadata = isinstance(ctx.phase, FetchingMetadata)  # a magnet's, which this peer may have
        if metadata:
            self.connecting.add((host, port))
        swarm.start_soon(self._incoming, link, metadata)
        return True

    async def _incoming(self, link: PeerLink, metadata: bool) -> None:
        """Run an incoming peer (or fetch metadata from it) holding one of the connections over
        every torrent."""
        ctx = self._ctx
        shared = ctx.shared
        key = link.remote_address
        if shared is None or not shared.take_connection():  # (taken by others meanwhile)
            self.done_connecting(key)
            with anyio.CancelScope(shield=True):
                await link.aclose()
            return
        try:
            phase = ctx.phase
            if metadata and isinstance(phase, FetchingMetadata):
                await phase.metadata.fetch_from(link, key)
            else:
                self.done_connecting(key)
                await self._s.handler.serve(link, key[0], key[1], True)
        finally:
            shared.give_connection()
