"""Server-sent events: the job service's events numbered, buffered for replay, fanned out.

Every event gets an ``id:`` from one increasing sequence (it starts at the boot time in
milliseconds, so ids of a later run are larger than those of an earlier one). The last
``buffer_size`` job events are kept: a client reconnecting with ``Last-Event-ID`` gets what it
missed, or one ``snapshot`` event (every job) when that is no longer in the buffer. Each client
has a bounded queue; a client that falls ``queue_size`` events behind is disconnected (its
browser reconnects with ``Last-Event-ID``), so a slow reader never holds up the engine.

A ``job.progress`` is made (the job's view, up to four a second for each downloading torrent)
only while a client streams, and for ``replay_grace`` seconds after the last one left (a browser
that lost its stream comes back within seconds and is given what it missed): 1 000 downloads
made 6 800 views nobody read. After that no progress is heard, and a client coming back with an
id from before it gets a snapshot (every job as it is now) instead of a replay that lacks them.
"""

from __future__ import annotations

import collections
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from enum import Enum

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ..events import Event, EventBus, Subscription, known_event_names

log = logging.getLogger(__name__)

DEFAULT_BUFFER = 4096
DEFAULT_QUEUE = 1024
DEFAULT_HEARTBEAT = 15.0
DEFAULT_REPLAY_GRACE = 60.0  # seconds progress is still heard after the last client left


class SseEvent:
    """One server-sent event: its id, name, job and JSON data. The data may be given as a
    function that makes its payload (of snapshots that do not change): it is made and encoded
    when first read — an event no client reads (no stream open, and out of the replay buffer
    before a reconnect) costs no JSON, and 10 000 adds made 20 000 such events."""

    __slots__ = ("id", "event", "job_id", "stored", "owner", "_data", "_make")

    def __init__(self, id: int, event: str, job_id: str | None,
                 data: str | Callable[[], dict[str, object]], stored: bool = True,
                 owner: str | None = None) -> None:
        self.id = id
        self.event = event
        self.job_id = job_id
        self.stored = stored  # kept for replay (stats are not: a missed one is of no use)
        self.owner = owner  # the user whose job it is ("": the admin's; None: no job's)
        self._data: str | None = data if isinstance(data, str) else None
        self._make: Callable[[], dict[str, object]] | None = None if isinstance(data, str) else data

    @property
    def data(self) -> str:
        """The JSON text."""
        if self._data is None:
            assert self._make is not None
            self._data = json.dumps(self._make(), separators=(",", ":"))
            self._make = None
        return self._data

    def shown_to(self, only: str | None) -> bool:
        """Whether a stream of user ``only``'s jobs (None: every job's) carries it."""
        return only is None or self.job_id is None or self.owner == only

    def __repr__(self) -> str:
        return (f"SseEvent({self.id}, {self.event!r}, {self.job_id!r}, stored={self.stored}, "
                f"owner={self.owner!r})")

    def encode(self) -> bytes:
        """The event in the ``text/event-stream`` wire form."""
        return f"id: {self.id}\nevent: {self.event}\ndata: {self.data}\n\n".encode()


class _Payload:
    """What makes a job event's JSON payload when first read: the event (its snapshots do not
    change) and its time. One object for the collector to walk, where a closure was six (a
    function, its cells and their tuple), for each of the ``buffer_size`` events kept."""

    __slots__ = ("event", "at")

    def __init__(self, event: Event, at: float) -> None:
        self.event = event
        self.at = at

    def __call__(self) -> dict[str, object]:
        event, name = self.event, self.event.name
        if name == "job.removed":
            return {"job_id": str(getattr(event, "job_id", "")), "time": self.at}
        if name == "service.stats":
            stats = getattr(event, "stats", None)
            return {"stats": stats.to_json() if stats is not None else {}, "time": self.at}
        job = getattr(event, "job", None)  # (a job event's: see ``_job_event``)
        out: dict[str, object] = {"job": job.to_json() if job is not None else None}
        if name == "job.state":
            out["old"] = str(getattr(event, "old", ""))
            out["new"] = str(getattr(event, "new", ""))
        out["time"] = self.at
        return out


def _job_event(event: Event, at: float) -> tuple[str | None, Callable[[], dict[str, object]], bool] | None:
    """(job id, what makes its JSON payload, stored) of an event of the job service at time
    ``at``; None for others. The payload is made when first read, from the event's snapshots
    (which do not change)."""
    name = event.name
    if name == "job.removed":
        return str(getattr(event, "job_id", "")), _Payload(event, at), True
    if name == "service.stats":
        return None, _Payload(event, at), False
    job = getattr(event, "job", None)
    if job is None or not name.startswith("job."):
        return None
    return str(job.id), _Payload(event, at), True


# What a progress event may change; one that changes none of them is not sent.
_PROGRESS_FIELDS = ("state", "progress", "done_size", "total_size", "downloaded", "uploaded",
                    "download_rate", "upload_rate", "peers", "seeds", "name", "error", "stall")


def _plain(value: object) -> object:
    """An enum member's value, anything else as it is: the key kept for each job holds the
    state's text, not its member (a tuple holding a member stays tracked, one a job for the
    collector's sweeps to walk)."""
    return value.value if isinstance(value, Enum) else value


def _owner(job: dict[str, object]) -> object:
    options = job.get("options")
    return options.get("owner") if isinstance(options, dict) else None


@dataclass(eq=False)
class _Client:
    job_id: str | None
    send: MemoryObjectSendStream[SseEvent]
    lagging: bool = False
    only: str | None = None  # the user whose jobs' events it carries (None: every job's)


@dataclass
class EventLog:
    """Numbers the bus's job events, keeps the recent ones and hands them to SSE clients."""

    bus: EventBus
    snapshot: Callable[[str | None], list[dict[str, object]]]  # job id (or None) -> jobs as JSON
    # the same as a JSON array's text, when the caller keeps it (jobjson.py): used instead
    snapshot_json: Callable[[str | None], bytes] | None = None
    # every job's (a user's alone: their name) as the parts of the JSON array a stream's snapshot
    # shows, read a page of jobs at a time with the loop let run between pages: used instead
    snapshot_parts: Callable[[str | None], Awaitable[list[bytes]]] | None = None
    buffer_size: int = DEFAULT_BUFFER
    queue_size: int = DEFAULT_QUEUE
    clock: Callable[[], float] = time.time
    replay_grace: float = DEFAULT_REPLAY_GRACE
    ticks: Callable[[], float] = time.monotonic  # (the grace's clock)
    _seq: int = 0
    _evicted_upto: int = 0  # every stored event with an id up to this one is gone from the buffer
    _buffer: collections.deque[SseEvent] = field(default_factory=collections.deque)
    _clients: set[_Client] = field(default_factory=set)
    _subs: list[Subscription] = field(default_factory=list)  # every job event's but progress
    _progress: Subscription | None = None  # progress: while heard (see the module's docstring)
    _unheard_upto: int = 0  # a client whose last event is older than this may have missed progress
    _left_at: float = 0.0  # when the last client left
    _open: bool = True
    _last_progress: dict[str, tuple[object, ...]] = field(default_factory=dict)
    _owners: dict[str, str] = field(default_factory=dict)  # job id -> its owner, from its events
    dropped_clients: int = 0

    def __post_init__(self) -> None:
        self._seq = int(self.clock() * 1000)
        self._evicted_upto = self._seq
        kinds = sorted(n for n in known_event_names() if n.startswith("job.") or n == "service.stats")
        self._subs = [self.bus.subscribe(kind, self._on_event) for kind in kinds if kind != "job.progress"]
        # (progress: from the first client on; none can have missed any before it)

    @property
    def last_id(self) -> int:
        """The id of the newest event (0 before the first)."""
        return self._seq

    @property
    def clients(self) -> int:
        """How many clients are streaming events."""
        return len(self._clients)

    def close(self) -> None:
        """Stop listening and end every client's stream."""
        self._open = False
        for sub in self._subs:
            sub.cancel()
        self._subs.clear()
        self._hear_progress(False)
        for client in list(self._clients):
            client.send.close()
        self._clients.clear()

    def _hear_progress(self, heard: bool) -> None:
        """Hear ``job.progress`` again (the jobs' views are made for it) or no longer."""
        if heard and self._progress is None and self._open:
            self._progress = self.bus.subscribe("job.progress", self._on_event)
            self._seq += 1  # (an id no event has: a client given the snapshot now lacks nothing,
            self._unheard_upto = self._seq  # one whose last event is older may lack progress)
        elif not heard and self._progress is not None:
            self._progress.cancel()
            self._progress = None
            self._last_progress.clear()  # (its first progress after it is news)

    def _unchanged_progress(self, event: Event) -> bool:
        """Whether ``event`` is a ``job.progress`` that says nothing new (a paused or stalled
        job's session still reports once a second: 100 paused jobs filled the replay buffer
        with 100 identical events a second)."""
        if event.name == "job.removed":
            self._last_progress.pop(str(getattr(event, "job_id", "")), None)
            return False
        job = getattr(event, "job", None)
        if job is None:
            return False
        key = tuple(_plain(getattr(job, name, None)) for name in _PROGRESS_FIELDS)
        job_id = str(job.id)
        if event.name == "job.progress" and self._last_progress.get(job_id) == key:
            return True
        self._last_progress[job_id] = key
        return False

    def _on_event(self, event: Event) -> None:
        if self._progress is not None and not self._clients \
                and self.ticks() - self._left_at >= self.replay_grace:
            self._hear_progress(False)  # (nobody has streamed for the grace: nor will be told)
        if event.name == "job.progress" and self._progress is None:
            return  # (published before it was no longer heard)
        if self._unchanged_progress(event):
            return
        converted = _job_event(event, self.clock())
        if converted is None:
            return
        job_id, payload, stored = converted
        self._seq += 1
        job = getattr(event, "job", None)
        owner = None
        if job_id is not None:  # (a removed job's owner: as its last event said)
            owner = self._owners.pop(job_id, "") if job is None else \
                str(getattr(getattr(job, "options", None), "owner", ""))
            if job is not None:
                self._owners[job_id] = owner
        sse = SseEvent(self._seq, event.name, job_id, payload, stored, owner)
        if stored:
            self._buffer.append(sse)
            if len(self._buffer) > self.buffer_size:
                self._evicted_upto = self._buffer.popleft().id
        for client in list(self._clients):
            if client.job_id is not None and (job_id != client.job_id or not stored):
                continue
            if not sse.shown_to(client.only):
                continue
            try:
                client.send.send_nowait(sse)
            except anyio.WouldBlock:
                # Too far behind: end its stream; it reconnects with Last-Event-ID and is
                # caught up from the buffer (or a snapshot) without holding anyone up.
                client.lagging = True
                self._leave(client)
                self.dropped_clients += 1
                log.info("SSE client %d events behind: disconnected", self.queue_size)
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                self._leave(client)

    def _snapshot_event(self, job_id: str | None, only: str | None = None,
                        seq: int | None = None) -> SseEvent:
        seq = self._seq if seq is None else seq
        if self.snapshot_json is not None and only is None:  # (10 000 jobs: their kept texts
            jobs_text = self.snapshot_json(job_id).decode()  # joined, not encoded again; a user's
            data = '{"jobs":' + jobs_text + ',"time":' + json.dumps(self.clock()) + "}"  # own: below)
            return SseEvent(seq, "snapshot", job_id, data, False)
        jobs = self.snapshot(job_id)
        if only is not None:
            jobs = [j for j in jobs if _owner(j) == only]
        data = json.dumps({"jobs": jobs, "time": self.clock()}, separators=(",", ":"))
        return SseEvent(seq, "snapshot", job_id, data, False)

    async def _snapshot_parts(self, seq: int, job_id: str | None, only: str | None) -> list[bytes]:
        """The wire form of the snapshot at event ``seq`` in parts (their join is
        ``_snapshot_event(...).encode()``): every job's read a page at a time, the loop let run
        between pages, when ``snapshot_parts`` is given."""
        if job_id is not None or self.snapshot_parts is None:
            return [self._snapshot_event(job_id, only, seq).encode()]
        jobs = await self.snapshot_parts(only)
        return [b"id: %d\nevent: snapshot\ndata: {\"jobs\":" % seq, *jobs,
                b',"time":' + json.dumps(self.clock()).encode() + b"}\n\n"]

    def subscribe(self, job_id: str | None, last_event_id: int | None,
                  only: str | None = None,
                  ) -> tuple[list[SseEvent], MemoryObjectReceiveStream[SseEvent], _Client]:
        """The events to send first (a replay, or a snapshot) and the stream of what follows.

        Synchronous on purpose: the replay and the registration happen in one loop step, so no
        event falls between them."""
        replay, receive, client = self._register(job_id, last_event_id, only)
        return ([self._snapshot_event(job_id, only)] if replay is None else replay), receive, client

    def _register(self, job_id: str | None, last_event_id: int | None, only: str | None,
                  ) -> tuple[list[SseEvent] | None, MemoryObjectReceiveStream[SseEvent], _Client]:
        """The replay (None: a snapshot as at the last event, ``_seq``, is due instead) and the
        stream of what follows, the client registered in the same loop step: every event after
        the replay, or after the snapshot's ``_seq``, reaches the stream (a snapshot made over
        several steps then shows some jobs as they are after such an event, which comes after it
        and says the same)."""
        send, receive = anyio.create_memory_object_stream[SseEvent](self.queue_size)
        if not self._open:
            send.close()
            return [], receive, _Client(job_id, send)
        self._hear_progress(True)
        replay: list[SseEvent] | None = None
        if last_event_id is not None and self._evicted_upto <= last_event_id <= self._seq \
                and last_event_id >= self._unheard_upto:
            replay = [e for e in self._buffer
                      if e.id > last_event_id and (job_id is None or e.job_id == job_id)
                      and e.shown_to(only)]
        client = _Client(job_id, send, only=only)
        self._clients.add(client)
        return replay, receive, client

    async def stream(self, job_id: str | None, last_event_id: int | None,
                     heartbeat: float = DEFAULT_HEARTBEAT, *,
                     only: str | None = None) -> AsyncIterator[bytes]:
        """The bytes of one SSE response: ``retry``, the replay or snapshot, then live events
        with a comment line every ``heartbeat`` seconds of silence (``only``: the events of
        that user's jobs alone, and the service's totals)."""
        replay, receive, client = self._register(job_id, last_event_id, only)
        seq = self._seq  # (as registered: the id of a snapshot due)
        try:
            async with receive:
                yield b"retry: 2000\n\n"
                if replay is None:
                    for part in await self._snapshot_parts(seq, job_id, only):
                        yield part
                for event in replay or ():
                    yield event.encode()
                while True:
                    with anyio.move_on_after(heartbeat) as scope:
                        try:
                            event = await receive.receive()
                        except anyio.EndOfStream:
                            return
                    if scope.cancelled_caught:
                        yield b": heartbeat\n\n"
                        continue
                    # Send whatever else is queued in the same write (fewer syscalls under load).
                    chunk = [event.encode()]
                    while len(chunk) < 64:
                        try:
                            chunk.append(receive.receive_nowait().encode())
                        except (anyio.WouldBlock, anyio.EndOfStream):
                            break
                    yield b"".join(chunk)
        finally:
            self._leave(client)

    def _leave(self, client: _Client) -> None:
        """``client``'s stream ended: the last to leave starts the grace."""
        if client in self._clients:
            self._clients.discard(client)
            if not self._clients:
                self._left_at = self.ticks()
        client.send.close()
