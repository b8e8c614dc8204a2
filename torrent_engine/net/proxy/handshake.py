"""The proxy handshakes as sans-I/O state machines: SOCKS5 (RFC 1928, with RFC 1929
username/password), SOCKS4 and 4a, and HTTP CONNECT with Basic credentials.

Each takes the proxy's bytes in (``receive_data``) and hands the bytes to send out
(``data_to_send``); ``next_read_size`` is the most bytes the shell may read without passing the
end of the proxy's answer, so the tunnel's first bytes stay in the socket's buffer for whoever
reads next. ``established`` once the tunnel is open; a refusal is a ``ProxyError`` saying why.
"""

from __future__ import annotations

import base64
import ipaddress
import struct
from typing import Protocol

from ...errors import ProxyError
from .settings import ProxyConfig

__all__ = ["HttpConnect", "ProxyHandshake", "Socks4Connect", "Socks5Connect", "handshake_for"]

MAX_HTTP_HEAD = 16 * 1024  # a CONNECT answer's head; a proxy sending more is not one

# RFC 1928 section 6: the reply field
SOCKS5_REPLIES = {
    1: "general SOCKS server failure",
    2: "connection not allowed by ruleset",
    3: "network unreachable",
    4: "host unreachable",
    5: "connection refused",
    6: "TTL expired",
    7: "command not supported",
    8: "address type not supported",
}
SOCKS4_REPLIES = {
    0x5B: "request rejected or failed",
    0x5C: "request rejected: the proxy cannot reach our identd",
    0x5D: "request rejected: identd reports a different user id",
}


class ProxyHandshake(Protocol):
    """What the shell drives (see the module's docstring)."""

    @property
    def established(self) -> bool:
        """Whether the tunnel is open."""

    def data_to_send(self) -> bytes:
        """The bytes to send to the proxy now (b"" when none)."""

    def next_read_size(self) -> int:
        """How many bytes to read at most without reading past the proxy's answer."""

    def receive_data(self, data: bytes) -> None:
        """Take bytes the proxy sent; ``ProxyError`` on a refusal or a malformed answer."""


def handshake_for(proxy: ProxyConfig, host: str, port: int) -> ProxyHandshake:
    """The handshake that opens a tunnel to ``host:port`` (an address, or a name the proxy
    resolves) through ``proxy``."""
    if proxy.kind == "socks5":
        return Socks5Connect(proxy, host, port)
    if proxy.kind == "socks4":
        return Socks4Connect(proxy, host, port)
    return HttpConnect(proxy, host, port)


class _Base:
    def __init__(self, proxy: ProxyConfig) -> None:
        self.proxy = proxy
        self._out = bytearray()
        self._in = bytearray()
        self._done = False

    @property
    def established(self) -> bool:
        return self._done

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def _error(self, reason: str) -> ProxyError:
        return ProxyError(reason, self.proxy.name)


class Socks5Connect(_Base):
    """RFC 1928 CONNECT: method selection, RFC 1929 username/password when we have one and the
    proxy picks it, then the request and its reply. ``command`` 3 asks for a UDP ASSOCIATE
    instead (section 4; ``host:port`` is where our datagrams will come from, zeros when not
    known), and ``bound`` is then the relay's address (BND.ADDR, BND.PORT)."""

    def __init__(self, proxy: ProxyConfig, host: str, port: int, *, command: int = 1) -> None:
        super().__init__(proxy)
        self._command = command
        self._request = bytes([5, command, 0]) + _socks5_address(host, proxy) + struct.pack(">H", port)
        self._bound_kind = 1
        self.bound: tuple[str, int] | None = None
        self._credentials = bool(proxy.username or proxy.password)
        methods = b"\x00\x02" if self._credentials else b"\x00"  # no authentication; username/password
        self._out += b"\x05" + bytes([len(methods)]) + methods
        self._state = "method"
        self._want = 2

    def next_read_size(self) -> int:
        """How many bytes to read at most without reading past the proxy's answer."""
        return self._want - len(self._in)

    def receive_data(self, data: bytes) -> None:
        """Take bytes the proxy sent (b"": it closed); ``ProxyError`` on a refusal."""
        if self._done:
            raise self._error("bytes after the handshake ended")
        if not data:
            raise self._error(f"closed the connection during the SOCKS5 handshake ({self._state})")
        self._in += data
        while not self._done and len(self._in) >= self._want:
            message, rest = bytes(self._in[: self._want]), self._in[self._want:]
            self._in = bytearray(rest)
            self._step(message)

    def _step(self, message: bytes) -> None:
        if self._state == "method":
            if message[0] != 5:
                raise self._error(f"not a SOCKS5 proxy (answered version {message[0]})")
            if message[1] == 0x00:
                self._send_request()
            elif message[1] == 0x02 and self._credentials:
                user, password = self.proxy.username.encode(), self.proxy.password.encode()
                self._out += b"\x01" + bytes([len(user)]) + user + bytes([len(password)]) + password
                self._state, self._want = "auth", 2
            elif message[1] == 0x02:
                raise self._error("asks for a username and password, and none is set")
            else:
                raise self._error("accepts none of our authentication methods"
                                  + ("" if self._credentials else " (no username is set)"))
        elif self._state == "auth":
            if message[1] != 0:  # RFC 1929: a status other than 0 is a failure
                raise self._error("refused the username and password")
            self._send_request()
        elif self._state == "reply":
            if message[0] != 5:
                raise self._error(f"not a SOCKS5 reply (version {message[0]})")
            if message[1] != 0:
                reason = SOCKS5_REPLIES.get(message[1], f"reply code {message[1]}")
                what = "the UDP association" if self._command == 3 else "the connection"
                raise self._error(f"refused {what}: {reason}")
            kind = self._bound_kind = message[3]
            if kind == 1:
                self._state, self._want = "bound", 4 + 2
            elif kind == 4:
                self._state, self._want = "bound", 16 + 2
            elif kind == 3:
                self._state, self._want = "bound-name", 1
            else:
                raise self._error(f"answered an unknown address type {kind}")
        elif self._state == "bound-name":
            self._state, self._want = "bound", message[0] + 2
        elif self._state == "bound":
            (port,) = struct.unpack(">H", message[-2:])
            raw = message[:-2]
            host = raw.decode("ascii", "replace") if self._bound_kind == 3 else str(ipaddress.ip_address(raw))
            self.bound = (host, port)
            self._done = True

    def _send_request(self) -> None:
        self._out += self._request
        self._state, self._want = "reply", 4


def _socks5_address(host: str, proxy: ProxyConfig) -> bytes:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        name = host.encode("idna")
        if not 0 < len(name) <= 255:
            raise ProxyError(f"host name {host[:60]!r} is too long for SOCKS5", proxy.name) from None
        return b"\x03" + bytes([len(name)]) + name
    return (b"\x01" if address.version == 4 else b"\x04") + address.packed


class Socks4Connect(_Base):
    """SOCKS4 CONNECT (an IPv4 address), or 4a's (a name the proxy resolves); the user id is
    the proxy's username."""

    def __init__(self, proxy: ProxyConfig, host: str, port: int) -> None:
        super().__init__(proxy)
        user = proxy.username.encode()
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            address = None
        if address is not None and address.version == 6:
            raise self._error(f"SOCKS4 cannot reach the IPv6 address {host}")
        if address is not None:
            self._out += struct.pack(">BBH", 4, 1, port) + address.packed + user + b"\x00"
        else:  # SOCKS4a: the address 0.0.0.x, the name after the user id
            self._out += struct.pack(">BBH", 4, 1, port) + b"\x00\x00\x00\x01" + user + b"\x00"
            self._out += host.encode("idna") + b"\x00"

    def next_read_size(self) -> int:
        """How many bytes to read at most without reading past the proxy's answer."""
        return 8 - len(self._in)

    def receive_data(self, data: bytes) -> None:
        """Take bytes the proxy sent (b"": it closed); ``ProxyError`` on a refusal."""
        if not data:
            raise self._error("closed the connection during the SOCKS4 handshake")
        self._in += data
        if len(self._in) < 8:
            return
        if self._in[0] != 0:
            raise self._error(f"not a SOCKS4 reply (version {self._in[0]})")
        if self._in[1] != 0x5A:
            reason = SOCKS4_REPLIES.get(self._in[1], f"reply code {self._in[1]:#x}")
            raise self._error(f"refused the connection: {reason}")
        self._done = True


class HttpConnect(_Base):
    """``CONNECT host:port HTTP/1.1`` (Basic credentials when a username is set); a 2xx answer
    opens the tunnel."""

    def __init__(self, proxy: ProxyConfig, host: str, port: int) -> None:
        super().__init__(proxy)
        if any(c in host for c in "\r\n /@") or not host:
            raise self._error(f"{host[:60]!r} is not a host name or address")
        if not host.isascii():
            host = host.encode("idna").decode("ascii")
        authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        head = f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n"
        if proxy.username or proxy.password:
            token = base64.b64encode(f"{proxy.username}:{proxy.password}".encode()).decode("ascii")
            head += f"Proxy-Authorization: Basic {token}\r\n"
        self._out += (head + "\r\n").encode("ascii")

    def next_read_size(self) -> int:
        """How many bytes to read at most: never past the blank line ending the answer's head."""
        # never past the blank line: at most what the end marker still lacks
        for matched in (3, 2, 1):
            if self._in.endswith(b"\r\n\r\n"[:matched]):
                return 4 - matched
        return 4

    def receive_data(self, data: bytes) -> None:
        """Take bytes the proxy sent (b"": it closed); ``ProxyError`` on a refusal."""
        if not data:
            raise self._error("closed the connection before answering CONNECT")
        self._in += data
        end = self._in.find(b"\r\n\r\n")
        if end < 0:
            if len(self._in) > MAX_HTTP_HEAD:
                raise self._error("answered CONNECT with a head over 16 KiB")
            return
        status_line = bytes(self._in[: self._in.find(b"\r\n")])
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise self._error(f"not an HTTP proxy (answered {status_line[:60]!r})")
        status = int(parts[1])
        reason = parts[2].decode("latin-1", "replace") if len(parts) > 2 else ""
        if status in (401, 407):  # (407 is the standard's; tinyproxy answers bad ones with 401)
            raise self._error(f"refused the username and password ({status})" if self.proxy.username
                              else f"asks for a username and password ({status}), and none is set")
        if not 200 <= status < 300:
            raise self._error(f"refused CONNECT: {status} {reason}".rstrip())
        self._done = True
