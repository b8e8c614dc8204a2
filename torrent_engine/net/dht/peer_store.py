"""Peers announced to us (BEP 5 announce_peer), with expiry and caps, plus the BEP 33 scrape
bloom filters and the BEP 51 samples derived from them (sans-I/O: time and randomness handed in).
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import random
from dataclasses import dataclass

__all__ = ["PeerStore", "bloom_contains", "bloom_estimate", "bloom_insert", "new_bloom"]

PEER_TTL = 30 * 60  # announces are repeated every ~15-30 min by clients; keep 30 min
BLOOM_BYTES = 256  # BEP 33: m = 256 * 8 bits
BLOOM_BITS = BLOOM_BYTES * 8
BLOOM_K = 2  # BEP 33
MAX_VALUES = 50  # peers returned per get_peers (keeps the reply within one UDP packet)


def new_bloom() -> bytearray:
    """An empty BEP 33 bloom filter."""
    return bytearray(BLOOM_BYTES)


def _bloom_indexes(ip: str) -> tuple[int, int]:
    h = hashlib.sha1(ipaddress.ip_address(ip).packed).digest()
    return (h[0] | h[1] << 8) % BLOOM_BITS, (h[2] | h[3] << 8) % BLOOM_BITS


def bloom_insert(bloom: bytearray, ip: str) -> None:
    """BEP 33 insertIP: two 11-bit indexes from the SHA-1 of the raw address bytes."""
    for index in _bloom_indexes(ip):
        bloom[index // 8] |= 1 << (index % 8)


def bloom_contains(bloom: bytes | bytearray, ip: str) -> bool:
    """Whether the BEP 33 bloom filter may contain ``ip``."""
    return all(bloom[i // 8] & (1 << (i % 8)) for i in _bloom_indexes(ip))


def bloom_estimate(bloom: bytes | bytearray) -> float:
    """BEP 33 size estimate of the set a filter represents."""
    zeros = sum(8 - bin(b).count("1") for b in bloom)
    c = min(BLOOM_BITS - 1, zeros)
    return math.log(c / BLOOM_BITS) / (BLOOM_K * math.log(1 - 1 / BLOOM_BITS))


@dataclass(slots=True)
class _Entry:
    port: int
    seed: bool
    expires: float


class PeerStore:
    """info_hash -> {ip: (port, seed, expiry)}; BEP 33 stores unique IPs per info-hash."""

    def __init__(self, *, max_per_hash: int = 1000, max_hashes: int = 5000) -> None:
        self.max_per_hash = max_per_hash
        self.max_hashes = max_hashes
        self._data: dict[bytes, dict[str, _Entry]] = {}

    def __len__(self) -> int:
        return len(self._data)

    def can_store(self, info_hash: bytes) -> bool:
        """False when full for this info-hash (BEP 33: then no token is handed out)."""
        peers = self._data.get(info_hash)
        if peers is None:
            return len(self._data) < self.max_hashes
        return len(peers) < self.max_per_hash

    def add(self, info_hash: bytes, ip: str, port: int, now: float, *, seed: bool = False) -> bool:
        """Store ``ip:port`` as a peer of ``info_hash`` until ``now`` + the peer TTL; False when full."""
        peers = self._data.get(info_hash)
        if peers is None:
            if len(self._data) >= self.max_hashes:
                self.expire(now)
                if len(self._data) >= self.max_hashes:
                    return False
            peers = self._data[info_hash] = {}
        if ip not in peers and len(peers) >= self.max_per_hash:
            return False
        peers[ip] = _Entry(port, seed, now + PEER_TTL)
        return True

    def get(
        self,
        info_hash: bytes,
        now: float,
        rng: random.Random,
        *,
        noseed: bool = False,
        limit: int = MAX_VALUES,
    ) -> list[tuple[str, int]]:
        """Up to ``limit`` random live peers of ``info_hash`` (seeds left out with ``noseed``)."""
        peers = self._data.get(info_hash)
        if not peers:
            return []
        live = [(ip, e) for ip, e in peers.items() if e.expires > now]
        if noseed:
            # BEP 33: best effort, non-seeds first.
            live.sort(key=lambda item: item[1].seed)
            chosen = live[:limit]
        else:
            chosen = rng.sample(live, limit) if len(live) > limit else live
        return [(ip, e.port) for ip, e in chosen]

    def blooms(self, info_hash: bytes, now: float) -> tuple[bytes, bytes] | None:
        """(BFsd, BFpe) for an info-hash we hold, else None (BEP 33)."""
        peers = self._data.get(info_hash)
        if not peers:
            return None
        seeds, others = new_bloom(), new_bloom()
        for ip, e in peers.items():
            if e.expires > now:
                bloom_insert(seeds if e.seed else others, ip)
        return bytes(seeds), bytes(others)

    def sample(self, rng: random.Random, limit: int) -> list[bytes]:
        """Up to ``limit`` random info-hashes we hold (BEP 51)."""
        hashes = list(self._data)
        return rng.sample(hashes, limit) if len(hashes) > limit else hashes

    def expire(self, now: float) -> None:
        """Drop the peers whose TTL has passed (and info-hashes left with none)."""
        for ih in list(self._data):
            peers = self._data[ih]
            for ip in [ip for ip, e in peers.items() if e.expires <= now]:
                del peers[ip]
            if not peers:
                del self._data[ih]
