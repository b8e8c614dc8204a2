"""The session's lifecycle as a table: which state may follow which, and the event each publishes.

Everything that changes a session's state goes through :class:`SessionStateMachine`; a change
not in the table raises ``SessionError`` naming both states. The machine keeps no state of its
own: the state and the error are held by its current record, which a session's machine replaces
as the session changes phase (``session.phases``: each phase object carries the public state and
the error), so there is one record of them, moved by one owner, by one table.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from .. import events as ev
from ..errors import SessionError


class State(enum.Enum):
    """A session's state."""

    QUEUED = "queued"  # made, not run yet (whether it may run is its owner's word: a job queue)
    CHECKING = "checking"
    DOWNLOADING_METADATA = "downloading_metadata"
    DOWNLOADING = "downloading"
    SEEDING = "seeding"
    PAUSED = "paused"
    STOPPED = "stopped"
    ERROR = "error"


S = State
_ACTIVE = (S.CHECKING, S.DOWNLOADING_METADATA, S.DOWNLOADING, S.SEEDING)

# (from, to) -> the event published. States a session may be resumed into from PAUSED are the
# active ones; STOPPED may be restarted (it re-checks or trusts its resume data).
TRANSITIONS: dict[tuple[State, State], Callable[[str, str, float], ev.Event]] = {}
# (the maker gets: info-hash, error, how much of the data a check has hashed already)


def _add(src: State, dst: State, make: Callable[[str, str, float], ev.Event]) -> None:
    TRANSITIONS[(src, dst)] = make


def _started(h: str, _e: str, _checked: float) -> ev.Event:
    return ev.SessionStarted(info_hash=h)


def _checking(h: str, _e: str, checked: float) -> ev.Event:
    return ev.SessionChecking(info_hash=h, progress=checked)


def _metadata(h: str, _e: str, _checked: float) -> ev.Event:
    return ev.SessionMetadataReceived(info_hash=h)


def _completed(h: str, _e: str, _checked: float) -> ev.Event:
    return ev.SessionCompleted(info_hash=h)


def _paused(h: str, _e: str, _checked: float) -> ev.Event:
    return ev.SessionPaused(info_hash=h)


def _resumed(h: str, _e: str, _checked: float) -> ev.Event:
    return ev.SessionResumed(info_hash=h)


def _stopped(h: str, _e: str, _checked: float) -> ev.Event:
    return ev.SessionStopped(info_hash=h)


def _error(h: str, e: str, _checked: float) -> ev.Event:
    return ev.SessionFailed(info_hash=h, error=e)


for _src in (S.QUEUED, S.STOPPED):
    _add(_src, S.CHECKING, _checking)
    _add(_src, S.DOWNLOADING_METADATA, _started)
    _add(_src, S.DOWNLOADING, _started)
    _add(_src, S.SEEDING, _started)
    _add(_src, S.PAUSED, _paused)
_add(S.QUEUED, S.STOPPED, _stopped)
_add(S.CHECKING, S.DOWNLOADING, _started)
_add(S.CHECKING, S.SEEDING, _started)
_add(S.DOWNLOADING_METADATA, S.CHECKING, _metadata)
_add(S.DOWNLOADING_METADATA, S.DOWNLOADING, _metadata)
_add(S.DOWNLOADING, S.SEEDING, _completed)
_add(S.DOWNLOADING, S.CHECKING, _checking)  # forced recheck
_add(S.SEEDING, S.DOWNLOADING, _started)  # a piece failed a recheck or a file was re-selected
_add(S.SEEDING, S.CHECKING, _checking)
for _src in _ACTIVE:
    _add(_src, S.PAUSED, _paused)
    _add(S.PAUSED, _src, _resumed)
for _src in (S.QUEUED, *_ACTIVE, S.PAUSED):
    _add(_src, S.STOPPED, _stopped)
    _add(_src, S.ERROR, _error)
_add(S.ERROR, S.STOPPED, _stopped)


class StateRecord(Protocol):
    """What holds a session's state and the error that ended it (a session's phase object)."""

    state: State
    error: str  # why the session failed ("" = it has not); kept once it has stopped


@dataclass(eq=False)
class Record:
    """A record of its own, for a machine that does not move phases."""

    state: State = State.QUEUED
    error: str = ""


R = TypeVar("R", bound=StateRecord)


class SessionStateMachine(Generic[R]):
    """Moves the state and the error of its current record (``current``): ``to(new)`` checks the
    table and publishes the transition's event; ``enter(record)`` makes another record current,
    the state and the error carried over (a session moving to its next phase)."""

    def __init__(self, bus: ev.EventBus, info_hash_hex: str, record: R) -> None:
        self._bus = bus
        self._info_hash = info_hash_hex
        self.current = record

    @property
    def state(self) -> State:
        """The current state."""
        return self.current.state

    @property
    def error(self) -> str:
        """Why the session failed ("" if it has not; kept once it has stopped)."""
        return self.current.error

    def enter(self, record: R) -> None:
        """Make ``record`` the current one, with the state and the error of the one before."""
        record.state, record.error = self.current.state, self.current.error
        self.current = record

    def fail(self, error: str) -> None:
        """Record why the session failed, and move to ``ERROR`` if the table allows it from here
        (a failure while it is ending still says why)."""
        self.current.error = error
        if self.can(State.ERROR):
            self.to(State.ERROR, error=error)

    def can(self, new: State) -> bool:
        """Whether moving to ``new`` is allowed now."""
        return (self.current.state, new) in TRANSITIONS

    def to(self, new: State, *, error: str = "", checked: float = 0.0) -> ev.Event:
        """Move to ``new`` and return the event that announces it; ``SessionError`` if not allowed.
        ``checked``: to ``CHECKING``, how much a check that goes on where one stopped has done."""
        make = TRANSITIONS.get((self.current.state, new))
        if make is None:
            raise SessionError(f"illegal session transition {self.current.state.value} -> {new.value}")
        self.current.state = new
        event = make(self._info_hash, error, checked)
        self._bus.publish(event)
        return event
