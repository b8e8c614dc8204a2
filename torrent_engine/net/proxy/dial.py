"""The async shell of the proxy handshakes: a TCP connection to the proxy, the handshake driven
over it within a timeout, and the socket handed back as the tunnel. ``open_tcp`` is what the
HTTP clients (trackers, web seeds, ``.torrent`` fetches) call: through the proxy when one is
given, straight otherwise, with TLS on top when asked.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl

import anyio
import anyio.abc
from anyio.streams.tls import TLSStream

from ...errors import ProxyError
from ..netbind import NetBind, connect_socket, connect_tcp
from ..tls import client_context
from .handshake import ProxyHandshake, handshake_for
from .settings import ProxyConfig

__all__ = ["open_connection", "open_tcp"]


async def open_connection(proxy: ProxyConfig, host: str, port: int, *, timeout: float,
                          bind: NetBind | None = None) -> anyio.abc.SocketStream:
    """A TCP tunnel to ``host:port`` through ``proxy``, open within ``timeout`` seconds (the
    connect to the proxy, a name looked up here, and the handshake). Every failure is a
    ``ProxyError`` naming the proxy and saying what failed. The connection to the proxy leaves
    by ``bind``'s interface when one is given."""
    try:
        with anyio.fail_after(timeout):
            target = host if proxy.resolves_names else await _resolved(proxy, host, port)
            try:
                stream = await connect_socket(proxy.host, proxy.port, bind)
            except OSError as exc:
                raise ProxyError(f"cannot connect: {describe(exc)}", proxy.name) from None
            try:
                await run_handshake(stream, handshake_for(proxy, target, port))
            except BaseException:
                await anyio.aclose_forcefully(stream)
                raise
    except TimeoutError:
        raise ProxyError(f"no tunnel to {host}:{port} within {timeout:g} s", proxy.name) from None
    except (OSError, anyio.BrokenResourceError) as exc:
        raise ProxyError(f"connection lost during the handshake: {describe(exc)}", proxy.name) from None
    return stream


async def _resolved(proxy: ProxyConfig, host: str, port: int) -> str:
    """``host`` as an address, looked up here (socks5:// and socks4:// without the name
    extension); an address is kept as it is."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return host
    family = socket.AF_INET if proxy.kind == "socks4" else socket.AF_UNSPEC
    try:
        found = await anyio.getaddrinfo(host, port, family=family, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ProxyError(f"cannot look up {host!r} (the proxy does not resolve names with "
                         f"{proxy.scheme}://): {describe(exc)}", proxy.name) from None
    if not found:
        raise ProxyError(f"{host!r} has no address", proxy.name)
    return str(found[0][4][0])


async def open_tcp(host: str, port: int, *, proxy: ProxyConfig | None, timeout: float,
                   tls: bool = False, ssl_context: ssl.SSLContext | None = None,
                   bind: NetBind | None = None) -> anyio.abc.ByteStream:
    """A connection to ``host:port`` for an HTTP(S) client, through ``proxy`` when it is set
    (``ProxyError`` if that fails), with TLS when ``tls`` (ragged EOFs allowed, as http.client
    does), from a socket bound by ``bind`` when one is given. The caller bounds the whole with its
    own timeout; ``timeout`` bounds the tunnel."""
    if proxy is None:
        return await connect_tcp(host, port, bind, tls=tls, ssl_context=ssl_context)
    context = (ssl_context or client_context()) if tls else None
    stream = await open_connection(proxy, host, port, timeout=timeout, bind=bind)
    if context is None:
        return stream
    try:
        return await TLSStream.wrap(stream, hostname=host, ssl_context=context, standard_compatible=False)
    except BaseException:
        await anyio.aclose_forcefully(stream)
        raise


async def run_handshake(stream: anyio.abc.ByteStream, handshake: ProxyHandshake) -> None:
    """Drive the sans-I/O ``handshake`` over ``stream`` until it is established (what it raises,
    a ``ProxyError`` naming the proxy, goes to the caller; the caller bounds the time)."""
    while not handshake.established:
        out = handshake.data_to_send()
        if out:
            await stream.send(out)
        try:
            data = await stream.receive(handshake.next_read_size())
        except anyio.EndOfStream:
            data = b""
        handshake.receive_data(data)


def describe(exc: BaseException) -> str:
    """What went wrong with a connection to the proxy, in a few words."""
    cause = exc.__cause__
    if isinstance(cause, OSError) and str(exc) == "All connection attempts failed":
        exc = cause
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return text or type(exc).__name__
