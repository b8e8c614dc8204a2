"""Which proxy the engine goes through and for what: ``ProxyConfig``, read from a proxy URL
(``socks5://user:pass@127.0.0.1:1080``, Transmission's ``proxy_url``) or built field by field
(qBittorrent's ``proxy_type``/``proxy_ip``/``proxy_port``...). Pure: checked, never dialed here.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote, unquote, urlsplit

from ...errors import ConfigError

__all__ = ["PROXY_KINDS", "ProxyConfig", "ProxyKind", "parse_proxy_url"]

# socks5: RFC 1928 (+ RFC 1929 username/password); socks4: SOCKS4 and its 4a name extension;
# http: an HTTP/1.1 proxy's CONNECT tunnel (RFC 9110 9.3.6) with Basic credentials.
ProxyKind = Literal["socks5", "socks4", "http"]
PROXY_KINDS: tuple[ProxyKind, ...] = ("socks5", "socks4", "http")

# URL scheme: (kind, whether the proxy resolves host names)
_SCHEMES: dict[str, tuple[ProxyKind, bool]] = {
    "socks5": ("socks5", False), "socks5h": ("socks5", True),
    "socks4": ("socks4", False), "socks4a": ("socks4", True),
    "http": ("http", True),  # (CONNECT names the host: the proxy always resolves it)
}
DEFAULT_PORT = 1080  # a URL without a port (curl's default for every proxy kind)


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    """A proxy and what goes through it.

    Through it always: HTTP(S) tracker announces and scrapes, web seeds, ``.torrent`` URL
    fetches, and with SOCKS5 UDP trackers by its UDP relay. ``peer_connections``: outgoing peer
    connections too (over TCP: uTP cannot be proxied, so a proxied peer is dialed over TCP
    alone). ``only``: nothing leaves outside the proxy: no listening for incoming peers, no uTP,
    LSD or port mapping, the DHT by a SOCKS5 proxy's relay (else no DHT and no UDP trackers),
    and host names resolved by the proxy (each refused part is said in the log)."""

    kind: ProxyKind
    host: str
    port: int
    username: str = ""
    password: str = ""
    remote_dns: bool = True  # host names go to the proxy to resolve (socks5h, socks4a, http)
    peer_connections: bool = True
    only: bool = False

    def __post_init__(self) -> None:
        if self.kind not in PROXY_KINDS:
            raise ConfigError(f"{self.kind!r} is not one of {', '.join(PROXY_KINDS)}", "proxy.kind")
        if not isinstance(self.host, str) or not self.host or any(c in self.host for c in "/@ \r\n\x00"):
            raise ConfigError(f"{self.host!r} is not a host name or address", "proxy.host")
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 1 <= self.port <= 65535:
            raise ConfigError(f"{self.port!r} is not a port number", "proxy.port")
        for name in ("username", "password"):
            value = getattr(self, name)
            if not isinstance(value, str) or "\x00" in value:
                raise ConfigError(f"{value!r} is not text", f"proxy.{name}")
            if self.kind == "socks5" and len(value.encode()) > 255:  # RFC 1929: one length byte
                raise ConfigError("is over 255 bytes (SOCKS5 sends it with one length byte)",
                                  f"proxy.{name}")
        if self.kind == "socks4" and self.password:
            raise ConfigError("SOCKS4 has no password (only a user id)", "proxy.password")
        if self.kind == "socks4" and ":" in self.host and _is_ip(self.host):
            raise ConfigError("SOCKS4 has no IPv6", "proxy.host")
        for name in ("remote_dns", "peer_connections", "only"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError("must be true or false", f"proxy.{name}")

    @property
    def scheme(self) -> str:
        """The URL scheme that says this kind (and who resolves names)."""
        if self.kind == "socks5":
            return "socks5h" if self.remote_dns else "socks5"
        if self.kind == "socks4":
            return "socks4a" if self.remote_dns else "socks4"
        return "http"

    def url(self, *, with_password: bool = True) -> str:
        """The proxy as a URL (Transmission's ``proxy_url``); ``with_password=False`` for logs
        and errors."""
        credentials = ""
        if self.username or self.password:
            credentials = quote(self.username, safe="")
            if self.password:
                credentials += ":" + (quote(self.password, safe="") if with_password else "***")
            credentials += "@"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{credentials}{host}:{self.port}"

    @property
    def name(self) -> str:
        """How errors and logs name the proxy (no password)."""
        return self.url(with_password=False)

    @property
    def resolves_names(self) -> bool:
        """Whether a host name is sent to the proxy (else resolved here first). Under ``only`` a
        SOCKS5 proxy always gets names: a lookup here would leave outside it."""
        return self.remote_dns or (self.only and self.kind == "socks5")


def parse_proxy_url(text: object, field: str = "proxy_url", *, peer_connections: bool = True,
                    only: bool = False) -> ProxyConfig:
    """Read ``socks5://``, ``socks5h://``, ``socks4://``, ``socks4a://`` or ``http://`` URLs
    (``user:password@`` optional, percent-encoded; port 1080 when none is written). A bad one is
    a ``ConfigError`` naming ``field`` and what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError("must be a proxy URL such as socks5://127.0.0.1:1080", field)
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"{text!r} is not a proxy URL: {exc}", field) from None
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise ConfigError(f"scheme {scheme!r} is not one of {', '.join(_SCHEMES)}", field)
    kind, remote_dns = _SCHEMES[scheme]
    if not parts.hostname:
        raise ConfigError(f"{text!r} names no proxy host", field)
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(f"{text!r}: a proxy URL is a scheme, host and port only", field)
    try:
        return ProxyConfig(kind=kind, host=parts.hostname, port=port or DEFAULT_PORT,
                           username=unquote(parts.username or ""), password=unquote(parts.password or ""),
                           remote_dns=remote_dns, peer_connections=peer_connections, only=only)
    except ConfigError as exc:
        raise ConfigError(f"{exc.field.removeprefix('proxy.')}: {exc.reason}", field) from None


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
