"""The engine's news to the jobs: one typed handler per kind of engine event, subscribed by
class on the manager's bus. A tracker's answer is noted, a stats update becomes a
``job.progress``, a magnet's metadata applies the job's selection at once (before its session
opens its files, which waits for ``before_check``: the files held already are placed then), a
skipped file a reader opened is wanted by the job, a session's news changes the job's state; any
news of a job's session wakes it for the timers (queueing/awake.py).
"""

from __future__ import annotations

import logging
import math
import time
import weakref
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import anyio.abc

from ..errors import TorrentEngineError
from ..events import (
    Event,
    EventBus,
    PeerConnected,
    PeerDisconnected,
    PieceCompleted,
    PieceHashFailed,
    SessionChecking,
    SessionCompleted,
    SessionFailed,
    SessionFileWanted,
    SessionMetadataReceived,
    SessionPaused,
    SessionPieceLayersReceived,
    SessionResumed,
    SessionStalled,
    SessionStarted,
    SessionStopped,
    StatsUpdate,
    TrackerFailed,
    TrackerSuccess,
)
from ..formats.metainfo import Torrent
from ..session import Session
from .disk.claims import claimed_paths
from .disk.paths import existing_files
from .exclusions import excluded_priorities
from .lifecycle import JobLifecycle
from .model import JobProgress, JobState, ProgramEvent
from .scrapes import with_scrape
from .snapshot import learn_layout, tracker_heard
from .store import JobRecord
from .validate import files_refusal

PROGRESS_INTERVAL = 0.25  # seconds between two job.progress events of one job (at most 4 a second)
# the engine's news, by kind: a session's (besides its metadata, which has its own handler), a
# tracker's, and what only wakes a job for the timers (the DHT's is of no torrent)
SESSION_NEWS: tuple[type[Event], ...] = (
    SessionStarted, SessionChecking, SessionPieceLayersReceived, SessionPaused, SessionResumed,
    SessionCompleted, SessionStopped, SessionFailed, SessionStalled)
TRACKER_NEWS = (TrackerSuccess, TrackerFailed)
OTHER_NEWS: tuple[type[Event], ...] = (PieceCompleted, PieceHashFailed, PeerConnected, PeerDisconnected)

log = logging.getLogger(__name__)


class EngineNews:
    """What the engine says of the jobs of ``run``, applied to them (see the module's docstring)."""

    def __init__(self, run: JobLifecycle) -> None:
        self.run = run
        # the files of a job held whole already, placed before its check (the deduplication's
        # ``place``: the bytes placed); a magnet's, in ``before_check``
        self.place: Callable[[JobRecord, Torrent], Awaitable[int]] | None = None
        self._arrived: weakref.WeakSet[Session] = weakref.WeakSet()  # (their metadata applied early)

    def listen(self, bus: EventBus) -> None:
        """Subscribe to the engine's news, one typed handler per kind of event: a tracker's
        answer is noted, a stats update becomes a ``job.progress``, a session's news changes the
        job's state; any news of a job's session wakes it for the timers."""
        for tracker_kind in TRACKER_NEWS:
            bus.subscribe(tracker_kind, self._on_tracker)
        bus.subscribe(StatsUpdate, self._on_stats)
        bus.subscribe(SessionMetadataReceived, self._on_metadata_received)
        bus.subscribe(SessionFileWanted, self._on_file_wanted)
        for session_kind in SESSION_NEWS:
            bus.subscribe(session_kind, self._on_session_news)
        for other_kind in OTHER_NEWS:
            bus.subscribe(other_kind, self._on_news)

    def _on_tracker(self, event: TrackerSuccess | TrackerFailed) -> None:
        """Bookkeeping only, so kept while the job is busy too: the first answer often comes
        while the add is in flight, and would otherwise be unseen until the next announce."""
        rec = self.run.jobs.get(self.run.jobs.active_id(event.info_hash))
        if rec is not None:
            news = self.run.tracker_news.setdefault(rec.id, {})
            was = news.get(event.url)
            news[event.url] = with_scrape(tracker_heard(event, self.run.clock(), was), was)
            self.run.live_views.pop(rec.id, None)
            self.run.sleepers.unview(rec)
            self.run.marks.mark(rec)

    def _woken(self, event: Event) -> JobRecord | None:
        """The job ``event`` is news of, woken for the timers; None when there is none or it is
        busy (being added, restarted or ended: its news waits), or the service is not running."""
        if not self.run.running:
            return None
        rec = self.run.jobs.get(self.run.jobs.active_id(event.info_hash))
        if rec is None:
            return None
        self.run.sleepers.wake(rec)
        self.run.marks.mark(rec)  # (its session moved: what its views show may have, busy or not)
        return None if rec.id in self.run.busy else rec

    def _on_news(self, event: Event) -> None:
        """News that changes nothing of the job's record (a peer, a piece): it wakes the job."""
        self._woken(event)

    def _on_stats(self, event: StatsUpdate) -> None:
        rec = self._woken(event)
        if rec is not None:
            self._progress(rec)

    def _progress(self, rec: JobRecord) -> None:
        """A ``job.progress`` for ``rec`` when what it shows moved, at most every
        ``PROGRESS_INTERVAL``: from a session's stats (published when its numbers moved), a
        check's progress or a new stall reason (a session with nothing moving does not tick)."""
        now = time.monotonic()
        if now - self.run.last_progress.get(rec.id, -math.inf) >= PROGRESS_INTERVAL:
            self.run.last_progress[rec.id] = now
            self.run.refresh_counters(rec)
            if not self.run.events.listened(JobProgress):  # (no stream, no library subscriber:
                self.run.published.pop(rec.id, None)  # the job's view is not made for nobody)
                return
            job = self.run.snapshot(rec)
            shown = (job.state.value, job.progress, job.done_size, job.downloaded, job.uploaded,
                     job.download_rate, job.upload_rate, job.peers, job.seeds, job.stall)
            if shown != self.run.published.get(rec.id):  # an idle job sends nothing
                self.run.published[rec.id] = shown
                self.run.events.publish(JobProgress(info_hash=rec.info_hash, job=job))

    def _on_metadata_received(self, event: SessionMetadataReceived) -> None:
        """While its add is in flight a job shows no news before job.added, but a magnet's
        metadata may come first and cannot wait: the selection must apply before the first
        request and the files on disk be known before the first write (cancel deletes the rest)."""
        rec = self.run.jobs.get(self.run.jobs.active_id(event.info_hash))
        if self.run.running and rec is not None and rec.id in self.run.busy and rec.id in self.run.starting:
            self.run.sleepers.wake(rec)
            self.run.marks.mark(rec)
            self._on_metadata(rec)
            return
        rec = self._woken(event)
        if rec is not None:
            self._on_metadata(rec)
            self._on_session_state(rec, check_ended=True)

    def _on_file_wanted(self, event: SessionFileWanted) -> None:
        """A reader opened on a file the job skipped, which its session downloads since: the job
        wants it from now on (its record, which owns the file priorities). A busy job's session
        is being replaced or ended: the new one is told the record's."""
        rec = self._woken(event)
        session = self.run.session_of(rec) if rec is not None else None
        if rec is not None and session is not None and session.has_metadata:
            self.run.want_file(rec, session, event.index)

    def _on_session_news(self, event: Event) -> None:
        rec = self._woken(event)
        if rec is not None:
            self._on_session_state(rec, check_ended=isinstance(event, SessionStarted))
            if isinstance(event, (SessionChecking, SessionStalled)):
                self._progress(rec)  # (what a job.progress shows moved: no stats event says it)

    def _on_session_state(self, rec: JobRecord, *, check_ended: bool) -> None:
        """The session's state may have changed: the job's follows; ``check_ended``: its
        start-up check is over (or, a magnet's metadata, has just begun: its check may be none,
        and a session held for the queue's word pauses at once after it)."""
        self.run.sync(rec)
        if check_ended and rec.id in self.run.queue.held:
            self.run.round_soon()  # its check is over: the queue's word, now

    def _on_metadata(self, rec: JobRecord) -> None:
        """A magnet's metadata came (the add may be in flight): see ``_metadata_arrived``; once
        a session, which ``before_check`` may have applied it for already."""
        session = self.run.session_of(rec)
        if session is not None and session.has_metadata and self.run.tg is not None \
                and session not in self._arrived:
            self._metadata_arrived(rec, session)

    async def before_check(self, info_hash: str, torrent: Torrent) -> None:
        """A magnet's metadata is in and its session waits for this before it opens its files
        (``TorrentManager.before_check``): its job applies it now, not when the news comes
        (``_metadata_arrived``), learns which of its files were on disk before it, and has each
        wanted file it holds whole already placed (``place``: a file held by a complete job or
        an indexed folder; the check that follows verifies it, as an add's, docs/dedup.md). A
        job otherwise busy (its session being replaced) hears it from the news."""
        rec = self.run.jobs.get(self.run.jobs.active_id(info_hash))
        session = self.run.session_of(rec) if rec is not None else None
        if rec is None or session is None or not session.has_metadata or not self.run.running \
                or self.run.tg is None or rec.id in self.run.busy and rec.id not in self.run.starting:
            return
        fresh, stopping = rec.preexisting is None, rec.stop_condition == "metadata_received"
        self._arrived.add(session)
        if not self._metadata_arrived(rec, session, look=False) or not fresh:
            return
        await self._find_existing(rec, torrent)  # (saved before a file is placed: a cancel keeps those)
        if self.place is None or stopping or rec.options.seed_mode:  # (its owner says all is there)
            return
        try:
            placed = await self.place(rec, torrent)
        except (TorrentEngineError, OSError) as exc:  # (what it would have taken is downloaded)
            log.warning("job %s (%s): none of its files taken from files held: %s", rec.id, rec.name, exc)
            return
        if placed:
            rec.dedup_bytes = placed
            await self.run.save(rec)

    async def _find_existing(self, rec: JobRecord, torrent: Torrent) -> None:
        """The job's files on disk before it wrote any (a cancel's delete keeps them)."""
        stored = [f.path for f in torrent.files if not f.pad and "l" not in f.attr]
        save_path = Path(rec.options.data_path)
        rec.preexisting = tuple(await anyio.to_thread.run_sync(existing_files, save_path, stored))
        await self.run.save(rec)

    def _metadata_arrived(self, rec: JobRecord, session: Session, *, look: bool = True) -> bool:
        """A magnet's metainfo is here: the file selection applies at once (this runs before the
        session's first request, which waits for its check), the rest in the task group (its
        files on disk looked for, unless ``look`` is false: the caller's). False: refused."""
        assert self.run.tg is not None
        torrent = session.torrent
        refusal = files_refusal(rec.options.files, torrent) if rec.options.files is not None else None
        if refusal is not None:
            refusal = f"files: {refusal}"
        else:
            paths = claimed_paths(rec.options.data_path, [f.path for f in torrent.files],
                                  [i for i, f in enumerate(torrent.files) if f.pad])
            clash = self.run.overlap(f"job {rec.id} ({torrent.name})", rec.id, paths)
            refusal = clash.reason if clash is not None else None
        if refusal is not None:
            if rec.id in self.run.starting:
                self.run.starting[rec.id] = refusal  # ended once its add has returned
                return False
            self.run.busy.add(rec.id)
            self.run.tg.start_soon(self.run.end, rec, JobState.FAILED, refusal)
            return False
        settings = self.run.settings
        if settings.excluded_file_names_enabled and rec.options.files is None and rec.file_priorities is None:
            # (the files it names it does not download, as an add of the torrent's metainfo)
            rec.file_priorities = excluded_priorities(torrent, settings.excluded_file_names)
        learn_layout(rec, torrent)
        self.run.claim(rec)
        self.run.apply_options(rec, session)
        if rec.stop_condition == "metadata_received":  # (its metainfo known: no further, as its add
            self.run.stop_met(rec)  # asked; the pause ends the condition)
        if rec.preexisting is not None:
            return True  # known from before a restart (recomputed, the job's own files would count)
        self.run.exported(ProgramEvent.ADDED, rec, torrent)  # (copied as an add's with its metainfo)
        if look:
            self.run.tg.start_soon(self._find_existing, rec, torrent)
        return True
