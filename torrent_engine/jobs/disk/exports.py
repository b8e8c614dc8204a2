"""Copies of the jobs' .torrent files in the folders the settings name: each new job's, once its
metainfo is known (at its add, or a magnet's when its metadata comes), in
``torrent_export_dir``; each finished download's, as it completes, in
``finished_torrent_export_dir`` (qBittorrent's "copy .torrent files to" and "copy .torrent files
for finished downloads to"). A copy is named after the torrent, ``<name>.torrent``, or
``<name> 1.torrent``, ``<name> 2.torrent``... when that is taken: a file there is never
replaced, and a copy is whole or absent (written aside, then linked in). A copy that cannot be
written is logged and the job goes on: it is a copy.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import anyio

from ...formats.metainfo import Torrent
from ...formats.metainfo.files import sanitize_component
from ..model import ProgramEvent, SavePathError
from ..store import JobRecord
from .host import DiskHost
from .paths import confine

log = logging.getLogger("torrent_engine.jobs.exports")

SUFFIX = ".torrent"
# copies of one name in a folder before a copy gives up (a folder never cleaned); a name is at most
# 240 bytes (``sanitize_component``, as the metainfo's names): " 9999.torrent" keeps it a file name
MOST_COPIES = 10_000


def export_folder(root: Path, folder: str, name: str) -> Path:
    """The folder a setting ``name`` names, absolute and confined to the download ``root`` as a
    save path is (``SavePathError`` naming the setting when it lies outside)."""
    try:
        return confine(root, folder)
    except SavePathError as exc:
        raise SavePathError(exc.reason, name) from exc


def write_copy(folder: Path, name: str, data: bytes) -> Path:
    """(Blocking.) ``data`` as ``<name>.torrent`` in ``folder`` (made when missing), or as
    ``<name> N.torrent`` with the first N free; never over a file there. The path written."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, aside = tempfile.mkstemp(prefix=".export.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        for n in range(MOST_COPIES):
            path = folder / (f"{name}{SUFFIX}" if n == 0 else f"{name} {n}{SUFFIX}")
            try:
                os.link(aside, path)  # (fails when the name is taken: nothing replaced)
            except FileExistsError:
                continue
            except OSError:  # (a file system without hard links: created, never replaced)
                if not _create(path, data):
                    continue
            return path
        raise FileExistsError(f"{folder / (name + SUFFIX)} and {MOST_COPIES - 1} numbered copies exist")
    finally:
        os.unlink(aside)


def _create(path: Path, data: bytes) -> bool:
    """(Blocking.) ``data`` in a new file ``path``; False when a file is there (left as it is).
    A write that fails removes the file it made: whole or absent."""
    try:
        f = open(path, "xb")  # (closed below; the file removed when its write fails)
    except FileExistsError:
        return False
    with f:
        try:
            f.write(data)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
    return True


class TorrentExports:
    """Writes the copies as the service's jobs are added and complete (``on``)."""

    def __init__(self, run: DiskHost) -> None:
        self.run = run

    def on(self, event: ProgramEvent, rec: JobRecord, torrent: Torrent | None) -> None:
        """``rec`` was added (its metainfo known: a magnet's when its metadata comes) or completed
        (``event``): its copy written, in the service's task group, where the settings say for
        that event (none: nothing). ``torrent``: its metainfo, when its session has it (else
        read as kept for it)."""
        settings = self.run.settings
        if event is ProgramEvent.ADDED:
            folder = settings.torrent_export_dir
        elif event is ProgramEvent.COMPLETED:
            folder = settings.finished_torrent_export_dir
        else:
            return
        if not folder or self.run.tg is None or (torrent is None and rec.file_paths is None):
            return  # (none asked; or a magnet without its metadata yet: copied when it comes)
        self.run.tg.start_soon(self._write, Path(folder), rec, torrent)

    async def _write(self, folder: Path, rec: JobRecord, torrent: Torrent | None) -> None:
        manager = self.run.manager
        name = sanitize_component((torrent.name if torrent is not None else rec.name).encode())

        def work() -> Path | None:
            data = torrent.to_bytes() if torrent is not None else manager.saved_metainfo_bytes(rec.info_hash)
            return None if data is None else write_copy(folder, name, data)

        try:
            path = await anyio.to_thread.run_sync(work)
        except OSError as exc:
            log.warning("job %s (%s): cannot copy its .torrent to %s: %s", rec.id, rec.name, folder, exc)
            return
        if path is None:
            log.warning("job %s (%s): no .torrent copied to %s: its metainfo is not kept", rec.id, rec.name,
                        folder)
        else:
            log.info("job %s (%s): .torrent copied to %s", rec.id, rec.name, path)
