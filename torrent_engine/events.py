"""Events that sessions, trackers and the DHT publish, and the bus that carries them.

Every event is a small frozen dataclass with a dotted ``name`` (see docs/events.md). Dispatch
is asynchronous: ``publish`` only queues the event for the next loop tick, so a publisher is
never blocked or broken by a subscriber, and a subscriber that raises is logged and skipped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar, overload  # Any: a subscriber takes its own Event subclass

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .errors import TorrentEngineError

log = logging.getLogger(__name__)

__all__ = [
    "ALL",
    "DhtBootstrapped",
    "Event",
    "EventBus",
    "PeerConnected",
    "PeerDisconnected",
    "PieceCompleted",
    "PieceHashFailed",
    "SessionChecking",
    "SessionCompleted",
    "SessionFailed",
    "SessionFileWanted",
    "SessionMetadataReceived",
    "SessionPaused",
    "SessionPieceLayersReceived",
    "SessionResumed",
    "SessionStalled",
    "SessionStarted",
    "SessionStopped",
    "StatsUpdate",
    "Subscription",
    "UnknownEventError",
    "TrackerFailed",
    "TrackerSuccess",
]

ALL = "*"


@dataclass(frozen=True, kw_only=True, slots=True)
class Event:
    """Base of all events. ``info_hash`` is the hex info-hash of the torrent it concerns
    (empty for events of the shared resources, such as the DHT)."""

    name: ClassVar[str] = "event"
    info_hash: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class SessionStarted(Event):
    """The session started running."""

    name: ClassVar[str] = "session.started"


@dataclass(frozen=True, kw_only=True, slots=True)
class SessionChecking(Event):
    """Existing data is being verified; ``progress`` goes from 0.0 to 1.0."""

    name: ClassVar[str] = "session.checking"
    progress: float = 0.0


@dataclass(frozen=True, kw_only=True, slots=True)
class SessionMetadataReceived(Event):
    """A magnet's info dictionary arrived and passed its hash check (BEP 9)."""

    name: ClassVar[str] = "session.metadata_received"
    torrent_name: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class SessionPieceLayersReceived(Event):
    """The v2 piece layers the metainfo lacked (a magnet's, or an incomplete .torrent's) all
    came from peers and matched their files' pieces roots (BEP 52); ``files`` is how many."""

    name: ClassVar[str] = "session.piece_layers_received"
    files: int = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class SessionPaused(Event):
    """The session was paused (``pause()``)."""

    name: ClassVar[str] = "session.paused"


@dataclass(frozen=True, kw_only=True, slots=True)
class SessionResumed(Event):
    """The session was resumed (``resume()``)."""

    name: ClassVar[str] = "session.resumed"


@dataclass(frozen=True, kw_only=True, slots=True)
class SessionFileWanted(Event):
    """A reader was opened on a file the torrent skipped (priority 0): the session downloads it
    from now on, at the default priority (``index``: the file's), and says so for an owner
    that records the file priorities (the job service) to record it."""

    name: ClassVar[str] = "session.file_wanted"
    index: int = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class SessionCompleted(Event):
    """Every wanted piece is verified and on disk."""

    name: ClassVar[str] = "session.completed"


@dataclass(frozen=True, kw_only=True, slots=True)
class SessionStopped(Event):
    """The session stopped (``stop()``); nothing of it runs any more."""

    name: ClassVar[str] = "session.stopped"


@dataclass(frozen=True, kw_only=True, slots=True)
class SessionFailed(Event):
    """The session ended with an error (``error`` says what failed and where)."""

    name: ClassVar[str] = "session.error"
    error: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class PieceCompleted(Event):
    """A piece passed its hash check and is on disk."""

    name: ClassVar[str] = "piece.completed"
    index: int = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class PieceHashFailed(Event):
    """A piece failed its hash check (``peers`` sent its blocks); it is fetched again."""

    name: ClassVar[str] = "piece.hash_failed"
    index: int = 0
    peers: tuple[str, ...] = ()  # "host:port" of each peer that sent a block of it


@dataclass(frozen=True, kw_only=True, slots=True)
class PeerConnected(Event):
    """A connection to a peer completed its handshake."""

    name: ClassVar[str] = "peer.connected"
    address: str = ""
    port: int = 0
    client: str = ""
    incoming: bool = False
    transport: str = "tcp"  # "tcp" or "utp"


@dataclass(frozen=True, kw_only=True, slots=True)
class PeerDisconnected(Event):
    """A peer's connection ended (``reason`` says why)."""

    name: ClassVar[str] = "peer.disconnected"
    address: str = ""
    port: int = 0
    reason: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class TrackerSuccess(Event):
    """A tracker answered an announce."""

    name: ClassVar[str] = "tracker.success"
    url: str = ""
    peers: int = 0
    seeders: int | None = None
    leechers: int | None = None
    interval: int = 0
    min_interval: int | None = None  # the tracker's "min interval", when it gave one
    next_in: float | None = None  # seconds until the next announce to it, as scheduled
    warning: str = ""  # the tracker's "warning message" beside its answer ("" none)


@dataclass(frozen=True, kw_only=True, slots=True)
class TrackerFailed(Event):
    """A tracker announce failed (``error`` says how)."""

    name: ClassVar[str] = "tracker.failed"
    url: str = ""
    error: str = ""
    retry_in: float | None = None  # seconds until it is tried again (None: never, or not said)
    # "refused": the tracker answered with a failure reason (BEP 3); "skipped": not asked (the
    # settings forbid it: a UDP tracker while only the proxy may be used); "error": no usable answer
    kind: str = "error"


@dataclass(frozen=True, kw_only=True, slots=True)
class DhtBootstrapped(Event):
    """The shared DHT node joined the network (``nodes`` in its routing table)."""

    name: ClassVar[str] = "dht.bootstrapped"
    nodes: int = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class SessionStalled(Event):
    """The download has not progressed for ``Config.stall_after`` seconds; ``reason`` is a
    ``torrent_engine.policy.stall.StallReason`` value, ``message`` says it in words."""

    name: ClassVar[str] = "session.stalled"
    reason: str = ""
    message: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class StatsUpdate(Event):
    """Published by a running session's tick (at most once a second) when its numbers moved."""

    name: ClassVar[str] = "stats.update"
    state: str = ""
    downloaded: int = 0
    uploaded: int = 0
    download_rate: float = 0.0
    upload_rate: float = 0.0
    peers: int = 0
    progress: float = 0.0
    eta: float | None = None


Callback = Callable[[Event], object]
E = TypeVar("E", bound=Event)


class UnknownEventError(TorrentEngineError, ValueError):
    """A subscription to an event name that no event has."""


def known_event_names() -> set[str]:
    """The names of every event class defined so far (the engine's and, once imported, the job
    service's)."""
    names: set[str] = set()
    pending: list[type[Event]] = [Event]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls is not Event:
            names.add(cls.name)
    return names


@dataclass(eq=False)
class Subscription:
    """Handle returned by :meth:`EventBus.subscribe`; ``cancel()`` stops delivery."""

    bus: EventBus
    name: str
    callback: Callback
    active: bool = field(default=True)

    def cancel(self) -> None:
        """Stop delivering events to this subscription (idempotent)."""
        if self.active:
            self.active = False
            self.bus._remove(self)


class EventBus:
    """Publish/subscribe by event name; ``"*"`` receives every event.

    Callbacks run on the event loop at the next tick after ``publish``. A callback may return
    an awaitable; it is not awaited (callbacks should be quick) and is closed with a warning.
    For async consumers, :meth:`stream` yields events through a bounded memory stream.
    """

    def __init__(self) -> None:
        self._subs: dict[str, list[Subscription]] = {}
        self._forward: list[EventBus] = []

    @overload
    def subscribe(self, name: type[E], callback: Callable[[E], object]) -> Subscription: ...

    @overload
    def subscribe(self, name: str, callback: Callback) -> Subscription: ...

    def subscribe(self, name: str | type[Event],
                  callback: Callable[[Any], object]) -> Subscription:  # Any: each overload's own event class
        """Call ``callback`` with every event of a kind: an event class (``PieceCompleted``: the
        callback's type is checked), its dotted name (``"piece.completed"``), or ``"*"`` for all.
        An unknown name raises ``UnknownEventError`` (it would never fire)."""
        if isinstance(name, type):
            if not issubclass(name, Event):
                raise UnknownEventError(f"{name.__name__} is not an event class")
            name = name.name
        elif name != ALL and name not in known_event_names():
            known = ", ".join(sorted(known_event_names()))
            raise UnknownEventError(f"no event is named {name!r}; known: {known}")
        sub = Subscription(self, name, callback)
        self._subs.setdefault(name, []).append(sub)
        return sub

    def _remove(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.name)
        if subs and sub in subs:
            subs.remove(sub)

    def forward_to(self, other: EventBus) -> Callable[[], None]:
        """Re-publish every event of this bus on ``other``; returns a function that undoes it."""
        self._forward.append(other)

        def undo() -> None:
            if other in self._forward:
                self._forward.remove(other)

        return undo

    def listened(self, kind: type[Event]) -> bool:
        """Whether an event of ``kind`` published now would reach a subscriber (of its kind or
        of every event, here or on a bus this one forwards to): a publisher whose event costs
        something to make need not make one nobody reads."""
        return bool(self._subs.get(kind.name) or self._subs.get(ALL)) or \
            any(other.listened(kind) for other in self._forward)

    def publish(self, event: Event) -> None:
        """Queue ``event`` for delivery; never blocks and never raises from a subscriber."""
        targets = [*self._subs.get(event.name, ()), *self._subs.get(ALL, ())]
        if targets:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
            if loop is None:
                self._deliver(event, targets)
            else:
                loop.call_soon(self._deliver, event, targets)
        for other in self._forward:
            other.publish(event)

    @staticmethod
    def _deliver(event: Event, targets: list[Subscription]) -> None:
        for sub in targets:
            if not sub.active:
                continue
            try:
                result = sub.callback(event)
            except Exception:
                log.exception("event subscriber %r failed on %s", sub.callback, event.name)
                continue
            close = getattr(result, "close", None)
            if close is not None and asyncio.iscoroutine(result):
                log.warning("event subscriber %r returned a coroutine; it was not awaited", sub.callback)
                close()

    @asynccontextmanager
    async def stream(
        self, name: str = ALL, max_buffer: int = 1024
    ) -> AsyncIterator[MemoryObjectReceiveStream[Event]]:
        """``async with bus.stream("piece.completed") as events: async for ev in events: ...``

        When the consumer falls ``max_buffer`` events behind, newer events are dropped (and
        counted in the log) rather than blocking the publisher.
        """
        send: MemoryObjectSendStream[Event]
        receive: MemoryObjectReceiveStream[Event]
        send, receive = anyio.create_memory_object_stream[Event](max_buffer)
        dropped = 0

        def push(event: Event) -> None:
            nonlocal dropped
            try:
                send.send_nowait(event)
            except anyio.WouldBlock:
                dropped += 1
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                pass

        sub = self.subscribe(name, push)
        try:
            async with receive:
                yield receive
        finally:
            sub.cancel()
            send.close()
            if dropped:
                log.warning("event stream %r dropped %d events (consumer too slow)", name, dropped)
