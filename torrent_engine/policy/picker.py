"""Which blocks to request from which peer (sans-I/O): rarest-first piece picking.

The picker keeps the swarm's piece availability, our ``have`` set, file and piece priorities,
and the state of every block of the pieces being downloaded. It never reads a clock or a
random source of its own: tie-breaking randomness comes from the injected ``random.Random``.

Policy, in order (the first that yields blocks wins, then the next fills up ``n``):
0. deadlines (``set_deadlines``: pieces an open file reader needs soon, most urgent first): a
   fast peer (``pick(..., fast=True)``, the default) takes their free blocks before anything
   else, starting them in deadline order; a slow one is kept off them altogether, so a piece a
   reader waits on is not held up by a slow peer. A ``waiting`` piece (a reader is blocked on
   it) whose blocks are all asked for and one of them is older than ``late_after`` is asked of
   a second fast peer too (duplicates, as in endgame; ``block_received`` returns the CANCELs).
   With no deadline set the rest of the policy is unchanged, at no cost;
1. partially downloaded pieces first (strict priority): free blocks of pieces already started;
2. a new piece: the first ``random_first_pieces`` completed pieces are picked at random (to get
   something to trade quickly), then rarest-first — highest priority level, then lowest
   availability, random among equals — or lowest index first in sequential mode. Among equals,
   a piece of an extent begun lately goes first (``extent_bytes`` of the torrent, 4 MiB, at
   most ``EXTENT_PIECES`` pieces: the next fresh one of the ``RECENT_EXTENTS`` last extents a
   new piece was taken from, as libtorrent's piece extent affinity): the pieces of a torrent
   then complete near each other, and the storage writes those that wait together in one write;
3. endgame: when no free block is left anywhere, blocks already requested from other peers are
   requested again (at most ``endgame_max_requesters`` peers per block), ``endgame_batch`` at a
   time, from a peer that has no request of its own outstanding (as libtorrent does: with deep
   pipelines, endgame would otherwise begin with thousands of blocks in flight, each then asked
   of up to three peers and cancelled at the others); ``block_received`` returns the duplicates
   to cancel. The blocks due last at their requesters go first, and a drained peer whose rate
   is known (``pick(..., block_seconds=)``) takes every block it would deliver sooner than the
   peer it is asked of, so fast links do not idle through the slow ones' last seconds.

Cost: picking ``n`` blocks is O(n + P + L + k): P pieces in progress with free blocks, L
non-empty (priority, availability) buckets looked at (at most 7 x (peers + 1)), and k pieces
skipped because this peer lacks them (and, for a new piece, at most ``RECENT_EXTENTS`` x
``EXTENT_PIECES`` pieces of the recent extents). For a peer with at most ``sparse_peer_limit``
pieces (or a small explicit set such as allowed-fast pieces) the walk is over its own pieces
instead, so k <= that limit. It does not grow with the total number of pieces N (``bench/bench_picker.py``
measures 1 000 vs 100 000 pieces, for well-stocked and for nearly empty peers). A HAVE is
O(1); a bitfield is O(pieces set); HAVE ALL / a full bitfield is O(1) (seeds are counted
apart, which shifts every availability equally and so changes no order).

Invariants:
- Every piece is in exactly one state: FRESH, DOWNLOADING (has a ``Download``) or HAVE.
- A FRESH piece with priority > 0 is in exactly one bucket, ``_buckets[priority][availability]``,
  at ``_pos[index]``; no other piece is in any bucket. ``_fresh_wanted`` is their count.
- A block of a DOWNLOADING piece is received, or requested by the peers in its requester list,
  or free (neither). ``_open`` holds exactly the DOWNLOADING pieces with a free block.
  ``_requests[peer]`` holds exactly the (piece, block) pairs whose requester list names peer,
  each with the time it was asked for: the one record of the requests in flight.
- Outside endgame a block never has more than one requester.
- A piece with priority 0 is never picked; its blocks are never requested.
- ``have`` gains a piece only through ``piece_passed`` (or the constructor): nothing unverified
  counts; ``piece_lost`` takes one away (its data on disk changed or is gone).
"""

from __future__ import annotations

import math
import operator
import random
from collections.abc import Container, Iterable, Sequence
from collections.abc import Set as AbstractSet

from ..formats.bitfield import Bitfield
from ..formats.layout import FileMap, TorrentLayout
from ..net.peer.messages import BLOCK_SIZE
from .picker_endgame import Endgame
from .picker_parts import (
    ACCEPTED,
    COMPLETE,
    NOT_ACCEPTED,
    NOTHING,
    Block,
    BlockReceived,
    Download,
    PeerKey,
    Without,
    make_block,
)
from .picker_peers import PeerPieces

__all__ = [
    "BLOCK_SIZE",
    "DEFAULT_PRIORITY",
    "EXTENT_BYTES",
    "EXTENT_PIECES",
    "MAX_PRIORITY",
    "RECENT_EXTENTS",
    "SKIP",
    "SPARSE_PEER_LIMIT",
    "Block",
    "BlockReceived",
    "PiecePicker",
]

SKIP = 0  # priority 0: never download (libtorrent's "dont_download")
DEFAULT_PRIORITY = 4  # libtorrent's default on its 0..7 scale
MAX_PRIORITY = 7
SPARSE_PEER_LIMIT = 256  # a peer with at most this many pieces is picked for from its own set
# Piece extent affinity: a torrent's pieces in extents of EXTENT_BYTES (libtorrent's 4 MiB), and
# how many extents begun lately a new piece is looked for in first. One torrent of 64 KiB pieces
# from 4 seeds cost 3.5-3.6 CPU s a GiB with its pieces in random order, 2.0-2.6 with affinity:
# the storage writes runs of them at once (bench/RESULTS.md, "Runs of pieces in one write").
EXTENT_BYTES = 4 << 20
EXTENT_PIECES = 64  # at most (so a new piece looks at no more than 256 pieces of them)
RECENT_EXTENTS = 4

_FRESH = 0
_DOWNLOADING = 1
_HAVE = 2


class PiecePicker:
    """Rarest-first piece and block picker for one torrent (see the module docstring).

    ``peer_key`` is any hashable naming a connection. Register what peers have with
    ``peer_bitfield`` / ``peer_have_all`` / ``peer_have``, forget them with ``peer_gone``.
    """

    def __init__(
        self,
        torrent: TorrentLayout,
        rng: random.Random,
        *,
        have: Iterable[int] = (),
        random_first_pieces: int = 4,
        endgame_max_requesters: int = 3,
        endgame_batch: int = 4,
        endgame_margin: float = 0.5,
        sparse_peer_limit: int = SPARSE_PEER_LIMIT,
        extent_bytes: int = EXTENT_BYTES,
    ) -> None:
        """``extent_bytes``: the extents of piece extent affinity (0: none)."""
        self._torrent = torrent
        self._rng = rng
        self._map = FileMap(torrent)
        n = self.num_pieces = torrent.num_pieces
        self.random_first_pieces = random_first_pieces
        self.sequential = False
        self._have = Bitfield(n)
        self._needed = Bitfield(n)  # priority > 0 and not had
        self._state = bytearray(n)
        self._avail = [0] * n  # peers (not counting seeds) that have each piece
        self._prio = bytearray(n)
        self._buckets: list[list[list[int]]] = [[] for _ in range(MAX_PRIORITY + 1)]
        self._level_count = [0] * (MAX_PRIORITY + 1)
        self._pos = [0] * n
        self._fresh_wanted = 0
        self._downloads: dict[int, Download] = {}
        self._open: dict[int, None] = {}  # ordered set: DOWNLOADING pieces with a free block
        # (piece, block) -> when it was asked for: the one record of what is in flight at whom
        self._requests: dict[PeerKey, dict[tuple[int, int], float]] = {}
        # What each peer has. Peers with few pieces also keep them as a set: picking for them
        # walks their pieces instead of the buckets, where most pieces would be skipped as missing.
        self._peers = PeerPieces(n, sparse_peer_limit)
        self._seq_cursor = 0
        # Piece extent affinity: pieces an extent, and the extents a new piece was taken from
        # lately (the latest last), each with the lowest of its pieces that may still be fresh.
        self._extent = min(EXTENT_PIECES, extent_bytes // torrent.piece_length) if extent_bytes > 0 else 0
        self._recent: dict[int, int] = {}
        # Endgame: a peer that found nothing to duplicate is not scanned again until something
        # that could give it a block changes (a request withdrawn, a new piece in play, what it
        # has, a priority): ``_generation`` counts those changes.
        self._generation = 0
        # Deadlines (streaming): pieces wanted first, most urgent first; those a reader is
        # blocked on; how old a request of one of those may get before a second peer is asked.
        self._deadlines: dict[int, None] = {}  # ordered set
        self._waiting: frozenset[int] = frozenset()
        self._late_after = 1.0
        self._left = 0
        self._payload = [0] * n
        for i in range(n):
            self._payload[i] = torrent.piece_size(i)
        for f in torrent.files:
            if f.pad and f.length:
                self._subtract_pad(f.offset, f.length)
        for i in have:
            self._have.add(i)
            self._state[i] = _HAVE
        self._file_prios = [SKIP if f.pad else DEFAULT_PRIORITY for f in torrent.files]
        self._piece_override: dict[int, int] = {}
        self._apply_priorities(self._compute_piece_priorities())
        self._endgame = Endgame(self._requests, self._downloads, self._prio,  # (borrowed)
                                max_requesters=endgame_max_requesters,
                                batch=endgame_batch, margin=endgame_margin)

    @property
    def sparse_peer_limit(self) -> int:
        """A peer with at most this many pieces is picked for from its own set."""
        return self._peers.sparse_limit

    @property
    def endgame_max_requesters(self) -> int:
        """The most peers one block is asked of in endgame."""
        return self._endgame.max_requesters

    @property
    def endgame_batch(self) -> int:
        """Endgame duplicates a drained peer takes at a time (without a known rate)."""
        return self._endgame.batch

    @property
    def endgame_margin(self) -> float:
        """Seconds beyond its rate's need a drained peer must beat to take a later block in endgame."""
        return self._endgame.margin

    def _subtract_pad(self, offset: int, length: int) -> None:
        pl = self._torrent.piece_length
        end = offset + length
        while offset < end:
            i = offset // pl
            if i >= self.num_pieces:
                break
            n = min(end, (i + 1) * pl) - offset
            self._payload[i] = max(0, self._payload[i] - n)
            offset += n

    # -- buckets -------------------------------------------------------------------------------

    def _bucket_add(self, i: int) -> None:
        level = self._buckets[self._prio[i]]
        a = self._avail[i]
        while len(level) <= a:
            level.append([])
        b = level[a]
        j = int(self._rng.random() * (len(b) + 1))  # random slot: random order among equals
        if j >= len(b):
            self._pos[i] = len(b)
            b.append(i)
        else:
            moved = b[j]
            b[j] = i
            self._pos[i] = j
            self._pos[moved] = len(b)
            b.append(moved)
        self._level_count[self._prio[i]] += 1
        self._fresh_wanted += 1

    def _bucket_remove(self, i: int) -> None:
        b = self._buckets[self._prio[i]][self._avail[i]]
        j = self._pos[i]
        last = b.pop()
        if last != i:
            b[j] = last
            self._pos[last] = j
        self._level_count[self._prio[i]] -= 1
        self._fresh_wanted -= 1

    def _in_bucket(self, i: int) -> bool:
        return self._state[i] == _FRESH and self._prio[i] > 0

    def _make_fresh(self, i: int) -> None:
        self._generation += 1
        self._state[i] = _FRESH
        if self._prio[i] > 0:
            self._bucket_add(i)
            if i < self._seq_cursor:
                self._seq_cursor = i
            if self._recent:
                e = i // self._extent
                if i < self._recent.get(e, i):
                    self._recent[e] = i

    # -- priorities ----------------------------------------------------------------------------

    def _compute_piece_priorities(self) -> bytearray:
        prio = bytearray(self.num_pieces)
        for fi, f in enumerate(self._torrent.files):
            p = self._file_prios[fi]
            if f.pad or p == SKIP:
                continue
            for i in self._map.file_pieces(fi):
                if prio[i] < p:
                    prio[i] = p  # a piece shared with a wanted file stays wanted
        for i, p in self._piece_override.items():
            prio[i] = p
        return prio

    def _apply_priorities(self, new: bytearray) -> None:
        for i in range(self.num_pieces):
            if self._prio[i] != new[i]:
                self._set_priority(i, new[i])
        self._seq_cursor = 0

    def _set_priority(self, i: int, p: int) -> None:
        self._generation += 1
        old = self._prio[i]
        state = self._state[i]
        if state == _FRESH and old > 0:
            self._bucket_remove(i)
        if state != _HAVE:
            if old == 0 and p > 0:
                self._needed.add(i)
                self._left += self._payload[i]
            elif old > 0 and p == 0:
                self._needed.discard(i)
                self._left -= self._payload[i]
        self._prio[i] = p
        if state == _FRESH and p > 0:
            self._bucket_add(i)
        elif state == _DOWNLOADING:
            # A skipped piece keeps its received blocks but offers no free ones.
            if p == 0:
                self._open.pop(i, None)
            elif self._downloads[i].free:
                self._open[i] = None

    def set_file_priorities(self, priorities: Sequence[int]) -> None:
        """One priority per entry of ``torrent.files`` (0 = skip .. 7); clears piece overrides.

        A piece takes the highest priority of the files it holds bytes of, so a piece shared
        by a skipped file and a wanted one is still downloaded.
        """
        if len(priorities) != len(self._torrent.files):
            raise ValueError(f"{len(priorities)} priorities for {len(self._torrent.files)} files")
        self._file_prios = [
            SKIP if f.pad else _check_priority(p)
            for f, p in zip(self._torrent.files, priorities, strict=True)
        ]
        self._piece_override.clear()
        self._apply_priorities(self._compute_piece_priorities())

    def file_priorities(self) -> list[int]:
        """Each file's priority (0 = skip .. 7), in file order."""
        return list(self._file_prios)

    def set_piece_priority(self, index: int, priority: int) -> None:
        """Override one piece's priority (0 = skip .. 7) until the next ``set_file_priorities``."""
        self._check_index(index)
        self._piece_override[index] = _check_priority(priority)
        if self._prio[index] != priority:
            self._set_priority(index, priority)
            self._seq_cursor = 0

    def piece_priority(self, index: int) -> int:
        """Piece ``index``'s priority (0 = skip .. 7)."""
        return self._prio[index]

    def set_sequential(self, sequential: bool) -> None:
        """Sequential mode: new pieces in index order instead of rarest-first."""
        self.sequential = sequential
        self._seq_cursor = 0

    def set_deadlines(self, pieces: Iterable[int], *, waiting: Iterable[int] = (),
                      late_after: float = 1.0) -> None:
        """Pieces to fetch before any other, most urgent first (an empty ``pieces``: none, normal
        picking). ``waiting``: pieces a reader is blocked on now; once every block of one is asked
        for and a request of it is older than ``late_after`` seconds, a second fast peer is asked
        for the same block. Pieces already had, out of range or skipped (priority 0) are left out.
        """
        deadlines: dict[int, None] = {}
        for i in pieces:
            if 0 <= i < self.num_pieces and self._state[i] != _HAVE and self._prio[i] > 0:
                deadlines[i] = None
        self._deadlines = deadlines
        self._waiting = frozenset(i for i in waiting if i in deadlines)
        self._late_after = late_after
        self._generation += 1

    @property
    def deadlines(self) -> list[int]:
        """The deadline pieces not yet had, most urgent first (see ``set_deadlines``)."""
        return list(self._deadlines)

    @property
    def has_deadlines(self) -> bool:
        """Whether some reader waits for a piece not had yet (``deadlines`` without its copy)."""
        return bool(self._deadlines)

    def give_way(self, peer_key: PeerKey) -> list[Block]:
        """Withdraw the peer's requests of pieces that have no deadline, while deadline pieces
        still have blocks no one was asked for, or the peer was asked for some of them (a
        reader moved: the old window's requests give way to the new one's, and those of the new
        window already asked of the peer, queued behind the others, move up). The blocks are
        free again; send the peer CANCEL for each."""
        mine = self._requests.get(peer_key)
        deadlines = self._deadlines
        if not mine or not deadlines:
            return []
        if (not any(k[0] in deadlines for k in mine)
                and not any(self._state[i] == _FRESH or i in self._open for i in deadlines)):
            return []
        out: list[Block] = []
        for i, j in [k for k in mine if k[0] not in self._deadlines]:
            out.append(Block(i, j * BLOCK_SIZE, self._downloads[i].block_length(j)))
            del mine[(i, j)]
            self._unrequest(peer_key, i, j)
        return out

    # -- our pieces ----------------------------------------------------------------------------

    @property
    def have(self) -> Bitfield:
        """The verified pieces (do not modify; use ``piece_passed``)."""
        return self._have

    def has_piece(self, index: int) -> bool:
        """Whether piece ``index`` is verified."""
        return index in self._have

    def wants_piece(self, index: int) -> bool:
        """True when piece ``index`` is wanted and not had yet (e.g. to react to a HAVE)."""
        return index in self._needed

    def is_complete(self) -> bool:
        """All wanted pieces are verified."""
        return len(self._needed) == 0

    def left_bytes(self) -> int:
        """Payload bytes (pad excluded) of wanted pieces not verified yet (tracker ``left``)."""
        return self._left

    def in_endgame(self) -> bool:
        """No free block is left: every missing wanted block is received or requested."""
        return self._fresh_wanted == 0 and not self._open and bool(self._downloads)

    def downloading(self) -> list[int]:
        """Pieces with blocks in flight or received but not yet verified."""
        return list(self._downloads)

    def availability(self, index: int) -> int:
        """How many connected peers have piece ``index``."""
        return self._avail[index] + self._peers.seeds

    def distributed_copies(self) -> float:
        """How many whole copies of the torrent the connected peers and we hold (libtorrent's
        ``distributed_copies``, which counts its own pieces too: qBittorrent's ``availability``):
        the rarest piece's count, plus the share of pieces held by more. Read when asked, O(N) in
        C loops (no count kept per HAVE on the hot path)."""
        if not self._avail:
            return 0.0
        counts: list[int] = list(map(operator.add, self._avail, self._have.flags()))
        least = min(counts)
        return self._peers.seeds + least + (len(counts) - counts.count(least)) / len(counts)

    # -- peers ---------------------------------------------------------------------------------

    def _inc(self, i: int) -> None:
        if self._in_bucket(i):
            self._bucket_remove(i)
            self._avail[i] += 1
            self._bucket_add(i)
        else:
            self._avail[i] += 1

    def _dec(self, i: int) -> None:
        if self._in_bucket(i):
            self._bucket_remove(i)
            self._avail[i] -= 1
            self._bucket_add(i)
        else:
            self._avail[i] -= 1

    def _forget_availability(self, peer_key: PeerKey) -> None:
        self._generation += 1
        for i in self._peers.forget(peer_key):
            self._dec(i)

    def peer_bitfield(self, peer_key: PeerKey, bitfield: Bitfield) -> None:
        """The peer's BITFIELD (replaces what was known). O(pieces set); O(1) when full."""
        if bitfield.num_pieces != self.num_pieces:
            raise ValueError(f"bitfield of {bitfield.num_pieces} pieces, torrent has {self.num_pieces}")
        self._forget_availability(peer_key)  # (counts as a change for endgame)
        for i in self._peers.bitfield(peer_key, bitfield):
            self._inc(i)

    def peer_have_all(self, peer_key: PeerKey) -> None:
        """BEP 6 HAVE ALL (a seed). O(1)."""
        self._forget_availability(peer_key)
        self._peers.have_all(peer_key)

    def peer_have_none(self, peer_key: PeerKey) -> None:
        """BEP 6 HAVE NONE."""
        self._forget_availability(peer_key)
        self._peers.have_none(peer_key)

    def peer_have(self, peer_key: PeerKey, index: int) -> None:
        """A HAVE message. O(1)."""
        self._check_index(index)
        if self._peers.have(peer_key, index):
            self._generation += 1
            self._inc(index)

    def peer_has(self, peer_key: PeerKey) -> Container[int]:
        """What the picker knows the peer has."""
        return self._peers.has(peer_key)

    def is_interesting(self, peer_key: PeerKey) -> bool:
        """The peer has a piece we want (send INTERESTED). O(N/64) word operations at most."""
        return self._peers.any_of(peer_key, self._needed)

    def peer_gone(self, peer_key: PeerKey) -> list[Block]:
        """The peer disconnected: its requests go back to the pool, its pieces leave availability."""
        released = self.release_requests(peer_key)
        self._requests.pop(peer_key, None)
        self._endgame.forget(peer_key)
        self._forget_availability(peer_key)
        return released

    # -- requests ------------------------------------------------------------------------------

    def requests_of(self, peer_key: PeerKey) -> list[Block]:
        """The blocks currently requested from the peer."""
        out: list[Block] = []
        for i, j in self._requests.get(peer_key, ()):
            out.append(Block(i, j * BLOCK_SIZE, self._downloads[i].block_length(j)))
        return out

    def in_flight(self, peer_key: PeerKey) -> int:
        """How many blocks are requested from the peer and not yet received."""
        mine = self._requests.get(peer_key)
        return len(mine) if mine else 0

    def downloading_piece(self, peer_key: PeerKey) -> int | None:
        """The piece of the peer's oldest request not yet received (None: it has none), as
        libtorrent's ``downloading_piece_index``."""
        mine = self._requests.get(peer_key)
        return next(iter(mine))[0] if mine else None

    def is_requested(self, peer_key: PeerKey, block: Block) -> bool:
        """Whether ``block`` is requested from the peer and not yet received."""
        mine = self._requests.get(peer_key)
        return mine is not None and (block.index, block.begin // BLOCK_SIZE) in mine

    def expired(self, peer_key: PeerKey, before: float) -> list[Block]:
        """The peer's requests asked for before ``before`` (timed out: see ``cancel_request``)."""
        mine = self._requests.get(peer_key)
        if not mine:
            return []
        return [Block(i, j * BLOCK_SIZE, self._downloads[i].block_length(j))
                for (i, j), sent in mine.items() if sent <= before]

    def piece_sources(self, index: int) -> dict[int, PeerKey]:
        """Who sent each received block (block number -> peer) of a piece being downloaded."""
        d = self._downloads.get(index)
        if d is None:
            return {}
        return {j: s for j, s in enumerate(d.sources) if s is not None}

    def _unrequest(self, peer_key: PeerKey, i: int, j: int) -> None:
        self._generation += 1
        d = self._downloads[i]
        d.requesters[j].remove(peer_key)
        if not d.requesters[j] and not d.received[j]:
            d.free += 1
            if j < d.hint:
                d.hint = j
            if self._prio[i] > 0:
                self._open[i] = None
            if d.free == d.nblocks:  # nothing received or requested: back to the fresh pool
                del self._downloads[i]
                self._open.pop(i, None)
                self._make_fresh(i)

    def release_requests(self, peer_key: PeerKey) -> list[Block]:
        """Forget every request to the peer (choked us, gone): the blocks become free again."""
        mine = self._requests.get(peer_key)
        if not mine:
            return []
        released = [Block(i, j * BLOCK_SIZE, self._downloads[i].block_length(j)) for i, j in sorted(mine)]
        for i, j in sorted(mine):
            self._unrequest(peer_key, i, j)
        mine.clear()
        return released

    def cancel_request(self, peer_key: PeerKey, block: Block) -> None:
        """Forget one request (rejected, cancelled by us, or timed out): the block is free again.

        A block whose request timed out can thus be re-requested from another peer; if the slow
        peer still delivers it, ``block_received`` accepts it as long as it is still missing.
        """
        j = block.begin // BLOCK_SIZE
        mine = self._requests.get(peer_key)
        if mine is None or (block.index, j) not in mine:
            return
        del mine[(block.index, j)]
        self._unrequest(peer_key, block.index, j)

    request_timed_out = cancel_request

    def pick(self, peer_key: PeerKey, peer_has: Container[int] | None = None, n: int = 1,
             now: float = 0.0, fast: bool = True, block_seconds: float = 0.0) -> list[Block]:
        """Up to ``n`` blocks to request from the peer, now recorded as requested by it at ``now``.

        ``peer_has`` defaults to what the picker was told with ``peer_bitfield``/``peer_have``.
        ``fast``: whether the peer may take deadline pieces (see ``set_deadlines``).
        ``block_seconds``: how long the peer takes per block at its measured rate (0: unknown);
        in endgame it may then take, beyond ``endgame_batch``, the blocks it would deliver
        sooner than the peers they are asked of (``policy/picker_endgame.py``).
        """
        has: Container[int] = self.peer_has(peer_key) if peer_has is None else peer_has
        out: list[Block] = []
        if n <= 0 or has is NOTHING:
            return out
        mine = self._requests.setdefault(peer_key, {})
        drained = not mine  # nothing of this peer's own in flight: it may take endgame duplicates
        # A small explicit set (e.g. BEP 6 allowed-fast pieces) or a peer with few pieces: walk
        # those pieces rather than the buckets.
        few: AbstractSet[int] | None = self._peers.few(peer_key) if peer_has is None else None
        if isinstance(peer_has, AbstractSet) and len(peer_has) <= max(self.sparse_peer_limit, 1):
            few = peer_has
        if self._deadlines:
            if fast:
                self._pick_deadlines(peer_key, has, mine, n, out, now)
                if len(out) >= n:
                    return out
            else:  # a slow peer keeps off the deadline pieces
                has = Without(has, self._deadlines)
                if few is not None:
                    few = {i for i in few if i not in self._deadlines}
        prio = self._prio
        for i in tuple(self._open):
            if prio[i] > 0 and i in has:
                self._take_free(i, peer_key, mine, n, out, now)
                if len(out) >= n:
                    return out
        bucket_zero = self._peers.seeds > 0 or not self._peers.knows(peer_key)
        while len(out) < n and self._fresh_wanted:
            fresh = self._next_fresh(has, bucket_zero) if few is None else self._next_fresh_among(few)
            if fresh is None:
                break
            if self._extent > 1 and not self.sequential and len(self._have) >= self.random_first_pieces:
                fresh = self._affine(fresh, has)
            self._bucket_remove(fresh)
            self._state[fresh] = _DOWNLOADING
            self._downloads[fresh] = Download(self._torrent.piece_size(fresh))
            self._generation += 1
            self._open[fresh] = None
            self._take_free(fresh, peer_key, mine, n, out, now)
        if len(out) < n and drained and self.in_endgame():
            self._endgame.pick(peer_key, has, mine, n, out, now, block_seconds, generation=self._generation,
                               remember=peer_has is None)
        return out

    def _pick_deadlines(self, peer_key: PeerKey, has: Container[int],
                        mine: dict[tuple[int, int], float], n: int, out: list[Block], now: float) -> None:
        state = self._state
        for i in self._deadlines:
            if i not in has or not self._prio[i]:
                continue
            st = state[i]
            if st == _FRESH:
                self._bucket_remove(i)
                state[i] = _DOWNLOADING
                self._downloads[i] = Download(self._torrent.piece_size(i))
                self._generation += 1
                self._open[i] = None
                self._take_free(i, peer_key, mine, n, out, now)
            elif st == _DOWNLOADING:
                if i in self._open:
                    self._take_free(i, peer_key, mine, n, out, now)
                elif i in self._waiting:
                    self._duplicate_late(i, peer_key, mine, n, out, now)
            if len(out) >= n:
                return

    def _duplicate_late(self, i: int, peer_key: PeerKey, mine: dict[tuple[int, int], float], n: int,
                        out: list[Block], now: float) -> None:
        """Ask ``peer_key`` too for the blocks of piece ``i`` (a reader waits on it) whose only
        request is older than ``late_after``."""
        d = self._downloads[i]
        cutoff = now - self._late_after
        for j in range(d.nblocks):
            reqs = d.requesters[j]
            if d.received[j] or len(reqs) != 1 or reqs[0] == peer_key:
                continue
            if self._requests[reqs[0]].get((i, j), now) <= cutoff:
                reqs.append(peer_key)
                mine[(i, j)] = now
                out.append(make_block(i, j * BLOCK_SIZE, d.block_length(j)))
                if len(out) >= n:
                    return

    def pick_run(self, peer_key: PeerKey, max_pieces: int, now: float = 0.0,
                 peer_has: Container[int] | None = None, *, lowest: bool = False) -> list[int]:
        """Up to ``max_pieces`` consecutive fresh pieces (none of their blocks received or asked
        for) for a source that fetches whole pieces (a BEP 19 web seed): the policy's next fresh
        piece, then the wanted fresh pieces right after it; with none fresh, one piece begun
        (``_begun_piece``). Every block of them is now recorded
        as requested by ``peer_key`` at ``now`` (so peers take other pieces); they arrive through
        ``block_received`` like any block, and ``release_requests`` gives back what did not.
        ``peer_has`` narrows what the source has (as in ``pick``). ``lowest``: start at the
        lowest fresh wanted piece instead (a server that sends whole files for ranges: each run
        costs the file up to the run's end, so runs go front to back).
        """
        has = self.peer_has(peer_key) if peer_has is None else peer_has
        if max_pieces <= 0 or has is NOTHING:
            return []
        first: int | None = None
        if self._fresh_wanted and lowest:
            first = next((i for i in range(self.num_pieces)
                          if self._state[i] == _FRESH and self._prio[i] > 0 and i in has), None)
        elif self._fresh_wanted:
            first = self._next_fresh(has, self._peers.seeds > 0 or not self._peers.knows(peer_key))
        if first is None:
            return self._begun_piece(peer_key, has, now)
        mine = self._requests.setdefault(peer_key, {})
        out: list[Block] = []
        run: list[int] = []
        i = first
        state, prio = self._state, self._prio
        while (len(run) < max_pieces and i < self.num_pieces and state[i] == _FRESH and prio[i] > 0
               and i in has):
            self._bucket_remove(i)
            state[i] = _DOWNLOADING
            d = self._downloads[i] = Download(self._torrent.piece_size(i))
            self._open[i] = None
            self._take_free(i, peer_key, mine, len(out) + d.nblocks, out, now)
            run.append(i)
            i += 1
        self._generation += 1
        return run

    def _begun_piece(self, peer_key: PeerKey, has: Container[int], now: float) -> list[int]:
        """No fresh piece is left for a whole-piece source: ``[i]``, a piece already begun that it
        can finish, every block of it still missing now asked of it too; else []. A piece with
        free blocks first (asked of nobody: the peer that sent the rest left, or its requests
        timed out), else the one whose oldest request is the oldest (a slow peer's: endgame, as
        the peers' duplicates; the first to deliver a block wins, the others get CANCEL). Never
        one with a block already asked of it. Without this a web seed never finished a piece a
        peer had begun: a peer trickling a block held the download's end."""
        mine = self._requests.setdefault(peer_key, {})
        best: int | None = None
        best_asked = math.inf  # (the oldest request of ``best``'s missing blocks)
        for i, d in self._downloads.items():
            if not self._prio[i] or i not in has:
                continue
            missing = [j for j in range(d.nblocks) if not d.received[j]]
            if not missing or any((i, j) in mine for j in missing):
                continue
            if d.free:
                best = i
                break
            if all(len(d.requesters[j]) >= self.endgame_max_requesters for j in missing):
                continue  # (asked of as many as endgame asks a block of: other web seeds, peers)
            oldest = min(self._requests[p][(i, j)] for j in missing for p in d.requesters[j])
            if oldest < best_asked:
                best, best_asked = i, oldest
        if best is None:
            return []
        d = self._downloads[best]
        for j in range(d.nblocks):
            if d.received[j]:
                continue
            if not d.requesters[j]:
                d.free -= 1
            d.requesters[j].append(peer_key)
            mine[(best, j)] = now
        d.hint = d.nblocks
        self._open.pop(best, None)
        self._generation += 1
        return [best]

    def _take_free(
        self, i: int, peer_key: PeerKey, mine: dict[tuple[int, int], float], n: int, out: list[Block],
        now: float,
    ) -> None:
        d = self._downloads[i]
        j = d.hint
        received, requesters = d.received, d.requesters
        while len(out) < n and d.free:
            while received[j] or requesters[j]:
                j += 1
            requesters[j].append(peer_key)
            d.free -= 1
            mine[(i, j)] = now
            out.append(make_block(i, j * BLOCK_SIZE, d.block_length(j)))
            j += 1
        d.hint = j
        if not d.free:
            self._open.pop(i, None)

    def _next_fresh(self, has: Container[int], bucket_zero: bool) -> int | None:
        if self.sequential:
            return self._next_sequential(has)
        if len(self._have) < self.random_first_pieces:
            for _ in range(16):  # rejection sampling keeps this O(1) in the piece count
                i = int(self._rng.random() * self.num_pieces)
                if self._state[i] == _FRESH and self._prio[i] > 0 and i in has:
                    return i
        for p in range(MAX_PRIORITY, 0, -1):
            if not self._level_count[p]:
                continue
            level = self._buckets[p]
            for a in range(0 if bucket_zero else 1, len(level)):
                for i in level[a]:
                    if i in has:
                        return i
        return None

    def _affine(self, fresh: int, has: Container[int]) -> int:
        """Piece extent affinity: the first fresh piece ``has`` holds, of the extents begun
        lately (the latest first), that the policy ranks with ``fresh`` (the same priority and
        availability), else ``fresh``; its extent is the latest from now on. Each extent's scan
        starts at the lowest of its pieces that may still be fresh (``_make_fresh`` lowers it)."""
        k, state, prio, avail = self._extent, self._state, self._prio, self._avail
        p, a = prio[fresh], avail[fresh]
        recent = self._recent
        for e in reversed(recent):
            end = min(self.num_pieces, (e + 1) * k)
            i = first = recent[e]
            while i < end and state[i] != _FRESH:  # (taken since: the scan starts after them)
                i += 1
            if i != first:
                recent[e] = i
            found = next((j for j in range(i, end)
                          if state[j] == _FRESH and prio[j] == p and avail[j] == a and j in has), None)
            if found is not None:
                fresh = found
                break
        e = fresh // k
        start = recent.pop(e, e * k)
        recent[e] = start  # (the latest)
        for old in [x for x in recent if recent[x] >= min(self.num_pieces, (x + 1) * k)]:
            del recent[old]  # (no fresh piece left in it)
        while len(recent) > RECENT_EXTENTS:
            del recent[next(iter(recent))]
        return fresh

    def _next_fresh_among(self, few: AbstractSet[int]) -> int | None:
        """The policy's choice among the pieces of ``few``: O(len(few))."""
        state, prio, avail, pos = self._state, self._prio, self._avail, self._pos
        candidates = [i for i in few if 0 <= i < self.num_pieces and state[i] == _FRESH and prio[i] > 0]
        if not candidates:
            return None
        if self.sequential:
            return min(candidates)
        if len(self._have) < self.random_first_pieces:
            return candidates[int(self._rng.random() * len(candidates))]
        # Same order as the bucket walk: priority, then availability, then the random slot.
        return min(candidates, key=lambda i: (-prio[i], avail[i], pos[i]))

    def _next_sequential(self, has: Container[int]) -> int | None:
        state, prio = self._state, self._prio
        c = self._seq_cursor
        while c < self.num_pieces and not (state[c] == _FRESH and prio[c] > 0):
            c += 1
        self._seq_cursor = c
        for i in range(c, self.num_pieces):
            if state[i] == _FRESH and prio[i] > 0 and i in has:
                return i
        return None

    # -- arrivals and verification -------------------------------------------------------------

    def block_received(self, peer_key: PeerKey, block: Block) -> BlockReceived:
        """A PIECE message arrived. Not accepted: not a block we are missing (drop the data)."""
        return self.received(peer_key, block.index, block.begin, block.length)

    def received(self, peer_key: PeerKey, index: int, begin: int, length: int) -> BlockReceived:
        """``block_received`` without a ``Block`` (the per-block hot path: no allocation when
        no other peer was asked for the same block)."""
        d = self._downloads.get(index)
        j, rem = divmod(begin, BLOCK_SIZE)
        if d is None or rem or not 0 <= j < d.nblocks or \
                length != (BLOCK_SIZE if j < d.nblocks - 1 else d.size - j * BLOCK_SIZE):
            return NOT_ACCEPTED
        reqs = d.requesters[j]
        if d.received[j]:
            if peer_key in reqs:  # an endgame duplicate that crossed our CANCEL
                reqs.remove(peer_key)
                self._requests[peer_key].pop((index, j), None)
            return NOT_ACCEPTED
        if not reqs:  # unrequested or its request timed out: still a block we need
            d.free -= 1
            if not d.free:
                self._open.pop(index, None)
        d.received[j] = 1
        d.nreceived += 1
        d.sources[j] = peer_key
        complete = d.nreceived == d.nblocks
        if len(reqs) == 1 and reqs[0] == peer_key:  # the usual case: asked of this peer alone
            del self._requests[peer_key][(index, j)]
            reqs.clear()
            return COMPLETE if complete else ACCEPTED
        block = Block(index, begin, length)
        cancels = tuple((p, block) for p in reqs if p != peer_key)
        for p in reqs:
            self._requests[p].pop((index, j), None)
        reqs.clear()
        return BlockReceived(True, complete, cancels)

    def piece_passed(self, index: int) -> None:
        """Piece ``index`` was verified (hash ok, or found on disk by a recheck)."""
        self._check_index(index)
        state = self._state[index]
        if state == _HAVE:
            return
        if state == _DOWNLOADING:
            self._drop_download(index)
        elif self._in_bucket(index):
            self._bucket_remove(index)
        self._state[index] = _HAVE
        self._have.add(index)
        if self._deadlines:
            self._deadlines.pop(index, None)
        if index in self._needed:
            self._needed.discard(index)
            self._left -= self._payload[index]

    def piece_lost(self, index: int) -> None:
        """Piece ``index`` was had and is not any more (its file changed or is gone, and it no
        longer verifies): wanted again, as if never had."""
        self._check_index(index)
        if self._state[index] != _HAVE:
            return
        self._have.discard(index)
        if self._prio[index] > 0:
            self._needed.add(index)
            self._left += self._payload[index]
        self._make_fresh(index)

    def piece_failed(self, index: int) -> set[PeerKey]:
        """Piece ``index`` failed its hash: every block goes back to the pool.

        Returns the peers that sent blocks of it (candidates for distrust / ban).
        """
        self._check_index(index)
        if self._state[index] != _DOWNLOADING:
            return set()
        d = self._downloads[index]
        senders = {s for s in d.sources if s is not None}
        self._drop_download(index)
        self._make_fresh(index)
        return senders

    def _drop_download(self, index: int) -> None:
        d = self._downloads.pop(index)
        self._open.pop(index, None)
        for j, reqs in enumerate(d.requesters):
            for p in reqs:
                self._requests[p].pop((index, j), None)

    def _check_index(self, index: int) -> None:
        if not 0 <= index < self.num_pieces:
            raise IndexError(f"piece index {index} out of range 0..{self.num_pieces - 1}")


def _check_priority(p: int) -> int:
    if not SKIP <= p <= MAX_PRIORITY:
        raise ValueError(f"priority {p} outside {SKIP}..{MAX_PRIORITY}")
    return p
