"""Spies for the tests that a job the queue holds never runs: which sessions start their swarm
(trackers, DHT and LSD announced to; peers dialed from then on), and data checks that last
until the test releases them; where the manager starts sessions; the queue's rounds made; the
job records each transaction writes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest

from torrent_engine.engine.manager import TorrentManager
from torrent_engine.formats.magnet import Magnet
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.jobs.queueing.rounds import QueueRounds
from torrent_engine.session import Session
from torrent_engine.session.announce import Announcer
from torrent_engine.session.checking import Checker
from torrent_engine.session.phases import Checking


def queue_rounds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The queue's rounds made from now on: for each, the id of the task it was made in."""
    made: list[int] = []
    real = QueueRounds._round

    async def counted(self: QueueRounds) -> None:
        made.append(anyio.get_current_task().id)
        await real(self)

    monkeypatch.setattr(QueueRounds, "_round", counted)
    return made


def records_written(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The job store's transactions from now on, each as how many records it wrote (a record
    written alone counts one)."""
    from torrent_engine.jobs.store import JobStore

    groups: list[int] = []
    real_many, real_one = JobStore.write_many, JobStore.write

    def written(self: JobStore, rows: list[tuple[str, bytes]]) -> None:
        groups.append(len(rows))
        real_many(self, rows)

    def written_alone(self: JobStore, job_id: str, data: bytes) -> None:
        groups.append(1)
        real_one(self, job_id, data)

    monkeypatch.setattr(JobStore, "write_many", written)
    monkeypatch.setattr(JobStore, "write", written_alone)
    return groups


def swarms_started(monkeypatch: pytest.MonkeyPatch, *, by: str = "name") -> list[str]:
    """The sessions whose swarm starts, in order, from now on: each by its torrent's ``name`` or
    its ``info_hash_hex`` (``by``)."""
    started: list[str] = []
    start = Announcer.start

    def noted(self: Announcer, swarm: anyio.abc.TaskGroup) -> None:
        started.append(getattr(self._ctx, by))
        start(self, swarm)

    monkeypatch.setattr(Announcer, "start", noted)
    return started


def sessions_started(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The save path of each session a ``TorrentManager`` starts from now on, in order."""
    started: list[Path] = []
    start = TorrentManager._start

    async def noted(self: TorrentManager, torrent: Torrent | Magnet, save_path: Path,
                    **kwargs: Any) -> Session:
        started.append(save_path)
        return await start(self, torrent, save_path, **kwargs)

    monkeypatch.setattr(TorrentManager, "_start", noted)
    return started


@dataclass
class HeldChecks:
    """The data checks of the torrents named in ``names`` wait for ``release``; ``checking`` is
    set when one of them has begun."""

    names: set[str] = field(default_factory=set)
    checking: anyio.Event = field(default_factory=anyio.Event)
    release: anyio.Event = field(default_factory=anyio.Event)


def hold_checks(monkeypatch: pytest.MonkeyPatch, *, first: bool = False) -> HeldChecks:
    """From now on, a data check of a torrent named in the result's ``names`` lasts until its
    ``release`` is set. ``first``: held before its session reads its resume data and says what
    it does (it stays queued), not once it hashes."""
    held = HeldChecks()
    name = "check" if first else "_recheck"
    real = getattr(Checker, name)

    async def held_check(self: Checker, phase: Checking, *rest: Any) -> Any:
        if phase.parts.torrent.name in held.names:
            held.checking.set()
            await held.release.wait()
        return await real(self, phase, *rest)

    monkeypatch.setattr(Checker, name, held_check)
    return held
