"""The change log: what changed after a cursor or within a time, in the jobs changed, and a full
answer (None) for a cursor it cannot answer."""

from __future__ import annotations

import pytest

from torrent_engine.jobs.changelog import ChangeLog, Removed


def test_since_a_cursor_lists_each_job_changed_after_it_once_in_change_order() -> None:
    log = ChangeLog(start=100)
    log.mark("a", 1.0)
    log.mark("b", 2.0)
    cursor = log.cursor
    assert cursor == 102
    log.mark("c", 3.0)
    log.mark("a", 4.0)  # (moves to the end: it changed last)
    told = log.since(cursor)
    assert told is not None and told.changed == ["c", "a"] and told.removed == [] and told.cursor == 104
    assert log.since(log.cursor) is not None and log.since(log.cursor).changed == []  # type: ignore[union-attr]
    assert log.since(100) is not None and log.since(100).changed == ["b", "c", "a"]  # type: ignore[union-attr]


def test_within_a_time_lists_the_jobs_marked_then_and_those_removed() -> None:
    log = ChangeLog()
    log.mark("old", 10.0)
    log.mark("gone", 20.0)
    log.mark("new", 70.0)
    log.remove("gone", 75.0, number=7, info_hash="h" * 40)
    told = log.within(60.0)
    assert told.changed == ["new"]
    assert told.removed == [Removed("gone", 7, "h" * 40)]
    assert log.within(0.0).changed == ["old", "new"]
    assert log.within(70.0).changed == ["new"] and log.within(70.5).changed == []  # (at or after)


def test_a_cursor_it_cannot_answer_gets_none_a_full_answer() -> None:
    log = ChangeLog(start=1_000, max_removed=2)
    assert log.since(999) is None  # (of an earlier run: below the start)
    assert log.since(1_001) is None  # (ahead of the log: not one it gave)
    log.mark("a", 0.0)
    first = log.cursor
    log.remove("x", 0.0)
    log.remove("y", 0.0)
    assert log.since(first) is not None
    log.remove("z", 0.0)  # (the oldest removal kept, x, goes: cursors before it cannot be told)
    assert log.since(first) is None
    told = log.since(log.cursor - 2)
    assert told is not None and [r.job_id for r in told.removed] == ["y", "z"]
    assert len(log) == 3  # a, y, z: the removals kept are bounded


def test_a_reset_makes_every_earlier_cursor_a_full_answer() -> None:
    log = ChangeLog()
    log.mark("a", 0.0)
    before = log.cursor
    log.reset()
    assert log.since(before) is None
    assert log.since(log.cursor) is not None


def test_a_removed_job_leaves_the_changed_ones() -> None:
    log = ChangeLog()
    log.mark("a", 0.0)
    log.remove("a", 1.0, number=3)
    told = log.since(0)
    assert told is not None and told.changed == [] and told.removed == [Removed("a", 3, "")]
    assert log.last_change("a") is None


def test_at_least_one_removal_is_kept() -> None:
    with pytest.raises(ValueError):
        ChangeLog(max_removed=0)


def test_a_job_whose_only_change_since_a_cursor_is_its_queue_position_is_told_moved() -> None:
    log = ChangeLog()
    log.mark("a", 1.0)
    log.mark("b", 1.0)
    cursor = log.cursor
    log.mark_moved(["a", "b"], 2.0)  # (a settle of the queue marks thousands at once, in order)
    log.mark("b", 2.5)  # (then more of it changed)
    log.mark_moved(iter(["c"]), 3.0)  # (never marked whole in this log: only moved)
    told = log.since(cursor)
    assert told is not None and told.changed == ["a", "b", "c"] and told.moved == {"a", "c"}
    assert [log.last_change(j) for j in "abc"] == [cursor + 1, cursor + 3, cursor + 4]
    later = log.cursor
    log.mark_moved(["b"], 4.0)  # (its whole change is before this cursor)
    assert log.since(later) is not None and log.since(later).moved == {"b"}  # type: ignore[union-attr]
    first = log.since(0)
    assert first is not None and first.moved == {"c"}  # (a and b changed whole after 0)
    log.remove("a", 5.0)
    log.mark_moved(["a"], 6.0)  # (a job id marked again after its removal)
    assert "a" in log.since(later).moved  # type: ignore[union-attr]
    assert log.within(0.0).moved == frozenset()  # (by time: told whole)
