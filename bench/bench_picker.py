"""Picking cost per block does not grow with the piece count: 1 000 vs 100 000 pieces, same run.

A swarm of 20 peers each holding a random 80 % of the pieces plus 2 seeds; every round picks
2 048 blocks (16 per call, round-robin over the peers), receives them and passes each finished
piece, continuing the same download from round to round. The 1 000-piece torrent is the
reference; the ratio line shows time(1 000) / time(100 000) for the same number of blocks
(1.0 = flat; an O(N) scan per block would give about 0.01).

Run: python -m pytest bench/bench_picker.py --benchmark-only -p no:cacheprovider -q
"""

from __future__ import annotations

import random
from functools import cache
from typing import Any

import pytest

from tests.unit.torrent_factory import layout
from torrent_engine.bitfield import Bitfield
from torrent_engine.picker import BLOCK_SIZE, PiecePicker

PIECE_LENGTH = 16 * BLOCK_SIZE  # 256 KiB
PEERS = [f"peer{i}" for i in range(20)]
SEEDS = ["seed0", "seed1"]
BLOCKS_PER_ROUND = 2048


class Swarm:
    def __init__(self, num_pieces: int) -> None:
        rng = random.Random(num_pieces)
        self.picker = PiecePicker(layout(PIECE_LENGTH, num_pieces * PIECE_LENGTH), random.Random(1))
        for peer in PEERS:
            have = [i for i in range(num_pieces) if rng.random() < 0.8]
            self.picker.peer_bitfield(peer, Bitfield(num_pieces, have))
        for seed in SEEDS:
            self.picker.peer_have_all(seed)
        self.everyone = PEERS + SEEDS
        self.turn = 0
        self.blocks = 0
        self.run(256)  # past the random-first phase

    def run(self, count: int) -> None:
        pk = self.picker
        done = 0
        while done < count:
            peer = self.everyone[self.turn % len(self.everyone)]
            self.turn += 1
            for b in pk.pick(peer, None, 16):
                if pk.block_received(peer, b).piece_complete:
                    pk.piece_passed(b.index)
                done += 1
        self.blocks += done


@cache
def swarm(num_pieces: int) -> Swarm:
    return Swarm(num_pieces)


@pytest.mark.parametrize(
    "num_pieces", [pytest.param(1_000, id="1000_pieces_reference"), pytest.param(100_000, id="100000_pieces")]
)
def test_pick_per_block(benchmark: Any, num_pieces: int) -> None:
    s = swarm(num_pieces)
    benchmark.group = "picker: pick+receive 2048 blocks"
    benchmark.pedantic(s.run, args=(BLOCKS_PER_ROUND,), rounds=5, iterations=1, warmup_rounds=1)
    per_block_us = benchmark.stats.stats.median / BLOCKS_PER_ROUND * 1e6
    benchmark.extra_info["us_per_block"] = round(per_block_us, 2)
    print(f"\n{num_pieces} pieces: {per_block_us:.2f} us per block (median round)")
    assert not s.picker.is_complete() or num_pieces == 1_000
