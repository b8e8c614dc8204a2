"""The LSD shell: one multicast socket per address family, shared by every session of a
SharedResources. It announces the running torrents on the BEP 14 groups as the schedule allows
and hands the address of every announcing peer to the session of that info-hash.

Failures (no multicast route, port taken, no IPv6) are logged once and never fatal: LSD then
simply finds nobody.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import secrets
import socket
import struct
import time
from collections.abc import Callable, Iterable

import anyio
import anyio.abc

from ...errors import LsdError
from ..dht.ratelimit import RateLimiter
from ..netbind import NetBind, bind_socket
from .codec import MAX_DATAGRAM, MAX_INFO_HASHES, MULTICAST_V4, MULTICAST_V6, encode_announce, parse_announce
from .schedule import AnnounceSchedule

__all__ = ["LsdService", "PeersFound"]

log = logging.getLogger(__name__)

PeersFound = Callable[[Iterable[tuple[str, int]]], None]


def _open_v4(interface: str | None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # other clients on this host
        if hasattr(socket, "SO_REUSEPORT"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(("", MULTICAST_V4[1]))
        local = socket.inet_aton(interface or "0.0.0.0")
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                        socket.inet_aton(MULTICAST_V4[0]) + local)
        if interface:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, local)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)  # other clients on this host
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)  # the local network only
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def _open_v6() -> socket.socket:
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if hasattr(socket, "SO_REUSEPORT"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(("::", MULTICAST_V6[1]))
        group = socket.inet_pton(socket.AF_INET6, MULTICAST_V6[0])
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, group + struct.pack("@I", 0))
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 1)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 1)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def _families(listen_host: str) -> tuple[bool, bool]:
    """Which groups to use for a listen address: an IPv4 or IPv6 literal keeps to its family."""
    if not listen_host:
        return True, True
    try:
        version = ipaddress.ip_address(listen_host).version
    except ValueError:
        return True, True
    return version == 4, version == 6


class LsdService:
    """Announces running torrents on the BEP 14 groups and routes the peers it hears to them.

    ``listen_port`` is the port announced (the TCP/uTP listen port); ``listen_host`` picks the
    family and, for an IPv4 literal, the interface multicast goes out of. Sessions call
    ``serve_torrent`` in a task of their own: the torrent is announced while that task runs.
    """

    def __init__(self, *, listen_port: int, listen_host: str = "", schedule: AnnounceSchedule | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.listen_port = listen_port
        self.listen_host = listen_host
        self.netbind: NetBind | None = None  # the interface its sockets are bound to (None: any)
        self.cookie = secrets.token_hex(8)  # our own announces come back by multicast loop-back
        self.schedule = schedule if schedule is not None else AnnounceSchedule(per_message=MAX_INFO_HASHES)
        self._clock = clock
        self._torrents: dict[bytes, PeersFound] = {}
        self._limiter = RateLimiter(rate=1.0, burst=10.0, max_hosts=1000)
        self._sockets: list[tuple[anyio.abc.UDPSocket, tuple[str, int]]] = []
        self._changed = anyio.Event()
        self.announces_sent = 0
        self.announces_received = 0
        self.malformed = 0
        self.peers_found = 0

    @property
    def families(self) -> list[int]:
        """The address families the service listens on (empty when multicast is unavailable)."""
        return [4 if group is MULTICAST_V4 else 6 for _, group in self._sockets]

    # -- sessions --------------------------------------------------------------------------
    def add_torrent(self, info_hash: bytes, on_peers: PeersFound) -> None:
        """Announce ``info_hash`` and hand peers announcing it to ``on_peers``."""
        self._torrents[info_hash] = on_peers
        self.schedule.add(info_hash, self._clock())
        self._changed.set()

    def remove_torrent(self, info_hash: bytes) -> None:
        """Stop announcing ``info_hash`` and forget its handler."""
        self._torrents.pop(info_hash, None)
        self.schedule.remove(info_hash)

    async def serve_torrent(self, info_hash: bytes, on_peers: PeersFound) -> None:
        """Announce ``info_hash`` for as long as this task runs (cancel it to stop)."""
        self.add_torrent(info_hash, on_peers)
        try:
            await anyio.sleep(math.inf)
        finally:
            self.remove_torrent(info_hash)

    # -- receiving -------------------------------------------------------------------------
    def datagram_received(self, data: bytes, source: tuple[str, int]) -> None:
        """One datagram from the group: a peer for each of our torrents it announces."""
        host = source[0].split("%", 1)[0]
        if not self._limiter.allow(host, self._clock()):
            return
        try:
            announce = parse_announce(data)
        except LsdError as exc:
            self.malformed += 1
            log.debug("LSD announce from %s ignored: %s", host, exc)
            return
        if announce.cookie == self.cookie:
            return  # our own, looped back
        self.announces_received += 1
        for info_hash in announce.info_hashes:
            on_peers = self._torrents.get(info_hash)
            if on_peers is not None:
                self.peers_found += 1
                on_peers([(host, announce.port)])

    async def _receive_loop(self, sock: anyio.abc.UDPSocket) -> None:
        while True:
            data, source = await sock.receive()
            if len(data) <= MAX_DATAGRAM:
                self.datagram_received(data, (str(source[0]), int(source[1])))

    # -- announcing ------------------------------------------------------------------------
    async def _announce_loop(self) -> None:
        while True:
            now = self._clock()
            batch = self.schedule.due(now)
            if batch:
                await self.send_announce(batch)
                continue
            wake = self.schedule.next_time(now)
            self._changed = anyio.Event()
            with anyio.move_on_after(math.inf if wake is None else max(0.0, wake - now) + 0.01):
                await self._changed.wait()

    async def send_announce(self, info_hashes: list[bytes]) -> None:
        """Send one announce of ``info_hashes`` to every group we joined (errors are logged)."""
        for sock, group in self._sockets:
            data = encode_announce(self.listen_port, info_hashes, cookie=self.cookie, group=group)
            try:
                await sock.sendto(data, group[0], group[1])
                self.announces_sent += 1
            except OSError as exc:
                log.debug("LSD announce to %s failed: %s", group[0], exc)

    # -- life ------------------------------------------------------------------------------
    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Join the groups, then receive and announce until cancelled."""
        use_v4, use_v6 = _families(self.listen_host)
        interface = self.listen_host if use_v4 and not use_v6 else None
        opened: list[tuple[socket.socket, tuple[str, int]]] = []
        for wanted, group in ((use_v4, MULTICAST_V4), (use_v6, MULTICAST_V6)):
            if not wanted:
                continue
            try:
                raw = _open_v4(interface) if group is MULTICAST_V4 else _open_v6()
                opened.append((raw, group))
                if self.netbind is not None:
                    bind_socket(raw, self.netbind)
            except OSError as exc:
                log.info("LSD: cannot join %s:%d: %s", group[0], group[1], exc)
        try:
            for raw, group in opened:
                self._sockets.append((await anyio.abc.UDPSocket.from_socket(raw), group))
        except BaseException:
            for raw, _ in opened:
                raw.close()
            raise
        if not self._sockets:
            log.warning("LSD is off: no multicast group could be joined")
        try:
            async with anyio.create_task_group() as tg:
                for sock, _ in self._sockets:
                    tg.start_soon(self._receive_loop, sock)
                if self._sockets:
                    tg.start_soon(self._announce_loop)
                task_status.started()
                await anyio.sleep(math.inf)
        finally:
            with anyio.CancelScope(shield=True):
                for sock, _ in self._sockets:
                    await sock.aclose()
            self._sockets.clear()

    def __repr__(self) -> str:
        return (f"LsdService(port={self.listen_port}, torrents={len(self._torrents)}, "
                f"families={self.families})")
