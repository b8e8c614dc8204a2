"""Host names looked up once for many connections (libtorrent's resolver cache): a seedbox's
thousands of torrents announce to a few trackers, and each announce looked its tracker's name up
again — a worker thread and a query to the system's resolver each, a thousand at once when a
thousand torrents start. ``resolve`` keeps a name's addresses for ``CACHE_FOR`` seconds
(libtorrent's ``resolver_cache_timeout``), and the look-ups of one name under way at once are
one. A failed look-up is not kept; ``forget`` drops a name whose addresses all failed, so that
the next connection looks it up again.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

from ..formats.compact import is_ip_literal, parse_ip

__all__ = ["CACHE_FOR", "Address", "forget", "resolve"]

CACHE_FOR = 1200.0  # seconds a name's addresses are kept (libtorrent's resolver_cache_timeout)
MAX_NAMES = 1024  # names kept at most (the oldest go first)

Address = tuple[int, tuple[Any, ...]]  # (family, sockaddr) as getaddrinfo gives them
_Key = tuple[str, int, int]  # (name in lower case, port, socket type)


@dataclass
class _Lookup:
    """A look-up under way: the callers of the same name wait for it."""

    done: anyio.Event = field(default_factory=anyio.Event)
    addresses: list[Address] | None = None
    error: OSError | None = None


_kept: dict[_Key, tuple[float, list[Address]]] = {}
_under_way: dict[tuple[_Key, int], _Lookup] = {}
clock: Callable[[], float] = time.monotonic  # (tests move it)


async def resolve(host: str, port: int, kind: int = socket.SOCK_STREAM) -> list[Address]:
    """``host``'s addresses for ``port`` and the socket type ``kind``, in getaddrinfo's order (an
    IP address: itself); ``OSError`` when the name cannot be resolved (``gaierror`` as
    getaddrinfo raises it)."""
    if is_ip_literal(host):  # (an address as it is: no look-up, no thread)
        ip = parse_ip(host)
        return [(socket.AF_INET6, (host, port, 0, 0)) if ip.version == 6 else (socket.AF_INET, (host, port))]
    key = (host.lower(), port, kind)
    kept = _kept.get(key)
    if kept is not None:
        if kept[0] > clock():
            return kept[1]
        _kept.pop(key, None)  # (pop: the loops of other threads share the names kept)
    flight = (key, threading.get_ident())  # (an Event is its loop's: a loop a thread waits on its own)
    lookup = _under_way.get(flight)
    if lookup is not None:
        await lookup.done.wait()
        if lookup.addresses is not None:
            return lookup.addresses
        if lookup.error is not None:
            raise type(lookup.error)(*lookup.error.args)  # (a copy: each waiter's own traceback)
        return await resolve(host, port, kind)  # (its owner was cancelled: look it up here)
    lookup = _under_way[flight] = _Lookup()
    try:
        try:
            infos = await anyio.getaddrinfo(host, port, type=kind)
        except OSError as exc:
            lookup.error = exc
            raise
        addresses: list[Address] = [(family, sockaddr) for family, _, _, _, sockaddr in infos]
        if not addresses:
            lookup.error = OSError(f"cannot resolve {host!r}")
            raise lookup.error
        lookup.addresses = addresses
        if len(_kept) >= MAX_NAMES:  # (a copy to look through: other threads' loops change it)
            oldest = min(list(_kept.items()), key=lambda item: item[1][0])[0]
            _kept.pop(oldest, None)
        _kept[key] = (clock() + CACHE_FOR, addresses)
        return addresses
    finally:
        del _under_way[flight]
        lookup.done.set()


def forget(host: str, port: int, kind: int = socket.SOCK_STREAM) -> None:
    """Drop ``host``'s kept addresses (none of them could be reached): the next ``resolve``
    looks it up again."""
    _kept.pop((host.lower(), port, kind), None)


def clear() -> None:
    """Forget every name (tests)."""
    _kept.clear()
