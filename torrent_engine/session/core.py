"""The ``Session`` facade: one torrent's public API, its life (``run``) and its state changes.

What happens to the torrent is done by named parts, each in its own module and owning its own
state (they reach the session's shared facts, e.g. the picker, the peer pool and the connected
peers, through it; these underscore names are package-private, not public API):

- ``connector.Connector``: dialing and incoming hand-off; ``peer_handler.PeerHandler``: the wire
  protocol per peer; ``requesting``: queue depth, slow start, snubbing, timeouts (pure);
- ``pieces.Pieces``: piece assembly and verification, with ``smart_ban.SmartBan`` (pure);
- ``upload.Uploader``: serving requests and the choker; ``pex``: what we tell peers (BEP 11);
  ``holepunch.Holepunch``: BEP 55 relay, initiator and ``connect`` dials;
- ``metadata.MetadataClient``: BEP 9 for magnets; ``checking.Checker``: checking, resume data;
- ``metadata.MetadataClient``: BEP 9 for magnets; ``layers.PieceLayers``: BEP 52 piece layers
  the metainfo lacks, asked of peers; ``checking.Checker``: checking, resume data;
- ``announce.Announcer``: trackers and DHT; ``stats.Stats``: rates, the tick, stall diagnosis;
- ``webseeds.SessionWebSeeds``: BEP 19 web seeds, fed by the picker like peers;
- ``peer_pool.PeerPool`` (pure): every address heard of, bans, back-off.

The session borrows a ``SharedResources`` and owns everything else in its own task groups:
``run()`` holds the session-level group (stats, verification, resume saving); the "swarm" group
inside it holds peers, trackers, the DHT loop and the choker and is cancelled by ``pause()`` and
``stop()``. So stopping leaves no task behind.

Invariants:
- The picker exists from the moment the metadata is known; storage from ``run()`` on. The picker
  is the one record of what is verified (``have``), what is in flight at whom (with send times)
  and who sent each block of a piece being downloaded.
- A piece counts as had only after its hash check passed and its data was written.
- Bans live only in the peer pool; a banned address is never dialed or accepted again.
"""

from __future__ import annotations

import logging
import math
import os
import random
import time
from collections.abc import Iterable, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from types import TracebackType

import anyio
import anyio.abc

from .. import events as ev
from ..bitfield import Bitfield
from ..config import Config
from ..errors import SessionError, TorrentEngineError, typed_failure
from ..magnet import Magnet
from ..metainfo import Torrent
from ..peer import messages as m
from ..peer_io import handshaker_for
from ..picker import PiecePicker
from ..resume import ResumeData, stamp_files, write_atomic
from ..session_state import SessionStateMachine, State
from ..shared import SharedResources, TokenBucket
from ..storage import PieceStorage, Storage, StorageFactory
from ..webseed import WebSeedState
from .announce import Announcer
from .checking import Checker
from .connector import Connector
from .holepunch import Holepunch
from .layers import PieceLayers
from .metadata import MetadataClient
from .peer import PeerState, fan_out
from .peer_handler import PeerHandler
from .peer_pool import PeerPool
from .pieces import Pieces
from .stats import Stats
from .status import SessionStatus, session_status
from .upload import Uploader
from .webseeds import SessionWebSeeds

log = logging.getLogger("torrent_engine.session")


class Session:
    """Download and seed one torrent.

    Standalone: ``async with Session(torrent, save_path, config=cfg) as s: await s.wait_completed()``
    (it then owns a private ``SharedResources``). Under a ``TorrentManager`` the manager starts
    ``run`` in its task group with a shared ``SharedResources``.
    """

    def __init__(self, torrent: Torrent | Magnet, save_path: str | os.PathLike[str], *,
                 config: Config | None = None, shared: SharedResources | None = None,
                 peers: Iterable[tuple[str, int]] = (), events: ev.EventBus | None = None,
                 resume_path: Path | None = None, metainfo_path: Path | None = None,
                 rng: random.Random | None = None, paused: bool = False,
                 storage: StorageFactory = Storage, info_hash: bytes | None = None) -> None:
        self._torrent: Torrent | None = None
        self.magnet = torrent if isinstance(torrent, Magnet) else None
        self._metainfo_path = metainfo_path  # where to save the metainfo once it (or a layer) arrives
        self.save_path = Path(save_path)
        self.config = config if config is not None else Config()
        self.events = events if events is not None else ev.EventBus()
        # the 20 bytes peers know the torrent by: a hybrid first fetched by a btmh magnet keeps
        # its truncated v2 info-hash when restarted from its saved metainfo (``info_hash``)
        self.info_hash = torrent.info_hash
        if info_hash is not None and isinstance(torrent, Torrent):
            v2 = torrent.info_hash_v2[:20] if torrent.info_hash_v2 is not None else None
            if info_hash not in (torrent.info_hash_v1, v2):
                raise SessionError(f"{info_hash.hex()} is neither info-hash of {torrent.name!r}")
            self.info_hash = info_hash
        self.info_hash_hex = self.info_hash.hex()
        self._machine = SessionStateMachine(self.events, self.info_hash_hex)
        self._shared = shared
        self._rng = rng if rng is not None else random.Random()
        self._start_paused = paused
        self._make_storage = storage  # (torrent, save path) -> PieceStorage
        self._storage: PieceStorage | None = None
        self._picker: PiecePicker
        self._peers: dict[tuple[str, int], PeerState] = {}
        self._pool = PeerPool()  # every address heard of, in order; bans; back-off
        self.file_priorities: list[int] = []
        self._total_wanted = 0
        self.downloaded = 0
        self.uploaded = 0
        self.wasted = 0
        # this torrent's own limits (bytes/s, 0 = none), on top of the shared ones
        self.download_limit = TokenBucket(0)
        self.upload_limit = TokenBucket(0)
        self.banned_count = 0
        self._error = ""
        self._tg: anyio.abc.TaskGroup | None = None
        self._swarm: anyio.abc.TaskGroup | None = None
        self._swarm_scope: anyio.CancelScope | None = None
        self._wakeup = anyio.Event()
        self._stop_requested = False
        self._delete_on_stop = False
        self._finished = anyio.Event()
        self._completed = anyio.Event()
        self._ready = anyio.Event()
        self._ran = False
        self._own_stack: AsyncExitStack | None = None
        # the parts (see the module docstring)
        self.connector = Connector(self)
        self.handler = PeerHandler(self)
        self.holepunch = Holepunch(self)
        self.pieces = Pieces(self)
        self.uploader = Uploader(self)
        self.metadata = MetadataClient(self)
        self.layers = PieceLayers(self)
        self.checker = Checker(self, resume_path)
        self.announcer = Announcer(self)
        self.stats = Stats(self)
        self.webseeds = SessionWebSeeds(self)
        peers = list(peers)
        self._given_peers = len(peers)  # addresses the user gave: a peer source of their own
        if isinstance(torrent, Torrent):
            self._set_torrent(torrent)
        else:
            self.add_peers(torrent.peers)
        for host, port in peers:
            self.add_peer(host, port)

    def _set_torrent(self, torrent: Torrent) -> None:
        self._torrent = torrent
        self._picker = PiecePicker(torrent, self._rng)
        self.file_priorities = [0 if f.pad else 4 for f in torrent.files]
        self._total_wanted = self._picker.left_bytes()
        self.layers.start(torrent)

    @property
    def torrent(self) -> Torrent:
        """The metainfo (for a magnet link: once the metadata has arrived)."""
        if self._torrent is None:
            raise SessionError("the torrent's metadata has not been received yet")
        return self._torrent

    @property
    def finished(self) -> bool:
        """Whether run() has ended (stopped or failed)."""
        return self._finished.is_set()

    @property
    def has_metadata(self) -> bool:
        """Whether the info dictionary is known (always for a .torrent; a magnet once fetched)."""
        return self._torrent is not None

    @property
    def private(self) -> bool:
        """Whether the torrent is private (BEP 27: no DHT, PEX or LSD)."""
        return self._torrent is not None and self._torrent.private

    @property
    def rechecked(self) -> bool:
        """Whether start-up hashed the data on disk (no usable resume data)."""
        return self.checker.rechecked

    @property
    def hash_failures(self) -> int:
        """Pieces that failed their hash check."""
        return self.pieces.hash_failures

    # -- public --------------------------------------------------------------------------
    @property
    def state(self) -> State:
        """The session's state."""
        return self._machine.state

    @property
    def name(self) -> str:
        """The torrent's name (a magnet's display name, else its info-hash, until the metadata comes)."""
        if self._torrent is not None:
            return self._torrent.name
        if self.magnet is not None and self.magnet.display_name:
            return self.magnet.display_name
        return self.info_hash_hex

    @property
    def have(self) -> Bitfield:
        """The verified pieces (read only)."""
        return self._picker.have if self._torrent is not None else Bitfield(0)

    @property
    def peers(self) -> list[PeerState]:
        """The connected peers."""
        return list(self._peers.values())

    @property
    def pool(self) -> PeerPool:
        """The peer pool: every address heard of, with its bans and dial back-off (to read:
        ``is_banned``, ``in``, ``pool[address].failures``; the session's parts change it)."""
        return self._pool

    @property
    def picker(self) -> PiecePicker:
        """The piece picker, the one record of what is verified, what is in flight at whom and
        who sent each block (to read: ``in_flight``, ``requests_of``); only with the metadata."""
        if self._torrent is None:
            raise SessionError("the torrent's metadata has not been received yet")
        return self._picker

    @property
    def shared(self) -> SharedResources | None:
        """The shared resources the session borrows (listen socket, peer id, DHT), if any yet."""
        return self._shared

    @property
    def web_seeds(self) -> list[WebSeedState]:
        """The BEP 19 web seeds in use so far: URL, bytes served, last error, why given up."""
        return self.webseeds.states()

    @property
    def listen_port(self) -> int:
        """The TCP port incoming peers connect to (0 until the session runs)."""
        return self._shared.listen_port if self._shared is not None else 0

    def add_peer(self, host: str, port: int) -> None:
        """Add one peer address to the pool."""
        self.add_peers([(host, port)])

    def add_peers(self, peers: Iterable[tuple[str, int]]) -> None:
        """Add addresses to the peer pool (de-duplicated; our own address and banned ones dropped)."""
        added = False
        for host, port in peers:
            key = (host, int(port))
            if self._pool.full:
                break
            if not self._is_self(key) and self._pool.add(key):
                added = True
        if added:
            self.connector.wake()

    def _is_self(self, key: tuple[str, int]) -> bool:
        port = self.listen_port
        # literal addresses only; another name for us is caught by the peer id in the handshake
        own_hosts = ("127.0.0.1", "0.0.0.0", "::1", self.config.listen_host)
        return port != 0 and key[1] == port and key[0] in own_hosts

    def status(self) -> SessionStatus:
        """A snapshot of the session's state, progress, rates and peers."""
        return session_status(self)

    async def _until(self, event: anyio.Event) -> None:
        """Wait for ``event``, or for the session to end."""
        async with anyio.create_task_group() as tg:
            async def watch_finish() -> None:
                await self._finished.wait()
                tg.cancel_scope.cancel()
            tg.start_soon(watch_finish)
            await event.wait()
            tg.cancel_scope.cancel()

    async def wait_completed(self) -> None:
        """Return when every wanted piece is verified; ``SessionError`` if the session stops first."""
        if not self._completed.is_set():
            await self._until(self._completed)
        if not self._completed.is_set():
            raise SessionError(f"session {self.name} ended ({self.state.value}) before completing"
                               + (f": {self._error}" if self._error else ""))

    async def wait_ready(self) -> None:
        """Return once checking is over (the session downloads, seeds, is paused or has ended)."""
        await self._until(self._ready)

    async def pause(self) -> None:
        """Disconnect peers and stop trackers, keeping pieces, picker and files ready to resume."""
        if self.state is State.PAUSED:
            return
        self._machine.to(State.PAUSED)
        for peer in self._peers.values():
            peer.close("paused")
        if self._swarm_scope is not None:
            self._swarm_scope.cancel()

    async def resume(self) -> None:
        """Resume a paused session; ``SessionError`` if it is not paused."""
        if self.state is not State.PAUSED:
            raise SessionError(f"resume() in state {self.state.value}")
        if self._active_state() is State.SEEDING and not self._completed.is_set():
            # the last piece passed while paused: complete now (event, tracker, wait_completed)
            self._machine.to(State.DOWNLOADING)
            self._wakeup.set()
            await self._on_complete()
            return
        state = self._active_state()
        self._machine.to(state)
        if state is State.SEEDING and not self.config.seed:
            self._stop_requested = True  # complete already and not asked to seed: done (as in run())
        self._wakeup.set()

    async def stop(self) -> None:
        """Disconnect everything, close files, write resume data, release the shared resources."""
        self._stop_requested = True
        self._wakeup.set()
        if self._tg is not None:
            self._tg.cancel_scope.cancel()
        if self._ran:
            await self._finished.wait()
        elif not self._finished.is_set():  # never ran (e.g. queued): nothing to stop, end its waiters
            if self._machine.can(State.STOPPED):
                self._machine.to(State.STOPPED)
            self._finished.set()
        if self._own_stack is not None:
            stack, self._own_stack = self._own_stack, None
            await stack.aclose()

    async def cancel(self, *, delete_files: bool = True) -> None:
        """Stop at once; with ``delete_files`` the torrent's files (partial or not) are removed."""
        self._delete_on_stop = delete_files
        await self.stop()
        if delete_files and not self.checker.files_deleted and self._torrent is not None:
            await self.checker.delete_files()  # it had ended already (stopped, error) or never ran

    async def __aenter__(self) -> Session:
        stack = AsyncExitStack()
        try:
            if self._shared is None:
                shared = SharedResources(self.config, events=self.events)
                self._shared = await stack.enter_async_context(shared)
            tg = await stack.enter_async_context(anyio.create_task_group())
            await tg.start(self.run)
        except BaseException:
            await stack.aclose()
            raise
        self._own_stack = stack
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    # -- pieces and priorities -----------------------------------------------------------
    def set_rate_limits(self, *, download: int | None = None, upload: int | None = None) -> None:
        """This torrent's own limits in bytes per second (0 = none; None = unchanged), applied on
        top of the manager's shared limits."""
        for value, name in ((download, "download"), (upload, "upload")):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise SessionError(f"{name} limit must be whole bytes per second, at least 0: {value!r}")
        if download is not None:
            self.download_limit = TokenBucket(download)
        if upload is not None:
            self.upload_limit = TokenBucket(upload)

    def set_sequential(self, sequential: bool) -> None:
        """New pieces in index order instead of rarest-first (e.g. to play a file as it arrives)."""
        if self._torrent is None:
            raise SessionError("sequential mode needs the torrent's metadata")
        self._picker.set_sequential(sequential)

    def set_file_priorities(self, priorities: Sequence[int]) -> None:
        """Priority per file (0 = skip, 1..7 = download; higher first)."""
        if len(priorities) != len(self.torrent.files):
            raise SessionError("one priority per file is needed")
        self.file_priorities = [max(0, min(7, int(p))) for p in priorities]
        self._picker.set_file_priorities([p if not f.pad else 0 for p, f in
                                          zip(self.file_priorities, self.torrent.files, strict=True)])
        files = zip(self.torrent.files, self.file_priorities, strict=True)
        self._total_wanted = sum(f.length for f, p in files if p > 0 and not f.pad)
        if self.state is State.SEEDING and not self._is_complete():
            self._machine.to(State.DOWNLOADING)
        elif self.state is State.DOWNLOADING and self._is_complete() and self._tg is not None:
            # what is left is in skipped files: complete as when the last piece passes
            self._tg.start_soon(self._on_complete)

    def _is_complete(self) -> bool:
        return self._picker.is_complete()

    def _active_state(self) -> State:
        if self._torrent is None:
            return State.DOWNLOADING_METADATA
        return State.SEEDING if self._is_complete() else State.DOWNLOADING

    # -- life ----------------------------------------------------------------------------
    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """The session's life: acquire shared resources, check, download/seed until stopped."""
        if self._ran:
            raise SessionError("a Session runs once; create a new one to restart")
        if self._shared is None:
            raise SessionError("Session.run() needs a SharedResources (or use 'async with Session')")
        self._ran = True
        shared = self._shared
        acquired = started = False
        try:
            await shared.acquire()
            acquired = True
            shared.set_handshaker(handshaker_for(shared))
            self.connector.register(shared)
            self.connector.register_other_hashes()
            if self._torrent is not None:
                self._storage = self._make_storage(self._torrent, self.save_path)
            task_status.started()
            started = True
            async with anyio.create_task_group() as tg:
                self._tg = tg
                if self._stop_requested:
                    tg.cancel_scope.cancel()
                tg.start_soon(self.stats.run)
                if self._torrent is None:
                    await self._fetch_metadata()
                    self._storage = self._make_storage(self.torrent, self.save_path)
                await self._check()
                if self._start_paused and self.state is not State.PAUSED:
                    self._machine.to(State.PAUSED)
                self._start_paused = False
                self._ready.set()
                if self.state is State.SEEDING and not self.config.seed:
                    self._stop_requested = True  # complete already and not asked to seed: done
                await self._live()
                tg.cancel_scope.cancel()  # _live returns once a stop was asked for: end the loops too
        except Exception as exc:
            typed = typed_failure(exc)
            if typed is None:  # a bug must not take the manager down with it
                self._error = f"internal error: {exc!r}"
                log.exception("session %s crashed", self.name)
            else:  # bad input or failed I/O, however deep in the task groups it was raised
                self._error = f"{typed} (while {self.state.value})"
                log.warning("session %s failed: %s", self.name, self._error)
            if self._machine.can(State.ERROR):
                self._machine.to(State.ERROR, error=self._error)
            if not started:
                raise  # to the caller of start/__aenter__ (e.g. the listen port is in use)
        finally:
            with anyio.CancelScope(shield=True):
                await self._shutdown(acquired)

    async def _shutdown(self, acquired: bool) -> None:
        shared = self._shared
        try:
            await self.announcer.stop()
            if self._storage is not None:
                if self._delete_on_stop:
                    await self.checker.delete_files()
                else:
                    try:
                        await self.checker.save()  # (flushes the files first: before they are closed)
                    finally:
                        await self._storage.close()
        finally:
            if shared is not None:
                self.connector.unregister(shared)
                if acquired:
                    await shared.release()
            if self._machine.can(State.STOPPED):
                self._machine.to(State.STOPPED)
            self._tg = None
            self._finished.set()

    async def _swarm_until(self, done: anyio.Event | None, *, choker: bool) -> None:
        """Run the swarm (connector, trackers, DHT, choker) until ``done`` is set, or until a pause
        or stop cancels it; then close its peers."""
        with anyio.CancelScope() as scope:  # pause() cancels it
            self._swarm_scope = scope
            async with anyio.create_task_group() as swarm:
                self._swarm = swarm
                swarm.start_soon(self.connector.run)
                if choker:
                    swarm.start_soon(self.uploader.choker_loop)
                self.announcer.start(swarm)
                self.webseeds.start(swarm)  # (none until the metadata is known)
                if done is None:
                    await anyio.sleep(math.inf)
                await done.wait()  # type: ignore[union-attr]
                scope.cancel()
        self._swarm = None
        self._swarm_scope = None
        for peer in list(self._peers.values()):
            peer.close("paused")
        self.connector.reset()

    async def _wait_while_paused(self) -> bool:
        """Block while paused; True if it was paused (the caller looks at the state again)."""
        if self.state is not State.PAUSED:
            return False
        self._wakeup = anyio.Event()
        await self._wakeup.wait()
        return True

    async def _fetch_metadata(self) -> None:
        """A magnet: find peers (given, trackers, DHT), fetch the info dict, become a full session."""
        if self.state is not State.PAUSED:  # (paused before it ran, e.g. while queued: stays paused)
            self._machine.to(State.PAUSED if self._start_paused else State.DOWNLOADING_METADATA)
        self._start_paused = False  # applied
        while not self.metadata.done.is_set():
            if not await self._wait_while_paused():
                await self._swarm_until(self.metadata.done, choker=False)
        self.metadata.finish()
        self.announcer.forget()  # the full session announces afresh
        self._pool.forgive_all()  # the metadata peers are dialed again for the data
        assert self.metadata.result is not None
        trackers = self.magnet.trackers if self.magnet is not None else ()
        web_seeds = self.magnet.web_seeds if self.magnet is not None else ()
        torrent = Torrent.from_info_bytes(self.metadata.result, trackers=trackers, web_seeds=web_seeds)
        self._set_torrent(torrent)
        self.connector.register_other_hashes()
        if self.magnet is not None and self.magnet.select_only:
            self.set_file_priorities([4 if self.magnet.selected(i) and not f.pad else 0
                                      for i, f in enumerate(torrent.files)])
        await self.save_metainfo()

    async def save_metainfo(self) -> None:
        """Write the metainfo where the owner asked (when a magnet's info dict, or v2 piece layers
        the metainfo lacked, arrive), so a restart needs neither again."""
        if self._metainfo_path is not None and self._torrent is not None:
            try:
                await anyio.to_thread.run_sync(write_atomic, self._metainfo_path, self._torrent.to_bytes())
            except OSError as exc:
                log.warning("cannot save the metainfo of %s: %s", self.name, exc)

    async def _check(self) -> None:
        await self.checker.check()
        if self._is_complete():
            self._completed.set()
        if self.state is State.PAUSED:
            return  # paused while checking: resume() picks the state
        if self.state is State.DOWNLOADING and self._is_complete():
            self._machine.to(State.SEEDING)  # resumed while checking, and the data was all there
        elif self.state is not State.DOWNLOADING:
            self._machine.to(self._active_state())

    async def _live(self) -> None:
        while not self._stop_requested:
            if not await self._wait_while_paused():
                await self._swarm_until(None, choker=True)

    async def _maybe_complete(self) -> None:
        """A piece passed: complete once every wanted piece is in."""
        if self.state is State.DOWNLOADING and self._is_complete():
            await self._on_complete()

    async def _on_complete(self) -> None:
        if self.state is not State.DOWNLOADING or not self._is_complete():
            return  # (set_file_priorities started it, and a last piece or a new priority came first)
        self.checker.completed_time = int(time.time())
        await self.layers.learn_rest()  # (a hybrid without its v2 layers builds them from its data)
        if self.state is not State.DOWNLOADING or not self._is_complete():
            return
        self.pieces.drop_spares()
        self._machine.to(State.SEEDING)
        self._completed.set()
        self.announcer.completed()
        await self.checker.save()
        for peer in list(self._peers.values()):
            if peer.is_seed:
                peer.close("both seeds")
        interested = [p for p in self._peers.values() if p.am_interested and not p.closed]
        for peer in interested:
            peer.am_interested = False
        await fan_out(interested, lambda peer: peer.send(m.NotInterested()), self.config.control_send_timeout)
        if not self.config.seed:
            self._stop_requested = True
            if self._tg is not None:
                self._tg.cancel_scope.cancel()

    async def _fail(self, exc: TorrentEngineError) -> None:
        self._error = str(exc)
        log.warning("session %s: %s", self.name, exc)
        if self._machine.can(State.ERROR):
            self._machine.to(State.ERROR, error=str(exc))
        self._stop_requested = True
        if self._tg is not None:
            self._tg.cancel_scope.cancel()

    def _ban(self, key: tuple[str, int]) -> None:
        if not self._pool.ban(key):
            return
        self.banned_count += 1
        log.info("banned peer %s:%d of %s after bad data", key[0], key[1], self.name)
        peer = self._peers.get(key)
        if peer is not None:
            peer.close("banned: sent data that failed the hash check")

    # -- resume data ---------------------------------------------------------------------
    def resume_data(self) -> ResumeData:
        """What a restart needs. The file stamps are taken after the have-set: a file written in
        between only makes the data look stale (recheck), never a piece look verified."""
        data = self.checker.snapshot()
        data.files = stamp_files(self.checker.file_paths() if self._storage is not None else [])
        return data
