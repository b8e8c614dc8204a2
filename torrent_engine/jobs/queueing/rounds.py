"""The queue's rounds: what applies the queue's decisions (queue.py) and the share limits to the
jobs' sessions. A round counts seeding time, notes completed downloads, acts on reached share
limits, then pauses the sessions the queue holds back, resumes those it gives a slot and starts
the dormant ones it lets run; the service's tick runs one a second, and a change asks for one.
A seed quiet long enough falls dormant here too (``fall_dormant``).
"""

from __future__ import annotations

import builtins
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from contextvars import ContextVar

import anyio

from ...engine.turns import Turns
from ...errors import SessionError, TorrentEngineError
from ...session import Session
from ...session.state_table import State
from ..model import (
    FINISHED_STATES,
    NO_LIMIT,
    InvalidJobRequest,
    JobConflict,
    JobError,
    JobState,
    StateNotSaved,
    one_not_saved,
    same_listed_step,
    share_ratio,
)
from ..store import JobRecord
from ..tuning.autorun import ProgramEvent
from ..tuning.settings import ShareLimitAction
from .awake import DOWNLOADING
from .host import QueueingHost
from .queue import QueueEntry, SlowJobs, effective, move, queue_entry, share_limit_reached

log = logging.getLogger("torrent_engine.jobs.rounds")


QUEUE_MOVES = ("top", "bottom", "up", "down")
MAX_STEP = 300.0  # seconds of seeding one tick may count (a machine asleep does not seed)
UNCHECKED = (State.QUEUED, State.CHECKING)  # a session whose start-up check is not over

EACH_AT_ONCE = 64
"""Jobs a change of many (``QueueRounds.each``) changes at the same time: their records' writes
wait for one transaction together (one job at a time, a pause of 10 000 waited for 20 000
transactions, each its own: bench/RESULTS.md)."""

_ONE_ROUND: ContextVar[object | None] = ContextVar("one_round", default=None)
"""The ``QueueRounds.one_round_after`` the code running is under (the tasks it starts inherit it)."""


async def at_once(job_ids: Iterable[str], change: Callable[[str], Awaitable[object]]) -> dict[str, JobError]:
    """``change`` made to each of ``job_ids``, ``EACH_AT_ONCE`` at a time (their records' writes
    then share transactions); the jobs it did not fit, each with its error. A ``StateNotSaved``
    stops the rest and is raised as itself."""
    failed: dict[str, JobError] = {}
    listed = list(dict.fromkeys(job_ids))
    ids = iter(listed)

    async def changes() -> None:
        for job_id in ids:  # (the next id no other task took)
            try:
                await change(job_id)
            except StateNotSaved:
                raise
            except JobError as exc:
                failed[job_id] = exc

    with one_not_saved():  # (raised in one of the tasks: raised as itself)
        async with anyio.create_task_group() as tg:
            for _ in range(min(EACH_AT_ONCE, len(listed))):
                tg.start_soon(changes)
    return failed


class QueueRounds:
    """The queue's rounds over the jobs of ``run`` (see the module's docstring), and the verbs
    that change the queue's order."""

    def __init__(self, run: QueueingHost) -> None:
        self.run = run
        self._last_feature_tick: float | None = None
        self._round_asked = False  # a round is asked for and has not begun (``round_soon``)
        # one round of the queue at a time: a round acts on what it read as it began, and a
        # round running meanwhile (set off by a check's end) would act on what it read after
        self._round_lock = anyio.Lock()
        self.slow = SlowJobs()  # which running jobs are slow (dont_count_slow_torrents)
        self._holding: set[object] = set()  # the one_round_after under way

    def round_soon(self) -> None:
        """Ask for a round in the service's task group: asks made before a round begins are
        answered by it (a start's thousand check ends are not a thousand rounds)."""
        if not self._round_asked and self.run.tg is not None:
            self._round_asked = True
            self.run.tg.start_soon(self._asked_round)

    async def _asked_round(self) -> None:
        _ONE_ROUND.set(None)  # (its own task's: asked under a one_round_after, it is not held by it)
        await self.enforce()

    def queue_order(self) -> builtins.list[str]:
        """The unfinished jobs' ids in queue order (first = next to run)."""
        return [r.id for r in self.run.jobs.in_queue_order()]

    async def move_in_queue(self, job_ids: Iterable[str], where: str, *, while_off: bool = False) -> None:
        """Move jobs to the ``top`` or ``bottom`` of the queue, or one place ``up`` or ``down``;
        ``JobConflict`` when queueing is off, unless ``while_off`` (the order is kept and counts
        once queueing is on, as Transmission's queue positions do)."""
        await self.run.check_running()
        if where not in QUEUE_MOVES:
            raise InvalidJobRequest(f"must be one of {', '.join(QUEUE_MOVES)}", "where")
        if not self.run.settings.queueing and not while_off:
            raise JobConflict("queueing is off (turn on the setting \"queueing\" first)", "queueing")
        ids = list(dict.fromkeys(job_ids))
        for i in ids:
            self.run.unfinished(i)
        order = move(self.queue_order(), ids, where)
        positions = sorted(rec.queue_position for rec in self.run.jobs if rec.id in set(order))
        moves: list[tuple[JobRecord, int]] = []
        for job_id, position in zip(order, positions, strict=True):
            rec = self.run.jobs.get(job_id)
            if rec is not None and rec.queue_position != position:
                moves.append((rec, position))
        moving = {rec.id: (rec, position) for rec, position in moves}

        async def save(job_id: str) -> None:
            rec, position = moving[job_id]
            await self.run.save(rec, dataclasses.replace(rec, queue_position=position), strict=True)

        async def put_back(job_id: str) -> None:
            await self.run.save(moving[job_id][0])  # (its place as it was, when it can be written)

        try:  # (every moved record durable before any place changes: refused whole when not)
            await at_once(moving, save)  # (many at a time: the top of 10 000 moves them all)
        except StateNotSaved:
            with anyio.CancelScope(shield=True):
                await at_once(moving, put_back)  # (each: one written before the failure, or in flight)
            raise
        for rec, position in moves:
            rec.queue_position = position
        if moves:
            self.run.jobs.reordered()
        await self.enforce()
        for job_id in ids:
            moved = self.run.jobs.get(job_id)
            if moved is not None:
                self.run.publish_updated(moved)

    def waits_for_queue(self, rec: JobRecord, session: Session) -> bool:
        """Whether ``rec``'s paused ``session``, resumed, waits for the queue: the queue holds it
        back, or judges it once its start-up check is over (resumed sooner, it would run after
        the check without the queue's word)."""
        return self.run.queue.judges(rec) and (session.state in UNCHECKED or self.starts_held(rec, session))

    def starts_held(self, rec: JobRecord, session: Session | None = None) -> bool:
        """Whether the queue holds ``rec`` back from its start: a job without a session (taken as
        a download: its data is not checked yet), or one whose ``session`` is paused. Its session
        then starts (or stays) paused, or does not start at all (a dormant one), so it announces
        and dials nothing until ``enforce`` gives it a slot."""
        if not self.run.queue.judges(rec):
            return False
        others: dict[str, QueueEntry] = {}
        with_session = set()
        for other in self.run.with_sessions():
            with_session.add(other.id)
            running = self.run.session_of(other)
            if (running is None or other is rec or other.state in FINISHED_STATES or other.options.paused
                    or other.state is JobState.CHECKING):
                continue
            others[other.id] = queue_entry(other, running.complete)
        complete = session is not None and session.complete
        return self.run.queue.starts_held(rec, complete, others, with_session, self.run.busy)

    @asynccontextmanager
    async def one_round_after(self) -> AsyncIterator[None]:
        """The rounds the changes made inside ask for (``enforce``: in this task and the tasks it
        starts meanwhile) are one round, made as they are over: a pause of ten thousand jobs is
        one round, not ten thousand (each walks the awake jobs). When they raise, the round is
        asked for (``round_soon``) rather than awaited."""
        token = object()
        self._holding.add(token)
        entered = _ONE_ROUND.set(token)
        try:
            yield
        except BaseException:
            self.round_soon()
            raise
        finally:
            _ONE_ROUND.reset(entered)
            self._holding.discard(token)
        await self.enforce()

    async def each(self, job_ids: Iterable[str],
                   change: Callable[[str], Awaitable[object]]) -> dict[str, JobError]:
        """``change`` (a change of one job by its id: the service's ``pause``, ``resume``, an
        edit of its features...) made to each of ``job_ids`` (``at_once``), the rounds they ask
        for made once, after all of them (``one_round_after``). Returns the jobs it did not fit,
        each with its error; a ``StateNotSaved`` (a change the state folder cannot hold) stops
        the rest and is raised."""
        listed = list(dict.fromkeys(job_ids))
        if not listed:
            return {}
        async with self.one_round_after():
            return await at_once(listed, change)

    async def every(self, job_ids: Iterable[str], change: Callable[[str], Awaitable[object]]) -> None:
        """``each``, the first job it did not fit raised as its error once the others are changed
        (a client's edit of many that some refused: said as one error, the rest made)."""
        failed = await self.each(job_ids, change)
        if failed:
            raise next(iter(failed.values()))

    async def enforce(self) -> None:
        """Count seeding time, note completed downloads, act on reached share limits and start
        or hold jobs as the queue says (run by the service's tick and after changes), once the
        round under way, if any, is over. Under ``one_round_after``: made once at its end."""
        if _ONE_ROUND.get() in self._holding:
            return
        async with self._round_lock:
            self._round_asked = False  # (what was asked before it begins, it answers)
            await self._round()

    async def fall_dormant(self, rec: JobRecord) -> None:
        """The seed ``rec`` has been quiet for ``Config.dormant_after`` seconds (``fall_quiet``
        gave it the time): if it still is, and may sleep, it becomes a dormant seed, as one
        restarted complete is. Its session is suspended (its resume data written as by any stop,
        no ``stopped`` to its trackers) and forgotten, its saved metainfo and resume data kept;
        the dormant seeds' announcer goes on from what its trackers know, a peer wakes it. Its
        record shows it seeding as before (no state change), its seeding time and totals going
        on. A reader open (a stream) or a peer keeps it awake: looked at again later."""
        async with self.run.lock(rec.id):
            session = self.run.session_of(rec)
            if (session is None or not self.run.running or rec.id in self.run.busy
                    or rec.id not in self.run.sleepers.quiet or session.state is not State.SEEDING
                    or not self.run.may_sleep(rec)):
                return
            st = session.status()
            if st.peers or st.download_rate or st.upload_rate or session.readers.active:
                self.run.sleepers.put_off(rec, time.monotonic() + self.run.manager.config.dormant_after)
                return
            self.run.busy.add(rec.id)
            try:
                with anyio.CancelScope(shield=True):  # (half of it: a seed neither asleep nor awake)
                    try:
                        await self.run.seeds.hold_listener()
                    except (TorrentEngineError, OSError) as exc:
                        log.warning("job %s (%s) keeps its session: %s", rec.id, rec.name, exc)
                        return
                    self.run.refresh_counters(rec, session)
                    try:
                        announced = await self.run.manager.suspend(session.info_hash)
                    except SessionError as exc:
                        log.debug("job %s: %s", rec.id, exc)
                        return
                    self.run.refresh_counters(rec, session)  # (what it served until it stopped)
                    if not self.run.running:  # (the service stops: its dormant seeds gave the listener back)
                        return
                    await self.run.seeds.add(rec, announced)
                    self.run.marks.mark(rec)  # (shown from its record from now on)
                    log.debug("job %s (%s) is quiet: dormant until a peer asks for it", rec.id, rec.name)
                    if self.run.writer.changed(rec, self.run.clock()):
                        await self.run.save(rec)
            finally:
                self.run.busy.discard(rec.id)

    async def _round(self) -> None:
        """Walk the awake jobs (a quiet one sleeps until news of its session, or its share time
        limit, wakes it: see awake.py): count seeding time, note completions, act on share
        limits; give or take the queue's slots; let the jobs where nothing moves fall quiet."""
        now = self.run.clock()
        last = self._last_feature_tick
        self._last_feature_tick = now
        step = 0.0 if last is None else min(max(0.0, now - last), MAX_STEP)
        # (the quiet seeds woken at their time limits: this step counted below)
        self.run.sleepers.advance(step, self.run.jobs)
        tg = self.run.tg
        for job_id in self.run.sleepers.dormant_due(time.monotonic()):  # quiet long enough: dormant
            sleeper = self.run.jobs.get(job_id)
            if sleeper is not None and tg is not None:
                tg.start_soon(self.fall_dormant, sleeper)
        settings = self.run.settings
        queueing = settings.queueing
        watch = queueing and settings.dont_count_slow_torrents  # (slow jobs not counted)
        judged: dict[str, QueueEntry] = {}  # the queue's entries of the jobs with a session
        with_session: set[str] = set()
        live: list[tuple[JobRecord, Session, bool]] = []  # (job, its session, complete)
        # (a start's first round walks every job: 30 000 dormant seeds held the loop 288-451 ms in
        # one turn; each job is looked at anew after a turn of the loop)
        turns = Turns()
        for rec in self.run.moving():
            await turns.take()
            session = self.run.session_of(rec)
            if session is None:  # (a dormant seed: its record alone)
                if rec.id in self.run.seeds and rec.id not in self.run.busy:
                    await self._dormant_round(rec, step, now)
                continue
            with_session.add(rec.id)
            if rec.state in FINISHED_STATES or rec.id in self.run.busy:
                continue
            complete = session.complete
            if rec.state is JobState.SEEDING:
                rec.seeded(step)
            elif rec.state in DOWNLOADING:
                shown = rec.downloading_time
                rec.downloading_time += step
                if not same_listed_step(shown, rec.downloading_time):  # (lists show minutes)
                    self.run.marks.mark(rec)
            if complete and rec.completed_at is None and rec.state is not JobState.CHECKING:
                rec.completed_at = now
                self.run.queue.completion_changed(rec)
                self.run.run_program(ProgramEvent.COMPLETED, rec)
                await self.run.save(rec)
            if rec.state is JobState.SEEDING and await self._share_limit(rec, session):
                continue
            live.append((rec, session, complete))
            if not rec.options.paused and rec.state is not JobState.CHECKING:
                slow = watch and not session.paused and self.slow.slow(
                    rec.id, now, settings, (session.rates.down_rate, session.rates.up_rate))
                judged[rec.id] = queue_entry(rec, complete, slow=slow)
        quiet: list[str] = []
        running_held: list[str] = []  # quiet, held, yet running: magnets to pause after their check
        if queueing:  # (the queue weighs every job with a session: the quiet ones as they slept)
            for job_id, mark in list(self.run.sleepers.quiet.items()):
                if job_id in self.run.seeds:  # (a dormant seed: the queue does not judge it)
                    continue
                sleeper = self.run.jobs.get(job_id)
                asleep = self.run.session_of(sleeper) if sleeper is not None else None
                if sleeper is None or sleeper.state in FINISHED_STATES or asleep is None:
                    self.run.sleepers.leave(job_id)
                    continue
                with_session.add(job_id)
                if not sleeper.options.paused and job_id not in self.run.busy:
                    slow = watch and not asleep.paused and self.slow.slow(job_id, now, settings, None)
                    judged[job_id] = queue_entry(sleeper, mark.complete, slow=slow)
                    quiet.append(job_id)
                    if job_id in self.run.queue.held and not asleep.paused:
                        running_held.append(job_id)
        plan = self.run.queue.plan(judged, with_session, quiet, self.run.busy)
        # a quiet job whose slot the queue gives or takes wakes; so does one it holds that runs
        # (a magnet fetching its metadata, held only from its check on): held from now on
        wakes = [*plan.wake, *(j for j in running_held if j in plan.hold and j not in plan.wake)]
        # (the jobs that run on: each seen anew once it runs again after a hold, a pause, an end)
        self.slow.keep({job_id for job_id in judged if job_id not in plan.hold} if watch else ())
        for job_id in wakes:
            woken = self.run.jobs.get(job_id)
            session = self.run.session_of(woken) if woken is not None else None
            if woken is not None and session is not None:
                self.run.sleepers.wake(woken)
                live.append((woken, session, judged[job_id].complete))
        starting = (self.run.jobs.get(job_id) for job_id in plan.start)
        for rec in (r for r in starting if r is not None):
            # (dormant since the start, held back: started now that the queue gives it a slot)
            async with self.run.lock(rec.id):
                if rec.id in self.run.queue.held and self.run.dormant(rec):
                    self.run.queue.held.discard(rec.id)
                    try:
                        await self.run.start_dormant(rec)
                    except JobConflict:
                        continue  # (it failed, saying why)
                    session = self.run.session_of(rec)
                    if session is not None:
                        self.run.sleepers.wake(rec)
                        live.append((rec, session, session.complete))
        for rec, session, complete in live:
            await turns.take()
            if (rec.id in self.run.busy or rec.state in FINISHED_STATES
                    or self.run.session_of(rec) is not session):  # (after a turn: it may have moved)
                continue
            if rec.id in plan.hold:
                self.run.queue.held.add(rec.id)
                if session.state in (State.DOWNLOADING, State.SEEDING, State.DOWNLOADING_METADATA):
                    await session.pause()
            elif rec.id in self.run.queue.held and rec.id in judged and not _unchecked(session):
                # (one that checks, or has yet to, is judged after its check: a session that
                # started paused pauses again then, and only the queue, which holds it, would
                # resume it; resumed before, it would run after its check without the queue's word.
                # One whose check ended while this round went on was not weighed by its plan: the
                # round its check's end asked for judges it)
                self.run.queue.held.discard(rec.id)
                if not rec.options.paused and session.paused:  # (or paused once started)
                    await self.run.resume_session(rec, session)
            self.run.sync(rec)
            await self._settle(rec, session, complete, now)

    async def _settle(self, rec: JobRecord, session: Session, complete: bool, now: float) -> None:
        """Let ``rec`` fall quiet if nothing of it moves, its counters saved first (they do not
        change while it sleeps; its seeding time is counted when it wakes)."""
        if rec.id in self.run.busy or rec.state in FINISHED_STATES or not self.run.running:
            return
        if self.run.fall_quiet(rec, session, complete, self._time_left(rec)):
            self.run.refresh_counters(rec, session)
            if self.run.writer.changed(rec, now):
                await self.run.save(rec)

    def _action(self, rec: JobRecord) -> ShareLimitAction:
        """What ``rec``'s reached share limit does: its own action, else the service's."""
        own = rec.features.share_limit_action
        return ShareLimitAction(own) if own is not None else self.run.settings.share_limit_action

    def _time_left(self, rec: JobRecord) -> float | None:
        """Seeding seconds until ``rec``'s share time limit or its idle seeding limit, whichever
        comes first, if nothing moves meanwhile (None: it has neither, does not seed, or its
        limit's action, super-seeding, is taken already: nothing more happens at it)."""
        if rec.state is not JobState.SEEDING or self._super_seeds_at_limit(rec):
            return None
        s = self.run.settings
        left = [limit - spent for limit, spent in (
            (effective(rec.features.seeding_time_limit, s.seeding_time_limit), rec.seeding_time),
            (effective(rec.features.idle_seeding_limit, s.idle_seeding_limit), rec.idle_seeding_time))
            if limit != NO_LIMIT and limit >= 0]
        return min(left, default=None)

    async def _dormant_round(self, rec: JobRecord, step: float, now: float) -> None:
        """A dormant seed in a round (its first after the start, or its share time limit
        reached): its seeding time counted, its share limits acted on as its record says, then
        quiet again until its time limit (its seeding time counted when it wakes)."""
        if rec.state is JobState.SEEDING:
            rec.seeded(step)
            if await self._share_limit(rec, None):
                return
        if rec.id in self.run.seeds and rec.state not in FINISHED_STATES:
            self.run.sleepers.fall_quiet(rec, True, self._time_left(rec))
            if self.run.writer.changed(rec, now):
                await self.run.save(rec)

    async def _share_limit(self, rec: JobRecord, session: Session | None) -> bool:
        """Act on a reached share limit (``session``: the job's, None for a dormant seed, whose
        record has its totals); whether the job was stopped or ended (super-seeding turned on,
        it goes on seeding: False)."""
        if self._super_seeds_at_limit(rec):
            return False  # (as qBittorrent: its action is taken once, a torrent super-seeding has no other)
        if session is not None:
            st = session.status()
            ratio = share_ratio(st.uploaded, st.downloaded, st.have_bytes)
        else:
            ratio = share_ratio(rec.uploaded, rec.downloaded, rec.done_size)
        ratio_limit = effective(rec.features.ratio_limit, self.run.settings.ratio_limit)
        time_limit = effective(rec.features.seeding_time_limit, self.run.settings.seeding_time_limit)
        idle_limit = effective(rec.features.idle_seeding_limit, self.run.settings.idle_seeding_limit)
        if not share_limit_reached(ratio, rec.seeding_time, ratio_limit, time_limit,
                                   idle_time=rec.idle_seeding_time, idle_limit=idle_limit):
            return False
        action = self._action(rec)
        log.info("job %s (%s) reached its share limit (ratio %.2f, %.0f s seeding, %.0f s of it idle): %s",
                 rec.id, rec.name, ratio, rec.seeding_time, rec.idle_seeding_time, action.value)
        self.run.run_program(ProgramEvent.SEEDING_DONE, rec)
        if action is ShareLimitAction.SUPER_SEED:
            async with self.run.lock(rec.id):
                if rec.state in FINISHED_STATES:
                    return True
                rec.options = dataclasses.replace(rec.options, super_seeding=True)  # (kept across restarts)
                rec.updated_at = self.run.clock()
                if session is None:  # (a dormant seed may have been woken meanwhile; else its next wake)
                    session = self.run.session_of(rec)
                if session is not None:
                    session.set_super_seeding(True)
                await self.run.save(rec)
            return False
        if action is ShareLimitAction.STOP:
            async with self.run.lock(rec.id):
                if session is None:  # (a dormant seed may have been woken meanwhile)
                    session = self.run.session_of(rec)
                if session is not None and session.state is not State.PAUSED:
                    await session.pause()
                rec.options = dataclasses.replace(rec.options, paused=True)
                rec.updated_at = self.run.clock()
                self.run.queue.held.discard(rec.id)
                if session is None:  # a dormant seed: paused without a session, as one paused at a start
                    self.run.seeds.leave(rec)
                    self.run.set_state(rec, JobState.PAUSED)
                    await self.run.save(rec)
                else:
                    self.run.sync(rec, force_save=True)
            return True
        delete = action is ShareLimitAction.REMOVE_WITH_FILES
        async with self.run.lock(rec.id):
            if rec.state not in FINISHED_STATES:
                await self.run.end_job(rec, JobState.COMPLETED, None, delete_files=delete)
        return True

    def _super_seeds_at_limit(self, rec: JobRecord) -> bool:
        """Whether ``rec``'s share limit turns super-seeding on and it is on already."""
        return rec.options.super_seeding and self._action(rec) is ShareLimitAction.SUPER_SEED


def _unchecked(session: Session) -> bool:
    """Whether the session's start-up check is not over: not begun, under way, or (a magnet
    fetching its metadata, to pause after its check for the queue's word) to come."""
    return session.state in UNCHECKED or (session.pauses_after_check and session.state is not State.PAUSED)
