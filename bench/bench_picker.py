"""Picking cost per block does not grow with the piece count: 1 000 vs 100 000 pieces, same run.

Two swarms: "dense" — 20 peers each holding a random 80 % of the pieces plus 2 seeds; "few" —
20 new peers holding 100 random pieces each and one seed (where a bucket walk would skip almost
every piece for the new peers; the script mode also times that walk for comparison).
Every round picks 4 096 blocks (16 per call, round-robin over the peers),
receives them and passes each finished piece, continuing the same download from round to
round. The 1 000-piece torrent is the reference; the ratio line shows time(1 000) / time(100 000)
for the same number of blocks (1.0 = flat; an O(N) scan per block would give about 0.01).

Run: python -m pytest bench/bench_picker.py --benchmark-only -p no:cacheprovider -q -s
 or: PYTHONPATH=. python bench/bench_picker.py   (interleaved rounds: fairer on a busy shared machine)
"""

from __future__ import annotations

import random
from functools import cache
from typing import Any

import pytest

from tests.unit.torrent_factory import layout
from torrent_engine.formats.bitfield import Bitfield
from torrent_engine.policy.picker import BLOCK_SIZE, PiecePicker

PIECE_LENGTH = 64 * BLOCK_SIZE  # 1 MiB: the 1 000-piece torrent has 64 000 blocks to hand out
PEERS = [f"peer{i}" for i in range(20)]
SEEDS = ["seed0", "seed1"]
BLOCKS_PER_ROUND = 4096
ROUNDS = 9


class Swarm:
    def __init__(self, num_pieces: int, scenario: str = "dense", sparse_peer_limit: int = 256) -> None:
        rng = random.Random(num_pieces)
        self.picker = PiecePicker(
            layout(PIECE_LENGTH, num_pieces * PIECE_LENGTH),
            random.Random(1),
            sparse_peer_limit=sparse_peer_limit,
        )
        for peer in PEERS:
            if scenario == "dense":
                have = [i for i in range(num_pieces) if rng.random() < 0.8]
            else:
                have = rng.sample(range(num_pieces), 100)
            self.picker.peer_bitfield(peer, Bitfield(num_pieces, have))
        seeds = SEEDS if scenario == "dense" else SEEDS[:1]
        for seed in seeds:
            self.picker.peer_have_all(seed)
        self.everyone = PEERS + seeds
        self.turn = 0
        self.blocks = 0
        self.run(256)  # past the random-first phase

    def run(self, count: int) -> None:
        pk = self.picker
        done = 0
        idle = 0
        while done < count:
            peer = self.everyone[self.turn % len(self.everyone)]
            self.turn += 1
            blocks = pk.pick(peer, None, 16)
            idle = 0 if blocks else idle + 1
            if idle > len(self.everyone):
                raise RuntimeError("the swarm ran out of blocks: lower ROUNDS or BLOCKS_PER_ROUND")
            for b in blocks:
                if pk.block_received(peer, b).piece_complete:
                    pk.piece_passed(b.index)
                done += 1
        self.blocks += done


@cache
def swarm(num_pieces: int, scenario: str) -> Swarm:
    return Swarm(num_pieces, scenario)


@pytest.mark.parametrize("scenario", ["dense", "few"])
@pytest.mark.parametrize(
    "num_pieces", [pytest.param(1_000, id="1000_pieces_reference"), pytest.param(100_000, id="100000_pieces")]
)
def test_pick_per_block(benchmark: Any, num_pieces: int, scenario: str) -> None:
    s = swarm(num_pieces, scenario)
    benchmark.group = f"picker ({scenario}): pick+receive {BLOCKS_PER_ROUND} blocks"
    benchmark.pedantic(s.run, args=(BLOCKS_PER_ROUND,), rounds=ROUNDS, iterations=1, warmup_rounds=1)
    stats = benchmark.stats.stats
    per_block_us = stats.median / BLOCKS_PER_ROUND * 1e6
    benchmark.extra_info["us_per_block"] = round(per_block_us, 2)
    min_us = stats.min / BLOCKS_PER_ROUND * 1e6
    print(f"\n{scenario}, {num_pieces} pieces: {per_block_us:.2f} us per block (median), {min_us:.2f} (min)")
    assert not s.picker.is_complete()


def main() -> None:
    """Interleaved rounds of both sizes (fairer on a busy shared machine): medians, minima, ratio."""
    import statistics
    import time

    for scenario in ("dense", "few"):
        swarms = {n: Swarm(n, scenario) for n in (1_000, 100_000)}
        times: dict[int, list[float]] = {n: [] for n in swarms}
        for _ in range(ROUNDS + 1):
            for n, s in swarms.items():
                t0 = time.perf_counter()
                s.run(BLOCKS_PER_ROUND)
                times[n].append((time.perf_counter() - t0) / BLOCKS_PER_ROUND * 1e6)
        med = {n: statistics.median(ts[1:]) for n, ts in times.items()}
        low = {n: min(ts[1:]) for n, ts in times.items()}
        for n in swarms:
            print(f"{scenario}, {n} pieces: {med[n]:.2f} us per block (median), {low[n]:.2f} (min)")
        ratio_med, ratio_min = med[1_000] / med[100_000], low[1_000] / low[100_000]
        print(f"{scenario}: ratio time(1 000) / time(100 000): median {ratio_med:.2f}, min {ratio_min:.2f}")
    # What the per-peer piece set saves: the same "few" swarm walking the buckets instead.
    slow = Swarm(100_000, "few", sparse_peer_limit=0)
    t0 = time.perf_counter()
    slow.run(2048)
    print(f"few, 100000 pieces, bucket walk only: {(time.perf_counter() - t0) / 2048 * 1e6:.0f} us per block")


if __name__ == "__main__":
    main()
