"""(Blocking.) A folder's entries inside the download root, as a client that picks a path sees
them: sorted by name, hidden ones left out, a symlink shown as what it points to unless that
lies outside the root, at most a given number."""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from ..model import SavePathError
from .paths import confine

__all__ = ["FolderEntry", "folder_entries", "free_bytes", "room_at"]


@dataclass(frozen=True, slots=True)
class FolderEntry:
    """One entry: its name, its full path, whether a folder, and its ``stat``."""

    name: str
    path: Path
    is_dir: bool
    st: os.stat_result


def folder_entries(root: Path, folder: Path, *, dirs: bool = True, files: bool = True,
                   prefix: str = "", limit: int | None = None) -> tuple[list[FolderEntry], bool]:
    """The entries of ``folder`` (already confined to ``root``, resolved) but ``.``, ``..`` and
    hidden ones, folders when ``dirs``, regular files when ``files``, their names beginning with
    ``prefix`` (case-insensitively), sorted by name; at most ``limit`` of them, and whether more
    were left out. A symlink is listed as what it points to, and not at all when that is outside
    ``root`` or missing. ``OSError`` when the folder cannot be read."""
    wanted = prefix.casefold()
    out: list[FolderEntry] = []
    with os.scandir(folder) as scan:
        entries = sorted((e for e in scan
                          if not e.name.startswith(".") and e.name.casefold().startswith(wanted)),
                         key=lambda e: e.name)
    for entry in entries:
        try:
            st = entry.stat()  # (follows a symlink)
            if entry.is_symlink():
                confine(root, str(folder / entry.name))
        except (OSError, SavePathError):
            continue  # (a dangling symlink, or one leading out of the root)
        is_dir = stat.S_ISDIR(st.st_mode)
        if not ((is_dir and dirs) or (stat.S_ISREG(st.st_mode) and files)):
            continue
        if limit is not None and len(out) >= limit:
            return out, True
        out.append(FolderEntry(entry.name, folder / entry.name, is_dir, st))
    return out, False


def free_bytes(root: Path, path: Path) -> int:
    """The bytes free to us at ``path`` (inside ``root``), or at its nearest folder that exists
    (one a job makes on demand); -1 when none can tell."""
    return room_at(root, path)[1]


def room_at(root: Path, path: Path) -> tuple[object, int]:
    """(Blocking.) The file system ``path`` (inside ``root``), or its nearest folder that exists,
    is on (its device number; ``path`` when none can tell) and the bytes free to us there (-1
    when none can tell)."""
    current = path
    while True:
        try:
            return os.stat(current).st_dev, shutil.disk_usage(current).free
        except OSError:
            if current == root or current.parent == current:
                return path, -1
            current = current.parent
