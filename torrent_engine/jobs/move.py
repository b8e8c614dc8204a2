"""Moving a job's files from one save path to another (both already confined to the download root).

All or nothing as far as it can be: every destination is checked first (an existing file there
is a conflict, nothing is moved); a failure half-way moves back what was moved.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from .model import JobConflict

log = logging.getLogger(__name__)


def move_job_files(old: Path, new: Path, relative_paths: Sequence[Sequence[str]]) -> list[str]:
    """Move the job's files (relative paths) from ``old`` to ``new``; the folders left empty in
    ``old`` are removed. Returns the paths moved ("/"-joined)."""
    pairs: list[tuple[Path, Path, str]] = []
    for parts in relative_paths:
        if not parts:
            continue
        src, dst = old.joinpath(*parts), new.joinpath(*parts)
        if not (src.is_file() or src.is_symlink()):
            continue  # not downloaded yet (or skipped): nothing to move
        if dst.exists() or dst.is_symlink():
            raise JobConflict(f"{dst} already exists (not overwritten; nothing was moved)", "location")
        pairs.append((src, dst, "/".join(parts)))
    new.mkdir(parents=True, exist_ok=True)
    done: list[tuple[Path, Path]] = []
    try:
        for src, dst, _ in pairs:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(os.fspath(src), os.fspath(dst))
            done.append((src, dst))
    except OSError:
        for src, dst in reversed(done):
            try:
                shutil.move(os.fspath(dst), os.fspath(src))
            except OSError as exc:
                log.warning("cannot move %s back to %s: %s", dst, src, exc)
        raise
    for src, _, _ in pairs:  # the folders left empty (never ``old`` itself)
        parent = src.parent
        while parent != old and old in parent.parents:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent
    return [rel for _, _, rel in pairs]
