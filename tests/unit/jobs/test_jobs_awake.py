"""The timers' walk (awake.Sleepers), called directly: a quiet seed costs nothing per tick, its
seeding time is still counted when it wakes, and it wakes by itself at its share time limit."""

from __future__ import annotations

from tests.unit.jobs.test_jobs_queue import record
from torrent_engine.jobs.awake import Sleepers
from torrent_engine.jobs.table import JobTable


def test_a_quiet_seed_leaves_the_walk_and_its_seeding_time_is_counted_when_it_wakes() -> None:
    seed, other = record(1, complete=True), record(2)
    table = JobTable([seed, other])
    sleepers = Sleepers()
    sleepers.wake(seed)
    sleepers.wake(other)
    sleepers.fall_quiet(seed, complete=True, time_left=None)
    assert sleepers.moving(table, lambda rec: True) == [other]
    sleepers.advance(10.0, table)
    sleepers.advance(5.0, table)
    assert seed.seeding_time == 0.0  # (asleep: nothing walked, nothing counted yet)
    sleepers.wake(seed)
    assert seed.seeding_time == 15.0
    assert sleepers.moving(table, lambda rec: True) == [other, seed]


def test_a_quiet_seed_wakes_when_the_seeding_clock_reaches_its_time_limit() -> None:
    seed = record(1, complete=True)
    table = JobTable([seed])
    sleepers = Sleepers()
    sleepers.fall_quiet(seed, complete=True, time_left=30.0)
    sleepers.advance(29.0, table)
    assert seed.id in sleepers.quiet
    sleepers.advance(2.0, table)  # (woken before this step counts: the round counts it)
    assert seed.id not in sleepers.quiet and seed.id in sleepers.awake
    assert seed.seeding_time == 29.0


def test_a_job_without_a_session_leaves_the_walk() -> None:
    a = record(1)
    table = JobTable([a])
    sleepers = Sleepers()
    sleepers.wake(a)
    assert sleepers.moving(table, lambda rec: False) == []
    assert a.id not in sleepers.awake
