"""The daemon's collector policy: what survives a collection is frozen, so that each collection
walks only what was made since the last; a sweep walks the frozen objects too and frees the
cycles among them that became garbage, when what is frozen has grown by a quarter or every
``every`` seconds, never more often than every ``at_most`` seconds."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import anyio
import pytest

from torrent_engine.cli.collector import (
    GC_THRESHOLDS,
    SWEEP_EVERY,
    SWEEP_EVERY_MOST,
    FreezeSurvivors,
    daemon_collector,
)


class Node:
    """An object in a reference cycle (only the collector frees it)."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def policy() -> Iterator[FreezeSurvivors]:
    gc.collect()
    with daemon_collector() as survivors:
        try:
            yield survivors
        finally:
            gc.unfreeze()
    gc.collect()


def test_what_survives_a_collection_is_left_out_of_the_next_ones_until_a_sweep(
        policy: FreezeSurvivors) -> None:
    assert gc.get_threshold() == GC_THRESHOLDS
    node = Node()
    gc.collect(0)  # (a young collection: ``node`` survives it, and is frozen)
    assert gc.get_freeze_count() > 0
    gone = weakref.ref(node)
    del node  # (garbage now, in a cycle)
    gc.collect()
    assert gone() is not None  # frozen: not walked, even by a full collection
    young = Node()  # made since the last collection: walked, freed
    young_gone = weakref.ref(young)
    del young
    gc.collect(0)
    assert young_gone() is None
    policy.sweep()
    assert gone() is None and policy.sweeps == 1 and policy.collections == 0
    assert policy.frozen_after == gc.get_freeze_count() > 0  # (what survived it, frozen again)


def test_a_sweep_is_due_after_a_quarter_s_growth_or_every_period_if_anything_was_collected() -> None:
    survivors = FreezeSurvivors(growth=0.25, at_most=30.0, every=600.0)
    survivors.frozen_after = 1000
    assert not survivors.due(5000, 900.0)  # no collection since the last sweep: nothing to find
    survivors.collections = 1
    assert not survivors.due(1250, 30.0)
    assert survivors.due(1251, 30.0)
    assert not survivors.due(900, 599.0)
    assert survivors.due(900, 600.0)


def test_a_sweep_that_finds_almost_nothing_makes_the_next_wait_for_four_times_the_growth_and_period(
        policy: FreezeSurvivors) -> None:
    assert policy.growth == policy.base_growth == 1.0
    assert policy.period == policy.every == SWEEP_EVERY
    gc.collect(0)
    policy.sweep()  # (everything frozen is alive: nothing found)
    assert policy.growth == 4.0 and policy.period == 4 * SWEEP_EVERY
    policy.collections = 1
    assert not policy.due(policy.frozen_after, 4 * SWEEP_EVERY - 1)
    assert policy.due(policy.frozen_after, 4 * SWEEP_EVERY)
    for _ in range(2):
        gc.collect(0)
        policy.sweep()
    assert policy.growth == 8.0 and policy.period == SWEEP_EVERY_MOST  # (at most)
    nodes = [Node() for _ in range(policy.frozen_after // 20)]  # (5 % of what a sweep walks)
    gc.collect(0)
    del nodes
    assert policy.sweep() >= policy.frozen_after // 20
    assert policy.growth == 1.0 and policy.period == SWEEP_EVERY  # garbage found: back to the base


@pytest.mark.anyio
async def test_the_daemon_sweeps_when_one_is_due_and_no_more_often_than_at_most() -> None:
    gc.collect()
    survivors = FreezeSurvivors(growth=0.25, at_most=0.1, every=600.0)
    survivors.install()
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(survivors.sweep_when_due)
            await anyio.sleep(0.15)
            nodes = [Node() for _ in range(max(2 * survivors.frozen_after, 1000))]
            gc.collect(0)  # (frozen: more than a quarter more)
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
        gc.unfreeze()
        gc.collect()


def test_after_the_block_it_takes_no_more_part_and_the_thresholds_are_as_before() -> None:
    gc.collect()
    before = gc.get_threshold()
    with daemon_collector() as survivors:
        assert survivors in gc.callbacks
    assert survivors not in gc.callbacks and gc.get_threshold() == before
    node = Node()
    gone = weakref.ref(node)
    gc.collect(0)  # (nothing frozen at its end)
    del node
    gc.collect()
    assert gone() is None


@pytest.mark.anyio
async def test_the_frozen_objects_are_counted_only_when_the_kept_count_says_a_sweep_is_due(
        monkeypatch: pytest.MonkeyPatch) -> None:
    counts: list[int] = []
    real = gc.get_freeze_count

    def counting() -> int:  # (the count walks every frozen object)
        counts.append(real())
        return counts[-1]

    survivors = FreezeSurvivors(at_most=0.01, every=600.0)  # (not installed: the test says what ran)
    monkeypatch.setattr(gc, "get_freeze_count", counting)
    async with anyio.create_task_group() as tg:
        tg.start_soon(survivors.sweep_when_due)
        await anyio.sleep(0.1)
        assert len(counts) == 1  # at the start only: no collection, no look walks anything
        survivors.collections += 1
        await anyio.sleep(0.1)
        assert len(counts) == 1  # collections that froze little: still nothing walked
        survivors.frozen = 3 * survivors.frozen_after + 1000  # (what the kept count says)
        with anyio.fail_after(5):
            while len(counts) == 1:
                await anyio.sleep(0.01)
        assert survivors.frozen == counts[-1]  # counted: the kept count is the truth again,
        assert survivors.sweeps == 0  # which says no sweep is due
        tg.cancel_scope.cancel()


def test_the_kept_count_follows_what_the_collections_freeze(policy: FreezeSurvivors) -> None:
    policy.sweep()
    assert policy.frozen == gc.get_freeze_count()
    kept = []
    for i in range(100_000):
        node = Node()
        if i % 3 == 0:
            kept.append(node)  # (the rest: garbage in cycles, freed by the young collections)
    gc.collect(0)
    truth = gc.get_freeze_count()
    assert truth > policy.frozen_after + 30_000
    assert abs(policy.frozen - truth) <= 0.1 * (truth - policy.frozen_after)
    del kept
