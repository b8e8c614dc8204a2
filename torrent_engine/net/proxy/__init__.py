"""Connecting through a proxy: SOCKS5, SOCKS4/4a and HTTP CONNECT (see docs/proxy.md).

``settings`` says which proxy and for what (pure), ``handshake`` speaks the protocols (sans-I/O),
``dial`` opens tunnels (async: imported where a connection is made, not with the settings).
"""

from .settings import PROXY_KINDS, ProxyConfig, ProxyKind, parse_proxy_url

__all__ = ["PROXY_KINDS", "ProxyConfig", "ProxyKind", "parse_proxy_url"]
