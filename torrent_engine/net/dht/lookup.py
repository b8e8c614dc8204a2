"""The iterative Kademlia lookup of BEP 5 as a sans-I/O state machine.

The caller asks :meth:`Lookup.next_queries` whom to query (at most ``alpha`` in flight,
closest first), reports each answer or failure, and stops when :attr:`Lookup.done`: the ``k``
closest nodes not known to have failed have all answered (or there is nobody left to ask).
Hop depth and message counts are kept for measurement.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .krpc import Address, NodeInfo
from .routing import K, id_to_int

__all__ = ["ALPHA", "Candidate", "Lookup"]

ALPHA = 3  # BEP 5 / Kademlia: parallel queries per lookup
MAX_CANDIDATES = 200  # bound on the candidate list of one lookup
MAX_QUERIES = 300  # bound on the queries one lookup may send
MAX_URGENT = 32  # bound on the contacts one lookup queries at once beyond alpha (routers, a cold table)

_NEW, _IN_FLIGHT, _ANSWERED, _FAILED, _SLOW = range(5)
_WAITING = (_IN_FLIGHT, _SLOW)


@dataclass(slots=True)
class Candidate:
    """One node of a lookup: its distance to the target, how it was found, and its query state."""

    info: NodeInfo
    distance: int
    depth: int  # 0 = from our own table or the bootstrap list
    state: int = _NEW
    token: bytes | None = None
    urgent: bool = False  # queried in the first round, whatever its rank (see Lookup.add)

    @property
    def answered(self) -> bool:
        """Whether the node answered."""
        return self.state == _ANSWERED


class Lookup:
    """An iterative lookup of ``target`` (BEP 5), sans-I/O: ask ``next_queries``, report answers with
    ``on_response``/``on_slow``/``on_failure`` until ``done``."""

    def __init__(
        self, target: bytes, *, k: int = K, alpha: int = ALPHA, exclude_id: bytes | None = None
    ) -> None:
        self.target = target
        self._t = id_to_int(target)
        self.k = k
        self.alpha = alpha
        self._exclude_id = exclude_id
        self._by_addr: dict[Address, Candidate] = {}
        self._sorted: list[Candidate] = []
        self._dirty = False
        self.in_flight = 0
        self.queries_sent = 0
        self.responses = 0
        self.failures = 0

    def add(self, nodes: Iterable[NodeInfo], depth: int = 0, *, unknown_id: bool = False,
            urgent: bool = False) -> None:
        """Add contacts. ``unknown_id`` (bootstrap addresses): rank them as far as possible.
        ``urgent`` (at most ``MAX_URGENT`` in all): query them at once, beside the ``alpha``
        closest, so that routers are asked while the nodes of a saved table, which may all be
        gone, time out together rather than α at a time."""
        budget = MAX_URGENT - sum(1 for c in self._sorted if c.urgent) if urgent else 0
        for n in nodes:
            if n.address in self._by_addr or (self._exclude_id is not None and n.node_id == self._exclude_id):
                continue
            dist = (1 << 160) - 1 if unknown_id else id_to_int(n.node_id) ^ self._t
            c = Candidate(n, dist, depth, urgent=budget > 0)
            budget -= 1
            self._by_addr[n.address] = c
            self._sorted.append(c)
            self._dirty = True
        if self._dirty:
            self._sorted.sort(key=lambda c: c.distance)
            self._dirty = False
            if len(self._sorted) > MAX_CANDIDATES:
                # Forget the farthest that nobody is waiting on.
                keep = [c for c in self._sorted[MAX_CANDIDATES:] if c.state in _WAITING]
                for c in self._sorted[MAX_CANDIDATES:]:
                    if c.state not in _WAITING:
                        del self._by_addr[c.info.address]
                self._sorted = self._sorted[:MAX_CANDIDATES] + keep

    def _window(self) -> list[Candidate]:
        """The k closest candidates that have not failed."""
        out = []
        for c in self._sorted:
            if c.state != _FAILED:
                out.append(c)
                if len(out) == self.k:
                    break
        return out

    def next_queries(self) -> list[NodeInfo]:
        """Contacts to query now; they are marked in flight: urgent ones first (beyond ``alpha``),
        then the closest."""
        out: list[NodeInfo] = []
        if self.queries_sent >= MAX_QUERIES:
            return out
        for c in self._sorted:
            if c.urgent and c.state == _NEW:
                c.state = _IN_FLIGHT
                self.in_flight += 1
                self.queries_sent += 1
                out.append(c.info)
        busy = sum(1 for c in self._sorted if c.state == _IN_FLIGHT and not c.urgent)
        for c in self._window():
            if busy >= self.alpha or self.queries_sent >= MAX_QUERIES:
                break
            if c.state == _NEW:
                c.state = _IN_FLIGHT
                self.in_flight += 1
                busy += 1
                self.queries_sent += 1
                out.append(c.info)
        return out

    def on_response(
        self, address: Address, nodes: Iterable[NodeInfo] = (), *, token: bytes | None = None
    ) -> None:
        """``address`` answered with ``nodes`` (and a ``token``, for a later announce/put)."""
        c = self._by_addr.get(address)
        if c is None or c.state not in _WAITING:
            return
        if c.state == _IN_FLIGHT:
            self.in_flight -= 1
        c.state = _ANSWERED
        c.token = token
        self.responses += 1
        self.add(nodes, c.depth + 1)

    def on_slow(self, address: Address) -> None:
        """A query is overdue: free its slot for another query, but still accept its answer."""
        c = self._by_addr.get(address)
        if c is not None and c.state == _IN_FLIGHT:
            c.state = _SLOW
            self.in_flight -= 1

    def on_failure(self, address: Address) -> None:
        """The query to ``address`` failed (timed out or refused)."""
        c = self._by_addr.get(address)
        if c is None or c.state not in _WAITING:
            return
        if c.state == _IN_FLIGHT:
            self.in_flight -= 1
        c.state = _FAILED
        self.failures += 1

    @property
    def done(self) -> bool:
        """Whether the lookup is over: the k closest answered, the query budget is spent, or nobody is left
        to ask."""
        window = self._window()
        if window and all(c.state == _ANSWERED for c in window):
            return True
        waiting = self.in_flight > 0 or any(c.state == _SLOW for c in window)
        if self.queries_sent >= MAX_QUERIES and not waiting:
            return True
        return not waiting and not any(c.state == _NEW for c in window)

    def results(self) -> list[Candidate]:
        """The k closest candidates that answered, closest first."""
        return [c for c in self._sorted if c.state == _ANSWERED][: self.k]

    @property
    def hops(self) -> int:
        """Hop count of the lookup: the deepest of the k closest answering nodes, plus one."""
        res = self.results()
        return max((c.depth for c in res), default=-1) + 1
