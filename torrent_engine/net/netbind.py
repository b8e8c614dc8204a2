"""Binding the engine's sockets to one network interface (``Config.bind_interface``, e.g. a VPN's
``wg0``): ``SO_BINDTODEVICE`` on every socket the engine makes, so that when the interface goes
down a send fails instead of taking another route, and the interface's address
(``Config.bind_address``) as the source or listen address when one is given. Linux only.

``bind_socket`` is the one place that applies it; ``connect_tcp``, ``udp_socket`` and
``tcp_listener`` make the sockets the engine's shells use with it applied.
"""

from __future__ import annotations

import errno
import fcntl
import ipaddress
import itertools
import os
import socket
import ssl
import struct
from typing import Any

import anyio
import anyio.abc
from anyio.streams.stapled import MultiListener
from anyio.streams.tls import TLSStream

from ..errors import ConfigError, InterfaceBindError
from ..formats.compact import is_ip_literal
from . import resolver
from .interface import NetBind, check_names
from .tls import client_context

__all__ = ["NetBind", "bind_socket", "check_address", "check_interface", "connect_socket", "connect_tcp",
           "bound_socket", "interface_addresses", "interface_names", "open_udp", "tcp_listener", "udp_socket"]

SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)  # Linux <asm-generic/socket.h>
SIOCGIFADDR = 0x8915  # Linux <linux/sockios.h>
IFNAMSIZ = 16  # Linux <net/if.h>: a name of at most 15 bytes and its NUL


def bind_socket(sock: socket.socket, bind: NetBind) -> None:
    """Bind ``sock`` to ``bind``'s interface (``SO_BINDTODEVICE``): everything it sends leaves by
    that interface or fails. ``InterfaceBindError`` (an ``OSError``) says why it cannot be."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, bind.interface.encode())
    except OSError as exc:
        raise InterfaceBindError(_why(exc, bind.interface), exc.errno or errno.EINVAL) from None


def _why(exc: OSError, name: str) -> str:
    if exc.errno == errno.ENODEV:
        return f"no interface {name!r}: nothing is sent until it exists"
    if exc.errno == errno.EPERM:
        return f"binding to interface {name!r} needs root or CAP_NET_RAW"
    return f"cannot bind to interface {name!r}: {exc.strerror or exc}"


def check_interface(name: str, field: str = "bind_interface") -> None:
    """``ConfigError`` naming ``field`` unless ``name`` is an interface here that sockets may be
    bound to ("" is none: always fine)."""
    if not name:
        return
    check_names(name, "", field)
    if not hasattr(socket, "SO_BINDTODEVICE"):
        raise ConfigError("binding to an interface needs Linux (SO_BINDTODEVICE)", field)
    try:
        socket.if_nametoindex(name)
    except OSError:
        known = ", ".join(interface_names())
        raise ConfigError(f"no interface {name!r} (there are: {known})", field) from None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            bind_socket(probe, NetBind(name))
        except InterfaceBindError as exc:
            raise ConfigError(exc.reason, field) from None


def check_address(address: str, interface: str, field: str = "bind_address") -> str:
    """``address`` as an address of ``interface`` ("" stays ""); ``ConfigError`` naming ``field``
    for anything else."""
    if not address:
        return ""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise ConfigError(f"{address!r} is not an IP address", field) from None
    if not interface:
        raise ConfigError("needs an interface (bind_interface)", field)
    if str(ip) not in interface_addresses(interface):
        raise ConfigError(f"{address} is not an address of {interface!r}", field)
    return str(ip)


def interface_names() -> list[str]:
    """The names of this machine's network interfaces."""
    try:
        return [name for _, name in socket.if_nameindex()]
    except OSError:
        return []


def interface_addresses(name: str) -> list[str]:
    """The addresses of interface ``name`` now: its IPv4 one, then its IPv6 ones (Linux)."""
    found: list[str] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            asked = struct.pack("256s", name.encode()[:IFNAMSIZ - 1])
            answer = fcntl.ioctl(sock.fileno(), SIOCGIFADDR, asked)
            found.append(socket.inet_ntoa(answer[20:24]))
        except OSError:
            pass  # (no IPv4 address, or no such interface)
    try:
        with open("/proc/net/if_inet6", encoding="ascii") as table:
            for line in table:
                fields = line.split()
                if len(fields) == 6 and fields[5] == name:
                    found.append(str(ipaddress.IPv6Address(bytes.fromhex(fields[0]))))
    except OSError:
        pass  # (no IPv6)
    return found


async def connect_tcp(host: str, port: int, bind: NetBind | None, *, tls: bool = False,
                      ssl_context: ssl.SSLContext | None = None) -> anyio.abc.ByteStream:
    """A TCP connection to ``host:port`` (TLS on top when ``tls``, ragged EOFs allowed as
    http.client does) from a socket bound by ``bind`` (None: unbound). The caller bounds it with
    its timeout."""
    if not tls:
        return await connect_socket(host, port, bind)
    context = ssl_context or client_context()
    if bind is None:
        return await anyio.connect_tcp(host, port, tls=True, ssl_context=context, tls_hostname=host,
                                       tls_standard_compatible=False)
    stream = await connect_socket(host, port, bind)
    try:
        return await TLSStream.wrap(stream, hostname=host, ssl_context=context, standard_compatible=False)
    except BaseException:
        await anyio.aclose_forcefully(stream)
        raise


async def connect_socket(host: str, port: int, bind: NetBind | None) -> anyio.abc.SocketStream:
    """A TCP connection to ``host:port`` from a socket bound by ``bind``: an IP address is dialed
    as it is (no look-up, no race of one: a tracker's announce, bench/RESULTS.md "An IP address
    dialed as it is"); a name's addresses come from ``resolver`` (kept for many connections) and
    are raced (happy eyeballs) when there are several and no ``bind``, else tried in turn. When
    none of a name's addresses can be reached, it is looked up again next time."""
    literal = is_ip_literal(host)
    try:
        infos = await resolver.resolve(host, port)  # (an IP address as it is: no look-up)
        if bind is None and len(infos) > 1:
            return await _race(infos, host, port)
        last: OSError | None = None
        for family, sockaddr in infos:
            try:
                return await _dial(family, sockaddr, bind, host, port)
            except InterfaceBindError:
                raise
            except OSError as exc:  # (refused, unreachable, a source address this family cannot bind)
                last = exc
        assert last is not None
        raise last
    except InterfaceBindError:
        raise
    except OSError:
        if not literal:
            resolver.forget(host, port)
        raise


async def _dial(family: int, sockaddr: tuple[Any, ...], bind: NetBind | None, host: str,
                port: int) -> anyio.abc.SocketStream:
    """A TCP connection to ``sockaddr`` (``host:port``'s address) from a socket bound by ``bind``."""
    sock = bound_socket(family, socket.SOCK_STREAM, bind)
    try:
        try:
            sock.connect(sockaddr)
        except BlockingIOError:
            await anyio.wait_writable(sock)
            error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if error:
                by = f" by {bind.interface}" if bind is not None else ""
                raise OSError(error, f"cannot connect to {host}:{port}{by}: {os.strerror(error)}") from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # (as anyio's TCP streams)
        return await anyio.abc.SocketStream.from_socket(sock)
    except BaseException:
        sock.close()
        raise


HAPPY_EYEBALLS_DELAY = 0.25  # seconds before the next address is tried beside one not yet answering


async def _race(infos: list[tuple[int, tuple[Any, ...]]], host: str, port: int) -> anyio.abc.SocketStream:
    """A connection to the first of ``infos``' addresses that answers (RFC 8305, as anyio's
    ``connect_tcp`` races a name's): the families taken in turn, each next address tried
    ``HAPPY_EYEBALLS_DELAY`` after the last began or at once when it failed."""
    by_family: dict[int, list[tuple[int, tuple[Any, ...]]]] = {}
    for family, sockaddr in infos:
        if (family, sockaddr) not in by_family.setdefault(family, []):
            by_family[family].append((family, sockaddr))
    order = [info for group in itertools.zip_longest(*by_family.values())
             for info in group if info is not None]
    winner: anyio.abc.SocketStream | None = None
    errors: list[OSError] = []

    async def attempt(family: int, sockaddr: tuple[Any, ...], failed: anyio.Event,
                      tg: anyio.abc.TaskGroup) -> None:
        nonlocal winner
        try:
            stream = await _dial(family, sockaddr, None, host, port)
        except OSError as exc:
            errors.append(exc)
            failed.set()
            return
        if winner is None:
            winner = stream
            tg.cancel_scope.cancel()
        else:
            await anyio.aclose_forcefully(stream)

    try:
        async with anyio.create_task_group() as tg:
            for family, sockaddr in order:
                failed = anyio.Event()
                tg.start_soon(attempt, family, sockaddr, failed, tg)
                with anyio.move_on_after(HAPPY_EYEBALLS_DELAY):
                    await failed.wait()
    except BaseException:  # (cancelled from outside as one connected: it is not left open)
        if winner is not None:
            await anyio.aclose_forcefully(winner)
        raise
    if winner is None:
        raise OSError("All connection attempts failed") from (errors[0] if errors else None)
    return winner


def bound_socket(family: int, kind: int, bind: NetBind | None) -> socket.socket:
    """A non-blocking socket of ``family`` and ``kind`` (``SOCK_STREAM``, ``SOCK_DGRAM``) to
    connect, bound by ``bind`` (None: unbound): to its interface, and to its source address when
    it names one."""
    sock = socket.socket(family, kind)
    try:
        if bind is not None:
            bind_socket(sock, bind)
            source = bind.source(family == socket.AF_INET6)
            if source is not None:
                sock.bind((source, 0))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


async def open_udp(host: str, port: int, bind: NetBind | None) -> anyio.abc.UDPSocket:
    """A UDP socket on ``host:port`` bound by ``bind`` (None: anyio's own, unbound), as
    ``connect_socket`` is for TCP."""
    if bind is None:
        return await anyio.create_udp_socket(local_host=host, local_port=port)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return await anyio.abc.UDPSocket.from_socket(udp_socket(family, bind, host, port))


def udp_socket(family: int, bind: NetBind | None, host: str, port: int) -> socket.socket:
    """A non-blocking UDP socket of ``family`` bound by ``bind`` (its address when ``host`` is
    a wildcard and it gives one of that family) and to ``host:port``."""
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if bind is not None:
            bind_socket(sock, bind)
            if host in ("", "0.0.0.0", "::"):
                host = bind.source(family == socket.AF_INET6) or host
        if family == socket.AF_INET6 and host in ("", "::"):
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((host or ("::" if family == socket.AF_INET6 else "0.0.0.0"), port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


async def tcp_listener(bind: NetBind, host: str, port: int) -> MultiListener[anyio.abc.SocketStream]:
    """A TCP listener on ``host:port`` (a wildcard: ``bind``'s address if it gives one, else
    both families) taking only connections that arrive by ``bind``'s interface."""
    host = host or bind.address or "::"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        bind_socket(sock, bind)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if host == "::":
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((host, port))
        sock.listen(socket.SOMAXCONN)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return MultiListener([await anyio.abc.SocketListener.from_socket(sock)])
