"""The daemon's collector policy: what survives a collection is frozen, so that each collection
walks only what was made since the last; a sweep walks the frozen objects too and frees the
cycles among them that became garbage."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import anyio
import pytest

from torrent_engine.cli.collector import GC_THRESHOLDS, FreezeSurvivors, daemon_collector


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
    assert policy.sweep()
    assert gone() is None and policy.sweeps == 1
    assert gc.get_freeze_count() > 0  # (and what survived the sweep is frozen again)


def test_no_sweep_when_no_collection_ran_since_the_last(policy: FreezeSurvivors) -> None:
    gc.collect(0)
    assert policy.sweep()
    assert not policy.sweep() and policy.sweeps == 1
    gc.collect(0)
    assert policy.sweep() and policy.sweeps == 2


@pytest.mark.anyio
async def test_the_daemon_s_sweeps_come_every_period_until_cancelled(policy: FreezeSurvivors) -> None:
    node = Node()
    gc.collect(0)
    gone = weakref.ref(node)
    del node
    with anyio.move_on_after(0.3):
        await policy.sweep_every(0.05)
    assert gone() is None and policy.sweeps >= 1


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
