"""merkle: BEP 52 trees, checked against a naive whole-file tree built independently here."""

from __future__ import annotations

import hashlib

import pytest

from torrent_engine.formats.merkle import (
    BLOCK_SIZE,
    ZERO_HASH,
    block_hashes,
    merkle_root,
    pad_hash,
    piece_hash_v2,
    piece_layer,
    pieces_root,
    root_from_piece_layer,
)


def sha(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


def naive_root(data: bytes, min_leaves: int = 1) -> bytes:
    """The BEP 52 definition, literally: 16 KiB block hashes, zero leaves to a power of two."""
    leaves = [sha(data[i : i + BLOCK_SIZE]) for i in range(0, len(data), BLOCK_SIZE)]
    n = 1
    while n < max(len(leaves), min_leaves):
        n *= 2
    layer = leaves + [bytes(32)] * (n - len(leaves))
    while len(layer) > 1:
        layer = [sha(layer[i] + layer[i + 1]) for i in range(0, len(layer), 2)]
    return layer[0]


def payload(n: int) -> bytes:
    return (hashlib.sha256(str(n).encode()).digest() * (n // 32 + 1))[:n]


def test_small_trees_by_hand() -> None:
    a, b, c = sha(b"a"), sha(b"b"), sha(b"c")
    assert merkle_root([a]) == a
    assert merkle_root([a, b]) == sha(a + b)
    assert merkle_root([a, b, c]) == sha(sha(a + b) + sha(c + ZERO_HASH))
    assert merkle_root([a], pad_to=4) == sha(sha(a + ZERO_HASH) + sha(ZERO_HASH + ZERO_HASH))
    assert pad_hash(1) == ZERO_HASH
    assert pad_hash(4) == sha(sha(ZERO_HASH * 2) * 2)


@pytest.mark.parametrize("size", [1, BLOCK_SIZE - 1, BLOCK_SIZE, BLOCK_SIZE + 1, 5 * BLOCK_SIZE + 7])
def test_file_within_one_piece_root_is_padded_to_its_own_blocks_only(size: int) -> None:
    data = payload(size)
    pl = 8 * BLOCK_SIZE
    assert pieces_root(block_hashes(data), pl) == naive_root(data)
    assert piece_hash_v2(data, pl, size) == naive_root(data)


@pytest.mark.parametrize("size", [4 * BLOCK_SIZE + 1, 8 * BLOCK_SIZE, 9 * BLOCK_SIZE + 100, 33 * BLOCK_SIZE])
@pytest.mark.parametrize("blocks_per_piece", [1, 2, 4])
def test_piece_layer_hashes_up_to_the_whole_file_root(size: int, blocks_per_piece: int) -> None:
    data = payload(size)
    pl = blocks_per_piece * BLOCK_SIZE
    layer = piece_layer(block_hashes(data), pl)
    assert len(layer) == -(-size // pl)
    # each piece hash is the root of that piece's subtree, short last piece padded to a full piece
    for i, h in enumerate(layer):
        chunk = data[i * pl : (i + 1) * pl]
        assert h == naive_root(chunk, min_leaves=blocks_per_piece)
        assert piece_hash_v2(chunk, pl, size) == h
    assert root_from_piece_layer(layer, pl) == naive_root(data)
    assert pieces_root(block_hashes(data), pl) == naive_root(data)


def test_a_changed_byte_changes_the_piece_hash() -> None:
    data = bytearray(payload(3 * BLOCK_SIZE))
    before = piece_hash_v2(bytes(data), BLOCK_SIZE * 4, len(data))
    data[-1] ^= 1
    assert piece_hash_v2(bytes(data), BLOCK_SIZE * 4, len(data)) != before
