"""The daemon's collector policy: what the start made is frozen for good; a young collection
walks only what was made since the last two; what survives them reaches the oldest generation,
which only a sweep walks, when it has grown enough or every ``every`` seconds, never more often
than every ``at_most`` seconds."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import anyio
import pytest

from torrent_engine.cli import collector
from torrent_engine.cli.collector import (
    GC_THRESHOLDS,
    SWEEP_EVERY,
    SWEEP_EVERY_MOST,
    Sweeper,
    daemon_collector,
    freeze_start,
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
    assert policy.old_after > 0 and abs(policy.old_after - old_objects()) <= 2  # (what it left: counted)


def test_what_the_start_made_is_frozen_and_walked_by_no_sweep(policy: Sweeper) -> None:
    started = Node()  # (made before the jobs: a module's, the service's)
    freeze_start()
    frozen = gc.get_freeze_count()
    assert frozen > 0 and not _in(2, started)
    later = [Node() for _ in range(1000)]
    gc.collect(0)
    gc.collect(1)
    assert old_objects() < frozen and _in(2, later[0])
    policy.sweep()
    assert gc.get_freeze_count() == frozen  # what the start made: not walked, still frozen
    assert not _in(2, started) and _in(2, later[0])  # (what came after: walked, kept)


def test_a_sweep_is_due_after_a_quarter_s_growth_or_every_period_if_anything_was_collected() -> None:
    survivors = Sweeper(growth=0.25, at_most=30.0, every=600.0)
    survivors.old_after = 1000
    assert not survivors.due(5000, 900.0)  # no collection since the last sweep: nothing to find
    survivors.collections = 1
    assert not survivors.due(1250, 30.0)
    assert survivors.due(1251, 30.0)
    assert not survivors.due(900, 599.0)
    assert survivors.due(900, 600.0)


def test_a_sweep_that_finds_almost_nothing_makes_the_next_wait_for_four_times_the_growth_and_period(
        policy: Sweeper) -> None:
    assert policy.growth == policy.base_growth == 1.0
    assert policy.period == policy.every == SWEEP_EVERY
    gc.collect(0)
    policy.sweep()  # (everything old is alive: nothing found)
    assert policy.growth == 4.0 and policy.period == 4 * SWEEP_EVERY
    policy.collections = 1
    assert not policy.due(policy.old_after, 4 * SWEEP_EVERY - 1)
    assert policy.due(policy.old_after, 4 * SWEEP_EVERY)
    for _ in range(2):
        gc.collect(0)
        policy.sweep()
    assert policy.growth == 8.0 and policy.period == SWEEP_EVERY_MOST  # (at most)
    nodes = [Node() for _ in range(policy.old_after // 20)]  # (5 % of what a sweep walks)
    gc.collect(0)
    gc.collect(1)
    del nodes
    assert policy.sweep() >= policy.old_after // 20
    assert policy.growth == 1.0 and policy.period == SWEEP_EVERY  # garbage found: back to the base


@pytest.mark.anyio
async def test_the_daemon_sweeps_when_one_is_due_and_no_more_often_than_at_most() -> None:
    gc.collect()
    survivors = Sweeper(growth=0.25, at_most=0.1, every=600.0)
    survivors.install()
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(survivors.sweep_when_due)
            await anyio.sleep(0.15)
            nodes = [Node() for _ in range(max(2 * survivors.old_after, 1000))]
            gc.collect(0)
            gc.collect(1)  # (old now: more than a quarter more)
            gone = weakref.ref(nodes[0])
            del nodes
            with anyio.fail_after(5):
                while survivors.sweeps == 0:
                    await anyio.sleep(0.02)
            assert gone() is None
            sweeps = survivors.sweeps
            await anyio.sleep(0.25)
            assert survivors.sweeps == sweeps  # (nothing new since)
            tg.cancel_scope.cancel()
    finally:
        survivors.remove()
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

    survivors = Sweeper(at_most=0.01, every=600.0)  # (not installed: the test says what ran)
    monkeypatch.setattr(collector, "old_objects", counting)
    async with anyio.create_task_group() as tg:
        tg.start_soon(survivors.sweep_when_due)
        await anyio.sleep(0.1)
        assert len(counts) == 1  # at the start only: no collection, no look walks anything
        survivors.collections += 1
        await anyio.sleep(0.1)
        assert len(counts) == 1  # collections that kept little: still nothing walked
        survivors.old = 3 * survivors.old_after + 1000  # (what the kept count says)
        with anyio.fail_after(5):
            while len(counts) == 1:
                await anyio.sleep(0.01)
        assert survivors.old == counts[-1]  # counted: the kept count is the truth again,
        assert survivors.sweeps == 0  # which says no sweep is due
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_the_first_sweep_waits_for_the_oldest_generation_to_reach_twice_what_the_start_froze(
        policy: Sweeper) -> None:
    """At the start the oldest generation may be empty (what the start made is frozen): a
    sweep then is due only once it holds twice what the start froze, not at the first growth."""
    freeze_start()
    frozen = gc.get_freeze_count()
    survivors = Sweeper(at_most=0.01, every=600.0)  # (not installed: the test says what ran)
    nodes = [Node() for _ in range(frozen // 4)]
    gc.collect(0)
    gc.collect(1)
    async with anyio.create_task_group() as tg:
        tg.start_soon(survivors.sweep_when_due)
        await anyio.sleep(0.05)
        survivors.collections += 1
        survivors.old = old_objects()
        await anyio.sleep(0.1)
        assert survivors.sweeps == 0 and survivors.old_after >= 0.9 * frozen  # (some freed since)
        with anyio.fail_after(5):
            while survivors.sweeps == 0:  # (grown past twice: due)
                nodes.extend(Node() for _ in range(frozen // 4))
                gc.collect(0)
                gc.collect(1)
                survivors.old = old_objects()
                await anyio.sleep(0.02)
        tg.cancel_scope.cancel()


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
    assert truth > policy.old_after + 30_000
    assert abs(policy.old - truth) <= 0.1 * (truth - policy.old_after)
    del kept
