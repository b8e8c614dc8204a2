"""The incomplete folder: where a job's data goes while it downloads (the add's choice beats the
service's setting), and its move to the save path once complete."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from tests.unit.jobs.test_jobs_features import cfg, magnet, seed_data, service, two_files, wait_state
from tests.unit.torrent_factory import payload
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.jobs import InvalidJobRequest, JobService, JobState, SavePathError
from torrent_engine.jobs.disk.incomplete import download_path_for
from torrent_engine.jobs.tuning.settings import ServiceSettings
from torrent_engine.storage.resume import stamp_files, trusted_pieces

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


async def test_data_a_cancelled_job_left_in_the_incomplete_folder_is_found_moved_and_kept_by_a_delete(
        tmp_path: Path) -> None:
    """A torrent's whole data left in the incomplete folder by a job of it cancelled without its
    files: a new job of it finds it there, verifies it and moves it to its save path (as
    qBittorrent takes what its temp folder holds); found, not downloaded, the files stay the
    user's: a cancel that deletes the job's files keeps them at the save path."""
    torrent = two_files()
    dl = (tmp_path / "dl").resolve()
    seed_data(dl / "incomplete", torrent)
    async with service(tmp_path, seed=True) as jobs:
        first, _ = await jobs.add(torrent, save_path="done", download_path="incomplete", paused=True)
        await jobs.cancel(first.id, delete_files=False)
        assert (dl / "incomplete" / "pair" / "a.bin").read_bytes() == payload(40000, 1)
        await jobs.update_settings(incomplete_dir_enabled=True)
        job, _ = await jobs.add(torrent, save_path="done")
        assert job.options.download_path == str(dl / "incomplete")
        with anyio.fail_after(15):
            while (now := jobs.get(job.id)).options.download_path is not None or now.moving:
                await anyio.sleep(0.02)
        assert now.state is JobState.SEEDING and now.downloaded == 0
        assert not (dl / "incomplete" / "pair").exists()
        await jobs.cancel(job.id, delete_files=True)
        assert (dl / "done" / "pair" / "a.bin").read_bytes() == payload(40000, 1)
        assert (dl / "done" / "pair" / "b.bin").read_bytes() == payload(50000, 2)


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


def _in_the_way(tmp_path: Path, name: str, data: bytes) -> tuple[Torrent, Path, Path]:
    """The torrent, its data complete in the incomplete folder ``part`` (what a download left
    there), and a file of the user's named as one of its own (``name``) at its save path
    ``done``: the torrent, the download root, the user's file."""
    torrent = two_files()
    dl = (tmp_path / "dl").resolve()
    seed_data(dl / "part", torrent)
    theirs = dl / "done" / "pair" / name
    theirs.parent.mkdir(parents=True)
    theirs.write_bytes(data)
    return torrent, dl, theirs


async def _moved_or_held(jobs: JobService, job_id: str, info_hash: str, save: Path) -> None:
    """Until the job's completion move is over: its session runs at ``save``, or it says why not."""
    with anyio.fail_after(15):
        while (session := jobs.manager.get(info_hash)) is None or Path(session.save_path) != save:
            if (stall := jobs.get(job_id).stall) is not None and stall.reason == "not_moved":
                return
            await anyio.sleep(0.02)
        await session.wait_ready()


async def test_a_file_of_the_same_bytes_at_the_save_path_is_taken_there_once_complete(tmp_path: Path) -> None:
    """The user has one of the files at the save path already: the job complete in its
    incomplete folder takes it there (its own copy removed, nothing checked again, then or at a
    start), and a delete of the job's files keeps it as the user's."""
    torrent, dl, theirs = _in_the_way(tmp_path, "a.bin", payload(40000, 1))
    inode = theirs.stat().st_ino
    async with service(tmp_path, seed=True) as jobs:
        job, _ = await jobs.add(torrent, save_path="done", download_path="part")
        assert job.options.download_path == str(dl / "part")  # (b.bin is not there: not whole)
        await _moved_or_held(jobs, job.id, job.info_hash, dl / "done")
        now = jobs.get(job.id)
        assert now.stall is None and now.options.download_path is None
        assert now.state is JobState.SEEDING and now.progress == 1.0
        assert theirs.stat().st_ino == inode and theirs.read_bytes() == payload(40000, 1)
        assert (dl / "done" / "pair" / "b.bin").read_bytes() == payload(50000, 2)
        assert not (dl / "part" / "pair").exists()  # (its copy of a.bin too: no file left twice)
        session = jobs.manager.get(job.info_hash)
        assert session is not None and not session.rechecked  # (the same bytes: still verified)
        kept = await anyio.to_thread.run_sync(jobs.manager.saved_resume, job.info_hash)
        files = [dl / "done" / "pair" / name for name in ("a.bin", "b.bin")]
        assert trusted_pieces(kept, info_hash=bytes.fromhex(job.info_hash), num_pieces=torrent.num_pieces,
                              save_path=str(dl / "done"), current=stamp_files(list(files))) \
            == set(range(torrent.num_pieces))  # (a start trusts them too: the stamps are a.bin's there)
        await jobs.cancel(job.id, delete_files=True)
        assert theirs.read_bytes() == payload(40000, 1)  # the user's: kept


async def test_a_file_of_other_bytes_at_the_save_path_keeps_the_job_where_it_is_saying_why(
        tmp_path: Path) -> None:
    torrent, dl, theirs = _in_the_way(tmp_path, "a.bin", b"another file of the same name" * 100)
    async with service(tmp_path, seed=True) as jobs:
        job, _ = await jobs.add(torrent, save_path="done", download_path="part")
        await _moved_or_held(jobs, job.id, job.info_hash, dl / "done")
        now = jobs.get(job.id)
        assert now.state is JobState.SEEDING and now.options.download_path == str(dl / "part")
        assert now.stall is not None and now.stall.reason == "not_moved"
        assert str(theirs) in now.stall.message and "other data" in now.stall.message
        assert str(dl / "part") in now.stall.message
        assert now.to_json()["stall"] == now.stall.to_json()  # (the API's and the web UI's)
        assert theirs.read_bytes() == b"another file of the same name" * 100  # never overwritten
        assert (dl / "part" / "pair" / "a.bin").read_bytes() == payload(40000, 1)
        theirs.unlink()  # the user moves it away, and the job to its save path
        moved = await jobs.set_location(job.id, "done")
        assert moved.stall is None and moved.options.download_path is None
        assert (dl / "done" / "pair" / "a.bin").read_bytes() == payload(40000, 1)


async def test_a_job_that_does_not_seed_and_cannot_move_ends_complete_saying_where_its_files_are(
        tmp_path: Path) -> None:
    torrent, dl, theirs = _in_the_way(tmp_path, "b.bin", b"other")
    async with service(tmp_path, seed=False) as jobs:
        job, _ = await jobs.add(torrent, save_path="done", download_path="part")
        await wait_state(jobs, job.id, JobState.COMPLETED)
        done = jobs.get(job.id)
        assert done.options.download_path == str(dl / "part") and done.error is None
        assert done.stall is not None and done.stall.reason == "not_moved"
        assert f"stay in {dl / 'part'}" in done.stall.message and str(theirs) in done.stall.message
        assert theirs.read_bytes() == b"other"


async def test_a_rename_of_a_job_without_a_session_renames_its_files_in_its_incomplete_folder(
        tmp_path: Path) -> None:
    """A job downloading into its incomplete folder, paused since the service started (no
    session): a rename moves its files where its data is. It moved the files of those names at
    its save path, the user's there (found by tests/fuzz/test_jobs_stateful.py)."""
    torrent, dl, theirs = _in_the_way(tmp_path, "a.bin", b"the user's own file")
    async with service(tmp_path) as jobs:
        job, _ = await jobs.add(torrent, save_path="done", download_path="part", paused=True)
    # (a seeding service: one that does not seed ends a complete job at once, and a poll could
    # miss its moment of seeding: 1 run in 15 failed so)
    async with service(tmp_path, seed=True) as jobs:
        assert jobs.manager.get(job.info_hash) is None
        renamed = await jobs.rename_path(job.id, "pair/a.bin", "pair/a2.bin")
        assert sorted(f.path for f in renamed.files) == ["pair/a2.bin", "pair/b.bin"]
        assert theirs.read_bytes() == b"the user's own file"
        assert not (dl / "done" / "pair" / "a2.bin").exists()
        assert (dl / "part" / "pair" / "a2.bin").read_bytes() == payload(40000, 1)
        assert not (dl / "part" / "pair" / "a.bin").exists()
        await jobs.resume(job.id)  # (its data found where it is, under its new name)
        await wait_state(jobs, job.id, JobState.SEEDING)
