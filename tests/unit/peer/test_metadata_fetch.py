"""The BEP 9 metadata fetcher against lying peers: bytes and a hand-driven clock only."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from torrent_engine.formats.bencode import encode
from torrent_engine.formats.infohash import names_info
from torrent_engine.net.peer.extensions import METADATA_PIECE_SIZE, metadata_piece, metadata_piece_count
from torrent_engine.net.peer.metadata_fetch import (
    MAX_SIZES_PER_PEER,
    MAX_UNREQUESTED,
    MetadataFetcher,
    Verdict,
)

PS = METADATA_PIECE_SIZE


def make_info(num_pieces: int = 3, seed: int = 0) -> bytes:
    """A bencoded info dict spanning about ``num_pieces`` metadata pieces."""
    filler = hashlib.sha256(bytes([seed])).digest() * ((num_pieces * PS) // 32)
    info = encode({b"name": b"x", b"piece length": 16384, b"length": 1, b"pieces": filler[:-100]})
    assert metadata_piece_count(len(info)) == num_pieces
    return info


INFO = make_info()
IH = hashlib.sha1(INFO).digest()


def garbage(info: bytes, piece: int) -> bytes:
    return bytes(len(metadata_piece(info, piece)))


def piece_len(size: int, piece: int) -> int:
    return min(PS, size - piece * PS)


# -- a tiny simulated swarm ------------------------------------------------------------------


@dataclass
class SimPeer:
    """A peer's behaviour: answer(piece) -> data, None (silence) or "reject"; plus announcements."""

    key: str
    sizes: list[int]
    answer: Callable[[int], bytes | str | None]  # (for another size than INFO's: see run)
    spray: list[tuple[int, bytes]] = field(default_factory=list)  # unrequested pieces sent first
    joins_at: float = 0.0


def run(fetcher: MetadataFetcher, peers: list[SimPeer], info: bytes, limit: float = 200.0) -> float:
    """Drive the fetcher one simulated second at a time; the time it completed (or raises)."""
    now = 0.0
    joined: set[str] = set()
    gone: set[str] = set()
    while now < limit:
        for p in peers:
            if p.key in gone:
                continue
            if p.key not in joined and now >= p.joins_at:
                joined.add(p.key)
                for size in p.sizes:
                    fetcher.add_peer(p.key, size)
                for piece, data in p.spray:
                    fetcher.on_data(p.key, piece, data, p.sizes[-1], now)
            if p.key not in joined:
                continue
            for piece in fetcher.next_requests(p.key, now):
                size = p.sizes[-1]
                reply = p.answer(piece) if size == len(info) else (
                    None if p.answer(0) is None else bytes(piece_len(size, piece)))
                if reply == "reject":
                    fetcher.on_reject(p.key, piece, now)
                elif isinstance(reply, bytes):
                    fetcher.on_data(p.key, piece, reply, p.sizes[-1], now)
        for d in fetcher.take_dropped():
            gone.add(str(d.peer_key))
        if fetcher.done:
            assert fetcher.result() == info
            return now
        fetcher.tick(now)
        now += 1.0
    raise AssertionError(f"metadata not complete after {limit} s; banned {fetcher.banned}")


def honest(key: str, info: bytes = INFO, joins_at: float = 0.0) -> SimPeer:
    return SimPeer(key, [len(info)], lambda i: metadata_piece(info, i), joins_at=joins_at)


# -- unit behaviour --------------------------------------------------------------------------


def test_single_honest_peer_completes() -> None:
    f = MetadataFetcher(IH)
    assert run(f, [honest("h")], INFO) == 0.0
    assert f.banned == set()


def test_info_hash_forms() -> None:
    assert names_info(hashlib.sha1(INFO).digest(), INFO)
    assert names_info(hashlib.sha256(INFO).digest(), INFO)
    assert names_info(hashlib.sha256(INFO).digest()[:20], INFO)
    assert not names_info(bytes(20), INFO)
    with pytest.raises(ValueError):
        MetadataFetcher(b"short")


def test_requests_spread_over_peers_and_not_repeated() -> None:
    f = MetadataFetcher(IH, max_outstanding=1, duplicate_requests=1)
    f.add_peer("a", len(INFO))
    f.add_peer("b", len(INFO))
    ra = f.next_requests("a", 0.0)
    rb = f.next_requests("b", 0.0)
    assert ra == [0] and rb == [1]
    assert f.next_requests("a", 0.0) == []  # (its one slot is busy)


def test_unrequested_pieces_are_ignored() -> None:
    f = MetadataFetcher(IH)
    f.add_peer("liar", len(INFO))
    assert f.on_data("liar", 0, garbage(INFO, 0), len(INFO), 0.0) is Verdict.UNREQUESTED
    assert f.on_data("stranger", 0, garbage(INFO, 0), len(INFO), 0.0) is Verdict.UNREQUESTED
    f.add_peer("h", len(INFO))
    for i in f.next_requests("h", 0.0):
        f.on_data("h", i, metadata_piece(INFO, i), len(INFO), 0.0)
    assert f.result() == INFO


def test_too_many_unrequested_pieces_drop_the_peer() -> None:
    f = MetadataFetcher(IH)
    f.add_peer("liar", len(INFO))
    for _ in range(MAX_UNREQUESTED + 1):
        f.on_data("liar", 0, garbage(INFO, 0), len(INFO), 0.0)
    assert [d.peer_key for d in f.take_dropped()] == ["liar"]


def test_wrong_total_size_or_length_drops_the_peer() -> None:
    f = MetadataFetcher(IH, max_outstanding=1)
    f.add_peer("p", len(INFO))
    f.add_peer("q", len(INFO))
    f.next_requests("p", 0.0)
    f.next_requests("q", 0.0)
    assert f.on_data("p", 0, metadata_piece(INFO, 0), len(INFO) + 1, 0.0) is Verdict.INVALID
    assert f.on_data("q", 1, b"short", len(INFO), 0.0) is Verdict.INVALID
    assert {d.peer_key for d in f.take_dropped()} == {"p", "q"}
    assert f.banned == set()


def test_timeout_frees_the_piece_for_another_peer() -> None:
    f = MetadataFetcher(IH, request_timeout=5.0, duplicate_requests=1)
    f.add_peer("silent", len(INFO))
    assert f.next_requests("silent", 0.0) == [0, 1, 2]
    f.add_peer("h", len(INFO))
    assert f.next_requests("h", 1.0) == []  # all in flight elsewhere
    f.tick(5.0)
    assert f.next_requests("h", 5.0) == [0, 1, 2]
    assert f.next_requests("silent", 5.0) == []  # not re-asked before retry_after


def test_reject_frees_the_piece_and_repeated_failures_drop_the_peer() -> None:
    f = MetadataFetcher(IH, request_timeout=5.0, duplicate_requests=1)
    f.add_peer("r", len(INFO))
    f.add_peer("h", len(INFO))
    assert f.next_requests("r", 0.0) == [0, 1, 2]
    f.on_reject("r", 1, 0.0)
    assert f.next_requests("h", 0.0) == [1]
    f.on_reject("r", 0, 0.0)
    f.on_reject("r", 2, 0.0)
    assert f.take_dropped() == []
    f.next_requests("r", 6.0)
    f.on_reject("r", 0, 6.0)
    assert [d.peer_key for d in f.take_dropped()] == ["r"]


def test_many_sizes_from_one_peer_drop_it() -> None:
    f = MetadataFetcher(IH)
    for k in range(MAX_SIZES_PER_PEER):
        assert f.add_peer("liar", 1000 + k)
    assert not f.add_peer("liar", 5000)
    assert [d.peer_key for d in f.take_dropped()] == ["liar"]
    assert f.add_peer("h", len(INFO))
    assert f.next_requests("h", 0.0) == [0, 1, 2]


def test_many_sizes_before_the_honest_peer() -> None:
    """Liars announce many sizes first; the honest peer's size is still fetched at once."""
    liars = [SimPeer(f"l{k}", [100 + k, 200 + k], lambda i: None) for k in range(6)]
    f = MetadataFetcher(IH)
    t = run(f, [*liars, honest("h", joins_at=1.0)], INFO)
    assert t <= 30.0  # silent liars with the best-backed sizes are dropped after a few timeouts


def test_one_peer_cannot_outweigh_distinct_peers() -> None:
    f = MetadataFetcher(IH, max_active_sizes=1)
    f.add_peer("liar", 999)
    f.add_peer("h1", len(INFO))
    f.add_peer("h2", len(INFO))
    f.add_peer("liar", 998)  # changing its size does not make it two backers
    assert f.sizes()[len(INFO)] == 2
    assert f.next_requests("liar", 0.0) == []
    assert f.next_requests("h1", 0.0)


def test_correct_size_wrong_data_alone_is_banned() -> None:
    f = MetadataFetcher(IH)
    liar = SimPeer("liar", [len(INFO)], lambda i: garbage(INFO, i))
    with pytest.raises(AssertionError):
        run(f, [liar], INFO, limit=5.0)
    assert f.banned == {"liar"}


def test_liar_and_honest_together_liar_banned_honest_kept() -> None:
    f = MetadataFetcher(IH, max_outstanding=1)
    liar = SimPeer("liar", [len(INFO)], lambda i: garbage(INFO, i))
    t = run(f, [liar, honest("h")], INFO)
    assert t <= 3.0
    assert f.banned == {"liar"}


def test_liar_lying_on_one_piece_only() -> None:
    f = MetadataFetcher(IH, max_outstanding=1)
    liar = SimPeer("liar", [len(INFO)],
                   lambda i: garbage(INFO, i) if i == 0 else metadata_piece(INFO, i))
    run(f, [liar, honest("h1"), honest("h2")], INFO)
    assert f.banned == {"liar"}


def test_two_honest_peers_share_the_work_without_duplicates() -> None:
    f = MetadataFetcher(IH, max_outstanding=2)
    got: list[str] = []

    def counted(key: str) -> SimPeer:
        def answer(i: int) -> bytes:
            got.append(key)
            return metadata_piece(INFO, i)
        return SimPeer(key, [len(INFO)], answer)

    run(f, [counted("a"), counted("b")], INFO)
    assert len(got) == 3 and set(got) == {"a", "b"}


def test_end_game_duplicates_what_a_silent_peer_holds() -> None:
    f = MetadataFetcher(IH)
    f.add_peer("silent", len(INFO))
    assert f.next_requests("silent", 0.0) == [0, 1, 2]
    f.add_peer("h", len(INFO))
    assert f.next_requests("h", 0.0) == [0, 1, 2]
    f.add_peer("third", len(INFO))
    assert f.next_requests("third", 0.0) == []  # (two peers per piece at most)


def test_sprayed_wrong_pieces_and_honest_peer() -> None:
    bad = [(i, garbage(INFO, i)) for i in range(3)] * 3
    liar = SimPeer("sprayer", [len(INFO)], lambda i: None, spray=bad)
    f = MetadataFetcher(IH)
    assert run(f, [liar, honest("h")], INFO) <= 1.0
    assert "h" not in f.banned


def test_honest_pieces_of_a_departed_peer_are_kept() -> None:
    f = MetadataFetcher(IH, max_outstanding=2)
    f.add_peer("a", len(INFO))
    for i in f.next_requests("a", 0.0):
        f.on_data("a", i, metadata_piece(INFO, i), len(INFO), 0.0)
    f.remove_peer("a")
    f.add_peer("b", len(INFO))
    assert f.next_requests("b", 1.0) == [2]
    assert f.on_data("b", 2, metadata_piece(INFO, 2), len(INFO), 1.0) is Verdict.COMPLETE


def test_peers_with_other_sizes_dropped_on_completion() -> None:
    f = MetadataFetcher(IH)
    f.add_peer("other", 1234)
    run(f, [honest("h")], INFO)
    assert [d.peer_key for d in f.take_dropped()] == []  # (taken by run)
    assert f.sizes() == {len(INFO): 1}


# -- property: random liars never prevent completion beside one honest peer ------------------


def liar_strategy(key: str) -> st.SearchStrategy[SimPeer]:
    size = len(INFO)
    behaviours: list[Callable[[int], bytes | str | None]] = [
        lambda i: None,
        lambda i: "reject",
        lambda i: garbage(INFO, i),
        lambda i: garbage(INFO, i) if i % 2 else metadata_piece(INFO, i),
        lambda i: metadata_piece(INFO, i),  # an honest peer in disguise
    ]
    return st.builds(
        SimPeer,
        key=st.just(key),
        sizes=st.one_of(st.just([size]), st.lists(st.integers(1, 4 * size), min_size=1, max_size=4)),
        answer=st.sampled_from(behaviours),
        spray=st.lists(st.tuples(st.integers(0, 2), st.binary(min_size=1, max_size=40)), max_size=5),
        joins_at=st.sampled_from([0.0, 0.0, 3.0]),
    )


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 6).flatmap(lambda n: st.tuples(*[liar_strategy(f"l{k}") for k in range(n)])),
       st.sampled_from([0.0, 2.0, 8.0]), st.integers(1, 8))
def test_liars_never_prevent_completion(liars: tuple[SimPeer, ...], honest_joins: float,
                                        outstanding: int) -> None:
    f = MetadataFetcher(IH, request_timeout=3.0, max_outstanding=outstanding)
    run(f, [*liars, honest("honest", joins_at=honest_joins)], INFO, limit=120.0)
    assert "honest" not in f.banned
