"""BEP 52 piece layers for a v2 torrent whose metainfo lacks them (a magnet's, or an incomplete
.torrent's): ask peers for them as the shared ``PieceLayerFetcher`` directs, hand the verified
layers to the torrent, and answer peers' ``hash request`` messages from the layers we know.

Until a file's layer is known its pieces are not requested (``verifiable``), so no piece is ever
counted as a hash failure for want of its hash. Data that was on disk at start (the start-up
recheck could not verify those pieces) is checked again once their layer comes, before any of
them is requested.

Hash messages belong to connections made with the v2 info-hash: a hybrid torrent reached by its
v1 info-hash asks nothing (BEP 52's upgrade handshake is not done; libtorrent drops a v1
connection that sends one); it learns its missing layers from its own data instead: each piece
that passes its SHA-1 check in memory is hashed the v2 way too (``learn``), and once the download
is complete the pieces not seen so (from resume data, or written straight to disk) are read back,
and the layers are built and checked against each file's pieces root (``learn_rest``).
"""

from __future__ import annotations

import bisect
import logging
import time
from collections.abc import Awaitable, Callable, Container, Hashable
from typing import TYPE_CHECKING

import anyio

from .. import events as ev
from ..errors import MetainfoError, StorageError
from ..formats.infohash import v2_on_wire
from ..formats.merkle import piece_hash_v2
from ..formats.metainfo import Torrent
from ..net.peer import messages as m
from ..net.peer.layer_fetch import PieceLayerFetcher, Verdict, hashes_for
from ..storage import PieceStorage
from ..storage.verify import check_piece_on_disk
from .peer import PeerState, fan_out
from .phases import Opened

if TYPE_CHECKING:
    from .context import TorrentContext

log = logging.getLogger("torrent_engine.session")


class _Without:
    """What a peer has, minus the pieces being looked for on disk (a ``Container``)."""

    __slots__ = ("_has", "_held")

    def __init__(self, has: Container[int], held: set[int]) -> None:
        self._has = has
        self._held = held

    def __contains__(self, index: object) -> bool:
        return index not in self._held and index in self._has


class PieceLayers:
    """The piece layers a session still lacks, and the hash requests for them."""

    def __init__(self, context: TorrentContext, torrent: Torrent, *, rechecked: Callable[[], bool],
                 update_interest: Callable[[PeerState], Awaitable[None]],
                 save_metainfo: Callable[[], Awaitable[None]]) -> None:
        self._ctx = context
        self._rechecked = rechecked  # whether start-up hashed the data on disk (some may wait for a layer)
        self._update_interest = update_interest  # a peer's pieces can be asked for now
        self._save_metainfo = save_metainfo  # the metainfo gained layers: write it
        self.fetcher: PieceLayerFetcher | None = None  # None: nothing missing (or not askable)
        self.received = 0  # files whose layer came from peers
        self._held: set[int] = set()  # pieces being checked on disk: not offered to the picker
        # a hybrid reached by its v1 info-hash: the v2 hashes of its own verified pieces, per file
        # lacking a layer (first piece -> (file index, hashes; None: not seen yet))
        self._learnt: dict[int, tuple[int, list[bytes | None]]] = {}
        self._learnt_firsts: list[int] = []
        self._learning_rest = anyio.Lock()
        # fetch the missing layers if our connections can ask for them (see the module text)
        v2_wire = torrent.info_hash_v2 is not None and self._ctx.info_hash == v2_on_wire(torrent.info_hash_v2)
        self.fetcher = PieceLayerFetcher(torrent) if v2_wire and torrent.missing_piece_layers else None
        if self.fetcher is None and torrent.is_hybrid:
            pl = torrent.piece_length
            for i in torrent.missing_piece_layers:
                f = torrent.files[i]
                self._learnt[f.offset // pl] = (i, [None] * -(-f.length // pl))
        self._learnt_firsts = sorted(self._learnt)

    @property
    def learning(self) -> bool:
        """Whether verified pieces should also be hashed the v2 way (see the module text)."""
        return bool(self._learnt)

    def learn(self, index: int, piece_hash: bytes) -> None:
        """Piece ``index`` passed its SHA-1 check; ``piece_hash`` is its v2 piece-layer hash."""
        pos = bisect.bisect_right(self._learnt_firsts, index) - 1
        if pos >= 0:
            first = self._learnt_firsts[pos]
            hashes = self._learnt[first][1]
            if index - first < len(hashes):
                hashes[index - first] = piece_hash

    async def learn_rest(self) -> None:
        """The download is complete: read back the pieces whose v2 hash was not learnt, build the
        layers of the files held whole, and give them to the torrent if they match its roots."""
        async with self._learning_rest:  # (two last pieces passing at once: the second waits)
            await self._learn_rest()

    async def _learn_rest(self) -> None:
        ctx = self._ctx
        phase = ctx.phase
        if not self._learnt or not isinstance(phase, Opened):
            return
        parts, storage = phase.parts, phase.storage
        torrent = parts.torrent
        pl = torrent.piece_length
        found: dict[bytes, bytes] = {}
        for first, (i, hashes) in list(self._learnt.items()):
            f = torrent.files[i]
            have = parts.picker.has_piece
            if f.pieces_root is None or not all(have(first + j) for j in range(len(hashes))):
                continue  # (a skipped file: not on disk)
            try:
                for j, h in enumerate(hashes):
                    if h is None:
                        data = await storage.read_piece(first + j)
                        own = min(len(data), f.offset + f.length - (first + j) * pl)
                        hashes[j] = await anyio.to_thread.run_sync(piece_hash_v2, memoryview(data)[:own], pl,
                                                                   f.length)
            except StorageError as exc:
                log.warning("cannot read %s back for its v2 piece layer: %s", "/".join(f.path), exc)
                continue
            found[f.pieces_root] = b"".join(h or b"" for h in hashes)
            del self._learnt[first]
        self._learnt_firsts = sorted(self._learnt)
        if not found:
            return
        try:
            parts.torrent = torrent.with_piece_layers(found)
        except MetainfoError as exc:  # its (SHA-1 verified) data does not hash to the v2 roots
            log.warning("%s: the v2 piece layers of its data do not match the torrent: %s", ctx.name, exc)
            self._learnt, self._learnt_firsts = {}, []
            return
        self.received += len(found)
        ctx.events.publish(ev.SessionPieceLayersReceived(info_hash=ctx.info_hash_hex, files=len(found)))
        await self._save_metainfo()

    def verifiable(self, peer_key: Hashable) -> Container[int] | None:
        """What the picker may take from the peer (its pieces whose hash is known), or None when
        every piece's hash is known (the picker's own record of the peer then)."""
        fetcher = self.fetcher
        blocking = fetcher is not None and fetcher.blocking
        if not blocking and not self._held:
            return None
        has = self._ctx.parts.picker.peer_has(peer_key)
        if fetcher is not None and blocking:
            has = fetcher.verifiable(has)
        return _Without(has, self._held) if self._held else has

    def blocked(self, index: int) -> bool:
        """Whether piece ``index``'s hash is not known yet."""
        return self.fetcher is not None and self.fetcher.blocked(index)

    def peer_gone(self, peer_key: tuple[str, int]) -> None:
        """The peer left: its hash requests are free for others."""
        if self.fetcher is not None:
            self.fetcher.remove_peer(peer_key)

    def tick(self, now: float) -> None:
        """Once a second: unanswered hash requests time out."""
        if self.fetcher is not None:
            self.fetcher.tick(now)

    def stall_facts(self) -> tuple[int, int, int]:
        """(files whose pieces wait for their layer, hash requests sent, rejected or unanswered)."""
        f = self.fetcher
        if f is None or not f.blocking:
            return 0, 0, 0
        return f.missing_files, f.sent, f.rejected + f.timed_out

    def may_ask(self, peer: PeerState) -> bool:
        """Whether ``ask`` may send the peer hash requests (layers missing, the peer has pieces)."""
        fetcher = self.fetcher
        return fetcher is not None and not fetcher.done and not peer.closed and bool(len(peer.have))

    async def ask(self, peer: PeerState) -> None:
        """Send the peer the hash requests the fetcher gives it (in any choke state, BEP 52)."""
        fetcher = self.fetcher
        if fetcher is None or not self.may_ask(peer):
            return  # (a peer without pieces is asked nothing: BEP 52 asks for announced pieces)
        reqs = fetcher.next_requests(peer.key, self._ctx.parts.picker.peer_has(peer.key), time.monotonic())
        if reqs:
            await peer.send(*reqs)

    async def on_message(self, peer: PeerState, msg: m.HashRequest | m.Hashes | m.HashReject) -> None:
        """A BEP 52 hash message from the peer."""
        ctx = self._ctx
        if isinstance(msg, m.HashRequest):  # answered from the layers we know, else rejected
            torrent = ctx.parts.torrent
            reply = hashes_for(torrent.piece_layers, torrent.piece_length, msg)
            await peer.send(reply if reply is not None else m.HashReject(
                msg.pieces_root, msg.base_layer, msg.index, msg.length, msg.proof_layers))
            return
        fetcher = self.fetcher
        if fetcher is None:
            return  # nothing asked: an unsolicited answer is ignored
        if isinstance(msg, m.HashReject):
            fetcher.on_reject(peer.key, msg, time.monotonic())
            return
        verdict = fetcher.on_hashes(peer.key, msg, time.monotonic())
        if verdict is Verdict.FALSE:
            log.info("peer %s of %s sent piece hashes that do not match the pieces root",
                     peer.address, ctx.name)
            ctx.ban(peer.key)
        elif verdict is Verdict.LAYER_COMPLETE:
            await self._arrived(fetcher)
        elif verdict is Verdict.ACCEPTED:
            await self.ask(peer)

    async def _arrived(self, fetcher: PieceLayerFetcher) -> None:
        """Files' layers verified: the torrent takes them, their pieces are requested now."""
        ctx = self._ctx
        layers = fetcher.take_layers()
        parts = ctx.parts
        parts.torrent = parts.torrent.with_piece_layers(layers)
        self.received += len(layers)
        if self._rechecked():
            self._look_on_disk(layers)
        if fetcher.done:
            ctx.events.publish(ev.SessionPieceLayersReceived(info_hash=ctx.info_hash_hex,
                                                             files=self.received))
            await self._save_metainfo()
        await fan_out(list(ctx.peers.values()), self._update_interest,
                      ctx.config.control_send_timeout)

    def _look_on_disk(self, layers: dict[bytes, bytes]) -> None:
        """The start-up recheck found data it could not verify (no hash yet): now that the
        layers of these files are known, check their pieces on disk before requesting them."""
        ctx = self._ctx
        phase = ctx.phase
        if not isinstance(phase, Opened) or ctx.run.tg is None:
            return
        torrent, storage, picker = phase.parts.torrent, phase.storage, phase.parts.picker
        busy = set(picker.downloading())
        pieces: list[int] = []
        for i, f in enumerate(torrent.files):
            path = storage.file_path(i)
            if f.pieces_root not in layers or path is None or not path.exists():
                continue
            first = f.offset // torrent.piece_length
            pieces += [p for p in range(first, first + -(-f.length // torrent.piece_length))
                       if not picker.has_piece(p) and p not in busy]
        if pieces:
            self._held.update(pieces)  # (at once: no peer is asked for them meanwhile)
            ctx.run.tg.start_soon(self._check_on_disk, storage, pieces)

    async def _check_on_disk(self, storage: PieceStorage, pieces: list[int]) -> None:
        ctx = self._ctx
        try:
            for index in pieces:
                if await check_piece_on_disk(ctx.parts.torrent, storage, index):
                    await ctx.parts.pieces.passed(index)
                self._held.discard(index)
        finally:
            self._held.difference_update(pieces)
        await fan_out(list(ctx.peers.values()), self._update_interest,
                      ctx.config.control_send_timeout)
