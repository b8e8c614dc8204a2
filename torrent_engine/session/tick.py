"""The session's once-a-second tick: it takes the rates (``rates.py``), times out peers' requests,
sends PEX and keep-alives and updates interest per peer, lets the stall watch look
(``stall_watch.py``), publishes the stats event and saves the resume data now and then. While the
session is quiet (no peer, nothing moving, no download) it waits for a wake-up instead."""

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
from .state_table import State

if TYPE_CHECKING:
    from .context import TorrentContext
    from .rates import Rates
    from .stall_watch import StallWatch
    from .status import SessionStatus

__all__ = ["KEEPALIVE_AFTER", "QUIET_STATES", "WAKE_EVENTS", "PeerUpkeep", "ResumeSaving", "SessionTick"]

KEEPALIVE_AFTER = 90.0  # seconds without sending anything before a keep-alive (BEP 3: 2 min timeout)
# States in which a session with no peer has nothing for its tick to do (no download to watch):
# a check or a wait for the queue's word reports its own news (``SessionChecking``, the state's
# events), so thousands of torrents checking or waiting their turn cost no timer and no task.
QUIET_STATES = frozenset({State.SEEDING, State.PAUSED, State.CHECKING, State.QUEUED})
# What ends a quiet wait: a peer arrives, or the state changes (every change publishes one of these;
# a check's, ``SessionChecking``, again with each step of its progress: see ``SessionTick.checking``).
WAKE_EVENTS: tuple[type[ev.Event], ...] = (
    ev.PeerConnected, ev.SessionStarted, ev.SessionMetadataReceived,
    ev.SessionPieceLayersReceived, ev.SessionCompleted, ev.SessionPaused, ev.SessionResumed)


class ResumeSaving(Protocol):
    """The resume data as the tick sees it (``checking.Checker``)."""

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


class SessionTick:
    """The tick of one session. It runs, in the session's task group (``start``), while the session
    has something for it: peers, a download, rates to decay, resume data to save; then it ends,
    and ``wake`` (a peer arrived, the state changed: ``WAKE_EVENTS``) starts it again. An idle
    seeding torrent has no tick task at all."""

    def __init__(self, context: TorrentContext, *, rates: Rates, stall_watch: StallWatch,
                 resume: ResumeSaving, upkeep: PeerUpkeep, status: Callable[[], SessionStatus]) -> None:
        self._ctx = context
        self._rates = rates
        self._stall_watch = stall_watch
        self._resume = resume  # saved every ``Config.resume_save_interval`` when something changed
        self._upkeep = upkeep  # per-peer timeouts and interest
        self._status = status  # the snapshot the stats event carries
        self.ticks = 0  # how many times the tick ran (an idle session stops ticking)
        self._wake: anyio.Event | None = None  # (while the loop runs: ``wake`` sets it)
        self._group: anyio.abc.TaskGroup | None = None  # the session's group, while the session runs
        self._subs: list[ev.Subscription] = []
        self._running = False  # the loop's task exists
        # (the first tick saves at once what the start-up check found: a thousand torrents added
        # at once saved their resume data a minute later, all in the same second)
        self._last_save = -math.inf

    @property
    def running(self) -> bool:
        """Whether the tick's task exists (it ends while the session is idle)."""
        return self._running

    def quiet(self) -> bool:
        """Nothing for the tick to do: no peer, no rate left to decay, no download to watch."""
        ctx = self._ctx
        return not ctx.peers and self._rates.still and ctx.state in QUIET_STATES

    def start(self, group: anyio.abc.TaskGroup) -> None:
        """The session runs, in ``group``: tick, and be woken by what gives the tick work."""
        self._group = group
        self._subs = [self._ctx.events.subscribe(kind, self.wake) for kind in WAKE_EVENTS]
        self._subs.append(self._ctx.events.subscribe(ev.SessionChecking, self.checking))
        self.wake()

    def checking(self, _event: object = None) -> None:
        """A check began or moved on: the tick starts only if it has something to do then (peers
        still connected during a recheck); a check's progress is its own news (``SessionChecking``),
        so thousands of torrents checking or waiting for their turn cost no tick each."""
        if not self._running and not self.quiet():
            self.wake()

    def stop(self) -> None:
        """The session's run ended (its group, and the tick's task with it): no more wake-ups."""
        self._group = None
        for sub in self._subs:
            sub.cancel()
        self._subs = []
        self._rates.stop()

    def wake(self, _event: object = None) -> None:
        """Something happened that the tick must look at: end its quiet wait, or start it again
        (in the session's group) if it had ended."""
        if self._running:
            if self._wake is not None:
                self._wake.set()
        elif self._group is not None:
            self._running = True
            self._group.start_soon(self.run)

    async def run(self) -> None:
        """Tick every ``Config.stats_interval`` while the session has peers or a download; while it
        is quiet (see :meth:`quiet`) wait for the next periodic resume save if there is something
        new to save, else end (``wake`` starts it again). So a thousand idle seeding torrents cost
        no timer and no task each."""
        self._running = True
        try:
            await self._run()
        finally:
            self._running = False
            self._wake = None

    async def _run(self) -> None:
        ctx = self._ctx
        interval = ctx.config.stats_interval
        last = time.monotonic()
        while True:
            self._wake = wake = anyio.Event()  # (a wake while it ticks is seen: it ticks again)
            await anyio.sleep(interval)
            self.ticks += 1
            now = time.monotonic()
            elapsed = max(now - last, 1e-6)
            last = now
            self._rates.tick(elapsed)
            peers = list(ctx.peers.values())
            if isinstance(phase := ctx.phase, Loaded):
                phase.parts.layers.tick(now)
            self._time_out(peers, now, elapsed)
            if peers:
                upkeep = functools.partial(self._peer_upkeep, now=now)
                await fan_out(peers, upkeep, ctx.config.control_send_timeout)
            self._stall_watch.observe(now)
            self._publish_stats()
            if now - self._last_save >= ctx.config.resume_save_interval:
                self._last_save = now
                await self._autosave()
            if self.quiet() and not wake.is_set():
                if not self._resume.unsaved():
                    return  # idle: nothing runs until a wake (no await since quiet() looked)
                wait = ctx.config.resume_save_interval - (time.monotonic() - self._last_save)
                with anyio.move_on_after(max(wait, interval)):
                    await wake.wait()
                last = time.monotonic()  # (no bytes moved while quiet: nothing to average)

    def _time_out(self, peers: list[PeerState], now: float, elapsed: float) -> None:
        """Each peer's request rate and pipeline, then its requests that took too long."""
        for peer in peers:
            requesting.update_rates(peer, elapsed)
            self._upkeep.check_timeouts(peer, now)

    async def _peer_upkeep(self, peer: PeerState, now: float) -> None:
        await self._send_pex(peer, now)
        await self._keep_alive(peer, now)
        await self._upkeep.update_interest(peer)

    async def _send_pex(self, peer: PeerState, now: float) -> None:
        """BEP 11: whom we are connected to, as a diff, at most once a minute."""
        if peer.ut_pex and now - peer.last_pex >= PEX_INTERVAL:
            msg = peer.pex.update(pex_view(peer, self._ctx.peers.values()))
            if msg is not None:  # nothing new: look again next second
                peer.last_pex = now
                await peer.send(m.Extended(peer.ut_pex, msg.encode()))

    @staticmethod
    async def _keep_alive(peer: PeerState, now: float) -> None:
        """BEP 3: peers drop a link silent for 2 minutes."""
        if now - peer.last_sent >= KEEPALIVE_AFTER:
            await peer.send(m.KeepAlive())

    def _publish_stats(self) -> None:
        ctx = self._ctx
        st = self._status()
        ctx.events.publish(ev.StatsUpdate(
            info_hash=ctx.info_hash_hex, state=st.state, downloaded=st.downloaded, uploaded=st.uploaded,
            download_rate=st.download_rate, upload_rate=st.upload_rate, peers=st.peers,
            progress=st.progress, eta=st.eta))

    async def _autosave(self) -> None:
        """The periodic resume save, when something changed since the last."""
        if self._resume.unsaved():
            await self._resume.save()
