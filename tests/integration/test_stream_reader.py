"""File readers over loopback swarms of our own sessions: any byte range of any file, verified
bytes only, deadlines that put a reader's pieces first, magnets, liars and sessions that end."""

from __future__ import annotations

import io
import os
from pathlib import Path

import anyio
import anyio.abc
import pytest

import torrent_engine as te
from torrent_engine import events as ev
from torrent_engine.engine.manager import TorrentManager
from torrent_engine.errors import StreamError
from torrent_engine.formats.magnet import parse_magnet
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.net.peer import messages as m
from torrent_engine.net.peer.wire import PeerWire
from torrent_engine.session import Session

from .fake_seed import FakeSeed, block_of
from .helpers import DEFAULT_FILES, loopback_config, make_payload, make_torrent

pytestmark = pytest.mark.anyio


def file_bytes(root: Path, torrent: Torrent, index: int) -> bytes:
    return root.joinpath(*torrent.files[index].path).read_bytes()


async def test_ranges_at_piece_and_file_boundaries(tmp_path: Path) -> None:
    payload = make_payload(tmp_path / "seed")
    torrent = make_torrent(payload, piece_length=32 * 1024)
    pl = torrent.piece_length
    cfg = loopback_config()
    async with Session(torrent, tmp_path / "seed", config=cfg) as seeder:
        await seeder.wait_ready()
        async with Session(torrent, tmp_path / "leech", config=cfg,
                           peers=[("127.0.0.1", seeder.listen_port)]) as leecher:
            real = [i for i, f in enumerate(torrent.files) if not f.pad]
            assert len(real) == len(DEFAULT_FILES)
            for index in real:
                want = file_bytes(tmp_path / "seed", torrent, index)
                f = torrent.files[index]
                async with leecher.open_file(index) as r:
                    assert r.size == len(want)
                    # the file's first piece boundary, ranges across it, the end, past the end
                    boundary = (pl - f.offset % pl) % pl
                    for start, n in [(0, 1), (boundary, 100), (max(0, boundary - 7), 14),
                                     (max(0, len(want) - 3), 10), (len(want), 5), (len(want) + 9, 5)]:
                        r.seek(start)
                        with anyio.fail_after(30):
                            got = await r.read(n)
                        assert got == want[start:start + n], (index, start, n)
                    r.seek(0)
                    with anyio.fail_after(30):
                        assert await r.read() == want
                    assert r.tell() == len(want)
                    if len(want) >= 5:
                        r.seek(-5, 2)
                        assert await r.read(100) == want[-5:]


async def test_a_read_at_80_percent_comes_before_most_of_the_torrent(tmp_path: Path) -> None:
    size = 4 * 1024 * 1024
    payload = make_payload(tmp_path / "seed", [("movie.bin", size)])
    torrent = make_torrent(payload, piece_length=32 * 1024, version="v1")
    cfg = loopback_config()
    seed_cfg = loopback_config(upload_rate_limit=1_000_000)  # about 4 s for all of it
    want = file_bytes(tmp_path / "seed", torrent, 0)
    async with Session(torrent, tmp_path / "seed", config=seed_cfg) as seeder:
        await seeder.wait_ready()
        async with Session(torrent, tmp_path / "leech", config=cfg,
                           peers=[("127.0.0.1", seeder.listen_port)]) as leecher:
            # the download under way (past the seeder's first second, sent at once): its pipeline
            # holds many requests, the seeder sends at its pace
            with anyio.fail_after(30):
                while len(leecher.have) < 48:
                    await anyio.sleep(0.01)
            async with leecher.open_file(0) as r:  # (its first window: the whole file)
                at = size * 8 // 10
                r.seek(at)  # (inside that window: the requests before it give way all the same)
                before = set(leecher.have)
                with anyio.fail_after(60):
                    got = await r.read(64 * 1024)
                came = set(leecher.have) - before
            assert got == want[at:at + 64 * 1024]
            # pieces before the position that came meanwhile: only those already on their way
            # (rarest-first alone, or the requests made before the seek, would bring tens first)
            earlier = sorted(i for i in came if i < at // torrent.piece_length)
            assert len(earlier) < torrent.num_pieces // 8, earlier
            assert leecher.picker.deadlines == []  # no reader open: normal picking
            with anyio.fail_after(60):
                await leecher.wait_completed()


async def test_two_readers_at_once(tmp_path: Path) -> None:
    size = 4 * 1024 * 1024
    payload = make_payload(tmp_path / "seed", [("movie.bin", size)])
    torrent = make_torrent(payload, piece_length=32 * 1024, version="v1")
    want = file_bytes(tmp_path / "seed", torrent, 0)
    seed_cfg = loopback_config(upload_rate_limit=1_000_000)  # (its first second, ~30 pieces, at once)
    async with Session(torrent, tmp_path / "seed", config=seed_cfg) as seeder:
        await seeder.wait_ready()
        async with Session(torrent, tmp_path / "leech", config=loopback_config()) as leecher:
            results: dict[int, bytes] = {}
            placed = anyio.Semaphore(0)

            async def read_at(start: int) -> None:
                async with leecher.open_file(0) as r:
                    r.seek(start)
                    placed.release()
                    results[start] = await r.read(100_000)

            with anyio.fail_after(60):
                async with anyio.create_task_group() as tg:
                    for start in (0, size - 100_000):
                        tg.start_soon(read_at, start)
                    for _ in range(2):
                        await placed.acquire()
                    # both readers in place before the seeder is known: every request is theirs
                    leecher.add_peers([("127.0.0.1", seeder.listen_port)])
            assert results == {s: want[s:s + 100_000] for s in (0, size - 100_000)}
            # 7 pieces of 128, from both ends: rarest-first alone would have fetched most of it first
            assert len(leecher.have) < torrent.num_pieces // 2


async def test_reader_on_a_magnet_opens_once_the_metadata_came(tmp_path: Path) -> None:
    payload = make_payload(tmp_path / "seed")
    torrent = make_torrent(payload, version="v1")
    cfg = loopback_config()
    async with Session(torrent, tmp_path / "seed", config=cfg) as seeder:
        await seeder.wait_ready()
        magnet = parse_magnet(f"magnet:?xt=urn:btih:{torrent.info_hash.hex()}")
        async with Session(magnet, tmp_path / "leech", config=cfg,
                           peers=[("127.0.0.1", seeder.listen_port)]) as leecher:
            with anyio.fail_after(60):
                async with leecher.open_file(3) as r:
                    assert r.name.endswith("sub/deeper/c.dat")
                    r.seek(1000)
                    got = await r.read(50_000)
    assert got == file_bytes(tmp_path / "seed", torrent, 3)[1000:51_000]


async def test_bad_file_index_is_a_stream_error(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed"))
    async with Session(torrent, tmp_path / "seed", config=loopback_config()) as seeder:
        await seeder.wait_ready()
        with pytest.raises(StreamError, match="no file 99"):
            async with seeder.open_file(99):
                pass
        pad = next(i for i, f in enumerate(torrent.files) if f.pad)
        with pytest.raises(StreamError, match="pad file"):
            await seeder.open_file(pad).open()


async def test_waiting_read_ends_with_stream_error_when_the_session_stops(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed"))
    errors: list[BaseException] = []
    async with TorrentManager(loopback_config(state_dir=tmp_path / "state")) as manager:
        leecher = await manager.add(torrent, tmp_path / "leech")  # no peer at all
        reader = await leecher.open_file(0).open()

        async def read() -> None:
            try:
                await reader.read(10)
            except StreamError as exc:
                errors.append(exc)

        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:
                tg.start_soon(read)
                while reader.waiting is None:
                    await anyio.sleep(0.01)
                await leecher.stop()
    assert errors and "ended" in str(errors[0])
    with pytest.raises(StreamError, match="ended"):
        await reader.read(1)


class Liar(FakeSeed):
    """Has every piece and answers every request at once, with random bytes."""

    def __init__(self, torrent: Torrent) -> None:
        super().__init__(torrent)
        self.lied: set[int] = set()

    async def on_message(self, msg: m.Message, wire: PeerWire, stream: anyio.abc.SocketStream) -> None:
        if isinstance(msg, m.Request):
            self.lied.add(msg.index)
            await stream.send(wire.send(m.Piece(msg.index, msg.begin, os.urandom(msg.length))))


async def test_a_liar_on_the_waited_piece_costs_time_not_good_bytes(tmp_path: Path) -> None:
    size = 1024 * 1024
    payload = make_payload(tmp_path / "seed", [("movie.bin", size)])
    torrent = make_torrent(payload, piece_length=16 * 1024, version="v1")
    want = file_bytes(tmp_path / "seed", torrent, 0)
    liar = Liar(torrent)
    failed: list[int] = []
    async with anyio.create_task_group() as tg:
        await tg.start(liar.serve)
        async with Session(torrent, tmp_path / "seed",
                           config=loopback_config(upload_rate_limit=500_000)) as seeder:
            await seeder.wait_ready()
            cfg = loopback_config(encryption="disable", request_timeout=1.0, snub_timeout=1.5)
            leecher = Session(torrent, tmp_path / "leech", config=cfg)  # (no peer yet)

            def on_failed(e: ev.Event) -> None:
                if isinstance(e, ev.PieceHashFailed):
                    failed.append(e.index)

            leecher.events.subscribe("piece.hash_failed", on_failed)
            got = b""
            async with leecher:
                at = size // 2
                with anyio.fail_after(60):
                    async with leecher.open_file(0) as r:
                        r.seek(at)

                        async def read() -> None:
                            nonlocal got
                            got = await r.read(3 * 16 * 1024)

                        async with anyio.create_task_group() as reading:
                            reading.start_soon(read)
                            while r.waiting is None:  # the reader waits on its pieces,
                                await anyio.sleep(0.01)
                            leecher.add_peer("127.0.0.1", liar.port)  # which are asked of the liar,
                            while not liar.lied:
                                await anyio.sleep(0.01)
                            leecher.add_peer("127.0.0.1", seeder.listen_port)  # then of the seeder
        tg.cancel_scope.cancel()
    assert got == want[at:at + 3 * 16 * 1024]
    waited = set(range(at // (16 * 1024), at // (16 * 1024) + 3))
    assert waited & liar.lied  # the liar really was asked for the pieces the reader waited on
    assert waited & set(failed)  # and its data for them failed the check, not reached the reader


def test_blocking_file_reader_from_a_thread(tmp_path: Path) -> None:
    size = 1024 * 1024
    torrent = make_torrent(make_payload(tmp_path / "seed", [("movie.bin", size)]), version="v1")
    want = file_bytes(tmp_path / "seed", torrent, 0)
    with te.BackgroundDownload(torrent, tmp_path / "seed", config=loopback_config()) as seeder:
        assert seeder.wait(timeout=30)
        with te.BackgroundDownload(torrent, tmp_path / "dl", config=loopback_config(),
                                   peers=(("127.0.0.1", seeder.session.listen_port),)) as leecher:
            with leecher.open_file(0, timeout=30) as f:
                assert f.size == size and f.seekable()
                f.seek(size - 1000)
                assert f.read() == want[-1000:]
                f.seek(12_345)
                buffered = io.BufferedReader(f)
                assert buffered.read(70_000) == want[12_345:82_345]
            with pytest.raises(ValueError):
                f.read(1)  # closed
    with te.BackgroundDownload(torrent, tmp_path / "none", config=loopback_config()) as nobody:
        with nobody.open_file(0, timeout=0.5) as f, pytest.raises(te.DownloadTimeout):
            f.read(10)


class Staller(FakeSeed):
    """Has every piece; answers requests slowly (so it is neither snubbed nor timed out) except
    those of the pieces in ``hold``, which it takes and never answers."""

    def __init__(self, torrent: Torrent, data: bytes, hold: set[int]) -> None:
        super().__init__(torrent)
        self.data = data
        self.hold = hold
        self.asked: list[int] = []

    async def on_message(self, msg: m.Message, wire: PeerWire, stream: anyio.abc.SocketStream) -> None:
        if isinstance(msg, m.Request):
            self.asked.append(msg.index)
            if msg.index not in self.hold:
                await anyio.sleep(0.2)
                await stream.send(wire.send(block_of(self.torrent, self.data, msg)))


async def test_a_late_piece_a_reader_waits_on_is_asked_of_a_second_peer(tmp_path: Path) -> None:
    size = 8 * 1024 * 1024  # at the seeder's 200 kB/s endgame (which would ask it too) is 40 s away
    payload = make_payload(tmp_path / "seed", [("movie.bin", size)])
    torrent = make_torrent(payload, piece_length=16 * 1024, version="v1")
    want = file_bytes(tmp_path / "seed", torrent, 0)
    piece = size // 2 // (16 * 1024)
    staller = Staller(torrent, want, {piece})
    async with anyio.create_task_group() as tg:
        await tg.start(staller.serve)
        # (plaintext: the seeder hears of the staller by PEX and dials it, which speaks no MSE)
        seed_cfg = loopback_config(upload_rate_limit=200_000, encryption="disable")
        async with Session(torrent, tmp_path / "seed", config=seed_cfg) as seeder:
            await seeder.wait_ready()
            # timeouts far away: only the late duplicate can get the piece from the seeder in time
            cfg = loopback_config(encryption="disable", request_timeout=120.0, snub_timeout=120.0)
            async with Session(torrent, tmp_path / "leech", config=cfg,
                               peers=[("127.0.0.1", staller.port)]) as leecher:
                async with leecher.open_file(0) as r:
                    r.seek(size // 2)
                    with anyio.fail_after(20):
                        while piece not in staller.asked:  # the staller holds the waited piece
                            await anyio.sleep(0.01)
                        leecher.add_peer("127.0.0.1", seeder.listen_port)
                        got = await r.read(100)
        tg.cancel_scope.cancel()
    assert got == want[size // 2:size // 2 + 100]
