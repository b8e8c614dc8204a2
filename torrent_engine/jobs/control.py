"""The job service's verbs for what download clients organise jobs by: categories, tags, share
limits, the queue (positions, maxima, force-start), first/last-piece priority, moving a job's
files, and the run-time settings; and the tick that enforces share limits and the queue.

``JobFeatureControl`` sits between ``JobLifecycle`` (the machinery) and ``JobService`` (the
public verbs of downloading); everything it changes is in the job records, ``categories.json``
and ``settings.json``, so it survives restarts.
"""

from __future__ import annotations

import builtins
import dataclasses
import logging
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any  # Any: fields of settings or features, each its own type

import anyio

from ..errors import TorrentEngineError, TrackerError
from ..ipfilter import IpFilter
from ..magnet import Magnet
from ..manager import TorrentManager
from ..metainfo import Torrent
from ..peer.extensions import DEFAULT_MAX_METADATA_SIZE
from ..resume import ResumeData, load_resume, save_resume
from ..session import Session
from ..session_state import State
from ..shared import TokenBucket
from ..storage.paths import real_path
from ..storage.rename import move_files
from ..tracker.http import http_get
from .altspeed import effective_limits, scheduled
from .autorun import ProgramEvent
from .blocklist import Blocklist
from .categories import Catalogue, Category
from .claims import claimed_paths
from .features import check_category, check_tags, features_from
from .incomplete import incomplete_folder
from .lifecycle import JobLifecycle
from .model import (
    FINISHED_STATES,
    NO_LIMIT,
    InvalidJobRequest,
    Job,
    JobConflict,
    JobError,
    JobFeatures,
    JobNotFound,
    JobOptions,
    JobRemoved,
    JobState,
    JobUpdated,
    SavePathError,
    StateNotSaved,
)
from .move import PendingMove, copy_files, plan_move, recover, remove_sources
from .netbind import apply_binding
from .paths import confine, missing_dirs
from .peerlimits import apply_peer_limits
from .proxy import apply_proxy, proxy_config
from .queue import QueueEntry, effective, move, queue_entry, share_limit_reached, share_ratio
from .renames import check_path, plan_rename
from .settings import (
    Configured,
    SavedSettings,
    ServiceSettings,
    ShareLimitAction,
    load_settings,
    save_settings,
    updated,
)
from .store import JobRecord, JobStore, not_saved
from .trackers import Tiers, check_tiers, flat
from .validate import check_peers

log = logging.getLogger(__name__)

QUEUE_MOVES = ("top", "bottom", "up", "down")
MAX_FETCHED_TORRENT = DEFAULT_MAX_METADATA_SIZE + 64 * 1024  # a .torrent fetched by URL, at most
FETCH_TIMEOUT = 60.0  # seconds to fetch a .torrent by URL
SCHEDULE_SETTINGS = frozenset({"alt_schedule_enabled", "alt_schedule_from", "alt_schedule_to",
                               "alt_schedule_days"})
MAX_STEP = 300.0  # seconds of seeding one tick may count (a machine asleep does not seed)
UNCHECKED = (State.QUEUED, State.CHECKING)  # a session whose start-up check is not over


class JobFeatureControl(JobLifecycle):
    """Categories, tags, share limits, the queue, moving, settings (see the module's docstring)."""

    def __init__(self, manager: TorrentManager, store: JobStore, *, download_root: Path,
                 state_dir: Path | None, clock: Callable[[], float]) -> None:
        super().__init__(manager, store, download_root=download_root, state_dir=state_dir, clock=clock)
        self.catalogue = Catalogue(state_dir)
        self.settings = ServiceSettings()
        self.blocklist = Blocklist(lambda: self.settings, self._apply_ip_filter, state_dir=state_dir,
                                   clock=clock)
        self._configured: Configured | None = None  # what the configuration asked for last
        self._alt_scheduled: bool | None = None  # what the schedule said when last looked at
        self._alt_minute = -1  # the minute it was last looked at (once a minute)
        self._last_number = 0  # the highest job number handed out (the catalogue's may be older)
        self._last_position = 0  # the highest queue position given
        self._last_feature_tick: float | None = None
        self._completing: set[str] = set()  # job ids whose data is moving (or failed to move) once complete
        self._completion_failed: set[str] = set()  # (those of them whose move failed: not tried again)
        # one round of the queue at a time: a round acts on what it read as it began, and a
        # round running meanwhile (set off by a check's end) would act on what it read after
        self._round_lock = anyio.Lock()

    # -- start -----------------------------------------------------------------------------
    async def _load_features(self, configured: Configured, asked: Mapping[str, Any] | None = None) -> None:
        """Read categories, tags and settings; give every record a queue position (older records
        had none); apply the global rate limits, download slots and incomplete folder
        (``configured``: what the configuration asks, ``configure``'s keywords)."""
        await anyio.to_thread.run_sync(self.catalogue.load)
        saved = await anyio.to_thread.run_sync(load_settings, self.state_dir)
        self.settings, self._configured = saved.settings, saved.configured
        self._apply_global_limits()
        if self.settings.proxy_url:  # (none saved: a library's own Config.proxy stays)
            await apply_proxy(self.manager, self.settings)
        if self.settings.bind_interface:  # (none saved: a library's own Config.bind_interface stays)
            await apply_binding(self.manager, self.settings)
        await self.configure(**configured, asked=asked)
        await self.blocklist.refresh()
        order = sorted(self.jobs, key=lambda r: (r.queue_position or float("inf"), r.created_at))
        for n, rec in enumerate(order, 1):
            rec.queue_position = n
        self._last_position = len(order)
        self.jobs.reordered()
        numbered = max(self.catalogue.last_number, max((r.number for r in self.jobs), default=0))
        for rec in sorted(self.jobs, key=lambda r: r.created_at):
            if rec.number <= 0:
                numbered += 1
                rec.number = numbered
        self.catalogue.last_number = self._last_number = numbered
        self.queue.rerank()

    def _apply_global_limits(self) -> None:
        shared = self.manager.shared
        down, up = effective_limits(self.settings)  # (the alternative ones while they are on)
        shared.download_limit = TokenBucket(down)
        shared.upload_limit = TokenBucket(up)
        apply_peer_limits(shared, self.settings)

    def _apply_ip_filter(self, ip_filter: IpFilter, trackers: bool) -> None:
        self.manager.shared.set_ip_filter(ip_filter, trackers=trackers)

    def _next_position(self) -> int:
        """The place after every job's (a move only swaps places: the highest stays the highest)."""
        self._last_position += 1
        return self._last_position

    def _take_number(self) -> int:
        """A job number never handed out before (not even to a job since pruned from the
        history): one past the highest given. It is kept in the job's record; the catalogue
        keeps the highest given only once a record leaves the store (``_keep_numbers``), so an
        add writes no catalogue."""
        self._last_number += 1
        return self._last_number

    async def _keep_numbers(self) -> None:
        """Before a record leaves the store: the catalogue keeps the highest number handed out
        (a start numbers on from it and from the records' numbers)."""
        if self._last_number > self.catalogue.last_number:
            before = self.catalogue.snapshot()
            self.catalogue.last_number = self._last_number
            await self._save_catalogue(before)

    def by_number(self, number: int) -> Job:
        """The job whose ``number`` this is; ``JobNotFound`` if none."""
        for rec in self.jobs:
            if rec.number == number:
                return self.snapshot(rec)
        raise JobNotFound(f"no job number {number}", "id")

    def _check_running(self) -> None:
        self.refuse_while_starting()
        if not self.running or self.tg is None:
            raise JobConflict("the job service is not running (use 'async with JobService(...)')")

    def _unfinished(self, job_id: str) -> JobRecord:
        rec = self.jobs.get(job_id)
        if rec is None:
            raise JobNotFound(f"no job {job_id!r}", "id")
        if rec.state in FINISHED_STATES:
            raise JobConflict(f"cannot change a job that is {rec.state.value}")
        return rec

    def _decorate(self, rec: JobRecord, job: Job) -> Job:
        """The snapshot with the record's features, queue position, seeding time and ratio; the
        same object as the last time while ``job`` (a quiet job's kept view) and these are the
        same, so that a list's readers can keep what they made of it (its JSON, a dialect's
        record: the API's lists of 10 000 idle jobs made each again, 100 ms for the snapshots)."""
        f = rec.features
        self.sleepers.fold(rec)
        key = (f, self.queue.rank(rec.id), rec.seeding_time, rec.completed_at, rec.number)
        kept = self.decorated.get(rec.id)
        if kept is not None and kept[0] is job and kept[1] == key:
            return kept[2]
        shown = dataclasses.replace(job, name=f.rename or job.name, features=f,
                                    queue_position=key[1], seeding_time=rec.seeding_time,
                                    ratio=share_ratio(job.uploaded, job.downloaded, job.done_size),
                                    completed_at=rec.completed_at, number=rec.number)
        self.decorated[rec.id] = (job, key, shown)
        return shown

    def _updated(self, rec: JobRecord) -> None:
        """Tell subscribers (the SSE stream, the web UI) that a job changed other than its state."""
        self.events.publish(JobUpdated(info_hash=rec.info_hash, job=self.snapshot(rec)))

    # -- settings --------------------------------------------------------------------------
    def get_settings(self) -> ServiceSettings:
        """The run-time settings, the global rate limits among them (this object owns them: the
        shared buckets are set from here alone)."""
        return self.settings

    async def update_settings(self, **changes: Any) -> ServiceSettings:
        """Change settings (``InvalidJobRequest`` naming a bad one; nothing changes then); saved.
        The one way the global rate limits change: the API, the download-client dialects and
        the configuration (``configure``: a start, a SIGHUP) all come here."""
        self.refuse_while_starting()
        new = updated(self.settings, changes)
        if new.incomplete_dir != self.settings.incomplete_dir and new.incomplete_dir:
            folder = await anyio.to_thread.run_sync(incomplete_folder, self.download_root, new)
            new = dataclasses.replace(new, incomplete_dir=str(folder))  # (kept absolute)
        if SCHEDULE_SETTINGS & changes.keys():  # (a schedule set or changed applies at once)
            self._alt_scheduled = scheduled(new, self.clock())
            if self._alt_scheduled is not None and "alt_speed_enabled" not in changes:
                new = dataclasses.replace(new, alt_speed_enabled=self._alt_scheduled)
        saved = SavedSettings(new, self._configured)
        try:
            await anyio.to_thread.run_sync(save_settings, self.state_dir, saved)
        except OSError as exc:  # (nothing changed: the change is refused, saying where)
            raise not_saved(exc, self.state_dir) from exc
        before, self.settings = self.settings, new
        self._apply_global_limits()
        if proxy_config(before) != proxy_config(new):
            await apply_proxy(self.manager, new)
        if self.loaded or self.running:  # (at a start: once every setting is read)
            await self.blocklist.refresh(look_now=True)
        if (before.bind_interface, before.bind_address) != (new.bind_interface, new.bind_address):
            await apply_binding(self.manager, new)
        self.sleepers.wake_all(self.jobs)  # (limits and slots: every job is judged again)
        if self.running:
            await self.enforce()
        return self.get_settings()

    async def _alt_speed_tick(self, now: float) -> None:
        """Once a minute: at an edge of the alternative limits' window (the schedule's answer
        changed since the last look) they are turned on or off; between edges a manual toggle
        holds, as in qBittorrent and Transmission."""
        minute = int(now // 60)
        if minute == self._alt_minute:
            return
        self._alt_minute = minute
        decision = scheduled(self.settings, now)
        if decision is None or decision == self._alt_scheduled:
            self._alt_scheduled = decision
            return
        self._alt_scheduled = decision
        if decision != self.settings.alt_speed_enabled:
            log.info("alternative rate limits %s by the schedule", "on" if decision else "off")
            try:
                await self.update_settings(alt_speed_enabled=decision)
            except StateNotSaved as exc:
                log.warning("alternative rate limits not switched: %s", exc)
                self._alt_scheduled = None  # (tried again at the next minute)

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
        changed."""
        wanted: dict[str, Any] = {"download_limit": download_limit, "upload_limit": upload_limit,
                                  "max_active_downloads": max_active_downloads,
                                  "incomplete_dir": incomplete_dir}
        seen = self._configured if self._configured is not None else {}
        changes: dict[str, Any] = {}
        for name, value in (asked or {}).items():
            value = list(value) if isinstance(value, tuple) else value  # (as JSON notes it)
            wanted[name] = value
            if seen.get(name) != value:
                changes[name] = value
        for name in ("download_limit", "upload_limit"):
            if seen.get(name) != wanted[name]:
                changes[name] = wanted[name]
        if seen.get("max_active_downloads", 0) != max_active_downloads:  # (not noted: none asked)
            if max_active_downloads > 0:
                changes["max_active_downloads"] = max_active_downloads
                if not self.settings.queueing:
                    changes.update(queueing=True, max_active_uploads=-1, max_active_torrents=-1)
            else:
                changes["max_active_downloads"] = -1  # (no maximum)
        if seen.get("incomplete_dir", "") != incomplete_dir:  # (not noted: none asked)
            changes["incomplete_dir_enabled"] = bool(incomplete_dir)
            if incomplete_dir:
                changes["incomplete_dir"] = incomplete_dir
        before, self._configured = self._configured, wanted
        if changes or seen != wanted:
            try:
                await self.update_settings(**changes)
            except BaseException:  # (refused: not applied, so the same file is judged again)
                self._configured = before
                raise
        return list(changes)

    # -- categories and tags ---------------------------------------------------------------
    def categories(self) -> builtins.list[Category]:
        """Every category, by name."""
        return sorted(self.catalogue.categories.values(), key=lambda c: c.name)

    def category_path(self, name: str) -> Path:
        """Where a job of category ``name`` is saved (the download root when it has no path)."""
        cat = self.catalogue.categories.get(name)
        return confine(self.download_root, cat.save_path if cat is not None else None)

    async def _save_catalogue(self, before: tuple[dict[str, Category], set[str], int]) -> None:
        """Write the catalogue; when it cannot be, it is put back as it was (``before``, its
        ``snapshot``) and the change refused (``StateNotSaved``)."""
        data = self.catalogue.encode()
        try:
            await anyio.to_thread.run_sync(self.catalogue.write, data)
        except OSError as exc:
            self.catalogue.restore(before)
            raise not_saved(exc, self.state_dir) from exc

    async def create_category(self, name: str, save_path: str = "") -> Category:
        """A new category saving into ``save_path`` (inside the download root; "" = the root)."""
        self.refuse_while_starting()
        name = check_category(name)
        path = await self._category_save_path(save_path)
        before = self.catalogue.snapshot()
        cat = self.catalogue.create(name, path)
        await self._save_catalogue(before)
        return cat

    async def edit_category(self, name: str, save_path: str) -> Category:
        """Change a category's save path (jobs already added stay where they are)."""
        self.refuse_while_starting()
        path = await self._category_save_path(save_path)
        before = self.catalogue.snapshot()
        cat = self.catalogue.edit(check_category(name), path)
        await self._save_catalogue(before)
        return cat

    async def _category_save_path(self, save_path: str) -> str:
        if not isinstance(save_path, str):
            raise InvalidJobRequest("must be a string", "save_path")
        if save_path == "":
            return ""
        return str(await anyio.to_thread.run_sync(confine, self.download_root, save_path))

    async def remove_categories(self, names: Iterable[str]) -> builtins.list[str]:
        """Forget categories (and their subcategories); their jobs are left without one."""
        self.refuse_while_starting()
        before = self.catalogue.snapshot()
        gone = self.catalogue.remove([check_category(n) for n in names])
        await self._save_catalogue(before)
        for rec in self.jobs:
            if rec.features.category in gone:
                rec.features = dataclasses.replace(rec.features, category="")
                self.finished_jobs.pop(rec.id, None)  # (a finished job's view is built once)
                await self.save(rec)
                self._updated(rec)
        return gone

    def tags(self) -> builtins.list[str]:
        """Every known tag, sorted."""
        return sorted(self.catalogue.tags)

    async def create_tags(self, tags: Iterable[str]) -> builtins.list[str]:
        """Make tags known (without giving them to a job)."""
        self.refuse_while_starting()
        new = check_tags(tags)
        before = self.catalogue.snapshot()
        self.catalogue.tags.update(new)
        await self._save_catalogue(before)
        return list(new)

    async def delete_tags(self, tags: Iterable[str]) -> None:
        """Forget tags, and take them off every job."""
        self.refuse_while_starting()
        gone = set(check_tags(tags))
        before = self.catalogue.snapshot()
        self.catalogue.tags.difference_update(gone)
        await self._save_catalogue(before)
        for rec in self.jobs:
            if gone & set(rec.features.tags):
                rec.features = dataclasses.replace(rec.features,
                                                   tags=tuple(t for t in rec.features.tags if t not in gone))
                self.finished_jobs.pop(rec.id, None)  # (a finished job's view is built once)
                await self.save(rec)
                self._updated(rec)

    async def _known(self, features: JobFeatures) -> None:
        """A job's category and tags become known (as clients expect when adding with new ones)."""
        changed = False
        before = self.catalogue.snapshot()
        if features.category and features.category not in self.catalogue.categories:
            self.catalogue.create(features.category, "")
            changed = True
        if not set(features.tags) <= self.catalogue.tags:
            self.catalogue.tags.update(features.tags)
            changed = True
        if changed:
            await self._save_catalogue(before)

    # -- per-job features ------------------------------------------------------------------
    async def set_features(self, job_ids: Iterable[str], **changes: Any) -> builtins.list[Job]:
        """Change the features of unfinished jobs: ``category`` (must exist), ``tags`` (replaces
        them), ``ratio_limit``, ``seeding_time_limit`` (None = default, -1 = none),
        ``force_start``, ``first_last_piece``, ``rename``. Every job is checked first."""
        self._check_running()
        ids = list(dict.fromkeys(job_ids))
        recs = [self._unfinished(i) for i in ids]
        if "category" in changes:
            name = check_category(changes["category"])
            if name and name not in self.catalogue.categories:
                raise JobConflict(f"no category {name!r} (create it first)", "category")
        new = [features_from(changes, rec.features) for rec in recs]
        if any(n.content_layout != rec.features.content_layout for n, rec in zip(new, recs, strict=True)):
            raise JobConflict("the content layout is chosen when the job is added (move it with "
                              "set_location)", "content_layout")
        for rec, features in zip(recs, new, strict=True):
            await self._set_job_features(rec, features)
            self.sleepers.wake(rec)  # (its share limits and force-start: judged again)
        await self.enforce()
        return [self.snapshot(r) for r in recs]

    async def add_tags(self, job_ids: Iterable[str], tags: Iterable[str]) -> builtins.list[Job]:
        """Give tags to jobs (unknown tags become known)."""
        self._check_running()
        extra = check_tags(tags)
        recs = [self._unfinished(i) for i in dict.fromkeys(job_ids)]
        for rec in recs:
            features = dataclasses.replace(rec.features, tags=tuple(sorted({*rec.features.tags, *extra})))
            await self._set_job_features(rec, features)
        return [self.snapshot(r) for r in recs]

    async def remove_tags(self, job_ids: Iterable[str],
                          tags: Iterable[str] | None = None) -> builtins.list[Job]:
        """Take tags (all of them when ``tags`` is None) off jobs."""
        self._check_running()
        gone = set(check_tags(tags)) if tags is not None else None
        recs = [self._unfinished(i) for i in dict.fromkeys(job_ids)]
        for rec in recs:
            kept = () if gone is None else tuple(t for t in rec.features.tags if t not in gone)
            await self._set_job_features(rec, dataclasses.replace(rec.features, tags=kept))
        return [self.snapshot(r) for r in recs]

    async def _set_job_features(self, rec: JobRecord, features: JobFeatures) -> None:
        async with self.lock(rec.id):
            # durable before it is made (``StateNotSaved``, nothing changed, when it cannot be)
            now = self.clock()
            await self.save(rec, dataclasses.replace(rec, features=features, updated_at=now), strict=True)
            await self._known(features)
            old = rec.features
            rec.features = features
            rec.updated_at = self.clock()
            session = self.session_of(rec)
            if session is not None and old.first_last_piece != features.first_last_piece \
                    and rec.id not in self.busy:
                if not features.first_last_piece and session.has_metadata:
                    session.set_file_priorities(rec.file_priorities or session.file_priorities)
                self.apply_options(rec, session)
            await self.save(rec)
            if features.force_start and rec.id in self.queue.held and self.dormant(rec):
                # (held back since the start, force-started: it runs now, past the queue, whose
                # round reads only as far into the waiting jobs as its slots go)
                self.queue.held.discard(rec.id)
                try:
                    await self.start_dormant(rec)
                except JobConflict:
                    pass  # (it failed, saying why)
        self._updated(rec)

    # -- the queue -------------------------------------------------------------------------
    def queue_order(self) -> builtins.list[str]:
        """The unfinished jobs' ids in queue order (first = next to run)."""
        return [r.id for r in self.jobs.in_queue_order()]

    async def move_in_queue(self, job_ids: Iterable[str], where: str, *, while_off: bool = False) -> None:
        """Move jobs to the ``top`` or ``bottom`` of the queue, or one place ``up`` or ``down``;
        ``JobConflict`` when queueing is off, unless ``while_off`` (the order is kept and counts
        once queueing is on, as Transmission's queue positions do)."""
        self._check_running()
        if where not in QUEUE_MOVES:
            raise InvalidJobRequest(f"must be one of {', '.join(QUEUE_MOVES)}", "where")
        if not self.settings.queueing and not while_off:
            raise JobConflict("queueing is off (turn on the setting \"queueing\" first)", "queueing")
        ids = list(dict.fromkeys(job_ids))
        for i in ids:
            self._unfinished(i)
        order = move(self.queue_order(), ids, where)
        positions = sorted(rec.queue_position for rec in self.jobs if rec.id in set(order))
        moves: list[tuple[JobRecord, int]] = []
        for job_id, position in zip(order, positions, strict=True):
            rec = self.jobs.get(job_id)
            if rec is not None and rec.queue_position != position:
                moves.append((rec, position))
        saved: list[JobRecord] = []
        try:  # (every moved record durable before any place changes: refused whole when not)
            for rec, position in moves:
                await self.save(rec, dataclasses.replace(rec, queue_position=position), strict=True)
                saved.append(rec)
        except StateNotSaved:
            for rec in saved:
                await self.save(rec)  # (their places as they were, when it can be written)
            raise
        for rec, position in moves:
            rec.queue_position = position
        if moves:
            self.jobs.reordered()
        await self.enforce()
        for job_id in ids:
            moved = self.jobs.get(job_id)
            if moved is not None:
                self._updated(moved)

    def _waits_for_queue(self, rec: JobRecord, session: Session) -> bool:
        """Whether ``rec``'s paused ``session``, resumed, waits for the queue: the queue holds it
        back, or judges it once its start-up check is over (resumed sooner, it would run after
        the check without the queue's word)."""
        return self.queue.judges(rec) and (session.state in UNCHECKED or self._starts_held(rec, session))

    def _starts_held(self, rec: JobRecord, session: Session | None = None) -> bool:
        """Whether the queue holds ``rec`` back from its start: a job without a session (taken as
        a download: its data is not checked yet), or one whose ``session`` is paused. Its session
        then starts (or stays) paused, or does not start at all (a dormant one), so it announces
        and dials nothing until ``enforce`` gives it a slot."""
        if not self.queue.judges(rec):
            return False
        others: dict[str, QueueEntry] = {}
        with_session = set()
        for other in self.with_sessions():
            with_session.add(other.id)
            running = self.session_of(other)
            if (running is None or other is rec or other.state in FINISHED_STATES or other.options.paused
                    or other.state is JobState.CHECKING):
                continue
            others[other.id] = queue_entry(other, _complete(running))
        complete = session is not None and _complete(session)
        return self.queue.starts_held(rec, complete, others, with_session, self.busy)

    # -- the tick: seeding time, share limits, the queue -----------------------------------
    async def enforce(self) -> None:
        """Count seeding time, note completed downloads, act on reached share limits and start
        or hold jobs as the queue says (run by the service's tick and after changes), once the
        round under way, if any, is over."""
        async with self._round_lock:
            self._round_asked = False  # (what was asked before it begins, it answers)
            await self._round()

    async def _round(self) -> None:
        """Walk the awake jobs (a quiet one sleeps until news of its session, or its share time
        limit, wakes it: see awake.py): count seeding time, note completions, act on share
        limits; give or take the queue's slots; let the jobs where nothing moves fall quiet."""
        now = self.clock()
        last = self._last_feature_tick
        self._last_feature_tick = now
        step = 0.0 if last is None else min(max(0.0, now - last), MAX_STEP)
        self.sleepers.advance(step, self.jobs)  # (the quiet seeds woken at their limits: counted below)
        queueing = self.settings.queueing
        judged: dict[str, QueueEntry] = {}  # the queue's entries of the jobs with a session
        with_session: set[str] = set()
        live: list[tuple[JobRecord, Session, bool]] = []  # (job, its session, complete)
        for rec in self.moving():
            with_session.add(rec.id)
            if rec.state in FINISHED_STATES or rec.id in self.busy:
                continue
            session = self.session_of(rec)
            if session is None:
                continue
            complete = _complete(session)
            if rec.state is JobState.SEEDING:
                rec.seeding_time += step
            if complete and rec.completed_at is None and rec.state is not JobState.CHECKING:
                rec.completed_at = now
                self.queue.completion_changed(rec)
                self.run_program(ProgramEvent.COMPLETED, rec)
                await self.save(rec)
            if rec.state is JobState.SEEDING and await self._share_limit(rec, session):
                continue
            live.append((rec, session, complete))
            if not rec.options.paused and rec.state is not JobState.CHECKING:
                judged[rec.id] = queue_entry(rec, complete)
        quiet: list[str] = []
        if queueing:  # (the queue weighs every job with a session: the quiet ones as they slept)
            for job_id, mark in list(self.sleepers.quiet.items()):
                sleeper = self.jobs.get(job_id)
                if sleeper is None or sleeper.state in FINISHED_STATES or self.session_of(sleeper) is None:
                    del self.sleepers.quiet[job_id]
                    continue
                with_session.add(job_id)
                if not sleeper.options.paused and job_id not in self.busy:
                    judged[job_id] = queue_entry(sleeper, mark.complete)
                    quiet.append(job_id)
        plan = self.queue.plan(judged, with_session, quiet, self.busy)
        for job_id in plan.wake:  # a quiet job whose slot the queue gives or takes wakes
            woken = self.jobs.get(job_id)
            session = self.session_of(woken) if woken is not None else None
            if woken is not None and session is not None:
                self.sleepers.wake(woken)
                live.append((woken, session, judged[job_id].complete))
        for job_id in plan.start:
            # (dormant since the start, held back: started now that the queue gives it a slot)
            waiting = self.jobs.get(job_id)
            if waiting is None:
                continue
            rec = waiting
            async with self.lock(rec.id):
                if rec.id in self.queue.held and self.dormant(rec):
                    self.queue.held.discard(rec.id)
                    try:
                        await self.start_dormant(rec)
                    except JobConflict:
                        continue  # (it failed, saying why)
                    session = self.session_of(rec)
                    if session is not None:
                        self.sleepers.wake(rec)
                        live.append((rec, session, _complete(session)))
        for rec, session, complete in live:
            if rec.id in self.busy or rec.state in FINISHED_STATES:
                continue
            if rec.id in plan.hold:
                self.queue.held.add(rec.id)
                if session.state in (State.DOWNLOADING, State.SEEDING, State.DOWNLOADING_METADATA):
                    await session.pause()
            elif rec.id in self.queue.held and not _unchecked(session):
                # (one that checks, or has yet to, is judged after its check: a session that
                # started paused pauses again then, and only the queue, which holds it, would
                # resume it; resumed before, it would run after its check without the queue's word)
                self.queue.held.discard(rec.id)
                if not rec.options.paused and session.paused:  # (or paused once started)
                    await self.resume_session(rec, session)
            self.sync(rec)
            await self._settle(rec, session, complete, now)

    async def _settle(self, rec: JobRecord, session: Session, complete: bool, now: float) -> None:
        """Let ``rec`` fall quiet if nothing of it moves, its counters saved first (they do not
        change while it sleeps; its seeding time is counted when it wakes)."""
        if rec.id in self.busy or rec.state in FINISHED_STATES or not self.running:
            return
        time_left = None
        if rec.state is JobState.SEEDING:
            limit = effective(rec.features.seeding_time_limit, self.settings.seeding_time_limit)
            if limit != NO_LIMIT and limit >= 0:
                time_left = limit - rec.seeding_time
        if self.fall_quiet(rec, session, complete, time_left):
            self.refresh_counters(rec, session)
            if self.writer.changed(rec, now):
                await self.save(rec)

    async def _share_limit(self, rec: JobRecord, session: Session) -> bool:
        """Act on a reached share limit; whether the job was stopped or ended."""
        st = session.status()
        ratio = share_ratio(st.uploaded, st.downloaded, st.have_bytes)
        ratio_limit = effective(rec.features.ratio_limit, self.settings.ratio_limit)
        time_limit = effective(rec.features.seeding_time_limit, self.settings.seeding_time_limit)
        if not share_limit_reached(ratio, rec.seeding_time, ratio_limit, time_limit):
            return False
        action = self.settings.share_limit_action
        log.info("job %s (%s) reached its share limit (ratio %.2f, %.0f s seeding): %s", rec.id, rec.name,
                 ratio, rec.seeding_time, action.value)
        self.run_program(ProgramEvent.SEEDING_DONE, rec)
        if action is ShareLimitAction.STOP:
            async with self.lock(rec.id):
                if session.state is not State.PAUSED:
                    await session.pause()
                rec.options = dataclasses.replace(rec.options, paused=True)
                rec.updated_at = self.clock()
                self.queue.held.discard(rec.id)
                self.sync(rec, force_save=True)
            return True
        delete = action is ShareLimitAction.REMOVE_WITH_FILES
        async with self.lock(rec.id):
            if rec.state not in FINISHED_STATES:
                await self.end_job(rec, JobState.COMPLETED, None, delete_files=delete)
        return True

    # -- moving ----------------------------------------------------------------------------
    async def set_location(self, job_id: str, location: str) -> Job:
        """Move the job's files to ``location`` (inside the download root) and go on from there;
        the data is verified again at its new place. A job still downloading into its
        incomplete folder keeps its data there: the new save path is where it moves once
        complete (as qBittorrent's)."""
        self._check_running()
        if not isinstance(location, str) or not location:
            raise InvalidJobRequest("must be a folder inside the download root", "location")
        target = await anyio.to_thread.run_sync(confine, self.download_root, location)
        async with self.lock(job_id):
            rec = self._unfinished(job_id)
            after = dataclasses.replace(rec.options, save_path=str(target), download_path=None)
            if rec.options.download_path is not None and rec.id not in self._completing:
                after = dataclasses.replace(rec.options, save_path=str(target))
                await self.save(rec, dataclasses.replace(rec, options=after), strict=True)
                rec.options, rec.updated_at = after, self.clock()
                self._updated(rec)
                return self.snapshot(rec)
            error = await self._relocate(rec, target, after)
        return await self._relocated(rec, error, "location")

    async def set_download_path(self, job_id: str, path: str) -> Job:
        """Move the data of a job still downloading to the incomplete folder ``path`` (inside the
        download root; "" = none: to its save path), where it stays until complete."""
        self._check_running()
        if not isinstance(path, str):
            raise InvalidJobRequest("must be a folder inside the download root, or \"\"", "download_path")
        try:
            folder = None if path == "" else await anyio.to_thread.run_sync(confine, self.download_root, path)
        except SavePathError as exc:
            raise SavePathError(exc.reason, "download_path") from exc
        async with self.lock(job_id):
            rec = self._unfinished(job_id)
            if rec.completed_at is not None or rec.id in self._completing:
                raise JobConflict("the job's download is complete: its data goes to its save path "
                                  "(move it with its location)", "download_path")
            save = Path(rec.options.save_path)
            target = save if folder is None else folder
            after = dataclasses.replace(rec.options, download_path=None if target == save else str(target))
            error = await self._relocate(rec, target, after)
        return await self._relocated(rec, error, "download_path")

    def _move_when_complete(self, rec: JobRecord) -> bool:
        """``rec`` completed in its incomplete folder: its data moves to its save path, in the
        task group (one move at a time per job; after a failure, tried again at the next
        start); whether a move is under way."""
        if rec.id in self._completing:
            return rec.id not in self._completion_failed
        if self.tg is None:
            return False
        self._completing.add(rec.id)
        self.tg.start_soon(self._move_completed, rec)
        return True

    async def _move_completed(self, rec: JobRecord) -> None:
        """Move a complete job's data from its incomplete folder to its save path, through the
        one mover (crash-safe, across file systems); it seeds from there. Its pieces were
        verified: the resume data comes along, so it is not checked again."""
        error: Exception | None = None
        async with self.lock(rec.id):
            session = self.session_of(rec)
            complete = session is not None and session.has_metadata and session.status().progress >= 1.0
            if not complete or rec.options.download_path is None or rec.id in self.busy:
                self._completing.discard(rec.id)  # (ended, or changed meanwhile: asked again if need be)
                return
            log.info("job %s (%s) is complete: moving it from %s to %s", rec.id, rec.name,
                     rec.options.download_path, rec.options.save_path)
            try:
                target = await anyio.to_thread.run_sync(confine, self.download_root, rec.options.save_path)
                after = dataclasses.replace(rec.options, download_path=None)
                error = await self._relocate(rec, target, after, keep_verified=True)
            except JobError as exc:
                error = exc
        if error is None:
            self._completing.discard(rec.id)
        else:
            self._completion_failed.add(rec.id)
            log.warning("job %s (%s) is complete but stays in %s (it seeds from there): cannot move it "
                        "to %s: %s", rec.id, rec.name, rec.options.data_path, rec.options.save_path, error)
        await self.enforce()

    async def _relocated(self, rec: JobRecord, error: Exception | None, where: str) -> Job:
        """After a move asked by a client: the queue's word, and the move's failure raised."""
        # (its check may be over already, its end unheard while the job was busy: the queue's word)
        await self.enforce()
        if isinstance(error, (JobConflict, StateNotSaved)):
            raise error  # (the job goes on where it was)
        if error is not None:
            raise JobConflict(f"cannot move the files: {error}", where) from error
        return self.snapshot(rec)

    async def _relocate(self, rec: JobRecord, target: Path, after: JobOptions, *,
                        keep_verified: bool = False) -> Exception | None:
        """Move the data of ``rec`` (the caller holds its lock) from where it is to ``target``,
        the job's options becoming ``after`` (whose ``data_path`` is ``target``) as the move
        commits, and go on from there. A refusal before anything moved is raised; a failure of
        the move itself is returned (the job goes on where it was)."""
        old = Path(rec.options.data_path)
        moving: list[str] = []  # the paths its files take at the new place
        if rec.file_paths is not None and old != target:
            moving = claimed_paths(target, rec.file_paths, rec.pad_files)
            clash = self.overlap(f"job {rec.id} ({rec.name})", rec.id, moving)
            if clash is not None:
                raise clash
        session = self.session_of(rec)
        if session is None and self.dormant(rec):
            session = await self.start_dormant(rec)
        if session is None or rec.id in self.busy:
            raise JobConflict("cannot move the job now: it is being restarted or ended")
        if old == target:
            await self.save(rec, dataclasses.replace(rec, options=after), strict=True)
            rec.options = after
            return None
        # (both places are the job's while it moves: an add meanwhile cannot take either)
        self.claims.claim(rec.id, [*claimed_paths(old, rec.file_paths or [], rec.pad_files), *moving])
        source: Torrent | Magnet
        if session.has_metadata:
            source = session.torrent
        elif session.magnet is not None:
            source = session.magnet
        else:
            raise JobConflict("cannot move the job now: it has neither metainfo nor a magnet")
        created = await anyio.to_thread.run_sync(missing_dirs, self.download_root, target)
        self.busy.add(rec.id)
        paused = self.starts_paused(rec, session.paused)  # (or paused once started, or held)
        error: Exception | None = None
        try:
            with anyio.CancelScope(shield=True):
                self.refresh_counters(rec, session)
                # (its metainfo and resume data, for the old place, stay until the move is
                # committed: a crash before that finds the job whole where it was)
                await self.manager.remove(session.info_hash, keep_saved=True)
                try:
                    await self._move_files(rec, old, target, created, after, keep_verified=keep_verified)
                except (OSError, JobConflict, StateNotSaved) as exc:
                    error = exc
                    target = old  # nothing was moved: go on where it was
                    created = rec.created_dirs
                    after = rec.options
                rec.options = after
                rec.created_dirs = created
                self.claim(rec)
                # (it counts on from the job's totals: the resume data that held them went
                # with the old session, and is for the old place anyway)
                try:
                    await self.manager.add(source, target, peers=rec.options.peers, paused=paused,
                                           prepare=lambda s: self.prepare_session(rec, s),
                                           seed_mode=rec.options.seed_mode)
                except (TorrentEngineError, OSError) as exc:
                    # (never a job without a session that claims to run: it fails, saying why)
                    log.warning("job %s (%s) cannot start again at %s: %s", rec.id, rec.name, target, exc)
                    await self.finish(rec, JobState.FAILED, f"cannot start again at {target}: {exc}")
                    raise JobConflict(f"the job cannot start again at {target}: {exc}",
                                      "location") from exc
                rec.updated_at = self.clock()
                await self.save(rec)
        finally:
            self.busy.discard(rec.id)
        self.sync(rec, force_save=True)
        self._updated(rec)
        return error

    async def _move_files(self, rec: JobRecord, old: Path, target: Path, created: builtins.list[str],
                          after: JobOptions, *, keep_verified: bool = False) -> None:
        """Move the files of ``rec`` (its session stopped) from ``old`` to ``target``, the move
        kept in its record from the first file moved to the last original removed, and committed
        (the record's options become ``after``: its data at ``target``) once every file is whole
        there; a crash at any moment is undone or finished at the next start (``_recover_moves``).
        A failure (raised) leaves every file at ``old``, the record pointing there.
        ``keep_verified``: the resume data (its verified pieces, each file's size and time, which
        a move keeps) is written again for ``target`` after the commit, so the data is not checked
        again there; else it is verified again at its new place."""
        files = await anyio.to_thread.run_sync(plan_move, old, target, rec.file_paths or [])
        pending = PendingMove(str(old), str(target), tuple(files), tuple(created))
        if not files:  # (nothing on disk yet: the record alone moves, durably or not at all)
            await self.save(rec, dataclasses.replace(rec, options=after), strict=True)
        if files:
            # durable before a file moves (``StateNotSaved`` when it cannot be: nothing moved)
            await self.save(rec, dataclasses.replace(rec, moving=pending), strict=True)
            rec.moving = pending
            try:
                await anyio.to_thread.run_sync(copy_files, old, target, files)
            except OSError:
                rec.moving = None
                await self.save(rec)
                raise
        # the resume data (for the old place) goes first, or a crash after the commit would
        # reload the torrent where it no longer is
        resume = self.manager.saved_resume_path(rec.info_hash)
        kept: ResumeData | None = None
        if resume is not None:
            if keep_verified:
                kept = await anyio.to_thread.run_sync(load_resume, resume)
            await anyio.to_thread.run_sync(lambda: resume.unlink(missing_ok=True))
        rec.options = after
        rec.created_dirs = created
        await self.save(rec)  # the commit
        if kept is not None and resume is not None:  # (a crash before this: checked at the start)
            kept.save_path = str(target)
            await anyio.to_thread.run_sync(save_resume, resume, kept)
        if files:
            await anyio.to_thread.run_sync(remove_sources, pending)
            rec.moving = None

    async def _recover_moves(self) -> None:
        """Before the manager reloads the torrents: a move a crash cut short is finished (its
        record points at the new place: every file is whole there) or undone (it points at the
        old one, whole there); the job then starts where its record points."""
        for rec in self.jobs:
            move = rec.moving
            if move is None:
                continue
            committed = rec.options.data_path == move.new
            log.warning("job %s (%s): %s its move from %s to %s, cut short", rec.id, rec.name,
                        "finishing" if committed else "undoing", move.old, move.new)
            await anyio.to_thread.run_sync(recover, move, committed)
            rec.moving = None
            await self.save(rec)

    def add_save_path(self, features: JobFeatures | None, save_path: str | None) -> str | None:
        """The save path of a new job: its own, else its category's (when that has one)."""
        if features is None:
            return save_path
        if save_path is None and features.category:
            cat = self.catalogue.categories.get(features.category)
            if cat is not None and cat.save_path:
                return cat.save_path
        return save_path


    # -- what download clients also ask for ------------------------------------------------
    def metainfo(self, job_id: str) -> Torrent | None:
        """The job's metainfo, once known (None before a magnet's metadata, or after the job ended)."""
        rec = self.jobs.get(job_id)
        if rec is None:
            raise JobNotFound(f"no job {job_id!r}", "id")
        session = self.session_of(rec)
        if session is None and self.dormant(rec):
            return self.saved_metainfo(rec)
        return session.torrent if session is not None and session.has_metadata else None

    def piece_states(self, job_id: str) -> builtins.list[int] | None:
        """Per piece: 0 = missing, 1 = being downloaded, 2 = verified (None without the metainfo)."""
        rec = self.jobs.get(job_id)
        if rec is None:
            raise JobNotFound(f"no job {job_id!r}", "id")
        session = self.session_of(rec)
        if session is None and self.dormant(rec):
            have = self.saved_pieces(rec)
            return None if have is None else [2 if i in have else 0 for i in range(have.num_pieces)]
        if session is None or not session.has_metadata:
            return None
        picker = session.picker
        states = [2 if i in picker.have else 0 for i in range(session.torrent.num_pieces)]
        for i in picker.downloading():
            if states[i] == 0:
                states[i] = 1
        return states

    async def reannounce(self, job_id: str) -> None:
        """Announce the job to its trackers now (a job without trackers: nothing happens)."""
        self._check_running()
        rec = self._unfinished(job_id)
        session = self.session_of(rec)
        tracker = session.announcer.tracker if session is not None else None
        if tracker is not None:
            tracker.reannounce()

    async def rename_path(self, job_id: str, old_path: str, new_path: str, *, folder: bool | None = None,
                          fields: tuple[str, str] = ("old_path", "new_path")) -> Job:
        """Give the file (``folder`` False), the folder (True: every file below it) or whichever
        ``old_path`` names (None) the path ``new_path`` (both as the job's file list shows them:
        relative to its save path). The files on disk move, the job reads and writes them there
        from then on, its verified pieces kept; the record keeps the names across restarts.
        ``InvalidJobRequest`` for a path that could leave the job's folder or names nothing,
        ``JobConflict`` for a new path taken (a file of the job or another job's, something on
        disk): ``fields`` names the offending input; nothing changed then."""
        self._check_running()
        old = check_path(old_path, fields[0])
        new = check_path(new_path, fields[1])
        async with self.lock(job_id):
            rec = self._unfinished(job_id)
            if rec.file_paths is None:
                raise JobConflict("the job's files are not known yet (its metadata has not come)", fields[0])
            moves = plan_rename(rec.file_paths, rec.pad_files, old, new, folder=folder, fields=fields)
            if not moves:
                return self.snapshot(rec)
            root = rec.options.save_path
            overlap = self.claims.overlap(rec.id, claimed_paths(root, list(moves.values())))
            if overlap is not None:
                raise JobConflict(f"{overlap.path} is written by job {overlap.other}", fields[1])
            session = self.session_of(rec)
            if (session is None and not self.dormant(rec)) or rec.id in self.busy:
                raise JobConflict("cannot rename now: the job is being restarted or ended")
            renamed = {**rec.renamed, **{i: list(p) for i, p in moves.items()}}
            paths = [list(moves.get(i, p)) for i, p in enumerate(rec.file_paths)]
            # (a file that was on disk before the job stays the user's under its new name: a
            # cancel that deletes the job's files keeps it)
            now_at = {"/".join(rec.file_paths[i]): "/".join(p) for i, p in moves.items()}
            pre = None if rec.preexisting is None else [now_at.get(p, p) for p in rec.preexisting]
            now = self.clock()
            # durable before a file moves (``StateNotSaved``, nothing moved, when it cannot be)
            content = dataclasses.replace(rec, renamed=renamed, file_paths=paths, preexisting=pre,
                                          updated_at=now)
            await self.save(rec, content, strict=True)
            try:
                if session is not None:
                    await session.rename_files(moves)
                else:  # (dormant: no session, its files closed)
                    real = await anyio.to_thread.run_sync(real_path, root)
                    await anyio.to_thread.run_sync(move_files, real, [
                        (real.joinpath(*rec.file_paths[i]), real.joinpath(*p)) for i, p in moves.items()])
            except (TorrentEngineError, OSError) as exc:
                await self.save(rec)  # (as it was)
                raise JobConflict(f"cannot rename: {exc}", fields[1]) from exc
            rec.renamed, rec.file_paths, rec.preexisting, rec.updated_at = renamed, paths, pre, now
            self.claim(rec)
            self.sleepers.unview(rec)
            await self.save(rec)
        self._updated(rec)
        return self.snapshot(rec)

    def tracker_tiers(self, job_id: str) -> Tiers:
        """The job's trackers, BEP 12 tiers of announce URLs: as edited, else the torrent's (or
        its magnet's)."""
        rec = self.jobs.get(job_id)
        if rec is None:
            raise JobNotFound(f"no job {job_id!r}", "id")
        if rec.tracker_tiers is not None:
            return tuple(tuple(tier) for tier in rec.tracker_tiers)
        session = self.session_of(rec)
        if session is not None:
            return session.announcer.tiers()
        torrent = self.saved_metainfo(rec) if self.dormant(rec) else None
        if torrent is not None:
            return torrent.trackers
        return tuple((url,) for url in rec.trackers or ())

    async def set_trackers(self, job_id: str, tiers: Iterable[Iterable[str]], field: str = "trackers") -> Job:
        """Announce the job to these tracker tiers from now on (``tracker_tiers``, edited): a
        tracker added is announced to at once, one removed no more; kept across restarts. Every
        URL is checked first (``InvalidJobRequest`` naming ``field``: nothing changes then)."""
        self._check_running()
        checked = check_tiers(tiers, field)
        async with self.lock(job_id):
            rec = self._unfinished(job_id)
            lists = [list(tier) for tier in checked]
            urls = flat(checked)
            now = self.clock()
            content = dataclasses.replace(rec, tracker_tiers=lists, trackers=urls, updated_at=now)
            await self.save(rec, content, strict=True)
            rec.tracker_tiers, rec.trackers, rec.updated_at = lists, urls, now
            heard = self.tracker_news.get(rec.id)
            if heard is not None:  # (a removed tracker is no longer shown with what it said last)
                for url in [u for u in heard if u not in urls]:
                    del heard[url]
            session = self.session_of(rec)
            if session is not None:
                session.set_trackers(checked)
            self.sleepers.unview(rec)
            await self.save(rec)
        self._updated(rec)
        return self.snapshot(rec)

    async def add_peers(self, job_id: str, peers: Iterable[tuple[str, int]]) -> None:
        """Dial these peers for the job (``(host, port)`` pairs, checked)."""
        self._check_running()
        checked = check_peers(list(peers))
        async with self.lock(job_id):
            rec = self._unfinished(job_id)
            session = self.session_of(rec)
            if session is None and self.dormant(rec):
                session = await self.start_dormant(rec)
            if session is None:
                raise JobConflict("cannot add peers now: the job is being restarted or ended")
            session.add_peers(checked)

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

    # -- what download clients list ----------------------------------------------------------
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
            await self._keep_numbers()
            self.jobs.remove(rec.id)
            self.finished_jobs.pop(rec.id, None)
            self.decorated.pop(rec.id, None)
            self.writer.forget(rec.id)
            await anyio.to_thread.run_sync(self.store.delete, rec.id)
        self.locks.pop(rec.id, None)
        self.events.publish(JobRemoved(info_hash=rec.info_hash, job_id=rec.id))


def _unchecked(session: Session) -> bool:
    """Whether the session's start-up check is not over: not begun, under way, or (a magnet
    fetching its metadata, to pause after its check for the queue's word) to come."""
    return session.state in UNCHECKED or (session.pauses_after_check and session.state is not State.PAUSED)


def _complete(session: Session) -> bool:
    """Whether every wanted piece of the session is verified (it would seed)."""
    return session.has_metadata and session.status().progress >= 1.0
