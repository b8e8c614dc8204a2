"""Announcing: the torrent's trackers (BEP 3/12/15), the DHT (BEP 5) and LSD (BEP 14), feeding the
peer pool."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import anyio
import anyio.abc

from ..errors import TorrentEngineError, TrackerError
from ..net.tracker.coordinator import AnnounceStats, Settling, TrackerCoordinator, TrackerMemory
from ..net.tracker.messages import ScrapeStats
from .phases import Loaded, swarm_group

if TYPE_CHECKING:
    from .context import AddPeers, TorrentContext
    from .peer_pool import PeerSource

log = logging.getLogger("torrent_engine.session")

MAGNET_LEFT = 16 * 1024 * 1024  # 'left' announced before a magnet's size is known


class Announcer:
    """The session's trackers, DHT and LSD announces; started with the swarm, stopped with it."""

    def __init__(self, context: TorrentContext, *, add_peers: AddPeers) -> None:
        self._ctx = context
        self._add_peers = add_peers  # the addresses trackers, the DHT and LSD found, to the pool
        self.tracker: TrackerCoordinator | None = None
        self._edited: tuple[tuple[str, ...], ...] | None = None  # the owner's tiers (None: the torrent's)
        # what the trackers knew of the torrent before this session ran (announced while it had
        # none) and the seconds until its next announce: the first coordinator goes on from it
        self._taken_over: tuple[tuple[TrackerMemory, ...], float] | None = None
        self._settling: Settling | None = None  # (the round of its announcer before it, in flight then)
        # what the trackers know once the session stopped without telling them (``hand_over``)
        self.handed_over: tuple[tuple[TrackerMemory, ...], float] | None = None
        self._dht_on = False  # the DHT announces' task runs (it ends when the DHT is turned off)
        self._lsd_on = False  # the LSD task runs (it outlives LSD turned off: see serve_lsd)
        self._completed_due = False  # completed while no swarm ran: the next coordinator says so
        self._address_changes = 0  # our external address's changes its coordinator was told of

    def _from(self, source: PeerSource) -> Callable[[Iterable[tuple[str, int]]], None]:
        """What a peer source calls with the addresses it found (into the pool, as from ``source``)."""
        return lambda peers: self._add_peers(peers, source)

    def tiers(self) -> tuple[tuple[str, ...], ...]:
        """The tracker tiers (as edited by the owner, else from the metainfo, or a magnet's ``tr``)."""
        if self._edited is not None:
            return self._edited
        ctx = self._ctx
        if isinstance(ctx.phase, Loaded):
            return ctx.phase.parts.torrent.trackers
        return tuple((url,) for url in ctx.magnet.trackers) if ctx.magnet is not None else ()

    def start(self, swarm: anyio.abc.TaskGroup) -> None:
        """Start the trackers, the DHT loop and LSD in the swarm's task group."""
        ctx = self._ctx
        assert ctx.shared is not None
        self._start_trackers(swarm)
        self._peer_services(swarm)
        # (the DHT or LSD turned on later, or started again: their tasks start then; none meanwhile)
        ctx.shared.watch_services(ctx.info_hash, self._services_changed)

    def _peer_services(self, swarm: anyio.abc.TaskGroup) -> None:
        """Start the DHT announces and LSD, those that run now and this torrent has not started."""
        ctx = self._ctx
        assert ctx.shared is not None
        if ctx.private:  # BEP 27: private torrents never use the DHT nor LSD
            return
        if ctx.shared.dht is not None and not self._dht_on:
            self._dht_on = True
            swarm.start_soon(self._dht_loop)
        if ctx.shared.lsd is not None and not self._lsd_on:
            self._lsd_on = True
            swarm.start_soon(self._serve_lsd)

    def _services_changed(self) -> None:
        group = swarm_group(self._ctx.phase)
        if group is not None:
            self._peer_services(group)
        tracker, shared = self.tracker, self._ctx.shared
        if tracker is None or not tracker.running or shared is None:
            return
        moved = bool(shared.listen_port) and tracker.port != shared.listen_port
        if moved:  # the port moved (a run-time setting): the trackers hand out the new one from
            tracker.port = shared.listen_port  # now on, told at once as libtorrent does
        if moved or shared.address_changes != self._address_changes:  # (or our address did)
            self._address_changes = shared.address_changes
            tracker.reannounce()  # (their slots pace many torrents' announces)

    async def _serve_lsd(self) -> None:
        ctx = self._ctx
        assert ctx.shared is not None
        try:
            await ctx.shared.serve_lsd(ctx.info_hash, self._from("lsd"))
        finally:
            self._lsd_on = False

    def take_over(self, remembered: tuple[TrackerMemory, ...], next_in: float, *,
                  settling: Settling | None = None) -> None:
        """Before the session runs: its torrent was announced without it (a dormant seed), and
        its trackers know what ``remembered`` says; the next announce is due in ``next_in``
        seconds. The session's trackers go on from there: none is told ``started`` again.
        ``settling``: a round of that announcer was in flight, and the first coordinator goes on
        from what it leaves instead (its first round and its stop wait for that round's end)."""
        self._taken_over = (remembered, next_in)
        self._settling = settling

    def set_tiers(self, tiers: tuple[tuple[str, ...], ...]) -> None:
        """Announce to ``tiers`` from now on: the running coordinator takes them (a tracker added
        is announced to at once, one removed no more); with none running and a swarm live, one
        starts."""
        self._edited = tiers
        if self.tracker is not None and self.tracker.running:
            self.tracker.set_tiers(tiers)
            return
        group = swarm_group(self._ctx.phase)
        if group is not None:
            self._start_trackers(group)

    def _start_trackers(self, swarm: anyio.abc.TaskGroup) -> None:
        ctx = self._ctx
        assert ctx.shared is not None
        tiers = self.tiers()
        if ctx.config.tracker_enabled and tiers:
            def stats() -> AnnounceStats:
                phase = ctx.phase
                left = phase.parts.picker.left_bytes() if isinstance(phase, Loaded) else MAGNET_LEFT
                totals = ctx.totals
                return AnnounceStats(uploaded=totals.uploaded, downloaded=totals.downloaded, left=left)

            shared = ctx.shared
            remembered, next_in = self._taken_over if self._taken_over is not None else ((), 0.0)
            settling, self._settling = self._settling, None
            self._taken_over = None  # (once: a coordinator after it goes on from its predecessor's)
            self.tracker = TrackerCoordinator(tiers=tiers, info_hash=ctx.info_hash, peer_id=shared.peer_id,
                                              port=shared.listen_port, stats=stats,
                                              on_peers=self._from("tracker"), events=ctx.events,
                                              info_hash_hex=ctx.info_hash_hex, slots=shared.tracker_slots,
                                              proxy=ctx.config.proxy, udp_relay=shared.udp_relay,
                                              refused=shared.tracker_refused, netbind=ctx.config.netbind,
                                              remembered=remembered, settling=settling,
                                              announce_to_all_tiers=ctx.config.announce_to_all_tiers,
                                              announce_ip=lambda: ctx.config.announce_ip,
                                              http_slots=lambda: shared.http_announce_slots,
                                              http_kept=lambda: shared.http_kept, udp_ids=shared.udp_ids,
                                              ssrf=lambda: ctx.config.ssrf_mitigation)
            tracker = self.tracker
            self._address_changes = shared.address_changes  # (its first announce tells the address)
            if self._completed_due:
                self._completed_due = False
                tracker.completed()
            swarm.start_soon(lambda: tracker.run(first_in=next_in))

    async def scrape(self, url: str) -> ScrapeStats:
        """Scrape the tracker ``url`` for this torrent (``TrackerCoordinator.scrape``), with the
        trackers' settings; ``TrackerError`` when it fails, or when no tracker runs (paused,
        stopped, checking, trackers off): a scrape goes as an announce would."""
        tracker = self.tracker
        if tracker is None or not tracker.running:
            raise TrackerError("not scraped: the torrent's trackers are not running (paused or stopped)", url)
        return await tracker.scrape(url)

    def completed(self) -> None:
        """The download completed: the trackers hear it (event=completed), when no coordinator
        runs (its swarm ended for a check: ``Config.recheck_on_completion``) from the next one."""
        if swarm_group(self._ctx.phase) is not None:  # (a live swarm: its coordinator, if any)
            if self.tracker is not None:
                self.tracker.completed()
        else:
            self._completed_due = True

    def forget(self) -> None:
        """The metadata phase ended: the full session announces afresh."""
        self.tracker = None

    def hand_over(self) -> None:
        """The session stops without telling its trackers (``Session.suspend``): keep in
        ``handed_over`` what they know and in how many seconds the next announce is due, for
        whoever announces the torrent next (the swarm has ended: nothing changes it any more)."""
        tracker, self.tracker = self.tracker, None
        if tracker is not None:
            self.handed_over = (tracker.remembered(), tracker.next_in())
        else:  # (it never announced: what it was handed, unchanged)
            self.handed_over = self._taken_over if self._taken_over is not None else ((), 0.0)

    async def stop(self) -> None:
        """Send the trackers event=stopped (bounded: a dead tracker must not block a stop)."""
        if self.tracker is None:
            return
        tracker, self.tracker = self.tracker, None
        timeout = self._ctx.config.stop_tracker_timeout  # (as it is now: a setting changes it)
        with anyio.move_on_after(timeout):
            try:
                await tracker.stop(timeout)
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
        assert ctx.shared is not None
        try:
            await self._dht_rounds()
        finally:
            self._dht_on = False

    async def _dht_rounds(self) -> None:
        ctx = self._ctx
        assert ctx.shared is not None
        while True:
            dht = ctx.shared.dht
            if dht is None:  # (turned off: started again when it is turned on)
                return
            try:
                # one lookup finds peers, dialed as each answer brings them, and then announces
                # (so many lookups at once over every torrent: a start of thousands queues them)
                async with ctx.shared.dht_slots:
                    await dht.announce_peer(ctx.info_hash, ctx.shared.listen_port, on_peers=self._from("dht"))
            except TorrentEngineError as exc:
                log.debug("DHT lookup for %s failed: %s", ctx.name, exc)
            interval = ctx.config.dht_interval
            await anyio.sleep(interval if ctx.peers else min(60.0, interval))
