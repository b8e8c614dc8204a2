"""Checks without a session (DESIGN.md section 12): a torrent added with its data already on disk
(every file it wants there at its full size: an import from another client, a cross-seed) is
hashed here in its turn, before it has any live part. While it waits it is its record and a
place in a queue — no session, no task, no timer; a thousand of them cost a thousand records.

Its turn is one of the shared resources' ``check_slots`` (``active_checking_limit``: the same
limit a session's recheck takes). A slot taken, one worker thread takes the waiting jobs for
``CHECK_TURN`` seconds, taking each next one itself: the checks do not wait for the loop between
two torrents (it may be answering a poll of ten thousand), and the slot is given back after the
turn (a session's recheck waiting for it has it then). The thread reads each job's saved
metainfo and resume data from the store and asks a check process of its own
(``storage.check.CheckProcess``, up to ``IN_FLIGHT`` asked ahead) to parse it, stamp the files
before and after and hash them: a check's Python no longer shares the GIL with the event loop.
Where no process can be started, or one ends mid-turn, the checks are made in the thread
(``check_files``, the same code). What a check found is handed to the loop as it ends; there,
under the job's lock:

- every piece verified, no file changed meanwhile: resume data that vouches for them is saved and
  the job is a dormant seed (seeding from its record; the first peer that asks starts its session,
  which trusts that resume data); the deduplication learns its v2 files from the metainfo the
  check read (``learn_files``), not from a second read;
- otherwise: resume data with what was verified (and the stamps, when no file changed) is saved
  and the job's session starts from it, downloading the rest;
- the files cannot be read: the job stops with an error that says why, and the others go on.

The resume data is kept as a row of the manager's store (``TorrentManager.keep_resume``: the
checks that end while a group is written are the next group, one transaction), not a file each;
the session, when one starts, reads that row.

While it hashes, the check saves its progress every ``CHECK_SAVE_INTERVAL`` seconds, as a
session's start-up check does (resume data with ``checked-up-to``, not durable); a check that
begins where such data is, its files' stamps unchanged (a restart: the job waits here again),
trusts the pieces it verified and hashes only the rest, and so does the job's session if it is
the one that checks next.

A job that something else starts meanwhile (an edit, a move: ``JobLifecycle.start_dormant``
takes it out of here) is left to its session, which checks for itself; a check under way for it is
stopped between two pieces and what it found is dropped. A job paused is shown paused at once: its
check, if under way, is stopped (what it saved of its progress stays); if over, its word waiting
for the job's lock, what it found is kept for the job's start and the job stays paused (or, the
data unreadable, the job stops in error saying why).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

import anyio
import anyio.abc
from anyio import CapacityLimiter

from ...errors import StorageError, TorrentEngineError
from ...formats.bitfield import Bitfield
from ...session.checking import CHECK_SAVE_INTERVAL
from ...storage.check import LOOK, CheckAsk, CheckFound, CheckProcess, ProcessEnded, Progress, check_files
from ...storage.dedup import FileRoot
from ...storage.paths import real_path
from ...storage.resume import FileStamp, ResumeData, ResumeKeeper
from ..model import JobState

if TYPE_CHECKING:
    from ...engine.manager import TorrentManager
    from ...storage.descriptors import FileCache
    from ..store import JobRecord
    from .host import IntakeHost

log = logging.getLogger("torrent_engine.jobs")

__all__ = ["CHECK_PROCESS_IDLE", "CHECK_TURN", "IN_FLIGHT", "IN_FLIGHT_BYTES", "CheckSaves", "PendingChecks",
           "check_on_disk"]


@dataclass(frozen=True, slots=True)
class CheckSaves:
    """Where a check saves its progress (``keeper``: the job's resume data), and what that
    resume data says of the job (``job``: its info-hash, save path, file priorities, added time)."""

    keeper: ResumeKeeper
    job: ResumeData

    def save(self, have: Bitfield, checked_up_to: int, begun: list[FileStamp | None]) -> bool:
        """(Blocking.) Save that every piece below ``checked_up_to`` was hashed, ``have`` verified,
        the files as they were when the check began; False when it cannot be written."""
        data = dataclasses.replace(self.job, have=have.to_bytes(), num_pieces=have.num_pieces,
                                   checked_up_to=checked_up_to, files=begun, saved_time=int(time.time()))
        try:
            self.keeper.store(data, durable=False)  # (lost in a crash: hashed again)
        except TorrentEngineError as exc:
            log.warning("cannot save the progress of %s's check: %s", self.job.info_hash.hex(), exc)
            return False
        return True


def check_on_disk(manager: TorrentManager, info_hash: str, data_path: Path, files: FileCache | None,
                  stop: threading.Event, saves: CheckSaves | None = None) -> CheckFound | None:
    """(Blocking: a worker thread.) Hash every piece of the torrent whose metainfo ``manager``
    keeps as ``info_hash`` from its files under ``data_path``, here (``storage.check.check_files``:
    where no check process can be started); None when ``stop`` was set before the end. A piece
    that cannot be read is not verified; ``TorrentEngineError``/``OSError`` when the metainfo
    cannot be read.
    ``saves``: the check goes on from the progress an earlier one saved there (its files
    unchanged), and saves its own every ``CHECK_SAVE_INTERVAL`` seconds."""
    ask = _ask(manager, info_hash, data_path, saves)
    return check_files(ask, files, stop.is_set, None if saves is None else saves.save)


def _ask(manager: TorrentManager, info_hash: str, data_path: str | Path,
         saves: CheckSaves | None) -> CheckAsk:
    """(Blocking: two reads of the store.) The check of torrent ``info_hash``'s files under
    ``data_path`` as ``check_files`` is asked it: its kept metainfo and, with ``saves``, the
    job's resume data and what is kept for it. ``TorrentEngineError`` when no metainfo is kept."""
    metainfo = manager.saved_metainfo_bytes(info_hash)
    if metainfo is None:
        raise TorrentEngineError("its metainfo is not in the state folder")
    return CheckAsk(metainfo, str(data_path), None if saves is None else saves.job,
                    None if saves is None else saves.keeper.load(), CHECK_SAVE_INTERVAL)


def _job_saves(manager: TorrentManager, rec: JobRecord) -> CheckSaves | None:
    """Where the check of the job ``rec`` saves its progress (None: no state folder)."""
    keeper = manager.resume_keeper(rec.info_hash)
    return None if keeper is None else CheckSaves(keeper, _job_resume(rec))


@dataclass(slots=True)
class _Asked:
    """A check asked of a turn's process and not answered yet."""

    rec: JobRecord
    stop: threading.Event
    ask: CheckAsk
    saves: CheckSaves | None
    told: bool = False  # (its stop told to the process)

    def save(self, progress: Progress) -> None:
        """(Blocking.) The progress the process sent kept, unless the check was stopped (then the
        job may be its session's, which saves its own) or a save failed before."""
        if self.saves is not None and not self.stop.is_set() and not self.saves.save(*progress):
            self.saves = None


def _job_resume(rec: JobRecord) -> ResumeData:
    """What resume data says of the job ``rec`` (its info-hash, real save path, file priorities,
    added time), no piece yet; its save path resolved (``real_path``: an lstat a component, once
    a few seconds)."""
    return ResumeData(info_hash=bytes.fromhex(rec.info_hash),
                      save_path=str(real_path(Path(rec.options.data_path))), have=b"", num_pieces=0,
                      file_priorities=list(rec.file_priorities or []), added_time=int(rec.created_at))


_Ended = tuple["JobRecord", threading.Event, "CheckFound | Exception | None", "ResumeData | None"]
"""A check that ended in a turn's thread: its job, what stopped it, what it found (None: stopped;
an exception: it could not read), and the job's resume data the check was made with (its save
path resolved: ``_job_resume``; None without a state folder)."""

CHECK_TURN = 1.0
"""Seconds a check slot is held by one worker thread checking the waiting jobs back to back (then
the slot is given back, for a session's recheck waiting for it, and taken again)."""

CHECK_PROCESS_IDLE = 60.0
"""Seconds a check process no turn used is kept (then it ends; the next check starts one)."""

IN_FLIGHT = 16
"""Checks a turn asks of its process before the first is answered: the process goes from one to
the next while the turn's thread waits for the GIL (a call of the thread waited up to the 5 ms
switch interval while the event loop ran: one check at a time, the process was idle 3/4 of the
time, bench/RESULTS.md)."""

IN_FLIGHT_BYTES = 64 * 1024 * 1024
"""No more is asked ahead once the torrents asked and not answered hold this many bytes (one is
always asked): a turn of big torrents holds its slot for the one under way, not for sixteen."""


class PendingChecks:
    """The jobs waiting for (or under) a check without a session, in the order they came.

    A check slot taken, one worker thread checks the waiting jobs back to back for a turn
    (``CHECK_TURN``): it takes the next job itself, so the checks go on while the loop is busy
    (a poll's answer, the adds); what each check found is handed to the loop as it ends, and
    applied there under the job's lock, in a task of its own (their resume rows then written
    together)."""

    def __init__(self, run: IntakeHost) -> None:
        self.life = run
        self._lock = threading.Lock()  # (the two tables below: the turns' threads take from them)
        self._waiting: dict[str, JobRecord] = {}  # job id -> its record, first come first
        self._under_way: dict[str, threading.Event] = {}  # job id -> what stops its check
        self._changed: anyio.Event | None = None  # set when a job comes (the runner looks again)
        self.checked = 0  # checks ended here (for the tests and the bench)
        # (told the v2 files of a job found complete, shown seeding: the deduplication's
        # ``learn_checked``, so it need not read the torrent again)
        self.learn_files: Callable[[JobRecord, tuple[FileRoot, ...]], None] | None = None
        # the check processes (``storage.check.CheckProcess``), under ``_lock``: those no turn
        # uses, and all of them (each turn's thread takes one or starts one); False once one could
        # not be started: the checks are made in the turns' threads from then on
        self.in_processes = True
        self._spare: list[CheckProcess] = []
        self._processes: set[CheckProcess] = set()

    def __contains__(self, job_id: object) -> bool:
        with self._lock:
            return job_id in self._waiting or job_id in self._under_way

    def __len__(self) -> int:
        with self._lock:
            return len(self._waiting) + len(self._under_way)

    def add(self, rec: JobRecord) -> None:
        """``rec`` (its torrent saved in the state folder, its files there) is checked in its turn."""
        with self._lock:
            self._waiting[rec.id] = rec
        if self._changed is not None:
            self._changed.set()

    def leave(self, rec: JobRecord) -> bool:
        """``rec`` is no longer checked here (started, paused, ended): whether it was waiting or
        under a check (which stops between two pieces; what it found is dropped)."""
        with self._lock:
            if self._waiting.pop(rec.id, None) is not None:
                return True
            stop = self._under_way.pop(rec.id, None)
        if stop is not None:
            stop.set()
            return True
        return False

    async def run(self) -> None:
        """Check the waiting jobs, in as many turns at once as the shared check slots allow,
        until cancelled (the service stops: a check under way is stopped, its job checked at the
        next start by its session)."""
        slots = self.life.manager.shared.check_slots
        try:
            async with anyio.create_task_group() as tg:
                await self._run(slots, tg)
        finally:
            with self._lock:
                ending, self._spare = list(self._processes), []
                self._processes.clear()
            for process in ending:  # (a turn's thread using one sees it end, and stops)
                process.close()

    async def _run(self, slots: CapacityLimiter, tg: anyio.abc.TaskGroup) -> None:
        while True:
            while not self._waiting:
                self._changed = anyio.Event()
                with anyio.move_on_after(CHECK_PROCESS_IDLE if self._spare else math.inf) as idle:
                    await self._changed.wait()
                if idle.cancelled_caught:
                    self._end_spare()
            self._changed = None
            token = object()
            await slots.acquire_on_behalf_of(token)
            if not self._waiting:  # (they left, or a turn took them, while the slot was awaited)
                slots.release_on_behalf_of(token)
                continue
            tg.start_soon(self._turn, token, tg)

    def _take_process(self) -> CheckProcess | None:
        """(A turn's thread.) A check process no turn uses, else one started now; None when none
        can be (the checks are then made in the threads: said once, in the log)."""
        with self._lock:
            if self._spare:
                return self._spare.pop()
            if not self.in_processes:
                return None
        try:
            process = CheckProcess()
        except ProcessEnded as exc:
            log.warning("checks without a session are made in the daemon's threads: %s", exc)
            with self._lock:
                self.in_processes = False
            return None
        with self._lock:
            self._processes.add(process)
        return process

    def _give_back(self, process: CheckProcess) -> None:
        """(A turn's thread.) ``process`` is free for the next turn (unless it ended)."""
        with self._lock:
            if process in self._processes:
                if process.ended:
                    self._processes.discard(process)
                else:
                    self._spare.append(process)

    def _end_spare(self) -> None:
        """The check processes no turn used for ``CHECK_PROCESS_IDLE`` seconds end."""
        with self._lock:
            ending, self._spare = self._spare, []
            self._processes.difference_update(ending)
        for process in ending:
            process.close()

    async def _turn(self, token: object, tg: anyio.abc.TaskGroup) -> None:
        """One worker thread checks waiting jobs back to back for ``CHECK_TURN`` seconds (or
        until none waits), holding the slot ``token`` took; what each found is applied as it
        comes."""
        loop = asyncio.get_running_loop()
        found: deque[_Ended] = deque()  # (the thread's, handed over; under ``_lock``)
        ready = anyio.Event()  # (set when ``found`` gains its first, or the thread ends)
        halt = threading.Event()  # (the turn is over: no job more; cancelled, the one in hand stopped)
        in_hand: set[threading.Event] = set()  # (the stops of the checks taken and not handed over)

        def wake() -> None:  # (a loop callback: the event as it is then)
            ready.set()

        manager = self.life.manager

        def hand(rec: JobRecord, stop: threading.Event, result: CheckFound | Exception | None,
                 saves: CheckSaves | None) -> bool:
            """What a check found handed to the loop; False when the loop is closed."""
            with self._lock:
                first = not found
                found.append((rec, stop, result, None if saves is None else saves.job))
                in_hand.discard(stop)
            if first:
                try:
                    loop.call_soon_threadsafe(wake)
                except RuntimeError:  # (the loop is closed: nobody waits any more)
                    return False
            return True

        def here(asked: _Asked) -> CheckFound | Exception | None:
            """``asked`` checked in this thread (its process ended first)."""
            if asked.stop.is_set():
                return None
            try:
                return check_files(asked.ask, manager.shared.files, asked.stop.is_set,
                                   None if asked.saves is None else asked.saves.save)
            except (TorrentEngineError, OSError) as exc:
                return exc

        def fall_back(flight: dict[int, _Asked], exc: ProcessEnded) -> bool:
            """The process ended: what was asked of it is checked here (``flight`` emptied: the
            next process numbers its own); False when the loop is closed."""
            if not all(a.stop.is_set() for a in flight.values()):
                log.warning("checking %d torrents in a thread: %s", len(flight), exc)
            ended = list(flight.values())
            flight.clear()
            for asked in ended:
                if not hand(asked.rec, asked.stop, here(asked), asked.saves):
                    return False
            return True

        def next_job() -> tuple[JobRecord, threading.Event] | None:
            with self._lock:
                if not self._waiting:
                    return None
                job_id = next(iter(self._waiting))
                rec = self._waiting.pop(job_id)
                stop = self._under_way[job_id] = threading.Event()
                in_hand.add(stop)
            return rec, stop

        def begin(rec: JobRecord, stop: threading.Event, process: CheckProcess | None,
                  flight: dict[int, _Asked]) -> bool:
            """``rec``'s check asked of ``process`` (made here when there is none); False when the
            loop is closed."""
            try:
                saves = _job_saves(manager, rec)
                if process is None:  # (none can be started)
                    found = check_on_disk(manager, rec.info_hash, Path(rec.options.data_path),
                                          manager.shared.files, stop, saves)
                    return hand(rec, stop, found, saves)
                asked = _Asked(rec, stop, _ask(manager, rec.info_hash, rec.options.data_path, saves), saves)
            except (TorrentEngineError, OSError) as exc:
                return hand(rec, stop, exc, None)
            try:
                flight[process.send(asked.ask)] = asked
            except ProcessEnded as exc:
                return fall_back(flight, exc) and hand(rec, stop, here(asked), saves)
            return True

        def answered(process: CheckProcess, flight: dict[int, _Asked]) -> bool:
            """The stops told, the next word of ``process`` taken (``LOOK`` seconds at most);
            False when the loop is closed."""
            try:
                for number, asked in flight.items():
                    if asked.stop.is_set() and not asked.told:
                        process.stop(number)
                        asked.told = True
                word = process.answer(LOOK)
            except ProcessEnded as exc:
                return fall_back(flight, exc)
            if word is None or word[0] not in flight:
                return True
            number, kind, value = word
            if kind == "save":
                flight[number].save(cast(Progress, value))
                return True
            asked = flight.pop(number)
            result = cast("CheckFound | None", value) if kind == "found" else TorrentEngineError(str(value))
            return hand(asked.rec, asked.stop, result, asked.saves)

        def room(flight: dict[int, _Asked]) -> bool:
            """Whether one more may be asked ahead."""
            held = sum(a.rec.total_size for a in flight.values())
            return len(flight) < IN_FLIGHT and held < IN_FLIGHT_BYTES

        def checks_in_turn() -> None:  # (the worker thread)
            end = time.monotonic() + CHECK_TURN
            process: CheckProcess | None = None  # (the turn's, taken at its first check)
            flight: dict[int, _Asked] = {}  # (asked of it, by number, in order)
            try:
                while True:
                    while room(flight) and not halt.is_set() and time.monotonic() < end:
                        picked = next_job()
                        if picked is None:
                            break
                        if process is None or process.ended:  # (none yet, or it ended: another)
                            if process is not None:
                                self._give_back(process)
                            process = self._take_process()
                        if not begin(*picked, process, flight):
                            return
                    if not flight:
                        return
                    assert process is not None  # (``flight`` holds what was asked of it)
                    if not answered(process, flight):
                        return
            finally:
                if process is not None:
                    self._give_back(process)

        async def checking() -> None:
            try:
                await anyio.to_thread.run_sync(checks_in_turn, abandon_on_cancel=True)
            finally:
                halt.set()
                ready.set()

        slots = self.life.manager.shared.check_slots
        try:
            async with anyio.create_task_group() as thread:
                thread.start_soon(checking)
                while not (halt.is_set() and not found):
                    await ready.wait()
                    ready = anyio.Event()
                    with self._lock:
                        ended = list(found)
                        found.clear()
                    for rec, stop, result, job in ended:
                        self._found(rec, stop, result, job, tg)
        finally:
            halt.set()  # (cancelled: the thread, abandoned, ends at its next piece)
            with self._lock:
                stopping = list(in_hand)
            for stop in stopping:
                stop.set()
            slots.release_on_behalf_of(token)
            if self._changed is not None:  # (the runner looks again: its process may be spare now)
                self._changed.set()

    def _found(self, rec: JobRecord, stop: threading.Event, result: CheckFound | Exception | None,
               job: ResumeData | None, tg: anyio.abc.TaskGroup) -> None:
        """A check ended: what it found is applied (or its failure told) unless the job left."""
        stop.set()
        with self._lock:
            ours = self._under_way.get(rec.id) is stop
            if ours:
                del self._under_way[rec.id]
        if not ours or result is None:
            return  # (it left meanwhile: its session checks for itself)
        if isinstance(result, Exception):
            tg.start_soon(self._failed, rec, result)
            return
        self.checked += 1
        tg.start_soon(self._apply, rec, result, job)

    def _ours(self, rec: JobRecord) -> bool:
        """Whether ``rec`` is still a job without a session waiting for this check's word: checking,
        or paused and nothing else while the word waited for its lock (shown paused since)."""
        run = self.life
        shown = JobState.PAUSED if rec.options.paused else JobState.CHECKING
        return run.running and rec.state is shown and run.dormant(rec) and run.jobs.get(rec.id) is rec

    async def _apply(self, rec: JobRecord, found: CheckFound, job: ResumeData | None = None) -> None:
        run = self.life
        async with run.lock(rec.id):
            if not self._ours(rec):
                return
            paused = rec.options.paused
            now = int(time.time())
            resume = dataclasses.replace(  # (its save path as the check resolved it)
                job if job is not None else _job_resume(rec), have=found.have.to_bytes(),
                num_pieces=found.num_pieces, completed_time=now if found.complete else 0, saved_time=now,
                files=found.stamps if found.steady else [])
            if run.manager.keeps_saved:
                try:  # (a row, with the others that end meanwhile: ten thousand files would cost
                    # the kernel up to half a millisecond each on this machine, bench/RESULTS.md)
                    await run.manager.keep_resume(resume.info_hash, resume)
                except StorageError as exc:  # (its session, when it starts, checks the files again)
                    log.warning("job %s (%s): cannot keep its resume data: %s", rec.id, rec.name, exc)
            if paused:  # (shown paused since its pause: with what it has, until resumed)
                if found.complete:
                    rec.done_size = rec.total_size
                await run.save(rec)
                return
            if found.complete and run.manager.config.seed:
                await run.seeds.hold_listener()  # (before it is shown seeding: nothing waits after)
                rec.done_size = rec.total_size
                run.set_state(rec, JobState.SEEDING)
                if self.learn_files is not None:  # (before its state event is delivered)
                    self.learn_files(rec, found.roots)
                if run.may_sleep(rec):
                    await run.seeds.add(rec)  # (the listener held: this waits for nothing)
                    run.sleepers.wake(rec)  # (its first round judges its share limits, then it sleeps)
                    await run.save(rec)
                    return
            try:
                await run.start_dormant(rec)  # (its session trusts what was found, downloads the rest)
            except TorrentEngineError as exc:
                log.warning("job %s (%s) cannot be started after its check: %s", rec.id, rec.name, exc)

    async def _failed(self, rec: JobRecord, exc: BaseException) -> None:
        """The check could not read what it needs: the job stops with the reason."""
        run = self.life
        async with run.lock(rec.id):
            if not self._ours(rec):
                return
            log.warning("job %s (%s): check failed: %s", rec.id, rec.name, exc)
            rec.error = f"check failed: {exc}"
            run.set_state(rec, JobState.ERROR)
            await run.save(rec)
