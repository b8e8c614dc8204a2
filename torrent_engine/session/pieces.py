"""Piece assembly and verification: every block that arrives, from a peer or a web seed, is
accounted and kept in one place (``Pieces.land``; ``Pieces.arrive`` for one that may wait); a
complete piece gets one verdict (``judge``) and one outcome (``Pieces._settle``): passed (HAVE to
peers, smart ban) or failed (re-download, smart ban).

Blocks of a piece are assembled in memory, so the disk only ever holds data that passed its hash
check. A v1 piece's SHA-1 is taken as its blocks come, on the event loop: at the end of each read
(``hash_taken``), the blocks it added in order from the piece's start, in one hashlib call per
piece, while they are still in the CPU's cache; what came out of order is hashed on the loop
too, once the piece is complete. (Hashing each whole piece later in a worker thread read it back
from memory and cost more CPU in all: bench/RESULTS.md.) A piece hashed whole that way is judged
on the loop, once, and if it passed handed to the storage's writing thread with no task of its
own (``Storage.write_verified``); it counts as had in the loop callback that reports its write.
Other pieces (v2, a hybrid learning its layers) are judged in the writing thread before their
write. Piece buffers count against ``Config.piece_buffer_bytes`` until their piece is verified
and written, and are reused while downloading (no allocation per piece). When verification falls
behind, a block that needs a new buffer waits for one (``wait_for_room``: its peer's socket is
not read meanwhile). Past the cap with pieces still being assembled, a new piece goes to disk
block by block and is judged from disk once complete (a failed one is then only re-downloaded
over).
"""

from __future__ import annotations

import hashlib
import logging
import mmap
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol, cast

import anyio

from .. import events as ev
from ..errors import PeerError, StorageError
from ..net.peer import messages as m
from ..storage import VerifiedPieceWriter, verified
from ..storage.buffers import BufferPool, PieceBuffer
from ..storage.verify import piece_ok, piece_ok_and_v2_hash
from .peer import fan_out
from .smart_ban import SmartBan
from .state_table import State

if TYPE_CHECKING:
    import anyio.abc

    from ..config import Config
    from ..errors import TorrentEngineError
    from ..formats.metainfo import Torrent
    from ..policy.picker import Block, BlockReceived
    from ..storage import PieceStorage
    from .context import Totals
    from .peer import PeerState

Cancels = tuple[tuple[Hashable, "Block"], ...]  # endgame: the block came; the others it was asked of
FollowUp = Callable[[], Coroutine[Any, Any, None]]  # what an outcome leaves to do with awaits

log = logging.getLogger("torrent_engine.session")


@dataclass(eq=False, slots=True)
class _Prefix:
    """The SHA-1 of a piece's first bytes, taken as they came in order."""

    sha: hashlib._Hash
    hashed: int = 0  # bytes of the piece in ``sha``
    end: int = 0  # bytes of the piece that came in order (``hashed`` catches up once a read)


@dataclass(eq=False)
class _DirectPiece:
    """A piece whose blocks go straight to disk (memory cap reached): its writes in flight."""

    pending: int = 0
    idle: anyio.Event = field(default_factory=anyio.Event)


def judge(torrent: Torrent, index: int, data: bytes | bytearray | mmap.mmap | memoryview,
          prefix: _Prefix | None = None, learned: list[bytes | None] | None = None) -> bool:
    """Whether piece ``index`` passed its hash check: the one verdict, however the piece was
    hashed. ``prefix``: the SHA-1 taken as its blocks came (v1), finished here if it is not
    whole; else the whole piece is hashed now (``piece_ok``; with ``learned``, a hybrid that
    learns its v2 layers from its own data gets the piece's v2 hash appended). On the loop for a
    piece hashed as it came; in the storage's writing thread before the write otherwise; in a
    worker thread for a piece read back from disk (``judge_on_disk``)."""
    if learned is not None:
        ok, v2 = piece_ok_and_v2_hash(torrent, index, memoryview(data))
        learned.append(v2)
        return ok
    if prefix is not None:
        if prefix.hashed < len(data):
            prefix.sha.update(memoryview(data)[prefix.hashed:])
            prefix.hashed = len(data)
        return bool(prefix.sha.digest() == torrent.piece_hashes[index])
    return piece_ok(torrent, index, memoryview(data))


def judge_on_disk(torrent: Torrent, storage: PieceStorage, index: int) -> bool:
    """``judge`` of piece ``index`` read back from disk; False if it cannot be read."""
    try:
        data = storage.read_piece_blocking(index)
    except StorageError:
        return False
    return judge(torrent, index, data)


class PieceRecord(Protocol):
    """The picker as piece assembly uses it: the one record of what is verified and who sent what."""

    def received(self, peer_key: Hashable, index: int, begin: int, length: int) -> BlockReceived:
        """A block arrived from ``peer_key``: whether it is new data, completes its piece, and
        was asked of other peers too."""

    def piece_passed(self, index: int) -> None:
        """The piece is verified and on disk."""

    def piece_failed(self, index: int) -> object:
        """The piece failed its hash: its blocks are wanted again."""

    def piece_sources(self, index: int) -> Mapping[int, Hashable]:
        """Who sent each block of the piece."""

    def is_complete(self) -> bool:
        """Whether every wanted piece is verified."""

    def left_bytes(self) -> int:
        """Payload bytes of wanted pieces not verified yet."""

    @property
    def has_deadlines(self) -> bool:
        """Whether open readers wait for pieces not had yet."""


class LayerChecks(Protocol):
    """BEP 52 piece layers as piece assembly asks them (``layers.PieceLayers``)."""

    @property
    def learning(self) -> bool:
        """Whether verified pieces are also hashed the v2 way."""

    def learn(self, index: int, piece_hash: bytes) -> None:
        """A verified piece's v2 hash."""

    def blocked(self, index: int) -> bool:
        """Whether the piece's hash is not known yet (a failure is then no one's fault)."""


class PieceParts(Protocol):
    """What piece assembly reads of the torrent's parts (``phases.TorrentParts``)."""

    @property
    def torrent(self) -> Torrent:
        """The metainfo: piece sizes and hashes."""

    @property
    def picker(self) -> PieceRecord:
        """The record of pieces and their senders."""

    @property
    def layers(self) -> LayerChecks:
        """The piece layers the metainfo lacks."""


class PieceRun(Protocol):
    """The torrent's run as piece assembly sees it (``lifecycle.Life``)."""

    @property
    def tg(self) -> anyio.abc.TaskGroup | None:
        """Where verification and its follow-ups run, while the torrent runs."""

    async def maybe_complete(self) -> None:
        """A piece passed: the run, the one owner of completion, decides whether that was the last."""


class PiecesHost(Protocol):
    """What piece assembly reads and calls of its torrent: ``context.TorrentContext`` is one."""

    @property
    def config(self) -> Config:
        """The piece buffer cap, the ban threshold, the send timeout."""

    @property
    def events(self) -> ev.EventBus:
        """Where ``piece.completed`` and ``piece.hash_failed`` go."""

    @property
    def info_hash_hex(self) -> str:
        """As events carry it."""

    @property
    def peers(self) -> Mapping[tuple[str, int], PeerState]:
        """The connected peers (HAVE to them)."""

    @property
    def state(self) -> State:
        """Piece buffers are kept for reuse only while downloading."""

    @property
    def parts(self) -> PieceParts:
        """The metainfo, the picker, the piece layers."""

    @property
    def storage(self) -> PieceStorage:
        """The open files."""

    @property
    def totals(self) -> Totals:
        """Bytes moved in all: the blocks no piece needed count as wasted."""

    @property
    def run(self) -> PieceRun:
        """The task group, and completion."""

    def ban(self, key: tuple[str, int]) -> None:
        """Never again: the address sent data that failed its hash check."""

    def fail(self, exc: TorrentEngineError) -> None:
        """The torrent itself failed (its disk)."""


class Pieces:
    """The pieces being assembled and verified for one session: where every block that arrives
    is accounted and kept (``land``, ``arrive``), and where every complete piece gets its one
    verdict (``judge``) and its one outcome (``_settle``)."""

    def __init__(self, host: PiecesHost, picker: PieceRecord, *, on_passed: Callable[[int], None],
                 refill: Callable[[PeerState], Awaitable[None]], cancel: Callable[[Cancels], None],
                 buffers: BufferPool | None = None) -> None:
        """``buffers``: the pool its piece buffers come from and go back to (the process's,
        shared by every torrent); without it, a pool of its own."""
        self._ctx = host
        self._picker = picker  # (the torrent's, as ``host.parts.picker``: fixed for these pieces)
        self._on_passed = on_passed  # a piece is had: wake what waits for it (the file readers)
        self._refill = refill  # a piece failed: ask a peer for blocks again
        self._cancel = cancel  # endgame: a block came; CANCEL it at the other peers it was asked of
        self._buffers: dict[int, PieceBuffer] = {}  # pieces being downloaded, assembled in memory
        # of _buffers (v1 pieces): the SHA-1 of the piece's first bytes; None once a block landed
        # inside that prefix again (the buffer no longer holds what was hashed)
        self._prefix: dict[int, _Prefix | None] = {}
        self._taken: dict[int, None] = {}  # pieces whose in-order prefix grew since hash_taken
        self._tell: list[int] = []  # pieces passed since ``tell_haves``: the peers that have them told
        self._buffered_bytes = 0  # in _buffers and in pieces being verified
        self._verify_bytes = 0  # of _buffered_bytes: the buffers of pieces being verified
        self._disk_verify_bytes = 0  # pieces written block by block, all there, hashed from disk
        self._pool = buffers if buffers is not None else BufferPool(host.config.piece_buffer_bytes)
        self._joined = False  # taking buffers from the pool (until drop_spares)
        # the storage last seen, and it again if it writes verified pieces without an await
        self._capable_of: tuple[object, VerifiedPieceWriter | None] = (None, None)
        # set when a verified piece gives its buffer back; made by the first waiter (most
        # pieces are given back with nobody waiting: no event made and dropped per piece)
        self._room: anyio.Event | None = None
        self._direct: dict[int, _DirectPiece] = {}  # pieces written to disk as their blocks come
        self.verifying: set[int] = set()
        self.smart_ban = SmartBan(self._ctx.config.max_failures_before_ban)
        self.hash_failures = 0

    @property
    def buffered_bytes(self) -> int:
        """Bytes held in memory for pieces being assembled or verified."""
        return self._buffered_bytes

    def can_take(self, index: int) -> bool:
        """Whether a block of piece ``index`` can be stored now without an await (its buffer
        exists or fits under the cap; not a piece going to disk block by block)."""
        ctx = self._ctx
        if index in self._buffers:
            return True
        return index not in self._direct and \
            self._buffered_bytes + ctx.parts.torrent.piece_size(index) <= ctx.config.piece_buffer_bytes

    # -- a block arrived -----------------------------------------------------------------------

    def land(self, source: Hashable, index: int, begin: int, block: bytes | memoryview,
             to_disk: bool = False) -> BlockReceived | None:
        """A block arrived from ``source`` (a peer's or a web seed's key): the one place it is
        accounted and kept, without an await. The picker records it (who sent it; not a block
        we miss: wasted bytes), the other peers it was asked of get a CANCEL (endgame), and it
        is copied into its piece's buffer (``take``; a complete piece is verified in the
        background). Returns the picker's verdict; None, with nothing done, when its piece
        cannot be buffered now (``can_take``): ``arrive`` takes it then, with an await.
        ``to_disk`` (``arrive``): the piece goes to disk block by block; the block is accounted
        here and written by the caller if accepted. The caller counts the bytes (per read:
        ``PeerHandler.on_batch``) and calls ``hash_taken`` once its blocks are in."""
        if index not in self._buffers and not to_disk and not self.can_take(index):
            return None
        result = self._picker.received(source, index, begin, len(block))
        if result.accepted:
            if not to_disk:
                self.take(index, begin, block, result.piece_complete)
            if result.cancels:
                self._cancel(result.cancels)
        else:  # a duplicate (endgame), or its piece was given back meanwhile
            self._ctx.totals.wasted += len(block)
        return result

    async def arrive(self, source: Hashable, index: int, begin: int, block: bytes | memoryview) -> None:
        """``land`` for a block that may wait: past the memory cap, with pieces still being
        assembled, its piece goes to disk block by block (and is hashed from disk once
        complete). (The SHA-1 of a block kept in memory is advanced by the next read's
        ``hash_taken``, or once its piece is complete: one hashlib call a block would cost more.)"""
        to_disk = not self.can_take(index)
        result = self.land(source, index, begin, block, to_disk)
        if to_disk and result is not None and result.accepted:
            await self._write_direct(index, begin, block, result.piece_complete)

    def take(self, index: int, begin: int, block: bytes | memoryview, piece_complete: bool) -> None:
        """Keep a block the picker accepted, without an await (``can_take`` said so); once the
        piece is complete, verify it in the background."""
        buf = self._buffers.get(index)
        if buf is None:
            buf = self._buffers[index] = self._new_buffer(index)
        end = begin + len(block)
        buf[begin:end] = block
        prefix = self._prefix[index]  # (made with its buffer, dropped with it)
        if prefix is not None:
            if begin == prefix.end:  # in order: hashed at the end of the read (hash_taken)
                prefix.end = end
                self._taken[index] = None
            elif begin < prefix.end:
                self._prefix[index] = None
        if piece_complete:
            self._verify_soon(index, buf)

    def hash_taken(self) -> None:
        """Hash what the blocks taken since the last call added in order to their pieces: once
        per read, while the read's bytes are still in cache (one hashlib call a piece, not a
        block: each call gives the GIL up and takes it back)."""
        for index in self._taken:
            prefix = self._prefix.get(index)
            if prefix is not None:
                self._hash_prefix(self._buffers[index], prefix)
        self._taken.clear()

    @staticmethod
    def _hash_prefix(buf: PieceBuffer, prefix: _Prefix) -> None:
        hashed, end = prefix.hashed, prefix.end
        if hashed < end:
            prefix.sha.update(memoryview(buf)[hashed:end])
            prefix.hashed = end

    async def wait_for_room(self, index: int) -> None:
        """Wait while a new buffer for piece ``index`` would pass the cap only because pieces are
        still being verified (they give their buffers back): better than going to disk block by
        block when hashing and writing are what is slow."""
        ctx = self._ctx
        while index not in self._buffers and index not in self._direct and self._verify_bytes and \
                self._buffered_bytes + ctx.parts.torrent.piece_size(index) > ctx.config.piece_buffer_bytes:
            writer = self._writer()
            if writer is not None:  # (the pieces a storage holds back give their buffers back)
                writer.write_now()
            if self._room is None:
                self._room = anyio.Event()
            await self._room.wait()

    def _new_buffer(self, index: int) -> PieceBuffer:
        """A buffer for piece ``index`` (reused if one is spare), with its hash state."""
        torrent = self._ctx.parts.torrent
        size = torrent.piece_size(index)
        self._buffered_bytes += size
        self._prefix[index] = _Prefix(hashlib.sha1()) if torrent.piece_hashes and not torrent.is_v2 else None
        if not self._joined:
            self._pool.join()
            self._joined = True
        return self._pool.take(size)

    def _buffer_done(self, buf: PieceBuffer, *, reuse: bool) -> None:
        ctx = self._ctx
        self._buffered_bytes -= len(buf)
        self._verify_bytes -= len(buf)
        if reuse and self._joined and len(buf) == ctx.parts.torrent.piece_length and \
                ctx.state is State.DOWNLOADING:
            self._pool.give(buf)  # (a last piece's odd size is not kept: no other torrent has it)
        if self._room is not None:
            self._room.set()
            self._room = None

    def drop_spares(self) -> None:
        """Take no more buffers from the pool (the download is complete, or the run ends): the
        last torrent to leave it frees the buffers it keeps. Taking one again joins again."""
        if self._joined:
            self._joined = False
            self._pool.leave()

    async def _write_direct(self, index: int, begin: int, block: bytes | memoryview,
                            piece_complete: bool) -> None:
        """A block of a piece that goes to disk block by block (the memory cap was reached when
        its first block came); the complete piece is hashed from disk (``_verify_direct``)."""
        ctx = self._ctx
        direct = self._direct.get(index)
        if direct is None:
            direct = self._direct[index] = _DirectPiece()
        direct.pending += 1
        try:
            with anyio.CancelScope(shield=True):  # the picker already counts it as received
                await ctx.storage.write_block(index, begin, bytes(block))
        finally:
            direct.pending -= 1
            if not direct.pending:
                direct.idle.set()
                direct.idle = anyio.Event()
        if piece_complete:
            self.verifying.add(index)
            self._disk_verify_bytes += ctx.parts.torrent.piece_size(index)
            self._write_held_if_last()  # (the pieces held back wait for nothing more)
            assert ctx.run.tg is not None
            ctx.run.tg.start_soon(self._verify_direct, index)

    # -- a piece is complete -------------------------------------------------------------------

    def _verify_soon(self, index: int, buf: PieceBuffer) -> None:
        """Piece ``index`` is complete in ``buf``. Hashed whole as it came (v1): judged here, and
        if it passed, handed to the storage's writing thread with no task of its own
        (``write_verified``: the loop hears back in one callback per batch of written pieces,
        bench/RESULTS.md). Otherwise hashed in that thread before its write (``_verify_piece``)."""
        ctx = self._ctx
        self.verifying.add(index)
        del self._buffers[index]
        prefix = self._prefix.pop(index, None)
        self._verify_bytes += len(buf)
        assert ctx.run.tg is not None
        if prefix is None or ctx.parts.layers.learning:
            ctx.run.tg.start_soon(self._verify_piece, index, buf, prefix, None)
            return
        # the rest of this read's blocks of it (still in cache) and any that came out of order
        # (a seeder's disk reads may finish out of order): the piece is whole now
        prefix.end = len(buf)
        self._hash_prefix(buf, prefix)
        ok = judge(ctx.parts.torrent, index, buf, prefix)
        writer = self._writer()
        if ok and writer is not None:
            writer.write_verified(index, memoryview(buf), lambda error: self._written(index, buf, error))
            # (a storage may hold it back for the pieces after it: not when nothing else is to
            # come, nor while readers wait for pieces)
            if self._picker.has_deadlines:
                writer.write_now()
            else:
                self._write_held_if_last()
        else:  # (a storage without the capability gets every piece through write_piece_if)
            ctx.run.tg.start_soon(self._verify_piece, index, buf, prefix, ok)

    def _writer(self) -> VerifiedPieceWriter | None:
        """The storage, if it writes verified pieces without an await (and may hold them back)."""
        storage = self._ctx.storage
        if storage is not self._capable_of[0]:  # (a Protocol isinstance costs µs: once per storage)
            self._capable_of = (storage, storage if isinstance(storage, VerifiedPieceWriter) else None)
        return self._capable_of[1]

    def _write_held_if_last(self) -> None:
        """Have the storage write the pieces it holds back now if nothing else is to come: every
        byte left is in a piece being verified, in memory or on disk (else completion would wait
        for the gathering's time)."""
        if self._picker.left_bytes() <= self._verify_bytes + self._disk_verify_bytes:
            writer = self._writer()
            if writer is not None:
                writer.write_now()

    async def _verify_piece(self, index: int, buf: PieceBuffer, prefix: _Prefix | None,
                            ok: bool | None) -> None:
        """A piece assembled in memory, written if it passed: ``ok``, its verdict taken on the
        loop, or None: judged in the storage's writing thread before the write (a v2 piece, a
        hybrid learning its layers). Then its outcome (``_settle``). The buffer is given back
        (for reuse) once nothing uses it any more."""
        ctx = self._ctx
        torrent = ctx.parts.torrent
        learned: list[bytes | None] | None = [] if ok is None and ctx.parts.layers.learning else None
        try:
            if ok is None:
                ok = await ctx.storage.write_piece_if(
                    index, memoryview(buf), lambda: judge(torrent, index, buf, prefix, learned))
            elif ok:
                await ctx.storage.write_piece_if(index, memoryview(buf), verified)
        except StorageError as exc:
            self._not_written(index, buf)
            ctx.fail(exc)
            return
        except BaseException:  # cancelled (the session stops): the writing thread may still hold it
            self._buffer_done(buf, reuse=False)
            raise
        if learned and learned[0] is not None:
            ctx.parts.layers.learn(index, learned[0])
        follow_up = self._settle(index, buf, ok)
        if follow_up is not None:
            await follow_up()

    def _written(self, index: int, buf: PieceBuffer, error: BaseException | None) -> None:
        """A piece that passed its hash (judged on the loop) is written, or failed to be."""
        tg = self._ctx.run.tg
        if error is not None:
            self._not_written(index, buf)
            if tg is not None:
                exc = error if isinstance(error, StorageError) else StorageError(f"piece {index}: {error}")
                self._ctx.fail(exc)
            return
        follow_up = self._settle(index, buf, True)
        if follow_up is not None and tg is not None:
            tg.start_soon(follow_up)

    def _not_written(self, index: int, buf: PieceBuffer) -> None:
        """Writing the piece failed (our disk, not the peers: the caller fails the torrent)."""
        self.verifying.discard(index)
        self._buffer_done(buf, reuse=False)

    async def _verify_direct(self, index: int) -> None:
        """A piece written block by block: once its last writes are done, hash it from disk."""
        direct = self._direct.pop(index)
        ctx = self._ctx
        try:
            while direct.pending:
                await direct.idle.wait()
            ok = await anyio.to_thread.run_sync(judge_on_disk, ctx.parts.torrent, ctx.storage, index)
        finally:
            self._disk_verify_bytes -= ctx.parts.torrent.piece_size(index)
        follow_up = self._settle(index, None, ok)
        if follow_up is not None:
            await follow_up()

    def _settle(self, index: int, buf: PieceBuffer | None, ok: bool) -> FollowUp | None:
        """The one outcome of a judged piece (``buf``: its data in memory, given back here; None:
        on disk). Passed: the smart ban compares it with the blocks of its failed copies, it
        counts as had (picker, readers, ``piece.completed``). Failed: re-downloaded, its senders
        struck or remembered (``_failed_now``). Returns what is left to do with awaits (HAVE to
        the peers and maybe completion; the peers asked for blocks again), or None."""
        ctx = self._ctx
        self.verifying.discard(index)
        refill = False
        try:
            if ok:
                if buf is not None:
                    for key in self.smart_ban.piece_passed(index, buf):
                        ctx.ban(cast(tuple[str, int], key))
            else:
                refill = self._failed_now(index, buf)
        finally:
            if buf is not None:
                self._buffer_done(buf, reuse=True)
        if ok:
            return partial(self._passed_later, index) if self._passed_now(index) else None
        return self._refill_all if refill else None

    async def passed(self, index: int) -> None:
        """Piece ``index`` is verified and on disk (found there by a check): it counts as had,
        as a piece that passed in ``_settle``."""
        if self._passed_now(index):
            await self._passed_later(index)

    def _passed_now(self, index: int) -> bool:
        """The synchronous part of a pass; whether the rest (``_passed_later``) has work."""
        ctx = self._ctx
        self._picker.piece_passed(index)
        self._on_passed(index)
        ctx.events.publish(ev.PieceCompleted(info_hash=ctx.info_hash_hex, index=index))
        if ctx.peers:  # (the peers that have it are told too, at the next tick: ``tell_haves``)
            self._tell.append(index)
        return self._picker.is_complete() or any(index not in p.have or p.started_empty
                                                 for p in ctx.peers.values())

    async def _passed_later(self, index: int) -> None:
        ctx = self._ctx
        # (a peer that started empty may be a super-seed that waits for this HAVE: BEP 16)
        missing = [p for p in ctx.peers.values() if index not in p.have or p.started_empty]
        if missing:  # (none from a seed: no task group for nothing, once a piece)
            await fan_out(missing, lambda peer: peer.send(m.Have(index)), ctx.config.control_send_timeout)
        await ctx.run.maybe_complete()

    def tell_haves(self) -> None:
        """Tell each peer that has them of the pieces passed since the last call, in one write
        (libtorrent's ``send_redundant_have``, its default: a seed learns how far we are, as its
        peers' list shows; once a tick, where a write per piece and peer cost a send each; the
        peers that lacked a piece were told as it passed)."""
        told, self._tell = self._tell, []
        if not told:
            return
        for peer in self._ctx.peers.values():
            if peer.closed or peer.started_empty:
                continue
            haves = [m.Have(i) for i in told if i in peer.have]
            if haves:
                try:
                    peer.link.write_many(haves)
                except PeerError:
                    peer.close("send failed")

    def _failed_now(self, index: int, buf: PieceBuffer | None) -> bool:
        """The synchronous part of a failure: re-download the piece; strike or remember its
        senders (smart ban). False when it did not count as failed: a piece whose v2 hash is not
        known yet is fetched again later, held against no one."""
        ctx = self._ctx
        picker = self._picker
        if ctx.parts.layers.blocked(index):
            picker.piece_failed(index)
            return False
        self.hash_failures += 1
        ctx.totals.corrupt += ctx.parts.torrent.piece_size(index)
        sources = cast(dict[int, tuple[str, int]], picker.piece_sources(index))
        picker.piece_failed(index)
        peers = tuple(sorted(f"{host}:{port}" for host, port in set(sources.values())))
        ctx.events.publish(ev.PieceHashFailed(info_hash=ctx.info_hash_hex, index=index, peers=peers))
        for key in self.smart_ban.piece_failed(index, buf, sources):
            ctx.ban(cast(tuple[str, int], key))
        return True

    async def _refill_all(self) -> None:
        ctx = self._ctx
        await fan_out(list(ctx.peers.values()), self._refill, ctx.config.control_send_timeout)
