"""Property tests of PiecePicker over random layouts, priorities, peers and event sequences.

Properties: a block is handed out to a second peer only in endgame (when no free block is
left), never twice to the same peer; pieces wholly inside skipped files are never requested;
a web seed's run (``pick_run``) is fresh pieces while any is left, else one begun piece (its
missing blocks, some maybe asked of peers too); after a seed has delivered everything (with
hash failures on the way), the picker is complete, ``left_bytes()`` is 0, and ``have`` is
exactly the wanted pieces.
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.torrent_factory import layout
from torrent_engine.formats.bitfield import Bitfield
from torrent_engine.policy.picker import BLOCK_SIZE, Block, PiecePicker

PEERS = ("p0", "p1", "p2")
WEB = "web"  # a web seed: whole pieces (``pick_run``)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_picker_properties(data: st.DataObject) -> None:
    piece_length = data.draw(st.integers(1, 4), label="blocks per piece") * BLOCK_SIZE
    lengths = data.draw(st.lists(st.integers(0, 4 * piece_length), min_size=1, max_size=5), label="files")
    if sum(lengths) == 0:
        lengths[0] = 1
    lay = layout(piece_length, *lengths)
    prios = data.draw(st.lists(st.integers(0, 7), min_size=len(lengths), max_size=len(lengths)), label="prio")
    pk = PiecePicker(
        lay,
        random.Random(data.draw(st.integers(0, 2**32), label="seed")),
        random_first_pieces=data.draw(st.integers(0, 3)),
        endgame_max_requesters=data.draw(st.integers(2, 3)),
        sparse_peer_limit=data.draw(st.sampled_from([0, 2, 256]), label="sparse limit"),
    )
    pk.set_file_priorities(prios)
    pk.set_sequential(data.draw(st.booleans(), label="sequential"))
    wanted: set[int] = set()
    for f, p in zip(lay.files, prios, strict=True):
        if p and f.length:
            first, last = f.offset // piece_length, (f.offset + f.length - 1) // piece_length
            wanted.update(range(first, last + 1))
    n = lay.num_pieces

    for peer in PEERS:
        if data.draw(st.booleans()):
            pk.peer_have_all(peer)
        else:
            pk.peer_bitfield(peer, Bitfield(n, data.draw(st.sets(st.integers(0, n - 1)))))

    requested: dict[Block, set[str]] = {}

    def check_pick(peer: str, blocks: list[Block]) -> None:
        for b in blocks:
            assert b.index in wanted, "a piece of skipped files was requested"
            holders = requested.setdefault(b, set())
            assert peer not in holders, "the same block twice to one peer"
            if holders:
                assert pk.in_endgame(), "a duplicate request outside endgame"
            holders.add(peer)

    def check_nothing_left_for(peer: str) -> None:
        """An endgame pick of a drained peer that came back short left no block this peer could
        duplicate."""
        holders: dict[Block, set[str]] = {}
        for p in (*PEERS, WEB):
            for b in pk.requests_of(p):
                holders.setdefault(b, set()).add(p)
        has = pk.peer_has(peer)
        for b, who in holders.items():
            eligible = peer not in who and len(who) < pk.endgame_max_requesters
            assert not (eligible and b.index in has and pk.piece_priority(b.index) > 0), (peer, b, who)

    def forget(peer: str, blocks: list[Block]) -> None:
        for b in blocks:
            requested.get(b, set()).discard(peer)

    def deliver(peer: str, b: Block, fail: bool) -> None:
        got = pk.block_received(peer, b)
        requested.pop(b, None)
        if got.piece_complete:
            if fail:
                pk.piece_failed(b.index)
            else:
                pk.piece_passed(b.index)

    pk.peer_have_all(WEB)

    def web_run() -> None:
        fresh = wanted - set(pk.have) - set(pk.downloading())
        before = set(pk.requests_of(WEB))
        run = pk.pick_run(WEB, data.draw(st.integers(1, 4)))
        got = set(pk.requests_of(WEB)) - before
        assert {b.index for b in got} == set(run) and set(run) <= wanted
        if fresh:  # (fresh pieces first: whole, asked of nobody else)
            assert set(run) <= fresh and all(not requested.get(b) for b in got), (run, fresh)
        else:
            assert len(run) <= 1
        for b in got:
            assert WEB not in requested.get(b, set()), "the same block twice to the web seed"
            requested.setdefault(b, set()).add(WEB)

    for _ in range(data.draw(st.integers(0, 80), label="steps")):
        op = data.draw(st.sampled_from(["pick", "pick", "recv", "recv", "timeout", "gone", "have", "run"]))
        peer = data.draw(st.sampled_from((*PEERS, WEB) if op in ("recv", "timeout", "gone") else PEERS))
        if op == "run":
            web_run()
        elif op == "pick":
            if data.draw(st.booleans()):
                want = data.draw(st.integers(1, 6))
                drained = pk.in_flight(peer) == 0  # endgame duplicates go only to a drained peer,
                got = pk.pick(peer, None, want)  # at most endgame_batch in one pick
                check_pick(peer, got)
                if drained and len(got) < min(want, pk.endgame_batch) and pk.in_endgame():
                    check_nothing_left_for(peer)
            else:  # an explicit piece set, as for BEP 6 allowed-fast pieces while choked
                fast = data.draw(st.frozensets(st.integers(0, n - 1), max_size=4))
                check_pick(peer, pk.pick(peer, fast, data.draw(st.integers(1, 6))))
        elif op == "recv":
            mine = pk.requests_of(peer)
            if mine:
                deliver(peer, data.draw(st.sampled_from(mine)), data.draw(st.booleans()))
        elif op == "timeout":
            mine = pk.requests_of(peer)
            if mine:
                b = data.draw(st.sampled_from(mine))
                pk.request_timed_out(peer, b)
                forget(peer, [b])
        elif op == "gone":
            forget(peer, pk.peer_gone(peer))
            pk.peer_have_none(peer)
        else:
            pk.peer_have(peer, data.draw(st.integers(0, n - 1)))
        assert set(pk.have) <= wanted

    for peer in (*PEERS, WEB):
        forget(peer, pk.peer_gone(peer))
    pk.peer_have_all("seed")
    for _ in range(10 * n + 10):
        blocks = pk.pick("seed", None, 8)
        if not blocks:
            break
        check_pick("seed", blocks)
        for b in blocks:
            deliver("seed", b, False)
    assert pk.is_complete()
    assert pk.left_bytes() == 0
    assert set(pk.have) == wanted
