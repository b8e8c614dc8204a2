"""Recheck throughput: ``verify.recheck`` with 2 threads against a plain single-thread hashlib
loop over the same files (page-cached), in the same run.

Payload: 256 MiB in 5 files of odd sizes, 1 MiB pieces, v1 (SHA-1). The reference reads the
files sequentially and SHA-1s each piece on the calling thread. The ratio line shows
time(reference) / time(recheck): above 1 means the two worker threads beat one plain loop.
A third entry, two bare threads with os.pread + hashlib and no event loop, shows how much
parallelism the (shared) machine offered during the same run: the ceiling for ``recheck``.

Run: python -m pytest bench/bench_verify.py --benchmark-only -p no:cacheprovider -q -s
 or: python bench/bench_verify.py   (interleaved rounds: fairer on a busy shared machine)
"""

from __future__ import annotations

import hashlib
import os
import random
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal

from torrent_engine.formats.bencode import encode
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.storage import Storage
from torrent_engine.storage.verify import recheck

PIECE_LENGTH = 1024 * 1024
SIZES = [80_000_123, 67_108_864, 1, 60_000_000, 61_326_468]  # 256 MiB in all
TOTAL = sum(SIZES)


@pytest.fixture(scope="module")
def swarm_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Torrent, Path]:
    return make_files(tmp_path_factory.mktemp("verify"))


def make_files(root: Path) -> tuple[Torrent, Path]:
    """Write the payload under ``root`` and return its torrent."""
    rng = random.Random(0)
    blob = b"".join(rng.randbytes(size) for size in SIZES)  # randbytes is capped below 256 MiB
    folder = root / "bench"
    folder.mkdir()
    offset = 0
    files = []
    for i, size in enumerate(SIZES):
        (folder / f"f{i}").write_bytes(blob[offset : offset + size])
        files.append({b"length": size, b"path": [f"f{i}".encode()]})
        offset += size
    pieces = b"".join(
        hashlib.sha1(blob[i : i + PIECE_LENGTH]).digest() for i in range(0, TOTAL, PIECE_LENGTH)
    )
    info = {b"name": b"bench", b"piece length": PIECE_LENGTH, b"pieces": pieces, b"files": files}
    return Torrent.from_bytes(encode({b"info": info})), root


def plain_single_thread(t: Torrent, root: Path) -> int:
    """Read the files in order, SHA-1 every piece on this thread; the number of good pieces."""
    good = 0
    index = 0
    buf = bytearray()
    for f in t.files:
        with open(root.joinpath(*f.path), "rb") as fh:
            while chunk := fh.read(PIECE_LENGTH - len(buf)):
                buf += chunk
                if len(buf) == PIECE_LENGTH:
                    good += hashlib.sha1(buf).digest() == t.piece_hashes[index]
                    index += 1
                    buf.clear()
    if buf:
        good += hashlib.sha1(buf).digest() == t.piece_hashes[index]
    return good


def plain_two_threads(t: Torrent, root: Path) -> int:
    """The machine's ceiling right now: two bare threads, each reading and hashing every other
    piece with os.pread and hashlib, no event loop in between."""
    spans: list[list[tuple[Path, int, int]]] = [[] for _ in range(t.num_pieces)]
    for f in t.files:
        pos = f.offset
        while pos < f.offset + f.length:
            i = pos // PIECE_LENGTH
            n = min(f.offset + f.length, (i + 1) * PIECE_LENGTH) - pos
            spans[i].append((root.joinpath(*f.path), pos - f.offset, n))
            pos += n
    good = [0, 0]

    def work(k: int) -> None:
        fds = {f: os.open(f, os.O_RDONLY) for f in {p for piece in spans for p, _, _ in piece}}
        for i in range(k, t.num_pieces, 2):
            data = b"".join(os.pread(fds[p], n, off) for p, off, n in spans[i])
            good[k] += hashlib.sha1(data).digest() == t.piece_hashes[i]
        for fd in fds.values():
            os.close(fd)

    threads = [threading.Thread(target=work, args=(k,)) for k in (0, 1)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return sum(good)


@pytest.fixture(scope="module")
def portal() -> Iterator[BlockingPortal]:
    """One event loop (and its worker threads) for every round, as in a running session."""
    with start_blocking_portal(backend="asyncio", backend_options={"use_uvloop": True}) as p:
        yield p


def ours(t: Torrent, root: Path, portal: BlockingPortal) -> int:
    async def main() -> int:
        storage = Storage(t, root)
        try:
            return len(await recheck(t, storage, threads=2))
        finally:
            await storage.close()

    return portal.call(main)


@pytest.mark.parametrize(
    "impl", ["plain_hashlib_1_thread_reference", "recheck_2_threads", "bare_2_threads_ceiling"]
)
def test_recheck_throughput(
    benchmark: Any, swarm_files: tuple[Torrent, Path], portal: BlockingPortal, impl: str
) -> None:
    t, root = swarm_files
    benchmark.group = "verify: recheck 256 MiB, 1 MiB pieces"
    if impl.endswith("reference"):
        good = benchmark.pedantic(
            plain_single_thread, args=(t, root), rounds=7, iterations=1, warmup_rounds=1
        )
    else:
        good = benchmark.pedantic(ours, args=(t, root, portal), rounds=7, iterations=1, warmup_rounds=1)
    assert good == t.num_pieces
    mbps = TOTAL / benchmark.stats.stats.median / 1e6
    benchmark.extra_info["MB_per_s"] = round(mbps, 1)
    print(f"\n{impl}: {mbps:.0f} MB/s (median round)")


def main(rounds: int = 9) -> None:
    """Interleaved rounds (reference, recheck, ceiling, reference, ...) so that all three see
    the same background load on a shared machine; prints medians and ratios."""
    import statistics
    import tempfile
    import time

    with (
        tempfile.TemporaryDirectory() as tmp,
        start_blocking_portal(backend="asyncio", backend_options={"use_uvloop": True}) as p,
    ):
        t, root = make_files(Path(tmp))
        impls = {
            "plain hashlib, 1 thread (reference)": lambda: plain_single_thread(t, root),
            "recheck, threads=2": lambda: ours(t, root, p),
            "bare 2 threads (ceiling)": lambda: plain_two_threads(t, root),
        }
        times: dict[str, list[float]] = {k: [] for k in impls}
        for _ in range(rounds + 1):
            for name, fn in impls.items():
                t0 = time.perf_counter()
                assert fn() == t.num_pieces
                times[name].append(time.perf_counter() - t0)
        ref = statistics.median(times["plain hashlib, 1 thread (reference)"][1:])
        for name, ts in times.items():
            med = statistics.median(ts[1:])
            mbps = TOTAL / med / 1e6
            print(f"{name}: median {med * 1e3:.1f} ms, {mbps:.0f} MB/s, {ref / med:.2f}x the reference")


if __name__ == "__main__":
    main()
