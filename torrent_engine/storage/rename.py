"""Renaming a torrent's files on disk: every file moves to its new path below the save path, or
none does (what was moved is moved back); folders left empty by the move are removed.

Blocking file I/O (call it on a worker thread). The new paths are built from checked components
and their folders, symlinks resolved, must lie below the save path; a new path where something
already is (a file, a folder, a symlink) is refused, never overwritten.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..errors import StorageError
from .paths import check_components, check_inside

__all__ = ["FileMove", "move_files"]

FileMove = tuple[Path, Path]  # (where the file is, where it goes), both below the save path


def move_files(save_path: Path, moves: Sequence[FileMove]) -> list[Path]:
    """Move each file of ``moves`` that exists (one not on disk yet has nothing to move), all or
    none: ``StorageError`` naming the file (nothing moved then). Returns the folders made."""
    for _old, new in moves:
        check_components(new.relative_to(save_path).parts)
        if os.path.lexists(new):
            raise StorageError(f"{new}: a file or folder is there already")
    made: list[Path] = []
    done: list[FileMove] = []
    try:
        for old, new in moves:
            if not os.path.lexists(old):
                continue
            if os.path.islink(old) or not old.is_file():
                raise StorageError(f"{old}: not a regular file")
            if old.parent != save_path:
                check_inside(save_path, old.parent)
            made.extend(_make_folders(save_path, new.parent))
            if os.path.lexists(new):  # (made meanwhile)
                raise StorageError(f"{new}: a file or folder is there already")
            os.rename(old, new)
            done.append((old, new))
    except OSError as exc:
        _undo(done, made)
        raise StorageError(f"cannot rename: {exc.strerror or exc} ({exc.filename})") from exc
    except StorageError:
        _undo(done, made)
        raise
    remove_empty_folders(save_path, [old.parent for old, _new in done])
    return made


def _make_folders(save_path: Path, folder: Path) -> list[Path]:
    """Make ``folder`` (below ``save_path``) and the missing ones above it; the ones made."""
    missing: list[Path] = []
    here = folder
    while here != save_path and not os.path.lexists(here):
        missing.append(here)
        here = here.parent
    if here != save_path:
        if os.path.islink(here) or not here.is_dir():
            raise StorageError(f"{here}: not a folder")
        check_inside(save_path, here)
    for d in reversed(missing):
        d.mkdir()
    return list(reversed(missing))


def _undo(done: list[FileMove], made: list[Path]) -> None:
    for old, new in reversed(done):
        try:
            os.rename(new, old)
        except OSError:
            pass
    for d in reversed(made):
        try:
            d.rmdir()
        except OSError:
            pass


def remove_empty_folders(save_path: Path, folders: Sequence[Path]) -> None:
    """Remove each of ``folders`` and those above it, up to ``save_path``, while they are empty
    (a folder holding anything, the user's too, stays)."""
    for folder in sorted(set(folders), key=lambda p: len(p.parts), reverse=True):
        here = folder
        while here != save_path and save_path in here.parents:
            if os.path.islink(here):
                break
            try:
                here.rmdir()
            except OSError:
                break
            here = here.parent
