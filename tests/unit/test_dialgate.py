"""Outgoing connection attempts at a rate over every torrent (``engine/dialgate.py``): a burst at
once, then one each 1/rate seconds, the lowest rank first (then the first asked); a dial called
off gives its place up; a rate of 0 lets every dial go; and the shell on the engine's clock wakes
the waiting dials in that order."""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from typing import Any

import anyio
import pytest

from torrent_engine.config import Config
from torrent_engine.engine.dialgate import SEEDING_RANK, DialGate
from torrent_engine.engine.shared import SharedResources

pytestmark = pytest.mark.anyio


def test_a_burst_at_once_then_one_a_turn_at_the_rate() -> None:
    gate = DialGate(rate=4, burst=2)
    assert [gate.ask(n, 0, 10.0) for n in range(3)] == [True, True, False]
    assert gate.next_turn(10.0) == pytest.approx(10.25)
    assert gate.due(10.1) == []
    assert gate.due(10.25) == [2]
    assert gate.next_turn(10.25) is None  # (nothing waits)
    assert gate.ask("late", 0, 10.3) is False  # (a fifth of a token: it waits its quarter second)
    assert gate.next_turn(10.3) == pytest.approx(10.5)
    assert gate.due(20.0) == ["late"]
    assert gate.tokens == pytest.approx(1.0)  # (a long quiet spell fills the bucket to its burst)


def test_a_ticket_called_off_and_asked_again_waits_at_its_new_rank_once() -> None:
    gate = DialGate(rate=10, burst=1)
    assert gate.ask("first", 0, 0.0)
    assert gate.ask("t", 0, 0.0) is False and gate.ask("u", 1, 0.0) is False
    gate.leave("t")
    assert gate.ask("t", 2, 0.0) is False  # (asked again: after "u" now)
    assert len(gate) == 2
    assert [ticket for k in range(4) for ticket in gate.due(0.11 + 0.1 * k)] == ["u", "t"]
    assert len(gate) == 0 and gate.next_turn(1.0) is None


def test_the_lowest_rank_goes_first_then_the_first_asked() -> None:
    gate = DialGate(rate=10, burst=1)
    assert gate.ask("a0", 0, 0.0)
    # torrent a asked for two more, then b for three, then a seeding torrent for one
    for ticket, rank in (("a1", 1), ("a2", 2), ("b0", 0), ("b1", 1), ("b2", 2), ("s0", SEEDING_RANK)):
        assert gate.ask(ticket, rank, 0.0) is False
    assert len(gate) == 6
    assert gate.due(0.15) == ["b0"]  # (the bucket holds one: the burst)
    order = [ticket for k in range(5) for ticket in gate.due(0.26 + 0.11 * k)]  # (a token each)
    assert order == ["a1", "b1", "a2", "b2", "s0"]


def test_a_dial_called_off_gives_its_place_up() -> None:
    gate = DialGate(rate=1, burst=1)
    assert gate.ask("first", 0, 0.0)
    gate.ask("gone", 0, 0.0)
    gate.ask("next", 1, 0.0)
    gate.leave("gone")
    assert len(gate) == 1
    assert gate.due(1.0) == ["next"]
    assert gate.tokens == pytest.approx(0.0)  # (the one called off took none)


def test_a_dial_called_off_after_its_turn_or_never_asked_changes_nothing() -> None:
    gate = DialGate(rate=1, burst=1)
    assert gate.ask("first", 0, 0.0)
    gate.ask("second", 0, 0.0)
    assert gate.due(1.0) == ["second"]
    gate.leave("second")  # (its turn came: nothing waits to be called off)
    gate.leave("never")
    assert len(gate) == 0 and gate.next_turn(1.0) is None
    assert gate.ask("third", 0, 1.0) is False
    assert len(gate) == 1 and gate.due(2.0) == ["third"]


def test_thousands_of_waiting_dials_called_off_leave_the_one_that_still_waits() -> None:
    gate = DialGate(rate=1, burst=1)
    assert gate.ask("first", 0, 0.0)
    for n in range(10_000):
        gate.ask(n, n, 0.0)
    for n in range(1, 10_000):  # (a torrent removed while its dials waited)
        gate.leave(n)
    assert len(gate) == 1 and gate.due(5.0) == [0] and len(gate) == 0


def test_no_rate_lets_every_dial_go_and_a_rate_refuses_below_zero() -> None:
    gate = DialGate()
    assert all(gate.ask(n, 0, 0.0) for n in range(1000))
    gate.set_rate(1)
    assert gate.ask("x", 0, 0.0) and not gate.ask("y", 0, 0.0)
    gate.set_rate(0)  # (the waiting ones go at once)
    assert gate.due(0.0) == ["y"]
    with pytest.raises(ValueError, match="0 \\(none\\) or more"):
        gate.set_rate(-1)


async def test_the_shell_wakes_the_waiting_dials_in_rank_order_at_the_rate() -> None:
    config = Config(listen_host="127.0.0.1", dht_enabled=False, lsd_enabled=False, port_mapping=False)
    async with SharedResources(config) as shared:
        shared.limits.connection_speed = 10  # (a burst of 10, then one each 0.1 s)
        order: list[str] = []
        start = time.monotonic()

        async def dial(name: str, rank: int) -> None:
            await shared.dial_turn(rank)
            order.append(name)

        async with anyio.create_task_group() as tg:
            for n in range(10):
                tg.start_soon(dial, f"burst{n}", 0)
            await anyio.sleep(0)  # (the burst's tasks ask first)
            for name, rank in (("a1", 1), ("a2", 2), ("b0", 0), ("b1", 1)):
                tg.start_soon(dial, name, rank)
        took = time.monotonic() - start
        assert order[10:] == ["b0", "a1", "b1", "a2"]
        assert took >= 0.35  # (four turns after the burst: a tenth of a second each, the first after 0.1)
        assert len(shared.dials.gate) == 0


async def test_a_limit_lifted_lets_the_waiting_dials_go_at_once() -> None:
    """The job service lifts the rate (``apply_peer_limits``, a setting of -1) while dials wait
    for their turns at one a second: they go at once, not at the old rate."""
    from torrent_engine.jobs.tuning.peerlimits import apply_peer_limits
    from torrent_engine.jobs.tuning.settings import ServiceSettings

    config = Config(listen_host="127.0.0.1", dht_enabled=False, lsd_enabled=False, port_mapping=False)
    async with SharedResources(config) as shared:
        apply_peer_limits(shared, ServiceSettings(connection_speed=1))
        went: list[float] = []

        async def dial() -> None:
            await shared.dial_turn(0)
            went.append(time.monotonic())

        async with anyio.create_task_group() as tg:
            for _ in range(4):
                tg.start_soon(dial)
            while len(went) < 1 or len(shared.dials.gate) < 3:
                await anyio.sleep(0.01)
            lifted = time.monotonic()
            apply_peer_limits(shared, ServiceSettings(connection_speed=-1))
        assert len(went) == 4 and all(t - lifted < 0.5 for t in went[1:])  # (not one a second)
        assert len(shared.dials.gate) == 0


_Turn = Callable[[tuple[str, int]], Coroutine[Any, Any, None]]


def _connector_at_turns(shared: SharedResources, n: int
                        ) -> tuple[Any, Any, Any, list[tuple[str, int]], list[bool], _Turn]:
    """A downloading torrent's connector over ``shared`` (no swarm), ``n`` addresses in its pool;
    and ``turn(key)``, which asks a dial's turn for ``key`` and appends to ``made`` whether the
    dial is to be made: (connector, its context, pool, addresses, made, turn)."""
    from types import SimpleNamespace

    from torrent_engine.session.connector import Connector
    from torrent_engine.session.peer_pool import PeerPool
    from torrent_engine.session.state_table import State

    pool = PeerPool()
    keys = [("127.0.0.1", 7000 + i) for i in range(n)]
    for key in keys:
        pool.add(key)
    ctx = SimpleNamespace(state=State.DOWNLOADING, peers={}, pool=pool, shared=shared,
                          info_hash=b"\x01" * 20, swarm=None)
    connector = Connector(SimpleNamespace(context=ctx))  # type: ignore[arg-type]
    made: list[bool] = []

    async def turn(key: tuple[str, int]) -> None:
        connector.connecting.add(key)
        connector.dialing += 1
        made.append(await connector._turn(key, shared))

    return connector, ctx, pool, keys, made, turn


async def test_a_dial_that_waited_while_its_torrent_completed_is_not_made() -> None:
    """The connector's turn: a downloading torrent's second dial waits behind the rate; the
    torrent completes meanwhile: the dial is not made, and its address waits its back-off (a
    seed's dial to upload asks again, at a seed's rank)."""
    from torrent_engine.session.state_table import State

    config = Config(listen_host="127.0.0.1", dht_enabled=False, lsd_enabled=False, port_mapping=False)
    async with SharedResources(config) as shared:
        shared.limits.connection_speed = 2  # (a burst of 2, then one each half second)
        connector, ctx, pool, keys, made, turn = _connector_at_turns(shared, 3)
        async with anyio.create_task_group() as tg:
            for key in keys:
                tg.start_soon(turn, key)
            while len(made) < 2:
                await anyio.sleep(0.01)
            ctx.state = State.SEEDING  # (complete, from the first two peers)
        assert made == [True, True, False]
        assert keys[2] not in connector.connecting
        assert pool[keys[2]].next_try > time.monotonic()  # (tried again later, not now)


async def test_a_dial_that_waited_while_outgoing_connections_were_turned_off_is_not_made() -> None:
    """The connector's turn: a dial waits behind the rate; outgoing connections are turned off
    meanwhile (``connection_speed`` 0): it is not made, its address is not counted as tried, and
    the torrent's dialer is woken when they are turned on again."""
    config = Config(listen_host="127.0.0.1", dht_enabled=False, lsd_enabled=False, port_mapping=False)
    async with SharedResources(config) as shared:
        shared.limits.connection_speed = 1  # (a burst of 1, then one a second)
        connector, _, pool, keys, made, turn = _connector_at_turns(shared, 2)
        woken: list[bool] = []
        connector.wake = lambda: woken.append(True)
        async with anyio.create_task_group() as tg:
            for key in keys:
                tg.start_soon(turn, key)
            while len(made) < 1 or len(shared.dials.gate) < 1:
                await anyio.sleep(0.01)
            shared.set_dial_out(False)
        assert made == [True, False]
        assert keys[1] not in connector.connecting
        assert pool[keys[1]].next_try <= time.monotonic()  # (not a failure: dialed when on again)
        assert not woken
        shared.set_dial_out(True)
        assert woken == [True]
        shared.set_dial_out(True)
        assert woken == [True]  # (once: it is no longer waiting)
