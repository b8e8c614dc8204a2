"""JobService: background downloads as jobs over one TorrentManager, with history and leases.

A job is one torrent the service was asked to fetch. Its state is derived from its session's
(queued, checking, fetching_metadata, downloading, seeding, paused) plus the job's own ends
(completed, failed, cancelled); every change is a ``job.state`` event. Records live in
``state_dir/jobs.sqlite3`` (store.py) next to the manager's ``state_dir/torrents.sqlite3``
(metainfo) and ``state_dir/torrents/`` (resume data), so a restarted service finds every job
in its state and resumes it from its verified pieces. See docs/jobs.md for the state table, the
layout on disk, leases and single flight."""

from __future__ import annotations

import builtins
import dataclasses
import logging
import math
import os
import time
from collections import Counter
from collections.abc import Callable, Collection, Coroutine, Generator, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType

import anyio
import anyio.abc

from ..beats import sleep_to_beat
from ..config import Config
from ..engine.addtorrent import AddTorrent, AddTorrentError, add_torrent_of
from ..engine.manager import TorrentManager
from ..engine.turns import Turns
from ..engine.unwind import ExitStack
from ..formats.magnet import Magnet
from ..formats.metainfo import Torrent
from ..net.httpclient.cookies import Cookie
from ..net.webseed import WebSeedState
from ..session import Session
from .configure import SettingsControl
from .control import JobControl
from .disk.dedup import Deduplicator
from .disk.exports import TorrentExports
from .disk.partial_names import PartialNames
from .disk.relocate import Mover
from .disk.space import SpaceGuard
from .edits import JobEdits
from .intake.adding import JobAdder
from .intake.addoptions import AddOptions
from .intake.cookies import UrlCookies
from .intake.metadata import MetadataFetches
from .intake.mutable import MutableFollower
from .intake.watch import FolderWatcher
from .lifecycle import JobLifecycle
from .model import (
    FINISHED_STATES,
    ClientChanges,
    Holdings,
    InvalidJobRequest,
    Job,
    JobChanges,
    JobConflict,
    JobError,
    JobFeatures,
    JobNotFound,
    JobState,
    Lease,
    ServiceStats,
    ServiceStatsEvent,
    TorrentFacts,
)
from .news import EngineNews
from .organising.categories import Category
from .organising.managed import AutoManagement
from .organising.organise import Organiser
from .queueing.clients import ClientLeases
from .queueing.leases import LeaseTable
from .queueing.rounds import QueueRounds
from .restore import Restorer
from .scrapes import TrackerScrapes
from .store import JobStore
from .table import JobTable
from .totals import TransferTotals, service_stats
from .trackers import Tiers
from .tuning.groups import BandwidthGroups, GroupSettings
from .tuning.mail import Mailer
from .tuning.settings import ServiceSettings

log = logging.getLogger(__name__)

SAVE_INTERVAL = 5.0  # seconds between saves of an active job's counters


class JobService:
    """``async with JobService(config, download_root=...) as jobs: job, created = await jobs.add(magnet)``

    Owns its ``TorrentManager`` (``config.state_dir`` is replaced by ``state_dir`` when given).
    All methods run on the caller's event loop; timers run in the service's task group."""

    tick_interval: float = 1.0  # lease expiry, history pruning, stats events

    def __init__(self, config: Config, *, download_root: str | os.PathLike[str],
                 state_dir: str | os.PathLike[str] | None = None, history_ttl: float = 24 * 3600.0,
                 clock: Callable[[], float] = time.time, incomplete_dir: str = "",
                 configured: Mapping[str, object] | None = None) -> None:
        chosen = state_dir if state_dir is not None else config.state_dir
        state = Path(chosen) if chosen is not None else None
        self.config = dataclasses.replace(config, state_dir=state)
        # One queue: the job queue holds jobs back (``configure`` gives it the configuration's
        # download slots); the manager, a registry of running sessions, starts whatever the
        # service asks it to. The job records say which torrents exist: a start adds each again
        # from its record (restore.py), the manager reloads none of its own.
        manager = TorrentManager(self.config)
        self.store = JobStore(state)
        # the parts, each given explicitly what it works on and what it calls
        self._tuning: SettingsControl  # (made below: the lifecycle reads its settings when asked)
        self._run = run = JobLifecycle(manager, self.store, download_root=Path(download_root).resolve(),
                                       state_dir=state, clock=clock, settings=lambda: self._tuning.settings)
        news = EngineNews(run)  # (the engine's news, by kind, to the jobs)
        news.listen(manager.events)
        self._restorer = Restorer(run)
        self._leases = ClientLeases(run, self.store.save_leases)
        self._rounds = QueueRounds(run)
        self._tuning = SettingsControl(run, self._rounds, state_dir=state, clock=clock)
        self._totals = TransferTotals(state)
        self._organiser = Organiser(run, self._rounds, state)
        self._mover = Mover(run, self._rounds)
        self._managed = AutoManagement(self._organiser, self._mover.set_location, lambda: run.settings)
        self._edits = JobEdits(run)
        self.scrapes = TrackerScrapes(run)  # (its ``interval`` and ``in_flight`` may be changed)
        # v2 files already held whole, placed in a new job before its check (docs/dedup.md)
        self.dedup = Deduplicator(run, mode=self.config.dedup)  # (its folders: the settings')
        self.dedup.listen(self._tuning.watchers)  # (a magnet's files too: EngineNews.before_check)
        news.place, manager.before_check = self.dedup.place, news.before_check
        run.checks.learn_files = self.dedup.learn_checked  # (what a check without a session read)
        self.space = SpaceGuard(run, resume=self.resume)  # (jobs stopped for room: resumed once there is)
        self.space.listen(self._tuning.watchers)
        names = PartialNames(run)  # (incomplete files under a suffix, docs/jobs.md; a completion's program
        names.listen(self._tuning.watchers)  # runs once its files have their names)
        run.program_waits = names.program_waits
        self._cookies, self._metadata = UrlCookies(state, clock), MetadataFetches(run)
        self._adder = JobAdder(run, self._rounds, self._organiser, self.dedup, self._cookies, self._metadata,
                               self._edits.merge_trackers)
        # the jobs added from a BEP 46 link follow its newer versions (docs/mutable.md)
        self._follower = MutableFollower(run, self._adder, self.config.mutable_poll_interval)
        self._control = JobControl(run, self._rounds, self._organiser)
        self._groups = BandwidthGroups(run, state)
        self._groups.listen()
        run.round_soon = self._rounds.round_soon
        run.move_when_complete = self._mover.move_when_complete
        run.stop_met = self._control.stop_soon
        run.stop_once_checked = self._control.stop_once_checked
        run.exported = TorrentExports(run).on
        self.mailer = Mailer(lambda: run.settings, lambda: run.tg)  # (a completion's mail; mailer.test())
        run.mail_completed = self.mailer.completed
        # what callers read of the service (the machinery's, the parts')
        self.manager, self.events = manager, run.events
        self.each, self.every = self._rounds.each, self._rounds.every  # (changes of many jobs at once)
        self.download_root = run.download_root
        self.state_dir = state
        self.queue = run.queue
        self.catalogue = self._organiser.catalogue
        self.blocklist = self._tuning.blocklist
        self.history_ttl = history_ttl
        # what the configuration asks of the settings beyond rates and slots (programs, watched folders)
        self._asked = dict(configured or {})
        self._watcher = FolderWatcher(lambda: self.settings, self._add_watched, clock)
        self.incomplete_dir = incomplete_dir  # what the configuration asks ("" = none): see configure
        self.lost: list[tuple[str, str]] = []  # (where, reason) of job records that could not be read
        self._stack: ExitStack | None = None
        # a front end's work for the service's run, asked for before it ran (``run_with``)
        self._companions: list[tuple[Callable[[], Coroutine[object, object, None]], str]] = []

    # -- context -------------------------------------------------------------------------
    async def load(self) -> None:
        """The first step of the start (``async with`` takes it when it was not taken): read the
        job records, the leases, settings and categories, and finish or undo a move a crash cut
        short. From then on the jobs are listed from their records; entering the service then
        loads their torrents and restores each job, and a change asked meanwhile is refused
        with ``ServiceStarting`` (the daemon serves its API between the two steps: a restart
        with 10 000 torrents answers at once). ``JobStoreError`` when the store cannot be read."""
        if self._run.loaded:
            return
        try:
            await anyio.to_thread.run_sync(lambda: self.download_root.mkdir(parents=True, exist_ok=True))
            records, lost = await anyio.to_thread.run_sync(self.store.load_all)
            self.lost = lost
            self._run.jobs = JobTable(records)
            self._run.writer.loaded(self.store.loaded)  # (a stop writes only what changed since)
            self._run.leases = LeaseTable(await anyio.to_thread.run_sync(self.store.load_leases))
            # (a torrent's connections and unchoke slots: the Config's, unless the daemon's flags say)
            asked = {"max_connections_per_torrent": self.config.max_peers_per_torrent,
                     "max_uploads_per_torrent": self.config.upload_slots,
                     "max_active_checking": self.config.active_checking_limit,
                     "listen_port": self.config.listen_port, "dht_enabled": self.config.dht_enabled,
                     "pex_enabled": self.config.pex_enabled, "lsd_enabled": self.config.lsd_enabled,
                     "encryption": self.config.encryption, "transport": self.config.transport,
                     "dedup": self.config.dedup, "dedup_folders": [str(Path(f).expanduser().absolute())
                                                                   for f in self.config.dedup_folders],
                     **self._asked}
            await self._totals.load()
            await self._tuning.load({"download_limit": self.config.download_rate_limit,
                                       "upload_limit": self.config.upload_rate_limit,
                                       "max_active_downloads": self.config.max_active_downloads,
                                       "incomplete_dir": self.incomplete_dir},
                                    asked)
            await self._organiser.load()
            await self.dedup.load()
            await self._groups.load()
            self.queue.place_all()
            self.queue.rerank()
            await self._mover.recover_moves()  # (before the jobs' torrents are added again)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self.store.close)
            raise
        self._run.loaded = True

    async def __aenter__(self) -> JobService:
        await self.load()
        stack = ExitStack()
        try:
            # (the jobs the queue holds back stay dormant, without a session, until given a slot)
            self.queue.held.update(self.queue.held_at_start())
            await stack.enter_async_context(self.manager)
            self._run.tg = await stack.enter_async_context(anyio.create_task_group())
            self._run.running = True
            self._stack = stack
            self._run.tg.start_soon(self._run.seeds.run)  # (the dormant seeds' announces: restore adds them)
            self._run.tg.start_soon(self._run.checks.run)  # (the checks of jobs added with their data)
            await self._restorer.restore()
            # (what the dedup index lacks of the complete jobs, read from their torrents, and the
            # indexed folders' walks: in the background, a start does not wait for them)
            self._run.tg.start_soon(self.dedup.rebuild)
            self._run.tg.start_soon(self.dedup.run_folders)
            self._run.tg.start_soon(self.space.run_guard)
            for rec in self._run.with_sessions():  # (their news came before the service ran)
                self._run.sleepers.wake(rec)
            await self.enforce()  # (the queue holds back what it must before anything runs long)
            self._run.tg.start_soon(self._ticker)
            self._run.tg.start_soon(self._watcher.run)
            self._run.tg.start_soon(self.blocklist.run)
            self._run.tg.start_soon(self._follower.run_forever)
            for work, name in self._companions:
                self._run.tg.start_soon(work, name=name)
            self._companions = []
        except BaseException:
            self._run.running = False
            self._run.loaded = False
            self._stack = None
            self._run.tg = None
            await stack.aclose()
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self.store.close)
            raise
        self._run.set_ready(True)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self._run.running = False
        self._run.set_ready(False)
        self._run.loaded = False
        stack, self._stack = self._stack, None
        if self._run.tg is not None:
            self._run.tg.cancel_scope.cancel()
        self._run.tg = None
        with anyio.CancelScope(shield=True):  # (the sessions run until the manager stops them)
            turns = Turns()  # (30 000 jobs: 71 ms in one turn)
            for rec in list(self._run.jobs):
                await turns.take()
                if rec.state not in FINISHED_STATES:
                    self._run.refresh_counters(rec)
                    if rec.options.paused:
                        self._run.refresh_files(rec)
        if stack is not None:
            await stack.aclose()  # the task group ends, then the manager stops every session
        with anyio.CancelScope(shield=True):
            await self._run.save_all([rec for rec in self._run.jobs if rec.state not in FINISHED_STATES])
            await self._totals.save(self.stats().transfer)
            await anyio.to_thread.run_sync(self.store.close)

    # -- queries -------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        """Whether the service has started: its torrents loaded and its jobs restored."""
        return self._run.ready

    @property
    def settings(self) -> ServiceSettings:
        """The run-time settings as they are now (``update_settings`` changes them)."""
        return self._tuning.settings

    def get(self, job_id: str) -> Job:
        """The job ``job_id``; ``JobNotFound`` if there is none."""
        return self._run.job(job_id)

    def list(self, state: JobState | None = None, *, offset: int = 0,
             limit: int | None = None) -> builtins.list[Job]:
        """Every job (active and history), newest first; only those in ``state`` when given; of
        those, ``limit`` (all when ``None``) from the ``offset``-th on. A seed's seeding time is
        shown to the minute (``get`` gives it to the second)."""
        recs = self._run.jobs.newest_first(JobState(state) if state is not None else None)
        if offset or limit is not None:
            recs = recs[offset:None if limit is None else offset + limit]
        return [self._run.listed(r) for r in recs]

    def list_pages(self, size: int, state: JobState | None = None, *,
                   owner: str | None = None) -> Iterator[builtins.list[Job]]:
        """``list``'s jobs, ``size`` at a time (``JobControl.list_pages``): ``state``'s, ``owner``'s
        alone when given."""
        return self._control.list_pages(size, state, owner=owner)

    def __contains__(self, job_id: object) -> bool:
        """Whether the service has a job ``job_id`` (active or history)."""
        return job_id in self._run.jobs

    def __len__(self) -> int:
        """How many jobs the service has (active and history)."""
        return len(self._run.jobs)

    def active(self) -> builtins.list[Job]:
        """The jobs that are not finished."""
        return [j for j in self.list() if j.state not in FINISHED_STATES]

    def active_pages(self, size: int) -> Iterator[builtins.list[Job]]:
        """``active``'s jobs, ``size`` at a time, of the jobs there were at the first page: the
        caller may let the loop run between two pages (a job removed or finished meanwhile is
        left out), so that reading every job of 30 000 never holds the loop for long."""
        for page in self.list_pages(size):
            yield [j for j in page if j.state not in FINISHED_STATES]

    def history(self) -> builtins.list[Job]:
        """The finished jobs."""
        return [j for j in self.list() if j.state in FINISHED_STATES]

    def stats(self) -> ServiceStats:
        """The service's totals: rates, bytes (the records', this run's and every run's), jobs per
        state, the listening port, the DHT, peers and port mapping (``totals.service_stats``)."""
        return service_stats(self._run, self.manager.shared, self._totals)

    # -- add -----------------------------------------------------------------------------
    async def _add_watched(self, source: AddTorrent, save_path: str | None, category: str) -> str:
        """Add what a watched folder's file holds (see intake/watch.py); the job's id."""
        features = JobFeatures(category=category) if category else None
        job, _ = await self.add(source, AddOptions(save_path=save_path, features=features))
        return job.id

    def watch_status(self) -> dict[str, object]:
        """The watched folders, why one cannot be read, and the files they held lately."""
        return self._watcher.status(self.settings)

    # -- leases --------------------------------------------------------------------------
    async def open_lease(self, ttl: float, *, replaces: str | None = None) -> Lease:
        """A client lease of ``ttl`` seconds, renewed by ``heartbeat``; jobs added with
        ``client=lease.id`` are cancelled (files deleted) when it lapses, ends or is replaced,
        unless their download completed (those are kept and end as completed)."""
        return await self._leases.open(ttl, replaces=replaces)

    async def heartbeat(self, lease_id: str) -> Lease:
        """Keep the lease ``lease_id`` alive for another ``ttl``; ``LeaseNotFound`` if it is not open."""
        return await self._leases.renew(lease_id)

    async def end_lease(self, lease_id: str) -> None:
        """End the lease ``lease_id``: cancel its unfinished jobs (files deleted), end those whose
        download completed as completed (files kept); ``LeaseNotFound`` if it is not open."""
        await self._leases.end(lease_id)

    # -- timers --------------------------------------------------------------------------
    async def _ticker(self) -> None:
        while True:
            await sleep_to_beat(self.tick_interval)  # (with the daemon's other timers: one wake-up)
            await self.tick()

    async def tick(self) -> None:
        """One round of the timers (the service runs it every ``tick_interval``): lapsed leases,
        history past its age, a stats event, saving active jobs' counters."""
        now = self._run.clock()
        await self._leases.lapse(now)
        if 0 < self.history_ttl < math.inf:  # (inf, e.g. --history-ttl inf: kept for ever)
            await self.clear_history(older_than=self.history_ttl)
        for rec in self._run.moving():  # (a job without one, or quiet, has nothing that moves)
            if rec.state not in FINISHED_STATES and rec.id not in self._run.busy:
                self._run.sync(rec)
                if self._run.writer.due(rec.id, now, SAVE_INTERVAL):
                    self._run.refresh_counters(rec)
                    if self._run.writer.changed(rec, now):  # (nothing moved, e.g. paused: no write)
                        await self._run.save(rec)
        await self._tuning.alt_speed_tick(now)
        await self.enforce()
        stats = self.stats()
        self.events.publish(ServiceStatsEvent(stats=stats))
        if self._totals.due():
            await self._totals.save(stats.transfer)

    def run_with(self, work: Callable[[], Coroutine[object, object, None]], name: str) -> None:
        """Run ``work`` in the service's task group for its run: now if it runs, else from its
        start (a front end's background work asked for before the service ran: the daemon
        serves its API while the torrents load). It ends when the service stops."""
        if self._run.tg is not None and self._run.running:
            self._run.tg.start_soon(work, name=name)
        else:
            self._companions.append((work, name))

    def start_soon(self, work: Callable[[], Coroutine[object, object, None]], name: str) -> None:
        """Run ``work`` in the service's task group: a front end's background work (a torrent being
        made) is the service's, and ends when the service stops. ``JobConflict`` while it does not run."""
        if self._run.tg is None:
            raise JobConflict("the service is not running")
        self._run.tg.start_soon(work, name=name)

    # -- the parts' verbs ------------------------------------------------------------------
    async def add(self, source: AddTorrent | str | bytes | Torrent | Magnet,
                  options: AddOptions | None = None, *, save_path: str | None = None,
                  files: Sequence[int] | None = None, sequential: bool = False, paused: bool | None = None,
                  peers: Sequence[tuple[str, int]] = (), client: str | None = None,
                  features: JobFeatures | None = None, download_limit: int = 0, upload_limit: int = 0,
                  seed_mode: bool = False,
                  download_path: str | None = None) -> tuple[Job, bool]:
        """Start a job; ``(job, True)``, or ``(existing job, False)`` when one for the same
        info-hash is already active (concurrent adds of one torrent share one job and one start).
        ``source``: an ``AddTorrent`` (a URL is fetched with the service's proxy), or a
        ``Torrent``, a ``Magnet``, .torrent bytes, a magnet link, an http(s) URL or a .torrent
        path. ``options``: every option of the job, in one value (``AddOptions``); or, the same
        options as keywords (not both):
        ``features``: category (a category's save path applies when ``save_path`` is not given),
        tags, share limits, force-start, first/last-piece priority, a display name.
        ``seed_mode``: the data is complete in the save path already (a cross-seed, qBittorrent's
        ``skip_checking``): the job seeds at once, nothing read at the add; each piece is verified
        the first time it is served, and one that fails has the whole torrent checked.
        ``download_path``: the folder the data goes to while it downloads, moved to the save
        path once complete ("" none; None: the service's ``incomplete_dir`` setting decides);
        ``paused`` None: the ``add_paused`` setting decides."""
        given = AddOptions(save_path=save_path, files=None if files is None else tuple(files),
                           sequential=sequential, paused=paused, peers=tuple(peers), client=client,
                           features=features, download_limit=download_limit, upload_limit=upload_limit,
                           seed_mode=seed_mode, download_path=download_path)
        if options is not None and given != AddOptions():
            raise TypeError("JobService.add takes its options as AddOptions or as keywords, not both")
        return await self._adder.add(_request(source), options if options is not None else given)

    async def add_many(self, sources: Sequence[AddTorrent | str | bytes | Torrent | Magnet],
                       options: AddOptions | None = None) -> builtins.list[tuple[Job, bool] | JobError]:
        """Add several torrents with the same options (a batch of a download client's add), at
        once rather than one after the other: each add's writes and checks overlap the others'
        waits. One entry per source, in order: what ``add`` returns, or the ``JobError`` that
        refused it (a ``StateNotSaved`` is raised: nothing more can be added then)."""
        requests: list[AddTorrent | JobError] = []
        for source in sources:
            try:
                requests.append(_request(source))
            except InvalidJobRequest as exc:
                requests.append(exc)
        readable = [r for r in requests if not isinstance(r, JobError)]
        added = iter(await self._adder.add_many(readable, options))
        return [r if isinstance(r, JobError) else next(added) for r in requests]

    def url_cookies(self) -> builtins.list[Cookie]:
        """The cookies sent with the .torrent URLs the service fetches (those not expired)."""
        return self._cookies.cookies()

    def url_cookie_header(self, url: str) -> str:
        """The ``Cookie:`` value a GET of ``url`` carries now (``""``: none): a .torrent URL's, a feed's."""
        return self._cookies.header_for(url)

    async def set_url_cookies(self, cookies: Sequence[Cookie]) -> None:
        """The cookies sent with .torrent URLs become exactly ``cookies`` (each checked by
        ``check_cookie``; at most ``MAX_COOKIES``, else ``InvalidJobRequest``), those with an
        expiry kept in the state folder (``StateNotSaved``: not written, nothing changed). A
        cookie goes with a GET of its domain (with a leading dot, its sub-domains too) and path."""
        await anyio.to_thread.run_sync(self._cookies.replace, list(cookies))

    async def fetch_metainfo(self, url: str) -> Torrent:
        """The .torrent at an http(s) ``url`` (``InvalidJobRequest`` saying why it could not be had)."""
        return await self._adder.fetch_metainfo(url)

    def fetch_metadata(self, magnet: Magnet) -> Torrent | None:
        """A magnet's metainfo without adding it: None while it is fetched (the first call starts
        a fetch, a session of its own that ends when the info dict is in, after
        ``FETCH_METADATA_TIMEOUT``, or with the service); once fetched, the metainfo, handed over
        once. ``JobConflict`` when too many fetches are under way."""
        return self._metadata.fetch(magnet)

    def metadata_fetching(self, info_hash: str) -> bool:
        """Whether the metadata of ``info_hash`` (hex) is being fetched without a job."""
        return self._metadata.fetching(info_hash)

    async def follow_mutable(self) -> int:
        """Look now for newer versions of the BEP 46 links jobs were added from (the service does
        it every ``Config.mutable_poll_interval`` seconds); returns how many jobs moved to one."""
        await self._run.require_running()
        return await self._follower.poll()

    async def pause(self, job_id: str) -> Job:
        """Pause the job (peers dropped, data kept); ``JobConflict`` if it is not running."""
        return await self._control.pause(job_id)

    async def resume(self, job_id: str) -> Job:
        """Resume a paused job (a job paused since the service started gets its session now), or
        one stopped by its disk (``error``): it goes on from the data verified before."""
        return await self._control.resume(job_id)

    async def stream_session(self, job_id: str) -> Session | None:
        """The session to read a job's files from while it runs (a file reader or an HTTP stream),
        started now if queued and resumed if paused; None for a completed job (its files are whole on
        disk: ``file_on_disk``). A job the queue holds back is force-started (as qBittorrent would show
        it): someone is watching it. ``JobNotFound``; ``JobConflict`` for a failed or cancelled job."""
        return await self._control.stream_session(job_id)

    async def recheck(self, job_id: str) -> Job:
        """Hash the data on disk again (the session restarts without its resume data). A job
        stopped by its disk (``error``) goes on after the check, from what it finds."""
        return await self._control.recheck(job_id)

    async def update(self, job_id: str, *, file_priorities: Mapping[int, int] | None = None,
                     sequential: bool | None = None, download_limit: int | None = None,
                     upload_limit: int | None = None, max_peers: int | None = None,
                     super_seeding: bool | None = None, kept_download_limit: int | None = None,
                     kept_upload_limit: int | None = None) -> Job:
        """Change file priorities (index -> 0..7, 0 = skip), sequential mode, rate limits (and
        the value a limit keeps while off, ``kept_…``: taken where the limit is off after the
        change), the job's connections at most (``max_peers``, 0: the setting for every torrent)
        or super-seeding (BEP 16: applies while the job seeds, to the peers connected from then on)."""
        return await self._control.update(job_id, file_priorities=file_priorities, sequential=sequential,
                                          download_limit=download_limit, upload_limit=upload_limit,
                                          max_peers=max_peers, super_seeding=super_seeding,
                                          kept_download_limit=kept_download_limit,
                                          kept_upload_limit=kept_upload_limit)

    async def cancel(self, job_id: str, *, delete_files: bool = False) -> Job:
        """Stop the job at once; with ``delete_files`` remove its files and the folders it made.
        Cancelling a cancelled job again changes nothing."""
        return await self._control.cancel(job_id, delete_files=delete_files)

    async def clear_history(self, *, older_than: float | None = None) -> int:
        """Forget finished jobs (those finished at least ``older_than`` seconds ago, when given)."""
        return await self._control.clear_history(older_than=older_than)

    def change_cursor(self) -> int:
        """The change log's cursor now: a list made at once after it shows every change up to it,
        and ``changes`` tells what changed after it."""
        self._run.marks.settle()
        return self._run.marks.log.cursor

    def changes(self, cursor: int | None) -> JobChanges:
        """The jobs (as ``list`` shows them, newest first) changed after ``cursor``, and the ids of
        those removed; every job (``full``) when the change log cannot tell (a cursor of another run,
        or older than the removals it keeps) or ``cursor`` is None: it costs the jobs changed."""
        return self._control.changes(cursor)

    def changes_in_steps(self, cursor: int | None, *, page: int) -> Generator[None, None, JobChanges]:
        """``changes`` in steps, the loop let run at each (``JobControl``'s says how)."""
        return self._control.changes_in_steps(cursor, page=page)

    def client_changes(self, cursor: int | None = None, *, within: float | None = None,
                       positions: bool = False) -> ClientChanges:
        """What ``client_jobs`` lists that changed after ``cursor`` (or in the last ``within``
        seconds), by torrent; ``full`` when the cursor is unknown. ``positions``: the torrents whose
        listed job only moved in the queue are in ``moved``, with their position, not made again."""
        return self._control.client_changes(cursor, within=within, positions=positions)

    def client_changes_in_steps(self, cursor: int | None, *, within: float | None = None,
                                positions: bool = False, page: int) -> Generator[None, None, ClientChanges]:
        """``client_changes`` in steps, the loop let run at each (``JobControl``'s says how)."""
        return self._control.client_changes_in_steps(cursor, within=within, positions=positions, page=page)

    def client_jobs(self) -> builtins.list[Job]:
        """The jobs a download client lists: every unfinished one, and each failed one whose torrent
        has no unfinished job (the newest of them), until it is removed (``forget``); cancelled and
        completed jobs are gone for such a client, as removed torrents are."""
        return self._control.client_jobs()

    def client_jobs_of(self, info_hashes: Iterable[str] = (),
                       numbers: Collection[int] = ()) -> builtins.list[Job]:
        """``client_jobs``' of the torrents ``info_hashes`` and numbers ``numbers``, looked up."""
        return self._control.client_jobs_of(info_hashes, numbers)

    def holdings_of(self, owner: str) -> Holdings:
        """What ``owner`` holds: their jobs, bytes and labels (``Holdings``; no view made)."""
        return self._control.holdings_of(owner)

    def client_states(self) -> Counter[JobState]:
        """How many jobs ``client_jobs`` lists in each state (no view of each made)."""
        return self._control.client_states()

    def client_pages(self, size: int, *, category: str | None = None, tag: str | None = None,
                     owner: str | None = None, states: Collection[JobState] | None = None,
                     ) -> Iterator[builtins.list[Job]]:
        """``client_jobs``' jobs, ``size`` at a time, of those it lists at the first page: the caller
        may let the loop run between two pages (a job removed, completed or cancelled meanwhile is
        left out). ``category``, ``tag``: those in it (with it) alone, "" none; ``owner``: theirs;
        ``states``: those in one of them alone."""
        return self._control.client_pages(size, category=category, tag=tag, owner=owner, states=states)

    async def forget(self, job_id: str, *, delete_files: bool = False) -> None:
        """Remove a finished job from the history now (and, with ``delete_files``, the files it
        made, as cancelling would have); ``JobConflict`` for an unfinished job (cancel it)."""
        await self._control.forget(job_id, delete_files=delete_files)

    def get_settings(self) -> ServiceSettings:
        """The run-time settings, the global rate limits among them (this object owns them: the
        shared buckets are set from here alone)."""
        return self._tuning.get_settings()

    def watch_settings(self, watcher: Callable[[ServiceSettings, ServiceSettings], None]) -> None:
        """Call ``watcher(before, after)`` after each change of the settings, on the loop."""
        self._tuning.watchers.append(watcher)

    async def update_settings(self, **changes: object) -> ServiceSettings:
        """Change settings (``InvalidJobRequest`` naming a bad one; nothing changes then); saved.
        The one way the global rate limits change: the API, the download-client dialects and
        the configuration (``configure``: a start, a SIGHUP) all come here."""
        return await self._tuning.update_settings(**changes)

    async def configure(self, *, download_limit: int, upload_limit: int, max_active_downloads: int = 0,
                        incomplete_dir: str = "",
                        asked: Mapping[str, object] | None = None) -> builtins.list[str]:
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
        changed."""
        return await self._tuning.configure(download_limit=download_limit, upload_limit=upload_limit,
                                            max_active_downloads=max_active_downloads,
                                            incomplete_dir=incomplete_dir, asked=asked)

    def by_number(self, number: int) -> Job:
        """The job whose ``number`` this is; ``JobNotFound`` if none."""
        return self._organiser.by_number(number)

    def categories(self) -> builtins.list[Category]:
        """Every category, by name."""
        return self._organiser.categories()

    async def create_category(self, name: str, save_path: str = "") -> Category:
        """A new category saving into ``save_path`` (inside the download root; "" = the root)."""
        return await self._organiser.create_category(name, save_path)

    async def edit_category(self, name: str, save_path: str) -> Category:
        """Change a category's save path (its jobs managed automatically follow it)."""
        return await self._managed.edit_category(name, save_path)

    async def remove_categories(self, names: Iterable[str]) -> builtins.list[str]:
        """Forget categories (and their subcategories); their jobs are left without one."""
        return await self._managed.remove_categories(names)

    def bandwidth_groups(self) -> builtins.list[GroupSettings]:
        """Every bandwidth group, by name."""
        return self._groups.list()

    def bandwidth_group(self, name: str) -> GroupSettings:
        """The bandwidth group ``name``; ``JobNotFound`` (field ``name``) if there is none."""
        return self._groups.get(name)

    def bandwidth_group_members(self, name: str) -> int:
        """How many unfinished jobs are in the bandwidth group ``name`` now."""
        return self._groups.members(name)

    async def create_bandwidth_group(self, name: str, **fields: object) -> GroupSettings:
        """A new bandwidth group (tuning/groups.py): ``weight`` (1 … 1000), ``download_limit``,
        ``upload_limit`` (bytes/s, 0: none), ``honors_global`` (its traffic passes the global
        limits), ``categories`` and ``tags`` (whose jobs it takes). ``JobConflict`` if it exists."""
        return await self._groups.create(name, **fields)

    async def update_bandwidth_group(self, name: str, **fields: object) -> GroupSettings:
        """Change a bandwidth group's fields (as ``create_bandwidth_group`` names them);
        ``JobNotFound`` for an unknown one."""
        return await self._groups.update(name, **fields)

    async def set_bandwidth_group(self, name: str, **fields: object) -> GroupSettings:
        """Change a bandwidth group's fields, made first when there is none (Transmission's ``group-set``)."""
        return await self._groups.set(name, **fields)

    async def delete_bandwidth_group(self, name: str) -> None:
        """Forget a bandwidth group; the jobs that named it are left without one of their own."""
        await self._groups.delete(name)

    async def set_job_group(self, job_id: str, group: str, field: str = "group") -> Job:
        """Put the job in bandwidth group ``group`` ("": none of its own; its category's or tags'
        group may take it); ``InvalidJobRequest`` naming ``field`` for an unknown group."""
        return await self._groups.set_job_group(job_id, group, field)

    def job_bandwidth_group(self, job_id: str) -> str:
        """The bandwidth group the job is in now: its own, its category's or its tags' ("": none)."""
        return self._groups.group_of(job_id)

    def tags(self) -> builtins.list[str]:
        """Every known tag, sorted."""
        return self._organiser.tags()

    async def create_tags(self, tags: Iterable[str]) -> builtins.list[str]:
        """Make tags known (without giving them to a job)."""
        return await self._organiser.create_tags(tags)

    async def delete_tags(self, tags: Iterable[str]) -> None:
        """Forget tags, and take them off every job."""
        await self._organiser.delete_tags(tags)

    async def set_features(self, job_ids: Iterable[str], **changes: object) -> builtins.list[Job]:
        """Change the features of unfinished jobs: ``category`` (must exist), ``tags`` (replaces
        them), ``ratio_limit``, ``seeding_time_limit``, ``idle_seeding_limit`` (None = default, -1 = none),
        ``force_start``, ``first_last_piece``, ``rename``, ``auto_managed`` (``organising/managed.py``).
        Every job is checked first."""
        return await self._managed.set_features(job_ids, **changes)

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
        once queueing is on, as Transmission's queue positions do)."""
        await self._rounds.move_in_queue(job_ids, where, while_off=while_off)

    async def enforce(self) -> None:
        """Count seeding time, note completed downloads, act on reached share limits and start
        or hold jobs as the queue says (run by the service's tick and after changes), once the
        round under way, if any, is over."""
        await self._rounds.enforce()

    async def set_location(self, job_id: str, location: str, *, move: bool = True,
                           keep_existing: bool = False) -> Job:
        """Move the job's files to ``location`` (inside the download root) and go on from there,
        verified again there; a job downloading into its incomplete folder moves there once
        complete (as qBittorrent's). ``move`` False: the data is looked for (and verified) at
        ``location``, the files there are the user's (a cancel that deletes the job's files keeps
        them), those at the old place stay (Transmission's ``torrent-set-location`` without
        ``move``). ``keep_existing``: a file of the job at ``location`` already is taken there, not
        refused, its copy at the old place left (qBittorrent's ``setLocation``, libtorrent's
        ``dont_replace``). A job managed automatically is managed by hand once moved."""
        await self._mover.set_location(job_id, location, move=move, keep_existing=keep_existing)
        return await self._managed.by_hand(job_id)

    async def set_download_path(self, job_id: str, path: str) -> Job:
        """Move the data of a job still downloading to the incomplete folder ``path`` (inside the
        download root; "" = none: to its save path) until complete (a job managed by hand then)."""
        await self._mover.set_download_path(job_id, path)
        return await self._managed.by_hand(job_id)

    def metainfo(self, job_id: str) -> Torrent | None:
        """The job's metainfo, once known (None before a magnet's metadata, or after the job ended)."""
        return self._edits.metainfo(job_id)

    def file_on_disk(self, job_id: str, index: int) -> Path | None:
        """Where the job's file ``index`` is on disk (None: no such file); ``JobNotFound``."""
        return self._edits.file_on_disk(job_id, index)

    def torrent_facts(self, job_id: str) -> TorrentFacts | None:
        """What a list shows of the job's torrent: its piece space's size, private flag and
        trackers, from its session or its record (None before a magnet's metadata)."""
        return self._edits.torrent_facts(job_id)

    def web_seed_states(self, job_id: str) -> builtins.list[WebSeedState]:
        """The job's BEP 19 web seeds as its live session sees them ([] without a session)."""
        return self._edits.web_seed_states(job_id)

    def piece_states(self, job_id: str) -> builtins.list[int] | None:
        """Per piece: 0 = missing, 1 = being downloaded, 2 = verified (None without the metainfo)."""
        return self._edits.piece_states(job_id)

    def piece_availability(self, job_id: str, states: builtins.list[int] | None = None) -> builtins.list[int]:
        """Per piece, how many connected peers have it (empty without the metainfo or for a complete
        job, as libtorrent answers; 0 each while not running); ``states``: its ``piece_states``."""
        return self._edits.piece_availability(job_id, states)

    def scrape_trackers(self, job_id: str) -> bool:
        """A client looks at the job's trackers: scrape them in the background for their download
        counts (and seeders, leechers), if that is due (at most once per ``scrapes.interval`` per job,
        a few jobs at once: scrapes.py); whether a scrape began. ``JobNotFound`` for an unknown job."""
        rec = self._run.jobs.get(job_id)
        if rec is None:
            raise JobNotFound(f"no job {job_id!r}", "id")
        return self.scrapes.ask(rec)

    async def reannounce(self, job_id: str, urls: Collection[str] | None = None) -> None:
        """Announce the job to its trackers now (``urls``: to these alone; its schedule unchanged)."""
        await self._edits.reannounce(job_id, urls)

    def announcing(self, job_id: str) -> frozenset[str]:
        """The job's trackers an announce waits for now (qBittorrent's ``updating``)."""
        return self._edits.announcing(job_id)

    async def rename_path(self, job_id: str, old_path: str, new_path: str, *, folder: bool | None = None,
                          fields: tuple[str, str] = ("old_path", "new_path")) -> Job:
        """Give the file (``folder`` False), the folder (True: every file below it) or whichever
        ``old_path`` names (None) the path ``new_path`` (both as the job's file list shows them:
        relative to its save path). The files on disk move, the job reads and writes them there
        from then on, its verified pieces kept; the record keeps the names across restarts.
        ``InvalidJobRequest`` for a path that could leave the job's folder or names nothing,
        ``JobConflict`` for a new path taken (a file of the job or another job's, something on
        disk): ``fields`` names the offending input; nothing changed then."""
        return await self._edits.rename_path(job_id, old_path, new_path, folder=folder, fields=fields)

    def tracker_tiers(self, job_id: str) -> Tiers:
        """The job's trackers, BEP 12 tiers of announce URLs: as edited, else the torrent's (or
        its magnet's)."""
        return self._edits.tracker_tiers(job_id)

    async def set_trackers(self, job_id: str, tiers: Iterable[Iterable[str]], field: str = "trackers") -> Job:
        """Announce the job to these tracker tiers from now on (``tracker_tiers``, edited): a
        tracker added is announced to at once, one removed no more; kept across restarts. Every
        URL is checked first (``InvalidJobRequest`` naming ``field``: nothing changes then)."""
        return await self._edits.set_trackers(job_id, tiers, field)

    def web_seeds(self, job_id: str) -> builtins.list[str]:
        """The job's BEP 19 web seed URLs: as edited, else the torrent's url-list (or its
        magnet's ``ws=``)."""
        return self._edits.web_seeds(job_id)

    async def set_web_seeds(self, job_id: str, urls: Iterable[str], field: str = "web_seeds") -> Job:
        """Fetch the job's pieces from these BEP 19 web seeds from now on (edited): one added is
        asked at once while the job downloads, one removed no more (its requests given back);
        kept across restarts. Every URL is checked first (``InvalidJobRequest`` naming ``field``
        and the URL, for one that is not http(s): nothing changes then)."""
        return await self._edits.set_web_seeds(job_id, urls, field)

    async def add_peers(self, job_id: str, peers: Iterable[tuple[str, int]]) -> None:
        """Dial these peers for the job (``(host, port)`` pairs, checked)."""
        await self._edits.add_peers(job_id, peers)


def _request(source: object) -> AddTorrent:
    """The add request a library caller's ``source`` makes (``InvalidJobRequest`` of field
    ``source`` when it makes none)."""
    try:
        return add_torrent_of(source)
    except AddTorrentError as exc:
        raise InvalidJobRequest(str(exc), "source") from exc
