"""Save paths confined to the download root, and the clean-up of what a cancelled job made.

A save path is checked before anything is written: relative to the root or absolute inside it,
with every symlink on the way resolved, so ``../x``, ``/etc`` and a link leading out all fail.
A job remembers which folders it had to create and which of its files were already on disk;
cancelling with ``delete_files`` removes only its own files and the folders it created.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ...formats.magnet import Magnet
from ...formats.metainfo import Torrent
from ..model import InvalidJobRequest, SavePathError
from ..store import JobRecord

log = logging.getLogger("torrent_engine.jobs.paths")

# what a look at a path that is not there raises (``pathlib``'s ignored errors)
_NOT_THERE = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP})
NAME_MAX = 255  # bytes in one file name (Linux, macOS, Windows alike)
PATH_MAX = 4095  # bytes in a whole path (Linux's PATH_MAX less its NUL)


def layout_save_path(save: Path, torrent: Torrent | Magnet, layout: str) -> Path:
    """Where the job saves so that its files land as ``layout`` asks (the caller confines it).

    "subfolder" puts a one-file torrent in a folder named after it (without its extension); a
    multi-file torrent has its own top folder already. "no_subfolder" of a multi-file torrent
    would need the storage to drop the top folder, which it does not do: refused; for a one-file
    torrent it is the original layout. Either needs the metainfo (refused for a bare magnet)."""
    if layout == "original":
        return save
    if not isinstance(torrent, Torrent):
        raise InvalidJobRequest(f"{layout!r} needs the metainfo (add the .torrent, not a magnet link)",
                                "content_layout")
    multi = any(len(f.path) > 1 for f in torrent.files)
    if layout == "subfolder":
        return save if multi else save / (PurePosixPath(torrent.name).stem or torrent.name)
    if multi:
        raise InvalidJobRequest("no_subfolder is not supported for a multi-file torrent (its files keep "
                                "their top folder)", "content_layout")
    return save


def confine(root: Path, save_path: str | None) -> Path:
    """The absolute, symlink-resolved save path for ``save_path`` under ``root`` (already resolved).

    Raises ``SavePathError`` when it lies outside the root. Nothing is created.
    """
    if save_path is None or save_path == "":
        return root
    if not isinstance(save_path, str):
        raise SavePathError("must be a string")
    if "\x00" in save_path:
        raise SavePathError("contains a NUL character")
    candidate = Path(save_path)
    if not candidate.is_absolute():
        candidate = root / candidate
    try:
        resolved = candidate.resolve(strict=False)  # follows every symlink that exists
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise SavePathError(f"{save_path!r} cannot be resolved: {exc}") from exc
    if resolved != root and root not in resolved.parents:
        raise SavePathError(f"{save_path!r} is outside the download root {str(root)!r}")
    # (past these, every later stat or mkdir would fail with ENAMETOOLONG)
    if any(len(os.fsencode(part)) > NAME_MAX for part in resolved.parts):
        raise SavePathError(f"{save_path[:80]!r}...: a folder name is over {NAME_MAX} bytes")
    if len(os.fsencode(resolved)) > PATH_MAX:
        raise SavePathError(f"{save_path[:80]!r}...: the path is over {PATH_MAX} bytes")
    return resolved


def missing_dirs(root: Path, path: Path) -> list[str]:
    """The folders between ``root`` (exclusive) and ``path`` (inclusive) that do not exist yet,
    outermost first: what a job saving into ``path`` creates."""
    out: list[str] = []
    current = path
    while current != root and root in current.parents:
        if not current.exists():
            out.append(str(current))
        else:
            break
        current = current.parent
    out.reverse()
    return out


def existing_files(save_path: Path, relative_paths: Iterable[Sequence[str]]) -> list[str]:
    """Which of the torrent's files (by relative path) are on disk already, "/"-joined."""
    return list(files_found(save_path, relative_paths))


def files_found(save_path: Path, relative_paths: Iterable[Sequence[str]]) -> dict[str, int]:
    """The torrent's files (by relative path) on disk already, "/"-joined, each with its size
    (-1: a symlink that leads nowhere). One ``stat`` a file, a second only where none is."""
    found: dict[str, int] = {}
    for parts in relative_paths:
        if not parts:
            continue
        path = save_path.joinpath(*parts)
        try:
            size = os.stat(path).st_size
        except OSError as exc:  # ("not there" as ``Path.exists`` takes it; another is raised)
            if exc.errno not in _NOT_THERE:
                raise
            if not path.is_symlink():
                continue
            size = -1
        found["/".join(parts)] = size
    return found


@dataclass(frozen=True, slots=True)
class Ground:
    """Where a new job saves, and what the disk holds there before it: read in one go."""

    save: Path  # confined to the download root, after the content layout
    created_dirs: list[str]  # the folders the job creates (``missing_dirs``)
    preexisting: list[str]  # its files on disk already ("/"-joined; never deleted by the job)
    # the sizes of its files found there (``files_found``: links in the torrent too): whether a
    # new seed's files are all there is judged from this, with no second look (``wanted_there``)
    sizes: Mapping[str, int] = field(default_factory=dict)


def ground(root: Path, save_path: str | None, torrent: Torrent | Magnet, layout: str,
           seen: GroundsSeen | None = None) -> Ground:
    """The ``Ground`` of a job added with ``save_path`` (None: the root) and content ``layout``
    (blocking: it resolves symlinks and looks at the disk). ``SavePathError`` or
    ``InvalidJobRequest`` (a layout the torrent cannot have) when the path cannot be used.
    ``seen``: the save paths a group of adds read in one go has confined already."""
    seen = seen if seen is not None else GroundsSeen()
    save = seen.confine(root, save_path)
    if layout != "original":
        save = seen.confine(root, str(layout_save_path(save, torrent, layout)))
    files = [f for f in torrent.files if not f.pad] if isinstance(torrent, Torrent) else []
    sizes = files_found(save, [f.path for f in files])
    return Ground(save, seen.missing_dirs(root, save),
                  [p for f in files if "l" not in f.attr and (p := "/".join(f.path)) in sizes], sizes)


class GroundsSeen:
    """The save paths confined, and their missing folders, in one go of ``ground`` over a group
    of adds (one worker-thread hop; nothing is made meanwhile): a batch's adds mostly share one
    save path, whose resolving was about 20 of the 26 us of an add's ``ground`` here
    (bench/RESULTS.md, "A batch's save path confined once"). Not kept beyond the group: the disk
    may change after it."""

    __slots__ = ("_confined", "_missing")

    def __init__(self) -> None:
        self._confined: dict[tuple[Path, str | None], Path] = {}
        self._missing: dict[tuple[Path, Path], list[str]] = {}

    def confine(self, root: Path, save_path: str | None) -> Path:
        """``confine``'s answer, asked once a save path (a refusal is not kept: raised each time)."""
        key = (root, save_path)
        found = self._confined.get(key)
        if found is None:
            found = self._confined[key] = confine(root, save_path)
        return found

    def missing_dirs(self, root: Path, path: Path) -> list[str]:
        """``missing_dirs``'s answer, looked for once a folder (each caller its own list)."""
        key = (root, path)
        found = self._missing.get(key)
        if found is None:
            found = self._missing[key] = missing_dirs(root, path)
        return list(found)


def _inside(root: Path, path: Path) -> bool:
    try:
        real = path.parent.resolve(strict=False) / path.name
    except (OSError, RuntimeError):
        return False
    return root == real or root in real.parents


def remove_job_files(root: Path, rec: JobRecord) -> None:
    """(Blocking.) Delete the files the job ``rec`` made and the folders it created under the
    download ``root`` (never outside it: a record is read from disk, never trusted to point inside)."""
    try:
        save_path = confine(root, rec.options.data_path)
    except SavePathError:
        log.warning("job %s: not deleting files outside the download root (%s)", rec.id,
                    rec.options.data_path)
        return
    created = [d for d in rec.created_dirs if root in Path(d).parents]
    removed = delete_job_files(save_path, rec.file_paths or [], keep=rec.preexisting or [],
                               created_dirs=created)
    log.info("job %s: removed %d files and folders", rec.id, len(removed))


def delete_job_files(save_path: Path, relative_paths: Iterable[Sequence[str]], *, keep: Iterable[str],
                     created_dirs: Iterable[str]) -> list[str]:
    """Remove a job's files under ``save_path`` except those in ``keep`` (there before the job),
    then the empty folders on their way and the folders the job created. Never follows a symlink
    out of ``save_path``; a folder still holding something is left. Returns what was removed."""
    root = save_path.resolve(strict=False)
    kept = set(keep)
    removed: list[str] = []
    dirs: set[Path] = set()
    for parts in relative_paths:
        if not parts or "/".join(parts) in kept:
            continue
        path = root.joinpath(*parts)
        parent = path.parent
        while parent != root and root in parent.parents:
            dirs.add(parent)
            parent = parent.parent
        if not _inside(root, path):
            log.warning("not deleting %s: a folder on its way leads out of %s", path, root)
            continue
        try:
            if path.is_symlink() or path.is_file():
                path.unlink()  # a symlink itself, never its target
                removed.append(str(path))
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("cannot delete %s: %s", path, exc)
    ours = [Path(d) for d in created_dirs]
    for d in sorted({*dirs, *ours}, key=lambda p: len(p.parts), reverse=True):
        if d.is_symlink() or not d.is_dir():
            continue
        if d not in ours and not _inside(root, d):
            continue
        try:
            d.rmdir()  # only an empty folder: other people's files are never touched
            removed.append(str(d))
        except OSError:
            pass
    return removed

