"""How many requests to keep at a peer, and when a peer is slow: pure rules, no I/O, no clock.

The picker records what is in flight; these functions decide how much more to ask for
(libtorrent's rate x request_queue_time, slow start until the rate stops growing, one request
left at a snubbed peer) and what has timed out.
"""

from __future__ import annotations

from typing import Protocol

from ..config import Config
from ..net.peer.messages import BLOCK_SIZE

REQUEST_BATCH = 128  # requests are sent once this many slots are free (or half of the queue)
MIN_MEMORY_SHARE = 16  # requests a peer may always have in flight, however many peers there are


class RequestingPeer(Protocol):
    """What these rules read and keep of one peer (the session's ``PeerState`` is one): plain
    values, so that the rules stay free of the connection and its event loop."""

    reqq: int  # the most requests the peer takes at once (BEP 10 'reqq')
    last_block: float  # when its last block came
    snubbed: bool
    slow_start: bool
    queue_target: int  # slow start's queue depth
    downloaded: int
    down_window: int  # bytes since the last rate update
    up_window: int
    down_rate: float
    up_rate: float


def queue_depth(peer: RequestingPeer, config: Config) -> int:
    """Requests to keep in flight: rate x request_queue_time / block size (libtorrent style)."""
    if peer.snubbed:
        return 1
    depth = int(peer.down_rate * config.request_queue_time / BLOCK_SIZE)
    if peer.slow_start:
        depth = max(depth, peer.queue_target)
    return max(config.min_request_queue, min(depth, config.max_request_queue, peer.reqq))


def block_seconds(peer: RequestingPeer) -> float:
    """How long the peer takes per block at its measured rate (0: not known, or snubbed)."""
    if peer.snubbed or peer.down_rate <= 0:
        return 0.0
    return BLOCK_SIZE / peer.down_rate


def memory_share(peers: int, piece_length: int, config: Config) -> int:
    """The most requests one of ``peers`` connected peers may have in flight so that the pieces
    they touch fit in ``Config.piece_buffer_bytes`` (each peer works on about one piece of its
    own beside them): past the cap, pieces go to disk block by block and are read back to be
    hashed, which cost 20 rate-capped peers ~2x the CPU per GiB of one. Never below
    ``MIN_MEMORY_SHARE``."""
    cap = config.piece_buffer_bytes // BLOCK_SIZE
    per_piece = max(1, piece_length // BLOCK_SIZE)
    n = max(1, peers)
    return max(MIN_MEMORY_SHARE, (cap - n * per_piece) // n)


def requests_wanted(depth: int, in_flight: int) -> int:
    """How many new requests to send now (0: wait), topping the pipeline up in batches so one
    write carries many requests."""
    want = depth - in_flight
    if want <= 0 or (in_flight and want < min(REQUEST_BATCH, max(1, depth // 2))):
        return 0
    return want


def on_block(peer: RequestingPeer, length: int, now: float, blocks: int = 1) -> None:
    """``blocks`` blocks of ``length`` bytes in all arrived from the peer (one read's, counted
    once): count them; in slow start, the queue grows by one a block."""
    peer.downloaded += length
    peer.down_window += length
    peer.last_block = now
    peer.snubbed = False
    if peer.slow_start:
        peer.queue_target += blocks


def update_rates(peer: RequestingPeer, elapsed: float) -> None:
    """Once a tick: smooth the peer's rates; leave slow start once the rate stops growing."""
    rate = peer.down_window / elapsed
    if peer.slow_start and peer.down_rate > 0 and rate < peer.down_rate * 1.1:
        peer.slow_start = False
    peer.down_rate = 0.5 * peer.down_rate + 0.5 * rate
    peer.up_rate = 0.5 * peer.up_rate + 0.5 * peer.up_window / elapsed
    peer.down_window = peer.up_window = 0


def timeout_cutoff(peer: RequestingPeer, now: float, config: Config) -> float | None:
    """Snub a peer with no block for ``snub_timeout``; return the send time at or before which its
    requests have timed out (None: none can have, it sent a block recently)."""
    if now - peer.last_block >= config.snub_timeout and not peer.snubbed:
        peer.snubbed = True  # keep one request there, the rest elsewhere
        peer.slow_start = False
    if now - peer.last_block < config.request_timeout:
        return None
    return now - config.request_timeout
