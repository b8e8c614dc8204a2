"""The loopback-only network guard, one code for two places: the test process installs it from
``conftest.py``; every Python process a test starts installs it at start-up
(``netguard_child/sitecustomize.py``, put first on the ``PYTHONPATH`` they inherit).

Every connect or datagram to an address outside 127.0.0.0/8 and ::1, and every DNS lookup, is
refused and reported, even where the code under test swallows the error (a DHT, tracker or
port-mapping failure is "logged, never fatal" by design). Python sockets are watched through
audit events; the engine's own traffic goes through anyio, whose asyncio backend is wrapped
(uvloop's sockets raise no audit events), and through the uTP socket, wrapped too.
This module imports nothing of the engine, of anyio or of ``socket`` (a child process that never
uses sockets must not load it: tests/unit/test_layers.py looks): the patches take the modules as
given.
"""

from __future__ import annotations

import errno
import ipaddress
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any


class NonLoopbackTraffic(OSError):
    """A test tried to reach an address outside 127.0.0.0/8 and ::1."""


def allowed(host: object) -> bool:
    """Whether ``host`` (of a socket address) is loopback, or not a network address at all."""
    if not isinstance(host, str):
        return True  # AF_UNIX (bytes/str path) and other families: not a network address
    text = host.strip("[]").split("%", 1)[0]
    if text in ("localhost", ""):
        return True
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False  # a name to resolve: it would reach a DNS server
    mapped = getattr(address, "ipv4_mapped", None)
    return bool(address.is_loopback or (mapped is not None and mapped.is_loopback))


class Guard:
    """Refuses non-loopback traffic while ``on``; each refusal goes to ``report`` first."""

    def __init__(self, report: Callable[[str], None]) -> None:
        self.on = False
        self.report = report

    def check(self, what: str, address: object) -> None:
        """Raise ``NonLoopbackTraffic`` (after reporting it) if ``address`` is not loopback."""
        if not self.on or not isinstance(address, tuple) or len(address) < 2:
            return
        if not allowed(address[0]):
            message = f"{what} to {address[0]}:{address[1]}: tests may only reach loopback"
            self.report(message)
            raise NonLoopbackTraffic(errno.ENETUNREACH, message)

    def audit(self, event: str, args: tuple[Any, ...]) -> None:
        """The audit hook: Python sockets' connects, datagrams and name lookups."""
        if not self.on:
            return
        if event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
            sock, address = args[0], args[1]
            socket = sys.modules["socket"]  # loaded: a socket raised the event
            if getattr(sock, "family", None) in (socket.AF_INET, socket.AF_INET6):
                self.check(event, address)
        elif event == "socket.getaddrinfo":  # a name to look up: a query to a DNS server
            host = args[0].decode("idna") if isinstance(args[0], bytes) else args[0]
            if host is not None:
                self.check("DNS lookup", (host, args[1]))

    def patch_anyio(self, backend: ModuleType) -> None:
        """Wrap anyio's asyncio backend (``anyio._backends._asyncio``): TCP connects, UDP sockets."""
        check = self.check
        connect_tcp = backend.AsyncIOBackend.connect_tcp.__func__
        create_udp = backend.AsyncIOBackend.create_udp_socket.__func__
        udp_send = backend.UDPSocket.send

        async def guarded_connect_tcp(cls: Any, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
            check("TCP connect", (host, port))
            return await connect_tcp(cls, host, port, *args, **kwargs)

        async def guarded_create_udp(cls: Any, family: Any, local_address: Any, remote_address: Any,
                                     *args: Any, **kwargs: Any) -> Any:
            if remote_address is not None:
                check("UDP connect", remote_address)
            return await create_udp(cls, family, local_address, remote_address, *args, **kwargs)

        async def guarded_udp_send(self: Any, item: Any) -> None:
            check("UDP send", item[1])
            await udp_send(self, item)

        backend.AsyncIOBackend.connect_tcp = classmethod(guarded_connect_tcp)
        backend.AsyncIOBackend.create_udp_socket = classmethod(guarded_create_udp)
        backend.UDPSocket.send = guarded_udp_send

    def patch_utp(self, utp_socket: ModuleType) -> None:
        """Wrap the uTP socket's one send path (``torrent_engine.net.utp.socket``): it writes to its
        asyncio transport directly. A refused datagram is dropped (and reported)."""
        check = self.check
        sendto = utp_socket.UtpSocket.sendto

        def guarded_sendto(self: Any, data: bytes, addr: tuple[str, int]) -> None:
            try:
                check("uTP datagram", addr)
            except NonLoopbackTraffic:
                return
            sendto(self, data, addr)

        utp_socket.UtpSocket.sendto = guarded_sendto

    def patch_lsd(self, service: ModuleType) -> None:
        """Wrap LSD's group joins (``torrent_engine.net.lsd.service``): joining a multicast group
        sends a membership report (IGMP/MLD) on the network before any announce does, so LSD
        runs only in a network namespace a test makes (where no guard is on)."""
        guard = self

        def wrap(name: str) -> None:
            opener = getattr(service, name)

            def guarded(*args: Any) -> Any:
                if guard.on:
                    message = ("LSD multicast group join: tests may run LSD only in a network namespace "
                               "of their own")
                    guard.report(message)
                    raise NonLoopbackTraffic(errno.ENETUNREACH, message)
                return opener(*args)

            setattr(service, name, guarded)

        wrap("_open_v4")
        wrap("_open_v6")
