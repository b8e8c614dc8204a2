"""The pure per-block stages of a transfer, timed alone (no sockets, no session): the wire
parser on a 1 MiB read of 64 Piece messages (``PeerWire.parse_batch``, one ``Piece`` a block)
and on a read of 64 Request messages (a leecher's, as a seeder parses them), and the picker's
round of a block (``pick`` of the requests to send, then ``received`` of the block). CPU µs a
16 KiB block, best of ``--repeat``.

    python bench/bench_per_block.py [--repeat 7]

To compare two trees on a shared machine, alternate them (``git archive`` of the older commit
into a folder, ``PYTHONPATH`` at each in turn): the figures swing with the load, so read each
pair side by side.
"""

from __future__ import annotations

import argparse
import json
import random
import struct
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.unit.torrent_factory import layout  # noqa: E402
from torrent_engine.net.peer.messages import Handshake, Message, make_reserved  # noqa: E402
from torrent_engine.net.peer.wire import PeerWire  # noqa: E402
from torrent_engine.policy.picker import PiecePicker  # noqa: E402

BLOCK = 16 * 1024
PIECE = 1024 * 1024
NUM_PIECES = 1024
READ_BLOCKS = 64


def parse_us(repeat: int, reads: int = 400, requests: bool = False) -> float:
    wire = PeerWire(info_hash=bytes(20), peer_id=bytes(20), num_pieces=NUM_PIECES,
                    piece_size=lambda i: PIECE)
    wire.receive_data(Handshake(make_reserved(), bytes(20), bytes(20)).to_bytes())
    assert wire.next_event() is not None
    payload = bytes(BLOCK)
    if requests:  # a leecher's read: 64 requests
        data = memoryview(b"".join(struct.pack(">IBIII", 13, 6, 3, j * BLOCK, BLOCK)
                                   for j in range(READ_BLOCKS)))
    else:
        data = memoryview(b"".join(struct.pack(">IBII", 9 + BLOCK, 7, 3, j * BLOCK) + payload
                                   for j in range(READ_BLOCKS)))
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        for _ in range(reads):
            out: list[Message] = []
            pos, _need = wire.parse_batch(data, 0, len(data), out)
            assert pos == len(data)
        best = min(best, (time.process_time() - t0) / (reads * READ_BLOCKS))
    return best * 1e6


def picker_us(repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        picker = PiecePicker(layout(PIECE, NUM_PIECES * PIECE), random.Random(1))
        peer = ("127.0.0.1", 6881)
        picker.peer_have_all(peer)
        n = 0
        t0 = time.process_time()
        for _ in range(NUM_PIECES * PIECE // BLOCK // 16):
            blocks = picker.pick(peer, None, 16, 0.0)
            for b in blocks:
                picker.received(peer, b.index, b.begin, b.length)
            n += len(blocks)
        best = min(best, (time.process_time() - t0) / n)
    return best * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    print(json.dumps({"parse_us_per_block": round(parse_us(args.repeat), 3),
                      "parse_request_us": round(parse_us(args.repeat, requests=True), 3),
                      "picker_us_per_block": round(picker_us(args.repeat), 3)}))


if __name__ == "__main__":
    main()
