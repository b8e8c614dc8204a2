"""The Kademlia routing table of BEP 5: k-buckets over the 160-bit id space (sans-I/O).

Only the bucket whose range holds our own id is ever split. Nodes are good, questionable or
bad by the BEP 5 rules (15 minutes); the clock is always handed in (``now`` in seconds).
A full bucket keeps a replacement cache; questionable nodes in a full bucket are returned to
the caller to ping, and a node that fails repeatedly is replaced.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum

from .bep42 import is_valid_node_id
from .krpc import NodeInfo

__all__ = [
    "ID_BITS",
    "K",
    "Bucket",
    "NodeState",
    "RoutingNode",
    "RoutingTable",
    "distance",
    "id_to_int",
    "int_to_id",
]

K = 8  # BEP 5: bucket size
ID_BITS = 160  # BEP 5
GOOD_INTERVAL = 15 * 60  # BEP 5: a node is good if active within the last 15 minutes
BUCKET_REFRESH = 15 * 60  # BEP 5: refresh a bucket not changed for 15 minutes
MAX_FAILS = 2  # failures in a row after which a node is bad
REPLACEMENTS = K  # size of each bucket's replacement cache


def id_to_int(node_id: bytes) -> int:
    """A 20-byte id as an integer (big-endian)."""
    return int.from_bytes(node_id, "big")


def int_to_id(value: int) -> bytes:
    """An integer as a 20-byte id (big-endian)."""
    return value.to_bytes(20, "big")


def distance(a: bytes, b: bytes) -> int:
    """XOR metric of BEP 5."""
    return id_to_int(a) ^ id_to_int(b)


class NodeState(Enum):
    """BEP 5's node states: good (answered lately), questionable, bad (failed too often)."""

    GOOD = "good"
    QUESTIONABLE = "questionable"
    BAD = "bad"


@dataclass(slots=True)
class RoutingNode:
    """A node of the routing table: id, address, when it last answered or queried, and failures."""

    node_id: bytes
    host: str
    port: int
    last_response: float | None = None  # when it last answered one of our queries
    last_query: float | None = None  # when it last sent us a query
    fails: int = 0  # queries in a row that it did not answer

    @property
    def info(self) -> NodeInfo:
        """The node's id and address."""
        return NodeInfo(self.node_id, self.host, self.port)

    def state(self, now: float) -> NodeState:
        """The node's BEP 5 state at ``now``."""
        if self.fails >= MAX_FAILS:
            return NodeState.BAD
        if self.last_response is not None:
            if now - self.last_response < GOOD_INTERVAL:
                return NodeState.GOOD
            if self.last_query is not None and now - self.last_query < GOOD_INTERVAL:
                return NodeState.GOOD
        return NodeState.QUESTIONABLE


@dataclass(slots=True)
class Bucket:
    """A k-bucket: the ids in ``[low, high)``, its nodes and replacement candidates."""

    low: int  # inclusive
    high: int  # exclusive
    last_changed: float
    nodes: dict[bytes, RoutingNode] = field(default_factory=dict)
    replacements: dict[bytes, RoutingNode] = field(default_factory=dict)

    def covers(self, value: int) -> bool:
        """Whether the id ``value`` falls in the bucket."""
        return self.low <= value < self.high

    def random_id(self, rng: random.Random) -> bytes:
        """A random id in the bucket's range (for a refresh lookup)."""
        return int_to_id(rng.randrange(self.low, self.high))


class RoutingTable:
    """k-buckets around ``own_id``. ``enforce_bep42`` rejects ids not valid for their IP."""

    def __init__(self, own_id: bytes, *, now: float = 0.0, k: int = K, enforce_bep42: bool = True) -> None:
        if len(own_id) != 20:
            raise ValueError("node id must be 20 bytes")
        self.own_id = own_id
        self._own = id_to_int(own_id)
        self.k = k
        self.enforce_bep42 = enforce_bep42
        self.buckets: list[Bucket] = [Bucket(0, 1 << ID_BITS, now)]
        self._lows: list[int] = [0]
        self.rejected_bep42 = 0

    # ------------------------------------------------------------ lookup
    def __len__(self) -> int:
        return sum(len(b.nodes) for b in self.buckets)

    def __iter__(self) -> Iterator[RoutingNode]:
        for b in self.buckets:
            yield from b.nodes.values()

    def bucket_for(self, node_id: bytes) -> Bucket:
        """The bucket whose range holds ``node_id``."""
        i = bisect.bisect_right(self._lows, id_to_int(node_id)) - 1
        return self.buckets[i]

    def get(self, node_id: bytes) -> RoutingNode | None:
        """The table's node of ``node_id``, or None."""
        return self.bucket_for(node_id).nodes.get(node_id)

    def closest(self, target: bytes, count: int | None = None, *, now: float | None = None) -> list[NodeInfo]:
        """The ``count`` (default k) nodes closest to ``target``, bad nodes excluded."""
        t = id_to_int(target)
        nodes = [
            n for n in self if n.fails < MAX_FAILS and (now is None or n.state(now) is not NodeState.BAD)
        ]
        nodes.sort(key=lambda n: id_to_int(n.node_id) ^ t)
        return [n.info for n in nodes[: count or self.k]]

    # ------------------------------------------------------------ updates
    def acceptable(self, node_id: bytes, host: str) -> bool:
        """Whether ``node_id`` at ``host`` may enter the table (20 bytes, not ours, valid per BEP 42 when
        enforced)."""
        if len(node_id) != 20 or node_id == self.own_id:
            return False
        if self.enforce_bep42 and not is_valid_node_id(node_id, host):
            self.rejected_bep42 += 1
            return False
        return True

    def has_room_for(self, node_id: bytes, host: str, now: float) -> bool:
        """Would ``node_id`` get a place (free slot, our bucket can split, or a bad node to
        replace)? The node uses this to ping a stranger that queried us before adding it."""
        if len(node_id) != 20 or node_id == self.own_id:
            return False
        if self.enforce_bep42 and not is_valid_node_id(node_id, host):
            return False
        bucket = self.bucket_for(node_id)
        if node_id in bucket.nodes:
            return False
        if len(bucket.nodes) < self.k or (bucket.covers(self._own) and bucket.high - bucket.low > self.k):
            return True
        return any(n.state(now) is NodeState.BAD for n in bucket.nodes.values())

    def heard_from(
        self, node_id: bytes, host: str, port: int, now: float, *, responded: bool
    ) -> list[RoutingNode]:
        """Record that ``node_id`` at (host, port) answered us (``responded``) or queried us.

        Adds it when there is room (splitting our own bucket as needed), replaces a bad node,
        or else puts it in the bucket's replacement cache. Returns the questionable nodes of a
        full bucket that the caller should ping (their answer or failure decides).
        """
        if not self.acceptable(node_id, host):
            return []
        bucket = self.bucket_for(node_id)
        node = bucket.nodes.get(node_id)
        if node is not None:
            if (node.host, node.port) != (host, port):
                # Same id from another address: keep the one we know (BEP 42 spirit: don't let
                # a third party take over a contact).
                return []
            if responded:
                node.last_response = now
                node.fails = 0
            else:
                node.last_query = now
            return []
        new = RoutingNode(node_id, host, port)
        if responded:
            new.last_response = now
        else:
            new.last_query = now
        while True:
            if len(bucket.nodes) < self.k:
                bucket.nodes[node_id] = new
                bucket.last_changed = now
                bucket.replacements.pop(node_id, None)
                return []
            for other in bucket.nodes.values():
                if other.state(now) is NodeState.BAD:
                    del bucket.nodes[other.node_id]
                    bucket.nodes[node_id] = new
                    bucket.last_changed = now
                    return []
            if bucket.covers(self._own) and bucket.high - bucket.low > self.k:
                self._split(bucket)
                bucket = self.bucket_for(node_id)
                continue
            break
        # Full bucket: remember the node as a replacement, ask for the questionable ones to be pinged.
        if responded:
            bucket.replacements.pop(node_id, None)
            bucket.replacements[node_id] = new
            while len(bucket.replacements) > REPLACEMENTS:
                del bucket.replacements[next(iter(bucket.replacements))]
        return [n for n in bucket.nodes.values() if n.state(now) is NodeState.QUESTIONABLE]

    def failed(self, node_id: bytes, now: float) -> None:
        """A query to ``node_id`` timed out. A bad node is replaced from the cache if possible."""
        bucket = self.bucket_for(node_id)
        node = bucket.nodes.get(node_id)
        if node is None:
            bucket.replacements.pop(node_id, None)
            return
        node.fails += 1
        if node.state(now) is NodeState.BAD and bucket.replacements:
            del bucket.nodes[node_id]
            _, repl = bucket.replacements.popitem()  # the most recently seen replacement
            bucket.nodes[repl.node_id] = repl
            bucket.last_changed = now

    def remove(self, node_id: bytes) -> None:
        """Drop ``node_id`` from the table and its bucket's replacements."""
        bucket = self.bucket_for(node_id)
        bucket.nodes.pop(node_id, None)
        bucket.replacements.pop(node_id, None)

    def _split(self, bucket: Bucket) -> None:
        mid = (bucket.low + bucket.high) // 2
        lower = Bucket(bucket.low, mid, bucket.last_changed)
        upper = Bucket(mid, bucket.high, bucket.last_changed)
        for source, attr in ((bucket.nodes, "nodes"), (bucket.replacements, "replacements")):
            for nid, node in source.items():
                half = lower if id_to_int(nid) < mid else upper
                getattr(half, attr)[nid] = node
        i = self.buckets.index(bucket)
        self.buckets[i : i + 1] = [lower, upper]
        self._lows[i : i + 1] = [lower.low, upper.low]

    # ------------------------------------------------------------ maintenance
    def questionable(self, now: float) -> list[RoutingNode]:
        """The nodes that are questionable at ``now`` (to be pinged)."""
        return [n for n in self if n.state(now) is NodeState.QUESTIONABLE]

    def refresh_targets(self, now: float, rng: random.Random) -> list[bytes]:
        """BEP 5: a random id in each bucket not changed for 15 minutes (then marked changed)."""
        out = []
        for b in self.buckets:
            if now - b.last_changed >= BUCKET_REFRESH:
                out.append(b.random_id(rng))
                b.last_changed = now
        return out

    def good_count(self, now: float) -> int:
        """How many nodes are good at ``now``."""
        return sum(1 for n in self if n.state(now) is NodeState.GOOD)

    def add_all(self, nodes: Iterable[NodeInfo], now: float) -> None:
        """Seed the table (e.g. from saved state) as questionable contacts."""
        for n in nodes:
            if not self.acceptable(n.node_id, n.host):
                continue
            bucket = self.bucket_for(n.node_id)
            if n.node_id in bucket.nodes:
                continue
            node = RoutingNode(n.node_id, n.host, n.port)
            while (
                len(bucket.nodes) >= self.k and bucket.covers(self._own) and bucket.high - bucket.low > self.k
            ):
                self._split(bucket)
                bucket = self.bucket_for(n.node_id)
            if len(bucket.nodes) < self.k:
                bucket.nodes[n.node_id] = node
            elif len(bucket.replacements) < REPLACEMENTS:
                bucket.replacements[n.node_id] = node
