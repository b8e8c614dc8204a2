"""Stop conditions in the job service: a job stops (is paused, as its user would pause it) once
its data was checked or its metadata came, keeps a pending condition across a restart, and a
user's pause before then ends it."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from tests.unit.jobs.test_jobs_features import magnet, seed_data, service, two_files, wait_state
from torrent_engine.jobs import AddOptions, InvalidJobRequest, JobState
from torrent_engine.jobs.store import JobRecord

pytestmark = pytest.mark.anyio


async def test_a_job_stops_once_its_files_are_checked_whether_they_are_there_or_not(tmp_path: Path) -> None:
    there, absent = two_files("there"), two_files("absent")
    seed_data(tmp_path / "dl", there)
    async with service(tmp_path, seed=True) as jobs:
        one, _ = await jobs.add(there, AddOptions(stop_condition="files_checked"))
        two, _ = await jobs.add(absent, AddOptions(save_path="elsewhere", stop_condition="files_checked"))
        for job in (one, two):
            with anyio.fail_after(15):  # (paused as its user pauses it: kept so)
                while not (now := jobs.get(job.id)).options.paused or now.state is not JobState.PAUSED:
                    await anyio.sleep(0.02)
        assert jobs.get(one.id).progress == 1.0 and jobs.get(two.id).progress == 0.0
        assert jobs.manager.get(absent.info_hash) is None or jobs.manager.get(absent.info_hash).paused
        await jobs.resume(one.id)  # (stopped once: it runs on when resumed)
        await wait_state(jobs, one.id, JobState.SEEDING)
    async with service(tmp_path, seed=True) as again:  # (met: paused, not stopped again)
        await wait_state(again, one.id, JobState.SEEDING)
        assert again.get(two.id).state is JobState.PAUSED


async def test_a_pending_condition_is_kept_across_a_restart_and_a_pause_ends_it(tmp_path: Path) -> None:
    async with service(tmp_path) as jobs:
        job, _ = await jobs.add(magnet("a"), AddOptions(stop_condition="metadata_received"))
        assert jobs.get(job.id).state is JobState.FETCHING_METADATA
        other, _ = await jobs.add(magnet("b"), AddOptions(stop_condition="files_checked"))
        await jobs.pause(other.id)  # (paused before: no further by itself, as qBittorrent clears it)
        await jobs.resume(other.id)
    async with service(tmp_path) as again:
        records = {r.id: r for r in again._run.jobs}  # (what the store kept)
        assert records[job.id].stop_condition == "metadata_received"
        assert records[other.id].stop_condition == ""
        assert again.get(job.id).state is JobState.FETCHING_METADATA


async def test_the_setting_is_the_default_and_an_add_says_otherwise(tmp_path: Path) -> None:
    torrent, own = two_files("given"), two_files("own")
    async with service(tmp_path) as jobs:
        await jobs.update_settings(stop_condition="metadata_received")
        job, _ = await jobs.add(torrent)  # (its metainfo is here: added paused)
        assert job.state is JobState.PAUSED and job.options.paused
        mine, _ = await jobs.add(own, AddOptions(stop_condition="none"))
        assert mine.state is not JobState.PAUSED
        with pytest.raises(InvalidJobRequest) as err:
            AddOptions(stop_condition="later")
        assert err.value.field == "stop_condition"
        with pytest.raises(InvalidJobRequest):
            await jobs.update_settings(stop_condition="")
    with anyio.fail_after(5):
        record = JobRecord.from_json({**_any_record(tmp_path), "stop_condition": "files_checked"})
    assert record.stop_condition == "files_checked"
    with pytest.raises(ValueError, match="stop condition"):
        JobRecord.from_json({**_any_record(tmp_path), "stop_condition": "later"})


def _any_record(tmp_path: Path) -> dict[str, object]:
    from torrent_engine.jobs.model import JobOptions
    options = JobOptions(save_path=str(tmp_path), files=None, sequential=False, paused=False, peers=(),
                         client=None, download_limit=0, upload_limit=0)
    rec = JobRecord(id="0123456789abcdef", info_hash="ab" * 20, name="x", source="torrent",
                    options=options, state=JobState.QUEUED, created_at=1.0, updated_at=1.0)
    return dict(rec.to_json())  # type: ignore[arg-type]


async def test_a_job_restarted_before_its_check_ended_stops_once_its_new_session_checked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A recheck replaces the session whose check a stop condition waited for: the new session,
    started so, stops the job once its own check is over."""
    from tests.spies import hold_checks

    torrent = two_files("there")
    seed_data(tmp_path / "dl", torrent)
    held = hold_checks(monkeypatch, first=True)
    held.names.add("there")
    async with service(tmp_path, seed=True) as jobs:
        job, _ = await jobs.add(torrent, AddOptions(stop_condition="files_checked"))
        with anyio.fail_after(10):
            await held.checking.wait()
        first = jobs.manager.get(torrent.info_hash)
        await jobs.recheck(job.id)
        assert jobs.manager.get(torrent.info_hash) is not first  # (replaced)
        held.release.set()
        with anyio.fail_after(15):
            while not (now := jobs.get(job.id)).options.paused or now.state is not JobState.PAUSED:
                await anyio.sleep(0.02)
        assert now.progress == 1.0
