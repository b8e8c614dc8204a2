"""A torrent's identity on the wire (BEP 3, 52): the 20 bytes that stand for it in handshakes,
at trackers and in the DHT, whether it is known by a v1 or a v2 info-hash."""

from __future__ import annotations

import hashlib

WIRE_SIZE = 20  # BEP 3: SHA-1; BEP 52: a v2 (SHA-256) info-hash is truncated to this


def wire_info_hash(info_hash_v1: bytes | None, info_hash_v2: bytes | None) -> bytes:
    """The v1 info-hash, else the v2 one truncated to 20 bytes (BEP 52)."""
    if info_hash_v1 is not None:
        return info_hash_v1
    if info_hash_v2 is None:
        raise ValueError("a torrent has a v1 or a v2 info-hash")
    return v2_on_wire(info_hash_v2)


def v2_on_wire(info_hash_v2: bytes) -> bytes:
    """A v2 (SHA-256) info-hash as handshakes, trackers and the DHT carry it: its first 20 bytes."""
    return info_hash_v2[:WIRE_SIZE]


def names_info(info_hash: bytes, info: bytes) -> bool:
    """Whether ``info`` (a bencoded info dict) is what ``info_hash`` names: 20 bytes (v1 SHA-1,
    or a v2 SHA-256 truncated as on the wire, BEP 52) or 32 (v2 SHA-256)."""
    sha256 = hashlib.sha256(info).digest()
    if len(info_hash) == 32:
        return sha256 == info_hash
    return hashlib.sha1(info).digest() == info_hash or v2_on_wire(sha256) == info_hash
