"""Storage is a seam: a session takes any ``PieceStorage`` (here wrappers that fail or count, as
rqbit's storage middleware does), and a disk failure is reported as ours, never blamed on a peer."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.integration.helpers import loopback_config, make_payload, make_torrent, same_files
from torrent_engine import events as ev
from torrent_engine.errors import (
    EncryptionError,
    PeerConnectionClosed,
    PeerError,
    PeerProtocolError,
    StorageError,
    TorrentEngineError,
)
from torrent_engine.formats.layout import TorrentLayout
from torrent_engine.session import Session
from torrent_engine.storage import Storage

pytestmark = pytest.mark.anyio


def test_errors_say_who_failed() -> None:
    """A dropped link is not a protocol breach; a disk error is not a socket error."""
    assert not issubclass(PeerConnectionClosed, PeerProtocolError)
    assert not issubclass(PeerProtocolError, PeerConnectionClosed)
    assert issubclass(PeerConnectionClosed, PeerError) and issubclass(PeerProtocolError, PeerError)
    assert issubclass(EncryptionError, PeerProtocolError)
    assert not issubclass(StorageError, OSError) and issubclass(StorageError, TorrentEngineError)


class FailingWrites(Storage):
    """Real storage whose writes fail once ``fail_after`` pieces were written."""

    def __init__(self, torrent: TorrentLayout, save_path: Path, fail_after: int) -> None:
        super().__init__(torrent, save_path)
        self.fail_after = fail_after
        self.writes = 0

    async def write_block(self, index: int, begin: int, data: bytes | memoryview) -> None:
        self.writes += 1
        if self.writes > self.fail_after:
            raise StorageError(f"disk full writing piece {index}")
        await super().write_block(index, begin, data)

    async def write_piece_if(self, index: int, data: bytes | bytearray | memoryview,
                             check: Callable[[], bool]) -> bool:
        self.writes += 1
        if self.writes > self.fail_after:
            raise StorageError(f"disk full writing piece {index}")
        return await super().write_piece_if(index, data, check)

    def write_verified(self, index: int, data: bytes | bytearray | memoryview,
                       done: Callable[[BaseException | None], None]) -> None:
        # the capability is offered (it is a Storage): it must fail the same way
        self.writes += 1
        if self.writes > self.fail_after:
            asyncio.get_running_loop().call_soon(done, StorageError(f"disk full writing piece {index}"))
            return
        super().write_verified(index, data, done)


class CountingReads(Storage):
    """Real storage that counts the pieces read from a worker thread (recheck, verification)."""

    def __init__(self, torrent: TorrentLayout, save_path: Path) -> None:
        super().__init__(torrent, save_path)
        self.blocking_reads = 0

    def read_piece_blocking(self, index: int) -> bytes:
        self.blocking_reads += 1
        return super().read_piece_blocking(index)


async def test_a_failing_disk_ends_the_session_as_a_storage_error_and_bans_no_peer(tmp_path: Path) -> None:
    payload = make_payload(tmp_path / "seed", [("a.bin", 600_000)])
    torrent = make_torrent(payload, version="v1")
    made: list[FailingWrites] = []

    def failing(t: TorrentLayout, path: Path) -> FailingWrites:
        made.append(FailingWrites(t, path, fail_after=3))
        return made[-1]

    async with Session(torrent, tmp_path / "seed", config=loopback_config()) as seeder:
        await seeder.wait_ready()
        leecher = Session(torrent, tmp_path / "leech", config=loopback_config(), storage=failing,
                          peers=[("127.0.0.1", seeder.listen_port)])
        errors: list[ev.Event] = []
        leecher.events.subscribe("session.error", errors.append)
        async with leecher:
            with anyio.fail_after(30):
                while not leecher.finished:
                    await anyio.sleep(0.05)
            status = leecher.status()
    assert made and made[0].writes > 3
    assert [e.name for e in errors] == ["session.error"]
    assert "disk full writing piece" in status.error and "internal error" not in status.error
    assert leecher.banned_count == 0 and leecher.hash_failures == 0


async def test_a_wrapped_storage_is_what_the_recheck_reads(tmp_path: Path) -> None:
    payload = make_payload(tmp_path / "data", [("a.bin", 300_000), ("b.bin", 70_000)])
    torrent = make_torrent(payload, version="v1")
    made: list[CountingReads] = []

    def counting(t: TorrentLayout, path: Path) -> CountingReads:
        made.append(CountingReads(t, path))
        return made[-1]

    async with Session(torrent, tmp_path / "data", config=loopback_config(), storage=counting) as session:
        with anyio.fail_after(20):
            await session.wait_ready()
        assert session.rechecked and len(session.have) == torrent.num_pieces
    assert made[0].blocking_reads == torrent.num_pieces
    assert same_files(torrent, payload.parent, tmp_path / "data") == []


class Delegating:
    """A wrapper that is no ``Storage``: it offers what its inner storage offers, the writing of
    verified pieces included when ``verified_writer`` (counting each path a piece takes)."""

    def __init__(self, inner: Storage, verified_writer: bool) -> None:
        self.inner = inner
        self.slow = 0
        self.fast = 0
        if verified_writer:
            self.write_verified = self._write_verified

    def _write_verified(self, index: int, data: bytes | bytearray | memoryview,
                        done: Callable[[BaseException | None], None]) -> None:
        self.fast += 1
        self.inner.write_verified(index, data, done)

    async def write_piece_if(self, index: int, data: bytes | bytearray | memoryview,
                             check: Callable[[], bool]) -> bool:
        self.slow += 1
        return await self.inner.write_piece_if(index, data, check)

    def __getattr__(self, name: str) -> object:  # file_path, write_block, reads, flush, close...
        if name == "write_verified":  # (only when offered: set in __init__)
            raise AttributeError(name)
        return getattr(self.inner, name)


@pytest.mark.parametrize("verified_writer", [True, False])
async def test_the_fast_write_path_follows_what_a_storage_offers_not_its_class(
        tmp_path: Path, verified_writer: bool) -> None:
    payload = make_payload(tmp_path / "seed", [("a.bin", 1_500_000)])
    torrent = make_torrent(payload, version="v1")
    made: list[Delegating] = []

    def wrapped(t: TorrentLayout, path: Path) -> Delegating:
        made.append(Delegating(Storage(t, path), verified_writer))
        return made[-1]

    async with Session(torrent, tmp_path / "seed", config=loopback_config()) as seeder:
        await seeder.wait_ready()
        async with Session(torrent, tmp_path / "leech", config=loopback_config(), storage=wrapped,  # type: ignore[arg-type]
                           peers=[("127.0.0.1", seeder.listen_port)]) as leecher:
            with anyio.fail_after(30):
                await leecher.wait_completed()
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []
    w = made[0]
    assert w.fast + w.slow == torrent.num_pieces
    assert (w.fast > 0) == verified_writer  # a wrapper keeps the fast path by offering it


class WritesHeldUntilReleased(Storage):
    """Real storage whose piece writes wait for ``release``, then fail (a disk that errs late)."""

    def __init__(self, torrent: TorrentLayout, save_path: Path) -> None:
        super().__init__(torrent, save_path)
        self.release = threading.Event()

    def _write_pieces_sync(self, pieces: Any) -> BaseException | None:
        self.release.wait(10)
        return OSError(28, "No space left on device")


async def test_a_write_that_fails_after_the_session_ended_starts_no_task(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The write of a verified piece fails only once the session is shutting down (its task group
    closed): its callback must not start a task in that group."""
    payload = make_payload(tmp_path / "seed", [("a.bin", 64 * 1024)])
    torrent = make_torrent(payload, version="v1")
    piece = (payload / "a.bin").read_bytes()[:torrent.piece_size(0)]
    made: list[WritesHeldUntilReleased] = []

    def held(t: TorrentLayout, path: Path) -> WritesHeldUntilReleased:
        made.append(WritesHeldUntilReleased(t, path))
        return made[-1]

    with anyio.fail_after(30):
        s = Session(torrent, tmp_path / "dl", config=loopback_config(), storage=held)
        async with s:
            await s.wait_ready()
            real_stop = s.announcer.stop

            async def stop_then_release() -> None:  # (the first step of the shutdown, after the group)
                made[-1].release.set()
                await real_stop()

            s.announcer.stop = stop_then_release  # type: ignore[method-assign]
            seed = ("http://127.0.0.1:1/", 0)  # piece 0 as a web seed brings it, block by block
            s.picker.peer_have_all(seed)
            assert s.parts.webseeds.pick_run(seed, 1, lowest=True) == [0]
            await s.parts.webseeds.deliver(seed, 0, memoryview(piece))
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], \
        [r.getMessage() for r in caplog.records]


class SlowDisk(Storage):
    """Real storage whose piece writes take ``delay`` seconds each (a slow or busy disk), counting
    the bytes of pieces handed to it and not yet written."""

    def __init__(self, torrent: TorrentLayout, save_path: Path, delay: float) -> None:
        super().__init__(torrent, save_path)
        self.delay = delay
        self.lock = threading.Lock()
        self.pending = 0
        self.peak = 0

    def _handed(self, size: int) -> None:
        with self.lock:
            self.pending += size
            self.peak = max(self.peak, self.pending)

    def write_verified(self, index: int, data: bytes | bytearray | memoryview,
                       done: Callable[[BaseException | None], None]) -> None:
        self._handed(len(data))
        super().write_verified(index, data, done)

    async def write_piece_if(self, index: int, data: bytes | bytearray | memoryview,
                             check: Callable[[], bool]) -> bool:
        self._handed(len(data))
        return await super().write_piece_if(index, data, check)

    def _write_pieces_sync(self, pieces: Any) -> BaseException | None:  # (one, or a run at once)
        time.sleep(self.delay)
        try:
            return super()._write_pieces_sync(pieces)
        finally:
            with self.lock:
                self.pending -= sum(len(view) for _, view in pieces)


async def test_a_slow_disk_slows_the_download_and_holds_no_more_than_the_piece_buffer(tmp_path: Path) -> None:
    """Pieces come from the seed far faster than the disk writes them: the download waits for
    the disk (the peers' sockets are not read meanwhile), and the pieces held for writing never
    pass ``Config.piece_buffer_bytes`` (with the default 32 MiB, the whole 3 MiB would be held at
    once); every piece arrives and is written whole."""
    piece = 64 * 1024
    payload = make_payload(tmp_path / "seed", [("a.bin", 48 * piece)])
    torrent = make_torrent(payload, piece_length=piece, version="v1")
    made: list[SlowDisk] = []

    def slow(t: TorrentLayout, path: Path) -> SlowDisk:
        made.append(SlowDisk(t, path, delay=0.02))
        return made[-1]

    cap = 4 * piece
    async with Session(torrent, tmp_path / "seed", config=loopback_config()) as seeder:
        await seeder.wait_ready()
        async with Session(torrent, tmp_path / "leech", config=loopback_config(piece_buffer_bytes=cap),
                           storage=slow, peers=[("127.0.0.1", seeder.listen_port)]) as leecher:
            with anyio.fail_after(60):
                await leecher.wait_completed()
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []
    disk = made[0]
    assert disk.pending == 0 and 0 < disk.peak <= cap, (disk.peak, cap)


GATHER = 10.0  # (the most ``Config.disk_write_gather`` may be: far beyond each test's bound)


@pytest.mark.parametrize("cap", ["roomy", "two pieces"])
async def test_pieces_held_back_to_gather_do_not_hold_up_the_download(tmp_path: Path, cap: str) -> None:
    """With verified pieces held back for ``GATHER`` seconds before their write, a download still
    completes at once: its last piece sends what is held to the disk (nothing else is to come),
    and a block that waits for room under the piece buffer cap (two pieces) sends what is held
    too (their buffers come back once written)."""
    payload = make_payload(tmp_path / "seed", [("a.bin", 1_500_000)])
    torrent = make_torrent(payload, version="v1", piece_length=64 * 1024)
    leech_cfg = loopback_config(disk_write_gather=GATHER)
    if cap == "two pieces":
        leech_cfg.piece_buffer_bytes = 2 * 64 * 1024
    async with Session(torrent, tmp_path / "seed", config=loopback_config()) as seeder:
        await seeder.wait_ready()
        async with Session(torrent, tmp_path / "leech", config=leech_cfg,
                           peers=[("127.0.0.1", seeder.listen_port)]) as leecher:
            with anyio.fail_after(GATHER / 2):
                await leecher.wait_completed()
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []


async def test_a_piece_a_reader_waits_for_is_not_held_back_to_gather(tmp_path: Path) -> None:
    """A reader opened while the download goes on at 200 kB/s reads its first bytes long before
    the download ends or ``GATHER`` seconds pass: the pieces readers wait for are written at
    once."""
    payload = make_payload(tmp_path / "seed", [("a.bin", 4_000_000)])
    torrent = make_torrent(payload, version="v1", piece_length=64 * 1024)
    first = (payload / "a.bin").read_bytes()[:1000]
    slow = loopback_config(upload_rate_limit=200_000)
    async with Session(torrent, tmp_path / "seed", config=slow) as seeder:
        await seeder.wait_ready()
        async with Session(torrent, tmp_path / "leech", config=loopback_config(disk_write_gather=GATHER),
                           peers=[("127.0.0.1", seeder.listen_port)]) as leecher:
            with anyio.fail_after(GATHER / 2):
                async with leecher.open_file(0) as reader:
                    assert await reader.read(1000) == first
            assert not leecher.picker.is_complete()
