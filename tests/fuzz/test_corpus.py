"""Every parser of untrusted input against its kept corpus (tests/testdata/fuzz/<target>/) and a
bounded, seeded mutation run from that corpus: only the engine's typed errors may come out.

An input that makes a target raise anything else is a bug: fix it, and keep the input as
``tests/testdata/fuzz/<target>/regress-<what>`` so it is replayed for ever. The mutation run is
seeded (``FUZZ_SEED``, default fixed) and bounded per target (``FUZZ_SECONDS``, default 1.5 s;
``FUZZ_ITERATIONS``, default 30 000), so CI spends well under a minute on all targets
(about 10-15 s; one local run of 25 s per target, millions of inputs, found nothing new).
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest

from tests.fuzz.targets import CORPUS, TARGETS
from torrent_engine.errors import TorrentEngineError

SECONDS = float(os.environ.get("FUZZ_SECONDS", "1.5"))
ITERATIONS = int(os.environ.get("FUZZ_ITERATIONS", "30000"))
SEED = int(os.environ.get("FUZZ_SEED", "20261122"))

INTERESTING = [b"0", b"-1", b"i-0e", b"4294967296", b"e", b"l", b"d", b":", b"\x00", b"\xff" * 4,
               b"18446744073709551616", b"\r\n", b"%", b"%ff", b"&", b"=", b"\xed\xa0\x80"]


def corpus_files(target: str) -> list[Path]:
    return sorted(p for p in (CORPUS / target).iterdir() if p.is_file())


def run_one(target: str, data: bytes) -> None:
    try:
        TARGETS[target](data)
    except TorrentEngineError:
        pass
    except Exception as exc:  # noqa: BLE001 - the point: any other exception is the bug
        raise AssertionError(
            f"{target}: untyped {type(exc).__name__}: {exc} for input {data[:200]!r} "
            f"({len(data)} bytes); keep it as tests/testdata/fuzz/{target}/regress-<what>"
        ) from exc


def mutate(rng: random.Random, data: bytes, pool: list[bytes]) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(7)
        pos = rng.randint(0, len(buf))
        if op == 0 and buf:  # flip bits
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
        elif op == 1 and buf:  # set a byte
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        elif op == 2:  # insert an interesting token
            buf[pos:pos] = rng.choice(INTERESTING)
        elif op == 3 and buf:  # delete a run
            del buf[pos:pos + rng.randint(1, 16)]
        elif op == 4 and buf:  # duplicate a run
            a = rng.randrange(len(buf))
            buf[pos:pos] = buf[a:a + rng.randint(1, 64)]
        elif op == 5:  # splice with another corpus entry
            other = rng.choice(pool)
            cut = rng.randint(0, len(other))
            buf = buf[:pos] + bytearray(other[cut:])
        else:  # truncate
            del buf[pos:]
    return bytes(buf)


def test_every_target_has_a_corpus() -> None:
    for target in TARGETS:
        assert corpus_files(target), f"no corpus for {target}"


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_corpus_replays_with_typed_errors_only(target: str) -> None:
    for path in corpus_files(target):
        run_one(target, path.read_bytes())


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_mutations_raise_typed_errors_only(target: str) -> None:
    pool = [p.read_bytes() for p in corpus_files(target)]
    rng = random.Random(f"{SEED}-{target}")
    deadline = time.monotonic() + SECONDS
    for _ in range(ITERATIONS):
        if time.monotonic() > deadline:
            break
        run_one(target, mutate(rng, rng.choice(pool), pool))
