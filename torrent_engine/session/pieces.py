"""Piece assembly and verification: blocks into the piece's buffer; a complete piece hashed and
then written in one worker-thread hop; passed (HAVE to peers) or failed (re-download, smart ban).

Blocks of a piece are assembled in memory, so the disk only ever holds data that passed its hash
check. Past ``Config.piece_buffer_bytes`` in memory a new piece goes to disk block by block and is
hashed from disk once complete (a failed one is then only re-downloaded over).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

import anyio

from .. import events as ev
from ..errors import StorageError
from ..peer import messages as m
from ..verify import check_piece_on_disk, piece_ok, piece_ok_and_v2_hash
from .peer import fan_out
from .smart_ban import SmartBan

if TYPE_CHECKING:
    from .core import Session

log = logging.getLogger("torrent_engine.session")


@dataclass(eq=False)
class _DirectPiece:
    """A piece whose blocks go straight to disk (memory cap reached): its writes in flight."""

    pending: int = 0
    idle: anyio.Event = field(default_factory=anyio.Event)


class Pieces:
    """The pieces being assembled and verified for one session."""

    def __init__(self, session: Session) -> None:
        self._s = session
        self._buffers: dict[int, bytearray] = {}  # pieces being downloaded, assembled in memory
        self._buffered_bytes = 0
        self._direct: dict[int, _DirectPiece] = {}  # pieces written to disk as their blocks come
        self.verifying: set[int] = set()
        self.smart_ban = SmartBan(session.config.max_failures_before_ban)
        self.hash_failures = 0

    @property
    def buffered_bytes(self) -> int:
        """Bytes held in memory for pieces not yet complete."""
        return self._buffered_bytes

    async def store(self, index: int, begin: int, block: bytes | memoryview, piece_complete: bool) -> None:
        """Keep a block the picker accepted; once the piece is complete, verify it in the background."""
        s = self._s
        torrent = s.torrent
        buf = self._buffers.get(index)
        direct = self._direct.get(index)
        if buf is None and direct is None:
            if self._buffered_bytes + torrent.piece_size(index) <= s.config.piece_buffer_bytes:
                buf = self._buffers[index] = bytearray(torrent.piece_size(index))
                self._buffered_bytes += len(buf)
            else:  # too much in memory already: this piece goes to disk block by block
                direct = self._direct[index] = _DirectPiece()
        if buf is not None:
            buf[begin:begin + len(block)] = block
        else:
            assert direct is not None and s._storage is not None
            direct.pending += 1
            try:
                with anyio.CancelScope(shield=True):  # the picker already counts it as received
                    await s._storage.write_block(index, begin, bytes(block))
            finally:
                direct.pending -= 1
                if not direct.pending:
                    direct.idle.set()
                    direct.idle = anyio.Event()
        if piece_complete:
            self.verifying.add(index)
            assert s._tg is not None
            if buf is not None:
                del self._buffers[index]
                self._buffered_bytes -= len(buf)
                s._tg.start_soon(self._verify_piece, index, buf)
            else:
                s._tg.start_soon(self._verify_direct, index)

    async def _verify_direct(self, index: int) -> None:
        """A piece written block by block: once its last writes are done, hash it from disk."""
        s = self._s
        direct = self._direct.pop(index)
        while direct.pending:
            await direct.idle.wait()
        assert s._storage is not None
        ok = await check_piece_on_disk(s.torrent, s._storage, index)
        self.verifying.discard(index)
        if ok:
            await self.passed(index)
        else:
            await self._failed(index, None)

    async def _verify_piece(self, index: int, buf: bytearray) -> None:
        s = self._s
        assert s._storage is not None
        torrent = s.torrent
        try:
            if s.layers.learning:  # a hybrid learning its missing v2 layers from its own data
                ok, v2 = await anyio.to_thread.run_sync(piece_ok_and_v2_hash, torrent, index, memoryview(buf))
                if v2 is not None:
                    s.layers.learn(index, v2)
            else:
                ok = await anyio.to_thread.run_sync(piece_ok, torrent, index, memoryview(buf))
            if ok:
                await s._storage.write_block(index, 0, memoryview(buf))
        except StorageError as exc:
            self.verifying.discard(index)
            await s._fail(exc)
            return
        self.verifying.discard(index)
        if ok:
            for key in self.smart_ban.piece_passed(index, buf):
                s._ban(cast(tuple[str, int], key))
            await self.passed(index)
        else:
            await self._failed(index, buf)

    async def passed(self, index: int) -> None:
        """Piece ``index`` is verified and on disk: record it, tell the peers, maybe complete."""
        s = self._s
        s._picker.piece_passed(index)
        s.events.publish(ev.PieceCompleted(info_hash=s.info_hash_hex, index=index))
        await fan_out([p for p in s._peers.values() if index not in p.have],
                      lambda peer: peer.send(m.Have(index)), s.config.control_send_timeout)
        await s._maybe_complete()

    async def _failed(self, index: int, buf: bytearray | None) -> None:
        """Re-download the piece; strike or remember its senders (smart ban). A piece whose v2
        hash is not known yet has not failed: it is fetched again later, held against no one."""
        s = self._s
        if s.layers.blocked(index):
            s._picker.piece_failed(index)
            return
        self.hash_failures += 1
        sources = cast(dict[int, tuple[str, int]], s._picker.piece_sources(index))
        s._picker.piece_failed(index)
        peers = tuple(sorted(f"{host}:{port}" for host, port in set(sources.values())))
        s.events.publish(ev.PieceHashFailed(info_hash=s.info_hash_hex, index=index, peers=peers))
        for key in self.smart_ban.piece_failed(index, buf, sources):
            s._ban(cast(tuple[str, int], key))
        await fan_out(list(s._peers.values()), s.handler.fill_requests, s.config.control_send_timeout)
