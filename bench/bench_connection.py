"""The async peer shell over loopback TCP: 64 MiB of Piece messages from an ``accept``-ed
sender to a ``connect``-ed receiver that parses and validates every message, plaintext and
MSE/RC4. Reference: the same bytes over a raw anyio TCP stream in the same run, read in the
same 64 KiB chunks and thrown away. Both ends run in this one process (one event loop).

Run: python -m pytest bench/bench_connection.py --benchmark-only -p no:cacheprovider -q
"""

from __future__ import annotations

from typing import Any

import anyio
import anyio.abc
import pytest

from torrent_engine.engine.runtime import run
from torrent_engine.net.peer.connection import RECEIVE_SIZE, EncryptionPolicy
from torrent_engine.net.peer.handshake import accept, connect
from torrent_engine.net.peer.messages import Interested, Piece

BLOCK = 16 * 1024
BLOCKS_PER_PIECE = 16
NUM_BLOCKS = 4096  # 64 MiB
INFO_HASH = bytes(range(20))
DATA = bytes(range(256)) * (BLOCK // 256)
BATCH = [Piece(0, j * BLOCK, DATA) for j in range(BLOCKS_PER_PIECE)]
STREAM_BYTES = NUM_BLOCKS * (BLOCK + 13)


async def transfer_peer(encryption: EncryptionPolicy) -> int:
    async def send_side(stream: anyio.abc.SocketStream) -> None:
        conn = await accept(
            stream,
            lookup=lambda h: True,
            info_hashes=[INFO_HASH],
            peer_id=b"-TE0100-ssssssssssss",
            encryption=encryption,
        )
        async with conn:
            await conn.receive()
            for i in range(NUM_BLOCKS // BLOCKS_PER_PIECE):
                await conn.send_many([Piece(i, p.begin, p.block) for p in BATCH])
            await anyio.sleep(5)

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    received = 0
    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, send_side)
        conn = await connect(
            "127.0.0.1",
            port,
            info_hash=INFO_HASH,
            peer_id=b"-TE0100-rrrrrrrrrrrr",
            encryption=encryption,
            num_pieces=NUM_BLOCKS // BLOCKS_PER_PIECE,
            piece_size=lambda i: BLOCK * BLOCKS_PER_PIECE,
        )
        async with conn:
            assert conn.encrypted == (encryption == "require")
            await conn.send(Interested())
            with anyio.fail_after(60):
                while received < NUM_BLOCKS * BLOCK:
                    msg = await conn.receive()
                    if type(msg) is Piece:
                        received += len(msg.block)
        tg.cancel_scope.cancel()
    return received


async def transfer_raw() -> int:
    chunk = b"".join(p.to_bytes() for p in BATCH)

    async def send_side(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            for _ in range(NUM_BLOCKS // BLOCKS_PER_PIECE):
                await stream.send(chunk)
            await anyio.sleep(5)

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    received = 0
    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, send_side)
        stream = await anyio.connect_tcp("127.0.0.1", port)
        async with stream:
            with anyio.fail_after(60):
                while received < STREAM_BYTES:
                    received += len(await stream.receive(RECEIVE_SIZE))
        tg.cancel_scope.cancel()
    return received


@pytest.mark.benchmark(group="peer-loopback-64MiB")
def test_loopback_reference_raw_stream(benchmark: Any) -> None:
    assert benchmark.pedantic(run, args=(transfer_raw,), rounds=5, iterations=1) == STREAM_BYTES


@pytest.mark.benchmark(group="peer-loopback-64MiB")
def test_loopback_peer_plaintext(benchmark: Any) -> None:
    assert (
        benchmark.pedantic(run, args=(transfer_peer, "disable"), rounds=5, iterations=1) == NUM_BLOCKS * BLOCK
    )


@pytest.mark.benchmark(group="peer-loopback-64MiB")
def test_loopback_peer_rc4(benchmark: Any) -> None:
    assert (
        benchmark.pedantic(run, args=(transfer_peer, "require"), rounds=5, iterations=1) == NUM_BLOCKS * BLOCK
    )
