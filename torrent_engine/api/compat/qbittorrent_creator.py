"""qBittorrent's torrent creator (``torrentcreator/addTask``, ``status``, ``torrentFile``,
``deleteTask``; WebAPI 2.10.4-2.16), as torrentcreatorcontroller.cpp and torrentcreationmanager.cpp
answer them: one background creation per task, one hashing at a time, the others queued.

Every task is the service's: it runs in the service's task group, so stopping the daemon stops
the creations. The hashing runs in a worker thread and looks at its cancel scope between
chunks of pieces: a deleted task stops there, and nothing of it is left on disk (the .torrent
is written only once whole, through a temporary file). Paths are confined to the download
root, as ``app/getDirectoryContent`` is (qBittorrent reads and writes anywhere on the host).
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

import anyio
import anyio.from_thread
import anyio.to_thread

from ...errors import MetainfoError, TorrentEngineError
from ...formats.metainfo import MAX_PIECE_LENGTH, MIN_PIECE_LENGTH, Torrent
from ...jobs import AddOptions, JobError, JobService, SavePathError
from ...jobs.disk.paths import confine
from ...jobs.organising.features import features_from
from ...jsonvalue import JSON
from ...storage.create import TRACKER_SCHEMES, WEB_SEED_SCHEMES, Version, check_url, create_torrent
from .forms import Form
from .qbittorrent_records import QbtError, parse_bool, parse_int

log = logging.getLogger(__name__)

MAX_TASKS = 256  # qBittorrent's TorrentCreator/Manager/MaxTasks default
HASHING_AT_ONCE = 1  # qBittorrent's TorrentCreator/Manager/NumThreads default
_FORMATS: dict[str, Version] = {"": "hybrid", "v1": "v1", "v2": "v2", "hybrid": "hybrid"}


@dataclass(frozen=True)
class CreationRequest:
    """``torrentcreator/addTask``'s form, read and checked."""

    source_path: Path  # resolved, inside the download root
    torrent_file_path: Path | None  # resolved, inside the download root; None: kept in memory
    version: Version
    piece_length: int  # 0: chosen from the size
    private: bool
    skip_hidden: bool  # qBittorrent's ignoreDotfiles
    start_seeding: bool
    comment: str
    source: str
    trackers: tuple[str, ...]  # as sent: an empty one starts the next tier
    web_seeds: tuple[str, ...]

    def tiers(self) -> list[list[str]]:
        """The trackers as BEP 12 tiers (qBittorrent's: an empty line is a tier break)."""
        tiers: list[list[str]] = [[]]
        for url in self.trackers:
            if url.strip():
                tiers[-1].append(url.strip())
            elif tiers[-1]:
                tiers.append([])
        return [t for t in tiers if t]


def _urls(text: str | None) -> tuple[str, ...]:
    """qBittorrent's ``parseUrls``: ``|``-separated, each percent-decoded."""
    return tuple(unquote(u) for u in text.split("|")) if text else ()


def _confined(root: Path, text: str, name: str) -> Path:
    try:
        return confine(root, text)
    except SavePathError as exc:
        raise QbtError(400, f"{name}: {exc.reason}") from exc


def read_request(root: Path, form: Form) -> CreationRequest:
    """The request ``form`` makes, or a ``400`` naming what is wrong: a path outside the download
    root, an unknown ``format`` (qBittorrent takes it as hybrid), a ``pieceSize`` that is not a
    power of two from 16 KiB to 256 MiB, a tracker or web seed that is not a URL (qBittorrent makes a
    torrent with it)."""
    text = form.get("sourcePath")
    if not text:
        raise QbtError(400, "Missing required parameters: sourcePath")
    source_path = _confined(root, text, "sourcePath")
    if source_path == root:
        raise QbtError(400, "sourcePath: the download root itself cannot be shared")
    out_text = form.get("torrentFilePath") or ""
    torrent_file_path = _confined(root, out_text, "torrentFilePath") if out_text else None
    version = _FORMATS.get((form.get("format") or "").lower())
    if version is None:
        raise QbtError(400, "format must be v1, v2 or hybrid")
    piece_length = parse_int(form.get("pieceSize")) or 0
    largest = 1 << (MAX_PIECE_LENGTH.bit_length() - 1)  # (the largest power of two we load: 256 MiB)
    if piece_length and (piece_length < MIN_PIECE_LENGTH or piece_length > largest
                         or piece_length & (piece_length - 1)):
        raise QbtError(400, f"pieceSize must be 0 (automatic) or a power of two from "
                            f"{MIN_PIECE_LENGTH >> 10} KiB to {largest >> 20} MiB")
    trackers, web_seeds = _urls(form.get("trackers")), _urls(form.get("urlSeeds"))
    try:
        for url in trackers:
            if url.strip():
                check_url(url.strip(), TRACKER_SCHEMES, "trackers")
        for url in web_seeds:
            if url.strip():
                check_url(url.strip(), WEB_SEED_SCHEMES, "urlSeeds")
    except MetainfoError as exc:
        raise QbtError(400, str(exc)) from exc
    start_seeding = parse_bool(form.get("startSeeding"))
    return CreationRequest(
        source_path=source_path, torrent_file_path=torrent_file_path, version=version,
        piece_length=piece_length, private=bool(parse_bool(form.get("private"))),
        skip_hidden=parse_bool(form.get("ignoreDotfiles")) is not False,
        start_seeding=torrent_file_path is None if start_seeding is None else start_seeding,
        comment=form.get("comment") or "", source=form.get("source") or "",
        trackers=trackers, web_seeds=tuple(u.strip() for u in web_seeds if u.strip()))


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
    piece_length: int = 0  # the torrent's, once made
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)

    @property
    def finished(self) -> bool:
        """Whether it has ended, made or failed."""
        return self.time_finished is not None

    @property
    def status(self) -> str:
        """qBittorrent's name for where it is: Queued, Running, Finished or Failed."""
        if self.error:
            return "Failed"
        if self.time_started is None:
            return "Queued"
        return "Finished" if self.finished else "Running"

    def record(self) -> dict[str, JSON]:
        """The task as ``torrentcreator/status`` shows it."""
        r = self.request
        out: dict[str, JSON] = {
            "taskID": self.id, "sourcePath": str(r.source_path), "pieceSize": r.piece_length,
            "ignoreDotfiles": r.skip_hidden, "private": r.private, "timeAdded": int(self.time_added),
            "format": r.version, "status": self.status}
        if r.comment:
            out["comment"] = r.comment
        if r.torrent_file_path is not None:
            out["torrentFilePath"] = str(r.torrent_file_path)
        if r.source:
            out["source"] = r.source
        if r.trackers:
            out["trackers"] = list(r.trackers)
        if r.web_seeds:
            out["urlSeeds"] = list(r.web_seeds)
        if self.time_started is not None:
            out["timeStarted"] = int(self.time_started)
        if self.time_finished is not None:
            out["timeFinished"] = int(self.time_finished)
            if self.error:
                out["errorMessage"] = self.error
            else:
                out["pieceSize"] = self.piece_length
        elif self.time_started is not None:
            out["progress"] = self.progress
        return out


class TorrentCreations:
    """The creation tasks of one daemon, by id; at most ``MAX_TASKS`` (finished ones are
    forgotten, oldest first, to make room)."""

    def __init__(self, service: JobService, *, clock: Callable[[], float] = time.time,
                 max_tasks: int | None = None) -> None:
        self.service = service
        self._clock = clock
        self.max_tasks = MAX_TASKS if max_tasks is None else max_tasks
        self._tasks: dict[str, CreationTask] = {}
        self._hashing = anyio.CapacityLimiter(HASHING_AT_ONCE)

    def add(self, request: CreationRequest) -> CreationTask:
        """Queue a creation (``409`` when ``MAX_TASKS`` are unfinished, as qBittorrent)."""
        if len(self._tasks) >= self.max_tasks:
            for old in sorted((t for t in self._tasks.values() if t.finished), key=lambda t: t.time_added):
                if len(self._tasks) < self.max_tasks:
                    break
                del self._tasks[old.id]
        if len(self._tasks) >= self.max_tasks:
            raise QbtError(409, "Too many active tasks")
        task = CreationTask(id=secrets.token_hex(16), request=request, time_added=self._clock())
        self.service.start_soon(lambda: self._run(task), name=f"torrent creation {task.id}")
        self._tasks[task.id] = task
        return task

    def get(self, task_id: str) -> CreationTask:
        """The task ``task_id``, or ``404``."""
        task = self._tasks.get(task_id)
        if task is None:
            raise QbtError(404, "Not Found")
        return task

    def tasks(self) -> list[CreationTask]:
        """Every task, as qBittorrent lists them: the unfinished, then the finished, each in the
        order they were added."""
        return sorted(self._tasks.values(), key=lambda t: (t.finished, t.time_added))

    def delete(self, task_id: str) -> None:
        """Forget the task; one not finished is cancelled first (its hashing stops at the next
        chunk, and it writes nothing). A finished task's .torrent file, if it wrote one, stays."""
        task = self._tasks.pop(task_id, None)
        if task is None:
            raise QbtError(404, "Not Found")
        task.scope.cancel()

    async def _run(self, task: CreationTask) -> None:
        with task.scope:
            try:
                torrent, data = await anyio.to_thread.run_sync(self._make, task, limiter=self._hashing)
            except (OSError, TorrentEngineError, ValueError) as exc:
                task.error = f"Create new torrent file failed. Reason: {exc}."
                task.time_finished = self._clock()
                return
            except Exception as exc:  # (a bug here fails the task, not the service's task group)
                log.exception("torrent creation %s failed", task.id)
                task.error = f"Create new torrent file failed. Reason: {exc!r}."
                task.time_finished = self._clock()
                return
            if task.scope.cancel_called:  # (deleted, or the daemon stops, as the file was written)
                if task.request.torrent_file_path is not None:
                    with anyio.CancelScope(shield=True):
                        await anyio.to_thread.run_sync(_remove, task.request.torrent_file_path, task.id)
                return
            task.torrent_file, task.piece_length = data, torrent.piece_length
            task.progress = 100
            task.time_finished = self._clock()
            if task.request.start_seeding:
                await self._seed(task, torrent)

    def _make(self, task: CreationTask) -> tuple[Torrent, bytes]:
        """The hashing, in a worker thread (its host's cancel scope looked at between chunks)."""
        anyio.from_thread.check_cancelled()
        task.time_started = self._clock()
        r = task.request

        def progress(done: int, total: int) -> None:
            task.progress = done * 100 // total if total else 100
            anyio.from_thread.check_cancelled()

        torrent = create_torrent(
            r.source_path, version=r.version, piece_length=r.piece_length or None, trackers=r.tiers(),
            web_seeds=r.web_seeds, private=r.private, comment=r.comment or None,
            creation_date=int(self._clock()), source=r.source or None, skip_hidden=r.skip_hidden,
            threads=1, progress=progress)
        data = torrent.to_bytes()
        anyio.from_thread.check_cancelled()
        if r.torrent_file_path is not None:
            _write(r.torrent_file_path, data, task.id)
        return torrent, data

    async def _seed(self, task: CreationTask, torrent: Torrent) -> None:
        """``startSeeding``: the torrent added as a job seeding the source (qBittorrent's seed
        mode, the layout as made, no incomplete folder)."""
        options = AddOptions(save_path=str(task.request.source_path.parent), seed_mode=True,
                             download_path="", features=features_from({"content_layout": "original"}))
        try:
            await self.service.add(torrent, options)
        except (JobError, TorrentEngineError) as exc:
            task.error = f"Failed to start seeding. {exc}"


def _part(path: Path, task_id: str) -> Path:
    return path.with_name(f".{path.name}.{task_id}.part")


def _write(path: Path, data: bytes, task_id: str) -> None:
    """``data`` at ``path`` whole or not at all (a temporary file beside it, then renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    part = _part(path, task_id)
    try:
        with open(part, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(part, path)
    except BaseException:
        part.unlink(missing_ok=True)
        raise


def _remove(path: Path, task_id: str) -> None:
    _part(path, task_id).unlink(missing_ok=True)
    path.unlink(missing_ok=True)
