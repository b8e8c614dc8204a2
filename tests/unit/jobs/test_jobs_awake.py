"""The timers' walk (awake.Sleepers), called directly: a quiet seed costs nothing per tick, its
seeding time is still counted when it wakes, and it wakes by itself at its share time limit."""

from __future__ import annotations

from tests.unit.jobs.test_jobs_queue import record
from torrent_engine.jobs.queueing.awake import Sleepers
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


def test_a_quiet_seed_is_due_to_go_dormant_only_if_it_stayed_quiet() -> None:
    stays, woke, put_off = record(1, complete=True), record(2, complete=True), record(3, complete=True)
    sleepers = Sleepers()
    for rec in (stays, woke, put_off):
        sleepers.fall_quiet(rec, complete=True, time_left=None, dormant_at=100.0)
    sleepers.wake(woke)  # (news of its session: not quiet since)
    sleepers.put_off(put_off, 200.0)  # (looked at, a reader open: again later)
    assert sleepers.dormant_due(99.0) == []
    assert sleepers.dormant_due(100.0) == [stays.id]
    assert sleepers.dormant_due(150.0) == []  # (once each)
    sleepers.fall_quiet(woke, complete=True, time_left=None)  # (quiet again, without a time: never)
    assert sleepers.dormant_due(1000.0) == [put_off.id]


def test_the_quiet_jobs_with_peers_are_known_until_each_wakes_or_leaves() -> None:
    a, b, c = record(1), record(2), record(3)
    table = JobTable([a, b, c])
    sleepers = Sleepers()

    def with_peers() -> set[str]:
        return {rec.id for rec in sleepers.with_peers(table)}

    sleepers.fall_quiet(a, complete=False, time_left=None, peers=3)
    sleepers.fall_quiet(b, complete=False, time_left=None, peers=2)
    sleepers.fall_quiet(c, complete=False, time_left=None)
    assert with_peers() == {a.id, b.id}
    sleepers.wake(a)
    assert with_peers() == {b.id}
    sleepers.fall_quiet(b, complete=False, time_left=None)  # (quiet again, its peers gone)
    assert with_peers() == set()
    sleepers.fall_quiet(a, complete=False, time_left=None, peers=1)
    sleepers.leave(a.id)
    sleepers.forget(c)
    sleepers.wake_all(table)
    assert with_peers() == set() and not sleepers.quiet
