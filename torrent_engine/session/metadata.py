"""BEP 9 for magnet links: fetch the info dictionary from peers (as the shared ``MetadataFetcher``
directs, so a liar cannot stall it; ``MetadataClient``, owned by the ``FetchingMetadata`` phase),
and serve ours to peers that came with a magnet (``MetadataServer``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

import anyio

from ..errors import PeerError
from ..net.peer import messages as m
from ..net.peer.extensions import (
    UT_METADATA,
    ExtensionHandshake,
    MetadataData,
    MetadataReject,
    MetadataRequest,
    decode_metadata_message,
    encode_metadata_message,
    metadata_piece,
)
from ..net.peer.metadata_fetch import MetadataFetcher, Verdict
from .extension_ids import OUR_UT_METADATA_ID
from .peer import PeerState
from .peer_io import PeerLink

if TYPE_CHECKING:
    from .context import TorrentContext

log = logging.getLogger("torrent_engine.session")

METADATA_PEER_TIMEOUT = 60.0  # a magnet's peer has this long to send its extension handshake


class MetadataClient:
    """The fetch of a magnet's info dictionary: which peer is asked for which piece, what came."""

    def __init__(self, context: TorrentContext, *, handshake: Callable[[], bytes],
                 done_connecting: Callable[[tuple[str, int]], None]) -> None:
        self._ctx = context
        self._handshake = handshake  # our BEP 10 extension handshake (without a metadata size)
        self._done_connecting = done_connecting  # a metadata peer counts as connecting until done
        self._fetcher: MetadataFetcher | None = None
        self._gone: set[tuple[str, int]] = set()  # metadata peers the fetcher dropped
        self.result: bytes | None = None
        self.done = anyio.Event()

    def _fetcher_for(self) -> MetadataFetcher:
        if self._fetcher is None:
            magnet = self._ctx.magnet
            info_hash = (magnet.info_hash_v1 or magnet.info_hash_v2
                         if magnet is not None else None) or self._ctx.info_hash
            self._fetcher = MetadataFetcher(info_hash)
        return self._fetcher

    def _drops(self, fetcher: MetadataFetcher) -> None:
        """Ban the peers the fetcher proved to lie; let every dropped one's task end."""
        for dropped in fetcher.take_dropped():
            key = cast(tuple[str, int], dropped.peer_key)
            log.info("metadata peer %s:%d dropped: %s", key[0], key[1], dropped.reason)
            self._gone.add(key)
            if dropped.banned:
                self._ctx.ban(key)

    async def fetch_from(self, link: PeerLink, key: tuple[str, int]) -> None:
        """Fetch the metadata from one peer, as the shared fetcher directs: what to ask it for,
        what of its answers to keep, and when to give up on it."""
        fetcher = self._fetcher_for()
        self._gone.discard(key)
        try:
            if not link.extension:
                return
            await link.send_many([m.Extended(0, self._handshake())])
            peer_id = 0
            deadline = time.monotonic() + METADATA_PEER_TIMEOUT  # to send its extension handshake
            while not self.done.is_set():
                now = time.monotonic()
                fetcher.tick(now)
                self._drops(fetcher)
                if key in self._gone or (not peer_id and now > deadline):
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
                            self.result = fetcher.result()
                            self.done.set()
        except (PeerError, OSError, anyio.BrokenResourceError, anyio.EndOfStream) as exc:
            log.info("metadata from %s:%d failed: %s", key[0], key[1], exc)
        finally:
            if self._fetcher is not None:
                self._fetcher.remove_peer(key)
            with anyio.CancelScope(shield=True):
                await link.aclose()
            self._done_connecting(key)  # (a metadata peer counts against the connection budget)
            if not self.done.is_set():
                self._ctx.pool.failed(key, time.monotonic(), quick=True)



class MetadataServer:
    """Our info dictionary, piece by piece, to peers that ask for it (BEP 9)."""

    def __init__(self, context: TorrentContext) -> None:
        self._ctx = context

    async def serve_request(self, peer: PeerState, payload: bytes) -> None:
        """Serve our metadata (BEP 9) to a peer that came with a magnet link."""
        msg = decode_metadata_message(payload)
        if not isinstance(msg, MetadataRequest) or not peer.ut_metadata or not self._ctx.has_metadata:
            return
        info = self._ctx.parts.torrent.info_bytes
        try:
            data = metadata_piece(info, msg.piece)
            reply: MetadataData | MetadataReject = MetadataData(msg.piece, len(info), data)
        except ValueError:
            reply = MetadataReject(msg.piece)
        await peer.send(m.Extended(peer.ut_metadata, encode_metadata_message(reply)))
