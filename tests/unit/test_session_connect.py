"""Whom the session dials again: checked on a Session that is not running (fake links)."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import pytest

from torrent_engine.bitfield import Bitfield
from torrent_engine.config import Config
from torrent_engine.create import create_torrent
from torrent_engine.session import PeerState, Session
from torrent_engine.shared import SharedResources

pytestmark = pytest.mark.anyio


class _Link:
    def __init__(self, peer_id: bytes) -> None:
        self.peer_id = peer_id
        self.peer_id_client = ""
        self.transport = "tcp"
        self.closed = False

    async def aclose(self) -> None:
        self.closed = True


async def test_a_peer_already_connected_under_another_address_is_not_redialed_at_once(tmp_path: Path) -> None:
    """A peer that dialed us (incoming, ephemeral port) and whose listen address is in the pool:
    dialing that address finds the same peer id and is dropped as a duplicate. It must not be
    dialed again at the connector's next round (every 2 s, for as long as the peer stays)."""
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "a").write_bytes(b"x" * 100_000)
    torrent = create_torrent(tmp_path / "p", piece_length=32 * 1024, version="v1")
    cfg = Config(dht_enabled=False)
    s = Session(torrent, tmp_path / "dl", config=cfg, shared=SharedResources(cfg))
    peer_id = b"-XX0001-abcdefghijkl"
    incoming = PeerState(host="127.0.0.1", port=40001, link=_Link(peer_id), incoming=True,
                         have=Bitfield(torrent.num_pieces))
    s._peers[incoming.key] = incoming
    listen_address = ("127.0.0.1", 6881)
    s.add_peer(*listen_address)
    link = _Link(peer_id)
    await s.handler.serve(link, *listen_address, incoming=False)  # what _dial does once connected
    assert link.closed and s._peers == {incoming.key: incoming}

    dialed: list[tuple[str, int]] = []

    async def fake_dial(key: tuple[str, int]) -> None:
        dialed.append(key)

    s.connector.dial = fake_dial  # type: ignore[method-assign]
    async with anyio.create_task_group() as tg:
        s._swarm = tg
        s.connector.dial_some()  # the connector's next round
    assert dialed == []
    assert s._pool[listen_address].next_try > time.monotonic()  # later, it may be tried again


async def test_peers_busy_with_the_metadata_count_against_the_connection_budget(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Magnet link, peers that take their time with the metadata: the connector's later rounds
    must neither dial them again nor dial past max_peers_per_torrent (a big swarm would use up
    every file descriptor)."""
    import torrent_engine.session.connector as session_module
    from torrent_engine.magnet import parse_magnet

    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "a").write_bytes(b"x" * 100_000)
    torrent = create_torrent(tmp_path / "p", piece_length=32 * 1024, version="v1")
    cfg = Config(dht_enabled=False, max_peers_per_torrent=2)
    pool = [("127.0.0.1", 7000 + i) for i in range(5)]
    s = Session(parse_magnet(torrent.magnet_uri()), tmp_path / "dl", config=cfg, shared=SharedResources(cfg),
                peers=pool)
    dialed: list[tuple[str, int]] = []
    receiving: list[StallingLink] = []
    both_receiving = anyio.Event()

    class StallingLink(_Link):
        extension = True

        async def send_many(self, msgs: object) -> None:
            pass

        async def receive(self) -> object:
            receiving.append(self)
            if len(receiving) == 2:
                both_receiving.set()
            await anyio.sleep_forever()

    async def fake_open_connection(host: str, port: int, **kw: object) -> StallingLink:
        dialed.append((host, port))
        return StallingLink(b"-XX0001-" + str(port).encode().rjust(12, b"0"))

    monkeypatch.setattr(session_module, "open_connection", fake_open_connection)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            s._swarm = tg
            s.connector.dial_some()
            await both_receiving.wait()
            s.connector.dial_some()  # the connector's next round, both peers still at the metadata
            s.connector.dial_some()
            tg.cancel_scope.cancel()
    assert sorted(dialed) == pool[:2]


async def test_a_peer_that_drops_us_right_after_the_handshake_is_given_up(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A peer that completes the handshake and hangs up at once (e.g. its connection limit):
    the backoff grows with each attempt and ends after MAX_CONNECT_FAILURES, instead of a
    redial every few seconds forever."""
    import torrent_engine.session.connector as session_module
    from torrent_engine.session import MAX_CONNECT_FAILURES

    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "a").write_bytes(b"x" * 100_000)
    torrent = create_torrent(tmp_path / "p", piece_length=32 * 1024, version="v1")
    cfg = Config(dht_enabled=False)
    s = Session(torrent, tmp_path / "dl", config=cfg, shared=SharedResources(cfg))
    address = ("127.0.0.1", 7000)
    s.add_peer(*address)

    class HangingUpLink(_Link):
        fast = extension = encrypted = False

        async def send_many(self, msgs: object) -> None:
            pass

        async def receive(self) -> object:
            raise anyio.EndOfStream

    async def fake_open_connection(host: str, port: int, **kw: object) -> HangingUpLink:
        return HangingUpLink(b"-XX0001-abcdefghijkl")

    monkeypatch.setattr(session_module, "open_connection", fake_open_connection)
    class Swarm:  # runs nothing by itself: the test awaits each dial
        def __init__(self) -> None:
            self.started: list[tuple[str, int]] = []

        def start_soon(self, func: object, key: tuple[str, int]) -> None:
            self.started.append(key)

    swarm = Swarm()
    s._swarm = swarm  # type: ignore[assignment]
    delays = []
    with anyio.fail_after(5):
        while len(swarm.started) < 2 * MAX_CONNECT_FAILURES:
            s._pool[address].next_try = 0.0  # as if its retry delay had passed
            s.connector.dial_some()
            if address not in s.connector.connecting:
                break  # given up
            await s.connector.dial(address)
            delays.append(s._pool[address].next_try - time.monotonic())
    assert len(swarm.started) == MAX_CONNECT_FAILURES
    assert delays == sorted(delays)  # growing


async def test_over_budget_the_connector_dials_by_bep40_priority(tmp_path: Path) -> None:
    """More addresses than the connection budget: the highest BEP 40 priorities with our own
    address (here the listen address, 127.0.0.1, so the ports decide) are dialed, not the
    first heard of."""
    from torrent_engine.bep40 import peer_priority

    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "a").write_bytes(b"x" * 100_000)
    torrent = create_torrent(tmp_path / "p", piece_length=32 * 1024, version="v1")
    cfg = Config(listen_host="127.0.0.1", dht_enabled=False, max_peers_per_torrent=3)
    shared = SharedResources(cfg)
    shared._listen_port = 50000  # as if the listener ran
    s = Session(torrent, tmp_path / "dl", config=cfg, shared=shared)
    addresses = [("127.0.0.1", port) for port in range(40000, 40030)]
    s.add_peers(addresses)
    dialed: list[tuple[str, int]] = []

    async def fake_dial(key: tuple[str, int]) -> None:
        dialed.append(key)

    s.connector.dial = fake_dial  # type: ignore[method-assign]
    async with anyio.create_task_group() as tg:
        s._swarm = tg
        s.connector.dial_some()
    best = sorted(addresses, key=lambda a: -peer_priority(("127.0.0.1", 50000), a))[:3]
    assert sorted(dialed) == sorted(best)
    assert sorted(dialed) != addresses[:3]
