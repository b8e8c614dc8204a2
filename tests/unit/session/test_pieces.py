"""Pieces: a v1 piece's SHA-1 is taken as its blocks come (in order, once per read); whatever the
order the blocks came in, and whatever landed again inside the part already hashed, a piece passes
exactly when the bytes it writes are the piece's. And the requests of many peers are sized so the
pieces they touch fit the piece buffers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import anyio.abc
import pytest

from tests.unit.torrent_factory import make_torrent, payload
from torrent_engine import events as ev
from torrent_engine.config import Config
from torrent_engine.errors import TorrentEngineError
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.policy.picker import BLOCK_SIZE
from torrent_engine.policy.picker_parts import BlockReceived
from torrent_engine.session import requesting
from torrent_engine.session.context import Totals
from torrent_engine.session.peer import PeerState
from torrent_engine.session.pieces import Pieces
from torrent_engine.session.state_table import State
from torrent_engine.storage import Storage

pytestmark = pytest.mark.anyio

PL = 4 * BLOCK_SIZE
BLOB = payload(PL * 3, 5)


@dataclass
class Record:
    """The picker's side of piece assembly (``PieceRecord``), recording what passed and failed."""

    passed: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    on_pass: Callable[[int], None] | None = None  # looks at the disk as the piece counts as had

    def piece_passed(self, index: int) -> None:
        if self.on_pass is not None:
            self.on_pass(index)
        self.passed.append(index)

    def piece_failed(self, index: int) -> None:
        self.failed.append(index)

    def piece_sources(self, index: int) -> dict[int, tuple[str, int]]:
        return {}

    def is_complete(self) -> bool:
        return False

    def left_bytes(self) -> int:
        return 1 << 40  # (more to come: a storage may hold a piece back)

    @property
    def has_deadlines(self) -> bool:
        return False


class NoLayers:
    """A v1 torrent: every piece's hash is known (``LayerChecks``)."""

    learning = False

    def learn(self, index: int, piece_hash: bytes) -> None:
        raise AssertionError("a v1 torrent learns no v2 hashes")

    def blocked(self, index: int) -> bool:
        return False


@dataclass
class Parts:
    torrent: Torrent
    picker: Record
    layers: NoLayers


@dataclass
class Run:
    tg: anyio.abc.TaskGroup | None
    completions: int = 0

    async def maybe_complete(self) -> None:
        self.completions += 1


@dataclass
class Host:
    """What ``Pieces`` reads and calls of its torrent (``PiecesHost``): one file, three pieces."""

    storage: Storage
    run: Run
    parts: Parts
    config: Config = field(default_factory=Config)
    events: ev.EventBus = field(default_factory=ev.EventBus)
    info_hash_hex: str = "00" * 20
    peers: dict[tuple[str, int], PeerState] = field(default_factory=dict)
    state: State = State.DOWNLOADING
    banned: list[tuple[str, int]] = field(default_factory=list)
    failures: list[TorrentEngineError] = field(default_factory=list)
    totals: Totals = field(default_factory=Totals)

    def ban(self, key: tuple[str, int]) -> None:
        self.banned.append(key)

    def fail(self, exc: TorrentEngineError) -> None:
        self.failures.append(exc)

    @property
    def passed(self) -> list[int]:
        return self.parts.picker.passed

    @property
    def failed(self) -> list[int]:
        return self.parts.picker.failed


def host(tmp_path: Path, tg: anyio.abc.TaskGroup) -> Host:
    torrent = make_torrent([(("f",), BLOB)], PL)
    return Host(Storage(torrent, tmp_path), Run(tg), Parts(torrent, Record(), NoLayers()))


def pieces_of(h: Host) -> Pieces:
    async def refill(peer: PeerState) -> None:
        raise AssertionError("no peer is connected")

    def cancel(cancels: object) -> None:
        raise AssertionError("no peer is connected")

    return Pieces(h, h.parts.picker, on_passed=lambda index: None, refill=refill,  # type: ignore[arg-type]
                  cancel=cancel)


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
        s = host(tmp_path, tg)
        pieces = pieces_of(s)
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
    await s.storage.close()


async def test_a_bad_block_fails_the_piece_hashed_as_it_came_or_at_the_end(tmp_path: Path) -> None:
    bad = bytearray(BLOB)
    bad[PL + 5] ^= 1  # in the first block of piece 1 (hashed as it came)
    bad[2 * PL + 3 * BLOCK_SIZE] ^= 1  # in the last block of piece 2
    async with anyio.create_task_group() as tg:
        s = host(tmp_path, tg)
        pieces = pieces_of(s)
        for index in (1, 2):
            for n, (begin, data) in enumerate(blocks(index, bytes(bad))):
                pieces.take(index, begin, memoryview(data), n == 3)
                pieces.hash_taken()
        await settled(pieces)
    assert (s.passed, sorted(s.failed)) == ([], [1, 2])
    assert s.totals.corrupt == 2 * PL  # (each failed piece counted whole)
    assert not (tmp_path / "t" / "f").exists()  # nothing unverified reached the disk
    await s.storage.close()


async def test_a_block_landing_again_in_the_hashed_part_is_verified_as_written(tmp_path: Path) -> None:
    """The prefix hash no longer describes the buffer: the whole piece is hashed again, so a
    good first copy cannot vouch for a bad second one (nor a bad first copy fail a good piece)."""
    good = blocks(0)
    evil = bytes(BLOCK_SIZE)
    async with anyio.create_task_group() as tg:
        s = host(tmp_path, tg)
        pieces = pieces_of(s)
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
    await s.storage.close()


async def test_a_piece_hashed_as_it_came_is_written_with_no_task_and_passes_once_on_disk(
        tmp_path: Path) -> None:
    """The common case costs the loop no task per piece; still, the piece counts as had only
    once its data is written."""
    on_disk_when_passed: list[bool] = []
    async with anyio.create_task_group() as tg:
        s = host(tmp_path, tg)
        f = tmp_path / "t" / "f"

        def on_pass(index: int) -> None:
            data = f.read_bytes() if f.exists() else b""
            on_disk_when_passed.append(data[index * PL:(index + 1) * PL] == BLOB[index * PL:(index + 1) * PL])

        s.parts.picker.on_pass = on_pass
        pieces = pieces_of(s)
        tasks = len(asyncio.all_tasks())
        for n, (begin, data) in enumerate(blocks(1)):
            pieces.take(1, begin, memoryview(data), n == 3)
        pieces.hash_taken()
        assert len(asyncio.all_tasks()) == tasks and pieces.verifying == {1}
        await settled(pieces)
    assert (s.passed, on_disk_when_passed) == ([1], [True])
    assert pieces.buffered_bytes == 0
    await s.storage.close()


def test_many_peers_share_the_piece_buffer_in_requests() -> None:
    """With many peers, each keeps few enough requests in flight that the pieces they touch (about
    one of its own each, beside them) fit in piece_buffer_bytes; one peer is not held back."""
    piece_length = 1024 * 1024
    cfg = Config()  # 32 MiB of piece buffers
    assert requesting.memory_share(1, piece_length, cfg) >= cfg.max_request_queue
    for peers in (2, 10, 20):
        share = requesting.memory_share(peers, piece_length, cfg)
        assert share >= requesting.MIN_MEMORY_SHARE
        assert peers * (share * BLOCK_SIZE + piece_length) <= cfg.piece_buffer_bytes
    assert requesting.memory_share(200, piece_length, cfg) == requesting.MIN_MEMORY_SHARE


@pytest.mark.parametrize("order", ["reversed", "middle first", "one per read, the last first"])
async def test_a_piece_whose_blocks_came_out_of_order_is_written_with_no_task_too(
        tmp_path: Path, order: str) -> None:
    """A seeder whose disk reads finish out of order sends the blocks of a piece out of order:
    the part the in-order hash could not take is hashed once the piece is complete, on the
    loop, and the piece takes the same way as one that came in order (no task, no hashing
    thread); it still passes only once written."""
    async with anyio.create_task_group() as tg:
        s = host(tmp_path, tg)
        pieces = pieces_of(s)
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
    await s.storage.close()


@dataclass
class Counted(Record):
    """A picker that counts the bytes left (three pieces, less those passed) and accepts every
    block once, the last of a piece completing it."""

    got: dict[int, int] = field(default_factory=dict)

    def left_bytes(self) -> int:
        return 3 * PL - PL * len(self.passed)

    def received(self, source: object, index: int, begin: int, length: int) -> BlockReceived:
        self.got[index] = self.got.get(index, 0) + length
        return BlockReceived(True, self.got[index] == PL)


async def test_pieces_held_back_go_to_disk_once_the_last_piece_to_disk_block_by_block_is_all_there(
        tmp_path: Path) -> None:
    """Past the memory cap a piece goes to disk block by block while the pieces assembled in
    memory are held back to gather (10 s): once that piece's last block is in, nothing else is to
    come, and the pieces held back are written at once; the download does not wait for the
    gathering's time."""
    async with anyio.create_task_group() as tg:
        torrent = make_torrent([(("f",), BLOB)], PL)
        storage = Storage(torrent, tmp_path, write_gather=10.0)
        cap = Config(piece_buffer_bytes=2 * PL)
        s = Host(storage, Run(tg), Parts(torrent, Counted(), NoLayers()), config=cap)
        pieces = pieces_of(s)
        for index in (0, 1):  # (the cap is full: piece 2 goes to disk)
            for begin, data in blocks(index)[:-1]:
                assert pieces.land("a", index, begin, memoryview(data)) is not None
        pieces.hash_taken()
        await pieces.arrive("a", 2, 0, blocks(2)[0][1])
        for index in (0, 1):
            begin, data = blocks(index)[-1]
            assert pieces.land("a", index, begin, memoryview(data)) is not None
        await anyio.sleep(0.2)
        assert s.passed == [] and pieces.verifying == {0, 1}  # (held back)
        for begin, data in blocks(2)[1:]:
            await pieces.arrive("a", 2, begin, data)
        with anyio.fail_after(3):
            while len(s.passed) < 3:
                await anyio.sleep(0.01)
    assert sorted(s.passed) == [0, 1, 2] and s.failed == []
    assert (tmp_path / "t" / "f").read_bytes() == BLOB
    await s.storage.close()
