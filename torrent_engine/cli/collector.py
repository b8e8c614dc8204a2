"""The daemon's garbage collector: its thresholds, and what the collections walk.

CPython 3.11 walks a generation's objects in one go, the event loop held. A full collection walks
every object the process tracks: at 10 000 torrents about 230 000, 130-190 ms; and while 10 000
torrents were added and checked, the middle generation, swollen with the new torrents' records,
took 238-310 ms a walk (bench/RESULTS.md, "The collector's pauses, second round"). A daemon's
objects are mostly long-lived (job records, torrents, kept API records), and its garbage is mostly
freed by reference counting; the collector is there for the cycles. So:

- What the start made before the jobs (modules, classes, functions, the settings, the service:
  about 60 000 objects, a quarter of what a full collection walked at 10 000 torrents) is frozen
  for good (``gc.freeze``, ``freeze_start``): no collection walks it again. What the start then
  loads and restores (the job records, the jobs) is made with no collection running, and frozen
  after (``loading``): only a whole sweep walks it.
- Young collections come every ``GC_THRESHOLDS[0]`` allocations, and every other one takes in
  the middle generation (its threshold is 0): an object is walked by at most two young
  collections, then it is in the oldest generation, which CPython itself never collects (its
  threshold is out of reach). Each young collection walks about one or two thresholds' worth.
- CPython counts a young generation as its allocations less its deallocations, old objects'
  too: while each torrent's new view replaced an old one, the count stood still and the young
  generations grew unseen (35 000-65 000 objects during a bulk add, 180 000 as the first full
  list after a restart made every job's record again: collections of 25-103 ms). So the daemon
  makes young collections by time too (``collect_young``): every ``YOUNG_EVERY`` seconds while
  it is busy (a young collection, or an API request, since the last look: ``stir``), every
  ``YOUNG_IDLE_LOOK`` while not (on the beat of its timers), one if the young generations hold
  ``YOUNG_AT_LEAST`` objects or more; each walks what that time made (4 000-16 000 objects, 1-5 ms,
  while 30 000 seed-mode jobs were added: bench/RESULTS.md, "Young collections by time").
- What survives them is freed, if it is garbage in a cycle (a session's, a peer's tasks that
  ended cancelled, a removed job's), by a sweep: a collection of the oldest generation, after
  which what it kept is frozen too. So a sweep walks only what became old since the last one, and
  the daemon sweeps each time that reaches ``SWEEP_STEP`` objects (looked at every
  ``SWEEP_AT_MOST`` seconds while young collections run, every ``SWEEP_IDLE_LOOK`` seconds while
  none does): every sweep walks about as much, however many torrents the daemon
  holds. Before, a sweep walked everything made since the start, and at 30 000 dormant seeds took
  177-189 ms (bench/RESULTS.md, "Sweeps that walk what is new").
- What a sweep froze is not walked again: a cycle that holds one of its objects and becomes
  garbage later (a peer that stayed for minutes and left, a session that stops) waits for a whole
  sweep, which unfreezes everything, collects it and freezes what is left. One comes once the
  sweeps since the last have freed as many objects as the last one left frozen (a daemon making
  garbage makes it of old objects too: so what waits is bounded by what the daemon holds, as
  when a sweep came once the oldest generation had doubled), no sooner than
  ``SWEEP_WHOLE_AT_MOST`` seconds after the last; and ``SWEEP_EVERY`` seconds after the last
  anyway, unless no collection ran since (an idle daemon makes no garbage). One that frees fewer
  than ``SWEEP_USEFUL`` objects makes that period four times as long, up to
  ``SWEEP_EVERY_MOST``, and one that frees more sets it back. A whole sweep walks all the daemon
  holds: it is the one pause that grows with the number of torrents, and a daemon that makes no
  garbage (adds, checks, idle seeds) has one at most every ``SWEEP_EVERY`` seconds.
  How many objects the oldest generation holds is kept from CPython's count at each collection,
  and counted (a walk of them) only when that says a sweep is due.
- A burst (``SWEEP_BURST`` objects or more became old between two looks: what one request made
  at once, such as the qBittorrent dialect's kept records of 30 000 jobs at its first full list,
  a sweep of 55-95 ms) is frozen without a walk. What is old that soon is mostly kept, and any
  garbage in it waits for the next whole sweep, which counts it as if it were all garbage: one
  comes once the bursts frozen since the last are half of all that is frozen (were they all
  garbage, the daemon would hold twice what it uses, as when a sweep came at the oldest
  generation's doubling), no sooner than ``SWEEP_WHOLE_AT_MOST`` seconds after the last.

A library leaves the process's collector alone: this is the daemon's, which owns its process.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import anyio

from ..beats import next_beat, sleep_to_beat

__all__ = [
    "GC_THRESHOLDS", "SWEEP_AT_MOST", "SWEEP_BURST", "SWEEP_EVERY", "SWEEP_EVERY_MOST", "SWEEP_IDLE_LOOK",
    "SWEEP_STEP",
    "SWEEP_USEFUL", "SWEEP_WHOLE_AT_MOST", "YOUNG_AT_LEAST", "YOUNG_EVERY", "YOUNG_IDLE_LOOK",
    "Sweeper", "daemon_collector", "freeze_start", "loading", "old_objects",
]

# The collector's thresholds for the daemon's process (CPython's default: 700, 10, 10). With the
# default, a young collection ran every 700 allocations and the older generations were walked
# again and again while a thousand torrents were added (adding 1 000 took 6.5-6.7 s; with 50 000,
# 20, 20, 5.0-6.2 s: bench/RESULTS.md, "seedbox scale"). A young collection walking 20 000
# objects took at most 39 ms while 10 000 torrents were checked (RESULTS, "The collector's
# pauses, second round"); here one walks at most two thresholds' worth (the middle generation
# holds what survived one young collection), so 10 000. The oldest generation's threshold is
# never reached: it is walked by the daemon's sweeps alone.
GC_THRESHOLDS = (10_000, 0, 2**31 - 1)

# A sweep once SWEEP_STEP objects became old since the last (12-20 ms of walk on this machine,
# 25-46 ms at 40 000: bench/RESULTS.md, "Young collections by time"; a sweep of 25 000 looked at
# every 0.5 s walked 13-70 ms, what became old between two looks and in the swollen young
# collections: "Sweeps that walk what is new"), looked at every SWEEP_AT_MOST seconds while
# young collections run (a bulk add makes about 30 000 old objects a second; 1 000 downloads
# starting made over SWEEP_BURST in 2 s, so bursts frozen unwalked, and then a whole sweep of
# 450 ms: bench/RESULTS.md, "Sweeps looked for while the collector runs"), every SWEEP_IDLE_LOOK
# seconds while none ran since the last look (an idle daemon looks for one no more often; it
# wakes every YOUNG_IDLE_LOOK seconds for its young generations); a whole sweep every SWEEP_EVERY
# seconds unless no collection ran since the last, four times later after one that frees fewer
# than SWEEP_USEFUL objects, up to SWEEP_EVERY_MOST (a daemon that makes no garbage need not walk
# everything every SWEEP_EVERY seconds; while 300 torrents downloaded, the garbage came at about
# 2 000 objects a second: tasks that ended cancelled).
SWEEP_STEP = 20_000
# A burst: so many objects old at one look that a sweep would walk them for over 50 ms here
# (about 0.6 us an object); they are frozen without a walk.
SWEEP_BURST = 80_000
SWEEP_USEFUL = 1_000
SWEEP_AT_MOST = 0.1
# A young collection the daemon makes every YOUNG_EVERY seconds while it is busy, when the young
# generations hold YOUNG_AT_LEAST objects or more (``Sweeper.collect_young``)
YOUNG_EVERY = 0.1
YOUNG_AT_LEAST = 2_000
# and how often it looks at the young generations' size while it is not busy (no young collection
# and no API request since the look before): on the second's beat, the wake-up of the daemon's other
# timers (a look of its own at each half second was half an idle daemon's wake-ups). CPython's count
# may stand still while thousands of objects are made, each in place of an old one (after a restart
# at 30 000 jobs, a full list made 180 000 young objects in the 2 s between two looks, walked in
# 103 ms): a request makes the daemon busy at once (``Sweeper.stir``), so its objects are looked at
# every ``YOUNG_EVERY`` seconds while it runs
YOUNG_IDLE_LOOK = 1.0
SWEEP_IDLE_LOOK = 2.0
SWEEP_WHOLE_AT_MOST = 30.0
SWEEP_EVERY = 600.0
SWEEP_EVERY_MOST = 3600.0

_OLDEST = 2


def old_objects() -> int:
    """How many objects the oldest generation holds: what a sweep walks (a walk of them all)."""
    return len(gc.get_objects(_OLDEST))


class Sweeper:
    """A ``gc.callbacks`` entry that keeps about how many objects the oldest generation holds;
    ``sweep`` collects what became old since the last sweep, ``sweep_whole`` everything;
    ``sweep_when_due`` makes each when due."""

    def __init__(self, *, step: int = SWEEP_STEP, at_most: float = SWEEP_AT_MOST,
                 every: float = SWEEP_EVERY, burst: int = SWEEP_BURST, idle: float = SWEEP_IDLE_LOOK,
                 young_least: int = YOUNG_AT_LEAST) -> None:
        self.step, self.at_most, self.every, self.burst, self.idle = step, at_most, every, burst, idle
        self.young_least = young_least
        self.forced = 0  # young collections the daemon made (``collect_young``), all told
        self._forced: int | None = None  # the young objects of the collection ``collect_young`` makes
        self.young = 0  # young collections made, all told (a look tells a busy spell from an idle one)
        self.period = every  # the most the next whole sweep waits (longer after a useless one)
        self.collections = 0  # young collections since the last sweep
        self.collections_whole = 0  # young collections since the last whole sweep
        self.sweeps = 0  # sweeps made (whole ones too)
        self.whole_sweeps = 0
        self.freed = 0  # what the sweeps freed since the last whole sweep
        self.bursts = 0  # bursts frozen without a walk
        self.unwalked = 0  # what the bursts froze since the last whole sweep
        self.frozen = 0  # what the last whole sweep (or the start) left frozen
        self.held = 0  # about what is frozen now: that, and what the sweeps and bursts froze since
        # about how many objects the oldest generation holds now (what a sweep walks), kept
        # without a walk: the last count, plus at each young collection what CPython counts as
        # young (the allocations less the deallocations since the one before, the old objects'
        # too) less what it freed. Within a few per cent below the truth in steady work; far above
        # it after many old objects are freed at once (CPython counts deallocations down to zero,
        # not below). So it only says when to count (a walk); the count decides a sweep
        self.old = 0
        self._young = 0
        self._stirred = False  # an API request began since the last look (``stir``)
        self._stir: anyio.Event | None = None  # set by ``stir`` while an idle look is waited for

    def __call__(self, phase: str, info: Mapping[str, int]) -> None:
        """(The collector calls it, at the ``start`` and the ``stop`` of each collection.)"""
        if info["generation"] == _OLDEST:
            return  # (a sweep: it sets the count itself)
        if phase == "start":
            # (one the daemon makes: the objects it walks, counted; else CPython's count)
            self._young = gc.get_count()[0] if self._forced is None else self._forced
        elif phase == "stop":
            self.young += 1
            self.collections += 1
            self.collections_whole += 1
            self.old = max(self.old + self._young - info["collected"], 0)

    def stir(self) -> None:
        """Something began that may make objects CPython's count does not see (an API request:
        a list makes each job's view in place of the last): the looks come at a busy daemon's
        pace from now on, the first at once when an idle one's is waited for."""
        self._stirred = True
        if self._stir is not None:
            self._stir.set()

    def due(self, old: int) -> bool:
        """Whether a sweep is due with ``old`` objects in the oldest generation."""
        return self.collections > 0 and old >= self.step

    def whole_due(self, since: float) -> bool:
        """Whether a whole sweep is due ``since`` seconds after the last (or the start)."""
        if not self.collections_whole:
            return False
        # (the sweeps found as much garbage as the last left frozen, or the bursts are half of
        # what is frozen: were they all garbage, what is held would be twice what is used)
        garbage = self.freed >= self.frozen or 0 < self.unwalked >= self.held - self.unwalked
        return since >= self.period or (since >= SWEEP_WHOLE_AT_MOST and garbage)

    def sweep(self) -> int:
        """Collect the oldest generation (blocking: it walks what became old since the last
        sweep), then freeze what it kept; how many objects it freed."""
        freed = gc.collect(_OLDEST)
        gc.freeze()
        self.collections = 0
        self.sweeps += 1
        self.freed += freed
        self.held += max(self.old - freed, 0)  # (``old``: counted before a sweep the loop makes)
        self.old = 0
        return freed

    def collect_young(self) -> int:
        """A young collection of both young generations, if they hold ``young_least`` objects
        or more (blocking: it walks them); how many objects it walked (0: none made). CPython
        counts a young generation as its allocations less its deallocations, old objects' too:
        while each torrent's new snapshot replaced an old one, the count stood still and the
        young generations grew unseen to 35 000-65 000 objects, a young collection of 25-41 ms
        when it came. Made every ``YOUNG_EVERY`` seconds while the daemon is busy, one walks what
        that time made."""
        if not gc.isenabled():  # (the start loads: no collection, ``loading``)
            return 0
        young = len(gc.get_objects(0)) + len(gc.get_objects(1))
        if young < self.young_least:
            return 0
        self._forced = young
        try:
            gc.collect(1)
        finally:
            self._forced = None
        self.forced += 1
        return young

    def freeze_burst(self, old: int) -> None:
        """Freeze the ``old`` objects that became old since the last sweep, without a walk (a
        burst: they wait for the next whole sweep, and count toward it)."""
        gc.freeze()
        self.collections = 0
        self.bursts += 1
        self.unwalked += old
        self.held += old
        self.old = 0

    def sweep_whole(self) -> int:
        """Unfreeze everything, collect it (blocking: a walk of all the daemon holds, the start's
        objects too), freeze what is left; how many objects it freed. One that frees fewer than
        ``SWEEP_USEFUL`` makes the next wait four times as long, up to ``SWEEP_EVERY_MOST``."""
        gc.unfreeze()
        freed = self.sweep()
        self.whole_sweeps += 1
        self.collections_whole = 0
        self.freed = self.unwalked = 0
        self.frozen = self.held = gc.get_freeze_count()  # (a walk of the list: once a whole sweep)
        self.period = min(self.period * 4, SWEEP_EVERY_MOST) if freed < SWEEP_USEFUL else self.every
        return freed

    async def sweep_when_due(self) -> None:
        """Every ``at_most`` seconds while young collections run (every ``idle`` seconds after a
        look with none since the one before), a whole sweep if one is due, else a sweep if one is
        due (a burst frozen in its place); until cancelled. Whether a sweep is due is asked of
        ``old``, the count kept without a walk; only when it says so are the oldest generation's
        objects counted (a walk of them), and that count decides. Before each look, and between
        them every ``YOUNG_EVERY`` seconds while busy (``YOUNG_IDLE_LOOK`` while not; a ``stir``
        makes it busy), a young collection if one is due (``collect_young``)."""
        self.old = old_objects()
        self.frozen = self.held = gc.get_freeze_count()
        last_whole = last_look = anyio.current_time()
        seen = -1
        while True:
            busy, seen = self.young != seen or self._stirred, self.young
            self._stirred = False
            if busy:  # (its loop is awake anyway: off the beat, where the other timers' work falls)
                await anyio.sleep(min(YOUNG_EVERY, self.at_most))
            else:  # (an idle daemon's: with its other timers' wake-up; a request ends it at once)
                self._stir = anyio.Event()
                try:
                    await sleep_to_beat(min(YOUNG_IDLE_LOOK, self.idle), self._stir)
                finally:
                    self._stir = None
            self.collect_young()  # (a young collection by time too, not only by CPython's count)
            now = anyio.current_time()
            # (a look every ``at_most`` seconds while busy, each beat of ``idle`` while not; a timer
            # may fire a little early)
            if now < (last_look + self.at_most - 0.01 if busy else next_beat(last_look, self.idle) - 0.005):
                continue
            last_look = now
            if self.whole_due(now - last_whole):
                self.sweep_whole()
                last_whole = now
            elif self.due(self.old):
                self.old = old_objects()
                if self.old >= self.burst:
                    self.freeze_burst(self.old)
                elif self.due(self.old):
                    self.sweep()

    def install(self) -> None:
        """Take part in the process's collections (once)."""
        if self not in gc.callbacks:
            gc.callbacks.append(self)

    def remove(self) -> None:
        """No longer take part."""
        if self in gc.callbacks:
            gc.callbacks.remove(self)


@contextmanager
def daemon_collector() -> Iterator[Sweeper]:
    """The daemon's collector for the block: ``GC_THRESHOLDS``, and a ``Sweeper`` (its
    ``sweep_when_due`` is the daemon's to run); what the start made is frozen by
    ``freeze_start``. The thresholds before are restored after, and what the block left is
    frozen: at the daemon's exit, the interpreter's last collection does not walk it (at 10 000
    torrents, 300 ms more of the stop for cycles the exit frees anyway)."""
    before = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLDS)
    policy = Sweeper()
    policy.install()
    try:
        yield policy
    finally:
        policy.remove()
        gc.set_threshold(*before)
        gc.freeze()


def freeze_start() -> None:
    """Move what the start made before the jobs (modules, classes, functions, the settings, the
    service) out of every collection's walk for good: it lives as long as the daemon. One full
    collection first, so that no garbage of the start is kept (about 60 000 objects: 20-40 ms)."""
    gc.collect()
    gc.freeze()


@contextmanager
def loading() -> Iterator[None]:
    """No collection during the block (the start loading the job records, then restoring the
    jobs), then what it made frozen, without a walk, and the collector set going again: it lives
    as long as the jobs. CPython counts a young generation's objects as allocations less
    deallocations, old objects' too: while the jobs were restored, each new snapshot replacing an
    old one, the young generations grew unseen to 130 000 objects, and at 30 000 jobs the young
    collections of the load and the restore took 45-64 ms each (bench/RESULTS.md, "Bursts and the
    restart frozen without a walk"); before that, the first sweep walked everything loaded, 85-138 ms. A
    whole sweep still walks it (and frees any cycle among it that is garbage, the block's own
    too)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()  # (CPython's count of young objects starts again from zero)
        if enabled:
            gc.enable()
