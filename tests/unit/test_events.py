"""EventBus: asynchronous dispatch, wildcard, isolation of failing subscribers, streams."""

from __future__ import annotations

import logging

import anyio
import pytest

from torrent_engine.events import ALL, Event, EventBus, PieceCompleted, SessionStarted, StatsUpdate

pytestmark = pytest.mark.anyio


async def test_publish_does_not_call_subscribers_synchronously() -> None:
    bus = EventBus()
    seen: list[Event] = []
    bus.subscribe("piece.completed", seen.append)
    bus.publish(PieceCompleted(info_hash="ab", index=3))
    assert seen == []  # delivered on the next loop tick, never inside publish()
    await anyio.sleep(0)
    assert seen == [PieceCompleted(info_hash="ab", index=3)]


async def test_subscription_by_name_and_wildcard() -> None:
    bus = EventBus()
    named: list[Event] = []
    everything: list[Event] = []
    bus.subscribe("session.started", named.append)
    bus.subscribe(ALL, everything.append)
    bus.publish(SessionStarted())
    bus.publish(PieceCompleted(index=1))
    await anyio.sleep(0)
    assert [e.name for e in named] == ["session.started"]
    assert [e.name for e in everything] == ["session.started", "piece.completed"]


async def test_failing_subscriber_is_logged_and_others_still_run(caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus()
    seen: list[Event] = []

    def broken(event: Event) -> None:
        raise RuntimeError("subscriber bug")

    bus.subscribe(ALL, broken)
    bus.subscribe(ALL, seen.append)
    with caplog.at_level(logging.ERROR):
        bus.publish(PieceCompleted(index=7))
        await anyio.sleep(0)
    assert len(seen) == 1
    assert "subscriber bug" in caplog.text


async def test_cancelled_subscription_receives_nothing_more() -> None:
    bus = EventBus()
    seen: list[Event] = []
    sub = bus.subscribe(ALL, seen.append)
    bus.publish(PieceCompleted(index=1))
    sub.cancel()  # cancelled before the queued delivery runs
    await anyio.sleep(0)
    assert seen == []


async def test_forward_republishes_on_another_bus() -> None:
    session_bus, manager_bus = EventBus(), EventBus()
    seen: list[Event] = []
    manager_bus.subscribe(ALL, seen.append)
    undo = session_bus.forward_to(manager_bus)
    session_bus.publish(PieceCompleted(info_hash="aa", index=2))
    await anyio.sleep(0)
    undo()
    session_bus.publish(PieceCompleted(info_hash="aa", index=3))
    await anyio.sleep(0)
    assert seen == [PieceCompleted(info_hash="aa", index=2)]


async def test_stream_yields_events_in_order_and_drops_when_full() -> None:
    bus = EventBus()
    async with bus.stream("stats.update", max_buffer=2) as events:
        for i in range(5):
            bus.publish(StatsUpdate(downloaded=i))
        await anyio.sleep(0)
        got = [await events.receive(), await events.receive()]
        assert [e.downloaded for e in got if isinstance(e, StatsUpdate)] == [0, 1]
        with pytest.raises(anyio.WouldBlock):
            events.receive_nowait()  # 2..4 were dropped, the publisher never blocked


def test_publish_without_a_running_loop_delivers_at_once() -> None:
    bus = EventBus()
    seen: list[Event] = []
    bus.subscribe(ALL, seen.append)
    bus.publish(PieceCompleted(index=9))
    assert len(seen) == 1


def test_events_are_frozen() -> None:
    event = PieceCompleted(index=1)
    with pytest.raises(AttributeError):
        event.index = 2  # type: ignore[misc]


def test_listened_says_whether_an_event_of_a_kind_would_reach_anyone() -> None:
    session_bus, manager_bus = EventBus(), EventBus()
    assert not session_bus.listened(PieceCompleted)
    sub = session_bus.subscribe(PieceCompleted, lambda e: None)
    assert session_bus.listened(PieceCompleted) and not session_bus.listened(StatsUpdate)
    sub.cancel()
    assert not session_bus.listened(PieceCompleted)
    undo = session_bus.forward_to(manager_bus)
    every = manager_bus.subscribe(ALL, lambda e: None)
    assert session_bus.listened(PieceCompleted) and session_bus.listened(StatsUpdate)
    every.cancel()
    assert not session_bus.listened(StatsUpdate)
    manager_bus.subscribe(StatsUpdate, lambda e: None)
    assert session_bus.listened(StatsUpdate)
    undo()
    assert not session_bus.listened(StatsUpdate)
