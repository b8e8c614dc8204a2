"""UDP tracker client (BEP 15): connect, announce and scrape with retransmission.

The packets are built and parsed in :mod:`.messages`; this shell sends them, waits 15·2ⁿ
seconds for an answer (n = 0..8, BEP 15) while ignoring datagrams that are not the answer,
and stops early at the caller's overall timeout. A connection id is reused for its one-minute
life, per tracker address, by every client that shares its ``ConnectionIds`` (an engine's
torrents and dormant seeds: one connect a minute a tracker, not one an announce).
"""

from __future__ import annotations

import functools
import ipaddress
import random
import re
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Protocol, TypeVar
from urllib.parse import urlsplit

import anyio

from ...errors import ProxyError, TrackerError, TrackerRefused
from .. import resolver
from ..netbind import NetBind, bound_socket
from .messages import (
    UDP_MAX_SCRAPE_HASHES,
    AnnounceRequest,
    AnnounceResponse,
    ScrapeResponse,
    ScrapeStats,
    parse_udp_announce,
    parse_udp_connect,
    parse_udp_scrape,
    udp_announce_request,
    udp_connect_request,
    udp_scrape_request,
    udp_url_data,
)

if TYPE_CHECKING:
    from ..proxy.udp_relay import UdpRelay

__all__ = ["CONNECTION_ID_LIFETIME", "RETRANSMIT_BASE", "ConnectionIds", "UdpTrackerClient"]

RETRANSMIT_BASE = 15.0  # BEP 15: wait 15 * 2 ** n seconds for an answer ...
MAX_RETRANSMITS = 8  # BEP 15: ... for n up to 8
CONNECTION_ID_LIFETIME = 60.0  # BEP 15: a client may use a connection id for one minute
MAX_DATAGRAM = 65536

T = TypeVar("T")


class _Pipe(Protocol):
    """What an exchange with one tracker sends and receives through: our own connected socket
    (``_Socket``) or the proxy's UDP relay (``proxy.udp_relay.RelayedTrackerSocket``)."""

    ipv6: bool  # the tracker sees us over IPv6: it answers with 18-byte peers

    async def send(self, data: bytes) -> None: ...

    async def receive(self) -> bytes: ...


class _Socket:
    """A connected, non-blocking UDP socket. Used raw rather than through anyio's UDP streams so
    that an ICMP "port unreachable" surfaces at once as ConnectionRefusedError: a dead tracker
    fails in milliseconds instead of after the retransmission schedule."""

    def __init__(self, sock: socket.socket, ipv6: bool) -> None:
        self._sock = sock
        self.ipv6 = ipv6  # the tracker sees us over IPv6: it answers with 18-byte peers

    @classmethod
    async def connect(cls, host: str, port: int, bind: NetBind | None = None) -> _Socket:
        family, sockaddr = (await resolver.resolve(host, port, socket.SOCK_DGRAM))[0]
        sock = bound_socket(family, socket.SOCK_DGRAM, bind)
        try:
            sock.connect(sockaddr)
        except BaseException:
            sock.close()
            raise
        ipv6 = family == socket.AF_INET6 and not ipaddress.IPv6Address(str(sockaddr[0])).ipv4_mapped
        return cls(sock, ipv6)

    async def send(self, data: bytes) -> None:
        while True:
            try:
                self._sock.send(data)
                return
            except BlockingIOError:
                await anyio.wait_writable(self._sock)

    async def receive(self) -> bytes:
        while True:
            await anyio.wait_readable(self._sock)
            try:
                return self._sock.recv(MAX_DATAGRAM)
            except BlockingIOError:
                continue

    async def __aenter__(self) -> _Socket:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._sock.close()


class _Unanswered(Exception):
    """No reply came to a request and its resends."""


def _unbound() -> NetBind | None:
    return None


class ConnectionIds:
    """BEP 15 connection ids by tracker address, for every client that shares it (libtorrent's
    connection cache): an id serves any announce or scrape to its tracker for
    ``CONNECTION_ID_LIFETIME`` seconds, and while one connect to a tracker is under way the
    others wait for its id instead of connecting too — a thousand torrents starting together
    send one connect, not a thousand. Ids are a loop's (its connects under way are waited on
    with the loop's events)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._ids: dict[tuple[str, int], tuple[int, float]] = {}
        self._connecting: dict[tuple[str, int], anyio.Event] = {}
        self.connects_sent = 0  # counted so tests and status can see connection-id reuse

    def valid(self, key: tuple[str, int]) -> int | None:
        """The id of the tracker at ``key`` (host, port) if one is younger than its lifetime."""
        cached = self._ids.get(key)
        if cached is not None and self.clock() - cached[1] < CONNECTION_ID_LIFETIME:
            return cached[0]
        return None

    def forget(self, key: tuple[str, int], connection_id: int | None = None) -> None:
        """Drop the tracker's id (only if it is still ``connection_id``, when given: another
        exchange may have put a fresh one since)."""
        cached = self._ids.get(key)
        if cached is not None and connection_id in (None, cached[0]):
            del self._ids[key]

    async def connect(self, key: tuple[str, int], connect: Callable[[], Awaitable[int]]) -> int:
        """A valid id for the tracker at ``key``: the one kept, the one of a connect under way
        (waited for), or ``connect()``'s, kept. A connect that fails hands its waiters nothing:
        the next of them connects."""
        while True:
            cached = self.valid(key)
            if cached is not None:
                return cached
            under_way = self._connecting.get(key)
            if under_way is None:
                break
            await under_way.wait()
        done = self._connecting[key] = anyio.Event()
        try:
            self.connects_sent += 1
            connection_id = await connect()
            self._ids[key] = (connection_id, self.clock())
            return connection_id
        finally:
            del self._connecting[key]
            done.set()


class UdpTrackerClient:
    """Talks to ``udp://host:port[/path]`` trackers. One instance may serve many trackers; it
    holds nothing but the connection ids (``ids``: its own, or those it shares with other
    clients), so it needs no closing.

    ``retransmit_base`` (seconds) scales BEP 15's schedule (tests shrink it); ``timeout`` on
    each call bounds the whole exchange, connect included. ``relay``, when it gives one, is the
    SOCKS5 proxy's UDP relay the datagrams go by instead of a socket of our own.
    """

    def __init__(
        self,
        *,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        retransmit_base: float = RETRANSMIT_BASE,
        max_retransmits: int = MAX_RETRANSMITS,
        relay: Callable[[], UdpRelay | None] | None = None,
        ids: ConnectionIds | None = None,
    ) -> None:
        self.relay = relay
        self._rng = rng or random.Random()
        self.retransmit_base = retransmit_base
        self.max_retransmits = max_retransmits
        self.ids = ids if ids is not None else ConnectionIds(clock)
        self.netbind: Callable[[], NetBind | None] = _unbound  # where each socket is bound, asked anew

    async def announce(
        self, url: str, request: AnnounceRequest, *, timeout: float = 60.0
    ) -> AnnounceResponse:
        """Announce ``request`` to the UDP tracker at ``url`` (BEP 15); ``TrackerError`` on failure."""
        async def exchange(sock: _Pipe, ipv6: bool, connection_id: int, resends: int) -> AnnounceResponse:
            tid = self._transaction_id()
            # Parsed here, after _run has checked the URL, so a malformed one is a TrackerError.
            packet = udp_announce_request(connection_id, tid, request, udp_url_data(url))
            return await self._roundtrip(
                sock, packet, lambda data: parse_udp_announce(data, tid, ipv6=ipv6, url=url), resends
            )

        return await self._run(url, timeout, exchange)

    async def scrape(
        self, url: str, info_hashes: Sequence[bytes], *, timeout: float = 60.0
    ) -> ScrapeResponse:
        """Scrape any number of info-hashes, UDP_MAX_SCRAPE_HASHES per request (BEP 15)."""
        hashes = list(dict.fromkeys(info_hashes))
        if any(len(h) != 20 for h in hashes):
            raise TrackerError("an info-hash to scrape is not 20 bytes", url)

        async def exchange(sock: _Pipe, ipv6: bool, connection_id: int, resends: int) -> ScrapeResponse:
            files: dict[bytes, ScrapeStats] = {}
            for start in range(0, len(hashes), UDP_MAX_SCRAPE_HASHES):
                batch = hashes[start : start + UDP_MAX_SCRAPE_HASHES]
                tid = self._transaction_id()
                packet = udp_scrape_request(connection_id, tid, batch)
                parse = functools.partial(parse_udp_scrape, transaction_id=tid, info_hashes=batch, url=url)
                response = await self._roundtrip(sock, packet, parse, resends)
                files.update(response.files)
            return ScrapeResponse(files)

        if not hashes:
            return ScrapeResponse({})
        return await self._run(url, timeout, exchange)

    @property
    def connects_sent(self) -> int:
        """Connects sent by the clients sharing ``ids`` (connection-id reuse, seen)."""
        return self.ids.connects_sent

    def forget(self, url: str) -> None:
        """Drop the cached connection id of the tracker at ``url``."""
        self.ids.forget(_address(url))

    # ------------------------------------------------------------------ internals

    def _transaction_id(self) -> int:
        return self._rng.getrandbits(32)

    async def _run(
        self,
        url: str,
        timeout: float,
        exchange: Callable[[_Pipe, bool, int, int], Awaitable[T]],
    ) -> T:
        key = host, port = _address(url)
        relay = self.relay() if self.relay is not None else None
        kept: int | None = None  # the kept id sent, while its request waits for an answer
        try:
            with anyio.fail_after(timeout):
                pipe: AbstractAsyncContextManager[_Pipe] = (
                    relay.tracker(host, port) if relay is not None
                    else await _Socket.connect(host, port, self.netbind()))
                async with pipe as sock:
                    kept = self.ids.valid(key)
                    if kept is not None:
                        try:  # (sent once: unanswered for BEP 15's first interval, the id goes)
                            return await exchange(sock, sock.ipv6, kept, 0)
                        except _Unanswered:
                            pass
                        except TrackerRefused as exc:
                            if not _about_the_id(exc.reason):
                                raise  # (the id served: it stays, the torrents sharing it go on with it)
                        # The tracker forgot our id early: connect again, once. (A tracker that
                        # restarted does not answer the ids it no longer knows: resending the id
                        # failed the announces of every torrent sharing it until its minute ended.)
                        self.ids.forget(key, kept)
                        kept = None
                    connection_id = await self.ids.connect(key, lambda: self._connect(sock, url))
                    return await exchange(sock, sock.ipv6, connection_id, self.max_retransmits)
        except (TimeoutError, _Unanswered):
            if kept is not None:  # (no answer to the kept id: the next exchange connects)
                self.ids.forget(key, kept)
            by = f" (by the UDP relay of proxy {relay.proxy.name})" if relay is not None else ""
            resolver.forget(host, port, socket.SOCK_DGRAM)  # (looked up again next time: it may have moved)
            raise TrackerError(f"no answer within {timeout:g} s{by}", url) from None
        except ProxyError as exc:
            raise TrackerError(str(exc), url) from None
        except ConnectionRefusedError:
            resolver.forget(host, port, socket.SOCK_DGRAM)
            raise TrackerError("connection refused (ICMP port unreachable)", url) from None
        except UnicodeError as exc:  # idna.IDNAError: a host name that cannot be encoded
            raise TrackerError(f"bad host name: {exc}", url) from None
        except OSError as exc:
            raise TrackerError(f"{type(exc).__name__}: {exc.strerror or exc}", url) from None

    async def _connect(self, sock: _Pipe, url: str) -> int:
        tid = self._transaction_id()
        packet = udp_connect_request(tid)
        return await self._roundtrip(sock, packet, lambda data: parse_udp_connect(data, tid, url),
                                     self.max_retransmits)

    async def _roundtrip(
        self,
        sock: _Pipe,
        packet: bytes,
        parse: Callable[[bytes], T | None],
        resends: int,
    ) -> T:
        """Send ``packet`` and resend it ``resends`` times on BEP 15's schedule until ``parse``
        accepts a reply; ``_Unanswered`` when none did."""
        for n in range(resends + 1):
            await sock.send(packet)
            with anyio.move_on_after(self.retransmit_base * 2**n):
                while True:
                    data = await sock.receive()
                    result = parse(data[:MAX_DATAGRAM])
                    if result is not None:
                        return result
        raise _Unanswered


_ABOUT_THE_ID = re.compile(r"connection[ _-]?id", re.IGNORECASE)


def _about_the_id(reason: str) -> bool:
    """Whether a tracker's error reply says the connection id was the problem ("Connection ID
    missmatch." is the usual answer to an id a tracker no longer knows), not the announce: only
    then is a new id worth a connect (libtorrent never connects again; anacrolix for that reply)."""
    return _ABOUT_THE_ID.search(reason) is not None


def _address(url: str) -> tuple[str, int]:
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. "udp://[::1:80": urllib's "Invalid IPv6 URL"
        raise TrackerError("malformed tracker URL", url) from None
    if parts.scheme.lower() != "udp":
        raise TrackerError("not a udp:// URL", url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or not port:
        raise TrackerError("a udp:// tracker URL needs a host and a port", url)
    return parts.hostname, port
