"""HTTP/1.1 connections kept open between requests to one server, as Transmission's (libcurl's)
are: a seedbox's thousands of torrents announce to a few trackers, and each announce on a
connection of its own costs a TCP (and TLS) handshake at both ends. ``KeptConnections`` holds the
idle ones, a few a server, each for ``idle_for`` seconds; the HTTP client takes one for a request
and gives it back once its response was read whole and the server did not ask to close.

It closes nothing itself: what it drops is handed back to the caller (``take``, ``give``) or to
``closer`` (``on_tick``, the owner's deadline) to close; its one look at a socket is a ``poll``
with no wait, whether the server closed it (or sent anything unasked) while it was idle.
"""

from __future__ import annotations

import select
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

import anyio
import anyio.abc

__all__ = ["KeptConnections", "close_all"]

PER_SERVER = 16  # idle connections kept to one server (host, port, TLS and route)
TOTAL = 64  # idle connections kept in all


@dataclass(slots=True)
class _Idle:
    stream: anyio.abc.ByteStream
    until: float  # when it is closed unless taken before


class KeptConnections:
    """Idle HTTP connections by server (``key``: host, port, TLS, the proxy and binding they
    went through), the most recently given first; ``on_idle(when)`` asks the owner for an
    ``on_tick`` at ``when`` (the first time one expires), and ``closer`` closes what ``on_tick``
    drops."""

    def __init__(self, idle_for: float, *, per_server: int = PER_SERVER, total: int = TOTAL,
                 now: Callable[[], float] = time.monotonic) -> None:
        self.idle_for = idle_for
        self.per_server = per_server
        self.total = total
        self._now = now
        self._idle: dict[Hashable, list[_Idle]] = {}
        self._count = 0
        self.on_idle: Callable[[float], None] | None = None
        self.closer: Callable[[list[anyio.abc.ByteStream]], None] | None = None
        self.reused = 0  # requests sent on a kept connection (tests, benchmarks)

    def __len__(self) -> int:
        return self._count

    def take(self, key: Hashable) -> tuple[anyio.abc.ByteStream | None, list[anyio.abc.ByteStream]]:
        """An idle connection to ``key``'s server that is still open (None: none), and the ones
        found expired or closed by the server on the way, for the caller to close."""
        dropped: list[anyio.abc.ByteStream] = []
        idle = self._idle.get(key)
        now = self._now()
        while idle:
            kept = idle.pop()
            self._count -= 1
            if kept.until > now and _quiet(kept.stream):
                if not idle:
                    del self._idle[key]
                self.reused += 1
                return kept.stream, dropped
            dropped.append(kept.stream)
        self._idle.pop(key, None)
        return None, dropped

    def give(self, key: Hashable, stream: anyio.abc.ByteStream) -> list[anyio.abc.ByteStream]:
        """Keep ``stream`` (its response read whole, the server willing) for the next request to
        ``key``'s server; what that pushes out (the oldest idle over a bound), to close."""
        if self.idle_for <= 0 or not _quiet(stream):  # (a server that closed at once, as opentracker)
            return [stream]
        until = self._now() + self.idle_for
        idle = self._idle.setdefault(key, [])
        idle.append(_Idle(stream, until))
        self._count += 1
        dropped = []
        if len(idle) > self.per_server:
            dropped.append(idle.pop(0).stream)
            self._count -= 1
        while self._count > self.total:
            oldest = min(self._idle, key=lambda k: self._idle[k][0].until)
            dropped.append(self._idle[oldest].pop(0).stream)
            self._count -= 1
            if not self._idle[oldest]:
                del self._idle[oldest]
        if self._count == 1 and self.on_idle is not None:
            self.on_idle(until)
        return dropped

    def on_tick(self, now: float) -> bool:
        """The owner's deadline: hand the expired connections to ``closer``; ask for the next
        deadline while some are kept. (Never in a round: False.)"""
        dropped: list[anyio.abc.ByteStream] = []
        for key in list(self._idle):
            idle = self._idle[key]
            alive = [kept for kept in idle if kept.until > now]
            dropped.extend(kept.stream for kept in idle if kept.until <= now)
            if alive:
                self._idle[key] = alive
            else:
                del self._idle[key]
        self._count -= len(dropped)
        if dropped and self.closer is not None:
            self.closer(dropped)
        if self._idle and self.on_idle is not None:
            self.on_idle(min(idle[0].until for idle in self._idle.values()))
        return False

    def clear(self) -> list[anyio.abc.ByteStream]:
        """Every connection kept, to close (the owner stops)."""
        streams = [kept.stream for idle in self._idle.values() for kept in idle]
        self._idle.clear()
        self._count = 0
        return streams


async def close_all(streams: list[anyio.abc.ByteStream]) -> None:
    """Close ``streams`` (what ``take``, ``give``, ``on_tick`` or ``clear`` dropped) without a
    TLS close_notify exchange to wait on."""
    for stream in streams:
        await anyio.aclose_forcefully(stream)


def _quiet(stream: anyio.abc.ByteStream) -> bool:
    """Whether nothing is waiting to be read on ``stream``'s socket: a server that closed an idle
    connection (or sent anything unasked) makes it readable, and it is not used again."""
    try:
        sock = stream.extra(anyio.abc.SocketAttribute.raw_socket)
    except anyio.TypedAttributeLookupError:
        return True  # (no socket to look at: the request will tell)
    fd = sock.fileno()
    if fd < 0:
        return False
    poller = select.poll()  # (not select(): a daemon's descriptors go past FD_SETSIZE)
    poller.register(fd, select.POLLIN | select.POLLERR | select.POLLHUP)
    return not poller.poll(0)
