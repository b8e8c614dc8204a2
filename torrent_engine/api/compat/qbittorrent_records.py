"""qBittorrent's WebAPI v2, the translation itself: state names, the torrent record, filters,
share limits and preferences as qBittorrent 4.6 shows them, computed from the job service's
jobs and settings. Pure: no request, no I/O (``qbittorrent.py`` serves them)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any  # Any: the records are JSON objects whose values are of any JSON type
from urllib.parse import quote

from ...config import MAX_RATE_LIMIT
from ...jobs import Job, JobService, JobState, ServiceSettings, ShareLimitAction
from ...jobs.incomplete import shown_folder
from ...jobs.model import NO_LIMIT, JobPeer
from ...metainfo import Torrent
from . import network
from .interfaces import qbt_preferences as interface_preferences
from .programs import qbt_preferences
from .proxies import qbt_preferences as proxy_preferences

APP_VERSION = "v4.6.7"  # the qBittorrent release whose WebAPI this layer speaks
WEBAPI_VERSION = "2.9.3"
SESSION_TTL = 3600.0  # seconds an idle SID stays valid (qBittorrent's default)
MAX_SESSIONS = 1024
INFINITE_ETA = 8640000  # qBittorrent's "∞" (100 days)
GLOBAL = -2  # qBittorrent's "use the global share limit"
MAX_SYNC_SNAPSHOTS = 32
MAX_RATIO = 9999.0  # qBittorrent's ceilings for a torrent's share limits
MAX_SEEDING_TIME = 525600  # minutes
_INTEGER = re.compile(r"[+-]?[0-9]+")
QBT_TO_OURS = {0: 0, 1: 4, 6: 6, 7: 7}  # file priorities: qBittorrent's 0/1/6/7 to our 0..7
ACTIONS_AT_LIMIT = {0: ShareLimitAction.STOP, 1: ShareLimitAction.REMOVE,
                    3: ShareLimitAction.REMOVE_WITH_FILES}  # max_ratio_act


class QbtError(Exception):
    """An answer other than 200: its status and qBittorrent's text."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


# -- translation (pure) --------------------------------------------------------------------
def file_priority(ours: int) -> int:
    """Our 0..7 as qBittorrent's 0 (skip), 1 (normal), 6 (high), 7 (maximal)."""
    if ours <= 0:
        return 0
    return ours if ours >= 6 else 1


def complete(job: Job) -> bool:
    """Whether every wanted piece is verified."""
    return job.total_size > 0 and job.done_size >= job.total_size or job.progress >= 1.0


def state_name(job: Job) -> str:
    """The job's state in qBittorrent's words (4.6: ``pausedDL``/``pausedUP`` for stopped jobs)."""
    up = complete(job)
    forced = job.features.force_start
    match job.state:
        case JobState.FETCHING_METADATA:
            return "forcedMetaDL" if forced else "metaDL"
        case JobState.CHECKING:
            return "checkingUP" if up else "checkingDL"
        case JobState.DOWNLOADING:
            if forced:
                return "forcedDL"
            return "downloading" if job.download_rate > 0 else "stalledDL"
        case JobState.SEEDING:
            if forced:
                return "forcedUP"
            return "uploading" if job.upload_rate > 0 else "stalledUP"
        case JobState.PAUSED:
            return "pausedUP" if up else "pausedDL"
        case JobState.QUEUED:
            return "queuedUP" if up else "queuedDL"
        case JobState.COMPLETED:
            return "pausedUP"
        case JobState.ERROR if job.missing_files:
            return "missingFiles"  # (files that held verified data are gone: a drive not mounted?)
    return "error"


def share_limit_out(value: float | None, scale: float = 1.0) -> float:
    """Our share limit (None = default, -1 = none) as qBittorrent's (-2 = global, -1 = none)."""
    if value is None:
        return GLOBAL
    if value == NO_LIMIT:
        return -1
    return value / scale


def seeding_time_limit_out(seconds: float | None) -> int:
    """Our seeding time limit (seconds) as qBittorrent's, in whole minutes (an integer there)."""
    if seconds is None:
        return GLOBAL
    if seconds == NO_LIMIT:
        return -1
    return round(seconds / 60)


def qt_json(value: Any) -> Any:
    """``value`` with every float that holds a whole number as an int, as Qt's JSON writer puts a
    double (qBittorrent's ``ratio`` 0 is ``0``): a client typed against qBittorrent's answers
    then reads ours the same."""
    if isinstance(value, float):
        return int(value) if value.is_integer() and abs(value) < 2 ** 53 else value
    if isinstance(value, dict):
        return {k: qt_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [qt_json(v) for v in value]
    return value


def share_limit_in(text: str | None, name: str, scale: float = 1.0) -> float | None:
    """qBittorrent's -2/-1/value as ours (None/-1/value); ``QbtError`` 400 on anything else."""
    try:
        value = float(text) if text not in (None, "") else GLOBAL
    except ValueError as exc:
        raise QbtError(400, f"{name} must be a number") from exc
    if value == GLOBAL:
        return None
    if value == -1:
        return NO_LIMIT
    if value < 0 or value != value:
        raise QbtError(400, f"{name} must be -2, -1 or at least 0")
    return value * scale


def parse_bool(text: str | None) -> bool | None:
    """qBittorrent's ``parseBool``: ``true`` or ``false`` in any case; anything else is None (the
    caller's default), never an error."""
    low = (text or "").lower()
    return True if low == "true" else False if low == "false" else None


def parse_int(text: str | None) -> int | None:
    """An integer as ``QString::toInt`` reads one (decimal, a sign, spaces around); None for
    anything else, so that the caller's default applies as in qBittorrent."""
    digits = (text or "").strip()
    if not _INTEGER.fullmatch(digits):
        return None
    return int(digits)


def parse_double(text: str | None) -> float | None:
    """A finite number as ``QString::toDouble`` reads one; None for anything else."""
    try:
        value = float((text or "").strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def enum_value(text: str | None, known: Mapping[str, str], default: str) -> str:
    """An enumerated field as qBittorrent's ``toEnum`` reads it: a name it does not know (Flood's
    ``undefined``) is the default, not an error."""
    return known.get((text or "").strip().lower(), default)


def ratio_limit_in(value: float | None) -> float | None:
    """A ratio limit as qBittorrent sets one: -2 (or none given) the global one, any other
    negative none, at most ``MAX_RATIO``."""
    if value is None or value == GLOBAL:
        return None
    if value < 0:
        return NO_LIMIT
    return min(value, MAX_RATIO)


def seeding_time_limit_in(minutes: int | None) -> float | None:
    """A seeding time limit in minutes, the same way (at most ``MAX_SEEDING_TIME``), as seconds."""
    if minutes is None or minutes == GLOBAL:
        return None
    if minutes < 0:
        return NO_LIMIT
    return min(minutes, MAX_SEEDING_TIME) * 60.0


def rate_limit_in(value: int | None, name: str) -> int:
    """qBittorrent's rate limit (bytes/s; 0 or -1 = none) as ours (0 = none); a 400 naming
    ``name`` for one the engine cannot take (below -1, above ``MAX_RATE_LIMIT``)."""
    if value is None or value in (0, -1):
        return 0
    if not 0 < value <= MAX_RATE_LIMIT:
        raise QbtError(400, f"{name} must be -1 or 0 (no limit) or bytes per second up to {MAX_RATE_LIMIT}")
    return value


def content_path(job: Job) -> str:
    """The file of a one-file torrent, else its top folder ("" before a magnet's metadata), where
    its data is now (its incomplete folder while it downloads into one)."""
    if len(job.files) == 1:
        return f"{job.options.data_path}/{job.files[0].path}"
    if job.files:
        return f"{job.options.data_path}/{job.files[0].path.split('/')[0]}"
    return ""


def magnet_uri(job: Job, torrent: Torrent | None) -> str:
    """The job's magnet link (its own when it was added by one)."""
    if job.source.startswith("magnet:"):
        return job.source
    parts = [f"xt=urn:btih:{job.info_hash}", "dn=" + quote(job.name, safe="")]
    if torrent is not None:
        parts.extend("tr=" + quote(url, safe="") for tier in torrent.trackers for url in tier)
    return "magnet:?" + "&".join(parts)


def torrent_record(job: Job, settings: ServiceSettings, torrent: Torrent | None) -> dict[str, Any]:
    """One entry of ``torrents/info`` (and of ``sync/maindata``)."""
    eta = INFINITE_ETA if job.eta is None else int(job.eta)
    ratio_limit = share_limit_out(job.features.ratio_limit)
    time_limit = seeding_time_limit_out(job.features.seeding_time_limit)
    max_ratio = settings.ratio_limit if job.features.ratio_limit is None else job.features.ratio_limit
    max_time = (settings.seeding_time_limit if job.features.seeding_time_limit is None
                else job.features.seeding_time_limit)
    working = [t.url for t in job.trackers if t.status == "working"]
    done_at = job.completed_at
    size = job.total_size
    return {
        "hash": job.info_hash, "infohash_v1": job.info_hash if len(job.info_hash) == 40 else "",
        "infohash_v2": "", "name": job.name, "magnet_uri": magnet_uri(job, torrent),
        "size": size, "total_size": torrent.total_length if torrent is not None else -1,
        "progress": job.progress, "dlspeed": int(job.download_rate), "upspeed": int(job.upload_rate),
        "priority": job.queue_position, "num_seeds": job.seeds,
        "num_complete": job.seeds, "num_leechs": max(0, job.peers - job.seeds),
        "num_incomplete": max(0, job.peers - job.seeds), "ratio": round(job.ratio, 4), "eta": eta,
        "state": state_name(job), "seq_dl": job.options.sequential,
        "f_l_piece_prio": job.features.first_last_piece, "category": job.features.category,
        "tags": ", ".join(job.features.tags), "super_seeding": False,
        "force_start": job.features.force_start, "save_path": job.options.save_path,
        "download_path": job.options.download_path or "", "content_path": content_path(job),
        "added_on": int(job.created_at),
        "completion_on": int(done_at) if done_at is not None else 0,
        "tracker": working[0] if working else "", "trackers_count": len(job.trackers),
        "dl_limit": job.options.download_limit, "up_limit": job.options.upload_limit,
        "downloaded": job.downloaded, "uploaded": job.uploaded, "downloaded_session": job.downloaded,
        "uploaded_session": job.uploaded, "amount_left": max(0, size - job.done_size),
        "completed": job.done_size, "ratio_limit": ratio_limit, "seeding_time_limit": time_limit,
        "inactive_seeding_time_limit": GLOBAL, "max_ratio": max_ratio,
        "max_seeding_time": int(max_time / 60) if max_time >= 0 else -1, "max_inactive_seeding_time": -1,
        "seeding_time": int(job.seeding_time), "time_active": int(max(0.0, job.updated_at - job.created_at)),
        "last_activity": int(job.updated_at), "seen_complete": int(done_at) if done_at is not None else 0,
        "auto_tmm": False, "availability": float(job.seeds),
        "private": torrent.private if torrent is not None else False, "reannounce": 0,
    }


# qBittorrent's peer flags that we know (its others tell choking and interest, which the job's
# peer list does not carry): where the peer came from, and over what
_PEER_FLAGS = (("incoming", "I", "Incoming connection"), ("dht", "H", "Peer from DHT"),
               ("pex", "X", "Peer from PEX"), ("lsd", "L", "Peer from LSD"))


def peer_record(p: JobPeer) -> dict[str, Any]:
    """One peer as ``sync/torrentPeers`` gives it."""
    host, _, port = p.address.rpartition(":")
    flags = [(letter, text) for source, letter, text in _PEER_FLAGS if source in p.sources]
    if p.transport == "utp":
        flags.append(("P", "μTP"))
    return {"ip": host.strip("[]"), "port": int(port) if port.isascii() and port.isdigit() else 0,
            "client": p.client, "progress": p.progress, "dl_speed": int(p.download_rate),
            "up_speed": int(p.upload_rate), "downloaded": 0, "uploaded": 0,
            "connection": "μTP" if p.transport == "utp" else "BT",
            "flags": " ".join(letter for letter, _ in flags),
            "flags_desc": "\n".join(f"{letter} = {text}" for letter, text in flags),
            "relevance": 0, "files": "", "country_code": "", "country": ""}


def _is_downloading(state: str) -> bool:
    return state in ("downloading", "metaDL", "forcedMetaDL", "forcedDL", "stalledDL", "checkingDL",
                     "pausedDL", "queuedDL")


def _is_active(record: dict[str, Any]) -> bool:
    state = record["state"]
    if state == "stalledDL":
        return bool(record["upspeed"] > 0)
    return state in ("metaDL", "forcedMetaDL", "downloading", "forcedDL", "uploading", "forcedUP") \
        or record["dlspeed"] > 0 or record["upspeed"] > 0


def matches(record: dict[str, Any], status: str) -> bool:
    """Whether a record passes ``torrents/info``'s ``filter``."""
    state = record["state"]
    paused = state in ("pausedDL", "pausedUP")
    checks: dict[str, Callable[[], bool]] = {
        "all": lambda: True,
        "downloading": lambda: _is_downloading(state),
        "seeding": lambda: state in ("uploading", "stalledUP", "checkingUP", "queuedUP", "forcedUP"),
        "completed": lambda: not _is_downloading(state),
        "paused": lambda: paused, "stopped": lambda: paused,
        "resumed": lambda: not paused, "running": lambda: not paused,
        "active": lambda: _is_active(record), "inactive": lambda: not _is_active(record),
        "stalled": lambda: state in ("stalledUP", "stalledDL"),
        "stalled_uploading": lambda: state == "stalledUP",
        "stalled_downloading": lambda: state == "stalledDL",
        "checking": lambda: state in ("checkingUP", "checkingDL"),
        "moving": lambda: state == "moving",
        "errored": lambda: state in ("error", "missingFiles"),
    }
    check = checks.get(status)
    if check is None:
        raise QbtError(400, f"unknown filter {status[:40]!r}")
    return check()


def preferences(service: JobService) -> dict[str, Any]:
    """``app/preferences``: the fields tools read, from the service's settings and config."""
    s = service.get_settings()
    config = service.config
    action = {ShareLimitAction.STOP: 0, ShareLimitAction.REMOVE: 1, ShareLimitAction.REMOVE_WITH_FILES: 3}
    encryption = {"prefer": 0, "require": 1, "disable": 2}.get(config.encryption, 0)
    return {
        "save_path": str(service.download_root), "temp_path_enabled": s.incomplete_dir_enabled,
        "temp_path": shown_folder(service.download_root, s),
        "auto_tmm_enabled": False, "torrent_content_layout": "Original", "create_subfolder_enabled": True,
        "start_paused_enabled": False, "add_to_top_of_queue": False, "preallocate_all": False,
        "incomplete_files_ext": False, "max_ratio_enabled": s.ratio_limit >= 0,
        "max_ratio": s.ratio_limit if s.ratio_limit >= 0 else -1,
        "max_seeding_time_enabled": s.seeding_time_limit >= 0,
        "max_seeding_time": int(s.seeding_time_limit / 60) if s.seeding_time_limit >= 0 else -1,
        "max_inactive_seeding_time_enabled": False, "max_inactive_seeding_time": -1,
        "max_ratio_act": action[s.share_limit_action], "queueing_enabled": s.queueing,
        "max_active_downloads": s.max_active_downloads, "max_active_uploads": s.max_active_uploads,
        "max_active_torrents": s.max_active_torrents, "dont_count_slow_torrents": False,
        "dl_limit": s.download_limit, "up_limit": s.upload_limit,
        "dht": config.dht_enabled, "pex": True, "lsd": config.lsd_enabled,
        "encryption": encryption, "anonymous_mode": False, "listen_port": service.stats().listen_port,
        "random_port": False, "upnp": config.port_mapping, "web_ui_username": "",
        "bypass_local_auth": False, "locale": "en", "category_changed_tmm_enabled": False,
        "torrent_changed_tmm_enabled": False, "save_path_changed_tmm_enabled": False,
        **qbt_preferences(s), **proxy_preferences(s), **network.qbt_preferences(s),
        **interface_preferences(s),
    }
