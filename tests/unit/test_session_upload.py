"""The session's upload side (BEP 6 answers to requests), checked on a Session that is not running:
a fake link records what would go on the wire, the data comes from real files."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import anyio
import pytest

from torrent_engine.bitfield import Bitfield
from torrent_engine.choker import Choker
from torrent_engine.config import Config
from torrent_engine.create import create_torrent
from torrent_engine.metainfo import Torrent
from torrent_engine.peer import messages as m
from torrent_engine.session import PeerState, Session
from torrent_engine.shared import SharedResources
from torrent_engine.storage import Storage

pytestmark = pytest.mark.anyio


class _Link:
    def __init__(self, answers_expected: int) -> None:
        self.sent: list[m.Message] = []
        self.answers_expected = answers_expected
        self.all_answered = anyio.Event()

    async def send_many(self, msgs: Iterable[m.Message]) -> None:
        self.sent.extend(msgs)
        if len(_answers(self.sent)) >= self.answers_expected:
            self.all_answered.set()


def _seeding_session(tmp_path: Path) -> tuple[Torrent, Session]:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "a").write_bytes(bytes(range(256)) * 1000)
    torrent = create_torrent(tmp_path / "p", piece_length=32 * 1024, version="v1")
    cfg = Config(dht_enabled=False)
    s = Session(torrent, tmp_path, config=cfg, shared=SharedResources(cfg))
    s._storage = Storage(torrent, tmp_path)
    for index in range(torrent.num_pieces):
        s._picker.piece_passed(index)
    return torrent, s


def _answers(sent: list[m.Message]) -> list[tuple[int, int]]:
    return [(msg.index, msg.begin) for msg in sent if isinstance(msg, (m.Piece, m.RejectRequest))]


async def test_choke_while_a_batch_is_read_still_answers_every_request_of_a_fast_peer(tmp_path: Path) -> None:
    """BEP 6: each request gets exactly one piece or reject, also those the uploader had taken
    from the queue when the choke came."""
    torrent, s = _seeding_session(tmp_path)
    requests = [m.Request(0, 0, 16384), m.Request(0, 16384, 16384), m.Request(1, 0, 16384)]
    link = _Link(len(requests))
    peer = PeerState(host="127.0.0.1", port=1, link=link, incoming=False, have=Bitfield(torrent.num_pieces),
                     fast=True, am_choking=False, peer_interested=False)
    s._peers[peer.key] = peer
    s.uploader._choker = Choker(s._rng, upload_slots=4)
    for req in requests:
        await s.uploader.on_request(peer, req)
    reading, go_on = anyio.Event(), anyio.Event()
    read_piece = s.uploader.read_piece

    async def slow_read(index: int) -> bytes:
        reading.set()
        await go_on.wait()
        return await read_piece(index)

    s.uploader.read_piece = slow_read  # type: ignore[method-assign]
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(s.uploader.serve, peer)
            await reading.wait()  # the uploader holds the first request
            await s.uploader.rechoke()  # not interested: choked; the queued requests are rejected
            assert peer.am_choking
            go_on.set()
            await link.all_answered.wait()
            tg.cancel_scope.cancel()
    assert sorted(_answers(link.sent)) == sorted((r.index, r.begin) for r in requests)  # one answer each
    assert not any(isinstance(msg, m.Piece) for msg in link.sent[link.sent.index(m.Choke()):])


async def test_a_cancelled_request_of_a_fast_peer_is_answered_with_a_reject(tmp_path: Path) -> None:
    """BEP 6: even a cancelled request gets its piece or a reject."""
    torrent, s = _seeding_session(tmp_path)
    link = _Link(1)
    peer = PeerState(host="127.0.0.1", port=1, link=link, incoming=False, have=Bitfield(torrent.num_pieces),
                     fast=True, am_choking=False)
    await s.uploader.on_request(peer, m.Request(0, 16384, 16384))
    await s.handler.on_message(peer, m.Cancel(0, 16384, 16384))
    assert link.sent == [m.RejectRequest(0, 16384, 16384)]
    assert not peer.upload_queue
