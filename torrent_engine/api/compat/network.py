"""The network settings in the names and units the two dialects give them: the IP filter
(qBittorrent's ``ip_filter_*`` and ``banned_IPs``, Transmission's ``blocklist-*``) and the
alternative rate limits with their schedule (qBittorrent's ``alt_*_limit`` in bytes/s and
``schedule*``/``scheduler_days``, Transmission's ``alt-speed-*`` in kB/s, minutes and a days mask),
and the connection limits (qBittorrent's ``max_connec*``/``max_uploads*``, -1 for none;
Transmission's ``peer-limit-*``, which has no "none": shown as ``TR_NO_LIMIT``).
Translation only: the settings are the job service's (jobs/tuning/settings.py, jobs/tuning/blocklist.py,
jobs/tuning/altspeed.py).
"""

from __future__ import annotations

from collections.abc import Mapping

from ...config import MAX_RATE_LIMIT
from ...formats.endpoint import EndpointError, split_host_port
from ...jobs import InvalidJobRequest
from ...jobs.tuning.altspeed import EVERY_DAY, MINUTES_A_DAY, QBT_DAYS
from ...jobs.tuning.blocklist import check_addresses, check_filter_url
from ...jobs.tuning.peerlimits import check_peer_limit
from ...jobs.tuning.settings import ServiceSettings, SettingChanges
from ...jobs.validate import check_limit as rate_limit_in
from ...jsonvalue import JSON, JSONValue
from ...policy.choker import SEEDING_CHOKERS

QBT_LIMITS = {"max_connec": "max_connections", "max_connec_per_torrent": "max_connections_per_torrent",
              "max_uploads": "max_uploads", "max_uploads_per_torrent": "max_uploads_per_torrent",
              "connection_speed": "connection_speed"}
TR_LIMITS = {"peer-limit-global": "max_connections", "peer-limit-per-torrent": "max_connections_per_torrent"}
QBT_FIELDS = frozenset({"ip_filter_enabled", "ip_filter_path", "ip_filter_trackers", "banned_IPs",
                        "alt_dl_limit", "alt_up_limit", "scheduler_enabled", "schedule_from_hour",
                        "schedule_from_min", "schedule_to_hour", "schedule_to_min", "scheduler_days",
                        "block_peers_on_privileged_ports", "upload_choking_algorithm",
                        "enable_multi_connections_from_same_ip", *QBT_LIMITS})
TR_FIELDS = frozenset({"blocklist-enabled", "blocklist-url", "alt-speed-enabled", "alt-speed-down",
                       "alt-speed-up", "alt-speed-time-enabled", "alt-speed-time-begin", "alt-speed-time-end",
                       "alt-speed-time-day", *TR_LIMITS})
KILO = 1000  # Transmission 4's kB/s
TR_NO_LIMIT = 65535  # Transmission's peer limits are 16-bit: "none" is the most it can say


def qbt_preferences(s: ServiceSettings) -> dict[str, JSON]:
    """The fields of ``app/preferences``."""
    days = QBT_DAYS.index(s.alt_schedule_days) if s.alt_schedule_days in QBT_DAYS else 0
    return {"ip_filter_enabled": s.ip_filter_enabled, "ip_filter_path": s.ip_filter_path,
            "ip_filter_trackers": s.ip_filter_trackers, "banned_IPs": "\n".join(s.banned_ips),
            "alt_dl_limit": s.alt_download_limit, "alt_up_limit": s.alt_upload_limit,
            "scheduler_enabled": s.alt_schedule_enabled,
            "schedule_from_hour": s.alt_schedule_from // 60, "schedule_from_min": s.alt_schedule_from % 60,
            "schedule_to_hour": s.alt_schedule_to // 60, "schedule_to_min": s.alt_schedule_to % 60,
            "scheduler_days": days, "block_peers_on_privileged_ports": s.block_privileged_ports,
            "upload_choking_algorithm": SEEDING_CHOKERS.index(s.seeding_choker),
            "enable_multi_connections_from_same_ip": s.multiple_connections_per_ip,
            **{theirs: getattr(s, ours) for theirs, ours in QBT_LIMITS.items()}}


def qbt_changes(prefs: Mapping[str, JSONValue], s: ServiceSettings) -> SettingChanges:
    """Our settings' changes for the fields of ``app/setPreferences`` ``prefs``."""
    changes: SettingChanges = {}
    for theirs, ours in (("alt_dl_limit", "alt_download_limit"), ("alt_up_limit", "alt_upload_limit")):
        if theirs in prefs:
            value = prefs[theirs]
            if isinstance(value, int) and value < 0:  # (-1: none, as for dl_limit)
                value = 0
            changes[ours] = rate_limit_in(value, theirs)
    if "scheduler_enabled" in prefs:
        changes["alt_schedule_enabled"] = _bool(prefs["scheduler_enabled"], "scheduler_enabled")
    for end, ours in (("from", "alt_schedule_from"), ("to", "alt_schedule_to")):
        hour_name, minute_name = f"schedule_{end}_hour", f"schedule_{end}_min"
        if hour_name in prefs or minute_name in prefs:
            current = getattr(s, ours)
            hour = _whole(prefs.get(hour_name, current // 60), hour_name, 23)
            minute = _whole(prefs.get(minute_name, current % 60), minute_name, 59)
            changes[ours] = hour * 60 + minute
    if "scheduler_days" in prefs:
        changes["alt_schedule_days"] = QBT_DAYS[_whole(prefs["scheduler_days"], "scheduler_days",
                                                       len(QBT_DAYS) - 1)]
    for theirs, ours in QBT_LIMITS.items():  # (0 or below: none, as qBittorrent takes it; but a
        if theirs in prefs:  # connection_speed of 0 is no outgoing connection, as libtorrent takes it)
            value = prefs[theirs]
            none = isinstance(value, int) and not isinstance(value, bool) \
                and (value < 0 or value == 0 and theirs != "connection_speed")
            changes[ours] = -1 if none else check_peer_limit(value, theirs)
    for name in ("ip_filter_enabled", "ip_filter_trackers"):
        if name in prefs:
            changes[name] = _bool(prefs[name], name)
    if "upload_choking_algorithm" in prefs:  # (0 round-robin, 1 fastest upload, 2 anti-leech)
        name = "upload_choking_algorithm"
        number = _whole(prefs[name], name, len(SEEDING_CHOKERS) - 1)
        changes["seeding_choker"] = SEEDING_CHOKERS[number]
    if "enable_multi_connections_from_same_ip" in prefs:
        name = "enable_multi_connections_from_same_ip"
        changes["multiple_connections_per_ip"] = _bool(prefs[name], name)
    if "block_peers_on_privileged_ports" in prefs:
        changes["block_privileged_ports"] = _bool(prefs["block_peers_on_privileged_ports"],
                                                  "block_peers_on_privileged_ports")
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
        try:
            host, _ = split_host_port(item)
        except EndpointError as exc:
            raise InvalidJobRequest(f"{item[:60]!r} is not an IP:port: {exc}", "peers") from None
        banned.append(host)
    return list(check_addresses(banned, "peers"))


def tr_session(s: ServiceSettings, list_ranges: int) -> dict[str, JSON]:
    """The fields of ``session-get`` (``list_ranges``: the ranges of the lists in force)."""
    return {"blocklist-enabled": s.ip_filter_enabled, "blocklist-url": s.ip_filter_url,
            "blocklist-size": list_ranges,
            "alt-speed-enabled": s.alt_speed_enabled, "alt-speed-down": s.alt_download_limit // KILO,
            "alt-speed-up": s.alt_upload_limit // KILO, "alt-speed-time-enabled": s.alt_schedule_enabled,
            "alt-speed-time-begin": s.alt_schedule_from, "alt-speed-time-end": s.alt_schedule_to,
            "alt-speed-time-day": s.alt_schedule_days,
            **{theirs: tr_peer_limit(getattr(s, ours)) for theirs, ours in TR_LIMITS.items()}}


def tr_peer_limit(value: int) -> int:
    """A connection limit as Transmission says it (-1, none: ``TR_NO_LIMIT``)."""
    return value if value > 0 else TR_NO_LIMIT


def tr_changes(arguments: Mapping[str, JSONValue]) -> SettingChanges:
    """Our settings' changes for the fields of ``session-set`` ``arguments``."""
    changes: SettingChanges = {}
    if "blocklist-enabled" in arguments:
        changes["ip_filter_enabled"] = _bool(arguments["blocklist-enabled"], "blocklist-enabled")
    if "blocklist-url" in arguments:
        changes["ip_filter_url"] = check_filter_url(arguments["blocklist-url"], "blocklist-url")
    for theirs, ours in (("alt-speed-enabled", "alt_speed_enabled"),
                         ("alt-speed-time-enabled", "alt_schedule_enabled")):
        if theirs in arguments:
            changes[ours] = _bool(arguments[theirs], theirs)
    for theirs, ours in (("alt-speed-down", "alt_download_limit"), ("alt-speed-up", "alt_upload_limit")):
        if theirs in arguments:
            changes[ours] = rate_limit_in(_whole(arguments[theirs], theirs, MAX_RATE_LIMIT // KILO) * KILO,
                                          theirs)
    for theirs, ours in (("alt-speed-time-begin", "alt_schedule_from"),
                         ("alt-speed-time-end", "alt_schedule_to")):
        if theirs in arguments:
            changes[ours] = _whole(arguments[theirs], theirs, MINUTES_A_DAY - 1)
    for theirs, ours in TR_LIMITS.items():
        if theirs in arguments:
            value = _whole(arguments[theirs], theirs, TR_NO_LIMIT)
            changes[ours] = check_peer_limit(value, theirs)
    if "alt-speed-time-day" in arguments:
        days = arguments["alt-speed-time-day"]
        changes["alt_schedule_days"] = _whole(days, "alt-speed-time-day", EVERY_DAY)
    return changes


def _bool(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidJobRequest("must be true or false", name)
    return value


def _whole(value: object, name: str, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise InvalidJobRequest(f"must be a whole number from 0 to {maximum}", name)
    return value


def _text(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise InvalidJobRequest("must be a string", name)
    return value
