"""The start of the job service, after the records were read: each unfinished job brought back
from its record, the one owner of which torrents exist: one that runs is added again to the
manager (its saved metainfo and resume data: it goes on from what was verified), told before it
starts what the record holds (paused or not, file priorities, renamed files, edited trackers);
one paused or held back by the queue stays dormant, without a session, until resumed or given a
slot; and so does a complete seed whose files are there (queueing/dormant.py: a peer asking for
it wakes it, and it is announced without a session), and a job added with its data whose check
without a session had not ended (intake/checks.py: it waits in that queue again, and its check goes
on from the progress it saved). The torrents
saved for no unfinished job are forgotten, never started.
"""

from __future__ import annotations

import logging

import anyio
import anyio.abc

from ..engine.manager import SavedTorrents, TorrentManager
from ..engine.turns import Turns
from ..errors import TorrentEngineError
from ..formats.metainfo import Torrent
from .disk.claims import claimed_paths
from .disk.paths import confine
from .lifecycle import JobLifecycle
from .model import FINISHED_STATES, JobState, ProgramEvent, SavePathError
from .queueing.dormant import seed_files_there
from .snapshot import shown_paths
from .store import JobRecord

log = logging.getLogger(__name__)


class Restorer:
    """Brings back the jobs of ``run`` at a start (see the module's docstring)."""

    def __init__(self, run: JobLifecycle) -> None:
        self.run = run

    async def restore(self) -> None:
        """Bring every unfinished job back to life (the manager was entered with no torrent)."""
        unfinished = [r for r in self.run.jobs if r.state not in FINISHED_STATES]
        known = {r.info_hash for r in unfinished}
        # the jobs that run: their metainfo read in one worker-thread hop (a hop per torrent was
        # most of a start with thousands of them); the torrents saved for no job forgotten there
        runs = [r for r in unfinished if not r.options.paused and r.id not in self.run.queue.held]
        start = self.run.clock()
        # (the API answers meanwhile, from the records: 30 000 jobs brought back held the loop
        # 481-627 ms in one turn, 54 ms of it to tell which may stay dormant)
        turns = Turns()
        # the complete seeds that may stay dormant (their files and saved torrent looked at in
        # that hop too: one whose files are gone starts, and stops saying so, as before)
        seeds = []
        for rec in runs:
            await turns.take()
            rec.started_at = start  # (they run from now on, a dormant seed too: ``Job.started_at``)
            if self.run.may_sleep(rec):
                seeds.append(rec)
        # the jobs added with their data whose check without a session had not ended: checked
        # there again, in their turn (those checked before the stop are seeds: not checked again)
        unchecked = [r for r in runs if r.state is JobState.CHECKING and not r.options.seed_mode
                     and r.file_paths is not None]
        metainfo, sleeping, to_check = await anyio.to_thread.run_sync(
            _read_and_tidy, self.run.manager, known, runs, seeds, unchecked)
        self.run.leases.forgive_downtime(self.run.clock())
        confined: dict[str, bool] = {}  # data path -> inside the root (10 000 jobs share a few folders)
        for rec in sorted(self.run.jobs, key=lambda r: r.created_at):
            await turns.take()
            if rec.state in FINISHED_STATES:
                if rec.delete_pending:  # a crash came between the cancel and the clean-up
                    await anyio.to_thread.run_sync(self.run.remove_files, rec)
                    rec.delete_pending = False
                    await self.run.save(rec)
                continue
            first = self.run.jobs.active_id(rec.info_hash)
            if first is not None:  # two unfinished records of one torrent: keep the first
                await self.run.finish(rec, JobState.FAILED, "a duplicate of job " + first)
                continue
            self.run.jobs.bind(rec)
            inside = confined.get(rec.options.data_path)
            if inside is None:  # (a resolve is an lstat per component, on the loop)
                try:
                    confine(self.run.download_root, rec.options.data_path)
                    inside = confined[rec.options.data_path] = True
                except SavePathError:
                    inside = confined[rec.options.data_path] = False
            if not inside:
                await self.run.end_job(rec, JobState.FAILED,
                                    f"its save path {rec.options.data_path} is outside the download root")
                continue
            if rec.file_paths is not None:  # (two jobs that overlap, added before adds were checked)
                paths = claimed_paths(rec.options.data_path, shown_paths(rec) or (), rec.pad_files)
                clash = self.run.overlap(f"job {rec.id} ({rec.name})", rec.id, paths)
                if clash is not None:
                    await self.run.end_job(rec, JobState.FAILED, clash.reason)
                    continue
                self.run.claims.claim(rec.id, paths)
            if rec.options.client is not None and rec.options.client not in self.run.leases:
                await self.run.client_gone(rec)
                continue
            if rec.program_due and rec.options.download_path is None:
                # (stopped once its data had moved out of its incomplete folder, before its
                # completion's program ran: it runs now; still in that folder, it runs once the
                # move ends, disk/relocate.py)
                self.run.run_program(ProgramEvent.COMPLETED, rec, moved=True)
                await self.run.save(rec)
            if rec.options.paused:
                # dormant: its session starts when resumed (one stopped by its disk keeps saying why)
                self.run.set_state(rec, JobState.ERROR if rec.state is JobState.ERROR else JobState.PAUSED)
                continue
            if rec.id in self.run.queue.held:  # (held back since the start: held_at_start)
                self.run.set_state(rec, JobState.QUEUED)  # dormant: its session starts with its slot
                continue
            if rec.id in sleeping:  # dormant: no session until a peer asks for it
                try:
                    await self.run.seeds.add(rec)
                    self.run.writer.as_read(rec)  # (its first round has nothing to save)
                    self.run.sleepers.wake(rec)  # (the first round judges its share limits, then it sleeps)
                    continue
                except (TorrentEngineError, OSError) as exc:  # (no listener: its session says why)
                    log.warning("job %s (%s) cannot wait for peers without a session: %s", rec.id, rec.name,
                                exc)
            if rec.id in to_check:  # dormant: its check goes on (its session starts after it)
                self.run.checks.add(rec)
                continue
            try:
                # (paused when the queue judges it: it resumes the job once checked, in its slot)
                await self.run.start_again(rec, metainfo.get(rec.id))
            except (TorrentEngineError, OSError) as exc:
                log.warning("job %s (%s) cannot be restarted: %s", rec.id, rec.name, exc)
                await self.run.finish(rec, JobState.FAILED, f"cannot be restarted: {exc}")
                continue
            self.run.sync(rec)


def _read_and_tidy(manager: TorrentManager, known: set[str], runs: list[JobRecord], seeds: list[JobRecord],
                   unchecked: list[JobRecord]) -> tuple[dict[str, Torrent], set[str], set[str]]:
    """(In a worker thread.) Forget the torrents saved for no unfinished job (``known``: their
    info-hashes; a job's record was lost, or a crash came after its end); the ids of the jobs of
    ``seeds`` that stay dormant (their saved torrent, resume data and files are there:
    ``_files_there``); the saved metainfo of each other job of ``runs``, by job id (one that
    cannot be read is left out: the job's start reads it again, and says why), but for the ids
    of the jobs of ``unchecked`` checked without a session (their saved torrent there, and no
    resume data, or that of a check cut short: the check goes on from it), which are the third."""
    saved = manager.saved_torrents()  # (one listing: what the forgetting below removes is no job's)
    for key in saved.keys():
        if key.hex() not in known:
            log.warning("torrent %s saved in the state folder has no unfinished job: forgetting it",
                        key.hex())
            manager.forget_saved(key)
    sleeping = {rec.id for rec in seeds if _files_there(saved, rec)}
    to_check = {rec.id for rec in unchecked if rec.info_hash in saved.metainfo
                and (rec.info_hash not in saved.resume or _check_unfinished(manager, rec))}
    out: dict[str, Torrent] = {}
    for rec in runs:
        if rec.id in sleeping or rec.id in to_check:
            continue
        if rec.info_hash not in saved.metainfo:
            continue
        try:
            torrent = manager.saved_metainfo(rec.info_hash)
        except (TorrentEngineError, OSError):
            continue
        if torrent is not None:
            out[rec.id] = torrent
    return out, sleeping, to_check


def _check_unfinished(manager: TorrentManager, rec: JobRecord) -> bool:
    """(Blocking.) Whether ``rec``'s resume data is the progress of a check cut short."""
    data = manager.saved_resume(rec.info_hash)
    return data is not None and data.checked_up_to is not None


def _files_there(saved: SavedTorrents, rec: JobRecord) -> bool:
    """(In a worker thread.) ``seed_files_there`` of ``rec`` from ``saved`` (what the state
    folder keeps, one listing for every job)."""
    return seed_files_there(rec, rec.info_hash in saved.metainfo, rec.info_hash in saved.resume)
