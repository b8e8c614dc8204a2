"""The incomplete folder: where a job's data goes while it downloads (the add's choice beats the
service's setting), and its move to the save path once complete."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from tests.unit.jobs.test_jobs_features import cfg, magnet, seed_data, service, two_files, wait_state
from tests.unit.torrent_factory import payload
from torrent_engine.jobs import InvalidJobRequest, JobService, JobState, SavePathError
from torrent_engine.jobs.disk.incomplete import download_path_for
from torrent_engine.jobs.tuning.settings import ServiceSettings

pytestmark = pytest.mark.anyio

ON = ServiceSettings(incomplete_dir_enabled=True)


def test_the_add_s_choice_beats_the_setting(tmp_path: Path) -> None:
    root = tmp_path.resolve()
    save, torrent = root / "done", two_files()
    where = lambda settings, asked, **kw: download_path_for(  # noqa: E731
        root, settings, asked, save, torrent, None, seed_mode=kw.get("seed_mode", False))
    assert where(ServiceSettings(), None) is None  # (off: straight to the save path)
    assert where(ON, None) == root / "incomplete"
    named = ServiceSettings(incomplete_dir_enabled=True, incomplete_dir=str(root / "tmp"))
    assert where(named, None) == root / "tmp"
    assert where(ON, "") is None  # the job asked for none
    assert where(ServiceSettings(), "mine") == root / "mine"  # the job asked for one
    assert where(ON, None, seed_mode=True) is None  # added as complete
    with pytest.raises(SavePathError) as err:
        where(ON, "../outside")
    assert err.value.field == "download_path"


def test_data_complete_at_the_save_path_goes_straight_there(tmp_path: Path) -> None:
    root = tmp_path.resolve()
    torrent = two_files()
    seed_data(root / "done", torrent)
    def where() -> Path | None:
        return download_path_for(root, ON, None, root / "done", torrent, None, seed_mode=False)

    assert where() is None
    (root / "done" / "pair" / "b.bin").write_bytes(b"short")  # (not whole: downloaded elsewhere)
    assert where() == root / "incomplete"


async def test_a_complete_download_moves_from_the_incomplete_folder_to_its_save_path(tmp_path: Path) -> None:
    torrent = two_files()
    dl = (tmp_path / "dl").resolve()
    async with service(tmp_path, seed=True) as jobs:
        await jobs.update_settings(incomplete_dir_enabled=True, incomplete_dir="part")
        assert jobs.get_settings().incomplete_dir == str(dl / "part")
        seed_data(dl / "part", torrent)  # (what a download left there: complete once checked)
        job, _ = await jobs.add(torrent, save_path="done")
        assert job.options.download_path == str(dl / "part")
        assert job.options.save_path == str(dl / "done")
        # (the move is over once its session runs at its save path: its record says "moved"
        # from the move's commit on, while the originals are still being removed)
        with anyio.fail_after(15):
            while (now := jobs.get(job.id)).options.download_path is not None \
                    or (session := jobs.manager.get(job.info_hash)) is None \
                    or Path(session.save_path) != dl / "done":
                await anyio.sleep(0.02)
            await session.wait_ready()  # (its verified pieces read from its resume data)
        now = jobs.get(job.id)
        assert now.state is JobState.SEEDING
        assert (dl / "done" / "pair" / "a.bin").read_bytes() == payload(40000, 1)
        assert (dl / "done" / "pair" / "b.bin").read_bytes() == payload(50000, 2)
        assert not (dl / "part" / "pair").exists()  # moved, no copy left behind
        assert now.progress == 1.0 and now.downloaded == 0
        assert not session.rechecked  # (verified before the move: its resume data came along)
    async with service(tmp_path, seed=True) as again:
        await wait_state(again, job.id, JobState.SEEDING)
        assert again.get(job.id).options.download_path is None
        assert again.get_settings().incomplete_dir_enabled  # (the setting is kept)


async def test_turning_the_setting_off_moves_no_running_job(tmp_path: Path) -> None:
    async with service(tmp_path) as jobs:
        await jobs.update_settings(incomplete_dir_enabled=True)
        job, _ = await jobs.add(magnet("a"), paused=True)
        await jobs.update_settings(incomplete_dir_enabled=False)
        assert jobs.get(job.id).options.download_path == str((tmp_path / "dl" / "incomplete").resolve())
        later, _ = await jobs.add(magnet("b"), paused=True)
        assert later.options.download_path is None
        mine, _ = await jobs.add(magnet("c"), paused=True, download_path="own")
        assert mine.options.download_path == str((tmp_path / "dl" / "own").resolve())


async def test_a_new_save_path_while_downloading_is_where_the_data_goes_once_complete(tmp_path: Path) -> None:
    async with service(tmp_path) as jobs:
        job, _ = await jobs.add(magnet("a"), paused=True, download_path="part")
        moved = await jobs.set_location(job.id, "elsewhere")
        assert moved.options.save_path == str((tmp_path / "dl" / "elsewhere").resolve())
        assert moved.options.download_path == str((tmp_path / "dl" / "part").resolve())
        back = await jobs.set_download_path(job.id, "")  # (none: to its save path)
        assert back.options.download_path is None
        with pytest.raises(SavePathError):
            await jobs.set_download_path(job.id, "../out")


async def test_a_bad_incomplete_folder_is_refused_and_nothing_changes(tmp_path: Path) -> None:
    async with service(tmp_path) as jobs:
        with pytest.raises(InvalidJobRequest) as err:
            await jobs.update_settings(download_limit=1000, incomplete_dir="../outside")
        assert err.value.field == "incomplete_dir"
        with pytest.raises(InvalidJobRequest) as err:
            await jobs.update_settings(incomplete_dir_enabled="yes")
        assert err.value.field == "incomplete_dir_enabled"
        assert jobs.get_settings().download_limit == 0 and jobs.get_settings().incomplete_dir == ""


async def test_the_configuration_s_incomplete_folder_applies_until_changed_and_a_restart_keeps_it(
        tmp_path: Path) -> None:
    def configured(incomplete: str) -> JobService:
        return JobService(cfg(), download_root=tmp_path / "dl", state_dir=tmp_path / "state",
                          incomplete_dir=incomplete)

    async with configured("part") as jobs:
        s = jobs.get_settings()
        assert s.incomplete_dir_enabled and s.incomplete_dir == str((tmp_path / "dl" / "part").resolve())
        await jobs.update_settings(incomplete_dir_enabled=False)  # (the API's change, the latest)
    async with configured("part") as jobs:  # the configuration did not change: the API's stays
        assert not jobs.get_settings().incomplete_dir_enabled
        assert (await jobs.configure(download_limit=0, upload_limit=0, incomplete_dir="other")) == [
            "incomplete_dir_enabled", "incomplete_dir"]  # (a reload with another folder)
        assert jobs.get_settings().incomplete_dir.endswith("/dl/other")
    async with configured("") as jobs:  # the configuration asks for none now
        assert not jobs.get_settings().incomplete_dir_enabled


async def test_a_job_that_does_not_seed_ends_complete_at_its_save_path(tmp_path: Path) -> None:
    torrent = two_files()
    dl = (tmp_path / "dl").resolve()
    seed_data(dl / "part", torrent)
    async with service(tmp_path, seed=False) as jobs:  # (a complete download stops at once)
        job, _ = await jobs.add(torrent, save_path="done", download_path="part")
        await wait_state(jobs, job.id, JobState.COMPLETED)
        done = jobs.get(job.id)
        assert done.options.download_path is None and done.options.save_path == str(dl / "done")
        assert (dl / "done" / "pair" / "b.bin").read_bytes() == payload(50000, 2)
        assert not (dl / "part" / "pair").exists()
