"""What each peer has, on its own: the pieces whose availability a bitfield, a HAVE or a peer
leaving moves, seeds counted apart, and the few pieces of a sparse peer kept as a set."""

from __future__ import annotations

from torrent_engine.formats.bitfield import Bitfield
from torrent_engine.policy.picker_parts import ALL, NOTHING
from torrent_engine.policy.picker_peers import PeerPieces


def _bits(n: int, *pieces: int) -> Bitfield:
    bf = Bitfield(n)
    for i in pieces:
        bf.add(i)
    return bf


def test_a_bitfield_counts_its_pieces_and_leaving_uncounts_them() -> None:
    peers = PeerPieces(10, sparse_limit=2)
    assert sorted(peers.bitfield("a", _bits(10, 1, 4, 7))) == [1, 4, 7]
    assert peers.knows("a") and 4 in peers.has("a") and 5 not in peers.has("a")
    assert peers.few("a") is None  # three pieces: more than the limit
    assert sorted(peers.forget("a")) == [1, 4, 7] and not peers.knows("a")
    assert peers.has("a") is NOTHING and list(peers.forget("a")) == []


def test_seeds_are_counted_apart_and_move_no_piece() -> None:
    peers = PeerPieces(4, sparse_limit=2)
    assert list(peers.bitfield("full", _bits(4, 0, 1, 2, 3))) == []
    peers.have_all("s")
    assert peers.seeds == 2 and peers.has("s") is ALL
    assert not peers.have("s", 3)  # a seed already counts for every piece
    assert list(peers.forget("s")) == [] and peers.seeds == 1


def test_a_have_is_news_once_and_a_sparse_peer_keeps_its_pieces_as_a_set_until_it_has_many() -> None:
    peers = PeerPieces(10, sparse_limit=2)
    peers.have_none("p")
    assert peers.few("p") == set()
    assert peers.have("p", 3) and not peers.have("p", 3)
    assert peers.have("p", 5) and peers.few("p") == {3, 5}
    assert peers.have("p", 8) and peers.few("p") is None  # no longer few
    assert sorted(peers.forget("p")) == [3, 5, 8]
    assert peers.have("q", 1) and peers.few("q") == {1}  # a HAVE before any bitfield


def test_a_peer_is_interesting_when_it_has_a_wanted_piece() -> None:
    peers = PeerPieces(8, sparse_limit=0)
    wanted = _bits(8, 2, 6)
    assert not peers.any_of("a", wanted)
    peers.bitfield("a", _bits(8, 1, 3))
    assert not peers.any_of("a", wanted)
    peers.have("a", 6)
    assert peers.any_of("a", wanted)
    peers.have_all("s")
    assert peers.any_of("s", wanted) and not peers.any_of("s", Bitfield(8))
