"""How a job follows its session: the machinery every part of ``JobService`` is given.

It holds the job table and the jobs' sessions: a job's record is derived from its session's
state (``sync``, which the engine's news sets off: news.py), saved through the store's writer;
an end (completed, failed, cancelled) stops and forgets the session, deletes files when asked
and moves the job to the history; a dormant job's session is started when something needs it.
The parts around it (service.py puts them together) each own one concern: the queue's rounds,
the settings, categories and features, moves, edits, adds, the verbs on one job, the start."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import NoReturn

import anyio
import anyio.abc

from ..engine.manager import TorrentManager
from ..engine.turns import Turns
from ..errors import SessionError, TorrentEngineError
from ..events import EventBus
from ..formats.bitfield import Bitfield
from ..formats.magnet import Magnet
from ..formats.metainfo import Torrent
from ..policy.picker import DEFAULT_PRIORITY
from ..session import Session, SessionSetup
from ..session.state_table import State
from .disk.claims import PathClaims, claimed_paths
from .disk.paths import remove_job_files
from .intake.checks import PendingChecks
from .marks import ViewMarks
from .model import (
    FINISHED_STATES,
    LISTED_SEEDING_TIME_STEP,
    Job,
    JobConflict,
    JobNotFound,
    JobState,
    JobStateChanged,
    JobTracker,
    JobUpdated,
    ServiceStopped,
    same_listed_step,
    share_ratio,
)
from .organising.features import prioritise_first_last
from .queueing.awake import Sleepers
from .queueing.dormant import DormantSeeds
from .queueing.leases import LeaseTable
from .queueing.queue import JobQueue
from .runner import ProgramRunner
from .sessions import add_session, saved_source
from .snapshot import (
    SESSION_TO_JOB,
    files_done,
    job_result,
    knows_pieces,
    live_job,
    live_stamp,
    record_job,
    selected_priorities,
    session_setup,
    shown_paths,
    shown_state,
    start_held,
)
from .starting import StartWait
from .store import JobRecord, JobStore, JobWriter
from .table import JobTable
from .tuning.autorun import ProgramEvent
from .tuning.settings import ServiceSettings
from .views import RecordViews

log = logging.getLogger(__name__)

CLIENT_SESSION_ENDED = "client session ended"
# What a job that runs shows while the service starts and its torrent is not loaded yet: checking.
STARTING_SHOWN = frozenset({JobState.QUEUED, JobState.CHECKING, JobState.FETCHING_METADATA,
                            JobState.DOWNLOADING, JobState.SEEDING})
# Session states in which a job with no rate has nothing for the timers to do (nothing moves).
QUIET_STATES = frozenset({State.SEEDING, State.PAUSED, State.DOWNLOADING, State.DOWNLOADING_METADATA})


class JobLifecycle:
    """The job records and their sessions: state from the sessions', ends, saving, the views.
    All of it runs on the service's event loop; the task group (``tg``) is the service's. It
    calls no part above it but through the two callbacks it is given (``round_soon``,
    ``move_when_complete``) and the settings getter."""

    def __init__(self, manager: TorrentManager, store: JobStore, *, download_root: Path,
                 state_dir: Path | None, clock: Callable[[], float],
                 settings: Callable[[], ServiceSettings]) -> None:
        self.manager = manager
        self._settings = settings  # the run-time settings as they are now (configure.py owns them)
        self.events = EventBus()
        self.download_root = download_root
        self.state_dir = state_dir
        self.clock = clock
        self.store = store
        self.jobs = JobTable()
        self.writer = JobWriter(store, clock, lambda job_id: job_id in self.jobs,
                                lambda torrents: manager.save_torrents(torrents))
        self.adding: dict[str, anyio.Event] = {}  # info-hash -> an add in flight (single flight)
        self.busy: set[str] = set()  # job ids whose session is being replaced (recheck) or ended
        # job ids whose add is in flight (busy too, but their metadata is learnt at once), and why
        # that metadata refused the job (an end waits for the add to return)
        self.starting: dict[str, str | None] = {}
        self.locks: dict[str, anyio.Lock] = {}  # one control operation at a time per job
        self.leases = LeaseTable()
        self.tracker_news: dict[str, dict[str, JobTracker]] = {}  # job id -> url -> what it said last
        self.last_progress: dict[str, float] = {}
        self.published: dict[str, tuple[object, ...]] = {}  # what the last job.progress said
        self.finished_jobs: dict[str, Job] = {}  # snapshots of finished jobs (they no longer change)
        # job id -> (the view decorated, the result, and (its features, rank, completion, number))
        self.decorated: dict[str, tuple[Job, Job, tuple[object, int, float | None, int]]] = {}
        # job id -> (the live view of a running job, its ``live_stamp``): kept while nothing it shows
        # moved (a list of thousands of checking or queued jobs makes no view, record or JSON again)
        self.live_views: dict[str, tuple[tuple[object, ...], Job]] = {}
        self.record_views = RecordViews()  # (the views of jobs that wait, shown from their records)
        # which jobs the queue holds back, the positions it shows, its decisions (queueing/queue.py)
        self.queue = JobQueue(lambda: self.jobs, lambda: self.settings)
        self.claims = PathClaims()  # which unfinished job writes each file path
        self.saved_meta: dict[str, Torrent] = {}  # dormant jobs' metainfo, read from disk when asked
        # what the other parts answer for, given as the service is put together (service.py): a round of
        # the queue soon (queueing/rounds.py), a complete job's move to its save path (disk/relocate.py)
        self.round_soon: Callable[[], None] = lambda: None
        self.move_when_complete: Callable[..., bool] = lambda rec, program=False: False
        self.bandwidth_group: Callable[[JobRecord], str] = lambda rec: ""  # (tuning/groups.py)
        # a job met its stop condition, a session stopping once checked started (control.py); a job
        # added or completed, its .torrent copied (disk/exports.py)
        self.stop_met: Callable[[JobRecord], None] = lambda rec: None
        self.stop_once_checked: Callable[[JobRecord, Session], None] = lambda rec, session: None
        self.exported: Callable[[ProgramEvent, JobRecord, Torrent | None], None] = lambda *a: None
        self.program_waits: Callable[[JobRecord, bool], bool] = lambda *a: False  # (disk/partial_names.py)
        self.mail_completed: Callable[[Job], None] = lambda job: None  # (its mail sent: tuning/mail.py)
        # the start in two steps (load, then entering it): between the two lists answer, changes are refused
        self.loaded = False
        self.ready = False  # whether the service has started: its torrents loaded and its jobs restored
        self.start_wait = StartWait()  # (the changes asked while it starts)
        # What the timers walk each second: the jobs with news since they were last found quiet
        # (any engine event of a job's session wakes it): queueing/awake.py
        self.sleepers = Sleepers()
        self.tg: anyio.abc.TaskGroup | None = None
        self.running = False
        self.programs = ProgramRunner(clock)  # the programs run on jobs' events (intake/autorun.py)
        # the complete seeds without a session: woken by a peer asking for them (queueing/dormant.py)
        self.seeds = DormantSeeds(manager, self.wake_seed)
        # the jobs added with their data on disk, hashed without a session in their turn (intake/checks.py)
        self.checks = PendingChecks(self)
        # the jobs whose session was started again (a dormant seed woken by a peer, a move, a
        # recheck): shown as they were until the new one says what it does (it is queued till then)
        self.waking: set[str] = set()
        # which jobs changed, and when (changelog.py, marked as marks.py says): the lists'
        # answers to a cursor or a time (the start's end: every cursor a full answer, set_ready)
        self.marks = ViewMarks(self, self.events, clock, LISTED_SEEDING_TIME_STEP)
        self.queue.ranks_moved = self.marks.ranks_moved

    @property
    def settings(self) -> ServiceSettings:
        """The run-time settings as they are now (read only here: configure.py changes them)."""
        return self._settings()

    # -- a job's session and its view -----------------------------------------------------
    def session_of(self, rec: JobRecord) -> Session | None:
        """The running session of the unfinished job ``rec`` (None: finished, dormant or replaced)."""
        if rec.state in FINISHED_STATES or not self.jobs.is_active(rec):
            return None
        return self.manager.get(rec.info_hash)

    def with_sessions(self) -> list[JobRecord]:
        """The jobs whose session runs, in the order their sessions were added (the timers walk
        these alone: walking thousands of paused jobs too each second was most of the tick)."""
        recs = (self.jobs.get(self.jobs.active_id(s.info_hash_hex)) for s in self.manager.sessions)
        return [rec for rec in recs if rec is not None]

    async def started(self) -> None:
        """While the service starts, wait until it has started (``starting.StartWait``)."""
        await self.start_wait.wait(lambda: self.loaded and not self.ready)

    def set_ready(self, ready: bool) -> None:
        """The service has started (its jobs restored), or stops: the changes waiting go on."""
        self.ready = ready
        self.marks.log.reset()  # (a job that runs showed checking while the service started)
        if ready:
            self.start_wait.started()

    async def check_running(self) -> None:
        """``JobConflict`` unless the service runs (it waits while the service starts: ``started``)."""
        await self.started()
        if not self.running or self.tg is None:
            raise JobConflict("the job service is not running (use 'async with JobService(...)')")

    async def require_running(self) -> anyio.abc.TaskGroup:
        """The service's task group; as ``check_running`` when it does not run."""
        await self.check_running()
        assert self.tg is not None  # (checked above)
        return self.tg

    def job(self, job_id: str) -> Job:
        """The job ``job_id`` as one job's answer shows it (its last program run too);
        ``JobNotFound`` if there is none."""
        rec = self.jobs.get(job_id)
        if rec is None:
            raise JobNotFound(f"no job {job_id!r}", "id")
        run = self.programs.last.get(job_id)
        job = self.snapshot(rec)
        return job if run is None else dataclasses.replace(job, last_program=run)

    def unfinished(self, job_id: str) -> JobRecord:
        """The job ``job_id``, to change: ``JobNotFound``, or ``JobConflict`` once it is finished."""
        rec = self.jobs.get(job_id)
        if rec is None:
            raise JobNotFound(f"no job {job_id!r}", "id")
        if rec.state in FINISHED_STATES:
            raise JobConflict(f"cannot change a job that is {rec.state.value}")
        return rec

    def moving(self) -> list[JobRecord]:
        """The awake jobs whose session runs, and the dormant seeds woken at their share time
        limit (what the timers walk); the others leave the set."""
        return self.sleepers.moving(self.jobs,
                                    lambda rec: rec.id in self.seeds or self.session_of(rec) is not None)

    def fall_quiet(self, rec: JobRecord, session: Session, complete: bool, time_left: float | None) -> bool:
        """Leave the timers' walk if nothing of ``rec`` moves: seeding, paused or downloading, no rate,
        idle peers or none (its session tells of any change; its counters saved first by the caller).
        ``time_left``: seeding seconds until its share time limit. Whether it went quiet."""
        if session.state not in QUIET_STATES or rec.id in self.busy:
            return False
        if session.rates.down_rate or session.rates.up_rate:  # (read, not a status record: each second)
            return False
        after = self.manager.config.dormant_after
        sleeps = after > 0 and complete and session.state is State.SEEDING and self.may_sleep(rec)
        self.sleepers.fall_quiet(rec, complete, time_left, time.monotonic() + after if sleeps else None,
                                 peers=session.peer_count)
        self.marks.fell_quiet(rec)  # (a download's listed downloading time: the rounds pass it over)
        return True

    def dormant(self, rec: JobRecord) -> bool:
        """Whether ``rec`` is an unfinished job whose session is not started: paused (or held
        back by the queue) when the service started, it gets one when resumed (or given a slot,
        or when something needs its torrent running)."""
        return (rec.state not in FINISHED_STATES and self.jobs.is_active(rec) and rec.id not in self.busy
                and self.manager.get(rec.info_hash) is None)

    def may_sleep(self, rec: JobRecord) -> bool:
        """Whether the running job ``rec`` may be a dormant seed as its record says: complete
        and seeding, not stopped by an error, not waiting to move out of its incomplete folder
        (in seed mode too: its session, once woken, verifies each piece as it is first served),
        not judged by the queue (which weighs the sessions it lets run), in a service that
        seeds (its files are looked at by the caller: ``dormant.seed_files_there``)."""
        return rec.state is JobState.SEEDING and self.would_sleep(rec)

    def would_sleep(self, rec: JobRecord) -> bool:
        """``may_sleep``'s test but the job's state: whether ``rec`` (paused, say) may be a
        dormant seed once it seeds."""
        return (self.manager.config.seed and rec.completed_at is not None
                and rec.error is None and rec.options.download_path is None
                and rec.file_paths is not None and rec.file_sizes is not None
                and rec.total_size > 0 and rec.done_size >= rec.total_size
                and not self.queue.judges(rec) and rec.id not in self.queue.held)

    def may_check_alone(self, rec: JobRecord) -> bool:
        """Whether the job ``rec``, without a session, may have its data checked without one
        (intake/checks.py): a state folder keeping its torrent, every file wanted, nothing its
        session would have to do first (a pause, a stop condition, peers to add, an incomplete
        folder), not judged by the queue (which weighs the sessions it lets run), in a service
        that seeds. A torrent added with its data is checked so when this holds of it too."""
        opts, manager = rec.options, self.manager
        return (not opts.seed_mode and not opts.paused and not opts.peers and opts.download_path is None
                and not rec.stop_condition and not rec.skips_files and rec.total_size > 0
                and rec.file_paths is not None and manager.config.seed and manager.keeps_saved
                and not self.queue.judges(rec))

    def starts_paused(self, rec: JobRecord) -> bool:
        """Whether a session started for ``rec`` now (added, woken, restarted for a recheck or a
        move, at a start) starts paused, as the record and the queue say (the session it
        replaces is never asked): paused by the user, held by the queue, or judged by the
        queue, which passes over a job while its data is checked and gives it its slot (resumes
        it) after the check. Started running, a job the queue holds once its check ends would
        announce and dial until the queue's next round."""
        if not rec.options.paused and self.queue.judges(rec):
            self.queue.held.add(rec.id)  # (the queue resumes it: shown queued, not paused)
        return rec.options.paused or rec.id in self.queue.held

    async def resume_session(self, rec: JobRecord, session: Session) -> None:
        """Resume ``rec``'s paused session. A magnet without its metadata yet checks its data
        once the metadata is here: when the queue judges the job, its session pauses after that
        check and the job stays held, and the queue's round that the check's end sets off
        resumes it in its slot (or holds it, when a job before it took the slot meanwhile)."""
        hold = not session.has_metadata and self.queue.judges(rec)
        if hold:
            self.queue.held.add(rec.id)
        await session.resume(pause_after_check=hold)

    async def start_dormant(self, rec: JobRecord) -> Session:
        """Start the session of a dormant job (the caller holds its lock), paused when its
        options say so or the queue holds it back (``_held``: the queue resumes it with its
        slot); a job that cannot be started fails (``JobConflict`` says why)."""
        self.busy.add(rec.id)
        try:
            with anyio.CancelScope(shield=True):
                source, setup = await self.leave_dormant(rec)
                try:
                    session = await self.add_session(rec, source, setup, Path(rec.options.data_path))
                except (TorrentEngineError, OSError) as exc:
                    await self._cannot_start(rec, exc)
        finally:
            self.busy.discard(rec.id)
        self.sync(rec)
        return session

    async def leave_dormant(self, rec: JobRecord) -> tuple[Torrent | Magnet, SessionSetup]:
        """The dormant job ``rec`` (its lock held, ``busy`` has it) gets a session now, from the
        torrent (or magnet) and setup returned: no dormant seed nor check without a session from
        now on. A job whose torrent cannot be read fails (``JobConflict`` says why)."""
        self.checks.leave(rec)  # (its session checks for itself from now on)
        await self.seeds.stopped(rec)  # (paused as a dormant seed: its trackers hear that first)
        if self.seeds.leave(rec, hand_over=True):  # (a dormant seed: its session announces from now on)
            self.sleepers.wake(rec)  # (its seeding time counted so far)
        try:
            source = await saved_source(self.manager, rec)
        except (TorrentEngineError, OSError) as exc:
            await self._cannot_start(rec, exc)
        self.saved_meta.pop(rec.id, None)
        # (a seed that was dormant: its session goes on from what its trackers were told)
        announced, settling = self.seeds.handed(rec)
        return source, dataclasses.replace(session_setup(rec), announced=announced, settling=settling)

    async def _cannot_start(self, rec: JobRecord, exc: Exception) -> NoReturn:
        """``rec``'s session cannot be started (``exc`` says why): it fails, saying so."""
        if not self.running:  # (the service stopped meanwhile, its manager with it: it starts at the next)
            raise ServiceStopped from exc
        log.warning("job %s (%s) cannot be started: %s", rec.id, rec.name, exc)
        await self.finish(rec, JobState.FAILED, f"cannot be started: {exc}")
        if self.manager.get(rec.info_hash) is None:  # (its saved torrent is of no use)
            await anyio.to_thread.run_sync(self.manager.forget_saved, rec.info_hash)
        raise JobConflict(f"the job cannot be started: {exc}") from exc

    async def wake_seed(self, rec: JobRecord) -> Session | None:
        """A peer asks for the dormant seed ``rec``: its session, started now under the job's lock
        (None when the job ended meanwhile; ``JobConflict`` when it cannot be: it failed, saying why)."""
        async with self.lock(rec.id):
            if not self.running:  # (the service stops: nothing starts)
                return None
            if self.dormant(rec):
                if rec.id in self.seeds:
                    self.waking.add(rec.id)
                return await self.start_dormant(rec)
            return self.session_of(rec)

    def listed(self, rec: JobRecord) -> Job:
        """The job as a list shows it: ``snapshot``'s, except that a seed that is otherwise the
        same keeps the view made less than ``LISTED_SEEDING_TIME_STEP`` of seeding time ago (its
        seeding time is shown to the minute, as qBittorrent's own lists show it): else each seed's
        view, record and JSON were made again for each list (10 000 seeds: 200 ms a list)."""
        return self.snapshot(rec, seeding_time_step=LISTED_SEEDING_TIME_STEP)

    def snapshot(self, rec: JobRecord, *, seeding_time_step: float = 0.0) -> Job:
        """The job as a caller sees it: from its session while it runs, else from its record."""
        session = self.session_of(rec)
        if session is not None:
            mark = self.sleepers.quiet.get(rec.id)
            if mark is None or mark.peers:  # (its peers' own numbers move: made as an awake one's)
                return self._decorate(rec, self._live_view(rec, session))
            if mark.view is None or mark.view.options is not rec.options:  # (asleep, nothing of it
                mark.view = self._live_view(rec, session)  # moves: a list of 10 000 reads it as kept)
            return self._decorate(rec, mark.view, seeding_time_step)
        if rec.state in FINISHED_STATES:  # (a finished job no longer changes: built once)
            job = self.finished_jobs.get(rec.id)
            if job is None or job.state is not rec.state or job.result is not rec.result:
                job = self.finished_jobs[rec.id] = self._decorate(rec, record_job(rec))
            return job
        mark = self.sleepers.quiet.get(rec.id) if rec.id in self.seeds and self.ready else None
        if mark is not None:  # (a dormant seed: its view kept while nothing of its record changes)
            if mark.view is None or mark.view.options is not rec.options:  # (an edit that did not
                mark.view = record_job(rec, self.tracker_news.get(rec.id))  # unview: made again)
            self.record_views.forget(rec.id)  # (the view it had while it waited for its check)
            return self._decorate(rec, mark.view, seeding_time_step)
        # (not started yet, its torrent not loaded, its data not vouched for: qBittorrent shows
        # such a torrent checkingResumeData; the record's "seeding" would be a claim)
        starting = not self.ready and self.loaded and not rec.options.paused and rec.state in STARTING_SHOWN
        self.sleepers.fold(rec)
        return self.record_views.view(rec, self.tracker_news.get(rec.id), JobState.CHECKING if starting
                                      else None, self.queue.rank(rec.id))  # (made as shown: no _decorate)

    def _live_view(self, rec: JobRecord, session: Session) -> Job:
        """The view of ``rec`` running in ``session``: the one kept while its ``live_stamp`` is the
        same (a poll of thousands of checking or queued jobs makes none again), else made."""
        stamp = live_stamp(rec, session)
        kept = self.live_views.get(rec.id)
        if kept is not None and kept[0] == stamp:
            return kept[1]
        view = live_job(rec, session, self.tracker_news.get(rec.id, {}))
        self.live_views[rec.id] = (stamp, view)
        self.record_views.forget(rec.id)
        return view

    def _decorate(self, rec: JobRecord, job: Job, seeding_time_step: float = 0.0) -> Job:
        """The snapshot with the record's features, queue position, seeding time and ratio; the
        same object as the last time while ``job`` (a quiet job's kept view) and these are the
        same (the seeding time within ``seeding_time_step`` of the one shown), so that a list's
        readers can keep what they made of it (its JSON, a dialect's record: the API's lists of
        10 000 idle jobs made each again, 100 ms for the snapshots)."""
        f = rec.features
        self.sleepers.fold(rec)
        # (a finished job has no place in the queue: its rank, 0, is not looked up, which would
        # rank every job again after each end: a removal of 10 000, O(n²), bench/RESULTS.md)
        rank = 0 if rec.state in FINISHED_STATES else self.queue.rank(rec.id)
        key = (f, rank, rec.completed_at, rec.number)
        kept = self.decorated.get(rec.id)
        if kept is not None and kept[0] is job and kept[2] == key and \
                abs(kept[1].seeding_time - rec.seeding_time) <= seeding_time_step and \
                same_listed_step(kept[1].downloading_time, rec.downloading_time, seeding_time_step):
            return kept[1]
        shown = dataclasses.replace(job, name=f.rename or job.name, features=f, queue_position=key[1],
                                    seeding_time=rec.seeding_time, idle_seeding_time=rec.idle_seeding_time,
                                    downloading_time=rec.downloading_time, active_at=rec.active_at,
                                    ratio=share_ratio(job.uploaded, job.downloaded, job.done_size),
                                    completed_at=rec.completed_at, number=rec.number)
        self.decorated[rec.id] = (job, shown, key)
        self.marks.shown(rec)  # (its listed seeding or downloading time moves on: marks.py)
        return shown

    def publish_updated(self, rec: JobRecord) -> None:
        """Tell subscribers (the SSE stream, the web UI) that a job changed other than its state."""
        self.events.publish(JobUpdated(info_hash=rec.info_hash, job=self.snapshot(rec)))

    def lock(self, job_id: str) -> anyio.Lock:
        """The job's lock: one control operation at a time per job."""
        lock = self.locks.get(job_id)
        if lock is None:
            lock = self.locks[job_id] = anyio.Lock()
        return lock

    def apply_options(self, rec: JobRecord, session: Session) -> None:
        """Push the job's options into its running session (a new one is told them as it is made)."""
        session.set_rate_limits(download=rec.options.download_limit, upload=rec.options.upload_limit)
        session.set_max_peers(rec.options.max_peers)
        session.set_super_seeding(rec.options.super_seeding)  # (kept by a magnet until its metadata)
        session.set_bandwidth_group(self.bandwidth_group(rec))
        if not session.has_metadata:
            return
        if rec.file_priorities is not None and len(rec.file_priorities) == len(session.torrent.files):
            pairs = zip(rec.file_priorities, session.torrent.files, strict=True)
            if any(p != DEFAULT_PRIORITY for p, f in pairs if not f.pad):
                session.set_file_priorities(rec.file_priorities)
            elif any(p != DEFAULT_PRIORITY for p, f in zip(session.file_priorities, session.torrent.files,
                                                          strict=False) if not f.pad):
                session.set_file_priorities(rec.file_priorities)  # (told otherwise before: all wanted now)
            session.keep_given_priorities()  # (the record's, never the resume data's: one owner)
        session.set_sequential(rec.options.sequential)
        if rec.features.first_last_piece:
            prioritise_first_last(session, rec.file_priorities)

    def want_file(self, rec: JobRecord, session: Session, index: int) -> None:
        """A reader opened on file ``index``, which the job skipped (a stream of it), and the
        session wants it since (``SessionFileWanted``): reading it means downloading it. The job
        wants it from now on, at the default priority: its record says so (a restart keeps it),
        and its session is told the record's priorities (and first and last pieces)."""
        files = session.torrent.files
        if not 0 <= index < len(files):
            return
        if rec.file_priorities is None or len(rec.file_priorities) != len(files):
            rec.file_priorities = selected_priorities(rec, session.torrent)  # (a magnet's, just here)
        wanted = list(rec.file_priorities)
        wanted[index] = wanted[index] or DEFAULT_PRIORITY
        rec.file_priorities = tuple(wanted)
        rec.options = dataclasses.replace(rec.options, files=tuple(i for i, p in enumerate(wanted) if p > 0))
        rec.updated_at = self.clock()
        session.set_file_priorities(wanted)
        if rec.features.first_last_piece:
            prioritise_first_last(session, wanted)
        self.refresh_counters(rec, session)
        self.publish_updated(rec)
        if self.tg is not None:
            self.tg.start_soon(self.save, rec)

    # -- the files a job writes -------------------------------------------------------------
    def overlap(self, who: str, job_id: str | None, paths: list[str]) -> JobConflict | None:
        """The refusal of ``who`` (the job ``job_id``, or a torrent being added: None) writing
        ``paths`` when another unfinished job writes one of them (None: no other does)."""
        overlap = self.claims.overlap(job_id, paths)
        if overlap is None:
            return None
        other = self.jobs.get(overlap.other)
        them = f"job {overlap.other} ({other.name})" if other is not None else f"job {overlap.other}"
        same = "that file" if overlap.theirs == overlap.path else f"{overlap.theirs}"
        return JobConflict(f"{who} would write {overlap.path}, where {them} writes {same}: two jobs "
                           "writing one file would overwrite each other's data (choose another "
                           "save path)", "save_path")

    def claim(self, rec: JobRecord) -> None:
        """``rec`` writes its files (by their names, not an incomplete one's suffix) from now on."""
        if (paths := shown_paths(rec)) is not None:
            self.claims.claim(rec.id, claimed_paths(rec.options.data_path, paths, rec.pad_files))

    # -- a session's state -> the job's ------------------------------------------------------
    def sync(self, rec: JobRecord, *, force_save: bool = False) -> None:
        """Derive the job's state from its session; an end (completed, failed) finishes the job.
        ``force_save``: write the record even when the state did not change."""
        session = self.session_of(rec)
        if session is None or rec.id in self.busy or not self.running:
            return
        state = session.state
        changed = False
        if rec.options.seed_mode and not session.seed_mode:  # (a piece failed: the data was checked)
            rec.options = dataclasses.replace(rec.options, seed_mode=False)
            self.sleepers.unview(rec)
            changed = True
        if rec.id in self.waking:  # (started again: as it was while its new session waits its turn)
            if state is State.QUEUED:
                return
            self.waking.discard(rec.id)
        if state in SESSION_TO_JOB:
            new = shown_state(state, held=rec.id in self.queue.held, paused=rec.options.paused)
            changed = self.set_state(rec, new)
            if new is JobState.SEEDING and rec.options.download_path is not None:
                self.move_when_complete(rec)  # (complete in its incomplete folder)
        elif self.tg is not None and rec.id not in self.busy:
            if state is State.ERROR or (state is State.STOPPED and session.error):
                error = session.error or "the session failed"
                self.busy.add(rec.id)
                if session.disk_failure:  # (a cause that can go away: kept, to go on from)
                    self.tg.start_soon(partial(self.halt, rec, error, list(session.missing_files), session,
                                               for_space=session.disk_full))
                else:
                    self.tg.start_soon(self.end, rec, JobState.FAILED, error, session)
            elif state is State.STOPPED:
                done = session.complete
                if done and rec.options.download_path is not None and self.move_when_complete(rec):
                    return  # (it ends once at its save path: complete there, it stops again)
                self.busy.add(rec.id)
                self.tg.start_soon(self.end, rec, JobState.COMPLETED if done else JobState.FAILED,
                                    None if done else "the session stopped before completing", session)
            return
        if (changed or force_save) and self.tg is not None:
            self.tg.start_soon(self.save, rec)

    def set_state(self, rec: JobRecord, new: JobState, *, told: bool = True) -> bool:
        """The one place a job's state changes (and ``job.state`` is published); whether it did.
        ``told`` False: a job being added, announced in this state by its ``job.added``: no
        ``job.state``, and the caller starts the completion's program once it is announced."""
        old = rec.state
        if old is new:
            return False
        rec.enter(new, self.clock())
        if old is JobState.ERROR and new not in FINISHED_STATES:
            rec.error = None  # (it goes on: what stopped it is over, or will say so again)
            rec.missing_files, rec.waits_for_space = (), False
        completed = new is JobState.SEEDING and rec.completed_at is None
        uncompleted = new is JobState.DOWNLOADING and rec.completed_at is not None
        if completed:
            rec.completed_at = rec.updated_at  # every wanted piece is in: the download completed
        elif uncompleted:
            rec.completed_at = None  # (more was selected after it completed)
        self.refresh_counters(rec)
        if completed or uncompleted:
            self.queue.completion_changed(rec)
        self.jobs.changed(rec)  # (the one place a job's state changes: the table's totals)
        self.sleepers.unview(rec)
        if new in FINISHED_STATES:
            self.jobs.finished(rec)  # (its counters are final: the history's totals take them)
        if not told:
            return True
        self.events.publish(JobStateChanged(info_hash=rec.info_hash, job=self.snapshot(rec), old=old,
                                            new=new))
        if completed:
            self.run_program(ProgramEvent.COMPLETED, rec)
        return True

    def run_program(self, event: ProgramEvent, rec: JobRecord, *, moved: bool = False) -> None:
        """Start the program the settings name for ``event`` for ``rec`` (none named: nothing) in
        the service's task group (its run: the job's ``last_program``), and a completion's mail
        when mail is on. A completion in an incomplete folder runs it once its move ends
        (``moved``: no longer ``program_due``; the caller writes it)."""
        rec.program_due &= not moved
        command = self.settings.program(event)
        session = self.session_of(rec)
        torrent = session.torrent if session is not None and session.has_metadata else None
        if event is ProgramEvent.COMPLETED and self.program_waits(rec, moved):
            return  # (run once its files have their names)
        if event is ProgramEvent.COMPLETED and not moved:
            self.exported(event, rec, torrent)  # (its .torrent copied, where the settings say)
        waits = event is ProgramEvent.COMPLETED and not moved and rec.options.download_path is not None
        mail = event is ProgramEvent.COMPLETED and self.settings.mail_enabled  # (sent when it would run)
        if (command or mail) and self.tg is not None \
                and not (waits and self.move_when_complete(rec, program=True)):
            job = self.snapshot(rec)
            if mail:
                self.mail_completed(job)
            if command:
                self.programs.run_for(self.tg, event, command, job, torrent, self.settings.run_timeout)

    def refresh_counters(self, rec: JobRecord, session: Session | None = None) -> None:
        """Copy the session's totals (and, once it has its metainfo, sizes and name) into the record."""
        session = session if session is not None else self.session_of(rec)
        if session is None:
            return
        before = (rec.downloaded, rec.uploaded, rec.total_size, rec.done_size, rec.name)
        rec.count(session.downloaded, session.uploaded, self.clock(), session.wasted, session.corrupt,
                  session.seen_complete)
        self.jobs.changed(rec)  # (the one place a job's counters change: the table's totals)
        self.sleepers.unview(rec)
        sizes = session.sizes()
        if sizes is not None:
            rec.total_size = sizes[0]
            if knows_pieces(session):
                rec.done_size = sizes[1]
            rec.name = session.name
        if (rec.downloaded, rec.uploaded, rec.total_size, rec.done_size, rec.name) != before:
            self.marks.mark(rec)

    async def save(self, rec: JobRecord, content: JobRecord | None = None, *, strict: bool = False,
                   metainfo: Torrent | None = None) -> None:
        """Write the record (or ``content`` in its place) as it is when its turn comes (``JobWriter.save``:
        ``strict``, ``StateNotSaved`` when it could not be; ``metainfo``, its torrent kept first)."""
        self.sleepers.fold(rec)
        self.sleepers.unview(rec)
        self.marks.mark(rec)  # (written: something of it changed, before or after, in the same step)
        if content is None and rec.keeps_file_done:
            self.refresh_files(rec)
        await self.writer.save(rec, content, strict=strict, metainfo=metainfo)

    async def save_all(self, recs: list[JobRecord]) -> None:
        """Write every record of ``recs`` that changed since it was written, in one transaction."""
        turns = Turns()  # (30 000 jobs at a stop: 109-124 ms in one turn)
        for rec in recs:
            await turns.take()
            self.sleepers.fold(rec)
            self.sleepers.unview(rec)
            if rec.keeps_file_done:
                self.refresh_files(rec)
        await self.writer.save_all(recs)

    def refresh_files(self, rec: JobRecord) -> None:
        """Note each file's verified bytes in the record: what the job shows after a restart
        without a session (``JobRecord.keeps_file_done`` says whose record needs them)."""
        session = self.session_of(rec)
        if session is not None and session.has_metadata:
            rec.file_done = tuple(files_done(session.torrent, session.have))

    # -- ends ------------------------------------------------------------------------------
    async def halt(self, rec: JobRecord, error: str, missing: Sequence[str], judged: Session, *,
                   for_space: bool = False) -> None:
        """The job's data could not be written or read (a full disk, a permission, files gone):
        its session stops, its saved metainfo and resume data kept, and the job stays, stopped
        in ``error`` saying why, without a session (as a paused one), until it is resumed or
        rechecked (``for_space``: a full disk, or one below the reserve; it is resumed once there
        is room: disk/space.py); what was verified is kept. Saved before it shows, as every
        change is. ``judged``: the session that failed; a job that has another since (moved,
        rechecked while this waited for its lock) is left to that one."""
        try:
            with anyio.CancelScope(shield=True):
                async with self.lock(rec.id):
                    if rec.state in FINISHED_STATES or not self.jobs.is_active(rec):
                        return
                    if self.session_of(rec) is not judged:
                        return
                    self.refresh_counters(rec, judged)
                    self.refresh_files(rec)
                    try:
                        await self.manager.unload(judged.info_hash)
                    except SessionError as exc:
                        log.debug("job %s: %s", rec.id, exc)
                    if for_space:
                        error += "; it goes on by itself once its disk has room"
                    log.warning("job %s (%s) stopped: %s", rec.id, rec.name, error)
                    self.waking.discard(rec.id)
                    rec.options = dataclasses.replace(rec.options, paused=True)
                    self.queue.held.discard(rec.id)
                    self.last_progress.pop(rec.id, None)
                    self.published.pop(rec.id, None)
                    await self.save(rec, dataclasses.replace(rec, state=JobState.ERROR, error=error,
                                                              missing_files=tuple(missing),
                                                              waits_for_space=for_space))
                    rec.error, rec.missing_files, rec.waits_for_space = error, tuple(missing), for_space
                    self.set_state(rec, JobState.ERROR)
        finally:
            self.busy.discard(rec.id)

    async def end(self, rec: JobRecord, state: JobState, error: str | None,
                  judged: Session | None = None) -> None:
        """End the job in ``state`` under its lock, in the task group (the job is busy until then).
        ``judged``: the session whose end this is; a job that has another since (moved, rechecked
        while this waited for its lock) is left to that one."""
        try:
            with anyio.CancelScope(shield=True):
                async with self.lock(rec.id):
                    ours = judged is None or self.session_of(rec) is judged
                    if rec.state not in FINISHED_STATES and ours:
                        await self.end_job(rec, state, error)
        finally:
            self.busy.discard(rec.id)

    def download_complete(self, rec: JobRecord) -> bool:
        """Whether every wanted piece of the job is verified (now, or when its record was saved)."""
        if rec.completed_at is not None or rec.state is JobState.SEEDING:
            return True
        if (session := self.session_of(rec)) is not None:
            return session.complete
        return rec.total_size > 0 and rec.done_size >= rec.total_size

    async def client_gone(self, rec: JobRecord) -> None:
        """The job's client lease ended: work that only made sense while the client ran stops.
        A job whose download completed is kept, files and all (it stops seeding: ``completed``);
        an unfinished one is cancelled and its files deleted."""
        if self.download_complete(rec):
            self.busy.add(rec.id)
            await self.end(rec, JobState.COMPLETED, None)
        else:
            await self.cancel_job(rec, delete_files=True, error=CLIENT_SESSION_ENDED)

    async def cancel_job(self, rec: JobRecord, *, delete_files: bool, error: str | None) -> None:
        """Cancel the unfinished job under its lock (``delete_files``: its files go too)."""
        async with self.lock(rec.id):
            if rec.state in FINISHED_STATES:
                return  # (it ended while this waited for the lock)
            await self.cancel_locked(rec, delete_files=delete_files, error=error)

    async def cancel_locked(self, rec: JobRecord, *, delete_files: bool, error: str | None) -> None:
        """As ``cancel_job``, the caller holding the job's lock."""
        await self.end_job(rec, JobState.CANCELLED, error, delete_files=delete_files)

    async def end_job(self, rec: JobRecord, state: JobState, error: str | None, *,
                       delete_files: bool = False) -> None:
        """Finish the job (the caller holds its lock). First the record on disk says it is finished
        and what clean-up is left, so a crash at any later step is completed at the next start;
        then the session is stopped and forgotten and (``delete_files``) the files deleted; only
        then does the job show its new state, so whoever sees it finds the clean-up done."""
        self.busy.add(rec.id)
        try:
            with anyio.CancelScope(shield=True):  # half an end would leave a session without a job
                session = self.session_of(rec)
                if session is not None:
                    self.refresh_counters(rec, session)
                dormant = (session is None and self.jobs.is_active(rec)
                           and self.manager.get(rec.info_hash) is None)
                now = self.clock()
                # (a job whose download completed keeps when that was; the others end now)
                completed = rec.completed_at if rec.completed_at is not None else now
                planned = dataclasses.replace(rec, state=state, error=error, completed_at=completed,
                                              delete_pending=delete_files)
                self.set_result(planned)
                await self.save(rec, planned)
                ending = None
                if self.jobs.unbind(rec):
                    if session is not None:  # an add of this torrent meanwhile waits for the manager
                        ending = self.adding.setdefault(rec.info_hash, anyio.Event())
                try:
                    if session is not None:
                        try:
                            await self.manager.remove(session.info_hash)
                        except SessionError as exc:
                            log.debug("job %s: %s", rec.id, exc)
                        self.refresh_counters(rec, session)
                finally:
                    if ending is not None and self.adding.get(rec.info_hash) is ending:
                        del self.adding[rec.info_hash]
                        ending.set()
                if dormant:  # its torrent's saved metainfo and resume data go as a session's would
                    await self.manager.drop_saved(rec.info_hash)  # (with the others' of a removal of many)
                    self.saved_meta.pop(rec.id, None)
                if delete_files:
                    await anyio.to_thread.run_sync(self.remove_files, rec)
                    rec.done_size = 0  # (its data is gone: the history does not show it as had)
                await self.finish(rec, state, error, completed_at=completed)
        finally:
            self.busy.discard(rec.id)

    def remove_files(self, rec: JobRecord) -> None:
        """Delete the files the job made and the folders it created (never outside the root)."""
        remove_job_files(self.download_root, rec)

    async def finish(self, rec: JobRecord, state: JobState, error: str | None, *,
                      completed_at: float | None = None) -> None:
        """Make the job a finished one (history) and save it; its session is the caller's concern."""
        self.jobs.unbind(rec)
        self.claims.release(rec.id)
        self.seeds.leave(rec)
        self.checks.leave(rec)
        rec.error = error
        rec.delete_pending = False
        if completed_at is not None or rec.completed_at is None:
            rec.completed_at = completed_at if completed_at is not None else self.clock()
        self.set_result(rec)
        self.tracker_news.pop(rec.id, None)
        self.live_views.pop(rec.id, None)
        self.last_progress.pop(rec.id, None)
        self.published.pop(rec.id, None)
        self.sleepers.forget(rec)  # (no session: its seeding time counted, the timers' sets forget it)
        self.waking.discard(rec.id)
        self.queue.held.discard(rec.id)  # (the queue walks its held jobs each tick)
        self.set_state(rec, state)
        await self.save(rec)

    def set_result(self, rec: JobRecord) -> None:
        """The job's result as it ends now."""
        rec.result = job_result(rec, self.clock())  # (it ends now)

    # -- a session started again --------------------------------------------------------------
    async def start_again(self, rec: JobRecord, saved: Torrent | None = None) -> Session:
        """A session for ``rec`` added again to the manager from its record (at a start): its
        saved metainfo (``saved``, when read already) and resume data, so it goes on from what
        was verified; a magnet whose metadata never came fetches it again."""
        source = saved if saved is not None else await saved_source(self.manager, rec)
        return await self.add_session(rec, source, session_setup(rec), Path(rec.options.data_path))

    async def add_session(self, rec: JobRecord, source: Torrent | Magnet, setup: SessionSetup,
                          save_path: Path, *, saved: bool = True) -> Session:
        """``sessions.add_session``, paused as ``starts_paused`` says; a job that stops by itself
        (``stop_condition``) runs until its check is over, none of its pieces asked for."""
        session = await start_held(rec, self.starts_paused(rec), lambda paused: add_session(
            self.manager, rec, source, setup, save_path, paused=paused, saved=saved))
        self.stop_once_checked(rec, session)
        return session

    def saved_metainfo(self, rec: JobRecord) -> Torrent | None:
        """A dormant job's metainfo, read from the state folder (kept until the job starts or
        ends; a small read on the caller's thread); None when there is none."""
        torrent = self.saved_meta.get(rec.id)
        if torrent is None:
            try:
                torrent = self.manager.saved_metainfo(rec.info_hash)
            except (TorrentEngineError, OSError):
                return None
            if torrent is None:
                return None
            self.saved_meta[rec.id] = torrent
        return torrent

    def saved_pieces(self, rec: JobRecord, torrent: Torrent | None = None) -> Bitfield | None:
        """A job's verified pieces as its resume data says (None without it); ``torrent``: its
        metainfo, when known (else a dormant job's, read and kept: ``saved_metainfo``)."""
        torrent = torrent if torrent is not None else self.saved_metainfo(rec)
        resume = self.manager.saved_resume(rec.info_hash) if torrent is not None else None
        if torrent is None or resume is None or resume.num_pieces != torrent.num_pieces:
            return None
        return Bitfield.from_bytes(resume.have, resume.num_pieces)
