"""The daemon's log as clients read it: its messages and its peer events (blocked, banned), kept
in memory, numbered, the oldest let go past a bound (qBittorrent's ``log/main`` and
``log/peers``, our ``/api/log``).

What the engine logs through :mod:`logging` reaches the book by a handler (``capturing``); the
peer events are log records of ``PEER_LOGGER`` carrying the peer (``peer_event``): the engine
says what happened where it happens, and knows nothing of who reads it. No I/O here.
"""

from __future__ import annotations

import enum
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NamedTuple, TypeVar

__all__ = ["ALL_LEVELS", "LogBook", "LogLevel", "LogLine", "PEER_LOGGER", "PeerLine", "peer_event"]

# Lines and peer events kept (each), as qBittorrent's Logger keeps (MAX_LOG_MESSAGES)
MAX_LINES = 20_000
PEER_LOGGER = "torrent_engine.peers"  # its records are peer events (``peer_event``), not lines


class LogLevel(enum.IntEnum):
    """A line's kind, numbered as qBittorrent's ``Log::MsgType`` (a bit each, so a set of them
    is a mask): what happened to a torrent (``NORMAL``), what the engine does (``INFO``), what
    went wrong and is retried or left (``WARNING``), what stopped something (``CRITICAL``)."""

    NORMAL = 1
    INFO = 2
    WARNING = 4
    CRITICAL = 8


ALL_LEVELS = frozenset(LogLevel)


class LogLine(NamedTuple):
    """One message: ``id`` counts from 0 in the order written; ``time`` in seconds since the epoch."""

    id: int
    time: float
    kind: int  # its LogLevel's number
    message: str

    @property
    def level(self) -> LogLevel:
        """What kind of line it is."""
        return LogLevel(self.kind)


class PeerLine(NamedTuple):
    """A peer refused (``blocked``: by the IP filter, its port, the transport) or banned (sent
    bad data), and why."""

    id: int
    time: float
    ip: str
    blocked: bool
    reason: str


def _level_of(record: logging.LogRecord) -> LogLevel:
    if record.levelno >= logging.ERROR:
        return LogLevel.CRITICAL
    if record.levelno >= logging.WARNING:
        return LogLevel.WARNING
    return LogLevel.INFO


_Kept = tuple[int, float, int, str]  # a line as kept: (id, time, kind, message)
_KeptPeer = tuple[int, float, str, bool, str]


class LogBook:
    """The lines and peer events, ``size`` of each at most (the oldest go first). Written from
    any thread (a worker thread's log record), read on the loop. Each is kept as a plain tuple
    of numbers and strings, which the collector stops tracking: a full book adds nothing to the
    daemon's sweeps (a ``LogLine``, a tuple's subclass, it would walk: 40 000 objects)."""

    def __init__(self, size: int = MAX_LINES, clock: Callable[[], float] = time.time) -> None:
        if size < 1:
            raise ValueError(f"a log book keeps at least one line, not {size}")
        self._clock = clock
        self._lock = threading.Lock()
        self._lines: deque[_Kept] = deque(maxlen=size)
        self._peers: deque[_KeptPeer] = deque(maxlen=size)
        self._next_line = 0
        self._next_peer = 0

    def write(self, level: LogLevel, message: str) -> int:
        """Keep ``message``; its id."""
        with self._lock:
            line_id = self._next_line
            self._next_line = line_id + 1
            self._lines.append((line_id, self._clock(), int(level), message))
        return line_id

    def write_peer(self, ip: str, *, blocked: bool, reason: str) -> int:
        """Keep a peer event; its id."""
        with self._lock:
            peer_id = self._next_peer
            self._next_peer = peer_id + 1
            self._peers.append((peer_id, self._clock(), ip, blocked, reason))
        return peer_id

    def lines(self, after: int = -1, levels: frozenset[LogLevel] = ALL_LEVELS) -> list[LogLine]:
        """The lines kept whose id is above ``after`` (-1: all) and whose level is in ``levels``,
        oldest first."""
        with self._lock:
            kinds = {int(level) for level in levels}
            return [LogLine._make(line) for line in _after(self._lines, after) if line[2] in kinds]

    def peers(self, after: int = -1) -> list[PeerLine]:
        """The peer events kept whose id is above ``after`` (-1: all), oldest first."""
        with self._lock:
            return [PeerLine._make(p) for p in _after(self._peers, after)]

    def take(self, record: logging.LogRecord) -> None:
        """Keep a log record: a peer event when it is ``PEER_LOGGER``'s and names its peer, else a
        line (its message, and its exception's when it has one)."""
        if record.name == PEER_LOGGER:
            ip = getattr(record, "peer_ip", None)
            if isinstance(ip, str):
                self.write_peer(ip, blocked=bool(getattr(record, "peer_blocked", True)),
                                reason=str(getattr(record, "peer_reason", "")))
                return
        message = record.getMessage()
        if record.exc_info is not None and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            message = f"{message}: {type(exc).__name__}: {exc}"
        self.write(_level_of(record), message)

    @contextmanager
    def capturing(self, logger: logging.Logger) -> Iterator[None]:
        """While inside: what ``logger`` (and its children) logs at ``INFO`` or above is kept
        here, and every peer event of ``PEER_LOGGER`` (logged at ``DEBUG``: a console shows it
        only when it shows everything). The loggers' levels are lowered for it (a console
        handler keeps its own level) and put back after."""
        peers = logging.getLogger(PEER_LOGGER)
        handler = _Handler(self)
        saved = logger.level, peers.level
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)
        peers.setLevel(logging.DEBUG)
        logger.addHandler(handler)
        if not peers.name.startswith(logger.name + "."):  # (a peer event reaches the handler once)
            peers.addHandler(handler)
        try:
            yield
        finally:
            logger.removeHandler(handler)
            peers.removeHandler(handler)
            logger.setLevel(saved[0])
            peers.setLevel(saved[1])


class _Handler(logging.Handler):
    def __init__(self, book: LogBook) -> None:
        super().__init__(logging.DEBUG)
        self._book = book

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno < logging.INFO and record.name != PEER_LOGGER:
            return  # (a child logger set to DEBUG for its own console: not the book's)
        try:
            self._book.take(record)
        except Exception:  # (a message whose arguments do not format)
            self.handleError(record)


_T = TypeVar("_T", _Kept, _KeptPeer)


def _after(kept: deque[_T], after: int) -> Iterator[_T]:
    """The entries of ``kept`` (consecutive ids, oldest first) whose id is above ``after``."""
    if not kept or after < kept[0][0]:
        return iter(kept)
    return itertools.islice(kept, after - kept[0][0] + 1, None)


_peers_log = logging.getLogger(PEER_LOGGER)


def peer_event(ip: str, message: str, *args: object, blocked: bool, reason: str) -> None:
    """Say that the peer at ``ip`` was refused (``blocked``) or banned, and why: a peer event of
    the log book (``reason``, in qBittorrent's words: ``IP filter``, ``port filter``), and
    ``message % args`` for a console that shows everything (made only when someone reads it)."""
    if _peers_log.isEnabledFor(logging.DEBUG):
        extra = {"peer_ip": ip, "peer_blocked": blocked, "peer_reason": reason}
        _peers_log.debug(message, *args, extra=extra)
