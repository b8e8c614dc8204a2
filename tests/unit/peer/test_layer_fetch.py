"""Fetching v2 piece layers by BEP 52 hash requests from peers that may lie: bytes and a
hand-driven clock only."""

from __future__ import annotations

import random
from functools import cache

import pytest

from tests.unit.torrent_factory import make_torrent
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.net.peer.layer_fetch import (
    PieceLayerFetcher,
    Verdict,
    hashes_for,
    piece_layer_base,
)
from torrent_engine.net.peer.messages import Hashes, HashReject, HashRequest
from torrent_engine.net.peer.wire import PeerWire
from torrent_engine.storage.verify import piece_ok

PL = 32 * 1024  # two blocks per piece: the piece layer is one layer above the leaves


class _All:
    def __contains__(self, index: object) -> bool:
        return True


ALL = _All()


def data(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


@cache
def full(version: str = "v2", big: bool = False) -> Torrent:
    """Files of several pieces (5 and 3 and, with ``big``, 1100: three chunks with uncle
    hashes), one smaller than a piece (no piece layer, BEP 52) and one exactly one piece."""
    files = [(("a.bin",), data(5 * PL - 100, 1)), (("b.txt",), data(1000, 2)),
             (("c.bin",), data(3 * PL, 3)), (("d.bin",), data(PL, 4))]
    if big:
        files.append((("e.bin",), data(1100 * PL - 5, 5)))
    return make_torrent(files, PL, version=version)


def stripped(t: Torrent) -> Torrent:
    """The torrent as a magnet download knows it: the info dict alone, no piece layers."""
    return Torrent.from_info_bytes(t.info_bytes)


def answer(t: Torrent, req: HashRequest) -> Hashes:
    reply = hashes_for(t.piece_layers, t.piece_length, req)
    assert reply is not None
    return reply


def fetch_all(fetcher: PieceLayerFetcher, source: Torrent, peer: str = "honest") -> dict[bytes, bytes]:
    layers: dict[bytes, bytes] = {}
    for _ in range(100):
        reqs = fetcher.next_requests(peer, ALL, 0.0)
        if not reqs:
            break
        for req in reqs:
            verdict = fetcher.on_hashes(peer, answer(source, req), 0.0)
            assert verdict in (Verdict.ACCEPTED, Verdict.LAYER_COMPLETE)
        layers.update(fetcher.take_layers())
    return layers


def test_requests_ask_the_piece_layer_of_each_file_larger_than_a_piece() -> None:
    t = full()
    bare = stripped(t)
    assert bare.piece_layers == {} and len(bare.missing_piece_layers) == 2
    fetcher = PieceLayerFetcher(bare)
    reqs = fetcher.next_requests("p", ALL, 0.0)
    roots = {f.pieces_root: f for f in t.files}
    assert {roots[r.pieces_root].path[-1] for r in reqs} == {"a.bin", "c.bin"}  # not b, not d
    for req in reqs:
        num = -(-roots[req.pieces_root].length // PL)
        assert req.base_layer == piece_layer_base(PL) == 1
        assert req.index == 0 and req.length == {5: 8, 3: 4}[num]  # a power of two, padded
        assert req.proof_layers == req.length.bit_length() - 2  # log2(length) - 1: no uncles needed
        wire = PeerWire(info_hash=bytes(20), peer_id=bytes(20))  # it parses as a peer would
        wire.receive_data(wire.handshake() + req.to_bytes())
        assert list(wire.events())[1] == req
    assert fetcher.next_requests("p", ALL, 0.0) == []  # each chunk in flight to one peer at a time


def test_honest_replies_complete_the_layers_that_verify_the_pieces() -> None:
    t = full()
    bare = stripped(t)
    fetcher = PieceLayerFetcher(bare)
    layers = fetch_all(fetcher, t)
    assert fetcher.done and layers == dict(t.piece_layers)
    completed = bare.with_piece_layers(layers)
    assert completed.to_bytes() == t.to_bytes()
    assert Torrent.from_bytes(completed.to_bytes()).info_hash_v2 == t.info_hash_v2
    first = t.files[0]
    piece = data(5 * PL - 100, 1)[:PL]
    assert not piece_ok(bare, first.offset // PL, piece)  # unknown before
    assert piece_ok(completed, first.offset // PL, piece)


def test_a_layer_of_more_than_512_pieces_comes_in_chunks_proven_by_uncle_hashes() -> None:
    t = full(big=True)
    fetcher = PieceLayerFetcher(stripped(t), max_per_peer=8, max_in_flight=8)
    reqs = fetcher.next_requests("p", ALL, 0.0)
    big = [r for r in reqs if r.index or r.length == 512]
    assert sorted((r.index, r.length) for r in big) == [(0, 512), (512, 512), (1024, 128)]
    for req in big:  # 1100 pieces -> 2048 leaves, 11 layers: 11 - log2(length) uncles
        reply = answer(t, req)
        assert len(reply.hashes) // 32 == req.length + 11 - (req.length.bit_length() - 1)
    layers = fetch_all(PieceLayerFetcher(stripped(t)), t)
    assert layers == dict(t.piece_layers)


def test_a_liar_is_named_and_its_chunk_is_asked_of_another_peer() -> None:
    t = full()
    fetcher = PieceLayerFetcher(stripped(t))
    reqs = fetcher.next_requests("liar", ALL, 0.0)
    good = answer(t, reqs[0])
    forged = Hashes(good.pieces_root, good.base_layer, good.index, good.length, good.proof_layers,
                    bytes(32) + good.hashes[32:])
    assert fetcher.on_hashes("liar", forged, 1.0) is Verdict.FALSE
    assert "liar" in fetcher.banned
    assert fetcher.next_requests("liar", ALL, 2.0) == []  # never asked again
    assert fetcher.in_flight("liar") == 0  # its other request is free again too
    assert fetcher.on_hashes("liar", answer(t, reqs[1]), 2.0) is Verdict.UNSOLICITED  # nothing kept
    layers = fetch_all(fetcher, t)  # an honest peer gets both chunks
    assert layers == dict(t.piece_layers)


def test_a_reply_of_the_wrong_shape_is_ignored_without_a_ban() -> None:
    t = full()
    fetcher = PieceLayerFetcher(stripped(t), retry_after=30.0)
    req = fetcher.next_requests("odd", ALL, 0.0)[0]
    good = answer(t, req)
    extra = Hashes(good.pieces_root, good.base_layer, good.index, good.length, good.proof_layers,
                   good.hashes + bytes(32))  # an uncle that was not asked for
    assert fetcher.on_hashes("odd", extra, 1.0) is Verdict.MALFORMED
    assert "odd" not in fetcher.banned
    assert req not in fetcher.next_requests("odd", ALL, 2.0)  # not the same peer soon
    assert fetcher.next_requests("other", ALL, 2.0) == [req]
    fetcher.tick(40.0)  # "other" never answers; "odd" may be asked again (30 s have passed)
    assert fetcher.next_requests("odd", ALL, 40.0) == [req]


def test_unsolicited_hashes_are_ignored_even_when_true() -> None:
    t = full()
    fetcher = PieceLayerFetcher(stripped(t))
    req = HashRequest(t.files[0].pieces_root or b"", 1, 0, 8, 2)
    assert fetcher.on_hashes("sprayer", answer(t, req), 0.0) is Verdict.UNSOLICITED
    assert fetcher.take_layers() == {}


def test_reject_and_timeout_move_the_request_to_another_peer() -> None:
    t = full()
    fetcher = PieceLayerFetcher(stripped(t), request_timeout=20.0, retry_after=30.0)
    first = fetcher.next_requests("slow", ALL, 0.0)
    assert len(first) == 2
    fetcher.on_reject("slow", HashReject(first[0].pieces_root, first[0].base_layer, first[0].index,
                                         first[0].length, first[0].proof_layers), 1.0)
    assert fetcher.rejected == 1
    assert fetcher.next_requests("other", ALL, 1.0) == [first[0]]  # the rejected one, at once
    assert fetcher.next_requests("slow", ALL, 1.0) == []  # not asked again before retry_after
    fetcher.tick(19.0)
    assert fetcher.in_flight() == 2
    fetcher.tick(20.5)  # the request of "slow" is 20.5 s old, that of "other" 19.5 s
    assert fetcher.timed_out == 1 and fetcher.in_flight("slow") == 0 and fetcher.in_flight("other") == 1
    assert fetcher.next_requests("third", ALL, 20.5) == [first[1]]
    # a late answer from the peer that timed out still counts (it was asked)
    assert fetcher.on_hashes("slow", answer(t, first[1]), 22.0) in (Verdict.ACCEPTED, Verdict.LAYER_COMPLETE)
    assert fetcher.on_hashes("slow", answer(t, first[1]), 22.0) is Verdict.UNSOLICITED  # layer known
    assert fetcher.in_flight("third") == 0


def test_only_peers_that_have_a_piece_of_the_chunk_are_asked() -> None:
    t = full()
    fetcher = PieceLayerFetcher(stripped(t))
    c = next(f for f in t.files if f.path[-1] == "c.bin")
    only_c = set(range(c.offset // PL, c.offset // PL + 3))
    reqs = fetcher.next_requests("partial", only_c, 0.0)
    assert [r.pieces_root for r in reqs] == [c.pieces_root]
    assert fetcher.next_requests("empty", set(), 0.0) == []


def test_requests_in_flight_are_bounded() -> None:
    t = full(big=True)
    fetcher = PieceLayerFetcher(stripped(t), max_per_peer=2, max_in_flight=3)
    assert len(fetcher.next_requests("p1", ALL, 0.0)) == 2
    assert len(fetcher.next_requests("p2", ALL, 0.0)) == 1
    assert fetcher.next_requests("p3", ALL, 0.0) == []
    fetcher.remove_peer("p1")  # gone: its requests are free
    assert len(fetcher.next_requests("p3", ALL, 0.0)) == 2


def test_pieces_with_unknown_hashes_are_blocked_until_their_layer_arrives() -> None:
    t = full()
    bare = stripped(t)
    fetcher = PieceLayerFetcher(bare)
    a, b = t.files[0], t.files[1]
    a_pieces = range(a.offset // PL, a.offset // PL + 5)
    assert fetcher.blocking and all(fetcher.blocked(i) for i in a_pieces)
    assert not fetcher.blocked(b.offset // PL)  # one-piece file: its hash is its pieces root
    has = fetcher.verifiable(set(range(bare.num_pieces)))
    assert [i for i in range(bare.num_pieces) if i in has] == [i for i in range(bare.num_pieces)
                                                               if bare.expected_piece_hash_v2(i)]
    fetch_all(fetcher, t)
    assert not fetcher.blocking and not any(fetcher.blocked(i) for i in a_pieces)
    assert all(i in fetcher.verifiable(ALL) for i in range(bare.num_pieces))


def test_a_hybrid_blocks_nothing_but_still_fetches_its_layers() -> None:
    t = full("hybrid")
    bare = stripped(t)
    fetcher = PieceLayerFetcher(bare)
    assert not fetcher.blocking and fetcher.missing_files == 2
    first = t.files[0]
    assert piece_ok(bare, first.offset // PL, data(5 * PL - 100, 1)[:PL])  # SHA-1 vouches for it
    assert fetch_all(fetcher, t) == dict(t.piece_layers)


def test_a_torrent_with_all_its_layers_asks_for_nothing() -> None:
    fetcher = PieceLayerFetcher(full())
    assert fetcher.done and fetcher.next_requests("p", ALL, 0.0) == []


@pytest.mark.parametrize("change", ["base", "root", "range", "proof"])
def test_hash_requests_we_cannot_answer_are_rejected(change: str) -> None:
    t = full()
    root = t.files[0].pieces_root or b""
    req = {"base": HashRequest(root, 0, 0, 8, 2), "root": HashRequest(bytes(32), 1, 0, 8, 2),
           "range": HashRequest(root, 1, 8, 8, 2), "proof": HashRequest(root, 1, 0, 8, 3)}[change]
    assert hashes_for(t.piece_layers, PL, req) is None
