"""Deduplication across swarms: a new torrent's file whose BEP 52 ``pieces root`` is that of a
file held whole — a complete job's, or one in a folder the user indexes — is placed from it
(reflink, hard link or copy as configured) before the torrent's first check, which verifies
it: no piece counts as had before it is hashed, and what fails is downloaded as usual. A file
with no root known (a v1 torrent's: the same data cross-seeded as another torrent) is looked for
by its length among the files held whole, and placed from the first whose bytes verify
against a few of its own pieces (``storage.findfiles``; every piece for a hard link).

The index of the jobs' files (pieces root -> job id, file index, length) is this part's alone:
learnt when a job completes, kept in ``state_dir/dedup.json`` (what it lacks of the complete
jobs — all of them the first time — read from their saved torrents at a start); it names no
path: a file's place is read from its job's record when it is used, so a move or a rename needs
no update, and a job that ended or was removed is passed over. The complete jobs' files by
length are learnt from their records (in memory: a start walks the records, no torrent read).
The indexed folders' files (``folder_index.py``) are
hashed in a worker thread, each once per (size, mtime), at the start and every
``FOLDER_RESCAN_INTERVAL``; see docs/dedup.md.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import anyio

from ...errors import TorrentEngineError
from ...formats.layout import FileMap
from ...formats.metainfo import Torrent
from ...jsonvalue import JSON
from ...policy.dedup import DedupMode, Known, Method, Placement, Wanted, methods, plan
from ...storage.dedup import FileRoot, PlaceError, file_pieces_root, file_roots, place_file, wanted_roots
from ...storage.findfiles import WrongReads, alone, find_among
from ...storage.paths import safe_join
from ..model import FINISHED_STATES, JobRemoved, JobState, JobStateChanged
from ..store import JobRecord
from .folder_index import FOLDER, FOLDERS_FILE, FolderIndex, write_json
from .host import DiskHost
from .placing import PLACING_FILE, PlacingJournal

if TYPE_CHECKING:
    from ..tuning.settings import ServiceSettings

__all__ = ["FOLDER_RESCAN_INTERVAL", "LENGTH_MATCH_MIN", "MOST_CANDIDATES", "SAMPLED_PIECES", "Deduplicator",
           "HeldFile", "PlacedFile"]

log = logging.getLogger("torrent_engine.jobs.dedup")

INDEX_FILE = "dedup.json"
INDEX_VERSION = 1
INDEX_SAVE_PAUSE = 2.0  # seconds between two writes of the index (the first at once)
FOLDER_RESCAN_INTERVAL = 15 * 60.0  # seconds between two walks of the indexed folders
# A file with no pieces root known is looked for by its length from this size on: a smaller one
# costs less to download than to look for, and small files of one length are many (and alike).
LENGTH_MATCH_MIN = 1024 * 1024
MOST_CANDIDATES = 8  # files of one length tried for a new file (the latest complete jobs' first)
SAMPLED_PIECES = 8  # a candidate's pieces verified before it is placed (every one for a hard link)
LEARNT_A_TURN = 500  # complete jobs learnt by length at a start between two turns of the loop
# bytes an add's (or a match's) look may read on files held that turn out not to hold the file
# looked for: a torrent of thousands of files of one length, each tried on every file held of
# that length, is bounded (the files left are downloaded)
WRONG_READS_MOST = 256 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class PlacedFile:
    """A file of a new job placed from one held: which, from where, how, and the ways the file
    system refused before (a fallback, reported)."""

    index: int
    source: str
    origin: str  # the job id the source belongs to, or "folder"
    length: int
    method: Method
    refused: tuple[tuple[Method, str], ...] = ()
    by_length: bool = False  # found by its length and pieces (no pieces root known for it)


@dataclass(frozen=True, slots=True)
class HeldFile:
    """What ``Deduplicator.match`` found of file ``index`` of a torrent: the file held whole
    that it would be taken from (``source``, None: none) and how it was found, or why not."""

    index: int
    source: Known | None
    by_length: bool = False  # found by its length and pieces (else by its pieces root)
    why: str = ""


class Deduplicator:
    """The job service's deduplication: the index of complete jobs' files by pieces root, the
    indexed folders, and the placing of a new job's files from them (``place``)."""

    def __init__(self, run: DiskHost, *, mode: DedupMode) -> None:
        self.run = run
        # (the settings' ``dedup`` and ``dedup_folders`` once read, and as they change: ``load``,
        # ``_settings_changed``; ``mode`` until then)
        self.mode = mode
        self.ways = methods(mode)
        self.folders: tuple[str, ...] = ()
        self._folders_changed = anyio.Event()  # (wakes ``run_folders`` for the new folders)
        state = run.state_dir
        self._path = state / INDEX_FILE if state is not None else None
        self.folder_index = FolderIndex(state / FOLDERS_FILE if state is not None else None)
        # (the placements under way, so a start removes what a crash left of them: ``load``)
        self.journal = PlacingJournal(state / PLACING_FILE if state is not None else None)
        self._recovered = False
        # pieces root -> {(job id, file index): length}; job id -> its roots (to forget them)
        self._by_root: dict[bytes, dict[tuple[str, int], int]] = {}
        self._by_job: dict[str, tuple[bytes, ...]] = {}  # (tuples: the collector does not walk them)
        # the file priorities each job's files were learnt with, since this start (a sessionless
        # job's state changing, a pause or a resume, does not read its torrent again for them)
        self._learnt_with: dict[str, tuple[int, ...]] = {}
        # length -> {(job id, file index)} in the order learnt; job id -> its lengths (to forget them)
        self._by_length: dict[int, dict[tuple[str, int], None]] = {}
        self._lengths: dict[str, tuple[int, ...]] = {}
        # job id -> the v2 files its check without a session read (``learn_checked``), until its
        # state event learns them
        self._checked: dict[str, tuple[FileRoot, ...]] = {}
        self._dirty = False
        self._saving = False
        self.folders_indexed = anyio.Event()  # set once the first walk of the folders is over
        self.folders_walked = anyio.Event()  # set once it knows their files' sizes (before their hashing)
        self.rebuilt = anyio.Event()  # set once a start learnt what the index lacked (``rebuild``)
        self.placed: dict[str, list[PlacedFile]] = {}  # job id -> what its add placed (reported)

    # -- the index of the jobs' files ---------------------------------------------------------
    async def load(self) -> None:
        """Read the index (and the folders' cache) saved by an earlier run (the settings read:
        the mode and folders they say). The first, at a start, removes what placements left
        when the last run stopped in the middle of them, whatever the mode is now."""
        if not self._recovered:  # (no placement runs before the service's start has loaded)
            self._recovered = True
            await anyio.to_thread.run_sync(self.journal.recover)
        settings = self.run.settings
        self.mode, self.ways, self.folders = settings.dedup, methods(settings.dedup), settings.dedup_folders
        if self.mode == "off":
            return
        path = self._path

        def read() -> dict[str, list[tuple[int, bytes, int]]] | None:
            self.folder_index.load()
            if path is None:
                return {}
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                if data.get("version") != INDEX_VERSION:
                    raise ValueError(f"unknown version {data.get('version')!r}")
                return {str(job): [(int(i), bytes.fromhex(root), int(length)) for i, root, length in files]
                        for job, files in data["jobs"].items()}
            except FileNotFoundError:
                return None
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
                log.warning("rebuilding the dedup index: %s is unreadable (%s)", path, exc)
                return None

        jobs = await anyio.to_thread.run_sync(read)
        for job_id, files in (jobs or {}).items():
            if job_id in self.run.jobs:
                self._learn(job_id, files)

    async def rebuild(self) -> None:
        """(At a start, the jobs restored.) Learn the files of each complete job the index does not
        know (all of them when there was no index file yet, from before this part; else those that
        completed as an earlier run stopped, before the index was saved) from its saved torrent.
        A job learnt with no v2 file is known too: a start reads no torrent it read before."""
        try:
            if self.mode != "off":
                await self._learn_lengths_of_all()
                await self._rebuild()
        finally:
            self.rebuilt.set()

    async def _learn_lengths_of_all(self) -> None:
        """The complete jobs' files by length, from their records (the loop let run between
        ``LEARNT_A_TURN`` of them: 30 000 held it 36 ms at once, looked at in one go)."""
        recs = list(self.run.jobs)
        for at in range(0, len(recs), LEARNT_A_TURN):
            for rec in recs[at:at + LEARNT_A_TURN]:
                if rec.id not in self._lengths and _complete(rec) and self.run.jobs.get(rec.id) is rec:
                    self._learn_lengths(rec)
            await anyio.sleep(0)

    async def _rebuild(self) -> None:
        manager = self.run.manager
        wanted = [(rec.id, rec.info_hash, list(rec.file_priorities or []))
                  for rec in self.run.jobs if rec.id not in self._by_job and _complete(rec)]
        if not wanted:
            return

        def read() -> list[tuple[str, list[tuple[int, bytes, int]]]]:
            out: list[tuple[str, list[tuple[int, bytes, int]]]] = []
            for job_id, info_hash, priorities in wanted:
                try:
                    torrent = manager.saved_metainfo(info_hash)
                    if torrent is None:
                        raise FileNotFoundError("no metainfo kept")
                except (TorrentEngineError, OSError):
                    out.append((job_id, []))  # (its torrent is not kept: nothing to learn, not asked again)
                    continue
                out.append((job_id, file_roots(torrent, priorities)))
            return out

        for job_id, files in await anyio.to_thread.run_sync(read, abandon_on_cancel=True):
            rec = self.run.jobs.get(job_id)
            if job_id not in self._by_job and rec is not None and _complete(rec):  # (as it is now)
                self._learn(job_id, files)
        self._changed()

    def listen(self, settings_watchers: list[Callable[[ServiceSettings, ServiceSettings], None]]) -> None:
        """Learn each job's files as it completes (``job.state`` events; a seed-mode add tells
        ``learn_added``); forget them as it ends without its data or leaves the history
        (``job.removed``); follow the settings' mode and folders."""
        self.run.events.subscribe(JobStateChanged, self._on_state)
        self.run.events.subscribe(JobRemoved, self._on_removed)
        settings_watchers.append(self._settings_changed)

    def _settings_changed(self, before: ServiceSettings, after: ServiceSettings) -> None:
        """The mode or the folders changed at run time: turned off, what is known is forgotten
        (the files saved stay, read again when it is on); turned on, the index is read again and
        what it lacks of the complete jobs learnt, in the background; the folders walked anew
        (after a walk under way)."""
        if (before.dedup, before.dedup_folders) == (after.dedup, after.dedup_folders) or not self.run.loaded:
            return  # (at a start: ``load`` reads them)
        was = self.mode
        self.mode, self.ways, self.folders = after.dedup, methods(after.dedup), after.dedup_folders
        if self.mode == "off" and was != "off":
            self._forget_all()
        elif was == "off" and self.mode != "off" and self.run.tg is not None:
            self.run.tg.start_soon(self._turned_on)
        log.info("dedup: %s, indexed folders: %s", self.mode, ", ".join(self.folders) or "none")
        self._folders_changed.set()

    async def _turned_on(self) -> None:
        await self.load()
        await self.rebuild()
        if self.mode == "off":  # (turned off again meanwhile)
            self._forget_all()

    def _forget_all(self) -> None:
        self._by_root, self._by_job, self._by_length, self._lengths = {}, {}, {}, {}
        self._learnt_with.clear()
        self._checked.clear()
        self.placed.clear()

    def _on_removed(self, event: JobRemoved) -> None:
        self._forget_job(event.job_id)

    def _forget_job(self, job_id: str) -> None:
        """``job_id`` holds no file any more (it ended without its data, or left the history)."""
        self.placed.pop(job_id, None)
        self._checked.pop(job_id, None)
        self._forget_lengths(job_id)
        if job_id in self._by_job:
            self._forget(job_id)
            self._changed()

    def _on_state(self, event: JobStateChanged) -> None:
        rec = self.run.jobs.get(event.job.id)
        if rec is None or self.mode == "off":
            return
        if event.new in (JobState.FAILED, JobState.CANCELLED):
            self._forget_job(rec.id)
            return
        checked = self._checked.pop(rec.id, None)  # (what a check without a session read, if one did)
        if not _complete(rec):
            return
        self._learn_lengths(rec)
        session = self.run.session_of(rec)
        if session is None or not session.has_metadata:  # (checked without a session, a dormant
            if checked is not None:  # seed: what its check read of its torrent, else its saved
                self._learn(rec.id, wanted_roots(checked, rec.file_priorities or []), rec)
                self._changed()
            elif self._learnt_with.get(rec.id) == tuple(rec.file_priorities or ()):  # torrent read in
                pass  # a worker thread, unless learnt already with its priorities: ten thousand
            elif self.run.tg is not None:  # seeds paused and resumed read none again)
                self.run.tg.start_soon(self._learn_saved, rec.id)
            return
        files = file_roots(session.torrent, rec.file_priorities or [])
        if rec.id in self._by_job and set(self._by_job[rec.id]) == {root for _i, root, _n in files}:
            return
        self._learn(rec.id, files, rec)
        self._changed()

    def learn_added(self, rec: JobRecord, torrent: Torrent) -> None:
        """``rec``, complete as it is added (a seed-mode seed), learnt from the torrent its add
        read (it is announced seeding, with no ``job.state``: thousands of seed-mode adds would
        otherwise each read and parse their saved torrent once more)."""
        if self.mode == "off":
            return
        self._learn_lengths(rec)
        self._learn(rec.id, file_roots(torrent, rec.file_priorities or []), rec)
        self._changed()

    def learn_checked(self, rec: JobRecord, files: tuple[FileRoot, ...]) -> None:
        """``rec``'s check without a session found it complete, reading its torrent: ``files``
        (``storage.dedup.file_roots``) are learnt at its state event (ten thousand checked adds would
        otherwise each read and parse their saved torrent once more, a v1 one for nothing)."""
        if self.mode != "off":
            self._checked[rec.id] = files

    async def _learn_saved(self, job_id: str) -> None:
        """Learn the files of the complete job ``job_id`` from its saved torrent."""
        rec = self.run.jobs.get(job_id)
        if rec is None:
            return
        try:
            torrent = await anyio.to_thread.run_sync(self.run.manager.saved_metainfo, rec.info_hash)
        except (TorrentEngineError, OSError):
            return
        if torrent is None:
            return
        if self.run.jobs.get(job_id) is rec and _complete(rec):  # (as it is now)
            self._learn(job_id, file_roots(torrent, rec.file_priorities or []), rec)
            self._changed()

    def _learn(self, job_id: str, files: list[tuple[int, bytes, int]],
               rec: JobRecord | None = None) -> None:
        """Know ``files`` as the job's (``rec``: learnt with its file priorities as they are)."""
        self._forget(job_id)
        for index, root, length in files:
            self._by_root.setdefault(root, {})[(job_id, index)] = length
        self._by_job[job_id] = tuple(dict.fromkeys(root for _i, root, _n in files))
        if rec is not None:
            self._learnt_with[job_id] = tuple(rec.file_priorities or ())

    def _learn_lengths(self, rec: JobRecord) -> None:
        """Know ``rec``'s wanted files from ``LENGTH_MATCH_MIN`` bytes by their lengths (as its
        record has them: pad files left out)."""
        self._forget_lengths(rec.id)
        sizes = rec.file_sizes or ()
        priorities = rec.file_priorities or ()
        pads = set(rec.pad_files)
        lengths = []
        for index, length in enumerate(sizes):
            if length >= LENGTH_MATCH_MIN and index not in pads and index < len(priorities) \
                    and priorities[index] > 0:
                self._by_length.setdefault(length, {})[(rec.id, index)] = None
                lengths.append(length)
        if lengths:
            self._lengths[rec.id] = tuple(dict.fromkeys(lengths))

    def _forget_lengths(self, job_id: str) -> None:
        _drop_job(self._by_length, self._lengths.pop(job_id, ()), job_id)

    def _forget(self, job_id: str) -> None:
        _drop_job(self._by_root, self._by_job.pop(job_id, ()), job_id)
        self._learnt_with.pop(job_id, None)

    def _changed(self) -> None:
        self._dirty = True
        if not self._saving and self.run.tg is not None:
            self._saving = True
            self.run.tg.start_soon(self._save)

    async def _save(self) -> None:
        try:
            while self._dirty:
                await self._write()
                # (the changes of the next INDEX_SAVE_PAUSE in one write: each write is the whole
                # index, and 30 000 seed-mode adds each complete a job — written per job, the adds
                # took 3.4 ms of CPU each, growing with the index)
                await anyio.sleep(INDEX_SAVE_PAUSE)
        finally:
            self._saving = False
            if self._dirty:  # (the service stopping: what the pause held back is written now)
                with anyio.CancelScope(shield=True):
                    await self._write()

    async def _write(self) -> None:
        self._dirty = False
        path = self._path
        if path is None:
            return
        jobs: dict[str, list[list[object]]] = {j: [] for j in self._by_job if j in self.run.jobs}
        for root, entries in self._by_root.items():
            for (job_id, index), length in entries.items():
                if job_id in self.run.jobs:
                    jobs.setdefault(job_id, []).append([index, root.hex(), length])
        data = {"version": INDEX_VERSION, "jobs": jobs}
        try:
            await anyio.to_thread.run_sync(write_json, path, data)
        except OSError as exc:
            log.warning("cannot save the dedup index %s: %s", path, exc)
        except BaseException:  # (cut off before the write began: a stop; its ``finally`` writes it)
            self._dirty = True
            raise

    def known(self, root: bytes) -> list[Known]:
        """The files held whole with pieces root ``root``: the complete jobs' (each where its
        record says it is now), then the indexed folders'."""
        out = [known for (job_id, index), length in self._by_root.get(root, {}).items()
               if (known := self._job_file(job_id, index, length)) is not None]
        out.extend(self.folder_index.known(root))
        return out

    def of_length(self, length: int) -> list[Known]:
        """Files held whole ``length`` bytes long, ``MOST_CANDIDATES`` at most: the complete
        jobs' (the latest learnt first), then the indexed folders'."""
        out: list[Known] = []
        for job_id, index in reversed(self._by_length.get(length, {})):
            known = self._job_file(job_id, index, length)
            if known is not None:
                out.append(known)
                if len(out) >= MOST_CANDIDATES:
                    return out
        return (out + self.folder_index.of_length(length))[:MOST_CANDIDATES]

    def _job_file(self, job_id: str, index: int, length: int) -> Known | None:
        """File ``index`` of the job ``job_id`` where its record says it is now, if the job is
        complete and wants it (None otherwise)."""
        rec = self.run.jobs.get(job_id)
        if rec is None or not _complete(rec) or rec.file_paths is None or index >= len(rec.file_paths):
            return None
        priorities: Sequence[int] = rec.file_priorities or ()
        if index >= len(priorities) or priorities[index] <= 0:
            return None
        try:
            path = safe_join(Path(rec.options.data_path), tuple(rec.file_paths[index]))
        except TorrentEngineError:
            return None
        return Known(path=str(path), length=length, origin=job_id)

    # -- the indexed folders ------------------------------------------------------------------
    async def index_folders(self) -> int:
        """Walk the indexed folders now (a worker thread; ``folders_walked`` set once the files'
        sizes are known, before they are hashed); the files indexed."""
        folders = self.folders

        def walked() -> None:  # (on the worker thread)
            anyio.from_thread.run_sync(self.folders_walked.set)

        count = await anyio.to_thread.run_sync(lambda: self.folder_index.scan(folders, sized=walked))
        self.folders_walked.set()
        self.folders_indexed.set()
        return count

    async def run_folders(self) -> None:
        """Walk the indexed folders at the start, every ``FOLDER_RESCAN_INTERVAL`` and when
        they or the mode change (the service's task group runs it; none walked while there are
        none, or dedup is off: what was known of them is forgotten then)."""
        while True:
            self._folders_changed = anyio.Event()
            if self.mode == "off" or not self.folders:
                self.folder_index.forget()
                self.folders_walked.set()
                self.folders_indexed.set()
                await self._folders_changed.wait()
                continue
            await self.index_folders()
            with anyio.move_on_after(FOLDER_RESCAN_INTERVAL):
                await self._folders_changed.wait()

    def status(self) -> dict[str, JSON]:
        """What the deduplication holds and does now (``GET /api/dedup``): its mode, the complete
        jobs it knows, each indexed folder (with why it could not be read by the last walk), the
        folders' files known by their sizes and by their pieces roots, a walk under way and its
        hashing (the file being hashed of those new or changed), when the last walk ended."""
        folders = self.folder_index
        done, total = folders.hashing
        return {
            "mode": self.mode, "jobs": len(self._by_job.keys() | self._lengths.keys()),
            "folders": [{"folder": f, "error": folders.errors.get(f)} for f in self.folders],
            "files": len(folders.sizes), "hashed": len(folders.files), "walking": folders.walking,
            "hashing": {"done": done, "total": total} if folders.walking and total else None,
            "walked_at": folders.walked_at, "truncated": folders.truncated}

    # -- looking a torrent's files up: what an add would take --------------------------------
    async def match(self, torrent: Torrent) -> list[HeldFile]:
        """Which of ``torrent``'s files (each not empty, not a pad file or link) are held whole
        here, as an add would find them (``place``: by pieces root, then by length and
        ``SAMPLED_PIECES`` of their own pieces), nothing placed; in order. With ``dedup`` off
        none is (the index is not kept then), each saying so."""
        files = torrent.files
        asked = [i for i, f in enumerate(files) if f.length > 0 and not (f.pad or "l" in f.attr)]
        if self.mode == "off":
            return [HeldFile(i, None, why="dedup is off") for i in asked]
        known, of_length = self._held_for(torrent, asked)
        folders = self.folder_index
        stop = threading.Event()

        def work() -> list[HeldFile]:  # (one worker-thread hop)
            wanted = [Wanted(index=i, pieces_root=files[i].pieces_root, length=files[i].length, wanted=True,
                             special=False, present=False) for i in asked]
            held = {p.index: HeldFile(p.index, p.source) for p in plan(wanted, known)
                    if p.source.origin != FOLDER or folders.unchanged(p.source.path)}
            rest = [i for i in asked if i not in held and files[i].length in of_length]
            by_size, by_path = _candidates(of_length, folders, ())
            present = {i: Path(h.source.path) for i, h in held.items() if h.source is not None}
            whys: dict[int, str] = {}
            for found in find_among(torrent, rest, by_size, present, stop, most=SAMPLED_PIECES,
                                    wrong=WrongReads(WRONG_READS_MOST)):
                if found.source is not None:
                    held[found.index] = HeldFile(found.index, by_path[str(found.source)], by_length=True)
                else:
                    whys[found.index] = found.why
            return [held.get(i) or HeldFile(i, None, why=whys.get(i) or _unheld(files[i].length,
                                                                                 files[i].pieces_root))
                    for i in asked]

        try:
            return await anyio.to_thread.run_sync(work, abandon_on_cancel=True)
        finally:
            stop.set()

    def _held_for(self, torrent: Torrent, indices: Collection[int],
                  ) -> tuple[dict[bytes, list[Known]], dict[int, list[Known]]]:
        """The files held whole that files ``indices`` of ``torrent`` may be taken from: by
        pieces root, and (from ``LENGTH_MATCH_MIN``) by length; those with none left out."""
        files = torrent.files
        roots = {root for i in indices if (root := files[i].pieces_root) is not None}
        lengths = {files[i].length for i in indices if files[i].length >= LENGTH_MATCH_MIN}
        return ({root: found for root in roots if (found := self.known(root))},
                {length: found for length in lengths if (found := self.of_length(length))})

    # -- placing a new job's files ----------------------------------------------------------
    async def place(self, rec: JobRecord, torrent: Torrent) -> int:
        """Before the first check of ``rec`` (being added from ``torrent``, saving in
        ``rec.options.data_path``): place each wanted file with nothing at its place that a
        file held whole has the pieces root and length of, then each other one from
        ``LENGTH_MATCH_MIN`` bytes that a file held whole of its length holds the pieces of
        (``SAMPLED_PIECES`` of them tried; all for a hard link). The bytes placed (the check
        that follows verifies them; a file that could not be placed is downloaded)."""
        if self.mode == "off" or rec.file_paths is None:
            return 0
        priorities: Sequence[int] = rec.file_priorities or ()
        files = torrent.files
        wanted_files = [i for i, f in enumerate(files) if not (f.pad or "l" in f.attr)
                        and i < len(priorities) and priorities[i] > 0]
        known, of_length = self._held_for(torrent, wanted_files)
        if not known and not of_length:
            return 0
        data = Path(rec.options.data_path)
        try:
            targets = [str(safe_join(data, tuple(p))) for p in rec.file_paths]
        except TorrentEngineError:
            return 0
        ways = self.ways
        folder_index, journal = self.folder_index, self.journal
        # (the files something held may be placed at: written down before any is)
        maybe = [targets[i] for i in wanted_files
                 if files[i].pieces_root in known or files[i].length in of_length]

        stop = threading.Event()  # (set when the add is cancelled: the thread ends at its next step)

        def work() -> list[PlacedFile]:  # (one worker-thread hop)
            try:
                journal.begin(rec.id, maybe)
            except OSError as exc:
                log.warning("dedup: job %s: no file placed (its files are downloaded): cannot write down "
                            "the files being placed: %s", rec.id, exc)
                return []
            try:
                return placing()
            finally:
                journal.end(rec.id)

        def placing() -> list[PlacedFile]:
            wanted = [Wanted(index=i, pieces_root=f.pieces_root, length=f.length,
                             wanted=i < len(priorities) and priorities[i] > 0,
                             special=f.pad or "l" in f.attr, present=os.path.lexists(targets[i]))
                      for i, f in enumerate(files)]
            done: list[PlacedFile] = []
            for p in plan(wanted, known, targets=targets):
                if stop.is_set():
                    break
                placed = _place_one(p, files[p.index].pieces_root, targets[p.index], ways, folder_index, stop)
                if placed is not None:
                    done.append(placed)
            if of_length and not stop.is_set():
                done.extend(_place_by_length(torrent, wanted, done, of_length, targets, ways, folder_index,
                                             stop))
            return done

        try:
            placed = await anyio.to_thread.run_sync(work, abandon_on_cancel=True)
        finally:
            stop.set()
        for f in placed:
            how = f.method if not f.refused else (
                f"{f.method} ({'; '.join(f'{w} refused: {why}' for w, why in f.refused)})")
            log.info("job %s: file %d (%d bytes) taken from %s by %s%s", rec.id, f.index, f.length,
                     f.source, how, " (found by its length and pieces)" if f.by_length else "")
        if placed:
            self.placed[rec.id] = placed
        return sum(f.length for f in placed)


def _place_by_length(torrent: Torrent, wanted: Sequence[Wanted], done: Sequence[PlacedFile],
                     of_length: dict[int, list[Known]], targets: Sequence[str], ways: Sequence[Method],
                     folders: FolderIndex, stop: threading.Event) -> list[PlacedFile]:
    """(Blocking.) The wanted files not placed yet, with nothing at their place, looked for by
    their lengths among ``of_length``'s (``find_among``: ``SAMPLED_PIECES`` of each file's own
    pieces verified, or every one in ``hardlink`` mode) and placed. A hard link is made only of
    a file whose every piece is its own (or pad): a piece it shares with another file is not
    verified here, and one failing its check would have its download written into the source;
    such a file is copied."""
    placed = {f.index for f in done}
    present = {w.index: Path(targets[w.index]) for w in wanted if w.present or w.index in placed}
    asked = [w.index for w in wanted
             if w.index not in present and w.wanted and not w.special and w.length in of_length]
    if not asked:
        return []
    linking = bool(ways) and ways[0] == "hardlink"
    by_size, by_path = _candidates(of_length, folders, targets)
    spans = FileMap(torrent)
    out: list[PlacedFile] = []
    for found in find_among(torrent, asked, by_size, present, stop, most=None if linking else SAMPLED_PIECES,
                            wrong=WrongReads(WRONG_READS_MOST)):
        if found.source is None or stop.is_set():
            continue
        source = by_path[str(found.source)]
        how = ways if not linking or alone(spans, found.index) else ("copy",)
        try:
            made = place_file(source.path, targets[found.index], source.length, how, stop)
        except (PlaceError, OSError) as exc:
            log.warning("dedup: cannot place %s: %s", targets[found.index], exc)
            continue
        out.append(PlacedFile(index=found.index, source=source.path, origin=source.origin,
                              length=source.length, method=made.method, refused=made.refused, by_length=True))
    return out


K = TypeVar("K")
V = TypeVar("V")


def _drop_job(index: dict[K, dict[tuple[str, int], V]], keys: Iterable[K], job_id: str) -> None:
    """Remove the entries of ``job_id``'s files under each of ``keys`` of ``index`` (an index of
    the jobs' files: key -> {(job id, file index): value}), and each key left with none."""
    for key in keys:
        entries = index.get(key)
        if entries is None:
            continue
        for entry in [e for e in entries if e[0] == job_id]:
            del entries[entry]
        if not entries:
            del index[key]


def _candidates(of_length: dict[int, list[Known]], folders: FolderIndex, targets: Sequence[str],
                ) -> tuple[dict[int, list[Path]], dict[str, Known]]:
    """(Blocking.) ``of_length``'s files as ``find_among`` takes them, by length, and each by its
    path: an indexed folder's changed since it was indexed left out, and any of ``targets`` (the
    new torrent's own paths)."""
    own = set(targets)
    by_path: dict[str, Known] = {}
    by_size: dict[int, list[Path]] = {}
    for length, candidates in of_length.items():
        for known in candidates:
            if known.path in own or (known.origin == FOLDER and not folders.as_walked(known.path)):
                continue
            by_path[known.path] = known
            by_size.setdefault(length, []).append(Path(known.path))
    return by_size, by_path


def _unheld(length: int, root: bytes | None) -> str:
    """Why a file with no candidate of its pieces root or its length is not held."""
    small = f"under {LENGTH_MATCH_MIN} bytes, not looked for by length"
    if root is not None:
        more = f" ({small})" if length < LENGTH_MATCH_MIN else " or its length"
        return "no file held has its pieces root" + more
    return small if length < LENGTH_MATCH_MIN else "no file held has its length"


def _place_one(p: Placement, root: bytes | None, target: str, ways: Sequence[Method],
               folders: FolderIndex, stop: threading.Event) -> PlacedFile | None:
    """(Blocking.) Place one file; None (said in the log) when its source changed or it could
    not be placed: it is downloaded then."""
    source = p.source
    try:
        if source.origin == FOLDER and not folders.unchanged(source.path):
            log.info("dedup: %s changed since it was indexed: not used", source.path)
            return None
        if ways and ways[0] == "hardlink" and file_pieces_root(source.path, source.length) != root:
            # (a link is the same file: a source that fails would have the new torrent's
            # download written into it; it is hashed before it is linked)
            log.warning("dedup: %s no longer has the pieces root it had: not linked", source.path)
            return None
        placed = place_file(source.path, target, source.length, ways, stop)
    except (PlaceError, OSError) as exc:
        log.warning("dedup: cannot place %s: %s", target, exc)
        return None
    return PlacedFile(index=p.index, source=source.path, origin=source.origin, length=source.length,
                      method=placed.method, refused=placed.refused)


def _complete(rec: JobRecord) -> bool:
    """Whether ``rec``'s wanted files are whole on disk as far as its record says: its download
    completed and it is neither ended without its data (failed, cancelled), stopped by its
    disk, nor moving."""
    if rec.moving is not None or rec.delete_pending:
        return False
    if rec.state is JobState.COMPLETED:
        return True
    return (rec.state not in FINISHED_STATES and rec.state is not JobState.ERROR
            and rec.completed_at is not None)
