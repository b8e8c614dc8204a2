"""The session's request pipeline (depth from the peer's rate), snubbing and request timeouts:
the depth on plain PeerState data; the rest on a running Session (no data, no peers) whose
handler is fed a peer's messages over a fake link that records our requests."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

import anyio
import pytest

from tests.integration.helpers import loopback_config
from torrent_engine.config import Config
from torrent_engine.formats.bitfield import Bitfield
from torrent_engine.formats.metainfo import Torrent
from torrent_engine.net.peer import messages as m
from torrent_engine.session import BLOCK_SIZE, PeerState, Session
from torrent_engine.session.requesting import queue_depth


def _torrent(tmp_path: Path) -> Torrent:
    from torrent_engine.storage.create import create_torrent

    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "a").write_bytes(b"x" * 300_000)
    (tmp_path / "p" / "b").write_bytes(b"y" * 10)
    return create_torrent(tmp_path / "p", piece_length=32 * 1024, version="v1")


def _peer(t: Torrent, **kw: object) -> PeerState:
    peer = PeerState(host="127.0.0.1", port=1, link=None, incoming=False, have=Bitfield.full(t.num_pieces))
    for k, v in kw.items():
        setattr(peer, k, v)
    return peer


@pytest.mark.parametrize(("rate", "reqq", "expected"), [
    (0.0, 250, 2),  # nothing measured yet: the minimum
    (1_000_000.0, 250, int(1_000_000 * 3 / BLOCK_SIZE)),  # 1 MB/s x 3 s / 16 KiB = 183
    (100_000_000.0, 250, 250),  # bounded by the peer's BEP 10 reqq
    (100_000_000.0, 2000, 500),  # and by our max_request_queue
])
def test_queue_depth_follows_the_rate(tmp_path: Path, rate: float, reqq: int, expected: int) -> None:
    t = _torrent(tmp_path)
    s = Session(t, tmp_path / "dl", config=Config(dht_enabled=False, port_mapping=False, lsd_enabled=False))
    peer = _peer(t, down_rate=rate, reqq=reqq, slow_start=False)
    assert queue_depth(peer, s.config) == expected


def test_slow_start_grows_the_queue_and_snubbed_peers_get_one(tmp_path: Path) -> None:
    t = _torrent(tmp_path)
    s = Session(t, tmp_path / "dl", config=Config(dht_enabled=False, port_mapping=False, lsd_enabled=False))
    peer = _peer(t, slow_start=True, queue_target=40)
    assert queue_depth(peer, s.config) == 40
    peer.snubbed = True
    assert queue_depth(peer, s.config) == 1


class _Link:
    """What would go on the wire to the peer: the requests we send it."""

    def __init__(self) -> None:
        self.requests: list[m.Request] = []

    async def send_many(self, msgs: Iterable[m.Message]) -> None:
        self.requests += [msg for msg in msgs if isinstance(msg, m.Request)]


async def _unchoked_seed(s: Session, t: Torrent, **kw: object) -> tuple[PeerState, _Link]:
    """A peer (fake link) that says it has every piece and unchokes us, as the wire would."""
    link = _Link()
    peer = _peer(t, link=link, have=Bitfield(t.num_pieces), last_block=time.monotonic(), **kw)
    await s.handler.on_message(peer, m.HaveAll())  # -> interested
    await s.handler.on_message(peer, m.Unchoke())  # -> the first requests
    return peer, link


@pytest.mark.anyio
async def test_snub_after_silence_and_timed_out_requests_go_back_to_the_picker(tmp_path: Path) -> None:
    t = _torrent(tmp_path)
    cfg = loopback_config(snub_timeout=60.0, request_timeout=30.0)
    with anyio.fail_after(10):
        async with Session(t, tmp_path / "dl", config=cfg) as s:  # no data, no peers: downloading
            await s.wait_ready()
            peer, link = await _unchoked_seed(s, t)
            start = time.monotonic()
            sent = len(link.requests)
            assert sent > 0 and peer.am_interested and s.picker.in_flight(peer.key) == sent
            s.handler.check_timeouts(peer, start + 20.0)
            assert not peer.snubbed and s.picker.in_flight(peer.key) == sent
            s.handler.check_timeouts(peer, start + 31.0)  # older than 30 s with no block since: released
            assert s.picker.in_flight(peer.key) == 0 and not peer.snubbed
            assert s.picker.requests_of(peer.key) == []  # free for other peers again
            await s.handler.fill_requests(peer)
            assert len(link.requests) == 2 * sent  # asked again
            s.handler.check_timeouts(peer, start + 61.0)  # a minute without a block: snubbed
            assert peer.snubbed and queue_depth(peer, s.config) == 1


@pytest.mark.anyio
async def test_a_peer_that_rejects_every_request_is_not_asked_again_at_once(tmp_path: Path) -> None:
    """A fast peer that unchokes us and then rejects whatever we ask: answering each reject with
    new requests (the same blocks, picked again) is a request/reject loop at wire speed. Refills
    for that peer wait for the once-a-second pass instead."""
    t = _torrent(tmp_path)
    with anyio.fail_after(10):
        async with Session(t, tmp_path / "dl", config=loopback_config()) as s:
            await s.wait_ready()
            peer, link = await _unchoked_seed(s, t, fast=True)
            first = len(link.requests)
            for _ in range(100):  # the peer rejects all it was asked, each time
                pending = s.picker.requests_of(peer.key)
                if not pending:
                    break
                for block in pending:
                    await s.handler.on_message(peer, m.RejectRequest(block.index, block.begin, block.length))
            assert first > 0
            assert len(link.requests) == first


@pytest.mark.anyio
async def test_a_pipeline_cut_to_its_memory_share_is_refilled_at_three_quarters_free(tmp_path: Path) -> None:
    """Piece buffers for 42 blocks, 2-block pieces: one fast peer (queue depth 250) may have
    40 requests in flight; such a short pipeline is refilled once three quarters of it (30) are
    free, not half of it."""
    from torrent_engine.storage.create import create_torrent

    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "a").write_bytes(bytes(2 * 1024 * 1024))  # 128 blocks
    t = create_torrent(tmp_path / "p", piece_length=32 * 1024, version="v1")
    cfg = loopback_config(piece_buffer_bytes=42 * BLOCK_SIZE)
    with anyio.fail_after(10):
        async with Session(t, tmp_path / "dl", config=cfg) as s:
            await s.wait_ready()
            link = _Link()
            peer = _peer(t, link=link, have=Bitfield(t.num_pieces), last_block=time.monotonic(),
                         slow_start=False, down_rate=10_000_000.0)
            s.context.peers[peer.key] = peer
            await s.handler.on_message(peer, m.HaveAll())
            await s.handler.on_message(peer, m.Unchoke())
            assert len(link.requests) == 40  # its share: (42 - 1 peer x 2 blocks) / 1
            for req in list(link.requests[:29]):  # 29 blocks come: 11 left in flight
                await s.handler.on_message(peer, m.Piece(req.index, req.begin, bytes(req.length)))
            assert len(link.requests) == 40  # half of it free (20) is not yet a batch
            req = link.requests[29]
            await s.handler.on_message(peer, m.Piece(req.index, req.begin, bytes(req.length)))
            assert len(link.requests) == 70  # 30 free: one write of 30


@pytest.mark.anyio
async def test_a_new_peer_starts_with_the_initial_request_queue(tmp_path: Path) -> None:
    """Before its rate is known a peer gets ``initial_request_queue`` requests (16 blocks), not
    ``min_request_queue``: slow start from 2 blocks took five round trips to fill a 1.6 MB/s
    link at 400 ms RTT (40 blocks in flight)."""
    from .idle_link import IdleLink

    t = _torrent(tmp_path)
    with anyio.fail_after(10):
        async with Session(t, tmp_path / "dl", config=loopback_config()) as s, \
                anyio.create_task_group() as tg:
            await s.wait_ready()
            tg.start_soon(s.handler.serve, IdleLink(b"-XX0001-" + bytes(12)), "127.0.0.1", 40000, True)
            while not s.peers:
                await anyio.sleep(0.01)
            peer = s.peers[0]
            assert peer.slow_start and queue_depth(peer, s.config) == 16
            assert s.config.initial_request_queue == 16 and s.config.min_request_queue == 2
            tg.cancel_scope.cancel()
