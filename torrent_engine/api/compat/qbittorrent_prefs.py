"""qBittorrent's ``app/preferences`` and ``app/setPreferences``: the service's settings and
config under qBittorrent's names, and a ``setPreferences`` body turned into one settings change."""

from __future__ import annotations

import math
from collections.abc import Mapping

from starlette.requests import Request

from ...jobs import JobService
from ...jobs.disk.incomplete import shown_folder
from ...jobs.exclusions import check_name_patterns
from ...jobs.trackers import check_tiers, flat
from ...jobs.tuning.settings import SettingChanges
from ...jsonvalue import JSON, JSONValue, as_float_text, as_str
from . import network
from .interfaces import QBT_FIELDS as INTERFACE_FIELDS
from .interfaces import qbt_changes as interface_changes
from .interfaces import qbt_preferences as interface_preferences
from .programs import QBT_FIELDS, qbt_changes, qbt_preferences
from .proxies import QBT_FIELDS as PROXY_FIELDS
from .proxies import qbt_changes as proxy_changes
from .proxies import qbt_preferences as proxy_preferences
from .qbittorrent_records import (
    ACTIONS_AT_LIMIT,
    MAX_SESSIONS,
    SESSION_TTL,
    STOP_BY_NAME,
    STOP_NAMES,
    QbtError,
)

QB_PARTIAL_SUFFIX = ".!qB"  # (its incomplete files' suffix: qBittorrent's QB_EXT)

# the preferences that are our settings under another name
_NAMES = {"queueing_enabled": "queueing", "max_active_downloads": "max_active_downloads",
          "max_active_uploads": "max_active_uploads", "max_active_torrents": "max_active_torrents",
          "max_active_checking_torrents": "max_active_checking",
          "dl_limit": "download_limit", "up_limit": "upload_limit",
          "temp_path_enabled": "incomplete_dir_enabled", "temp_path": "incomplete_dir",
          "dht": "dht_enabled", "pex": "pex_enabled", "lsd": "lsd_enabled",
          "export_dir": "torrent_export_dir", "export_dir_fin": "finished_torrent_export_dir",
          "announce_ip": "announce_ip", "stop_tracker_timeout": "stop_tracker_timeout",
          "recheck_completed_torrents": "recheck_on_completion", "add_to_top_of_queue": "add_to_top_of_queue",
          "merge_trackers": "merge_trackers", "ssrf_mitigation": "ssrf_mitigation",
          # (automatic torrent management: jobs/organising/managed.py)
          "auto_tmm_enabled": "auto_managed_adds",
          "torrent_changed_tmm_enabled": "relocate_on_category_change",
          "category_changed_tmm_enabled": "relocate_on_category_path_change",
          "reannounce_when_address_changed": "reannounce_when_address_changed",
          "peer_turnover": "peer_turnover", "peer_turnover_cutoff": "peer_turnover_cutoff",
          "peer_turnover_interval": "peer_turnover_interval",
          "max_concurrent_http_announces": "max_concurrent_http_announces",
          "web_ui_max_auth_fail_count": "login_max_failures", "web_ui_ban_duration": "login_ban_time",
          "torrent_file_size_limit": "torrent_file_size_limit",
          # (the feeds: feeds/reader.py)
          "rss_processing_enabled": "rss_processing_enabled",
          "rss_auto_downloading_enabled": "rss_auto_downloading_enabled",
          "rss_max_articles_per_feed": "rss_max_articles_per_feed", "rss_fetch_delay": "rss_fetch_delay",
          "rss_download_repack_proper_episodes": "rss_download_repack_proper_episodes",
          "limit_lan_peers": "limit_lan_peers",
          # (a mail when a download completes: jobs/tuning/mail.py)
          "mail_notification_enabled": "mail_enabled", "mail_notification_sender": "mail_from",
          "mail_notification_email": "mail_to", "mail_notification_smtp": "mail_server",
          "mail_notification_ssl_enabled": "mail_ssl", "mail_notification_auth_enabled": "mail_auth_enabled",
          "mail_notification_username": "mail_username", "mail_notification_password": "mail_password"}
# qBittorrent's encryption numbers: 0 prefer, 1 require, 2 disable (its "allow")
_ENCRYPTION = ("prefer", "require", "disable")
# qBittorrent's peer connection protocols (bittorrent_protocol): 0 TCP and μTP, 1 TCP, 2 μTP
# (our "tcp_first", both with TCP dialed first, shows as 0, and 0 sent back keeps it)
_PROTOCOLS = ("any", "tcp", "utp")
_PORT_FIELDS = frozenset({"encryption", "bittorrent_protocol", "listen_port", "random_port"})
KIB = 1024
MAX_KIB = 2**31 // KIB - 1  # a slow rate's KiB/s at most (a C int of bytes per second)
MAX_MINUTES = 2**31 - 1  # a time limit's minutes at most: what qBittorrent's preference (an int) holds


def _minutes(value: object, name: str) -> float:
    """A time limit's minutes (-1 or any negative: none); ``QbtError`` 400 beyond ``MAX_MINUTES``
    (the preferences would show back an integer no typed client holds)."""
    minutes = as_float_text(value, name)
    if minutes > MAX_MINUTES:
        raise QbtError(400, f"{name}: at most {MAX_MINUTES} minutes (-1: no limit)")
    return minutes


def _network_changes(prefs: Mapping[str, JSONValue], current: Mapping[str, JSON]) -> SettingChanges:
    """The encryption policy, the protocols and the port: ``listen_port`` the port (0: a free one,
    chosen now), ``random_port`` a new free one chosen at each start (qBittorrent's "use a
    different port on each start"); the port shown sent back as it is changes nothing."""
    changes: SettingChanges = {}
    for theirs, ours, names, meaning in (
            ("encryption", "encryption", _ENCRYPTION, "0 (prefer), 1 (require) or 2 (disable)"),
            ("bittorrent_protocol", "transport", _PROTOCOLS, "0 (TCP and μTP), 1 (TCP) or 2 (μTP)")):
        if theirs in prefs:  # (qBittorrent's number of one of our names)
            number = prefs[theirs]
            if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number < len(names):
                raise QbtError(400, f"{theirs}: must be {meaning}")
            if number != current[theirs]:  # (the value shown sent back changes nothing)
                changes[ours] = names[number]
    if "random_port" in prefs:
        changes["random_port"] = prefs["random_port"]
    if prefs.get("listen_port", current["listen_port"]) != current["listen_port"]:
        changes["listen_port"] = prefs["listen_port"]
    return changes


def preferences(service: JobService) -> dict[str, JSON]:
    """``app/preferences``: the fields tools read, from the service's settings and config."""
    s = service.get_settings()
    config = service.config
    action = {act: number for number, act in ACTIONS_AT_LIMIT.items()}
    encryption = _ENCRYPTION.index(s.encryption)
    return {
        "save_path": str(service.download_root), "temp_path_enabled": s.incomplete_dir_enabled,
        "temp_path": shown_folder(service.download_root, s),
        # (where copies of new torrents' and finished downloads' .torrent files go: "" none)
        "export_dir": s.torrent_export_dir, "export_dir_fin": s.finished_torrent_export_dir,
        "auto_tmm_enabled": s.auto_managed_adds, "torrent_content_layout": "Original",
        "create_subfolder_enabled": True,
        "start_paused_enabled": s.add_paused, "add_stopped_enabled": s.add_paused,  # (5.0: the second)
        "add_to_top_of_queue": s.add_to_top_of_queue, "preallocate_all": False,
        "incomplete_files_ext": bool(s.partial_file_suffix), "max_ratio_enabled": s.ratio_limit >= 0,
        "max_ratio": s.ratio_limit if s.ratio_limit >= 0 else -1,
        "max_seeding_time_enabled": s.seeding_time_limit >= 0,
        "max_seeding_time": int(s.seeding_time_limit / 60) if s.seeding_time_limit >= 0 else -1,
        "max_inactive_seeding_time_enabled": s.idle_seeding_limit >= 0,
        "max_inactive_seeding_time": int(s.idle_seeding_limit / 60) if s.idle_seeding_limit >= 0 else -1,
        "max_ratio_act": action[s.share_limit_action], "queueing_enabled": s.queueing,
        "share_limits_mode": "MatchAny",  # (2.15.3: either limit reached is enough, the one mode here)
        "max_active_downloads": s.max_active_downloads, "max_active_uploads": s.max_active_uploads,
        "max_active_torrents": s.max_active_torrents,
        # (slow jobs are not counted: below both rates, KiB/s, for the timer's seconds)
        "dont_count_slow_torrents": s.dont_count_slow_torrents,
        "slow_torrent_dl_rate_threshold": s.slow_torrent_download_rate // KIB,
        "slow_torrent_ul_rate_threshold": s.slow_torrent_upload_rate // KIB,
        "slow_torrent_inactive_timer": int(s.slow_torrent_inactive_time),
        "max_active_checking_torrents": s.max_active_checking,
        "dl_limit": s.download_limit, "up_limit": s.upload_limit,
        "dht": s.dht_enabled, "pex": s.pex_enabled, "lsd": s.lsd_enabled,
        "encryption": encryption, "anonymous_mode": False,
        # (the protocols of new connections)
        "bittorrent_protocol": 0 if s.transport == "tcp_first" else _PROTOCOLS.index(s.transport),
        # (the trackers added to new torrents, one a line: each its own tier here)
        "add_trackers_enabled": s.default_trackers_enabled,
        "add_trackers": "\n".join(flat(s.default_trackers)),
        # (when a new torrent stops by itself, unless its add says)
        "torrent_stop_condition": STOP_NAMES[s.stop_condition],
        # (the file names new torrents do not download, one pattern a line)
        "excluded_file_names_enabled": s.excluded_file_names_enabled,
        "excluded_file_names": "\n".join(s.excluded_file_names),
        # (every tier announced to, each to its first tracker that answers: the Config's word)
        "announce_to_all_tiers": config.announce_to_all_tiers, "announce_to_all_trackers": False,
        "announce_ip": s.announce_ip,  # (the address trackers are told to hand out: "" the one they see)
        # (seconds a stop gives the trackers' stopped announces, 0: none sent; a part of a second
        # shown as a whole one, so that 0 is shown only when it is 0)
        "stop_tracker_timeout": math.ceil(s.stop_tracker_timeout),
        # (minutes between saves of a running torrent's resume data, 0: none but at a stop, a pause,
        # a completion)
        "save_resume_data_interval": math.ceil(s.resume_save_interval / 60),
        # (a download that completes is checked again from its files first)
        "recheck_completed_torrents": s.recheck_on_completion,
        # (a torrent added again gives the one there the trackers it lacks, unless private)
        "merge_trackers": s.merge_trackers,
        # (an HTTPS tracker's certificate is always verified: the system's CAs, its host name)
        "validate_https_tracker_certificate": True,
        # (what a tracker's or web seed's URL may make the daemon ask of its host and network)
        "ssrf_mitigation": s.ssrf_mitigation,
        # (every torrent announces at once when our external address changes)
        "reannounce_when_address_changed": s.reannounce_when_address_changed,
        # (a torrent at its connection limit drops its worst peers now and then to try others)
        "peer_turnover": s.peer_turnover, "peer_turnover_cutoff": s.peer_turnover_cutoff,
        "peer_turnover_interval": math.ceil(s.peer_turnover_interval),
        # (HTTP(S) announces in flight at once over every torrent)
        "max_concurrent_http_announces": s.max_concurrent_http_announces,
        # (the port listened on, kept across starts unless random_port: a new one at each start)
        "listen_port": service.stats().listen_port or s.listen_port, "random_port": s.random_port,
        "upnp": config.port_mapping, "web_ui_username": "",
        # (the SID cookies: at most this many, each valid for this many idle seconds; 2.16.0's field)
        "web_ui_sessions_count_limit": MAX_SESSIONS, "web_ui_session_timeout": int(SESSION_TTL),
        # (an address with this many failed logins is refused for the seconds of the ban: any door)
        "web_ui_max_auth_fail_count": s.login_max_failures, "web_ui_ban_duration": int(s.login_ban_time),
        "bypass_local_auth": False, "locale": "en",
        # (a managed torrent whose category, or its category's save path, changes: moved, else
        # managed by hand from then on; the default save path, the download root, never changes)
        "torrent_changed_tmm_enabled": s.relocate_on_category_change,
        "category_changed_tmm_enabled": s.relocate_on_category_path_change,
        "save_path_changed_tmm_enabled": False,
        "torrent_file_size_limit": s.torrent_file_size_limit,  # (bytes, as qBittorrent's)
        # (the feeds: read every so many minutes, the smart filter's patterns one a line, the
        # seconds between two fetches from one host)
        "rss_processing_enabled": s.rss_processing_enabled, "rss_refresh_interval": math.ceil(
            s.rss_refresh_interval / 60), "rss_max_articles_per_feed": s.rss_max_articles_per_feed,
        "rss_fetch_delay": s.rss_fetch_delay,
        "rss_auto_downloading_enabled": s.rss_auto_downloading_enabled,
        "rss_download_repack_proper_episodes": s.rss_download_repack_proper_episodes,
        "rss_smart_episode_filters": "\n".join(s.rss_smart_episode_filters),
        # (the global limits apply to peers on the local network too; to μTP as to TCP; they
        # count the payload, not the protocol's overhead)
        "limit_lan_peers": s.limit_lan_peers, "limit_utp_rate": True, "limit_tcp_overhead": False,
        # (a mail when a download completes, through this SMTP server: "host[:port]")
        "mail_notification_enabled": s.mail_enabled, "mail_notification_sender": s.mail_from,
        "mail_notification_email": s.mail_to, "mail_notification_smtp": s.mail_server,
        "mail_notification_ssl_enabled": s.mail_ssl, "mail_notification_auth_enabled": s.mail_auth_enabled,
        "mail_notification_username": s.mail_username, "mail_notification_password": s.mail_password,
        **qbt_preferences(s), **proxy_preferences(s), **network.qbt_preferences(s),
        **interface_preferences(s), **_FIXED, "file_pool_size": config.max_open_files,
    }


# whether peers' countries are looked up (never: no GeoIP database; ``sync/torrentPeers``'
# ``show_flags`` says the same)
RESOLVES_PEER_COUNTRIES = False

# What this daemon always does, or never has, said in qBittorrent's words (shown, a change is a
# 400 rather than ignored): no alternative WebUI, no subnet that skips the login, no UPnP for
# the API's port, no custom headers, no reverse proxy trusted for the client's address, no dynamic
# DNS, no embedded tracker, no peer countries; frames refused (X-Frame-Options DENY),
# cross-site requests refused, the Host header checked against the allowed names, the SID cookie
# Secure over HTTPS; outgoing connections from any port; the web UI refreshed every 1.5 s.
_FIXED: dict[str, JSON] = {
    "alternative_webui_enabled": False, "alternative_webui_path": "",
    "bypass_auth_subnet_whitelist_enabled": False, "bypass_auth_subnet_whitelist": "",
    "web_ui_upnp": False, "web_ui_use_custom_http_headers_enabled": False, "web_ui_custom_http_headers": "",
    "web_ui_reverse_proxy_enabled": False, "web_ui_reverse_proxies_list": "", "dyndns_enabled": False,
    "enable_embedded_tracker": False, "resolve_peer_countries": RESOLVES_PEER_COUNTRIES,
    "web_ui_clickjacking_protection_enabled": True, "web_ui_csrf_protection_enabled": True,
    "web_ui_host_header_validation_enabled": True, "web_ui_secure_cookie_enabled": True,
    "outgoing_ports_min": 0, "outgoing_ports_max": 0, "refresh_interval": 1500,
}


def served_preferences(request: Request, domains: str) -> dict[str, JSON]:
    """What the API's server is: the port the request came to and whether over HTTPS, the host
    names it answers to (``domains``, ";"-separated: a request naming another host is refused)
    — qBittorrent's ``web_ui_port``, ``use_https``, ``web_ui_domain_list``."""
    server = request.scope.get("server")
    return {"web_ui_port": int(server[1]) if server and server[1] else 0,
            "use_https": request.url.scheme == "https", "web_ui_domain_list": domains}


def preference_changes(prefs: Mapping[str, JSONValue], service: JobService,
                       served: Mapping[str, JSON] | None = None) -> SettingChanges:
    """The settings' changes ``app/setPreferences`` asks for: the share limits and their action,
    the queue and the rate limits, the programs, the proxy, the IP filter, the alternative
    limits, the interface, the port, DHT, PEX, LSD, encryption and the protocols; another known field may only
    be sent with its current value (400 otherwise: the daemon cannot change it from here), the
    server's (``served``) too; unknown fields are ignored."""
    current = {**preferences(service), **(served or {})}
    settings = service.get_settings()
    changes: SettingChanges = {}
    ratio_on = bool(prefs.get("max_ratio_enabled", current["max_ratio_enabled"]))
    if "max_ratio_enabled" in prefs or "max_ratio" in prefs:
        ratio = as_float_text(prefs.get("max_ratio", current["max_ratio"]), "max_ratio")
        changes["ratio_limit"] = ratio if ratio_on and ratio >= 0 else -1
    time_on = bool(prefs.get("max_seeding_time_enabled", current["max_seeding_time_enabled"]))
    if "max_seeding_time_enabled" in prefs or "max_seeding_time" in prefs:
        minutes = _minutes(prefs.get("max_seeding_time", current["max_seeding_time"]), "max_seeding_time")
        changes["seeding_time_limit"] = minutes * 60 if time_on and minutes >= 0 else -1
    idle_on, idle = "max_inactive_seeding_time_enabled", "max_inactive_seeding_time"
    if idle_on in prefs or idle in prefs:
        minutes = _minutes(prefs.get(idle, current[idle]), idle)
        on = bool(prefs.get(idle_on, current[idle_on]))
        changes["idle_seeding_limit"] = minutes * 60 if on and minutes >= 0 else -1
    if "max_ratio_act" in prefs:
        act = prefs["max_ratio_act"]
        action = None
        if isinstance(act, (int, float)) and act == int(act):  # (true is 1 and 1.0 is 1, as a key)
            action = ACTIONS_AT_LIMIT.get(int(act))
        if action is None:
            raise QbtError(400, "max_ratio_act: must be 0 (pause), 1 (remove), 2 (super seeding) "
                                "or 3 (remove with files)")
        changes["share_limit_action"] = action.value
    for theirs, ours in _NAMES.items():
        if theirs in prefs:
            value = prefs[theirs]
            if ours.endswith("_limit") and isinstance(value, int) and value < 0:
                value = 0
            changes[ours] = value
    changes.update(qbt_changes(prefs))  # (programs run on events, watched folders)
    changes.update(proxy_changes(prefs, settings))
    changes.update(network.qbt_changes(prefs, settings))  # (IP filter, alternative limits)
    changes.update(interface_changes(prefs, settings))
    changes.update(_network_changes(prefs, current))
    if "add_trackers_enabled" in prefs:
        changes["default_trackers_enabled"] = bool(prefs["add_trackers_enabled"])
    if "add_trackers" in prefs:  # (one URL a line, blank lines passed over: a tier each, all announced to)
        lines = as_str(prefs["add_trackers"], "add_trackers").replace("\r\n", "\n").split("\n")
        changes["default_trackers"] = check_tiers([[line] for line in lines if line.strip()], "add_trackers")
    if "torrent_stop_condition" in prefs:
        asked = prefs["torrent_stop_condition"]  # (qBittorrent's name, in any case)
        stop = STOP_BY_NAME.get(asked.lower()) if isinstance(asked, str) else None
        if stop is None:
            raise QbtError(400, f"torrent_stop_condition: must be one of {', '.join(STOP_NAMES.values())}")
        changes["stop_condition"] = stop
    for name in ("start_paused_enabled", "add_stopped_enabled"):  # (new torrents added paused)
        if name in prefs:
            changes["add_paused"] = bool(prefs[name])
    if "dont_count_slow_torrents" in prefs:
        changes["dont_count_slow_torrents"] = bool(prefs["dont_count_slow_torrents"])
    for theirs, ours in (("slow_torrent_dl_rate_threshold", "slow_torrent_download_rate"),
                         ("slow_torrent_ul_rate_threshold", "slow_torrent_upload_rate")):
        if theirs in prefs:  # (KiB/s)
            rate = prefs[theirs]
            if isinstance(rate, bool) or not isinstance(rate, int) or not 0 <= rate <= MAX_KIB:
                raise QbtError(400, f"{theirs}: must be a whole number of KiB/s from 0 to {MAX_KIB}")
            changes[ours] = rate * KIB
    if "slow_torrent_inactive_timer" in prefs:
        changes["slow_torrent_inactive_time"] = prefs["slow_torrent_inactive_timer"]  # (seconds, checked)
    if "save_resume_data_interval" in prefs:  # (minutes)
        minutes = as_float_text(prefs["save_resume_data_interval"], "save_resume_data_interval")
        if not 0 <= minutes <= MAX_MINUTES:
            raise QbtError(400, f"save_resume_data_interval: must be a number of minutes from 0 (none "
                                f"but at a stop) to {MAX_MINUTES}")
        changes["resume_save_interval"] = minutes * 60
    if "excluded_file_names_enabled" in prefs:
        changes["excluded_file_names_enabled"] = bool(prefs["excluded_file_names_enabled"])
    if "incomplete_files_ext" in prefs:  # (the suffix a client of the other dialect chose stays)
        append = prefs["incomplete_files_ext"]
        if not isinstance(append, bool):
            raise QbtError(400, "incomplete_files_ext: must be true or false")
        changes["partial_file_suffix"] = (settings.partial_file_suffix or QB_PARTIAL_SUFFIX) if append else ""
    if "rss_refresh_interval" in prefs:  # (minutes)
        minutes = as_float_text(prefs["rss_refresh_interval"], "rss_refresh_interval")
        if not 1 <= minutes <= MAX_MINUTES:
            raise QbtError(400, f"rss_refresh_interval: must be a number of minutes from 1 to {MAX_MINUTES}")
        changes["rss_refresh_interval"] = minutes * 60
    if "rss_smart_episode_filters" in prefs:  # (one regular expression a line, as qBittorrent's)
        changes["rss_smart_episode_filters"] = as_str(prefs["rss_smart_episode_filters"],
                                                      "rss_smart_episode_filters")
    if "excluded_file_names" in prefs:  # (one pattern a line, blank lines passed over)
        lines = as_str(prefs["excluded_file_names"], "excluded_file_names").replace("\r\n", "\n").split("\n")
        changes["excluded_file_names"] = check_name_patterns([line for line in lines if line.strip()],
                                                             "excluded_file_names")
    handled = {"max_ratio_enabled", "max_ratio", "max_seeding_time_enabled", "max_seeding_time",
               "dont_count_slow_torrents", "slow_torrent_dl_rate_threshold", "slow_torrent_ul_rate_threshold",
               "start_paused_enabled", "add_stopped_enabled",
               "slow_torrent_inactive_timer", "save_resume_data_interval",
               "add_trackers_enabled", "add_trackers", "excluded_file_names_enabled", "excluded_file_names",
               "incomplete_files_ext",
               "torrent_stop_condition", "rss_refresh_interval", "rss_smart_episode_filters",
               "max_inactive_seeding_time_enabled", "max_inactive_seeding_time", "max_ratio_act",
               *_PORT_FIELDS, *_NAMES, *QBT_FIELDS, *PROXY_FIELDS, *network.QBT_FIELDS,
               *INTERFACE_FIELDS}
    for key, value in prefs.items():
        if key not in handled and key in current and value != current[key]:
            raise QbtError(400, f"{key}: cannot be changed through this API (it stays {current[key]!r})")
    return changes
