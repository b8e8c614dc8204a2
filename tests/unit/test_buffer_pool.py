"""The process's pool of piece buffers: reuse by size, its cap, and nothing kept once idle."""

from __future__ import annotations

import mmap

import pytest

from torrent_engine.storage.buffers import BufferPool

KIB = 1024


def test_a_buffer_given_back_is_the_next_one_taken_of_its_size() -> None:
    pool = BufferPool(1024 * KIB)
    pool.join()
    a = pool.take(128 * KIB)
    assert isinstance(a, mmap.mmap) and len(a) == 128 * KIB  # (page-aligned from 128 KiB)
    small = pool.take(16 * KIB)
    assert isinstance(small, bytearray) and len(small) == 16 * KIB
    pool.give(a)
    assert pool.kept_bytes == 128 * KIB
    assert pool.take(64 * KIB) is not a  # (another size: a fresh one)
    assert pool.take(128 * KIB) is a
    assert pool.kept_bytes == 0
    assert (pool.made, pool.reused) == (3, 1)


def test_the_pool_keeps_at_most_its_cap_and_makes_room_for_the_size_given() -> None:
    pool = BufferPool(256 * KIB)
    pool.join()
    smalls = [pool.take(64 * KIB) for _ in range(4)]
    for b in smalls:
        pool.give(b)
    assert pool.kept_bytes == 256 * KIB
    big = pool.take(128 * KIB)
    pool.give(big)  # the oldest two of the other size make room
    assert pool.kept_bytes == 256 * KIB
    assert pool.take(128 * KIB) is big
    assert pool.take(64 * KIB) is smalls[3] and pool.take(64 * KIB) is smalls[2]
    assert all(pool.take(64 * KIB) is not b for b in smalls)  # (the two oldest were dropped)
    # full of one size: a buffer of that size given back is dropped, the kept ones stay
    again = [pool.take(64 * KIB) for _ in range(5)]
    for b in again:
        pool.give(b)
    assert pool.kept_bytes == 256 * KIB
    assert [id(pool.take(64 * KIB)) for _ in range(4)] == [id(b) for b in again[3::-1]]
    pool.give(pool.take(512 * KIB))  # (larger than the cap: never kept)
    assert pool.kept_bytes == 0


def test_nothing_is_kept_without_users_and_the_last_to_leave_frees_all() -> None:
    pool = BufferPool(1024 * KIB)
    b = pool.take(128 * KIB)
    pool.give(b)
    assert pool.kept_bytes == 0  # nobody joined: nothing is kept
    pool.join()
    pool.join()
    pool.give(b)
    pool.leave()
    assert pool.kept_bytes == 128 * KIB and pool.users == 1
    pool.leave()
    assert pool.kept_bytes == 0 and pool.users == 0
    with pytest.raises(RuntimeError, match="without a join"):
        pool.leave()
    with pytest.raises(ValueError, match="cap"):
        BufferPool(-1)
