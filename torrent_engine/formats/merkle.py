"""BEP 52 merkle trees: SHA-256 over 16 KiB blocks, padded with zero hashes to a power of two.

Used by metainfo (checking ``piece layers`` against ``pieces root``), create (building v2
torrents) and verify (checking a downloaded piece against the v2 tree).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from ..net.peer.messages import BLOCK_SIZE  # BEP 52: the merkle leaves are the 16 KiB blocks of BEP 3

__all__ = [
    "BLOCK_SIZE",
    "HASH_SIZE",
    "ZERO_HASH",
    "block_hashes",
    "merkle_root",
    "pad_hash",
    "piece_hash_v2",
    "piece_layer",
    "pieces_root",
    "root_from_piece_layer",
]

HASH_SIZE = 32  # BEP 52: SHA-256
ZERO_HASH = bytes(HASH_SIZE)  # BEP 52: leaves past the end of a file are zero


def _next_pow2(n: int) -> int:
    return 1 if n <= 1 else 1 << (n - 1).bit_length()


def pad_hash(leaves: int) -> bytes:
    """Root of a subtree of ``leaves`` (a power of two) zero leaves."""
    h = ZERO_HASH
    while leaves > 1:
        h = hashlib.sha256(h + h).digest()
        leaves >>= 1
    return h


def merkle_root(leaf_hashes: Sequence[bytes], pad_to: int = 0, pad: bytes = ZERO_HASH) -> bytes:
    """Root over ``leaf_hashes`` padded with ``pad`` to ``max(pad_to, len)`` rounded up to 2^k.

    ``pad`` is the hash standing for a missing leaf at this level: the zero hash for block
    leaves, ``pad_hash(blocks_per_piece)`` when the leaves are piece-layer hashes.
    """
    count = _next_pow2(max(pad_to, len(leaf_hashes), 1))
    layer = list(leaf_hashes)
    filler = pad
    while count > 1:
        if len(layer) % 2:
            layer.append(filler)
        sha = hashlib.sha256
        layer = [sha(layer[i] + layer[i + 1]).digest() for i in range(0, len(layer), 2)]
        filler = sha(filler + filler).digest()
        count >>= 1
    return layer[0] if layer else filler


def block_hashes(data: bytes | memoryview) -> list[bytes]:
    """SHA-256 of each 16 KiB block of ``data`` (the last may be short)."""
    view = memoryview(data)
    sha = hashlib.sha256
    return [sha(view[i : i + BLOCK_SIZE]).digest() for i in range(0, len(view), BLOCK_SIZE)]


def piece_hash_v2(data: bytes | memoryview, piece_length: int, file_length: int) -> bytes:
    """Hash of one piece of a file as found in ``piece layers``.

    When the whole file fits in one piece there is no piece layer and this is the file's
    ``pieces root``: its blocks padded only to the next power of two, not to a full piece.
    """
    leaves = block_hashes(data)
    if file_length <= piece_length:
        return merkle_root(leaves)
    return merkle_root(leaves, pad_to=piece_length // BLOCK_SIZE)


def piece_layer(leaf_hashes: Sequence[bytes], piece_length: int) -> list[bytes]:
    """The piece-layer hashes of a file from its block hashes (file larger than one piece)."""
    per_piece = piece_length // BLOCK_SIZE
    return [
        merkle_root(leaf_hashes[i : i + per_piece], pad_to=per_piece)
        for i in range(0, len(leaf_hashes), per_piece)
    ]


def root_from_piece_layer(layer: Sequence[bytes], piece_length: int) -> bytes:
    """A file's ``pieces root`` from its piece layer (pad pieces are zero subtrees)."""
    return merkle_root(layer, pad=pad_hash(piece_length // BLOCK_SIZE))


def pieces_root(leaf_hashes: Sequence[bytes], piece_length: int) -> bytes:
    """A file's ``pieces root`` from all its block hashes."""
    per_piece = piece_length // BLOCK_SIZE
    if len(leaf_hashes) <= per_piece:
        return merkle_root(leaf_hashes)
    return root_from_piece_layer(piece_layer(leaf_hashes, piece_length), piece_length)
