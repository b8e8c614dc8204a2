"""The ``Session`` facade: one torrent's public API over its phase and its named parts.

What the session holds depends on its phase (``phases``: ``FetchingMetadata``, ``Loaded``,
``Checking``, ``Live``, ``Paused``; one object each, which also carries the public state and the
error); its life (``run``, pause, resume, stop, completion) is ``lifecycle.Life``, the one owner
that moves the phase and the state (by the table of ``state_table``). What happens to the
torrent is done by named parts, each in its own module and owning its own state. What every part
may read and call whatever the phase is one frozen ``context.TorrentContext``
(``Session.context``): config, events, info-hash, the magnet, the save path, the byte totals and
the torrent's own rate limits, the peer pool, the connected peers, ``ban``, ``fail`` and the run,
through which it reads the phase and what the phase holds (``parts``: the metainfo, the picker
and the per-torrent parts; ``storage``, ``swarm``), the state and the shared resources. A part is
given the context and, as callbacks or typed parts, what else it needs (``Pieces``: a piece
passed, a piece failed; ``Uploader``: bytes sent; ``Announcer``: addresses found; the checker:
the run, as ``CheckRun``; ...); the three that need each other both ways (the connector, the peer
handler, the run) declare what they need of the session as a Protocol of their own
(``ConnectorHost``, ``PeerHandlerHost``, ``LifeHost``) and are given the session as that.
No part imports another, not even for its types: the phases hold the parts as the Protocols of
``roles``, and a part that calls a sibling names a Protocol of just what it calls; this module,
which builds them, is the only one that imports the parts.
``Pieces`` tells the run, the one owner of completion, when a piece passed
(``Run.maybe_complete``):

- ``connector.Connector``: dialing and incoming hand-off; ``peer_handler.PeerHandler``: the wire
  protocol per peer; ``requesting``: queue depth, slow start, snubbing, timeouts (pure);
- ``pieces.Pieces``: piece assembly and verification, with ``smart_ban.SmartBan`` (pure);
- ``upload.Uploader``: serving requests and the choker; ``pex``: what we tell peers (BEP 11);
  ``holepunch.Holepunch``: BEP 55 relay, initiator and ``connect`` dials;
- ``metadata.MetadataClient``: BEP 9 for magnets (owned by the ``FetchingMetadata`` phase),
  ``metadata.MetadataServer``: our info dict to peers; ``layers.PieceLayers``: BEP 52 piece
  layers the metainfo lacks, asked of peers; ``checking.Checker``: checking, resume data;
- ``announce.Announcer``: trackers and DHT; ``rates.Rates``: transfer rates;
  ``stall_watch.StallWatch``: the stall diagnosis; ``tick.SessionTick``: the once-a-second tick
  (timeouts, PEX, keep-alives, interest, the stats event, resume saving);
- ``webseeds.SessionWebSeeds``: BEP 19 web seeds, fed by the picker like peers;
- ``peer_pool.PeerPool`` (pure): every address heard of, bans, back-off.

The session borrows a ``SharedResources`` and owns everything else in its own task groups:
``run()`` holds the session-level group (the tick, verification, resume saving); the swarm group
inside it (peers, trackers, the DHT loop, web seeds, the choker) belongs to the ``Live`` phase (or
a magnet's fetch) and is cancelled by ``pause()`` and ``stop()``. So stopping leaves no task behind.
The tick, the dialer and the choker run only while they have work (peers, a download, something
to save; addresses; peers to choke) and are started again, in their group, by what gives them
some: an idle seeding session is its run's one task.

Invariants:
- There is a torrent and a picker from the moment the metadata is known (a ``Loaded`` phase or
  one of its kinds), open files (``storage``) only while ``run()`` runs and the torrent is known
  (``Checking``, ``Live``, ``Paused``), a swarm only in ``Live`` or a magnet's unpaused fetch.
- The picker is the one record of what is verified (``have``), what is in flight at whom (with
  send times) and who sent each block of a piece being downloaded.
- A piece counts as had only after its hash check passed and its data was written.
- Bans live only in the peer pool (so does their count); a banned address is never dialed or
  accepted again.
"""

from __future__ import annotations

import functools
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import cast

import anyio
import anyio.abc

from .. import events as ev
from ..config import Config
from ..engine.shared import SharedResources, TokenBucket
from ..errors import SessionError
from ..formats.bitfield import Bitfield
from ..formats.infohash import v2_on_wire
from ..formats.layout import TorrentLayout
from ..formats.magnet import Magnet
from ..formats.metainfo import Torrent
from ..logbook import peer_event
from ..net.tracker.coordinator import TrackerMemory
from ..net.webseed import WebSeedState
from ..policy.picker import DEFAULT_PRIORITY, PiecePicker
from ..storage import PieceStorage, RenamesFiles, Storage, StorageFactory
from ..storage.paths import check_components, real_path
from ..storage.rename import move_files
from ..storage.resume import ResumeData, ResumeFile, ResumeKeeper
from .announce import Announcer
from .checking import Checker
from .connector import Connector
from .context import Limits, TorrentContext, Totals, seen_complete
from .file_watch import FileWatch
from .holepunch import Holepunch
from .layers import PieceLayers
from .lifecycle import Life
from .metadata import MetadataClient, MetadataServer
from .peer import PeerState
from .peer_handler import PeerHandler
from .peer_pool import PeerPool, PeerSource
from .phases import FetchingMetadata, Loaded, Opened, Phase, TorrentParts
from .pieces import Pieces
from .rates import Rates
from .reader import FileReader, Readers
from .setup import TOP_PRIORITY, SessionSetup, first_last_pieces
from .stall_watch import StallWatch
from .state_table import State
from .status import SessionStatus, session_status, wanted_and_had
from .tick import SessionTick
from .upload import Uploader
from .webseeds import SessionWebSeeds, usable_urls

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
                 resume_path: Path | None = None, keep_metainfo: Callable[[bytes], None] | None = None,
                 rng: random.Random | None = None, paused: bool = False,
                 storage: StorageFactory = Storage, info_hash: bytes | None = None,
                 seed_mode: bool = False, setup: SessionSetup | None = None,
                 resume: ResumeKeeper | None = None,
                 before_check: Callable[[Torrent], Awaitable[None]] | None = None) -> None:
        """``seed_mode``: the data is complete on disk already (a cross-seed): the start reads
        none of it and seeds at once, each piece verified the first time it is served; the first
        that fails ends seed mode and the whole torrent is checked (see ``checking``, ``upload``).
        Resume data saved after seed mode ended wins over it. ``setup``: what the owner tells
        the session before it starts (its record's limits, file priorities ...: ``setup``),
        applied here, before anything runs (what needs the metainfo, for a magnet, as its
        metadata arrives); ``SessionError`` when it does not fit the torrent. ``keep_metainfo``:
        the owner's keeper of the metainfo (blocking: called on a worker thread with its bytes)
        once a magnet's info dict, or v2 piece layers it lacked, arrive. Its resume data is kept
        in the file ``resume_path``, or by ``resume`` (a manager's store: ``ResumeKeeper``);
        nowhere without either. ``before_check``: the owner's, awaited with a magnet's torrent
        once its metadata is in and kept, before any of its files is opened or checked (the job
        service places there the files it holds already: ``docs/dedup.md``); what it raises
        ends the run as the session's error."""
        self.magnet = torrent if isinstance(torrent, Magnet) else None
        self._keep_metainfo = keep_metainfo  # the metainfo kept once it (or a layer) arrives
        self.save_path = Path(save_path)
        # the files kept under another path than the torrent's (index -> path components below
        # the save path): told by the owner before the start (``setup``), changed by ``rename_files``
        self.renamed_files: dict[int, tuple[str, ...]] = {}
        self.config = config if config is not None else Config()
        self.events = events if events is not None else ev.EventBus()
        # the 20 bytes peers know the torrent by: a hybrid first fetched by a btmh magnet keeps
        # its truncated v2 info-hash when restarted from its saved metainfo (``info_hash``)
        self.info_hash = torrent.info_hash
        if info_hash is not None and isinstance(torrent, Torrent):
            v2 = v2_on_wire(torrent.info_hash_v2) if torrent.info_hash_v2 is not None else None
            if info_hash not in (torrent.info_hash_v1, v2):
                raise SessionError(f"{info_hash.hex()} is neither info-hash of {torrent.name!r}")
            self.info_hash = info_hash
        self.info_hash_hex = self.info_hash.hex()
        self._rng = rng if rng is not None else random.Random()
        self._setup = setup  # what the owner told it (its parts take theirs as they are made)
        # the web seeds as the owner set them (None: the torrent's; its parts take them when made)
        self._web_seeds = setup.web_seeds if setup is not None else None
        self._super_seeding = setup is not None and setup.super_seeding  # BEP 16 (``set_super_seeding``)
        if storage is Storage:  # (the default: written as the config says)
            storage = self._open_storage
        self._life = Life(self, paused=paused, shared=shared, make_storage=storage,
                          make_parts=self._make_parts, before_check=before_check)
        # what every part reads and calls (see ``context``): the torrent's facts, its totals and
        # limits, the pool, the connected peers, ban, fail, the run (its phase and state)
        ctx = self.context = TorrentContext(
            self.config, self.events, self.info_hash, self.info_hash_hex, self.magnet, self.save_path,
            Totals(), Limits(), PeerPool(), {}, self._ban, self._life.fail, self._life)
        # the parts (see the module docstring): each is given the context and what else it
        # declares it needs (another part, a callback; the session itself as a part's ...Host
        # Protocol where the parts need each other both ways)
        self.connector = Connector(self)
        self.handler = PeerHandler(self)
        self.holepunch = Holepunch(ctx, self.connector)
        self.metadata = MetadataServer(ctx)
        if resume_path is not None:
            if resume is not None:
                raise SessionError("resume_path and resume both say where the resume data is kept: give one")
            resume = ResumeFile(resume_path)
        self.checker = Checker(ctx, resume, run=self._life, make_storage=storage, seed_mode=seed_mode)
        self.announcer = Announcer(ctx, add_peers=self.add_peers)
        peers = list(peers)
        self.rates = Rates(ctx.totals)
        self.stall_watch = StallWatch(ctx, given_peers=len(peers), announcer=self.announcer,
                                      connector=self.connector)
        self.tick = SessionTick(ctx, rates=self.rates, stall_watch=self.stall_watch, resume=self.checker,
                                upkeep=self.handler, status=self.status, turn_over=self.connector.turn_over)
        self.readers = Readers(ctx, pick_requests=self.handler.pick_requests)
        self._file_watch: FileWatch | None = None  # (the owner's: ``watch_files``)
        if isinstance(torrent, Torrent):
            self._life.begin(Loaded(self._make_parts(torrent)))
        else:
            self._life.begin(FetchingMetadata(MetadataClient(
                ctx, handshake=functools.partial(self.handler.extension_handshake, with_metadata=False),
                done_connecting=self.connector.done_connecting)))
            self.add_peers(torrent.peers, "magnet")
        for host, port in peers:
            self.add_peer(host, port)
        if setup is not None:
            self._apply_setup(setup)

    def _apply_setup(self, setup: SessionSetup) -> None:
        """What the owner told the session before it starts (see ``setup``) and needs no
        metainfo; the rest goes with the torrent's parts (``_setup_parts``)."""
        totals = self.context.totals
        totals.downloaded = max(totals.downloaded, setup.downloaded)
        totals.uploaded = max(totals.uploaded, setup.uploaded)
        totals.wasted = max(totals.wasted, setup.wasted)
        totals.corrupt = max(totals.corrupt, setup.corrupt)
        self.renamed_files.update(setup.renamed_files)
        if setup.trackers is not None:
            self.set_trackers(setup.trackers)
        self.set_rate_limits(download=setup.download_limit, upload=setup.upload_limit)
        self.set_bandwidth_group(setup.bandwidth_group)
        self.set_max_peers(setup.max_peers)
        if setup.announced is not None:
            self.announcer.take_over(*setup.announced, settling=setup.settling)

    def _setup_parts(self, parts: TorrentParts) -> None:
        """The torrent's parts as the owner's setup asks, before anything reads them (made at
        once for a .torrent, when the metadata arrives for a magnet, before its first request):
        file priorities (the owner's: never the resume data's), sequential mode, the first and
        last pieces; ``SessionError`` when the priorities are for another number of files."""
        setup = self._setup
        if setup is None:
            return
        torrent, picker = parts.torrent, parts.picker
        priorities = setup.file_priorities
        if priorities is not None:
            if len(priorities) != len(torrent.files):
                raise SessionError(f"file priorities given for {len(priorities)} files: "
                                   f"{torrent.name!r} has {len(torrent.files)}")
            pairs = zip(priorities, torrent.files, strict=True)
            if any(p != DEFAULT_PRIORITY for p, f in pairs if not f.pad):
                parts.set_file_priorities(priorities)
            self.checker.priorities_given = True  # (the owner's, never the resume data's)
        if setup.sequential:
            picker.set_sequential(True)
        if setup.first_last_piece:
            for index in sorted(first_last_pieces(torrent, priorities)):
                if picker.piece_priority(index) > 0:
                    picker.set_piece_priority(index, TOP_PRIORITY)

    def _open_storage(self, torrent: TorrentLayout, save_path: Path) -> PieceStorage:
        """The default storage: written as the config says, its files opened through the shared
        resources' descriptor cache (one bound for every torrent of the process), its hashing and
        writing on their threads (a few for every torrent)."""
        shared = self._life.shared
        return Storage(torrent, save_path, write_mode=self.config.disk_write_mode,
                       files=shared.files if shared is not None else None, renamed=self.renamed_files,
                       lanes=shared.lanes if shared is not None else None,
                       write_gather=self.config.disk_write_gather)

    def _make_parts(self, torrent: Torrent) -> TorrentParts:
        """The torrent is known (given, or its metadata arrived): its parts (``Life`` puts them
        in a ``Loaded`` phase), with a magnet's selection (BEP 53 ``so``) and then what the
        owner's setup says of them (``_setup_parts``)."""
        ctx = self.context
        picker = PiecePicker(torrent, self._rng)
        shared = self._life.shared  # (its piece buffers: one pool for every torrent of the process)
        pieces = Pieces(ctx, picker, on_passed=self._piece_passed, refill=self.handler.fill_requests,
                        cancel=self.handler.cancel_now, buffers=None if shared is None else shared.buffers)
        layers = PieceLayers(ctx, torrent, rechecked=lambda: self.checker.rechecked,
                             update_interest=self.handler.update_interest, save_metainfo=self.save_metainfo)
        webseeds = SessionWebSeeds(ctx, on_downloaded=self.rates.downloaded, urls=self._web_seeds)
        uploader = Uploader(ctx, self._rng, on_uploaded=self.rates.uploaded)
        parts = TorrentParts(torrent, picker, pieces, uploader, layers, webseeds)
        magnet = self.magnet
        if magnet is not None and magnet.select_only:
            parts.set_file_priorities([4 if magnet.selected(i) and not f.pad else 0
                                       for i, f in enumerate(torrent.files)])
        self._setup_parts(parts)
        uploader.super_seeding.set(self._super_seeding)
        return parts

    @property
    def phase(self) -> Phase:
        """What the session holds now (see ``phases``; ``lifecycle.Life`` moves it on)."""
        return self._life.phase

    @property
    def pieces(self) -> Pieces:
        """Piece assembly and verification (a part of ``parts``: only with the metadata)."""
        return cast(Pieces, self.parts.pieces)  # (built so by ``_make_parts``)

    @property
    def uploader(self) -> Uploader:
        """Uploading and the choker (a part of ``parts``: only with the metadata)."""
        return cast(Uploader, self.parts.uploader)  # (built so by ``_make_parts``)

    @property
    def layers(self) -> PieceLayers:
        """BEP 52 piece layers the metainfo lacks (a part of ``parts``: only with the metadata)."""
        return cast(PieceLayers, self.parts.layers)  # (built so by ``_make_parts``)

    @property
    def webseeds(self) -> SessionWebSeeds:
        """The BEP 19 web seeds (a part of ``parts``: only with the metadata)."""
        return cast(SessionWebSeeds, self.parts.webseeds)  # (built so by ``_make_parts``)

    @property
    def parts(self) -> TorrentParts:
        """What exists once the torrent is known (metainfo, picker, file priorities);
        ``SessionError`` before a magnet's metadata has arrived."""
        phase = self.phase
        if not isinstance(phase, Loaded):
            raise SessionError("the torrent's metadata has not been received yet")
        return phase.parts

    @property
    def torrent(self) -> Torrent:
        """The metainfo (for a magnet link: once the metadata has arrived)."""
        return self.parts.torrent

    @property
    def file_priorities(self) -> list[int]:
        """Priority per file (0 = skip; none before the metadata); see ``set_file_priorities``."""
        phase = self.phase
        return list(phase.parts.file_priorities) if isinstance(phase, Loaded) else []

    @property
    def finished(self) -> bool:
        """Whether run() has ended (stopped or failed)."""
        return self._life.finished.is_set()

    @property
    def has_metadata(self) -> bool:
        """Whether the info dictionary is known (always for a .torrent; a magnet once fetched)."""
        return self.context.has_metadata

    @property
    def private(self) -> bool:
        """Whether the torrent is private (BEP 27: no DHT, PEX or LSD)."""
        return self.context.private

    # the totals and this torrent's own limits are the context's (the parts move them there)
    @property
    def downloaded(self) -> int:
        """Payload bytes received in all (kept across restarts by the resume data)."""
        return self.context.totals.downloaded

    @downloaded.setter
    def downloaded(self, value: int) -> None:
        self.context.totals.downloaded = value

    @property
    def uploaded(self) -> int:
        """Payload bytes sent in all (kept across restarts by the resume data)."""
        return self.context.totals.uploaded

    @uploaded.setter
    def uploaded(self, value: int) -> None:
        self.context.totals.uploaded = value

    @property
    def wasted(self) -> int:
        """Payload bytes received that were not needed (endgame duplicates, pieces given back;
        counted on from the owner's ``SessionSetup.wasted``)."""
        return self.context.totals.wasted

    @property
    def corrupt(self) -> int:
        """Payload bytes received in pieces that failed their hash check, each failure its piece's
        whole length (libtorrent's ``total_failed_bytes``, Transmission's ``corruptEver``; counted
        on from the owner's ``SessionSetup.corrupt``)."""
        return self.context.totals.corrupt

    @property
    def seen_complete(self) -> float:
        """Wall-clock time the swarm last showed a whole copy: now while a connected peer has
        every piece, else when the last one left; 0.0: none in this run (``context.seen_complete``)."""
        ctx = self.context
        return seen_complete(ctx.totals, ctx.peers.values(), time.time())

    @property
    def download_limit(self) -> TokenBucket:
        """This torrent's own download limit (see ``set_rate_limits``)."""
        return self.context.limits.download

    @property
    def upload_limit(self) -> TokenBucket:
        """This torrent's own upload limit (see ``set_rate_limits``)."""
        return self.context.limits.upload

    @property
    def rechecked(self) -> bool:
        """Whether start-up hashed the data on disk (no usable resume data)."""
        return self.checker.rechecked

    @property
    def paused(self) -> bool:
        """Whether the session is paused, or will be once it has started (added or restored
        paused: it pauses after its start-up check)."""
        return self._life.paused

    @property
    def pauses_after_check(self) -> bool:
        """Whether the session pauses once its start-up check is over (resumed so: ``resume``)."""
        return self._life.hold_after_check

    @property
    def resumed(self) -> bool:
        """Whether start-up found resume data saved for this torrent in this save path."""
        return self.checker.resumed

    @property
    def seed_mode(self) -> bool:
        """Whether the torrent seeds in seed mode (data said to be complete, each piece verified
        the first time it is served), or will once started (asked so, and its resume data does
        not say seed mode ended)."""
        phase = self.phase
        if isinstance(phase, Loaded) and phase.parts.uploader.seed_verified is not None:
            return True
        return self.checker.seed_mode and not self._life.ready.is_set()

    @property
    def verified_pieces(self) -> int:
        """How many pieces are verified: in seed mode, those hashed since (or before a restart);
        else every piece had."""
        phase = self.phase
        if not isinstance(phase, Loaded):
            return 0
        verified = phase.parts.uploader.seed_verified
        if verified is not None:
            return len(verified)
        return 0 if self.seed_mode else len(phase.parts.picker.have)

    @property
    def hash_failures(self) -> int:
        """Pieces that failed their hash check."""
        phase = self.phase
        return phase.parts.pieces.hash_failures if isinstance(phase, Loaded) else 0

    # -- public --------------------------------------------------------------------------
    @property
    def state(self) -> State:
        """The session's state."""
        return self._life.machine.state

    @property
    def error(self) -> str:
        """Why the session failed ("" if it has not; kept once it has stopped)."""
        return self._life.machine.error

    @property
    def disk_failure(self) -> bool:
        """Whether the failure that ended the session is of its files on our disk (full, a
        permission, a file gone): a cause that can go away, its verified data kept."""
        return self._life.disk_failure

    @property
    def disk_full(self) -> bool:
        """Whether that failure was a full disk (``ENOSPC``, or a quota's ``EDQUOT``)."""
        return self._life.disk_full

    @property
    def missing_files(self) -> tuple[str, ...]:
        """The files (relative paths) that held verified data and were found gone or shorter,
        when that is what ended the session."""
        return self._life.missing_files

    @property
    def banned_count(self) -> int:
        """Addresses banned for sending data that failed its hash check (kept by the peer pool)."""
        return self.context.pool.banned_count

    @property
    def name(self) -> str:
        """The torrent's name (a magnet's display name, else its info-hash, until the metadata comes)."""
        return self.context.name

    @property
    def have(self) -> Bitfield:
        """The verified pieces (read only)."""
        phase = self.phase
        return phase.parts.picker.have if isinstance(phase, Loaded) else Bitfield(0)

    @property
    def peers(self) -> list[PeerState]:
        """The connected peers."""
        return list(self.context.peers.values())

    @property
    def peer_count(self) -> int:
        """How many peers are connected (``peers`` without its list)."""
        return len(self.context.peers)

    @property
    def pool(self) -> PeerPool:
        """The peer pool: every address heard of, with its bans and dial back-off (to read:
        ``is_banned``, ``in``, ``pool[address].failures``; the session's parts change it)."""
        return self.context.pool

    @property
    def picker(self) -> PiecePicker:
        """The piece picker, the one record of what is verified, what is in flight at whom and
        who sent each block (to read: ``in_flight``, ``requests_of``); only with the metadata."""
        return self.parts.picker

    # the parts that run only while the files are open and the swarm runs (peers, pieces,
    # uploading) take these from the phase; elsewhere code narrows ``phase`` itself
    @property
    def shared(self) -> SharedResources | None:
        """The shared resources the session borrows (listen socket, peer id, DHT), if any yet."""
        return self._life.shared

    @property
    def web_seeds(self) -> list[WebSeedState]:
        """The BEP 19 web seeds in use so far: URL, bytes served, last error, why given up."""
        phase = self.phase
        return phase.parts.webseeds.states() if isinstance(phase, Loaded) else []

    @property
    def listen_port(self) -> int:
        """The TCP port incoming peers connect to (0 until the session runs)."""
        shared = self._life.shared
        return shared.listen_port if shared is not None else 0

    def add_peer(self, host: str, port: int) -> None:
        """Add one peer address to the pool."""
        self.add_peers([(host, port)])

    def add_peers(self, peers: Iterable[tuple[str, int]], source: PeerSource = "user") -> None:
        """Add addresses heard of from ``source`` (by default: the user's) to the peer pool
        (de-duplicated; our own address and banned ones dropped)."""
        self.connector.add(peers, source)

    def status(self) -> SessionStatus:
        """A snapshot of the session's state, progress, rates and peers."""
        return session_status(self)

    def sizes(self) -> tuple[int, int] | None:
        """(bytes of the files wanted, of them verified), as ``status()`` says them without
        making one; None until a magnet's metadata is in."""
        return wanted_and_had(self.context)

    @property
    def complete(self) -> bool:
        """Whether every wanted piece is verified (``status().progress`` is 1.0; a magnet
        without its metadata is not), without making a status: the job service asks it of
        every live job each second."""
        sizes = wanted_and_had(self.context)
        return sizes is not None and sizes[1] >= sizes[0]

    async def wait_completed(self) -> None:
        """Return when every wanted piece is verified; ``SessionError`` if the session stops first."""
        await self._life.wait_completed()

    async def wait_ready(self) -> None:
        """Return once checking is over (the session downloads, seeds, is paused or has ended)."""
        await self._life.until(self._life.ready)

    async def wait_serving(self) -> bool:
        """Return once the session takes incoming peers for its data (its check over, its swarm
        running): True; False when it ended first, or stands paused once checked."""
        await self.wait_ready()
        if self.finished or self.state is State.PAUSED:
            return False
        await self._life.until(self._life.serving)
        return self._life.serving.is_set() and not self.finished

    async def pause(self) -> None:
        """Disconnect peers and stop trackers, keeping pieces, picker and files ready to resume.
        What is verified is in the resume data before this returns (once checked). Whether it
        is paused is the owner's to keep (a job's record): the resume data does not say. A
        session that failed is left as it is (its owner hears of the failure)."""
        self._life.pause()
        await self.checker.save()

    async def resume(self, *, pause_after_check: bool = False) -> None:
        """Resume a paused session (or one added paused that has not started yet, or one that
        would pause after its check); ``SessionError`` if it is neither. ``pause_after_check``:
        run until the start-up check to come is over (a magnet's comes after its metadata, which
        it fetches meanwhile), then pause as a session added paused does (nothing once the check
        is over): for an owner that decides, once the data is checked, whether the session runs
        on (a job queue)."""
        await self._life.resume(pause_after_check=pause_after_check)

    async def stop(self) -> None:
        """Disconnect everything, close files, write resume data, release the shared resources."""
        await self._life.stop()

    async def suspend(self) -> tuple[tuple[TrackerMemory, ...], float]:
        """Stop as ``stop`` does (resume data written, files closed, shared resources
        released), but tell no tracker ``stopped``: the torrent is still announced, by whoever
        takes over (a job service's dormant seed). Returns what each tracker knows of it and in
        how many seconds its next announce is due: ``SessionSetup.announced`` of the session
        that goes on from there (so no tracker hears ``started`` twice)."""
        self._life.hand_over_on_stop = True
        await self._life.stop()
        if self.announcer.handed_over is None:  # (it never ran: nothing announced it but its owner)
            self.announcer.hand_over()
        handed = self.announcer.handed_over
        assert handed is not None
        return handed

    async def cancel(self, *, delete_files: bool = True) -> None:
        """Stop at once; with ``delete_files`` the torrent's files (partial or not) are removed."""
        self._life.delete_on_stop = delete_files
        await self.stop()
        if delete_files and not self.checker.files_deleted and isinstance(self.phase, Loaded):
            await self.checker.delete_files()  # it had ended already (stopped, error) or never ran

    async def __aenter__(self) -> Session:
        await self._life.start_standalone()
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
            self.context.limits.download = TokenBucket(download)
        if upload is not None:
            self.context.limits.upload = TokenBucket(upload)

    def set_bandwidth_group(self, name: str) -> None:
        """The bandwidth group this torrent's traffic passes from now on ("": none; a name the
        shared resources do not know counts as none: ``engine/bandwidth.py``)."""
        if not isinstance(name, str):
            raise SessionError(f"bandwidth group must be a name, got {name!r}")
        self.context.limits.group = name

    @property
    def bandwidth_group(self) -> str:
        """The bandwidth group this torrent's traffic passes ("": none)."""
        return self.context.limits.group

    def set_max_peers(self, max_peers: int) -> None:
        """This torrent's connections at most (0: the manager's default for every torrent);
        applied to new connections."""
        if isinstance(max_peers, bool) or not isinstance(max_peers, int) or max_peers < 0:
            raise SessionError(f"max_peers must be a whole number, at least 0: {max_peers!r}")
        self.connector.max_peers = max_peers
        self.connector.wake()

    @property
    def max_peers(self) -> int:
        """This torrent's connections at most, as in force."""
        return self.connector.peer_limit()

    def set_sequential(self, sequential: bool) -> None:
        """New pieces in index order instead of rarest-first (e.g. to play a file as it arrives)."""
        phase = self.phase
        if not isinstance(phase, Loaded):
            raise SessionError("sequential mode needs the torrent's metadata")
        phase.parts.picker.set_sequential(sequential)

    def set_super_seeding(self, super_seeding: bool) -> None:
        """BEP 16: while seeding, greet new peers without our pieces and offer each one rare piece
        at a time (a downloading torrent ignores it until it seeds; see ``superseed``). Off: the
        peers greeted so are told of every piece. A magnet keeps it until its metadata."""
        self._super_seeding = bool(super_seeding)
        if isinstance(self.phase, Loaded):
            self.uploader.super_seeding.set(self._super_seeding)

    @property
    def super_seeding(self) -> bool:
        """Whether super-seeding is on (it applies while seeding)."""
        return self._super_seeding

    def set_file_priorities(self, priorities: Sequence[int]) -> None:
        """Priority per file (0 = skip, 1..7 = download; higher first). Set before the start-up
        check, they win over the priorities stored in the resume data."""
        self.parts.set_file_priorities(priorities)
        self.checker.priorities_given = True
        self._life.wanted_changed()

    def keep_given_priorities(self) -> None:
        """The file priorities are the owner's (a job service's record): the session keeps those
        it has been told (``set_file_priorities``; the defaults when it was told none), never
        those of its resume data, which its start-up check would otherwise apply."""
        self.checker.priorities_given = True

    def file_parts(self, index: int) -> tuple[str, ...]:
        """The path components of file ``index`` below the save path (renamed, or the torrent's)."""
        return self.renamed_files.get(index) or self.torrent.files[index].path

    async def rename_files(self, renamed: Mapping[int, tuple[str, ...]]) -> None:
        """Keep the files ``renamed`` names (index -> path components below the save path) under
        those paths: what is on disk moves there (all or none: ``StorageError`` naming the file),
        and the session reads and writes them there from then on, its verified pieces kept."""
        phase = self.phase
        if not isinstance(phase, Loaded):
            raise SessionError("renaming files needs the torrent's metadata")
        files = phase.parts.torrent.files
        for index, parts in renamed.items():
            if not 0 <= index < len(files) or files[index].pad:
                raise SessionError(f"no file {index} to rename")
            check_components(parts)
        if isinstance(phase, Opened):
            storage = phase.storage
            if not isinstance(storage, RenamesFiles):
                raise SessionError("this torrent's storage cannot rename files")
            await storage.rename_files(renamed)
            self.renamed_files.update(renamed)
            return
        # (the files are not open: moved here; a storage opened meanwhile takes the new paths)
        root = real_path(self.save_path)
        moves = [(root.joinpath(*self.file_parts(i)), root.joinpath(*parts)) for i, parts in renamed.items()]
        before = dict(self.renamed_files)
        self.renamed_files.update(renamed)
        try:
            await anyio.to_thread.run_sync(move_files, root, moves)
        except BaseException:
            self.renamed_files.clear()
            self.renamed_files.update(before)
            raise

    def set_trackers(self, tiers: Sequence[Sequence[str]]) -> None:
        """Announce to these tracker tiers (BEP 12) instead of the torrent's from now on: a
        tracker added is announced to at once, one removed no more."""
        self.announcer.set_tiers(tuple(tuple(tier) for tier in tiers if tier))

    @property
    def web_seed_urls(self) -> list[str]:
        """The BEP 19 web seed URLs in use: as set (``set_web_seeds``), else the torrent's
        url-list (a magnet's ``ws=`` before its metadata)."""
        phase = self.phase
        if isinstance(phase, Loaded):
            return phase.parts.webseeds.in_use()
        if self._web_seeds is not None:
            return list(self._web_seeds)
        return usable_urls(self.magnet.web_seeds) if self.magnet is not None else []

    def set_web_seeds(self, urls: Sequence[str]) -> None:
        """Use these BEP 19 web seeds (http(s) URLs) instead of the torrent's from now on: one
        removed stops at once (its requests given back), one added starts while the swarm runs
        (a magnet's, once its metadata has come)."""
        self._web_seeds = tuple(urls)
        phase = self.phase
        if isinstance(phase, Loaded):
            phase.parts.webseeds.set_urls(self._web_seeds)

    def _piece_passed(self, index: int) -> None:
        """A piece is verified and on disk: the readers wake; a watched file it completes is told."""
        self.readers.piece_passed(index)
        if self._file_watch is not None:
            self._file_watch.piece_passed(index)

    def watch_files(self, indexes: Iterable[int], done: Callable[[int], None]) -> list[int]:
        """Of the files ``indexes``, those complete now (every piece each touches verified); each
        other one is told to ``done`` (on the loop, once) when its last piece is verified. A call
        replaces the last one's watch; ``SessionError`` before the metadata."""
        phase = self.phase
        if not isinstance(phase, Loaded):
            raise SessionError("watching files needs the torrent's metadata")
        watch = FileWatch(phase.parts.torrent, phase.parts.picker.have, indexes, done)
        self._file_watch = watch if watch.waiting else None
        return watch.complete

    def open_file(self, index: int) -> FileReader:
        """A reader of file ``index`` (``async with session.open_file(i) as f``: ``seek``,
        ``read``): it returns only verified bytes, waiting for their pieces, which are fetched
        first while it is open (see ``reader``). A magnet's reader opens once the metadata has
        come; ``StreamError`` if there is no such file or the session ends."""
        return FileReader(self.context, self.readers, index, want_file=self._want_file)

    def _want_file(self, index: int) -> None:
        """A reader opened on the skipped file ``index``: reading it means downloading it, at
        the default priority from now on. ``session.file_wanted`` says so, for an owner that
        records the file priorities (a job's record) to record it."""
        priorities = self.file_priorities
        priorities[index] = DEFAULT_PRIORITY
        self.set_file_priorities(priorities)
        self.events.publish(ev.SessionFileWanted(info_hash=self.info_hash_hex, index=index))

    # -- life: see lifecycle.Life --------------------------------------------------------
    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """The session's life: acquire shared resources, check, download/seed until stopped."""
        await self._life.run(task_status=task_status)

    async def save_metainfo(self) -> None:
        """Give the metainfo to the owner's keeper (when a magnet's info dict, or v2 piece layers
        the metainfo lacked, arrive), so a restart needs neither again."""
        phase = self.phase
        if self._keep_metainfo is not None and isinstance(phase, Loaded):
            data = phase.parts.torrent.to_bytes()
            try:
                await anyio.to_thread.run_sync(self._keep_metainfo, data)
            except OSError as exc:
                log.warning("cannot save the metainfo of %s: %s", self.name, exc)

    def _ban(self, key: tuple[str, int]) -> None:
        if not self.context.pool.ban(key):
            return
        log.info("banned peer %s:%d of %s after bad data", key[0], key[1], self.name)
        peer_event(key[0], "peer %s:%d of %s banned", key[0], key[1], self.name, blocked=False,
                   reason="sent data that failed the hash check")
        peer = self.context.peers.get(key)
        if peer is not None:
            peer.close("banned: sent data that failed the hash check")

    def resume_data(self) -> ResumeData:
        """What a restart needs (see ``Checker.resume_data``)."""
        return self.checker.resume_data()
