"""Properties of the BEP 52 piece-layer fetcher over random file shapes: honest answers always
complete the true layer, and no reply with a single byte changed is ever accepted."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from torrent_engine.formats.bencode import encode
from torrent_engine.formats.merkle import HASH_SIZE, root_from_piece_layer
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.net.peer.layer_fetch import PieceLayerFetcher, Verdict, hashes_for
from torrent_engine.net.peer.messages import Hashes


class _All:
    def __contains__(self, index: object) -> bool:
        return True


def shaped(pieces: list[int], piece_length: int, seed: int) -> tuple[Torrent, Torrent]:
    """A v2 torrent of files with ``pieces`` pieces each, from random piece-layer hashes: the
    bare one (no layers, as from a magnet) and the full one."""
    rng = random.Random(seed)
    tree: dict[bytes, object] = {}
    layers: dict[bytes, bytes] = {}
    for n, count in enumerate(pieces):
        layer = rng.randbytes(count * HASH_SIZE)
        root = root_from_piece_layer([layer[i:i + HASH_SIZE] for i in range(0, len(layer), HASH_SIZE)],
                                     piece_length)
        layers[root] = layer
        tree[b"f%03d" % n] = {b"": {b"length": (count - 1) * piece_length + 1, b"pieces root": root}}
    info = encode({b"file tree": tree, b"meta version": 2, b"name": b"x", b"piece length": piece_length})
    bare = Torrent.from_info_bytes(info)
    return bare, bare.with_piece_layers(layers)


@settings(max_examples=60, deadline=None)
@given(pieces=st.lists(st.integers(2, 1300), min_size=1, max_size=3),
       piece_length=st.sampled_from([16384, 32768, 1 << 20]), seed=st.integers(0, 2**16),
       flip=st.integers(0, 2**31))
def test_honest_replies_complete_and_any_changed_byte_is_refused(
        pieces: list[int], piece_length: int, seed: int, flip: int) -> None:
    bare, full = shaped(pieces, piece_length, seed)
    fetcher = PieceLayerFetcher(bare, max_per_peer=64, max_in_flight=64)
    got: dict[bytes, bytes] = {}
    for req in fetcher.next_requests("p", _All(), 0.0):
        good = hashes_for(full.piece_layers, piece_length, req)
        assert good is not None
        at = flip % len(good.hashes)
        bad = bytearray(good.hashes)
        bad[at] ^= 1 + (flip >> 8) % 255
        liar = PieceLayerFetcher(bare, max_per_peer=64, max_in_flight=64)
        liar.next_requests("q", _All(), 0.0)
        forged = Hashes(good.pieces_root, good.base_layer, good.index, good.length, good.proof_layers,
                        bytes(bad))
        assert liar.on_hashes("q", forged, 0.0) is Verdict.FALSE
        assert fetcher.on_hashes("p", good, 0.0) in (Verdict.ACCEPTED, Verdict.LAYER_COMPLETE)
        got.update(fetcher.take_layers())
    assert fetcher.done and got == dict(full.piece_layers)
