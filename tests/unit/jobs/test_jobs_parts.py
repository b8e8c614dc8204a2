"""The pure parts of the job service: the lease table, the job table and the input checks."""

from __future__ import annotations

import dataclasses
import itertools
import random

import pytest

from tests.unit.torrent_factory import make_torrent, payload
from torrent_engine.jobs import InvalidJobRequest, JobOptions, JobState, LeaseNotFound
from torrent_engine.jobs.disk.claims import Overlap, PathClaims, claimed_paths
from torrent_engine.jobs.queueing.leases import LeaseTable
from torrent_engine.jobs.store import JobRecord
from torrent_engine.jobs.table import JobTable
from torrent_engine.jobs.validate import (
    check_files,
    check_peers,
    check_priorities,
    check_ttl,
    files_refusal,
)


def record(job_id: str, info_hash: str = "ab" * 20, created_at: float = 10.0,
           state: JobState = JobState.DOWNLOADING) -> JobRecord:
    options = JobOptions(save_path="/dl", files=None, sequential=False, paused=False, peers=(),
                         client=None, download_limit=0, upload_limit=0)
    return JobRecord(id=job_id, info_hash=info_hash, name=job_id, source="torrent", options=options,
                     state=state, created_at=created_at, updated_at=created_at)


def test_a_lease_lapses_a_ttl_after_its_last_renewal() -> None:
    ids = (f"lease{n}" for n in itertools.count())
    leases = LeaseTable(new_id=lambda: next(ids))
    a = leases.open(10.0, now=100.0)
    b = leases.open(30.0, now=100.0)
    assert (a.id, a.expires_at, b.expires_at) == ("lease0", 110.0, 130.0)
    assert leases.renew(a.id, now=105.0).expires_at == 115.0
    assert leases.lapsed(114.9) == []
    assert leases.lapsed(115.0) == [a.id]
    leases.end(a.id)
    assert a.id not in leases and b.id in leases
    with pytest.raises(LeaseNotFound):
        leases.end(a.id)
    with pytest.raises(LeaseNotFound):
        leases.renew(a.id, now=0.0)


def test_downtime_is_not_held_against_a_lease() -> None:
    leases = LeaseTable({"old": (10.0, 50.0), "long": (100.0, 1000.0)})
    leases.forgive_downtime(now=500.0)  # "old" lapsed while the service was down
    assert leases.entries() == {"old": (10.0, 510.0), "long": (100.0, 1000.0)}


def test_one_active_job_per_torrent_and_newest_first() -> None:
    first, second = record("a", created_at=1.0), record("b", created_at=2.0)
    table = JobTable([second, first])
    assert [r.id for r in table.newest_first()] == ["b", "a"]
    assert table.active_id("ab" * 20) is None  # (restored records are bound one by one)
    table.bind(first)
    assert table.is_active(first) and not table.unbind(second)
    third = record("c", created_at=2.0)  # same time as "b": the later added is the newer
    table.add(third)
    assert table.active_id("ab" * 20) == "c" and not table.is_active(first)
    assert [r.id for r in table.newest_first()] == ["c", "b", "a"]
    table.discard(third)
    assert "c" not in table and table.active_id("ab" * 20) is None
    # (thousands read at once: those with a record, in the order asked)
    assert table.records_of(["b", "c", "a"]) == [second, first]
    assert table.having(["c", "a", "b"]) == ["a", "b"]


def test_the_table_keeps_the_history_totals() -> None:
    done = record("a", state=JobState.COMPLETED)
    done.downloaded, done.uploaded = 1000, 50
    running = record("b", info_hash="cd" * 20)
    table = JobTable([done, running])
    assert [r.id for r in table.unfinished()] == ["b"]
    counts, down, up = table.finished_totals()
    assert (counts[JobState.COMPLETED], counts[JobState.FAILED], down, up) == (1, 0, 1000, 50)
    running.downloaded, running.uploaded = 700, 7  # (an unfinished job's bytes are read live)
    assert table.finished_totals()[1:] == (1000, 50)
    running.state = JobState.FAILED
    table.finished(running)
    table.finished(running)  # (told twice: counted once)
    counts, down, up = table.finished_totals()
    assert (counts[JobState.FAILED], down, up) == (1, 1700, 57) and not list(table.unfinished())
    table.remove("a")
    counts, down, up = table.finished_totals()
    assert (counts[JobState.COMPLETED], down, up) == (0, 700, 7)
    fresh = record("c", info_hash="ef" * 20)
    table.add(fresh)
    assert [r.id for r in table.unfinished()] == ["c"]
    table.discard(fresh)
    assert not list(table.unfinished())


def test_finished_jobs_past_their_age() -> None:
    done = record("a", state=JobState.COMPLETED)
    done.completed_at = 100.0
    table = JobTable([done, record("b")])
    assert table.finished_before(150.0, older_than=60.0) == []
    assert table.finished_before(160.0, older_than=60.0) == [done]
    assert table.finished_before(0.0, older_than=None) == [done]


def test_priorities_are_checked_before_any_applies_and_pads_are_kept() -> None:
    assert check_priorities({0: 7, 1: 3, 2: 1}, [4, 0, 4], pads={1}) == [7, 0, 1]
    with pytest.raises(InvalidJobRequest, match="no file 3"):
        check_priorities({3: 1}, [4, 4, 4], pads=set())
    with pytest.raises(InvalidJobRequest, match="must be 0..7"):
        check_priorities({0: 8}, [4], pads=set())


@pytest.mark.parametrize("peers", [
    "127.0.0.1:1", [("127.0.0.1", 0)], [("", 1)], [("h", True)], [(1, 2, 3)], 5,
])
def test_bad_peers_name_the_field(peers: object) -> None:
    with pytest.raises(InvalidJobRequest) as info:
        check_peers(peers)  # type: ignore[arg-type]
    assert info.value.field == "peers"


@pytest.mark.parametrize("ttl", [0, -1.0, float("nan"), float("inf"), True, "10"])
def test_a_lease_needs_a_positive_finite_ttl(ttl: object) -> None:
    with pytest.raises(InvalidJobRequest):
        check_ttl(ttl)  # type: ignore[arg-type]


def test_a_selection_naming_a_pad_file_or_no_file_is_refused_with_the_reason() -> None:
    """BEP 47 pad files hold no data: selecting one would 'complete' at once with nothing."""
    torrent = make_torrent([(("a",), payload(40_000, 1)), (("b",), payload(9_000, 2))], pad=True)
    pads = [i for i, f in enumerate(torrent.files) if f.pad]
    real = [i for i, f in enumerate(torrent.files) if not f.pad]
    assert pads and len(real) == 2
    assert check_files(real, torrent) == tuple(real)
    assert files_refusal(real, torrent) is None
    with pytest.raises(InvalidJobRequest, match=f"file {pads[0]} is a pad file"):
        check_files([real[0], pads[0]], torrent)
    with pytest.raises(InvalidJobRequest, match="out of range"):
        check_files([len(torrent.files)], torrent)


def test_newest_first_follows_every_job_that_comes_or_goes() -> None:
    table = JobTable([record("a", created_at=1.0, state=JobState.CANCELLED)])
    assert [r.id for r in table.newest_first()] == ["a"]
    table.add(record("b", "cd" * 20, created_at=2.0))
    assert [r.id for r in table.newest_first()] == ["b", "a"]
    c = record("c", "ef" * 20, created_at=3.0)
    table.add(c)
    listed = table.newest_first()
    listed.clear()  # the caller's copy: the table's order is not changed by it
    assert [r.id for r in table.newest_first()] == ["c", "b", "a"]
    table.discard(c)
    assert [r.id for r in table.newest_first()] == ["b", "a"]
    table.remove("a")
    assert [r.id for r in table.newest_first()] == ["b"]
    assert len(table) == 1 and "b" in table


def test_newest_first_kept_in_place_as_jobs_come_and_go_in_any_order() -> None:
    """The order is kept without a sort of every job at each add (a bulk add asked for lists
    meanwhile): a job made earlier than the newest, one made at the same time (the order added
    tells them apart), a removed one from the middle — each as a fresh sort would place it."""
    rng = random.Random(47)
    table = JobTable([record(f"h{n}", f"{n:040x}", created_at=float(n % 7), state=JobState.COMPLETED)
                      for n in range(20)])
    added: list[str] = []

    def truth() -> list[str]:  # (a fresh sort: newest made first, the last added first among ties)
        fresh = sorted(table.view(), key=lambda r: (r.created_at, table._order[r.id]), reverse=True)
        return [r.id for r in fresh]

    assert table._oldest is not None  # (the load's order, not sorted again at the first list)
    assert [r.id for r in table.newest_first()] == truth()
    for n in range(300):
        if added and rng.random() < 0.3:
            gone = added.pop(rng.randrange(len(added)))
            rec = table.get(gone)
            assert rec is not None
            table.discard(rec) if rng.random() < 0.5 else table.remove(gone)
        else:
            created = rng.choice([30.0 + n, float(rng.randrange(40)), 5.0])  # newest, any, a tie
            table.add(record(f"j{n}", f"{n + 100:040x}", created_at=created))
            added.append(f"j{n}")
        assert table._oldest is not None  # (kept in place, not dropped for a sort)
        assert [r.id for r in table.newest_first()] == truth()
    assert [r.id for r in table.newest_first(JobState.COMPLETED)] == [i for i in truth() if i.startswith("h")]


def walked(table: JobTable) -> tuple[dict[JobState, int], int, int]:
    """The unfinished jobs' totals, the long way (a walk over every one of them)."""
    counts = dict.fromkeys(JobState, 0)
    down = up = 0
    for rec in table.unfinished():
        counts[rec.state] += 1
        down += rec.downloaded
        up += rec.uploaded
    return counts, down, up


def test_the_table_keeps_the_unfinished_jobs_totals_as_their_records_change() -> None:
    """Per state and in bytes, what the service's stats read each second instead of walking
    every unfinished job: right after every change it is told of (a job comes, changes state
    or counters, finishes, is discarded or forgotten), whatever the order."""
    rng = random.Random(5)
    running = [s for s in JobState if s not in (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED)]
    loaded = [record(f"r{n}", info_hash=f"{n:040x}", state=rng.choice(list(JobState))) for n in range(30)]
    for rec in loaded:
        rec.downloaded, rec.uploaded = rng.randrange(10_000), rng.randrange(1_000)
    table = JobTable(loaded)
    assert table.unfinished_totals() == walked(table)
    made = 30
    for _ in range(2000):
        unfinished = list(table.unfinished())
        action = rng.choice(["add", "state", "bytes", "finish", "discard", "remove"])
        if action == "add" or not unfinished:
            rec = record(f"r{made}", info_hash=f"{made:040x}", state=rng.choice(running))
            rec.downloaded = rng.randrange(10_000)
            made += 1
            table.add(rec)
        elif action == "state":
            rec = rng.choice(unfinished)
            rec.state = rng.choice(running)
            table.changed(rec)
        elif action == "bytes":
            rec = rng.choice(unfinished)
            rec.downloaded += rng.randrange(10_000)
            rec.uploaded += rng.randrange(1_000)
            table.changed(rec)
        elif action == "finish":
            rec = rng.choice(unfinished)
            rec.state = rng.choice([JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED])
            table.changed(rec)
            table.finished(rec)
            table.changed(rec)  # (a finished job told again: no longer counted here)
        elif action == "discard":
            table.discard(rng.choice(unfinished))
        else:
            gone = [r for r in table.view() if r.state in (JobState.COMPLETED, JobState.FAILED)]
            if gone:
                table.remove(rng.choice(gone).id)
        assert table.unfinished_totals() == walked(table), action


def test_path_claims_find_a_file_another_job_writes_and_forget_a_job_released() -> None:
    claims = PathClaims()
    claims.claim("a", claimed_paths("/dl", [["pair", "a.bin"], ["pair", ".pad", "1"], ["pair", "b.bin"]],
                                    pads=[1]))
    assert claims.overlap("b", ["/dl/other/a.bin"]) is None
    clash = Overlap("/dl/pair/b.bin", "a", "/dl/pair/b.bin")
    assert claims.overlap("b", ["/dl/x", "/dl/pair/b.bin"]) == clash
    assert claims.overlap("a", ["/dl/pair/b.bin"]) is None  # (its own file)
    assert claims.overlap("b", ["/dl/pair/.pad/1"]) is None  # (a pad file is never written)
    assert claims.overlap("b", ["/dl/pair"]) == Overlap("/dl/pair", "a", "/dl/pair/a.bin")  # its folder
    assert claims.overlap("b", ["/dl/pair/a.bin/x"]) == Overlap("/dl/pair/a.bin/x", "a", "/dl/pair/a.bin")
    claims.claim("a", ["/dl/moved/a.bin"])  # (claims anew: the old paths are free)
    assert claims.overlap("b", ["/dl/pair/b.bin", "/dl/pair"]) is None
    claims.release("a")
    assert claims.overlap("b", ["/dl/moved/a.bin", "/dl/moved"]) is None and "a" not in claims


def test_the_table_keeps_each_owners_jobs_as_they_come_and_go() -> None:
    """A user's quotas are counted over their jobs alone (``of_owner``), not every job."""
    def owned(job_id: str, owner: str, created_at: float) -> JobRecord:
        rec = record(job_id, info_hash=job_id * 20, created_at=created_at)
        rec.options = dataclasses.replace(rec.options, owner=owner)
        return rec

    table = JobTable([owned("a", "alice", 1.0), owned("b", "bob", 2.0), owned("c", "alice", 3.0)])
    assert [r.id for r in table.of_owner("alice")] == ["a", "c"]
    d, e = owned("d", "alice", 4.0), owned("e", "", 5.0)
    table.add(d)
    table.add(e)
    assert [r.id for r in table.of_owner("alice")] == ["a", "c", "d"]
    assert [r.id for r in table.of_owner("")] == ["e"] and table.of_owner("carol") == []
    table.discard(d)  # (a start that failed)
    c = table.get("c")
    assert c is not None
    c.state = JobState.CANCELLED
    table.finished(c)
    table.remove("c")  # (forgotten from the history)
    assert [r.id for r in table.of_owner("alice")] == ["a"]
    table.remove("b")
    assert table.of_owner("bob") == [] and "bob" not in table._of_owner  # (no empty index kept)


def test_the_table_counts_what_moved_this_run_and_keeps_it_when_a_job_leaves() -> None:
    """``transferred``: what the records' counters grew by since the table was made (not what
    they held when loaded), kept when a job finishes or is forgotten; ``added``: the jobs added,
    not one whose start failed."""
    loaded = record("a", info_hash="a" * 40)
    loaded.downloaded, loaded.uploaded = 1000, 50
    table = JobTable([loaded])
    assert (table.transferred, table.added) == ([0, 0, 0], 0)
    loaded.count(1500, 80, now=1.0)
    table.changed(loaded)
    new, failed = record("b", info_hash="b" * 40), record("c", info_hash="c" * 40)
    table.add(new)
    table.add(failed)
    table.discard(failed)
    new.count(300, 0, now=2.0, corrupt=200)  # (bytes wasted: among those downloaded)
    table.changed(new)
    assert (table.transferred, table.added) == ([800, 30, 200], 1)
    new.count(400, 7, now=3.0, wasted=10, corrupt=200)
    new.state = JobState.COMPLETED
    table.finished(new)  # (its last bytes counted as it finishes)
    table.remove("b")
    assert table.transferred == [900, 37, 210] and table.finished_totals()[1:] == (0, 0)
