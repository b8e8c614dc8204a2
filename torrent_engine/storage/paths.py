"""Where a torrent's files may go: paths built from checked components, and the check that a
path, symlinks resolved, lies below the save path."""

from __future__ import annotations

import os
import time
from pathlib import Path

from ..errors import StorageError

__all__ = ["O_NOFOLLOW", "check_components", "check_inside", "real_path", "safe_join"]

REAL_PATH_TTL = 5.0  # seconds a folder's resolved path is taken as known (a symlink changed: seen after)
_real_paths: dict[str, tuple[float, Path]] = {}

_FORBIDDEN_COMPONENTS = {"", ".", ".."}
O_NOFOLLOW: int = getattr(os, "O_NOFOLLOW", 0)  # never write through a symlink planted at a file path


def real_path(path: str | os.PathLike[str]) -> Path:
    """``path`` with its symlinks resolved (``Path.resolve``), known for ``REAL_PATH_TTL``
    seconds: a thousand torrents added to one folder resolved it (an lstat per component)
    several times each."""
    key = os.fspath(path)
    now = time.monotonic()
    known = _real_paths.get(key)
    if known is not None and now - known[0] < REAL_PATH_TTL:
        return known[1]
    real = Path(key).resolve()
    if len(_real_paths) >= 256:
        _real_paths.clear()
    _real_paths[key] = (now, real)
    return real


def check_components(components: tuple[str, ...]) -> None:
    """``StorageError`` for a path that could escape (see ``safe_join``); lexical only."""
    if not components:
        raise StorageError("empty file path")
    for c in components:
        # "C:" is a drive on Windows (metainfo defuses it); there any ":" opens a data stream.
        drive = (len(c) == 2 and c[1] == ":" and c[0].isalpha()) or (os.name == "nt" and ":" in c)
        if c in _FORBIDDEN_COMPONENTS or "/" in c or "\\" in c or "\x00" in c or drive:
            raise StorageError(f"unsafe path component {c!r} in {'/'.join(components)!r}")


def safe_join(root: Path, components: tuple[str, ...]) -> Path:
    """``root`` joined with path ``components``; ``StorageError`` for anything that could escape.

    Rejects empty, ``.``/``..``, separators, NUL and drive-letter components (metainfo should
    already have sanitized them; this is defense in depth). The check is lexical and cheap (a
    100 000-file torrent is set up without touching the disk); symlinks planted on the way are
    caught when a file is opened or created, in the worker thread.
    """
    check_components(components)
    return root.joinpath(*components)


def check_inside(root: Path, path: Path) -> None:
    """``StorageError`` unless ``path``, with existing symlinks resolved, lies below ``root``."""
    real = os.path.realpath(path)
    root_real = os.path.realpath(root)
    if os.path.commonpath([real, root_real]) != root_real or real == root_real:
        raise StorageError(f"path {str(path)!r} resolves outside the save path {str(root)!r}")
