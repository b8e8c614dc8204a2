"""One session's trackers: BEP 12 tiers, the announce schedule, backoff and per-tracker status.

Each announce round walks the tiers in order and, inside a tier, the trackers in their order
(shuffled once at start); the first tracker that answers ends the round and moves to the front
of its tier (BEP 12). The next round comes after the tracker's ``interval`` (never sooner than
its ``min interval``), or, when every tracker failed, when the first failing tracker's backoff
ends. ``completed()`` wakes the loop at once. ``stop()`` sends ``stopped`` to every tracker
that knows us, bounded by a short timeout.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import anyio

from ...errors import TrackerError, TrackerNotUsed, TrackerRefused
from ...events import EventBus, TrackerFailed, TrackerSuccess
from ...formats.compact import normalize_host, parse_ip
from ..httpclient.kept import KeptConnections
from ..netbind import NetBind
from ..proxy.settings import ProxyConfig
from . import client
from .client import SUPPORTED_SCHEMES
from .messages import (
    DEFAULT_NUMWANT,
    RETRY_NEVER,
    AnnounceEvent,
    AnnounceRequest,
    AnnounceResponse,
    AnnounceStats,
    ScrapeStats,
)
from .udp import RETRANSMIT_BASE, ConnectionIds, UdpTrackerClient

if TYPE_CHECKING:
    from ..proxy.udp_relay import UdpRelay

__all__ = ["AnnounceStats", "Settling", "TrackerCoordinator", "TrackerMemory", "TrackerStatus"]

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 1800.0  # used when a tracker gives no usable interval
MIN_ANNOUNCE_INTERVAL = 60.0  # we never re-announce more often than this, whatever the tracker says
MAX_ANNOUNCE_INTERVAL = 6 * 3600.0
ANNOUNCE_TIMEOUT = 15.0  # one attempt at one tracker, before the next of the tier is tried
BACKOFF_BASE = 15.0
BACKOFF_MAX = 1800.0


@dataclass(frozen=True, slots=True)
class TrackerStatus:
    """One tracker as status shows it: its tier, state, last answer and error."""

    url: str
    tier: int
    state: str  # "idle" (not contacted yet), "updating", "working", "failing", "disabled"
    peers: int = 0  # peers in the last successful answer (after filtering)
    seeders: int | None = None
    leechers: int | None = None
    interval: int | None = None
    min_interval: int | None = None
    last_success: float | None = None  # clock() of the last successful announce
    retry_at: float | None = None  # clock() before which a failing tracker is not tried again
    failures: int = 0  # consecutive failures
    errors: int = 0  # failed announces since the coordinator started (never reset by a success)
    last_error: str | None = None
    warning: str | None = None
    external_ip: str | None = None  # our address as this tracker sees it (BEP 24)


@dataclass(frozen=True, slots=True)
class TrackerMemory:
    """What one tracker knows of a torrent, handed from a coordinator to the next one of that
    torrent (a dormant seed is announced by short-lived coordinators, then by its woken
    session's): whether it was told ``started`` (and not ``stopped`` since), its tracker id, its
    consecutive failures, the ``clock()`` before which it is not tried again, and the ``clock()``
    at which its tier is due again after its last answer (its interval: announcing to every tier,
    a tier is not announced to before it)."""

    url: str
    announced: bool = False
    tracker_id: bytes | None = None
    failures: int = 0
    retry_at: float = 0.0
    disabled: bool = False
    due_at: float = 0.0


# The round of the torrent's announcer before this coordinator, still in flight when it handed
# over (a dormant seed woken meanwhile): awaited, what that round left its trackers knowing and
# in how many seconds its next round is due (every call gives the same, once the round ended).
Settling = Callable[[], Awaitable[tuple[tuple[TrackerMemory, ...], float]]]


class _Tracker:
    """Mutable state of one tracker URL."""

    def __init__(self, url: str, tier: int) -> None:
        self.url = url
        self.tier = tier
        self.state = "idle"
        self.announced = False  # a 'started' (or later) announce succeeded and no 'stopped' since
        self.completed_sent = False  # this tracker has been told 'completed'
        self.tracker_id: bytes | None = None
        self.failures = 0
        self.errors = 0
        self.retry_at = 0.0
        self.due_at = 0.0  # clock() at which its tier is due again after its last answer
        self.disabled = False
        self.last: AnnounceResponse | None = None
        self.peers = 0
        self.last_success: float | None = None
        self.last_error: str | None = None

    def memory(self) -> TrackerMemory:
        return TrackerMemory(self.url, self.announced, self.tracker_id, self.failures, self.retry_at,
                             self.disabled, self.due_at)

    def recall(self, memory: TrackerMemory) -> None:
        self.announced = memory.announced
        self.tracker_id = memory.tracker_id
        self.failures = memory.failures
        self.retry_at = memory.retry_at
        self.due_at = memory.due_at
        if memory.failures:
            self.state = "failing"
        self.disabled = self.disabled or memory.disabled

    def status(self) -> TrackerStatus:
        last = self.last
        return TrackerStatus(
            url=self.url,
            tier=self.tier,
            state="disabled" if self.disabled else self.state,
            peers=self.peers,
            seeders=last.seeders if last else None,
            leechers=last.leechers if last else None,
            interval=last.interval if last else None,
            min_interval=last.min_interval if last else None,
            last_success=self.last_success,
            retry_at=self.retry_at if self.failures else None,
            failures=self.failures,
            errors=self.errors,
            last_error=self.last_error,
            warning=last.warning if last else None,
            external_ip=last.external_ip if last else None,
        )


class TrackerCoordinator:
    """Announces one torrent to its trackers for as long as :meth:`run` runs.

    ``tiers`` are BEP 12 tiers of announce URLs (``Torrent.trackers``; a plain URL in the list,
    as in ``Magnet.trackers``, is a tier of its own); a private torrent passes its own and
    nothing else. ``stats()`` is read at each announce. ``on_peers`` receives each
    answer's peers, de-duplicated and without our own address. ``rng`` shuffles the tiers (once)
    and draws the announce ``key`` and UDP transaction ids. ``clock`` is only used for status
    times and backoff bookkeeping; waiting uses anyio. ``udp_ids``, when given, are the UDP
    trackers' connection ids this coordinator shares with the others of its engine.
    """

    def __init__(
        self,
        *,
        tiers: Sequence[Sequence[str] | str],
        info_hash: bytes,
        peer_id: bytes,
        port: int,
        stats: Callable[[], AnnounceStats],
        on_peers: Callable[[list[tuple[str, int]]], None],
        events: EventBus | None = None,
        info_hash_hex: str = "",
        rng: random.Random | None = None,
        numwant: int = DEFAULT_NUMWANT,
        announce_timeout: float = ANNOUNCE_TIMEOUT,
        min_announce_interval: float = MIN_ANNOUNCE_INTERVAL,
        default_interval: float = DEFAULT_INTERVAL,
        backoff_base: float = BACKOFF_BASE,
        backoff_max: float = BACKOFF_MAX,
        udp_retransmit_base: float = RETRANSMIT_BASE,
        local_addresses: Iterable[str] = (),
        ssl_context: ssl.SSLContext | None = None,
        proxy: ProxyConfig | None = None,
        udp_relay: Callable[[], UdpRelay | None] | None = None,
        netbind: Callable[[], NetBind | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        announce_to_all_tiers: bool = False,
        slots: anyio.CapacityLimiter | None = None,
        refused: Callable[[str], Awaitable[str | None]] | None = None,
        remembered: Iterable[TrackerMemory] = (),
        settling: Settling | None = None,
        announce_ip: Callable[[], str] | None = None,
        http_slots: Callable[[], anyio.CapacityLimiter] | None = None,
        ssrf: Callable[[], bool] | None = None,
        http_kept: Callable[[], KeptConnections | None] | None = None,
        udp_ids: ConnectionIds | None = None,
    ) -> None:
        if len(info_hash) != 20 or len(peer_id) != 20:
            raise ValueError("info_hash and peer_id must be 20 bytes")
        self._rng = rng or random.Random()
        self._slots = slots  # announces in flight over every torrent (None: no bound)
        self._refused = refused  # why a tracker's URL may not be contacted now (the IP filter)
        self._tiers: list[list[_Tracker]] = self._make_tiers(tiers, {})
        self._recall(remembered)  # (what a coordinator before this one handed on)
        self._settling = settling  # (its round in flight: the first round and a stop wait for its end)
        self.running = False  # run() is under way (it returns when no tracker is usable)
        self._edits = 0  # set_tiers calls so far
        self.info_hash = info_hash
        self.peer_id = peer_id
        self.port = port
        self._stats = stats
        self._on_peers = on_peers
        self._events = events
        self._info_hash_hex = info_hash_hex or info_hash.hex()
        self._key = self._rng.getrandbits(32)  # BEP 3 'key': the same for the whole session
        self.numwant = numwant
        self.announce_timeout = announce_timeout
        self.min_announce_interval = min_announce_interval
        self.default_interval = default_interval
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        # (relay: a SOCKS5 proxy's UDP relay, when it gives one; ids: the connection ids of every
        # torrent's announces, when shared)
        self._udp = UdpTrackerClient(rng=self._rng, clock=clock, retransmit_base=udp_retransmit_base,
                                     relay=udp_relay, ids=udp_ids)
        self._ssl_context = ssl_context
        self._proxy = proxy  # HTTP(S) announces go through it (UDP ones by ``udp_relay``, if any)
        self._netbind = netbind  # where each announce's socket is bound (asked anew each time)
        self._announce_ip = announce_ip  # the address trackers are told to hand out (asked anew)
        self._http_slots = http_slots  # HTTP(S) announces in flight over every torrent (asked anew)
        self._ssrf = ssrf  # whether SSRF mitigation judges HTTP(S) requests (asked anew; None: no)
        self._http_kept = http_kept  # HTTP(S) connections kept between announces (asked anew)
        if netbind is not None:
            self._udp.netbind = netbind
        self._clock = clock
        self._own_hosts = {"127.0.0.1", "::1", "0.0.0.0", "::", *local_addresses}
        self.announce_to_all_tiers = announce_to_all_tiers
        self._complete = False  # completed() was called
        self._completed_delivered = False  # ... and some tracker has been told
        self._wake_requests = 0
        self._asked = 0  # reannounce() calls of every tier, counted: one during a round goes again
        self._stopping = False
        self._wake: anyio.Event | None = None  # created in run(): an Event needs a running loop
        self._due: float | None = None  # clock() when run()'s next round is due (None: now)
        self._chosen: set[str] = set()  # trackers an owner asked to be announced to now (reannounce)

    def _recall(self, remembered: Iterable[TrackerMemory]) -> None:
        """Each tracker of ``remembered`` (what a coordinator before this one left) knows what it
        says; each tier is due (all-tiers mode) as that coordinator left it."""
        memories = {m.url: m for m in remembered}
        for tier in self._tiers:
            for tracker in tier:
                if tracker.url in memories:
                    tracker.recall(memories[tracker.url])
        # clock() when each tier is due (all-tiers mode)
        self._tier_due = [max((t.due_at for t in tier if t.announced), default=0.0) for tier in self._tiers]

    async def _settle(self) -> float | None:
        """With ``settling``: once the round of the announcer before this one ended, go on from
        what it left (its trackers' memory: one it told ``started`` is not told it again) and
        return the seconds until its next round; None without (or after) it."""
        if self._settling is None:
            return None
        remembered, next_in = await self._settling()
        if self._settling is not None:  # (the first to see it ended: ``run`` or ``stop``)
            self._settling = None
            self._recall(remembered)
        return next_in

    def _make_tiers(self, tiers: Sequence[Sequence[str] | str],
                    known: dict[str, _Tracker]) -> list[list[_Tracker]]:
        """The tiers of ``tiers``' URLs (each once, in its first tier); a URL of ``known`` keeps
        its state (what it said, whether it knows us)."""
        out: list[list[_Tracker]] = []
        seen: set[str] = set()
        for tier_urls in tiers:
            # A bare URL (a magnet's flat tracker list) is a tier of its own, not a row of letters.
            urls = [tier_urls] if isinstance(tier_urls, str) else tier_urls
            tier = [known.get(url) or _new_tracker(url) for url in dict.fromkeys(urls) if url not in seen]
            seen.update(t.url for t in tier)
            if tier:
                self._rng.shuffle(tier)  # BEP 12: shuffled once, when first read
                for tracker in tier:
                    tracker.tier = len(out)
                out.append(tier)
        return out

    # ------------------------------------------------------------------ public API

    def set_tiers(self, tiers: Sequence[Sequence[str] | str]) -> None:
        """Announce to ``tiers`` from now on (an owner edited the trackers): a tracker kept keeps
        its state, one removed is no longer announced to, and a round begins now, so a tracker
        added hears of the torrent at once (in BEP 12 order: the first tier's trackers first)."""
        known = {t.url: t for tier in self._tiers for t in tier}
        self._tiers = self._make_tiers(tiers, known)
        self._edits += 1
        self.reannounce()

    async def run(self, *, first_in: float = 0.0) -> None:
        """Announce ``started`` (to a tracker that was not told it: see ``remembered``), then
        re-announce on schedule until cancelled or stopped; ``first_in``: seconds to wait
        before the first round (when it is due, as the coordinator before this one said).
        Returns early when there is no usable tracker at all. With ``settling``, the first round
        waits for the end of the round in flight of the announcer before this one, and comes
        when that one said (``first_in`` unused), or at once when asked for meanwhile."""
        self.running = True
        try:
            if self._settling is not None:
                requests, edits = self._wake_requests, self._edits
                later = await self._settle()
                if self._wake_requests != requests or self._edits != edits:
                    self._due_now()  # (asked for meanwhile: every tier due now, as it was asked)
                    first_in = 0.0
                else:
                    first_in = later or 0.0
            if first_in > 0:
                await self._wait(first_in)
            await self._run()
        finally:
            self.running = False

    async def _run(self) -> None:
        while not self._stopping:
            requests = self._wake_requests
            edits, asked = self._edits, self._asked
            delay = await self.announce_now()
            if delay is None:
                return
            if self._wake_requests != requests and self._complete and not self._completed_delivered:
                continue  # completed() came during the round, too late for it: go again now
            if self._edits != edits:
                continue  # the tiers changed during the round, which walked the old ones: go again now
            if self._asked != asked:
                # A reannounce came during the round, whose requests had gone out (and whose
                # answers set the schedule again): go again now, as asked.
                self._due_now()
                continue
            await self._wait(delay)

    async def _wait(self, delay: float) -> None:
        """Until ``delay`` seconds passed, or something asks for a round now; the trackers asked
        for meanwhile (``reannounce(urls)``) are announced to as they are asked for, each heard
        to its end (its own timeout) when the round comes due meanwhile: the round waits for it,
        where cutting it short left the chosen tracker unannounced."""
        self._due = self._clock() + delay
        deadline = anyio.current_time() + delay  # (waiting is anyio's: ``clock`` is the status')
        requests = self._wake_requests
        while not self._stopping and self._wake_requests == requests:
            if self._chosen:
                await self.announce_chosen()
                continue
            if anyio.current_time() >= deadline:
                break
            self._wake = anyio.Event()
            with anyio.CancelScope(deadline=deadline):
                await self._wake.wait()
        self._due = None  # (a round begins: due now; cancelled while waiting, the due time stays)

    async def announce_chosen(self) -> None:
        """Announce now to the trackers ``reannounce(urls)`` asked for, each at once (``started``
        to one not told it yet); what each answers is kept, its tier's schedule unchanged."""
        urls, self._chosen = self._chosen, set()
        chosen = [t for tier in self._tiers for t in tier if t.url in urls and not t.disabled]

        async def one(tracker: _Tracker) -> None:
            tracker.retry_at = 0.0
            await self._announce_one(tracker, self._event_for(tracker), self.announce_timeout, chosen=True)

        async with anyio.create_task_group() as tg:
            for tracker in chosen:
                tg.start_soon(one, tracker)

    def next_in(self) -> float:
        """Seconds until :meth:`run`'s next round is due as its schedule says (0: now, or it
        is under way): what the next coordinator of this torrent waits first (``first_in``)."""
        return 0.0 if self._due is None else max(0.0, self._due - self._clock())

    def remembered(self) -> tuple[TrackerMemory, ...]:
        """What each tracker that heard from us, or failed, knows (for the next coordinator of
        this torrent: ``remembered``)."""
        return tuple(t.memory() for tier in self._tiers for t in tier
                     if t.announced or t.failures or t.tracker_id is not None or t.disabled)

    def reannounce(self, urls: Collection[str] | None = None) -> None:
        """Announce to every tier now (a user's "reannounce"), whatever the schedule says: a
        failing tracker's back-off too (as libtorrent's ``force_reannounce``; its failures still
        count, so a failure now backs off longer), not one disabled for good; asked while a round
        is under way (its requests sent), a round of its own follows it. ``urls``: to these
        trackers alone (libtorrent's ``force_reannounce`` of a tracker), each whatever its tier
        says, the rounds' schedule left as it was; a URL that is none of the torrent's is passed
        over."""
        if urls is not None:
            known = {t.url for tier in self._tiers for t in tier if not t.disabled}
            self._chosen.update(url for url in urls if url in known)
            if self._chosen and self._wake is not None:
                self._wake.set()  # (the wait announces them and goes on: no new round)
            return
        self._due_now()
        self._asked += 1
        self._wake_requests += 1
        if self._wake is not None:
            self._wake.set()

    def _due_now(self) -> None:
        """Every tier due now, a failing tracker's back-off ended (a user's reannounce)."""
        for tier in self._tiers:
            for tracker in tier:
                tracker.retry_at = 0.0
        self._tier_due = [0.0] * len(self._tiers)

    def completed(self) -> None:
        """The download finished: send ``completed`` at the next opportunity, i.e. now. Only
        the first call counts."""
        if self._complete:
            return
        self._complete = True
        self._tier_due = [0.0] * len(self._tiers)
        self._wake_requests += 1
        if self._wake is not None:
            self._wake.set()

    async def stop(self, timeout: float) -> None:
        """Send ``stopped`` to every tracker that knows us, all at once, within ``timeout``
        seconds (``Config.stop_tracker_timeout``; 0: none is sent, as libtorrent's
        ``stop_tracker_timeout`` 0); end :meth:`run`. Failures are recorded but never raised.
        With ``settling`` (not ended yet), the trackers it told are known at its end, within
        the same ``timeout``."""
        self._stopping = True
        if self._wake is not None:
            self._wake.set()
        if timeout <= 0:
            return
        with anyio.move_on_after(timeout):
            await self._settle()
            targets = [t for tier in self._tiers for t in tier if t.announced and not t.disabled]
            if not targets:  # (none knows us: no task group made, a stop of thousands costs nothing)
                return
            async with anyio.create_task_group() as tg:
                for tracker in targets:
                    tg.start_soon(self._announce_one, tracker, "stopped", timeout)

    def status(self) -> list[TrackerStatus]:
        """Every tracker in its current try order, tier by tier."""
        return [t.status() for tier in self._tiers for t in tier]

    def announcing(self) -> frozenset[str]:
        """The trackers an announce is waiting for now (it holds a slot; qBittorrent's
        ``updating``): an announce cut short is no longer one."""
        return frozenset(t.url for tier in self._tiers for t in tier if t.state == "updating")

    async def scrape(self, url: str, timeout: float = ANNOUNCE_TIMEOUT) -> ScrapeStats:
        """Scrape this torrent at the tracker ``url`` (BEP 48 over HTTP, BEP 15 action 2 over
        UDP), as an announce goes: the same proxy, binding and UDP connection ids, the IP filter's
        word, and a slot among the announces in flight (a scrape is paced with them).
        ``TrackerError`` with the reason when it fails or the tracker does not list the torrent."""
        why = await self._refused(url) if self._refused is not None else None
        if why is not None:
            raise TrackerError(why, url)
        async with self._slot(url):
            response = await client.scrape(
                url, [self.info_hash], timeout=timeout, udp=self._udp, ssl_context=self._ssl_context,
                proxy=self._proxy, bind=self._netbind() if self._netbind is not None else None,
                ssrf_mitigation=self._ssrf is not None and self._ssrf(),
                kept=self._http_kept() if self._http_kept is not None else None)
        stats = response.files.get(self.info_hash)
        if stats is None:
            raise TrackerError("the tracker does not list this torrent", url)
        return stats

    @property
    def tiers(self) -> list[list[str]]:
        """The current try order (shuffled, then successful trackers moved to the front)."""
        return [[t.url for t in tier] for tier in self._tiers]

    async def announce_now(self) -> float | None:
        """One BEP 12 pass over the tiers, now: the first tracker that answers ends it and moves
        to the front of its tier. Returns the seconds until the next pass is due (the tracker's
        interval, or the end of the earliest backoff), None when no tracker is usable.

        With ``announce_to_all_tiers`` every tier that is due is announced at once, each to its
        first working tracker, and each tier keeps its own schedule."""
        if self.announce_to_all_tiers:
            return await self._announce_all_tiers()
        for tier in self._tiers:
            if self._stopping:
                return 0.0
            interval = await self._announce_tier(tier)
            if interval is not None:
                return interval
        return self._backoff_wait([t for tier in self._tiers for t in tier])

    # ------------------------------------------------------------------ internals

    async def _announce_tier(self, tier: list[_Tracker]) -> float | None:
        """Try the tier's trackers in order; the interval of the first that answers, else None."""
        for tracker in list(tier):
            if self._stopping:
                return None
            if tracker.disabled or tracker.retry_at > self._clock():
                continue
            response = await self._announce_one(tracker, self._event_for(tracker), self.announce_timeout)
            if response is not None:
                tier.remove(tracker)
                tier.insert(0, tracker)  # BEP 12: a tracker that answers goes to the front
                interval = self._next_interval(response)
                if self._complete and not tracker.completed_sent:
                    interval = 0.0  # (told started: the completion, at once after it)
                tracker.due_at = self._clock() + interval
                return interval
        return None

    async def _announce_all_tiers(self) -> float | None:
        async def one(index: int) -> None:
            tier = self._tiers[index]
            interval = await self._announce_tier(tier)
            wait = interval if interval is not None else self._backoff_wait(tier)
            if index < len(self._tier_due) and tier is self._tiers[index]:  # (not edited meanwhile)
                self._tier_due[index] = self._clock() + (wait if wait is not None else math.inf)

        now = self._clock()
        async with anyio.create_task_group() as tg:
            for index, due in enumerate(self._tier_due):
                if due <= now:
                    tg.start_soon(one, index)
        upcoming = [due for due in self._tier_due if due != math.inf]
        if not upcoming:
            return None
        return max(0.0, min(upcoming) - self._clock())

    def _backoff_wait(self, trackers: list[_Tracker]) -> float | None:
        """Seconds until the first of ``trackers`` may be tried again; None if none ever may."""
        usable = [t for t in trackers if not t.disabled]
        if not usable:
            return None
        return max(1.0, min(t.retry_at for t in usable) - self._clock())

    # ------------------------------------------------------------------ internals

    def _next_interval(self, response: AnnounceResponse) -> float:
        interval = float(response.interval) if response.interval > 0 else self.default_interval
        interval = max(interval, float(response.min_interval or 0), self.min_announce_interval)
        return min(interval, MAX_ANNOUNCE_INTERVAL)

    @contextlib.asynccontextmanager
    async def _slot(self, url: str) -> AsyncIterator[None]:
        """A slot among the announces in flight over every torrent (``slots``), and for an HTTP(S)
        tracker one among the HTTP announces (``http_slots``: libtorrent's
        ``max_concurrent_http_announces``), taken in that order."""
        async with self._slots if self._slots is not None else contextlib.nullcontext():
            if self._http_slots is not None and url.startswith(("http://", "https://")):
                async with self._http_slots():
                    yield
            else:
                yield

    def _event_for(self, tracker: _Tracker) -> AnnounceEvent:
        """What the next announce to ``tracker`` tells it: ``started`` first (BEP 3), then
        ``completed`` once, when the download completed."""
        if not tracker.announced:
            return "started"
        return "completed" if self._complete and not tracker.completed_sent else ""

    def _round_in(self, tracker: _Tracker) -> float | None:
        """Seconds until the next round that may announce to ``tracker`` (its tier's, with
        ``announce_to_all_tiers``); None when none is scheduled."""
        per_tier = self.announce_to_all_tiers and tracker.tier < len(self._tier_due)
        due = self._tier_due[tracker.tier] if per_tier else self._due
        return None if due is None or due == math.inf else max(0.0, due - self._clock())

    async def _announce_one(
        self, tracker: _Tracker, event: AnnounceEvent, timeout: float, *, chosen: bool = False
    ) -> AnnounceResponse | None:
        """One announce to ``tracker``; ``chosen``: asked for by ``reannounce(urls)``, outside the
        rounds (its next announce is then the next round's, which it does not move)."""
        stats = self._stats()
        request = AnnounceRequest(
            info_hash=self.info_hash,
            peer_id=self.peer_id,
            port=self.port,
            uploaded=stats.uploaded,
            downloaded=stats.downloaded,
            left=stats.left,
            event=event,
            numwant=0 if event == "stopped" else self.numwant,
            key=self._key,
            tracker_id=tracker.tracker_id,
            ip=self._announce_ip() if self._announce_ip is not None else "",
        )
        try:
            why = await self._refused(tracker.url) if self._refused is not None else None
            if why is not None:
                raise TrackerError(why, tracker.url)
            async with self._slot(tracker.url):
                # (waiting for a slot, it is not; an announce cut short leaves it as it was, an
                # answer or a failure sets its own state below)
                before, tracker.state = tracker.state, "updating"
                try:
                    response = await client.announce(
                        tracker.url, request, timeout=timeout, udp=self._udp, ssl_context=self._ssl_context,
                        proxy=self._proxy, bind=self._netbind() if self._netbind is not None else None,
                        ssrf_mitigation=self._ssrf is not None and self._ssrf(),
                        kept=self._http_kept() if self._http_kept is not None else None,
                    )
                finally:
                    tracker.state = before
        except TrackerError as exc:
            self._failed(tracker, exc)
            return None
        tracker.state = "working"
        tracker.failures = 0
        tracker.retry_at = 0.0
        tracker.last_error = None
        tracker.last = response
        tracker.last_success = self._clock()
        if response.tracker_id is not None:
            tracker.tracker_id = response.tracker_id
        if event == "stopped":
            tracker.announced = False
            return response
        tracker.announced = True
        if event == "completed":
            tracker.completed_sent = True
            self._completed_delivered = True
        if response.warning:
            log.warning("tracker %s: %s", tracker.url, response.warning)
        for why in response.ignored:
            log.info("tracker %s: reply field left out: %s", tracker.url, why)
        if response.external_ip:
            self._own_hosts.add(response.external_ip)
        peers = self._filter_peers(response.peers)
        tracker.peers = len(peers)
        self._publish(
            TrackerSuccess(
                info_hash=self._info_hash_hex,
                url=tracker.url,
                peers=len(peers),
                seeders=response.seeders,
                leechers=response.leechers,
                interval=response.interval,
                min_interval=response.min_interval,
                # (as _announce_tier schedules it: told started, a completion goes at once after)
                next_in=self._round_in(tracker) if chosen
                else 0.0 if self._complete and not tracker.completed_sent else self._next_interval(response),
                warning=response.warning or "",
            )
        )
        if peers:
            try:
                self._on_peers(peers)
            except Exception:
                log.exception("on_peers callback failed for tracker %s", tracker.url)
        return response

    def _failed(self, tracker: _Tracker, exc: TrackerError) -> None:
        tracker.state = "failing"
        tracker.failures += 1
        tracker.errors += 1
        tracker.last_error = exc.reason
        delay = min(self.backoff_base * 2 ** min(tracker.failures - 1, 16), self.backoff_max)
        if isinstance(exc, TrackerNotUsed):
            tracker.disabled = True
        elif isinstance(exc, TrackerRefused) and exc.retry_in is not None:
            if exc.retry_in == RETRY_NEVER:
                tracker.disabled = True  # BEP 31: "never" — this URL is not a tracker
            else:
                delay = max(delay, float(exc.retry_in))
        tracker.retry_at = self._clock() + delay
        if isinstance(exc, TrackerNotUsed):
            log.warning("tracker %s: %s", tracker.url, exc.reason)
        elif tracker.disabled:
            log.info("tracker %s failed (%s); it asked never to be tried again", tracker.url, exc.reason)
        else:
            log.info("tracker %s failed (%s); next try in %.0f s", tracker.url, exc.reason, delay)
        kind = "refused" if isinstance(exc, TrackerRefused) else \
            "skipped" if isinstance(exc, TrackerNotUsed) else "error"
        self._publish(TrackerFailed(info_hash=self._info_hash_hex, url=tracker.url, error=exc.reason,
                                    retry_in=None if tracker.disabled else delay, kind=kind))

    def _filter_peers(self, peers: Iterable[tuple[str, int]]) -> list[tuple[str, int]]:
        seen: set[tuple[str, int]] = set()
        result: list[tuple[str, int]] = []
        for host, port in peers:
            key = (_canonical_host(host), port)
            if key in seen or (port == self.port and key[0] in self._own_hosts):
                continue
            seen.add(key)
            result.append(key)
        return result

    def _publish(self, event: TrackerSuccess | TrackerFailed) -> None:
        if self._events is not None:
            self._events.publish(event)


def _new_tracker(url: str) -> _Tracker:
    """A tracker not contacted yet; disabled, saying why, when its URL cannot be announced to."""
    tracker = _Tracker(url, 0)
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:  # e.g. "http://[::1/" from an untrusted announce-list
        tracker.disabled = True
        tracker.last_error = "malformed tracker URL"
        return tracker
    if scheme not in SUPPORTED_SCHEMES:
        tracker.disabled = True
        tracker.last_error = "unsupported tracker URL scheme"
    return tracker


def _canonical_host(host: str) -> str:
    try:
        return normalize_host(parse_ip(host))
    except ValueError:
        return host.lower()
