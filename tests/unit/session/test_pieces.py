"""Pieces: a v1 piece's SHA-1 is taken as its blocks come (in order, once per read); whatever the
order the blocks came in, and whatever landed again inside the part already hashed, a piece passes
exactly when the bytes it writes are the piece's. And the requests of many peers are sized so the
pieces they touch fit the piece buffers."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio
import pytest

from tests.unit.torrent_factory import make_torrent, payload
from torrent_engine.config import Config
from torrent_engine.picker import BLOCK_SIZE
from torrent_engine.session.phases import Opened
from torrent_engine.session.pieces import Pieces
from torrent_engine.session_state import State
from torrent_engine.storage import Storage

pytestmark = pytest.mark.anyio

PL = 4 * BLOCK_SIZE
BLOB = payload(PL * 3, 5)


class FakeSession(SimpleNamespace):
    """What Pieces reaches through its session, recorded."""

    def __init__(self, tmp_path: Path, tg: Any) -> None:
        torrent = make_torrent([(("f",), BLOB)], PL)
        passed: list[int] = []
        failed: list[int] = []
        super().__init__(
            torrent=torrent, config=Config(), state=State.DOWNLOADING, passed=passed, failed=failed,
            phase=Opened(None, Storage(torrent, tmp_path)),  # type: ignore[arg-type]
            layers=SimpleNamespace(learning=False, blocked=lambda i: False),
            picker=SimpleNamespace(piece_passed=passed.append, piece_failed=failed.append,
                                   piece_sources=lambda i: {}, is_complete=lambda: False),
            events=SimpleNamespace(publish=lambda e: None), info_hash_hex="00" * 20,
            context=SimpleNamespace(peers={}, ban=lambda key: None, fail=lambda exc: None,
                                    run=SimpleNamespace(tg=tg, maybe_complete=self._complete)),
            handler=SimpleNamespace(fill_requests=None), readers=SimpleNamespace(piece_passed=lambda i: None))

    async def _complete(self) -> None:
        pass


async def settled(pieces: Pieces) -> None:
    """Until no piece is being verified or written (bounded)."""
    with anyio.fail_after(5):
        while pieces.verifying:
            await anyio.sleep(0.001)


def blocks(index: int, data: bytes = BLOB) -> list[tuple[int, bytes]]:
    return [(b, data[index * PL + b:index * PL + b + BLOCK_SIZE]) for b in range(0, PL, BLOCK_SIZE)]


@pytest.mark.parametrize("order", ["in order", "reversed", "middle first", "one per read"])
async def test_a_piece_passes_whatever_the_order_of_its_blocks(tmp_path: Path, order: str) -> None:
    async with anyio.create_task_group() as tg:
        s = FakeSession(tmp_path, tg)
        pieces = Pieces(s)  # type: ignore[arg-type]
        got = blocks(1)
        if order == "reversed":
            got.reverse()
        elif order == "middle first":
            got = [got[1], got[0], got[2], got[3]]
        for n, (begin, data) in enumerate(got):
            pieces.take(1, begin, memoryview(data), n == len(got) - 1)
            if order == "one per read":
                pieces.hash_taken()
        pieces.hash_taken()
        await settled(pieces)
    assert (s.passed, s.failed) == ([1], [])
    assert (tmp_path / "t" / "f").read_bytes()[PL:2 * PL] == BLOB[PL:2 * PL]
    await s.phase.storage.close()


async def test_a_bad_block_fails_the_piece_hashed_as_it_came_or_at_the_end(tmp_path: Path) -> None:
    bad = bytearray(BLOB)
    bad[PL + 5] ^= 1  # in the first block of piece 1 (hashed as it came)
    bad[2 * PL + 3 * BLOCK_SIZE] ^= 1  # in the last block of piece 2
    async with anyio.create_task_group() as tg:
        s = FakeSession(tmp_path, tg)
        pieces = Pieces(s)  # type: ignore[arg-type]
        for index in (1, 2):
            for n, (begin, data) in enumerate(blocks(index, bytes(bad))):
                pieces.take(index, begin, memoryview(data), n == 3)
                pieces.hash_taken()
        await settled(pieces)
    assert (s.passed, sorted(s.failed)) == ([], [1, 2])
    assert not (tmp_path / "t" / "f").exists()  # nothing unverified reached the disk
    await s.phase.storage.close()


async def test_a_block_landing_again_in_the_hashed_part_is_verified_as_written(tmp_path: Path) -> None:
    """The prefix hash no longer describes the buffer: the whole piece is hashed again, so a
    good first copy cannot vouch for a bad second one (nor a bad first copy fail a good piece)."""
    good = blocks(0)
    evil = bytes(BLOCK_SIZE)
    async with anyio.create_task_group() as tg:
        s = FakeSession(tmp_path, tg)
        pieces = Pieces(s)  # type: ignore[arg-type]
        pieces.take(0, 0, memoryview(good[0][1]), False)
        pieces.take(0, BLOCK_SIZE, memoryview(good[1][1]), False)
        pieces.hash_taken()
        pieces.take(0, 0, memoryview(evil), False)  # the same offset again, other bytes
        pieces.take(0, 2 * BLOCK_SIZE, memoryview(good[2][1]), False)
        pieces.take(0, 3 * BLOCK_SIZE, memoryview(good[3][1]), True)
        pieces.hash_taken()
        pieces.take(2, 0, memoryview(bytes(BLOCK_SIZE)), False)  # a bad first copy ...
        pieces.take(2, 0, memoryview(blocks(2)[0][1]), False)  # ... replaced by the good one
        for begin, data in blocks(2)[1:]:
            pieces.take(2, begin, memoryview(data), begin == 3 * BLOCK_SIZE)
        pieces.hash_taken()
        await settled(pieces)
    assert (s.passed, s.failed) == ([2], [0])
    await s.phase.storage.close()


async def test_a_piece_hashed_as_it_came_is_written_with_no_task_and_passes_once_on_disk(
        tmp_path: Path) -> None:
    """The common case costs the loop no task per piece; still, the piece counts as had only
    once its data is written."""
    on_disk_when_passed: list[bool] = []
    async with anyio.create_task_group() as tg:
        s = FakeSession(tmp_path, tg)
        f = tmp_path / "t" / "f"

        def piece_passed(index: int) -> None:
            data = f.read_bytes() if f.exists() else b""
            on_disk_when_passed.append(data[index * PL:(index + 1) * PL] == BLOB[index * PL:(index + 1) * PL])
            s.passed.append(index)

        s.picker.piece_passed = piece_passed
        pieces = Pieces(s)  # type: ignore[arg-type]
        tasks = len(asyncio.all_tasks())
        for n, (begin, data) in enumerate(blocks(1)):
            pieces.take(1, begin, memoryview(data), n == 3)
        pieces.hash_taken()
        assert len(asyncio.all_tasks()) == tasks and pieces.verifying == {1}
        await settled(pieces)
    assert (s.passed, on_disk_when_passed) == ([1], [True])
    assert pieces.buffered_bytes == 0
    await s.phase.storage.close()


def test_many_peers_share_the_piece_buffer_in_requests() -> None:
    """With many peers, each keeps few enough requests in flight that the pieces they touch (about
    one of its own each, beside them) fit in piece_buffer_bytes; one peer is not held back."""
    from torrent_engine.session.peer_handler import MIN_MEMORY_SHARE, PeerHandler

    torrent = make_torrent([(("f",), payload(64 * 1024 * 1024, 1))], 1024 * 1024)
    cfg = Config()  # 32 MiB of piece buffers
    handler = PeerHandler(SimpleNamespace(torrent=torrent, config=cfg))  # type: ignore[arg-type]
    assert handler._memory_share(1) >= cfg.max_request_queue
    for peers in (2, 10, 20):
        share = handler._memory_share(peers)
        assert share >= MIN_MEMORY_SHARE
        assert peers * (share * BLOCK_SIZE + torrent.piece_length) <= cfg.piece_buffer_bytes
    assert handler._memory_share(200) == MIN_MEMORY_SHARE


@pytest.mark.parametrize("order", ["reversed", "middle first", "one per read, the last first"])
async def test_a_piece_whose_blocks_came_out_of_order_is_written_with_no_task_too(
        tmp_path: Path, order: str) -> None:
    """A seeder whose disk reads finish out of order sends the blocks of a piece out of order:
    the part the in-order hash could not take is hashed once the piece is complete, on the
    loop, and the piece takes the same way as one that came in order (no task, no hashing
    thread); it still passes only once written."""
    async with anyio.create_task_group() as tg:
        s = FakeSession(tmp_path, tg)
        pieces = Pieces(s)  # type: ignore[arg-type]
        got = blocks(2)
        if order == "reversed":
            got.reverse()
        elif order == "middle first":
            got = [got[0], got[2], got[1], got[3]]
        else:
            got = [got[3], got[0], got[1], got[2]]
        tasks = len(asyncio.all_tasks())
        for n, (begin, data) in enumerate(got):
            pieces.take(2, begin, memoryview(data), n == len(got) - 1)
            if order.startswith("one per read"):
                pieces.hash_taken()
        pieces.hash_taken()
        assert len(asyncio.all_tasks()) == tasks and pieces.verifying == {2}
        assert s.passed == []
        await settled(pieces)
    assert (s.passed, s.failed) == ([2], [])
    assert (tmp_path / "t" / "f").read_bytes()[2 * PL:3 * PL] == BLOB[2 * PL:3 * PL]
    await s.phase.storage.close()
