"""JobService: background downloads as jobs over one TorrentManager, with history and leases.

A job is one torrent the service was asked to fetch. Its state is derived from its session's
(queued, checking, fetching_metadata, downloading, seeding, paused) plus the job's own ends
(completed, failed, cancelled); every change is a ``job.state`` event. Records live in
``state_dir/jobs.sqlite3`` (store.py) next to the manager's ``state_dir/torrents/`` (metainfo +
resume data), so a restarted service finds every job in its state and resumes it from its verified
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
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from types import TracebackType
from typing import Any  # Any: fields of settings or features, each its own type

import anyio
import anyio.abc

from ..config import Config
from ..errors import TorrentEngineError, TrackerError
from ..magnet import Magnet
from ..manager import TorrentManager
from ..metainfo import Torrent
from ..peer.extensions import DEFAULT_MAX_METADATA_SIZE
from ..session import Session
from ..session_state import State
from ..tracker.http import http_get
from .autorun import ProgramEvent
from .categories import Category
from .claims import claimed_paths
from .configure import SettingsControl
from .edits import JobEdits
from .features import check_features
from .incomplete import download_path_for
from .leases import LeaseTable
from .lifecycle import JobLifecycle
from .model import (
    FINISHED_STATES,
    AddOptions,
    InvalidJobRequest,
    Job,
    JobAdded,
    JobConflict,
    JobError,
    JobFeatures,
    JobNotFound,
    JobOptions,
    JobRemoved,
    JobState,
    Lease,
    LeaseNotFound,
    PortMappingStatus,
    ServiceStats,
    ServiceStatsEvent,
    StateNotSaved,
)
from .organise import Organiser
from .paths import Ground, existing_files, ground, missing_dirs
from .peerlimits import check_job_peers
from .relocate import Mover
from .rounds import QueueRounds
from .settings import (
    ServiceSettings,
)
from .snapshot import learn_layout
from .store import FULL_ERRNOS, JobRecord, JobStore, not_saved
from .table import JobTable
from .trackers import Tiers
from .validate import (
    check_age,
    check_files,
    check_limit,
    check_peers,
    check_priorities,
    check_ttl,
    read_source,
)
from .watch import FolderWatcher

log = logging.getLogger(__name__)

SAVE_INTERVAL = 5.0  # seconds between saves of an active job's counters
MAX_FETCHED_TORRENT = DEFAULT_MAX_METADATA_SIZE + 64 * 1024  # a .torrent fetched by URL, at most
FETCH_TIMEOUT = 60.0  # seconds to fetch a .torrent by URL


class JobService(JobLifecycle):
    """``async with JobService(config, download_root=...) as jobs: job, created = await jobs.add(magnet)``

    Owns its ``TorrentManager`` (``config.state_dir`` is replaced by ``state_dir`` when given).
    All methods run on the caller's event loop; timers run in the service's task group.
    """

    tick_interval: float = 1.0  # lease expiry, history pruning, stats events

    def __init__(self, config: Config, *, download_root: str | os.PathLike[str],
                 state_dir: str | os.PathLike[str] | None = None, history_ttl: float = 24 * 3600.0,
                 clock: Callable[[], float] = time.time, incomplete_dir: str = "",
                 configured: Mapping[str, object] | None = None) -> None:
        chosen = state_dir if state_dir is not None else config.state_dir
        state = Path(chosen) if chosen is not None else None
        self.config = dataclasses.replace(config, state_dir=state)
        # One queue: the job queue holds jobs back (``configure`` gives it the configuration's
        # download slots); the manager starts whatever the service asks it to.
        manager = TorrentManager(dataclasses.replace(self.config, max_active_downloads=0),
                                 reload=lambda key: self.reloads(key),
                                 reload_paused=lambda key: self.reloads_paused(key),
                                 prepare_reloaded=lambda session: self.prepare_reloaded(session))
        super().__init__(manager, JobStore(state), download_root=Path(download_root).resolve(),
                         state_dir=state, clock=clock, settings=lambda: self._tuning.settings)
        # the parts, each given what it works on (the job machinery is this object, for now)
        self._rounds = QueueRounds(self)
        self._tuning = SettingsControl(self, self._rounds, state_dir=state, clock=clock)
        self._organiser = Organiser(self, self._rounds, state)
        self._mover = Mover(self, self._rounds)
        self._edits = JobEdits(self)
        self.round_soon = self._rounds.round_soon
        self.move_when_complete = self._mover.move_when_complete
        self.catalogue = self._organiser.catalogue
        self.blocklist = self._tuning.blocklist
        self.history_ttl = history_ttl
        # what the configuration asks of the settings besides the rate limits and download slots
        # (the programs run on jobs' events, the watched folders: see ``configure``)
        self._asked = dict(configured or {})
        self._watcher = FolderWatcher(lambda: self.settings, self._add_watched, clock)
        self.incomplete_dir = incomplete_dir  # what the configuration asks ("" = none): see configure
        self.lost: list[tuple[str, str]] = []  # (where, reason) of job records that could not be read
        self._stack: AsyncExitStack | None = None

    # -- context -------------------------------------------------------------------------
    async def load(self) -> None:
        """The first step of the start (``async with`` takes it when it was not taken): read the
        job records, the leases, settings and categories, and finish or undo a move a crash cut
        short. From then on the jobs are listed from their records; entering the service then
        loads their torrents and restores each job, and a change asked meanwhile is refused
        with ``ServiceStarting`` (the daemon serves its API between the two steps: a restart
        with 10 000 torrents answers at once). ``JobStoreError`` when the store cannot be read."""
        if self.loaded:
            return
        try:
            await anyio.to_thread.run_sync(lambda: self.download_root.mkdir(parents=True, exist_ok=True))
            records, lost = await anyio.to_thread.run_sync(self.store.load_all)
            self.lost = lost
            self.jobs = JobTable(records)
            self.writer.loaded(self.store.loaded)  # (a stop writes only what changed since)
            self.leases = LeaseTable(await anyio.to_thread.run_sync(self.store.load_leases))
            # (a torrent's connections and unchoke slots: the Config's, unless the daemon's flags say)
            asked = {"max_connections_per_torrent": self.config.max_peers_per_torrent,
                     "max_uploads_per_torrent": self.config.upload_slots, **self._asked}
            await self._tuning.load({"download_limit": self.config.download_rate_limit,
                                       "upload_limit": self.config.upload_rate_limit,
                                       "max_active_downloads": self.config.max_active_downloads,
                                       "incomplete_dir": self.incomplete_dir},
                                    asked)
            await self._organiser.load()
            self.queue.place_all()
            self.queue.rerank()
            await self._mover.recover_moves()  # (before the manager reloads its torrents)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self.store.close)
            raise
        self.loaded = True

    async def __aenter__(self) -> JobService:
        await self.load()
        stack = AsyncExitStack()
        try:
            self.restoring = True  # (trackers' answers heard during the reload are kept)
            self.note_dormant(self.queue.held_at_start())  # (before the manager reloads its torrents)
            await stack.enter_async_context(self.manager)
            self.tg = await stack.enter_async_context(anyio.create_task_group())
            self.running = True
            self._stack = stack
            await self.restore()
            for rec in self.with_sessions():  # (their news came before the service ran)
                self.sleepers.wake(rec)
            await self.enforce()  # (the queue holds back what it must before anything runs long)
            self.tg.start_soon(self._ticker)
            self.tg.start_soon(self._watcher.run)
            self.tg.start_soon(self.blocklist.run)
        except BaseException:
            self.running = False
            self.restoring = False
            self.loaded = False
            self._stack = None
            self.tg = None
            await stack.aclose()
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self.store.close)
            raise
        self.ready = True
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.running = False
        self.ready = self.loaded = False
        stack, self._stack = self._stack, None
        for rec in self.jobs:
            if rec.state not in FINISHED_STATES:
                self.refresh_counters(rec)
                if rec.options.paused:
                    self.refresh_files(rec)
        if self.tg is not None:
            self.tg.cancel_scope.cancel()
        self.tg = None
        if stack is not None:
            await stack.aclose()  # the task group ends, then the manager stops every session
        with anyio.CancelScope(shield=True):
            await self.save_all([rec for rec in self.jobs if rec.state not in FINISHED_STATES])
            await anyio.to_thread.run_sync(self.store.close)

    def _require_running(self) -> anyio.abc.TaskGroup:
        self.refuse_while_starting()
        if not self.running or self.tg is None:
            raise JobError_not_running()
        return self.tg

    # -- queries -------------------------------------------------------------------------
    def get(self, job_id: str) -> Job:
        """The job ``job_id``; ``JobNotFound`` if there is none."""
        rec = self.jobs.get(job_id)
        if rec is None:
            raise JobNotFound(f"no job {job_id!r}", "id")
        run = self.programs.last.get(job_id)  # (a single job's answer: its last program run too)
        job = self.snapshot(rec)
        return job if run is None else dataclasses.replace(job, last_program=run)

    def list(self, state: JobState | None = None, *, offset: int = 0,
             limit: int | None = None) -> builtins.list[Job]:
        """Every job (active and history), newest first; only those in ``state`` when given; of
        those, ``limit`` (all when ``None``) from the ``offset``-th on."""
        recs = self.jobs.newest_first(JobState(state) if state is not None else None)
        if offset or limit is not None:
            recs = recs[offset:None if limit is None else offset + limit]
        return [self.snapshot(r) for r in recs]

    def __contains__(self, job_id: object) -> bool:
        """Whether the service has a job ``job_id`` (active or history)."""
        return job_id in self.jobs

    def __len__(self) -> int:
        """How many jobs the service has (active and history)."""
        return len(self.jobs)

    def active(self) -> builtins.list[Job]:
        """The jobs that are not finished."""
        return [j for j in self.list() if j.state not in FINISHED_STATES]

    def history(self) -> builtins.list[Job]:
        """The finished jobs."""
        return [j for j in self.list() if j.state in FINISHED_STATES]

    def stats(self) -> ServiceStats:
        """The service's totals: rates, bytes and jobs per state."""
        down_rate = up_rate = 0.0
        peers = 0
        counts = {s.value: 0 for s in JobState}
        # (every second: the table keeps the totals, the history's and the unfinished jobs' as
        # their records say; the awake jobs' sessions alone are walked, for what moves: a quiet
        # one's counters were saved in its record as it fell quiet, and its rates are 0)
        finished, downloaded, uploaded = self.jobs.finished_totals()
        unfinished, records_down, records_up = self.jobs.unfinished_totals()
        downloaded += records_down
        uploaded += records_up
        for totals in (finished, unfinished):
            for state, n in totals.items():
                counts[state.value] += n
        for rec in self.moving():
            session = self.session_of(rec)
            if session is not None:  # (its counters are the session's: the record's are older)
                st = session.status()
                down_rate += st.download_rate
                up_rate += st.upload_rate
                downloaded += st.downloaded - rec.downloaded
                uploaded += st.uploaded - rec.uploaded
                peers += st.peers
        shared = self.manager.shared
        dht = shared.dht if self.running else None
        mapper = shared.port_mapper if self.running else None
        mapping = None if mapper is None else PortMappingStatus(
            method=mapper.method, external_ip=mapper.external_ip, error=mapper.last_error,
            mappings=tuple((m.protocol, m.internal_port, m.external_port, m.lifetime)
                           for m in mapper.mappings))
        return ServiceStats(download_rate=down_rate, upload_rate=up_rate, downloaded=downloaded,
                            uploaded=uploaded, listen_port=shared.listen_port if self.running else 0,
                            dht_nodes=len(dht.table) if dht is not None else 0, jobs=counts,
                            peers=peers, port_mapping=mapping)

    # -- add -----------------------------------------------------------------------------
    async def add(self, source: str | bytes | Torrent | Magnet, *, save_path: str | None = None,
                  files: Sequence[int] | None = None, sequential: bool = False, paused: bool = False,
                  peers: Sequence[tuple[str, int]] = (), client: str | None = None,
                  features: JobFeatures | None = None, download_limit: int = 0,
                  upload_limit: int = 0, seed_mode: bool = False,
                  download_path: str | None = None) -> tuple[Job, bool]:
        """Start a job; ``(job, True)``, or ``(existing job, False)`` when one for the same
        info-hash is already active (concurrent adds of one torrent share one job and one start).
        ``features``: category (a category's save path applies when ``save_path`` is not given),
        tags, share limits, force-start, first/last-piece priority, a display name.
        ``seed_mode``: the data is complete in the save path already (a cross-seed, qBittorrent's
        ``skip_checking``): the job seeds at once, nothing read at the add; each piece is verified
        the first time it is served, and one that fails has the whole torrent checked.
        ``download_path``: the folder the data goes to while it downloads, moved to the save
        path once complete ("" none; None: the service's ``incomplete_dir`` setting decides)."""
        rec, created = await self._add(
            source, save_path=save_path, files=files, sequential=sequential, paused=paused, peers=peers,
            client=client, features=features, download_limit=download_limit, upload_limit=upload_limit,
            seed_mode=seed_mode, download_path=download_path)
        return self.snapshot(rec), created

    async def _add(self, source: str | bytes | Torrent | Magnet, *, save_path: str | None,
                   files: Sequence[int] | None, sequential: bool, paused: bool,
                   peers: Sequence[tuple[str, int]], client: str | None, features: JobFeatures | None,
                   download_limit: int, upload_limit: int, seed_mode: bool,
                   download_path: str | None) -> tuple[JobRecord, bool]:
        """``add``'s work: the job's record (its snapshot is the caller's to take)."""
        self._require_running()
        limits = (check_limit(download_limit, "download_limit"), check_limit(upload_limit, "upload_limit"))
        features = check_features(features)
        save_path = self.add_save_path(features, save_path)
        layout = features.content_layout if features is not None else "original"
        root = self.download_root

        def read() -> tuple[tuple[Torrent | Magnet, str], Ground]:  # (one worker-thread hop)
            parsed = read_source(source)
            return parsed, ground(root, save_path, parsed[0], layout)

        (torrent, source_text), found = await anyio.to_thread.run_sync(read)
        save = found.save
        selected = check_files(files, torrent)
        data: Path | None = None
        if download_path or (download_path is None and self.settings.incomplete_dir_enabled):
            data = await anyio.to_thread.run_sync(lambda: download_path_for(
                self.download_root, self.settings, download_path, save, torrent, selected,
                seed_mode=bool(seed_mode)))
        peer_list = check_peers(peers)
        if client is not None and client not in self.leases:
            raise LeaseNotFound(f"no open client lease {client!r}", "client")
        info_hash = torrent.info_hash.hex()
        while True:
            pending = self.adding.get(info_hash)
            if pending is not None:
                await pending.wait()
                continue
            existing = self.jobs.get(self.jobs.active_id(info_hash))
            if existing is not None:
                _same_request(existing, save if save_path is not None else None, selected)
                return existing, False
            break
        if isinstance(torrent, Torrent):  # (refused before anything is written; taken in _create)
            clash = self.overlap(f"torrent {torrent.name!r}", None, _torrent_paths(data or save, torrent))
            if clash is not None:
                raise clash
        if features is not None:
            await self._organiser.known(features)  # (its new category and tags become known)
        done = anyio.Event()
        self.adding[info_hash] = done
        try:
            rec = await self._create(torrent, source_text, found, selected, sequential, paused, peer_list,
                                     client, features, limits, seed_mode=bool(seed_mode), download_path=data)
        finally:
            del self.adding[info_hash]
            done.set()
        if client is not None and client not in self.leases and rec.state not in FINISHED_STATES:
            await self.client_gone(rec)  # it ended meanwhile
        self.run_program(ProgramEvent.ADDED, rec)
        if self.settings.queueing:
            await self.enforce()  # (the queue may hold it back at once)
        return rec, True

    async def _add_watched(self, source: bytes | str, save_path: str | None, category: str) -> str:
        """Add what a watched folder's file holds (see watch.py); the job's id."""
        features = JobFeatures(category=category) if category else None
        job, _ = await self.add(source, save_path=save_path, features=features)
        return job.id

    def watch_status(self) -> dict[str, object]:
        """The watched folders, why one cannot be read, and the files they held lately."""
        return self._watcher.status(self.settings)

    async def add_many(self, sources: Sequence[str | bytes | Torrent | Magnet],
                       options: AddOptions | None = None) -> builtins.list[tuple[Job, bool] | JobError]:
        """Add several torrents with the same options (a batch of a download client's add), at
        once rather than one after the other: each add's writes and checks overlap the others'
        waits. One entry per source, in order: what ``add`` returns, or the ``JobError`` that
        refused it (a ``StateNotSaved`` is raised: nothing more can be added then)."""
        added: list[tuple[JobRecord, bool] | JobError] = [JobConflict("not added")] * len(sources)
        o = options if options is not None else AddOptions()

        async def one(i: int, source: str | bytes | Torrent | Magnet) -> None:
            try:
                added[i] = await self._add(
                    source, save_path=o.save_path, files=o.files, sequential=o.sequential, paused=o.paused,
                    peers=o.peers, client=o.client, features=o.features, download_limit=o.download_limit,
                    upload_limit=o.upload_limit, seed_mode=o.seed_mode, download_path=o.download_path)
            except StateNotSaved:
                raise
            except JobError as exc:
                added[i] = exc

        async with anyio.create_task_group() as tg:
            for i, source in enumerate(sources):
                tg.start_soon(one, i, source)
        # the places the new jobs took as each joined the table, given in the batch's order
        new = [self.jobs.get(r[0].id) for r in added if isinstance(r, tuple) and r[1]]
        recs = [rec for rec in new if rec is not None and rec.state not in FINISHED_STATES]
        places = sorted(rec.queue_position for rec in recs)
        moved = [rec for rec, place in zip(recs, places, strict=True) if rec.queue_position != place]
        for rec, place in zip(recs, places, strict=True):
            rec.queue_position = place
        if moved:
            self.jobs.reordered()
            for rec in moved:
                await self.save(rec)
        # (as they are now: their places; one snapshot each)
        return [(self.snapshot(self.jobs.get(r[0].id) or r[0]), r[1]) if isinstance(r, tuple) else r
                for r in added]

    async def _create(self, torrent: Torrent | Magnet, source_text: str, found: Ground,
                      selected: tuple[int, ...] | None, sequential: bool, paused: bool,
                      peers: tuple[tuple[str, int], ...], client: str | None,
                      features: JobFeatures | None = None, limits: tuple[int, int] = (0, 0), *,
                      seed_mode: bool = False, download_path: Path | None = None) -> JobRecord:
        now = self.clock()
        save = found.save
        options = JobOptions(save_path=str(save), files=selected, sequential=sequential, paused=paused,
                             peers=peers, client=client, download_limit=limits[0], upload_limit=limits[1],
                             seed_mode=seed_mode,
                             download_path=None if download_path is None else str(download_path))
        data = Path(options.data_path)  # (where its files are written while it downloads)
        if isinstance(torrent, Torrent):
            name = torrent.name
        else:
            name = torrent.display_name or torrent.info_hash.hex()
        trackers = None if isinstance(torrent, Torrent) else list(dict.fromkeys(torrent.trackers))
        rec = JobRecord(id=self.jobs.new_id(lambda: secrets.token_hex(8)),
                        info_hash=torrent.info_hash.hex(), name=name, source=source_text,
                        options=options, state=JobState.PAUSED if paused else JobState.QUEUED,
                        created_at=now, updated_at=now, features=features or JobFeatures(),
                        number=0, trackers=trackers)
        rec.number = self._organiser.take_number()  # (never handed out again)
        if data == found.save:
            rec.created_dirs, preexisting = found.created_dirs, found.preexisting
        else:  # (it downloads into its incomplete folder: what is there, not at the save path)
            stored = ([f.path for f in torrent.files if not f.pad and "l" not in f.attr]
                      if isinstance(torrent, Torrent) else [])
            root = self.download_root
            rec.created_dirs, preexisting = await anyio.to_thread.run_sync(
                lambda: (missing_dirs(root, data), existing_files(data, stored)))
        if isinstance(torrent, Torrent):
            learn_layout(rec, torrent)
            rec.preexisting = preexisting
        if isinstance(torrent, Torrent):  # (its files, taken as it joins the table: an add of
            # another torrent meanwhile may have taken some of them since ``add`` checked)
            paths = _torrent_paths(data, torrent)
            clash = self.overlap(f"torrent {torrent.name!r}", None, paths)
            if clash is not None:
                raise clash
            self.claims.claim(rec.id, paths)
        # (last in the queue, taken as it joins the table: an add overlapping this one took the
        # same place when it was taken before the waits above)
        rec.queue_position = self.queue.next_position()
        order_before = self.jobs.order_version
        self.jobs.add(rec)
        self.queue.ranked_last(rec, order_before)
        self.busy.add(rec.id)  # its session's first events wait for job.added (then _sync catches up)
        self.starting[rec.id] = None  # (all but a magnet's metadata: see _on_engine_event)
        try:
            try:
                await self.manager.add(torrent, data, peers=peers, paused=self.starts_paused(rec),
                                       prepare=lambda s: self.apply_options(rec, s), seed_mode=seed_mode)
            except BaseException as exc:
                self.queue.held.discard(rec.id)
                self.claims.release(rec.id)
                self.jobs.discard(rec)
                if isinstance(exc, OSError) and exc.errno in FULL_ERRNOS:  # (its metainfo: the state folder)
                    raise not_saved(exc, self.state_dir) from exc
                if isinstance(exc, (TorrentEngineError, OSError)):
                    raise InvalidJobRequest(f"cannot start: {exc}", "source") from exc
                raise
            # durable before anyone hears of it: when it cannot be, the add is undone
            await self.save(rec, strict=True)
        except StateNotSaved:
            if rec.id not in self.jobs:
                raise
            with anyio.CancelScope(shield=True):
                self.queue.held.discard(rec.id)
                await self.manager.remove(rec.info_hash)
                await anyio.to_thread.run_sync(self.remove_files, rec)
                self.claims.release(rec.id)
                self.jobs.discard(rec)
                self.writer.forget(rec.id)
            raise
        finally:
            self.busy.discard(rec.id)
            refusal = self.starting.pop(rec.id, None)
        self.events.publish(JobAdded(info_hash=rec.info_hash, job=self.snapshot(rec)))
        if refusal is not None and self.tg is not None:  # its metadata came during the add and
            self.busy.add(rec.id)  # its selection names a file the torrent does not have
            self.tg.start_soon(self.end, rec, JobState.FAILED, refusal)
        self.sync(rec)
        # (saved above once the manager had the torrent, metainfo on disk: a crash before that
        # leaves a torrent without a job, which the next start stops; the add had not returned)
        await self.save(rec)
        return rec

    # -- control -------------------------------------------------------------------------
    def _reachable(self, job_id: str, action: str) -> tuple[JobRecord, Session | None]:
        """The unfinished job ``job_id`` and its session (None: a dormant job, see ``dormant``);
        ``JobNotFound``, or ``JobConflict`` for a finished job or one being restarted or ended."""
        rec = self.jobs.get(job_id)
        if rec is None:
            raise JobNotFound(f"no job {job_id!r}", "id")
        if rec.state in FINISHED_STATES:
            raise JobConflict(f"cannot {action} a job that is {rec.state.value}")
        if self.dormant(rec):
            return rec, None
        session = self.session_of(rec)
        if session is None or rec.id in self.busy:
            raise JobConflict(f"cannot {action} the job now: it is being restarted or ended")
        return rec, session

    async def _live(self, job_id: str, action: str) -> tuple[JobRecord, Session]:
        """As ``_reachable``, a dormant job's session started (paused or not, as it was)."""
        rec, session = self._reachable(job_id, action)
        if session is None:
            session = await self.start_dormant(rec)
        return rec, session

    async def pause(self, job_id: str) -> Job:
        """Pause the job (peers dropped, data kept); ``JobConflict`` if it is not running."""
        self._require_running()
        async with self.lock(job_id):
            rec, session = self._reachable(job_id, "pause")
            await self._save_planned(rec, paused=True)  # (refused, nothing changed, if it cannot be)
            if session is not None and session.state is not State.PAUSED:
                await session.pause()
            rec.options = dataclasses.replace(rec.options, paused=True)
            rec.updated_at = self.clock()
            if session is None and rec.id in self.queue.held:  # (dormant, held back by the queue)
                self.queue.held.discard(rec.id)
                self.set_state(rec, JobState.PAUSED)
            self.sync(rec)
            await self.save(rec)  # durable before the caller hears it is done
        await self.enforce()  # (a slot of the queue may have freed)
        return self.get(job_id)

    async def resume(self, job_id: str) -> Job:
        """Resume a paused job (a job paused since the service started gets its session now), or
        one stopped by its disk (``error``): it goes on from the data verified before."""
        self._require_running()
        async with self.lock(job_id):
            rec, session = self._reachable(job_id, "resume")
            await self._save_planned(rec, paused=False)  # (refused, nothing changed, if it cannot be)
            if session is None and (rec.id in self.queue.held or self._rounds.starts_held(rec)):
                self.queue.held.add(rec.id)  # dormant, held back by the queue: it starts with its slot
                self.set_state(rec, JobState.QUEUED)
            elif session is None:
                rec.options = dataclasses.replace(rec.options, paused=False)
                await self.start_dormant(rec)  # (started paused with queueing on: the queue judges it)
            elif session.paused and rec.id not in self.queue.held:  # (or paused once started)
                if self._rounds.waits_for_queue(rec, session):
                    self.queue.held.add(rec.id)  # its session stays paused: it runs with its slot
                else:
                    await self.resume_session(rec, session)
            rec.options = dataclasses.replace(rec.options, paused=False)
            rec.updated_at = self.clock()
            self.sync(rec)
            await self.save(rec)  # durable before the caller hears it is done
        await self.enforce()  # (the queue may hold it back)
        return self.get(job_id)

    async def _save_planned(self, rec: JobRecord, *, paused: bool) -> None:
        """Save the record as a pause or resume leaves it, before either is made: durable before
        the caller hears it is done (``StateNotSaved``, nothing changed, when it cannot be)."""
        options = dataclasses.replace(rec.options, paused=paused)
        planned = dataclasses.replace(rec, options=options, updated_at=self.clock())
        await self.save(rec, planned, strict=True)

    async def stream_session(self, job_id: str) -> Session | None:
        """The session to read a job's files from while it runs (a file reader or an HTTP
        stream), started now if queued and resumed if paused; None for a completed job (its
        files are whole on disk). A job the queue holds back is force-started (as qBittorrent
        would show it): someone is watching it. ``JobNotFound``; ``JobConflict`` for a failed or
        cancelled job."""
        self._require_running()
        async with self.lock(job_id):
            rec = self.jobs.get(job_id)
            if rec is not None and rec.state is JobState.COMPLETED:
                return None
            rec, session = await self._live(job_id, "stream")
            await self.manager.start_now(session)
            changed = False
            # (a paused or held one is resumed below: would the queue hold it back then?)
            if self._rounds.starts_held(rec, session):
                rec.features = dataclasses.replace(rec.features, force_start=True)
                changed = True
            self.queue.held.discard(rec.id)  # (it runs now: past the queue, or in its slot)
            # (or paused once started: a held job's session just woken; or once checked)
            if session.paused or session.pauses_after_check:
                await self.resume_session(rec, session)
                rec.options = dataclasses.replace(rec.options, paused=False)
                rec.updated_at = self.clock()
                self.sync(rec)
                changed = True
            if changed:  # durable before the reader has its session: a restart keeps it running
                await self.save(rec)
            return session

    async def recheck(self, job_id: str) -> Job:
        """Hash the data on disk again (the session restarts without its resume data). A job
        stopped by its disk (``error``) goes on after the check, from what it finds."""
        self._require_running()
        async with self.lock(job_id):
            rec, session = self._reachable(job_id, "recheck")
            if session is None and rec.state is JobState.ERROR:
                # started again without its resume data, it hashes what is there (its old
                # session would trust that data, and stop again on the same missing file)
                await anyio.to_thread.run_sync(self.manager.forget_resume, rec.info_hash)
                rec.options = dataclasses.replace(rec.options, paused=False, seed_mode=False)
                rec.updated_at = self.clock()
                await self.start_dormant(rec)
                await self.save(rec)
                job = self.snapshot(rec)
            else:
                if session is None:
                    session = await self.start_dormant(rec)
                job = await self._recheck(rec, session)
        await self.enforce()  # (a check over already: the queue's word)
        return self.get(job.id)

    async def _recheck(self, rec: JobRecord, session: Session) -> Job:
        if not session.has_metadata:
            return self.snapshot(rec)  # nothing on disk to check before the metadata arrives
        torrent = session.torrent
        paused = self.starts_paused(rec, session.paused)  # (or paused once started: added so, or held)
        rec.options = dataclasses.replace(rec.options, seed_mode=False)  # (checked: not taken as complete)
        self.busy.add(rec.id)
        try:
            with anyio.CancelScope(shield=True):  # half a restart would leave the job without a session
                self.refresh_counters(rec)
                await self.manager.remove(session.info_hash)  # (forgets its resume data: a full recheck)
                try:
                    await self.manager.add(torrent, Path(rec.options.data_path), peers=rec.options.peers,
                                           paused=paused, prepare=lambda s: self.prepare_session(rec, s))
                except (TorrentEngineError, OSError) as exc:
                    await self.finish(rec, JobState.FAILED, f"cannot restart for a recheck: {exc}")
                    return self.snapshot(rec)
        finally:
            self.busy.discard(rec.id)
        self.sync(rec)
        await self.save(rec)
        return self.snapshot(rec)

    async def update(self, job_id: str, *, file_priorities: Mapping[int, int] | None = None,
                     sequential: bool | None = None, download_limit: int | None = None,
                     upload_limit: int | None = None, max_peers: int | None = None) -> Job:
        """Change file priorities (index -> 0..7, 0 = skip), sequential mode, rate limits or the
        job's connections at most (``max_peers``, 0: the setting for every torrent)."""
        self._require_running()
        async with self.lock(job_id):
            rec, session = self._reachable(job_id, "update")
            before = rec.options, rec.file_priorities, rec.updated_at
            job = self._update(rec, session, file_priorities, sequential, download_limit, upload_limit,
                               max_peers)
            try:
                await self.save(rec, strict=True)  # durable before the caller hears it is done
            except StateNotSaved:  # refused: what was made is taken back
                rec.options, rec.file_priorities, rec.updated_at = before
                if session is not None:
                    if before[1] is not None and file_priorities is not None:
                        session.set_file_priorities(before[1])
                    self.apply_options(rec, session)
                raise
            return job

    def _update(self, rec: JobRecord, session: Session | None, file_priorities: Mapping[int, int] | None,
                sequential: bool | None, download_limit: int | None, upload_limit: int | None,
                max_peers: int | None = None) -> Job:
        options = rec.options  # (everything is checked before anything changes)
        if max_peers is not None:
            options = dataclasses.replace(options, max_peers=check_job_peers(max_peers, "max_peers"))
        if download_limit is not None:
            down = check_limit(download_limit, "download_limit")
            options = dataclasses.replace(options, download_limit=down)
        if upload_limit is not None:
            up = check_limit(upload_limit, "upload_limit")
            options = dataclasses.replace(options, upload_limit=up)
        if sequential is not None:
            options = dataclasses.replace(options, sequential=bool(sequential))
        if file_priorities is not None:
            known = session.has_metadata if session is not None else rec.file_paths is not None
            if rec.file_priorities is None or not known:
                raise JobConflict("file priorities need the metainfo, which has not arrived yet",
                                  "file_priorities")
            pads = set(rec.pad_files) if rec.file_paths is not None else set()
            new = check_priorities(file_priorities, rec.file_priorities, pads)
            rec.file_priorities = new
            if session is not None:
                session.set_file_priorities(new)
            options = dataclasses.replace(options, files=tuple(i for i, p in enumerate(new) if p > 0))
        rec.options = options
        rec.updated_at = self.clock()
        if session is not None:  # (a dormant job's session takes them from the record when it starts)
            self.apply_options(rec, session)
        self.refresh_counters(rec)
        self.sync(rec)
        return self.snapshot(rec)

    async def cancel(self, job_id: str, *, delete_files: bool = False) -> Job:
        """Stop the job at once; with ``delete_files`` remove its files and the folders it made.
        Cancelling a cancelled job again changes nothing."""
        self._require_running()
        rec = self.jobs.get(job_id)
        if rec is None:
            raise JobNotFound(f"no job {job_id!r}", "id")
        if rec.state is JobState.CANCELLED:
            return self.snapshot(rec)
        if rec.state in FINISHED_STATES:
            raise JobConflict(f"cannot cancel a job that is {rec.state.value}")
        await self.cancel_job(rec, delete_files=delete_files, error=None)
        return self.snapshot(rec)

    async def clear_history(self, *, older_than: float | None = None) -> int:
        """Forget finished jobs (those finished at least ``older_than`` seconds ago, when given)."""
        self.refuse_while_starting()
        if older_than is not None:
            older_than = check_age(older_than, "older_than")
        now = self.clock()
        gone = self.jobs.finished_before(now, older_than)
        if gone:
            await self._organiser.keep_numbers()
        for rec in gone:
            self.jobs.remove(rec.id)
            self.finished_jobs.pop(rec.id, None)
            self.decorated.pop(rec.id, None)
            self.locks.pop(rec.id, None)
            self.programs.forget(rec.id)
            self.writer.forget(rec.id)
        if gone:
            await anyio.to_thread.run_sync(self.store.delete_many, [r.id for r in gone])
        for rec in gone:
            self.events.publish(JobRemoved(info_hash=rec.info_hash, job_id=rec.id))
        return len(gone)

    # -- leases --------------------------------------------------------------------------
    async def open_lease(self, ttl: float, *, replaces: str | None = None) -> Lease:
        """A client lease of ``ttl`` seconds, renewed by ``heartbeat``; jobs added with
        ``client=lease.id`` are cancelled (files deleted) when it lapses, ends or is replaced,
        unless their download completed (those are kept and end as completed)."""
        self.refuse_while_starting()
        self._require_running()
        seconds = check_ttl(ttl)
        if replaces is not None and replaces in self.leases:
            await self.end_lease(replaces)
        lease = self.leases.open(seconds, self.clock())
        await self._save_leases()
        return lease

    async def heartbeat(self, lease_id: str) -> Lease:
        """Keep the lease ``lease_id`` alive for another ``ttl``; ``LeaseNotFound`` if it is not open."""
        self.refuse_while_starting()
        return self.leases.renew(lease_id, self.clock())

    async def end_lease(self, lease_id: str) -> None:
        """End the lease ``lease_id``: cancel its unfinished jobs (files deleted), end those whose
        download completed as completed (files kept); ``LeaseNotFound`` if it is not open."""
        self.refuse_while_starting()
        self.leases.end(lease_id)
        await self._save_leases()
        for rec in self.jobs:
            if rec.options.client == lease_id and rec.state not in FINISHED_STATES:
                await self.client_gone(rec)

    async def _save_leases(self) -> None:
        leases = self.leases.entries()
        await anyio.to_thread.run_sync(self.store.save_leases, leases)

    # -- timers --------------------------------------------------------------------------
    async def _ticker(self) -> None:
        while True:
            await anyio.sleep(self.tick_interval)
            await self.tick()

    async def tick(self) -> None:
        """One round of the timers (the service runs it every ``tick_interval``): lapsed leases,
        history past its age, a stats event, saving active jobs' counters."""
        now = self.clock()
        for lease_id in self.leases.lapsed(now):
            if lease_id in self.leases:  # (not ended meanwhile)
                log.info("client lease %s lapsed", lease_id)
                await self.end_lease(lease_id)
        if 0 < self.history_ttl < math.inf:  # (inf, e.g. --history-ttl inf: kept for ever)
            await self.clear_history(older_than=self.history_ttl)
        for rec in self.moving():  # (a job without one, or quiet, has nothing that moves)
            if rec.state not in FINISHED_STATES and rec.id not in self.busy:
                self.sync(rec)
                if self.writer.due(rec.id, now, SAVE_INTERVAL):
                    self.refresh_counters(rec)
                    if self.writer.changed(rec, now):  # (nothing moved, e.g. paused: no write)
                        await self.save(rec)
        await self._tuning.alt_speed_tick(now)
        await self.enforce()
        self.events.publish(ServiceStatsEvent(stats=self.stats()))


    async def fetch_metainfo(self, url: str) -> Torrent:
        """The .torrent at an http(s) ``url`` (``InvalidJobRequest`` saying why it could not be had)."""
        if not url[:7].lower() == "http://" and not url[:8].lower() == "https://":
            raise InvalidJobRequest(f"{url[:80]!r} is neither a magnet link nor an http(s) URL", "source")
        try:
            proxy = self.manager.config.proxy  # (straight under "torrents only", unless proxy only)
            if proxy is not None and self.settings.proxy_torrents_only and not proxy.only:
                proxy = None
            response = await http_get(url, max_body=MAX_FETCHED_TORRENT, timeout=FETCH_TIMEOUT, proxy=proxy,
                                      bind=self.manager.config.netbind())
        except TrackerError as exc:
            raise InvalidJobRequest(f"cannot fetch {url[:80]}: {exc.reason}", "source") from exc
        if response.status != 200:
            raise InvalidJobRequest(f"cannot fetch {url[:80]}: HTTP {response.status} {response.reason}",
                                    "source")
        try:
            return await anyio.to_thread.run_sync(Torrent.from_bytes, response.body)
        except TorrentEngineError as exc:
            raise InvalidJobRequest(f"{url[:80]} is not a .torrent: {exc}", "source") from exc

    def client_jobs(self) -> builtins.list[Job]:
        """The jobs a download client lists: every unfinished one, and each failed one whose torrent
        has no unfinished job (the newest of them), until it is removed (``forget``); cancelled and
        completed jobs are gone for such a client, as removed torrents are."""
        out: builtins.list[Job] = []
        failed: dict[str, JobRecord] = {}
        for rec in self.jobs.newest_first():
            if rec.state not in FINISHED_STATES:
                out.append(self.snapshot(rec))
            elif rec.state is JobState.FAILED and self.jobs.active_id(rec.info_hash) is None:
                failed.setdefault(rec.info_hash, rec)
        out.extend(self.snapshot(rec) for rec in failed.values())
        return out

    async def forget(self, job_id: str, *, delete_files: bool = False) -> None:
        """Remove a finished job from the history now (and, with ``delete_files``, the files it
        made, as cancelling would have); ``JobConflict`` for an unfinished job (cancel it)."""
        self.refuse_while_starting()
        rec = self.jobs.get(job_id)
        if rec is None:
            raise JobNotFound(f"no job {job_id!r}", "id")
        if rec.state not in FINISHED_STATES:
            raise JobConflict(f"cannot forget a job that is {rec.state.value} (cancel it first)")
        async with self.lock(rec.id):
            if delete_files:
                await anyio.to_thread.run_sync(self.remove_files, rec)
            if rec.id not in self.jobs:
                return
            await self._organiser.keep_numbers()
            self.jobs.remove(rec.id)
            self.finished_jobs.pop(rec.id, None)
            self.decorated.pop(rec.id, None)
            self.writer.forget(rec.id)
            await anyio.to_thread.run_sync(self.store.delete, rec.id)
        self.locks.pop(rec.id, None)
        self.events.publish(JobRemoved(info_hash=rec.info_hash, job_id=rec.id))

    # -- the parts' verbs ------------------------------------------------------------------
    def get_settings(self) -> ServiceSettings:
        """The run-time settings, the global rate limits among them (this object owns them: the
        shared buckets are set from here alone).
        """
        return self._tuning.get_settings()

    async def update_settings(self, **changes: Any) -> ServiceSettings:
        """Change settings (``InvalidJobRequest`` naming a bad one; nothing changes then); saved.
        The one way the global rate limits change: the API, the download-client dialects and
        the configuration (``configure``: a start, a SIGHUP) all come here.
        """
        return await self._tuning.update_settings(**changes)

    async def configure(self, *, download_limit: int, upload_limit: int, max_active_downloads: int = 0,
                        incomplete_dir: str = "",
                        asked: Mapping[str, Any] | None = None) -> builtins.list[str]:
        """What the configuration (a ``Config``, the daemon's flags and config file) asks for, at
        a start or a reload: the global rate limits and the download slots (0: none). Each one
        that differs from what the configuration asked last time is a change, made through
        ``update_settings`` like one from the API; one the configuration did not change leaves
        the setting in force (set by the API since, perhaps). So the latest change wins, whoever
        made it, and a restart keeps it. The download slots are the job queue's (there is one
        queue): N turns queueing on with N downloads at once — and, when it was off, no maximum
        of seeding or of torrents in all, as the configuration asked for none — and 0 lifts the
        downloads' maximum. The incomplete folder: a folder turns it on there, "" turns it off.
        ``asked``: other settings by name (``settings.ASKED``: the programs, the watched folders),
        each changed when the configuration's value changed, as above. The names of the settings
        changed.
        """
        return await self._tuning.configure(download_limit=download_limit, upload_limit=upload_limit,
                                            max_active_downloads=max_active_downloads,
                                            incomplete_dir=incomplete_dir, asked=asked)

    def by_number(self, number: int) -> Job:
        """The job whose ``number`` this is; ``JobNotFound`` if none."""
        return self._organiser.by_number(number)

    def categories(self) -> builtins.list[Category]:
        """Every category, by name."""
        return self._organiser.categories()

    def category_path(self, name: str) -> Path:
        """Where a job of category ``name`` is saved (the download root when it has no path)."""
        return self._organiser.category_path(name)

    async def create_category(self, name: str, save_path: str = "") -> Category:
        """A new category saving into ``save_path`` (inside the download root; "" = the root)."""
        return await self._organiser.create_category(name, save_path)

    async def edit_category(self, name: str, save_path: str) -> Category:
        """Change a category's save path (jobs already added stay where they are)."""
        return await self._organiser.edit_category(name, save_path)

    async def remove_categories(self, names: Iterable[str]) -> builtins.list[str]:
        """Forget categories (and their subcategories); their jobs are left without one."""
        return await self._organiser.remove_categories(names)

    def tags(self) -> builtins.list[str]:
        """Every known tag, sorted."""
        return self._organiser.tags()

    async def create_tags(self, tags: Iterable[str]) -> builtins.list[str]:
        """Make tags known (without giving them to a job)."""
        return await self._organiser.create_tags(tags)

    async def delete_tags(self, tags: Iterable[str]) -> None:
        """Forget tags, and take them off every job."""
        await self._organiser.delete_tags(tags)

    async def set_features(self, job_ids: Iterable[str], **changes: Any) -> builtins.list[Job]:
        """Change the features of unfinished jobs: ``category`` (must exist), ``tags`` (replaces
        them), ``ratio_limit``, ``seeding_time_limit`` (None = default, -1 = none),
        ``force_start``, ``first_last_piece``, ``rename``. Every job is checked first.
        """
        return await self._organiser.set_features(job_ids, **changes)

    async def add_tags(self, job_ids: Iterable[str], tags: Iterable[str]) -> builtins.list[Job]:
        """Give tags to jobs (unknown tags become known)."""
        return await self._organiser.add_tags(job_ids, tags)

    async def remove_tags(self, job_ids: Iterable[str],
                          tags: Iterable[str] | None = None) -> builtins.list[Job]:
        """Take tags (all of them when ``tags`` is None) off jobs."""
        return await self._organiser.remove_tags(job_ids, tags)

    def add_save_path(self, features: JobFeatures | None, save_path: str | None) -> str | None:
        """The save path of a new job: its own, else its category's (when that has one)."""
        return self._organiser.add_save_path(features, save_path)

    def queue_order(self) -> builtins.list[str]:
        """The unfinished jobs' ids in queue order (first = next to run)."""
        return self._rounds.queue_order()

    async def move_in_queue(self, job_ids: Iterable[str], where: str, *, while_off: bool = False) -> None:
        """Move jobs to the ``top`` or ``bottom`` of the queue, or one place ``up`` or ``down``;
        ``JobConflict`` when queueing is off, unless ``while_off`` (the order is kept and counts
        once queueing is on, as Transmission's queue positions do).
        """
        await self._rounds.move_in_queue(job_ids, where, while_off=while_off)

    async def enforce(self) -> None:
        """Count seeding time, note completed downloads, act on reached share limits and start
        or hold jobs as the queue says (run by the service's tick and after changes), once the
        round under way, if any, is over.
        """
        await self._rounds.enforce()

    async def set_location(self, job_id: str, location: str) -> Job:
        """Move the job's files to ``location`` (inside the download root) and go on from there;
        the data is verified again at its new place. A job still downloading into its
        incomplete folder keeps its data there: the new save path is where it moves once
        complete (as qBittorrent's).
        """
        return await self._mover.set_location(job_id, location)

    async def set_download_path(self, job_id: str, path: str) -> Job:
        """Move the data of a job still downloading to the incomplete folder ``path`` (inside the
        download root; "" = none: to its save path), where it stays until complete.
        """
        return await self._mover.set_download_path(job_id, path)

    def metainfo(self, job_id: str) -> Torrent | None:
        """The job's metainfo, once known (None before a magnet's metadata, or after the job ended)."""
        return self._edits.metainfo(job_id)

    def piece_states(self, job_id: str) -> builtins.list[int] | None:
        """Per piece: 0 = missing, 1 = being downloaded, 2 = verified (None without the metainfo)."""
        return self._edits.piece_states(job_id)

    async def reannounce(self, job_id: str) -> None:
        """Announce the job to its trackers now (a job without trackers: nothing happens)."""
        await self._edits.reannounce(job_id)

    async def rename_path(self, job_id: str, old_path: str, new_path: str, *, folder: bool | None = None,
                          fields: tuple[str, str] = ("old_path", "new_path")) -> Job:
        """Give the file (``folder`` False), the folder (True: every file below it) or whichever
        ``old_path`` names (None) the path ``new_path`` (both as the job's file list shows them:
        relative to its save path). The files on disk move, the job reads and writes them there
        from then on, its verified pieces kept; the record keeps the names across restarts.
        ``InvalidJobRequest`` for a path that could leave the job's folder or names nothing,
        ``JobConflict`` for a new path taken (a file of the job or another job's, something on
        disk): ``fields`` names the offending input; nothing changed then.
        """
        return await self._edits.rename_path(job_id, old_path, new_path, folder=folder, fields=fields)

    def tracker_tiers(self, job_id: str) -> Tiers:
        """The job's trackers, BEP 12 tiers of announce URLs: as edited, else the torrent's (or
        its magnet's).
        """
        return self._edits.tracker_tiers(job_id)

    async def set_trackers(self, job_id: str, tiers: Iterable[Iterable[str]], field: str = "trackers") -> Job:
        """Announce the job to these tracker tiers from now on (``tracker_tiers``, edited): a
        tracker added is announced to at once, one removed no more; kept across restarts. Every
        URL is checked first (``InvalidJobRequest`` naming ``field``: nothing changes then).
        """
        return await self._edits.set_trackers(job_id, tiers, field)

    async def add_peers(self, job_id: str, peers: Iterable[tuple[str, int]]) -> None:
        """Dial these peers for the job (``(host, port)`` pairs, checked)."""
        await self._edits.add_peers(job_id, peers)

def _same_request(existing: JobRecord, save: Path | None, selected: tuple[int, ...] | None) -> None:
    """``JobConflict`` when an add of a torrent that already has an active job asks for another
    save path or another file selection than that job has (given, they must not be dropped
    silently); nothing when it asks for the same or leaves them out."""
    options = existing.options
    if save is not None and str(save) != options.save_path:
        raise JobConflict(f"job {existing.id} of this torrent is already active, saving in "
                          f"{options.save_path}: cancel it first to save elsewhere", "save_path")
    if selected is not None and selected != options.files:
        raise JobConflict(f"job {existing.id} of this torrent is already active with other files "
                          "selected: change them with PATCH file_priorities", "files")


def _torrent_paths(save: Path, torrent: Torrent) -> builtins.list[str]:
    """The absolute paths a job of ``torrent`` saving into ``save`` writes."""
    files = torrent.files
    return claimed_paths(save, [f.path for f in files], [i for i, f in enumerate(files) if f.pad])


def JobError_not_running() -> JobConflict:  # noqa: N802 - reads as the error it makes
    """The error for a call made while the service is not running."""
    return JobConflict("the job service is not running (use 'async with JobService(...)')")
