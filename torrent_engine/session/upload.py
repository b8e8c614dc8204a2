"""Seeding: answer peers' requests from a read cache, runs of blocks per write with the next pieces
read ahead, and choose whom to upload to (the choker, every 10 s and when a slot frees).

Only verified bytes are served, also when a file changes under the torrent: the storage refuses a
read of a file changed since its data was verified (``FileChanged``); its pieces we have are then
``unsure``, each verified again (read and hashed in one worker-thread hop) before it is served; a
piece that fails is no longer had (``lose``: the picker wants it again, a seed goes back to
downloading, a peer's request of it is rejected, not taken for a protocol error). The peers that
take BEP 54 ``lt_donthave`` are told it is lost, since a HAVE cannot be taken back: libtorrent
asks again at once for the blocks of a piece it has begun, and with us its only source it asked
for nothing else, each request rejected, for ever; a peer that cannot take it and keeps asking is
disconnected (``LOST_ASKS``): its next connection's bitfield tells it. A file found gone or shorter
(``MissingFiles``) fails the torrent; the pieces it held are no longer had (``files_gone``).

Seed mode (data its owner said is complete, ``Session(seed_mode=True)``): every piece is had from
the start, none verified (``seed_verified``: those verified since); each is read and hashed, in
the same worker-thread hop, the first time it is read for a peer or a file reader, and served
only if it passes. The first that fails ends seed mode for the torrent (libtorrent's rule: the
data cannot be trusted): the pieces not verified are no longer had and the run checks the whole
torrent (``Run.check_again``)."""

from __future__ import annotations

import logging
import random
import time
from collections import deque
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING

import anyio

from .. import events as ev
from ..errors import FileChanged, PeerProtocolError, StorageError
from ..formats.bitfield import Bitfield
from ..formats.layout import FileMap
from ..net.peer import messages as m
from ..net.peer.donthave import encode_donthave
from ..policy.choker import ChokePeer, Choker
from ..storage import WatchedFiles
from ..storage.read_cache import ReadCache, Shelf
from ..storage.verify import piece_ok
from .extension_ids import OUR_REQQ
from .peer import PeerState, fan_out
from .state_table import State
from .superseed import SuperSeeding

if TYPE_CHECKING:
    from .context import TorrentContext

log = logging.getLogger("torrent_engine.session")

# The read cache for seeding (whole pieces, LRU) holds what the peers we unchoke are being sent
# and read ahead for: (READ_AHEAD_PIECES + 1) pieces each, within these bounds per torrent, and
# within the engine's one ``ReadCache`` for all torrents together (storage/read_cache.py). A fixed
# 32 MiB cost a seeder of one peer ~30 MiB of RSS for no rate (bench/RESULTS.md: 83 against 50 MiB
# at the same rate as libtorrent); a cache per torrent kept up to 4 MiB of every torrent ever
# served (530 MiB after serving 500 torrents once: bench_seedbox_peers).
PIECE_CACHE_MIN = 4 * 1024 * 1024
PIECE_CACHE_MAX = 32 * 1024 * 1024
UPLOAD_RUN_BYTES = 256 * 1024  # block bytes sent in one write when the peer has that many queued
READ_AHEAD_PIECES = 2  # pieces read ahead of the upload queue's head
READ_AHEAD_SCAN = 128  # how far down the upload queue read ahead looks
# requests of pieces we lost a peer that cannot take lt_donthave may make before it is
# disconnected: its next connection's bitfield is the one thing that tells it (a few pipelines)
LOST_ASKS = 64


def cache_budget(serving: int, piece_length: int) -> int:
    """Bytes the read cache may hold while ``serving`` peers are unchoked: read-ahead and the
    piece being sent, per peer served."""
    wanted = (READ_AHEAD_PIECES + 1) * piece_length * max(1, serving)
    return min(PIECE_CACHE_MAX, max(PIECE_CACHE_MIN, wanted))


class Uploader:
    """The upload side of one session: request queues, the read cache and the choker."""

    def __init__(self, context: TorrentContext, rng: random.Random, *,
                 on_uploaded: Callable[[int], None]) -> None:
        self._ctx = context
        self._on_uploaded = on_uploaded  # payload bytes sent (the rates count them)
        self._rng = rng  # the choker's optimistic unchokes (the session's, seeded in tests)
        self._shelf: Shelf | None = None  # its pieces in the engine's read cache (taken at first use)
        self._reading: dict[int, anyio.Event] = {}  # pieces being read into the cache
        self._choker: Choker | None = None
        self._unchoked_held = 0  # peers unchoked by the last rechoke (counted in the shared tally)
        self._rechoke_now: anyio.Event | None = None  # (while the choker runs: ``rechoke_soon`` sets it)
        self._choking = False  # the choker's task exists (in the swarm's group, while there are peers)
        # files changed or gone under the torrent (see the module docstring)
        self._file_map: FileMap | None = None
        self.unsure: set[int] = set()  # had pieces whose file changed since they were verified
        self.lost: set[int] = set()  # pieces had and lost (peers may ask for them: rejected)
        self.changed_files: set[int] = set()  # files seen changed or gone (resume data vouches for none)
        self.gone_pieces: set[int] = set()  # pieces of files found gone or shorter (still had in resume data)
        # seed mode: the pieces verified so far (None: not in seed mode; every had piece is verified)
        self.seed_verified: Bitfield | None = None
        self.checking_again = False  # seed mode failed: the run checks the data (requests rejected)
        self.super_seeding = SuperSeeding(context, rng)  # BEP 16 (off unless the owner turns it on)

    async def on_request(self, peer: PeerState, req: m.Request) -> None:
        """Queue a peer's REQUEST (or reject it: choked, or too many queued, or a piece we lost)."""
        if req.index not in self._ctx.parts.picker.have:
            if self.refuse_lost(peer, req) and peer.fast:
                await peer.send(m.RejectRequest(req.index, req.begin, req.length))
            return
        if (peer.am_choking or len(peer.upload_queue) >= OUR_REQQ
                or not self.super_seeding.may_serve(peer, req.index)):
            if peer.fast:  # BEP 6: rejected explicitly; BEP 3: dropped
                await peer.send(m.RejectRequest(req.index, req.begin, req.length))
            return
        peer.queue_upload(req)

    def refuse_lost(self, peer: PeerState, req: m.Request) -> bool:
        """A request of a piece we do not have: a protocol error unless we had it and lost it (or
        seed mode failed: every piece is checked again). True: reject it (a fast peer is told).
        A peer that cannot take lt_donthave learns of the loss only from rejects, and a client
        that re-asks at once for the blocks of a piece it began (libtorrent does) asks for
        nothing else from us: after ``LOST_ASKS`` of them it is disconnected, with the reason —
        the bitfield of its next connection leaves the piece out."""
        if req.index not in self.lost and not self.checking_again:
            raise PeerProtocolError(f"request for piece {req.index}, which we do not have")
        if req.index in self.lost and not peer.lt_donthave:
            peer.lost_asks += 1
            if peer.lost_asks >= LOST_ASKS:
                peer.close(f"asked {peer.lost_asks} times for pieces we lost (piece {req.index} last); "
                           "it does not take lt_donthave: a new connection's bitfield tells it")
                return False
        return True

    def take_request(self, peer: PeerState, req: m.Request) -> bool:
        """``on_request`` without an await (a reject is written, not waited for). Always True."""
        if req.index not in self._ctx.parts.picker.have:
            if self.refuse_lost(peer, req) and peer.fast:
                peer.link.write_many([m.RejectRequest(req.index, req.begin, req.length)])
            return True
        if (peer.am_choking or len(peer.upload_queue) >= OUR_REQQ
                or not self.super_seeding.may_serve(peer, req.index)):
            if peer.fast:  # BEP 6: rejected explicitly; BEP 3: dropped
                peer.link.write_many([m.RejectRequest(req.index, req.begin, req.length)])
            return True
        peer.queue_upload(req)
        return True

    async def on_cancel(self, peer: PeerState, msg: m.Cancel) -> None:
        """Drop a queued request the peer cancelled."""
        try:
            peer.upload_queue.remove(m.Request(msg.index, msg.begin, msg.length))
        except ValueError:
            return
        if peer.fast:  # BEP 6: a cancelled request is still answered, with a reject
            await peer.send(m.RejectRequest(msg.index, msg.begin, msg.length))

    async def serve(self, peer: PeerState) -> None:
        """Serve the peer's queued requests: runs of blocks (up to UPLOAD_RUN_BYTES; while a rate
        limit applies, about a second of it) in one write, the pieces asked for next read ahead
        while a run goes out."""
        ctx = self._ctx
        assert ctx.shared is not None
        upload = ctx.shared.bandwidth.upload
        limits = ctx.limits
        link = peer.link
        queue = peer.upload_queue
        cache = self._cache()
        while True:
            if not queue:
                peer.upload_wakeup = anyio.Event()
                await peer.upload_wakeup.wait()
                continue
            pieces: list[tuple[int, int, memoryview]] = []
            size = 0
            limited = upload.limited(limits.group, limits.upload, peer.local)
            run = upload.step(limits.group, limits.upload, UPLOAD_RUN_BYTES, peer.local) if limited \
                else UPLOAD_RUN_BYTES
            while queue and size < run and not peer.am_choking:
                req = queue[0]
                data = cache.get(req.index)
                if data is None:
                    if pieces:
                        break  # send what is at hand first
                    data = await self.read_piece(req.index)
                    if not queue or queue[0] is not req:
                        continue  # the queue changed while we read (cancel, choke)
                    if data is None:  # not had any more (its file changed): never sent
                        queue.popleft()
                        if peer.fast:
                            await peer.send(m.RejectRequest(req.index, req.begin, req.length))
                        continue
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
            if limited:
                await upload.consume(limits.group, limits.upload, size, peer.local)
            peer.last_sent = time.monotonic()
            link.write_pieces(pieces)
            await link.drain()
            peer.uploaded += size
            peer.up_window += size
            self._on_uploaded(size)

    def _read_ahead(self, queue: deque[m.Request]) -> None:
        """Start reading the next few pieces the queue asks for that are not in the cache."""
        tg = self._ctx.run.tg
        if tg is None:
            return
        wanted: list[int] = []
        cache, reading = self._cache(), self._reading
        last = -1  # (a piece's requests come one after the other: each run of them looked at once)
        for n, req in enumerate(queue):
            if n >= READ_AHEAD_SCAN or len(wanted) >= READ_AHEAD_PIECES:
                break
            i = req.index
            if i != last:
                last = i
                if i not in cache and i not in reading and i not in wanted:
                    wanted.append(i)
        for i in wanted:
            tg.start_soon(self._read_quietly, i)

    async def _read_quietly(self, index: int) -> None:
        try:
            await self.read_piece(index)
        except StorageError:
            pass  # the uploader's own read of it reports the error

    async def read_piece(self, index: int) -> bytes | None:
        """A verified piece's data, from the cache or the disk (one read per piece at a time);
        None if the piece is not had (any more: see ``read_block``)."""
        ctx = self._ctx
        cache = self._cache()
        data = cache.get(index)
        if data is not None:
            return data
        # being read already (read ahead): wait for that read, and for the next one if another
        # began meanwhile (a read whose data is not kept: its file changed while it was read)
        while (reading := self._reading.get(index)) is not None:
            await reading.wait()
            data = cache.get(index)
            if data is not None:
                return data
        done = self._reading[index] = anyio.Event()
        began = time.monotonic()
        try:
            data = await self.read_block(index, 0, ctx.parts.torrent.piece_size(index))
        finally:
            del self._reading[index]
            done.set()
        if ctx.shared is not None:
            ctx.shared.piece_read(time.monotonic() - began)
        if data is None or self.unverified(index) or index not in ctx.parts.picker.have:
            return data  # (not kept: its file changed while it was read)
        serving = sum(1 for peer in ctx.peers.values() if not peer.am_choking)
        cache.put(index, data, cache_budget(serving, ctx.parts.torrent.piece_length))
        return data

    def _cache(self) -> Shelf:
        """This torrent's place in the engine's read cache (its own when it runs without one)."""
        shelf = self._shelf
        if shelf is None:
            shared = self._ctx.shared
            shelf = self._shelf = (shared.read_cache if shared is not None else ReadCache()).shelf()
        return shelf

    def release_cache(self) -> None:
        """The run ended: its pieces leave the read cache."""
        if self._shelf is not None:
            self._shelf.clear()
            self._shelf = None

    # -- files changed or gone -----------------------------------------------------------
    async def read_block(self, index: int, begin: int, length: int) -> bytes | None:
        """``length`` bytes of piece ``index`` from ``begin``, as verified: None if the piece is
        not had, or not any more (its file changed and it failed its hash again). A piece whose
        file changed since it was verified is read whole and hashed first."""
        ctx = self._ctx
        while True:
            if index not in ctx.parts.picker.have:
                return None
            if self.unverified(index):
                data = await self._verify(index)
                if data is None or (begin == 0 and length == len(data)):
                    return data
                return data[begin:begin + length]
            try:
                return await ctx.storage.read_block(index, begin, length)
            except FileChanged as exc:
                self.files_changed(exc.files)

    async def _verify(self, index: int) -> bytes | None:
        """Read piece ``index`` and hash it (one worker-thread hop): its data if it verifies,
        else None, and it is lost."""
        ctx = self._ctx
        torrent, storage = ctx.parts.torrent, ctx.storage

        def read_and_hash() -> bytes | None:
            data = storage.read_piece_blocking(index)
            return data if piece_ok(torrent, index, data) else None

        data = await anyio.to_thread.run_sync(read_and_hash)
        if index not in ctx.parts.picker.have:
            return None  # (lost meanwhile)
        if data is None:
            if self.seed_verified is not None:
                self._seed_mode_failed(index)
            else:
                self.lose(index)
        else:
            self.unsure.discard(index)
            if self.seed_verified is not None:
                self.seed_verified.add(index)
        return data

    def unverified(self, index: int) -> bool:
        """Whether had piece ``index`` must be read and hashed before it is served: its file
        changed since it was verified, or it is had by seed mode and not verified yet."""
        return index in self.unsure or (self.seed_verified is not None and index not in self.seed_verified)

    def start_seed_mode(self, verified: set[int]) -> None:
        """Seed mode: every piece is had (the caller marks them), ``verified`` are known good."""
        torrent = self._ctx.parts.torrent
        self.seed_verified = Bitfield(torrent.num_pieces, verified)

    def _seed_mode_failed(self, index: int) -> None:
        """A piece had by seed mode fails its hash: the data cannot be trusted. Seed mode ends,
        the pieces not verified are no longer had (never served), and the run checks the whole
        torrent (a peer asking for one meanwhile is rejected)."""
        ctx = self._ctx
        verified = self.seed_verified
        assert verified is not None
        log.warning("%s: piece %d of data added as complete fails its hash: leaving seed mode, "
                    "checking all the data", ctx.name, index)
        picker = ctx.parts.picker
        for i in list(picker.have):
            if i not in verified or i == index:
                picker.piece_lost(i)
        self.seed_verified = None
        self.unsure.clear()
        self.checking_again = True
        self._cache().clear()
        ctx.events.publish(ev.PieceHashFailed(info_hash=ctx.info_hash_hex, index=index, peers=()))
        ctx.run.check_again()

    def checked_again(self) -> None:
        """The whole torrent was checked (after seed mode failed): what is had is verified."""
        self.checking_again = False
        self.unsure.clear()
        self.changed_files.clear()
        self._cache().clear()

    def _pieces_of(self, file_index: int) -> range:
        if self._file_map is None:
            self._file_map = FileMap(self._ctx.parts.torrent)
        return self._file_map.file_pieces(file_index)

    def files_changed(self, files: tuple[int, ...]) -> None:
        """The storage found ``files`` changed since their data was verified: the pieces of them
        we have are verified again before they are served (from the disk: not the cache)."""
        ctx = self._ctx
        have = ctx.parts.picker.have
        for f in files:
            if f not in self.changed_files:
                log.warning("%s: %s changed on disk: its pieces are verified again before they are sent",
                            ctx.name, "/".join(ctx.parts.torrent.files[f].path))
            self.changed_files.add(f)
            for i in self._pieces_of(f):
                if i in have:
                    self.unsure.add(i)
                    self._uncache(i)
        storage = ctx.storage
        if isinstance(storage, WatchedFiles):
            storage.changes_seen(files)  # (after the pieces are unsure: no read in between is served)

    def lose(self, index: int) -> None:
        """Piece ``index`` no longer verifies on disk: not had, wanted again (a seed downloads it
        again), never sent; peers that ask for it are rejected."""
        ctx = self._ctx
        log.warning("%s: piece %d no longer verifies on disk: it is downloaded again", ctx.name, index)
        ctx.parts.picker.piece_lost(index)
        self.unsure.discard(index)
        self.lost.add(index)
        self._uncache(index)
        self._say_lost(index)
        ctx.events.publish(ev.PieceHashFailed(info_hash=ctx.info_hash_hex, index=index, peers=()))
        ctx.run.wanted_changed()

    def _say_lost(self, index: int) -> None:
        """BEP 54: each peer that takes ``lt_donthave`` is told at once (written, not waited for)
        that we no longer have piece ``index``; the others learn it from a reject per request (and,
        if they keep asking, from the bitfield of a new connection: ``refuse_lost``)."""
        now = time.monotonic()
        for peer in list(self._ctx.peers.values()):
            if peer.closed or not peer.lt_donthave:
                continue
            try:
                peer.link.write_many([m.Extended(peer.lt_donthave, encode_donthave(index))])
            except Exception as exc:  # its connection has ended (its own task reports why)
                peer.close(f"send failed: {exc}")
            else:
                peer.last_sent = now

    def files_gone(self, files: tuple[tuple[int, int], ...]) -> None:
        """Files found gone (or only so many bytes long: ``(file index, bytes left)``) while the
        torrent ran, which fails: the pieces they held are not had any more (its progress says
        what is verified), though the resume data keeps them, to be found again once the files
        are back (see ``Checker``)."""
        ctx = self._ctx
        torrent, picker = ctx.parts.torrent, ctx.parts.picker
        for f, left in files:
            self.changed_files.add(f)
            first = (torrent.files[f].offset + left) // torrent.piece_length
            for i in self._pieces_of(f):
                if i >= first and i in picker.have:
                    picker.piece_lost(i)
                    self.gone_pieces.add(i)
                    self._uncache(i)

    def _uncache(self, index: int) -> None:
        self._cache().drop(index)

    # -- choking -------------------------------------------------------------------------
    def swarm_started(self) -> None:
        """A swarm begins: a new choker (its rotation starts afresh); it runs once a peer's
        interest calls for it (``rechoke_soon``)."""
        self._choker = Choker(self._rng, upload_slots=self._ctx.config.upload_slots)
        if self._ctx.peers:
            self.rechoke_soon()

    @property
    def optimistic(self) -> frozenset[Hashable]:
        """The peers (their keys) unchoked now as the optimistic unchoke."""
        return self._choker.optimistic if self._choker is not None else frozenset()

    def rechoke_soon(self) -> None:
        """Rechoke now rather than at the next interval (a slot freed, or a peer got interested),
        starting the choker again in the swarm's group if it had ended."""
        if self._choking:
            if self._rechoke_now is not None:
                self._rechoke_now.set()
            return
        swarm = self._ctx.swarm
        if swarm is not None:
            self._choking = True
            swarm.start_soon(self.choker_loop)

    async def choker_loop(self) -> None:
        """Rechoke every 10 s (BEP 3), and at once when a choked peer becomes interested while
        a slot is free or an unchoked peer leaves; the choker rotates the optimistic unchoke.
        With no peer there is nothing to rotate: it ends (every slot is free then), and a peer's
        interest starts it again."""
        ctx = self._ctx
        self._choking = True
        try:
            while True:
                self._rechoke_now = due = anyio.Event()  # (a call while it rechokes: again at once)
                await self.rechoke()
                if not ctx.peers:
                    return  # (no await since the peers were looked at; it unchokes none now)
                with anyio.move_on_after(ctx.config.rechoke_interval):
                    await due.wait()
        finally:  # (no peer, or the swarm stopped: its peers are gone, their slots free for other torrents)
            self._choking = False
            self._rechoke_now = None
            if ctx.shared is not None:
                ctx.shared.unchoked -= self._unchoked_held
            self._unchoked_held = 0

    async def rechoke(self) -> None:
        """Choose whom to unchoke and apply it (rejecting the queued requests of the choked)."""
        ctx = self._ctx
        peers = [p for p in ctx.peers.values() if not p.closed]
        now = time.monotonic()
        snapshot = [ChokePeer(key=p.key, interested=p.peer_interested, download_rate=p.down_rate,
                              upload_rate=p.up_rate, snubbed=p.snubbed, connected_at=p.connected_at,
                              unchoked=not p.am_choking, unchoked_at=p.unchoked_at,
                              uploaded_since_unchoke=p.uploaded - p.uploaded_at_unchoke,
                              have=len(p.have) / p.have.num_pieces if p.have.num_pieces else 0.0)
                    for p in peers]
        if self._choker is None:
            self._choker = Choker(self._rng, upload_slots=ctx.config.upload_slots)
        shared = ctx.shared
        if shared is not None:  # slots: this torrent's, within what the limit over all leaves
            room = shared.upload_room(self._unchoked_held)
            self._choker.upload_slots = max(0, min(shared.uploads_per_torrent, room - 1))
            self._choker.optimistic_slots = 1 if room > 0 else 0
            self._choker.seeding_algorithm = shared.limits.seeding_choker
        unchoke = self._choker.rechoke(snapshot, now, seeding=ctx.state is State.SEEDING)
        if shared is not None:
            shared.unchoked += len(unchoke) - self._unchoked_held
            self._unchoked_held = len(unchoke)

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

        await fan_out(peers, apply, ctx.config.control_send_timeout)
