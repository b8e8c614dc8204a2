"""Many torrents in one process: one ``SharedResources`` and a registry of running sessions.

``async with TorrentManager(config) as manager:`` starts the shared services' owner; ``add``
starts a session (and saves its metainfo and resume data in ``config.state_dir``), ``remove``
stops one. The manager holds no torrent back and reloads none of its own: which torrents exist,
whether they are paused or queued, is its owner's record (the job service's), and a restart is
that owner adding each again with ``add_saved``, from what the state folder holds. Every
session's events are re-published on ``manager.events``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import anyio
import anyio.abc

from ..config import Config
from ..errors import BencodeError, DownloadTimeout, MetainfoError, SessionError
from ..events import EventBus
from ..formats.bencode import decode_with_spans
from ..formats.magnet import Magnet
from ..formats.metainfo import Torrent
from ..net.tracker.coordinator import TrackerMemory
from ..session import Session, SessionSetup, SessionStatus
from ..storage.paths import real_path
from ..storage.resume import (
    ResumeData,
    remove_stale_temp_files,
    save_resume,
    write_atomic,
    write_atomic_many,
)
from .addtorrent import add_torrent_of
from .resolve import resolve
from .shared import SharedResources

log = logging.getLogger(__name__)

TorrentSource = Torrent | Magnet | str | os.PathLike[str] | bytes


class TorrentManager:
    """Runs N sessions over one SharedResources (listen socket, DHT, bandwidth)."""

    def __init__(self, config: Config | None = None) -> None:
        self.config = config if config is not None else Config()
        self.events = EventBus()
        self.shared = SharedResources(self.config, events=self.events)
        self._sessions: dict[bytes, Session] = {}
        self._undo_forward: dict[bytes, object] = {}
        self._stack: AsyncExitStack | None = None
        self._tg: anyio.abc.TaskGroup | None = None

    # -- context -------------------------------------------------------------------------
    async def __aenter__(self) -> TorrentManager:
        stack = AsyncExitStack()
        await stack.enter_async_context(self.shared)
        self._tg = await stack.enter_async_context(anyio.create_task_group())
        self._stack = stack
        try:
            self._remove_stale_writes()
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        try:
            with anyio.CancelScope(shield=True):
                for session in list(self._sessions.values()):
                    await session.stop()
                self._sessions.clear()
        finally:  # (the group was entered on this task: it is closed whatever a stop raised)
            stack, self._stack = self._stack, None
            self._tg = None
            if stack is not None:
                await stack.aclose()

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
                  info_hash: bytes | None = None, seed_mode: bool = False) -> Session:
        """Start a session for a ``Torrent``, a .torrent path or its bytes, or a magnet link
        (URI or ``Magnet``: the session first fetches the metadata from peers, BEP 9).

        ``setup``: what the owner tells the new session before it starts (its file priorities,
        limits ...: ``SessionSetup``), which the session applies as it is made, so that no piece
        of a skipped file is requested first. ``info_hash``: the
        hash a saved hybrid torrent was added by, when not its v1 one (a restart keeps it).
        ``seed_mode``: the data is complete on disk (see ``Session``): seeding at once, no check;
        a restart keeps it (the resume data says so) until a piece that fails ends it.
        ``DescriptorLimitReached`` when the process has nearly no file descriptor left."""
        self.shared.check_descriptors("cannot add a torrent")
        torrent = await self._load_source(source)
        return await self._start(torrent, Path(save_path), peers=peers, paused=paused, persist=True,
                                 setup=setup, info_hash=info_hash, seed_mode=seed_mode)

    async def add_saved(self, torrent: Torrent, save_path: str | os.PathLike[str], *,
                        info_hash: bytes | None = None, peers: tuple[tuple[str, int], ...] = (),
                        paused: bool = False, setup: SessionSetup | None = None,
                        seed_mode: bool = False) -> Session:
        """Start a session again for a torrent this manager saved before (its metainfo, as
        ``saved_metainfo_path`` holds it, and its resume data): nothing is written, and it goes
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
                     info_hash: bytes | None = None, seed_mode: bool = False) -> Session:
        if self._tg is None:
            raise SessionError("TorrentManager is not entered (use 'async with')")
        key = info_hash or torrent.info_hash  # (a hybrid added again keeps the hash it was added by)
        if key in self._sessions:
            raise SessionError(f"torrent {key.hex()} is already added")
        resume_path = self._state_file(key, ".resume")
        metainfo_path = self._state_file(key, ".torrent")
        # the session (re)writes the metainfo when a magnet's info dict, or v2 piece layers the
        # metainfo lacks, arrive from peers
        lacking = isinstance(torrent, Torrent) and bool(torrent.missing_piece_layers)
        session = Session(torrent, save_path, config=self.config, shared=self.shared, peers=peers,
                          resume_path=resume_path, paused=paused, info_hash=info_hash, seed_mode=seed_mode,
                          setup=setup,
                          metainfo_path=metainfo_path if (isinstance(torrent, Magnet) and persist) or lacking
                          else None)
        self._sessions[key] = session
        self._undo_forward[key] = session.events.forward_to(self.events)
        if persist and isinstance(torrent, Torrent):
            try:
                await anyio.to_thread.run_sync(self._save_metainfo, key, torrent)
            except BaseException:
                self._forget(key)  # (not saved: not added)
                raise
        try:
            await self._tg.start(self._run_session, session)
        except BaseException:
            self._forget(key)
            raise
        if persist:
            await anyio.to_thread.run_sync(self._save_placeholder, key, save_path, seed_mode)
        return session

    def save_torrents(self, torrents: Sequence[Torrent]) -> None:
        """Save each torrent in the state folder as ``add`` does, without starting a session: its
        owner starts one later with ``add_saved`` (the job service's dormant seeds), and its
        records say where its data is. Written together (``write_atomic_many``: each fsynced,
        one sync of the state folder for all). Blocking file I/O; nothing without a state folder."""
        files: list[tuple[Path, bytes, bool]] = []
        for torrent in torrents:
            metainfo_path = self._state_file(torrent.info_hash, ".torrent")
            if metainfo_path is None:
                return
            files.append((metainfo_path, torrent.to_bytes(), True))
        write_atomic_many(files)

    def _save_metainfo(self, key: bytes, torrent: Torrent) -> None:
        """(In a worker thread.) The metainfo of a torrent added, in the state folder."""
        metainfo_path = self._state_file(key, ".torrent")
        if metainfo_path is not None:
            write_atomic(metainfo_path, torrent.to_bytes())

    def _save_placeholder(self, key: bytes, save_path: Path, seed_mode: bool) -> None:
        """(In a worker thread.) A first resume record for a torrent added: the save path must
        survive a restart even before the first real save; with no file stamps this placeholder
        is never trusted, so a restart rechecks whatever is on disk (in seed mode: verifies each
        piece as it is first served)."""
        resume_path = self._state_file(key, ".resume")
        if resume_path is not None and not resume_path.exists():
            placeholder = ResumeData(info_hash=key, save_path=str(real_path(save_path)), have=b"",
                                     num_pieces=0, added_time=int(time.time()), seed_mode=seed_mode)
            save_resume(resume_path, placeholder)

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
        for suffix in (".torrent", ".resume"):
            path = self._state_file(key, suffix)
            if path is not None:
                path.unlink(missing_ok=True)

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
        path = self._state_file(key, ".resume")
        if path is not None:
            path.unlink(missing_ok=True)

    def forget_saved(self, info_hash: bytes | str) -> None:
        """Remove the saved metainfo and resume data of a torrent that has no session (one its
        owner no longer records); blocking file I/O (call it on a worker thread)."""
        key = bytes.fromhex(info_hash) if isinstance(info_hash, str) else info_hash
        if key in self._sessions:
            raise SessionError(f"torrent {key.hex()} has a session: remove it instead")
        for suffix in (".torrent", ".resume"):
            path = self._state_file(key, suffix)
            if path is not None:
                path.unlink(missing_ok=True)

    def saved_metainfo_path(self, info_hash: bytes | str) -> Path | None:
        """Where the metainfo of a torrent is saved (None without a state folder)."""
        key = bytes.fromhex(info_hash) if isinstance(info_hash, str) else info_hash
        return self._state_file(key, ".torrent")

    def saved_resume_path(self, info_hash: bytes | str) -> Path | None:
        """Where the resume data of a torrent is saved (None without a state folder)."""
        key = bytes.fromhex(info_hash) if isinstance(info_hash, str) else info_hash
        return self._state_file(key, ".resume")

    # -- persistence ---------------------------------------------------------------------
    def _remove_stale_writes(self) -> None:
        """Remove the temporary files an interrupted write left in the state folder."""
        if self.config.state_dir is None:
            return
        folder = Path(self.config.state_dir) / "torrents"
        for stale in remove_stale_temp_files(folder.parent) + remove_stale_temp_files(folder):
            log.info("removed %s, left by an interrupted write", stale)

    def saved_files(self) -> set[str]:
        """The names of the files in the state folder's ``torrents/`` (``<info-hash>.torrent``,
        ``.resume``): one listing, for an owner that looks for many (blocking: a worker thread)."""
        if self.config.state_dir is None:
            return set()
        folder = Path(self.config.state_dir) / "torrents"
        try:
            return set(os.listdir(folder))
        except FileNotFoundError:
            return set()

    def saved(self, files: set[str] | None = None) -> list[bytes]:
        """The info-hashes (those the torrents were added by) of the torrents whose metainfo or
        resume data is saved in the state folder (blocking: call it on a worker thread);
        ``files``: the folder's listing (``saved_files``), when the caller has it already."""
        found: set[bytes] = set()
        for name in self.saved_files() if files is None else files:
            stem, dot, suffix = name.rpartition(".")
            if dot and suffix in ("torrent", "resume"):
                try:
                    found.add(bytes.fromhex(stem))
                except ValueError:
                    continue  # (not a file this manager wrote)
        return sorted(found)


def load_saved_metainfo(path: Path) -> Torrent:
    """A saved .torrent; one written for a magnet link may lack v2 piece layers (they are not in
    the BEP 9 metadata), which ``Torrent.load`` refuses, so then the info dict is taken alone."""
    try:
        return Torrent.load(path)
    except MetainfoError as first:
        data = path.read_bytes()
        try:
            value, spans = decode_with_spans(data, strict=False)
        except BencodeError:
            raise first from None
        if not isinstance(value, dict) or b"info" not in spans:
            raise first from None
        start, end = spans[b"info"]
        tiers: list[list[str]] = []
        announce_list = value.get(b"announce-list")
        if isinstance(announce_list, list):
            for tier in announce_list:
                if isinstance(tier, list):
                    tiers.append([u.decode("utf-8", "replace") for u in tier if isinstance(u, bytes)])
        return Torrent.from_info_bytes(data[start:end], trackers=tiers)


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
