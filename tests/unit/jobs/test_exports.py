"""Copies of the jobs' .torrent files (disk/exports.py): named after the torrent, never over a
file there, whole or absent; written as a job is added (its metainfo known) and as it
completes, where the settings say; a folder outside the download root refused; a copy that
cannot be written logged, the job going on."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import anyio
import pytest

from tests.unit.jobs.test_jobs_features import magnet, seed_data, service, two_files, wait_state
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.jobs import AddOptions, JobState, SavePathError
from torrent_engine.jobs.disk.exports import write_copy

pytestmark = pytest.mark.anyio


def test_copies_of_one_name_are_numbered_and_a_file_there_is_never_replaced(tmp_path: Path) -> None:
    folder = tmp_path / "made" / "here"  # (made when missing)
    assert write_copy(folder, "x", b"one") == folder / "x.torrent"
    (folder / "x 2.torrent").write_bytes(b"the user's")
    assert write_copy(folder, "x", b"two") == folder / "x 1.torrent"
    assert write_copy(folder, "x", b"three") == folder / "x 3.torrent"
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == {
        "x.torrent": b"one", "x 1.torrent": b"two", "x 2.torrent": b"the user's", "x 3.torrent": b"three"}


def test_without_hard_links_a_copy_is_created_and_still_replaces_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_links(src: str, dst: str) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    (tmp_path / "x.torrent").write_bytes(b"the user's")
    assert write_copy(tmp_path, "x", b"new") == tmp_path / "x 1.torrent"
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == {"x.torrent": b"the user's",
                                                                    "x 1.torrent": b"new"}

    real_open = open  # (the disk fills up as the copy is written)

    def filling(path: object, mode: str = "r", *a: object, **kw: object) -> object:
        f = real_open(path, mode, *a, **kw)  # type: ignore[call-overload]
        if mode == "xb":
            def write(data: bytes) -> int:
                raise OSError(28, "No space left on device")
            f.write = write
        return f

    monkeypatch.setattr("builtins.open", filling)
    with pytest.raises(OSError, match="No space"):
        write_copy(tmp_path, "x", b"more")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x 1.torrent", "x.torrent"]  # (no half copy)


def copies(folder: Path) -> dict[str, bytes]:
    """Each .torrent's info-hash in ``folder``, by file name (none while it does not exist)."""
    if not folder.is_dir():
        return {}
    return {p.name: Torrent.from_bytes(p.read_bytes()).info_hash for p in folder.iterdir()}


async def until(check: object) -> None:
    with anyio.fail_after(15):
        while not check():  # type: ignore[operator]
            await anyio.sleep(0.02)


async def test_new_jobs_and_finished_downloads_are_copied_where_the_settings_say(tmp_path: Path) -> None:
    paused, seeded, checked, unset = (two_files(name) for name in ("Paused", "Seeded", "Checked", "Unset"))
    root = tmp_path / "dl"
    seed_data(root, checked)
    seed_data(root / "s", seeded)
    async with service(tmp_path, seed=True) as jobs:
        await jobs.add(unset, AddOptions(paused=True))  # (none asked: none written)
        settings = await jobs.update_settings(torrent_export_dir="copies/new",
                                              finished_torrent_export_dir=str(root / "copies" / "done"))
        new, done = root / "copies" / "new", root / "copies" / "done"
        assert (settings.torrent_export_dir, settings.finished_torrent_export_dir) == (str(new), str(done))
        for name, outside in (("torrent_export_dir", "/etc"), ("finished_torrent_export_dir", "../up")):
            with pytest.raises(SavePathError) as err:
                await jobs.update_settings(**{name: outside})
            assert err.value.field == name
        await jobs.add(paused, AddOptions(paused=True))
        await jobs.add(seeded, AddOptions(save_path="s", seed_mode=True))  # (complete at its add)
        job, _ = await jobs.add(checked)  # (its data checked: complete then)
        await wait_state(jobs, job.id, JobState.SEEDING)
        await until(lambda: len(copies(new)) == 3 and len(copies(done)) == 2)
        await jobs.add(magnet("c"))  # (no metainfo yet: nothing)
        await anyio.sleep(0.2)
        assert copies(new) == {"Paused.torrent": paused.info_hash, "Seeded.torrent": seeded.info_hash,
                               "Checked.torrent": checked.info_hash}
        assert copies(done) == {"Seeded.torrent": seeded.info_hash, "Checked.torrent": checked.info_hash}
        assert (new / "Paused.torrent").read_bytes() == paused.to_bytes()
        await jobs.update_settings(torrent_export_dir="")
        await jobs.add(two_files("Later"), AddOptions(paused=True))
    async with service(tmp_path, seed=True) as again:  # (kept; a restart copies nothing again)
        assert again.get_settings().finished_torrent_export_dir == str(done)
        await anyio.sleep(0.2)
        assert len(copies(new)) == 3 and len(copies(done)) == 2


async def test_a_copy_that_cannot_be_written_is_logged_and_the_job_goes_on(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    torrent = two_files("Kept")
    async with service(tmp_path) as jobs:
        await jobs.update_settings(torrent_export_dir="blocked")
        (tmp_path / "dl" / "blocked").write_bytes(b"a file where the folder would be")
        with caplog.at_level(logging.WARNING, "torrent_engine.jobs.exports"):
            job, _ = await jobs.add(torrent, AddOptions(paused=True))
            await until(lambda: "cannot copy its .torrent" in caplog.text)
        assert "Kept" in caplog.text and jobs.get(job.id).state is JobState.PAUSED
        assert (tmp_path / "dl" / "blocked").read_bytes() == b"a file where the folder would be"
