"""The daemon's collector policy: the survivors of a full collection are frozen, so that the next
full collections walk only what came since; a full collection every ``sweep_every`` seconds
walks the frozen objects too and frees the cycles among them that became garbage."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from torrent_engine.cli.collector import FreezeSurvivors


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Node:
    """An object in a reference cycle (only the collector frees it)."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def policy() -> Iterator[tuple[FreezeSurvivors, Clock]]:
    gc.collect()
    clock = Clock()
    survivors = FreezeSurvivors(60.0, clock=clock)
    survivors.install()
    try:
        yield survivors, clock
    finally:
        survivors.remove()
        gc.unfreeze()
        gc.collect()


def test_the_survivors_of_a_full_collection_are_left_out_of_the_next_ones(
        policy: tuple[FreezeSurvivors, Clock]) -> None:
    survivors, clock = policy
    node = Node()
    gc.collect()  # (a full collection: ``node`` survives it, and is frozen)
    assert gc.get_freeze_count() > 0
    gone = weakref.ref(node)
    del node  # (garbage now, in a cycle)
    gc.collect()
    assert gone() is not None and survivors.sweeps == 0  # frozen: not walked
    young = Node()  # made since the last full collection: walked, freed
    young_gone = weakref.ref(young)
    del young
    gc.collect()
    assert young_gone() is None
    clock.now += 59.0
    gc.collect()
    assert gone() is not None
    clock.now += 1.0  # a sweep is due: the full collection walks the frozen ones too
    gc.collect()
    assert gone() is None and survivors.sweeps == 1
    assert gc.get_freeze_count() > 0  # (and freezes what survived)


def test_young_collections_neither_freeze_nor_sweep(policy: tuple[FreezeSurvivors, Clock]) -> None:
    survivors, clock = policy
    gc.unfreeze()
    clock.now += 600.0
    gc.collect(0)
    gc.collect(1)
    assert gc.get_freeze_count() == 0 and survivors.sweeps == 0


def test_removed_it_takes_no_more_part() -> None:
    gc.collect()
    survivors = FreezeSurvivors(60.0, clock=Clock())
    survivors.install()
    survivors.install()
    assert gc.callbacks.count(survivors) == 1
    survivors.remove()
    assert survivors not in gc.callbacks
    node = Node()
    gone = weakref.ref(node)
    gc.collect()  # (nothing frozen at its end)
    del node
    gc.collect()
    assert gone() is None
