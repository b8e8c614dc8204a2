"""The picker's endgame (``picker.py``), sans-I/O: once no free block is left anywhere, which
blocks already asked of other peers a drained peer is asked for too, and which peers did not
find any (not scanned again until something that could give them a block changes)."""

from __future__ import annotations

import heapq
from collections.abc import Container, Iterator

from ..net.peer.messages import BLOCK_SIZE
from .picker_parts import Block, Download, PeerKey

__all__ = ["Endgame"]


class Endgame:
    """Duplicates for drained peers, at most ``max_requesters`` requests per block, ``batch`` at a
    time (beyond it, with a known rate, the blocks the peer would deliver sooner). It reads the
    picker's requests in flight, pieces being downloaded and priorities, and adds to them only
    the requests it makes."""

    def __init__(self, requests: dict[PeerKey, dict[tuple[int, int], float]], downloads: dict[int, Download],
                 prio: bytearray, *, max_requesters: int = 3, batch: int = 4, margin: float = 0.5) -> None:
        self._requests = requests
        self._downloads = downloads
        self._prio = prio
        self.max_requesters = max(2, max_requesters)
        self.batch = max(1, batch)  # duplicates a drained peer takes at a time
        self.margin = margin  # a round trip's worth, beyond what its rate needs
        # a peer that found nothing to duplicate, with the picker's generation then (see ``pick``)
        self._dry: dict[PeerKey, int] = {}

    def forget(self, peer_key: PeerKey) -> None:
        """The peer is gone."""
        self._dry.pop(peer_key, None)

    def pick(self, peer_key: PeerKey, has: Container[int], mine: dict[tuple[int, int], float], n: int,
             out: list[Block], now: float, block_seconds: float, *, generation: int, remember: bool) -> None:
        """Up to ``n`` blocks in ``out`` (which holds the peer's picks so far), each recorded in
        ``mine`` and among its block's requesters. ``generation``: the picker's count of changes
        that could give a peer a block; ``remember``: a peer that finds nothing is skipped until
        it changes (not for an explicit piece set, which may differ from call to call)."""
        if remember and self._dry.get(peer_key) == generation:
            return
        limit = min(n, len(out) + self.batch)
        self._duplicates(peer_key, has, mine, limit, n, out, now, block_seconds)
        if len(out) < limit and remember:
            self._dry[peer_key] = generation

    def _duplicates(
        self, peer_key: PeerKey, has: Container[int], mine: dict[tuple[int, int], float], limit: int,
        n: int, out: list[Block], now: float, block_seconds: float,
    ) -> None:
        """Duplicates for a drained peer: fewest requesters first, so every last block gets a
        second source before any a third; among those, the blocks due last first.

        A block is due at the time it was asked for plus its requester's queue delay (the age
        of that peer's oldest request in flight: what a block waits there from request to
        arrival). With ``block_seconds`` known, the peer takes (up to ``n``) every block due
        later than it would deliver it itself (its k-th after k x ``block_seconds`` and
        ``margin`` for the round trip): the back of slow peers' queues goes to a fast
        peer that ran dry, the CANCEL reaches the slow peer long before it would have sent it,
        and the fast links do not idle through the slow ones' last seconds. Otherwise (or
        when the block due last is not that late) ``limit`` blocks, as libtorrent's endgame
        does. Each peer's requests are kept in the order they were made, so the blocks due
        last are walked from the back of each queue, merged by due time: the cost is the
        blocks looked at, not every block in flight."""
        requests, downloads, prio = self._requests, self._downloads, self._prio
        delay: dict[PeerKey, float] = {}
        for p, asked in requests.items():
            if p != peer_key and asked:
                delay[p] = now - next(iter(asked.values()))
        for k in range(1, self.max_requesters):
            # (-due, peer order, block, the rest of that peer's queue from the back, its delay)
            heap: list[tuple[float, int, tuple[int, int], Iterator[tuple[tuple[int, int], float]],
                             float]] = []
            for order, (p, late) in enumerate(delay.items()):
                queue = reversed(requests[p].items())
                first = next(queue, None)
                if first is not None:
                    heap.append((-(first[1] + late), order, first[0], queue, late))
            heapq.heapify(heap)
            stealing: bool | None = None
            seen: set[tuple[int, int]] = set()
            while heap:
                neg_due, order, key, queue, late = heap[0]
                following = next(queue, None)
                if following is None:
                    heapq.heappop(heap)
                else:
                    heapq.heapreplace(heap, (-(following[1] + late), order, following[0], queue, late))
                i, j = key
                if key in seen or prio[i] == 0 or i not in has:
                    continue
                seen.add(key)
                reqs = downloads[i].requesters[j]
                if len(reqs) != k or peer_key in reqs:
                    continue
                due = -neg_due if k == 1 else min(requests[p][key] + delay[p] for p in reqs)
                soon_enough = block_seconds > 0 and \
                    due - now > (len(out) + 1) * block_seconds + self.margin
                if stealing is None:
                    stealing = soon_enough
                if stealing and not soon_enough:
                    return  # the rest is due sooner than this peer would bring it
                if not stealing and len(out) >= limit:
                    return
                reqs.append(peer_key)
                mine[key] = now
                out.append(Block(i, j * BLOCK_SIZE, downloads[i].block_length(j)))
                if len(out) >= n:
                    return
            if stealing:
                return
