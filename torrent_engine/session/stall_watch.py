"""The stall diagnosis of one session: what it knows of its swarm (``SwarmFacts``), and once a
tick whether the download is stuck and why (``stall.StallDetector``); a new reason is an event."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Protocol

from .. import events as ev
from ..policy.stall import Stall, StallDetector, SwarmFacts
from .phases import FetchingMetadata, Loaded
from .roles import NO_WEB_SEEDS
from .state_table import State

if TYPE_CHECKING:
    from collections.abc import Set

    from .context import TorrentContext

__all__ = ["STALL_LOOK", "StallWatch"]

log = logging.getLogger("torrent_engine.session")

# seconds between two looks at the swarm of a download that stalled while nothing wakes its tick
# (a peer, a tracker's answer, a state change do: the reason is looked at again then)
STALL_LOOK = 10.0


class TrackerFacts(Protocol):
    """The trackers as the stall diagnosis counts them (``announce.Announcer``)."""

    def tiers(self) -> tuple[tuple[str, ...], ...]:
        """The tracker tiers."""

    def errors(self) -> tuple[str, ...]:
        """The trackers failing now, with their last error."""


class DialFacts(Protocol):
    """The dialer as the stall diagnosis counts its refusals (``connector.Connector``)."""

    @property
    def encryption_refused(self) -> Set[tuple[str, int]]:
        """Addresses dialed and refused on the encryption policy."""


class StallWatch:
    """Whether the download is stuck (``stall``, since ``stalled_since``), from the swarm's facts."""

    def __init__(self, context: TorrentContext, *, given_peers: int, announcer: TrackerFacts,
                 connector: DialFacts) -> None:
        self._ctx = context
        self._announcer = announcer  # tracker tiers and errors
        self._connector = connector  # peers refused on the encryption policy
        self._given_peers = given_peers  # addresses the user gave: a peer source of their own
        self._detector = StallDetector(context.config.stall_after)
        self.stall: Stall | None = None
        self.stalled_since: float | None = None  # wall-clock time the download stopped progressing
        self._looked: tuple[object, ...] | None = None  # the state and peer count the verdict saw
        self._looked_at = -STALL_LOOK  # when (a stalled download's verdict is made again at most
        # every STALL_LOOK seconds while these stay: its swarm's facts walk the peers and trackers)

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

    def observe(self, now: float) -> None:
        """Once a tick: is the download stuck, and why? A new reason is published as an event.
        While stalled, with its state and peer count as they were, the reason is looked at again
        every ``STALL_LOOK`` seconds, as when nothing ticks: a session with idle peers ticks each
        second, and the look (every peer, tier and web seed) was a fifth of that tick)."""
        ctx = self._ctx
        if ctx.state not in (State.DOWNLOADING, State.DOWNLOADING_METADATA):
            self._detector.reset(now)
            self.stall = self.stalled_since = None
            return
        looked = (ctx.state, len(ctx.peers))
        if (self.stall is not None and looked == self._looked and now - self._looked_at < STALL_LOOK
                and self._detector.waited(now, ctx.totals.downloaded) is not None):
            return  # (still stalled, as the last verdict said: a byte received ends it at once)
        self._looked, self._looked_at = looked, now
        stall = self._detector.observe(now, ctx.totals.downloaded, self.swarm_facts)
        previous, self.stall = self.stall, stall
        if stall is None:
            self.stalled_since = None
        elif previous is None:
            self.stalled_since = time.time() - stall.seconds
        if stall is not None and (previous is None or previous.reason is not stall.reason):
            log.info("%s is not progressing: %s", ctx.name, stall.message)
            ctx.events.publish(ev.SessionStalled(info_hash=ctx.info_hash_hex, reason=stall.reason.value,
                                                 message=stall.message))

    def next_look(self, now: float) -> float | None:
        """When the diagnosis needs a look while nothing happens: the grace's end, then every
        ``STALL_LOOK`` seconds while stalled; None when not downloading (nothing to watch)."""
        if self._ctx.state not in (State.DOWNLOADING, State.DOWNLOADING_METADATA):
            return None
        if self.stall is not None:
            return now + STALL_LOOK
        ends = self._detector.grace_ends()
        return now if ends is None else ends
