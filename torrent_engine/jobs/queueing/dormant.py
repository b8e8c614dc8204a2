"""Dormant seeds: a complete job that seeds without a session (DESIGN.md section 12: an idle
torrent is its record and its piece bitfield, not its live parts).

At the service's start a complete seed whose files are there stays without a session: its
record says what it shows, and it costs a few hundred bytes. It still seeds:
- the shared listener knows its info-hash: the first peer that asks for it wakes it (its
  session starts as a dormant job's does, its data trusted by size and mtime as at any start,
  else checked) and is handed to it;
- one task announces every dormant seed to its trackers (and the DHT), paced: at most
  ``BEGIN_RATE`` announces begun a second, at most ``active_tracker_limit`` rounds in flight, the
  next round of each after the interval its tracker gave, shortened by a random share
  (``JITTER``) so that seeds announced together drift apart. What each tracker knows (told
  ``started``, its tracker id, its back-off) is kept between rounds and handed to the session
  when the seed wakes, so no tracker is told ``started`` twice (woken while a round of it is in
  flight, its session's first announce waits for that round's end). A seed has one tracker round in
  flight at most: a round asked for meanwhile (``reannounce``: asked, or its trackers edited),
  or due while its chosen trackers are announced to, comes as soon as that one ends, with the
  trackers as they are then;
- the service's stop sends ``stopped`` to the trackers that know a dormant seed, as a stopping
  session does, all at once and bounded (``Config.stop_tracker_timeout``).

A seed whose session has been quiet for ``Config.dormant_after`` seconds (no peer, no transfer,
no reader) becomes a dormant seed again (``QueueRounds.fall_dormant``, rounds.py): its session is
suspended (stopped without a ``stopped`` to its trackers) and what its trackers know is handed
here (``add``'s ``announced``).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import os
import random
import time
from collections.abc import Awaitable, Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.abc

from ...engine.manager import TorrentManager
from ...errors import TorrentEngineError, TrackerError
from ...net.tracker.coordinator import AnnounceStats, Settling, TrackerCoordinator, TrackerMemory
from ...net.tracker.messages import ScrapeStats
from ...session import Session
from ...session.peer_io import handshaker_for
from ..store import JobRecord

log = logging.getLogger("torrent_engine.jobs.dormant")

BEGIN_RATE = 200.0  # announces begun a second at most (10 000 seeds at a start: 50 s)
JITTER = 0.1  # a round comes up to this share of its interval early (seeds drift apart)
WAKE_TIMEOUT = 120.0  # seconds a wake may take (its session's start, its check if it needs one)
TRACKERS, DHT = "tracker", "dht"
CHOSEN = "chosen"  # an announce to the trackers an owner chose (``reannounce(urls)``), outside the rounds


@dataclass(slots=True, eq=False)
class _Seed:
    """One dormant seed: its record, and what its announces left (the rest is on disk)."""

    rec: JobRecord
    info_hash: bytes
    waker: Callable[[_Seed], Awaitable[None]]  # (its owner's one ``_wake``: see ``__call__``)
    remembered: tuple[TrackerMemory, ...] = ()  # what its trackers know of it
    tracker_due: float = math.inf  # monotonic time of its next tracker round (inf: none)
    tracker_round: bool = False  # a tracker round of it is in flight
    tracker_again: bool = False  # a round was asked for while one was in flight: it comes next
    asked: bool = False  # a round was asked for (reannounce): every tier of it, whatever its interval
    chosen: frozenset[str] | None = None  # trackers asked for alone (reannounce(urls)), not announced yet
    announcer: TrackerCoordinator | None = None  # the coordinator of its round in flight, if any
    handing: _Handing | None = None  # woken while its round was in flight: its session waits for its end
    dht_due: float = math.inf
    private: bool | None = None  # BEP 27 (read from its metainfo at its first DHT turn)

    def __call__(self) -> Awaitable[None]:
        """Wake it (``SharedResources.register_dormant``'s call): the seed is its own wake, where
        a closure was 4 more objects a seed (a function, its two cells and their tuple) for the
        collector's sweeps to walk."""
        return self.waker(self)


class _Handing:
    """A dormant seed woken while a tracker round of it was in flight: what that round leaves
    its trackers knowing, and in how many seconds its next round is due, for its session's
    trackers once it ended (``Settling``: they wait for it, so none is told ``started`` twice)."""

    def __init__(self, remembered: tuple[TrackerMemory, ...]) -> None:
        self._ended = anyio.Event()
        self._left: tuple[tuple[TrackerMemory, ...], float] = (remembered, 0.0)

    def settle(self, remembered: tuple[TrackerMemory, ...], next_in: float) -> None:
        """The round ended (answered, failed or cancelled): it left ``remembered``."""
        self._left = (remembered, next_in)
        self._ended.set()

    async def __call__(self) -> tuple[tuple[TrackerMemory, ...], float]:
        await self._ended.wait()
        return self._left


class DormantSeeds:
    """The service's dormant seeds (see the module's docstring). ``wake`` starts a dormant
    seed's session (the job layer's ``start_dormant``, under the job's lock) and returns it."""

    def __init__(self, manager: TorrentManager,
                 wake: Callable[[JobRecord], Awaitable[Session | None]]) -> None:
        self._manager = manager
        self._wake_job = wake
        self._seeds: dict[str, _Seed] = {}  # job id -> its dormant seed
        self._heap: list[tuple[float, int, str, str]] = []  # (due, n, job id, TRACKERS or DHT)
        self._order = itertools.count()
        # job id -> for its session: what its trackers know, when its next round is due, and its
        # round in flight if it was woken during one
        self._handed: dict[str, tuple[tuple[TrackerMemory, ...], float, _Handing | None]] = {}
        self._rng = random.Random()
        self._changed: anyio.Event | None = None  # set when a seed is added (the loop looks again)
        # seeds that left (paused, stopped at a share limit, ended) whose trackers are told
        # ``stopped`` by the loop, and the end of each such stop, by job id
        self._to_stop: list[_Seed] = []
        self._looping = False  # (``run`` is under way: a seed that leaves is told stopped by it)
        self._stops: dict[str, tuple[_Seed, anyio.Event]] = {}
        self._acquired = False
        self._waker = self._wake  # (one bound method for every seed)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._seeds

    def __len__(self) -> int:
        return len(self._seeds)

    async def add(self, rec: JobRecord,
                  announced: tuple[tuple[TrackerMemory, ...], float] | None = None) -> None:
        """``rec``, complete and seeding, stays without a session from now on (the caller made
        sure: see ``Restorer``): peers asking for it wake it, and it is announced.
        ``announced``: its session was just suspended (it went quiet), and handed what its
        trackers know and in how many seconds its next announce is due: its rounds go on from
        there (no ``started`` again), and its DHT announce comes within one interval."""
        shared = self._manager.shared
        await self.hold_listener()
        seed = _Seed(rec, bytes.fromhex(rec.info_hash), self._waker)
        shared.register_dormant(seed.info_hash, seed)
        self._seeds[rec.id] = seed
        config = self._manager.config
        now = time.monotonic()
        tracker_in = dht_in = 0.0
        if announced is not None:
            seed.remembered, tracker_in = announced
            dht_in = config.dht_interval * self._rng.random()  # (its session announced it lately)
        if config.tracker_enabled and _tiers(rec):
            self._schedule(seed, TRACKERS, now + tracker_in)
        if config.dht_enabled:
            self._schedule(seed, DHT, now + dht_in)

    async def hold_listener(self) -> None:
        """Hold the shared resources (the listener must run while a dormant seed waits for
        peers), once: before a seed's session is suspended, so that its release is never the
        last one (the listener and the DHT would close, and open again for the dormant seed)."""
        if not self._acquired:
            shared = self._manager.shared
            await shared.acquire()
            self._acquired = True
            shared.set_handshaker(handshaker_for(shared))
            shared.watch_address(self._address_changed)

    def _address_changed(self) -> None:
        """Our external address changed (``Config.reannounce_when_address_changed``): every
        dormant seed announces to its trackers now, as the sessions do (the tracker slots pace
        them)."""
        for seed in list(self._seeds.values()):
            self.reannounce(seed.rec)

    def reannounce(self, rec: JobRecord, urls: Collection[str] | None = None) -> None:
        """Announce the dormant seed ``rec`` to its trackers now (asked, or its trackers edited);
        ``urls``: to these alone, its rounds' schedule left as it was (``CHOSEN``); nothing for a
        job that is none."""
        seed = self._seeds.get(rec.id)
        if seed is None or not self._manager.config.tracker_enabled:
            return
        if urls is not None:
            seed.chosen = (seed.chosen or frozenset()) | frozenset(urls)
            if not seed.tracker_round:  # (else when that round ends: _announce_trackers)
                self._schedule(seed, CHOSEN, time.monotonic())
            return
        seed.asked = True
        if seed.tracker_round:
            # (a round of it is in flight, with the trackers it had: the next comes when it ends.
            # Scheduled now, it would start a second round beside it, or be put off by that one's
            # end, which schedules the next round an interval away)
            seed.tracker_again = True
        else:
            self._schedule(seed, TRACKERS, time.monotonic())

    def announcing(self, rec: JobRecord) -> frozenset[str]:
        """The trackers of the dormant seed ``rec`` an announce of its round waits for now
        (``TrackerCoordinator.announcing``; none for a job that is no dormant seed)."""
        seed = self._seeds.get(rec.id)
        announcer = seed.announcer if seed is not None else None
        return announcer.announcing() if announcer is not None else frozenset()

    def leave(self, rec: JobRecord, *, hand_over: bool = False) -> bool:
        """``rec`` is no dormant seed any more (its session starts, it is paused or it ended);
        ``hand_over``: its session starts now and goes on from what its trackers know
        (``handed``), else the trackers that know it are told ``stopped``, as a session's are
        when it stops (by the loop, within ``Config.stop_tracker_timeout``: a pause of thousands
        does not wait for their trackers; ``stopped`` waits for it). Whether it was one."""
        if not hand_over:
            self._handed.pop(rec.id, None)  # (handed to a session that never took it: it failed to start)
        seed = self._seeds.pop(rec.id, None)
        if seed is None:
            return False
        self._manager.shared.unregister_dormant(seed.info_hash)
        if hand_over and (seed.remembered or seed.announcer is not None):
            next_in = seed.tracker_due - time.monotonic() if seed.tracker_due != math.inf else 0.0
            # (its round in flight goes on: its session's trackers wait for its end; one not
            # begun yet will not: see _announce_trackers)
            if seed.announcer is not None:
                seed.handing = _Handing(seed.remembered)
            self._handed[rec.id] = (seed.remembered, max(0.0, next_in), seed.handing)
        elif not hand_over and self._looping and any(m.announced for m in seed.remembered) \
                and self._manager.config.stop_tracker_timeout > 0:
            earlier = self._stops.get(rec.id)
            if earlier is not None:  # (its waiters do not wait for ever for one it replaces)
                earlier[1].set()
            self._stops[rec.id] = (seed, anyio.Event())
            self._to_stop.append(seed)
            if self._changed is not None:
                self._changed.set()
        return True

    async def stopped(self, rec: JobRecord) -> None:
        """Once the ``stopped`` of ``rec``'s trackers, when it left as a dormant seed, is sent
        (or given up: ``Config.stop_tracker_timeout``): a session of it announces after it."""
        stop = self._stops.get(rec.id)
        if stop is not None:
            await stop[1].wait()

    async def _stop_one(self, seed: _Seed, places: anyio.Semaphore) -> None:
        """``stopped`` to the trackers that know ``seed``, which left (``leave``); once begun,
        ended by its timeout alone (a stop not begun when the service stops is sent with the
        dormant seeds' ``stopped``: ``_stop``)."""
        async with places:
            timeout = self._manager.config.stop_tracker_timeout
            with anyio.CancelScope(shield=True), anyio.move_on_after(timeout):
                await self._coordinator(seed).stop(timeout)
        stop = self._stops.get(seed.rec.id)
        if stop is not None and stop[0] is seed:
            del self._stops[seed.rec.id]
            stop[1].set()

    def handed(self, rec: JobRecord) -> tuple[tuple[tuple[TrackerMemory, ...], float] | None,
                                              Settling | None]:
        """For the session of a seed that was dormant, made now: what its trackers know, and in
        how many seconds its next announce is due (``SessionSetup.announced``; None for any
        other session), and its round in flight when it was woken during one (``settling``)."""
        handed = self._handed.pop(rec.id, None)
        if handed is None:
            return None, None
        remembered, next_in, handing = handed
        return (remembered, next_in), handing

    async def _wake(self, seed: _Seed) -> None:
        """A peer asks for ``seed``: its session started, once it takes peers (``SharedResources``
        calls this once for all the peers that come meanwhile)."""
        rec = seed.rec
        with anyio.fail_after(WAKE_TIMEOUT):
            session = await self._wake_job(rec)
            if session is None:
                raise TorrentEngineError(f"job {rec.id} ({rec.name}) has no session to wake")
            if not await session.wait_serving():
                why = session.error or f"its session is {session.state.value}"
                raise TorrentEngineError(f"job {rec.id} ({rec.name}) did not start seeding: {why}")

    # -- announces ------------------------------------------------------------------------
    def _schedule(self, seed: _Seed, kind: str, due: float) -> None:
        if kind == TRACKERS:
            seed.tracker_due = due
        elif kind == DHT:
            seed.dht_due = due
        heapq.heappush(self._heap, (due, next(self._order), seed.rec.id, kind))
        if self._changed is not None:
            self._changed.set()

    def _next_in(self, interval: float) -> float:
        return time.monotonic() + interval * (1.0 - JITTER * self._rng.random())

    async def run(self) -> None:
        """The one task that announces every dormant seed (in the service's task group); when
        it is cancelled (the service stops), ``stopped`` to their trackers, then the listener
        is given back."""
        places = anyio.Semaphore(max(1, self._manager.config.active_tracker_limit))
        self._looping = True
        try:
            async with anyio.create_task_group() as tg:
                while True:
                    while self._to_stop:  # (seeds that left: their trackers told, in the background)
                        tg.start_soon(self._stop_one, self._to_stop.pop(), places)
                    heap = self._heap
                    now = time.monotonic()
                    if not heap or heap[0][0] > now:
                        self._changed = anyio.Event()
                        with anyio.move_on_after(heap[0][0] - now if heap else math.inf):
                            await self._changed.wait()
                        continue
                    due, _, job_id, kind = heapq.heappop(heap)
                    seed = self._seeds.get(job_id)
                    if seed is None:
                        continue
                    if kind == CHOSEN:
                        if not seed.chosen or seed.tracker_round:  # (a round in flight: after it)
                            continue
                    elif due != (seed.tracker_due if kind == TRACKERS else seed.dht_due):
                        continue  # (rescheduled since)
                    elif kind == TRACKERS and seed.tracker_round:  # (its chosen trackers' announce
                        seed.tracker_again = True  # in flight: this round comes when it ends)
                        continue
                    if kind != DHT:
                        seed.tracker_round = True  # (from now on: a reannounce waits for this round)
                    await places.acquire()
                    tg.start_soon(self._announce, seed, kind, places)
                    await anyio.sleep(1.0 / BEGIN_RATE)
        finally:
            self._looping = False
            with anyio.CancelScope(shield=True):
                await self._stop()

    async def _announce(self, seed: _Seed, kind: str, places: anyio.Semaphore) -> None:
        try:
            if kind == DHT:
                await self._announce_dht(seed)
            else:
                await self._announce_trackers(seed, chosen=kind == CHOSEN)
        except Exception:  # (a bug in one announce must not end the others)
            log.exception("dormant seed %s: the %s announce failed", seed.rec.id, kind)
        finally:
            places.release()

    def _coordinator(self, seed: _Seed) -> TrackerCoordinator:
        """A coordinator for one round of ``seed``'s trackers, from what they know of it."""
        shared, config, rec = self._manager.shared, self._manager.config, seed.rec
        return TrackerCoordinator(
            tiers=_tiers(rec), info_hash=seed.info_hash, peer_id=shared.peer_id, port=shared.listen_port,
            stats=lambda: AnnounceStats(uploaded=rec.uploaded, downloaded=rec.downloaded, left=0),
            on_peers=lambda peers: None,  # (a seed waits for leechers to come: it dials no one)
            events=self._manager.events, info_hash_hex=rec.info_hash, rng=self._rng,
            slots=shared.tracker_slots, proxy=config.proxy, udp_relay=shared.udp_relay,
            refused=shared.tracker_refused, netbind=config.netbind, remembered=seed.remembered,
            announce_to_all_tiers=config.announce_to_all_tiers, announce_ip=lambda: config.announce_ip,
            http_slots=lambda: shared.http_announce_slots, http_kept=lambda: shared.http_kept,
            udp_ids=shared.udp_ids, ssrf=lambda: config.ssrf_mitigation)

    async def scrape(self, rec: JobRecord, url: str) -> ScrapeStats:
        """Scrape the dormant seed ``rec`` at its tracker ``url``, as its announces go
        (``TrackerCoordinator.scrape``); ``TrackerError`` when it fails or ``rec`` is none."""
        seed = self._seeds.get(rec.id)
        if seed is None or not self._manager.config.tracker_enabled:
            raise TrackerError("not scraped: the torrent is not announced", url)
        return await self._coordinator(seed).scrape(url)

    async def _announce_trackers(self, seed: _Seed, *, chosen: bool = False) -> None:
        """A round of ``seed``'s trackers, or (``chosen``) of those asked for alone, which leaves
        its rounds' schedule as it was."""
        delay: float | None = None
        try:
            if self._seeds.get(seed.rec.id) is seed:  # (else woken before it began: its session announces)
                delay = await (self._chosen_round(seed) if chosen else self._tracker_round(seed))
        finally:
            seed.tracker_round = False
            again, seed.tracker_again = seed.tracker_again, False
            if seed.handing is not None:  # woken meanwhile: its session's trackers go on from here
                due = delay if not chosen else seed.tracker_due - time.monotonic()
                seed.handing.settle(seed.remembered, 0.0 if again or due is None or due == math.inf
                                    else max(0.0, due))
        if self._seeds.get(seed.rec.id) is not seed:  # woken meanwhile: its session announces now
            return
        if again:  # (asked for while this round was in flight: its trackers may have changed)
            self._schedule(seed, TRACKERS, time.monotonic())
        elif not chosen:  # (its next round, as this one found)
            if delay is None:  # no usable tracker
                seed.tracker_due = math.inf
            else:
                self._schedule(seed, TRACKERS, self._next_in(delay))
        if seed.chosen:  # (asked for while this round was in flight)
            self._schedule(seed, CHOSEN, time.monotonic())

    async def _chosen_round(self, seed: _Seed) -> None:
        """``seed`` announced to the trackers asked for alone (``CHOSEN``)."""
        urls, seed.chosen = seed.chosen or frozenset(), None
        coordinator = seed.announcer = self._coordinator(seed)
        try:
            coordinator.reannounce(urls)
            await coordinator.announce_chosen()
        finally:
            if seed.announcer is coordinator:
                seed.announcer = None
        seed.remembered = coordinator.remembered()

    async def _tracker_round(self, seed: _Seed) -> float | None:
        """One round of ``seed``'s trackers: the seconds until its next, None for none."""
        if not _tiers(seed.rec):  # (its trackers were all removed since)
            return None
        coordinator = seed.announcer = self._coordinator(seed)
        if seed.asked:  # (else each tier when its interval from its last answer is over)
            seed.asked = False
            coordinator.reannounce()
        try:
            delay = await coordinator.announce_now()
        finally:
            if seed.announcer is coordinator:
                seed.announcer = None
        seed.remembered = coordinator.remembered()
        return delay

    async def _announce_dht(self, seed: _Seed) -> None:
        shared, config = self._manager.shared, self._manager.config
        dht = shared.dht
        if seed.private is None:
            seed.private = await anyio.to_thread.run_sync(self._is_private, seed.rec)
        if dht is not None and not seed.private:  # BEP 27: a private torrent is never on the DHT
            try:
                async with shared.dht_slots:
                    await dht.announce_peer(seed.info_hash, shared.listen_port, on_peers=lambda peers: None)
            except TorrentEngineError as exc:
                log.debug("DHT announce of dormant seed %s failed: %s", seed.rec.id, exc)
        if self._seeds.get(seed.rec.id) is seed and not seed.private:
            self._schedule(seed, DHT, self._next_in(config.dht_interval))

    def _is_private(self, rec: JobRecord) -> bool:
        """(In a worker thread.) Whether the job's torrent is private (unknown: taken as so)."""
        try:
            torrent = self._manager.saved_metainfo(rec.info_hash)
        except (TorrentEngineError, OSError):
            return True
        return torrent is None or torrent.private

    async def _stop(self) -> None:
        """The service stops: ``stopped`` to every tracker that knows a dormant seed, all at once
        (at most ``active_tracker_limit`` in flight) within ``Config.stop_tracker_timeout`` (0:
        none sent); the listener given back."""
        try:
            timeout = self._manager.config.stop_tracker_timeout
            knowing = [s for s in self._seeds.values() if any(m.announced for m in s.remembered)]
            knowing += [seed for seed, _ in self._stops.values()]  # (left, their stops not sent: cancelled)
            if knowing and timeout > 0:
                places = anyio.Semaphore(max(1, self._manager.config.active_tracker_limit))

                async def stop(seed: _Seed) -> None:
                    async with places:
                        await self._coordinator(seed).stop(timeout)

                with anyio.move_on_after(timeout):
                    async with anyio.create_task_group() as tg:
                        for seed in knowing:
                            tg.start_soon(stop, seed)
        finally:
            for seed in self._seeds.values():
                self._manager.shared.unregister_dormant(seed.info_hash)
            self._seeds.clear()
            self._to_stop.clear()
            for _, ended in self._stops.values():
                ended.set()
            self._stops.clear()
            self._heap.clear()
            if self._acquired:
                self._acquired = False
                self._manager.shared.unwatch_address(self._address_changed)
                await self._manager.shared.release()


def _tiers(rec: JobRecord) -> list[Sequence[str]]:
    """The job's trackers as its record says: as edited, else the torrent's (one tier each)."""
    if rec.tracker_tiers is not None:
        return [tier for tier in rec.tracker_tiers if tier]
    return [[url] for url in rec.trackers or ()]


def wanted_files_there(rec: JobRecord) -> bool:
    """(Blocking: a stat a file.) Whether each file the seed ``rec`` wants is at its save path
    at its full size, as its record says."""
    root = Path(rec.options.data_path)
    for path, size in _wanted(rec):
        try:
            if os.stat(root.joinpath(*path)).st_size != size:
                return False
        except OSError:
            return False
    return True


def seed_files_there(rec: JobRecord, metainfo_kept: bool, resume_kept: bool) -> bool:
    """(Blocking: a stat a file.) Whether the seed ``rec`` may wait for peers without a session
    (a start's dormant seeds, a paused seed resumed): its torrent kept (``metainfo_kept``) and
    its resume data (``resume_kept``) — a seed in seed mode has none until its session first
    saves, its record says what a resume file would: its save path and that nothing is verified
    — and each file it wants at its full size (the session that wakes checks them as any start
    does, by size and mtime; in seed mode it verifies each piece as it is first served)."""
    return metainfo_kept and (resume_kept or rec.options.seed_mode) and wanted_files_there(rec)


def wanted_there(rec: JobRecord, sizes: Mapping[str, int]) -> bool:
    """``wanted_files_there`` from a look made already: ``sizes``, the files found at the job's
    data path ("/"-joined, as ``paths.files_found`` gives them)."""
    return all(sizes.get("/".join(path)) == size for path, size in _wanted(rec))


def _wanted(rec: JobRecord) -> Iterator[tuple[tuple[str, ...], int]]:
    """The files the seed ``rec`` wants (not pads, not at priority 0): each one's path and size."""
    assert rec.file_paths is not None and rec.file_sizes is not None
    pads = set(rec.pad_files)
    priorities = rec.file_priorities or [1] * len(rec.file_paths)
    for i, (path, size) in enumerate(zip(rec.file_paths, rec.file_sizes, strict=False)):
        if i not in pads and not (i < len(priorities) and priorities[i] <= 0):
            yield path, size
