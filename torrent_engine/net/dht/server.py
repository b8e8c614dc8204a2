"""Answers to incoming KRPC queries (sans-I/O): the responding half of a DHT node.

``QueryHandler.handle(query, address, now)`` returns the Response or Error to send back. It
reads and writes the routing table, the token manager, the peer store (BEP 5/33/51) and the
BEP 44 item store it is handed; time and randomness are handed in.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Callable
from typing import Unpack

from . import krpc
from .bep44 import ItemStore
from .krpc import Address
from .peer_store import MAX_VALUES, PeerStore
from .routing import RoutingTable
from .tokens import TokenManager

__all__ = ["QueryHandler"]

SAMPLE_LIMIT = 40  # BEP 51: samples per reply, keeps it well inside one packet
SAMPLE_INTERVAL = 60  # BEP 51: seconds before asking us again is useful


def is_v6(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).version == 6
    except ValueError:
        return False


class QueryHandler:
    """Answers incoming KRPC queries (sans-I/O) from the routing table, tokens, peer and item stores."""

    def __init__(
        self,
        *,
        table: Callable[[], RoutingTable],
        tokens: TokenManager,
        peers: PeerStore,
        items: ItemStore,
        rng: random.Random,
        version: bytes | None = None,
    ) -> None:
        self._table = table
        self.tokens = tokens
        self.peers = peers
        self.items = items
        self.rng = rng
        self.version = version

    @property
    def node_id(self) -> bytes:
        """Our node id (from the current routing table)."""
        return self._table().own_id

    def _nodes(self, target: bytes, want: tuple[bytes, ...], host: str) -> krpc.ResponseFields:
        """``nodes`` / ``nodes6`` close to target; BEP 32: by default the requester's family."""
        if not want:
            want = (b"n6",) if is_v6(host) else (b"n4",)
        table = self._table()
        closest = table.closest(target, table.k * 4)
        out: krpc.ResponseFields = {}
        if b"n4" in want:
            out["nodes"] = tuple([n for n in closest if not is_v6(n.host)][: table.k])
        if b"n6" in want:
            out["nodes6"] = tuple([n for n in closest if is_v6(n.host)][: table.k])
        return out

    def _resp(self, q: krpc.Query, address: Address, **fields: Unpack[krpc.ResponseFields]) -> krpc.Response:
        return krpc.Response(tid=q.tid, node_id=self.node_id, version=self.version, ip=address, **fields)

    def _error(self, q: krpc.Query, code: int, message: str) -> krpc.Error:
        return krpc.Error(tid=q.tid, code=code, message=message, version=self.version)

    def handle(self, q: krpc.Query, address: Address, now: float) -> krpc.Message:
        """The answer (response or error) to query ``q`` from ``address`` at ``now``."""
        host, port = address
        if isinstance(q, krpc.Ping):
            return self._resp(q, address)
        if isinstance(q, krpc.FindNode):
            return self._resp(q, address, **self._nodes(q.target, q.want, host))
        if isinstance(q, krpc.GetPeers):
            token = self.tokens.token_for(host, now) if self.peers.can_store(q.info_hash) else None
            limit = MAX_VALUES if not is_v6(host) else MAX_VALUES // 2
            if q.scrape:
                limit //= 2  # BEP 33: leave room for the two 256-byte filters
            values = self.peers.get(q.info_hash, now, self.rng, noseed=q.noseed, limit=limit)
            blooms = self.peers.blooms(q.info_hash, now) if q.scrape else None
            fields = self._nodes(q.info_hash, q.want, host) if not values or q.want else krpc.ResponseFields()
            fields.update({"values": tuple(values), "token": token, "bf_seeds": blooms[0] if blooms else None,
                           "bf_peers": blooms[1] if blooms else None})
            return self._resp(q, address, **fields)
        if isinstance(q, krpc.AnnouncePeer):
            if not self.tokens.check(q.token, host, now):
                return self._error(q, krpc.ERROR_PROTOCOL, "bad token")
            peer_port = port if q.implied_port else q.port
            if not self.peers.add(q.info_hash, host, peer_port, now, seed=q.seed):
                return self._error(q, krpc.ERROR_SERVER, "peer store full for this info-hash")
            return self._resp(q, address)
        if isinstance(q, krpc.SampleInfohashes):
            samples = self.peers.sample(self.rng, SAMPLE_LIMIT)
            fields = self._nodes(q.target, q.want, host)
            fields.update({"samples": tuple(samples), "num": len(self.peers), "interval": SAMPLE_INTERVAL})
            return self._resp(q, address, **fields)
        if isinstance(q, krpc.GetItem):
            item = self.items.get(q.target, now)
            fields = self._nodes(q.target, q.want, host)
            fields["token"] = self.tokens.token_for(host, now)
            if item is not None:
                if item.key is None:
                    fields["value"] = item.value
                else:
                    fields["seq"] = item.seq
                    if q.seq is None or (item.seq is not None and item.seq > q.seq):
                        fields.update({"value": item.value, "key": item.key, "signature": item.signature})
            return self._resp(q, address, **fields)
        if isinstance(q, krpc.PutItem):
            if not self.tokens.check(q.token, host, now):
                return self._error(q, krpc.ERROR_PROTOCOL, "bad token")
            _, err = self.items.put(q, now)
            if err is not None:
                return self._error(q, *err)
            return self._resp(q, address)
        if isinstance(q, krpc.UnknownQuery) and q.target is not None:
            # BEP 5 forward compatibility: answer as find_node would.
            return self._resp(q, address, **self._nodes(q.target, (), host))
        return self._error(q, krpc.ERROR_METHOD_UNKNOWN, "method unknown")
