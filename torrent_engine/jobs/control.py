"""The verbs that control one job after its add: pause, resume, a stream's session, recheck,
update its options, cancel (one of them made to many jobs at once: ``QueueRounds.each``); and the
history: what download clients list, forgetting finished jobs.
"""

from __future__ import annotations

import builtins
import dataclasses
import logging
from collections import Counter
from collections.abc import Collection, Generator, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TypeVar

import anyio
import anyio.abc

from ..engine.grouped import Grouped
from ..engine.manager import TorrentManager
from ..errors import TorrentEngineError
from ..session import Session
from ..session.state_table import State
from .changelog import Changes
from .lifecycle import JobLifecycle
from .model import (
    FINISHED_STATES,
    ClientChanges,
    Holdings,
    Job,
    JobChanges,
    JobConflict,
    JobError,
    JobNotFound,
    JobRemoved,
    JobState,
    ServiceStopped,
    StateNotSaved,
)
from .organising.organise import Organiser
from .queueing.dormant import seed_files_there
from .queueing.rounds import QUEUE_MOVES, QueueRounds
from .snapshot import session_setup, start_held
from .store import JobRecord
from .tuning.peerlimits import check_job_peers
from .validate import check_age, check_limit, check_priorities

log = logging.getLogger(__name__)

__all__ = ["MOVED_STEP", "QUEUE_MOVES", "JobControl"]

# ``client_changes_in_steps``: a torrent that only moved costs about 1 us there (its position),
# one listed some 40 (a view of its job made), so a step takes this many pages of moved ones
MOVED_STEP = 10


class JobControl:
    """Controls the jobs of ``run``; a round of ``rounds`` follows what may free or take a
    slot of the queue; a job's number is kept by the organiser when its record leaves."""

    def __init__(self, run: JobLifecycle, rounds: QueueRounds, organiser: Organiser) -> None:
        self.run = run
        self.rounds = rounds
        self.organiser = organiser
        # (the paused seeds resumed together have their files looked at a group a thread hop)
        self._looks: Grouped[JobRecord] = Grouped(lambda recs: _files_there(run.manager, recs))

    def _reachable(self, job_id: str, action: str) -> tuple[JobRecord, Session | None]:
        """The unfinished job ``job_id`` and its session (None: a dormant job, see ``dormant``);
        ``JobNotFound``, or ``JobConflict`` for a finished job or one being restarted or ended."""
        rec = self.run.jobs.get(job_id)
        if rec is None:
            raise JobNotFound(f"no job {job_id!r}", "id")
        if rec.state in FINISHED_STATES:
            raise JobConflict(f"cannot {action} a job that is {rec.state.value}")
        if self.run.dormant(rec):
            return rec, None
        session = self.run.session_of(rec)
        if session is None or rec.id in self.run.busy:
            raise JobConflict(f"cannot {action} the job now: it is being restarted or ended")
        return rec, session

    async def _live(self, job_id: str, action: str) -> tuple[JobRecord, Session]:
        """As ``_reachable``, a dormant job's session started (paused or not, as it was)."""
        rec, session = self._reachable(job_id, action)
        if session is None:
            session = await self.run.start_dormant(rec)
        return rec, session

    async def pause(self, job_id: str) -> Job:
        """Pause the job (peers dropped, data kept); ``JobConflict`` if it is not running."""
        await self.run.require_running()
        async with self.run.lock(job_id):
            rec, session = self._reachable(job_id, "pause")
            await self._save_planned(rec, paused=True)  # (refused, nothing changed, if it cannot be)
            if session is not None and session.state is not State.PAUSED:
                await session.pause()
            rec.options = dataclasses.replace(rec.options, paused=True)
            rec.stop_condition = ""  # (stopped: no further by itself, as qBittorrent's stop clears it)
            rec.updated_at = self.run.clock()
            if session is None and rec.id in self.run.queue.held:  # (dormant, held back by the queue)
                self.run.queue.held.discard(rec.id)
                self.run.set_state(rec, JobState.PAUSED)
            elif session is None and rec.id in self.run.seeds:  # (a dormant seed: no more announced)
                self.run.sleepers.forget(rec)  # (its seeding time counted)
                self.run.seeds.leave(rec)
                self.run.set_state(rec, JobState.PAUSED)
            elif session is None and (self.run.checks.leave(rec) or rec.state is JobState.CHECKING):
                # (waiting for its check: no more; or its check over, its word waiting for this
                # lock: kept for its start, checks.py)
                self.run.set_state(rec, JobState.PAUSED)
            self.run.sync(rec)
            await self.run.save(rec)  # durable before the caller hears it is done
        await self.rounds.enforce()  # (a slot of the queue may have freed)
        return self.run.job(job_id)

    def stop_soon(self, rec: JobRecord) -> None:
        """``rec`` met its stop condition (JobLifecycle.stop_met): paused in the service's task
        group as its user would pause it, once what changes it now lets go of its lock."""
        if self.run.tg is not None:
            self.run.tg.start_soon(self._stop, rec)

    async def _stop(self, rec: JobRecord) -> None:
        adding = self.run.adding.get(rec.info_hash)
        if adding is not None:  # (met before its add returned: paused once it has)
            await adding.wait()
        try:
            await self.pause(rec.id)
        except JobError as exc:  # (ended, or ending, meanwhile: nothing to stop)
            log.info("job %s (%s) met its stop condition, not paused: %s", rec.id, rec.name, exc)

    def stop_once_checked(self, rec: JobRecord, session: Session) -> None:
        """A session of ``rec`` started (JobLifecycle.stop_once_checked): when ``rec`` stops once its
        files are checked, it is paused once this session's check is over (a magnet's metadata
        came first). Its session, started so, pauses itself then: none of its pieces asked for."""
        async def watch() -> None:
            await session.wait_ready()  # (or its end)
            if rec.stop_condition == "files_checked" and session.has_metadata and not session.finished \
                    and self.run.session_of(rec) is session:
                await self._stop(rec)  # (the pause ends the condition; refused, a session that
                # replaces this one stops once checked in turn)
        if rec.stop_condition == "files_checked" and self.run.tg is not None:
            self.run.tg.start_soon(watch)

    async def resume(self, job_id: str) -> Job:
        """Resume a paused job (a job paused since the service started gets its session now), or
        one stopped by its disk (``error``): it goes on from the data verified before."""
        await self.run.require_running()
        async with self.run.lock(job_id):
            rec, session = self._reachable(job_id, "resume")
            await self._save_planned(rec, paused=False)  # (refused, nothing changed, if it cannot be)
            rec.idle_seeding_time = 0.0  # (started again: idle from now, as Transmission counts it)
            if session is None and (rec.id in self.run.queue.held or self.rounds.starts_held(rec)):
                self.run.queue.held.add(rec.id)  # dormant, held back by the queue: it starts with its slot
                self.run.set_state(rec, JobState.QUEUED)
            elif session is None and await self._sleeps_again(rec):
                pass  # (a dormant seed again, as at a start: no session until a peer asks for it)
            elif session is None:
                rec.options = dataclasses.replace(rec.options, paused=False)
                await self.run.start_dormant(rec)  # (started paused with queueing on: the queue judges it)
            elif session.paused and rec.id not in self.run.queue.held:  # (or paused once started)
                if self.rounds.waits_for_queue(rec, session):
                    self.run.queue.held.add(rec.id)  # its session stays paused: it runs with its slot
                else:
                    await self.run.resume_session(rec, session)
            rec.options = dataclasses.replace(rec.options, paused=False)
            rec.updated_at = self.run.clock()
            self.run.sync(rec)
            await self.run.save(rec)  # durable before the caller hears it is done
        await self.rounds.enforce()  # (the queue may hold it back)
        return self.run.job(job_id)

    async def _sleeps_again(self, rec: JobRecord) -> bool:
        """The paused job ``rec`` without a session (its lock held), complete, is resumed as a
        dormant seed, as the service's start makes one of it (``seed_files_there``: its
        torrent and resume data kept, each file it wants there at its size); a peer asking for
        it wakes it. Whether it was (a resume of ten thousand paused seeds started ten thousand
        sessions: bench/RESULTS.md)."""
        run = self.run
        if rec.state is not JobState.PAUSED or not run.would_sleep(rec):
            return False
        rec.options = dataclasses.replace(rec.options, paused=False)  # (resumed from here on: a stop
        # meanwhile writes it so)
        if not await self._looks.run(rec):
            return False
        await run.seeds.stopped(rec)  # (its pause's ``stopped`` to its trackers first)
        try:
            await run.seeds.add(rec)
        except (TorrentEngineError, OSError) as exc:  # (no listener: its session says why)
            log.info("job %s (%s) resumed with a session: %s", rec.id, rec.name, exc)
            return False
        run.set_state(rec, JobState.SEEDING)
        run.sleepers.wake(rec)  # (its first round judges its share limits, then it sleeps)
        return True

    async def _save_planned(self, rec: JobRecord, *, paused: bool) -> None:
        """Save the record as a pause or resume leaves it, before either is made: durable before
        the caller hears it is done (``StateNotSaved``, nothing changed, when it cannot be)."""
        options = dataclasses.replace(rec.options, paused=paused)
        planned = dataclasses.replace(rec, options=options, updated_at=self.run.clock())
        await self.run.save(rec, planned, strict=True)

    async def stream_session(self, job_id: str) -> Session | None:
        """The session to read a job's files from while it runs (a file reader or an HTTP
        stream), started now if queued and resumed if paused; None for a completed job (its
        files are whole on disk). A job the queue holds back is force-started (as qBittorrent
        would show it): someone is watching it. ``JobNotFound``; ``JobConflict`` for a failed or
        cancelled job."""
        await self.run.require_running()
        async with self.run.lock(job_id):
            rec = self.run.jobs.get(job_id)
            if rec is not None and rec.state is JobState.COMPLETED:
                return None
            rec, session = await self._live(job_id, "stream")
            self.run.sleepers.wake(rec)  # (a reader comes: it must not go dormant before it opens)
            changed = False
            # (the job queue alone decides: the service's manager queues nothing of its own)
            # (a paused or held one is resumed below: would the queue hold it back then?)
            if self.rounds.starts_held(rec, session):
                rec.features = dataclasses.replace(rec.features, force_start=True)
                changed = True
            self.run.queue.held.discard(rec.id)  # (it runs now: past the queue, or in its slot)
            # (or paused once started: a held job's session just woken; or once checked)
            if session.paused or session.pauses_after_check:
                await self.run.resume_session(rec, session)
                rec.options = dataclasses.replace(rec.options, paused=False)
                rec.updated_at = self.run.clock()
                self.run.sync(rec)
                changed = True
            if changed:  # durable before the reader has its session: a restart keeps it running
                await self.run.save(rec)
            return session

    async def recheck(self, job_id: str) -> Job:
        """Hash the data on disk again (the session restarts without its resume data; a job
        without a session is checked without one where it may be: ``_check_alone``). A job
        stopped by its disk (``error``) goes on after the check, from what it finds."""
        await self.run.require_running()
        async with self.run.lock(job_id):
            rec, session = self._reachable(job_id, "recheck")
            if session is None:  # (paused since the start, a dormant seed, stopped in error)
                # its check without a session, or its one session started without its resume
                # data, hashes what is there (one with it would trust that data: a job in error
                # would stop again on the same missing file); one stopped by its disk goes on
                # after the check
                await self.run.manager.drop_resume(rec.info_hash)  # (with the others' of a recheck of many)
                error = rec.state is JobState.ERROR
                rec.options = dataclasses.replace(rec.options, paused=rec.options.paused and not error,
                                                  seed_mode=False)
                rec.updated_at = self.run.clock()
                if self.run.may_check_alone(rec):
                    self._check_alone(rec)
                else:
                    await self.run.start_dormant(rec)
                    self._checks_first(rec)
                await self.run.save(rec)
                job = self.run.snapshot(rec)
            else:
                job = await self._recheck(rec, session)
        await self.rounds.enforce()  # (a check over already: the queue's word)
        return self.run.job(job.id)

    async def _recheck(self, rec: JobRecord, session: Session) -> Job:
        if not session.has_metadata:
            return self.run.snapshot(rec)  # nothing on disk to check before the metadata arrives
        torrent = session.torrent
        paused = self.run.starts_paused(rec)  # (the record's word, or the queue's)
        rec.options = dataclasses.replace(rec.options, seed_mode=False)  # (checked: not taken as complete)
        self.run.busy.add(rec.id)
        try:
            with anyio.CancelScope(shield=True):  # half a restart would leave the job without a session
                self.run.refresh_counters(rec)
                # (its resume data forgotten: a full recheck; its metainfo kept, for a start after
                # a stop that came before the new session)
                await self.run.manager.remove(session.info_hash, keep_saved=True)
                await anyio.to_thread.run_sync(self.run.manager.forget_resume, session.info_hash)
                try:
                    # (under the job's hash: a hybrid added by its v2 one keeps it)
                    new = await start_held(rec, paused, lambda held: self.run.manager.add(
                        torrent, Path(rec.options.data_path), peers=rec.options.peers, paused=held,
                        setup=session_setup(rec), info_hash=bytes.fromhex(rec.info_hash)))
                except (TorrentEngineError, OSError) as exc:
                    if not self.run.running:  # (the service stopped meanwhile: checked at its next start)
                        raise ServiceStopped("the service stopped before the job could restart for its "
                                             "recheck: it is checked when the service starts") from exc
                    await self.run.finish(rec, JobState.FAILED, f"cannot restart for a recheck: {exc}")
                    return self.run.snapshot(rec)
                self.stop_once_checked(rec, new)
                self._checks_first(rec)
        finally:
            self.run.busy.discard(rec.id)
        self.run.sync(rec)
        await self.run.save(rec)
        return self.run.snapshot(rec)

    def _check_alone(self, rec: JobRecord) -> None:
        """The dormant job ``rec`` (its lock held, its resume data forgotten) is checked without a
        session, as a torrent added with its data is (intake/checks.py): a dormant seed leaves
        the seeds (its trackers told ``stopped``, as libtorrent's recheck stops announcing) and
        is one again once found complete; a job found incomplete gets its session then. A
        recheck of ten thousand seeds holds no session for any of them (bench/RESULTS.md)."""
        self.run.checks.leave(rec)  # (waiting for a check already: from the start again)
        if self.run.seeds.leave(rec):
            self.run.sleepers.forget(rec)  # (its seeding time counted)
        self.run.set_state(rec, JobState.CHECKING)
        self.run.checks.add(rec)

    def _checks_first(self, rec: JobRecord) -> None:
        """``rec``'s new session hashes its data before anything else (paused or not): the job is
        shown checking from the recheck on, not queued until that session says it checks."""
        if rec.file_paths is not None:  # (a magnet's metadata not come yet: nothing to check)
            self.run.set_state(rec, JobState.CHECKING)
            self.run.waking.add(rec.id)

    async def update(self, job_id: str, *, file_priorities: Mapping[int, int] | None = None,
                     sequential: bool | None = None, download_limit: int | None = None,
                     upload_limit: int | None = None, max_peers: int | None = None,
                     super_seeding: bool | None = None, kept_download_limit: int | None = None,
                     kept_upload_limit: int | None = None) -> Job:
        """Change file priorities (index -> 0..7, 0 = skip), sequential mode, rate limits (and
        the value a limit keeps while off, ``kept_…``: taken only where the limit is off after
        the change), the job's connections at most (``max_peers``, 0: the setting for every
        torrent) or super-seeding (BEP 16, while it seeds)."""
        await self.run.require_running()
        async with self.run.lock(job_id):
            rec, session = self._reachable(job_id, "update")
            before = rec.options, rec.file_priorities, rec.updated_at
            job = self._update(rec, session, file_priorities, sequential, download_limit, upload_limit,
                               max_peers, super_seeding, (kept_download_limit, kept_upload_limit))
            try:
                await self.run.save(rec, strict=True)  # durable before the caller hears it is done
            except StateNotSaved:  # refused: what was made is taken back
                rec.options, rec.file_priorities, rec.updated_at = before
                self.run.marks.mark(rec)  # (a list may have shown the change while it was written)
                if session is not None:
                    if before[1] is not None and file_priorities is not None:
                        session.set_file_priorities(before[1])
                    self.run.apply_options(rec, session)
                raise
            return job

    def _update(self, rec: JobRecord, session: Session | None, file_priorities: Mapping[int, int] | None,
                sequential: bool | None, download_limit: int | None, upload_limit: int | None,
                max_peers: int | None = None, super_seeding: bool | None = None,
                kept: tuple[int | None, int | None] = (None, None)) -> Job:
        options = rec.options  # (everything is checked before anything changes)
        if max_peers is not None:
            options = dataclasses.replace(options, max_peers=check_job_peers(max_peers, "max_peers"))
        # (a limit turned off keeps the value it had, or the one given to keep:
        # ``JobOptions.kept_download_limit``)
        kept_down = None if kept[0] is None else check_limit(kept[0], "kept_download_limit")
        kept_up = None if kept[1] is None else check_limit(kept[1], "kept_upload_limit")
        if download_limit is not None or kept_down is not None:
            down = options.download_limit if download_limit is None else check_limit(download_limit,
                                                                                     "download_limit")
            options = dataclasses.replace(options, download_limit=down, kept_download_limit=_kept(
                down, options.download_limit, options.kept_download_limit, kept_down))
        if upload_limit is not None or kept_up is not None:
            up = options.upload_limit if upload_limit is None else check_limit(upload_limit, "upload_limit")
            options = dataclasses.replace(options, upload_limit=up, kept_upload_limit=_kept(
                up, options.upload_limit, options.kept_upload_limit, kept_up))
        if sequential is not None:
            options = dataclasses.replace(options, sequential=bool(sequential))
        if super_seeding is not None:
            options = dataclasses.replace(options, super_seeding=bool(super_seeding))
        if file_priorities is not None:
            known = session.has_metadata if session is not None else rec.file_paths is not None
            if rec.file_priorities is None or not known:
                raise JobConflict("file priorities need the metainfo, which has not arrived yet",
                                  "file_priorities")
            pads = set(rec.pad_files) if rec.file_paths is not None else set()
            new = check_priorities(file_priorities, rec.file_priorities, pads)
            rec.file_priorities = tuple(new)
            if session is not None:
                session.set_file_priorities(new)
            options = dataclasses.replace(options, files=tuple(i for i, p in enumerate(new) if p > 0))
        rec.options = options
        rec.updated_at = self.run.clock()
        self.run.sleepers.unview(rec)  # (a dormant seed's kept view: it has no session to refresh it)
        if session is not None:  # (a dormant job's session takes them from the record when it starts)
            self.run.apply_options(rec, session)
        self.run.refresh_counters(rec)
        self.run.sync(rec)
        return self.run.snapshot(rec)

    async def cancel(self, job_id: str, *, delete_files: bool = False) -> Job:
        """Stop the job at once; with ``delete_files`` remove its files and the folders it made.
        Cancelling a cancelled job again changes nothing."""
        await self.run.require_running()
        rec = self.run.jobs.get(job_id)
        if rec is None:
            raise JobNotFound(f"no job {job_id!r}", "id")
        if rec.state is JobState.CANCELLED:
            return self.run.snapshot(rec)
        if rec.state in FINISHED_STATES:
            raise JobConflict(f"cannot cancel a job that is {rec.state.value}")
        await self.run.cancel_job(rec, delete_files=delete_files, error=None)
        return self.run.snapshot(rec)

    async def clear_history(self, *, older_than: float | None = None) -> int:
        """Forget finished jobs (those finished at least ``older_than`` seconds ago, when given)."""
        await self.run.started()
        if older_than is not None:
            older_than = check_age(older_than, "older_than")
        now = self.run.clock()
        gone = self.run.jobs.finished_before(now, older_than)
        if gone:
            await self.organiser.keep_numbers()
        for rec in gone:
            self.run.jobs.remove(rec.id)
            self.run.marks.removed(rec)
            self.run.finished_jobs.pop(rec.id, None)
            self.run.decorated.pop(rec.id, None)
            self.run.record_views.forget(rec.id)
            self.run.locks.pop(rec.id, None)
            self.run.programs.forget(rec.id)
            self.run.writer.forget(rec.id)
        if gone:
            await anyio.to_thread.run_sync(self.run.store.delete_many, [r.id for r in gone])
        for rec in gone:
            self.run.events.publish(JobRemoved(info_hash=rec.info_hash, job_id=rec.id))
        return len(gone)

    def list_pages(self, size: int, state: JobState | None = None, *,
                   owner: str | None = None) -> Iterator[builtins.list[Job]]:
        """``JobService.list``'s jobs (``state``'s alone when given; ``owner``'s alone when given: a
        user's list, a view made of theirs alone), ``size`` at a time, of those there were at the
        first page: the caller may let the loop run between two pages (a job removed meanwhile is
        left out; one whose state changed stays, in the state it has now)."""
        table = self.run.jobs
        wanted = JobState(state) if state is not None else None
        if owner is None:
            recs = table.newest_first(wanted)
        else:  # (the owner's index: their records alone looked at)
            recs = [r for r in table.newest_of(table.of_owner(owner)) if wanted is None or r.state is wanted]
        for at in range(0, len(recs), size):
            yield [self.run.listed(r) for r in recs[at:at + size] if r.id in table]

    def client_jobs(self) -> builtins.list[Job]:
        """The jobs a download client lists: every unfinished one, and each failed one whose torrent
        has no unfinished job (the newest of them), until it is removed (``forget``); cancelled and
        completed jobs are gone for such a client, as removed torrents are."""
        return [self.run.listed(rec) for rec in self._client_records()]

    def client_pages(self, size: int, *, category: str | None = None, tag: str | None = None,
                     owner: str | None = None, states: Collection[JobState] | None = None,
                     ) -> Iterator[builtins.list[Job]]:
        """``client_jobs``' jobs, ``size`` at a time, of those listed at the first page: a job
        removed, completed or cancelled between two pages is left out (the caller lets the loop
        run between them). ``category``: those in it alone ("" those in none); ``tag``: those
        with it alone ("" those with none); ``owner``: that owner's alone (a user's list);
        ``states``: those in one of them alone (a filter's states: a status filter passes over
        the others without a view of each): looked at in each record, a view made of these alone."""
        recs = self._client_records()
        if owner is not None:
            recs = [r for r in recs if r.options.owner == owner]
        if states is not None:
            recs = [r for r in recs if r.state in states]
        if category is not None or tag is not None:
            recs = [r for r in recs if r.features.labelled(category, tag)]
        table = self.run.jobs
        for at in range(0, len(recs), size):
            yield [self.run.listed(r) for r in recs[at:at + size]
                   if r.id in table and (r.state not in FINISHED_STATES or r.state is JobState.FAILED)]

    def client_jobs_of(self, info_hashes: Iterable[str] = (),
                       numbers: Collection[int] = ()) -> builtins.list[Job]:
        """The jobs ``client_jobs`` lists of the torrents ``info_hashes`` and those whose ``number``
        is one of ``numbers``, newest first, each once: found from each torrent's own jobs (a
        number: a look at each record's), a view made of these alone (a client's look at one
        torrent made the view of every one: 30 ms at 10 000)."""
        recs = {rec.id: rec for info_hash in info_hashes for rec in self._client_recs(info_hash)[:1]}
        if numbers:
            recs.update((rec.id, rec) for rec in self._client_records() if rec.number in numbers)
        return [self.run.listed(rec) for rec in self.run.jobs.newest_of(recs.values())]

    def holdings_of(self, owner: str) -> Holdings:
        """What ``owner`` holds (``Holdings``): their jobs alone are looked at, no view of one made."""
        recs = self.run.jobs.of_owner(owner)
        counted = [r for r in recs if r.state not in _NOT_HELD]
        return Holdings(len(counted), sum(r.total_size for r in counted),
                        frozenset(r.features.category for r in recs if r.features.category),
                        frozenset(t for r in recs for t in r.features.tags))

    def client_states(self) -> Counter[JobState]:
        """How many jobs ``client_jobs`` lists in each state (the records' states, as their views
        show them; no view made)."""
        return Counter(rec.state for rec in self._client_records())

    def _client_records(self) -> builtins.list[JobRecord]:
        """The records of ``client_jobs``, in its order (a look at each record's state: not
        a snapshot of each)."""
        out: builtins.list[JobRecord] = []
        failed: dict[str, JobRecord] = {}
        for rec in self.run.jobs.newest_first():
            if rec.state not in FINISHED_STATES:
                out.append(rec)
            elif rec.state is JobState.FAILED and self.run.jobs.active_id(rec.info_hash) is None:
                failed.setdefault(rec.info_hash, rec)
        out.extend(failed.values())
        return out

    def _client_recs(self, info_hash: str) -> list[JobRecord]:
        """What ``client_jobs`` lists of the torrent ``info_hash``, from its own jobs alone: its
        unfinished job, else its newest failed one (a job of another torrent changes nothing of it)."""
        only = self.run.jobs.only_job(info_hash)
        if only is not None:  # (most torrents: their one job, listed unless it ended otherwise than failing)
            return [only] if only.state not in FINISHED_STATES or only.state is JobState.FAILED else []
        recs = self.run.jobs.of_torrent(info_hash)
        out = [r for r in recs if r.state not in FINISHED_STATES]
        if self.run.jobs.active_id(info_hash) is None:
            out.extend([r for r in recs if r.state is JobState.FAILED][:1])
        return out

    def changes(self, cursor: int | None) -> JobChanges:
        """Every job (``list``'s) changed after ``cursor``, and those removed; every job (``full``)
        when the log cannot tell what changed after it, or ``cursor`` is None."""
        return _driven(self.changes_in_steps(cursor, page=0))

    def changes_in_steps(self, cursor: int | None, *, page: int) -> Generator[None, None, JobChanges]:
        """``changes`` in steps: it yields after each ``page`` jobs' views made (0: never) and
        returns the changes; the caller lets the loop run at each step (a full answer, or one
        during a mass add or check, is thousands of views). A job changed while it yields is
        told at the next ask (it is marked after the cursor this answer names)."""
        self.run.marks.settle()
        log = self.run.marks.log
        told = log.since(cursor) if cursor is not None else None
        if told is None:
            recs, full, at, gone = self.run.jobs.newest_first(), True, log.cursor, []
        else:
            recs = self.run.jobs.newest_of(r for r in map(self.run.jobs.get, told.changed) if r is not None)
            full, at = False, told.cursor
            gone = [r.job_id for r in told.removed if r.job_id not in self.run.jobs]
        jobs: list[Job] = []
        for n, rec in enumerate(recs):
            if page and n and n % page == 0:
                yield
            if rec.id in self.run.jobs:  # (not removed meanwhile)
                jobs.append(self.run.listed(rec))
        return JobChanges(at, full, jobs, gone)

    def client_changes(self, cursor: int | None = None, *, within: float | None = None,
                       positions: bool = False) -> ClientChanges:
        """What ``client_jobs`` lists changed after ``cursor``, or within the last ``within``
        seconds: the torrents of the jobs changed, each as listed now, and the numbers of their
        jobs not listed (and of those removed). ``full`` when the cursor is unknown.
        ``positions``: a torrent whose one listed job only moved in the queue since ``cursor``
        is in ``moved``, with its position, instead."""
        return _driven(self.client_changes_in_steps(cursor, within=within, positions=positions, page=0))

    def client_changes_in_steps(self, cursor: int | None = None, *, within: float | None = None,
                                positions: bool = False, page: int) -> Generator[None, None, ClientChanges]:
        """``client_changes`` in steps: it yields after each ``page`` torrents listed (0: never),
        and after each ``MOVED_STEP`` pages' worth of moved ones, and returns the changes; the
        caller lets the loop run at each step (a poll during a mass check tells thousands, which
        held the loop up to 60 ms in one go). What changed after the cursor while it yields is
        told at the next ask (it is marked after the cursor this answer names)."""
        self.run.marks.settle()
        log = self.run.marks.log
        told: Changes | None
        if within is not None:
            told = log.within(self.run.clock() - within)
        else:
            told = log.since(cursor) if cursor is not None else None
        if told is None:
            return ClientChanges(log.cursor, True, {}, [])
        jobs = self.run.jobs
        hashes: dict[str, None] = {}
        only_moved = told.moved if positions else frozenset()  # (told apart with positions only)
        whole = {gone.info_hash for gone in told.removed}  # (the torrents changed in more than a move)
        moved_recs: list[JobRecord] = []
        for rec in jobs.records_of(told.changed):  # (one pass: thousands moved at each poll of a mass check)
            hashes[rec.info_hash] = None
            if rec.id in only_moved:
                moved_recs.append(rec)
            elif only_moved:
                whole.add(rec.info_hash)
        for gone in told.removed:  # (its torrent may list another job now, or none)
            hashes[gone.info_hash] = None
        moved: dict[str, tuple[int, str]] = {}
        ranks = self.run.queue.ranks_of([rec.id for rec in moved_recs])
        for n, (rec, rank) in enumerate(zip(moved_recs, ranks, strict=True)):  # (a torrent whose one
            if page and n and n % (page * MOVED_STEP) == 0:  # listed job only moved: its position alone)
                yield
            if rec.info_hash in whole:
                continue
            listed = self._client_recs(rec.info_hash)
            if len(listed) == 1 and listed[0] is rec:
                moved[rec.info_hash] = (rank, rec.id)
                del hashes[rec.info_hash]
        torrents: dict[str, list[Job]] = {}
        removed: list[int] = [r.number for r in told.removed if r.number]
        for n, info_hash in enumerate(list(hashes)):
            if page and n and n % page == 0:
                yield
            listed = self._client_recs(info_hash)
            torrents[info_hash] = [self.run.listed(r) for r in listed]
            if not listed or jobs.only_job(info_hash) is not listed[0]:  # (a job of it not listed)
                removed.extend(r.number for r in jobs.of_torrent(info_hash) if r.number and r not in listed)
        return ClientChanges(told.cursor, False, torrents, removed, moved)

    async def forget(self, job_id: str, *, delete_files: bool = False) -> None:
        """Remove a finished job from the history now (and, with ``delete_files``, the files it
        made, as cancelling would have); ``JobConflict`` for an unfinished job (cancel it)."""
        await self.run.started()
        rec = self.run.jobs.get(job_id)
        if rec is None:
            raise JobNotFound(f"no job {job_id!r}", "id")
        if rec.state not in FINISHED_STATES:
            raise JobConflict(f"cannot forget a job that is {rec.state.value} (cancel it first)")
        async with self.run.lock(rec.id):
            if delete_files:
                await anyio.to_thread.run_sync(self.run.remove_files, rec)
            if rec.id not in self.run.jobs:
                return
            await self.organiser.keep_numbers()
            self.run.jobs.remove(rec.id)
            self.run.marks.removed(rec)
            self.run.finished_jobs.pop(rec.id, None)
            self.run.decorated.pop(rec.id, None)
            self.run.record_views.forget(rec.id)
            self.run.writer.forget(rec.id)
            await anyio.to_thread.run_sync(self.run.store.delete, rec.id)
        self.run.locks.pop(rec.id, None)
        self.run.events.publish(JobRemoved(info_hash=rec.info_hash, job_id=rec.id))


_T = TypeVar("_T")
_NOT_HELD = (JobState.CANCELLED, JobState.FAILED)  # (a user's quotas count every other job of theirs)


def _driven(steps: Generator[None, None, _T]) -> _T:
    """What ``steps`` returns, driven to its end in one go (no loop between its steps)."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            value: _T = done.value
            return value


def _kept(limit: int, was: int, kept: int, given: int | None = None) -> int:
    """The value a job's rate limit keeps while it is off, once set to ``limit`` (it ``was``,
    and ``kept``): none while on, else the one ``given`` to keep, else the last it had on."""
    if limit:
        return 0
    return given if given is not None else was or kept


def _files_there(manager: TorrentManager, recs: list[JobRecord]) -> list[bool | Exception]:
    """(Blocking: a row looked up, a stat a file.) ``seed_files_there`` of each paused seed of
    ``recs``, or the exception its look raised."""
    out: list[bool | Exception] = []
    for rec in recs:
        try:
            out.append(seed_files_there(rec, *manager.kept_for(rec.info_hash)))
        except Exception as exc:
            out.append(exc)
    return out
