"""``PeerProtocol.take_bytes``: a read the transport holds as a ``bytes`` object (uTP's received
chunks) gives the same messages as the same bytes read through the buffer, whatever the split,
and its blocks are parsed in place, not copied into the buffer first."""

from __future__ import annotations

import random

import pytest

from torrent_engine.net.peer.messages import Have, KeepAlive, Message, Piece
from torrent_engine.net.peer.protocol import PeerProtocol

from .test_wire import ALL_MESSAGES, make_wire

pytestmark = pytest.mark.anyio

BLOCKS = [Piece(i % 10, (i // 10) * 16384, random.Random(i).randbytes(16384)) for i in range(12)]
# (not ending in a keep-alive: read through the buffer, 4 bytes that end a read wait for a fifth)
STREAM_MESSAGES: list[Message] = [*ALL_MESSAGES, *BLOCKS, KeepAlive(), *ALL_MESSAGES[::-1], Have(5)]
STREAM = b"".join(m.to_bytes() for m in STREAM_MESSAGES)


def _protocol(initial: bytes, got: list[Message], owners: list[object]) -> PeerProtocol:
    proto = PeerProtocol(make_wire(), None, initial)

    def handler(batch: list[Message]) -> int:
        for msg in batch:
            if type(msg) is Piece:
                owners.append(msg.block.obj)  # type: ignore[union-attr]  # (a view: what it views)
                msg = Piece(msg.index, msg.begin, bytes(msg.block))  # (valid during the call only)
            got.append(msg)
        return len(batch)

    proto.handler = handler
    return proto


def _splits(rng: random.Random, size: int) -> list[int]:
    cuts = sorted(rng.sample(range(1, size), 40))
    return [b - a for a, b in zip([0, *cuts], [*cuts, size], strict=True)]


@pytest.mark.parametrize("split", ["1", "3", "5", "13", "16397", "random", "whole"])
@pytest.mark.parametrize("initial", [0, 3, 700])
async def test_take_bytes_gives_what_reading_through_the_buffer_gives(split: str, initial: int) -> None:
    rng = random.Random(f"{split}/{initial}")
    rest = STREAM[initial:]
    if split == "random":
        sizes = _splits(rng, len(rest))
    elif split == "whole":
        sizes = [len(rest)]
    else:
        step = int(split)
        sizes = [min(step, len(rest) - i) for i in range(0, len(rest), step)]
    reads = []
    pos = 0
    for n in sizes:
        reads.append(rest[pos:pos + n])
        pos += n

    via_buffer: list[Message] = []
    proto = _protocol(STREAM[:initial], via_buffer, [])
    for data in reads:
        done = 0
        while done < len(data):
            buf = proto.get_buffer(len(data) - done)
            k = min(len(buf), len(data) - done)
            buf[:k] = data[done:done + k]
            proto.buffer_updated(k)
            done += k

    taken: list[Message] = []
    owners: list[object] = []
    proto = _protocol(STREAM[:initial], taken, owners)
    for data in reads:
        proto.take_bytes(data)

    assert via_buffer == STREAM_MESSAGES
    assert taken == STREAM_MESSAGES
    assert proto.bytes_received == len(rest)
    if split == "whole" and initial < 5:
        # every block parsed in the bytes handed over (not a copy in the buffer)
        assert owners and all(owner is reads[0] for owner in owners)


async def test_take_bytes_parses_blocks_in_place_and_copies_only_the_straddling_message() -> None:
    """Each 16 KiB block lies inside one read except where a read ends mid-message: only that
    message goes through the buffer."""
    data = b"".join(m.to_bytes() for m in BLOCKS)
    half = len(data) // 2 + 100  # inside a block's message
    first, second = data[:half], data[half:]
    got: list[Message] = []
    owners: list[object] = []
    proto = _protocol(b"", got, owners)
    proto.take_bytes(first)
    proto.take_bytes(second)
    assert got == BLOCKS
    in_place = sum(1 for o in owners if o is first or o is second)
    assert in_place == len(BLOCKS) - 1


async def test_take_bytes_reports_a_protocol_error_with_the_messages_before_it() -> None:
    got: list[Message] = []
    proto = _protocol(b"", got, [])
    bad = (1 << 30).to_bytes(4, "big") + b"\x07" + bytes(20)  # a piece message far over the limit
    proto.take_bytes(b"".join(m.to_bytes() for m in BLOCKS[:2]) + bad)
    assert got == BLOCKS[:2]
    assert proto.error is not None
