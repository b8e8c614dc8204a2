"""Connection limits on loopback: the limit over every torrent holds across two torrents (the
peers beyond it are not even dialed until it is raised), and a job's own limit holds for it."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest

from torrent_engine.formats.metainfo import Torrent
from torrent_engine.jobs import JobService
from torrent_engine.jobs.model import InvalidJobRequest
from torrent_engine.net.peer import messages as m
from torrent_engine.net.peer.wire import PeerWire
from torrent_engine.session import Session
from torrent_engine.session.connector import Connector

from .fake_seed import IdlePeer
from .helpers import loopback_config, make_payload, make_torrent

pytestmark = pytest.mark.anyio


async def _wait(predicate: Callable[[], object], timeout: float = 20.0) -> None:
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.05)


def _two_torrents(tmp_path: Path, peer: Callable[[Torrent, str], IdlePeer] = IdlePeer
                  ) -> tuple[list[Torrent], dict[bytes, list[IdlePeer]], list[IdlePeer]]:
    """Two torrents, three idle peers of each (by info-hash), and every peer."""
    torrents = [make_torrent(make_payload(tmp_path / f"seed{n}", ((f"{n}.bin", 60_000),), seed=n),
                             piece_length=16 * 1024) for n in (1, 2)]
    peers = {t.info_hash: [peer(t, "127.0.0.1") for _ in range(3)] for t in torrents}
    return torrents, peers, [p for group in peers.values() for p in group]


async def _add_with_peers(jobs: JobService, torrents: list[Torrent],
                          peers: dict[bytes, list[IdlePeer]]) -> list[Session]:
    """Each torrent added with its peers to dial; their sessions."""
    sessions = []
    for t in torrents:
        await jobs.add(t, peers=[("127.0.0.1", p.port) for p in peers[t.info_hash]])
        session = jobs.manager.get(t.info_hash)
        assert session is not None
        sessions.append(session)
    return sessions


@asynccontextmanager
async def _service_beside(tmp_path: Path, peers: list[IdlePeer]) -> AsyncIterator[JobService]:
    """A job service on loopback (no encryption) while ``peers`` serve."""
    async with anyio.create_task_group() as tg:
        for peer in peers:
            await tg.start(peer.serve)
        async with JobService(loopback_config(encryption="disable"), download_root=tmp_path / "dl",
                              state_dir=tmp_path / "state") as jobs:
            yield jobs
        tg.cancel_scope.cancel()


async def closed_by_us(torrent: Torrent, port: int) -> None:
    """A peer of ``torrent`` connects to ``port`` and is closed by us (its read ends)."""
    wire = PeerWire(info_hash=torrent.info_hash, peer_id=b"-XX0004-" + os.urandom(6).hex().encode(),
                    reserved=m.make_reserved(extension=False, fast=False),
                    num_pieces=torrent.num_pieces, piece_size=torrent.piece_size)
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(wire.handshake() + wire.send(m.Interested()))
        with anyio.fail_after(20):
            try:
                while await stream.receive():
                    pass
            except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                pass


async def test_the_global_limit_holds_across_two_torrents(tmp_path: Path) -> None:
    torrents, peers, everyone = _two_torrents(tmp_path)
    async with _service_beside(tmp_path, everyone) as jobs:
        await jobs.update_settings(max_connections=4)
        sessions = await _add_with_peers(jobs, torrents, peers)

        def connected() -> int:
            return sum(len(s.peers) for s in sessions)

        await _wait(lambda: connected() == 4)
        rounds = [s.connector.rounds for s in sessions]
        for s in sessions:
            s.connector.wake()
        pairs = list(zip(sessions, rounds, strict=True))
        # (two rounds of each dialer; one, for a torrent connected to every address it
        # knows: its loop ends then, until a peer leaves)
        await _wait(lambda: all(s.connector.rounds >= r + 2 or s.connector.rounds >= r + 1
                                and not s.connector.running for s, r in pairs))
        assert connected() == 4
        assert sum(p.accepted for p in everyone) == 4  # (the others were not dialed at all)
        assert jobs.manager.shared.connections == 4

        await jobs.update_settings(max_connections=-1)  # raised: the rest are dialed
        for s in sessions:
            s.connector.wake()
        await _wait(lambda: connected() == 6)
        assert [len(s.peers) for s in sessions] == [3, 3]


class _TimedPeer(IdlePeer):
    """An idle peer that notes when it accepted each connection."""

    def __init__(self, torrent: Torrent, host: str) -> None:
        super().__init__(torrent, host)
        self.at: list[float] = []

    async def _handle(self, stream: anyio.abc.SocketStream) -> None:
        self.at.append(time.monotonic())
        await super()._handle(stream)


async def test_outgoing_connections_go_at_the_rate_over_every_torrent(tmp_path: Path) -> None:
    """``connection_speed`` 2: two dials at once, then one each half second, over both torrents
    (without it the six go at once)."""
    torrents, peers, everyone = _two_torrents(tmp_path, _TimedPeer)
    async with _service_beside(tmp_path, everyone) as jobs:
        await jobs.update_settings(connection_speed=2)
        assert jobs.manager.shared.limits.connection_speed == 2
        for t in torrents:
            await jobs.add(t, peers=[("127.0.0.1", p.port) for p in peers[t.info_hash]])
        await _wait(lambda: sum(p.accepted for p in everyone) == 6)
        times = sorted(t for p in everyone if isinstance(p, _TimedPeer) for t in p.at)
        assert times[-1] - times[0] >= 1.5, times  # (four turns after the burst of two)
        with pytest.raises(InvalidJobRequest, match="0 \\(no outgoing connections\\)"):
            await jobs.update_settings(connection_speed=-2)


async def test_no_outgoing_connection_at_a_connection_speed_of_0(tmp_path: Path) -> None:
    """``connection_speed`` 0 (libtorrent's and qBittorrent's "no outgoing connections"): no peer
    is dialed and each torrent's dialer stops (no round every 2 s meanwhile); set to a rate
    again, every torrent dials at once."""
    torrents, peers, everyone = _two_torrents(tmp_path)
    async with _service_beside(tmp_path, everyone) as jobs:
        await jobs.update_settings(connection_speed=0)
        assert not jobs.manager.shared.limits.dial_out
        sessions = await _add_with_peers(jobs, torrents, peers)
        # (each dialer started with its swarm, made its round and stopped: one not started yet
        # was taken for one stopped once, and made its round in the sleep below)
        await _wait(lambda: all(s.connector.rounds > 0 and not s.connector.running for s in sessions))
        rounds = [s.connector.rounds for s in sessions]
        await anyio.sleep(2.5)  # (more than a dialer's round)
        assert [s.connector.rounds for s in sessions] == rounds
        assert sum(p.accepted for p in everyone) == 0
        assert jobs.get_settings().connection_speed == 0

        await jobs.update_settings(connection_speed=30)  # (no wake asked: the setting's own)
        assert jobs.manager.shared.limits.dial_out
        await _wait(lambda: sum(len(s.peers) for s in sessions) == 6, timeout=5.0)


async def test_peers_on_privileged_ports_are_not_dialed_while_they_are_blocked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``block_privileged_ports`` (qBittorrent's "block peers on privileged ports"): a peer on a
    port below 1024 is not taken into a torrent's pool, and one heard of before the setting (no
    dial then: ``connection_speed`` 0) is passed over when its turn comes; the other peers are
    dialed."""
    dialed: list[tuple[str, int]] = []
    dial = Connector.dial

    async def noted(self: Connector, key: tuple[str, int], **kw: Any) -> None:
        dialed.append(key)
        await dial(self, key, **kw)

    monkeypatch.setattr(Connector, "dial", noted)
    torrents, peers, everyone = _two_torrents(tmp_path)
    first, second = torrents
    low = [("127.0.0.1", 80), ("127.0.0.1", 1023)]
    async with _service_beside(tmp_path, everyone) as jobs:
        await jobs.update_settings(block_privileged_ports=True)
        assert jobs.manager.shared.limits.block_privileged_ports
        await jobs.add(first, peers=[*low, *(("127.0.0.1", p.port) for p in peers[first.info_hash])])
        one = jobs.manager.get(first.info_hash)
        assert one is not None and not any(key in one.connector._ctx.pool for key in low)
        await jobs.update_settings(block_privileged_ports=False, connection_speed=0)
        await jobs.add(second, peers=[*low, *(("127.0.0.1", p.port) for p in peers[second.info_hash])])
        two = jobs.manager.get(second.info_hash)
        assert two is not None and all(key in two.connector._ctx.pool for key in low)  # (heard of)
        await jobs.update_settings(block_privileged_ports=True, connection_speed=30)
        await _wait(lambda: sum(p.accepted for p in everyone) == 6)
        await anyio.sleep(0.5)
        assert sorted(dialed) == sorted(("127.0.0.1", p.port) for p in everyone)  # (not 80, nor 1023)
        with pytest.raises(InvalidJobRequest, match="true or false"):
            await jobs.update_settings(block_privileged_ports=1)


async def test_a_jobs_own_limit(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed", (("a.bin", 60_000),)), piece_length=16 * 1024)
    peers = [IdlePeer(torrent, "127.0.0.1") for _ in range(3)]
    async with anyio.create_task_group() as tg:
        for peer in peers:
            await tg.start(peer.serve)
        async with JobService(loopback_config(encryption="disable"), download_root=tmp_path / "dl",
                              state_dir=tmp_path / "state") as jobs:
            job, _ = await jobs.add(torrent, paused=True, peers=[("127.0.0.1", p.port) for p in peers])
            await jobs.update(job.id, max_peers=1)
            with pytest.raises(InvalidJobRequest, match="max_peers"):
                await jobs.update(job.id, max_peers=-3, download_limit=5)
            assert jobs.get(job.id).options.download_limit == 0  # (nothing of the call applied)
            await jobs.resume(job.id)
            session = jobs.manager.get(torrent.info_hash)
            assert session is not None
            await _wait(lambda: len(session.peers) == 1)
            rounds = session.connector.rounds
            session.connector.wake()
            await _wait(lambda: session.connector.rounds >= rounds + 2)
            assert len(session.peers) == 1 and sum(p.accepted for p in peers) == 1
            assert jobs.get(job.id).options.max_peers == 1
            await jobs.update(job.id, max_peers=0)  # the setting for every torrent: 60, the Config's
            await _wait(lambda: len(session.peers) == 3)
        tg.cancel_scope.cancel()


class InterestedPeer:
    """A peer with no piece (or those of ``have``) that is interested at once and notes whether
    we unchoke it."""

    def __init__(self, torrent: Torrent, have: Iterable[int] = ()) -> None:
        self.torrent = torrent
        self.have = list(have)
        self.port = 0
        self.unchoked = False

    async def serve(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        self.port = listener.extra(anyio.abc.SocketAttribute.local_port)
        task_status.started()
        async with listener:
            await listener.serve(self._handle)

    async def _handle(self, stream: anyio.abc.SocketStream) -> None:
        t = self.torrent
        wire = PeerWire(info_hash=t.info_hash, peer_id=b"-XX0003-" + os.urandom(6).hex().encode(),
                        reserved=m.make_reserved(extension=False, fast=False),
                        num_pieces=t.num_pieces, piece_size=t.piece_size)
        async with stream:
            try:
                pieces = wire.send(m.Bitfield.from_indexes(self.have, t.num_pieces)) if self.have else b""
                await stream.send(wire.handshake() + pieces + wire.send(m.Interested()))
                while True:
                    wire.receive_data(await stream.receive())
                    for msg in wire.events():
                        if isinstance(msg, (m.Unchoke, m.Choke)):
                            self.unchoked = isinstance(msg, m.Unchoke)
            except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                self.unchoked = False


async def test_the_upload_slots_over_every_torrent_hold_across_two_torrents(tmp_path: Path) -> None:
    root = tmp_path / "dl"
    torrents = [make_torrent(make_payload(root / f"s{n}", ((f"{n}.bin", 60_000),), seed=n),
                             piece_length=16 * 1024) for n in (1, 2)]
    peers = [InterestedPeer(t) for t in torrents for _ in range(3)]
    async with anyio.create_task_group() as tg:
        for peer in peers:
            await tg.start(peer.serve)
        async with JobService(loopback_config(encryption="disable", rechoke_interval=0.1),
                              download_root=root, state_dir=tmp_path / "state") as jobs:
            await jobs.update_settings(max_uploads=2)
            sessions = []
            for n, t in enumerate(torrents):
                mine = peers[3 * n:3 * n + 3]
                await jobs.add(t, save_path=str(root / f"s{n + 1}"), seed_mode=True,
                               peers=[("127.0.0.1", p.port) for p in mine])
                session = jobs.manager.get(t.info_hash)
                assert session is not None
                sessions.append(session)
            await _wait(lambda: sum(len(s.peers) for s in sessions) == 6)
            await _wait(lambda: sum(p.unchoked for p in peers) == 2)
            for _ in range(20):  # (many rechokes: never more than the slots over every torrent)
                await anyio.sleep(0.05)
                assert sum(p.unchoked for p in peers) <= 2
            assert jobs.manager.shared.unchoked == 2
            await jobs.update_settings(max_uploads=-1)
            await _wait(lambda: all(p.unchoked for p in peers))
        tg.cancel_scope.cancel()


async def test_a_seed_unchokes_the_peers_that_have_just_begun_or_nearly_finished_with_anti_leech(
        tmp_path: Path) -> None:
    """``seeding_choker`` anti-leech (qBittorrent's ``upload_choking_algorithm`` 2), set while
    seeding: of six interested peers, the regular slots go to the two farthest from half the
    torrent, rechoke after rechoke (the third unchoked is the optimistic one, at random)."""
    root = tmp_path / "dl"
    torrent = make_torrent(make_payload(root, (("a.bin", 20 * 16 * 1024),)), piece_length=16 * 1024)
    counts = (0, 3, 8, 10, 12, 19)  # (of 20 pieces: 0 and 19 are the farthest from half)
    peers = [InterestedPeer(torrent, range(n)) for n in counts]
    async with anyio.create_task_group() as tg:
        for peer in peers:
            await tg.start(peer.serve)
        async with JobService(loopback_config(encryption="disable", rechoke_interval=0.1),
                              download_root=root, state_dir=tmp_path / "state") as jobs:
            await jobs.update_settings(max_uploads=3)  # (two regular slots and the optimistic one)
            await jobs.add(torrent, seed_mode=True, peers=[("127.0.0.1", p.port) for p in peers])
            session = jobs.manager.get(torrent.info_hash)
            assert session is not None
            await _wait(lambda: len(session.peers) == 6)
            await jobs.update_settings(seeding_choker="anti_leech")
            assert jobs.manager.shared.limits.seeding_choker == "anti_leech"
            first, last = peers[0], peers[-1]
            await _wait(lambda: first.unchoked and last.unchoked)
            for _ in range(20):  # (many rechokes: they keep their slots)
                await anyio.sleep(0.05)
                assert first.unchoked and last.unchoked and sum(p.unchoked for p in peers) <= 3
            with pytest.raises(InvalidJobRequest, match="round_robin, fastest_upload, anti_leech"):
                await jobs.update_settings(seeding_choker="fair")
        tg.cancel_scope.cancel()


async def test_one_connection_an_address_while_multiple_connections_per_ip_is_off(tmp_path: Path) -> None:
    """``multiple_connections_per_ip`` off (qBittorrent's ``enable_multi_connections_from_same_ip``
    false): of three peers on one address one is dialed, and another connecting from it is closed;
    on again, the two others are dialed."""
    torrent = make_torrent(make_payload(tmp_path / "seed", (("a.bin", 60_000),)), piece_length=16 * 1024)
    peers = [IdlePeer(torrent, "127.0.0.1") for _ in range(3)]
    async with _service_beside(tmp_path, peers) as jobs:
        await jobs.update_settings(multiple_connections_per_ip=False)
        await jobs.add(torrent, peers=[("127.0.0.1", p.port) for p in peers])
        session = jobs.manager.get(torrent.info_hash)
        assert session is not None
        await _wait(lambda: len(session.peers) == 1)
        await anyio.sleep(2.5)  # (more than a dialer's round: the two others are not dialed)
        assert sum(p.accepted for p in peers) == 1 and len(session.peers) == 1
        await closed_by_us(torrent, session.listen_port)
        assert len(session.peers) == 1
        await jobs.update_settings(multiple_connections_per_ip=True)
        await _wait(lambda: len(session.peers) == 3)


async def test_an_incoming_peer_past_the_global_limit_is_closed(tmp_path: Path) -> None:
    torrent = make_torrent(make_payload(tmp_path / "seed", (("a.bin", 60_000),)), piece_length=16 * 1024)
    peer = IdlePeer(torrent, "127.0.0.1")
    async with anyio.create_task_group() as tg:
        await tg.start(peer.serve)
        async with JobService(loopback_config(encryption="disable"), download_root=tmp_path / "dl",
                              state_dir=tmp_path / "state") as jobs:
            await jobs.update_settings(max_connections=1)
            await jobs.add(torrent, peers=[("127.0.0.1", peer.port)])
            session = jobs.manager.get(torrent.info_hash)
            assert session is not None
            await _wait(lambda: len(session.peers) == 1)
            await closed_by_us(torrent, session.listen_port)
            assert len(session.peers) == 1 and jobs.manager.shared.connections == 1
        tg.cancel_scope.cancel()
