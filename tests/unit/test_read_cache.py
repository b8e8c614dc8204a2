"""The engine's one read cache: each torrent's pieces on its shelf within its own budget, every
shelf together within the cache's size, least recently used first out."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from torrent_engine.storage.read_cache import ReadCache

KIB = 1024


def test_a_torrent_over_its_budget_lets_its_own_oldest_piece_go() -> None:
    cache = ReadCache(max_bytes=100 * KIB)
    a, b = cache.shelf(), cache.shelf()
    b.put(0, bytes(10 * KIB), budget=100 * KIB)
    for i in range(4):
        a.put(i, bytes(10 * KIB), budget=30 * KIB)
    assert 0 not in a and all(i in a for i in (1, 2, 3))
    assert 0 in b  # another torrent's piece, older still, is not this budget's to drop
    assert (a.bytes, b.bytes, cache.bytes) == (30 * KIB, 10 * KIB, 40 * KIB)


def test_every_torrent_together_stays_within_the_cache_and_the_least_recently_used_goes_first() -> None:
    cache = ReadCache(max_bytes=40 * KIB)
    shelves = [cache.shelf() for _ in range(3)]
    for n, shelf in enumerate(shelves):
        shelf.put(n, bytes(10 * KIB), budget=1 << 30)
    assert shelves[0].get(0) is not None  # used again: now the newest
    shelves[2].put(9, bytes(10 * KIB), budget=1 << 30)
    shelves[1].put(8, bytes(10 * KIB), budget=1 << 30)  # over 40 KiB: the oldest of all goes
    assert 1 not in shelves[1] and 0 in shelves[0]
    assert cache.bytes == 40 * KIB == sum(s.bytes for s in shelves)


def test_a_torrent_that_stops_leaves_nothing_behind() -> None:
    cache = ReadCache()
    a, b = cache.shelf(), cache.shelf()
    for i in range(5):
        a.put(i, bytes(KIB), budget=1 << 20)
    b.put(0, bytes(KIB), budget=1 << 20)
    a.drop(3)
    assert 3 not in a and a.bytes == 4 * KIB
    a.clear()
    assert (len(a), a.bytes, cache.bytes, len(cache)) == (0, 0, KIB, 1)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32), st.integers(1, 64))
def test_the_bytes_held_always_add_up_and_stay_bounded(seed: int, max_kib: int) -> None:
    rng = random.Random(seed)
    cache = ReadCache(max_bytes=max_kib * KIB)
    shelves = [cache.shelf() for _ in range(4)]
    for _ in range(200):
        shelf = rng.choice(shelves)
        op = rng.random()
        if op < 0.6:
            shelf.put(rng.randrange(16), bytes(rng.randrange(1, 8) * KIB), budget=rng.randrange(1, 40) * KIB)
        elif op < 0.8:
            shelf.get(rng.randrange(16))
        elif op < 0.95:
            shelf.drop(rng.randrange(16))
        else:
            shelf.clear()
        assert cache.bytes == sum(s.bytes for s in shelves)
        assert len(cache) == sum(len(s) for s in shelves)
        assert cache.bytes <= max(cache.max_bytes, 8 * KIB)  # (one piece is always kept)
