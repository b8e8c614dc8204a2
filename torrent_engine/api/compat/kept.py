"""Each job's record in a dialect (qBittorrent's torrent, Transmission's fields) and its JSON,
kept while what it was made from is the same: the job's snapshot object (the job service keeps
a quiet job's), and whatever else the record reads (the metainfo, a setting), compared by
identity. A list of 10 000 idle jobs then costs a look-up per job, not a record and an encoding
(torrents/info took 300 ms at 10 000 paused jobs, most of it making and encoding records that
had not changed)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Generic, TypeVar

from ...jobs import Job
from ...jsonvalue import JSON

R = TypeVar("R", bound=Mapping[str, JSON])  # a dialect's record of a job


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))  # (json.dumps makes one a call)


def encode(value: object) -> bytes:
    """JSON as the dialects answer it (UTF-8, no spaces)."""
    return _ENCODER.encode(value).encode()


class Kept(Generic[R]):
    """One job's record, as made from ``job`` and ``inputs``, and its JSON and the job's tracker
    URLs once asked for."""

    __slots__ = ("_json", "_tracker_urls", "inputs", "job", "record")

    def __init__(self, job: Job, inputs: tuple[object, ...], record: R) -> None:
        self.job = job
        self.inputs = inputs
        self.record = record
        self._json: bytes | None = None
        self._tracker_urls: tuple[str, ...] | None = None

    def json(self) -> bytes:
        """The record's JSON (encoded once)."""
        if self._json is None:
            self._json = encode(self.record)
        return self._json

    def tracker_urls(self) -> tuple[str, ...]:
        """The URLs of the trackers the job announces to, each once, in its order (found once:
        a full ``sync/maindata`` of 10 000 jobs found each again, 7 ms)."""
        if self._tracker_urls is None:
            self._tracker_urls = tuple(dict.fromkeys(t.url for t in self.job.trackers))
        return self._tracker_urls


_BUT_POSITION = tuple(f.name for f in dataclasses.fields(Job) if f.name != "queue_position")


def only_moved(before: Job, now: Job) -> bool:
    """Whether ``now`` differs from ``before`` in its queue position and nothing else."""
    if before.queue_position == now.queue_position:
        return False
    for name in _BUT_POSITION:
        a, b = getattr(before, name), getattr(now, name)
        if a is not b and a != b:
            return False
    return True


S = TypeVar("S")


class SameInputs(Generic[S]):
    """What a dialect's records read of the (frozen) settings, as ``KeptRecords.get``'s inputs:
    one tuple while the settings are the same object, so that a kept record's inputs are found
    the same at one look (a full list compared each of 10 000 item by item)."""

    def __init__(self, read: Callable[[S], tuple[object, ...]]) -> None:
        self._read = read
        self._of: S | None = None
        self._inputs: tuple[object, ...] = ()

    def __call__(self, settings: S) -> tuple[object, ...]:
        """The inputs read of ``settings`` (the tuple read last, while they are the same)."""
        if self._of is not settings:
            self._of, self._inputs = settings, self._read(settings)
        return self._inputs


class KeptRecords(Generic[R]):
    """The records of one dialect's one view, by job id."""

    def __init__(self) -> None:
        self._kept: dict[str, Kept[R]] = {}

    def get(self, job: Job, inputs: tuple[object, ...], make: Callable[[Job], R],
            moved: Callable[[R, int], R] | None = None) -> Kept[R]:
        """The record of ``job``: the one kept if ``job`` and each of ``inputs`` are the objects it
        was made from, else ``make(job)``'s, kept. ``moved``: when ``job`` differs from the kept
        one's only in its queue position, the record is ``moved(kept record, position)`` (a
        completion moves the position of every job after it: thousands of records a poll).
        (A caller that passes the same ``inputs`` tuple while they are the same, and one ``make``
        for a whole list, costs a kept job two looks.)"""
        kept = self._kept.get(job.id)
        if kept is not None:
            was = kept.inputs
            if was is inputs or (len(was) == len(inputs) and all(
                    a is b for a, b in zip(was, inputs, strict=True))):
                if kept.job is job:
                    return kept
                if moved is not None and only_moved(kept.job, job):
                    kept = self._kept[job.id] = Kept(job, inputs, moved(kept.record, job.queue_position))
                    return kept
        kept = self._kept[job.id] = Kept(job, inputs, make(job))
        return kept

    def prune(self, listed: Sequence[Kept[R]]) -> None:
        """Forget the records of jobs not in ``listed`` (every job's), once there are many more
        kept than listed (a removed job's record goes, without a walk per answer)."""
        if len(self._kept) > 2 * len(listed) + 1024:
            ids = {k.job.id for k in listed}
            self._kept = {k: v for k, v in self._kept.items() if k in ids}


class KeptRows(list[Kept[R]]):
    """A list of kept records that an answer writes as a JSON array of their kept JSON."""

    def json(self) -> bytes:
        """The JSON array."""
        return b"[" + b",".join(k.json() for k in self) + b"]"
