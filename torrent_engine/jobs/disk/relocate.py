"""Moving a job's data: to another save path (``set_location``), into or out of an incomplete
folder (``set_download_path``), and out of the incomplete folder once the download completes;
through the one crash-safe mover (move.py), the job's session restarted at the new place.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path

import anyio

from ...errors import TorrentEngineError
from ...formats.magnet import Magnet
from ...formats.metainfo import Torrent
from ...storage.resume import ResumeData, stamp_files
from ..model import (
    InvalidJobRequest,
    Job,
    JobConflict,
    JobError,
    JobOptions,
    JobStall,
    JobState,
    ProgramEvent,
    SavePathError,
    ServiceStopped,
    StateNotSaved,
)
from ..queueing.rounds import QueueRounds
from ..snapshot import session_setup, shown_paths
from ..store import JobRecord, PendingMove
from .claims import claimed_paths
from .host import DiskHost
from .move import Taking, copy_files, plan_move, recover, remove_sources
from .paths import confine, missing_dirs

log = logging.getLogger("torrent_engine.jobs.relocate")

UNMOVED = "not_moved"  # the stall reason of a job complete in its incomplete folder that cannot leave it


class Mover:
    """Moves the data of the jobs of ``run``; a round of ``rounds`` follows each move (the
    job's check may be over already, its end unheard while the job was busy)."""

    def __init__(self, run: DiskHost, rounds: QueueRounds) -> None:
        self.run = run
        self.rounds = rounds
        self._completing: set[str] = set()  # job ids whose data is moving (or failed to move) once complete
        self._completion_failed: set[str] = set()  # (those of them whose move failed: not tried again)

    async def set_location(self, job_id: str, location: str, *, move: bool = True,
                           keep_existing: bool = False) -> Job:
        """Move the job's files to ``location`` (inside the download root) and go on from there;
        the data is verified again at its new place. A job still downloading into its
        incomplete folder keeps its data there: the new save path is where it moves once
        complete (as qBittorrent's). ``move`` False: nothing is moved, the job's data is looked
        for at ``location`` (Transmission's ``torrent-set-location`` without ``move``).
        ``keep_existing``: a file of the job already at ``location`` is taken there, not
        refused, its copy at the old place left (qBittorrent's ``setLocation``)."""
        await self.run.check_running()
        if not isinstance(location, str) or not location:
            raise InvalidJobRequest("must be a folder inside the download root", "location")
        target = await anyio.to_thread.run_sync(confine, self.run.download_root, location)
        async with self.run.lock(job_id):
            rec = self.run.unfinished(job_id)
            after = dataclasses.replace(rec.options, save_path=str(target), download_path=None)
            if not move:  # (what is there is verified: not taken as complete, as seed mode would)
                after = dataclasses.replace(after, seed_mode=False)
            if move and rec.options.download_path is not None and rec.id not in self._completing:
                after = dataclasses.replace(rec.options, save_path=str(target))
                await self.run.save(rec, dataclasses.replace(rec, options=after), strict=True)
                rec.options, rec.updated_at = after, self.run.clock()
                self.run.publish_updated(rec)
                return self.run.snapshot(rec)
            taking: Taking = "find" if not move else "keep" if keep_existing else "move"
            error = await self._relocate(rec, target, after, taking=taking)
        return await self._relocated(rec, error, "location")

    async def set_download_path(self, job_id: str, path: str) -> Job:
        """Move the data of a job still downloading to the incomplete folder ``path`` (inside the
        download root; "" = none: to its save path), where it stays until complete."""
        await self.run.check_running()
        if not isinstance(path, str):
            raise InvalidJobRequest("must be a folder inside the download root, or \"\"", "download_path")
        try:
            root = self.run.download_root
            folder = None if path == "" else await anyio.to_thread.run_sync(confine, root, path)
        except SavePathError as exc:
            raise SavePathError(exc.reason, "download_path") from exc
        async with self.run.lock(job_id):
            rec = self.run.unfinished(job_id)
            if rec.completed_at is not None or rec.id in self._completing:
                raise JobConflict("the job's download is complete: its data goes to its save path "
                                  "(move it with its location)", "download_path")
            save = Path(rec.options.save_path)
            target = save if folder is None else folder
            after = dataclasses.replace(rec.options, download_path=None if target == save else str(target))
            error = await self._relocate(rec, target, after)
        return await self._relocated(rec, error, "download_path")

    def move_when_complete(self, rec: JobRecord, *, program: bool = False) -> bool:
        """``rec`` completed in its incomplete folder: its data moves to its save path, in the
        task group (one move at a time per job; after a failure, tried again at the next
        start); whether a move is under way. ``program``: the completion's program runs once
        the move ends (moved or not: where the data is then); the record keeps that it waits
        (``program_due``, written with the completion), so a stop before then runs it at the
        next start, once the data is at its save path."""
        if rec.id in self._completing:
            under_way = rec.id not in self._completion_failed
        elif self.run.tg is None:
            return False
        else:
            self._completing.add(rec.id)
            self.run.tg.start_soon(self._move_completed, rec)
            under_way = True
        if under_way and program:
            rec.program_due = True
        return under_way

    async def _move_completed(self, rec: JobRecord) -> None:
        """Move a complete job's data from its incomplete folder to its save path, through the
        one mover (crash-safe, across file systems); it seeds from there. Its pieces were
        verified: the resume data comes along, so it is not checked again."""
        error: Exception | None = None
        async with self.run.lock(rec.id):
            session = self.run.session_of(rec)
            complete = session is not None and session.complete
            if not complete or rec.options.download_path is None or rec.id in self.run.busy:
                self._completing.discard(rec.id)  # (ended, or changed meanwhile: asked again if need be)
                await self._run_due_program(rec)
                return
            log.info("job %s (%s) is complete: moving it from %s to %s", rec.id, rec.name,
                     rec.options.download_path, rec.options.save_path)
            try:
                root = self.run.download_root
                target = await anyio.to_thread.run_sync(confine, root, rec.options.save_path)
                after = dataclasses.replace(rec.options, download_path=None)
                error = await self._relocate(rec, target, after, keep_verified=True, taking="same")
            except JobError as exc:
                error = exc
            if error is not None:
                self._completion_failed.add(rec.id)
                log.warning("job %s (%s) is complete but stays in %s: cannot move it to %s: %s", rec.id,
                            rec.name, rec.options.data_path, rec.options.save_path, error)
                why = error.reason if isinstance(error, JobError) else str(error)
                self._show_unmoved(rec, JobStall(
                    reason=UNMOVED, since=self.run.clock(),
                    message=f"complete, but its files stay in {rec.options.data_path}: they cannot "
                            f"move to {rec.options.save_path}: {why}"))
        if error is None:
            self._completing.discard(rec.id)
        await self._run_due_program(rec)
        await self.rounds.enforce()

    async def _run_due_program(self, rec: JobRecord) -> None:
        """The completion's program of ``rec``, if it waited for this move (its files are where
        the job's data is now); the record written without ``program_due``."""
        if rec.program_due:
            self.run.run_program(ProgramEvent.COMPLETED, rec, moved=True)
            await self.run.save(rec)

    async def _relocated(self, rec: JobRecord, error: Exception | None, where: str) -> Job:
        """After a move asked by a client: the queue's word, and the move's failure raised."""
        # (its check may be over already, its end unheard while the job was busy: the queue's word)
        await self.rounds.enforce()
        if isinstance(error, (JobConflict, StateNotSaved)):
            raise error  # (the job goes on where it was)
        if error is not None:
            raise JobConflict(f"cannot move the files: {error}", where) from error
        return self.run.snapshot(rec)

    async def _relocate(self, rec: JobRecord, target: Path, after: JobOptions, *,
                        keep_verified: bool = False, taking: Taking = "move") -> Exception | None:
        """Move the data of ``rec`` (the caller holds its lock) from where it is to ``target``,
        the job's options becoming ``after`` (whose ``data_path`` is ``target``) as the move
        commits, and go on from there (``taking``: what it does with files already there). A
        refusal before anything moved is raised; a failure of the move itself is returned (the
        job goes on where it was)."""
        old = Path(rec.options.data_path)
        moving: list[str] = []  # the paths its files take at the new place
        if rec.file_paths is not None and old != target:
            moving = claimed_paths(target, shown_paths(rec) or (), rec.pad_files)
            clash = self.run.overlap(f"job {rec.id} ({rec.name})", rec.id, moving)
            if clash is not None:
                raise clash
        session = self.run.session_of(rec)
        # (a job without a session, paused or a dormant seed, gets one at the new place alone)
        dormant = session is None and self.run.dormant(rec)
        if (session is None and not dormant) or rec.id in self.run.busy:
            raise JobConflict("cannot move the job now: it is being restarted or ended")
        if old == target:
            await self.run.save(rec, dataclasses.replace(rec, options=after), strict=True)
            rec.options = after
            return None
        source: Torrent | Magnet | None = None  # (a dormant job's: read once it leaves its sleep)
        if session is not None:
            source = session.torrent if session.has_metadata else session.magnet
            if source is None:
                raise JobConflict("cannot move the job now: it has neither metainfo nor a magnet")
        # (both places are the job's while it moves: an add meanwhile cannot take either)
        self.run.claims.claim(rec.id, [*claimed_paths(old, shown_paths(rec) or (), rec.pad_files), *moving])
        created = tuple(await anyio.to_thread.run_sync(missing_dirs, self.run.download_root, target))
        self.run.busy.add(rec.id)
        error: Exception | None = None
        try:
            with anyio.CancelScope(shield=True):
                if source is not None and session is not None:
                    setup = session_setup(rec)
                    self.run.refresh_counters(rec, session)
                    # (its metainfo and resume data, for the old place, stay until the move is
                    # committed: a crash before that finds the job whole where it was)
                    await self.run.manager.remove(session.info_hash, keep_saved=True)
                else:  # (a job that cannot be read fails: the refusal says why)
                    source, setup = await self.run.leave_dormant(rec)
                try:
                    await self._move_files(rec, old, target, created, after, keep_verified=keep_verified,
                                           taking=taking)
                except (OSError, JobConflict, StateNotSaved) as exc:
                    error = exc
                    target = old  # nothing was moved: go on where it was
                    created = rec.created_dirs
                    after = rec.options
                rec.options = after
                rec.created_dirs = created
                self.run.claim(rec)
                # (it counts on from the job's totals: the resume data that held them went
                # with the old session, and is for the old place anyway)
                self.run.waking.add(rec.id)  # (as it was until its new session says what it does)
                try:
                    await self.run.add_session(rec, source, setup, target, saved=session is None)
                except (TorrentEngineError, OSError) as exc:
                    if not self.run.running:  # (the service stopped meanwhile: it starts at its next)
                        raise ServiceStopped(f"the service stopped before the job could start again at "
                                             f"{target}: it starts there when the service starts",
                                             "location") from exc
                    # (never a job without a session that claims to run: it fails, saying why)
                    log.warning("job %s (%s) cannot start again at %s: %s", rec.id, rec.name, target, exc)
                    await self.run.finish(rec, JobState.FAILED, f"cannot start again at {target}: {exc}")
                    raise JobConflict(f"the job cannot start again at {target}: {exc}",
                                      "location") from exc
                if error is None and rec.state is JobState.ERROR:  # (what stopped it was at the old
                    # place: stopped as it was, until its new session says what it does there)
                    self.run.set_state(rec, JobState.PAUSED if rec.options.paused else JobState.QUEUED)
                rec.updated_at = self.run.clock()
                await self.run.save(rec)
        finally:
            self.run.busy.discard(rec.id)
        if error is None:
            self._show_unmoved(rec, None)  # (it is where its options say)
        self.run.sync(rec, force_save=True)
        self.run.publish_updated(rec)
        return error

    async def _move_files(self, rec: JobRecord, old: Path, target: Path, created: tuple[str, ...],
                          after: JobOptions, *, keep_verified: bool = False,
                          taking: Taking = "move") -> None:
        """Move the files of ``rec`` (its session stopped) from ``old`` to ``target``, the move
        kept in its record from the first file moved to the last original removed, and committed
        (the record's options become ``after``: its data at ``target``) once every file is whole
        there; a crash at any moment is undone or finished at the next start (``_recover_moves``).
        A failure (raised) leaves every file at ``old``, the record pointing there.
        ``keep_verified``: the resume data (its verified pieces, each file's size and time, which
        a move keeps; those of a file taken there for its same bytes, "same") is written again for
        ``target`` after the commit, so the data is not checked again there; else it is verified
        again at its new place."""
        files, found, dropped = await anyio.to_thread.run_sync(plan_move, old, target, rec.file_paths or [],
                                                               taking)
        pending = PendingMove(str(old), str(target), tuple(files), created, tuple(dropped))
        if not files and not dropped:  # (nothing on disk yet: the record alone moves, durably or not)
            await self.run.save(rec, dataclasses.replace(rec, options=after), strict=True)
        else:
            # durable before a file moves (``StateNotSaved`` when it cannot be: nothing moved)
            await self.run.save(rec, dataclasses.replace(rec, moving=pending), strict=True)
            rec.moving = pending
            self._moving_shown(rec)
            try:
                await anyio.to_thread.run_sync(copy_files, old, target, files)
            except OSError:
                rec.moving = None
                self._moving_shown(rec)
                await self.run.save(rec)
                raise
        # the resume data (for the old place) goes first, or a crash after the commit would
        # start the torrent again trusting what was verified where it no longer is
        manager = self.run.manager
        resume = manager.resume_keeper(rec.info_hash)
        kept: ResumeData | None = None
        if resume is not None:
            if keep_verified:
                kept = await anyio.to_thread.run_sync(manager.saved_resume, rec.info_hash)
            await anyio.to_thread.run_sync(manager.forget_resume, rec.info_hash)  # (its file or row)
        rec.options = after
        rec.created_dirs = created
        if rec.preexisting is not None:  # (the user's there: those it brought, and those it found)
            moved = set(files)
            rec.preexisting = tuple(dict.fromkeys((*(p for p in rec.preexisting if p in moved), *found)))
        await self.run.save(rec)  # the commit
        if kept is not None and resume is not None:  # (a crash before this: checked at the start)
            kept.save_path = str(target)
            if dropped:  # (the files it took there hold the bytes verified: their stamps now)
                await anyio.to_thread.run_sync(_restamp, kept, target, rec.file_paths or [], dropped)
            await resume.save(kept)
        if files or dropped:
            await anyio.to_thread.run_sync(remove_sources, pending)
            rec.moving = None
            self._moving_shown(rec)

    def _show_unmoved(self, rec: JobRecord, why: JobStall | None) -> None:
        """``rec``'s data stays in its incomplete folder, complete, for the reason ``why`` (None:
        not any more); lists, the event stream and the web UI show it as its stall."""
        if rec.unmoved != why:
            rec.unmoved = why
            rec.updated_at = self.run.clock()
            self._moving_shown(rec)

    def _moving_shown(self, rec: JobRecord) -> None:
        """``rec`` began or ended moving its files: lists and the event stream show it."""
        self.run.sleepers.unview(rec)
        self.run.marks.mark(rec)
        self.run.publish_updated(rec)

    async def recover_moves(self) -> None:
        """Before the jobs' torrents are added again at a start: a move a crash cut short is finished (its
        record points at the new place: every file is whole there) or undone (it points at the
        old one, whole there); the job then starts where its record points."""
        for rec in self.run.jobs:
            move = rec.moving
            if move is None:
                continue
            committed = rec.options.data_path == move.new
            log.warning("job %s (%s): %s its move from %s to %s, cut short", rec.id, rec.name,
                        "finishing" if committed else "undoing", move.old, move.new)
            await anyio.to_thread.run_sync(recover, move, committed)
            rec.moving = None
            await self.run.save(rec)


def _restamp(kept: ResumeData, target: Path, paths: Sequence[Sequence[str]], taken: Sequence[str]) -> None:
    """The stamps of the files ``taken`` at ``target`` (the same bytes as those verified) in ``kept``."""
    names = set(taken)
    for i, parts in enumerate(paths):
        if "/".join(parts) in names and i < len(kept.files):
            kept.files[i] = stamp_files([target.joinpath(*parts)])[0]
