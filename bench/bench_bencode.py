"""Decoding a large real-shaped .torrent (5 000 pieces, 600 files): ours against bencode.py.

Run: python -m pytest bench/bench_bencode.py --benchmark-only -p no:cacheprovider
"""

from __future__ import annotations

import hashlib
from typing import Any

import bencodepy
import pytest

from torrent_engine.formats.bencode import decode, decode_with_spans, encode

NUM_FILES = 600
NUM_PIECES = 5_000
PIECE_LENGTH = 256 * 1024


def make_torrent() -> bytes:
    files = []
    for i in range(NUM_FILES):
        files.append(
            {
                "length": 1_000_000 + i * 3_709,
                "path": [f"Season {i // 100 + 1}", f"Disc {i % 7}", f"track-{i:04d} – a longer title.flac"],
            }
        )
    pieces = b"".join(hashlib.sha1(i.to_bytes(4, "big")).digest() for i in range(NUM_PIECES))
    return encode(
        {
            "announce": "http://tracker.example/announce",
            "announce-list": [[f"udp://t{i}.example:6969/announce"] for i in range(10)],
            "comment": "bench",
            "created by": "torrent_engine",
            "creation date": 1_700_000_000,
            "info": {"files": files, "name": "Collection", "piece length": PIECE_LENGTH, "pieces": pieces},
            "url-list": ["http://ws.example/a/"],
        }
    )


DATA = make_torrent()


def test_input_is_real_shaped() -> None:
    value: Any = decode(DATA)
    assert len(value[b"info"][b"pieces"]) // 20 >= 4_000
    assert len(value[b"info"][b"files"]) >= 500
    assert decode(DATA) == bencodepy.decode(DATA)


@pytest.mark.benchmark(group="bencode-decode-torrent")
def test_decode_ours(benchmark: Any) -> None:
    benchmark(decode, DATA)


@pytest.mark.benchmark(group="bencode-decode-torrent")
def test_decode_ours_with_spans_lenient(benchmark: Any) -> None:
    benchmark(decode_with_spans, DATA, strict=False)


@pytest.mark.benchmark(group="bencode-decode-torrent")
def test_decode_reference_bencodepy(benchmark: Any) -> None:
    benchmark(bencodepy.decode, DATA)


@pytest.mark.benchmark(group="bencode-encode-torrent")
def test_encode_ours(benchmark: Any) -> None:
    value = decode(DATA)
    benchmark(encode, value)


@pytest.mark.benchmark(group="bencode-encode-torrent")
def test_encode_reference_bencodepy(benchmark: Any) -> None:
    value = decode(DATA)
    benchmark(bencodepy.encode, value)
