"""Which unfinished job writes each file path: two jobs must never write the same file.

A second torrent whose file has the path of a first job's would overwrite that job's data, and
the first job, complete already, would serve the second torrent's bytes as its own. The claims
are an index by absolute path (and the folders on the way), so checking an add, a move or a
magnet's metadata costs its own files, never a walk over all jobs. Pure bookkeeping, no I/O.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Overlap:
    """A file ``path`` a job would write, where ``other`` (a job id) writes ``theirs``: the same
    file, or a file where the other has a folder (or the other way round)."""

    path: str
    other: str
    theirs: str


def claimed_paths(save_path: str | Path, file_paths: Iterable[Sequence[str]],
                  pads: Iterable[int] = ()) -> list[str]:
    """The absolute paths a job saving into ``save_path`` writes (BEP 47 pad files, never
    written, left out)."""
    skip = set(pads)
    root = os.fspath(save_path)
    return [os.path.join(root, *parts) for i, parts in enumerate(file_paths) if parts and i not in skip]


class PathClaims:
    """File paths by the job that writes them; ``overlap`` finds a clash, ``claim`` takes paths."""

    def __init__(self) -> None:
        self._files: dict[str, str] = {}  # absolute file path -> job id
        self._dirs: dict[str, dict[str, int]] = {}  # folder -> job id -> how many of its files below
        self._by_job: dict[str, tuple[str, ...]] = {}  # (tuples of strings: the collector does not walk them)
        self.version = 0  # moves on at each claim (a release cannot make a clash): an answer of
        # ``overlap`` holds while it has not moved

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._by_job

    def overlap(self, job_id: str | None, paths: Iterable[str]) -> Overlap | None:
        """The first of ``paths`` that another job than ``job_id`` writes (None: none)."""
        for path in paths:
            owner = self._files.get(path)
            if owner is not None and owner != job_id:
                return Overlap(path, owner, path)
            below = self._dirs.get(path)
            if below is not None:  # a file where another job has a folder
                for other in below:
                    if other != job_id:
                        return Overlap(path, other, self._first_below(other, path))
            for folder in _folders(path):  # a folder where another job has a file
                owner = self._files.get(folder)
                if owner is not None and owner != job_id:
                    return Overlap(path, owner, folder)
        return None

    def _first_below(self, job_id: str, folder: str) -> str:
        prefix = folder.rstrip(os.sep) + os.sep
        return next((p for p in self._by_job.get(job_id, ()) if p.startswith(prefix)), folder)

    def claim(self, job_id: str, paths: Iterable[str]) -> None:
        """``job_id`` writes ``paths`` from now on (instead of what it claimed before)."""
        self.release(job_id)
        self.version += 1
        mine = tuple(dict.fromkeys(paths))
        self._by_job[job_id] = mine
        for path in mine:
            self._files.setdefault(path, job_id)
            for folder in _folders(path):
                counts = self._dirs.setdefault(folder, {})
                counts[job_id] = counts.get(job_id, 0) + 1

    def release(self, job_id: str) -> None:
        """``job_id`` writes nothing any more (it ended, or claims anew)."""
        for path in self._by_job.pop(job_id, ()):
            if self._files.get(path) == job_id:
                del self._files[path]
            for folder in _folders(path):
                counts = self._dirs.get(folder)
                if counts is None or job_id not in counts:
                    continue
                counts[job_id] -= 1
                if counts[job_id] <= 0:
                    del counts[job_id]
                    if not counts:
                        del self._dirs[folder]


def _folders(path: str) -> list[str]:
    """The folders above ``path``, innermost first (the file system's root left out). (By the
    separators, not ``os.path.dirname`` a level: a start claims every file of 10 000 jobs.)"""
    out: list[str] = []
    end = path.rfind(os.sep)
    while end > 0:
        while end > 1 and path[end - 1] == os.sep:  # ("a//b": one folder, "a")
            end -= 1
        if path[end - 1] == os.sep:  # (only the root is left)
            break
        out.append(path[:end])
        end = path.rfind(os.sep, 0, end)
    return out
