"""Endgame over many peers: a block asked of two peers comes from one; the CANCEL to the other is
written in the same synchronous pass as the block (no task per block). A running Session (no
data) whose handler is fed two peers' messages over fake links that record what is written."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

import anyio
import pytest

from tests.integration.helpers import loopback_config
from torrent_engine.errors import PeerConnectionClosed
from torrent_engine.formats.bitfield import Bitfield
from torrent_engine.net.peer import messages as m
from torrent_engine.session import PeerState, Session
from torrent_engine.storage.create import create_torrent

pytestmark = pytest.mark.anyio

BLOCK = 16 * 1024


class _Link:
    """Records our requests (``send_many``) and what is written without a wait (``write``)."""

    def __init__(self, *, broken: bool = False) -> None:
        self.requests: list[m.Request] = []
        self.written: list[bytes] = []
        self.broken = broken

    async def send_many(self, msgs: Iterable[m.Message]) -> None:
        self.requests += [msg for msg in msgs if isinstance(msg, m.Request)]

    def write(self, data: bytes) -> None:
        if self.broken:
            raise PeerConnectionClosed("connection lost")
        self.written.append(bytes(data))


async def _seed(s: Session, port: int, link: _Link) -> PeerState:
    """A connected peer with every piece that unchokes us (and gets our requests)."""
    t = s.torrent
    peer = PeerState(host="127.0.0.1", port=port, link=link, incoming=False,  # type: ignore[arg-type]
                     have=Bitfield(t.num_pieces), last_block=time.monotonic())
    s.context.peers[peer.key] = peer
    await s.handler.on_message(peer, m.HaveAll())
    await s.handler.on_message(peer, m.Unchoke())
    return peer


@pytest.mark.parametrize("broken", [False, True])
async def test_a_duplicate_block_is_cancelled_at_the_other_peer_at_once(tmp_path: Path, broken: bool) -> None:
    data = bytes(range(256)) * (BLOCK // 256)
    (tmp_path / "a").write_bytes(data)  # one piece of one block
    t = create_torrent(tmp_path / "a", piece_length=BLOCK, version="v1")
    with anyio.fail_after(10):
        async with Session(t, tmp_path / "dl", config=loopback_config()) as s:
            await s.wait_ready()
            a_link, b_link = _Link(), _Link(broken=broken)
            a = await _seed(s, 1, a_link)
            b = await _seed(s, 2, b_link)
            assert a_link.requests == [m.Request(0, 0, BLOCK)]
            assert b_link.requests == [m.Request(0, 0, BLOCK)]  # endgame: asked of both
            assert s.handler.on_batch(a, [m.Piece(0, 0, data)]) == 1
            # no await since: written in the pass that took the block
            cancel = m.Cancel(0, 0, BLOCK).to_bytes()
            if broken:  # the other peer's connection had ended: it is closed, the taker is not
                assert b.closed and not a.closed
            else:
                assert b_link.written == [cancel] and not b.closed
            assert a_link.written == [] and s.picker.requests_of(b.key) == []


async def test_the_cancels_of_one_read_go_to_the_other_peer_in_one_write(tmp_path: Path) -> None:
    """Three blocks asked of both peers come in one read from the first: the second gets the
    three CANCELs in one write, at the end of that read (not one write a block)."""
    data = bytes(range(256)) * (3 * BLOCK // 256)
    (tmp_path / "a").write_bytes(data)  # one piece of three blocks
    t = create_torrent(tmp_path / "a", piece_length=4 * BLOCK, version="v1")
    with anyio.fail_after(10):
        async with Session(t, tmp_path / "dl", config=loopback_config()) as s:
            await s.wait_ready()
            a_link, b_link = _Link(), _Link()
            a = await _seed(s, 1, a_link)
            b = await _seed(s, 2, b_link)
            asked = [m.Request(0, j * BLOCK, BLOCK) for j in range(3)]
            assert a_link.requests == asked  # and in endgame the same three of the other:
            assert sorted(b_link.requests, key=lambda r: r.begin) == asked
            blocks = [m.Piece(0, j * BLOCK, data[j * BLOCK:(j + 1) * BLOCK]) for j in range(3)]
            assert s.handler.on_batch(a, blocks) == 3
            assert b_link.written == [b"".join(m.Cancel(0, j * BLOCK, BLOCK).to_bytes() for j in range(3))]
            assert a_link.written == [] and s.picker.requests_of(b.key) == [] and not b.closed
