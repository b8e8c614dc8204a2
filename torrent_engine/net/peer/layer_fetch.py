"""Fetching v2 piece layers from peers (BEP 52 hash requests), and answering such requests:
a sans-I/O core.

A v2 or hybrid torrent from a magnet link (or a .torrent without complete ``piece layers``)
knows each file's ``pieces root`` but not the per-piece hashes below it, so a v2 piece cannot be
checked. The shell tells ``PieceLayerFetcher`` which peers there are and what they have, hands
it every ``hashes`` / ``hash reject`` message and the time, and asks it which ``hash request``
messages to send to whom. The core keeps the one record of what was asked of whom, so that:

- a file's piece layer is asked for in chunks of at most 512 hashes (BEP 52's limit), each with
  the uncle hashes that prove it up to the file's ``pieces root``; a chunk is asked of one peer
  at a time, only of a peer that has at least one of the chunk's pieces, with at most
  ``max_per_peer`` requests in flight to one peer and ``max_in_flight`` in all;
- a reply is accepted only from a peer that was asked for that very chunk, and only if its
  hashes hash up to the pieces root: a reply that does not is proof that the peer lied
  (``Verdict.FALSE``: the shell bans it); a reply of the wrong shape is ignored;
- a reject or a timeout frees the chunk for another peer at once, and the same peer is not asked
  for it again before ``retry_after`` seconds;
- once every chunk of a file is verified its whole piece layer comes out of ``take_layers()``
  for the torrent (``Torrent.with_piece_layers``).

While a v2-only torrent lacks a file's layer, the pieces of that file cannot be verified:
``blocked(index)`` says so, and ``verifiable(has)`` hides them from the picker, so they are not
requested until the layer is known, and none is ever counted as a hash failure. (In a hybrid
torrent the v1 SHA-1 hashes verify every piece, so nothing is blocked; the layers are still
fetched, to serve v2 peers and to save complete metainfo.)

``hashes_for`` is the other side: the ``hashes`` answer to a peer's ``hash request`` for the
piece layer of a file whose layer we know.
"""

from __future__ import annotations

import enum
import functools
import hashlib
from collections.abc import Container, Hashable, Mapping
from dataclasses import dataclass, field

from ...formats.merkle import BLOCK_SIZE, HASH_SIZE, merkle_root, pad_hash
from ...formats.metainfo import Torrent
from .messages import MAX_HASH_REQUEST_LENGTH, Hashes, HashReject, HashRequest

__all__ = [
    "DEFAULT_MAX_IN_FLIGHT",
    "DEFAULT_REQUEST_TIMEOUT",
    "DEFAULT_RETRY_AFTER",
    "MAX_IN_FLIGHT_PER_PEER",
    "PieceLayerFetcher",
    "Verdict",
    "hashes_for",
    "piece_layer_base",
]

DEFAULT_REQUEST_TIMEOUT = 20.0  # seconds a peer has to answer one hash request
DEFAULT_RETRY_AFTER = 30.0  # a peer that rejected (or let time out) a chunk is asked again after this
MAX_IN_FLIGHT_PER_PEER = 4  # hash requests in flight to one peer
DEFAULT_MAX_IN_FLIGHT = 16  # hash requests in flight in all


def _log2(n: int) -> int:
    return n.bit_length() - 1


def _next_pow2(n: int) -> int:
    return 1 if n <= 1 else 1 << (n - 1).bit_length()


def piece_layer_base(piece_length: int) -> int:
    """BEP 52 ``base layer`` of the piece layer: layers above the 16 KiB block leaves."""
    return _log2(piece_length // BLOCK_SIZE)


def _uncles_wanted(count: int, proof_layers: int) -> int:
    # BEP 52: "the first log2(length)-1 proof layers are omitted" (libtorrent counts them so)
    return max(0, proof_layers - _log2(count) + 1)


class Verdict(enum.Enum):
    """What ``on_hashes`` made of one ``hashes`` message."""

    ACCEPTED = "accepted"  # verified; more of that file's layer is still missing
    LAYER_COMPLETE = "layer_complete"  # verified, and a file's whole layer is known (take_layers)
    DUPLICATE = "duplicate"  # verified, but that chunk was known already
    UNSOLICITED = "unsolicited"  # not asked of this peer (or from a banned peer): ignored
    MALFORMED = "malformed"  # not a proof of the requested shape: ignored, not asked again soon
    FALSE = "false"  # does not hash to the file's pieces root: the peer lied (ban it)


@dataclass
class _Chunk:
    """Up to 512 consecutive hashes of one file's piece layer, asked for in one request."""

    file: int  # index in Torrent.files
    root: bytes  # the file's pieces root
    index: int  # first hash of the chunk in the file's piece layer (a multiple of count)
    count: int  # hashes asked for: a power of two (the tail of the layer is padded)
    pieces: int  # real pieces among them (the rest are pad hashes)
    first_piece: int  # torrent-wide index of the chunk's first piece
    height: int  # layers from the piece layer up to the pieces root
    hashes: bytes | None = None  # the verified hashes of the real pieces
    asked: dict[Hashable, float] = field(default_factory=dict)  # in flight: peer -> sent at
    ever_asked: set[Hashable] = field(default_factory=set)  # (a late answer still counts)
    not_before: dict[Hashable, float] = field(default_factory=dict)  # peer -> earliest re-ask

    def request(self, base_layer: int) -> HashRequest:
        """The ``hash request`` for this chunk, with proof layers up to the pieces root."""
        return HashRequest(self.root, base_layer, self.index, self.count, max(0, self.height - 1))


class _Verifiable:
    """What a peer has, minus the pieces whose hash is not known yet (a ``Container``)."""

    __slots__ = ("_blocked", "_has")

    def __init__(self, has: Container[int], blocked: bytearray) -> None:
        self._has = has
        self._blocked = blocked

    def __contains__(self, index: object) -> bool:
        return (isinstance(index, int) and 0 <= index < len(self._blocked)
                and not self._blocked[index] and index in self._has)


class PieceLayerFetcher:
    """Collects a torrent's missing v2 piece layers from untrusted peers (see the module text)."""

    def __init__(
        self,
        torrent: Torrent,
        *,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        retry_after: float = DEFAULT_RETRY_AFTER,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        max_per_peer: int = MAX_IN_FLIGHT_PER_PEER,
    ) -> None:
        if min(request_timeout, retry_after, max_in_flight, max_per_peer) <= 0:
            raise ValueError("timeouts and limits must be positive")
        self.request_timeout = request_timeout
        self.retry_after = retry_after
        self.max_in_flight = max_in_flight
        self.max_per_peer = max_per_peer
        self.base_layer = piece_layer_base(torrent.piece_length)
        self.banned: set[Hashable] = set()
        # what happened, for the stall diagnosis and the logs
        self.sent = 0
        self.answered = 0
        self.rejected = 0
        self.timed_out = 0
        self._chunks: list[_Chunk] = []
        self._files: dict[int, list[_Chunk]] = {}
        self._completed: dict[bytes, bytes] = {}
        self._asked: dict[Hashable, int] = {}  # requests in flight per peer (the chunks say to whom)
        # v2-only: a piece of a file without its layer cannot be verified (hybrid: SHA-1 can)
        self._blocking = not torrent.piece_hashes
        self._blocked = bytearray(torrent.num_pieces)
        self._blocked_count = 0
        pl = torrent.piece_length
        for i in torrent.missing_piece_layers:
            f = torrent.files[i]
            assert f.pieces_root is not None
            num = -(-f.length // pl)
            height = _log2(_next_pow2(num))
            first = f.offset // pl
            chunks = []
            for start in range(0, num, MAX_HASH_REQUEST_LENGTH):
                real = min(MAX_HASH_REQUEST_LENGTH, num - start)
                chunks.append(_Chunk(i, f.pieces_root, start, max(2, _next_pow2(real)), real,
                                     first + start, height))
            self._files[i] = chunks
            self._chunks.extend(chunks)
            if self._blocking:
                self._blocked[first:first + num] = b"\x01" * num
                self._blocked_count += num

    # -- state -----------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        """Whether every missing piece layer has been fetched and verified."""
        return not self._files

    @property
    def missing_files(self) -> int:
        """How many files still lack their piece layer."""
        return len(self._files)

    @property
    def blocking(self) -> bool:
        """Whether some pieces cannot be verified until a layer arrives (v2-only torrents)."""
        return self._blocked_count > 0

    def blocked(self, index: int) -> bool:
        """Whether piece ``index``'s hash is not known yet (do not download it, never fail it)."""
        return 0 <= index < len(self._blocked) and bool(self._blocked[index])

    def verifiable(self, has: Container[int]) -> Container[int]:
        """``has`` without the blocked pieces: what the picker may take from that peer now."""
        return _Verifiable(has, self._blocked) if self._blocked_count else has

    def in_flight(self, peer_key: Hashable | None = None) -> int:
        """Hash requests in flight (to ``peer_key``, or in all)."""
        if peer_key is None:
            return sum(self._asked.values())
        return self._asked.get(peer_key, 0)

    def _unask(self, chunk: _Chunk, peer_key: Hashable) -> bool:
        if chunk.asked.pop(peer_key, None) is None:
            return False
        left = self._asked[peer_key] - 1
        if left:
            self._asked[peer_key] = left
        else:
            del self._asked[peer_key]
        return True

    def take_layers(self) -> dict[bytes, bytes]:
        """The piece layers completed since the last call: pieces root -> concatenated hashes."""
        done, self._completed = self._completed, {}
        return done

    # -- requesting ------------------------------------------------------------------------
    def next_requests(self, peer_key: Hashable, has: Container[int], now: float) -> list[HashRequest]:
        """Hash requests to send to this peer now (recorded as in flight to it). ``has`` is
        what the peer has: a chunk is asked only of a peer with one of its pieces."""
        if peer_key in self.banned or not self._files:
            return []
        mine = self.in_flight(peer_key)
        room = min(self.max_per_peer - mine, self.max_in_flight - self.in_flight())
        out: list[HashRequest] = []
        for chunk in self._chunks:
            if room <= 0:
                break
            if chunk.hashes is not None or chunk.asked or chunk.not_before.get(peer_key, now) > now:
                continue
            if not any(p in has for p in range(chunk.first_piece, chunk.first_piece + chunk.pieces)):
                continue
            chunk.asked[peer_key] = now
            self._asked[peer_key] = self._asked.get(peer_key, 0) + 1
            chunk.ever_asked.add(peer_key)
            self.sent += 1
            room -= 1
            out.append(chunk.request(self.base_layer))
        return out

    def tick(self, now: float) -> None:
        """Expire requests older than ``request_timeout``: free for other peers at once."""
        for chunk in self._chunks:
            for key, sent in list(chunk.asked.items()):
                if now - sent >= self.request_timeout:
                    self._unask(chunk, key)
                    chunk.not_before[key] = now + self.retry_after
                    self.timed_out += 1

    def remove_peer(self, peer_key: Hashable) -> None:
        """The peer is gone: its requests are free for others."""
        if peer_key in self._asked:
            for chunk in self._chunks:
                self._unask(chunk, peer_key)

    def _match(self, msg: HashReject | Hashes) -> _Chunk | None:
        if msg.base_layer != self.base_layer:
            return None
        for chunk in self._chunks:
            if chunk.root == msg.pieces_root and chunk.index == msg.index and chunk.count == msg.length:
                return chunk if msg.proof_layers == max(0, chunk.height - 1) else None
        return None

    def on_reject(self, peer_key: Hashable, msg: HashReject, now: float) -> None:
        """The peer will not answer that request: ask someone else, it not again for a while."""
        chunk = self._match(msg)
        if chunk is not None and self._unask(chunk, peer_key):
            chunk.not_before[peer_key] = now + self.retry_after
            self.rejected += 1

    def on_hashes(self, peer_key: Hashable, msg: Hashes, now: float) -> Verdict:
        """Check a ``hashes`` reply against the file's pieces root."""
        chunk = self._match(msg)
        if chunk is None or peer_key not in chunk.ever_asked or peer_key in self.banned:
            return Verdict.UNSOLICITED
        self._unask(chunk, peer_key)
        n = len(msg.hashes) // HASH_SIZE
        hashes = [msg.hashes[i * HASH_SIZE:(i + 1) * HASH_SIZE] for i in range(n)]
        if len(msg.hashes) % HASH_SIZE or n - chunk.count != chunk.height - _log2(chunk.count):
            chunk.not_before[peer_key] = now + self.retry_after
            return Verdict.MALFORMED
        node = merkle_root(hashes[:chunk.count])
        pos = chunk.index // chunk.count
        for uncle in hashes[chunk.count:]:
            node = hashlib.sha256(uncle + node if pos & 1 else node + uncle).digest()
            pos >>= 1
        if node != chunk.root:
            self.banned.add(peer_key)
            self.remove_peer(peer_key)
            return Verdict.FALSE
        if chunk.hashes is not None:
            return Verdict.DUPLICATE
        chunk.hashes = b"".join(hashes[:chunk.pieces])
        self.answered += 1
        chunks = self._files[chunk.file]
        if any(c.hashes is None for c in chunks):
            return Verdict.ACCEPTED
        del self._files[chunk.file]
        for c in chunks:  # (a late answer may have beaten a request still in flight elsewhere)
            for key in list(c.asked):
                self._unask(c, key)
        self._chunks = [c for c in self._chunks if c.file != chunk.file]
        self._completed[chunk.root] = b"".join(c.hashes or b"" for c in chunks)
        if self._blocking:
            first = chunks[0].first_piece
            num = sum(c.pieces for c in chunks)
            self._blocked[first:first + num] = bytes(num)
            self._blocked_count -= num
        return Verdict.LAYER_COMPLETE


@functools.lru_cache(maxsize=8)
def _tree(layer: bytes, piece_length: int) -> tuple[tuple[bytes, ...], ...]:
    """Every level of a file's tree from its piece layer (padded) up to the root; cached, so a
    peer asking for chunk after chunk of a large file costs one tree, not one per request."""
    num = len(layer) // HASH_SIZE
    leaves = _next_pow2(num)
    pad = pad_hash(piece_length // BLOCK_SIZE)
    level = [layer[i * HASH_SIZE:(i + 1) * HASH_SIZE] for i in range(num)] + [pad] * (leaves - num)
    levels = [tuple(level)]
    sha = hashlib.sha256
    while len(level) > 1:
        level = [sha(level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)]
        levels.append(tuple(level))
    return tuple(levels)


def hashes_for(layers: Mapping[bytes, bytes], piece_length: int, req: HashRequest) -> Hashes | None:
    """The ``hashes`` answer to ``req`` from the known piece layers (``Torrent.piece_layers``),
    or None when it must be rejected: not the piece layer, an unknown file, out of range."""
    layer = layers.get(req.pieces_root)
    if layer is None or req.base_layer != piece_layer_base(piece_length):
        return None
    leaves = _next_pow2(len(layer) // HASH_SIZE)
    height = _log2(leaves)
    if req.index + req.length > leaves or req.proof_layers >= max(height, 1):
        return None
    levels = _tree(layer, piece_length)
    first = _log2(req.length)  # the level of the subtree holding the requested hashes
    up = min(_uncles_wanted(req.length, req.proof_layers), height - first)
    uncles = [levels[d][(req.index >> d) ^ 1] for d in range(first, first + up)]
    return Hashes(req.pieces_root, req.base_layer, req.index, req.length, req.proof_layers,
                  b"".join(levels[0][req.index:req.index + req.length] + tuple(uncles)))
