"""The deduplication's mode and indexed folders are run-time settings (``dedup``,
``dedup_folders``): the daemon's flags and config file give them at a start unless a client
changed them since; changed at run time, they apply at once — turned on, what the complete jobs
hold is learnt and placed in the next add; turned off, nothing is; a folder indexed, its files
are held; no folder, none is."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from torrent_engine.jobs import JobService, JobState
from torrent_engine.jobs.model import InvalidJobRequest

from .helpers import loopback_config, make_torrent
from .test_jobs_dedup import seeding, service, wait_for, write
from .test_jobs_dedup_v1 import B_PL, SIZE, payload

pytestmark = pytest.mark.anyio


def make_a(tmp_path: Path, data: bytes) -> bytes:
    """A: the payload in the download folder, as a v1 torrent of another name."""
    return make_torrent(write(tmp_path / "dl" / "A", [("a.mkv", data)]), version="v1").to_bytes()


async def add_b(jobs: JobService, tmp_path: Path, name: str, data: bytes) -> int:
    """A torrent of the payload under another name (``name``'s) added from its seeder, saving in
    ``name``: the bytes its add placed."""
    seed_dir = tmp_path / "seed" / name
    b = make_torrent(write(seed_dir / f"Show.{name}", [("Show.mkv", data)]), piece_length=B_PL, version="v1")
    async with seeding(seed_dir, b) as seed:
        job, _ = await jobs.add(b.to_bytes(), save_path=name, peers=[("127.0.0.1", seed.listen_port)])
        await wait_for(jobs, job.id, JobState.SEEDING)
        return job.dedup_bytes


async def test_turned_on_at_run_time_the_complete_jobs_are_learnt_and_their_files_taken(
        tmp_path: Path) -> None:
    data = payload()
    async with service(tmp_path, dedup="off") as jobs:
        assert jobs.get_settings().dedup == "off"
        a = make_a(tmp_path, data)
        held, _ = await jobs.add(a)
        await wait_for(jobs, held.id, JobState.SEEDING)
        assert not jobs.dedup.of_length(SIZE)
        assert await add_b(jobs, tmp_path, "one", data) == 0  # (off: downloaded)
        await jobs.update_settings(dedup="copy")
        with anyio.fail_after(10):  # (learnt in the background)
            while not jobs.dedup.of_length(SIZE):
                await anyio.sleep(0.01)
        assert jobs.dedup.mode == "copy" and jobs.dedup.ways == ("copy",)
        # (B again under another save path: taken from A's or the first B's file)
        assert await add_b(jobs, tmp_path, "two", data) == SIZE
        await jobs.update_settings(dedup="off")
        assert not jobs.dedup.of_length(SIZE) and jobs.dedup.status()["jobs"] == 0
        assert await add_b(jobs, tmp_path, "three", data) == 0


async def test_a_folder_indexed_at_run_time_holds_its_files_and_none_once_it_is_not(tmp_path: Path) -> None:
    data = payload()
    library = write(tmp_path / "library", [("film.mkv", data)])
    async with service(tmp_path) as jobs:
        assert jobs.get_settings().dedup_folders == ()
        await jobs.update_settings(dedup_folders=[str(library) + "/"])  # (kept normalised)
        assert jobs.get_settings().dedup_folders == (str(library),)
        with anyio.fail_after(20):
            while not jobs.dedup.of_length(SIZE):
                await anyio.sleep(0.01)
        [known] = jobs.dedup.of_length(SIZE)
        assert known.path == str(library / "film.mkv")
        assert await add_b(jobs, tmp_path, "got", data) == SIZE
        await jobs.update_settings(dedup_folders=[])
        with anyio.fail_after(10):
            while any(k.path.startswith(str(library)) for k in jobs.dedup.of_length(SIZE)):
                await anyio.sleep(0.01)


@pytest.mark.parametrize(("field", "value", "said"), [
    ("dedup", "symlink", "must be one of off, reflink, hardlink, copy"),
    ("dedup_folders", "/srv/media", "must be a list of absolute paths"),
    ("dedup_folders", ["media"], "an indexed folder must be an absolute path"),
])
async def test_a_bad_mode_or_folder_is_refused_naming_it(tmp_path: Path, field: str, value: object,
                                                         said: str) -> None:
    async with service(tmp_path) as jobs:
        with pytest.raises(InvalidJobRequest) as caught:
            await jobs.update_settings(**{field: value})
        assert caught.value.field == field and said in caught.value.reason
        assert (jobs.get_settings().dedup, jobs.dedup.mode) == ("reflink", "reflink")


async def test_a_folder_not_there_is_kept_and_its_walk_says_it_cannot_read_it(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    missing = tmp_path / "not-mounted"
    async with service(tmp_path) as jobs:
        await jobs.update_settings(dedup_folders=[str(missing)])
        assert jobs.get_settings().dedup_folders == (str(missing),)
        with anyio.fail_after(10):
            while "cannot read" not in caplog.text:
                await anyio.sleep(0.01)
        assert str(missing) in caplog.text


async def test_the_configuration_gives_them_at_a_start_unless_a_client_changed_them_since(
        tmp_path: Path) -> None:
    def started(**config: object) -> JobService:
        return JobService(loopback_config(**config), download_root=tmp_path / "dl",
                          state_dir=tmp_path / "state")

    async with started(dedup="off") as jobs:
        assert (jobs.get_settings().dedup, jobs.dedup.mode) == ("off", "off")
        await jobs.update_settings(dedup="hardlink")
    async with started(dedup="off") as jobs:  # (the same configuration: the client's change holds)
        assert (jobs.get_settings().dedup, jobs.dedup.mode) == ("hardlink", "hardlink")
    async with started(dedup="copy", dedup_folders=(str(tmp_path),)) as jobs:  # (changed: it applies)
        assert (jobs.dedup.mode, jobs.dedup.folders) == ("copy", (str(tmp_path),))


async def test_a_librarys_config_may_name_its_folders_as_paths_and_relative(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "media").mkdir()
    async with JobService(loopback_config(dedup_folders=(Path("media"), tmp_path / "other")),
                          download_root=tmp_path / "dl", state_dir=tmp_path / "state") as jobs:
        assert jobs.get_settings().dedup_folders == (str(tmp_path / "media"), str(tmp_path / "other"))
