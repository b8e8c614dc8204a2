"""The network settings in the names and units the two dialects give them: the IP filter
(qBittorrent's ``ip_filter_*`` and ``banned_IPs``, Transmission's ``blocklist-*``).
Translation only: the settings are the job service's (jobs/settings.py, jobs/blocklist.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any  # Any: the dialects' JSON values, checked here

from ...jobs import InvalidJobRequest
from ...jobs.blocklist import check_addresses, check_filter_url
from ...jobs.settings import ServiceSettings

QBT_FIELDS = frozenset({"ip_filter_enabled", "ip_filter_path", "ip_filter_trackers", "banned_IPs"})
TR_FIELDS = frozenset({"blocklist-enabled", "blocklist-url"})


def qbt_preferences(s: ServiceSettings) -> dict[str, Any]:
    """The fields of ``app/preferences``."""
    return {"ip_filter_enabled": s.ip_filter_enabled, "ip_filter_path": s.ip_filter_path,
            "ip_filter_trackers": s.ip_filter_trackers, "banned_IPs": "\n".join(s.banned_ips)}


def qbt_changes(prefs: Mapping[str, Any]) -> dict[str, Any]:
    """Our settings' changes for the fields of ``app/setPreferences`` ``prefs``."""
    changes: dict[str, Any] = {}
    for name in ("ip_filter_enabled", "ip_filter_trackers"):
        if name in prefs:
            changes[name] = _bool(prefs[name], name)
    if "ip_filter_path" in prefs:
        changes["ip_filter_path"] = _text(prefs["ip_filter_path"], "ip_filter_path")
    if "banned_IPs" in prefs:  # (one address per line, as qBittorrent's own form sends them)
        changes["banned_ips"] = check_addresses(_text(prefs["banned_IPs"], "banned_IPs"), "banned_IPs")
    return changes


def ban_peers(text: str, s: ServiceSettings) -> list[str]:
    """``transfer/banPeers`` ``peers`` (``host:port`` joined by ``|``): the banned addresses
    with the peers' added (``InvalidJobRequest`` naming ``peers`` for one that is no IP:port)."""
    banned = list(s.banned_ips)
    for item in text.split("|"):
        item = item.strip()
        host, sep, port = item.rpartition(":")
        if not sep or not (port.isascii() and port.isdigit()) or not host:
            raise InvalidJobRequest(f"{item[:60]!r} is not an IP:port", "peers")
        banned.append(host.strip("[]"))
    return list(check_addresses(banned, "peers"))


def tr_session(s: ServiceSettings, list_ranges: int) -> dict[str, Any]:
    """The fields of ``session-get`` (``list_ranges``: the ranges of the lists in force)."""
    return {"blocklist-enabled": s.ip_filter_enabled, "blocklist-url": s.ip_filter_url,
            "blocklist-size": list_ranges}


def tr_changes(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """Our settings' changes for the fields of ``session-set`` ``arguments``."""
    changes: dict[str, Any] = {}
    if "blocklist-enabled" in arguments:
        changes["ip_filter_enabled"] = _bool(arguments["blocklist-enabled"], "blocklist-enabled")
    if "blocklist-url" in arguments:
        changes["ip_filter_url"] = check_filter_url(arguments["blocklist-url"], "blocklist-url")
    return changes


def _bool(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidJobRequest("must be true or false", name)
    return value


def _text(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise InvalidJobRequest("must be a string", name)
    return value
