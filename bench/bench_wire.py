"""Parsing a stream of 16 KiB Piece messages with PeerWire, against a raw slicing loop.

The stream (16 MiB: 1024 Piece messages with Have/Request chatter) arrives in 64 KiB chunks, as
socket reads deliver it. The reference is the least work any parser can do: walk one contiguous
``bytes`` object and slice each block out (it gets the stream already joined, for free). The
naive entry shows a common bytearray buffer (append, slice, delete) for comparison. ``ours_rc4``
adds MSE's RC4 decryption of every chunk.

Run: python -m pytest bench/bench_wire.py --benchmark-only -p no:cacheprovider -q
"""

from __future__ import annotations

import struct
from typing import Any

import pytest

from torrent_engine.net.peer.messages import Handshake, Have, Piece, Request, make_reserved
from torrent_engine.net.peer.mse import rc4
from torrent_engine.net.peer.wire import PeerWire

BLOCK = 16 * 1024
NUM_BLOCKS = 1024
PIECE_LENGTH = 256 * 1024
NUM_PIECES = NUM_BLOCKS * BLOCK // PIECE_LENGTH
CHUNK = 64 * 1024
INFO_HASH = bytes(20)
PAYLOAD = bytes(range(256)) * (BLOCK // 256)


def make_stream() -> bytes:
    parts = []
    for i in range(NUM_BLOCKS):
        index, begin = divmod(i * BLOCK, PIECE_LENGTH)
        parts.append(Piece(index, begin, PAYLOAD).to_bytes())
        if i % 16 == 0:
            parts.append(Have(index).to_bytes() + Request(index, 0, BLOCK).to_bytes())
    return b"".join(parts)


STREAM = make_stream()
CHUNKS = [STREAM[i : i + CHUNK] for i in range(0, len(STREAM), CHUNK)]
HANDSHAKE = Handshake(make_reserved(), INFO_HASH, b"-LT2010-xxxxxxxxxxxx").to_bytes()
KEY = b"k" * 20
ENCRYPTED_CHUNKS = (lambda c: [c.update(x) for x in CHUNKS])(rc4(KEY))
MB = len(STREAM) / 1e6


def new_wire() -> PeerWire:
    wire = PeerWire(
        info_hash=INFO_HASH,
        peer_id=b"-TE0100-bbbbbbbbbbbb",
        num_pieces=NUM_PIECES,
        piece_size=lambda i: PIECE_LENGTH,
    )
    wire.receive_data(HANDSHAKE)
    assert wire.next_event() is not None
    return wire


def parse_ours() -> int:
    wire = new_wire()
    total = 0
    for chunk in CHUNKS:
        wire.receive_data(chunk)
        for msg in wire.events():
            if type(msg) is Piece:
                total += len(msg.block)
    return total


def parse_ours_rc4() -> int:
    wire = new_wire()
    decrypt = rc4(KEY)
    total = 0
    for chunk in ENCRYPTED_CHUNKS:
        wire.receive_data(decrypt.update(chunk))
        for msg in wire.events():
            if type(msg) is Piece:
                total += len(msg.block)
    return total


_HEAD = struct.Struct(">IBII")
_LEN = struct.Struct(">I")


def parse_reference_slicing() -> int:
    """Raw slicing of the already-joined stream: length prefix, id, then slice the block."""
    data = STREAM
    n = len(data)
    pos = 0
    total = 0
    unpack = _LEN.unpack_from
    while pos < n:
        (length,) = unpack(data, pos)
        if data[pos + 4] == 7:
            block = data[pos + 13 : pos + 4 + length]
            total += len(block)
        pos += 4 + length
    return total


def parse_naive_bytearray() -> int:
    buf = bytearray()
    total = 0
    for chunk in CHUNKS:
        buf += chunk
        while len(buf) >= 4:
            length = int.from_bytes(buf[:4], "big")
            if len(buf) < 4 + length:
                break
            msg = bytes(buf[4 : 4 + length])
            del buf[: 4 + length]
            if msg[0] == 7:
                total += len(msg) - 9
    return total


def test_all_parsers_agree() -> None:
    expected = NUM_BLOCKS * BLOCK
    assert (
        parse_ours() == parse_ours_rc4() == parse_reference_slicing() == parse_naive_bytearray() == expected
    )


@pytest.mark.benchmark(group="wire-16MiB-pieces")
def test_wire_reference_slicing(benchmark: Any) -> None:
    benchmark.extra_info["MB"] = MB
    assert benchmark(parse_reference_slicing) == NUM_BLOCKS * BLOCK


@pytest.mark.benchmark(group="wire-16MiB-pieces")
def test_wire_ours(benchmark: Any) -> None:
    benchmark.extra_info["MB"] = MB
    assert benchmark(parse_ours) == NUM_BLOCKS * BLOCK


@pytest.mark.benchmark(group="wire-16MiB-pieces")
def test_wire_ours_rc4(benchmark: Any) -> None:
    benchmark.extra_info["MB"] = MB
    assert benchmark(parse_ours_rc4) == NUM_BLOCKS * BLOCK


@pytest.mark.benchmark(group="wire-16MiB-pieces")
def test_wire_naive_bytearray(benchmark: Any) -> None:
    benchmark.extra_info["MB"] = MB
    assert benchmark(parse_naive_bytearray) == NUM_BLOCKS * BLOCK
