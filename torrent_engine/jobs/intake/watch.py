"""Watched folders: a ``.torrent`` or ``.magnet`` file (a magnet link as text) dropped into one
becomes a job, added as the API adds one. A file in a sub-folder gets that sub-folder's name as
its category (``watch/tv/x.torrent``: ``tv``, made if missing). A file taken is renamed
``<name>.added`` (deleted while ``watch_delete_added``); one that cannot be added
``<name>.invalid``, the reason logged and kept in ``FolderWatcher.recent``. A file is taken once
its size and time are the same in two scans in a row, so one still being written is not read
half-way.

The checks and the choice of files are plain functions; ``FolderWatcher`` is the thin shell: one
task of the job service (a scan every ``watch_interval`` seconds, nothing per job)."""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from ...beats import sleep_to_beat
from ...engine.addtorrent import AddTorrent, MagnetLink, TorrentBytes
from ...errors import TorrentEngineError
from ...net.peer.extensions import DEFAULT_MAX_METADATA_SIZE
from ..model import JobError, StateNotSaved
from ..tuning.settings import WatchFolders

if TYPE_CHECKING:
    from ..tuning.settings import ServiceSettings

log = logging.getLogger("torrent_engine.jobs.watch")

SUFFIXES = (".torrent", ".magnet")
ADDED_SUFFIX = ".added"
INVALID_SUFFIX = ".invalid"
MAX_WATCH_FILE = DEFAULT_MAX_METADATA_SIZE + 64 * 1024  # a .torrent in a watched folder, at most
MAX_MAGNET_FILE = 64 * 1024
RECENT = 100  # files taken or refused, the latest kept for the API

# -- choosing files (pure) ------------------------------------------------------------------
Listing = dict[str, tuple[int, int]]  # path -> (size, mtime in ns)


class StableFiles:
    """Which files of a folder stayed the same (size and time) since the scan before."""

    def __init__(self) -> None:
        self._before: Listing = {}

    def ready(self, listing: Listing) -> list[str]:
        """The files of ``listing`` seen with the same size and time in the scan before, in name order."""
        out = sorted(p for p, stat in listing.items() if self._before.get(p) == stat)
        self._before = dict(listing)
        return out


def category_of(folder: str, path: str) -> str:
    """The category a file in a watched folder gets: its sub-folders' names ("" at the top)."""
    parent = Path(path).parent.relative_to(folder)
    return "/".join(parent.parts)


def is_watched_name(name: str) -> bool:
    """Whether a watched folder's file named ``name`` is one to add (hidden files are not)."""
    return name.lower().endswith(SUFFIXES) and not name.startswith(".")


# -- the folder (I/O, run in a worker thread) ----------------------------------------------
def list_folder(folder: str) -> Listing:
    """Every ``.torrent``/``.magnet`` file under ``folder`` (sub-folders too, not hidden ones),
    with its size and time. ``OSError`` when the folder cannot be read."""
    out: Listing = {}
    errors: list[OSError] = []
    for root, dirs, files in os.walk(folder, onerror=errors.append):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if is_watched_name(name):
                path = os.path.join(root, name)
                try:
                    st = os.stat(path, follow_symlinks=False)
                except OSError:
                    continue  # (gone meanwhile)
                out[path] = (st.st_size, st.st_mtime_ns)
    if errors and errors[0].filename == folder:
        raise errors[0]
    return out


class WatchFileError(Exception):
    """A watched file that cannot become a job (the reason)."""


Version = tuple[int, int, int, int]  # a file's device, inode, size and time in ns


def version_of(st: os.stat_result) -> Version:
    """What tells one version of a file from another (one written over it, or put in its place)."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def read_watch_file(path: str) -> tuple[TorrentBytes | MagnetLink, Version]:
    """A ``.torrent`` file's bytes, or a ``.magnet`` file's magnet link (read by the add), and
    the version of the file read."""
    limit = MAX_MAGNET_FILE if path.lower().endswith(".magnet") else MAX_WATCH_FILE
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
            version = version_of(os.fstat(f.fileno()))
    except OSError as exc:
        raise WatchFileError(f"cannot read it: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise WatchFileError(f"larger than {limit} bytes")
    if not path.lower().endswith(".magnet"):
        return TorrentBytes(data), version
    try:
        text = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise WatchFileError("a .magnet file must hold a magnet link as text (UTF-8)") from None
    if not text.lower().startswith("magnet:?"):
        raise WatchFileError("a .magnet file must hold a magnet link (magnet:?...)")
    return MagnetLink(text), version


def mark(path: str, suffix: str | None, version: Version | None = None) -> bool:
    """Rename ``path`` to ``path + suffix`` (replacing an older one of that name; None: delete
    it), if it is still the ``version`` read (when given); whether it was. A file written again
    under the same name while the one read was added (the next torrent, dropped as soon as the
    last showed up) is left for the scans to take: renamed or deleted, it would have been lost."""
    if version is not None and version_of(os.stat(path)) != version:
        return False
    if suffix is None:
        os.unlink(path)
    else:
        os.replace(path, path + suffix)
    return True


# -- the watcher ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class WatchEntry:
    """A file a watched folder held, as it was handled."""

    time: float
    file: str
    added: bool
    job_id: str | None = None
    reason: str | None = None  # why it was refused

    def to_json(self) -> dict[str, object]:
        """The entry as the API's JSON."""
        return {"time": self.time, "file": self.file, "added": self.added, "job_id": self.job_id,
                "reason": self.reason}


# (what the file holds, its save path: None = the default, its category) -> the job's id
AddWatched = Callable[[AddTorrent, "str | None", str], Awaitable[str]]


class FolderWatcher:
    """Scans the watched folders the settings name, every ``watch_interval`` seconds."""

    def __init__(self, settings: Callable[[], ServiceSettings], add: AddWatched,
                 clock: Callable[[], float] = time.time) -> None:
        self._settings = settings
        self._add = add
        self._clock = clock
        self._stable: dict[str, StableFiles] = {}
        self._unmarked: set[str] = set()  # added, but could not be renamed or deleted: not added again
        self.recent: deque[WatchEntry] = deque(maxlen=RECENT)
        self.folder_errors: dict[str, str] = {}  # folder -> why it cannot be read now

    async def run(self) -> None:
        """Scan for ever (a task of the service: cancelled when it stops)."""
        while True:
            s = self._settings()
            if s.watch_enabled and s.watch_folders:
                await self.scan(s.watch_folders)
            await sleep_to_beat(s.watch_interval)  # (woken with the daemon's other timers)

    async def scan(self, folders: WatchFolders) -> None:
        """One scan: every stable new file of every folder becomes a job (or is refused)."""
        for folder in list(self._stable):
            if folder not in dict(folders):
                del self._stable[folder]
        for folder, save_path in folders:
            try:
                listing = await anyio.to_thread.run_sync(list_folder, folder)
            except OSError as exc:
                reason = f"cannot read it: {exc.strerror or exc}"
                if self.folder_errors.get(folder) != reason:
                    log.warning("watched folder %s: %s", folder, reason)
                self.folder_errors[folder] = reason
                continue
            self.folder_errors.pop(folder, None)
            self._unmarked &= set(listing)
            for path in self._stable.setdefault(folder, StableFiles()).ready(listing):
                if path not in self._unmarked:
                    await self._take(folder, save_path, path)

    async def _take(self, folder: str, save_path: str | None, path: str) -> None:
        version: Version | None = None
        try:
            source, version = await anyio.to_thread.run_sync(read_watch_file, path)
            job_id = await self._add(source, save_path, category_of(folder, path))
        except WatchFileError as exc:
            await self._refuse(path, str(exc), version)
        except StateNotSaved as exc:  # (the state folder, not the file: tried again at the next scan)
            log.warning("watched file %s not added now: %s", path, exc)
        except (JobError, TorrentEngineError) as exc:
            await self._refuse(path, str(exc), version)  # (it names the field)
        except OSError as exc:  # (not the file's fault: tried again at the next scan)
            log.warning("watched file %s not added now: %s", path, exc.strerror or exc)
        else:
            log.info("watched file %s added as job %s", path, job_id)
            self.recent.append(WatchEntry(self._clock(), path, True, job_id=job_id))
            delete = self._settings().watch_delete_added
            try:
                if not await anyio.to_thread.run_sync(mark, path, None if delete else ADDED_SUFFIX, version):
                    log.info("watched file %s was written again while it was added: taken again "
                             "once it stops changing", path)
            except OSError as exc:
                log.warning("watched file %s added, but cannot be %s: %s", path,
                            "deleted" if delete else "renamed", exc.strerror or exc)
                self._unmarked.add(path)

    async def _refuse(self, path: str, reason: str, version: Version | None = None) -> None:
        log.warning("watched file %s refused: %s", path, reason)
        self.recent.append(WatchEntry(self._clock(), path, False, reason=reason))
        try:
            await anyio.to_thread.run_sync(mark, path, INVALID_SUFFIX, version)
        except OSError as exc:
            log.warning("watched file %s cannot be renamed: %s", path, exc.strerror or exc)
            self._unmarked.add(path)

    def status(self, settings: ServiceSettings) -> dict[str, object]:
        """What the API shows: the folders, each one's error, the files handled lately."""
        return {"enabled": settings.watch_enabled, "interval": settings.watch_interval,
                "folders": [{"folder": f, "save_path": p, "error": self.folder_errors.get(f)}
                            for f, p in settings.watch_folders],
                "recent": [e.to_json() for e in reversed(self.recent)]}
