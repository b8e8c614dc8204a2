"""The names of running jobs' incomplete files kept as ``partial_file_suffix`` says (``partial.py``):
a job's files are looked at whole when its download or seeding begins (its check over) and when
the setting changes — each file that holds bytes, is not complete and was not on disk before the
job goes under the suffix, the others under their names — and each takes its name back when its
session says its last piece is verified. One task does the looks, one job at a time, each under
the job's lock; a rename the disk refuses (a file there already) is logged and leaves the names
as they were. A paused or queued job's files are looked at too when the setting changes (by its
paused session, or by what its record saved of each file without one), and a seed's with unwanted
files (one of them not complete carries the suffix, as qBittorrent's; a dormant seed by its
record's word). A completion's program waits for the look its completion asked (a script then
finds every file under its name)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Collection, Sequence
from functools import partial
from pathlib import Path

import anyio

from ...errors import TorrentEngineError
from ...storage.paths import real_path
from ...storage.rename import move_files
from ..model import JobError, JobState, JobStateChanged, ProgramEvent
from ..snapshot import actual_paths, shown_paths
from ..store import JobRecord
from ..tuning.settings import ServiceSettings
from .host import DiskHost
from .partial import suffixable
from .paths import existing_files

__all__ = ["PartialNames"]

log = logging.getLogger(__name__)

_RUNNING = (JobState.DOWNLOADING, JobState.SEEDING)
_STOPPED = (JobState.PAUSED, JobState.QUEUED)  # (renamed when the setting changes, as qBittorrent does)


class PartialNames:
    """Renames the incomplete files of ``run``'s jobs (see the module's docstring)."""

    def __init__(self, run: DiskHost) -> None:
        self.run = run
        self._whole: set[str] = set()  # the jobs whose files are looked at whole next
        self._done: dict[str, set[int]] = {}  # job id -> the files its session said complete since
        self._programs: dict[str, bool] = {}  # job id -> its completion's program waits (``moved``)
        self._released: set[str] = set()  # (their program runs now)
        self._working = False

    def listen(self, settings_watchers: list[Callable[[ServiceSettings, ServiceSettings], None]]) -> None:
        """Follow the jobs' states and the settings' changes."""
        self.run.events.subscribe(JobStateChanged, self._on_state)
        settings_watchers.append(self._settings_changed)

    def _on_state(self, event: JobStateChanged) -> None:
        if event.new in _RUNNING or event.new is JobState.COMPLETED:
            rec = self.run.jobs.get(event.job.id)
            if rec is not None and (rec.partial or self.run.settings.partial_file_suffix):
                self._ask(rec.id)

    def _settings_changed(self, before: ServiceSettings, after: ServiceSettings) -> None:
        if before.partial_file_suffix == after.partial_file_suffix:
            return
        for rec in self.run.jobs.unfinished():  # (a complete one has none to rename)
            if rec.state in (*_RUNNING, *_STOPPED) and (rec.partial or rec.done_size < rec.total_size
                                                        or rec.skips_files):
                self._ask(rec.id)  # (a seed's unwanted file may be incomplete: as qBittorrent's, suffixed)

    def program_waits(self, rec: JobRecord, moved: bool) -> bool:
        """Whether the program of ``rec``'s completion waits for its files' names (some carry the
        suffix): it runs once they are renamed, or the disk refused it."""
        if not rec.partial or rec.id in self._released:
            return False
        self._programs[rec.id] = moved
        self._ask(rec.id)
        return True

    def _file_done(self, job_id: str, index: int) -> None:
        """(The session's, as a piece passes.) File ``index`` of the job is complete."""
        self._done.setdefault(job_id, set()).add(index)
        self._start()

    def _ask(self, job_id: str) -> None:
        self._whole.add(job_id)
        self._start()

    def _start(self) -> None:
        if not self._working and self.run.tg is not None and self.run.running:
            self._working = True
            self.run.tg.start_soon(self._work)

    async def _work(self) -> None:
        try:
            while self._whole or self._done:
                job_id = next(iter(self._whole)) if self._whole else next(iter(self._done))
                whole = job_id in self._whole
                self._whole.discard(job_id)
                done = self._done.pop(job_id, set())
                try:
                    await self._settle(job_id, whole, done)
                except (JobError, TorrentEngineError, OSError) as exc:
                    log.warning("job %s: its incomplete files' names not changed: %s", job_id, exc)
                finally:
                    self._program(job_id)
        finally:
            self._working = False

    def _program(self, job_id: str) -> None:
        """The completion's program of the job, if it waited for the look just made."""
        moved = self._programs.pop(job_id, None)
        rec = self.run.jobs.get(job_id)
        if moved is not None and rec is not None:
            self._released.add(job_id)
            try:
                self.run.run_program(ProgramEvent.COMPLETED, rec, moved=moved)
            finally:
                self._released.discard(job_id)

    async def _settle(self, job_id: str, whole: bool, done: set[int]) -> None:
        """Job ``job_id``'s files renamed as they should be named: all of them looked at
        (``whole``), or the files ``done`` its session said complete taking their names; a job
        that ended complete (a service that does not seed), each wanted file, on disk."""
        async with self.run.lock(job_id):
            rec = self.run.jobs.get(job_id)
            shown = shown_paths(rec) if rec is not None else None
            if rec is None or shown is None or rec.file_sizes is None or rec.moving is not None:
                return
            session = self.run.session_of(rec)
            if rec.state is JobState.COMPLETED:  # (no session: its wanted files are whole)
                suffix, priorities = rec.partial_suffix, rec.file_priorities or ()
                target = tuple(i for i in rec.partial if i < len(priorities) and priorities[i] <= 0)
            elif rec.id in self.run.busy or not (rec.state in _RUNNING or whole and rec.state in _STOPPED):
                return
            elif session is None or not session.has_metadata:  # (stopped, or a dormant seed)
                suffix, saved = self.run.settings.partial_file_suffix, rec.file_done  # (its record's word)
                if rec.state is JobState.DOWNLOADING or not whole or rec.preexisting is None:
                    return
                if suffix and (saved is None or len(saved) != len(shown)):
                    return  # (nothing saved of each file: renamed when it runs)
                target = tuple(i for i in _suffixable(rec, shown, rec.preexisting)
                               if saved[i] < rec.file_sizes[i]) if saved is not None and suffix else ()
            elif whole:
                suffix = self.run.settings.partial_file_suffix
                owned = rec.preexisting  # (a file that was on disk before the job stays as it is)
                if owned is None:  # (a magnet's, not looked at yet)
                    owned = tuple(await anyio.to_thread.run_sync(
                        existing_files, Path(rec.options.data_path), list(shown)))
                files = _suffixable(rec, shown, owned)
                complete = set(session.watch_files(files if suffix else (), partial(self._file_done, job_id)))
                target = tuple(i for i in files if i not in complete) if suffix else ()
            else:
                suffix = rec.partial_suffix
                target = tuple(i for i in rec.partial if i not in done)
            if target == rec.partial and (not target or suffix == rec.partial_suffix):
                return
            paths = actual_paths(shown, set(target), suffix)
            now = rec.file_paths or ()
            moves = {i: p for i, (p, was) in enumerate(zip(paths, now, strict=True)) if p != was}
            content = dataclasses.replace(rec, partial=target, partial_suffix=suffix if target else "",
                                          file_paths=paths)
            await self.run.save(rec, content, strict=True)  # (durable before a file moves)
            try:
                if session is not None:
                    await session.rename_files(moves)
                else:  # (ended, or stopped without a session: its files closed)
                    root = await anyio.to_thread.run_sync(real_path, rec.options.data_path)
                    await anyio.to_thread.run_sync(move_files, root, [
                        (root.joinpath(*now[i]), root.joinpath(*p)) for i, p in moves.items()])
            except (TorrentEngineError, OSError) as exc:
                await self.run.save(rec)  # (as it was)
                log.warning("job %s (%s): its incomplete files keep their names: %s", rec.id, rec.name, exc)
                return
            rec.partial, rec.partial_suffix, rec.file_paths = content.partial, content.partial_suffix, paths
            self.run.sleepers.unview(rec)
            self.run.marks.mark(rec)
            await self.run.save(rec)


def _suffixable(rec: JobRecord, shown: Sequence[Sequence[str]], owned: Collection[str]) -> list[int]:
    """``suffixable`` of ``rec``'s files (``owned``: those on disk before the job)."""
    return suffixable(shown, rec.file_sizes or (), set(rec.pad_files), set(owned))
