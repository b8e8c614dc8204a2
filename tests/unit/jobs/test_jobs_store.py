"""Job records on disk: round trip, damage tolerance, temp-file clean-up, leases."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from torrent_engine.jobs import JobOptions, JobResult, JobState
from torrent_engine.jobs.store import JobRecord, JobStore


def record(job_id: str = "0123456789abcdef", **kw: object) -> JobRecord:
    options = JobOptions(save_path="/dl/x", files=(0, 2), sequential=True, paused=False,
                         peers=(("127.0.0.1", 6881), ("::1", 7000)), client="c" * 32,
                         download_limit=1000, upload_limit=0)
    rec = JobRecord(id=job_id, info_hash="ab" * 20, name="x", source="magnet:?xt=urn:btih:" + "ab" * 20,
                    options=options, state=JobState.DOWNLOADING, created_at=10.0, updated_at=11.5)
    for key, value in kw.items():
        setattr(rec, key, value)
    return rec


def test_round_trip(tmp_path: Path) -> None:
    store = JobStore(tmp_path)
    rec = record(result=JobResult(downloaded=5, uploaded=1, duration=2.0, average_rate=2.5, error="boom"),
                 state=JobState.FAILED, completed_at=12.0, error="boom", file_priorities=[4, 0, 7],
                 created_dirs=["/dl/x"], preexisting=["x/a"], file_paths=[["x", "a"], ["x", "b"], ["x", "c"]],
                 file_sizes=[1, 2, 3], pad_files=[1], total_size=4, done_size=3, downloaded=5, uploaded=1)
    store.save(rec)
    loaded, lost = store.load_all()
    assert lost == [] and loaded == [rec]


@pytest.mark.parametrize("damage", [
    lambda raw: raw[: len(raw) // 2],  # truncated
    lambda raw: b"\x00" * len(raw),  # zeroed (a crash on some file systems)
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
    path = tmp_path / "jobs" / f"{bad.id}.json"
    path.write_bytes(damage(path.read_bytes()))  # type: ignore[operator]
    with caplog.at_level(logging.WARNING):
        loaded, lost = store.load_all()
    assert loaded == [good]
    assert [Path(f).name for f, _ in lost] == [path.name]
    assert path.name in caplog.text


def test_a_record_under_another_name_is_lost(tmp_path: Path) -> None:
    store = JobStore(tmp_path)
    store.save(record("1" * 16))
    (tmp_path / "jobs" / f"{'1' * 16}.json").rename(tmp_path / "jobs" / f"{'3' * 16}.json")
    loaded, lost = store.load_all()
    assert loaded == [] and "does not match" in lost[0][1]


def test_leftover_temp_files_are_removed(tmp_path: Path) -> None:
    store = JobStore(tmp_path)
    store.save(record())
    leftover = tmp_path / "jobs" / "0123456789abcdef.json.k3j4.tmp"
    leftover.write_bytes(b"{")
    loaded, lost = store.load_all()
    assert len(loaded) == 1 and lost == [] and not leftover.exists()


def test_leases_round_trip_and_a_bad_file_drops_them(tmp_path: Path) -> None:
    store = JobStore(tmp_path)
    store.save_leases({"a" * 32: (30.0, 1000.0)})
    assert JobStore(tmp_path).load_leases() == {"a" * 32: (30.0, 1000.0)}
    (tmp_path / "leases.json").write_bytes(b"[")
    assert store.load_leases() == {}


def test_no_state_dir_persists_nothing(tmp_path: Path) -> None:
    store = JobStore(None)
    store.save(record())
    assert store.load_all() == ([], [])


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
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / f"{'4' * 16}.json").write_text("[" * 100_000 + "]" * 100_000)
    loaded, lost = store.load_all()
    assert loaded == [] and len(lost) == 1
