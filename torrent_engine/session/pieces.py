"""Piece assembly and verification: blocks into the piece's buffer; a complete piece checked and,
if it passed, written (by the storage's own threads); passed (HAVE to peers) or failed
(re-download, smart ban).

Blocks of a piece are assembled in memory, so the disk only ever holds data that passed its hash
check. A v1 piece's SHA-1 is taken as its blocks come, on the event loop: at the end of each read
(``hash_taken``), the blocks it added in order from the piece's start, in one hashlib call per
piece, while they are still in the CPU's cache; what came out of order is hashed on the loop
too, once the piece is complete. (Hashing each whole piece later in a worker thread read it back
from memory and cost more CPU in all: bench/RESULTS.md.) A piece hashed whole that way is checked
on the loop and handed to the storage's writing thread with no task of its own
(``Storage.write_verified``); it counts as had (``passed``) in the loop callback that reports its
write. Piece buffers count
against ``Config.piece_buffer_bytes`` until their piece is verified and written, and are reused
while downloading (no allocation per piece). When verification falls behind, a block that needs
a new buffer waits for one (``wait_for_room``: its peer's socket is not read meanwhile). Past the
cap with pieces still being assembled, a new piece goes to disk block by block and is hashed from
disk once complete (a failed one is then only re-downloaded over).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, cast

import anyio

from .. import events as ev
from ..errors import StorageError
from ..peer import messages as m
from ..session_state import State
from ..storage import VerifiedPieceWriter, verified
from ..verify import check_piece_on_disk, piece_ok, piece_ok_and_v2_hash
from .peer import fan_out
from .smart_ban import SmartBan

if TYPE_CHECKING:
    import anyio.abc

    from ..config import Config
    from ..errors import TorrentEngineError
    from ..metainfo import Torrent
    from ..storage import PieceStorage
    from .peer import PeerState

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


class PieceRecord(Protocol):
    """The picker as piece assembly uses it: the one record of what is verified and who sent what."""

    def piece_passed(self, index: int) -> None:
        """The piece is verified and on disk."""

    def piece_failed(self, index: int) -> object:
        """The piece failed its hash: its blocks are wanted again."""

    def piece_sources(self, index: int) -> Mapping[int, Hashable]:
        """Who sent each block of the piece."""

    def is_complete(self) -> bool:
        """Whether every wanted piece is verified."""


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
    def run(self) -> PieceRun:
        """The task group, and completion."""

    def ban(self, key: tuple[str, int]) -> None:
        """Never again: the address sent data that failed its hash check."""

    def fail(self, exc: TorrentEngineError) -> None:
        """The torrent itself failed (its disk)."""


class Pieces:
    """The pieces being assembled and verified for one session."""

    def __init__(self, host: PiecesHost, *, on_passed: Callable[[int], None],
                 refill: Callable[[PeerState], Awaitable[None]]) -> None:
        self._ctx = host
        self._on_passed = on_passed  # a piece is had: wake what waits for it (the file readers)
        self._refill = refill  # a piece failed: ask a peer for blocks again
        self._buffers: dict[int, bytearray] = {}  # pieces being downloaded, assembled in memory
        # of _buffers (v1 pieces): the SHA-1 of the piece's first bytes; None once a block landed
        # inside that prefix again (the buffer no longer holds what was hashed)
        self._prefix: dict[int, _Prefix | None] = {}
        self._taken: dict[int, None] = {}  # pieces whose in-order prefix grew since hash_taken
        self._buffered_bytes = 0  # in _buffers and in pieces being verified
        self._verify_bytes = 0  # of _buffered_bytes: the buffers of pieces being verified
        self._spare: list[bytearray] = []  # piece buffers to reuse
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

    def take(self, index: int, begin: int, block: bytes | memoryview, piece_complete: bool) -> None:
        """Keep a block the picker accepted, without an await (``can_take`` said so); once the
        piece is complete, verify it in the background."""
        buf = self._buffers.get(index)
        if buf is None:
            buf = self._buffers[index] = self._new_buffer(index)
        buf[begin:begin + len(block)] = block
        prefix = self._prefix.get(index)
        if prefix is not None:
            if begin == prefix.end:  # in order: hashed at the end of the read (hash_taken)
                prefix.end = begin + len(block)
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
    def _hash_prefix(buf: bytearray, prefix: _Prefix) -> None:
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
            if self._room is None:
                self._room = anyio.Event()
            await self._room.wait()

    def _new_buffer(self, index: int) -> bytearray:
        """A buffer for piece ``index`` (reused if one is spare), with its hash state."""
        torrent = self._ctx.parts.torrent
        size = torrent.piece_size(index)
        self._buffered_bytes += size
        self._prefix[index] = _Prefix(hashlib.sha1()) if torrent.piece_hashes and not torrent.is_v2 else None
        if size == torrent.piece_length and self._spare:
            return self._spare.pop()
        return bytearray(size)

    def _buffer_done(self, buf: bytearray, *, reuse: bool) -> None:
        ctx = self._ctx
        self._buffered_bytes -= len(buf)
        self._verify_bytes -= len(buf)
        if reuse and len(buf) == ctx.parts.torrent.piece_length and ctx.state is State.DOWNLOADING and \
                (len(self._spare) + 1) * len(buf) <= ctx.config.piece_buffer_bytes:
            self._spare.append(buf)
        if self._room is not None:
            self._room.set()
            self._room = None

    def drop_spares(self) -> None:
        """Free the buffers kept for reuse (the download is complete)."""
        self._spare.clear()

    def _verify_soon(self, index: int, buf: bytearray) -> None:
        ctx = self._ctx
        self.verifying.add(index)
        del self._buffers[index]
        prefix = self._prefix.pop(index, None)
        learning = ctx.parts.layers.learning
        if prefix is not None and not learning:
            # the rest of this read's blocks of it (still in cache) and any that came out of
            # order (a seeder's disk reads may finish out of order): the piece is whole now
            prefix.end = len(buf)
            self._hash_prefix(buf, prefix)
        self._verify_bytes += len(buf)
        storage = ctx.storage
        if storage is not self._capable_of[0]:  # (a Protocol isinstance costs µs: once per storage)
            self._capable_of = (storage, storage if isinstance(storage, VerifiedPieceWriter) else None)
        writer = self._capable_of[1]
        if prefix is not None and prefix.hashed == len(buf) and not learning and writer is not None and \
                prefix.sha.digest() == ctx.parts.torrent.piece_hashes[index]:
            # hashed whole as it came and passed: written with no task of its own; the loop
            # hears back in one callback per batch of written pieces (bench/RESULTS.md). (A
            # storage without the capability gets every piece through write_piece_if.)
            writer.write_verified(index, buf, lambda error: self._written(index, buf, error))
            return
        assert ctx.run.tg is not None
        ctx.run.tg.start_soon(self._verify_piece, index, buf, prefix)

    def _written(self, index: int, buf: bytearray, error: BaseException | None) -> None:
        """A piece that passed its hash (checked on the loop) is written, or failed to be."""
        ctx = self._ctx
        self.verifying.discard(index)
        tg = ctx.run.tg
        if error is not None:
            self._buffer_done(buf, reuse=False)
            if tg is not None:
                exc = error if isinstance(error, StorageError) else StorageError(f"piece {index}: {error}")
                ctx.fail(exc)
            return
        try:
            for key in self.smart_ban.piece_passed(index, buf):
                ctx.ban(cast(tuple[str, int], key))
        finally:
            self._buffer_done(buf, reuse=True)
        if self._passed_now(index) and tg is not None:
            tg.start_soon(self._passed_later, index)

    async def store(self, index: int, begin: int, block: bytes | memoryview, piece_complete: bool) -> None:
        """Keep a block the picker accepted; once the piece is complete, verify it in the background."""
        ctx = self._ctx
        torrent = ctx.parts.torrent
        buf = self._buffers.get(index)
        direct = self._direct.get(index)
        if buf is None and direct is None:
            if self._buffered_bytes + torrent.piece_size(index) <= ctx.config.piece_buffer_bytes:
                buf = self._buffers[index] = self._new_buffer(index)
            else:  # too much in memory already: this piece goes to disk block by block
                direct = self._direct[index] = _DirectPiece()
        if buf is not None:
            buf[begin:begin + len(block)] = block
            prefix = self._prefix.get(index)
            if prefix is not None and begin < prefix.end:
                self._prefix[index] = None
        else:
            assert direct is not None
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
            if buf is not None:
                self._verify_soon(index, buf)
            else:
                self.verifying.add(index)
                assert ctx.run.tg is not None
                ctx.run.tg.start_soon(self._verify_direct, index)

    async def _verify_direct(self, index: int) -> None:
        """A piece written block by block: once its last writes are done, hash it from disk."""
        ctx = self._ctx
        direct = self._direct.pop(index)
        while direct.pending:
            await direct.idle.wait()
        ok = await check_piece_on_disk(ctx.parts.torrent, ctx.storage, index)
        self.verifying.discard(index)
        if ok:
            await self.passed(index)
        else:
            await self._failed(index, None)

    async def _verify_piece(self, index: int, buf: bytearray, prefix: _Prefix | None) -> None:
        """Finish the hash of a piece assembled in memory and, if it passed, write it (storage's
        threads). ``prefix``: the SHA-1 of its first bytes, taken as they came (v1), or None.
        The buffer is given back (for reuse) once nothing uses it any more."""
        ctx = self._ctx
        torrent = ctx.parts.torrent
        reuse = refill = False
        try:
            learned: list[bytes | None] = []

            def check() -> bool:  # in the worker thread, before the write
                if learning:  # a hybrid learning its missing v2 layers from its own data
                    ok, v2 = piece_ok_and_v2_hash(torrent, index, memoryview(buf))
                    learned.append(v2)
                    return ok
                if prefix is not None:  # v1: the rest of the SHA-1
                    sha, done = prefix.sha, prefix.hashed
                    if done < len(buf):
                        sha.update(memoryview(buf)[done:])
                    return bool(sha.digest() == torrent.piece_hashes[index])
                return piece_ok(torrent, index, memoryview(buf))

            learning = ctx.parts.layers.learning
            try:
                if prefix is not None and prefix.hashed == len(buf) and not learning:
                    # hashed whole as it came: checked here, straight to the writing thread
                    ok = prefix.sha.digest() == torrent.piece_hashes[index]
                    if ok:
                        await ctx.storage.write_piece_if(index, buf, verified)
                else:
                    ok = await ctx.storage.write_piece_if(index, buf, check)
            except StorageError as exc:
                self.verifying.discard(index)
                ctx.fail(exc)
                return
            if learned and learned[0] is not None:
                ctx.parts.layers.learn(index, learned[0])
            self.verifying.discard(index)
            if ok:
                for key in self.smart_ban.piece_passed(index, buf):
                    ctx.ban(cast(tuple[str, int], key))
            else:
                refill = self._failed_now(index, buf)
            reuse = True  # (the worker thread and the smart ban are done with it)
        finally:
            self._buffer_done(buf, reuse=reuse)
        if ok:
            await self.passed(index)
        elif refill:
            await self._refill_all()

    async def passed(self, index: int) -> None:
        """Piece ``index`` is verified and on disk: record it, tell the peers, maybe complete."""
        if self._passed_now(index):
            await self._passed_later(index)

    def _passed_now(self, index: int) -> bool:
        """The synchronous part of ``passed``; whether the rest (``_passed_later``) has work."""
        ctx = self._ctx
        ctx.parts.picker.piece_passed(index)
        self._on_passed(index)
        ctx.events.publish(ev.PieceCompleted(info_hash=ctx.info_hash_hex, index=index))
        return ctx.parts.picker.is_complete() or any(index not in p.have for p in ctx.peers.values())

    async def _passed_later(self, index: int) -> None:
        ctx = self._ctx
        missing = [p for p in ctx.peers.values() if index not in p.have]
        if missing:  # (none from a seed: no task group for nothing, once a piece)
            await fan_out(missing, lambda peer: peer.send(m.Have(index)), ctx.config.control_send_timeout)
        await ctx.run.maybe_complete()

    async def _failed(self, index: int, buf: bytearray | None) -> None:
        """Re-download the piece; strike or remember its senders (smart ban). A piece whose v2
        hash is not known yet has not failed: it is fetched again later, held against no one."""
        if self._failed_now(index, buf):
            await self._refill_all()

    def _failed_now(self, index: int, buf: bytearray | None) -> bool:
        """The synchronous part of ``_failed``; False when the piece did not count as failed."""
        ctx = self._ctx
        if ctx.parts.layers.blocked(index):
            ctx.parts.picker.piece_failed(index)
            return False
        self.hash_failures += 1
        sources = cast(dict[int, tuple[str, int]], ctx.parts.picker.piece_sources(index))
        ctx.parts.picker.piece_failed(index)
        peers = tuple(sorted(f"{host}:{port}" for host, port in set(sources.values())))
        ctx.events.publish(ev.PieceHashFailed(info_hash=ctx.info_hash_hex, index=index, peers=peers))
        for key in self.smart_ban.piece_failed(index, buf, sources):
            ctx.ban(cast(tuple[str, int], key))
        return True

    async def _refill_all(self) -> None:
        ctx = self._ctx
        await fan_out(list(ctx.peers.values()), self._refill, ctx.config.control_send_timeout)
