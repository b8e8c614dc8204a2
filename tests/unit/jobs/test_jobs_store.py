"""The job store (SQLite): round trip, damage tolerance, leases, the migration from JSON files."""

from __future__ import annotations

import dataclasses
import enum
import gc
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from torrent_engine.jobs import JobOptions, JobResult, JobState
from torrent_engine.jobs.snapshot import learn_layout
from torrent_engine.jobs.store import JobRecord, JobStore, JobStoreError, counters
from torrent_engine.storage.create import create_torrent


def record(job_id: str = "0123456789abcdef", **kw: object) -> JobRecord:
    options = JobOptions(save_path="/dl/x", files=(0, 2), sequential=True, paused=False,
                         peers=(("127.0.0.1", 6881), ("::1", 7000)), client="c" * 32,
                         download_limit=1000, upload_limit=0)
    rec = JobRecord(id=job_id, info_hash="ab" * 20, name="x", source="magnet:?xt=urn:btih:" + "ab" * 20,
                    options=options, state=JobState.DOWNLOADING, created_at=10.0, updated_at=11.5)
    for key, value in kw.items():
        setattr(rec, key, value)
    return rec


def _walked_below(rec: JobRecord) -> list[object]:
    """What the collector walks below ``rec`` besides its options and features (those are
    objects of their own) and its state (one object for every job in that state): each tracked
    object reachable from its fields."""
    out: list[object] = []
    seen = {id(rec.options), id(rec.features)}
    todo = [v for v in gc.get_referents(rec) if not isinstance(v, type)]
    while todo:
        obj = todo.pop()
        if id(obj) in seen or not gc.is_tracked(obj) or isinstance(obj, enum.Enum):
            continue
        seen.add(id(obj))
        out.append(obj)
        todo.extend(v for v in gc.get_referents(obj) if not isinstance(v, type))
    return out


def test_a_record_gives_the_collector_nothing_to_walk_beyond_its_options(tmp_path: Path) -> None:
    """A record's files, priorities, folders and trackers are tuples of strings and numbers,
    which the collector stops tracking once a collection has looked at them: the daemon's sweep
    walks every tracked object it holds (nine lists a record, two thirds of a dormant seed's
    objects, were 270 000 of 861 000 at 30 000 torrents: bench/RESULTS.md). So both as an add
    learns the torrent's layout and as a restart reads the record back."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a").write_bytes(b"a" * 40_000)
    (tmp_path / "data" / "b").write_bytes(b"b" * 1_000)
    torrent = create_torrent(tmp_path / "data", piece_length=16 * 1024, trackers=[["http://127.0.0.1:1/a"]])
    learnt = record()
    learn_layout(learnt, torrent)
    learnt.created_dirs, learnt.preexisting, learnt.missing_files = ("/dl/x",), ("data/a",), ("data/b",)
    learnt.file_done, learnt.renamed = (1, 2, 0), {1: ("data", "c")}
    store = JobStore(tmp_path / "state")
    store.save(learnt)
    (loaded,), lost = store.load_all()
    assert lost == [] and loaded == learnt
    assert loaded.file_paths is not None and len(loaded.file_paths) == len(torrent.files) >= 3  # (a pad file)
    # (CPython stops tracking a tuple when it finds its items untracked: a tuple of tuples may
    # take a second collection, as the daemon's next sweep)
    kept = counters(loaded)  # (what the writer keeps of each job: its state by value)
    gc.collect()
    gc.collect()
    assert _walked_below(learnt) == [] and _walked_below(loaded) == []
    assert not gc.is_tracked(kept)


def test_a_complete_record_notes_its_files_bytes_for_an_unwanted_file_not_for_a_pad_file() -> None:
    """``keeps_file_done``: a complete job's record notes each file's bytes when it leaves a file
    undownloaded (that file may be incomplete, shown so and named under the suffix without a
    session); pad files, whose priority is always 0, are no such file."""
    done = {"file_priorities": (4, 0, 4), "pad_files": (1,), "done_size": 10, "total_size": 10}
    assert not record(**done).skips_files and not record(**done).keeps_file_done
    unwanted = {**done, "file_priorities": (4, 0, 0)}
    assert record(**unwanted).skips_files and record(**unwanted).keeps_file_done
    assert not record(**{**unwanted, "done_size": 5}).keeps_file_done  # (downloading: its session's)
    paused = record(**{**done, "done_size": 5})
    paused.options = dataclasses.replace(paused.options, paused=True)
    assert paused.keeps_file_done


def test_round_trip(tmp_path: Path) -> None:
    store = JobStore(tmp_path)
    rec = record(result=JobResult(downloaded=5, uploaded=1, duration=2.0, average_rate=2.5, error="boom"),
                 state=JobState.FAILED, completed_at=12.0, error="boom", file_priorities=(4, 0, 7),
                 created_dirs=("/dl/x",), preexisting=("x/a",),
                 file_paths=(("x", "a"), ("x", "b"), ("x", "c")), file_sizes=(1, 2, 3), pad_files=(1,),
                 total_size=4, done_size=3, downloaded=5, uploaded=1)
    store.save(rec)
    loaded, lost = store.load_all()
    assert lost == [] and loaded == [rec]


@pytest.mark.parametrize("damage", [
    lambda raw: raw[: len(raw) // 2],  # truncated
    lambda raw: b"\x00" * len(raw),
    lambda raw: b"",
    lambda raw: json.dumps({"version": 99}).encode(),
    lambda raw: raw.replace(b'"downloading"', b'"dancing"'),
    lambda raw: raw.replace(b'"info_hash":"abab', b'"info_hash":"zzab'),
    lambda raw: json.dumps([1, 2]).encode(),
])
def test_a_damaged_record_is_lost_alone_with_a_warning(tmp_path: Path, damage: object,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    store = JobStore(tmp_path)
    good, bad = record("1" * 16), record("2" * 16)
    store.save(good)
    store.save(bad)
    store.write(bad.id, damage(store.read(bad.id)))  # type: ignore[operator]
    with caplog.at_level(logging.WARNING):
        loaded, lost = JobStore(tmp_path).load_all()
    assert loaded == [good]
    assert [where.rpartition(":")[2] for where, _ in lost] == [bad.id]
    assert bad.id in caplog.text and "job lost" in caplog.text


def test_a_record_under_another_key_is_lost(tmp_path: Path) -> None:
    store = JobStore(tmp_path)
    store.write("3" * 16, JobStore.encode(record("1" * 16)))
    loaded, lost = store.load_all()
    assert loaded == [] and "does not match" in lost[0][1]


def test_changes_replace_and_delete_in_the_database(tmp_path: Path) -> None:
    store = JobStore(tmp_path)
    store.save_many([record("1" * 16), record("2" * 16), record("3" * 16)])
    store.save(record("1" * 16, name="renamed"))
    store.delete_many(["2" * 16])
    store.delete("3" * 16)
    store.close()
    loaded, lost = JobStore(tmp_path).load_all()
    assert lost == [] and [r.name for r in loaded] == ["renamed"]


def test_leases_round_trip(tmp_path: Path) -> None:
    store = JobStore(tmp_path)
    store.save_leases({"a" * 32: (30.0, 1000.0), "b" * 32: (5.0, 7.0)})
    store.save_leases({"a" * 32: (30.0, 1000.0)})
    assert JobStore(tmp_path).load_leases() == {"a" * 32: (30.0, 1000.0)}


def test_no_state_dir_persists_nothing(tmp_path: Path) -> None:
    store = JobStore(None)
    store.save(record())
    store.save_leases({"a" * 32: (30.0, 1000.0)})
    assert store.load_all() == ([], []) and store.load_leases() == {} and store.read("0" * 16) is None
    assert list(tmp_path.iterdir()) == []


def test_a_damaged_database_is_a_job_store_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "jobs.sqlite3").write_bytes(b"not a database, " * 100)
    with pytest.raises(JobStoreError, match="jobs.sqlite3"):
        JobStore(tmp_path).load_all()


# -- the one-way migration from one JSON file per job ------------------------------------------
def json_state(folder: Path, records: list[JobRecord]) -> None:
    """A state folder as the JSON store wrote it."""
    (folder / "jobs").mkdir(parents=True)
    for rec in records:
        (folder / "jobs" / f"{rec.id}.json").write_bytes(JobStore.encode(rec))
    (folder / "leases.json").write_text(json.dumps({"c" * 32: {"ttl": 60.0, "expires_at": 99.0}}))


def test_a_json_state_folder_migrates_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    active = record("1" * 16)
    done = record("2" * 16, state=JobState.CANCELLED, completed_at=12.0)
    json_state(tmp_path, [active, done])
    (tmp_path / "jobs" / f"{'5' * 16}.json").write_text("{")  # damaged: reported, kept aside
    (tmp_path / "jobs" / f"{'6' * 16}.json.x1.tmp").write_text("{")  # an interrupted write
    store = JobStore(tmp_path)
    with caplog.at_level(logging.WARNING):
        loaded, lost = store.load_all()
    assert store.migrated == 2
    assert sorted(loaded, key=lambda r: r.id) == [active, done]
    assert [Path(f).name for f, _ in lost] == [f"{'5' * 16}.json"]
    assert store.load_leases() == {"c" * 32: (60.0, 99.0)}
    assert not (tmp_path / "jobs").exists() and not (tmp_path / "leases.json").exists()
    kept = tmp_path / "jobs.json-migrated"
    assert sorted(p.name for p in kept.iterdir()) == sorted(
        [f"{'1' * 16}.json", f"{'2' * 16}.json", f"{'5' * 16}.json"])
    assert (tmp_path / "leases.json-migrated").is_file()
    store.save(record("1" * 16, name="changed after"))
    store.close()
    again = JobStore(tmp_path)
    loaded, lost = again.load_all()
    assert again.migrated is None and lost == []  # no second migration
    assert sorted(r.name for r in loaded) == ["changed after", "x"]


def test_a_crash_between_commit_and_rename_only_renames_at_the_next_start(tmp_path: Path) -> None:
    json_state(tmp_path, [record("1" * 16), record("2" * 16)])
    store = JobStore(tmp_path)
    store.load_all()
    store.delete("2" * 16)  # a change made after the migration
    store.close()
    # as if killed after the commit, before the renames: the JSON files are still in place
    (tmp_path / "jobs.json-migrated").rename(tmp_path / "jobs")
    (tmp_path / "leases.json-migrated").rename(tmp_path / "leases.json")
    again = JobStore(tmp_path)
    loaded, _ = again.load_all()
    assert again.migrated is None and [r.id for r in loaded] == ["1" * 16]  # not imported again
    assert not (tmp_path / "jobs").exists() and (tmp_path / "jobs.json-migrated").is_dir()


_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
_json = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)


_KEYS = sorted(record().to_json()) + [f"options.{k}" for k in record().to_json()["options"]]


@given(key=st.sampled_from(_KEYS), value=_json)
@settings(max_examples=500, deadline=None)
@example(key="total_size", value=float("inf"))
@example(key="options.peers", value=[[1e308, 1e308]])
def test_any_field_of_any_type_is_a_lost_record_or_a_valid_one(key: str, value: object) -> None:
    data = record().to_json()
    if key.startswith("options."):
        data["options"][key.removeprefix("options.")] = value
    else:
        data[key] = value
    try:
        rec = JobRecord.from_json(json.loads(json.dumps(data)))
    except ValueError:
        return  # reported as lost by load_all
    assert isinstance(rec.state, JobState) and isinstance(rec.options, JobOptions)


def test_a_deeply_nested_record_is_lost_not_a_crash(tmp_path: Path) -> None:
    store = JobStore(tmp_path)
    store.write("4" * 16, b"[" * 100_000 + b"]" * 100_000)
    loaded, lost = store.load_all()
    assert loaded == [] and len(lost) == 1


@pytest.mark.anyio
async def test_saving_every_record_at_a_stop_lets_the_loop_run_once_a_turns_work_went_by(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stop writes the records that changed, telling them by their encoding: 10 000 records
    encoded in one go held the loop 220-360 ms. The loop runs once a turn's work went by (the
    time here is a fake clock each encoding moves 1 ms on; a turn is 5 ms of work), and what is
    written is every record that changed."""
    from collections import Counter

    from tests.unit.loop_turns import counted_turns
    from torrent_engine.engine import turns as turns_module
    from torrent_engine.jobs.store import JobWriter

    class Clock:
        now = 0.0

        def perf_counter(self) -> float:
            return self.now

    clock = Clock()
    monkeypatch.setattr(turns_module, "time", clock)
    monkeypatch.setattr(turns_module, "TURN", 0.005)
    recs = [record(f"{n:016x}") for n in range(23)]
    store = JobStore(tmp_path / "state")
    writer = JobWriter(store, lambda: 0.0, lambda job_id: True)
    seen: list[int] = []  # (the loop's turn as each record is encoded)
    encode = store.encode

    async with counted_turns() as turns:
        def encoded(rec: JobRecord) -> bytes:
            clock.now += 0.001
            seen.append(turns.n)
            return encode(rec)

        store.encode = encoded  # type: ignore[method-assign]
        await writer.save_all(recs)
    # (five records a turn: 23 in five turns, the last of three)
    assert len(seen) == len(recs) and sorted(Counter(seen).values()) == [3, 5, 5, 5, 5]
    loaded, lost = store.load_all()
    assert {r.id for r in loaded} == {r.id for r in recs} and not lost


@pytest.mark.anyio
async def test_a_record_saved_with_its_torrent_is_written_in_the_same_hop_and_not_without_it(
        tmp_path: Path) -> None:
    """A new seed's torrent is kept first and its record written after it, in one worker-thread
    hop for the group (one hop an add, not two); a torrent that cannot be kept leaves its record
    unwritten (a strict save says so) while the group's other records are written."""
    import errno

    import anyio

    from torrent_engine.jobs.model import StateNotSaved
    from torrent_engine.jobs.store import JobWriter

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a").write_bytes(b"a" * 40_000)
    torrent = create_torrent(tmp_path / "data", piece_length=16 * 1024)
    store = JobStore(tmp_path / "state")
    kept: list[list[str]] = []  # (the records on disk as each group of torrents is kept)
    full = False

    def keep(torrents: list[Any]) -> None:
        kept.append(sorted(r.id for r in store.load_all()[0]))
        if full:
            raise OSError(errno.ENOSPC, "No space left on device")

    writer = JobWriter(store, lambda: 0.0, lambda job_id: True, keep)
    hops: list[str] = []
    real = anyio.to_thread.run_sync

    async def counted(func: object, *args: object, **kwargs: object) -> object:
        hops.append(getattr(func, "__name__", ""))
        return await real(func, *args, **kwargs)  # type: ignore[arg-type]

    anyio.to_thread.run_sync = counted  # type: ignore[assignment]
    try:
        async with anyio.create_task_group() as tg:
            for n in range(3):
                tg.start_soon(lambda n=n: writer.save(record(f"{n:016x}"), strict=True, metainfo=torrent))
        assert hops == ["_commit"] and kept == [[]]  # (one hop; the torrents before the records)
        assert len(store.load_all()[0]) == 3
        full = True
        async with anyio.create_task_group() as tg:
            tg.start_soon(writer.save, record("00000000000000aa"))
            with pytest.raises(StateNotSaved):
                await writer.save(record("00000000000000bb"), strict=True, metainfo=torrent)
        assert hops == ["_commit"] * 2
    finally:
        anyio.to_thread.run_sync = real  # type: ignore[assignment]
    assert sorted(r.id for r in store.load_all()[0]) == [f"{n:016x}" for n in range(3)] + ["00000000000000aa"]
