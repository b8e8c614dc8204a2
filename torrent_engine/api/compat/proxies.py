"""The proxy in the names the two dialects give it: qBittorrent's ``proxy_*`` preferences
(answered as qbittorrent-nox 4.5 answers them: ``proxy_type`` a number, 3 and 4 the types with a
username and password; 4.6's "None"/"HTTP"/"SOCKS5"/"SOCKS4" and its ``proxy_misc`` are taken
too) and Transmission 4.1's ``proxy_url``. Translation only: the setting is the job service's
``proxy_url`` (with ``proxy_peer_connections``, ``proxy_torrents_only``).
"""

from __future__ import annotations

from collections.abc import Mapping

from ...errors import ConfigError
from ...jobs import InvalidJobRequest
from ...jobs.tuning.settings import ServiceSettings, SettingChanges
from ...jsonvalue import JSON, JSONValue
from ...net.proxy.settings import ProxyConfig, ProxyKind, parse_proxy_url
from ..access import shown_proxy_url

QBT_FIELDS = frozenset({"proxy_type", "proxy_ip", "proxy_port", "proxy_auth_enabled", "proxy_username",
                        "proxy_password", "proxy_hostname_lookup", "proxy_peer_connections",
                        "proxy_torrents_only", "proxy_bittorrent", "proxy_misc"})  # (the last two: 4.6)
TR_FIELDS = frozenset({"proxy_url"})

# qBittorrent 4.6's proxy_type -> our kind (None: no proxy)
_QBT_TYPES: dict[str, ProxyKind | None] = {"None": None, "HTTP": "http", "SOCKS5": "socks5",
                                           "SOCKS4": "socks4"}
# qBittorrent 4.5's numbers -> (kind, with a username and password)
_QBT_NUMBERS: dict[int, tuple[ProxyKind | None, bool]] = {
    -1: (None, False), 0: (None, False), 1: ("http", False), 2: ("socks5", False), 3: ("http", True),
    4: ("socks5", True), 5: ("socks4", False)}
# our kind, with a username -> 4.5's number
_QBT_ANSWERS: dict[tuple[ProxyKind, bool], int] = {
    ("http", False): 1, ("socks5", False): 2, ("http", True): 3, ("socks5", True): 4, ("socks4", False): 5,
    ("socks4", True): 5}


def _proxy(s: ServiceSettings) -> ProxyConfig | None:
    return parse_proxy_url(s.proxy_url, "proxy_url") if s.proxy_url else None


def qbt_preferences(s: ServiceSettings) -> dict[str, JSON]:
    """The proxy fields of ``app/preferences`` (qBittorrent's defaults where none is set)."""
    proxy = _proxy(s)
    auth = bool(proxy is not None and (proxy.username or proxy.password))
    return {
        "proxy_type": _QBT_ANSWERS[proxy.kind, auth] if proxy is not None else 0,
        "proxy_ip": proxy.host if proxy is not None else "0.0.0.0",
        "proxy_port": proxy.port if proxy is not None else 8080,
        "proxy_auth_enabled": auth and proxy is not None and proxy.kind != "socks4",
        "proxy_username": proxy.username if proxy is not None else "",
        "proxy_password": proxy.password if proxy is not None else "",
        "proxy_hostname_lookup": proxy.remote_dns if proxy is not None else True,
        "proxy_peer_connections": s.proxy_peer_connections,
        "proxy_torrents_only": s.proxy_torrents_only,  # (4.6: proxy_misc, the opposite)
    }


def qbt_changes(prefs: Mapping[str, JSONValue], s: ServiceSettings) -> SettingChanges:
    """Our settings' changes for the proxy fields of ``app/setPreferences`` ``prefs``: the ones
    not given keep their current values."""
    changes: SettingChanges = {}
    for name in ("proxy_peer_connections", "proxy_torrents_only"):
        if name in prefs:
            changes[name] = _bool(prefs[name], name)
    if "proxy_misc" in prefs:
        changes["proxy_torrents_only"] = not _bool(prefs["proxy_misc"], "proxy_misc")
    address = {"proxy_type", "proxy_ip", "proxy_port", "proxy_auth_enabled", "proxy_username",
               "proxy_password", "proxy_hostname_lookup"}
    if any(name in prefs for name in address):
        current = qbt_preferences(s)
        given = prefs.get("proxy_type", current["proxy_type"])
        kind, auth = _qbt_type(given)
        if isinstance(given, str) and not given.lstrip("-").isdigit():  # (4.6: a name, and the switch)
            auth = _bool(prefs.get("proxy_auth_enabled", current["proxy_auth_enabled"]), "proxy_auth_enabled")
        if kind is None:
            changes["proxy_url"] = ""
        else:
            given_or_current: dict[str, object] = {**current, **prefs}
            changes["proxy_url"] = _qbt_url(kind, auth, given_or_current)
    if prefs.get("proxy_bittorrent") is False and changes.get("proxy_url", s.proxy_url):
        raise InvalidJobRequest("the proxy always carries the torrents' traffic: it cannot be "
                                "set for the rest alone", "proxy_bittorrent")
    return changes


def _qbt_type(value: object) -> tuple[ProxyKind | None, bool]:
    if isinstance(value, int) and not isinstance(value, bool) and value in _QBT_NUMBERS:
        return _QBT_NUMBERS[value]
    if isinstance(value, str) and value in _QBT_TYPES:
        return _QBT_TYPES[value], False
    if isinstance(value, str) and value.lstrip("-").isdigit() and int(value) in _QBT_NUMBERS:
        return _QBT_NUMBERS[int(value)]
    raise InvalidJobRequest("must be None, HTTP, SOCKS5 or SOCKS4 (or 4.5's -1, 0 to 5)", "proxy_type")


def _qbt_url(kind: ProxyKind, auth: bool, values: Mapping[str, object]) -> str:
    lookup = _bool(values["proxy_hostname_lookup"], "proxy_hostname_lookup")
    ip, username, password = (_text(values, n) for n in ("proxy_ip", "proxy_username", "proxy_password"))
    port = values["proxy_port"]
    if isinstance(port, str) and port.isdigit():
        port = int(port)
    if isinstance(port, bool) or not isinstance(port, int):
        raise InvalidJobRequest(f"{port!r} is not a port number", "proxy_port")
    try:
        proxy = ProxyConfig(kind, ip, port, username=username if auth else "",
                            password=password if auth and kind != "socks4" else "",
                            remote_dns=lookup or kind == "http")
    except ConfigError as exc:
        name = {"proxy.host": "proxy_ip", "proxy.port": "proxy_port", "proxy.username": "proxy_username",
                "proxy.password": "proxy_password"}.get(exc.field, "proxy_type")
        raise InvalidJobRequest(exc.reason, name) from None
    return proxy.url()


def tr_session(s: ServiceSettings) -> dict[str, JSON]:
    """The proxy field of ``session-get`` (Transmission 4.1's ``proxy_url``: "" for none)."""
    return {"proxy_url": shown_proxy_url(s.proxy_url)}


def tr_changes(arguments: Mapping[str, JSONValue]) -> SettingChanges:
    """Our settings' changes for ``session-set``'s ``proxy_url`` (null or "" for none)."""
    if "proxy_url" not in arguments:
        return {}
    value = arguments["proxy_url"]
    return {"proxy_url": "" if value is None else value}


def _text(values: Mapping[str, object], name: str) -> str:
    value = values[name]
    if not isinstance(value, str):
        raise InvalidJobRequest("must be a string", name)
    return value


def _bool(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidJobRequest("must be true or false", name)
    return value
