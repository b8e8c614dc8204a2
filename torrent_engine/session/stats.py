"""Transfer statistics and the once-a-second tick: rates, per-peer upkeep (timeouts, PEX,
keep-alives, interest), the stall diagnosis, the stats event and periodic resume saving."""

from __future__ import annotations

import functools
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio

from .. import events as ev
from ..peer import messages as m
from ..peer.extensions import PEX_INTERVAL
from ..session_state import State
from ..stall import Stall, StallDetector, SwarmFacts
from . import requesting
from .peer import PeerState, fan_out
from .pex import pex_view
from .phases import FetchingMetadata, Loaded
from .webseeds import NO_WEB_SEEDS

if TYPE_CHECKING:
    from .announce import Announcer
    from .checking import Checker
    from .connector import Connector
    from .context import TorrentContext
    from .peer_handler import PeerHandler
    from .status import SessionStatus

log = logging.getLogger("torrent_engine.session")

RATE_TICKS = 5  # a rate is the average over the last ticks: it is zero this many ticks after the last byte
KEEPALIVE_AFTER = 90.0  # seconds without sending anything before a keep-alive (BEP 3: 2 min timeout)
# States in which a session with no peer has nothing for its tick to do (no download to watch).
QUIET_STATES = frozenset({State.SEEDING, State.PAUSED})
# What ends a quiet wait: a peer arrives, or the state changes (every change publishes one of these).
WAKE_EVENTS: tuple[type[ev.Event], ...] = (
    ev.PeerConnected, ev.SessionStarted, ev.SessionChecking, ev.SessionMetadataReceived,
    ev.SessionPieceLayersReceived, ev.SessionCompleted, ev.SessionPaused, ev.SessionResumed)


class Stats:
    """Bytes moved this interval and the smoothed rates of one session."""

    def __init__(self, context: TorrentContext, *, given_peers: int, checker: Checker, handler: PeerHandler,
                 announcer: Announcer, connector: Connector, status: Callable[[], SessionStatus]) -> None:
        self._ctx = context
        self._checker = checker  # periodic resume saving
        self._handler = handler  # per-peer timeouts and interest
        self._announcer = announcer  # tracker tiers and errors (the stall diagnosis)
        self._connector = connector  # peers refused on the encryption policy (the stall diagnosis)
        self._status = status  # the snapshot the stats event carries
        self._given_peers = given_peers  # addresses the user gave: a peer source of their own
        self.down_rate = 0.0
        self.up_rate = 0.0
        self._down_window = 0
        self._up_window = 0
        self._down_meter = RateMeter()
        self._up_meter = RateMeter()
        self._stall_detector = StallDetector(self._ctx.config.stall_after)
        self.stall: Stall | None = None
        self.stalled_since: float | None = None  # wall-clock time the download stopped progressing
        self.ticks = 0  # how many times the tick ran (an idle session stops ticking)
        self._wake = anyio.Event()

    def downloaded(self, n: int) -> None:
        """``n`` payload bytes arrived."""
        self._down_window += n
        self._ctx.totals.downloaded += n

    def uploaded(self, n: int) -> None:
        """``n`` payload bytes were sent."""
        self._up_window += n
        self._ctx.totals.uploaded += n

    def quiet(self) -> bool:
        """Nothing for the tick to do: no peer, no rate left to decay, no download to watch."""
        ctx = self._ctx
        return (not ctx.peers and self.down_rate == 0.0 and self.up_rate == 0.0
                and ctx.state in QUIET_STATES)

    def wake(self, _event: object = None) -> None:
        """Something happened that the tick must look at (ends a quiet wait)."""
        self._wake.set()

    async def run(self) -> None:
        """The session's tick, every ``Config.stats_interval`` while the session has peers or
        a download; while it is quiet (see :meth:`quiet`) it waits for a wake-up instead, and for
        the next periodic resume save only if there is something new to save. So a thousand idle
        seeding torrents cost no timer each."""
        subs = [self._ctx.events.subscribe(kind, self.wake) for kind in WAKE_EVENTS]
        try:
            await self._run()
        finally:
            for sub in subs:
                sub.cancel()
            # the session no longer runs: nothing moves (a stopped session's rates are not frozen)
            self.down_rate = self.up_rate = 0.0
            self._down_meter = RateMeter()
            self._up_meter = RateMeter()

    async def _run(self) -> None:
        ctx = self._ctx
        interval = ctx.config.stats_interval
        last = time.monotonic()
        # (the first quiet wait saves at once what the start-up check found: a thousand torrents
        # added at once saved their resume data a minute later, all in the same second)
        last_save = last - ctx.config.resume_save_interval
        while True:
            if self.quiet():
                self._wake = anyio.Event()
                wait = ctx.config.resume_save_interval - (time.monotonic() - last_save) \
                    if self._checker.unsaved() else math.inf
                with anyio.move_on_after(max(wait, interval)):
                    await self._wake.wait()
                last = time.monotonic()  # (no bytes moved while quiet: nothing to average)
            await anyio.sleep(interval)
            self.ticks += 1
            now = time.monotonic()
            elapsed = max(now - last, 1e-6)
            last = now
            self.down_rate = self._down_meter.tick(self._down_window, elapsed)
            self.up_rate = self._up_meter.tick(self._up_window, elapsed)
            self._down_window = self._up_window = 0
            peers = list(ctx.peers.values())
            if isinstance(phase := ctx.phase, Loaded):
                phase.parts.layers.tick(now)
            for peer in peers:
                requesting.update_rates(peer, elapsed)
                self._handler.check_timeouts(peer, now)
            if peers:
                await fan_out(peers, functools.partial(self._tick, now=now), ctx.config.control_send_timeout)
            self._watch_stall(now)
            st = self._status()
            ctx.events.publish(ev.StatsUpdate(
                info_hash=ctx.info_hash_hex, state=st.state, downloaded=st.downloaded, uploaded=st.uploaded,
                download_rate=st.download_rate, upload_rate=st.upload_rate, peers=st.peers,
                progress=st.progress, eta=st.eta))
            if now - last_save >= ctx.config.resume_save_interval:
                last_save = now
                if self._checker.unsaved():
                    await self._checker.save()

    async def _tick(self, peer: PeerState, now: float) -> None:
        if peer.ut_pex and now - peer.last_pex >= PEX_INTERVAL:
            # BEP 11: whom we are connected to, as a diff, at most once a minute
            msg = peer.pex.update(pex_view(peer, self._ctx.peers.values()))
            if msg is not None:  # nothing new: look again next second
                peer.last_pex = now
                await peer.send(m.Extended(peer.ut_pex, msg.encode()))
        if now - peer.last_sent >= KEEPALIVE_AFTER:
            await peer.send(m.KeepAlive())  # BEP 3: peers drop a link silent for 2 minutes
        await self._handler.update_interest(peer)

    def swarm_facts(self) -> SwarmFacts:
        """What the session knows about its swarm, for the stall diagnosis."""
        ctx = self._ctx
        private = ctx.private
        trackers = sum(len(tier) for tier in self._announcer.tiers()) if ctx.config.tracker_enabled else 0
        dht = 1 if ctx.shared is not None and ctx.shared.dht is not None and not private else 0
        lsd = 1 if ctx.shared is not None and ctx.shared.lsd is not None and not private else 0
        known = ctx.pool.known()
        failed = ctx.pool.failing() - ctx.peers.keys()
        peers = [p for p in ctx.peers.values() if not p.closed]
        parts = phase.parts if isinstance(phase := ctx.phase, Loaded) else None  # None: fetching metadata
        layers_missing, hash_sent, hash_failed = (0, 0, 0) if parts is None else parts.layers.stall_facts()
        web = NO_WEB_SEEDS if parts is None else parts.webseeds.stall_facts()  # (banned: no "known peer")
        return SwarmFacts(
            sources=trackers + dht + lsd + self._given_peers + web.count, known=len(known) - web.banned,
            connected=len(peers), web_seeds=web.in_use, web_seed_errors=web.errors,
            failed=len(failed), encryption_refused=len(self._connector.encryption_refused & failed),
            banned=ctx.pool.banned_count - web.banned,
            peers_with_wanted=sum(1 for p in peers if p.am_interested),
            tracker_errors=self._announcer.errors(),
            fetching_metadata=isinstance(ctx.phase, FetchingMetadata),
            piece_layers_missing=layers_missing, hash_requests_sent=hash_sent,
            hash_requests_failed=hash_failed)

    def _watch_stall(self, now: float) -> None:
        """Once a second: is the download stuck, and why? A new reason is published as an event."""
        ctx = self._ctx
        if ctx.state not in (State.DOWNLOADING, State.DOWNLOADING_METADATA):
            self._stall_detector.reset(now)
            self.stall = self.stalled_since = None
            return
        stall = self._stall_detector.observe(now, ctx.totals.downloaded, self.swarm_facts())
        previous, self.stall = self.stall, stall
        if stall is None:
            self.stalled_since = None
        elif previous is None:
            self.stalled_since = time.time() - stall.seconds
        if stall is not None and (previous is None or previous.reason is not stall.reason):
            log.info("%s is not progressing: %s", ctx.name, stall.message)
            ctx.events.publish(ev.SessionStalled(info_hash=ctx.info_hash_hex, reason=stall.reason.value,
                                                 message=stall.message))


class RateMeter:
    """Bytes per second over the last ``RATE_TICKS`` ticks: smooth while data flows, and exactly
    zero once nothing came for that long (a finished download shows no rate, not a slow decay)."""

    def __init__(self) -> None:
        self._ticks: deque[tuple[int, float]] = deque(maxlen=RATE_TICKS)  # (bytes, seconds)

    def tick(self, nbytes: int, elapsed: float) -> float:
        """Record one tick's bytes and length; the rate over the window."""
        self._ticks.append((nbytes, elapsed))
        total = sum(n for n, _ in self._ticks)
        if total == 0:
            return 0.0
        return total / max(sum(t for _, t in self._ticks), 1e-6)
