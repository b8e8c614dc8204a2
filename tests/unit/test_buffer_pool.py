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


def test_with_a_linger_the_buffers_outlive_the_last_user_until_the_time_named() -> None:
    clock = [100.0]
    named: list[float] = []
    pool = BufferPool(1024 * KIB, linger=10.0, monotonic=lambda: clock[0])
    pool.on_idle = named.append
    pool.join()
    b = pool.take(128 * KIB)
    pool.give(b)
    pool.leave()
    assert named == [110.0] and pool.kept_bytes == 128 * KIB  # kept, and the owner told when
    assert pool.on_tick(109.9) is False and pool.kept_bytes == 128 * KIB
    pool.join()  # a torrent starts within the linger: it takes what the last one gave back
    assert pool.take(128 * KIB) is b and (pool.made, pool.reused) == (1, 1)
    pool.give(b)
    assert pool.on_tick(110.0) is False and pool.kept_bytes == 128 * KIB  # (a user: kept)
    clock[0] = 105.0
    pool.leave()
    assert named == [110.0, 115.0]
    pool.on_tick(110.0)  # the first time named has passed, the second has not
    assert pool.kept_bytes == 128 * KIB
    pool.on_tick(115.0)
    assert pool.kept_bytes == 0 and pool.users == 0
    pool.give(pool.take(128 * KIB))  # (no user: nothing is kept)
    assert pool.kept_bytes == 0


def test_without_an_owner_to_tell_or_with_nothing_kept_the_last_to_leave_frees_at_once() -> None:
    named: list[float] = []
    pool = BufferPool(1024 * KIB, linger=10.0)  # (no on_idle: no one would free them later)
    pool.join()
    pool.give(pool.take(128 * KIB))
    pool.leave()
    assert pool.kept_bytes == 0
    pool.on_idle = named.append
    pool.join()
    pool.leave()  # nothing kept: no deadline asked for
    assert named == [] and pool.kept_bytes == 0
    with pytest.raises(ValueError, match="linger"):
        BufferPool(0, linger=-1)
