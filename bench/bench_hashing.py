"""Torrent creation hashing throughput: ``create_torrent`` against plain ``hashlib`` over the same
file in the same run, with one and with two hashing threads.

The reference is the least work hashing needs: read the file in piece-sized ``readinto`` calls
and hash each piece (v1: SHA-1 per piece; v2: SHA-256 per 16 KiB block, no tree). Ours does
everything ``create_torrent`` does (chunked reads in worker threads, v2 merkle trees, building
and validating the torrent). The file is in the page cache, so this measures hashing, not disk.

Run as a script (interleaved rounds, best of each, prints ratios):
    python bench/bench_hashing.py [--size-mib 128] [--rounds 5]
or with pytest-benchmark:
    python -m pytest bench/bench_hashing.py --benchmark-only -p no:cacheprovider -q
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from torrent_engine.formats.merkle import BLOCK_SIZE
from torrent_engine.storage.create import create_torrent

PIECE_LENGTH = 1024 * 1024
SIZE = 128 * 1024 * 1024


def make_file(path: Path, size: int) -> None:
    chunk = hashlib.shake_256(b"torrent_engine bench").digest(4 * 1024 * 1024)
    with path.open("wb") as fh:
        left = size
        while left > 0:
            fh.write(chunk[: min(left, len(chunk))])
            left -= len(chunk)
    path.read_bytes()  # warm the page cache


def reference_sha1(path: Path) -> list[bytes]:
    out: list[bytes] = []
    buf = bytearray(PIECE_LENGTH)
    view = memoryview(buf)
    with path.open("rb", buffering=0) as fh:
        while n := fh.readinto(buf):
            out.append(hashlib.sha1(view[:n]).digest())
    return out


def reference_sha256_blocks(path: Path) -> list[bytes]:
    out: list[bytes] = []
    buf = bytearray(PIECE_LENGTH)
    view = memoryview(buf)
    sha = hashlib.sha256
    with path.open("rb", buffering=0) as fh:
        while n := fh.readinto(buf):
            out.extend(sha(view[i : min(i + BLOCK_SIZE, n)]).digest() for i in range(0, n, BLOCK_SIZE))
    return out


def ours(path: Path, version: str, threads: int) -> Callable[[], Any]:
    def run() -> Any:
        return create_torrent(path, version=version, piece_length=PIECE_LENGTH, threads=threads)  # type: ignore[arg-type]

    return run


def cases(path: Path) -> dict[str, Callable[[], Any]]:
    return {
        "v1 reference hashlib SHA-1, 1 thread": lambda: reference_sha1(path),
        "v1 ours, 1 thread": ours(path, "v1", 1),
        "v1 ours, 2 threads": ours(path, "v1", 2),
        "v2 reference hashlib SHA-256 blocks, 1 thread": lambda: reference_sha256_blocks(path),
        "v2 ours, 1 thread": ours(path, "v2", 1),
        "v2 ours, 2 threads": ours(path, "v2", 2),
        "hybrid ours, 2 threads": ours(path, "hybrid", 2),
    }


# -- pytest-benchmark ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bench_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("hashing") / "payload.bin"
    make_file(p, 32 * 1024 * 1024)
    return p


@pytest.mark.parametrize("name", list(cases(Path("x"))))
def test_hashing(benchmark: Any, bench_file: Path, name: str) -> None:
    benchmark.group = name.split()[0]
    benchmark.pedantic(cases(bench_file)[name], rounds=3, iterations=1)


def test_results_agree(bench_file: Path) -> None:
    t = create_torrent(bench_file, version="v1", piece_length=PIECE_LENGTH, threads=2)
    assert list(t.piece_hashes) == reference_sha1(bench_file)


# -- script ------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size-mib", type=int, default=SIZE // (1024 * 1024))
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "payload.bin"
        size = args.size_mib * 1024 * 1024
        make_file(path, size)
        todo = cases(path)
        best = {name: float("inf") for name in todo}
        for _ in range(args.rounds):  # interleaved, so load changes hit every case alike
            for name, fn in todo.items():
                t0 = time.perf_counter()
                fn()
                best[name] = min(best[name], time.perf_counter() - t0)
        print(
            f"{args.size_mib} MiB, piece length {PIECE_LENGTH // 1024} KiB, best of {args.rounds}, "
            f"{os.cpu_count()} CPUs"
        )
        refs = {
            "v1": best["v1 reference hashlib SHA-1, 1 thread"],
            "v2": best["v2 reference hashlib SHA-256 blocks, 1 thread"],
            "hybrid": best["v1 reference hashlib SHA-1, 1 thread"]
            + best["v2 reference hashlib SHA-256 blocks, 1 thread"],
        }
        for name, secs in best.items():
            ref = refs[name.split()[0]]
            print(f"| {name} | {secs * 1000:.0f} ms | {size / secs / 1e6:.0f} MB/s | {ref / secs:.2f}x |")


if __name__ == "__main__":
    main()
