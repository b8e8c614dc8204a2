"""Moving a job's files from one save path to another (both already confined to the download root).

A move is planned (every destination checked first: an existing file there is a conflict, nothing
is moved), written down in the job's record (``PendingMove``), then done in two steps around a
commit, so that every file is whole in one place or the other at every moment, and a crash at
any moment is undone or finished at the next start (``recover``):

1. ``copy_files``: each file is renamed to the new place (same file system), or copied there
   under a temporary name, flushed and renamed into place (another file system); the originals
   stay. A failure moves back what was moved.
2. the caller commits: the record points at the new place.
3. ``remove_sources``: the originals that were copied are removed (and the job's copies of files
   it took at the new place, the same bytes: ``dropped``), and the folders left empty.

Until the commit the old place is whole (a crash rolls back: ``roll_back``); after it, the new
one is (a crash finishes the move: ``remove_sources``).
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal, NamedTuple

from ..model import JobConflict
from ..store import PendingMove

log = logging.getLogger("torrent_engine.jobs.move")

PARTIAL_SUFFIX = ".moving"  # a copy under way at the new place (never taken for the file)
COPY_CHUNK = 1 << 20

# What a move does with a file of the job already at the new place: "move" refuses it (a
# conflict), "keep" takes it there (its copy at the old place stays: libtorrent's
# ``dont_replace``, as qBittorrent moves), "find" moves nothing and takes what is there
# (Transmission's location set without a move), "same" takes it when it holds the very bytes of
# the job's copy, which is then dropped, and refuses one with other bytes (the move out of the
# incomplete folder once complete: the user's file neither overwritten nor left in the way).
Taking = Literal["move", "keep", "find", "same"]


class MovePlan(NamedTuple):
    """What a move does with each of the job's files ("/"-joined paths)."""

    files: list[str]  # on disk at the old place, to move
    found: list[str]  # at the new place already, taken there (the user's, as an add finds them)
    dropped: list[str]  # (of ``found``) the job's copies at the old place, the same bytes: removed


def plan_move(old: Path, new: Path, relative_paths: Sequence[Sequence[str]],
              taking: Taking = "move") -> MovePlan:
    """The plan of a move of the job's files from ``old`` to ``new``. A file it has at ``old``
    with one in its way at ``new`` is a ``JobConflict`` naming it (nothing was moved) unless
    ``taking`` says otherwise (``Taking``). "same" reads both files through."""
    plan = MovePlan([], [], [])
    for parts in relative_paths:
        if not parts:
            continue
        rel = "/".join(parts)
        src, dst = old.joinpath(*parts), new.joinpath(*parts)
        there = dst.exists() or dst.is_symlink()
        has = taking != "find" and (src.is_file() or src.is_symlink())
        if there and has and taking == "same":
            if not same_bytes(src, dst):
                raise JobConflict(f"{dst} already exists with other data (not overwritten; nothing "
                                  "was moved)", "location")
            plan.dropped.append(rel)
        elif there and has and taking == "move":
            raise JobConflict(f"{dst} already exists (not overwritten; nothing was moved)", "location")
        if there:
            plan.found.append(rel)
        elif has:
            plan.files.append(rel)
    return plan


def same_bytes(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` are regular files (not links) of the same bytes, read through."""
    try:
        sa, sb = os.lstat(a), os.lstat(b)
        if not (stat.S_ISREG(sa.st_mode) and stat.S_ISREG(sb.st_mode)) or sa.st_size != sb.st_size:
            return False
        if (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino):
            return True  # (one file, linked at both places)
        with open(a, "rb") as fa, open(b, "rb") as fb:
            while chunk := fa.read(COPY_CHUNK):
                if chunk != fb.read(len(chunk)):
                    return False
            return not fb.read(1)
    except OSError:
        return False


def _same_device(src: Path, dst_folder: Path) -> bool:
    """Whether a rename from ``src`` into ``dst_folder`` stays on one file system."""
    return os.lstat(src).st_dev == os.stat(dst_folder).st_dev


def _partial(dst: Path) -> Path:
    return dst.with_name(dst.name + PARTIAL_SUFFIX)


def _copy_file(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` through a temporary name, flushed to disk before it takes the
    name: a file at ``dst`` is always whole."""
    if src.is_symlink():
        os.symlink(os.readlink(src), dst)
        return
    partial = _partial(dst)
    with open(src, "rb") as fin, open(partial, "wb") as fout:
        shutil.copyfileobj(fin, fout, COPY_CHUNK)
        fout.flush()
        os.fsync(fout.fileno())
    shutil.copystat(src, partial)  # (the times too: the resume data's stamps)
    os.rename(partial, dst)


def copy_files(old: Path, new: Path, files: Iterable[str]) -> None:
    """Step 1: every file at ``new`` as well (renamed there on one file system, copied from
    another; the originals of copies stay until ``remove_sources``). On a failure what was
    done is undone and the error raised."""
    names = list(files)
    new.mkdir(parents=True, exist_ok=True)
    try:
        for rel in names:
            src, dst = old / rel, new / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            if _same_device(src, dst.parent):
                os.rename(src, dst)
            else:
                _copy_file(src, dst)
    except OSError:
        roll_back(PendingMove(str(old), str(new), tuple(names)))
        raise


def remove_sources(move: PendingMove) -> None:
    """Step 3 (the move is committed): remove the originals whose copy is at the new place, the
    job's copies of the files it took there (``dropped``), and the folders left empty at the old
    place (never the old save path itself)."""
    old, new = Path(move.old), Path(move.new)
    for rel in (*move.files, *move.dropped):
        src, dst = old / rel, new / rel
        if (dst.exists() or dst.is_symlink()) and (src.exists() or src.is_symlink()):
            try:
                src.unlink()
            except OSError as exc:
                log.warning("cannot remove %s (at %s as well): %s", src, dst, exc)
        _remove_quietly(_partial(dst))
    _prune(old, (*move.files, *move.dropped))


def roll_back(move: PendingMove) -> None:
    """Undo a move that was not committed: every file back at the old place (a copy at the new
    one removed, a renamed file renamed back), then the folders the move made, if empty."""
    old, new = Path(move.old), Path(move.new)
    for rel in move.files:
        src, dst = old / rel, new / rel
        _remove_quietly(_partial(dst))
        if not (dst.exists() or dst.is_symlink()):
            continue
        try:
            if src.exists() or src.is_symlink():
                dst.unlink()  # (a copy: the original is whole)
            else:
                src.parent.mkdir(parents=True, exist_ok=True)
                if _same_device(dst, src.parent):
                    os.rename(dst, src)
                else:
                    _copy_file(dst, src)
                    dst.unlink()
        except OSError as exc:
            log.warning("cannot move %s back to %s: %s", dst, src, exc)
    _prune(new, move.files)
    for folder in reversed(move.created):
        try:
            Path(folder).rmdir()
        except OSError:
            pass


def recover(move: PendingMove, committed: bool) -> None:
    """After a crash during a move: finish it when it was ``committed`` (the record points at
    the new place), else roll it back (the record still points at the old one)."""
    if committed:
        remove_sources(move)
    else:
        roll_back(move)


def _prune(root: Path, files: Iterable[str]) -> None:
    """Remove the folders left empty under ``root`` on the way to ``files`` (never ``root``)."""
    for rel in files:
        parent = (root / rel).parent
        while parent != root and root in parent.parents:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            log.warning("cannot remove %s: %s", path, exc)
