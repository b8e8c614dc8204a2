"""Watched folders without a daemon: the settings' checks, files taken only once they stopped
changing, the category from a sub-folder, and what is added, refused and renamed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from torrent_engine.engine.addtorrent import AddTorrent, MagnetLink, TorrentBytes
from torrent_engine.jobs import InvalidJobRequest
from torrent_engine.jobs.intake.watch import FolderWatcher, StableFiles, category_of
from torrent_engine.jobs.model import JobConflict, StateNotSaved
from torrent_engine.jobs.tuning.settings import (
    SavedSettings,
    ServiceSettings,
    check_watch_folders,
    load_settings,
    save_settings,
    updated,
)

pytestmark = pytest.mark.anyio

MAGNET = "magnet:?xt=urn:btih:" + "c" * 40 + "&dn=m"


def test_a_file_is_taken_once_it_stayed_the_same_across_two_scans() -> None:
    stable = StableFiles()
    assert stable.ready({"/w/a.torrent": (10, 1)}) == []  # seen once: may still be written
    assert stable.ready({"/w/a.torrent": (20, 2), "/w/b.torrent": (5, 1)}) == []  # it grew
    assert stable.ready({"/w/a.torrent": (20, 2), "/w/b.torrent": (5, 1)}) == ["/w/a.torrent", "/w/b.torrent"]


def test_category_from_the_sub_folder() -> None:
    assert category_of("/w", "/w/x.torrent") == ""
    assert category_of("/w", "/w/tv/x.torrent") == "tv"
    assert category_of("/w", "/w/tv/hd/x.magnet") == "tv/hd"


def test_watch_folders_are_checked_naming_the_setting(tmp_path: Path) -> None:
    ok = updated(ServiceSettings(), {"watch_folders": {str(tmp_path): None, str(tmp_path / "."): "tv"}})
    assert ok.watch_folders == ((str(tmp_path), "tv"),)
    assert ok.to_json()["watch_folders"] == {str(tmp_path): "tv"}
    for bad in ({str(tmp_path / "missing"): None}, {"relative/dir": None}, [str(tmp_path)], "x",
                {str(tmp_path): 5}):
        with pytest.raises(InvalidJobRequest) as err:
            updated(ServiceSettings(), {"watch_folders": bad})
        assert err.value.field == "watch_folders"
    with pytest.raises(InvalidJobRequest, match="no such folder"):
        check_watch_folders({str(tmp_path / "missing"): None}, "watch_folders")
    for bad_interval in (0, -1, "3", float("nan")):
        with pytest.raises(InvalidJobRequest):
            updated(ServiceSettings(), {"watch_interval": bad_interval})


def test_a_saved_folder_missing_at_the_start_is_kept(tmp_path: Path) -> None:
    folder = tmp_path / "mount"
    folder.mkdir()
    s = updated(ServiceSettings(), {"watch_folders": {str(folder): None}, "run_on_added": "/bin/x %N"})
    save_settings(tmp_path, SavedSettings(s, None))
    folder.rmdir()
    loaded = load_settings(tmp_path).settings
    assert loaded.watch_folders == ((str(folder), None),) and loaded.run_on_added == "/bin/x %N"


async def test_a_scan_adds_renames_and_refuses(tmp_path: Path) -> None:
    watch = tmp_path / "watch"
    (watch / "tv").mkdir(parents=True)
    (watch / "a.torrent").write_bytes(b"d4:infod4:name1:xee")
    (watch / "tv" / "m.magnet").write_text(MAGNET + "\n")
    (watch / "bad.magnet").write_text("not a magnet")
    (watch / "refused.torrent").write_bytes(b"junk")
    (watch / "notes.txt").write_text("ignored")
    (watch / "later.torrent").write_bytes(b"full")
    added: list[tuple[AddTorrent, str | None, str]] = []
    full = {"yes": True}

    async def add(source: AddTorrent, save_path: str | None, category: str) -> str:
        if source == TorrentBytes(b"junk"):
            raise JobConflict("not a torrent", "source")
        if source == TorrentBytes(b"full") and full["yes"]:
            raise StateNotSaved("disk full", str(tmp_path), full=True)
        added.append((source, save_path, category))
        return f"job{len(added)}"

    settings = updated(ServiceSettings(), {"watch_folders": {str(watch): None}})
    watcher = FolderWatcher(lambda: settings, add, clock=lambda: 1.0)
    await watcher.scan(settings.watch_folders)
    assert added == []  # (first seen: not taken yet)
    await watcher.scan(settings.watch_folders)
    expected = [(TorrentBytes(b"d4:infod4:name1:xee"), None, ""), (MagnetLink(MAGNET), None, "tv")]
    assert sorted(added, key=str) == sorted(expected, key=str)
    names = sorted(str(p.relative_to(watch)) for p in watch.rglob("*") if p.is_file())
    assert names == ["a.torrent.added", "bad.magnet.invalid", "later.torrent", "notes.txt",
                     "refused.torrent.invalid", "tv/m.magnet.added"]
    reasons = {os.path.basename(e.file): e.reason for e in watcher.recent if not e.added}
    assert "magnet link" in str(reasons["bad.magnet"])
    assert reasons["refused.torrent"] == "source: not a torrent"
    shown = watcher.status(settings)
    assert shown["folders"] == [{"folder": str(watch), "save_path": None, "error": None}]
    full["yes"] = False  # (the state folder has room again: the file is taken at the next scan)
    await watcher.scan(settings.watch_folders)
    assert (watch / "later.torrent.added").exists()


async def test_a_folder_that_went_away_is_shown(tmp_path: Path) -> None:
    async def add(source: AddTorrent, save_path: str | None, category: str) -> str:
        raise AssertionError("nothing to add")

    settings = ServiceSettings(watch_folders=((str(tmp_path / "gone"), None),))
    watcher = FolderWatcher(lambda: settings, add)
    await watcher.scan(settings.watch_folders)
    assert "cannot read it" in str(watcher.folder_errors[str(tmp_path / "gone")])


async def test_a_refused_configuration_is_refused_again_at_the_next_reload(tmp_path: Path) -> None:
    from tests.unit.jobs.test_jobs_features import service

    gone = {"watch_folders": {str(tmp_path / "gone"): None}}
    async with service(tmp_path) as jobs:
        for _ in range(2):  # (the first refusal must not be noted as applied)
            with pytest.raises(InvalidJobRequest) as err:
                await jobs.configure(download_limit=0, upload_limit=0, asked=gone)
            assert err.value.field == "watch_folders"
        assert jobs.get_settings().watch_folders == ()
        (tmp_path / "gone").mkdir()
        await jobs.configure(download_limit=0, upload_limit=0, asked=gone)
        assert jobs.get_settings().watch_folders == ((str(tmp_path / "gone"), None),)


async def test_a_file_written_again_while_it_was_added_is_not_renamed_but_taken_in_turn(
        tmp_path: Path) -> None:
    """The next torrent dropped under the same name as soon as the last one showed up (before the
    watcher renamed the file it had read): that new file was renamed ``.added`` unread, and lost.
    Now only the version read is renamed; the new one is taken once it stops changing."""
    watch = tmp_path / "watch"
    watch.mkdir()
    dropped = watch / "dropped.torrent"
    dropped.write_bytes(b"d4:infod4:name3:oneee")
    os.utime(dropped, ns=(1_000_000_000, 1_000_000_000))  # (written a while ago: it was stable)
    added: list[AddTorrent] = []

    async def add(source: AddTorrent, save_path: str | None, category: str) -> str:
        added.append(source)
        if len(added) == 1:  # (the job shows; the client drops its next torrent at once)
            dropped.write_bytes(b"d4:infod4:name3:twoee")
        return f"job{len(added)}"

    settings = updated(ServiceSettings(), {"watch_folders": {str(watch): None}})
    watcher = FolderWatcher(lambda: settings, add, clock=lambda: 1.0)
    for _ in range(2):
        await watcher.scan(settings.watch_folders)
    assert added == [TorrentBytes(b"d4:infod4:name3:oneee")]
    assert dropped.read_bytes() == b"d4:infod4:name3:twoee"  # (not renamed: not read yet)
    for _ in range(2):
        await watcher.scan(settings.watch_folders)
    assert added == [TorrentBytes(b"d4:infod4:name3:oneee"), TorrentBytes(b"d4:infod4:name3:twoee")]
    assert (watch / "dropped.torrent.added").read_bytes() == b"d4:infod4:name3:twoee"
    assert not dropped.exists()


async def test_a_file_added_is_deleted_while_watch_delete_added_and_one_refused_is_kept(
        tmp_path: Path) -> None:
    """Transmission's trash-original-torrent-files, qBittorrent's auto_delete_mode 1: a watched
    file once added is deleted rather than renamed .added; one refused is renamed .invalid all
    the same, and one written again while it was added is left to be taken in turn."""
    watch = tmp_path / "watch"
    watch.mkdir()
    (watch / "a.torrent").write_bytes(b"d4:infod4:name1:aee")
    (watch / "refused.torrent").write_bytes(b"junk")
    dropped = watch / "dropped.torrent"
    dropped.write_bytes(b"d4:infod4:name3:oneee")
    added: list[AddTorrent] = []

    async def add(source: AddTorrent, save_path: str | None, category: str) -> str:
        if source == TorrentBytes(b"junk"):
            raise JobConflict("not a torrent", "source")
        added.append(source)
        if source == TorrentBytes(b"d4:infod4:name3:oneee"):
            dropped.write_bytes(b"d4:infod4:name3:twoee")
        return f"job{len(added)}"

    settings = updated(ServiceSettings(), {"watch_folders": {str(watch): None}, "watch_delete_added": True})
    watcher = FolderWatcher(lambda: settings, add, clock=lambda: 1.0)
    for _ in range(2):
        await watcher.scan(settings.watch_folders)
    assert sorted(p.name for p in watch.iterdir()) == ["dropped.torrent", "refused.torrent.invalid"]
    assert dropped.read_bytes() == b"d4:infod4:name3:twoee"
    for _ in range(2):
        await watcher.scan(settings.watch_folders)
    assert sorted(p.name for p in watch.iterdir()) == ["refused.torrent.invalid"]
    assert len(added) == 3
