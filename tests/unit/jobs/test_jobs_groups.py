"""Bandwidth groups in the job service: kept across restarts, the jobs placed in them (their own
group first, then their category's, then their tags'), their sessions told, bad input refused by
field."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from tests.unit.jobs.test_jobs_features import magnet, service
from torrent_engine.jobs import InvalidJobRequest, JobConflict, JobFeatures, JobNotFound, JobService
from torrent_engine.jobs.tuning.groups import GroupSettings, group_of

pytestmark = pytest.mark.anyio


def test_a_jobs_own_group_wins_then_its_category_then_its_tags() -> None:
    groups = [GroupSettings("a", tags=("hd",)), GroupSettings("b", categories=("films",), tags=("hd",)),
              GroupSettings("c", categories=("films",))]
    assert group_of(groups, "c", "films", ("hd",)) == "c"
    assert group_of(groups, "", "films", ("hd",)) == "b"  # (the first by name that takes the category)
    assert group_of(groups, "", "music", ("hd",)) == "a"
    assert group_of(groups, "gone", "", ("sd",)) == ""  # (a group that no longer exists: none)


async def _placed(jobs: JobService, job_id: str, name: str) -> None:
    with anyio.fail_after(5):
        while jobs.job_bandwidth_group(job_id) != name:
            await anyio.sleep(0.01)


async def test_groups_place_jobs_tell_sessions_and_survive_a_restart(tmp_path: Path) -> None:
    async with service(tmp_path) as jobs:
        await jobs.create_category("films")
        await jobs.create_bandwidth_group("movies", weight=3, download_limit=100_000, categories=["films"])
        await jobs.create_bandwidth_group("hd", tags=["hd"], upload_limit=5000)
        film, _ = await jobs.add(magnet("a"), features=JobFeatures(category="films", tags=("hd",)))
        tagged, _ = await jobs.add(magnet("b"), features=JobFeatures(tags=("hd",)))
        plain, _ = await jobs.add(magnet("c"))
        await _placed(jobs, film.id, "movies")
        await _placed(jobs, tagged.id, "hd")
        assert jobs.job_bandwidth_group(plain.id) == ""
        session = jobs.manager.get(film.info_hash)
        assert session is not None and session.bandwidth_group == "movies"
        assert jobs.manager.shared.bandwidth.download.rates()["movies"] == 100_000
        assert jobs.bandwidth_group_members("movies") == 1

        job = await jobs.set_job_group(plain.id, "movies")  # (its own, explicitly)
        assert job.options.group == "movies" and jobs.job_bandwidth_group(plain.id) == "movies"
        await jobs.set_features([tagged.id], tags=[])  # (no tag: no group)
        await _placed(jobs, tagged.id, "")
        await jobs.update_bandwidth_group("hd", weight=2)
    async with service(tmp_path) as jobs:
        assert [g.name for g in jobs.bandwidth_groups()] == ["hd", "movies"]
        assert jobs.bandwidth_group("hd").weight == 2
        assert jobs.get(plain.id).options.group == "movies"
        assert jobs.job_bandwidth_group(plain.id) == "movies"
        assert jobs.job_bandwidth_group(film.id) == "movies"
        restored = jobs.manager.get(plain.info_hash)  # (made at the start: told its group as it was made)
        assert restored is not None and restored.bandwidth_group == "movies"
        await jobs.delete_bandwidth_group("movies")  # (the jobs that named it name none)
        assert jobs.get(plain.id).options.group == ""
        assert jobs.job_bandwidth_group(film.id) == "hd"  # (its category's group gone: its tag's)
        session = jobs.manager.get(film.info_hash)
        assert session is not None and session.bandwidth_group == "hd"


@pytest.mark.parametrize(("fields", "field"), [
    ({"weight": 0}, "weight"), ({"weight": 1001}, "weight"), ({"weight": 1.5}, "weight"),
    ({"weight": True}, "weight"), ({"download_limit": -1}, "download_limit"),
    ({"upload_limit": "fast"}, "upload_limit"), ({"honors_global": 1}, "honors_global"),
    ({"categories": "films"}, "categories"), ({"categories": [""]}, "categories"),
    ({"tags": "hd"}, "tags"), ({"colour": "red"}, "colour"),
])
async def test_bad_group_fields_are_refused_by_name(tmp_path: Path, fields: dict[str, object],
                                                    field: str) -> None:
    async with service(tmp_path) as jobs:
        with pytest.raises(InvalidJobRequest) as caught:
            await jobs.create_bandwidth_group("g", **fields)
        assert caught.value.field == field
        assert jobs.bandwidth_groups() == []


async def test_unknown_groups_and_names(tmp_path: Path) -> None:
    async with service(tmp_path) as jobs:
        job, _ = await jobs.add(magnet("d"))
        with pytest.raises(JobConflict) as caught:  # (what it meets: 409, as for a category)
            await jobs.set_job_group(job.id, "nowhere")
        assert caught.value.field == "group"
        with pytest.raises(JobNotFound):
            await jobs.update_bandwidth_group("nowhere", weight=2)
        with pytest.raises(JobNotFound):
            await jobs.delete_bandwidth_group("nowhere")
        for bad in ("", " x", "a\nb", "x" * 129):
            with pytest.raises(InvalidJobRequest) as caught:
                await jobs.create_bandwidth_group(bad)
            assert caught.value.field == "name"
        await jobs.create_bandwidth_group("g")
        with pytest.raises(JobConflict):
            await jobs.create_bandwidth_group("g")
        made = await jobs.set_bandwidth_group("h", weight=4)  # (Transmission's group-set makes one)
        assert made == GroupSettings("h", weight=4)
