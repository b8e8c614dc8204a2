"""The start of the job service, after the records were read: which saved torrents the manager
reloads (not those of jobs paused or held back by the queue: those stay dormant), which it
reloads paused (those the queue judges), what it tells a reloaded session before it starts
(renamed files, edited trackers), and each unfinished job brought back once it has.
"""

from __future__ import annotations

import logging

import anyio
import anyio.abc

from ..errors import TorrentEngineError
from ..session import Session
from .claims import claimed_paths
from .lifecycle import JobLifecycle, edited_paths_and_trackers
from .model import FINISHED_STATES, JobState, SavePathError
from .paths import confine
from .store import JobRecord

log = logging.getLogger(__name__)


class Restorer:
    """Brings back the jobs of ``run`` at a start (see the module's docstring)."""

    def __init__(self, run: JobLifecycle) -> None:
        self.run = run
        self._paused_hashes: set[str] = set()  # torrents the manager does not reload (see reloads)
        self._judged_hashes: set[str] = set()  # torrents it reloads paused (see reloads_paused)
        self.edited_at_start: dict[str, JobRecord] = {}  # info-hash -> a job with renamed files or trackers

    async def restore(self) -> None:
        """Bring every unfinished job back to life after the manager reloaded its torrents."""
        known = {r.info_hash for r in self.run.jobs if r.state not in FINISHED_STATES}
        # a torrent with no job (its record was lost, or it finished)
        for session in self.run.manager.sessions:
            if session.info_hash_hex not in known:
                log.warning("torrent %s has no unfinished job; stopping it", session.name)
                await self.run.manager.remove(session.info_hash)
        self.run.leases.forgive_downtime(self.run.clock())
        confined: dict[str, bool] = {}  # data path -> inside the root (10 000 jobs share a few folders)
        for rec in sorted(self.run.jobs, key=lambda r: r.created_at):
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
            early = self.run.early_trackers.pop(rec.info_hash, None)
            if early is not None:
                self.run.tracker_news.setdefault(rec.id, {}).update(early)
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
                clash = self.run.overlap(f"job {rec.id} ({rec.name})", rec.id, claimed_paths(
                    rec.options.data_path, rec.file_paths, rec.pad_files))
                if clash is not None:
                    await self.run.end_job(rec, JobState.FAILED, clash.reason)
                    continue
                self.run.claim(rec)
            if rec.options.client is not None and rec.options.client not in self.run.leases:
                await self.run.client_gone(rec)
                continue
            found = self.run.manager.get(rec.info_hash)
            if found is None and rec.options.paused:
                # dormant: its session starts when resumed (one stopped by its disk keeps saying why)
                self.run.set_state(rec, JobState.ERROR if rec.state is JobState.ERROR else JobState.PAUSED)
                continue
            if found is None and rec.id in self.run.queue.held:  # (held back since the start: _note_dormant)
                self.run.set_state(rec, JobState.QUEUED)  # dormant: its session starts with its slot
                continue
            try:
                session = found if found is not None else await self.run.start_again(rec)
                session.add_peers(rec.options.peers)  # (the manager reloads a torrent without them)
                # the record holds what was asked (saved before it was acknowledged), whatever
                # the torrent's resume data says
                if rec.options.paused and not session.paused:
                    await session.pause()
                elif not rec.options.paused and session.paused and self.run.queue.judges(rec):
                    self.run.queue.held.add(rec.id)  # (reloaded paused: the queue resumes it once checked)
                elif not rec.options.paused and session.paused:
                    await self.run.resume_session(rec, session)
                self.run.apply_options(rec, session)
            except (TorrentEngineError, OSError) as exc:
                log.warning("job %s (%s) cannot be restarted: %s", rec.id, rec.name, exc)
                await self.run.finish(rec, JobState.FAILED, f"cannot be restarted: {exc}")
                continue
            self.run.sync(rec)
        self.run.restoring = False
        self.run.early_trackers.clear()
        self.edited_at_start.clear()

    def reloads(self, info_hash: bytes) -> bool:
        """Whether the manager starts the saved torrent ``info_hash`` again on entry: not when
        every unfinished job of it is paused (those stay dormant until resumed)."""
        return info_hash.hex() not in self._paused_hashes

    def reloads_paused(self, info_hash: bytes) -> bool:
        """Whether the manager starts the saved torrent ``info_hash`` paused: when the queue
        judges its job. The start-up judgement of the records let it run, but that took a job
        as complete when its record said so; the queue resumes it once it is checked and has a
        slot (started running, a job the queue holds once checked would announce and dial until
        the queue's next round)."""
        return info_hash.hex() in self._judged_hashes

    def note_dormant(self, held: set[str]) -> None:
        """Before the manager is entered: the torrents whose unfinished jobs are all paused, or
        held back by the queue (the ids ``held``); those stay dormant, without a session, until
        resumed or given a slot (the queue holds the ``held`` from now on). And those the queue
        judges, which the manager starts paused (``reloads_paused``)."""
        self.run.queue.held.update(held)
        paused: dict[str, bool] = {}
        judged: set[str] = set()
        for rec in self.run.jobs.unfinished():
            waits = rec.options.paused or rec.id in held
            paused[rec.info_hash] = paused.get(rec.info_hash, True) and waits
            if not waits and self.run.queue.judges(rec):
                judged.add(rec.info_hash)
        self._paused_hashes = {h for h, p in paused.items() if p}
        self._judged_hashes = judged
        self.edited_at_start = {r.info_hash: r for r in self.run.jobs.unfinished()
                                 if r.renamed or r.tracker_tiers is not None}

    def prepare_reloaded(self, session: Session) -> None:
        """A torrent the manager reloads at a start, before it starts: its job's renamed files
        and edited trackers (the record owns them; the session's storage opens the files there,
        so their resume data is trusted as it was, no check from scratch)."""
        rec = self.edited_at_start.get(session.info_hash_hex)
        if rec is not None:
            edited_paths_and_trackers(rec, session)
