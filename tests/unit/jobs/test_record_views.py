"""Views of jobs shown from their records while they wait (their check, the service's start):
``record_stamp`` says what ``record_job`` reads, and the service keeps such a view while its
stamp is the same, so a list of thousands of waiting jobs makes none of their views again."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import anyio
import pytest

from tests.unit.jobs.test_jobs_checks import _service
from tests.unit.jobs.test_jobs_scale import all_seeding, checks_in_threads, seeds
from tests.unit.jobs.test_jobs_store import record
from torrent_engine.jobs import JobFeatures, JobResult, JobStall, JobState, JobTracker
from torrent_engine.jobs.intake import checks
from torrent_engine.jobs.snapshot import record_job, record_stamp
from torrent_engine.jobs.store import JobRecord, PendingMove

pytestmark = pytest.mark.anyio


def _full_record() -> JobRecord:
    return record(file_paths=(("a",), ("b",), ("pad",)), file_sizes=(10, 20, 5), pad_files=(2,),
                  file_priorities=(1, 0, 1), file_done=(4, 0, 0), total_size=10, done_size=4,
                  trackers=("http://127.0.0.1:1/a",), number=3, seeding_time=61.0)


# a value other than ``_full_record``'s for each field of a job record (a field added to the
# record must be given one here: then this test says whether the stamp must take it)
CHANGED: dict[str, object] = {
    "id": "fedcba9876543210", "info_hash": "cd" * 20, "name": "y", "source": "torrent",
    "options": None, "state": JobState.QUEUED, "created_at": 1.0, "updated_at": 2.0,
    "completed_at": 3.0, "error": "bad", "result": JobResult(1, 2, 3.0, 4.0, None),
    "total_size": 11, "done_size": 5, "downloaded": 7, "uploaded": 8, "file_priorities": (1, 1, 1),
    "created_dirs": ("x",), "preexisting": ("a",), "file_paths": (("c",), ("b",), ("pad",)),
    "file_sizes": (11, 20, 5), "pad_files": (), "delete_pending": True,
    "features": JobFeatures(rename="z"), "queue_position": 9, "seeding_time": 62.0, "idle_seeding_time": 63.0,
    "active_at": 64.0,
    "seen_complete_at": 65.0,
    "downloading_time": 5.0, "number": 4, "file_done": (5, 0, 0), "trackers": ("http://127.0.0.1:2/b",),
    "moving": PendingMove("/a", "/b", ("a",)), "missing_files": ("a",), "renamed": {0: ("c",)},
    "partial": (0,), "partial_suffix": ".part",
    "tracker_tiers": (("http://127.0.0.1:3/c",),), "web_seeds": ("http://127.0.0.1:4/",),
    "torrent_length": 36, "private": True, "piece_length": 16384, "created_by": "me",
    "creation_date": 5, "torrent_comment": "hi", "dedup_bytes": 6, "bandwidth_group": "g", "mutable_seq": 2,
    "unmoved": JobStall(reason="not_moved", message="m", since=1.0), "program_due": True,
    "stop_condition": "files_checked", "wasted": 7, "corrupt": 16384,
    "before_run": (1, 2), "info_hash_v2": "ab" * 32, "started_at": 65.0, "waits_for_space": True,
}


def test_every_field_that_changes_a_view_changes_its_stamp() -> None:
    base = _full_record()
    CHANGED["options"] = dataclasses.replace(base.options, save_path="/dl/y")
    names = {f.name for f in dataclasses.fields(JobRecord)}
    assert names <= CHANGED.keys(), f"give a changed value for {sorted(names - CHANGED.keys())}"
    heard = {"http://127.0.0.1:1/a": JobTracker(url="http://127.0.0.1:1/a", status="working", message="",
                                                peers=2)}
    view, stamp = record_job(base, heard, queue_position=3), record_stamp(base, heard, None, 3)
    assert record_stamp(copy.copy(base), dict(heard), None, 3) == stamp  # (equal inputs: equal stamps)
    shown = 0
    for name in sorted(names):
        other = copy.copy(base)
        setattr(other, name, CHANGED[name])
        if record_job(other, heard, queue_position=3) != view:
            shown += 1
            assert record_stamp(other, heard, None, 3) != stamp, f"{name} changes the view, not the stamp"
    assert shown > 20  # (most of what a record holds is shown)
    news = {**heard, "http://127.0.0.1:1/a": dataclasses.replace(heard["http://127.0.0.1:1/a"], peers=3)}
    for args in ((news, None, 3), (heard, JobState.CHECKING, 3), (heard, None, 4), (None, None, 3)):
        assert record_stamp(base, *args) != stamp


async def test_a_list_of_jobs_waiting_for_their_check_makes_their_views_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Jobs whose data is on disk wait for their check as records: listed twice with nothing
    changed, the same view objects; one renamed, or moved in the queue, a new view of it (and
    of those it moved past); once checked, each listed seeding."""
    torrents = seeds(tmp_path / "dl", 4)
    release = anyio.Event()
    real = checks.check_on_disk
    began = anyio.Event()

    def check_on_disk(manager: object, info_hash: str, *args: object) -> object:
        anyio.from_thread.run_sync(began.set)
        anyio.from_thread.run(release.wait)  # (the first holds the one slot: the others wait)
        return real(manager, info_hash, *args)

    monkeypatch.setattr(checks, "check_on_disk", check_on_disk)
    checks_in_threads(monkeypatch)  # (each check seen by the hook)
    async with _service(tmp_path, limit=1) as jobs:
        ids = [r[0].id for r in await jobs.add_many(torrents) if isinstance(r, tuple)]
        with anyio.fail_after(10):
            await began.wait()
        first = {j.id: j for j in jobs.list()}
        waiting = [i for i in ids if first[i].state is JobState.CHECKING and jobs.manager.get(
            first[i].info_hash) is None]
        assert len(waiting) >= 3
        again = {j.id: j for j in jobs.list()}
        assert all(again[i] is first[i] for i in waiting)  # (nothing changed: the views kept)
        renamed = waiting[-1]
        await jobs.set_features([renamed], rename="another name")
        third = {j.id: j for j in jobs.list()}
        assert third[renamed] is not first[renamed] and third[renamed].name == "another name"
        assert all(third[i] is first[i] for i in waiting[:-1])
        await jobs.move_in_queue([renamed], "top", while_off=True)
        fourth = {j.id: j for j in jobs.list()}
        assert fourth[renamed].queue_position < third[renamed].queue_position
        assert fourth[renamed] is not third[renamed]
        assert all(fourth[i].queue_position == third[i].queue_position for i in waiting[:-1]
                   if fourth[i] is third[i])
        release.set()
        await all_seeding(jobs, ids)
        listed = {j.id: j for j in jobs.list()}  # (their new state shown: no view kept of before)
        assert all(listed[i].state is JobState.SEEDING and listed[i].progress == 1.0 for i in ids)
