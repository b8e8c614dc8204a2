"""The endgame on its own: which blocks in flight at other peers a drained peer is asked for too,
fewest requesters and due last first, never twice by one peer, and a peer that found none is not
scanned again until something changes."""

from __future__ import annotations

from torrent_engine.net.peer.messages import BLOCK_SIZE
from torrent_engine.policy.picker_endgame import Endgame
from torrent_engine.policy.picker_parts import ALL, Block, Download, PeerKey


def _in_flight(asked: dict[str, list[tuple[int, float]]]) -> tuple[
        dict[PeerKey, dict[tuple[int, int], float]], dict[int, Download]]:
    """Piece 0 of 8 blocks; each peer's requests of it (block, when asked), oldest first."""
    requests: dict[PeerKey, dict[tuple[int, int], float]] = {}
    downloads = {0: Download(8 * BLOCK_SIZE)}
    for peer, blocks in asked.items():
        mine = requests.setdefault(peer, {})
        for j, when in blocks:
            mine[(0, j)] = when
            downloads[0].requesters[j].append(peer)
    downloads[0].free = 0
    return requests, downloads


def test_a_drained_peer_takes_a_batch_of_the_blocks_due_last() -> None:
    requests, downloads = _in_flight({"slow": [(0, 0.0), (1, 1.0), (2, 2.0)], "other": [(3, 5.0), (4, 6.5)]})
    endgame = Endgame(requests, downloads, bytearray([4]), batch=2)
    mine = requests.setdefault("fast", {})
    out: list[Block] = []
    endgame.pick("fast", ALL, mine, 10, out, 10.0, 0.0, generation=1, remember=True)
    # due = asked + the requester's queue delay (age of its oldest request): slow's 2 is due at
    # 12, other's 4 at 11.5, then slow's 1 at 11 and other's 3 at 10
    assert [b.begin // BLOCK_SIZE for b in out] == [2, 4]
    assert set(mine) == {(0, 2), (0, 4)} and downloads[0].requesters[2] == ["slow", "fast"]
    again: list[Block] = []
    endgame.pick("fast", ALL, mine, 10, again, 10.0, 0.0, generation=1, remember=True)
    assert {b.begin // BLOCK_SIZE for b in again}.isdisjoint({2, 4})  # never twice by one peer


def test_every_block_gets_a_second_source_before_any_a_third() -> None:
    requests, downloads = _in_flight({"a": [(0, 0.0), (1, 0.0)], "b": [(1, 0.0)]})
    endgame = Endgame(requests, downloads, bytearray([4]), max_requesters=3, batch=4)
    out: list[Block] = []
    endgame.pick("c", ALL, requests.setdefault("c", {}), 10, out, 1.0, 0.0, generation=0, remember=True)
    assert [b.begin // BLOCK_SIZE for b in out] == [0, 1]  # (block 0 first: it had one requester)
    assert downloads[0].requesters[1] == ["a", "b", "c"]


def test_a_peer_that_found_nothing_is_not_scanned_again_until_something_changed() -> None:
    requests, downloads = _in_flight({"a": [(0, 0.0)]})
    prio = bytearray([0])  # skipped meanwhile: nothing to duplicate
    endgame = Endgame(requests, downloads, prio)
    mine = requests.setdefault("b", {})
    out: list[Block] = []
    endgame.pick("b", ALL, mine, 4, out, 1.0, 0.0, generation=5, remember=True)
    assert out == []
    prio[0] = 4
    endgame.pick("b", ALL, mine, 4, out, 1.0, 0.0, generation=5, remember=True)
    assert out == []  # (the same generation: not scanned)
    endgame.pick("b", ALL, mine, 4, out, 1.0, 0.0, generation=6, remember=True)
    assert [b.begin for b in out] == [0]
