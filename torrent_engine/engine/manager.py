"""Many torrents in one process: one ``SharedResources`` and a registry of running sessions.

``async with TorrentManager(config) as manager:`` starts the shared services' owner; ``add`` starts
a session (and keeps its metainfo and its resume data in ``config.state_dir/torrents.sqlite3``,
``storage/kept.py``: the resume saves that come while a group is written are the next group, one
transaction; a resume file of an earlier version, ``torrents/<info-hash>.resume``, is read until the
first save replaces it), ``remove`` stops one. The manager holds no torrent back and reloads none of
its own: which torrents exist, whether they are paused or queued, is its owner's record (the job
service's), and a restart is that owner adding each again with ``add_saved``, from what the state
folder holds. Every session's events are re-published on ``manager.events``.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import anyio
import anyio.abc

from ..config import Config
from ..errors import BencodeError, DownloadTimeout, SessionError, StorageError
from ..events import EventBus
from ..formats.magnet import Magnet
from ..formats.metainfo import Torrent, load_saved_metainfo
from ..net.tracker.coordinator import TrackerMemory
from ..session import Session, SessionSetup, SessionStatus
from ..storage.kept import DB_FILE, MetainfoStore
from ..storage.paths import real_path
from ..storage.resume import (
    ResumeData,
    ResumeKeeper,
    decode_resume,
    encode_resume,
    load_resume,
    remove_stale_temp_files,
    write_atomic,
)
from .addtorrent import add_torrent_of
from .grouped import Grouped
from .resolve import resolve
from .shared import SharedResources
from .unwind import ExitStack

log = logging.getLogger(__name__)

TorrentSource = Torrent | Magnet | str | os.PathLike[str] | bytes

RESUME = ".resume"  # STATE_DIR/torrents/<info-hash>.resume: a torrent's resume data (earlier versions)
EXPORTED = "exported"  # STATE_DIR/exported/: .torrent copies for other programs (export_metainfo)


class TorrentManager:
    """Runs N sessions over one SharedResources (listen socket, DHT, bandwidth).

    ``before_check`` (None, or an async callable of an info-hash in hex and a ``Torrent``): set
    by the owner, awaited by each magnet's session once its metadata is in and before it opens
    and checks its files (``Session``'s ``before_check``); the job service places the files it
    holds already there (docs/dedup.md).
    """

    def __init__(self, config: Config | None = None) -> None:
        self.config = config if config is not None else Config()
        self.events = EventBus()
        self.shared = SharedResources(self.config, events=self.events)
        self._sessions: dict[bytes, Session] = {}
        self._undo_forward: dict[bytes, object] = {}
        self._stack: ExitStack | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._closing = False  # (from the start of the exit: no session starts)
        self.before_check: Callable[[str, Torrent], Awaitable[None]] | None = None
        state = self.config.state_dir
        # the metainfo kept between runs (None: nothing is); opened at its first use
        self.kept = (MetainfoStore(Path(state) / DB_FILE, Path(state) / "torrents")
                     if state is not None else None)
        # the info-hashes whose resume data ``kept`` holds as a row (``keep_resume_many``): read
        # when entered, and changed only by this manager's own writes and removals
        self._resume_rows: set[bytes] = set()
        # the resume saves of every torrent (its session's, a check's, an add's first record) and
        # the resume data forgotten (``drop_resume``), each group one transaction: (info-hash,
        # data or None to forget it, only when none is kept)
        self._resume_saves: Grouped[tuple[bytes, ResumeData | None, bool]] = Grouped(self._keep_resume_group)
        # the torrents without a session whose saved metainfo and resume data go (``drop_saved``)
        self._saved_drops: Grouped[bytes] = Grouped(self._drop_saved_group)

    # -- context -------------------------------------------------------------------------
    async def __aenter__(self) -> TorrentManager:
        stack = ExitStack()
        self._closing = False
        await stack.enter_async_context(self.shared)
        self._tg = await stack.enter_async_context(anyio.create_task_group())
        self._stack = stack
        try:
            self._remove_stale_writes()
            self._resume_rows = self._read_resume_rows()
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self._closing = True  # (an add under way meanwhile, another task's, starts no session)
        try:
            with anyio.CancelScope(shield=True):
                for session in list(self._sessions.values()):
                    await session.stop()
                self._sessions.clear()
        finally:  # (the group was entered on this task: it is closed whatever a stop raised)
            stack, self._stack = self._stack, None
            self._tg = None
            try:
                if stack is not None:
                    await stack.aclose()
            finally:
                if self.kept is not None:
                    self.kept.close()

    # -- table ---------------------------------------------------------------------------
    @property
    def sessions(self) -> list[Session]:
        """The sessions the manager runs, in the order they were added."""
        return list(self._sessions.values())

    def get(self, info_hash: bytes | str) -> Session | None:
        """The session of ``info_hash`` (bytes or hex), or None."""
        key = bytes.fromhex(info_hash) if isinstance(info_hash, str) else info_hash
        return self._sessions.get(key)

    def _state_file(self, info_hash: bytes, suffix: str) -> Path | None:
        if self.config.state_dir is None:
            return None
        return Path(self.config.state_dir) / "torrents" / f"{info_hash.hex()}{suffix}"

    # -- add / remove --------------------------------------------------------------------
    async def add(self, source: TorrentSource, save_path: str | os.PathLike[str], *,
                  peers: tuple[tuple[str, int], ...] = (), paused: bool = False,
                  setup: SessionSetup | None = None,
                  info_hash: bytes | None = None, seed_mode: bool = False, saved: bool = False) -> Session:
        """Start a session for a ``Torrent``, a .torrent path or its bytes, or a magnet link
        (URI or ``Magnet``: the session first fetches the metadata from peers, BEP 9).

        ``setup``: what the owner tells the new session before it starts (its file priorities,
        limits ...: ``SessionSetup``), which the session applies as it is made, so that no piece
        of a skipped file is requested first. ``info_hash``: the
        hash a saved hybrid torrent was added by, when not its v1 one (a restart keeps it).
        ``seed_mode``: the data is complete on disk (see ``Session``): seeding at once, no check;
        a restart keeps it (the resume data says so) until a piece that fails ends it.
        ``saved``: a ``Torrent`` whose metainfo and first resume data ``save_torrents`` kept
        already (its ``starting``, by its own info-hash), with the adds beside it: nothing is
        written here.
        ``DescriptorLimitReached`` when the process has nearly no file descriptor left."""
        self.shared.check_descriptors("cannot add a torrent")
        torrent = await self._load_source(source)
        return await self._start(torrent, Path(save_path), peers=peers, paused=paused, persist=True,
                                 setup=setup, info_hash=info_hash, seed_mode=seed_mode,
                                 saved=saved and isinstance(torrent, Torrent)
                                 and info_hash in (None, torrent.info_hash))

    async def add_saved(self, torrent: Torrent, save_path: str | os.PathLike[str], *,
                        info_hash: bytes | None = None, peers: tuple[tuple[str, int], ...] = (),
                        paused: bool = False, setup: SessionSetup | None = None,
                        seed_mode: bool = False) -> Session:
        """Start a session again for a torrent this manager saved before (its metainfo, as
        ``saved_metainfo`` reads it, and its resume data): nothing is written, and it goes
        on from what its resume data says was verified (its data is checked when there is none,
        or when its files changed). ``info_hash``, ``setup``, ``seed_mode``: as ``add``'s;
        ``paused``: as ``add``'s (the caller's word: the resume data holds no such thing)."""
        return await self._start(torrent, Path(save_path), peers=peers, paused=paused, persist=False,
                                 setup=setup, info_hash=info_hash, seed_mode=seed_mode)

    async def _load_source(self, source: TorrentSource) -> Torrent | Magnet:
        """``source`` read by the one resolver (a URL through the configured proxy)."""
        if isinstance(source, (Torrent, Magnet)):
            return source
        return await resolve(add_torrent_of(source), proxy=self.config.proxy, bind=self.config.netbind())

    async def _start(self, torrent: Torrent | Magnet, save_path: Path, *, peers: tuple[tuple[str, int], ...],
                     paused: bool, persist: bool, setup: SessionSetup | None = None,
                     info_hash: bytes | None = None, seed_mode: bool = False, saved: bool = False) -> Session:
        if self._tg is None:
            raise SessionError("TorrentManager is not entered (use 'async with')")
        if self._closing:
            raise SessionError("TorrentManager is stopping")
        key = info_hash or torrent.info_hash  # (a hybrid added again keeps the hash it was added by)
        if key in self._sessions:
            raise SessionError(f"torrent {key.hex()} is already added")
        # the session keeps the metainfo again when a magnet's info dict, or v2 piece layers the
        # metainfo lacks, arrive from peers
        lacking = isinstance(torrent, Torrent) and bool(torrent.missing_piece_layers)
        keep = ((isinstance(torrent, Magnet) and persist) or lacking) and self.kept is not None
        session = Session(torrent, save_path, config=self.config, shared=self.shared, peers=peers,
                          resume=self.resume_keeper(key), paused=paused, info_hash=info_hash,
                          seed_mode=seed_mode, setup=setup,
                          keep_metainfo=functools.partial(self._keep_metainfo, key) if keep else None,
                          before_check=functools.partial(self.before_check, key.hex())
                          if self.before_check is not None and isinstance(torrent, Magnet) else None)
        self._sessions[key] = session
        self._undo_forward[key] = session.events.forward_to(self.events)
        if persist and not saved and isinstance(torrent, Torrent):
            try:
                await anyio.to_thread.run_sync(self._save_metainfo, key, torrent)
            except BaseException:
                self._forget(key)  # (not saved: not added)
                raise
        try:
            if self._closing:  # (it began while the metainfo was written: its session never runs)
                raise SessionError("TorrentManager is stopping")
            await self._tg.start(self._run_session, session)
        except BaseException:
            self._forget(key)
            raise
        if persist and not saved:
            await self._save_placeholder(key, save_path, seed_mode)
        return session

    def save_torrents(self, torrents: Sequence[Torrent],
                      starting: Sequence[tuple[Torrent, Path, bool]] = ()) -> None:
        """Keep each torrent's metainfo as ``add`` does, without starting a session: its owner
        starts one later with ``add_saved`` (the job service's dormant seeds), and its records say
        where its data is. ``starting``: torrents whose sessions ``add`` starts next with
        ``saved`` (each with its save path and seed mode): their metainfo too, and the first
        resume data ``add`` would write after it (not over resume data kept already). One
        transaction for all (``MetainfoStore.put_with_resume``): a batch of adds syncs the disk
        once, not twice an add in turn. Blocking (a worker thread); nothing without a state
        folder; ``OSError`` when it cannot be kept."""
        if self.kept is None:
            return
        metainfo = [(t.info_hash, t.to_bytes()) for t in (*torrents, *(t for t, _, _ in starting))]
        first = [(t.info_hash, _placeholder(t.info_hash, save_path, seed_mode))
                 for t, save_path, seed_mode in starting if not self._resume_kept(t.info_hash)]
        self.kept.put_with_resume(metainfo, [(key, encode_resume(data)) for key, data in first])
        self._resume_rows_kept([key for key, _ in first])

    def _save_metainfo(self, key: bytes, torrent: Torrent) -> None:
        """(In a worker thread.) The metainfo of a torrent added, kept; nothing written when it is
        kept already (a torrent started again at another place: a full disk does not stop it)."""
        if self.kept is not None:
            data = torrent.to_bytes()
            if self.kept.get(key) != data:
                self._keep_metainfo(key, data)

    def _keep_metainfo(self, key: bytes, data: bytes) -> None:
        """(In a worker thread.) ``data`` kept as ``key``'s metainfo."""
        if self.kept is not None:
            self.kept.put_many([(key, data)])

    def keep_resume_many(self, items: Sequence[tuple[bytes, ResumeData]]) -> None:
        """(Blocking: a worker thread.) Each torrent's resume data kept as a row of the store,
        all in one transaction, and its resume file of an earlier version removed (a file and
        a row: the row is the newer). Nothing without a state folder; ``OSError`` when the rows
        cannot be written (then nothing is removed)."""
        if self.kept is None or not items:
            return
        self.kept.put_resume_many([(key, encode_resume(data)) for key, data in items])
        self._resume_rows_kept([key for key, _ in items])

    def _resume_rows_kept(self, keys: Sequence[bytes]) -> None:
        """(Blocking.) Rows of resume data were committed for ``keys``: a resume file of an
        earlier version is removed (a file and a row: the row is the newer)."""
        for key in keys:
            if key not in self._resume_rows:  # (a file is only ever older than the first row)
                path = self._state_file(key, RESUME)
                if path is not None:
                    path.unlink(missing_ok=True)
                self._resume_rows.add(key)

    def resume_keeper(self, info_hash: bytes | str) -> ResumeKeeper | None:
        """Where a torrent's resume data is kept: a row of the store (``saved_resume`` reads
        it, ``keep_resume`` writes it); None without a state folder."""
        key = bytes.fromhex(info_hash) if isinstance(info_hash, str) else info_hash
        return _ResumeRow(self, key) if self.kept is not None else None

    async def keep_resume(self, info_hash: bytes, data: ResumeData, *, unless_kept: bool = False) -> None:
        """``data`` kept as ``info_hash``'s resume data, with the saves that come meanwhile (one
        transaction a group: a thousand downloads that complete together write a few groups, not
        a thousand files). ``unless_kept``: not when resume data is kept for it already.
        ``StorageError`` when it cannot be written; nothing without a state folder."""
        await self._resume_saves.run((info_hash, data, unless_kept))

    async def drop_resume(self, info_hash: bytes | str) -> None:
        """``forget_resume`` with the resume saves that come meanwhile (a recheck of ten thousand
        torrents without a session: a few transactions, not ten thousand). ``StorageError``
        when it cannot be removed."""
        key = bytes.fromhex(info_hash) if isinstance(info_hash, str) else info_hash
        if key in self._sessions:
            raise SessionError(f"torrent {key.hex()} has a session: remove it instead")
        await self._resume_saves.run((key, None, False))

    def _keep_resume_group(self, items: list[tuple[bytes, ResumeData | None, bool]]) -> list[None]:
        """(A worker thread.) A group of resume saves and removals (None), one transaction each
        (``keep_resume_many``, then the removals')."""
        wanted: dict[bytes, ResumeData | None] = {}
        for key, data, unless_kept in items:  # (in order: a later save or removal of a torrent wins)
            if unless_kept and (wanted[key] is not None if key in wanted else self._resume_kept(key)):
                continue
            wanted[key] = data
        try:
            self.keep_resume_many([(key, data) for key, data in wanted.items() if data is not None])
            self._delete_resume_many([key for key, data in wanted.items() if data is None])
        except OSError as exc:
            raise StorageError(f"cannot keep resume data in {self.kept.path if self.kept else '-'}: "
                               f"{exc}") from exc
        return [None] * len(items)

    def kept_for(self, info_hash: bytes | str) -> tuple[bool, bool]:
        """(Blocking: a row looked up, a stat.) Whether a torrent's metainfo, and its resume
        data, are kept in the state folder."""
        key = bytes.fromhex(info_hash) if isinstance(info_hash, str) else info_hash
        return self.kept is not None and self.kept.has(key), self._resume_kept(key)

    def _resume_kept(self, key: bytes) -> bool:
        """(Blocking: a stat.) Whether resume data is kept for ``key``: a row, or a file of an
        earlier version."""
        if key in self._resume_rows:
            return True
        path = self._state_file(key, RESUME)
        return path is not None and path.exists()

    def _delete_resume(self, key: bytes) -> None:
        """(Blocking.) ``key``'s resume data forgotten: its row and any file of an earlier version."""
        self._delete_resume_many([key])

    def _delete_resume_many(self, keys: Sequence[bytes]) -> None:
        """(Blocking.) Each key's resume data forgotten: the rows in one transaction, and any file
        of an earlier version."""
        for key in keys:
            path = self._state_file(key, RESUME)
            if path is not None:
                path.unlink(missing_ok=True)
        rows = [key for key in keys if key in self._resume_rows]
        if self.kept is not None and rows:
            self.kept.delete_resume_many(rows)
            self._resume_rows.difference_update(rows)

    def saved_resume(self, info_hash: bytes | str) -> ResumeData | None:
        """(Blocking: a small read.) A torrent's resume data as kept: its row, else a resume file
        of an earlier version; None when there is none (or it cannot be read: its data is
        checked again)."""
        key = bytes.fromhex(info_hash) if isinstance(info_hash, str) else info_hash
        if self.kept is not None and key in self._resume_rows:
            try:
                data = self.kept.get_resume(key)
                if data is not None:
                    return decode_resume(data)
            except (OSError, BencodeError):
                return None
        path = self._state_file(key, RESUME)
        return load_resume(path) if path is not None else None

    async def _save_placeholder(self, key: bytes, save_path: Path, seed_mode: bool) -> None:
        """A first resume record for a torrent added: the save path must survive a restart even
        before the first real save; with no file stamps this placeholder is never trusted, so a
        restart rechecks whatever is on disk (in seed mode: verifies each piece as it is first
        served). Not written over resume data kept already; one that cannot be written is
        logged (a restart checks the data again)."""
        if self.kept is None:
            return
        try:
            await self.keep_resume(key, _placeholder(key, save_path, seed_mode), unless_kept=True)
        except StorageError as exc:
            log.warning("cannot keep the first resume data of %s: %s", key.hex(), exc)

    async def _run_session(self, session: Session, *,
                           task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        try:
            await session.run(task_status=task_status)
        finally:
            if self._sessions.get(session.info_hash) is session and session.state.value == "error":
                log.warning("session %s ended with an error: %s", session.name, session.status().error)

    def _forget(self, info_hash: bytes) -> None:
        self._sessions.pop(info_hash, None)
        undo = self._undo_forward.pop(info_hash, None)
        if callable(undo):
            undo()

    async def remove(self, info_hash: bytes | str | Session, *, delete_files: bool = False,
                     keep_saved: bool = False) -> None:
        """Stop a session and forget it (its state files too, unless ``keep_saved``: its metainfo
        and resume data, as the stop wrote them, stay until ``add``ed again or ``forget_saved``);
        optionally delete its data."""
        if isinstance(info_hash, Session):
            key = info_hash.info_hash
        else:
            key = bytes.fromhex(info_hash) if isinstance(info_hash, str) else info_hash
        session = self._sessions.get(key)
        if session is None:
            raise SessionError(f"no torrent {key.hex()} in this manager")
        if delete_files:
            await session.cancel(delete_files=True)
        else:
            await session.stop()
        self._forget(key)
        if keep_saved:
            return
        await anyio.to_thread.run_sync(self._drop_saved, key)

    async def unload(self, info_hash: bytes | str) -> None:
        """Stop a session and forget it, keeping its saved metainfo and resume data: added again
        later (``add`` with its saved metainfo), it goes on from what was verified."""
        key = bytes.fromhex(info_hash) if isinstance(info_hash, str) else info_hash
        session = self._sessions.get(key)
        if session is None:
            raise SessionError(f"no torrent {key.hex()} in this manager")
        await session.stop()
        self._forget(key)

    async def suspend(self, info_hash: bytes | str) -> tuple[tuple[TrackerMemory, ...], float]:
        """As ``unload``, but no tracker is told ``stopped`` (``Session.suspend``): what its
        trackers know of the torrent, and in how many seconds its next announce is due, for
        whoever announces it from now on (and for its next session: ``SessionSetup.announced``)."""
        key = bytes.fromhex(info_hash) if isinstance(info_hash, str) else info_hash
        session = self._sessions.get(key)
        if session is None:
            raise SessionError(f"no torrent {key.hex()} in this manager")
        handed = await session.suspend()
        self._forget(key)
        return handed

    def forget_resume(self, info_hash: bytes | str) -> None:
        """Remove the saved resume data of a torrent that has no session: started again, it
        hashes the data on disk (blocking file I/O: call it on a worker thread)."""
        key = bytes.fromhex(info_hash) if isinstance(info_hash, str) else info_hash
        if key in self._sessions:
            raise SessionError(f"torrent {key.hex()} has a session: remove it instead")
        self._delete_resume(key)

    def forget_saved(self, info_hash: bytes | str) -> None:
        """Remove the saved metainfo and resume data of a torrent that has no session (one its
        owner no longer records); blocking file I/O (call it on a worker thread)."""
        key = bytes.fromhex(info_hash) if isinstance(info_hash, str) else info_hash
        if key in self._sessions:
            raise SessionError(f"torrent {key.hex()} has a session: remove it instead")
        self._drop_saved(key)

    async def drop_saved(self, info_hash: bytes | str) -> None:
        """``forget_saved`` with the others asked meanwhile, one transaction a group (a removal of
        ten thousand torrents without a session: a few, not ten thousand). ``StorageError`` when
        they cannot be removed."""
        key = bytes.fromhex(info_hash) if isinstance(info_hash, str) else info_hash
        if key in self._sessions:
            raise SessionError(f"torrent {key.hex()} has a session: remove it instead")
        await self._saved_drops.run(key)

    def _drop_saved_group(self, keys: list[bytes]) -> list[None]:
        """(A worker thread.) A group of ``drop_saved``."""
        try:
            self._drop_saved_many(keys)
        except OSError as exc:
            raise StorageError(f"cannot remove saved torrents from {self.kept.path if self.kept else '-'}: "
                               f"{exc}") from exc
        return [None] * len(keys)

    def _drop_saved(self, key: bytes) -> None:
        """(Blocking.) ``key``'s kept metainfo, resume file and exported copy, removed."""
        self._drop_saved_many([key])

    def _drop_saved_many(self, keys: Sequence[bytes]) -> None:
        """(Blocking.) Each key's kept metainfo and resume row (one transaction), resume file
        and exported copy, removed."""
        if self.kept is not None:
            self.kept.delete_many(keys)  # (their metainfo and their resume rows)
            self._resume_rows.difference_update(keys)
        for key in keys:
            for path in (self._state_file(key, RESUME), self.exported_metainfo_path(key)):
                if path is not None:
                    path.unlink(missing_ok=True)

    @property
    def keeps_saved(self) -> bool:
        """Whether the metainfo and resume data of the torrents added are kept (a state folder)."""
        return self.kept is not None

    def saved_metainfo_bytes(self, info_hash: bytes | str) -> bytes | None:
        """The metainfo kept for a torrent, as it is (None: none, or no state folder); blocking
        (a small read: a worker thread, or the caller's for one); ``OSError`` when the store
        cannot be read."""
        key = bytes.fromhex(info_hash) if isinstance(info_hash, str) else info_hash
        return self.kept.get(key) if self.kept is not None else None

    def saved_metainfo(self, info_hash: bytes | str) -> Torrent | None:
        """The metainfo kept for a torrent (``load_saved_metainfo``), None when there is none;
        blocking, as ``saved_metainfo_bytes``; ``MetainfoError`` when what is kept is damaged."""
        data = self.saved_metainfo_bytes(info_hash)
        return None if data is None else load_saved_metainfo(data)

    def exported_metainfo_path(self, info_hash: bytes | str) -> Path | None:
        """Where ``export_metainfo`` writes a torrent's .torrent for other programs to read
        (``STATE_DIR/exported/<info-hash>.torrent``; None without a state folder)."""
        if self.config.state_dir is None:
            return None
        key = info_hash if isinstance(info_hash, str) else info_hash.hex()
        return Path(self.config.state_dir) / EXPORTED / f"{key}.torrent"

    def export_metainfo(self, info_hashes: Sequence[str]) -> set[str]:
        """(Blocking: a worker thread.) Each torrent's kept metainfo written as a .torrent file at
        ``exported_metainfo_path`` (atomically; not fsynced: a copy, written again when lost);
        the info-hashes whose file is there now (those with no metainfo kept yet are not)."""
        done: set[str] = set()
        for key in info_hashes:
            path = self.exported_metainfo_path(key)
            data = self.saved_metainfo_bytes(key) if path is not None else None
            if path is None or data is None:
                continue
            try:
                if not (path.is_file() and path.read_bytes() == data):
                    write_atomic(path, data, durable=False)
            except OSError as exc:
                log.warning("cannot export the metainfo of %s to %s: %s", key, path, exc)
                continue
            done.add(key)
        return done

    # -- persistence ---------------------------------------------------------------------
    def _read_resume_rows(self) -> set[bytes]:
        """(Blocking: one small query, as the manager is entered.) The info-hashes with a resume
        row; none when the store cannot be read (their sessions check their data again)."""
        if self.kept is None:
            return set()
        try:
            return self.kept.resume_keys()
        except OSError as exc:
            log.warning("cannot read the resume data kept in %s: %s", self.kept.path, exc)
            return set()

    def _remove_stale_writes(self) -> None:
        """Remove the temporary files an interrupted write left in the state folder."""
        if self.config.state_dir is None:
            return
        folder = Path(self.config.state_dir) / "torrents"
        for stale in remove_stale_temp_files(folder.parent) + remove_stale_temp_files(folder):
            log.info("removed %s, left by an interrupted write", stale)

    def saved_torrents(self) -> SavedTorrents:
        """What the state folder keeps, by info-hash: the metainfo kept (an earlier layout's files
        taken in first) and the resume data (its rows, and the resume files an earlier version
        left in ``torrents/``), one query and one listing for an owner that looks for many
        (blocking: a worker thread)."""
        if self.config.state_dir is None or self.kept is None:
            return SavedTorrents(frozenset(), frozenset())
        metainfo = frozenset(key.hex() for key in self.kept.keys())
        try:
            names = os.listdir(Path(self.config.state_dir) / "torrents")
        except FileNotFoundError:
            names = []
        resume = frozenset(name[:-len(RESUME)] for name in names if name.endswith(RESUME))
        return SavedTorrents(metainfo, resume | {key.hex() for key in list(self._resume_rows)})

    def saved(self) -> list[bytes]:
        """The info-hashes (those the torrents were added by) of the torrents whose metainfo or
        resume data is kept in the state folder (blocking: call it on a worker thread)."""
        return self.saved_torrents().keys()


@dataclass(frozen=True)
class SavedTorrents:
    """What a manager's state folder keeps (``TorrentManager.saved_torrents``): the info-hashes,
    in hex, with metainfo kept, and with resume data kept (a row, or an earlier version's file)."""

    metainfo: frozenset[str]
    resume: frozenset[str]

    def keys(self) -> list[bytes]:
        """Every info-hash with something kept (a name that is no hex: not the manager's file)."""
        found: set[bytes] = set()
        for key in self.metainfo | self.resume:
            try:
                found.add(bytes.fromhex(key))
            except ValueError:
                continue
        return sorted(found)


def _placeholder(key: bytes, save_path: Path, seed_mode: bool) -> ResumeData:
    """The first resume data of a torrent added (``TorrentManager._save_placeholder``): its save
    path, and no file stamps, so that it vouches for nothing on disk."""
    return ResumeData(info_hash=key, save_path=str(real_path(save_path)), have=b"", num_pieces=0,
                      added_time=int(time.time()), seed_mode=seed_mode)


@dataclass(frozen=True, slots=True)
class DownloadSummary:
    """What :func:`download` returns."""

    name: str
    info_hash: str
    save_path: str
    size: int  # payload bytes
    seconds: float
    downloaded: int  # bytes received from peers (0 when the data was already there)
    hash_failures: int

    @property
    def rate(self) -> float:
        """Average download rate in bytes per second."""
        return self.downloaded / self.seconds if self.seconds > 0 else 0.0


def download(torrent: TorrentSource, save_path: str | os.PathLike[str], *, config: Config | None = None,
             peers: tuple[tuple[str, int], ...] = (), timeout: float | None = None,
             progress: Callable[[SessionStatus], object] | None = None) -> DownloadSummary:
    """Blocking convenience: download ``torrent`` (a ``Torrent``, a .torrent path or its bytes, or
    a magnet link) into ``save_path`` and return a summary. It prints nothing; ``progress`` is
    called with the session's status about once a second (on the engine's thread), and once
    more with the final status (progress 1.0) when the download completed.

    Runs its own event loop; returns once every piece is verified. Raises ``SessionError`` if the
    session stops first, ``DownloadTimeout`` (a ``TimeoutError``) after ``timeout`` seconds.
    """
    from .runtime import run

    cfg = config if config is not None else Config()
    cfg.seed = False

    async def main() -> DownloadSummary:
        started = time.monotonic()
        async with TorrentManager(cfg) as manager:
            session = await manager.add(torrent, save_path, peers=peers)
            try:
                with anyio.fail_after(timeout):
                    async with anyio.create_task_group() as tg:
                        if progress is not None:
                            tg.start_soon(_report, session, progress)
                        await session.wait_completed()
                        tg.cancel_scope.cancel()
                if progress is not None:
                    _call_progress(progress, session)  # (the last word is the completed status)
            except TimeoutError:
                st = session.status()
                raise DownloadTimeout(f"{session.name} was not complete after {timeout:g} s "
                                      f"({st.progress:.1%} of {st.total_wanted} bytes)") from None
            return DownloadSummary(name=session.name, info_hash=session.info_hash_hex,
                                   save_path=str(save_path), size=session.torrent.payload_size,
                                   seconds=time.monotonic() - started, downloaded=session.downloaded,
                                   hash_failures=session.hash_failures)

    return run(main)


async def _report(session: Session, progress: Callable[[SessionStatus], object]) -> None:
    while True:
        _call_progress(progress, session)
        await anyio.sleep(1.0)


def _call_progress(progress: Callable[[SessionStatus], object], session: Session) -> None:
    try:
        progress(session.status())
    except Exception:  # the caller's callback must not break the download
        log.exception("download progress callback failed")


@dataclass(frozen=True, slots=True)
class _ResumeRow:
    """A torrent's resume data kept as a row of its manager's store (``ResumeKeeper``)."""

    manager: TorrentManager
    key: bytes

    def load(self) -> ResumeData | None:
        return self.manager.saved_resume(self.key)

    def store(self, data: ResumeData, *, durable: bool = True) -> None:
        self.manager._keep_resume_group([(self.key, data, False)])  # (a transaction: always durable)

    async def save(self, data: ResumeData, *, durable: bool = True) -> None:
        await self.manager.keep_resume(self.key, data)

    def delete(self) -> None:
        self.manager._delete_resume(self.key)
