"""Transmission 4.1's JSON-RPC 2.0 framing and snake_case names, over the same methods as the old
protocol (``{"method", "arguments", "tag"}``): requests come in as values, answers go out as values.

No I/O here: ``read_call`` turns one decoded request into a ``Call`` or raises a ``CallError``;
``to_legacy`` renames its params to the old names the implementation reads; ``to_snake`` renames
an answer's keys; ``success``/``failure`` build the response objects. One table of names
(Transmission's own, from libtransmission/api-compat.cc) maps the two spellings.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from ...jsonvalue import JSON, JSONObject

JSONRPC = "2.0"
RPC_VERSION = 18  # Transmission 4.1.0 (docs/rpc-spec.md, "Protocol versions")
RPC_SEMVER = "6.0.0"
RPC_VERSION_HEADER = "X-Transmission-Rpc-Version"  # on the 409 answer, from semver 6.0.0

# JSON-RPC 2.0's error codes, then Transmission's own (libtransmission/rpcimpl.h, JsonRpc::Error)
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SET_ANNOUNCE_LIST, INVALID_TRACKER_LIST, PATH_NOT_ABSOLUTE, UNRECOGNIZED_INFO, SYSTEM_ERROR, \
    FILE_IDX_OOR, PIECE_IDX_OOR, HTTP_ERROR, CORRUPT_TORRENT, INVALID_BLOCKLIST_DATA = range(1, 11)
MESSAGES = {
    PARSE_ERROR: "Parse error", INVALID_REQUEST: "Invalid Request", METHOD_NOT_FOUND: "Method not found",
    INVALID_PARAMS: "Invalid params", INTERNAL_ERROR: "Internal error",
    SET_ANNOUNCE_LIST: "error setting announce list", INVALID_TRACKER_LIST: "Invalid tracker list",
    PATH_NOT_ABSOLUTE: "path is not absolute", UNRECOGNIZED_INFO: "unrecognized info",
    SYSTEM_ERROR: "system error", FILE_IDX_OOR: "file index out of range",
    PIECE_IDX_OOR: "piece index out of range", HTTP_ERROR: "HTTP error from backend service",
    CORRUPT_TORRENT: "invalid or corrupt torrent file",
    INVALID_BLOCKLIST_DATA: "couldn't parse any valid blocklist rules",
}

# The old protocol's names of methods, arguments and fields (Transmission 4.0), as
# libtransmission/api-compat.cc's RpcKeys lists them; the new name of each is ``snake_case(old)``.
LEGACY_NAMES = (
    "activeTorrentCount", "activityDate", "addedDate", "alt-speed-down", "alt-speed-enabled",
    "alt-speed-time-begin", "alt-speed-time-day", "alt-speed-time-enabled", "alt-speed-time-end",
    "alt-speed-up", "announceState", "anti-brute-force-enabled", "anti-brute-force-threshold",
    "bandwidthPriority", "blocklist-enabled", "blocklist-size", "blocklist-url", "bytesCompleted",
    "cache-size-mb", "clientIsChoked", "clientIsInterested", "clientName", "config-dir", "corruptEver",
    "cumulative-stats", "current-stats", "dateCreated", "default-trackers", "delete-local-data",
    "desiredAvailable", "dht-enabled", "doneDate", "downloadCount", "download-dir",
    "download-dir-free-space", "downloadLimit", "downloadLimited", "download-queue-enabled",
    "download-queue-size", "downloadSpeed", "downloadedBytes", "downloadedEver", "editDate", "errorString",
    "etaIdle", "file-count", "fileStats", "filesAdded", "files-unwanted", "files-wanted", "flagStr",
    "fromCache", "fromDht", "fromIncoming", "fromLpd", "fromLtep", "fromPex", "fromTracker", "hasAnnounced",
    "hasScraped", "hashString", "haveUnchecked", "haveValid", "honorsSessionLimits", "idle-seeding-limit",
    "idle-seeding-limit-enabled", "incomplete-dir", "incomplete-dir-enabled", "isBackup",
    "isDownloadingFrom", "isEncrypted", "isFinished", "isIncoming", "isPrivate", "isStalled",
    "isUploadingTo", "isUTP", "lastAnnouncePeerCount", "lastAnnounceResult", "lastAnnounceStartTime",
    "lastAnnounceSucceeded", "lastAnnounceTime", "lastAnnounceTimedOut", "lastScrapeResult",
    "lastScrapeStartTime", "lastScrapeSucceeded", "lastScrapeTime", "lastScrapeTimedOut", "leecherCount",
    "leftUntilDone", "lpd-enabled", "magnetLink", "manualAnnounceTime", "maxConnectedPeers", "memory-bytes",
    "memory-units", "metadataPercentComplete", "nextAnnounceTime", "nextScrapeTime", "pausedTorrentCount",
    "peerIsChoked", "peerIsInterested", "peer-limit", "peer-limit-global", "peer-limit-per-torrent",
    "peer-port", "peer-port-random-on-start", "peersConnected", "peersFrom", "peersGettingFromUs",
    "peersSendingToUs", "percentComplete", "percentDone", "pex-enabled", "pieceCount", "pieceSize",
    "port-forwarding-enabled", "port-is-open", "primary-mime-type", "priority-high", "priority-low",
    "priority-normal", "queuePosition", "queue-stalled-enabled", "queue-stalled-minutes", "rateDownload",
    "rateToClient", "rateToPeer", "rateUpload", "recently-active", "recheckProgress", "rename-partial-files",
    "rpc-host-whitelist", "rpc-host-whitelist-enabled", "rpc-version", "rpc-version-minimum",
    "rpc-version-semver", "scrapeState", "script-torrent-added-enabled", "script-torrent-added-filename",
    "script-torrent-done-enabled", "script-torrent-done-filename", "script-torrent-done-seeding-enabled",
    "script-torrent-done-seeding-filename", "secondsActive", "secondsDownloading", "secondsSeeding",
    "seedIdleLimit", "seedIdleMode", "seed-queue-enabled", "seed-queue-size", "seedRatioLimit",
    "seedRatioLimited", "seedRatioMode", "seederCount", "sessionCount", "session-id", "size-bytes",
    "size-units", "sizeWhenDone", "speed-bytes", "speed-limit-down", "speed-limit-down-enabled",
    "speed-limit-up", "speed-limit-up-enabled", "speed-units", "start-added-torrents", "startDate",
    "tcp-enabled", "torrent-added", "torrentCount", "torrent-duplicate", "torrentFile", "totalSize",
    "trackerAdd", "trackerList", "trackerRemove", "trackerReplace", "trackerStats",
    "trash-original-torrent-files", "uploadLimit", "uploadLimited", "uploadRatio", "uploadSpeed",
    "uploadedBytes", "uploadedEver", "utp-enabled", "webseedsSendingToUs", "blocklist-update", "free-space",
    "group-get", "group-set", "port-test", "queue-move-bottom", "queue-move-down", "queue-move-top",
    "queue-move-up", "session-close", "session-get", "session-set", "session-stats", "torrent-add",
    "torrent-get", "torrent-reannounce", "torrent-remove", "torrent-rename-path", "torrent-set",
    "torrent-set-location", "torrent-start", "torrent-start-now", "torrent-stop", "torrent-verify",
    # this daemon's own old-protocol names for what 4.1 added (the old protocol has none)
    "beginPiece", "endPiece", "sequentialDownload", "sequentialDownloadFromPiece", "webseedsEx",
)
_NOT_BY_RULE = {"cache-size-mb": "cache_size_mib"}
_CAMEL_HUMP = re.compile(r"(?<=[a-z0-9])([A-Z])")


@functools.cache  # (every key of every row of an answer: a few hundred names in all)
def snake_case(old: str) -> str:
    """The 4.1 name of an old name: camelCase and kebab-case as snake_case (``isUTP`` is_utp)."""
    return _NOT_BY_RULE.get(old) or _CAMEL_HUMP.sub(r"_\1", old).replace("-", "_").lower()


LEGACY = {snake_case(old): old for old in LEGACY_NAMES}  # 4.1's name -> the old one
# (one 4.1 name has two old ones: torrent-get's ``downloadDir``, ``download-dir`` elsewhere)
LEGACY_FIELDS = {**LEGACY, "download_dir": "downloadDir"}
# the 4.1 methods that change nothing: a notification of one is not run (as Transmission does)
NO_SIDE_EFFECTS = frozenset({"free_space", "group_get", "port_test", "session_get", "session_stats",
                             "torrent_get"})


@dataclass(frozen=True, slots=True)
class Call:
    """One JSON-RPC request: its method (4.1 name), params (4.1 names) and ``id`` (absent: a
    notification, answered by nothing)."""

    method: str
    params: JSONObject
    id: JSON
    notification: bool


@dataclass(frozen=True, slots=True)
class CallError(Exception):
    """A request that cannot be run, with the error to answer (``id`` null when unknown)."""

    code: int
    error_string: str
    id: JSON = None


def is_jsonrpc(request: object) -> bool:
    """Whether a decoded body is a JSON-RPC request (a batch, or an object with ``jsonrpc``)."""
    return isinstance(request, list) or (isinstance(request, dict) and "jsonrpc" in request)


def read_call(request: JSON) -> Call:
    """One request of a body (or of a batch), checked as JSON-RPC 2.0 and Transmission want."""
    if not isinstance(request, dict):
        raise CallError(INVALID_REQUEST, "request must be an Object")
    raw_id = request.get("id")
    call_id = raw_id if isinstance(raw_id, (str, int, float)) and not isinstance(raw_id, bool) else None
    if request.get("jsonrpc") != JSONRPC:
        raise CallError(INVALID_REQUEST, "JSON-RPC version is not 2.0", call_id)
    if "id" in request and raw_id is not None and call_id is None:
        raise CallError(INVALID_REQUEST, "id type must be String, Number, or Null")
    method = request.get("method")
    if not isinstance(method, str):
        raise CallError(INVALID_REQUEST, "method must be a String", call_id)
    params = request.get("params")
    if params is None:  # (omitted, or null: no params, as Transmission takes it)
        params = {}
    if not isinstance(params, dict):
        raise CallError(INVALID_PARAMS, "params must be an Object (by-position params are not supported)",
                        call_id)
    return Call(method, params, call_id, "id" not in request)


def to_legacy(method: str, params: JSONObject) -> tuple[str, JSONObject]:
    """A 4.1 method and its params under the old names (the values the old protocol spells
    otherwise too: ``recently_active``, encryption ``allowed``, torrent-get's ``fields``)."""
    old: JSONObject = {}
    for key, value in params.items():
        if key == "ids" and value == "recently_active":
            value = "recently-active"
        elif key == "fields" and isinstance(value, list) and method == "torrent_get":
            value = [LEGACY_FIELDS.get(f, f) if isinstance(f, str) else f for f in value]
        elif key == "fields" and isinstance(value, list):
            value = [LEGACY.get(f, f) if isinstance(f, str) else f for f in value]
        elif key == "encryption" and value == "allowed":
            value = "tolerated"
        old[LEGACY.get(key, key)] = value
    return LEGACY.get(method, method), old


def to_snake(value: JSON, *, key: str = "") -> JSON:
    """An answer under 4.1's names, its values as 4.1 gives them (``wanted`` true/false, not
    1/0; encryption ``allowed``, not ``tolerated``)."""
    if isinstance(value, dict):
        return {snake_case(k): to_snake(v, key=k) for k, v in value.items()}
    if isinstance(value, list):
        if key == "wanted":
            return [bool(v) if isinstance(v, int) else v for v in value]
        return [to_snake(v) for v in value]
    if key == "encryption" and value == "tolerated":
        return "allowed"
    return value


def table_to_snake(rows: list[JSON]) -> list[JSON]:
    """torrent-get's ``table`` format under 4.1's names: the first row names the columns."""
    if not rows or not isinstance(rows[0], list):
        return rows
    names = [n for n in rows[0] if isinstance(n, str)]
    out: list[JSON] = [[snake_case(n) for n in names]]
    for row in rows[1:]:
        if isinstance(row, list):
            out.append([to_snake(v, key=n) for n, v in zip(names, row, strict=False)])
    return out


def success(call_id: JSON, result: JSON) -> dict[str, JSON]:
    """A response object."""
    return {"jsonrpc": JSONRPC, "result": result, "id": call_id}


def failure(call_id: JSON, code: int, error_string: str = "",
            result: dict[str, JSON] | None = None) -> dict[str, JSON]:
    """An error response: the standard ``message`` of its code; Transmission's ``data`` carries
    ``error_string`` (what exactly was wrong) and a method's ``result`` keys, when there are any."""
    error: dict[str, JSON] = {"code": code, "message": MESSAGES.get(code, "error")}
    data: dict[str, JSON] = {}
    if error_string:
        data["error_string"] = error_string
    if result:
        data["result"] = result
    if data:
        error["data"] = data
    return {"jsonrpc": JSONRPC, "error": error, "id": call_id}
