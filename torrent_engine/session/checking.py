"""Checking and resume data: which pieces on disk can be trusted at start (resume data that
matches the files, else a recheck), and saving what a restart needs.

A start-up check's progress survives a stop or a crash: every ``CHECK_SAVE_INTERVAL`` seconds,
and when it is stopped midway, resume data is written (not durable: losing it costs the hashing
again) with the pieces verified below where the check got (``checked_up_to``) and the files'
stamps as they were when it began. A start that finds such data, its files' stamps unchanged,
trusts those pieces and hashes only from that point on (its ``SessionChecking`` events start
there); a changed file, another save path or piece count: the whole torrent is hashed again.

Seed mode (``Session(seed_mode=True)``: the owner says the data is complete, as libtorrent's
``seed_mode`` and qBittorrent's ``skip_checking``): the start reads nothing; it only looks that
every file is there at its full size (``MissingFiles`` if not), and every piece is had, each
verified the first time it is served (``upload``). The resume data keeps seed mode and the pieces
verified so far; resume data saved once seed mode was over (the whole torrent checked after a
piece failed) wins over the request: the torrent is not taken as complete again."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import anyio

from .. import events as ev
from ..errors import MissingFiles, StorageError
from ..formats.bitfield import Bitfield
from ..formats.layout import FileMap
from ..storage import StorageFactory, WatchedFiles
from ..storage.paths import real_path
from ..storage.resume import (
    FileStamp,
    ResumeData,
    ResumeKeeper,
    check_resume_point,
    stamp_files,
    trusted_pieces,
)
from ..storage.verify import recheck
from .phases import Checking, Loaded, Opened

if TYPE_CHECKING:
    from .context import Flag, TorrentContext

log = logging.getLogger("torrent_engine.session")

CHECK_SAVE_INTERVAL = 5.0  # seconds between two saves of a start-up check's progress


class CheckRun(Protocol):
    """What the check needs of the torrent's run (``lifecycle.Life``)."""

    @property
    def ready(self) -> Flag:
        """Set once checking is over."""

    def recheck_begins(self, checked: float = 0.0) -> bool:
        """The data is hashed: the state is ``CHECKING`` (``checked``: the share hashed already,
        by a check it goes on from); whether it was paused before."""

    def recheck_ended(self, paused: bool) -> None:
        """The recheck is over: paused again if it was paused before it."""

    def wanted_changed(self) -> None:
        """The file priorities changed (the resume data's were applied)."""


class Checker:
    """Start-up checking and resume data of one session."""

    def __init__(self, context: TorrentContext, resume: ResumeKeeper | None, *, run: CheckRun,
                 make_storage: StorageFactory, seed_mode: bool = False) -> None:
        self._ctx = context
        self._run = run
        self._make_storage = make_storage  # (to delete the files of a torrent whose files are not open)
        self.resume = resume  # where its resume data is kept (None: nowhere)
        self.files_deleted = False  # delete_files() ran (cancel must not run it twice)
        self.rechecked = False  # whether start-up hashed the data on disk (no usable resume data)
        self.resumed = False  # whether start-up found resume data saved for this torrent and save path
        self.priorities_given = False  # the owner set file priorities: stored ones do not override them
        self.seed_mode = seed_mode  # asked to take the data as complete (until its check says otherwise)
        self.checking_again = False  # the whole torrent is being checked again (seed mode failed)
        self.added_time = int(time.time())
        self.completed_time = 0
        self._saved: tuple[object, ...] | None = None  # what the resume data kept says
        # the start-up check found no piece without hashing (a new download): its resume data says
        # nothing a start would not find again at once (its first save: the tick's, an interval on)
        self.nothing_found = False

    async def delete_files(self) -> None:
        """Remove the torrent's files and its resume data; nothing else on disk."""
        ctx = self._ctx
        self.files_deleted = True
        try:
            phase = ctx.phase
            if isinstance(phase, Opened):
                storage = phase.storage
            else:
                storage = self._make_storage(ctx.parts.torrent, ctx.save_path)
            await storage.delete_files()
        except StorageError as exc:
            log.warning("cannot delete files of %s: %s", ctx.name, exc)
        resume = self.resume
        if resume is not None:
            try:
                await anyio.to_thread.run_sync(resume.delete)
            except OSError as exc:
                log.warning("cannot delete the resume data of %s: %s", ctx.name, exc)

    def file_paths(self) -> list[Path | None]:
        """Where each file of the torrent is (None: a pad file); nothing while the files are not open."""
        phase = self._ctx.phase
        if not isinstance(phase, Opened):
            return []
        return [phase.storage.file_path(i) for i in range(len(phase.parts.torrent.files))]

    async def check(self, checking: Checking) -> None:
        """Find the verified pieces (from resume data, else by hashing what is on disk)."""
        ctx = self._ctx
        torrent = checking.parts.torrent
        keeper, paths = self.resume, self.file_paths()

        def read_disk() -> tuple[ResumeData | None, list[FileStamp | None]]:  # (one thread hop)
            return (keeper.load() if keeper is not None else None), stamp_files(paths)

        resume, current = await anyio.to_thread.run_sync(read_disk)
        if resume is not None and not _same_place(resume, ctx.info_hash, ctx.save_path):
            resume = None  # saved for another save path: it says nothing of the files here
        self.resumed = resume is not None
        if (resume is not None and not self.priorities_given
                and len(resume.file_priorities) == len(torrent.files)):
            checking.parts.set_file_priorities(resume.file_priorities)  # (what the owner said wins)
            self._run.wanted_changed()
        if resume is not None:  # (the same totals, counted on: the larger is the newer)
            ctx.totals.uploaded = max(ctx.totals.uploaded, resume.uploaded)
            ctx.totals.downloaded = max(ctx.totals.downloaded, resume.downloaded)
            self.added_time = resume.added_time or self.added_time
            self.completed_time = resume.completed_time
        if self.seed_mode and resume is not None and resume.num_pieces == torrent.num_pieces \
                and not resume.seed_mode:
            self.seed_mode = False  # (saved after seed mode ended: its check is what counts)
        if self.seed_mode:
            self._start_seed_mode(checking, resume, current)
            return
        pieces = trusted_pieces(resume, info_hash=ctx.info_hash, num_pieces=torrent.num_pieces,
                                save_path=str(real_path(ctx.save_path)), current=current)
        if pieces is not None and resume is not None:
            self._saved = _content(resume)  # the file is good as it is until something changes
        if resume is not None:
            missing = self._missing(resume, current)
            if missing:  # (hashed, they would count as never had: the whole torrent again)
                raise MissingFiles(missing)
        if pieces is None:
            on_disk = any(p is not None and p.exists() for p in self.file_paths())
            if on_disk:
                # (an earlier check stopped midway, its files unchanged: it goes on from there)
                go_on = check_resume_point(resume, info_hash=ctx.info_hash, num_pieces=torrent.num_pieces,
                                           save_path=str(real_path(ctx.save_path)), current=current)
                at = go_on[1] / torrent.num_pieces if go_on is not None and torrent.num_pieces else 0.0
                paused = self._run.recheck_begins(at)
                self.rechecked = True
                pieces = await self._recheck(checking, _CheckProgress(self, current, go_on))
                self._run.recheck_ended(paused)
            else:
                pieces = set()
        self.nothing_found = not pieces and not self.rechecked  # (nothing hashed, nothing had)
        for index in pieces:
            checking.parts.picker.piece_passed(index)
        _watch(checking, current)  # (as they were when found verified)

    def _start_seed_mode(self, checking: Checking, resume: ResumeData | None,
                         current: list[FileStamp | None]) -> None:
        """Seed mode: every piece had without reading any; those the resume data (saved in seed
        mode, its files unchanged) says were verified are not verified again. ``MissingFiles``
        when a file is not there at its full size (nothing to seed from)."""
        ctx = self._ctx
        torrent = checking.parts.torrent
        missing = ["/".join(f.path)
                   for path, f, now in zip(self.file_paths(), torrent.files, current, strict=True)
                   if path is not None and not f.pad and f.length > 0
                   and (now is None or now.size < f.length)]
        if missing:
            raise MissingFiles(missing)
        verified: set[int] | None = None
        if resume is not None and resume.seed_mode:
            verified = trusted_pieces(resume, info_hash=ctx.info_hash, num_pieces=torrent.num_pieces,
                                      save_path=str(real_path(ctx.save_path)), current=current)
            if verified is not None:
                self._saved = _content(resume)
        picker = checking.parts.picker
        for index in range(torrent.num_pieces):
            picker.piece_passed(index)
        checking.parts.uploader.start_seed_mode(verified or set())
        _watch(checking, current)

    async def check_again(self, checking: Checking) -> None:
        """Hash the whole torrent while it runs (seed mode found a piece that fails; the pieces
        it had not verified are no longer had): what passes is had, what fails is not. Until it
        is over, a resume file written vouches for no file (a restart checks them all)."""
        self.seed_mode = False
        self.checking_again = True  # (until it is over: a stop meanwhile saves no stamps, a start checks)
        parts = checking.parts
        paused = self._run.recheck_begins()
        self.rechecked = True
        await self.save()  # (seed mode is over for good: a crash during the check does not bring it back)
        current = await anyio.to_thread.run_sync(stamp_files, self.file_paths())
        found = await self._recheck(checking)
        picker = parts.picker
        for index in list(picker.have):
            if index not in found:
                picker.piece_lost(index)
                parts.uploader.lost.add(index)
        for index in found:
            picker.piece_passed(index)
        parts.uploader.checked_again()
        _watch(checking, current)
        self._run.recheck_ended(paused)
        self.checking_again = False

    def _missing(self, resume: ResumeData, current: list[FileStamp | None]) -> list[str]:
        """The files (relative paths) that hold a piece the resume data says was verified and are
        gone or shorter than the torrent says (``current``: each file's stamp now, None: gone)."""
        torrent = self._ctx.parts.torrent
        if len(resume.have) * 8 < resume.num_pieces or resume.num_pieces != torrent.num_pieces:
            return []
        had = Bitfield.from_bytes(resume.have, resume.num_pieces)
        spans = FileMap(torrent)
        out: list[str] = []
        for index, (path, f, now) in enumerate(zip(self.file_paths(), torrent.files, current, strict=True)):
            if path is None or f.pad or f.length == 0:
                continue
            if not any(i in had for i in spans.file_pieces(index)):
                continue
            if now is None or now.size < f.length:
                out.append("/".join(f.path))
        return out

    def _stamps(self, paths: list[Path | None]) -> list[FileStamp | None]:
        """The files' stamps for the resume data (blocking), but none for a file seen changed or
        gone while the torrent ran: the data never vouches for it (a start hashes it again)."""
        if self.checking_again:
            return []  # (what is on disk is being checked: nothing is vouched for)
        stamps = stamp_files(paths)
        phase = self._ctx.phase
        if isinstance(phase, Loaded):
            for f in phase.parts.uploader.changed_files:
                if f < len(stamps):
                    stamps[f] = None
        return stamps

    async def _recheck(self, checking: Checking, saved: _CheckProgress | None = None) -> set[int]:
        """Hash every piece on disk (verify.recheck: both cores), reporting progress as events,
        once the shared resources give it a turn (``active_checking_limit`` torrents at once:
        until then it waits, still checking, at 0 %). ``saved``: a start-up check, which goes on
        from where an earlier one stopped and saves how far it got."""
        shared = self._ctx.shared
        if shared is None:
            return await self._hash_all(checking, saved)
        async with shared.check_slots:
            return await self._hash_all(checking, saved)

    async def _hash_all(self, checking: Checking, saved: _CheckProgress | None) -> set[int]:
        ctx = self._ctx
        last_report = 0.0

        def progress(done: int, total: int) -> None:
            nonlocal last_report
            now = time.monotonic()
            if now - last_report > 0.5 or done == total:
                last_report = now
                ctx.events.publish(ev.SessionChecking(info_hash=ctx.info_hash_hex,
                                                      progress=done / total if total else 1.0))

        if saved is None:
            return set(await recheck(checking.parts.torrent, checking.storage, progress))
        try:
            found = await recheck(checking.parts.torrent, checking.storage, progress,
                                  start=saved.start, checkpoint=saved.checkpoint)
        finally:  # (stopped or failed midway: what was hashed is kept for the next start)
            with anyio.CancelScope(shield=True):
                await saved.save()
        return saved.known | set(found)

    @property
    def name(self) -> str:
        """The torrent's name (for the log)."""
        return self._ctx.name

    @property
    def num_pieces(self) -> int:
        """How many pieces the torrent has."""
        return self._ctx.parts.torrent.num_pieces

    def progress_data(self, have: bytes, checked_up_to: int, begun: list[FileStamp | None]) -> ResumeData:
        """The resume data of a start-up check under way: ``have`` verified below ``checked_up_to``,
        the files as they were when the check began."""
        data = self.snapshot()
        data.have, data.checked_up_to, data.files = have, checked_up_to, begun
        return data

    def resume_data(self) -> ResumeData:
        """What a restart needs. The file stamps are taken after the have-set: a file written in
        between only makes the data look stale (recheck), never a piece look verified."""
        data = self.snapshot()
        data.files = self._stamps(self.file_paths())
        return data

    def snapshot(self) -> ResumeData:
        """The resume data as of now, without file stamps."""
        ctx = self._ctx
        have = ctx.parts.picker.have
        gone = ctx.parts.uploader.gone_pieces
        seed_verified = ctx.parts.uploader.seed_verified
        if seed_verified is not None:  # (seed mode: every piece had, these verified)
            have = seed_verified
        elif gone:  # (files found gone while it ran: kept as had, for a start to find them again)
            have = have.copy()
            for i in gone:
                have.add(i)
        return ResumeData(info_hash=ctx.info_hash, save_path=str(real_path(ctx.save_path)),
                          have=have.to_bytes(), num_pieces=ctx.parts.torrent.num_pieces,
                          file_priorities=list(ctx.parts.file_priorities), uploaded=ctx.totals.uploaded,
                          downloaded=ctx.totals.downloaded, added_time=self.added_time,
                          completed_time=self.completed_time, saved_time=int(time.time()),
                          seed_mode=seed_verified is not None)

    def unsaved(self) -> bool:
        """Whether the resume data differs from what was last kept (or trusted at start), so
        that a periodic save has something to write."""
        if self.resume is None or not isinstance(self._ctx.phase, Loaded):
            return False
        return self._saved != _content(self.snapshot())

    async def save(self) -> None:
        """Keep the resume data (after flushing the files: durable resume data never counts a
        piece the disk may not hold)."""
        ctx = self._ctx
        phase = ctx.phase
        keeper = self.resume
        if keeper is None or not isinstance(phase, Opened):
            return
        if not self._run.ready.is_set():
            return  # still checking: the pieces on disk are not known yet (the check saves its own progress)
        data = self.snapshot()
        if self._saved == _content(data):
            return  # (what is kept: an idle seed writes nothing, its files' stamps kept)
        paths = self.file_paths()
        try:
            await phase.storage.flush()
            data.files = await anyio.to_thread.run_sync(self._stamps, paths)  # (stat: not the loop)
            await keeper.save(data)
            self._saved = _content(data)
        except StorageError as exc:
            log.warning("cannot save resume data of %s: %s", ctx.name, exc)


def _watch(checking: Checking, current: list[FileStamp | None]) -> None:
    """Tell the storage the files as they were when their data was taken as verified."""
    if isinstance(checking.storage, WatchedFiles):
        checking.storage.watch_files([None if st is None else (st.size, st.mtime_ns) for st in current])


def _same_place(data: ResumeData, info_hash: bytes, save_path: Path) -> bool:
    """Whether resume data was saved for this torrent in this save path."""
    return (data.info_hash == info_hash
            and os.path.abspath(data.save_path) == os.path.abspath(real_path(save_path)))


def _content(data: ResumeData) -> tuple[object, ...]:
    """The fields of resume data that matter (not when it was saved, nor the file stamps)."""
    return (data.info_hash, data.save_path, data.have, data.num_pieces, tuple(data.file_priorities),
            data.uploaded, data.downloaded, data.added_time, data.completed_time, data.seed_mode,
            data.checked_up_to)


class _CheckProgress:
    """Where a start-up check stands, and its saves: every ``CHECK_SAVE_INTERVAL`` seconds as the
    hashing goes on, and once more when it ends or is stopped."""

    def __init__(self, checker: Checker, begun: list[FileStamp | None],
                 resumed: tuple[set[int], int] | None) -> None:
        self._checker = checker
        self._begun = begun  # the files' stamps when the check began: a file changed since voids it
        self.known, self.start = resumed if resumed is not None else (set(), 0)
        num_pieces = checker.num_pieces
        self._width = (num_pieces + 7) // 8
        self._known_bits = int.from_bytes(Bitfield(num_pieces, self.known).to_bytes(), "big")
        self._have = self._known_bits.to_bytes(self._width, "big")
        self._up_to = self._saved_up_to = self.start
        self._last_save = time.monotonic()
        self._saving = False

    async def checkpoint(self, up_to: int, found: Bitfield) -> None:
        """(``verify.recheck``'s) every piece below ``up_to`` is hashed, ``found`` verified: kept,
        and saved when the last save is old enough."""
        bits = int.from_bytes(found.to_bytes(), "big")
        spare = self._width * 8 - up_to  # (the bits of pieces at and past ``up_to``: not known yet)
        self._have = ((bits >> spare << spare) | self._known_bits).to_bytes(self._width, "big")
        self._up_to = up_to
        if time.monotonic() - self._last_save >= CHECK_SAVE_INTERVAL:
            await self.save()

    async def save(self) -> None:
        """Write where the check got, when that is further than the last save (one at a time)."""
        checker = self._checker
        keeper = checker.resume
        if keeper is None or self._saving or self._up_to <= self._saved_up_to:
            return
        up_to = self._up_to
        data = checker.progress_data(self._have, up_to, self._begun)
        self._saving = True
        try:
            # (not durable: lost in a crash, the next start hashes these pieces again)
            await keeper.save(data, durable=False)
            self._saved_up_to = up_to
        except StorageError as exc:
            log.warning("cannot save the check's progress of %s: %s", checker.name, exc)
        finally:
            self._saving = False
            self._last_save = time.monotonic()
