"""BEP 16 super-seeding offers (policy/superseed.py)."""

from __future__ import annotations

import random

from torrent_engine.policy.superseed import Offer, SuperSeeder


def seeder(num_pieces: int = 8) -> SuperSeeder:
    return SuperSeeder(num_pieces, random.Random(1))


def test_each_peer_is_offered_a_different_piece() -> None:
    s = seeder(8)
    offers = [s.join(peer) for peer in "abcd"]
    assert all(o is not None for o in offers)
    assert len({o.index for o in offers if o is not None}) == 4


def test_the_rarest_piece_is_offered() -> None:
    s = seeder(4)
    s.watch("x", [0, 1, 2])
    s.watch("y", [0, 1])
    offer = s.join("a")
    assert offer == Offer("a", 3)


def test_next_offer_only_once_seen_at_another_peer() -> None:
    s = seeder(8)
    first = s.join("a")
    s.join("b")
    assert first is not None
    assert s.have("a", first.index) == []  # "a" got it: not spread yet, "b" lacks it
    assert s.offered("a") == first.index
    offers = s.have("b", first.index)  # seen at "b": "a" is offered the next
    assert [o.peer for o in offers] == ["a"]
    assert offers[0].index != first.index
    assert s.offered("a") == offers[0].index


def test_a_lone_peer_moves_on_when_it_has_its_piece() -> None:
    s = seeder(3)
    first = s.join("a")
    assert first is not None
    offers = s.have("a", first.index)
    assert len(offers) == 1 and offers[0].index != first.index


def test_only_the_current_offer_is_served_to_a_hidden_peer() -> None:
    s = seeder(8)
    s.watch("old")
    first = s.join("a")
    assert first is not None
    assert s.may_serve("a", first.index)
    assert not s.may_serve("a", (first.index + 1) % 8)
    assert s.may_serve("old", 5)  # it knows our real pieces


def test_a_bitfield_holding_the_offer_brings_another() -> None:
    s = seeder(4)
    first = s.join("a")
    assert first is not None
    offers = s.bitfield("a", [first.index])
    assert len(offers) == 1 and offers[0].index != first.index


def test_a_peer_lacking_nothing_is_offered_nothing() -> None:
    s = seeder(2)
    assert s.join("a", [0, 1]) is None
    assert s.offered("a") is None


def test_pieces_spread_one_upload_each() -> None:
    """Four peers that pass every piece on: the seed uploads each piece once."""
    s = seeder(16)
    peers = ["a", "b", "c", "d"]
    uploads = 0
    pending = [o for o in (s.join(p) for p in peers) if o is not None]
    have: dict[str, set[int]] = {p: set() for p in peers}
    for _ in range(1000):
        if not pending:
            break
        offer = pending.pop(0)
        peer = str(offer.peer)
        if offer.index not in have[peer]:
            uploads += 1  # the peer fetches its offer from us
            have[peer].add(offer.index)
            pending += s.have(peer, offer.index)
        # it passes what it has on to the others, who tell the seed
        for other in peers:
            for index in sorted(have[peer] - have[other]):
                have[other].add(index)
                pending += s.have(other, index)
    assert all(len(h) == 16 for h in have.values())
    assert uploads == 16


def test_leave_forgets_the_peer() -> None:
    s = seeder(4)
    s.watch("x", [0, 1, 2])
    s.leave("x")
    assert s.join("a") is not None
    assert not s.hidden("x") and s.hidden("a")


def test_losing_interest_counts_as_having_the_offer() -> None:
    """A client that sends no HAVE to a peer it thinks has the piece (ours) says so by losing
    interest: alone, it is offered the next piece."""
    s = seeder(4)
    first = s.join("a")
    assert first is not None
    offers = s.not_interested("a")
    assert len(offers) == 1 and offers[0].index != first.index
    s2 = seeder(4)
    one = s2.join("a")
    s2.join("b")
    assert one is not None and s2.not_interested("a") == []  # "b" lacks it: it must spread first


def test_a_piece_the_seed_lost_is_never_offered() -> None:
    lost = {0, 1, 2}
    s = SuperSeeder(4, random.Random(1), had=lambda index: index not in lost)
    assert s.join("a") == Offer("a", 3)
    assert s.have("a", 3) == []  # nothing else to offer it
