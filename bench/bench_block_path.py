"""The block path inside one session, without sockets: N blocks of 16 KiB pushed through a
running ``Session``'s handler in-process, as a connection hands them over, until every piece is
verified and written (256 KiB pieces, to a temporary directory). One fake peer that has every
piece and unchokes us; the blocks it "sends" are the ones the picker asked it for, 16 a read.

Modes (``--mode``):
  batch    each read through ``peer.connection.hand_over`` (the fast path, ``on_batch``)
  message  each block through ``on_message`` alone (the path of a rate-limited peer)
  direct   as ``batch`` with no room for piece buffers (every piece goes to disk block by
           block and is hashed from disk)
  webseed  whole pieces through the web seeds' ``deliver`` (BEP 19)

Prints one JSON line: mode, blocks, seconds of the feeding loop (wall) and seconds per block.

    python bench/bench_block_path.py --mode batch --blocks 2048 [--rounds 3]

Instructions (load-independent, for a shared machine): run it under callgrind twice, with two
sizes, and take the difference over the difference in blocks (start-up and imports cancel out).
The torrent's data and metainfo are made once per size in ``--cache`` (a first run without
valgrind makes them, so that their SHA-1 is not counted):

    python bench/bench_block_path.py --mode batch --blocks 512
    python bench/bench_block_path.py --mode batch --blocks 2560
    PY=$(python -c 'import sys; print(sys.executable)')  # the interpreter itself, not a shim
    valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.512 $PY bench/bench_block_path.py --blocks 512
    valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.2560 $PY bench/bench_block_path.py --blocks 2560
    # per block: (Ir(2560) - Ir(512)) / 2048, Ir from each run's "Collected" line (or callgrind_annotate)

That counts everything (the writing thread, the loop waiting for it), so thread timing makes it
vary by a few thousand instructions a block. The block path alone: every call into the handler
(``on_batch``, ``on_message``, ``deliver``) is made through ``operator.call``, which nothing else
calls, so that the inclusive cost of ``_operator_call`` in the same two runs counts the event
loop thread's work inside those calls only (not the verification tasks nor the writing thread;
it varies by about 0.1 k instructions a block from run to run):

    callgrind_annotate --inclusive=yes /tmp/cg.2560 | grep '_operator_call '   # and /tmp/cg.512
    # per block: (inclusive(2560) - inclusive(512)) / 2048

(``--toggle-collect=_operator_call`` does not do: with the writing thread switching in while
hashlib gives the GIL up, it counted a varying part of the calls.)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Coroutine, Generator
from operator import call
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from torrent_engine.config import Config  # noqa: E402
from torrent_engine.formats.bitfield import Bitfield  # noqa: E402
from torrent_engine.formats.metainfo import Torrent  # noqa: E402
from torrent_engine.net.peer import messages as m  # noqa: E402
from torrent_engine.net.peer.connection import hand_over  # noqa: E402
from torrent_engine.session import PeerState, Session  # noqa: E402
from torrent_engine.storage.create import create_torrent  # noqa: E402

BLOCK = 16 * 1024
PIECE = 256 * 1024  # (--piece-kib)
READ_BLOCKS = 16  # blocks per read handed over (256 KiB: a full receive buffer)


class _Link:
    """A connected peer's link that takes what is sent and keeps nothing (the requests are read
    back from the picker)."""

    peer_id_client = ""
    transport = "tcp"

    async def send_many(self, msgs: object) -> None:
        pass

    def write(self, data: bytes) -> None:
        pass


class _Counted:
    """Await a coroutine, each of its steps taken through ``operator.call`` (what callgrind's
    ``--toggle-collect=_operator_call`` counts)."""

    def __init__(self, coro: Coroutine[Any, Any, None]) -> None:
        self.coro = coro

    def __await__(self) -> Generator[Any, Any, None]:
        value: Any = None
        while True:
            try:
                yielded = call(self.coro.send, value)
            except StopIteration:
                return
            value = yield yielded


def _prepare(cache: Path, blocks: int) -> tuple[Path, Torrent]:
    """The data (random, fixed seed) and its torrent, made once per size."""
    root = cache / (f"{blocks}" if PIECE == 256 * 1024 else f"{blocks}-{PIECE // 1024}k")
    data_path = root / "data"
    torrent_path = root / "data.torrent"
    if not torrent_path.exists():
        root.mkdir(parents=True, exist_ok=True)
        data_path.write_bytes(random.Random(blocks).randbytes(blocks * BLOCK))
        t = create_torrent(data_path, piece_length=PIECE, version="v1")
        torrent_path.write_bytes(t.to_bytes())
    return data_path, Torrent.from_bytes(torrent_path.read_bytes())


async def _one(mode: str, data_path: Path, t: Torrent) -> float:
    data = data_path.read_bytes()
    config = Config(listen_host="127.0.0.1", listen_port=0, dht_enabled=False, port_mapping=False,
                    lsd_enabled=False, tracker_enabled=False, web_seeds=False)
    if mode == "direct":
        config.piece_buffer_bytes = 0
    with tempfile.TemporaryDirectory() as tmp:
        async with Session(t, Path(tmp) / "dl", config=config) as s:
            await s.wait_ready()
            peer = PeerState(host="127.0.0.1", port=1, link=_Link(), incoming=False,  # type: ignore[arg-type]
                             have=Bitfield(t.num_pieces), last_block=time.monotonic())
            s.context.peers[peer.key] = peer
            handler = s.handler
            start = time.perf_counter()
            if mode == "webseed":
                key = ("http://127.0.0.1:1/data", 0)
                webseeds = s.parts.webseeds
                s.picker.peer_have_all(key)
                while not s.picker.is_complete():
                    run = webseeds.pick_run(key, 4)
                    if not run:  # the last pieces being verified
                        await anyio.sleep(0.005)
                        continue
                    for index in run:
                        size = t.piece_size(index)
                        piece = memoryview(data)[index * PIECE:index * PIECE + size]
                        await _Counted(webseeds.deliver(key, index, piece))
            else:
                await handler.on_message(peer, m.HaveAll())
                await handler.on_message(peer, m.Unchoke())

                async def slow(msg: m.Message) -> None:
                    await _Counted(handler.on_message(peer, msg))

                def fast(msgs: list[m.Message]) -> int:
                    return call(handler.on_batch, peer, msgs)

                while not s.picker.is_complete():
                    asked = s.picker.requests_of(peer.key)[:READ_BLOCKS]
                    if not asked:  # the pipeline to refill, or the last pieces being verified
                        await handler.fill_requests(peer)
                        if not s.picker.requests_of(peer.key):
                            await anyio.sleep(0.005)  # (not a busy loop: its cost is no block's)
                        continue
                    batch: list[m.Message] = []
                    for b in asked:
                        at = b.index * PIECE + b.begin
                        batch.append(m.Piece(b.index, b.begin, data[at:at + b.length]))
                    if mode == "message":
                        for msg in batch:
                            await _Counted(handler.on_message(peer, msg))
                    else:
                        await hand_over(batch, fast, slow)
            await s.wait_completed()
            return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["batch", "message", "direct", "webseed"], default="batch")
    parser.add_argument("--blocks", type=int, default=2048)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--piece-kib", type=int, default=256,
                        help="the torrent's piece size (the per-piece part of the path: compare two sizes)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "bench_block_path")
    args = parser.parse_args()
    global PIECE
    PIECE = args.piece_kib * 1024
    data_path, t = _prepare(args.cache, args.blocks)
    for _ in range(args.rounds):
        seconds = anyio.run(_one, args.mode, data_path, t)
        print(json.dumps({"mode": args.mode, "blocks": args.blocks, "piece_kib": args.piece_kib,
                          "seconds": round(seconds, 4), "us_per_block": round(seconds / args.blocks * 1e6, 2),
                          "pid": os.getpid()}))


if __name__ == "__main__":
    main()
