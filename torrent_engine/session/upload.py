"""Seeding: answer peers' requests from a read cache, several blocks per write, and choose whom
to upload to (the choker, every 10 s and when a slot frees)."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from typing import TYPE_CHECKING

import anyio

from ..choker import ChokePeer, Choker
from ..errors import PeerProtocolError
from ..peer import messages as m
from ..session_state import State
from .peer import PeerState, fan_out
from .peer_handler import OUR_REQQ

if TYPE_CHECKING:
    from .core import Session

PIECE_CACHE_BYTES = 32 * 1024 * 1024  # read cache for seeding: whole pieces, LRU
UPLOAD_BATCH = 8  # blocks sent in one write when the peer has that many requests queued


class Uploader:
    """The upload side of one session: request queues, the read cache and the choker."""

    def __init__(self, session: Session) -> None:
        self._s = session
        self._piece_cache: OrderedDict[int, bytes] = OrderedDict()
        self._piece_cache_bytes = 0
        self._choker: Choker | None = None
        self._rechoke_now = anyio.Event()

    async def on_request(self, peer: PeerState, req: m.Request) -> None:
        """Queue a peer's REQUEST (or reject it: choked, or too many queued)."""
        if req.index not in self._s.have:
            raise PeerProtocolError(f"request for piece {req.index}, which we do not have")
        if peer.am_choking or len(peer.upload_queue) >= OUR_REQQ:
            if peer.fast:  # BEP 6: rejected explicitly; BEP 3: dropped
                await peer.send(m.RejectRequest(req.index, req.begin, req.length))
            return
        peer.upload_queue.append(req)
        peer.upload_wakeup.set()

    async def on_cancel(self, peer: PeerState, msg: m.Cancel) -> None:
        """Drop a queued request the peer cancelled."""
        try:
            peer.upload_queue.remove(m.Request(msg.index, msg.begin, msg.length))
        except ValueError:
            return
        if peer.fast:  # BEP 6: a cancelled request is still answered, with a reject
            await peer.send(m.RejectRequest(msg.index, msg.begin, msg.length))

    async def serve(self, peer: PeerState) -> None:
        """Serve the peer's queued requests, several blocks per write (UPLOAD_BATCH)."""
        s = self._s
        assert s._shared is not None
        limit = s._shared.upload_limit
        while True:
            if not peer.upload_queue:
                peer.upload_wakeup = anyio.Event()
                await peer.upload_wakeup.wait()
                continue
            msgs: list[m.Message] = []
            size = 0
            while peer.upload_queue and len(msgs) < UPLOAD_BATCH and not peer.am_choking:
                req = peer.upload_queue.popleft()
                data = await self.read_piece(req.index)
                block = memoryview(data)[req.begin:req.begin + req.length]
                if len(block) == req.length:
                    msgs.append(m.Piece(req.index, req.begin, block))
                    size += req.length
            if peer.am_choking:
                peer.upload_queue.clear()  # choked while we read: those requests are void (BEP 3)
                if peer.fast and msgs:  # BEP 6: the choke rejected the queue; these were taken from it
                    await peer.send(*[m.RejectRequest(p.index, p.begin, len(p.block))
                                      for p in msgs if isinstance(p, m.Piece)])
                continue
            if not msgs:
                continue
            await limit.consume(size)
            if not s.upload_limit.unlimited:
                await s.upload_limit.consume(size)
            await peer.send(*msgs)
            peer.uploaded += size
            peer.up_window += size
            s.stats.uploaded(size)

    async def read_piece(self, index: int) -> bytes:
        """A verified piece's data, from the cache or the disk."""
        data = self._piece_cache.get(index)
        if data is not None:
            self._piece_cache.move_to_end(index)
            return data
        assert self._s._storage is not None
        data = await self._s._storage.read_piece(index)
        self._piece_cache[index] = data
        self._piece_cache_bytes += len(data)
        while self._piece_cache_bytes > PIECE_CACHE_BYTES and len(self._piece_cache) > 1:
            _, old = self._piece_cache.popitem(last=False)
            self._piece_cache_bytes -= len(old)
        return data

    # -- choking -------------------------------------------------------------------------
    def rechoke_soon(self) -> None:
        """Rechoke now rather than at the next interval (a slot freed, or a peer got interested)."""
        self._rechoke_now.set()

    async def choker_loop(self) -> None:
        """Rechoke every 10 s (BEP 3), and at once when a choked peer becomes interested while
        a slot is free or an unchoked peer leaves; the choker rotates the optimistic unchoke."""
        s = self._s
        self._choker = Choker(s._rng, upload_slots=s.config.upload_slots)
        while True:
            await self.rechoke()
            self._rechoke_now = anyio.Event()
            # no peer: nothing to rotate; a peer's interest wakes it (every slot is free then)
            with anyio.move_on_after(s.config.rechoke_interval if s._peers else math.inf):
                await self._rechoke_now.wait()

    async def rechoke(self) -> None:
        """Choose whom to unchoke and apply it (rejecting the queued requests of the choked)."""
        s = self._s
        peers = [p for p in s._peers.values() if not p.closed]
        now = time.monotonic()
        snapshot = [ChokePeer(key=p.key, interested=p.peer_interested, download_rate=p.down_rate,
                              upload_rate=p.up_rate, snubbed=p.snubbed, connected_at=p.connected_at,
                              unchoked=not p.am_choking, unchoked_at=p.unchoked_at,
                              uploaded_since_unchoke=p.uploaded - p.uploaded_at_unchoke) for p in peers]
        if self._choker is None:
            self._choker = Choker(s._rng, upload_slots=s.config.upload_slots)
        unchoke = self._choker.rechoke(snapshot, now, seeding=s.state is State.SEEDING)

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

        await fan_out(peers, apply, s.config.control_send_timeout)
