"""PiecePicker deadlines (streaming): deadline pieces first and in order, kept off slow peers,
a late piece a reader waits on asked of a second peer, a seek's old requests giving way, and
normal picking back once the deadlines are cleared."""

from __future__ import annotations

import random

from tests.unit.torrent_factory import layout
from torrent_engine.formats.bitfield import Bitfield
from torrent_engine.policy.picker import BLOCK_SIZE, Block, PiecePicker

B = BLOCK_SIZE


def picker(pieces: int, blocks_per_piece: int = 1) -> PiecePicker:
    return PiecePicker(layout(blocks_per_piece * B, pieces * blocks_per_piece * B), random.Random(0),
                       random_first_pieces=0)


def give_all(pk: PiecePicker, *peers: str) -> None:
    for p in peers:
        pk.peer_bitfield(p, Bitfield(pk.num_pieces, range(pk.num_pieces)))


def test_deadline_pieces_come_first_in_their_order() -> None:
    pk = picker(20)
    give_all(pk, "a")
    pk.set_deadlines([15, 3, 9])
    picked = [b.index for b in pk.pick("a", None, 5)]
    assert picked[:3] == [15, 3, 9]
    assert pk.deadlines == [15, 3, 9]


def test_deadlines_skip_had_and_skipped_pieces() -> None:
    pk = picker(6)
    give_all(pk, "a")
    pk.piece_passed(2)
    pk.set_piece_priority(4, 0)
    pk.set_deadlines([2, 4, 5])
    assert pk.deadlines == [5]
    assert [b.index for b in pk.pick("a", None, 1)] == [5]


def test_a_passed_piece_leaves_the_deadlines() -> None:
    pk = picker(4)
    give_all(pk, "a")
    pk.set_deadlines([1, 2])
    (b,) = pk.pick("a", None, 1)
    assert pk.block_received("a", b).piece_complete
    pk.piece_passed(b.index)
    assert pk.deadlines == [2]


def test_slow_peer_is_kept_off_deadline_pieces() -> None:
    pk = picker(10, blocks_per_piece=4)
    give_all(pk, "fast", "slow")
    pk.set_deadlines([7])
    slow = pk.pick("slow", None, 8, fast=False)
    assert slow and all(b.index != 7 for b in slow)
    fast = pk.pick("fast", None, 2)
    assert [b.index for b in fast] == [7, 7]
    # the rest of piece 7 stays for a fast peer, even now that it is partly requested
    more = pk.pick("slow", None, 8, fast=False)
    assert all(b.index != 7 for b in more)
    assert {b.index for b in pk.pick("fast", None, 2)} == {7}


def test_late_waited_piece_is_asked_of_a_second_peer_and_first_arrival_cancels() -> None:
    pk = picker(4, blocks_per_piece=2)
    give_all(pk, "a", "b")
    pk.set_deadlines([1], waiting=[1], late_after=2.0)
    first = pk.pick("a", None, 2, now=10.0)
    assert [b.index for b in first] == [1, 1]
    # not late yet: b gets other pieces, not duplicates
    assert all(b.index != 1 for b in pk.pick("b", None, 1, now=11.0))
    dup = pk.pick("b", None, 4, now=12.5)
    assert [b for b in dup if b.index == 1] == first
    got = pk.block_received("b", first[0])
    assert got.accepted and got.cancels == (("a", first[0]),)
    assert not pk.is_requested("a", first[0])


def test_not_waiting_deadline_piece_is_not_duplicated() -> None:
    pk = picker(4, blocks_per_piece=2)
    give_all(pk, "a", "b")
    pk.set_deadlines([1], late_after=0.5)
    pk.pick("a", None, 2, now=0.0)
    assert all(b.index != 1 for b in pk.pick("b", None, 4, now=100.0))


def test_seek_old_requests_give_way() -> None:
    pk = picker(20, blocks_per_piece=2)
    give_all(pk, "a")
    pk.set_deadlines([0, 1])
    asked = pk.pick("a", None, 10)
    assert [b.index for b in asked[:4]] == [0, 0, 1, 1]
    pk.set_deadlines([15, 16])  # the reader seeked
    withdrawn = pk.give_way("a")
    kept = [b for b in asked if b.index in (15, 16)]  # already asked: part of the new window
    def key(b: Block) -> tuple[int, int]:
        return (b.index, b.begin)

    assert sorted(withdrawn, key=key) == sorted((b for b in asked if b not in kept), key=key)
    assert pk.in_flight("a") == len(kept)
    assert {b.index for b in pk.pick("a", None, 4 - len(kept))} <= {15, 16}
    # once the new window is all asked for, nothing more gives way
    assert pk.give_way("a") == []


def test_a_seek_into_pieces_already_asked_for_moves_them_up_the_peers_queue() -> None:
    pk = picker(20, blocks_per_piece=2)
    give_all(pk, "a", "b")
    assert len(pk.pick("a", None, 40)) == 40  # every block of the torrent asked of "a", in order
    pk.set_deadlines([15, 16])  # the reader seeked: no block of the window is left to ask for
    withdrawn = pk.give_way("a")
    # the others give way: the seeder drops them, and the window's requests are next in its queue
    assert {b.index for b in withdrawn} == set(range(20)) - {15, 16}
    assert pk.in_flight("a") == 4
    assert {b.index for b in pk.pick("a", None, 40)} == set(range(20)) - {15, 16}  # asked again after
    # a peer that holds none of the window's requests and leaves none of its blocks unasked for
    # keeps its own: they are in no one's way
    pk.pick("b", None, 4)
    assert pk.give_way("b") == []


def test_withdrawn_block_of_a_started_piece_is_still_accepted_if_it_arrives() -> None:
    pk = picker(4, blocks_per_piece=2)
    give_all(pk, "a")
    first, second = pk.pick("a", None, 2)
    assert pk.block_received("a", first).accepted
    pk.set_deadlines([3])
    assert pk.give_way("a") == [second]
    assert pk.block_received("a", Block(second.index, second.begin, B)).piece_complete


def test_clearing_deadlines_restores_normal_picking() -> None:
    def order(with_deadlines: bool) -> list[int]:
        pk = picker(12)
        give_all(pk, "a")
        pk.peer_bitfield("b", Bitfield(12, range(6)))
        if with_deadlines:
            pk.set_deadlines([11, 10])
            pk.set_deadlines([])
        out = []
        while blocks := pk.pick("a", None, 1):
            out.append(blocks[0].index)
            pk.block_received("a", blocks[0])
            pk.piece_passed(blocks[0].index)
        return out

    assert order(True)[:6] == order(False)[:6]
    assert sorted(order(True)[:6]) == [6, 7, 8, 9, 10, 11]  # rarest first again
