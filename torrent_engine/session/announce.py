"""Announcing: the torrent's trackers (BEP 3/12/15), the DHT (BEP 5) and LSD (BEP 14), feeding the
peer pool."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

import anyio
import anyio.abc

from ..errors import TorrentEngineError
from ..tracker.coordinator import AnnounceStats, TrackerCoordinator
from .phases import Loaded

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ..magnet import Magnet
    from .context import TorrentContext

log = logging.getLogger("torrent_engine.session")

MAGNET_LEFT = 16 * 1024 * 1024  # 'left' announced before a magnet's size is known


class AnnouncerHost(Protocol):
    """What announcing needs of its torrent beside the context."""

    @property
    def context(self) -> TorrentContext:
        """What every part reads and calls (``context``)."""

    @property
    def magnet(self) -> Magnet | None:
        """A magnet's trackers, before the metadata."""

    @property
    def uploaded(self) -> int:
        """Bytes sent (announced)."""

    @property
    def downloaded(self) -> int:
        """Bytes received (announced)."""

    @property
    def private(self) -> bool:
        """BEP 27: no DHT, no LSD."""

    @property
    def name(self) -> str:
        """For the log."""

    def add_peers(self, peers: Iterable[tuple[str, int]]) -> None:
        """Addresses the trackers, the DHT and LSD found."""


class Announcer:
    """The session's trackers, DHT and LSD announces; started with the swarm, stopped with it."""

    def __init__(self, session: AnnouncerHost) -> None:
        self._s = session
        self._ctx = session.context
        self.tracker: TrackerCoordinator | None = None

    def tiers(self) -> tuple[tuple[str, ...], ...]:
        """The tracker tiers (from the metainfo, or a magnet's ``tr``)."""
        ctx = self._ctx
        s = self._s
        if isinstance(ctx.phase, Loaded):
            return ctx.phase.parts.torrent.trackers
        return tuple((url,) for url in s.magnet.trackers) if s.magnet is not None else ()

    def start(self, swarm: anyio.abc.TaskGroup) -> None:
        """Start the trackers, the DHT loop and LSD in the swarm's task group."""
        ctx = self._ctx
        s = self._s
        assert ctx.shared is not None
        tiers = self.tiers()
        if ctx.config.tracker_enabled and tiers:
            def stats() -> AnnounceStats:
                phase = ctx.phase
                left = phase.parts.picker.left_bytes() if isinstance(phase, Loaded) else MAGNET_LEFT
                return AnnounceStats(uploaded=s.uploaded, downloaded=s.downloaded, left=left)

            shared = ctx.shared
            self.tracker = TrackerCoordinator(tiers=tiers, info_hash=ctx.info_hash, peer_id=shared.peer_id,
                                              port=shared.listen_port, stats=stats, on_peers=s.add_peers,
                                              events=ctx.events, info_hash_hex=ctx.info_hash_hex)
            swarm.start_soon(self.tracker.run)
        if not s.private and ctx.shared.dht is not None:
            swarm.start_soon(self._dht_loop)
        lsd = ctx.shared.lsd
        if not s.private and lsd is not None:  # BEP 27: private torrents never use LSD
            swarm.start_soon(lsd.serve_torrent, ctx.info_hash, s.add_peers)

    def completed(self) -> None:
        """The download completed: the trackers hear it (event=completed)."""
        if self.tracker is not None:
            self.tracker.completed()

    def forget(self) -> None:
        """The metadata phase ended: the full session announces afresh."""
        self.tracker = None

    async def stop(self) -> None:
        """Send the trackers event=stopped (bounded: a dead tracker must not block a stop)."""
        if self.tracker is None:
            return
        tracker, self.tracker = self.tracker, None
        with anyio.move_on_after(5):
            try:
                await tracker.stop()
            except Exception as exc:
                log.debug("tracker stop failed: %s", exc)

    def errors(self) -> tuple[str, ...]:
        """The trackers failing now, with their last error."""
        if self.tracker is None:
            return ()
        return tuple(f"{t.url}: {t.last_error}" for t in self.tracker.status()
                     if t.state in ("failing", "disabled") and t.last_error)

    async def _dht_loop(self) -> None:
        ctx = self._ctx
        s = self._s
        assert ctx.shared is not None
        while True:
            dht = ctx.shared.dht
            if dht is None:
                return
            try:
                # one lookup finds peers, dialed as each answer brings them, and then announces
                await dht.announce_peer(ctx.info_hash, ctx.shared.listen_port, on_peers=s.add_peers)
            except TorrentEngineError as exc:
                log.debug("DHT lookup for %s failed: %s", s.name, exc)
            interval = ctx.config.dht_interval
            await anyio.sleep(interval if ctx.peers else min(60.0, interval))
