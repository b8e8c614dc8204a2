"""The session state table: legal transitions publish their event, illegal ones raise."""

from __future__ import annotations

import pytest

from torrent_engine import events as ev
from torrent_engine.errors import SessionError
from torrent_engine.session.state_table import TRANSITIONS, Record, SessionStateMachine, State


def _machine() -> tuple[SessionStateMachine[Record], list[ev.Event]]:
    bus = ev.EventBus()
    seen: list[ev.Event] = []
    bus.subscribe("*", seen.append)
    return SessionStateMachine(bus, "ab" * 20, Record()), seen


def test_normal_life_publishes_each_event_in_order() -> None:
    m, seen = _machine()
    for state in (State.CHECKING, State.DOWNLOADING, State.PAUSED, State.DOWNLOADING, State.SEEDING,
                  State.STOPPED):
        m.to(state)
    assert [type(e) for e in seen] == [ev.SessionChecking, ev.SessionStarted, ev.SessionPaused,
                                      ev.SessionResumed, ev.SessionCompleted, ev.SessionStopped]
    assert all(e.info_hash == "ab" * 20 for e in seen)


def test_magnet_path_and_error() -> None:
    m, seen = _machine()
    m.to(State.DOWNLOADING_METADATA)
    m.to(State.CHECKING)
    m.to(State.ERROR, error="disk full")
    assert isinstance(seen[1], ev.SessionMetadataReceived)
    assert isinstance(seen[-1], ev.SessionFailed) and seen[-1].error == "disk full"
    m.to(State.STOPPED)


@pytest.mark.parametrize(("path", "bad"), [
    ((), State.QUEUED),
    ((State.CHECKING,), State.DOWNLOADING_METADATA),
    ((State.CHECKING, State.SEEDING), State.DOWNLOADING_METADATA),
    ((State.CHECKING, State.DOWNLOADING, State.SEEDING, State.STOPPED), State.ERROR),
    ((State.ERROR,), State.DOWNLOADING),
    ((State.PAUSED,), State.PAUSED),
])
def test_illegal_transitions_raise_and_keep_state(path: tuple[State, ...], bad: State) -> None:
    m, seen = _machine()
    for state in path:
        m.to(state)
    before = m.state
    count = len(seen)
    with pytest.raises(SessionError, match=bad.value):
        m.to(bad)
    assert m.state is before and len(seen) == count


def test_every_state_can_reach_stopped_except_stopped() -> None:
    for state in State:
        if state is not State.STOPPED:
            assert (state, State.STOPPED) in TRANSITIONS, state


def test_fail_records_the_error_once_and_keeps_it_after_stopping() -> None:
    m, seen = _machine()
    m.to(State.DOWNLOADING)
    m.fail("disk full")
    assert m.state is State.ERROR and m.error == "disk full"
    assert isinstance(seen[-1], ev.SessionFailed) and seen[-1].error == "disk full"
    m.to(State.STOPPED)
    assert m.error == "disk full"


def test_the_state_and_the_error_are_the_current_records_and_go_on_to_the_next() -> None:
    m, seen = _machine()
    first = m.current
    m.to(State.DOWNLOADING)
    m.fail("disk full")
    second = Record()
    m.enter(second)
    assert (second.state, second.error) == (State.ERROR, "disk full") and m.current is second
    m.to(State.STOPPED)
    assert (m.state, first.state, len(seen)) == (State.STOPPED, State.ERROR, 3)


def test_fail_where_the_table_allows_no_error_state_still_says_why() -> None:
    m, seen = _machine()
    m.to(State.STOPPED)
    m.to(State.DOWNLOADING)
    m.to(State.STOPPED)
    n = len(seen)
    m.fail("late failure")
    assert m.state is State.STOPPED and m.error == "late failure" and len(seen) == n
