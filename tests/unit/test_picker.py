"""PiecePicker: rarest-first, tie-breaks, random first, partial first, priorities, sequential,
endgame, peers leaving, hash failures and the wanted/have bookkeeping."""

from __future__ import annotations

import random

import pytest

from tests.unit.torrent_factory import layout, make_torrent, payload
from torrent_engine.formats.bitfield import Bitfield
from torrent_engine.policy.picker import BLOCK_SIZE, Block, PiecePicker

B = BLOCK_SIZE


def one_block_pieces(n: int) -> PiecePicker:
    """n pieces of one block each, no random-first phase."""
    return PiecePicker(layout(B, n * B), random.Random(0), random_first_pieces=0)


def give(pk: PiecePicker, peer: str, pieces: range | list[int]) -> None:
    pk.peer_bitfield(peer, Bitfield(pk.num_pieces, pieces))


def download_all(pk: PiecePicker, peer: str, n: int = 1) -> list[int]:
    """Pick, receive and pass everything from one peer; the order pieces were started in."""
    order: list[int] = []
    while True:
        blocks = pk.pick(peer, None, n)
        if not blocks:
            return order
        for b in blocks:
            if b.index not in order:
                order.append(b.index)
            if pk.block_received(peer, b).piece_complete:
                pk.piece_passed(b.index)


def test_rarest_first_orders_pieces_by_availability() -> None:
    pk = one_block_pieces(6)
    give(pk, "a", range(6))
    give(pk, "b", [0, 1, 2, 3])
    give(pk, "c", [0, 1])
    # availability: 0,1 -> 3; 2,3 -> 2; 4,5 -> 1
    order = download_all(pk, "a")
    assert [pk.availability(i) for i in order] == [1, 1, 2, 2, 3, 3]
    assert sorted(order[:2]) == [4, 5] and sorted(order[2:4]) == [2, 3]


def test_availability_follows_have_have_all_and_peer_gone() -> None:
    pk = one_block_pieces(4)
    pk.peer_have("a", 2)
    pk.peer_have("a", 2)  # a repeated HAVE counts once
    pk.peer_have_all("s")
    assert [pk.availability(i) for i in range(4)] == [1, 1, 2, 1]
    pk.peer_gone("s")
    assert [pk.availability(i) for i in range(4)] == [0, 0, 1, 0]
    give(pk, "a", [0, 1])  # a new bitfield replaces what was known
    assert [pk.availability(i) for i in range(4)] == [1, 1, 0, 0]


def test_ties_are_broken_by_the_injected_random_source() -> None:
    def order(seed: int) -> list[int]:
        pk = PiecePicker(layout(B, 20 * B), random.Random(seed), random_first_pieces=0, extent_bytes=0)
        pk.peer_have_all("s")
        return download_all(pk, "s")

    assert order(7) == order(7)  # deterministic for a seed
    orders = {tuple(order(seed)) for seed in range(5)}
    assert len(orders) > 1  # and the seed matters
    assert all(sorted(o) == list(range(20)) for o in orders)
    assert tuple(range(20)) not in orders  # not index order


def extent_picker(n: int, seed: int, extent: int = 4) -> PiecePicker:
    """n one-block pieces, extents of ``extent`` pieces, no random-first phase."""
    return PiecePicker(layout(B, n * B), random.Random(seed), random_first_pieces=0, extent_bytes=extent * B)


def test_among_equals_the_pieces_of_an_extent_begun_lately_go_first() -> None:
    """Piece extent affinity: from a seed, once a piece of an extent is begun the rest of that
    extent comes next, in index order; a new extent is begun at random (the seed matters)."""
    orders = set()
    for seed in range(6):
        pk = extent_picker(16, seed)
        pk.peer_have_all("s")
        order = download_all(pk, "s")
        assert sorted(order) == list(range(16))
        extents = [order[k:k + 4] for k in range(0, 16, 4)]
        for run in extents:  # four pieces of one extent in a row; after the first, in order
            assert len({i // 4 for i in run}) == 1, order
            assert run[1:] == sorted(run[1:]), order
        orders.add(tuple(run[0] // 4 for run in extents))
    assert len(orders) > 1  # the extents' order is the random source's


def test_extent_affinity_never_takes_a_piece_over_a_rarer_or_more_wanted_one() -> None:
    """Only equals: a rarer piece, or one of a higher priority, outside the extent goes first."""
    pk = extent_picker(16, 1)
    pk.peer_have_all("s")
    give(pk, "a", [i for i in range(16) if i != 13])  # 13: the rarest
    first = pk.pick("s", None, 1)[0].index
    assert first == 13
    pk.set_piece_priority(6, 7)
    assert pk.pick("s", None, 1)[0].index == 6
    third = pk.pick("s", None, 1)[0].index
    assert third // 4 == 1 and third != 6  # then 6's extent, whose equals came next


def test_a_piece_given_back_in_a_recent_extent_is_taken_again_first() -> None:
    """A peer left with a piece of the extent in progress: the piece is fresh again, and the
    extent's next pick is that piece, though the scan had passed it."""
    pk = extent_picker(16, 2, extent=8)
    pk.peer_have_all("s")
    pk.peer_have_all("t")
    a = pk.pick("s", None, 1)[0].index  # at random: its extent is begun
    b = pk.pick("t", None, 1)[0].index
    c = pk.pick("s", None, 1)[0].index
    extent = a // 8
    assert b == min(set(range(extent * 8, extent * 8 + 8)) - {a})  # its extent, from the front
    assert c // 8 == extent and c > b
    pk.peer_gone("t")  # b is given back
    assert pk.pick("s", None, 1)[0].index == b


def test_random_first_pieces_then_rarest_first() -> None:
    firsts = set()
    for seed in range(20):
        pk = PiecePicker(layout(B, 50 * B), random.Random(seed), random_first_pieces=2)
        pk.peer_have_all("s")
        give(pk, "a", range(1, 50))  # piece 0 is the unique rarest
        order = download_all(pk, "s")
        firsts.add(order[0])
        # once two pieces are had, the rarest piece comes next unless already taken at random
        if 0 not in order[:2]:
            assert order[2] == 0
    assert len(firsts) > 3  # the first piece is random, not always the rarest (0)


def test_partial_pieces_are_finished_first() -> None:
    pk = PiecePicker(layout(4 * B, 4 * 4 * B), random.Random(0), random_first_pieces=0)
    pk.peer_have_all("s")
    give(pk, "a", [1, 2, 3])
    give(pk, "b", [2, 3])  # piece 0 rarest (seed only), then 1
    first = pk.pick("a", None, 1)  # a lacks 0, starts the rarest it has: piece 1
    assert first == [Block(1, 0, B)]
    # the seed would pick piece 0 by rarity, but piece 1 is partial: its blocks come first
    blocks = pk.pick("s", None, 4)
    assert blocks == [Block(1, B, B), Block(1, 2 * B, B), Block(1, 3 * B, B), Block(0, 0, B)]


def test_no_block_is_requested_twice_outside_endgame() -> None:
    pk = PiecePicker(layout(4 * B, 10 * 4 * B), random.Random(3))
    for p in "abc":
        pk.peer_have_all(p)
    seen: set[Block] = set()
    while not pk.in_endgame():
        for p in "abc":
            if pk.in_endgame():
                break
            for b in pk.pick(p, None, 1):
                assert b not in seen
                seen.add(b)
    assert len(seen) == 40


def test_skipped_file_pieces_never_picked_but_shared_boundary_pieces_are() -> None:
    # piece 32 KiB; f0 0..40000 (pieces 0,1), f1 40000..140000 (pieces 1..4), f2 (pieces 4..5)
    lay = layout(2 * B, 40000, 100000, 40000)
    pk = PiecePicker(lay, random.Random(0), random_first_pieces=0)
    pk.set_file_priorities([4, 0, 4])
    assert [pk.piece_priority(i) for i in range(lay.num_pieces)] == [4, 4, 0, 0, 4, 4]
    pk.peer_have_all("s")
    order = download_all(pk, "s", 4)
    assert sorted(order) == [0, 1, 4, 5]  # 2 and 3 lie wholly inside the skipped file
    assert pk.is_complete()
    assert pk.left_bytes() == 0
    assert 2 not in pk.have and 3 not in pk.have
    pk.set_file_priorities([4, 1, 4])  # wanting the file again makes it incomplete
    assert not pk.is_complete()
    assert pk.left_bytes() == 2 * 2 * B
    assert sorted(download_all(pk, "s")) == [2, 3]


def test_piece_priority_beats_rarity() -> None:
    pk = one_block_pieces(5)
    pk.peer_have_all("s")
    give(pk, "a", [0, 1, 2, 3])  # piece 4 is the rarest
    pk.set_piece_priority(2, 7)
    pk.set_piece_priority(3, 0)
    order = download_all(pk, "s")
    assert order[0] == 2 and order[1] == 4
    assert 3 not in order


def test_sequential_mode_goes_in_index_order_and_skips_what_the_peer_lacks() -> None:
    pk = PiecePicker(layout(B, 10 * B), random.Random(0))
    pk.set_sequential(True)
    give(pk, "a", [1, 3, 5, 6, 7, 8, 9])
    assert download_all(pk, "a") == [1, 3, 5, 6, 7, 8, 9]
    pk.peer_have_all("s")
    assert download_all(pk, "s") == [0, 2, 4]


def test_endgame_duplicates_last_blocks_and_cancels_on_arrival() -> None:
    pk = PiecePicker(layout(2 * B, 2 * B), random.Random(0))
    for p in "abc":
        pk.peer_have_all(p)
    assert pk.pick("a", None, 5) == [Block(0, 0, B), Block(0, B, B)]
    assert pk.in_endgame()
    dup_b = pk.pick("b", None, 5)
    assert sorted(dup_b, key=lambda b: b.begin) == [Block(0, 0, B), Block(0, B, B)]
    assert pk.pick("a", None, 5) == []  # never twice to the same peer
    assert len(pk.pick("c", None, 5)) == 2  # up to 3 requesters per block
    assert pk.pick("d", None, 5) == []  # d is not registered: has nothing
    pk.peer_have_all("d")
    assert pk.pick("d", None, 5) == []  # the cap of requesters is reached
    got = pk.block_received("b", Block(0, B, B))
    assert got.accepted and not got.piece_complete
    assert sorted(got.cancels, key=str) == [("a", Block(0, B, B)), ("c", Block(0, B, B))]
    late = pk.block_received("a", Block(0, B, B))  # crossed our cancel: dropped
    assert not late.accepted
    done = pk.block_received("c", Block(0, 0, B))
    assert done.accepted and done.piece_complete
    assert {p for p, _ in done.cancels} == {"a", "b"}
    pk.piece_passed(0)
    assert pk.is_complete() and all(pk.requests_of(p) == [] for p in "abc")


def test_peer_gone_returns_its_requests_to_the_pool() -> None:
    pk = PiecePicker(layout(4 * B, 2 * 4 * B), random.Random(0))
    pk.peer_have_all("a")
    pk.peer_have_all("b")
    taken = pk.pick("a", None, 3)
    released = pk.peer_gone("a")
    assert set(released) == set(taken) and len(released) == 3
    assert pk.availability(0) == 1
    again = pk.pick("b", None, 8)
    assert set(taken) <= set(again) and len(again) == 8


def test_timed_out_request_goes_to_another_peer_and_a_late_arrival_still_counts() -> None:
    pk = PiecePicker(layout(2 * B, 2 * B), random.Random(0))
    pk.peer_have_all("slow")
    pk.peer_have_all("fast")
    blocks = pk.pick("slow", None, 2)
    pk.request_timed_out("slow", blocks[0])
    assert pk.pick("fast", None, 1) == [blocks[0]]
    assert pk.block_received("slow", blocks[0]).accepted  # first copy wins, whoever sends it
    assert not pk.block_received("fast", blocks[0]).accepted


def test_hash_failure_puts_every_block_back_and_names_the_senders() -> None:
    pk = PiecePicker(layout(2 * B, 2 * B), random.Random(0))
    pk.peer_have_all("a")
    pk.peer_have_all("b")
    b0, b1 = Block(0, 0, B), Block(0, B, B)
    assert pk.pick("a", None, 1) == [b0]
    assert pk.pick("b", None, 1) == [b1]
    pk.block_received("a", b0)
    assert pk.block_received("b", b1).piece_complete
    assert pk.piece_failed(0) == {"a", "b"}
    assert 0 not in pk.have and not pk.is_complete()
    assert pk.pick("a", None, 5) == [b0, b1]


def test_blocks_not_asked_for_or_malformed_are_not_accepted() -> None:
    pk = PiecePicker(layout(2 * B, 3 * 2 * B), random.Random(0), random_first_pieces=0)
    pk.peer_have_all("a")
    [blk] = pk.pick("a", None, 1)
    assert not pk.block_received("a", Block(blk.index, 1, B)).accepted  # not aligned
    assert not pk.block_received("a", Block(blk.index, 0, 100)).accepted  # wrong length
    assert not pk.block_received("a", Block(blk.index, 4 * B, B)).accepted  # past the piece
    other = (blk.index + 1) % 3
    assert not pk.block_received("a", Block(other, 0, B)).accepted  # a piece not started
    assert pk.block_received("a", blk).accepted


def test_left_bytes_excludes_pad_and_is_interesting_tracks_needs() -> None:
    # f0 = 40000 bytes then a pad of 25536 to the next 32 KiB boundary, then f1 = 30000
    lay = layout(2 * B, 40000, 30000, pads={0: 25536})
    pk = PiecePicker(lay, random.Random(0), have=[0])
    assert pk.left_bytes() == (40000 - 2 * B) + 30000
    give(pk, "a", [0])
    pk.peer_have_all("s")
    assert not pk.is_interesting("a") and pk.is_interesting("s")
    pk.peer_have("a", 2)
    assert pk.is_interesting("a")
    assert pk.wants_piece(1) and not pk.wants_piece(0)


def test_last_piece_and_block_are_short() -> None:
    t = make_torrent([(("x",), payload(3 * B + 100))], 2 * B)
    pk = PiecePicker(t, random.Random(0), random_first_pieces=0)
    pk.peer_have_all("s")
    blocks = pk.pick("s", None, 10)
    assert sorted(blocks, key=lambda b: (b.index, b.begin)) == [
        Block(0, 0, B),
        Block(0, B, B),
        Block(1, 0, B),
        Block(1, B, 100),
    ]


def test_bitfield_of_the_wrong_size_is_refused() -> None:
    pk = one_block_pieces(4)
    with pytest.raises(ValueError):
        pk.peer_bitfield("a", Bitfield(5))
    with pytest.raises(IndexError):
        pk.peer_have("a", 4)


def test_a_peer_with_few_pieces_gets_the_rarest_of_its_own() -> None:
    pk = PiecePicker(layout(B, 2000 * B), random.Random(0), random_first_pieces=0)
    pk.peer_have_all("seed")
    give(pk, "x", range(0, 2000, 2))
    give(pk, "new", [10, 11, 500, 1999])  # few pieces: picked from its own set
    # availability: 10 -> 3, 11 -> 2, 500 -> 3, 1999 -> 2
    order = download_all(pk, "new")
    assert sorted(order[:2]) == [11, 1999] and sorted(order[2:]) == [10, 500]


def test_an_explicit_small_set_limits_the_pick_as_for_allowed_fast() -> None:
    pk = one_block_pieces(50)
    pk.peer_have_all("s")
    give(pk, "a", range(40))  # 40..49 are rarer
    assert [b.index for b in pk.pick("s", {3, 7}, 5)] in ([3, 7], [7, 3])
    assert pk.pick("s", {3, 7}, 5) == []  # both already requested
    assert pk.pick("unknown", None, 5) == []  # nothing known about this peer


def test_endgame_offers_a_block_again_once_another_peer_withdraws_it() -> None:
    pk = PiecePicker(layout(2 * B, 2 * B), random.Random(0), endgame_max_requesters=2)
    for p in "abc":
        pk.peer_have_all(p)
    both = pk.pick("a", None, 2)
    assert len(pk.pick("b", None, 2)) == 2  # duplicates: every block now has 2 requesters
    assert pk.pick("c", None, 2) == []  # cap reached: c finds nothing (and is not rescanned)
    assert pk.pick("c", None, 2) == []
    pk.request_timed_out("a", both[0])  # a withdraws one: c may have it now
    assert pk.pick("c", None, 2) == [both[0]]
    assert pk.block_received("c", both[0]).accepted  # (c has nothing of its own in flight again)
    pk.peer_gone("b")  # b leaves: its blocks come back for c
    assert pk.pick("c", None, 2) == [both[1]]


def test_endgame_duplicates_go_only_to_a_peer_with_nothing_in_flight() -> None:
    pk = PiecePicker(layout(2 * B, 8 * B), random.Random(0), random_first_pieces=0)
    for p in "ab":
        pk.peer_have_all(p)
    first = pk.pick("a", None, 2)
    rest = pk.pick("b", None, 6)  # the last free blocks: endgame from now on
    assert len(rest) == 6 and pk.in_endgame()
    assert pk.pick("a", None, 10) == []  # a still waits for its own two blocks: no duplicate
    for block in first:
        assert pk.block_received("a", block).accepted
    dups = pk.pick("a", None, 10)  # drained: now it may take b's blocks too, a batch at a time
    assert len(dups) == pk.endgame_batch == 4 and set(dups) <= set(rest)
    assert pk.pick("a", None, 10) == []  # (its batch is in flight)
    for block in dups:
        assert pk.block_received("a", block).accepted
    assert set(pk.pick("a", None, 10)) == set(rest) - set(dups)


def _slow_queue() -> tuple[PiecePicker, list[Block], list[Block]]:
    """One piece of 40 blocks, all asked of "slow": 20 at t=0 and 20 at t=1. At t=1 its queue
    delay is 1 s (its oldest request's age): the first 20 are due now, the last 20 at t=2."""
    pk = PiecePicker(layout(40 * B, 40 * B), random.Random(0), random_first_pieces=0)
    for p in ("slow", "fast", "slower"):
        pk.peer_have_all(p)
    early, late = pk.pick("slow", None, 20, now=0.0), pk.pick("slow", None, 20, now=1.0)
    assert len(early) == len(late) == 20 and pk.in_endgame()
    return pk, early, late


def test_endgame_a_fast_drained_peer_takes_the_blocks_due_last_elsewhere() -> None:
    """A drained peer whose rate is known takes, beyond the batch of 4, every block it would
    deliver sooner than its requester (the back of a slow peer's queue); none due now."""
    pk, early, late = _slow_queue()
    dups = pk.pick("fast", None, 100, now=1.0, block_seconds=0.01)
    assert set(dups) == set(late)
    got = pk.block_received("fast", late[-1])
    assert got.accepted and got.cancels == (("slow", late[-1]),)  # CANCELed at the slow peer


def test_endgame_a_slow_drained_peer_takes_only_what_it_would_deliver_sooner() -> None:
    """At 0.2 s a block and 0.5 s margin, its 1st block would come at 0.7 s, its 2nd at 0.9 s,
    its 3rd at 1.1 s: later than the 1 s the slow peer needs for them. So two, the last due."""
    pk, early, late = _slow_queue()
    dups = pk.pick("slower", None, 100, now=1.0, block_seconds=0.2)
    assert len(dups) == 2 and set(dups) <= set(late)


def test_endgame_duplicates_without_a_rate_are_a_batch_of_those_due_last() -> None:
    pk, early, late = _slow_queue()
    dups = pk.pick("fast", None, 100, now=1.0)
    assert len(dups) == pk.endgame_batch and set(dups) <= set(late)


# -- runs of whole pieces (BEP 19 web seeds) ---------------------------------------------------

def test_pick_run_takes_consecutive_fresh_pieces_whole() -> None:
    pk = PiecePicker(layout(2 * B, 10 * 2 * B), random.Random(0), random_first_pieces=0,
                     endgame_batch=20)
    pk.set_sequential(True)
    pk.peer_have_all("web")
    give(pk, "peer", range(10))
    pk.pick("peer", None, 1)  # the peer starts piece 0 (one of its two blocks)
    run = pk.pick_run("web", 4)
    assert run == [1, 2, 3, 4]  # fresh pieces only, consecutive
    asked = sorted((b.index, b.begin) for b in pk.requests_of("web"))
    assert asked == [(i, j * B) for i in run for j in (0, 1)]
    # the peer gets the rest of its piece and then pieces after the run, none of the run's...
    assert {b.index for b in pk.pick("peer", None, 11)} == {0, 5, 6, 7, 8, 9}
    # ...until endgame, when (its own blocks in) it may duplicate the run's blocks like any other
    for block in pk.requests_of("peer"):
        pk.block_received("peer", block)
    assert pk.in_endgame() and {b.index for b in pk.pick("peer", None, 20)} == {1, 2, 3, 4}


def test_pick_run_stops_at_a_piece_already_in_play_or_had() -> None:
    pk = PiecePicker(layout(B, 10 * B), random.Random(0), random_first_pieces=0)
    pk.set_sequential(True)
    pk.peer_have_all("web")
    give(pk, "peer", [3])
    b = pk.pick("peer", None, 1)[0]
    assert b.index == 3
    assert pk.pick_run("web", 8) == [0, 1, 2]
    assert pk.pick_run("web", 8) == [4, 5, 6, 7, 8, 9]
    assert pk.pick_run("web", 8) == [3]  # nothing fresh left: the peer's piece, asked of it too
    assert pk.pick_run("web", 8) == []  # (every missing block asked of it already)


def test_pick_run_leaves_a_begun_piece_asked_of_as_many_as_endgame_asks() -> None:
    """Web seeds duplicate a slow peer's piece up to ``endgame_max_requesters`` sources a block;
    one more web seed finds nothing to take."""
    pk = PiecePicker(layout(B, B), random.Random(0), random_first_pieces=0, endgame_max_requesters=3)
    for source in ("slow", "web1", "web2", "web3"):
        pk.peer_have_all(source)
    assert [b.index for b in pk.pick("slow", None, 1)] == [0]
    assert pk.pick_run("web1", 4) == [0] and pk.pick_run("web2", 4) == [0]
    assert pk.pick_run("web3", 4) == []


def test_pick_run_finishes_a_piece_a_peer_began_and_left() -> None:
    """A peer sent half a piece and left: with nothing fresh left, the web seed takes that piece
    (its missing blocks; the one received comes again as waste) and the piece completes."""
    pk = PiecePicker(layout(2 * B, 2 * 2 * B), random.Random(0), random_first_pieces=0)
    pk.set_sequential(True)
    give(pk, "peer", [0])
    pk.peer_have_all("web")
    first, second = pk.pick("peer", None, 2)
    assert (first.index, second.index) == (0, 0)
    assert pk.block_received("peer", first).accepted
    pk.peer_gone("peer")  # (its other request back to the picker: free)
    assert pk.pick_run("web", 4) == [1]  # (fresh first)
    assert pk.pick_run("web", 4) == [0]
    assert sorted(b.begin for b in pk.requests_of("web") if b.index == 0) == [B]
    assert not pk.block_received("web", Block(0, 0, B)).accepted  # (had: waste)
    assert pk.block_received("web", Block(0, B, B)).piece_complete


def test_pick_run_in_endgame_duplicates_a_slow_peers_blocks_oldest_first_and_cancels_them() -> None:
    """A slow peer holds the last pieces' requests (none free): the web seed takes the piece
    whose oldest request is the oldest, every block of it asked of both; the block it delivers
    first is CANCELled at the peer, and the peer's late copy is waste."""
    pk = PiecePicker(layout(B, 3 * B), random.Random(0), random_first_pieces=0)
    pk.set_sequential(True)
    pk.peer_have_all("slow")
    pk.peer_have_all("web")
    assert [b.index for b in pk.pick("slow", None, 1, now=5.0)] == [0]
    assert [b.index for b in pk.pick("slow", None, 1, now=1.0)] == [1]  # (asked for first)
    assert pk.pick_run("web", 4) == [2]
    assert pk.pick_run("web", 4) == [1]
    result = pk.block_received("web", Block(1, 0, B))
    assert result.piece_complete and result.cancels == (("slow", Block(1, 0, B)),)
    assert not pk.block_received("slow", Block(1, 0, B)).accepted
    assert pk.pick_run("web", 4) == [0]
    assert pk.pick_run("web", 4) == []


def test_pick_run_pieces_arrive_as_blocks_and_released_ones_go_back() -> None:
    pk = PiecePicker(layout(2 * B, 4 * 2 * B), random.Random(0), random_first_pieces=0)
    pk.set_sequential(True)
    pk.peer_have_all("web")
    run = pk.pick_run("web", 2)
    assert run == [0, 1]
    assert not pk.block_received("web", Block(0, 0, B)).piece_complete
    assert pk.block_received("web", Block(0, B, B)).piece_complete
    pk.piece_passed(0)
    pk.release_requests("web")  # the run failed half-way: piece 1 is free for anyone
    give(pk, "peer", range(4))
    assert [b.index for b in pk.pick("peer", None, 2)] == [1, 1]
    assert pk.pick_run("web", 0) == [] and pk.pick_run("nobody", 3) == []


def test_pick_run_skips_unwanted_pieces() -> None:
    pk = PiecePicker(layout(B, 6 * B), random.Random(0), random_first_pieces=0)
    pk.set_sequential(True)
    pk.set_piece_priority(2, 0)
    pk.peer_have_all("web")
    assert pk.pick_run("web", 10) == [0, 1]
    assert pk.pick_run("web", 10) == [3, 4, 5]


def test_a_piece_lost_from_disk_is_wanted_again_and_the_torrent_is_not_complete() -> None:
    pk = PiecePicker(layout(2 * B, 3 * 2 * B), random.Random(0), have=range(3))
    pk.set_file_priorities([4])
    assert pk.is_complete() and pk.left_bytes() == 0
    pk.piece_lost(1)
    assert 1 not in pk.have and pk.wants_piece(1) and not pk.is_complete()
    assert pk.left_bytes() == 2 * B
    pk.peer_have_all("a")
    assert pk.pick("a", None, 5) == [Block(1, 0, B), Block(1, B, B)]
    pk.piece_lost(1)  # (not had: nothing changes)
    assert pk.left_bytes() == 2 * B


def test_make_block_is_the_frozen_block_the_dataclass_makes() -> None:
    from dataclasses import FrozenInstanceError

    from torrent_engine.policy.picker_parts import make_block

    made = make_block(2, BLOCK_SIZE, 100)
    assert type(made) is Block and made == Block(2, BLOCK_SIZE, 100)
    assert {made: 1}[Block(2, BLOCK_SIZE, 100)] == 1  # (hashed as one)
    with pytest.raises(FrozenInstanceError):
        made.length = 1  # type: ignore[misc]


def test_distributed_copies_are_the_rarest_count_plus_the_share_above_it() -> None:
    """libtorrent's ``distributed_copies`` (qBittorrent's ``availability``): seeds count whole."""
    pk = one_block_pieces(4)
    assert pk.distributed_copies() == 0.0
    give(pk, "a", [0, 1, 2])
    assert pk.distributed_copies() == 0.75  # (piece 3 held by none: 0 whole copies, 3 of 4 above)
    give(pk, "b", [3])
    assert pk.distributed_copies() == 1.0
    pk.peer_have("b", 0)
    assert pk.distributed_copies() == 1.25
    pk.peer_have_all("s")
    assert pk.distributed_copies() == 2.25
    pk.peer_gone("a")
    assert pk.distributed_copies() == 1.5  # (b: pieces 0 and 3; s: all)


def test_distributed_copies_count_our_own_pieces_as_libtorrent_does() -> None:
    """(qbittorrent-nox showed 1.179 beside our 1 for a download 18 % done from one seed: its
    libtorrent counts its own pieces among the copies.)"""
    pk = one_block_pieces(4)
    give(pk, "a", [0, 1])
    assert pk.distributed_copies() == 0.5
    pk.piece_passed(2)
    assert pk.distributed_copies() == 0.75  # (piece 3 held by none; 0, 1 and 2 by one each)
    pk.piece_passed(3)
    assert pk.distributed_copies() == 1.0
    pk.piece_passed(0)
    assert pk.distributed_copies() == 1.25  # (piece 0: a's and ours)
    pk.peer_have_all("s")
    assert pk.distributed_copies() == 2.25
    pk.piece_lost(3)
    assert pk.distributed_copies() == 1.75  # (piece 3: the seed's alone)


def test_the_piece_downloading_from_a_peer_is_that_of_its_oldest_request() -> None:
    pk = one_block_pieces(6)
    give(pk, "a", range(6))
    assert pk.downloading_piece("a") is None  # nothing asked of it
    first, second, *_ = pk.pick("a", None, 3)
    assert pk.downloading_piece("a") == first.index
    pk.block_received("a", first)
    assert pk.downloading_piece("a") == second.index
