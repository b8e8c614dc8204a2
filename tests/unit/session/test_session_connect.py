"""Whom the session dials again: running sessions (loopback, no DHT) whose dials reach fake links."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import pytest

from tests.integration.helpers import loopback_config
from torrent_engine.config import Config
from torrent_engine.engine.shared import SharedResources
from torrent_engine.session import Session
from torrent_engine.storage.create import create_torrent

from .idle_link import IdleLink

pytestmark = pytest.mark.anyio


async def test_a_peer_already_connected_under_another_address_is_not_redialed_at_once(tmp_path: Path) -> None:
    """A peer that dialed us (incoming, ephemeral port) and whose listen address is in the pool:
    dialing that address finds the same peer id and is dropped as a duplicate. It must not be
    dialed again at the connector's next round (every 2 s, for as long as the peer stays)."""
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "a").write_bytes(b"x" * 100_000)
    torrent = create_torrent(tmp_path / "p", piece_length=32 * 1024, version="v1")
    peer_id = b"-XX0001-abcdefghijkl"
    listen_address = ("127.0.0.1", 6881)
    dialed: list[tuple[str, int]] = []
    links: list[IdleLink] = []
    with anyio.fail_after(10):
        async with Session(torrent, tmp_path / "dl", config=loopback_config()) as s, \
                anyio.create_task_group() as tg:
            await s.wait_ready()

            async def fake_dial(key: tuple[str, int]) -> None:  # connected: the same peer answers
                dialed.append(key)
                s.connector.done_connecting(key)
                links.append(IdleLink(peer_id))
                await s.handler.serve(links[-1], *key, incoming=False)  # type: ignore[arg-type]

            s.connector.dial = fake_dial  # type: ignore[method-assign]
            tg.start_soon(s.handler.serve, IdleLink(peer_id), "127.0.0.1", 40001, True)
            while not s.peers:
                await anyio.sleep(0.01)
            incoming = s.peers[0]
            s.add_peer(*listen_address)  # the connector dials it at once
            while not (links and links[0].closed):
                await anyio.sleep(0.01)
            assert s.peers == [incoming] and dialed == [listen_address]
            s.connector.dial_some()  # the connector's next round
            await anyio.sleep(0.05)
            assert dialed == [listen_address]
            assert s.pool[listen_address].next_try > time.monotonic()  # later, it may be tried again
            tg.cancel_scope.cancel()


async def test_peers_busy_with_the_metadata_count_against_the_connection_budget(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Magnet link, peers that take their time with the metadata: the connector's later rounds
    must neither dial them again nor dial past max_peers_per_torrent (a big swarm would use up
    every file descriptor)."""
    import torrent_engine.session.connector as session_module
    from torrent_engine.formats.magnet import parse_magnet

    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "a").write_bytes(b"x" * 100_000)
    torrent = create_torrent(tmp_path / "p", piece_length=32 * 1024, version="v1")
    pool = [("127.0.0.1", 7000 + i) for i in range(5)]
    dialed: list[tuple[str, int]] = []
    receiving: list[StallingLink] = []
    both_receiving = anyio.Event()

    class StallingLink(IdleLink):
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
    magnet = parse_magnet(torrent.magnet_uri())
    with anyio.fail_after(5):
        cfg = loopback_config(max_peers_per_torrent=2)
        async with Session(magnet, tmp_path / "dl", config=cfg, peers=pool) as s:
            await both_receiving.wait()  # the connector dialed the first two
            s.connector.dial_some()  # the connector's next round, both peers still at the metadata
            s.connector.dial_some()
            await anyio.sleep(0.05)
    assert len(dialed) == len(set(dialed)) == 2  # two at once (the budget), none dialed again


async def test_a_peer_that_drops_us_right_after_the_handshake_is_given_up(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A peer that completes the handshake and hangs up at once (e.g. its connection limit):
    the backoff grows with each attempt and ends after MAX_CONNECT_FAILURES, instead of a
    redial every few seconds forever."""
    import torrent_engine.session.connector as session_module
    from torrent_engine.session import MAX_CONNECT_FAILURES

    s = unstarted_session(tmp_path)
    address = ("127.0.0.1", 7000)
    s.add_peer(*address)

    class HangingUpLink(IdleLink):
        fast = extension = encrypted = False

        async def send_many(self, msgs: object) -> None:
            pass

        async def receive(self) -> object:
            raise anyio.EndOfStream

    async def fake_open_connection(host: str, port: int, **kw: object) -> HangingUpLink:
        return HangingUpLink(b"-XX0001-abcdefghijkl")

    monkeypatch.setattr(session_module, "open_connection", fake_open_connection)
    attempts = 0
    delays = []
    with anyio.fail_after(5):
        while attempts < 2 * MAX_CONNECT_FAILURES:
            s.pool[address].next_try = 0.0  # as if its retry delay had passed
            if address not in set(s.pool.candidates(time.monotonic(), busy=set())):
                break  # given up: the connector's rounds never pick it again
            attempts += 1
            await s.connector.dial(address)  # what a round of the connector starts for it
            delays.append(s.pool[address].next_try - time.monotonic())
    assert attempts == MAX_CONNECT_FAILURES
    assert delays == sorted(delays)  # growing


async def test_over_budget_the_connector_dials_by_bep40_priority(tmp_path: Path) -> None:
    """More addresses than the connection budget: the highest BEP 40 priorities with our own
    address (here the listen address, 127.0.0.1, so the ports decide) are dialed, not the
    first heard of."""
    from torrent_engine.policy.bep40 import peer_priority

    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "a").write_bytes(b"x" * 100_000)
    torrent = create_torrent(tmp_path / "p", piece_length=32 * 1024, version="v1")
    dialed: list[tuple[str, int]] = []

    async def fake_dial(key: tuple[str, int]) -> None:
        dialed.append(key)  # (it stays "connecting": the budget is spent on it)

    with anyio.fail_after(10):
        async with Session(torrent, tmp_path / "dl", config=loopback_config(max_peers_per_torrent=3)) as s:
            s.connector.dial = fake_dial  # type: ignore[method-assign]
            await s.wait_ready()
            own = ("127.0.0.1", s.listen_port)
            by_priority = sorted((("127.0.0.1", port) for port in range(40000, 40030)),
                                 key=lambda a: -peer_priority(own, a))
            s.add_peers(reversed(by_priority))  # the lowest priorities are heard of first
            while len(dialed) < 3:
                await anyio.sleep(0.01)
            s.connector.dial_some()  # the connector's next round: the budget is spent
            await anyio.sleep(0.05)
    assert sorted(dialed) == sorted(by_priority[:3])


def unstarted_session(tmp_path: Path) -> Session:
    """A session of a 100 kB torrent, not started, with no DHT, port mapping or LSD."""
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "a").write_bytes(b"x" * 100_000)
    torrent = create_torrent(tmp_path / "p", piece_length=32 * 1024, version="v1")
    cfg = Config(dht_enabled=False, port_mapping=False, lsd_enabled=False)
    return Session(torrent, tmp_path / "dl", config=cfg, shared=SharedResources(cfg))


def test_a_full_pool_still_learns_where_a_known_address_was_heard(tmp_path: Path) -> None:
    from torrent_engine.session.peer_pool import MAX_POOL

    s = unstarted_session(tmp_path)
    first = ("10.0.0.1", 6881)
    s.add_peers([first], source="tracker")
    s.add_peers([(f"10.1.{n >> 8}.{n & 255}", 6881) for n in range(MAX_POOL)], source="dht")
    pool = s.context.pool
    assert pool.full and len(pool) == MAX_POOL
    s.add_peers([("10.2.0.1", 6881), first], source="pex")  # a new one (no room), then a known one
    assert pool.sources(first) == ("tracker", "pex")
    assert pool.sources(("10.2.0.1", 6881)) == ()


async def test_the_dialer_waits_for_its_dials_not_a_round_while_nothing_else_may_be_dialed(
        tmp_path: Path) -> None:
    """Every address known is being dialed (its dial under way, or waiting for its turn among
    every torrent's: ``connection_speed``): the dialer makes no round every 2 s meanwhile (a
    thousand torrents' dialers did, 4 % of the loop); the end of a dial wakes it."""
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "a").write_bytes(b"x" * 100_000)
    torrent = create_torrent(tmp_path / "p", piece_length=32 * 1024, version="v1")
    release = anyio.Event()
    with anyio.fail_after(15):
        async with Session(torrent, tmp_path / "dl", config=loopback_config()) as s:
            await s.wait_ready()

            async def slow_dial(key: tuple[str, int], transport: str | None) -> None:
                await release.wait()  # (a dial that takes its time)
                s.connector.done_connecting(key)
                s.pool.failed(key, time.monotonic())

            s.connector._dial = slow_dial  # type: ignore[method-assign]
            s.add_peer("127.0.0.1", 7001)
            s.add_peer("127.0.0.1", 7002)
            while len(s.connector.connecting) < 2:
                await anyio.sleep(0.01)
            rounds = s.connector.rounds
            await anyio.sleep(2.5)  # (more than a round of 2 s)
            assert s.connector.rounds == rounds and s.connector.running
            release.set()  # the dials end (failed: their addresses wait their back-off)
            while s.connector.rounds == rounds:
                await anyio.sleep(0.01)
            assert not s.connector.connecting


async def test_an_address_in_a_long_back_off_costs_no_dialing_task_and_the_clock_dials_it_then(
        tmp_path: Path) -> None:
    """Its dial failed: its address waits 3 s, more than a round. The dialer ends meanwhile (it
    made a round every 2 s for as long as the session lived: a completed download's seeds wait
    ten minutes) and the engine's clock starts it again when the back-off ends."""
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "a").write_bytes(b"x" * 100_000)
    torrent = create_torrent(tmp_path / "p", piece_length=32 * 1024, version="v1")
    dialed: list[float] = []
    with anyio.fail_after(15):
        async with Session(torrent, tmp_path / "dl", config=loopback_config()) as s:
            await s.wait_ready()

            async def failing_dial(key: tuple[str, int], transport: str | None) -> None:
                dialed.append(time.monotonic())
                s.connector.done_connecting(key)
                s.pool.failed(key, time.monotonic())  # (its first back-off: 3 s)

            s.connector._dial = failing_dial  # type: ignore[method-assign]
            s.add_peer("127.0.0.1", 7001)
            while not dialed or s.connector.running:
                await anyio.sleep(0.01)
            rounds = s.connector.rounds
            await anyio.sleep(1.0)
            assert not s.connector.running and s.connector.rounds == rounds and len(dialed) == 1
            while len(dialed) < 2:  # (the clock's deadline)
                await anyio.sleep(0.05)
            assert dialed[1] - dialed[0] >= 2.9
