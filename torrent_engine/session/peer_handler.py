"""The per-peer protocol: greet a peer, read its messages and act on them (BEP 3, 6, 10, 11, 16, 54).

One ``PeerHandler`` per session serves every connected peer: the exchange loop reads messages,
``on_message`` dispatches them; requests go out in batches (see ``requesting``), blocks go to
``Pieces.land`` (the block path every source shares). A protocol error or I/O failure closes
that peer only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from functools import partial
from typing import TYPE_CHECKING, Protocol

import anyio

from .. import events as ev
from ..engine.shared import ReceiveBudget
from ..errors import PeerError, PeerProtocolError, StorageError
from ..formats.bitfield import Bitfield
from ..net.peer import messages as m
from ..net.peer.donthave import EXTENSION_NAME as LT_DONTHAVE
from ..net.peer.donthave import decode_donthave
from ..net.peer.extensions import UT_METADATA, UT_PEX, ExtensionHandshake, PexMessage
from ..net.peer.holepunch import EXTENSION_NAME as UT_HOLEPUNCH
from ..net.ssrf import is_local
from ..policy.picker import Block
from ..version import CLIENT_VERSION
from . import requesting
from .extension_ids import (
    OUR_LT_DONTHAVE_ID,
    OUR_REQQ,
    OUR_UT_HOLEPUNCH_ID,
    OUR_UT_METADATA_ID,
    OUR_UT_PEX_ID,
)
from .peer import PeerState
from .peer_io import PeerLink
from .state_table import State

if TYPE_CHECKING:
    from collections.abc import Iterable

    from .context import TorrentContext
    from .peer_pool import PeerSource

log = logging.getLogger("torrent_engine.session")

# A pipeline cut to its memory share is refilled once this much of it is free (at most
# REQUEST_BATCH), not half of it (``requesting.requests_wanted``): with 20 rate-capped peers
# (38 requests each) that took 4-7 % less CPU per GiB, in fewer writes (bench/RESULTS.md).
SHARE_BATCH_PERCENT = 75


class RateCounting(Protocol):
    """The rates as the wire protocol counts bytes into them (``rates.Rates``)."""

    def downloaded(self, n: int) -> None:
        """``n`` payload bytes arrived."""


class MetadataServing(Protocol):
    """Our info dictionary as the wire protocol serves it (``metadata.MetadataServer``)."""

    async def serve_request(self, peer: PeerState, payload: bytes) -> None:
        """Serve our metadata (BEP 9) to a peer that asked for it."""


class HolepunchRelay(Protocol):
    """BEP 55 as the wire protocol hands it messages (``holepunch.Holepunch``)."""

    def note_pex(self, peer: PeerState, pex: PexMessage) -> None:
        """Remember which addresses ``peer`` listed as reachable only through a relay."""

    async def on_message(self, peer: PeerState, payload: bytes) -> None:
        """A ``ut_holepunch`` message from ``peer``."""


class ReadWaiting(Protocol):
    """The torrent's file readers as the requests see them (``reader.Readers``)."""

    @property
    def active(self) -> bool:
        """Whether any reader is open."""

    def is_fast(self, peer: PeerState) -> bool:
        """Whether ``peer`` may take the pieces a reader waits on."""


class Redialing(Protocol):
    """The dialer (``connector.Connector``) as a peer leaving sees it."""

    def wake(self) -> None:
        """Dial again (its loop ends while every known address is connected)."""


class PeerHandlerHost(Protocol):
    """What the wire protocol needs of its torrent beside the context: the parts it hands
    messages to and the rates that count the bytes (several of them need the handler too, so
    the session is given as this)."""

    @property
    def context(self) -> TorrentContext:
        """What every part reads and calls (``context``)."""

    @property
    def rates(self) -> RateCounting:
        """Counts the bytes that came."""

    @property
    def metadata(self) -> MetadataServing:
        """Answers BEP 9 requests."""

    @property
    def holepunch(self) -> HolepunchRelay:
        """BEP 55 messages and PEX-listed relays."""

    @property
    def readers(self) -> ReadWaiting:
        """Open file readers: whether a peer is fast enough for their pieces."""

    @property
    def connector(self) -> Redialing:
        """Dials the pool's addresses: woken when a peer leaves."""

    def add_peers(self, peers: Iterable[tuple[str, int]], source: PeerSource = ...) -> None:
        """Addresses heard of (PEX)."""


class PeerHandler:
    """Speaks the wire protocol with each connected peer of one session."""

    def __init__(self, session: PeerHandlerHost) -> None:
        self._s = session
        self._ctx = session.context
        # endgame CANCELs for other peers, by peer: held while one read's blocks land
        # (``_holding``: ``on_batch``), then written once a peer (a write each cost more)
        self._held: dict[Hashable, list[bytes]] = {}
        self._holding = False

    def extension_handshake(self, *, with_metadata: bool) -> bytes:
        """Our BEP 10 handshake: ut_metadata (BEP 9), lt_donthave (BEP 54), ut_pex and
        ut_holepunch (BEP 55) unless private (ut_pex while PEX is on: ``Config.pex_enabled``,
        read for each new connection), client, reqq, port."""
        ctx = self._ctx
        assert ctx.shared is not None
        size = len(ctx.parts.torrent.info_bytes) if with_metadata and ctx.has_metadata else None
        extensions = {UT_METADATA: OUR_UT_METADATA_ID, LT_DONTHAVE: OUR_LT_DONTHAVE_ID}
        if not ctx.private and ctx.config.pex_enabled:  # BEP 27: never PEX for a private torrent
            extensions[UT_PEX] = OUR_UT_PEX_ID
            extensions[UT_HOLEPUNCH] = OUR_UT_HOLEPUNCH_ID  # its peers come from PEX: not private
        return ExtensionHandshake(m=extensions, v=CLIENT_VERSION, reqq=OUR_REQQ,
                                  p=ctx.shared.listen_port or None, metadata_size=size).encode()

    async def serve(self, link: PeerLink, host: str, port: int, incoming: bool) -> None:
        """Run one connected peer until it or the session goes."""
        ctx = self._ctx
        key = (host, port)
        assert ctx.shared is not None
        ourselves = link.peer_id == ctx.shared.peer_id
        duplicate = any(p.link.peer_id == link.peer_id for p in ctx.peers.values())
        if key in ctx.peers or ctx.pool.is_banned(key) or ctx.run.stop_requested \
                or ourselves or duplicate:
            if ourselves:
                ctx.pool.never_again(key)
            elif duplicate:  # connected already (it dialed us): not every round
                ctx.pool.later(key, time.monotonic())
            with anyio.CancelScope(shield=True):
                await link.aclose()
            return
        now = time.monotonic()
        torrent = ctx.parts.torrent
        peer = PeerState(host=host, port=port, link=link, incoming=incoming,
                         have=Bitfield(torrent.num_pieces), fast=link.fast, extension=link.extension,
                         connected_at=now, last_block=now, last_sent=now,
                         queue_target=ctx.config.initial_request_queue, client=link.peer_id_client,
                         local=is_local(host))
        ctx.peers[key] = peer
        self._budget().join(peer.link)
        if incoming:
            link.set_metadata(torrent.num_pieces, torrent.piece_size)
        ctx.events.publish(ev.PeerConnected(info_hash=ctx.info_hash_hex, address=host, port=port,
                                            client=peer.client, incoming=incoming, transport=peer.transport))
        try:
            exchanging, serving = peer.scopes = (anyio.CancelScope(), anyio.CancelScope())
            async with anyio.create_task_group() as tg:
                # (the upload loop starts at the peer's first request: ``PeerState.queue_upload``)
                peer.serve_soon = partial(tg.start_soon, self._serve, peer, serving)
                try:
                    with exchanging:
                        await self._guarded(peer, self._exchange)
                finally:
                    peer.serve_soon = None
                serving.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                self._gone(peer)
                await link.aclose()
            ctx.events.publish(ev.PeerDisconnected(info_hash=ctx.info_hash_hex, address=host, port=port,
                                                   reason=peer.close_reason or "closed"))

    def _gone(self, peer: PeerState) -> None:
        ctx = self._ctx
        if ctx.peers.get(peer.key) is peer:
            del ctx.peers[peer.key]
            self._budget().leave(peer.link)
        ctx.parts.picker.peer_gone(peer.key)
        ctx.parts.layers.peer_gone(peer.key)
        ctx.parts.uploader.super_seeding.peer_gone(peer)
        if peer.is_seed:  # (the swarm showed a whole copy until now: ``seen_complete``)
            ctx.totals.seed_left_at = time.time()
        if peer.close_reason != "paused":  # do not redial at once; a seed while we seed too: much later
            now = time.monotonic()
            ctx.pool.dropped(peer.key, now, held_for=now - peer.connected_at,
                             both_seeds=peer.is_seed and ctx.state is State.SEEDING)
            if not ctx.run.stop_requested:
                self._s.connector.wake()  # (its address is dialable again after its back-off)
        if not peer.am_choking and ctx.swarm is not None:
            ctx.parts.uploader.rechoke_soon()

    def _budget(self) -> ReceiveBudget:
        """The receive buffers' budget every session's peers share (a peer joins a started
        session, which holds its shared resources)."""
        shared = self._ctx.shared
        assert shared is not None
        return shared.receive

    async def _serve(self, peer: PeerState, scope: anyio.CancelScope) -> None:
        """The peer's uploads until ``scope`` is cancelled (its exchange ended, or it was closed):
        the task returns then. (A task of a task group that ends cancelled is kept by anyio in a
        reference cycle with its frames: one for the garbage collector each time a peer leaves.)"""
        with scope:
            await self._guarded(peer, self._ctx.parts.uploader.serve)

    async def _guarded(self, peer: PeerState, body: Callable[[PeerState], Awaitable[None]]) -> None:
        """Run one of a peer's loops; a protocol error or I/O failure closes that peer only."""
        ctx = self._ctx
        try:
            await body(peer)
        except StorageError as exc:  # our disk, not the peer
            peer.close(f"storage: {exc}")
            ctx.fail(exc)
        except (PeerError, OSError, anyio.BrokenResourceError, anyio.ClosedResourceError,
                anyio.EndOfStream) as exc:
            if not peer.closed:
                log.info("peer %s of %s closed: %s", peer.address, ctx.name, exc)
            peer.close(str(exc) or type(exc).__name__)
        except Exception as exc:  # a bug met through one peer must not take the session down
            log.exception("peer %s of %s: unexpected error", peer.address, ctx.name)
            peer.close(f"internal error: {exc!r}")

    async def _greet(self, peer: PeerState) -> None:
        parts = self._ctx.parts
        msgs: list[m.Message] = []
        if peer.extension:
            msgs.append(m.Extended(0, self.extension_handshake(with_metadata=True)))
        count = len(parts.picker.have)
        hiding = parts.uploader.super_seeding.greeting(peer)  # BEP 16: our pieces one at a time
        if hiding is not None:
            msgs += hiding
        elif peer.fast and count == parts.torrent.num_pieces:
            msgs.append(m.HaveAll())
        elif peer.fast and count == 0:
            msgs.append(m.HaveNone())
        elif count:
            msgs.append(m.Bitfield(parts.picker.have.to_bytes()))
        if msgs:
            await peer.send(*msgs)

    async def _exchange(self, peer: PeerState) -> None:
        await self._greet(peer)
        link = peer.link
        # each read's blocks and requests in one synchronous pass, the other messages in order
        await link.run(lambda msgs: self.on_batch(peer, msgs), lambda msg: self.on_message(peer, msg))

    def on_batch(self, peer: PeerState, msgs: list[m.Message]) -> int:
        """The blocks and requests at the front of one read's messages, without an await;
        returns how many it took (the rest go to ``on_message``, in order). Each block goes
        through ``Pieces.land`` (the picker's record and the copy into its piece); the rest is
        done once a read: the lookups, the peer's and the session's counters (``_counted``),
        the SHA-1 of the blocks taken (``Pieces.hash_taken``), and our requests refilled in one
        write. A block that needs an await (a rate limit, a piece that cannot be buffered now)
        ends the pass: ``on_message`` takes it."""
        ctx = self._ctx
        assert ctx.shared is not None
        done = nblocks = nbytes = 0
        uploader = ctx.parts.uploader
        pieces = ctx.parts.pieces
        land = pieces.land
        key = peer.key
        # (under a rate limit, every block ends the pass: it waits in ``on_message``)
        limited = ctx.shared.bandwidth.download.limited(ctx.limits.group, ctx.limits.download, peer.local)
        piece_type, request_type = None if limited else m.Piece, m.Request
        self._holding = True
        try:
            for msg in msgs:
                if type(msg) is piece_type:
                    block = msg.block
                    if land(key, msg.index, msg.begin, block) is None:
                        break
                    nblocks += 1
                    nbytes += len(block)
                elif type(msg) is not request_type or not uploader.take_request(peer, msg):
                    break
                done += 1
        finally:
            self._holding = False
            if self._held:
                self._write_cancels()
            if nblocks:
                self._counted(peer, nbytes, nblocks)
        if nblocks:
            pieces.hash_taken()
            if not peer.closed:
                requests = self.pick_requests(peer)
                if requests:
                    peer.last_sent = time.monotonic()
                    peer.link.write(m.encode_requests(requests))
        return done

    def _counted(self, peer: PeerState, nbytes: int, nblocks: int = 1) -> None:
        """``nblocks`` blocks of ``nbytes`` in all came from ``peer`` (one read's, or one block
        that waited): its counters (rate, slow start, snubbing) and the session's rates."""
        requesting.on_block(peer, nbytes, time.monotonic(), nblocks)
        self._s.rates.downloaded(nbytes)

    async def on_message(self, peer: PeerState, msg: m.Message) -> None:
        """Act on one message from the peer."""
        ctx = self._ctx
        s = self._s
        picker = ctx.parts.picker
        if isinstance(msg, m.Piece):
            await self._on_piece(peer, msg)
        elif isinstance(msg, m.Have):
            if msg.index not in peer.have:
                peer.have.add(msg.index)
                picker.peer_have(peer.key, msg.index)
                ctx.parts.uploader.super_seeding.peer_have(peer, msg.index)
                if ctx.state is State.SEEDING and peer.is_seed:
                    peer.close("both seeds")
                    return
                await self.update_interest(peer, new_piece=msg.index)
        elif isinstance(msg, m.Request):
            await ctx.parts.uploader.on_request(peer, msg)
        elif isinstance(msg, m.Unchoke):
            peer.peer_choking = False
            await self.fill_requests(peer)
        elif isinstance(msg, m.Choke):
            peer.peer_choking = True
            if not peer.fast:  # BEP 3: a choke drops every pending request
                picker.release_requests(peer.key)
        elif isinstance(msg, m.Interested):
            peer.peer_interested = True
            if peer.am_choking:
                ctx.parts.uploader.rechoke_soon()
        elif isinstance(msg, m.NotInterested):
            peer.peer_interested = False
            ctx.parts.uploader.super_seeding.peer_not_interested(peer)
        elif isinstance(msg, (m.Bitfield, m.HaveAll, m.HaveNone)):
            # BEP 3 wants it first, but some clients (aria2) send another later: it replaces the first
            if isinstance(msg, m.Bitfield):
                try:
                    peer.have = Bitfield.from_bytes(msg.bits, ctx.parts.torrent.num_pieces)
                except ValueError as exc:
                    raise PeerProtocolError(f"bad bitfield: {exc}") from None
                picker.peer_bitfield(peer.key, peer.have)
                if len(peer.have):
                    peer.started_empty = False
            elif isinstance(msg, m.HaveAll):
                peer.started_empty = False
                peer.have = Bitfield.full(ctx.parts.torrent.num_pieces)
                picker.peer_have_all(peer.key)
            else:
                peer.have = Bitfield(ctx.parts.torrent.num_pieces)
                picker.peer_have_none(peer.key)
            ctx.parts.uploader.super_seeding.peer_bitfield(peer, peer.have)
            if ctx.state is State.SEEDING and peer.is_seed:
                peer.close("both seeds")
                return
            await self.update_interest(peer)
        elif isinstance(msg, m.Cancel):
            await ctx.parts.uploader.on_cancel(peer, msg)
        elif isinstance(msg, m.RejectRequest):
            picker.cancel_request(peer.key, Block(msg.index, msg.begin, msg.length))
            # no refill here: the same blocks would be picked and rejected again, at wire speed;
            # the tick tops this peer up within a second (other peers' pieces at once)
        elif isinstance(msg, m.AllowedFast):
            peer.allowed_fast.add(msg.index)
        elif isinstance(msg, (m.HashRequest, m.Hashes, m.HashReject)):
            await ctx.parts.layers.on_message(peer, msg)
        elif isinstance(msg, m.Extended):
            if msg.ext_id == 0:
                self._on_extension_handshake(peer, msg.payload)
            elif msg.ext_id == OUR_UT_METADATA_ID:
                await s.metadata.serve_request(peer, msg.payload)
            elif msg.ext_id == OUR_UT_PEX_ID and not ctx.private and ctx.config.pex_enabled:
                pex = PexMessage.decode(msg.payload)
                s.holepunch.note_pex(peer, pex)
                s.add_peers(pex.added + pex.added6, "pex")
            elif msg.ext_id == OUR_UT_HOLEPUNCH_ID and not ctx.private:
                await s.holepunch.on_message(peer, msg.payload)
            elif msg.ext_id == OUR_LT_DONTHAVE_ID:
                await self._on_donthave(peer, decode_donthave(msg.payload, ctx.parts.torrent.num_pieces))
        # KeepAlive, Port, SuggestPiece and unknown extensions need nothing.

    def _on_extension_handshake(self, peer: PeerState, payload: bytes) -> None:
        ctx = self._ctx
        hs = ExtensionHandshake.decode(payload)  # a malformed one is a PeerProtocolError
        if hs.reqq is not None:
            peer.reqq = min(hs.reqq, ctx.config.max_request_queue)
        if hs.v:
            peer.client = hs.v[:64]
        peer.ut_metadata = hs.m.get(UT_METADATA, 0)
        peer.ut_pex = 0 if ctx.private else hs.m.get(UT_PEX, 0)
        peer.ut_holepunch = 0 if ctx.private else hs.m.get(UT_HOLEPUNCH, 0)
        peer.lt_donthave = hs.m.get(LT_DONTHAVE, 0)
        peer.listen_port = hs.p

    async def _on_donthave(self, peer: PeerState, index: int) -> None:
        """BEP 54: the peer no longer has piece ``index``: it leaves what the picker counts the
        peer for, and our requests of it to that peer are free for others (it rejects them)."""
        if index not in peer.have:
            return
        picker = self._ctx.parts.picker
        peer.have.discard(index)
        picker.peer_bitfield(peer.key, peer.have)  # (a rare message: the whole bitfield again)
        for block in picker.requests_of(peer.key):
            if block.index == index:
                picker.cancel_request(peer.key, block)
        await self.update_interest(peer)

    async def update_interest(self, peer: PeerState, new_piece: int | None = None) -> None:
        """Tell the peer whether it has pieces we want; if so, ask it for some."""
        ctx = self._ctx
        if ctx.state is not State.DOWNLOADING:
            interesting = False
        elif new_piece is not None:
            interesting = peer.am_interested or ctx.parts.picker.wants_piece(new_piece)
        else:
            interesting = ctx.parts.picker.is_interesting(peer.key)
        if interesting != peer.am_interested:
            peer.am_interested = interesting
            await peer.send(m.Interested() if interesting else m.NotInterested())
        await ctx.parts.layers.ask(peer)  # (v2 piece layers the metainfo lacks: BEP 52)
        if interesting:
            await self.fill_requests(peer)

    def interest_due(self, peer: PeerState) -> bool:
        """Whether ``update_interest`` may have something to send ``peer`` now: its interest
        changed, hash requests to ask (BEP 52), or requests to top up (an interesting peer that
        lets us ask). The tick calls ``update_interest`` only then."""
        ctx = self._ctx
        interesting = ctx.state is State.DOWNLOADING and ctx.parts.picker.is_interesting(peer.key)
        if interesting != peer.am_interested or ctx.parts.layers.may_ask(peer):
            return True
        return interesting and (not peer.peer_choking or bool(peer.allowed_fast))

    async def fill_requests(self, peer: PeerState) -> None:
        """Top the peer's request pipeline up to its queue depth, in one write."""
        requests = self.pick_requests(peer)
        if requests:
            await peer.send(*[m.Request(index, begin, length) for index, begin, length in requests])

    def pick_requests(self, peer: PeerState) -> list[tuple[int, int, int]]:
        """The requests to send ``peer`` now to top its pipeline up (recorded by the picker)."""
        ctx = self._ctx
        s = self._s
        if ctx.state is not State.DOWNLOADING or peer.closed or not peer.am_interested:
            return []
        if peer.peer_choking and not peer.allowed_fast:
            return []
        parts = ctx.parts
        picker = parts.picker
        depth = requesting.queue_depth(peer, ctx.config)
        share = requesting.memory_share(len(ctx.peers), parts.torrent.piece_length, ctx.config)
        in_flight = picker.in_flight(peer.key)
        if share < depth:  # a short pipeline, cut to its share of the piece buffers (many peers)
            want = share - in_flight
            batch = min(requesting.REQUEST_BATCH, share * SHARE_BATCH_PERCENT // 100)
            if want <= 0 or (in_flight and want < batch):
                return []
        else:
            want = requesting.requests_wanted(depth, in_flight)
            if not want:
                return []
        # (pieces whose v2 hash is not known yet are not asked for)
        # (an open file reader's deadline pieces go to the fast peers only)
        fast = s.readers.is_fast(peer) if s.readers.active else True
        # (in endgame a peer whose rate is known may take blocks it would deliver sooner than
        # the peers they are asked of)
        block_seconds = requesting.block_seconds(peer)
        blocks = picker.pick(peer.key, parts.layers.verifiable(peer.key), want, time.monotonic(), fast,
                             block_seconds)
        if peer.peer_choking:  # BEP 6: only the allowed-fast pieces may be asked for
            for b in blocks:
                if b.index not in peer.allowed_fast:
                    picker.cancel_request(peer.key, b)
            blocks = [b for b in blocks if b.index in peer.allowed_fast]
        return [(b.index, b.begin, b.length) for b in blocks]

    async def _on_piece(self, peer: PeerState, msg: m.Piece) -> None:
        """A block that may wait: for the rate limits, for room in the piece buffers (or its
        piece goes to disk block by block: ``Pieces.arrive``)."""
        ctx = self._ctx
        index, length = msg.index, len(msg.block)
        shared = ctx.shared
        assert shared is not None
        limits = ctx.limits
        download = shared.bandwidth.download
        if download.limited(limits.group, limits.download, peer.local):
            # waiting here stops reading the socket: TCP flow control slows the sender down
            await download.consume(limits.group, limits.download, length, peer.local)
        pieces = ctx.parts.pieces
        await pieces.wait_for_room(index)
        self._counted(peer, length)
        await pieces.arrive(peer.key, index, msg.begin, msg.block)
        await self.fill_requests(peer)

    def cancel_now(self, cancels: tuple[tuple[Hashable, Block], ...]) -> None:
        """Endgame: the block came; CANCEL it at the other peers it was asked of, without a task
        or an await (a web seed among them needs nothing). With 20 peers endgame sends hundreds
        of them a download, and a task group per block cost more than the block. Written at
        once, or, while one read's blocks land (``on_batch``), at the end of that read: one write
        a peer. A peer whose connection has ended is closed. (``Pieces`` calls it for every
        block that arrives, a web seed's too.)"""
        held = self._held
        for key, block in cancels:
            held.setdefault(key, []).append(m.Cancel(block.index, block.begin, block.length).to_bytes())
        if not self._holding:
            self._write_cancels()

    def _write_cancels(self) -> None:
        cancels, self._held = self._held, {}
        peers = self._ctx.peers
        now = time.monotonic()
        for key, messages in cancels.items():
            other = peers.get(key)  # type: ignore[call-overload]
            if other is None or other.closed:
                continue
            try:
                other.link.write(b"".join(messages))
            except Exception as exc:  # its connection has ended (its own task reports why): not ours
                other.close(f"send failed: {exc}")
            else:
                other.last_sent = now

    def check_timeouts(self, peer: PeerState, now: float) -> None:
        """Snub a silent peer; free its timed-out requests for other peers."""
        ctx = self._ctx
        picker = ctx.parts.picker
        if not picker.in_flight(peer.key):
            return
        cutoff = requesting.timeout_cutoff(peer, now, ctx.config)
        if cutoff is not None:
            for block in picker.expired(peer.key, cutoff):
                picker.request_timed_out(peer.key, block)
