"""The session's once-a-second tick, a visitor of the engine's one clock (``engine.clock``): it
takes the rates (``rates.py``), times out peers' requests, sends PEX and keep-alives and updates
interest per peer, lets the stall watch look (``stall_watch.py``), publishes the stats event when
what it shows changed and saves the resume data now and then. While the session is quiet (no
peer, nothing moving) it leaves the clock's round and asks only for a deadline: when its stall
verdict is due, when its resume data is to be saved."""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import anyio
import anyio.abc

from .. import events as ev
from ..net.peer import messages as m
from ..net.peer.extensions import PEX_INTERVAL
from . import requesting
from .peer import PeerState, fan_out
from .pex import pex_view
from .phases import Loaded

if TYPE_CHECKING:
    from ..engine.clock import EngineClock
    from .context import TorrentContext
    from .status import SessionStatus

__all__ = ["KEEPALIVE_AFTER", "WAKE_EVENTS", "PeerUpkeep", "ResumeSaving", "SessionTick"]

KEEPALIVE_AFTER = 90.0  # seconds without sending anything before a keep-alive (BEP 3: 2 min timeout)
# What brings a quiet session back into the clock's round: a peer arrives, the state changes (every
# change publishes one of these; a check's, ``SessionChecking``, again with each step of its
# progress: see ``SessionTick.checking``), a tracker answers (the stall's reason may change);
# bytes moving (a web seed's) wake it through ``Rates.on_move``.
WAKE_EVENTS: tuple[type[ev.Event], ...] = (
    ev.PeerConnected, ev.SessionStarted, ev.SessionMetadataReceived,
    ev.SessionPieceLayersReceived, ev.SessionCompleted, ev.SessionPaused, ev.SessionResumed,
    ev.TrackerSuccess, ev.TrackerFailed)


class RateTaking(Protocol):
    """The rates as the tick takes them (``rates.Rates``)."""

    on_move: Callable[[], object] | None  # bytes moved after a still tick (the tick is woken)

    @property
    def down_rate(self) -> float:
        """Payload bytes/s received."""

    @property
    def up_rate(self) -> float:
        """Payload bytes/s sent."""

    @property
    def still(self) -> bool:
        """Nothing moves: both rates are zero."""

    def tick(self, elapsed: float) -> None:
        """A tick of ``elapsed`` seconds ended: the rates take in its bytes."""

    def stop(self) -> None:
        """The session no longer runs: nothing moves."""


class StallLooking(Protocol):
    """The stall diagnosis as the tick asks it to look (``stall_watch.StallWatch``)."""

    def observe(self, now: float) -> None:
        """Once a tick: is the download stuck, and why?"""

    def next_look(self, now: float) -> float | None:
        """When the diagnosis needs a look while nothing happens (None: nothing to watch)."""


class ResumeSaving(Protocol):
    """The resume data as the tick sees it (``checking.Checker``)."""

    nothing_found: bool  # the start-up check found no piece without hashing (a new download)

    def unsaved(self) -> bool:
        """Whether something changed since the last save."""

    async def save(self) -> None:
        """Write the resume data."""


class PeerUpkeep(Protocol):
    """The wire protocol's per-peer upkeep as the tick sees it (``peer_handler.PeerHandler``)."""

    def check_timeouts(self, peer: PeerState, now: float) -> None:
        """Give up on the peer's requests that took too long (and on a peer that sent nothing)."""

    async def update_interest(self, peer: PeerState) -> None:
        """Tell the peer whether it has something we want."""

    def interest_due(self, peer: PeerState) -> bool:
        """Whether ``update_interest`` may have something to send the peer now."""


class SessionTick:
    """The tick of one session (see the module's docstring). ``start`` puts it in the engine
    clock's round (``SharedResources.clock``) for the session's run; it leaves the round while it
    has nothing to do and ``wake`` (a peer arrived, the state changed, bytes moved:
    ``WAKE_EVENTS``) puts it back. What takes a wait (the peers' sends, a save) runs as a task of
    the session's group, one at a time. An idle torrent has no timer and no task of its own."""

    def __init__(self, context: TorrentContext, *, rates: RateTaking, stall_watch: StallLooking,
                 resume: ResumeSaving, upkeep: PeerUpkeep, status: Callable[[], SessionStatus],
                 turn_over: Callable[[float], object] = lambda now: None) -> None:
        self._ctx = context
        self._rates = rates
        self._stall_watch = stall_watch
        self._resume = resume  # saved every ``Config.resume_save_interval`` when something changed
        self._upkeep = upkeep  # per-peer timeouts and interest
        self._status = status  # the snapshot the stats event carries
        self._turn_over = turn_over  # peer turnover's look (``Connector.turn_over``), with peers
        self.ticks = 0  # how many times the clock visited (a quiet session is not visited)
        self._clock: EngineClock | None = None  # the engine's, while the session runs
        self._group: anyio.abc.TaskGroup | None = None  # the session's group, while the session runs
        self._subs: list[ev.Subscription] = []
        self._last: float | None = None  # when the rates last took in a tick (None: off the round)
        self._upkeeping = False  # the peers' sends of a tick are under way
        self._saving = False
        self._shown: tuple[object, ...] | None = None  # what the last stats event showed
        # (the first tick saves at once what the start-up check found: a thousand torrents added
        # at once saved their resume data a minute later, all in the same second; a new download's
        # check found nothing to keep: its first save an interval after its first tick)
        self._last_save: float | None = None

    @property
    def running(self) -> bool:
        """Whether the tick is in the clock's round (it leaves it while the session is quiet)."""
        return self._clock is not None and self._clock.wants(self)

    def quiet(self) -> bool:
        """Nothing for the tick to do each second: no peer and no rate left to decay."""
        return not self._ctx.peers and self._rates.still

    def start(self, group: anyio.abc.TaskGroup, clock: EngineClock) -> None:
        """The session runs, in ``group``: tick on ``clock``, and be woken by what gives the tick work."""
        self._group = group
        self._clock = clock
        self._subs = [self._ctx.events.subscribe(kind, self.wake) for kind in WAKE_EVENTS]
        self._subs.append(self._ctx.events.subscribe(ev.SessionChecking, self.checking))
        self._rates.on_move = self.wake
        self._shown = self._stamp()  # (a session that moves nothing tells no stats: a paused add)
        self.wake()

    def checking(self, _event: object = None) -> None:
        """A check began or moved on: the tick is woken only if it has something to do then (peers
        still connected during a recheck); a check's progress is its own news (``SessionChecking``),
        so thousands of torrents checking or waiting for their turn cost no tick each."""
        if not self.running and not self.quiet():
            self.wake()

    def stop(self) -> None:
        """The session's run ended (its group, and the tick's tasks with it): no more visits."""
        if self._clock is not None:
            self._clock.drop(self)
        self._clock = None
        self._group = None
        for sub in self._subs:
            sub.cancel()
        self._subs = []
        self._rates.on_move = None
        self._rates.stop()
        self._last = None

    def wake(self, _event: object = None) -> None:
        """Something happened that the tick must look at: back into the clock's round (from the
        next round on) if it had left it."""
        clock = self._clock
        if clock is not None and self._group is not None and not clock.wants(self):
            if self._last is None:
                self._last = time.monotonic()  # (nothing moved while it was off the round)
            clock.want(self)

    def on_tick(self, now: float) -> bool:
        """The clock's visit: one tick; whether to stay in the round (see the module's docstring).
        A bug here fails the session, as it would have in a task of its own."""
        group = self._group
        if group is None:
            return False
        try:
            return self._tick(now, group)
        except Exception as exc:
            group.start_soon(_reraise, exc)
            return False

    def _tick(self, now: float, group: anyio.abc.TaskGroup) -> bool:
        ctx = self._ctx
        self.ticks += 1
        last, self._last = self._last, now
        elapsed = ctx.config.stats_interval if last is None else max(now - last, 1e-6)
        self._rates.tick(elapsed)
        peers = list(ctx.peers.values())
        if peers:
            if isinstance(phase := ctx.phase, Loaded):
                phase.parts.layers.tick(now)
                phase.parts.pieces.tell_haves()
            self._time_out(peers, now, elapsed)
            self._turn_over(now)
            if not self._upkeeping:
                # (a task only for the peers with something to send: most seconds, none has)
                wanting = [peer for peer in peers if self._upkeep_due(peer, now)]
                if wanting:
                    self._upkeeping = True
                    group.start_soon(self._peer_upkeep_all, wanting, now)
        self._stall_watch.observe(now)
        self._publish_stats()
        interval = ctx.config.resume_save_interval  # (0: no periodic save)
        if self._last_save is None:
            self._last_save = now if self._resume.nothing_found else -math.inf
        # (whether the resume data changed is asked only when a save is due or the tick leaves
        # the round: it makes the data to compare)
        saving = False
        if interval and now - self._last_save >= interval:
            self._last_save = now
            if not self._saving and self._resume.unsaved():
                self._saving = saving = True
                group.start_soon(self._save)
        if not self.quiet():
            return True
        # off the round: a deadline for what is due while nothing happens
        self._last = None
        unsaved = not saving and bool(interval) and self._resume.unsaved()
        due = [t for t in (self._stall_watch.next_look(now),
                           self._last_save + interval if unsaved else None) if t is not None]
        if due and self._clock is not None:
            self._clock.at(max(min(due), now + ctx.config.stats_interval), self)
        return False

    def _time_out(self, peers: list[PeerState], now: float, elapsed: float) -> None:
        """Each peer's request rate and pipeline, then its requests that took too long."""
        for peer in peers:
            requesting.update_rates(peer, elapsed)
            self._upkeep.check_timeouts(peer, now)

    async def _peer_upkeep_all(self, peers: list[PeerState], now: float) -> None:
        try:
            upkeep = functools.partial(self._peer_upkeep, now=now)
            await fan_out(peers, upkeep, self._ctx.config.control_send_timeout)
        finally:
            self._upkeeping = False

    def _upkeep_due(self, peer: PeerState, now: float) -> bool:
        """Whether ``_peer_upkeep`` may send the peer something now (PEX, a keep-alive, interest
        or requests)."""
        if peer.closed:
            return False
        if peer.ut_pex and self._ctx.config.pex_enabled and now - peer.last_pex >= PEX_INTERVAL:
            return True
        return now - peer.last_sent >= KEEPALIVE_AFTER or self._upkeep.interest_due(peer)

    async def _peer_upkeep(self, peer: PeerState, now: float) -> None:
        await self._send_pex(peer, now)
        await self._keep_alive(peer, now)
        await self._upkeep.update_interest(peer)

    async def _send_pex(self, peer: PeerState, now: float) -> None:
        """BEP 11: whom we are connected to, as a diff, at most once a minute (while PEX is on:
        ``Config.pex_enabled``, turned off or on at run time)."""
        if peer.ut_pex and self._ctx.config.pex_enabled and now - peer.last_pex >= PEX_INTERVAL:
            msg = peer.pex.update(pex_view(peer, self._ctx.peers.values()))
            peer.last_pex = now  # (nothing new: look again in a minute, as libtorrent's ut_pex)
            if msg is not None:
                await peer.send(m.Extended(peer.ut_pex, msg.encode()))

    @staticmethod
    async def _keep_alive(peer: PeerState, now: float) -> None:
        """BEP 3: peers drop a link silent for 2 minutes."""
        if now - peer.last_sent >= KEEPALIVE_AFTER:
            await peer.send(m.KeepAlive())

    def _stamp(self) -> tuple[object, ...]:
        """What a stats event's numbers show: the totals, the rates, the peers."""
        ctx, rates = self._ctx, self._rates
        return (ctx.totals.downloaded, ctx.totals.uploaded, rates.down_rate, rates.up_rate, len(ctx.peers))

    def _publish_stats(self) -> None:
        """The stats event, when its numbers changed since the last, or since the run began (a
        torrent whose numbers stand still sends none: its state's changes are events of their
        own; a thousand paused adds told their unchanged stats once each, a second later)."""
        ctx = self._ctx
        stamp = self._stamp()
        if stamp == self._shown:
            return
        self._shown = stamp
        st = self._status()
        ctx.events.publish(ev.StatsUpdate(
            info_hash=ctx.info_hash_hex, state=st.state, downloaded=st.downloaded, uploaded=st.uploaded,
            download_rate=st.download_rate, upload_rate=st.upload_rate, peers=st.peers,
            progress=st.progress, eta=st.eta))

    async def _save(self) -> None:
        """The periodic resume save (something changed since the last)."""
        try:
            if self._resume.unsaved():
                await self._resume.save()
        finally:
            self._saving = False
        if self._resume.unsaved():
            self.wake()  # (changed while it was written: the next save's deadline)


async def _reraise(exc: Exception) -> None:
    """A tick's bug, raised in the session's group (the session fails with it)."""
    raise exc
