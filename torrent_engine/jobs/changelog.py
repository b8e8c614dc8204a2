"""Which jobs changed, and when: the change log that list answers are built from (a client's
``since`` cursor, qBittorrent's ``rid``, Transmission's ``recently-active``), so an answer costs
what changed since the client's last view, not every job. Sans-I/O: no clock, no job records;
the service marks a job wherever its view may have changed (lifecycle.py says where).

Each mark takes the next change number and moves the job to the end of an ordered dict, so the
jobs changed after a cursor, or within the last minute, are read from the end until the first
older one: O(changed), not O(jobs). Removed jobs are kept the same way, at most ``max_removed``
of them; a cursor from before the oldest removal kept (or from before this run, or ahead of it)
cannot be answered from the log, and the caller answers it in full, as qBittorrent does for a
``rid`` it no longer knows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

_E = TypeVar("_E", tuple[int, float], tuple[int, float, "Removed"])

MAX_REMOVED = 10_000  # removed job ids kept for cursors' answers (a cursor before them: a full answer)


@dataclass(frozen=True, slots=True)
class Removed:
    """A job removed, and what a client needs to drop it: its number and its torrent's info-hash."""

    job_id: str
    number: int
    info_hash: str


@dataclass(frozen=True, slots=True)
class Changes:
    """What changed after a cursor: ``changed`` job ids (newest change last), ``removed`` ones,
    and the cursor of this answer; ``moved``: those of ``changed`` whose only change since the
    cursor is their queue position (``mark_moved``)."""

    cursor: int
    changed: list[str]
    removed: list[Removed]
    moved: frozenset[str] = frozenset()


class ChangeLog:
    """Change numbers of jobs, increasing from ``start`` (see the module's docstring)."""

    def __init__(self, start: int = 0, *, max_removed: int = MAX_REMOVED) -> None:
        if max_removed < 1:
            raise ValueError("max_removed must be at least 1")
        self._number = start
        self._floor = start  # a cursor below this is not answered from the log
        self._max_removed = max_removed
        self._changed: dict[str, tuple[int, float]] = {}  # job id -> (change number, time), in that order
        self._whole: dict[str, int] = {}  # job id -> the number of its last ``mark`` (not ``mark_moved``)
        self._removed: dict[str, tuple[int, float, Removed]] = {}  # job id -> (number, time, what)

    @property
    def cursor(self) -> int:
        """The last change number given (a client that has seen everything up to now holds it)."""
        return self._number

    def mark(self, job_id: str, at: float) -> None:
        """``job_id`` changed at ``at`` (what it shows may differ from what any client saw; a
        move in the queue alone is ``mark_moved``)."""
        self._number += 1
        self._changed.pop(job_id, None)
        self._changed[job_id] = (self._number, at)
        self._whole[job_id] = self._number

    def mark_moved(self, job_ids: Iterable[str], at: float) -> None:
        """Each of ``job_ids`` changed at ``at`` in its queue position alone, in that order (a
        settle of the queue marks thousands at once)."""
        changed, number = self._changed, self._number
        for job_id in job_ids:
            number += 1
            changed.pop(job_id, None)
            changed[job_id] = (number, at)
        self._number = number

    def remove(self, job_id: str, at: float, *, number: int = 0, info_hash: str = "") -> None:
        """``job_id`` (numbered ``number``, of the torrent ``info_hash``) is gone at ``at``."""
        self._number += 1
        self._changed.pop(job_id, None)
        self._whole.pop(job_id, None)
        self._removed.pop(job_id, None)
        self._removed[job_id] = (self._number, at, Removed(job_id, number, info_hash))
        while len(self._removed) > self._max_removed:  # (the oldest removal goes, and cursors before it)
            oldest = next(iter(self._removed))
            self._floor = self._removed.pop(oldest)[0]

    def reset(self) -> None:
        """Every job's view may have changed (the service started, a setting every view reads):
        every cursor given so far gets a full answer."""
        self._number += 1
        self._floor = self._number

    def knows(self, cursor: int) -> bool:
        """Whether what changed after ``cursor`` can be told from the log."""
        return self._floor <= cursor <= self._number

    def since(self, cursor: int) -> Changes | None:
        """What changed after ``cursor``; None when the log cannot tell (``knows``)."""
        if not self.knows(cursor):
            return None
        changed = _marked_from(self._changed, 0, cursor + 1)  # (change numbers are whole)
        removed = [e[2] for _, e in _after(self._removed, lambda e: e[0] > cursor)]
        whole, floor = self._whole, self._floor  # (no whole mark since the floor: none after it)
        moved = frozenset([job_id for job_id in changed if whole.get(job_id, floor) <= cursor])
        return Changes(self._number, changed, removed, moved)

    def within(self, since: float) -> Changes:
        """What changed at or after the time ``since`` (whatever the cursors: the removals kept)."""
        changed = _marked_from(self._changed, 1, since)
        removed = [e[2] for _, e in _after(self._removed, lambda e: e[1] >= since)]
        return Changes(self._number, changed, removed)

    def last_change(self, job_id: str) -> int | None:
        """The change number of ``job_id``'s last mark (None: not marked since the log began)."""
        entry = self._changed.get(job_id)
        return entry[0] if entry is not None else None

    def __len__(self) -> int:
        """How many jobs the log holds a change of (marked or removed)."""
        return len(self._changed) + len(self._removed)


def _marked_from(entries: dict[str, tuple[int, float]], field: int, least: float) -> list[str]:
    """The job ids of ``entries`` whose mark's ``field`` (0: its change number, 1: its time) is at
    least ``least``, oldest first (``_after``'s walk, one comparison a job and no call: thousands
    a poll during a mass check or add)."""
    out: list[str] = []
    for job_id, entry in reversed(entries.items()):
        if entry[field] < least:
            break
        out.append(job_id)
    out.reverse()
    return out


def _after(entries: dict[str, _E], newer: Callable[[_E], bool]) -> list[tuple[str, _E]]:
    """The entries from the end back to the first that is not ``newer``, oldest first (the dict
    is in change order, so that first one ends the walk)."""
    out: list[tuple[str, _E]] = []
    for item in reversed(entries.items()):
        if not newer(item[1]):
            break
        out.append(item)
    out.reverse()
    return out
