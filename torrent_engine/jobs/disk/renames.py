"""Renaming a job's files and folders: which files move where (pure; the service moves them).

A path here is what the API shows for a file: relative to the job's save path, "/"-separated,
the torrent's top folder first for a multi-file torrent. A rename names one file (or one folder:
every file below it) by its path now and gives it a new path; the plan is every file's new path
components, checked so that nothing can leave the save path or land on another of the job's
files. The disk (a file there already, a symlink on the way) is the storage's to check, and the
other jobs' files are the claims' (``intake/claims.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..model import InvalidJobRequest, JobConflict

__all__ = ["MAX_PATH", "check_path", "plan_rename"]

MAX_PATH = 4096  # characters of a path given to rename (PATH_MAX)
MAX_COMPONENT = 255  # bytes of one name (NAME_MAX of the common file systems)


def check_path(value: object, field: str) -> tuple[str, ...]:
    """A relative "/"-separated path, as components; ``InvalidJobRequest`` naming ``field`` for
    anything that could leave the save path or that no file system takes: empty, absolute (or a
    drive), ``.`` or ``..``, an empty component, a backslash, NUL, a name too long."""
    if not isinstance(value, str) or not value:
        raise InvalidJobRequest("must be a non-empty relative path", field)
    if len(value) > MAX_PATH:
        raise InvalidJobRequest(f"is longer than {MAX_PATH} characters", field)
    if "\x00" in value or "\\" in value:
        raise InvalidJobRequest(f"{value!r} holds a NUL or a backslash", field)
    if value.startswith("/") or (len(value) >= 2 and value[1] == ":" and value[0].isalpha()):
        raise InvalidJobRequest(f"{value!r} is absolute: give a path relative to the job's folder", field)
    parts = tuple(value.split("/"))
    for part in parts:
        if part in ("", ".", ".."):
            raise InvalidJobRequest(f"{value!r} has a {part or 'empty'!r} component: it must stay in the "
                                    "job's folder", field)
        if len(part.encode("utf-8", "surrogateescape")) > MAX_COMPONENT:
            raise InvalidJobRequest(f"a name of {value!r} is longer than {MAX_COMPONENT} bytes", field)
    return parts


def plan_rename(file_paths: Sequence[Sequence[str]], pads: Sequence[int], old: tuple[str, ...],
                new: tuple[str, ...], *, folder: bool | None,
                fields: tuple[str, str] = ("old_path", "new_path")) -> dict[int, tuple[str, ...]]:
    """The files that move, index -> new path components, when the file (``folder`` False), the
    folder (True) or whichever ``old`` names (None) gets the path ``new``; ``fields``: the
    names of the two inputs, for the errors (``InvalidJobRequest`` when ``old`` names nothing of
    the job's, ``JobConflict`` when a new path is one of the job's files or folders)."""
    old_field, new_field = fields
    skip = set(pads)
    paths = {i: tuple(p) for i, p in enumerate(file_paths) if i not in skip}
    moves: dict[int, tuple[str, ...]] = {}
    if folder is not True:
        moves = {i: new for i, p in paths.items() if p == old}
    if not moves and folder is not False:
        n = len(old)
        moves = {i: new + p[n:] for i, p in paths.items() if len(p) > n and p[:n] == old}
        if moves and new[:n] == old and len(new) > n:
            raise InvalidJobRequest(f"cannot move the folder {'/'.join(old)!r} into itself", new_field)
    if not moves:
        what = {True: "folder", False: "file", None: "file or folder"}[folder]
        raise InvalidJobRequest(f"the job has no {what} {'/'.join(old)!r}", old_field)
    if all(paths[i] == p for i, p in moves.items()):
        return {}
    after = {i: moves.get(i, p) for i, p in paths.items()}
    staying = {p for i, p in after.items() if i not in moves}
    files = set(after.values())
    folders = {p[:k] for p in after.values() for k in range(1, len(p))}
    seen: set[tuple[str, ...]] = set()
    for p in moves.values():
        if p in staying or p in seen or p in folders or any(p[:k] in files for k in range(1, len(p))):
            raise JobConflict(f"{'/'.join(p)!r} is the path of another file or folder of the job", new_field)
        seen.add(p)
    return moves
