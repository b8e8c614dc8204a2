"""qBittorrent's WebAPI v2, the translation itself: state names, the torrent record, its
properties, files and trackers, filters and share limits as qBittorrent 5 shows them,
computed from the job service's jobs and settings. Pure: no request, no I/O (``qbittorrent.py``
serves them)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeAlias
from urllib.parse import quote

from ...config import MAX_RATE_LIMIT
from ...formats.metainfo import Torrent
from ...jobs import Job, JobState, ServiceSettings, ShareLimitAction
from ...jobs.model import NO_LIMIT, JobPeer, JobTracker, TorrentFacts, tracker_issues
from ...jobs.organising.features import shown_comment
from ...jsonvalue import JSON, JSONValue
from .. import jsontext

# the WebAPI this layer speaks, and the qBittorrent that first answered it: 2.16.0 came with the
# development of 5.3 (its master said v5.3.0alpha1; 5.3.0 itself was released at 2.16.2)
APP_VERSION = "v5.3.0alpha1"
WEBAPI_VERSION = "2.16.0"
SESSION_TTL = 3600.0  # seconds an idle SID stays valid (qBittorrent's default)
MAX_SESSIONS = 1024
INFINITE_ETA = 8640000  # qBittorrent's "∞" (100 days)
GLOBAL = -2  # qBittorrent's "use the global share limit"
MAX_SYNC_SNAPSHOTS = 32
MAX_RATIO = 9999.0  # qBittorrent's ceilings for a torrent's share limits
MAX_SEEDING_TIME = 525600  # minutes
_INTEGER = re.compile(r"[+-]?[0-9]+")
QBT_TO_OURS = {0: 0, 1: 4, 6: 6, 7: 7}  # file priorities: qBittorrent's 0/1/6/7 to our 0..7
_ACTION_NAMES = {"stop": "Stop", "remove": "Remove", "remove_with_files": "RemoveWithContent",
                 "super_seed": "EnableSuperSeeding"}
# the stop conditions (jobs.model.STOP_CONDITIONS) as qBittorrent names them, and by those names
# in any case (its add's stopCondition, its preference torrent_stop_condition)
STOP_NAMES = {"none": "None", "metadata_received": "MetadataReceived", "files_checked": "FilesChecked"}
STOP_BY_NAME = {name.lower(): ours for ours, name in STOP_NAMES.items()}
ACTIONS_AT_LIMIT = {0: ShareLimitAction.STOP, 1: ShareLimitAction.REMOVE, 2: ShareLimitAction.SUPER_SEED,
                    3: ShareLimitAction.REMOVE_WITH_FILES}  # max_ratio_act


# a torrent's (or a peer's) record: a flat JSON object
Scalar: TypeAlias = str | int | float | bool
QbtRecord: TypeAlias = dict[str, Scalar]


def form_json(text: str, field: str) -> JSONValue:
    """A form field's JSON (``400`` saying that ``field`` is not JSON, and why)."""
    try:
        return jsontext.loads(text)
    except ValueError as exc:
        raise QbtError(400, f"{field} is not JSON: {exc}") from exc


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
    """The job's state in qBittorrent's words (5.0's ``stoppedDL``/``stoppedUP`` for stopped
    jobs, 4.6's ``pausedDL``/``pausedUP``)."""
    if job.moving:
        return "moving"
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
            return "stoppedUP" if up else "stoppedDL"
        case JobState.QUEUED:
            return "queuedUP" if up else "queuedDL"
        case JobState.COMPLETED:
            return "stoppedUP"
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


def qt_json(value: JSON) -> JSON:
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


def qt_record(record: QbtRecord) -> QbtRecord:
    """``qt_json`` of a flat record (in place: each whole float an int)."""
    for k, v in record.items():
        if v.__class__ is float and v.is_integer() and abs(v) < 2 ** 53:
            record[k] = int(v)
    return record


def share_limit_in(text: str | None, name: str, most: float, scale: float = 1.0) -> float | None:
    """qBittorrent's -2/-1/value as ours (None/-1/value, at most ``most``, as qBittorrent takes a
    torrent's: ``MAX_RATIO``, ``MAX_SEEDING_TIME``), times ``scale``; ``QbtError`` 400 on
    anything else."""
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
    return min(value, most) * scale


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


def magnet_uri(job: Job, facts: TorrentFacts | None) -> str:
    """The job's magnet link (its own when it was added by one)."""
    if job.source.startswith("magnet:"):
        return job.source
    parts = [f"xt=urn:btih:{job.info_hash}", "dn=" + quote(job.name, safe="")]
    if facts is not None:
        parts.extend("tr=" + quote(url, safe="") for tier in facts.trackers for url in tier)
    return "magnet:?" + "&".join(parts)


def torrent_record(job: Job, settings: ServiceSettings, torrent: TorrentFacts | None) -> QbtRecord:
    """One entry of ``torrents/info`` (and of ``sync/maindata``): the job, and what a list shows
    of its torrent (``torrent``: read from its record, never from disk)."""
    eta = INFINITE_ETA if job.eta is None else int(job.eta)
    ratio_limit = share_limit_out(job.features.ratio_limit)
    time_limit = seeding_time_limit_out(job.features.seeding_time_limit)
    max_ratio = settings.ratio_limit if job.features.ratio_limit is None else job.features.ratio_limit
    max_time = (settings.seeding_time_limit if job.features.seeding_time_limit is None
                else job.features.seeding_time_limit)
    max_idle = (settings.idle_seeding_limit if job.features.idle_seeding_limit is None
                else job.features.idle_seeding_limit)
    working = [t.url for t in job.trackers if t.status == "working"]
    done_at = job.completed_at
    size = job.total_size
    return {
        "hash": job.info_hash, "infohash_v1": job.info_hash if len(job.info_hash) == 40 else "",
        "infohash_v2": torrent.info_hash_v2 if torrent is not None else "", "name": job.name,
        "magnet_uri": magnet_uri(job, torrent),
        "size": size, "total_size": torrent.total_length if torrent is not None else -1,
        # (nothing wanted, every file skipped: 0, as qBittorrent's total_wanted 0 reads)
        "progress": job.progress if size else 0.0,
        "dlspeed": int(job.download_rate), "upspeed": int(job.upload_rate),
        "priority": job.queue_position, "num_seeds": job.seeds,
        "num_complete": job.seeds, "num_leechs": max(0, job.peers - job.seeds),
        "num_incomplete": max(0, job.peers - job.seeds), "ratio": round(job.ratio, 4), "eta": eta,
        "state": state_name(job), "seq_dl": job.options.sequential,
        "f_l_piece_prio": job.features.first_last_piece, "category": job.features.category,
        "tags": ", ".join(job.features.tags), "super_seeding": job.options.super_seeding,
        "force_start": job.features.force_start, "save_path": job.options.save_path,
        "download_path": job.options.download_path or "", "content_path": content_path(job),
        "added_on": int(job.created_at),
        "completion_on": int(done_at) if done_at is not None else 0,
        "tracker": working[0] if working else "", "trackers_count": len(job.trackers),
        "dl_limit": job.options.download_limit, "up_limit": job.options.upload_limit,
        "downloaded": job.downloaded, "uploaded": job.uploaded, "downloaded_session": job.run_downloaded,
        "uploaded_session": job.run_uploaded, "amount_left": max(0, size - job.done_size),
        "completed": job.done_size, "ratio_limit": ratio_limit, "seeding_time_limit": time_limit,
        "inactive_seeding_time_limit": seeding_time_limit_out(job.features.idle_seeding_limit),
        "max_ratio": max_ratio, "max_seeding_time": int(max_time / 60) if max_time >= 0 else -1,
        "max_inactive_seeding_time": int(max_idle / 60) if max_idle >= 0 else -1,
        "seeding_time": int(job.seeding_time), "time_active": int(job.time_active),
        # (when it last sent or received a byte; never: when it was added, as qBittorrent says)
        "last_activity": int(job.active_at if job.active_at is not None else job.created_at),
        # (when a peer with every piece was last connected, as libtorrent says: not ourselves)
        "seen_complete": int(job.seen_complete_at or 0),
        "auto_tmm": job.features.auto_managed,
        # (a torrent with its metadata that does not run, incomplete: 0, as qbittorrent-nox)
        "availability": round(job.availability, 3) if job.availability is not None
        else 0.0 if torrent is not None and job.progress < 1 else -1.0,
        "private": torrent.private if torrent is not None else False, "reannounce": 0,
        # (WebAPI 2.10–2.16's fields)
        "has_metadata": torrent is not None, "comment": job.features.comment if job.features.comment
        is not None else torrent.comment if torrent is not None else "",
        "created_by": torrent.created_by if torrent is not None else "",
        "creation_date": torrent.creation_date if torrent is not None else -1,
        "piece_size": torrent.piece_length if torrent is not None else 0,
        "pieces_num": job.num_pieces or 0, "pieces_have": pieces_have(job),
        "connections_count": job.peers,
        "connections_limit": job.options.max_peers or settings.max_connections_per_torrent,
        "popularity": popularity(job), "root_path": root_path(job),
        "share_limit_action": _ACTION_NAMES.get(job.features.share_limit_action or "", "Default"),
        "share_limits_mode": "Default", "total_wasted": job.wasted + job.corrupt,
        **announce_flags(job),
    }


def pieces_have(job: Job) -> int:
    """The pieces the job has: those verified, or every one of a complete job that has not run
    since its start (its data was verified before; a seed mode job counts every piece as had)."""
    if job.verified_pieces is not None and not job.seed_mode:
        return job.verified_pieces
    return (job.num_pieces or 0) if job.progress >= 1 else 0


def popularity(job: Job) -> float:
    """qBittorrent's popularity: the share ratio per month of the time shown as ``time_active``
    (a month as ``std::chrono::months``: 2629746 seconds)."""
    months = max(0.0, job.updated_at - job.created_at) / 2629746
    return round(job.ratio / months, 4) if months > 0 else 0.0


def root_path(job: Job) -> str:
    """The torrent's top folder where its data is now; "" for a one-file torrent (none) and
    before the metadata, as qBittorrent's ``rootPath``."""
    tops = {f.path.split("/")[0] for f in job.files}
    if len(tops) == 1 and all("/" in f.path for f in job.files):
        return f"{job.options.data_path}/{tops.pop()}"
    return ""


def announce_flags(job: Job) -> QbtRecord:
    """``sync/maindata``'s announce fields of a torrent (2.11.7), as qBittorrent sets them from
    its trackers' states: one that refused the announce (``Tracker error``, 5) sets
    ``has_tracker_error``, one not working or not asked (4, 6) ``has_other_announce_error``, one
    working whose answer came with a warning message ``has_tracker_warning`` (the job's
    ``tracker_issues``)."""
    issues = tracker_issues(job.trackers)
    return {"has_tracker_warning": "warning" in issues, "has_tracker_error": "tracker_error" in issues,
            "has_other_announce_error": "other_error" in issues}


# qBittorrent's peer flags where the peer came from, each after its wire's (``_wire_flags``)
_PEER_FLAGS = (("incoming", "I", "Incoming connection"), ("dht", "H", "Peer from DHT"),
               ("pex", "X", "Peer from PEX"), ("lsd", "L", "Peer from LSD"))


def _wire_flags(wire: frozenset[str]) -> list[tuple[str, str]]:
    """qBittorrent's flags of a connection's interest and choking (in its order: ours in the
    peer, its in us, each either way unchoked without interest), optimistic unchoke and snub."""
    flags: list[tuple[str, str]] = []
    wants, choked = "am_interested" in wire, "peer_choking" in wire
    asked, choking = "peer_interested" in wire, "am_choking" in wire
    if wants:
        flags.append(("d", "Interested (local) and choked (peer)") if choked
                     else ("D", "Interested (local) and unchoked (peer)"))
    if asked:
        flags.append(("u", "Interested (peer) and choked (local)") if choking
                     else ("U", "Interested (peer) and unchoked (local)"))
    if not choked and not wants:
        flags.append(("K", "Not interested (local) and unchoked (peer)"))
    if not choking and not asked:
        flags.append(("?", "Not interested (peer) and unchoked (local)"))
    if "optimistic" in wire:
        flags.append(("O", "Optimistic unchoke"))
    if "snubbed" in wire:
        flags.append(("S", "Peer snubbed"))
    return flags


def peer_record(p: JobPeer, size: int = 0) -> QbtRecord:
    """One peer as ``sync/torrentPeers`` gives it, of a torrent of ``size`` bytes: 2.16's
    ``contribution`` is what qBittorrent computes, what was sent to the peer over what it has
    (over the torrent's size while it has nothing); ``relevance`` the share of the pieces we lack
    that it has, ``files`` those of the piece being downloaded from it, a line each."""
    host, _, port = p.address.rpartition(":")
    flags = _wire_flags(p.wire) + [(letter, text) for source, letter, text in _PEER_FLAGS
                                   if source in p.sources]
    if "rc4" in p.wire:
        flags.append(("E", "Encrypted traffic"))
    elif "mse" in p.wire:
        flags.append(("e", "Encrypted handshake"))
    if p.transport == "utp":
        flags.append(("P", "μTP"))
    return {"ip": host.strip("[]"), "port": int(port) if port.isascii() and port.isdigit() else 0,
            "client": p.client, "peer_id_client": _peer_id_client(p.peer_id), "progress": p.progress,
            "dl_speed": int(p.download_rate),
            "up_speed": int(p.upload_rate), "downloaded": p.downloaded, "uploaded": p.uploaded,
            # (2.15.1's host_name is "" as with its reverse resolution off, its default)
            "contribution": _contribution(p, size), "host_name": "",
            "connection": "μTP" if p.transport == "utp" else "BT",
            "flags": " ".join(letter for letter, _ in flags),
            "flags_desc": "\n".join(f"{letter} = {text}" for letter, text in flags),
            "relevance": p.relevance, "files": "\n".join(p.files), "country_code": "", "country": ""}


def _peer_id_client(peer_id: str) -> str:
    """2.15.1's ``peer_id_client``: the first 8 bytes of the peer id as text (``-qB5100-``),
    ``Unknown`` when one is not printable ASCII, ``""`` when none is known, as qBittorrent's."""
    if not peer_id.strip("0"):
        return ""
    head = bytes.fromhex(peer_id[:16])
    return head.decode("ascii") if all(32 <= c <= 126 for c in head) else "Unknown"


def _contribution(p: JobPeer, size: int) -> float:
    """What was sent to the peer over the bytes it has, as qBittorrent's ``torrentPeers``."""
    if p.uploaded <= 0:
        return 0.0
    total = size if size > 0 else p.uploaded
    has = p.progress * total
    return p.uploaded / (has if has > 0 else total)


def _is_downloading(state: str) -> bool:
    return state in ("downloading", "metaDL", "forcedMetaDL", "forcedDL", "stalledDL", "checkingDL",
                     "stoppedDL", "queuedDL")


def _is_active(job: Job) -> bool:
    state = state_name(job)
    up = int(job.upload_rate) > 0  # (as its record's ``upspeed``)
    if state == "stalledDL":
        return up
    return state in ("metaDL", "forcedMetaDL", "downloading", "forcedDL", "uploading", "forcedUP") \
        or int(job.download_rate) > 0 or up


_STOPPED = ("stoppedDL", "stoppedUP")
_FILTERS: dict[str, Callable[[Job], bool]] = {
    "all": lambda j: True,
    "downloading": lambda j: _is_downloading(state_name(j)),
    "seeding": lambda j: state_name(j) in ("uploading", "stalledUP", "checkingUP", "queuedUP", "forcedUP"),
    "completed": lambda j: not _is_downloading(state_name(j)),
    "paused": lambda j: state_name(j) in _STOPPED, "stopped": lambda j: state_name(j) in _STOPPED,
    "resumed": lambda j: state_name(j) not in _STOPPED, "running": lambda j: state_name(j) not in _STOPPED,
    "active": _is_active, "inactive": lambda j: not _is_active(j),
    "stalled": lambda j: state_name(j) in ("stalledUP", "stalledDL"),
    "stalled_uploading": lambda j: state_name(j) == "stalledUP",
    "stalled_downloading": lambda j: state_name(j) == "stalledDL",
    "checking": lambda j: state_name(j) in ("checkingUP", "checkingDL"),
    "moving": lambda j: state_name(j) == "moving",
    "errored": lambda j: state_name(j) in ("error", "missingFiles"),
}


# The states of the jobs each filter may pass (a job in another fails it, whatever its rates, its
# progress or its force-start: ``state_name``), for the filters that pass few of them: the others'
# records are passed over without a view of each. (A job being moved is "moving": in a state
# here, it fails the filter there.)
_S = JobState
_FILTER_STATES: dict[str, frozenset[JobState]] = {
    "downloading": frozenset({_S.FETCHING_METADATA, _S.CHECKING, _S.DOWNLOADING, _S.PAUSED, _S.QUEUED}),
    "seeding": frozenset({_S.CHECKING, _S.SEEDING, _S.QUEUED}),
    "paused": frozenset({_S.PAUSED, _S.COMPLETED}), "stopped": frozenset({_S.PAUSED, _S.COMPLETED}),
    "stalled": frozenset({_S.DOWNLOADING, _S.SEEDING}),
    "stalled_uploading": frozenset({_S.SEEDING}), "stalled_downloading": frozenset({_S.DOWNLOADING}),
    "checking": frozenset({_S.CHECKING}),
    "errored": frozenset({_S.ERROR, _S.FAILED, _S.CANCELLED}),
}


def filter_states(status: str) -> frozenset[JobState] | None:
    """The states of the jobs ``torrents/info``'s ``filter`` may pass (None: any)."""
    return _FILTER_STATES.get(status)


def status_filter(status: str) -> Callable[[Job], bool]:
    """``torrents/info``'s ``filter``: which jobs it passes, as their records' ``state``,
    ``dlspeed`` and ``upspeed`` say (read once for a list, not a table of checks made per
    record; a job it passes over has no record made); ``QbtError`` for a filter it does not
    know."""
    check = _FILTERS.get(status)
    if check is None:
        raise QbtError(400, f"unknown filter {status[:40]!r}")
    return check


@dataclass(frozen=True)
class Listed:
    """Which jobs a ``torrents/info`` lists, by what each job shows (no record made): those
    ``status`` passes (None: any), in ``category``, with ``tag`` (None: any; "": none)."""

    status: Callable[[Job], bool] | None = None
    category: str | None = None
    tag: str | None = None
    states: frozenset[JobState] | None = None  # the states ``status`` may pass (None: any)

    def chooses(self) -> bool:
        """Whether it leaves any job out."""
        return self.status is not None or self.category is not None or self.tag is not None

    def passes(self, job: Job) -> bool:
        """Whether it lists ``job``."""
        return job.features.labelled(self.category, self.tag) and (self.status is None or self.status(job))


def properties_record(job: Job, settings: ServiceSettings, torrent: Torrent | None,
                      states: list[int] | None, now: float) -> dict[str, JSON]:
    """``torrents/properties`` (``states``: the pieces' states, 2 = have; None before metadata);
    with 2.10–2.15.1's ``has_metadata``, ``private`` (null before the metadata), ``progress``,
    ``popularity`` and ``availability``, as ``torrents/info`` shows them; ``reannounce`` in
    seconds from ``now`` (epoch seconds)."""
    record = torrent_record(job, settings, TorrentFacts.of(torrent) if torrent is not None else None)
    return {
        "hash": job.info_hash, "name": job.name, "infohash_v1": record["infohash_v1"],
        "infohash_v2": record["infohash_v2"],
        "save_path": job.options.save_path, "download_path": job.options.download_path or "",
        "creation_date": torrent.creation_date if torrent is not None and torrent.creation_date else -1,
        "piece_size": torrent.piece_length if torrent is not None else -1,
        "comment": shown_comment(job.features, torrent),
        "created_by": torrent.created_by or "" if torrent is not None else "",
        "total_wasted": job.wasted + job.corrupt, "total_uploaded": job.uploaded,
        "total_uploaded_session": job.run_uploaded,
        "total_downloaded": job.downloaded, "total_downloaded_session": job.run_downloaded,
        # (as qbittorrent-nox 4.5.2 answers them here: -1 for no limit, not complete, never seen)
        "up_limit": record["up_limit"] or -1, "dl_limit": record["dl_limit"] or -1,
        "time_elapsed": int(job.time_active), "seeding_time": int(job.seeding_time),
        "nb_connections": job.peers, "nb_connections_limit": record["connections_limit"],
        "share_ratio": record["ratio"], "addition_date": int(job.created_at),
        "completion_date": record["completion_on"] or -1, "last_seen": record["seen_complete"] or -1,
        # (as qBittorrent's: over the time downloading, and over all the time active)
        "dl_speed_avg": int(job.downloaded / job.downloading_time) if job.downloading_time >= 1 else 0,
        "up_speed_avg": int(job.uploaded / job.time_active) if job.time_active >= 1 else 0,
        "dl_speed": int(job.download_rate), "up_speed": int(job.upload_rate), "eta": record["eta"],
        "peers": max(0, job.peers - job.seeds), "peers_total": max(0, job.peers - job.seeds),
        "seeds": job.seeds, "seeds_total": job.seeds,
        "pieces_have": sum(1 for s in states if s == 2) if states is not None else 0,
        "pieces_num": len(states) if states is not None else -1, "reannounce": reannounce_in(job, now),
        "total_size": record["total_size"], "is_private": record["private"],
        "isPrivate": record["private"], "private": torrent.private if torrent is not None else None,
        "has_metadata": torrent is not None, "progress": record["progress"],
        "popularity": record["popularity"], "availability": record["availability"],
    }


def file_rows(job: Job, torrent: Torrent | None, wanted: set[int] | None,
              counts: Sequence[int] = ()) -> list[dict[str, JSON]]:
    """``torrents/files`` (``wanted``: the indexes asked for; None, all). A file's ``index`` is its
    place among the torrent's files with pad files left out, as qBittorrent numbers them (not the
    metainfo's index: ``job.files[index]``); its ``availability`` the share of its pieces a
    connected peer has (``counts``: the job's piece availability, empty for a complete one: -1,
    as qBittorrent's ``availableFileFractions``)."""
    out: list[dict[str, JSON]] = []
    for place, f in enumerate(job.files):
        if wanted is not None and place not in wanted:
            continue
        first = last = 0
        available = -1.0
        if torrent is not None:
            first, last = torrent.file_span(f.index)
            if counts:
                available = sum(1 for n in counts[first:last + 1] if n > 0) / (last + 1 - first)
        out.append({"index": place, "name": f.path, "size": f.size, "progress": f.progress,
                    "priority": file_priority(f.priority), "is_seed": f.progress >= 1.0,
                    "piece_range": [first, last], "availability": available})
    return out


def tracker_rows(job: Job, private: bool, sources: Sequence[tuple[str, bool]],
                 announcing: Collection[str] = (), endpoint: str = "",
                 bt_version: int = 1) -> list[dict[str, JSON]]:
    """``torrents/trackers``: the peer ``sources`` (DHT, PeX, LSD: whether each is on) first,
    as qBittorrent lists them, each with the connected peers heard of that way, seeds and not;
    then the trackers, with 2.13's ``next_announce`` and ``min_announce`` (epoch seconds, as
    qBittorrent's ``toSecondsSinceEpoch``; 0: none due), qBittorrent 5's ``updating`` (an announce
    to it waits for its answer: ``announcing``) and 2.13's ``endpoints``: the local ``endpoint``
    it is announced from (``"address:port"``; "" not listening) with the torrent's ``bt_version``
    (1, or 2 for a v2-only torrent: a hybrid one is announced by its v1 hash), once announced to
    in this run (as libtorrent's endpoints: none before the first announce)."""
    rows: list[dict[str, JSON]] = []
    for name, on in sources:
        heard = [p for p in job.peer_list if name.lower() in p.sources]
        seeds = sum(1 for p in heard if p.progress >= 1.0)
        rows.append({"url": f"** [{name}] **", "status": 2 if on and not private else 0, "tier": -1,
                     "num_peers": 0, "num_seeds": seeds, "num_leeches": len(heard) - seeds,
                     "num_downloaded": 0,
                     "msg": "" if on and not private else "This torrent is private" if private else ""})
    for t in job.trackers:
        due, least = job.announce_times(t)
        updating = t.url in announcing
        counts: dict[str, JSON] = {
            "status": tracker_status(t), "msg": tracker_message(t),
            # (the peers its last answer gave; -1 while it gives none, as qBittorrent's: not yet
            # contacted, or failing)
            "num_peers": t.peers if t.status == "working" else -1,
            "num_seeds": -1 if t.seeds is None else t.seeds,
            "num_leeches": -1 if t.leechers is None else t.leechers,
            "num_downloaded": -1 if t.downloaded is None else t.downloaded,
            "next_announce": int(due or 0), "min_announce": int(least or 0), "updating": updating}
        endpoints: list[JSON] = []
        if endpoint and (updating or t.announced_at is not None):
            endpoints.append({"name": endpoint, "bt_version": bt_version, **counts})
        rows.append({"url": t.url, "tier": t.tier, **counts, "endpoints": endpoints})
    return rows


def endpoint_name(address: str, port: int) -> str:
    """A local endpoint as libtorrent writes one (``1.2.3.4:6881``, ``[::1]:6881``; "" without a
    port: not listening); ``address`` "" is every address."""
    if not port:
        return ""
    host = address or "0.0.0.0"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# qBittorrent 5's TrackerEndpointState: 1 not contacted, 2 working, 4 not working, 5 tracker
# error (libtorrent's tracker_failure: a failure reason), 6 unreachable (announce_skipped)
_FAILURES = {"refused": 5, "skipped": 6}


def tracker_status(t: JobTracker) -> int:
    """A tracker's ``status`` in ``torrents/trackers``."""
    if t.status == "working":
        return 2
    if t.status == "failed":
        return _FAILURES.get(t.failure or "", 4)
    return 1


def reannounce_in(job: Job, now: float) -> int:
    """``reannounce``: whole seconds from ``now`` to the job's next announce to any tracker (0:
    none due, or the job announces nothing now: paused, queued, checking)."""
    due = [at for t in job.trackers if (at := job.announce_times(t)[0]) is not None and at > now]
    return int(min(due) - now) if due else 0


def tracker_message(t: JobTracker) -> str:
    """What a tracker's row says: its last announce's error or warning, and its last scrape's
    error."""
    scrape = f"scrape failed: {t.scrape_error}" if t.scrape_error else ""
    warning = t.warning if t.status == "working" else ""  # (one kept through a failure: not this one's)
    return "; ".join(m for m in (t.message, warning, scrape) if m)
