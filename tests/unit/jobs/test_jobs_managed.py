"""Automatic management (``jobs/organising/managed.py``): a job so managed is saved where its
category says and moves when that changes, as qBittorrent's automatic torrent management."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.jobs.test_jobs_features import seed_data, service, two_files, wait_state
from torrent_engine.jobs import InvalidJobRequest, JobFeatures, JobService, JobState

pytestmark = pytest.mark.anyio


def where(jobs: JobService, job_id: str) -> Path:
    return Path(jobs.get(job_id).options.save_path)


async def seeding_in(jobs: JobService, root: Path, folder: str, category: str = "") -> str:
    """A job of ``two_files`` seeding from ``root/folder`` (its data put there first)."""
    torrent = two_files()
    seed_data(root / folder, torrent)
    job, _ = await jobs.add(torrent, save_path=folder, features=JobFeatures(category=category))
    await wait_state(jobs, job.id, JobState.SEEDING)
    return job.id


async def test_a_job_turned_to_automatic_management_moves_to_its_category_and_follows_it(
        tmp_path: Path) -> None:
    dl = (tmp_path / "dl").resolve()
    async with service(tmp_path, seed=True) as jobs:
        await jobs.create_category("tv", "")  # (no save path: a folder of its name in the root)
        await jobs.create_category("movies", "films")
        job_id = await seeding_in(jobs, dl, "old", "tv")
        [job] = await jobs.set_features([job_id], auto_managed=True)
        assert job.features.auto_managed and where(jobs, job_id) == dl / "tv"
        assert (dl / "tv" / "pair" / "b.bin").is_file() and not (dl / "old" / "pair").exists()
        await wait_state(jobs, job_id, JobState.SEEDING)  # (verified again where it now is)
        [job] = await jobs.set_features([job_id], category="movies")
        assert where(jobs, job_id) == dl / "films" and (dl / "films" / "pair" / "a.bin").is_file()
        await jobs.set_features([job_id], category="")
        assert where(jobs, job_id) == dl and (dl / "pair" / "a.bin").is_file()
        await wait_state(jobs, job_id, JobState.SEEDING)
    async with service(tmp_path, seed=True) as again:  # (kept with the job)
        assert again.get(job_id).features.auto_managed and where(again, job_id) == dl


async def test_with_relocation_off_a_category_change_leaves_the_job_managed_by_hand(tmp_path: Path) -> None:
    dl = (tmp_path / "dl").resolve()
    async with service(tmp_path, seed=True) as jobs:
        await jobs.create_category("tv", "")
        await jobs.create_category("movies", "")
        job_id = await seeding_in(jobs, dl, "tv", "tv")
        [job] = await jobs.set_features([job_id], auto_managed=True)  # (there already: nothing moves)
        assert where(jobs, job_id) == dl / "tv"
        await jobs.update_settings(relocate_on_category_change=False)
        [job] = await jobs.set_features([job_id], category="movies")
        assert job.features.category == "movies" and not job.features.auto_managed
        assert where(jobs, job_id) == dl / "tv" and (dl / "tv" / "pair" / "a.bin").is_file()


async def test_a_category_path_edit_moves_its_managed_jobs_only_when_the_setting_says(tmp_path: Path) -> None:
    dl = (tmp_path / "dl").resolve()
    async with service(tmp_path, seed=True) as jobs:
        await jobs.create_category("tv", "")
        managed = await seeding_in(jobs, dl, "tv", "tv")
        await jobs.set_features([managed], auto_managed=True)
        await jobs.edit_category("tv", "shows")  # (off by default, as qBittorrent's): by hand now
        assert where(jobs, managed) == dl / "tv" and not jobs.get(managed).features.auto_managed
        await jobs.set_features([managed], auto_managed=True)
        assert where(jobs, managed) == dl / "shows" and (dl / "shows" / "pair" / "a.bin").is_file()
        await wait_state(jobs, managed, JobState.SEEDING)
        await jobs.update_settings(relocate_on_category_path_change=True)
        await jobs.edit_category("tv", "series/hd")
        assert where(jobs, managed) == dl / "series" / "hd" and jobs.get(managed).features.auto_managed
        assert (dl / "series" / "hd" / "pair" / "b.bin").is_file()
        await wait_state(jobs, managed, JobState.SEEDING)
        await jobs.remove_categories(["tv"])  # (no category now: the root)
        assert jobs.get(managed).features.category == "" and where(jobs, managed) == dl
        assert (dl / "pair" / "b.bin").is_file()


async def test_a_location_given_by_hand_ends_automatic_management(tmp_path: Path) -> None:
    dl = (tmp_path / "dl").resolve()
    async with service(tmp_path, seed=True) as jobs:
        await jobs.create_category("tv", "")
        job_id = await seeding_in(jobs, dl, "old", "tv")
        await jobs.set_features([job_id], auto_managed=True)
        await wait_state(jobs, job_id, JobState.SEEDING)
        moved = await jobs.set_location(job_id, "elsewhere")
        assert moved.options.save_path == str(dl / "elsewhere") and not moved.features.auto_managed
        await wait_state(jobs, job_id, JobState.SEEDING)
        await jobs.set_features([job_id], category="")  # (by hand: it stays)
        assert where(jobs, job_id) == dl / "elsewhere"


async def test_a_managed_add_is_saved_where_its_category_says_and_takes_no_save_path(tmp_path: Path) -> None:
    dl = (tmp_path / "dl").resolve()
    async with service(tmp_path) as jobs:
        await jobs.create_category("music", "")
        job, _ = await jobs.add(two_files(), paused=True,
                                features=JobFeatures(category="music", auto_managed=True))
        assert where(jobs, job.id) == dl / "music" and job.features.auto_managed
        with pytest.raises(InvalidJobRequest) as info:
            await jobs.add(two_files("other"), paused=True, save_path="mine",
                           features=JobFeatures(auto_managed=True))
        assert info.value.field == "save_path"
        assert len(jobs.list()) == 1
