"""The session's upload side (BEP 6 answers to requests), on a running seeding Session: a fake
link stands for the peer (what it says is fed to the session's handler, what we send is
recorded), the data comes from real files."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest

from torrent_engine.config import Config
from torrent_engine.errors import PeerProtocolError
from torrent_engine.formats.bitfield import Bitfield
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.net.peer import messages as m
from torrent_engine.net.peer.connection import hand_over
from torrent_engine.net.peer.donthave import encode_donthave
from torrent_engine.net.peer.extensions import ExtensionHandshake
from torrent_engine.session import PeerState, Session
from torrent_engine.session.peer_handler import OUR_LT_DONTHAVE_ID
from torrent_engine.session.state_table import State
from torrent_engine.storage.create import create_torrent
from torrent_engine.storage.read_cache import ReadCache

pytestmark = pytest.mark.anyio


class _Link:
    """A connected peer (BEP 6 fast extension) as the handler sees it: ``tell`` feeds it
    messages from the peer, ``sent`` records ours."""

    peer_id = b"-XX0001-abcdefghijkl"
    peer_id_client = "XX 0.0.1"
    transport = "tcp"
    fast = True
    extension = encrypted = False

    def __init__(self, answers_expected: int) -> None:
        self.sent: list[m.Message] = []
        self.answers_expected = answers_expected
        self.all_answered = anyio.Event()
        self.unchoked = anyio.Event()
        self._send, self._receive = anyio.create_memory_object_stream[m.Message](100)

    async def tell(self, *msgs: m.Message) -> None:
        for msg in msgs:
            await self._send.send(msg)

    async def receive(self) -> m.Message:
        return await self._receive.receive()

    async def run(self, fast: Callable[[list[m.Message]], int],
                  slow: Callable[[m.Message], Awaitable[None]]) -> None:
        """As ``PeerConnection.run``: each message told is one read's batch."""
        while True:
            await hand_over([await self.receive()], fast, slow)

    async def send_many(self, msgs: Iterable[m.Message]) -> None:
        self._record(list(msgs))

    def write_many(self, msgs: Iterable[m.Message]) -> None:
        self._record(list(msgs))

    def write_pieces(self, pieces: list[tuple[int, int, memoryview]]) -> None:
        self._record([m.Piece(index, begin, bytes(block)) for index, begin, block in pieces])

    async def drain(self) -> None:
        pass

    def _record(self, msgs: list[m.Message]) -> None:
        self.sent.extend(msgs)
        if m.Unchoke() in self.sent:
            self.unchoked.set()
        if len(_answers(self.sent)) >= self.answers_expected:
            self.all_answered.set()

    def set_max_buffer(self, size: int) -> None:
        pass

    async def aclose(self) -> None:
        self._send.close()
        self._receive.close()


@asynccontextmanager
async def _seeding_session(tmp_path: Path,
                           piece_length: int = 32 * 1024) -> AsyncIterator[tuple[Torrent, Session]]:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "a").write_bytes(bytes(range(256)) * 1000)
    torrent = create_torrent(tmp_path / "p", piece_length=piece_length, version="v1")
    cfg = Config(listen_host="127.0.0.1", listen_port=0, dht_enabled=False, port_mapping=False,
                 lsd_enabled=False,
                 tracker_enabled=False)
    with anyio.fail_after(10):
        async with Session(torrent, tmp_path, config=cfg) as s:
            await s.wait_ready()
            assert s.state is State.SEEDING  # the data is all there
            yield torrent, s


def _answers(sent: list[m.Message]) -> list[tuple[int, int]]:
    return [(msg.index, msg.begin) for msg in sent if isinstance(msg, (m.Piece, m.RejectRequest))]


async def test_choke_while_a_batch_is_read_still_answers_every_request_of_a_fast_peer(tmp_path: Path) -> None:
    """BEP 6: each request gets exactly one piece or reject, also those the uploader had taken
    from the queue when the choke came."""
    requests = [m.Request(0, 0, 16384), m.Request(0, 16384, 16384), m.Request(1, 0, 16384)]
    link = _Link(len(requests))
    async with _seeding_session(tmp_path) as (_torrent, s):
        reading, go_on = anyio.Event(), anyio.Event()
        read_piece = s.uploader.read_piece

        async def slow_read(index: int) -> bytes:
            reading.set()
            await go_on.wait()
            return await read_piece(index)

        s.uploader.read_piece = slow_read  # type: ignore[method-assign]
        async with anyio.create_task_group() as tg:
            tg.start_soon(s.handler.serve, link, "127.0.0.1", 1, False)
            await link.tell(m.Interested())
            await link.unchoked.wait()  # a free upload slot
            await link.tell(*requests, m.NotInterested())
            await reading.wait()  # the uploader holds the first request
            while any(p.peer_interested for p in s.peers):
                await anyio.sleep(0.01)
            await s.uploader.rechoke()  # not interested: choked; the queued requests are rejected
            assert all(p.am_choking for p in s.peers)
            go_on.set()
            await link.all_answered.wait()
            tg.cancel_scope.cancel()
    assert sorted(_answers(link.sent)) == sorted((r.index, r.begin) for r in requests)  # one answer each
    assert not any(isinstance(msg, m.Piece) for msg in link.sent[link.sent.index(m.Choke()):])


async def test_a_cancelled_request_of_a_fast_peer_is_answered_with_a_reject(tmp_path: Path) -> None:
    """BEP 6: even a cancelled request gets its piece or a reject."""
    link = _Link(1)
    async with _seeding_session(tmp_path) as (torrent, s):
        peer = PeerState(host="127.0.0.1", port=1, link=link, incoming=False,  # type: ignore[arg-type]
                         have=Bitfield(torrent.num_pieces), fast=True, am_choking=False)
        await s.uploader.on_request(peer, m.Request(0, 16384, 16384))
        await s.handler.on_message(peer, m.Cancel(0, 16384, 16384))
    assert link.sent == [m.RejectRequest(0, 16384, 16384)]
    assert not peer.upload_queue


def test_the_read_cache_holds_what_the_peers_being_served_need() -> None:
    """(READ_AHEAD_PIECES + 1) pieces per unchoked peer, at least 4 MiB, at most 32 MiB: a
    seeder of one peer no longer keeps 32 MiB of pieces (its RSS: bench/RESULTS.md)."""
    from torrent_engine.session.upload import (
        PIECE_CACHE_MAX,
        PIECE_CACHE_MIN,
        READ_AHEAD_PIECES,
        cache_budget,
    )

    mib = 1024 * 1024
    assert cache_budget(0, mib) == PIECE_CACHE_MIN  # nobody served: the floor
    assert cache_budget(3, mib) == max(PIECE_CACHE_MIN, 3 * (READ_AHEAD_PIECES + 1) * mib)
    assert cache_budget(50, mib) == PIECE_CACHE_MAX


async def test_served_pieces_are_held_in_the_engines_read_cache_within_its_size_and_let_go_at_the_end(
        tmp_path: Path) -> None:
    """A cache per torrent kept up to 4 MiB of every torrent ever served (bench_seedbox_peers:
    530 MiB after 500 torrents were served once); the engine's one cache bounds them all."""
    requests = [m.Request(i, 0, 16384) for i in range(5)]  # five pieces of 32 KiB
    link = _Link(len(requests))
    async with _seeding_session(tmp_path) as (_torrent, s):
        assert s.shared is not None
        cache = s.shared.read_cache = ReadCache(max_bytes=64 * 1024)  # two pieces
        async with anyio.create_task_group() as tg:
            tg.start_soon(s.handler.serve, link, "127.0.0.1", 1, False)
            await link.tell(m.Interested())
            await link.unchoked.wait()
            await link.tell(*requests)
            await link.all_answered.wait()
            assert 0 < cache.bytes <= 64 * 1024
            tg.cancel_scope.cancel()
        assert sorted(_answers(link.sent)) == [(r.index, 0) for r in requests]
    assert cache.bytes == 0 and len(cache) == 0  # the run ended: none of its pieces is held


class _ExtensionLink(_Link):
    """A fast peer that speaks BEP 10 too."""

    extension = True


def _overwrite_in_place(path: Path, offset: int) -> None:
    """Other bytes at ``offset``, same size; the mtime moves (a coarse clock may not move it)."""
    before = path.stat()
    with path.open("r+b") as f:
        f.seek(offset)
        f.write(b"\xa5" * 100)
    os.utime(path, ns=(before.st_atime_ns, max(path.stat().st_mtime_ns, before.st_mtime_ns + 1_000_000)))


async def test_a_piece_lost_under_our_seed_is_taken_back_from_peers_that_take_lt_donthave(
        tmp_path: Path) -> None:
    """A HAVE (here HAVE ALL) cannot be taken back but by BEP 54: told only by rejects,
    libtorrent asked again at once for the piece it had begun, and nothing else, for ever (the
    interop test test_libtorrent_changed_seed.py stalled so, 1 run in 12 under load)."""
    lost = 2
    link = _ExtensionLink(1)
    async with _seeding_session(tmp_path) as (torrent, s):
        _overwrite_in_place(tmp_path / "p" / "a", lost * torrent.piece_length + 10)
        async with anyio.create_task_group() as tg:
            tg.start_soon(s.handler.serve, link, "127.0.0.1", 1, False)
            await link.tell(m.Extended(0, ExtensionHandshake(m={"lt_donthave": 7}).encode()),
                            m.HaveNone(), m.Interested())
            await link.unchoked.wait()
            await link.tell(m.Request(lost, 0, 16384))
            await link.all_answered.wait()
            tg.cancel_scope.cancel()
        assert lost not in s.have
    assert m.HaveAll() in link.sent
    assert m.RejectRequest(lost, 0, 16384) in link.sent
    assert m.Extended(7, encode_donthave(lost)) in link.sent  # BEP 54: no longer had


async def test_a_peers_lt_donthave_takes_the_piece_out_of_what_it_has(tmp_path: Path) -> None:
    link = _Link(0)
    async with _seeding_session(tmp_path) as (torrent, s):
        peer = PeerState(host="127.0.0.1", port=1, link=link, incoming=False,  # type: ignore[arg-type]
                         have=Bitfield.full(torrent.num_pieces), fast=True)
        s.picker.peer_have_all(peer.key)
        assert s.picker.availability(3) == 1
        await s.handler.on_message(peer, m.Extended(OUR_LT_DONTHAVE_ID, encode_donthave(3)))
        assert 3 not in peer.have and len(peer.have) == torrent.num_pieces - 1
        assert s.picker.availability(3) == 0 and s.picker.availability(4) == 1
        beyond = m.Extended(OUR_LT_DONTHAVE_ID, encode_donthave(torrent.num_pieces))
        with pytest.raises(PeerProtocolError):
            await s.handler.on_message(peer, beyond)
        s.picker.peer_gone(peer.key)


async def test_a_peer_without_lt_donthave_that_keeps_asking_for_a_lost_piece_is_disconnected_saying_why(
        tmp_path: Path) -> None:
    """A peer that cannot take lt_donthave learns of a lost piece only from rejects; one that asks
    again at once (as libtorrent does for a piece it began) asked for nothing else from us, for
    ever. After ``LOST_ASKS`` such requests it is disconnected, with the reason: the bitfield of
    its next connection leaves the piece out. Its first requests are rejected as before."""
    from torrent_engine import events as ev
    from torrent_engine.session.upload import LOST_ASKS

    lost = 2
    link = _Link(LOST_ASKS)  # (a fast peer, no BEP 10: no lt_donthave)
    gone: list[ev.PeerDisconnected] = []
    async with _seeding_session(tmp_path) as (torrent, s):
        s.events.subscribe(ev.PeerDisconnected, gone.append)
        _overwrite_in_place(tmp_path / "p" / "a", lost * torrent.piece_length + 10)
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(s.handler.serve, link, "127.0.0.1", 1, False)
                await link.tell(m.HaveNone(), m.Interested())
                await link.unchoked.wait()
                await link.tell(m.Request(lost, 0, 16384))  # (found lost: rejected)
                while lost in s.have:
                    await anyio.sleep(0.01)
                for _ in range(LOST_ASKS):
                    await link.tell(m.Request(lost, 0, 16384))
                while not gone:  # (the serve task ends with the link: the group ends)
                    await anyio.sleep(0.01)
    # (the first, found lost, and each but the last of the others: rejected)
    assert _answers(link.sent).count((lost, 0)) == LOST_ASKS
    assert "we lost" in gone[0].reason and f"piece {lost}" in gone[0].reason
    assert "lt_donthave" in gone[0].reason


class _NoShelf:
    """A read cache that keeps nothing (as for a piece whose file changed while it was read)."""

    def get(self, index: int) -> bytes | None:
        return None

    def put(self, index: int, data: bytes, budget: int) -> None:
        pass


async def test_a_piece_read_by_three_at_once_and_kept_by_none_is_read_one_at_a_time(tmp_path: Path) -> None:
    """The first read of a piece ends, and nothing keeps its data. A read waiting on it and a read
    that starts in between (before the waiting one resumes) must not both become the piece's
    read. They did: one put its mark over the other's, and the second to end failed with a
    KeyError that crashed the session (a libtorrent test on a loaded machine, where a changed
    file kept the pieces out of the cache)."""
    async with _seeding_session(tmp_path) as (_torrent, s):
        up = s.uploader
        up._cache = lambda: _NoShelf()  # type: ignore[method-assign,assignment,return-value]
        gate = anyio.Event()
        reads: list[int] = []
        at_once = [0, 0]  # reads under way now, and the most at once

        async with anyio.create_task_group() as tg:
            async def read_block(index: int, begin: int, length: int) -> bytes | None:
                reads.append(index)
                at_once[0] += 1
                at_once[1] = max(at_once)
                if len(reads) == 1:
                    await gate.wait()
                    tg.start_soon(up.read_piece, 0)  # (a third read, scheduled before the waiter wakes)
                else:
                    await anyio.sleep(0.01)
                at_once[0] -= 1
                return b"x" * length

            up.read_block = read_block  # type: ignore[method-assign]
            tg.start_soon(up.read_piece, 0)
            while not reads:
                await anyio.sleep(0)
            tg.start_soon(up.read_piece, 0)  # waits for the first read
            for _ in range(5):
                await anyio.sleep(0)
            gate.set()
        assert len(reads) == 3 and at_once[1] == 1
        assert up._reading == {}


async def test_a_peer_that_asks_for_nothing_has_no_upload_task_until_it_asks(tmp_path: Path) -> None:
    """The upload loop of a peer starts at its first request: a seed we only download from, which
    never asks, costs no task. That request is served as before."""

    def serving() -> list[str]:
        return [t.name for t in anyio.get_running_tasks() if t.name and t.name.endswith("PeerHandler._serve")]

    link = _Link(1)
    async with _seeding_session(tmp_path) as (_torrent, s):
        async with anyio.create_task_group() as tg:
            tg.start_soon(s.handler.serve, link, "127.0.0.1", 1, False)
            await link.tell(m.Interested())
            await link.unchoked.wait()
            await anyio.sleep(0.05)  # (any task the connection starts by itself has started)
            assert serving() == [] and s.peers[0].serve_soon is not None
            await link.tell(m.Request(1, 0, 16384))
            await link.all_answered.wait()
            assert len(serving()) == 1 and s.peers[0].serve_soon is None
            tg.cancel_scope.cancel()
    assert m.Piece(1, 0, (bytes(range(256)) * 1000)[32 * 1024:48 * 1024]) in link.sent


class _RunLink(_Link):
    """Records the bytes of each write of pieces (one run of blocks); what was told at once is
    one read's batch (the requests are all queued before the uploader looks)."""

    def __init__(self, answers_expected: int) -> None:
        super().__init__(answers_expected)
        self.runs: list[int] = []

    async def run(self, fast: Callable[[list[m.Message]], int],
                  slow: Callable[[m.Message], Awaitable[None]]) -> None:
        while True:
            batch = [await self.receive()]
            with contextlib.suppress(anyio.WouldBlock):
                while True:
                    batch.append(self._receive.receive_nowait())
            await hand_over(batch, fast, slow)

    def write_pieces(self, pieces: list[tuple[int, int, memoryview]]) -> None:
        self.runs.append(sum(len(block) for _i, _b, block in pieces))
        super().write_pieces(pieces)


async def test_under_an_upload_limit_a_run_of_blocks_is_about_a_second_of_it(tmp_path: Path) -> None:
    """Unlimited, the blocks a peer asked for go out in runs of up to 256 KiB; under a limit, a
    run is about one second of it (whole blocks), not 256 KiB sent after seconds of waiting."""
    requests = [m.Request(0, begin, min(16384, 256_000 - begin)) for begin in range(0, 256_000, 16384)]
    link = _RunLink(len(requests))
    async with _seeding_session(tmp_path, piece_length=256 * 1024) as (_torrent, s):  # one piece
        s.set_rate_limits(upload=100_000)
        async with anyio.create_task_group() as tg:
            tg.start_soon(s.handler.serve, link, "127.0.0.1", 1, False)
            await link.tell(m.Interested())
            await link.unchoked.wait()
            await link.tell(*requests)
            with anyio.fail_after(10):
                await link.all_answered.wait()
            tg.cancel_scope.cancel()
    assert sum(link.runs) == 256_000
    assert len(link.runs) >= 3 and max(link.runs) <= 7 * 16384  # (7 blocks: 100 000 bytes and more)
