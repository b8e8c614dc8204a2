"""Fetching a magnet's metadata (BEP 9) from peers that may lie: a sans-I/O core.

The shell tells it who announced which ``metadata_size``, hands it every ``ut_metadata`` data
or reject message and the time, and asks it which pieces to request from whom. The core keeps
the one record of what was asked of whom and who sent which bytes, so that:

- data is accepted only for a piece that was asked of that very peer (sprayed pieces are
  dropped without effect);
- each size a peer announced is a separate candidate, weighed by the number of distinct peers
  announcing it; one peer backs one size at a time (and may change it at most
  ``MAX_SIZES_PER_PEER`` times), and only the ``max_active_sizes`` best-backed sizes are fetched,
  so one peer cannot crowd out the others nor make us buffer without bound;
- when the assembled metadata does not match the info-hash, only what is proven false is thrown
  away: a peer whose own complete set of pieces fails is banned; otherwise the candidate is
  "contested" and every backer is asked for its own full set until one set verifies; then every
  peer that sent a piece differing from the verified metadata is banned (smart ban), and every
  peer whose size differs from the verified one is dropped;
- a request that times out or is rejected is free for other peers at once, and the peer is not
  asked for that piece again before ``retry_after`` seconds; repeated failures drop the peer.

Peers the shell should disconnect come out of ``take_dropped()``; ``banned`` keeps the liars.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Hashable
from dataclasses import dataclass, field

from ...formats.infohash import names_info
from .extensions import DEFAULT_MAX_METADATA_SIZE, METADATA_PIECE_SIZE, metadata_piece_count

__all__ = [
    "DEFAULT_REQUEST_TIMEOUT",
    "MAX_OUTSTANDING_PER_PEER",
    "MAX_SIZES_PER_PEER",
    "MAX_STRIKES",
    "MAX_UNREQUESTED",
    "Dropped",
    "MetadataFetcher",
    "Verdict",
]

DEFAULT_REQUEST_TIMEOUT = 10.0  # seconds a peer has to answer one ut_metadata request
MAX_OUTSTANDING_PER_PEER = 8  # ut_metadata requests in flight to one peer
MAX_SIZES_PER_PEER = 2  # distinct metadata_size values one peer may announce
MAX_STRIKES = 4  # timeouts + rejects before a peer is dropped as useless
MAX_UNREQUESTED = 16  # data messages for pieces never asked of it before a peer is dropped
DEFAULT_MAX_ACTIVE_SIZES = 3  # candidate sizes fetched at once (each buffers up to its size)
DEFAULT_DUPLICATE_REQUESTS = 2  # peers asked for one missing piece at once when nothing else is left


class Verdict(enum.Enum):
    """What ``on_data`` made of one data message."""

    ACCEPTED = "accepted"  # kept; more pieces are needed
    COMPLETE = "complete"  # the metadata verified: ``result()`` returns it
    UNREQUESTED = "unrequested"  # not asked of this peer (or from a banned/unknown peer): ignored
    INVALID = "invalid"  # wrong total_size or length: the peer is dropped
    MISMATCH = "mismatch"  # it completed a set that did not match the info-hash (see take_dropped)


@dataclass(frozen=True)
class Dropped:
    """A peer the shell should disconnect, and why; ``banned`` when it sent false metadata."""

    peer_key: Hashable
    reason: str
    banned: bool = False


@dataclass
class _Peer:
    size: int
    sizes_seen: set[int]
    inflight: dict[int, float] = field(default_factory=dict)  # piece -> deadline
    not_before: dict[int, float] = field(default_factory=dict)  # piece -> earliest re-ask
    strikes: int = 0
    unrequested: int = 0


@dataclass
class _Candidate:
    """Everything received for one announced size."""

    size: int
    order: int  # announcement order, to break ties between equally backed sizes
    num_pieces: int
    # piece -> data -> senders; identical bytes from several peers are stored once
    versions: dict[int, dict[bytes, set[Hashable]]] = field(default_factory=dict)
    sent: dict[Hashable, dict[int, bytes]] = field(default_factory=dict)  # per-peer own set
    contested: bool = False  # a mixed assembly failed: each backer must prove its own set
    tried: set[tuple[bytes, ...]] = field(default_factory=set)  # mixes already hashed (by digest)


class MetadataFetcher:
    """Collects one torrent's metadata from untrusted peers (see the module text)."""

    def __init__(
        self,
        info_hash: bytes,
        *,
        max_size: int = DEFAULT_MAX_METADATA_SIZE,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        retry_after: float | None = None,
        max_outstanding: int = MAX_OUTSTANDING_PER_PEER,
        max_active_sizes: int = DEFAULT_MAX_ACTIVE_SIZES,
        duplicate_requests: int = DEFAULT_DUPLICATE_REQUESTS,
    ) -> None:
        if len(info_hash) not in (20, 32):
            raise ValueError("info_hash must be 20 (v1) or 32 (v2) bytes")
        if min(max_size, request_timeout, max_outstanding, max_active_sizes, duplicate_requests) <= 0:
            raise ValueError("limits must be positive")
        self.info_hash = info_hash
        self.max_size = max_size
        self.request_timeout = request_timeout
        self.retry_after = request_timeout if retry_after is None else retry_after
        self.max_outstanding = max_outstanding
        self.max_active_sizes = max_active_sizes
        self.duplicate_requests = duplicate_requests
        self.banned: set[Hashable] = set()
        self._peers: dict[Hashable, _Peer] = {}
        self._candidates: dict[int, _Candidate] = {}
        self._announcements = 0
        self._dropped: list[Dropped] = []
        self._result: bytes | None = None

    # -- peers -----------------------------------------------------------------------------
    def add_peer(self, peer_key: Hashable, metadata_size: int) -> bool:
        """A peer announced ``metadata_size`` (BEP 9, in its extension handshake; a later
        handshake may change it). False when the peer will not be used (banned, size out of
        range, too many sizes: then it is also in ``take_dropped()``)."""
        if self._result is not None or peer_key in self.banned:
            return False
        if not 0 < metadata_size <= self.max_size:
            self._drop(peer_key, f"metadata_size {metadata_size} outside 1..{self.max_size}")
            return False
        peer = self._peers.get(peer_key)
        if peer is None:
            peer = self._peers[peer_key] = _Peer(metadata_size, {metadata_size})
        elif metadata_size != peer.size:
            peer.sizes_seen.add(metadata_size)
            if len(peer.sizes_seen) > MAX_SIZES_PER_PEER:
                self._drop(peer_key, f"announced {len(peer.sizes_seen)} different metadata sizes")
                return False
            peer.inflight.clear()  # (answers to the old size's requests are no longer wanted)
            peer.size = metadata_size
        if metadata_size not in self._candidates:
            self._announcements += 1
            self._candidates[metadata_size] = _Candidate(
                metadata_size, self._announcements, metadata_piece_count(metadata_size))
        return True

    def remove_peer(self, peer_key: Hashable) -> None:
        """The peer is gone; what it sent stays (honest pieces still count), its requests are
        free for others."""
        self._peers.pop(peer_key, None)
        self._prune()

    def take_dropped(self) -> list[Dropped]:
        """Peers to disconnect since the last call (liars, useless or misbehaving peers)."""
        dropped, self._dropped = self._dropped, []
        return dropped

    @property
    def done(self) -> bool:
        """Whether the info dict is complete and verified."""
        return self._result is not None

    def result(self) -> bytes | None:
        """The verified info dict, once it is complete."""
        return self._result

    def sizes(self) -> dict[int, int]:
        """Candidate sizes and how many connected, unbanned peers back each."""
        return {size: self._weight(size) for size in self._candidates}

    # -- requesting ------------------------------------------------------------------------
    def next_requests(self, peer_key: Hashable, now: float) -> list[int]:
        """Pieces to request from this peer now (recorded as in flight to it)."""
        peer = self._peers.get(peer_key)
        if peer is None or self._result is not None or peer.size not in self._active_sizes():
            return []
        cand = self._candidates[peer.size]
        room = self.max_outstanding - len(peer.inflight)
        if room <= 0:
            return []
        own = cand.sent.get(peer_key, {})
        if cand.contested:
            # every backer completes its own set, so the true one can be found and liars named
            wanted = [i for i in range(cand.num_pieces) if i not in own]
        else:
            busy: dict[int, int] = {}
            for p in self._peers.values():
                if p.size == cand.size:
                    for i in p.inflight:
                        busy[i] = busy.get(i, 0) + 1
            missing = [i for i in range(cand.num_pieces) if i not in cand.versions]
            # pieces nobody is asked for first; then (the end game) pieces asked of fewer than
            # ``duplicate_requests`` peers, so one silent peer does not hold them for a timeout
            wanted = ([i for i in missing if i not in busy]
                      + [i for i in missing if 0 < busy.get(i, 0) < self.duplicate_requests])
        out: list[int] = []
        for piece in wanted:
            if len(out) >= room:
                break
            if piece in peer.inflight or peer.not_before.get(piece, 0.0) > now:
                continue
            peer.inflight[piece] = now + self.request_timeout
            out.append(piece)
        return out

    def on_reject(self, peer_key: Hashable, piece: int, now: float) -> None:
        """The peer rejected a request (BEP 9 msg_type 2): someone else is asked."""
        peer = self._peers.get(peer_key)
        if peer is None or peer.inflight.pop(piece, None) is None:
            return
        peer.not_before[piece] = now + self.retry_after
        self._strike(peer_key, peer, "rejected its metadata requests")

    def tick(self, now: float) -> None:
        """Expire requests past their deadline (their pieces are free for others)."""
        for key, peer in list(self._peers.items()):
            expired = [i for i, deadline in peer.inflight.items() if deadline <= now]
            for piece in expired:
                del peer.inflight[piece]
                peer.not_before[piece] = now + self.retry_after
            if expired:
                self._strike(key, peer, "did not answer its metadata requests")

    # -- data ------------------------------------------------------------------------------
    def on_data(self, peer_key: Hashable, piece: int, data: bytes, total_size: int,
                now: float) -> Verdict:
        """One ut_metadata data message from ``peer_key``."""
        peer = self._peers.get(peer_key)
        if peer is None or self._result is not None or piece not in peer.inflight:
            if peer is not None:
                peer.unrequested += 1
                if peer.unrequested > MAX_UNREQUESTED:
                    self._drop(peer_key, "sent metadata pieces it was not asked for")
            return Verdict.UNREQUESTED
        del peer.inflight[piece]
        cand = self._candidates[peer.size]
        expected = min(METADATA_PIECE_SIZE, cand.size - piece * METADATA_PIECE_SIZE)
        if total_size != cand.size or len(data) != expected:
            self._drop(peer_key, f"ut_metadata piece {piece}: total_size {total_size} and "
                                 f"{len(data)} bytes, expected {cand.size} and {expected}")
            return Verdict.INVALID
        data = bytes(data)
        cand.versions.setdefault(piece, {}).setdefault(data, set()).add(peer_key)
        cand.sent.setdefault(peer_key, {})[piece] = data
        return self._try_complete(cand, peer_key)

    # -- inside ----------------------------------------------------------------------------
    def _try_complete(self, cand: _Candidate, sender: Hashable) -> Verdict:
        own = cand.sent.get(sender, {})
        if len(own) == cand.num_pieces:  # the sender's own set alone: it proves or condemns it
            info = b"".join(own[i] for i in range(cand.num_pieces))
            if names_info(self.info_hash, info):
                self._finish(cand, info)
                return Verdict.COMPLETE
            self._ban(sender, "its metadata does not match the info-hash")
            cand.contested = True
            return Verdict.MISMATCH
        if len(cand.versions) < cand.num_pieces:
            return Verdict.ACCEPTED
        # a mix: for each piece the bytes most peers sent (ties: the first received)
        chosen = [max(cand.versions[i].items(), key=lambda kv: len(kv[1]))[0]
                  for i in range(cand.num_pieces)]
        tag = tuple(hashlib.sha1(c).digest() for c in chosen)
        if tag in cand.tried:
            return Verdict.ACCEPTED
        cand.tried.add(tag)
        info = b"".join(chosen)
        if names_info(self.info_hash, info):
            self._finish(cand, info)
            return Verdict.COMPLETE
        senders = {k for i in range(cand.num_pieces) for k in cand.versions[i][chosen[i]]}
        if len(senders) == 1:  # (cannot happen without the own-set check above; kept for clarity)
            self._ban(next(iter(senders)), "its metadata does not match the info-hash")
        cand.contested = True
        return Verdict.MISMATCH

    def _finish(self, cand: _Candidate, info: bytes) -> None:
        self._result = info
        for piece, versions in cand.versions.items():
            good = info[piece * METADATA_PIECE_SIZE:(piece + 1) * METADATA_PIECE_SIZE]
            for data, senders in list(versions.items()):
                if data != good:
                    for key in sorted(senders, key=repr):
                        self._ban(key, f"sent a false metadata piece {piece}")
        for key, peer in list(self._peers.items()):
            if peer.size != cand.size:
                self._drop(key, f"its metadata_size {peer.size} is not the torrent's {cand.size}")
        for peer in self._peers.values():
            peer.inflight.clear()
        self._candidates = {cand.size: cand}
        cand.versions.clear()  # (the result holds the bytes now)
        cand.sent.clear()

    def _ban(self, peer_key: Hashable, reason: str) -> None:
        if peer_key in self.banned:
            return
        self.banned.add(peer_key)
        for cand in self._candidates.values():
            cand.sent.pop(peer_key, None)
            for piece in list(cand.versions):
                versions = cand.versions[piece]
                for data in list(versions):
                    versions[data].discard(peer_key)
                    if not versions[data]:
                        del versions[data]
                if not versions:
                    del cand.versions[piece]
        self._drop(peer_key, reason, banned=True)

    def _drop(self, peer_key: Hashable, reason: str, *, banned: bool = False) -> None:
        self._peers.pop(peer_key, None)
        self._dropped.append(Dropped(peer_key, reason, banned))
        self._prune()

    def _strike(self, peer_key: Hashable, peer: _Peer, reason: str) -> None:
        peer.strikes += 1
        if peer.strikes >= MAX_STRIKES:
            self._drop(peer_key, reason)

    def _weight(self, size: int) -> int:
        return sum(1 for p in self._peers.values() if p.size == size)

    def _active_sizes(self) -> set[int]:
        # most distinct backers first; among equals, backers that failed least, then the oldest
        strikes: dict[int, int] = {}
        for p in self._peers.values():
            strikes[p.size] = strikes.get(p.size, 0) + p.strikes
        ranked = sorted(self._candidates.values(),
                        key=lambda c: (-self._weight(c.size), strikes.get(c.size, 0), c.order))
        return {c.size for c in ranked[:self.max_active_sizes] if self._weight(c.size) > 0}

    def _prune(self) -> None:
        """Forget sizes nobody backs any more and that hold nothing (bounds the table)."""
        if self._result is not None:
            return
        backed = {p.size for p in self._peers.values()}
        for size in [s for s, c in self._candidates.items() if s not in backed and not c.versions]:
            del self._candidates[size]
        # unbacked sizes keep what they hold (honest pieces of a departed peer count) but only
        # a few of them: the oldest go first
        orphans = sorted((c for s, c in self._candidates.items() if s not in backed),
                         key=lambda c: c.order)
        for cand in orphans[:max(0, len(orphans) - self.max_active_sizes)]:
            del self._candidates[cand.size]
