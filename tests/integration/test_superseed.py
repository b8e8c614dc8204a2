"""Super-seeding (BEP 16) between our own seed and leecher on loopback: the leecher is told of the
seed's pieces one at a time, only while the seed seeds; turned off mid-connection, the leecher is
told of every piece at once; a job keeps the option over a restart."""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import pytest

from tests.integration.helpers import loopback_config, make_payload, make_torrent, same_files
from torrent_engine.jobs import JobService, JobState
from torrent_engine.net.peer import messages as m
from torrent_engine.net.peer.wire import PeerWire
from torrent_engine.session import Session
from torrent_engine.session.peer import PeerState
from torrent_engine.session.state_table import State

pytestmark = pytest.mark.anyio

PL = 16 * 1024
FILES = (("a.bin", 40 * PL + 123),)  # 41 pieces


async def test_on_the_wire_a_super_seed_says_have_none_offers_one_piece_and_rejects_the_rest(
        tmp_path: Path) -> None:
    """A fast-extension peer of the tests' making: HAVE NONE then one HAVE; a request of another
    piece is rejected, of the offered one served; its HAVE of it (alone) brings the next offer."""
    torrent = make_torrent(make_payload(tmp_path / "seed", FILES), piece_length=PL)
    async with Session(torrent, tmp_path / "seed", config=loopback_config(encryption="disable")) as seed:
        await seed.wait_ready()
        seed.set_super_seeding(True)
        reasons: list[str] = []
        seed.events.subscribe("peer.disconnected", lambda e: reasons.append(getattr(e, "reason", "")))
        wire = PeerWire(info_hash=torrent.info_hash, peer_id=b"-XX0003-" + os.urandom(6).hex().encode(),
                        reserved=m.make_reserved(extension=False, fast=True),
                        num_pieces=torrent.num_pieces, piece_size=torrent.piece_size)
        seen: list[m.Message] = []
        async with await anyio.connect_tcp("127.0.0.1", seed.listen_port) as stream:

            async def until(kind: type[m.Message], count: int = 1) -> list[m.Message]:
                with anyio.fail_after(10):
                    while sum(isinstance(x, kind) for x in seen) < count:
                        try:
                            wire.receive_data(await stream.receive())
                        except anyio.EndOfStream:
                            raise AssertionError(f"the seed closed the connection ({reasons}) while we "
                                                 f"waited for {kind.__name__}; seen {seen}") from None
                        seen.extend(wire.events())
                return [x for x in seen if isinstance(x, kind)]

            await stream.send(wire.handshake())
            await until(m.Handshake)
            await stream.send(wire.send(m.HaveNone()) + wire.send(m.Interested()))
            offered = (await until(m.Have))[0]
            assert isinstance(offered, m.Have)
            assert not any(isinstance(x, (m.Bitfield, m.HaveAll)) for x in seen)
            assert any(isinstance(x, m.HaveNone) for x in seen)
            await until(m.Unchoke)
            other = (offered.index + 1) % (torrent.num_pieces - 1)  # (a whole piece, not the last)
            length = min(1024, torrent.piece_size(offered.index))  # (the last piece is short)
            await stream.send(wire.send(m.Request(other, 0, 1024))
                              + wire.send(m.Request(offered.index, 0, length)))
            rejected = await until(m.RejectRequest)
            piece = (await until(m.Piece))[0]
            assert [(r.index, r.begin) for r in rejected if isinstance(r, m.RejectRequest)] == [(other, 0)]
            assert isinstance(piece, m.Piece) and piece.index == offered.index
            await stream.send(wire.send(m.Have(offered.index)))  # (as if it had the whole piece)
            offers = await until(m.Have, 2)
            assert isinstance(offers[1], m.Have) and offers[1].index != offered.index


def the_seed(leech: Session) -> PeerState | None:
    peers = leech.peers
    return peers[0] if peers else None


async def test_a_super_seed_offers_one_piece_at_a_time_until_turned_off(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed", FILES), piece_length=PL)
    async with Session(torrent, tmp_path / "seed", config=loopback_config()) as seed:
        await seed.wait_ready()
        assert seed.state is State.SEEDING
        seed.set_super_seeding(True)
        seed.set_rate_limits(upload=8 * PL)  # (slow enough to look at the leecher midway)
        async with Session(torrent, tmp_path / "leech", config=loopback_config(),
                           peers=[("127.0.0.1", seed.listen_port)]) as leech:
            with anyio.fail_after(30):
                while len(leech.have) < 10:
                    await anyio.sleep(0.02)
            peer = the_seed(leech)
            assert peer is not None
            # told of no more than what it has and the piece it is given now
            told, had = len(peer.have), len(leech.have)
            assert told <= had + 1, (told, had)
            seed.set_super_seeding(False)
            seed.set_rate_limits(upload=0)
            with anyio.fail_after(10):  # every piece told at once (HAVEs), on the same connection
                while len(peer.have) < torrent.num_pieces:
                    await anyio.sleep(0.02)
            assert the_seed(leech) is peer
            with anyio.fail_after(30):
                await leech.wait_completed()
    assert same_files(torrent, tmp_path / "seed", tmp_path / "leech") == []


async def test_a_downloading_torrent_ignores_super_seeding(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed", FILES), piece_length=PL)
    async with Session(torrent, tmp_path / "seed", config=loopback_config()) as seed:
        await seed.wait_ready()
        async with Session(torrent, tmp_path / "middle", config=loopback_config(),
                           peers=[("127.0.0.1", seed.listen_port)]) as middle:
            middle.set_super_seeding(True)
            assert middle.super_seeding
            with anyio.fail_after(30):
                await middle.wait_completed()
            # seeding now: a new peer is greeted super-seeding (told of one piece, not all)
            async with Session(torrent, tmp_path / "late", config=loopback_config(),
                               peers=[("127.0.0.1", middle.listen_port)]) as late:
                with anyio.fail_after(30):
                    await late.wait_completed()
            assert middle.uploaded >= torrent.payload_size


async def test_an_update_of_a_dormant_seed_whose_view_is_kept_answers_the_new_options(tmp_path: Path) -> None:
    """A seed with no session (dormant) keeps its snapshot while nothing of it changes: an update
    answers and lists the new options at once, not the kept snapshot."""
    root, state = tmp_path / "dl", tmp_path / "state"
    torrent = make_torrent(make_payload(root / "x", FILES), piece_length=PL)
    async with JobService(loopback_config(state_dir=state), download_root=root, state_dir=state) as jobs:
        job, _ = await jobs.add(torrent.to_bytes(), save_path="x")
        with anyio.fail_after(10):
            while (job := jobs.get(job.id)).state is not JobState.SEEDING:
                await anyio.sleep(0.01)
        run = jobs._run  # (the kept view is what this test is about)
        rec = run.jobs.get(job.id)
        assert rec is not None and jobs.manager.get(torrent.info_hash) is None  # (dormant)
        run.sleepers.fall_quiet(rec, complete=True, time_left=None)
        kept = jobs.get(job.id)
        assert jobs.get(job.id) is kept  # (its view is kept while it sleeps)
        job = await jobs.update(job.id, super_seeding=True, upload_limit=1000)
        assert job.options.super_seeding and job.options.upload_limit == 1000
        listed = jobs.get(job.id)
        assert listed.options.super_seeding and listed.options.upload_limit == 1000


async def test_a_job_keeps_super_seeding_over_a_restart(tmp_path: Path) -> None:
    root, state = tmp_path / "dl", tmp_path / "state"
    torrent = make_torrent(make_payload(root / "x", FILES), piece_length=PL)
    async with JobService(loopback_config(state_dir=state), download_root=root, state_dir=state) as jobs:
        job, _ = await jobs.add(torrent.to_bytes(), save_path="x")
        with anyio.fail_after(10):
            while (job := jobs.get(job.id)).state is not JobState.SEEDING:
                await anyio.sleep(0.01)
        assert not job.options.super_seeding
        job = await jobs.update(job.id, super_seeding=True)
        assert job.options.super_seeding and job.to_json()["options"]["super_seeding"] is True  # type: ignore[index]
        session = jobs.manager.get(torrent.info_hash)
        assert session is None or session.super_seeding  # (a dormant seed is told as it wakes)
    async with JobService(loopback_config(state_dir=state), download_root=root, state_dir=state) as jobs:
        assert jobs.get(job.id).options.super_seeding
        with anyio.fail_after(10):
            while jobs.get(job.id).state is not JobState.SEEDING:
                await anyio.sleep(0.01)
        async with Session(torrent, tmp_path / "leech", config=loopback_config(),
                           peers=[("127.0.0.1", jobs.stats().listen_port)]) as leech:
            with anyio.fail_after(30):
                await leech.wait_completed()
        session = jobs.manager.get(torrent.info_hash)
        assert session is not None and session.super_seeding
        job = await jobs.update(job.id, super_seeding=False)
        assert not job.options.super_seeding and not session.super_seeding
    assert same_files(torrent, root / "x", tmp_path / "leech") == []
