"""One torrent: its state machine, peers, picker, storage, trackers, DHT announces and choker.

A ``Session`` borrows a ``SharedResources`` (listen socket, DHT, bandwidth) and owns everything
else in its own task groups: ``run()`` holds the session-level group (stats, verification,
resume saving); the "swarm" group inside it holds peers, trackers, the DHT loop and the choker
and is cancelled by ``pause()`` and ``stop()``. So stopping leaves no task behind.

Blocks of a piece are assembled in memory; a complete piece is hashed in a worker thread and only
then written, so the disk only ever holds data that passed its hash check.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import random
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, cast

import anyio
import anyio.abc

from .. import events as ev
from ..bitfield import Bitfield
from ..choker import ChokePeer, Choker
from ..config import Config
from ..errors import (
    EncryptionError,
    PeerProtocolError,
    SessionError,
    StorageError,
    TorrentEngineError,
    typed_failure,
)
from ..magnet import Magnet
from ..metainfo import Torrent
from ..peer import messages as m
from ..peer.extensions import (
    PEX_ENCRYPTION,
    PEX_INTERVAL,
    PEX_REACHABLE,
    PEX_SEED,
    UT_METADATA,
    UT_PEX,
    ExtensionHandshake,
    MetadataData,
    MetadataReject,
    MetadataRequest,
    PexMessage,
    PexState,
    decode_metadata_message,
    encode_metadata_message,
    metadata_piece,
)
from ..peer.messages import BLOCK_SIZE
from ..peer.metadata_fetch import MetadataFetcher, Verdict
from ..peer_io import handshaker_for, open_connection
from ..picker import Block, PiecePicker
from ..resume import (
    ResumeData,
    load_resume,
    save_resume,
    stamp_files,
    trusted_pieces,
    write_atomic,
)
from ..session_state import SessionStateMachine, State
from ..shared import SharedResources, TokenBucket
from ..stall import Stall, StallDetector, SwarmFacts
from ..storage import Storage
from ..tracker.coordinator import AnnounceStats, TrackerCoordinator
from ..verify import check_piece_on_disk, piece_ok, recheck
from ..version import CLIENT_VERSION
from .peer_pool import PeerPool

log = logging.getLogger("torrent_engine.session")

DEFAULT_PEER_REQQ = 250  # BEP 10: libtorrent's default when the peer sends no 'reqq'
OUR_REQQ = 500  # BEP 10: how many requests we queue for one peer
OUR_UT_METADATA_ID = 2  # BEP 9/10: the id we ask peers to send ut_metadata messages with
OUR_UT_PEX_ID = 3  # BEP 11/10: the id we ask peers to send ut_pex messages with
METADATA_PEER_TIMEOUT = 60.0  # a magnet's peer has this long to send its extension handshake
PIECE_CACHE_BYTES = 32 * 1024 * 1024  # read cache for seeding: whole pieces, LRU
KEEPALIVE_AFTER = 90.0  # seconds without sending anything before a keep-alive (BEP 3: 2 min timeout)
UPLOAD_RUN_BYTES = 256 * 1024  # block bytes sent in one write when the peer has that many queued
READ_AHEAD_PIECES = 2  # pieces read ahead of the upload queue's head
READ_AHEAD_SCAN = 128  # how far down the upload queue read ahead looks
REQUEST_BATCH = 128  # requests are sent once this many slots are free (or a quarter of the queue)



@dataclass(eq=False)
class PeerState:
    """What the session knows about one connected peer (all mutated on the event loop)."""

    host: str
    port: int
    link: Any
    incoming: bool
    have: Bitfield
    client: str = ""
    am_choking: bool = True
    am_interested: bool = False
    peer_choking: bool = True
    peer_interested: bool = False
    fast: bool = False
    extension: bool = False
    reqq: int = DEFAULT_PEER_REQQ
    ut_metadata: int = 0  # the peer's id for ut_metadata messages (0: it has none)
    ut_pex: int = 0  # the peer's id for ut_pex messages (0: it has none)
    listen_port: int | None = None  # from its extension handshake ('p')
    pex: PexState = field(default_factory=PexState)
    last_pex: float = -math.inf
    outstanding: dict[tuple[int, int], float] = field(default_factory=dict)  # (index, begin) -> sent at
    allowed_fast: set[int] = field(default_factory=set)
    upload_queue: deque[m.Request] = field(default_factory=deque)
    upload_wakeup: anyio.Event = field(default_factory=anyio.Event)
    connected_at: float = 0.0
    last_block: float = 0.0
    last_sent: float = 0.0
    snubbed: bool = False
    slow_start: bool = True
    queue_target: int = 4
    downloaded: int = 0
    uploaded: int = 0
    down_window: int = 0
    up_window: int = 0
    down_rate: float = 0.0
    up_rate: float = 0.0
    unchoked_at: float | None = None
    uploaded_at_unchoke: int = 0
    closed: bool = False
    close_reason: str = ""
    scope: anyio.CancelScope | None = None

    @property
    def key(self) -> tuple[str, int]:
        """The peer's ``(host, port)``."""
        return (self.host, self.port)

    @property
    def address(self) -> str:
        """The peer as ``host:port``."""
        return f"{self.host}:{self.port}"

    @property
    def is_seed(self) -> bool:
        """Whether the peer has every piece."""
        return self.have.all()

    async def send(self, *msgs: m.Message) -> None:
        """Send ``msgs`` to the peer in one write."""
        self.last_sent = time.monotonic()
        await self.link.send_many(msgs)

    def close(self, reason: str) -> None:
        """Close the peer's link (``reason`` is logged and published)."""
        if not self.closed:
            self.closed = True
            self.close_reason = reason
        if self.scope is not None:
            self.scope.cancel()


@dataclass(eq=False)
class _DirectPiece:
    """A piece whose blocks go straight to disk (memory cap reached): its writes in flight."""

    pending: int = 0
    idle: anyio.Event = field(default_factory=anyio.Event)


@dataclass(frozen=True, slots=True)
class SessionStatus:
    """A snapshot of a session: state, progress, bytes, rates, peers and ETA."""

    name: str
    info_hash: str
    state: str
    progress: float
    total_wanted: int
    have_bytes: int
    downloaded: int
    uploaded: int
    download_rate: float
    upload_rate: float
    peers: int
    seeds: int
    eta: float | None
    pieces: int
    num_pieces: int
    listen_port: int
    error: str = ""
    # why a download has not progressed for Config.stall_after seconds (None while it moves)
    stall_reason: str | None = None  # a StallReason value
    stall_message: str | None = None


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
                 rng: random.Random | None = None, paused: bool = False) -> None:
        self._torrent: Torrent | None = None
        self.magnet = torrent if isinstance(torrent, Magnet) else None
        self._metainfo_path = metainfo_path  # where to save the metainfo once a magnet's arrives
        self.save_path = Path(save_path)
        self.config = config if config is not None else Config()
        self.events = events if events is not None else ev.EventBus()
        self.info_hash = torrent.info_hash
        self.info_hash_hex = self.info_hash.hex()
        self._machine = SessionStateMachine(self.events, self.info_hash_hex)
        self._shared = shared
        self._rng = rng if rng is not None else random.Random()
        self._resume_path = resume_path
        self._start_paused = paused
        self._storage: Storage | None = None
        self._picker: PiecePicker
        self._choker: Choker | None = None
        self._peers: dict[tuple[str, int], PeerState] = {}
        self._pool = PeerPool()  # every address heard of, in order; bans; back-off
        self._connecting: set[tuple[str, int]] = set()
        self._bad_pieces: dict[tuple[str, int], int] = {}
        self._buffers: dict[int, bytearray] = {}  # pieces being downloaded, assembled in memory
        self._buffered_bytes = 0  # in _buffers and in pieces being verified (piece_buffer_bytes caps it)
        self._verify_bytes = 0  # of _buffered_bytes: the buffers of pieces being verified
        self._spare_buffers: list[bytearray] = []  # piece buffers to reuse (no allocation per piece)
        self._room = anyio.Event()  # set when a verified piece gives its buffer back
        self._direct: dict[int, _DirectPiece] = {}  # pieces written to disk as their blocks come
        self._sources: dict[int, dict[int, tuple[str, int]]] = {}  # piece -> block number -> sender
        # failed pieces that several peers contributed to: block number -> (sha1 of block, sender);
        # compared with the good data once the piece passes, to find who sent the bad blocks
        self._suspects: dict[int, dict[int, tuple[bytes, tuple[str, int]]]] = {}
        self._verifying: set[int] = set()
        self._piece_cache: OrderedDict[int, bytes] = OrderedDict()
        self._piece_cache_bytes = 0
        self._reading: dict[int, anyio.Event] = {}  # pieces being read into the cache
        self._file_priorities: list[int] = []
        self._total_wanted = 0
        # BEP 9 for a magnet: the one record of what was asked of whom and who sent what, so a
        # liar (wrong sizes, sprayed or false pieces) cannot stall the download
        self._fetcher: MetadataFetcher | None = None
        self._metadata_gone: set[tuple[str, int]] = set()  # metadata peers the fetcher dropped
        self._metadata: bytes | None = None
        self._metadata_done = anyio.Event()
        self.downloaded = 0
        self.uploaded = 0
        self.wasted = 0
        self.hash_failures = 0
        # this torrent's own limits (bytes/s, 0 = none), on top of the shared ones
        self.download_limit = TokenBucket(0)
        self.upload_limit = TokenBucket(0)
        self.rechecked = False  # whether start-up hashed the data on disk (no usable resume data)
        self.banned_count = 0
        self._down_rate = 0.0
        self._up_rate = 0.0
        self._down_window = 0
        self._up_window = 0
        self._added_time = int(time.time())
        self._completed_time = 0
        self._error = ""
        self._tg: anyio.abc.TaskGroup | None = None
        self._swarm: anyio.abc.TaskGroup | None = None
        self._swarm_scope: anyio.CancelScope | None = None
        self._wakeup = anyio.Event()
        self._connect_wakeup = anyio.Event()
        self._stop_requested = False
        self._delete_on_stop = False
        self._files_deleted = False
        self._finished = anyio.Event()
        self._completed = anyio.Event()
        self._ready = anyio.Event()
        self._ran = False
        self._tracker: Any = None
        self._own_stack: AsyncExitStack | None = None
        self._rechoke_now = anyio.Event()
        self._stall_detector = StallDetector(self.config.stall_after)
        self._stall: Stall | None = None
        self._encryption_refused: set[tuple[str, int]] = set()  # dialed, refused on the policy
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
        self._file_priorities = [0 if f.pad else 4 for f in torrent.files]
        self._total_wanted = self._picker.left_bytes()

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
            self._connect_wakeup.set()

    def _is_self(self, key: tuple[str, int]) -> bool:
        port = self.listen_port
        # literal addresses only; another name for us is caught by the peer id in the handshake
        own_hosts = ("127.0.0.1", "0.0.0.0", "::1", self.config.listen_host)
        return port != 0 and key[1] == port and key[0] in own_hosts

    def status(self) -> SessionStatus:
        """A snapshot of the session's state, progress, rates and peers."""
        wanted = self._total_wanted
        left = self._picker.left_bytes() if self._torrent is not None else 0
        have_bytes = max(0, wanted - left)
        progress = (1.0 if wanted == 0 else have_bytes / wanted) if self._torrent is not None else 0.0
        eta: float | None = None
        if left == 0 and self._torrent is not None:
            eta = 0.0
        elif self._down_rate > 0:
            eta = left / self._down_rate
        return SessionStatus(
            name=self.name, info_hash=self.info_hash_hex, state=self.state.value, progress=progress,
            total_wanted=wanted, have_bytes=have_bytes, downloaded=self.downloaded, uploaded=self.uploaded,
            download_rate=self._down_rate, upload_rate=self._up_rate, peers=len(self._peers),
            seeds=sum(1 for p in self._peers.values() if p.is_seed), eta=eta, pieces=len(self.have),
            num_pieces=self._torrent.num_pieces if self._torrent is not None else 0,
            listen_port=self.listen_port, error=self._error,
            stall_reason=self._stall.reason.value if self._stall is not None else None,
            stall_message=self._stall.message if self._stall is not None else None)

    async def wait_completed(self) -> None:
        """Return when every wanted piece is verified; ``SessionError`` if the session stops first."""
        if self._completed.is_set():
            return
        async with anyio.create_task_group() as tg:
            async def watch_finish() -> None:
                await self._finished.wait()
                tg.cancel_scope.cancel()
            tg.start_soon(watch_finish)
            await self._completed.wait()
            tg.cancel_scope.cancel()
        if not self._completed.is_set():
            raise SessionError(f"session {self.name} ended ({self.state.value}) before completing"
                               + (f": {self._error}" if self._error else ""))

    async def wait_ready(self) -> None:
        """Return once checking is over (the session downloads, seeds, is paused or has ended)."""
        async with anyio.create_task_group() as tg:
            async def watch_finish() -> None:
                await self._finished.wait()
                tg.cancel_scope.cancel()
            tg.start_soon(watch_finish)
            await self._ready.wait()
            tg.cancel_scope.cancel()

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
        if delete_files and not self._files_deleted and self._torrent is not None:
            await self._delete_files()  # it had ended already (stopped, error) or never ran

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

    # -- main body -----------------------------------------------------------------------
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
            shared.register(self.info_hash, self._on_incoming)
            if self._torrent is not None:
                self._storage = Storage(self._torrent, self.save_path)
            task_status.started()
            started = True
            async with anyio.create_task_group() as tg:
                self._tg = tg
                if self._stop_requested:
                    tg.cancel_scope.cancel()
                tg.start_soon(self._stats_loop)
                if self._torrent is None:
                    await self._fetch_metadata()
                    self._storage = Storage(self.torrent, self.save_path)
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
            if self._tracker is not None:
                tracker, self._tracker = self._tracker, None
                with anyio.move_on_after(5):
                    try:
                        await tracker.stop()
                    except Exception as exc:  # a dead tracker must not block a stop
                        log.debug("tracker stop failed: %s", exc)
            if self._storage is not None:
                if self._delete_on_stop:
                    await self._delete_files()
                else:
                    try:
                        await self._save_resume()  # (flushes the files first: before they are closed)
                    finally:
                        await self._storage.close()
        finally:
            if shared is not None:
                shared.unregister(self.info_hash)
                if acquired:
                    await shared.release()
            if self._machine.can(State.STOPPED):
                self._machine.to(State.STOPPED)
            self._tg = None
            self._finished.set()

    async def _delete_files(self) -> None:
        """Remove the torrent's files (and its resume data); nothing else on disk."""
        self._files_deleted = True
        try:
            storage = self._storage if self._storage is not None else Storage(self.torrent, self.save_path)
            await storage.delete_files()
        except StorageError as exc:
            log.warning("cannot delete files of %s: %s", self.name, exc)
        if self._resume_path is not None:
            self._resume_path.unlink(missing_ok=True)

    # -- magnet links: the metadata phase (BEP 9) ----------------------------------------------
    async def _fetch_metadata(self) -> None:
        """Find peers (given, trackers, DHT), fetch the info dict from them, become a full session."""
        if self.state is not State.PAUSED:  # (paused before it ran, e.g. while queued: stays paused)
            self._machine.to(State.PAUSED if self._start_paused else State.DOWNLOADING_METADATA)
        self._start_paused = False  # applied
        while not self._metadata_done.is_set():
            if self.state is State.PAUSED:
                self._wakeup = anyio.Event()
                await self._wakeup.wait()
                continue
            with anyio.CancelScope() as scope:  # pause() cancels it
                self._swarm_scope = scope
                async with anyio.create_task_group() as swarm:
                    self._swarm = swarm
                    swarm.start_soon(self._connector)
                    self._start_trackers(swarm)
                    self._start_dht(swarm)
                    await self._metadata_done.wait()
                    scope.cancel()
        self._swarm = None
        self._swarm_scope = None
        self._fetcher = None  # (its pieces are no longer needed)
        self._metadata_gone.clear()
        self._tracker = None  # the full session announces afresh
        self._connecting.clear()
        self._pool.forgive_all()  # the metadata peers are dialed again for the data
        assert self._metadata is not None
        trackers = self.magnet.trackers if self.magnet is not None else ()
        torrent = Torrent.from_info_bytes(self._metadata, trackers=trackers)
        self._set_torrent(torrent)
        if self.magnet is not None and self.magnet.select_only:
            self.set_file_priorities([4 if self.magnet.selected(i) and not f.pad else 0
                                      for i, f in enumerate(torrent.files)])
        if self._metainfo_path is not None:
            try:
                await anyio.to_thread.run_sync(write_atomic, self._metainfo_path, torrent.to_bytes())
            except OSError as exc:
                log.warning("cannot save the metainfo of %s: %s", self.name, exc)

    def _metadata_fetcher(self) -> MetadataFetcher:
        if self._fetcher is None:
            info_hash = (self.magnet.info_hash_v1 or self.magnet.info_hash_v2
                         if self.magnet is not None else None) or self.info_hash
            self._fetcher = MetadataFetcher(info_hash)
        return self._fetcher

    def _metadata_drops(self, fetcher: MetadataFetcher) -> None:
        """Ban the peers the fetcher proved to lie; let every dropped one's task end."""
        for dropped in fetcher.take_dropped():
            key = cast(tuple[str, int], dropped.peer_key)
            log.info("metadata peer %s:%d dropped: %s", key[0], key[1], dropped.reason)
            self._metadata_gone.add(key)
            if dropped.banned:
                self._ban(key)

    async def _metadata_from(self, link: Any, key: tuple[str, int]) -> None:
        """Fetch the metadata from one peer, as the shared fetcher directs: what to ask it for,
        what of its answers to keep, and when to give up on it."""
        fetcher = self._metadata_fetcher()
        self._metadata_gone.discard(key)
        try:
            if not link.extension:
                return
            await link.send_many([m.Extended(0, self._extension_handshake(with_metadata=False))])
            peer_id = 0
            deadline = time.monotonic() + METADATA_PEER_TIMEOUT  # to send its extension handshake
            while not self._metadata_done.is_set():
                now = time.monotonic()
                fetcher.tick(now)
                self._metadata_drops(fetcher)
                if key in self._metadata_gone or (not peer_id and now > deadline):
                    return
                if peer_id:
                    pieces = fetcher.next_requests(key, now)
                    if pieces:
                        await link.send_many([m.Extended(peer_id, encode_metadata_message(MetadataRequest(i)))
                                              for i in pieces])
                msg = None
                with anyio.move_on_after(1.0):  # (requests freed elsewhere are picked up each second)
                    msg = await link.receive()
                if not isinstance(msg, m.Extended):
                    continue
                if msg.ext_id == 0:
                    hs = ExtensionHandshake.decode(msg.payload)
                    peer_id = hs.m.get(UT_METADATA, 0)
                    if not peer_id or hs.metadata_size is None:
                        return  # it cannot give us the metadata
                    if not fetcher.add_peer(key, hs.metadata_size):
                        return
                elif msg.ext_id == OUR_UT_METADATA_ID and peer_id:
                    data = decode_metadata_message(msg.payload)
                    if isinstance(data, MetadataReject):
                        fetcher.on_reject(key, data.piece, time.monotonic())
                    elif isinstance(data, MetadataData):
                        now = time.monotonic()
                        verdict = fetcher.on_data(key, data.piece, data.data, data.total_size, now)
                        if verdict is Verdict.COMPLETE:
                            self._metadata = fetcher.result()
                            self._metadata_done.set()
        except (PeerProtocolError, OSError, anyio.BrokenResourceError, anyio.EndOfStream) as exc:
            log.info("metadata from %s:%d failed: %s", key[0], key[1], exc)
        finally:
            if self._fetcher is not None:
                self._fetcher.remove_peer(key)
            with anyio.CancelScope(shield=True):
                await link.aclose()
            self._connecting.discard(key)  # (a metadata peer counts against the connection budget)
            if not self._metadata_done.is_set():
                self._pool.failed(key, time.monotonic(), quick=True)

    # -- checking ------------------------------------------------------------------------
    def _file_paths(self) -> list[Path | None]:
        assert self._storage is not None
        return [self._storage.file_path(i) for i in range(len(self.torrent.files))]

    async def _check(self) -> None:
        assert self._storage is not None
        resume = None
        if self._resume_path is not None:
            resume = await anyio.to_thread.run_sync(load_resume, self._resume_path)
        if resume is not None and len(resume.file_priorities) == len(self.torrent.files):
            self.set_file_priorities(resume.file_priorities)
        if resume is not None:
            self.uploaded = resume.uploaded
            self.downloaded = resume.downloaded
            self._added_time = resume.added_time or self._added_time
            self._completed_time = resume.completed_time
        current = await anyio.to_thread.run_sync(stamp_files, self._file_paths())
        pieces = trusted_pieces(resume, info_hash=self.info_hash, num_pieces=self.torrent.num_pieces,
                                save_path=str(self.save_path.resolve()), current=current)
        if pieces is None:
            on_disk = any(p is not None and p.exists() for p in self._file_paths())
            if on_disk:
                paused = self.state is State.PAUSED  # paused before the check began: paused after it
                self._machine.to(State.CHECKING)
                self.rechecked = True
                pieces = await self._recheck()
                if paused and self.state is State.CHECKING:
                    self._machine.to(State.PAUSED)
            else:
                pieces = set()
        for index in pieces:
            self._picker.piece_passed(index)
        if self._is_complete():
            self._completed.set()
        if self.state is State.PAUSED:
            return  # paused while checking: resume() picks the state
        if self.state is State.DOWNLOADING and self._is_complete():
            self._machine.to(State.SEEDING)  # resumed while checking, and the data was all there
        elif self.state is not State.DOWNLOADING:
            self._machine.to(self._active_state())

    async def _recheck(self) -> set[int]:
        """Hash every piece on disk (verify.recheck: both cores), reporting progress as events."""
        assert self._storage is not None
        last_report = 0.0

        def progress(done: int, total: int) -> None:
            nonlocal last_report
            now = time.monotonic()
            if now - last_report > 0.5 or done == total:
                last_report = now
                self.events.publish(ev.SessionChecking(info_hash=self.info_hash_hex,
                                                       progress=done / total if total else 1.0))

        found = await recheck(self.torrent, self._storage, progress)
        return set(found)

    def _hash_ok(self, index: int, data: bytearray) -> bool:
        """Whether ``data`` is piece ``index`` (SHA-1 for v1, SHA-256 merkle for v2, both for hybrid)."""
        return piece_ok(self.torrent, index, memoryview(data))

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
        self._file_priorities = [max(0, min(7, int(p))) for p in priorities]
        self._picker.set_file_priorities([p if not f.pad else 0 for p, f in
                                          zip(self._file_priorities, self.torrent.files, strict=True)])
        files = zip(self.torrent.files, self._file_priorities, strict=True)
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

    # -- live ----------------------------------------------------------------------------
    async def _live(self) -> None:
        while not self._stop_requested:
            if self.state is State.PAUSED:
                self._wakeup = anyio.Event()
                await self._wakeup.wait()
                continue
            with anyio.CancelScope() as scope:
                self._swarm_scope = scope
                async with anyio.create_task_group() as swarm:
                    self._swarm = swarm
                    swarm.start_soon(self._connector)
                    swarm.start_soon(self._choker_loop)
                    self._start_trackers(swarm)
                    self._start_dht(swarm)
                    await anyio.sleep(math.inf)
            self._swarm = None
            self._swarm_scope = None
            for peer in list(self._peers.values()):
                peer.close("paused")
            self._connecting.clear()

    def _start_trackers(self, swarm: anyio.abc.TaskGroup) -> None:
        tiers: tuple[tuple[str, ...], ...]
        if self._torrent is not None:
            tiers = self._torrent.trackers
        else:
            tiers = tuple((url,) for url in self.magnet.trackers) if self.magnet is not None else ()
        if not self.config.tracker_enabled or not tiers:
            return
        assert self._shared is not None

        def stats() -> AnnounceStats:
            left = self._picker.left_bytes() if self._torrent is not None else 16 * 1024 * 1024
            return AnnounceStats(uploaded=self.uploaded, downloaded=self.downloaded, left=left)

        shared = self._shared
        self._tracker = TrackerCoordinator(tiers=tiers, info_hash=self.info_hash,
                                           peer_id=shared.peer_id, port=shared.listen_port, stats=stats,
                                           on_peers=self.add_peers, events=self.events,
                                           info_hash_hex=self.info_hash_hex)
        swarm.start_soon(self._tracker.run)

    def _start_dht(self, swarm: anyio.abc.TaskGroup) -> None:
        assert self._shared is not None
        private = self._torrent.private if self._torrent is not None else False
        if private or self._shared.dht is None:
            return
        swarm.start_soon(self._dht_loop)

    async def _dht_loop(self) -> None:
        assert self._shared is not None
        while True:
            dht = self._shared.dht
            if dht is None:
                return
            try:
                found = await dht.get_peers(self.info_hash)
                self.add_peers(found)
                await dht.announce_peer(self.info_hash, self._shared.listen_port)
            except TorrentEngineError as exc:
                log.debug("DHT lookup for %s failed: %s", self.name, exc)
            interval = self.config.dht_interval
            await anyio.sleep(interval if self._peers else min(60.0, interval))

    # -- connecting ----------------------------------------------------------------------
    async def _connector(self) -> None:
        while True:
            self._connect_wakeup = anyio.Event()
            self._dial_some()
            with anyio.move_on_after(2.0):
                await self._connect_wakeup.wait()

    def _dial_some(self) -> None:
        if self._swarm is None or (self.state is State.SEEDING and not self.config.seed):
            return
        now = time.monotonic()
        budget = self.config.max_peers_per_torrent - len(self._peers) - len(self._connecting)
        busy = self._peers.keys() | self._connecting
        for key in list(self._pool.candidates(now, busy)):
            if budget <= 0:
                break
            self._connecting.add(key)
            budget -= 1
            self._swarm.start_soon(self._dial, key)

    async def _dial(self, key: tuple[str, int]) -> None:
        assert self._shared is not None
        try:
            with anyio.fail_after(self.config.connect_timeout + self.config.handshake_timeout):
                t = self._torrent
                link = await open_connection(key[0], key[1], info_hash=self.info_hash,
                                             peer_id=self._shared.peer_id, config=self.config,
                                             num_pieces=t.num_pieces if t is not None else None,
                                             piece_size=t.piece_size if t is not None else None)
        except (OSError, TimeoutError, TorrentEngineError) as exc:
            log.debug("connect to %s:%d failed: %s", key[0], key[1], exc)
            if isinstance(exc, EncryptionError):
                self._encryption_refused.add(key)
            self._connecting.discard(key)
            self._pool.failed(key, time.monotonic())
            return
        if self._torrent is None:
            await self._metadata_from(link, key)  # (counted as connecting until it is done)
        else:
            self._connecting.discard(key)
            await self._serve_peer(link, key[0], key[1], incoming=False)

    def _on_incoming(self, link: Any) -> bool:
        swarm = self._swarm
        if swarm is None or self.state is State.PAUSED or self._stop_requested:
            return False
        host, port = link.remote_address
        connected = len(self._peers) + len(self._connecting)
        if self._pool.is_banned((host, port)) or connected >= self.config.max_peers_per_torrent + 10:
            return False
        if self._torrent is None:  # magnet: still fetching the metadata, which this peer may have
            self._connecting.add((host, port))
            swarm.start_soon(self._metadata_from, link, (host, port))
        else:
            swarm.start_soon(self._serve_peer, link, host, port, True)
        return True

    # -- one peer ------------------------------------------------------------------------
    async def _serve_peer(self, link: Any, host: str, port: int, incoming: bool) -> None:
        key = (host, port)
        assert self._shared is not None
        ourselves = link.peer_id == self._shared.peer_id
        duplicate = any(p.link.peer_id == link.peer_id for p in self._peers.values())
        if key in self._peers or self._pool.is_banned(key) or self._stop_requested or ourselves or duplicate:
            if ourselves:
                self._pool.never_again(key)
            elif duplicate:  # connected already (it dialed us): not every round
                self._pool.later(key, time.monotonic())
            with anyio.CancelScope(shield=True):
                await link.aclose()
            return
        now = time.monotonic()
        peer = PeerState(host=host, port=port, link=link, incoming=incoming,
                         have=Bitfield(self.torrent.num_pieces), fast=link.fast, extension=link.extension,
                         connected_at=now, last_block=now, last_sent=now,
                         queue_target=self.config.min_request_queue)
        peer.client = link.peer_id_client if hasattr(link, "peer_id_client") else ""
        self._peers[key] = peer
        if incoming:
            link.set_metadata(self.torrent.num_pieces, self.torrent.piece_size)
        self.events.publish(ev.PeerConnected(info_hash=self.info_hash_hex, address=host, port=port,
                                             client=peer.client, incoming=incoming))
        try:
            with anyio.CancelScope() as scope:
                peer.scope = scope
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._guarded, peer, self._uploader)
                    await self._guarded(peer, self._exchange)
                    tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                self._peer_gone(peer)
                await link.aclose()
            self.events.publish(ev.PeerDisconnected(info_hash=self.info_hash_hex, address=host, port=port,
                                                    reason=peer.close_reason or "closed"))

    def _peer_gone(self, peer: PeerState) -> None:
        if self._peers.get(peer.key) is peer:
            del self._peers[peer.key]
        self._picker.peer_gone(peer.key)
        peer.outstanding.clear()
        if peer.close_reason != "paused":  # do not redial at once; a seed while we seed too: much later
            now = time.monotonic()
            self._pool.dropped(peer.key, now, held_for=now - peer.connected_at,
                               both_seeds=peer.is_seed and self.state is State.SEEDING)
        if not peer.am_choking and self._swarm is not None:
            self._rechoke_now.set()

    async def _greet(self, peer: PeerState) -> None:
        msgs: list[m.Message] = []
        if peer.extension:
            msgs.append(m.Extended(0, self._extension_handshake(with_metadata=True)))
        count = len(self.have)
        if peer.fast and count == self.torrent.num_pieces:
            msgs.append(m.HaveAll())
        elif peer.fast and count == 0:
            msgs.append(m.HaveNone())
        elif count:
            msgs.append(m.Bitfield(self.have.to_bytes()))
        if msgs:
            await peer.send(*msgs)

    async def _guarded(self, peer: PeerState, body: Callable[[PeerState], Awaitable[None]]) -> None:
        """Run one of a peer's loops; a protocol error or I/O failure closes that peer only."""
        try:
            await body(peer)
        except StorageError as exc:  # (an OSError too: must come first) our disk, not the peer
            peer.close(f"storage: {exc}")
            await self._fail(exc)
        except (PeerProtocolError, OSError, anyio.BrokenResourceError, anyio.ClosedResourceError,
                anyio.EndOfStream) as exc:
            if not peer.closed:
                log.info("peer %s of %s closed: %s", peer.address, self.name, exc)
            peer.close(str(exc) or type(exc).__name__)
        except Exception as exc:  # a bug met through one peer must not take the session down
            log.exception("peer %s of %s: unexpected error", peer.address, self.name)
            peer.close(f"internal error: {exc!r}")

    async def _exchange(self, peer: PeerState) -> None:
        await self._greet(peer)
        link = peer.link
        if hasattr(link, "run"):  # each read's blocks in one synchronous pass, the rest in order
            await link.run(lambda msgs: self._on_batch(peer, msgs),
                           lambda msg: self._on_message(peer, msg))
            return
        while True:
            msg = await link.receive()
            await self._on_message(peer, msg)

    def _on_batch(self, peer: PeerState, msgs: list[m.Message]) -> int:
        """The blocks and requests at the front of one read's messages, without an await;
        returns how many messages it took (the rest go through ``_on_message``). Our requests
        are refilled once per read."""
        done = 0
        took_blocks = False
        for msg in msgs:
            if isinstance(msg, m.Piece):
                if not self._take_block(peer, msg):
                    break
                took_blocks = True
            elif not isinstance(msg, m.Request) or not self._take_request(peer, msg):
                break
            done += 1
        if took_blocks and not peer.closed:
            requests = self._pick_requests(peer)
            if requests:
                peer.last_sent = time.monotonic()
                peer.link.write(m.encode_requests(requests))
        return done

    async def _on_message(self, peer: PeerState, msg: m.Message) -> None:
        if isinstance(msg, m.Piece):
            await self._on_piece(peer, msg)
        elif isinstance(msg, m.Have):
            if msg.index not in peer.have:
                peer.have.add(msg.index)
                self._picker.peer_have(peer.key, msg.index)
                if self.state is State.SEEDING and peer.is_seed:
                    peer.close("both seeds")
                    return
                await self._update_interest(peer, new_piece=msg.index)
        elif isinstance(msg, m.Request):
            await self._on_request(peer, msg)
        elif isinstance(msg, m.Unchoke):
            peer.peer_choking = False
            await self._fill_requests(peer)
        elif isinstance(msg, m.Choke):
            peer.peer_choking = True
            if not peer.fast:  # BEP 3: a choke drops every pending request
                self._drop_requests(peer)
        elif isinstance(msg, m.Interested):
            peer.peer_interested = True
            if peer.am_choking:
                self._rechoke_now.set()
        elif isinstance(msg, m.NotInterested):
            peer.peer_interested = False
        elif isinstance(msg, (m.Bitfield, m.HaveAll, m.HaveNone)):
            # BEP 3 wants it first, but some clients (aria2) send another later: it replaces the first
            if isinstance(msg, m.Bitfield):
                try:
                    peer.have = Bitfield.from_bytes(msg.bits, self.torrent.num_pieces)
                except ValueError as exc:
                    raise PeerProtocolError(f"bad bitfield: {exc}") from None
                self._picker.peer_bitfield(peer.key, peer.have)
            elif isinstance(msg, m.HaveAll):
                peer.have = Bitfield.full(self.torrent.num_pieces)
                self._picker.peer_have_all(peer.key)
            else:
                self._picker.peer_have_none(peer.key)
            if self.state is State.SEEDING and peer.is_seed:
                peer.close("both seeds")
                return
            await self._update_interest(peer)
        elif isinstance(msg, m.Cancel):
            try:
                peer.upload_queue.remove(m.Request(msg.index, msg.begin, msg.length))
            except ValueError:
                pass
            else:
                if peer.fast:  # BEP 6: a cancelled request is still answered, with a reject
                    await peer.send(m.RejectRequest(msg.index, msg.begin, msg.length))
        elif isinstance(msg, m.RejectRequest):
            if peer.outstanding.pop((msg.index, msg.begin), None) is not None:
                self._picker.cancel_request(peer.key, Block(msg.index, msg.begin, msg.length))
            # no refill here: the same blocks would be picked and rejected again, at wire speed;
            # the stats loop tops this peer up within a second (other peers' pieces at once)
        elif isinstance(msg, m.AllowedFast):
            peer.allowed_fast.add(msg.index)
        elif isinstance(msg, m.Extended):
            if msg.ext_id == 0:
                self._on_extension_handshake(peer, msg.payload)
            elif msg.ext_id == OUR_UT_METADATA_ID:
                await self._on_metadata_message(peer, msg.payload)
            elif msg.ext_id == OUR_UT_PEX_ID and not self._private:
                pex = PexMessage.decode(msg.payload)
                self.add_peers(pex.added + pex.added6)
        # KeepAlive, Port, SuggestPiece and unknown extensions need nothing.

    def _extension_handshake(self, *, with_metadata: bool) -> bytes:
        """Our BEP 10 handshake: ut_metadata (BEP 9), client name, request queue, listen port."""
        assert self._shared is not None
        size = len(self._torrent.info_bytes) if with_metadata and self._torrent is not None else None
        extensions = {UT_METADATA: OUR_UT_METADATA_ID}
        if not self._private:
            extensions[UT_PEX] = OUR_UT_PEX_ID  # BEP 27: never PEX for a private torrent
        return ExtensionHandshake(m=extensions, v=CLIENT_VERSION, reqq=OUR_REQQ,
                                  p=self._shared.listen_port or None, metadata_size=size).encode()

    @property
    def _private(self) -> bool:
        return self._torrent is not None and self._torrent.private

    def _on_extension_handshake(self, peer: PeerState, payload: bytes) -> None:
        hs = ExtensionHandshake.decode(payload)  # a malformed one is a PeerProtocolError
        if hs.reqq is not None:
            peer.reqq = min(hs.reqq, self.config.max_request_queue)
        if hs.v:
            peer.client = hs.v[:64]
        peer.ut_metadata = hs.m.get(UT_METADATA, 0)
        peer.ut_pex = 0 if self._private else hs.m.get(UT_PEX, 0)
        peer.listen_port = hs.p

    async def _on_metadata_message(self, peer: PeerState, payload: bytes) -> None:
        """Serve our metadata (BEP 9) to a peer that came with a magnet link."""
        msg = decode_metadata_message(payload)
        if not isinstance(msg, MetadataRequest) or not peer.ut_metadata or self._torrent is None:
            return
        info = self._torrent.info_bytes
        try:
            data = metadata_piece(info, msg.piece)
            reply: MetadataData | MetadataReject = MetadataData(msg.piece, len(info), data)
        except ValueError:
            reply = MetadataReject(msg.piece)
        await peer.send(m.Extended(peer.ut_metadata, encode_metadata_message(reply)))

    async def _update_interest(self, peer: PeerState, new_piece: int | None = None) -> None:
        if self.state is not State.DOWNLOADING:
            interesting = False
        elif new_piece is not None:
            interesting = peer.am_interested or self._picker.wants_piece(new_piece)
        else:
            interesting = self._picker.is_interesting(peer.key)
        if interesting != peer.am_interested:
            peer.am_interested = interesting
            await peer.send(m.Interested() if interesting else m.NotInterested())
        if interesting:
            await self._fill_requests(peer)

    # -- downloading ---------------------------------------------------------------------
    def _queue_depth(self, peer: PeerState) -> int:
        """Requests to keep in flight: rate x request_queue_time / block size (libtorrent style)."""
        cfg = self.config
        if peer.snubbed:
            return 1
        depth = int(peer.down_rate * cfg.request_queue_time / BLOCK_SIZE)
        if peer.slow_start:
            depth = max(depth, peer.queue_target)
        return max(cfg.min_request_queue, min(depth, cfg.max_request_queue, peer.reqq))

    async def _fill_requests(self, peer: PeerState) -> None:
        blocks = self._pick_requests(peer)
        if blocks:
            await peer.send(*[m.Request(index, begin, length) for index, begin, length in blocks])

    def _pick_requests(self, peer: PeerState) -> list[tuple[int, int, int]]:
        """The requests to send ``peer`` now to keep its pipeline full (noted as outstanding)."""
        if self.state is not State.DOWNLOADING or peer.closed or not peer.am_interested:
            return []
        if peer.peer_choking and not peer.allowed_fast:
            return []
        depth = self._queue_depth(peer)
        want = depth - len(peer.outstanding)
        if want <= 0:
            return []
        if peer.outstanding and want < min(REQUEST_BATCH, max(1, depth // 4)):
            return []  # top the pipeline up in batches: one write carries many requests
        blocks = self._picker.pick(peer.key, None, want)
        if peer.peer_choking:
            for b in blocks:
                if b.index not in peer.allowed_fast:
                    self._picker.cancel_request(peer.key, b)
            blocks = [b for b in blocks if b.index in peer.allowed_fast]
        if not blocks:
            return []
        now = time.monotonic()
        outstanding = peer.outstanding
        requests: list[tuple[int, int, int]] = []
        for b in blocks:
            outstanding[(b.index, b.begin)] = now
            requests.append((b.index, b.begin, b.length))
        return requests

    def _drop_requests(self, peer: PeerState) -> None:
        self._picker.release_requests(peer.key)
        peer.outstanding.clear()

    def _take_block(self, peer: PeerState, msg: m.Piece, *, limited: bool = False) -> bool:
        """Take one block without an await: False (nothing done) when it needs one -- a rate
        limit to wait for (unless ``limited``: already waited), or a piece that would go to disk
        block by block (memory cap)."""
        assert self._shared is not None
        if not limited and not (self._shared.download_limit.unlimited and self.download_limit.unlimited):
            return False
        index, begin, length = msg.index, msg.begin, len(msg.block)
        buf = self._buffers.get(index)
        if buf is None:
            if index in self._direct:
                return False
            size = self.torrent.piece_size(index)
            if self._buffered_bytes + size > self.config.piece_buffer_bytes:
                return False
        peer.outstanding.pop((index, begin), None)
        peer.downloaded += length
        peer.down_window += length
        self._down_window += length
        self.downloaded += length
        peer.last_block = time.monotonic()
        peer.snubbed = False
        if peer.slow_start:
            peer.queue_target += 1
        result = self._picker.received(peer.key, index, begin, length)
        if not result.accepted:
            self.wasted += length
            return True
        sources = self._sources.get(index)
        if sources is None:
            sources = self._sources[index] = {}
        sources[begin // BLOCK_SIZE] = peer.key
        if buf is None:
            buf = self._buffers[index] = self._piece_buffer(size)
        buf[begin:begin + length] = msg.block
        assert self._tg is not None
        if result.piece_complete:
            self._verifying.add(index)
            del self._buffers[index]
            self._verify_bytes += len(buf)
            self._tg.start_soon(self._verify_piece, index, buf, self._sources.pop(index, {}))
        if result.cancels:
            self._tg.start_soon(self._send_cancels, result.cancels)
        return True

    def _piece_buffer(self, size: int) -> bytearray:
        """A buffer for a piece of ``size`` bytes (a spare one when it fits), counted in
        ``_buffered_bytes`` until its piece is verified."""
        self._buffered_bytes += size
        if size == self.torrent.piece_length and self._spare_buffers:
            return self._spare_buffers.pop()
        return bytearray(size)

    def _piece_buffer_done(self, buf: bytearray, *, reuse: bool) -> None:
        self._buffered_bytes -= len(buf)
        self._verify_bytes -= len(buf)
        if reuse and len(buf) == self.torrent.piece_length and self.state is State.DOWNLOADING and \
                len(self._spare_buffers) * len(buf) < self.config.piece_buffer_bytes:
            self._spare_buffers.append(buf)
        self._room.set()
        self._room = anyio.Event()

    async def _send_cancels(self, cancels: Iterable[tuple[Any, Block]]) -> None:
        """Endgame: a block came; cancel it where it was asked of others too."""
        asked: dict[PeerState, Block] = {}
        for key, block in cancels:
            other = self._peers.get(key)
            if other is None:
                continue
            if other.outstanding.pop((block.index, block.begin), None) is not None:
                asked[other] = block
        if asked:
            await self._fan_out(asked, lambda other: other.send(
                m.Cancel(asked[other].index, asked[other].begin, asked[other].length)))

    async def _on_piece(self, peer: PeerState, msg: m.Piece) -> None:
        index, begin, length = msg.index, msg.begin, len(msg.block)
        assert self._shared is not None
        if not self._shared.download_limit.unlimited:
            # waiting here stops reading the socket: TCP flow control slows the sender down
            await self._shared.download_limit.consume(length)
        if not self.download_limit.unlimited:
            await self.download_limit.consume(length)
        cap = self.config.piece_buffer_bytes
        while index not in self._buffers and index not in self._direct and self._verify_bytes and \
                self._buffered_bytes + self.torrent.piece_size(index) > cap:
            # memory is held by pieces being hashed and written: wait for them (this peer's socket
            # is not read meanwhile, so TCP slows it down) rather than write block by block
            await self._room.wait()
        if self._take_block(peer, msg, limited=True):
            await self._fill_requests(peer)
            return
        # the memory cap is reached by pieces still downloading: this one goes to disk block by block
        peer.outstanding.pop((index, begin), None)
        peer.downloaded += length
        peer.down_window += length
        self._down_window += length
        self.downloaded += length
        peer.last_block = time.monotonic()
        peer.snubbed = False
        if peer.slow_start:
            peer.queue_target += 1
        result = self._picker.block_received(peer.key, Block(index, begin, length))
        if not result.accepted:
            self.wasted += length
        else:
            self._sources.setdefault(index, {})[begin // BLOCK_SIZE] = peer.key
            buf = self._buffers.get(index)
            direct = self._direct.get(index)
            if buf is None and direct is None:
                if self._buffered_bytes + self.torrent.piece_size(index) <= self.config.piece_buffer_bytes:
                    buf = self._buffers[index] = self._piece_buffer(self.torrent.piece_size(index))
                else:  # too much in memory already: this piece goes to disk block by block
                    direct = self._direct[index] = _DirectPiece()
            if buf is not None:
                buf[begin:begin + length] = msg.block
            else:
                assert direct is not None and self._storage is not None
                direct.pending += 1
                data = bytes(msg.block)
                try:
                    with anyio.CancelScope(shield=True):  # the picker already counts it as received
                        await self._storage.write_block(index, begin, data)
                finally:
                    direct.pending -= 1
                    if not direct.pending:
                        direct.idle.set()
                        direct.idle = anyio.Event()
            if result.piece_complete:
                self._verifying.add(index)
                assert self._tg is not None
                if buf is not None:
                    del self._buffers[index]
                    self._verify_bytes += len(buf)
                    self._tg.start_soon(self._verify_piece, index, buf, self._sources.pop(index, {}))
                else:
                    self._tg.start_soon(self._verify_direct, index, self._sources.pop(index, {}))
            if result.cancels:  # endgame: the same block was asked of others too
                asked: dict[PeerState, Block] = {}
                for key, block in result.cancels:
                    other = self._peers.get(key)  # type: ignore[call-overload]
                    if other is None:
                        continue
                    if other.outstanding.pop((block.index, block.begin), None) is not None:
                        asked[other] = block
                if asked:
                    await self._fan_out(asked, lambda other: other.send(
                        m.Cancel(asked[other].index, asked[other].begin, asked[other].length)))
        await self._fill_requests(peer)

    async def _verify_direct(self, index: int, sources: dict[int, tuple[str, int]]) -> None:
        """A piece written block by block: once its last writes are done, hash it from disk."""
        direct = self._direct.pop(index)
        while direct.pending:
            await direct.idle.wait()
        assert self._storage is not None
        ok = await check_piece_on_disk(self.torrent, self._storage, index)
        self._verifying.discard(index)
        if ok:
            await self._piece_passed(index)
        else:
            await self._piece_failed(index, None, sources)

    async def _verify_piece(self, index: int, buf: bytearray, sources: dict[int, tuple[str, int]]) -> None:
        """Hash a piece assembled in memory and write it if it passes (its buffer is counted in
        ``_verify_bytes`` from the moment it is complete until this is done)."""
        assert self._storage is not None
        reuse = False
        try:
            try:  # hash, and write only if it passes: one worker-thread call
                ok = await self._storage.write_piece_if(index, buf, lambda: self._hash_ok(index, buf))
            except StorageError as exc:
                self._verifying.discard(index)
                await self._fail(exc)
                return
            self._verifying.discard(index)
            if ok:
                self._clear_suspects(index, buf)
            else:
                self._suspect_blocks(index, buf, sources)
            reuse = True  # (the worker thread is done with it, and so are the checks above)
        finally:
            self._piece_buffer_done(buf, reuse=reuse)
        if ok:
            await self._piece_passed(index)
        else:
            await self._piece_failed(index, None, sources)

    async def _fan_out(self, peers: Iterable[PeerState],
                       send: Callable[[PeerState], Awaitable[None]]) -> None:
        """Run ``send`` for each peer concurrently, each bounded by ``control_send_timeout``: a
        peer that reads nothing (its window full, our uploader blocked on it for up to the 150 s
        send timeout) must not hold up the others; once the bound passes it is closed."""
        timeout = self.config.control_send_timeout

        async def one(peer: PeerState) -> None:
            with anyio.move_on_after(timeout) as scope:
                try:
                    await send(peer)
                except PeerProtocolError:
                    peer.close("send failed")
            if scope.cancelled_caught:
                peer.close(f"unresponsive: a send blocked for {timeout:g} s")

        async with anyio.create_task_group() as tg:
            for peer in peers:
                if not peer.closed:
                    tg.start_soon(one, peer)

    async def _piece_passed(self, index: int) -> None:
        self._picker.piece_passed(index)
        self.events.publish(ev.PieceCompleted(info_hash=self.info_hash_hex, index=index))
        await self._fan_out([p for p in self._peers.values() if index not in p.have],
                            lambda peer: peer.send(m.Have(index)))
        if self.state is State.DOWNLOADING and self._is_complete():
            await self._on_complete()

    async def _piece_failed(self, index: int, buf: bytearray | None,
                            sources: dict[int, tuple[str, int]]) -> None:
        """Re-download the piece; strike its sender when one peer sent it all, else remember who
        sent which block so the culprit is found when the piece passes (libtorrent's smart ban)."""
        self.hash_failures += 1
        self._picker.piece_failed(index)
        senders = set(sources.values())
        peers = tuple(sorted(f"{h}:{p}" for h, p in senders))
        self.events.publish(ev.PieceHashFailed(info_hash=self.info_hash_hex, index=index, peers=peers))
        if len(senders) == 1:
            self._strike(next(iter(senders)))
        elif buf is not None:
            self._suspect_blocks(index, buf, sources)
        await self._fan_out(list(self._peers.values()), self._fill_requests)

    def _suspect_blocks(self, index: int, buf: bytearray, sources: dict[int, tuple[str, int]]) -> None:
        """A piece from several peers failed: remember each block's hash and sender, to find the
        culprit when the piece passes. (A piece written straight to disk has no copy to compare.)"""
        if len(set(sources.values())) < 2:
            return
        view = memoryview(buf)
        self._suspects[index] = {
            block: (hashlib.sha1(view[block * BLOCK_SIZE:(block + 1) * BLOCK_SIZE]).digest(), key)
            for block, key in sources.items()}

    def _clear_suspects(self, index: int, good: bytearray) -> None:
        suspects = self._suspects.pop(index, None)
        if not suspects:
            return
        view = memoryview(good)
        for block, (digest, key) in suspects.items():
            if hashlib.sha1(view[block * BLOCK_SIZE:(block + 1) * BLOCK_SIZE]).digest() != digest:
                self._strike(key, proven=True)

    def _strike(self, key: tuple[str, int], *, proven: bool = False) -> None:
        count = self._bad_pieces.get(key, 0) + 1
        self._bad_pieces[key] = count
        if proven or count >= self.config.max_failures_before_ban:
            self._ban(key)

    def _ban(self, key: tuple[str, int]) -> None:
        if not self._pool.ban(key):
            return
        self.banned_count += 1
        log.info("banned peer %s:%d of %s after bad data", key[0], key[1], self.name)
        peer = self._peers.get(key)
        if peer is not None:
            peer.close("banned: sent data that failed the hash check")

    async def _on_complete(self) -> None:
        if self.state is not State.DOWNLOADING or not self._is_complete():
            return  # (set_file_priorities started it, and a last piece or a new priority came first)
        self._completed_time = int(time.time())
        self._spare_buffers.clear()
        self._machine.to(State.SEEDING)
        self._completed.set()
        if self._tracker is not None:
            self._tracker.completed()
        await self._save_resume()
        for peer in list(self._peers.values()):
            if peer.is_seed:
                peer.close("both seeds")
        interested = [p for p in self._peers.values() if p.am_interested and not p.closed]
        for peer in interested:
            peer.am_interested = False
        await self._fan_out(interested, lambda peer: peer.send(m.NotInterested()))
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

    # -- uploading -----------------------------------------------------------------------
    async def _on_request(self, peer: PeerState, req: m.Request) -> None:
        if req.index not in self.have:
            raise PeerProtocolError(f"request for piece {req.index}, which we do not have")
        if peer.am_choking:
            if peer.fast:
                await peer.send(m.RejectRequest(req.index, req.begin, req.length))
            return  # BEP 3: requests from a choked peer are dropped
        if len(peer.upload_queue) >= OUR_REQQ:
            if peer.fast:
                await peer.send(m.RejectRequest(req.index, req.begin, req.length))
            return
        peer.upload_queue.append(req)
        peer.upload_wakeup.set()

    def _take_request(self, peer: PeerState, req: m.Request) -> bool:
        """``_on_request`` without an await (a reject is written, not awaited)."""
        if req.index not in self.have:
            raise PeerProtocolError(f"request for piece {req.index}, which we do not have")
        if peer.am_choking or len(peer.upload_queue) >= OUR_REQQ:
            if peer.fast:  # BEP 3 drops requests from a choked peer; BEP 6 rejects them
                peer.link.write_many([m.RejectRequest(req.index, req.begin, req.length)])
            return True
        peer.upload_queue.append(req)
        peer.upload_wakeup.set()
        return True

    async def _uploader(self, peer: PeerState) -> None:
        """Serve the peer's queued requests: runs of blocks (up to UPLOAD_RUN_BYTES) in one write,
        the pieces asked for next read ahead while a run goes out."""
        assert self._shared is not None
        limit = self._shared.upload_limit
        link = peer.link
        vectored = hasattr(link, "write_pieces")
        queue = peer.upload_queue
        while True:
            if not queue:
                peer.upload_wakeup = anyio.Event()
                await peer.upload_wakeup.wait()
                continue
            pieces: list[tuple[int, int, memoryview]] = []
            size = 0
            while queue and size < UPLOAD_RUN_BYTES and not peer.am_choking:
                req = queue[0]
                data = self._piece_cache.get(req.index)
                if data is None:
                    if pieces:
                        break  # send what is at hand first
                    data = await self._read_piece_cached(req.index)
                    if not queue or queue[0] is not req:
                        continue  # the queue changed while we read (cancel, choke)
                else:
                    self._piece_cache.move_to_end(req.index)
                queue.popleft()
                block = memoryview(data)[req.begin:req.begin + req.length]
                if len(block) == req.length:
                    pieces.append((req.index, req.begin, block))
                    size += req.length
            if peer.am_choking:
                queue.clear()  # choked while we read: those requests are void (BEP 3)
                if peer.fast and pieces:  # BEP 6: the choke rejected the queue; these were taken from it
                    await peer.send(*[m.RejectRequest(i, b, len(blk)) for i, b, blk in pieces])
                continue
            if not pieces:
                continue
            self._read_ahead(queue)
            await limit.consume(size)
            if not self.upload_limit.unlimited:
                await self.upload_limit.consume(size)
            if vectored:
                peer.last_sent = time.monotonic()
                link.write_pieces(pieces)
                await link.drain()
            else:
                await peer.send(*[m.Piece(i, b, blk) for i, b, blk in pieces])
            peer.uploaded += size
            peer.up_window += size
            self._up_window += size
            self.uploaded += size

    def _read_ahead(self, queue: deque[m.Request]) -> None:
        """Start reading the next few pieces the queue asks for that are not in the cache."""
        if self._tg is None:
            return
        wanted: list[int] = []
        for n, req in enumerate(queue):
            if n >= READ_AHEAD_SCAN or len(wanted) >= READ_AHEAD_PIECES:
                break
            i = req.index
            if i not in self._piece_cache and i not in self._reading and i not in wanted:
                wanted.append(i)
        for i in wanted:
            self._tg.start_soon(self._read_quietly, i)

    async def _read_quietly(self, index: int) -> None:
        try:
            await self._read_piece_cached(index)
        except StorageError:
            pass  # the uploader's own read of it reports the error

    async def _read_piece_cached(self, index: int) -> bytes:
        data = self._piece_cache.get(index)
        if data is not None:
            self._piece_cache.move_to_end(index)
            return data
        reading = self._reading.get(index)
        if reading is not None:  # being read already (read ahead): wait for that read
            await reading.wait()
            data = self._piece_cache.get(index)
            if data is not None:
                return data
        assert self._storage is not None
        done = self._reading[index] = anyio.Event()
        try:
            data = await self._storage.read_piece(index)
        finally:
            del self._reading[index]
            done.set()
        self._piece_cache[index] = data
        self._piece_cache_bytes += len(data)
        while self._piece_cache_bytes > PIECE_CACHE_BYTES and len(self._piece_cache) > 1:
            _, old = self._piece_cache.popitem(last=False)
            self._piece_cache_bytes -= len(old)
        return data

    # -- choking -------------------------------------------------------------------------
    async def _choker_loop(self) -> None:
        """Rechoke every 10 s (BEP 3), and at once when a choked peer becomes interested while
        a slot is free or an unchoked peer leaves; the choker rotates the optimistic unchoke."""
        self._choker = Choker(self._rng, upload_slots=self.config.upload_slots)
        while True:
            await self._rechoke()
            self._rechoke_now = anyio.Event()
            with anyio.move_on_after(self.config.rechoke_interval):
                await self._rechoke_now.wait()

    async def _rechoke(self) -> None:
        peers = [p for p in self._peers.values() if not p.closed]
        now = time.monotonic()
        snapshot = [ChokePeer(key=p.key, interested=p.peer_interested, download_rate=p.down_rate,
                              upload_rate=p.up_rate, snubbed=p.snubbed, connected_at=p.connected_at,
                              unchoked=not p.am_choking, unchoked_at=p.unchoked_at,
                              uploaded_since_unchoke=p.uploaded - p.uploaded_at_unchoke) for p in peers]
        assert self._choker is not None
        unchoke = self._choker.rechoke(snapshot, now, seeding=self.state is State.SEEDING)

        async def apply(peer: PeerState) -> None:
            should = peer.key in unchoke
            if should and peer.am_choking:
                peer.am_choking = False
                peer.unchoked_at = now
                peer.uploaded_at_unchoke = peer.uploaded
                await peer.send(m.Unchoke())
            elif not should and not peer.am_choking:
                peer.am_choking = True
                rejected = list(peer.upload_queue)
                peer.upload_queue.clear()
                msgs: list[m.Message] = [m.Choke()]
                if peer.fast:
                    msgs += [m.RejectRequest(r.index, r.begin, r.length) for r in rejected]
                await peer.send(*msgs)

        await self._fan_out(peers, apply)

    # -- periodic ------------------------------------------------------------------------
    async def _stats_loop(self) -> None:
        interval = self.config.stats_interval
        last = time.monotonic()
        last_save = last
        while True:
            await anyio.sleep(interval)
            now = time.monotonic()
            elapsed = max(now - last, 1e-6)
            last = now
            self._down_rate = 0.5 * self._down_rate + 0.5 * self._down_window / elapsed
            self._up_rate = 0.5 * self._up_rate + 0.5 * self._up_window / elapsed
            self._down_window = self._up_window = 0
            peers = list(self._peers.values())
            for peer in peers:
                rate = peer.down_window / elapsed
                if peer.slow_start and peer.down_rate > 0 and rate < peer.down_rate * 1.1:
                    peer.slow_start = False  # the rate stopped growing: leave slow start
                peer.down_rate = 0.5 * peer.down_rate + 0.5 * rate
                peer.up_rate = 0.5 * peer.up_rate + 0.5 * peer.up_window / elapsed
                peer.down_window = peer.up_window = 0
                self._check_timeouts(peer, now)

            async def tick(peer: PeerState, now: float = now) -> None:
                if peer.ut_pex and now - peer.last_pex >= PEX_INTERVAL:
                    await self._send_pex(peer, now)
                if now - peer.last_sent >= KEEPALIVE_AFTER:
                    await peer.send(m.KeepAlive())  # BEP 3: peers drop a link silent for 2 minutes
                await self._update_interest(peer)

            await self._fan_out(peers, tick)
            self._watch_stall(now)
            st = self.status()
            self.events.publish(ev.StatsUpdate(
                info_hash=self.info_hash_hex, state=st.state, downloaded=st.downloaded, uploaded=st.uploaded,
                download_rate=st.download_rate, upload_rate=st.upload_rate, peers=st.peers,
                progress=st.progress, eta=st.eta))
            if now - last_save >= self.config.resume_save_interval:
                last_save = now
                await self._save_resume()

    def _swarm_facts(self) -> SwarmFacts:
        """What the session knows about its swarm, for the stall diagnosis."""
        private = self._torrent.private if self._torrent is not None else False
        trackers = 0
        if self.config.tracker_enabled:
            tiers = self._torrent.trackers if self._torrent is not None else \
                tuple((url,) for url in self.magnet.trackers) if self.magnet is not None else ()
            trackers = sum(len(tier) for tier in tiers)
        dht = 1 if self._shared is not None and self._shared.dht is not None and not private else 0
        errors: tuple[str, ...] = ()
        if self._tracker is not None:
            errors = tuple(f"{t.url}: {t.last_error}" for t in self._tracker.status()
                           if t.state in ("failing", "disabled") and t.last_error)
        known = self._pool.known()
        failed = self._pool.failing() - self._peers.keys()
        peers = [p for p in self._peers.values() if not p.closed]
        return SwarmFacts(
            sources=trackers + dht + self._given_peers, known=len(known), connected=len(peers),
            failed=len(failed), encryption_refused=len(self._encryption_refused & failed),
            banned=self._pool.banned_count, peers_with_wanted=sum(1 for p in peers if p.am_interested),
            tracker_errors=errors, fetching_metadata=self._torrent is None)

    def _watch_stall(self, now: float) -> None:
        """Once a second: is the download stuck, and why? A new reason is published as an event."""
        if self.state not in (State.DOWNLOADING, State.DOWNLOADING_METADATA):
            self._stall_detector.reset(now)
            self._stall = None
            return
        stall = self._stall_detector.observe(now, self.downloaded, self._swarm_facts())
        previous, self._stall = self._stall, stall
        if stall is not None and (previous is None or previous.reason is not stall.reason):
            log.info("%s is not progressing: %s", self.name, stall.message)
            self.events.publish(ev.SessionStalled(info_hash=self.info_hash_hex, reason=stall.reason.value,
                                                  message=stall.message))

    async def _send_pex(self, peer: PeerState, now: float) -> None:
        """BEP 11: tell the peer whom we are connected to (a diff, at most once a minute)."""
        connected: dict[tuple[str, int], int] = {}
        for other in self._peers.values():
            if other is peer or other.closed:
                continue
            port = other.listen_port if other.incoming else other.port
            if not port:
                continue  # an incoming peer that did not tell us where it listens
            flags = (PEX_SEED if other.is_seed else 0) | (0 if other.incoming else PEX_REACHABLE)
            if other.link.encrypted:
                flags |= PEX_ENCRYPTION
            connected[(other.host, port)] = flags
        msg = peer.pex.update(connected)
        if msg is not None:  # nothing new: look again next second
            peer.last_pex = now
            await peer.send(m.Extended(peer.ut_pex, msg.encode()))

    def _check_timeouts(self, peer: PeerState, now: float) -> None:
        if not peer.outstanding:
            return
        if now - peer.last_block >= self.config.snub_timeout and not peer.snubbed:
            peer.snubbed = True  # no block for a minute: keep one request there, the rest elsewhere
            peer.slow_start = False
        timeout = self.config.request_timeout
        expired = [k for k, sent in peer.outstanding.items() if now - sent >= timeout
                   and now - peer.last_block >= timeout]
        for index, begin in expired:
            del peer.outstanding[(index, begin)]
            length = min(BLOCK_SIZE, self.torrent.piece_size(index) - begin)
            self._picker.request_timed_out(peer.key, Block(index, begin, length))

    # -- resume data ---------------------------------------------------------------------
    def _resume_snapshot(self) -> ResumeData:
        return ResumeData(info_hash=self.info_hash, save_path=str(self.save_path.resolve()),
                          have=self.have.to_bytes(), num_pieces=self.torrent.num_pieces,
                          file_priorities=list(self._file_priorities), uploaded=self.uploaded,
                          downloaded=self.downloaded, added_time=self._added_time,
                          completed_time=self._completed_time, saved_time=int(time.time()),
                          paused=self.state is State.PAUSED)

    def resume_data(self) -> ResumeData:
        """What a restart needs. The file stamps are taken after the have-set: a file written in
        between only makes the data look stale (recheck), never a piece look verified."""
        data = self._resume_snapshot()
        data.files = stamp_files(self._file_paths() if self._storage is not None else [])
        return data

    async def _save_resume(self) -> None:
        if self._resume_path is None or self._torrent is None or self._storage is None:
            return
        if not self._ready.is_set():
            return  # still checking: the pieces on disk are not known yet (keep the old file)
        path = self._resume_path
        data = self._resume_snapshot()
        paths = self._file_paths()

        def stamp_and_save() -> None:  # stat + write + fsync: a worker thread, not the loop
            data.files = stamp_files(paths)
            save_resume(path, data)

        try:
            # the pieces in the snapshot were written before it was taken: make them durable
            # before a durable resume file counts them as had
            await self._storage.flush()
            await anyio.to_thread.run_sync(stamp_and_save)
        except StorageError as exc:
            log.warning("cannot save resume data of %s: %s", self.name, exc)

