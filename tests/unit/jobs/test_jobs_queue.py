"""The job queue's sync core (queue.JobQueue), called directly: no session, no event loop. It
reads a job table and the settings, and says which jobs get a slot, which it holds back, which
sleepers a round must wake and which dormant jobs it must start, and the positions shown."""

from __future__ import annotations

import dataclasses

from torrent_engine.jobs import JobFeatures, JobOptions, JobState
from torrent_engine.jobs.queueing.queue import RANKS_GONE_MOST, JobQueue, QueueEntry, SlowJobs, queue_entry
from torrent_engine.jobs.store import JobRecord
from torrent_engine.jobs.table import JobTable
from torrent_engine.jobs.tuning.settings import ServiceSettings


def record(n: int, *, complete: bool = False, paused: bool = False, force: bool = False) -> JobRecord:
    options = JobOptions(save_path="/dl", files=None, sequential=False, paused=paused, peers=(),
                         client=None, download_limit=0, upload_limit=0)
    rec = JobRecord(id=f"job{n}", info_hash=f"{n:040x}", name=f"job{n}", source="torrent",
                    options=options, state=JobState.SEEDING if complete else JobState.DOWNLOADING,
                    created_at=float(n), updated_at=float(n), features=JobFeatures(force_start=force))
    rec.queue_position = n
    if complete:
        rec.total_size = rec.done_size = 100
        rec.completed_at = float(n)
    return rec


def queue(recs: list[JobRecord], **settings: object) -> tuple[JobQueue, JobTable]:
    table = JobTable(recs)
    chosen = dataclasses.replace(ServiceSettings(queueing=True), **settings)  # type: ignore[arg-type]
    return JobQueue(lambda: table, lambda: chosen), table


def entries(*recs: JobRecord) -> dict[str, QueueEntry]:
    return {r.id: queue_entry(r) for r in recs}


def test_a_round_gives_the_slots_in_queue_order_and_holds_the_rest() -> None:
    a, b, c, seed = record(1), record(2), record(3), record(4, complete=True)
    q, _ = queue([a, b, c, seed], max_active_downloads=2, max_active_uploads=1)
    plan = q.plan(entries(a, b, c, seed), with_session={a.id, b.id, c.id, seed.id}, quiet=(), busy=())
    assert plan.given == {a.id, b.id, seed.id}
    assert plan.hold == {c.id}
    assert plan.wake == () and plan.start == ()


def test_a_force_started_job_is_never_held_and_takes_no_slot() -> None:
    a, b = record(1, force=True), record(2)
    q, _ = queue([a, b], max_active_downloads=1)
    plan = q.plan(entries(a, b), with_session={a.id, b.id}, quiet=(), busy=())
    assert plan.hold == frozenset() and b.id in plan.given


def test_a_quiet_job_wakes_when_its_slot_is_given_or_taken() -> None:
    a, b, c = record(1), record(2), record(3)
    q, _ = queue([a, b, c], max_active_downloads=1)
    q.held.add(c.id)  # (held back, asleep: stays so while the queue says the same)
    plan = q.plan(entries(a, b, c), with_session={a.id, b.id, c.id}, quiet=(b.id, c.id), busy=())
    assert plan.hold == {b.id, c.id}
    assert plan.wake == (b.id,)  # (b runs, but must now be held: the round walks it again)


def test_jobs_held_since_the_start_without_a_session_are_started_with_their_slot() -> None:
    a, b, c = record(1), record(2), record(3)
    q, _ = queue([a, b, c], max_active_downloads=2)
    assert q.held_at_start() == {c.id}
    q.held.update({b.id, c.id})  # (b and c dormant; a runs and completes, freeing a slot)
    plan = q.plan(entries(a), with_session={a.id}, quiet=(), busy=())
    assert plan.start == (b.id,)
    assert q.plan(entries(a), with_session={a.id}, quiet=(), busy={b.id}).start == (c.id,)


def test_a_slow_job_runs_uncounted_so_the_next_one_gets_a_slot() -> None:
    a, b, c, seed, other = record(1), record(2), record(3), record(4, complete=True), record(5, complete=True)
    q, _ = queue([a, b, c, seed, other], max_active_downloads=1, max_active_uploads=1, max_active_torrents=2)
    judged = entries(a, b, c, seed, other)
    judged[a.id] = queue_entry(a, slow=True)  # (a stalled download: runs on, uncounted)
    judged[seed.id] = queue_entry(seed, slow=True)
    plan = q.plan(judged, with_session=set(judged), quiet=(), busy=())
    assert plan.given == {a.id, b.id, seed.id, other.id} and plan.hold == {c.id}
    judged[a.id] = queue_entry(a)  # (fast again: counted, and the last one given is held)
    assert q.plan(judged, with_session=set(judged), quiet=(), busy=()).hold == {b.id, c.id}


def test_a_job_is_slow_once_both_rates_stayed_below_the_slow_rates_for_the_time() -> None:
    settings = ServiceSettings(slow_torrent_download_rate=2048, slow_torrent_upload_rate=1024,
                               slow_torrent_inactive_time=60)
    slow = SlowJobs()
    assert not slow.slow("a", 100.0, settings, (0, 0))  # (first seen: the time begins)
    assert not slow.slow("a", 159.0, settings, (2047, 1023))
    assert slow.slow("a", 160.0, settings, None)  # (quiet: nothing moves)
    assert not slow.slow("a", 161.0, settings, (0, 1024))  # (fast enough one way: not slow)
    assert not slow.slow("a", 220.0, settings, (2048, 0)) and slow.slow("a", 280.0, settings, (10, 10))
    slow.keep({"b"})  # (held, paused or ended: forgotten)
    assert not slow.slow("a", 1000.0, settings, None) and slow.active_at == {"a": 1000.0}


def test_a_paused_job_neither_runs_nor_counts() -> None:
    a, b = record(1, paused=True), record(2)
    q, _ = queue([a, b], max_active_downloads=1)
    assert q.held_at_start() == set()


def test_with_queueing_off_everything_judged_and_every_dormant_held_job_runs() -> None:
    a, b, c = record(1), record(2), record(3, paused=True)
    q, _ = queue([a, b, c], queueing=False, max_active_downloads=1)
    q.held.update({b.id, c.id})
    assert not q.judges(a)
    assert q.admitted(entries(a), with_session={a.id}, busy=()) == {a.id, b.id}


def test_a_job_is_held_from_its_start_when_the_slots_are_taken_before_it() -> None:
    a, b = record(1), record(2)
    q, _ = queue([a, b], max_active_downloads=1)
    assert q.starts_held(b, False, entries(a), with_session={a.id}, busy=())
    assert not q.starts_held(a, False, entries(b), with_session={b.id}, busy=())
    b.features = JobFeatures(force_start=True)
    assert not q.starts_held(b, False, entries(a), with_session={a.id}, busy=())


def test_positions_shown_skip_complete_jobs_and_follow_completions_and_adds() -> None:
    a, b, c = record(1), record(2, complete=True), record(3)
    q, table = queue([a, b, c])
    assert [q.rank(r.id) for r in (a, b, c)] == [1, 0, 2]
    a.completed_at, a.total_size, a.done_size = 5.0, 10, 10
    q.completion_changed(a)  # (ranks current: c moves up without a new ranking)
    assert [q.rank(r.id) for r in (a, b, c)] == [0, 0, 1]
    d = record(4)
    before = table.order_version
    table.add(d)
    q.ranked_last(d, before)
    assert q.rank(d.id) == 2
    shown = {r.id: q.rank(r.id) for r in (a, b, c, d)}
    q.rerank()  # (made anew: the same)
    assert {r.id: q.rank(r.id) for r in (a, b, c, d)} == shown


def test_completions_between_two_reads_tell_each_moved_job_once_at_the_read() -> None:
    """A completion moves every rank after it: the jobs that moved are told once when a list
    reads the change log (``settle``), not once per completion (quadratic while thousands of
    checks end); the one that completed is told at once, and none before the moved ones."""
    recs = [record(n) for n in range(1, 101)]
    q, _ = queue(recs)
    told: list[str] = []
    q.ranks_moved = told.extend
    q.settle()
    told.clear()
    for rec in (recs[10], recs[3], recs[50]):  # (ranks 11, 4, 51 complete, in that order)
        rec.completed_at, rec.total_size, rec.done_size = 5.0, 10, 10
        q.completion_changed(rec)
    assert told == [recs[10].id, recs[3].id, recs[50].id]
    told.clear()
    q.settle()
    done = {recs[10].id, recs[3].id, recs[50].id}
    assert sorted(told) == sorted(r.id for r in recs[4:] if r.id not in done)  # each once
    assert [q.rank(r.id) for r in recs[:4]] == [1, 2, 3, 0] and q.rank(recs[99].id) == 97
    ids = [r.id for r in recs] + ["none"]  # (read at once as one by one: 0 for a job not ranked)
    assert q.ranks_of(ids) == [q.rank(i) for i in ids] and q.ranks_of(ids)[-1] == 0
    told.clear()
    q.settle()  # (nothing moved since)
    assert told == []


def test_checks_ending_in_the_order_they_came_write_no_rank_of_the_others() -> None:
    """10 000 checked imports complete first come, first done: each completion moved every rank
    after it, one by one (quadratic: 40 % of the loop's own work while they were checked). Now
    the ranks stay as numbered and a completion is noted once; the positions shown are right."""

    class Counting(dict[str, int]):
        writes = 0

        def __setitem__(self, key: str, value: int) -> None:
            Counting.writes += 1
            super().__setitem__(key, value)

    recs = [record(n) for n in range(1, 1001)]
    q, _ = queue(recs)
    q.settle()
    q._ranks = Counting(q._ranks)
    for rec in recs[:500]:
        rec.completed_at, rec.total_size, rec.done_size = 5.0, 10, 10
        q.completion_changed(rec)
        assert q.rank(recs[999].id) == 999 - recs.index(rec)  # (read as a list reads it, each time)
    assert Counting.writes == 0
    assert [q.rank(r.id) for r in recs[498:503]] == [0, 0, 1, 2, 3] and q.rank(recs[999].id) == 500


def test_jobs_added_and_completed_without_end_keep_the_ranks_that_left_bounded() -> None:
    recs = [record(n) for n in range(1, 11)]
    q, table = queue(recs)
    q.settle()
    for n in range(11, 11 + 3 * RANKS_GONE_MOST):
        rec = record(n)
        before = table.order_version
        table.add(rec)
        q.ranked_last(rec, before)
        assert q.rank(rec.id) == 11  # (after the ten waiting)
        rec.completed_at, rec.total_size, rec.done_size = 5.0, 10, 10
        q.completion_changed(rec)
        assert len(q._gone) <= RANKS_GONE_MOST
    assert [q.rank(r.id) for r in recs] == list(range(1, 11))


def test_every_record_gets_a_place_and_a_new_job_goes_after_every_other() -> None:
    a, b, c = record(1), record(2), record(3)
    a.queue_position, b.queue_position, c.queue_position = 5, 0, 2  # (b: an older record, none)
    q, table = queue([a, b, c])
    q.place_all()
    assert [r.id for r in table.in_queue_order()] == [c.id, a.id, b.id]
    assert (c.queue_position, a.queue_position, b.queue_position) == (1, 2, 3)
    assert q.next_position() == 4 and q.next_position() == 5


def test_a_torrents_jobs_newest_first_and_its_only_job() -> None:
    """``of_torrent`` lists a torrent's jobs newest first (one job: no sort); ``only_job`` is
    that job when the torrent has it alone, else None."""
    a, b, c = record(1), record(2, complete=True), record(3)
    b.info_hash = a.info_hash  # (a's torrent has a job in its history too)
    table = JobTable([a, b, c])
    assert table.of_torrent(a.info_hash) == [b, a]
    assert table.of_torrent(c.info_hash) == [c] and table.of_torrent("0" * 40) == []
    assert table.only_job(c.info_hash) is c
    assert table.only_job(a.info_hash) is None and table.only_job("0" * 40) is None
    table.discard(b)
    assert table.only_job(a.info_hash) is a and table.of_torrent(a.info_hash) == [a]
