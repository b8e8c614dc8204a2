"""The daemon's collector policy: what the start made is frozen for good; a young collection
walks only what was made since the last two; what survives them reaches the oldest generation,
which only a sweep walks, once ``step`` objects are there (looked at every ``at_most`` seconds),
and freezes after; a whole sweep walks everything every ``period`` seconds."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import anyio
import pytest

from torrent_engine.beats import next_beat, sleep_to_beat
from torrent_engine.cli import collector
from torrent_engine.cli.collector import (
    GC_THRESHOLDS,
    SWEEP_EVERY,
    SWEEP_EVERY_MOST,
    SWEEP_USEFUL,
    SWEEP_WHOLE_AT_MOST,
    Sweeper,
    daemon_collector,
    freeze_start,
    loading,
    old_objects,
)


class Node:
    """An object in a reference cycle (only the collector frees it)."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def policy() -> Iterator[Sweeper]:
    gc.collect()
    try:
        with daemon_collector() as survivors:
            yield survivors
    finally:
        gc.unfreeze()  # (the block freezes what it leaves: the daemon's exit)
    gc.collect()


def _in(generation: int, obj: object) -> bool:
    return any(o is obj for o in gc.get_objects(generation))


def test_what_survives_two_young_collections_is_walked_again_only_by_a_sweep(policy: Sweeper) -> None:
    assert gc.get_threshold() == GC_THRESHOLDS
    node = Node()
    gc.collect(0)  # (a young collection: ``node`` survives it, into the middle generation)
    assert _in(1, node)
    gc.collect(1)  # (the next one takes the middle generation in: it is old now)
    assert _in(2, node)
    gone = weakref.ref(node)
    del node  # (garbage now, in a cycle)
    for generation in (0, 1, 0, 1):
        gc.collect(generation)
    assert gone() is not None  # old: no young collection walks it
    young = Node()  # made since the last collection: walked, freed
    young_gone = weakref.ref(young)
    del young
    gc.collect(0)
    assert young_gone() is None
    assert policy.sweep() >= 1
    assert gone() is None and policy.sweeps == 1 and policy.collections == 0
    assert policy.old == old_objects() == 0  # (what it kept is frozen: the next sweep walks what is new)


def test_what_the_start_made_is_frozen_and_a_sweep_freezes_what_it_kept(policy: Sweeper) -> None:
    started = Node()  # (made before the jobs: a module's, the service's)
    freeze_start()
    frozen = gc.get_freeze_count()
    assert frozen > 0 and not _in(2, started)
    later = [Node() for _ in range(1000)]
    gc.collect(0)
    gc.collect(1)
    assert old_objects() < frozen and _in(2, later[0])
    policy.sweep()
    assert gc.get_freeze_count() >= frozen + 1000  # what the start made, and what came after
    assert not _in(2, started) and not _in(2, later[0]) and old_objects() == 0
    again = [Node() for _ in range(500)]
    gc.collect(0)
    gc.collect(1)
    assert 500 <= old_objects() < 1000  # the next sweep walks what is new alone
    del again


def test_a_cycle_holding_an_object_a_sweep_froze_waits_for_a_whole_sweep(policy: Sweeper) -> None:
    node = Node()
    gc.collect(0)
    gc.collect(1)
    policy.sweep()  # (alive: frozen)
    gone = weakref.ref(node)
    del node  # garbage now, in a cycle
    gc.collect(0)
    gc.collect(1)
    policy.sweep()
    assert gone() is not None  # frozen: no sweep walks it
    policy.sweep_whole()
    assert gone() is None and policy.whole_sweeps == 1 and policy.sweeps == 3
    assert old_objects() == 0 and policy.collections_whole == 0
    assert policy.freed == 0 and policy.frozen == gc.get_freeze_count()
    trash = [Node() for _ in range(100)]
    gc.collect(0)
    gc.collect(1)
    del trash
    assert policy.sweep() >= 100 and policy.freed >= 100  # (counted toward the next whole sweep)


def test_a_sweep_is_due_once_step_objects_are_old_and_a_whole_one_every_period_if_anything_was_collected(
        ) -> None:
    survivors = Sweeper(step=1000, at_most=2.0, every=600.0)
    survivors.frozen = 5000  # (what the last whole sweep left frozen)
    assert not survivors.due(5000)  # no collection since the last sweep: nothing to find
    assert not survivors.whole_due(900.0)
    survivors.collections = survivors.collections_whole = 1
    assert not survivors.due(999)
    assert survivors.due(1000)
    assert not survivors.whole_due(599.0)
    assert survivors.whole_due(600.0)
    # the sweeps since the last whole one freed as much as it left frozen: due after at most 30 s
    survivors.freed = 4999
    assert not survivors.whole_due(100.0)
    survivors.freed = 5000
    assert not survivors.whole_due(SWEEP_WHOLE_AT_MOST - 1)
    assert survivors.whole_due(SWEEP_WHOLE_AT_MOST)


def test_a_whole_sweep_that_finds_almost_nothing_makes_the_next_wait_four_times_as_long(
        policy: Sweeper) -> None:
    assert policy.period == policy.every == SWEEP_EVERY
    gc.collect(0)
    policy.sweep_whole()  # (everything is alive: nothing found)
    assert policy.period == 4 * SWEEP_EVERY
    policy.collections_whole = 1
    assert not policy.whole_due(4 * SWEEP_EVERY - 1)
    assert policy.whole_due(4 * SWEEP_EVERY)
    for _ in range(2):
        gc.collect(0)
        policy.sweep_whole()
    assert policy.period == SWEEP_EVERY_MOST  # (at most)
    nodes = [Node() for _ in range(2 * SWEEP_USEFUL)]
    gc.collect(0)
    gc.collect(1)
    policy.sweep()  # (frozen while alive)
    del nodes
    assert policy.sweep_whole() >= 2 * SWEEP_USEFUL
    assert policy.period == SWEEP_EVERY  # garbage found: back to the base


@pytest.mark.anyio
async def test_the_daemon_sweeps_when_one_is_due_and_no_more_often_than_at_most() -> None:
    gc.collect()
    survivors = Sweeper(step=2000, at_most=0.1, every=600.0)
    survivors.install()
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(survivors.sweep_when_due)
            await anyio.sleep(0.15)
            survivors.sweep()  # (what the test process held so far: frozen)
            nodes = [Node() for _ in range(3000)]
            gc.collect(0)
            gc.collect(1)  # (old now: more than a step)
            gone = weakref.ref(nodes[0])
            del nodes
            with anyio.fail_after(5):
                while survivors.sweeps == 1:
                    await anyio.sleep(0.02)
            assert gone() is None
            sweeps = survivors.sweeps
            await anyio.sleep(0.25)
            assert survivors.sweeps == sweeps  # (nothing new since)
            tg.cancel_scope.cancel()
    finally:
        survivors.remove()
        gc.unfreeze()
        gc.collect()


@pytest.mark.anyio
async def test_the_daemon_sweeps_everything_every_period_when_collections_ran() -> None:
    gc.collect()
    survivors = Sweeper(step=10**9, at_most=0.02, every=0.2)  # (no step is ever reached)
    survivors.install()
    try:
        node = Node()
        gc.collect(0)
        gc.collect(1)
        survivors.sweep()  # (frozen, alive)
        gone = weakref.ref(node)
        del node
        async with anyio.create_task_group() as tg:
            tg.start_soon(survivors.sweep_when_due)
            assert gone() is not None
            gc.collect(0)  # (a collection ran: garbage may have been made)
            with anyio.fail_after(5):
                while survivors.whole_sweeps == 0:
                    await anyio.sleep(0.02)
            assert gone() is None
            tg.cancel_scope.cancel()
    finally:
        survivors.remove()
        gc.unfreeze()
        gc.collect()


def test_after_the_block_it_takes_no_more_part_the_thresholds_are_as_before_and_what_it_left_is_frozen(
        ) -> None:
    gc.collect()
    before = gc.get_threshold()
    try:
        with daemon_collector() as survivors:
            assert survivors in gc.callbacks
            left = Node()
        assert survivors not in gc.callbacks and gc.get_threshold() == before
        assert gc.get_freeze_count() > 0 and not _in(2, left)  # (the exit's collection: not walked)
    finally:
        gc.unfreeze()
    node = Node()
    gone = weakref.ref(node)
    gc.collect(0)
    del node
    gc.collect()
    assert gone() is None


@pytest.mark.anyio
async def test_the_old_objects_are_counted_only_when_the_kept_count_says_a_sweep_is_due(
        monkeypatch: pytest.MonkeyPatch) -> None:
    counts: list[int] = []
    real = collector.old_objects

    def counting() -> int:  # (the count walks every old object)
        counts.append(real())
        return counts[-1]

    gc.collect()
    gc.freeze()  # (what the test process holds: the oldest generation is empty)
    survivors = Sweeper(step=10_000, at_most=0.01, every=600.0)  # (not installed: the test says what ran)
    monkeypatch.setattr(collector, "old_objects", counting)
    async with anyio.create_task_group() as tg:
        tg.start_soon(survivors.sweep_when_due)
        await anyio.sleep(0.1)
        assert len(counts) == 1  # at the start only: no collection, no look walks anything
        survivors.collections += 1
        await anyio.sleep(0.1)
        assert len(counts) == 1  # collections that kept little: still nothing walked
        survivors.old = 20_000  # (what the kept count says)
        with anyio.fail_after(5):
            while len(counts) == 1:
                await anyio.sleep(0.01)
        assert survivors.old == counts[-1]  # counted: the kept count is the truth again,
        assert survivors.sweeps == 0  # which says no sweep is due
        tg.cancel_scope.cancel()
    gc.unfreeze()


def test_the_kept_count_follows_what_the_young_collections_leave(policy: Sweeper) -> None:
    policy.sweep()
    assert policy.old == old_objects()
    kept = []
    for i in range(100_000):
        node = Node()
        if i % 3 == 0:
            kept.append(node)  # (the rest: garbage in cycles, freed by the young collections)
    gc.collect(0)
    gc.collect(1)
    truth = old_objects()
    assert truth > 30_000
    assert abs(policy.old - truth) <= 0.1 * truth
    del kept


def test_young_objects_that_replace_old_ones_are_collected_by_time_not_left_to_cpythons_count(
        policy: Sweeper) -> None:
    """CPython counts a young generation as its allocations less its deallocations, old objects'
    too: while each torrent's new snapshot replaced an old one, the count stood still and the
    young generations grew unseen to 35 000-65 000 objects, a collection of 25-41 ms when it
    came. The daemon's own young collection walks them once there are ``young_least``, and the
    kept count of old objects takes in what it left."""
    held = [[i] for i in range(20_000)]
    gc.collect()
    policy.sweep()  # (old and frozen: what the daemon held)
    before = policy.old
    gc.collect(0)
    for i in range(len(held)):
        held[i] = [i, i]  # (each new list in place of an old one, freed)
    assert gc.get_count()[0] < 1_000  # (CPython's count stood still)
    young = len(gc.get_objects(0)) + len(gc.get_objects(1))
    assert young >= 20_000
    assert abs(policy.collect_young() - young) < 10 and policy.forced == 1
    assert len(gc.get_objects(0)) + len(gc.get_objects(1)) < 100
    assert policy.old - before >= 20_000  # (they are old now: the next sweep walks them)
    assert policy.collect_young() == 0 and policy.forced == 1  # (fewer than young_least: nothing)


@pytest.mark.anyio
async def test_the_daemon_makes_its_young_collections_while_busy() -> None:
    survivors = Sweeper(step=10**9, at_most=0.02, every=600.0, idle=0.5, young_least=5_000)
    survivors.install()
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(survivors.sweep_when_due)
            held = [[i] for i in range(20_000)]
            with anyio.fail_after(5):
                while survivors.forced == 0:
                    for i in range(len(held)):  # (the count stands still: no collection of CPython's)
                        held[i] = [i]
                    await anyio.sleep(0.01)
            tg.cancel_scope.cancel()
    finally:
        survivors.remove()
        gc.unfreeze()
        gc.collect()


def test_what_the_start_loads_is_frozen_without_a_collection(policy: Sweeper) -> None:
    """While the start loads and restores, no collection runs, however much it makes (CPython's
    count of young objects, allocations less deallocations, missed a restore that replaced every
    job's snapshot); after, what it made is frozen and the collector goes again, its count from
    zero."""
    freeze_start()
    frozen = gc.get_freeze_count()
    ran: list[int] = []

    def counted(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            ran.append(info["generation"])

    gc.callbacks.append(counted)
    try:
        with loading():
            assert not gc.isenabled()
            records = [{"id": str(i), "files": [i]} for i in range(3 * GC_THRESHOLDS[0])]
            cycle = Node()
            gone = weakref.ref(cycle)
            del cycle  # (garbage in a cycle, made by the load)
        assert ran == [] and gc.isenabled()  # no collection walked them
        assert gc.get_count()[0] < 100  # (the count starts again)
    finally:
        gc.callbacks.remove(counted)
    assert gc.get_freeze_count() >= frozen + len(records) and old_objects() == 0
    assert gc.is_tracked(records[0]) and not any(_in(g, records[0]) for g in (0, 1, 2))
    gc.collect(0)
    gc.collect(1)
    policy.sweep()
    assert gone() is not None  # frozen unwalked: a whole sweep frees it
    policy.sweep_whole()
    assert gone() is None


def test_loading_leaves_a_collector_that_was_off_off() -> None:
    gc.disable()
    try:
        with loading():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
        gc.unfreeze()
        gc.collect()


@pytest.mark.anyio
async def test_a_burst_is_frozen_without_a_walk_and_counts_toward_the_next_whole_sweep(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``burst`` objects or more old at one look (what one request made at once) are frozen
    without a collection: a cycle among them waits for the whole sweep, which comes once what
    the bursts froze is half of all that is frozen."""
    collections: list[int] = []
    real_collect = gc.collect

    def collect(generation: int = 2) -> int:
        collections.append(generation)
        return real_collect(generation)

    gc.collect()
    gc.freeze()  # (what the test process holds)
    survivors = Sweeper(step=1000, at_most=0.01, every=600.0, burst=5000)
    survivors.install()
    try:
        monkeypatch.setattr(gc, "collect", collect)
        async with anyio.create_task_group() as tg:
            tg.start_soon(survivors.sweep_when_due)
            await anyio.sleep(0.05)
            survivors.held = 7000  # (as if the daemon held that many frozen)
            kept = [Node() for _ in range(6000)]  # a burst: old at once
            real_collect(0)
            real_collect(1)
            gone = weakref.ref(kept[0])
            del kept  # (garbage: cycles, old)
            with anyio.fail_after(5):
                while survivors.bursts == 0:
                    await anyio.sleep(0.01)
            assert collections == [] and survivors.sweeps == 0  # frozen, not walked
            assert gone() is not None and survivors.unwalked >= 6000 and survivors.old == 0
            assert not _in(2, gone()) and survivors.held == 7000 + survivors.unwalked
            tg.cancel_scope.cancel()
        # the bursts froze less than half of all that is frozen: no whole sweep for them
        assert survivors.collections_whole > 0 and survivors.freed < survivors.frozen
        assert not survivors.whole_due(SWEEP_WHOLE_AT_MOST)
        # half of it or more: a whole sweep is due (no sooner than SWEEP_WHOLE_AT_MOST after the last)
        survivors.held = 2 * survivors.unwalked
        assert not survivors.whole_due(SWEEP_WHOLE_AT_MOST - 1)
        assert survivors.whole_due(SWEEP_WHOLE_AT_MOST)
        survivors.sweep_whole()
        assert gone() is None and survivors.unwalked == 0 and survivors.freed == 0
        # fewer than a burst: a sweep walks them, as before
        small = [Node() for _ in range(2000)]
        real_collect(0)
        real_collect(1)
        small_gone = weakref.ref(small[0])
        del small
        async with anyio.create_task_group() as tg:
            tg.start_soon(survivors.sweep_when_due)
            with anyio.fail_after(5):
                while survivors.sweeps == 1:
                    await anyio.sleep(0.01)
            tg.cancel_scope.cancel()
        assert small_gone() is None and survivors.bursts == 1
    finally:
        survivors.remove()
        gc.unfreeze()
        real_collect()


@pytest.mark.anyio
async def test_sweeps_are_looked_for_often_while_collections_run_and_seldom_when_none_does() -> None:
    """While young collections run, the daemon looks whether a sweep is due every ``at_most``
    seconds (1 000 downloads starting made more than a burst's worth of old objects in the 2 s
    between two looks, frozen unwalked, then a whole sweep of 450 ms); with none since the last
    look, every ``idle`` seconds (an idle daemon wakes no more often than before)."""
    survivors = Sweeper(step=10**9, at_most=0.02, every=600.0, idle=0.5)  # (no sweep is ever due)
    looks: list[float] = []
    real_due = survivors.whole_due

    def counted(since: float) -> bool:
        looks.append(anyio.current_time())
        return real_due(since)

    survivors.whole_due = counted  # type: ignore[method-assign]
    enabled = gc.isenabled()
    gc.disable()  # (no collection but the test's own)
    try:
        # started 50 ms before a beat of 0.5 s: the first look (after a count of the old objects and
        # 20 ms) falls just before that beat, and two beats fall in the first 0.6 s
        await sleep_to_beat(0.5)
        await anyio.sleep(0.45)
        async with anyio.create_task_group() as tg:
            tg.start_soon(survivors.sweep_when_due)
            await anyio.sleep(0.6)
            # the first look (nothing seen before it), then one on each beat of 0.5 s: one or two
            idle = len(looks)
            assert 1 <= idle <= 3, looks
            assert all(b - a > 0.4 for a, b in zip(looks[1:], looks[2:], strict=False)), looks
            start = anyio.current_time()
            while anyio.current_time() - start < 1.5:  # busy: a young collection each 10 ms
                survivors("start", {"generation": 0, "collected": 0})
                survivors("stop", {"generation": 0, "collected": 0})
                await anyio.sleep(0.01)
            busy = len(looks) - idle
            # (the idle look under way ends within 0.5 s, then one every 20 ms: about 50)
            assert busy >= 10, looks
            await anyio.sleep(1.2)
            # idle again: a look or two more, then one each 0.5 s beat (the first may come sooner
            # than 0.5 s after the last busy one); busy, it was about 60
            assert len(looks) - idle - busy <= 5, looks
            tg.cancel_scope.cancel()
    finally:
        if enabled:
            gc.enable()


@pytest.mark.anyio
async def test_an_idle_daemon_s_looks_fall_on_the_beat_of_their_period(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Each look for a young collection waits for the next beat of its period (``beats.py``),
    whatever phase the sweeper started at: an idle daemon's look on the second shares the
    wake-up of its other timers (it woke the loop twice more a second, at a phase of its own)."""
    period = 0.2
    monkeypatch.setattr(collector, "YOUNG_IDLE_LOOK", period)
    looks: list[float] = []
    survivors = Sweeper(idle=period)  # (not installed: no collection makes it busy)
    monkeypatch.setattr(survivors, "collect_young", lambda: looks.append(anyio.current_time()) or 0)
    async with anyio.create_task_group() as tg:
        await sleep_to_beat(period)
        await anyio.sleep(period / 4)  # (started a quarter of a period off the beat)
        tg.start_soon(survivors.sweep_when_due)
        with anyio.fail_after(10):
            while len(looks) < 5:
                await anyio.sleep(0.02)
        tg.cancel_scope.cancel()
    # (the first look is a busy one's, at its own period: the start counts as busy)
    offsets = [t / period - round(t / period) for t in looks[1:]]
    # (on the beat, within a loaded machine's slack; at their own phase they were 0.05 s off it)
    assert all(abs(o) * period < 0.035 for o in offsets), offsets


@pytest.mark.anyio
async def test_a_request_makes_an_idle_daemon_look_at_once_and_then_at_a_busy_one_s_pace(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An idle daemon looks once a second, with its other timers; what a request makes may go
    unseen by CPython's count (views made in place of the last ones), so a request (``stir``)
    ends the idle wait at once and the looks come every ``YOUNG_EVERY`` seconds after."""
    monkeypatch.setattr(collector, "YOUNG_IDLE_LOOK", 30.0)  # (no idle look comes in the test)
    looks: list[float] = []
    survivors = Sweeper(idle=30.0, at_most=0.05)  # (not installed: no collection makes it busy)
    monkeypatch.setattr(survivors, "collect_young", lambda: looks.append(anyio.current_time()) or 0)
    # started a second or more before a beat of 30 s (within 0.3 s of one, the idle wait ended on
    # that beat: a second look before the stir)
    if next_beat(anyio.current_time(), 30.0) - anyio.current_time() < 1.0:
        await sleep_to_beat(30.0)
    async with anyio.create_task_group() as tg:
        tg.start_soon(survivors.sweep_when_due)
        await anyio.sleep(0.3)  # (the start's one busy look, then the idle wait)
        assert len(looks) == 1
        stirred = anyio.current_time()
        survivors.stir()
        with anyio.fail_after(5):
            while len(looks) < 3:
                await anyio.sleep(0.01)
        tg.cancel_scope.cancel()
    assert looks[1] - stirred < 0.05  # (at once)
    assert looks[2] - looks[1] < 0.1  # (a busy daemon's pace: the stir made it busy)
