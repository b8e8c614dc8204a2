"""Shared fixtures: the event loop backend, and access to real third-party programs.

A test that needs a real peer or tracker calls ``require_program`` / ``require_libtorrent``:
locally it is skipped when the program is missing; under ``CI=true`` that is a failure.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import shutil
import socket
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def _missing(what: str) -> None:
    if IN_CI:
        pytest.fail(f"{what} is required in CI but is not installed")
    pytest.skip(f"{what} is not installed")


def require_program(name: str) -> str:
    """Path of the executable ``name``; skip (or fail in CI) when it is missing."""
    path = shutil.which(name)
    if path is None:
        _missing(f"program {name!r}")
    assert path is not None
    return path


def require_libtorrent() -> ModuleType:
    """The libtorrent Python module; skip (or fail in CI) when it cannot be imported."""
    try:
        import libtorrent
    except ImportError:
        _missing("the libtorrent Python module")
        raise
    return libtorrent


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    return ("asyncio", {"use_uvloop": True})


# -- the network guard ---------------------------------------------------------------------
# Tests talk only to loopback. Every connect or datagram to another address is refused and
# fails the test that made it, even where the engine swallows the error (a DHT or tracker
# failure is "logged, never fatal" by design). Python sockets are watched through audit events;
# the engine's own traffic goes through anyio, whose asyncio backend is wrapped, since uvloop's
# sockets raise no audit events.


class NonLoopbackTraffic(OSError):
    """A test tried to reach an address outside 127.0.0.0/8 and ::1."""


_violations: list[str] = []
_guard_on = False


def _allowed(host: object) -> bool:
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


def _check(what: str, address: object) -> None:
    if not _guard_on or not isinstance(address, tuple) or len(address) < 2:
        return
    if not _allowed(address[0]):
        message = f"{what} to {address[0]}:{address[1]}: tests may only reach loopback"
        _violations.append(message)
        raise NonLoopbackTraffic(errno.ENETUNREACH, message)


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if not _guard_on:
        return
    if event in ("socket.connect", "socket.sendto"):
        sock, address = args[0], args[1]
        if getattr(sock, "family", None) in (socket.AF_INET, socket.AF_INET6):
            _check(event, address)
    elif event == "socket.getaddrinfo":  # a name to look up: a query to a DNS server
        host = args[0].decode("idna") if isinstance(args[0], bytes) else args[0]
        if host is not None:
            _check("DNS lookup", (host, args[1]))


sys.addaudithook(_audit)


def _guard_anyio() -> None:
    from anyio._backends import _asyncio as backend

    connect_tcp = backend.AsyncIOBackend.connect_tcp.__func__  # type: ignore[attr-defined]
    create_udp = backend.AsyncIOBackend.create_udp_socket.__func__  # type: ignore[attr-defined]
    udp_send = backend.UDPSocket.send

    async def guarded_connect_tcp(cls: Any, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        _check("TCP connect", (host, port))
        return await connect_tcp(cls, host, port, *args, **kwargs)

    async def guarded_create_udp(cls: Any, family: Any, local_address: Any, remote_address: Any,
                                 *args: Any, **kwargs: Any) -> Any:
        if remote_address is not None:
            _check("UDP connect", remote_address)
        return await create_udp(cls, family, local_address, remote_address, *args, **kwargs)

    async def guarded_udp_send(self: Any, item: Any) -> None:
        _check("UDP send", item[1])
        await udp_send(self, item)

    backend.AsyncIOBackend.connect_tcp = classmethod(guarded_connect_tcp)  # type: ignore[method-assign,assignment]
    backend.AsyncIOBackend.create_udp_socket = classmethod(guarded_create_udp)  # type: ignore[method-assign,assignment]
    backend.UDPSocket.send = guarded_udp_send  # type: ignore[method-assign]


_guard_anyio()


def _guard_utp() -> None:
    # the uTP socket writes to its asyncio transport directly: its one send path is watched here
    from torrent_engine.utp.socket import UtpSocket

    sendto = UtpSocket.sendto

    def guarded_sendto(self: UtpSocket, data: bytes, addr: tuple[str, int]) -> None:
        try:
            _check("uTP datagram", addr)
        except NonLoopbackTraffic:
            return  # recorded: the test fails at teardown
        sendto(self, data, addr)

    UtpSocket.sendto = guarded_sendto  # type: ignore[method-assign]


_guard_utp()


def _guard_lsd() -> None:
    # Joining an LSD multicast group sends a membership report (IGMP/MLD) on the network before
    # any announce does: LSD runs in a network namespace a test makes (a subprocess), never in
    # the test process itself.
    from torrent_engine.lsd import service

    def guard(name: str) -> None:
        opener = getattr(service, name)

        def guarded(*args: Any) -> Any:
            if _guard_on:
                message = ("LSD multicast group join: tests may run LSD only in a network namespace "
                           "of their own")
                _violations.append(message)
                raise NonLoopbackTraffic(errno.ENETUNREACH, message)
            return opener(*args)

        setattr(service, name, guarded)

    guard("_open_v4")
    guard("_open_v6")


_guard_lsd()


@pytest.fixture(autouse=True)
def network_guard(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that tried to reach anything but loopback, whether or not it saw the error."""
    global _guard_on
    if request.node.get_closest_marker("network_guard_off"):
        yield
        return
    _violations.clear()
    _guard_on = True
    try:
        yield
    finally:
        _guard_on = False
    if _violations:
        found = list(dict.fromkeys(_violations))
        _violations.clear()
        pytest.fail("non-loopback traffic: " + "; ".join(found), pytrace=False)
