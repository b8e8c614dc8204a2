"""JobService: background downloads as jobs over one TorrentManager, with history and leases.

A job is one torrent the service was asked to fetch. Its state is derived from its session's
(queued, checking, fetching_metadata, downloading, seeding, paused) plus the job's own ends
(completed, failed, cancelled); every change is a ``job.state`` event. Records live in
``state_dir/jobs/<id>.json`` next to the manager's ``state_dir/torrents/`` (metainfo + resume
data), so a restarted service finds every job in its state and resumes it from its verified
pieces. See docs/jobs.md for the state table, the layout on disk, leases and single flight.
"""

from __future__ import annotations

import builtins
import dataclasses
import logging
import math
import os
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from types import TracebackType

import anyio
import anyio.abc

from ..config import Config
from ..errors import BencodeError, MagnetError, MetainfoError, SessionError, TorrentEngineError
from ..events import Event, EventBus
from ..magnet import Magnet, parse_magnet
from ..manager import TorrentManager, load_saved_metainfo
from ..metainfo import Torrent
from ..session import Session
from ..session_state import State
from .model import (
    FINISHED_STATES,
    InvalidJobRequest,
    Job,
    JobAdded,
    JobConflict,
    JobFile,
    JobNotFound,
    JobOptions,
    JobPeer,
    JobProgress,
    JobRemoved,
    JobResult,
    JobState,
    JobStateChanged,
    JobTracker,
    Lease,
    LeaseNotFound,
    SavePathError,
    ServiceStats,
    ServiceStatsEvent,
)
from .paths import confine, delete_job_files, existing_files, missing_dirs
from .store import JobRecord, JobStore

log = logging.getLogger(__name__)

CLIENT_SESSION_ENDED = "client session ended"
PROGRESS_INTERVAL = 0.25  # seconds between two job.progress events of one job (at most 4 a second)
SAVE_INTERVAL = 5.0  # seconds between saves of an active job's counters
MIN_ETA_RATE = 1024.0  # bytes/s: below this an ETA means nothing (None)
DEFAULT_PRIORITY = 4

_SESSION_TO_JOB: dict[State, JobState] = {
    State.QUEUED: JobState.QUEUED,
    State.CHECKING: JobState.CHECKING,
    State.DOWNLOADING_METADATA: JobState.FETCHING_METADATA,
    State.DOWNLOADING: JobState.DOWNLOADING,
    State.SEEDING: JobState.SEEDING,
    State.PAUSED: JobState.PAUSED,
}


class JobService:
    """``async with JobService(config, download_root=...) as jobs: job, created = await jobs.add(magnet)``

    Owns its ``TorrentManager`` (``config.state_dir`` is replaced by ``state_dir`` when given).
    All methods run on the caller's event loop; timers run in the service's task group.
    """

    tick_interval: float = 1.0  # lease expiry, history pruning, stats events

    def __init__(self, config: Config, *, download_root: str | os.PathLike[str],
                 state_dir: str | os.PathLike[str] | None = None, history_ttl: float = 24 * 3600.0,
                 clock: Callable[[], float] = time.time) -> None:
        chosen = state_dir if state_dir is not None else config.state_dir
        state = Path(chosen) if chosen is not None else None
        self.config = dataclasses.replace(config, state_dir=state)
        self.state_dir = state
        self.download_root = Path(download_root).resolve()
        self.history_ttl = history_ttl
        self._clock = clock
        self.events = EventBus()
        self.manager = TorrentManager(self.config)
        self.manager.events.subscribe("*", self._on_engine_event)
        self.lost: list[tuple[str, str]] = []  # (record file, reason) of job records that could not be read
        self._store = JobStore(state)
        self._records: dict[str, JobRecord] = {}
        self._order: dict[str, int] = {}  # id -> when it was added (ties of created_at: the later first)
        self._seq = 0
        self._by_hash: dict[str, str] = {}  # info-hash -> id of its active (unfinished) job
        self._adding: dict[str, anyio.Event] = {}  # info-hash -> an add in flight (single flight)
        self._busy: set[str] = set()  # job ids whose session is being replaced (recheck) or ended
        self._locks: dict[str, anyio.Lock] = {}  # one control operation at a time per job
        self._write_locks: dict[str, anyio.Lock] = {}  # one write of a record at a time (the last wins)
        self._leases: dict[str, tuple[float, float]] = {}  # id -> (ttl, expires_at)
        self._trackers: dict[str, dict[str, JobTracker]] = {}
        self._last_progress: dict[str, float] = {}
        self._last_saved: dict[str, float] = {}
        self._saved_counters: dict[str, tuple[object, ...]] = {}  # what the record on disk says
        self._published: dict[str, tuple[object, ...]] = {}  # what the last job.progress said
        self._finished_jobs: dict[str, Job] = {}  # snapshots of finished jobs (they no longer change)
        self._stack: AsyncExitStack | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._running = False

    # -- context -------------------------------------------------------------------------
    async def __aenter__(self) -> JobService:
        stack = AsyncExitStack()
        try:
            await anyio.to_thread.run_sync(lambda: self.download_root.mkdir(parents=True, exist_ok=True))
            records, lost = await anyio.to_thread.run_sync(self._store.load_all)
            self.lost = lost
            records.sort(key=lambda r: (r.created_at, r.id))
            self._records = {r.id: r for r in records}
            self._order = {r.id: n for n, r in enumerate(records)}
            self._seq = len(records)
            self._leases = await anyio.to_thread.run_sync(self._store.load_leases)
            await stack.enter_async_context(self.manager)
            self._tg = await stack.enter_async_context(anyio.create_task_group())
            self._running = True
            self._stack = stack
            await self._restore()
            self._tg.start_soon(self._ticker)
        except BaseException:
            self._running = False
            self._stack = None
            self._tg = None
            await stack.aclose()
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self._running = False
        stack, self._stack = self._stack, None
        for rec in self._records.values():
            if rec.state not in FINISHED_STATES:
                self._refresh_counters(rec)
        if self._tg is not None:
            self._tg.cancel_scope.cancel()
        self._tg = None
        if stack is not None:
            await stack.aclose()  # the task group ends, then the manager stops every session
        with anyio.CancelScope(shield=True):
            for rec in list(self._records.values()):
                if rec.state not in FINISHED_STATES:
                    await self._save(rec)

    def _require_running(self) -> anyio.abc.TaskGroup:
        if not self._running or self._tg is None:
            raise JobError_not_running()
        return self._tg

    async def _restore(self) -> None:
        """Bring every unfinished job back to life after the manager reloaded its torrents."""
        known = {r.info_hash for r in self._records.values() if r.state not in FINISHED_STATES}
        for session in self.manager.sessions:  # a torrent with no job (its record was lost, or it finished)
            if session.info_hash_hex not in known:
                log.warning("torrent %s has no unfinished job; stopping it", session.name)
                await self.manager.remove(session.info_hash)
        now = self._clock()
        for lease_id, (ttl, expires) in list(self._leases.items()):
            # the time the service was down is not held against a lease
            self._leases[lease_id] = (ttl, max(expires, now + ttl))
        for rec in sorted(self._records.values(), key=lambda r: r.created_at):
            if rec.state in FINISHED_STATES:
                if rec.delete_pending:  # a crash came between the cancel and the clean-up
                    await anyio.to_thread.run_sync(self._delete_files, rec)
                    rec.delete_pending = False
                    await self._save(rec)
                continue
            if rec.info_hash in self._by_hash:  # two unfinished records of one torrent: keep the first
                await self._finish(rec, JobState.FAILED, "a duplicate of job " + self._by_hash[rec.info_hash])
                continue
            self._by_hash[rec.info_hash] = rec.id
            try:
                confine(self.download_root, rec.options.save_path)
            except SavePathError:
                await self._end_job(rec, JobState.FAILED,
                                    f"its save path {rec.options.save_path} is outside the download root")
                continue
            if rec.options.client is not None and rec.options.client not in self._leases:
                await self._cancel(rec, delete_files=True, error=CLIENT_SESSION_ENDED)
                continue
            found = self.manager.get(rec.info_hash)
            try:
                session = found if found is not None else await self._start_again(rec)
                session.add_peers(rec.options.peers)  # (the manager reloads a torrent without them)
                if rec.state is JobState.PAUSED and session.state is not State.PAUSED:
                    await session.pause()
                self._apply_options(rec, session)
            except (TorrentEngineError, OSError) as exc:
                log.warning("job %s (%s) cannot be restarted: %s", rec.id, rec.name, exc)
                await self._finish(rec, JobState.FAILED, f"cannot be restarted: {exc}")
                continue
            self._sync(rec)

    async def _start_again(self, rec: JobRecord) -> Session:
        """A session for ``rec`` that the manager did not reload (a magnet without metadata yet,
        or a torrent whose resume data was missing)."""
        save_path = Path(rec.options.save_path)
        source: Torrent | Magnet
        metainfo = Path(self.state_dir) / "torrents" / f"{rec.info_hash}.torrent" if self.state_dir else None
        try:
            if metainfo is None or not metainfo.is_file():
                raise SessionError("its metainfo is missing from the state directory")
            source = await anyio.to_thread.run_sync(load_saved_metainfo, metainfo)
        except (TorrentEngineError, OSError):
            if not rec.source.startswith("magnet:"):
                raise
            source = parse_magnet(rec.source)  # a magnet can fetch its metadata again
        return await self.manager.add(source, save_path, peers=rec.options.peers,
                                      paused=rec.state is JobState.PAUSED,
                                      prepare=lambda s: self._apply_options(rec, s))

    # -- queries -------------------------------------------------------------------------
    def get(self, job_id: str) -> Job:
        """The job ``job_id``; ``JobNotFound`` if there is none."""
        rec = self._records.get(job_id) if isinstance(job_id, str) else None
        if rec is None:
            raise JobNotFound(f"no job {job_id!r}", "id")
        return self._snapshot(rec)

    def list(self, state: JobState | None = None) -> builtins.list[Job]:
        """Every job (active and history), newest first; only those in ``state`` when given."""
        order = self._order
        recs = sorted(self._records.values(), key=lambda r: (r.created_at, order.get(r.id, 0)), reverse=True)
        if state is not None:
            wanted = JobState(state)
            recs = [r for r in recs if r.state is wanted]
        return [self._snapshot(r) for r in recs]

    def active(self) -> builtins.list[Job]:
        """The jobs that are not finished."""
        return [j for j in self.list() if j.state not in FINISHED_STATES]

    def history(self) -> builtins.list[Job]:
        """The finished jobs."""
        return [j for j in self.list() if j.state in FINISHED_STATES]

    def stats(self) -> ServiceStats:
        """The service's totals: rates, bytes and jobs per state."""
        down_rate = up_rate = 0.0
        downloaded = uploaded = 0
        counts = {s.value: 0 for s in JobState}
        for rec in self._records.values():
            counts[rec.state.value] += 1
            session = self._session(rec)
            if session is not None:
                st = session.status()
                down_rate += st.download_rate
                up_rate += st.upload_rate
                downloaded += st.downloaded
                uploaded += st.uploaded
            else:
                downloaded += rec.downloaded
                uploaded += rec.uploaded
        shared = self.manager.shared
        dht = shared.dht if self._running else None
        return ServiceStats(download_rate=down_rate, upload_rate=up_rate, downloaded=downloaded,
                            uploaded=uploaded, listen_port=shared.listen_port if self._running else 0,
                            dht_nodes=len(dht.table) if dht is not None else 0, jobs=counts)

    # -- add -----------------------------------------------------------------------------
    async def add(self, source: str | bytes | Torrent | Magnet, *, save_path: str | None = None,
                  files: Sequence[int] | None = None, sequential: bool = False, paused: bool = False,
                  peers: Sequence[tuple[str, int]] = (), client: str | None = None) -> tuple[Job, bool]:
        """Start a job; ``(job, True)``, or ``(existing job, False)`` when one for the same
        info-hash is already active (concurrent adds of one torrent share one job and one start)."""
        self._require_running()
        torrent, source_text = await self._parse_source(source)
        save = await anyio.to_thread.run_sync(confine, self.download_root, save_path)
        selected = _check_files(files, torrent)
        peer_list = _check_peers(peers)
        if client is not None and client not in self._leases:
            raise LeaseNotFound(f"no open client lease {client!r}", "client")
        info_hash = torrent.info_hash.hex()
        while True:
            pending = self._adding.get(info_hash)
            if pending is not None:
                await pending.wait()
                continue
            existing = self._by_hash.get(info_hash)
            if existing is not None:
                return self._snapshot(self._records[existing]), False
            break
        done = anyio.Event()
        self._adding[info_hash] = done
        try:
            rec = await self._create(torrent, source_text, save, selected, sequential, paused, peer_list,
                                     client)
        finally:
            del self._adding[info_hash]
            done.set()
        if client is not None and client not in self._leases and rec.state not in FINISHED_STATES:
            await self._cancel(rec, delete_files=True, error=CLIENT_SESSION_ENDED)  # it ended meanwhile
        return self._snapshot(rec), True

    async def _create(self, torrent: Torrent | Magnet, source_text: str, save: Path,
                      selected: tuple[int, ...] | None, sequential: bool, paused: bool,
                      peers: tuple[tuple[str, int], ...], client: str | None) -> JobRecord:
        now = self._clock()
        options = JobOptions(save_path=str(save), files=selected, sequential=sequential, paused=paused,
                             peers=peers, client=client, download_limit=0, upload_limit=0)
        if isinstance(torrent, Torrent):
            name = torrent.name
        else:
            name = torrent.display_name or torrent.info_hash.hex()
        rec = JobRecord(id=self._new_id(), info_hash=torrent.info_hash.hex(), name=name, source=source_text,
                        options=options, state=JobState.PAUSED if paused else JobState.QUEUED,
                        created_at=now, updated_at=now)
        rec.created_dirs = await anyio.to_thread.run_sync(missing_dirs, self.download_root, save)
        if isinstance(torrent, Torrent):
            await self._learn_files(rec, torrent)
        self._records[rec.id] = rec
        self._seq += 1
        self._order[rec.id] = self._seq
        self._by_hash[rec.info_hash] = rec.id
        self._busy.add(rec.id)  # its session's first events wait for job.added (then _sync catches up)
        try:
            await self.manager.add(torrent, save, peers=peers, paused=paused,
                                   prepare=lambda s: self._apply_options(rec, s))
        except BaseException as exc:
            self._records.pop(rec.id, None)
            self._order.pop(rec.id, None)
            self._by_hash.pop(rec.info_hash, None)
            if isinstance(exc, (TorrentEngineError, OSError)):
                raise InvalidJobRequest(f"cannot start: {exc}", "source") from exc
            raise
        finally:
            self._busy.discard(rec.id)
        self.events.publish(JobAdded(info_hash=rec.info_hash, job=self._snapshot(rec)))
        self._sync(rec)
        # saved once the manager has the torrent (metainfo on disk): a crash before this leaves a
        # torrent without a job, which the next start stops; the add had not returned anyway
        await self._save(rec)
        return rec

    def _new_id(self) -> str:
        while True:
            job_id = secrets.token_hex(8)
            if job_id not in self._records:
                return job_id

    async def _parse_source(self, source: object) -> tuple[Torrent | Magnet, str]:
        if isinstance(source, Torrent):
            return source, "torrent"
        if isinstance(source, Magnet):
            return source, source.to_uri()
        if isinstance(source, str) and not source.strip():
            raise InvalidJobRequest("is empty", "source")
        try:
            if isinstance(source, (bytes, bytearray, memoryview)):
                data = bytes(source)
                return await anyio.to_thread.run_sync(Torrent.from_bytes, data), "torrent"
            if isinstance(source, str):
                text = source.strip()
                if text.lower().startswith("magnet:"):
                    return parse_magnet(text), text
                return await anyio.to_thread.run_sync(Torrent.load, text), "torrent"
        except (MetainfoError, BencodeError, MagnetError, ValueError) as exc:  # (each names what was wrong)
            raise InvalidJobRequest(str(exc), "source") from exc
        except OSError as exc:
            raise InvalidJobRequest(f"cannot read {source!r}: {exc.strerror or exc}", "source") from exc
        raise InvalidJobRequest("must be a magnet URI, a .torrent path or .torrent bytes", "source")

    def _learn_layout(self, rec: JobRecord, torrent: Torrent) -> None:
        """Record the torrent's files and their priorities once the metainfo is known."""
        files = torrent.files
        rec.name = torrent.name
        rec.file_paths = [list(f.path) for f in files]
        rec.file_sizes = [f.length for f in files]
        rec.pad_files = [i for i, f in enumerate(files) if f.pad]
        if rec.file_priorities is None or len(rec.file_priorities) != len(files):
            sel = rec.options.files
            rec.file_priorities = [0 if f.pad else (DEFAULT_PRIORITY if sel is None or i in sel else 0)
                                   for i, f in enumerate(files)]
        rec.total_size = sum(f.length for f, p in zip(files, rec.file_priorities, strict=True) if p > 0)

    async def _learn_files(self, rec: JobRecord, torrent: Torrent) -> None:
        """The layout, and which of the torrent's files were on disk before the job (never deleted)."""
        self._learn_layout(rec, torrent)
        stored = [f.path for f in torrent.files if not f.pad and "l" not in f.attr]
        rec.preexisting = await anyio.to_thread.run_sync(existing_files, Path(rec.options.save_path), stored)

    def _apply_options(self, rec: JobRecord, session: Session) -> None:
        """Push rate limits, and (once it has its metainfo) file priorities and sequential mode,
        into the session."""
        session.set_rate_limits(download=rec.options.download_limit, upload=rec.options.upload_limit)
        if not session.has_metadata:
            return
        if rec.file_priorities is not None and len(rec.file_priorities) == len(session.torrent.files):
            pairs = zip(rec.file_priorities, session.torrent.files, strict=True)
            if any(p != DEFAULT_PRIORITY for p, f in pairs if not f.pad):
                session.set_file_priorities(rec.file_priorities)
        session.set_sequential(rec.options.sequential)

    # -- control -------------------------------------------------------------------------
    def _active(self, job_id: str, action: str) -> tuple[JobRecord, Session]:
        rec = self._records.get(job_id)
        if rec is None:
            raise JobNotFound(f"no job {job_id!r}", "id")
        if rec.state in FINISHED_STATES:
            raise JobConflict(f"cannot {action} a job that is {rec.state.value}")
        session = self._session(rec)
        if session is None or rec.id in self._busy:
            raise JobConflict(f"cannot {action} the job now: it is being restarted or ended")
        return rec, session

    def _lock(self, job_id: str) -> anyio.Lock:
        lock = self._locks.get(job_id)
        if lock is None:
            lock = self._locks[job_id] = anyio.Lock()
        return lock

    async def pause(self, job_id: str) -> Job:
        """Pause the job (peers dropped, data kept); ``JobConflict`` if it is not running."""
        self._require_running()
        async with self._lock(job_id):
            rec, session = self._active(job_id, "pause")
            if session.state is not State.PAUSED:
                await session.pause()
            rec.options = dataclasses.replace(rec.options, paused=True)
            rec.updated_at = self._clock()
            self._sync(rec, force_save=True)
            return self._snapshot(rec)

    async def resume(self, job_id: str) -> Job:
        """Resume a paused job; ``JobConflict`` if it is not paused."""
        self._require_running()
        async with self._lock(job_id):
            rec, session = self._active(job_id, "resume")
            if session.state is State.PAUSED:
                await session.resume()
            rec.options = dataclasses.replace(rec.options, paused=False)
            rec.updated_at = self._clock()
            self._sync(rec, force_save=True)
            return self._snapshot(rec)

    async def recheck(self, job_id: str) -> Job:
        """Hash the data on disk again (the session restarts without its resume data)."""
        self._require_running()
        async with self._lock(job_id):
            rec, session = self._active(job_id, "recheck")
            return await self._recheck(rec, session)

    async def _recheck(self, rec: JobRecord, session: Session) -> Job:
        if not session.has_metadata:
            return self._snapshot(rec)  # nothing on disk to check before the metadata arrives
        torrent = session.torrent
        paused = session.state is State.PAUSED
        self._busy.add(rec.id)
        try:
            with anyio.CancelScope(shield=True):  # half a restart would leave the job without a session
                self._refresh_counters(rec)
                await self.manager.remove(session.info_hash)  # (forgets its resume data: a full recheck)
                try:
                    await self.manager.add(torrent, Path(rec.options.save_path), peers=rec.options.peers,
                                           paused=paused, prepare=lambda s: self._apply_options(rec, s))
                except (TorrentEngineError, OSError) as exc:
                    await self._finish(rec, JobState.FAILED, f"cannot restart for a recheck: {exc}")
                    return self._snapshot(rec)
        finally:
            self._busy.discard(rec.id)
        self._sync(rec, force_save=True)
        return self._snapshot(rec)

    async def update(self, job_id: str, *, file_priorities: Mapping[int, int] | None = None,
                     sequential: bool | None = None, download_limit: int | None = None,
                     upload_limit: int | None = None) -> Job:
        """Change file priorities (index -> 0..7, 0 = skip), sequential mode or rate limits."""
        self._require_running()
        async with self._lock(job_id):
            rec, session = self._active(job_id, "update")
            return self._update(rec, session, file_priorities, sequential, download_limit, upload_limit)

    def _update(self, rec: JobRecord, session: Session, file_priorities: Mapping[int, int] | None,
                sequential: bool | None, download_limit: int | None, upload_limit: int | None) -> Job:
        options = rec.options  # (everything is checked before anything changes)
        if download_limit is not None:
            down = _check_limit(download_limit, "download_limit")
            options = dataclasses.replace(options, download_limit=down)
        if upload_limit is not None:
            up = _check_limit(upload_limit, "upload_limit")
            options = dataclasses.replace(options, upload_limit=up)
        if sequential is not None:
            options = dataclasses.replace(options, sequential=bool(sequential))
        if file_priorities is not None:
            if rec.file_priorities is None or not session.has_metadata:
                raise JobConflict("file priorities need the metainfo, which has not arrived yet",
                                  "file_priorities")
            new = list(rec.file_priorities)
            for index, prio in dict(file_priorities).items():
                if not isinstance(index, int) or not 0 <= index < len(new):
                    raise InvalidJobRequest(f"no file {index!r} (the torrent has {len(new)})",
                                            "file_priorities")
                if not isinstance(prio, int) or isinstance(prio, bool) or not 0 <= prio <= 7:
                    raise InvalidJobRequest(f"priority of file {index} must be 0..7, not {prio!r}",
                                            "file_priorities")
                if rec.file_paths is not None and session.torrent.files[index].pad:
                    continue
                new[index] = prio
            rec.file_priorities = new
            session.set_file_priorities(new)
            options = dataclasses.replace(options, files=tuple(i for i, p in enumerate(new) if p > 0))
        rec.options = options
        rec.updated_at = self._clock()
        self._apply_options(rec, session)
        self._refresh_counters(rec)
        self._sync(rec, force_save=True)
        return self._snapshot(rec)

    async def cancel(self, job_id: str, *, delete_files: bool = False) -> Job:
        """Stop the job at once; with ``delete_files`` remove its files and the folders it made.
        Cancelling a cancelled job again changes nothing."""
        self._require_running()
        rec = self._records.get(job_id)
        if rec is None:
            raise JobNotFound(f"no job {job_id!r}", "id")
        if rec.state is JobState.CANCELLED:
            return self._snapshot(rec)
        if rec.state in FINISHED_STATES:
            raise JobConflict(f"cannot cancel a job that is {rec.state.value}")
        await self._cancel(rec, delete_files=delete_files, error=None)
        return self._snapshot(rec)

    async def _cancel(self, rec: JobRecord, *, delete_files: bool, error: str | None) -> None:
        async with self._lock(rec.id):
            if rec.state in FINISHED_STATES:
                return  # (it ended while this waited for the lock)
            await self._cancel_locked(rec, delete_files=delete_files, error=error)

    async def _cancel_locked(self, rec: JobRecord, *, delete_files: bool, error: str | None) -> None:
        await self._end_job(rec, JobState.CANCELLED, error, delete_files=delete_files)

    async def _end_job(self, rec: JobRecord, state: JobState, error: str | None, *,
                       delete_files: bool = False) -> None:
        """Finish the job (the caller holds its lock). First the record on disk says it is finished
        and what clean-up is left, so a crash at any later step is completed at the next start;
        then the session is stopped and forgotten and (``delete_files``) the files deleted; only
        then does the job show its new state, so whoever sees it finds the clean-up done."""
        self._busy.add(rec.id)
        try:
            with anyio.CancelScope(shield=True):  # half an end would leave a session without a job
                session = self._session(rec)
                if session is not None:
                    self._refresh_counters(rec, session)
                now = self._clock()
                planned = dataclasses.replace(rec, state=state, error=error, completed_at=now,
                                              delete_pending=delete_files)
                self._set_result(planned)
                await self._save(rec, planned)
                ending = None
                if self._by_hash.get(rec.info_hash) == rec.id:
                    del self._by_hash[rec.info_hash]
                    if session is not None:  # an add of this torrent meanwhile waits for the manager
                        ending = self._adding.setdefault(rec.info_hash, anyio.Event())
                try:
                    if session is not None:
                        try:
                            await self.manager.remove(session.info_hash)
                        except SessionError as exc:
                            log.debug("job %s: %s", rec.id, exc)
                        self._refresh_counters(rec, session)
                finally:
                    if ending is not None and self._adding.get(rec.info_hash) is ending:
                        del self._adding[rec.info_hash]
                        ending.set()
                if delete_files:
                    await anyio.to_thread.run_sync(self._delete_files, rec)
                await self._finish(rec, state, error, completed_at=now)
        finally:
            self._busy.discard(rec.id)

    def _delete_files(self, rec: JobRecord) -> None:
        root = self.download_root
        try:  # (a record is read from disk: never trust it to point inside the root)
            save_path = confine(root, rec.options.save_path)
        except SavePathError:
            log.warning("job %s: not deleting files outside the download root (%s)", rec.id,
                        rec.options.save_path)
            return
        created = [d for d in rec.created_dirs if root in Path(d).parents]
        removed = delete_job_files(save_path, rec.file_paths or [], keep=rec.preexisting or [],
                                   created_dirs=created)
        log.info("job %s: removed %d files and folders", rec.id, len(removed))

    async def _finish(self, rec: JobRecord, state: JobState, error: str | None, *,
                      completed_at: float | None = None) -> None:
        """Make the job a finished one (history) and save it; its session is the caller's concern."""
        if self._by_hash.get(rec.info_hash) == rec.id:
            del self._by_hash[rec.info_hash]
        rec.error = error
        rec.delete_pending = False
        rec.completed_at = completed_at if completed_at is not None else self._clock()
        self._set_result(rec)
        self._trackers.pop(rec.id, None)
        self._last_progress.pop(rec.id, None)
        self._published.pop(rec.id, None)
        self._set_state(rec, state)
        await self._save(rec)

    def _set_result(self, rec: JobRecord) -> None:
        end = rec.completed_at if rec.completed_at is not None else self._clock()
        duration = max(0.0, end - rec.created_at)
        rate = rec.downloaded / duration if duration > 0 else 0.0
        rec.result = JobResult(downloaded=rec.downloaded, uploaded=rec.uploaded, duration=duration,
                               average_rate=rate, error=rec.error)

    async def clear_history(self, *, older_than: float | None = None) -> int:
        """Forget finished jobs (those finished at least ``older_than`` seconds ago, when given)."""
        now = self._clock()
        gone = [r for r in self._records.values() if r.state in FINISHED_STATES
                and (older_than is None or now - (r.completed_at or r.updated_at) >= older_than)]
        for rec in gone:
            del self._records[rec.id]
            self._order.pop(rec.id, None)
            self._finished_jobs.pop(rec.id, None)
            self._locks.pop(rec.id, None)
            self._write_locks.pop(rec.id, None)
            self._last_saved.pop(rec.id, None)
            self._saved_counters.pop(rec.id, None)
        if gone:
            await anyio.to_thread.run_sync(self._store.delete_many, [r.id for r in gone])
        for rec in gone:
            self.events.publish(JobRemoved(info_hash=rec.info_hash, job_id=rec.id))
        return len(gone)

    # -- leases --------------------------------------------------------------------------
    async def open_lease(self, ttl: float, *, replaces: str | None = None) -> Lease:
        """A client lease of ``ttl`` seconds, renewed by ``heartbeat``; jobs added with
        ``client=lease.id`` are cancelled (files deleted) when it lapses, ends or is replaced."""
        self._require_running()
        if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not math.isfinite(ttl) or ttl <= 0:
            raise InvalidJobRequest("must be a number of seconds > 0", "ttl")
        if replaces is not None and replaces in self._leases:
            await self.end_lease(replaces)
        lease_id = secrets.token_hex(16)
        expires = self._clock() + float(ttl)
        self._leases[lease_id] = (float(ttl), expires)
        await self._save_leases()
        return Lease(id=lease_id, ttl=float(ttl), expires_at=expires)

    async def heartbeat(self, lease_id: str) -> Lease:
        """Keep the lease ``lease_id`` alive for another ``ttl``; ``LeaseNotFound`` if it is not open."""
        entry = self._leases.get(lease_id)
        if entry is None:
            raise LeaseNotFound(f"no open client lease {lease_id!r}", "client")
        ttl = entry[0]
        expires = self._clock() + ttl
        self._leases[lease_id] = (ttl, expires)
        return Lease(id=lease_id, ttl=ttl, expires_at=expires)

    async def end_lease(self, lease_id: str) -> None:
        """End the lease ``lease_id`` and cancel its unfinished jobs (files deleted); ``LeaseNotFound`` if
        it is not open."""
        if self._leases.pop(lease_id, None) is None:
            raise LeaseNotFound(f"no open client lease {lease_id!r}", "client")
        await self._save_leases()
        for rec in list(self._records.values()):
            if rec.options.client == lease_id and rec.state not in FINISHED_STATES:
                await self._cancel(rec, delete_files=True, error=CLIENT_SESSION_ENDED)

    async def _save_leases(self) -> None:
        leases = dict(self._leases)
        await anyio.to_thread.run_sync(self._store.save_leases, leases)

    # -- timers --------------------------------------------------------------------------
    async def _ticker(self) -> None:
        while True:
            await anyio.sleep(self.tick_interval)
            await self.tick()

    async def tick(self) -> None:
        """One round of the timers (the service runs it every ``tick_interval``): lapsed leases,
        history past its age, a stats event, saving active jobs' counters."""
        now = self._clock()
        for lease_id, (_ttl, expires) in list(self._leases.items()):
            if expires <= now and lease_id in self._leases:
                log.info("client lease %s lapsed", lease_id)
                await self.end_lease(lease_id)
        if self.history_ttl > 0:
            await self.clear_history(older_than=self.history_ttl)
        for rec in list(self._records.values()):
            if rec.state not in FINISHED_STATES and rec.id not in self._busy:
                self._sync(rec)
                if now - self._last_saved.get(rec.id, 0.0) >= SAVE_INTERVAL:
                    self._refresh_counters(rec)
                    if _counters(rec) == self._saved_counters.get(rec.id):
                        self._last_saved[rec.id] = now  # nothing moved (e.g. paused): no write
                        continue
                    await self._save(rec)
        self.events.publish(ServiceStatsEvent(stats=self.stats()))

    # -- engine events -> job state ------------------------------------------------------
    def _on_engine_event(self, event: Event) -> None:
        job_id = self._by_hash.get(event.info_hash)
        if job_id is None or not self._running:
            return
        rec = self._records.get(job_id)
        if rec is None or rec.id in self._busy:
            return
        name = event.name
        if name == "stats.update":
            now = time.monotonic()
            if now - self._last_progress.get(rec.id, -math.inf) >= PROGRESS_INTERVAL:
                self._last_progress[rec.id] = now
                self._refresh_counters(rec)
                job = self._snapshot(rec)
                shown = (job.state, job.progress, job.done_size, job.downloaded, job.uploaded,
                         job.download_rate, job.upload_rate, job.peers, job.seeds)
                if shown != self._published.get(rec.id):  # an idle job sends nothing
                    self._published[rec.id] = shown
                    self.events.publish(JobProgress(info_hash=rec.info_hash, job=job))
            return
        if name.startswith("tracker."):
            url = str(getattr(event, "url", ""))
            ok = name == "tracker.success"
            self._trackers.setdefault(rec.id, {})[url] = JobTracker(
                url=url, status="working" if ok else "failed",
                message="" if ok else str(getattr(event, "error", "")),
                peers=int(getattr(event, "peers", 0)) if ok else 0)
            return
        if name == "session.metadata_received":
            session = self._session(rec)
            if session is not None and session.has_metadata and self._tg is not None:
                self._metadata_arrived(rec, session)
        if name.startswith("session."):
            self._sync(rec)

    def _metadata_arrived(self, rec: JobRecord, session: Session) -> None:
        """A magnet's metainfo is here: the file selection applies at once (this runs before the
        session's first request, which waits for its check), the rest in the task group."""
        assert self._tg is not None
        torrent = session.torrent
        if rec.options.files is not None and any(i >= len(torrent.files) for i in rec.options.files):
            self._busy.add(rec.id)
            self._tg.start_soon(self._end, rec, JobState.FAILED,
                                f"files: an index is out of range (the torrent has {len(torrent.files)})")
            return
        self._learn_layout(rec, torrent)
        self._apply_options(rec, session)
        if rec.preexisting is not None:
            return  # known from before a restart (recomputed, the job's own files would count)

        async def find_existing() -> None:
            stored = [f.path for f in torrent.files if not f.pad and "l" not in f.attr]
            save_path = Path(rec.options.save_path)
            rec.preexisting = await anyio.to_thread.run_sync(existing_files, save_path, stored)
            await self._save(rec)

        self._tg.start_soon(find_existing)

    def _session(self, rec: JobRecord) -> Session | None:
        if rec.state in FINISHED_STATES or self._by_hash.get(rec.info_hash) != rec.id:
            return None
        return self.manager.get(rec.info_hash)

    def _sync(self, rec: JobRecord, *, force_save: bool = False) -> None:
        """Derive the job's state from its session; an end (completed, failed) finishes the job."""
        session = self._session(rec)
        if session is None or rec.id in self._busy or not self._running:
            return
        state = session.state
        changed = False
        if state in _SESSION_TO_JOB:
            changed = self._set_state(rec, _SESSION_TO_JOB[state])
        elif self._tg is not None and rec.id not in self._busy:
            if state is State.ERROR:
                error = session.status().error or "the session failed"
                self._busy.add(rec.id)
                self._tg.start_soon(self._end, rec, JobState.FAILED, error)
            elif state is State.STOPPED:
                done = session.has_metadata and session.status().progress >= 1.0
                self._busy.add(rec.id)
                self._tg.start_soon(self._end, rec, JobState.COMPLETED if done else JobState.FAILED,
                                    None if done else "the session stopped before completing")
            return
        if (changed or force_save) and self._tg is not None:
            self._tg.start_soon(self._save, rec)

    async def _end(self, rec: JobRecord, state: JobState, error: str | None) -> None:
        try:
            with anyio.CancelScope(shield=True):
                async with self._lock(rec.id):
                    if rec.state not in FINISHED_STATES:
                        await self._end_job(rec, state, error)
        finally:
            self._busy.discard(rec.id)

    def _set_state(self, rec: JobRecord, new: JobState) -> bool:
        old = rec.state
        if old is new:
            return False
        rec.state = new
        rec.updated_at = self._clock()
        self._refresh_counters(rec)
        self.events.publish(JobStateChanged(info_hash=rec.info_hash, job=self._snapshot(rec), old=old,
                                            new=new))
        return True

    def _refresh_counters(self, rec: JobRecord, session: Session | None = None) -> None:
        session = session if session is not None else self._session(rec)
        if session is None:
            return
        st = session.status()
        rec.downloaded = st.downloaded
        rec.uploaded = st.uploaded
        if session.has_metadata:
            rec.total_size = st.total_wanted
            rec.done_size = st.have_bytes
            rec.name = st.name

    async def _save(self, rec: JobRecord, content: JobRecord | None = None) -> None:
        """Write the record (or ``content`` in its place) as it is when its turn comes: saves of
        one job never overlap, so the file always ends with the newest state."""
        lock = self._write_locks.get(rec.id)
        if lock is None:
            lock = self._write_locks[rec.id] = anyio.Lock()
        with anyio.CancelScope(shield=True):
            async with lock:
                if rec.id not in self._records:
                    return
                self._last_saved[rec.id] = self._clock()
                self._saved_counters[rec.id] = _counters(content or rec)
                data = self._store.encode(content or rec)  # on the loop: the record does not change under it
                try:
                    await anyio.to_thread.run_sync(self._store.write, rec.id, data)
                except OSError as exc:
                    log.warning("cannot save job %s: %s", rec.id, exc)

    # -- snapshots -----------------------------------------------------------------------
    def _snapshot(self, rec: JobRecord) -> Job:
        session = self._session(rec)
        if session is None:
            return self._record_snapshot(rec)
        st = session.status()
        has_meta = session.has_metadata
        left = max(0, st.total_wanted - st.have_bytes)
        eta: float | None
        if has_meta and left == 0:
            eta = 0.0
        elif st.download_rate >= MIN_ETA_RATE:
            eta = left / st.download_rate
        else:
            eta = None
        files: tuple[JobFile, ...] = ()
        peers: tuple[JobPeer, ...] = ()
        if has_meta:
            files = _file_progress(session, rec.file_priorities)
            n = session.torrent.num_pieces
            peers = tuple(JobPeer(address=p.address, client=p.client, download_rate=p.down_rate,
                                  upload_rate=p.up_rate, progress=len(p.have) / n if n else 0.0,
                                  transport=p.transport)
                          for p in session.peers)
        else:
            peers = tuple(JobPeer(address=p.address, client=p.client, download_rate=p.down_rate,
                                  upload_rate=p.up_rate, progress=0.0, transport=p.transport)
                          for p in session.peers)
        return Job(id=rec.id, info_hash=rec.info_hash, name=st.name, source=rec.source, options=rec.options,
                   state=rec.state, created_at=rec.created_at, updated_at=rec.updated_at,
                   completed_at=rec.completed_at, progress=st.progress if has_meta else 0.0,
                   total_size=st.total_wanted if has_meta else rec.total_size,
                   done_size=st.have_bytes if has_meta else 0, downloaded=st.downloaded, uploaded=st.uploaded,
                   download_rate=st.download_rate, upload_rate=st.upload_rate, peers=st.peers, seeds=st.seeds,
                   eta=eta, files=files, peer_list=peers, trackers=self._tracker_list(rec, session),
                   error=rec.error or None,
                   result=rec.result)

    def _tracker_list(self, rec: JobRecord, session: Session) -> tuple[JobTracker, ...]:
        """Every tracker of the torrent (or magnet), with what its last announce said."""
        heard = self._trackers.get(rec.id, {})
        urls: list[str] = []
        if session.has_metadata:
            urls = [url for tier in session.torrent.trackers for url in tier]
        elif session.magnet is not None:
            urls = list(session.magnet.trackers)
        out = [heard.get(url) or JobTracker(url=url, status="unknown", message="", peers=0)
               for url in dict.fromkeys(urls)]
        out.extend(t for url, t in heard.items() if url not in urls)
        return tuple(out)

    def _record_snapshot(self, rec: JobRecord) -> Job:
        """A job without a running session: what its record says."""
        if rec.state in FINISHED_STATES:
            job = self._finished_jobs.get(rec.id)
            if job is None or job.state is not rec.state or job.result is not rec.result:
                job = self._finished_jobs[rec.id] = self._make_record_snapshot(rec)
            return job
        return self._make_record_snapshot(rec)

    def _make_record_snapshot(self, rec: JobRecord) -> Job:
        done = rec.state is JobState.COMPLETED
        files: tuple[JobFile, ...] = ()
        if rec.file_paths is not None and rec.file_sizes is not None:
            prios = rec.file_priorities or [DEFAULT_PRIORITY] * len(rec.file_paths)
            pads = set(rec.pad_files)
            rows = enumerate(zip(rec.file_paths, rec.file_sizes, prios, strict=False))
            files = tuple(JobFile(index=i, path="/".join(p), size=s, progress=float(done and prio > 0),
                                  priority=prio, selected=prio > 0) for i, (p, s, prio) in rows
                          if i not in pads)
        progress = 1.0 if done else (rec.done_size / rec.total_size if rec.total_size else 0.0)
        return Job(id=rec.id, info_hash=rec.info_hash, name=rec.name, source=rec.source, options=rec.options,
                   state=rec.state, created_at=rec.created_at, updated_at=rec.updated_at,
                   completed_at=rec.completed_at, progress=progress, total_size=rec.total_size,
                   done_size=rec.total_size if done else rec.done_size, downloaded=rec.downloaded,
                   uploaded=rec.uploaded, download_rate=0.0, upload_rate=0.0, peers=0, seeds=0,
                   eta=0.0 if done else None, files=files, peer_list=(), trackers=(), error=rec.error,
                   result=rec.result)


def JobError_not_running() -> JobConflict:  # noqa: N802 - reads as the error it makes
    """The error for a call made while the service is not running."""
    return JobConflict("the job service is not running (use 'async with JobService(...)')")


def _check_files(files: Sequence[int] | None, torrent: Torrent | Magnet) -> tuple[int, ...] | None:
    if files is None:
        return None
    if isinstance(files, (str, bytes)) or not isinstance(files, Sequence):
        raise InvalidJobRequest("must be a list of file indices", "files")
    out: list[int] = []
    for index in files:
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise InvalidJobRequest(f"{index!r} is not a file index", "files")
        if isinstance(torrent, Torrent) and index >= len(torrent.files):
            raise InvalidJobRequest(f"no file {index} (the torrent has {len(torrent.files)})", "files")
        out.append(index)
    if not out:
        raise InvalidJobRequest("selects no file (leave it out to download every file)", "files")
    return tuple(sorted(set(out)))


def _check_limit(value: int, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidJobRequest("must be a whole number of bytes per second >= 0", field)
    return value


def _check_peers(peers: Sequence[tuple[str, int]]) -> tuple[tuple[str, int], ...]:
    if isinstance(peers, (str, bytes)):
        raise InvalidJobRequest("must be a list of (host, port)", "peers")
    out: list[tuple[str, int]] = []
    try:
        items = list(peers)
    except TypeError as exc:
        raise InvalidJobRequest("must be a list of (host, port)", "peers") from exc
    for item in items:
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise InvalidJobRequest(f"{item!r} is not a (host, port) pair", "peers")
        host, port = item
        if not isinstance(host, str) or not host or "\x00" in host:
            raise InvalidJobRequest(f"bad host {host!r}", "peers")
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            raise InvalidJobRequest(f"bad port {port!r} for {host}", "peers")
        out.append((host, port))
    return tuple(out)


def _file_progress(session: Session, priorities: list[int] | None) -> tuple[JobFile, ...]:
    torrent = session.torrent
    have = session.have
    pl = torrent.piece_length
    out: list[JobFile] = []
    for i, f in enumerate(torrent.files):
        if f.pad:
            continue
        prio = priorities[i] if priorities is not None and i < len(priorities) else DEFAULT_PRIORITY
        if f.length == 0:
            progress = 1.0
        else:
            end = f.offset + f.length
            done = 0
            for p in range(f.offset // pl, (end - 1) // pl + 1):
                if p in have:
                    done += min(end, (p + 1) * pl) - max(f.offset, p * pl)
            progress = done / f.length
        out.append(JobFile(index=i, path="/".join(f.path), size=f.length, progress=progress, priority=prio,
                           selected=prio > 0))
    return tuple(out)


def _counters(rec: JobRecord) -> tuple[object, ...]:
    """What a periodic save of an active job would change on disk."""
    return (rec.state, rec.downloaded, rec.uploaded, rec.done_size, rec.total_size, rec.name)
