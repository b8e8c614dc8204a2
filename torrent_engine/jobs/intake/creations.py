"""Torrents made from the download root's files in the background, one task each (the tasks our
``/api/creations`` and qBittorrent's ``torrentcreator/*`` share): one hashing at a time, the
others queued, as qBittorrent's torrent creation manager runs them.

Every task is the service's: it runs in the service's task group, so stopping the daemon stops
the creations. The hashing runs in a worker thread and looks at its cancel scope between chunks
of pieces: a deleted task stops there, and nothing of it is left on disk (the .torrent is written
only once whole, through a temporary file, and never over what is there). Paths are confined to
the download root.
"""

from __future__ import annotations

import errno
import logging
import os
import secrets
import time
import weakref
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import anyio
import anyio.from_thread
import anyio.to_thread

from ...errors import TorrentEngineError
from ...formats.metainfo import MAX_PIECE_LENGTH, MIN_PIECE_LENGTH, Torrent
from ...storage.create import Version, create_torrent
from ..disk.paths import confine
from ..model import InvalidJobRequest, Job, JobConflict, JobError, JobNotFound, SavePathError
from ..organising.features import features_from
from ..trackers import check_tiers
from ..webseeds import check_web_seeds
from .addoptions import AddOptions

log = logging.getLogger(__name__)

MAX_TASKS = 256  # qBittorrent's TorrentCreator/Manager/MaxTasks default
HASHING_AT_ONCE = 1  # qBittorrent's TorrentCreator/Manager/NumThreads default
VERSIONS: tuple[Version, ...] = ("v1", "v2", "hybrid")
LARGEST_PIECE = 1 << (MAX_PIECE_LENGTH.bit_length() - 1)  # (the largest power of two we load: 256 MiB)
Status = Literal["queued", "running", "finished", "failed"]


class CreationHost(Protocol):
    """What the creations need of the service (its ``JobService``): a task group to run in, and
    an add for the torrents that start seeding."""

    def start_soon(self, work: Callable[[], Coroutine[object, object, None]], name: str) -> None:
        """Run ``work`` in the service's task group (``JobConflict`` while it does not run)."""

    async def add(self, source: Torrent, options: AddOptions | None = None) -> tuple[Job, bool]:
        """Add ``source`` as a job: the job, and whether it was made."""


@dataclass(frozen=True)
class CreationRequest:
    """What to make, read and checked (``creation_request``)."""

    source_path: Path  # resolved, inside the download root
    torrent_file_path: Path | None  # resolved, inside the download root; None: kept in memory
    version: Version
    piece_length: int  # 0: chosen from the size
    private: bool
    skip_hidden: bool  # qBittorrent's ignoreDotfiles
    start_seeding: bool
    comment: str
    source: str
    tiers: tuple[tuple[str, ...], ...]  # the trackers, BEP 12 tiers
    web_seeds: tuple[str, ...]


def _confined(root: Path, text: str, name: str) -> Path:
    try:
        return confine(root, text)
    except SavePathError as exc:
        raise InvalidJobRequest(exc.reason, name) from exc


def creation_request(root: Path, source_path: str, *, torrent_file_path: str = "",
                     version: str = "hybrid", piece_length: int = 0, private: bool = False,
                     skip_hidden: bool = True, start_seeding: bool | None = None, comment: str = "",
                     source: str = "", tiers: Sequence[Sequence[str]] = (),
                     web_seeds: Sequence[str] = ()) -> CreationRequest:
    """The request, or ``InvalidJobRequest`` naming what is wrong: a path outside the download
    root (``root``, resolved) or the root itself shared, a version other than v1, v2 or hybrid, a
    piece length that is not 0 or a power of two from 16 KiB to 256 MiB, a tracker or web seed
    that is no URL of their schemes (a job's own checks: each once, at most as many as a job
    takes); ``JobConflict`` naming ``torrent_file_path`` when something
    is where the .torrent would be written (it is never written over). Blank trackers and empty
    tiers are dropped; ``start_seeding`` unsaid: seed when no .torrent file is written
    (qBittorrent's default)."""
    if not source_path:
        raise InvalidJobRequest("is required", "source_path")
    path = _confined(root, source_path, "source_path")
    if path == root:
        raise InvalidJobRequest("the download root itself cannot be shared", "source_path")
    out = _confined(root, torrent_file_path, "torrent_file_path") if torrent_file_path else None
    if out is not None and (out.exists() or out.is_symlink()):
        raise JobConflict(f"{torrent_file_path!r}: there is something there already (it is not "
                          "overwritten)", "torrent_file_path")
    chosen = next((v for v in VERSIONS if v == version), None)
    if chosen is None:
        raise InvalidJobRequest("must be v1, v2 or hybrid", "version")
    if piece_length and (piece_length < MIN_PIECE_LENGTH or piece_length > LARGEST_PIECE
                         or piece_length & (piece_length - 1)):
        raise InvalidJobRequest(f"must be 0 (automatic) or a power of two from {MIN_PIECE_LENGTH >> 10} "
                                f"KiB to {LARGEST_PIECE >> 20} MiB", "piece_length")
    # (the job service's checks of a job's trackers and web seeds: blank ones dropped first)
    kept = check_tiers(([u for u in tier if u.strip()] for tier in tiers), "trackers")
    seeds = tuple(check_web_seeds([u for u in web_seeds if u.strip()], "web_seeds"))
    return CreationRequest(
        source_path=path, torrent_file_path=out, version=chosen,
        piece_length=piece_length, private=private, skip_hidden=skip_hidden,
        start_seeding=out is None if start_seeding is None else start_seeding, comment=comment,
        source=source, tiers=kept, web_seeds=seeds)


@dataclass
class CreationTask:
    """One creation and what became of it (times are epoch seconds)."""

    id: str
    request: CreationRequest
    time_added: float
    time_started: float | None = None  # set by the worker thread as the hashing begins
    time_finished: float | None = None
    progress: int = 0  # percent of the pieces hashed
    error: str = ""
    torrent_file: bytes | None = None
    torrent: Torrent | None = None  # once made
    job_id: str | None = None  # the job seeding it, when asked to
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)

    @property
    def finished(self) -> bool:
        """Whether it has ended, made or failed."""
        return self.time_finished is not None

    @property
    def status(self) -> Status:
        """Where it is: queued, running (hashing), finished (made) or failed."""
        if self.error:
            return "failed"
        if self.time_started is None:
            return "queued"
        return "finished" if self.finished else "running"


_CREATIONS: weakref.WeakKeyDictionary[CreationHost, TorrentCreations] = weakref.WeakKeyDictionary()


class TorrentCreations:
    """The creation tasks of one service, by id; at most ``MAX_TASKS`` (finished ones are
    forgotten, oldest first, to make room)."""

    def __init__(self, service: CreationHost, *, clock: Callable[[], float] = time.time,
                 max_tasks: int | None = None) -> None:
        self.service = service
        self._clock = clock
        self.max_tasks = MAX_TASKS if max_tasks is None else max_tasks
        self._tasks: dict[str, CreationTask] = {}
        self._hashing = anyio.CapacityLimiter(HASHING_AT_ONCE)

    @classmethod
    def of(cls, service: CreationHost) -> TorrentCreations:
        """The one set of tasks of ``service`` (made the first time: every front end over it sees
        the same tasks)."""
        creations = _CREATIONS.get(service)
        if creations is None:
            creations = _CREATIONS[service] = cls(service)
        return creations

    def add(self, request: CreationRequest) -> CreationTask:
        """Queue a creation (``JobConflict`` when ``max_tasks`` are unfinished, as qBittorrent)."""
        if len(self._tasks) >= self.max_tasks:
            for old in sorted((t for t in self._tasks.values() if t.finished), key=lambda t: t.time_added):
                if len(self._tasks) < self.max_tasks:
                    break
                del self._tasks[old.id]
        if len(self._tasks) >= self.max_tasks:
            raise JobConflict(f"{self.max_tasks} creations are unfinished: delete one first")
        task = CreationTask(id=secrets.token_hex(16), request=request, time_added=self._clock())
        self.service.start_soon(lambda: self._run(task), name=f"torrent creation {task.id}")
        self._tasks[task.id] = task
        return task

    def get(self, task_id: str) -> CreationTask:
        """The task ``task_id``, or ``JobNotFound``."""
        task = self._tasks.get(task_id)
        if task is None:
            raise JobNotFound("no torrent creation with that id", "id")
        return task

    def tasks(self) -> list[CreationTask]:
        """Every task, as qBittorrent lists them: the unfinished, then the finished, each in the
        order they were added."""
        return sorted(self._tasks.values(), key=lambda t: (t.finished, t.time_added))

    def delete(self, task_id: str) -> None:
        """Forget the task; one not finished is cancelled first (its hashing stops at the next
        chunk, and it writes nothing). A finished task's .torrent file, if it wrote one, stays."""
        self.get(task_id)
        self._tasks.pop(task_id).scope.cancel()

    async def _run(self, task: CreationTask) -> None:
        with task.scope:
            try:
                torrent, data = await anyio.to_thread.run_sync(self._make, task, limiter=self._hashing)
            except Exception as exc:  # (a bug here too fails the task, not the service's task group)
                expected = isinstance(exc, (OSError, TorrentEngineError, ValueError))
                if not expected:
                    log.exception("torrent creation %s failed", task.id)
                task.error = f"Create new torrent file failed. Reason: {exc if expected else repr(exc)}."
                task.time_finished = self._clock()
                return
            if task.scope.cancel_called:  # (deleted, or the daemon stops, as the file was written)
                if task.request.torrent_file_path is not None:
                    with anyio.CancelScope(shield=True):
                        await anyio.to_thread.run_sync(_remove, task.request.torrent_file_path, task.id)
                return
            task.torrent_file, task.torrent = data, torrent
            task.progress = 100
            if task.request.start_seeding:  # (before it is finished: a finished task's job is there)
                await self._seed(task, torrent)
            task.time_finished = self._clock()

    def _make(self, task: CreationTask) -> tuple[Torrent, bytes]:
        """The hashing, in a worker thread (its host's cancel scope looked at between chunks)."""
        anyio.from_thread.check_cancelled()
        task.time_started = self._clock()
        r = task.request

        def progress(done: int, total: int) -> None:
            task.progress = done * 100 // total if total else 100
            anyio.from_thread.check_cancelled()

        torrent = create_torrent(
            r.source_path, version=r.version, piece_length=r.piece_length or None,
            trackers=[list(t) for t in r.tiers], web_seeds=r.web_seeds, private=r.private,
            comment=r.comment or None, creation_date=int(self._clock()), source=r.source or None,
            skip_hidden=r.skip_hidden, threads=1, progress=progress)
        data = torrent.to_bytes()
        anyio.from_thread.check_cancelled()
        if r.torrent_file_path is not None:
            _write(r.torrent_file_path, data, task.id)
        return torrent, data

    async def _seed(self, task: CreationTask, torrent: Torrent) -> None:
        """Start seeding: the torrent added as a job seeding the source (seed mode, the layout
        as made, no incomplete folder), saved where the torrent puts the source's files: the
        folder above it, or the folder itself when the torrent holds its one file alone (a v2
        torrent of a folder of one file: BEP 52's tree of one file names no folder)."""
        source = task.request.source_path
        folder = not torrent.is_multi_file and await anyio.to_thread.run_sync(source.is_dir)
        options = AddOptions(save_path=str(source if folder else source.parent), seed_mode=True,
                             download_path="", features=features_from({"content_layout": "original"}))
        try:
            job, _ = await self.service.add(torrent, options)
        except (JobError, TorrentEngineError) as exc:
            task.error = f"Failed to start seeding. {exc}"
        else:
            task.job_id = job.id


def _part(path: Path, task_id: str) -> Path:
    return path.with_name(f".{path.name}.{task_id}.part")


def _write(path: Path, data: bytes, task_id: str) -> None:
    """``data`` at ``path`` whole or not at all (a temporary file beside it, then linked there),
    never over what is there (``FileExistsError``: something came there since the request)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    part = _part(path, task_id)
    try:
        with open(part, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(part, path)
        except FileExistsError:
            raise
        except OSError:  # (a file system without hard links: renamed, unless something came there)
            if path.exists() or path.is_symlink():
                raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path)) from None
            os.replace(part, path)
    finally:
        part.unlink(missing_ok=True)


def _remove(path: Path, task_id: str) -> None:
    _part(path, task_id).unlink(missing_ok=True)
    path.unlink(missing_ok=True)
