"""The OpenAPI 3.1 description of our own API (``/api/...``), served at ``GET /api/openapi.json``.

The paths come from the application's own route table (``openapi_document(app.routes)``); what
each operation takes and answers is written once here, in ``OPERATIONS``. A route without a
description, or a description without a route, is listed by ``undescribed``/``unrouted`` (the
tests fail on either), so the document cannot drift from the code. qBittorrent's ``/api/v2``
and Transmission's ``/transmission/rpc`` are described by their own projects, not here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import get_args

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .. import __version__
from ..config import MAX_HTTP_ANNOUNCES, MAX_RATE_LIMIT, MAX_STOP_TRACKER_TIMEOUT, TRANSPORTS
from ..engine.addtorrent import TORRENT_FILE_LIMIT_LEAST, TORRENT_FILE_LIMIT_MOST
from ..feeds.rules import LAST_DATE
from ..formats.metainfo import MIN_PIECE_LENGTH
from ..jobs import JobState
from ..jobs.intake.creations import LARGEST_PIECE, VERSIONS
from ..jobs.intake.creations import Status as CreationStatus
from ..jobs.model import STOP_CONDITIONS, TRACKER_ISSUES
from ..jobs.organising.features import MAX_COMMENT
from ..jobs.trackers import MAX_URL
from ..jobs.tuning.groups import MAX_GROUP_NAME, MAX_WEIGHT
from ..jobs.tuning.peerlimits import MAX_JOB_PEERS
from ..jobs.tuning.settings import (
    MAX_DISK_RESERVE,
    MAX_FEED_ARTICLES,
    MAX_FEED_FETCH_DELAY,
    MAX_LOGIN_FAILURES,
    MAX_PATTERNS,
)
from ..jobs.validate import MAX_NAME, PARTIAL_SUFFIX
from ..jsonvalue import JSON
from ..policy.dedup import DEDUP_MODES
from ..session.peer import WIRE_STATES
from ..session.peer_pool import SOURCES as PEER_SOURCES
from .folder_routes import DEFAULT_LIMIT, MAX_LIMIT, MAX_PREFIX

OPENAPI_VERSION = "3.1.0"
OWN_PREFIX = "/api/"
FOREIGN_PREFIXES = ("/api/v2/",)  # qBittorrent's WebAPI: not ours to describe
# the name of a route that only answers 405 for the methods a fixed path does not take (where a
# path template would otherwise take them): no operation, so not described
METHOD_NOT_ALLOWED = "method_not_allowed"
_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")

Schema = Mapping[str, JSON]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(properties: dict[str, Schema], required: Iterable[str] = (), *,
         closed: bool = True, description: str | None = None) -> Schema:
    out: dict[str, JSON] = {"type": "object", "properties": properties, "required": sorted(required)}
    if closed:
        out["additionalProperties"] = False
    if description:
        out["description"] = description
    return out


def _null(schema: Schema) -> Schema:
    """``schema`` or JSON ``null``."""
    return {"anyOf": [schema, {"type": "null"}]}


# Patterns that say what the server's checks take, so that what the document allows is what the
# server accepts (schemathesis' "schema-valid request rejected"). JSON Schema's regexes are
# ECMA-262's, whose \s is not Python's str.isspace: a character the server strips or refuses as a
# space is excluded both as \s and as the ones Python adds (\x1c-\x1f, \x85).
_SPACE = r"\s\x1c-\x1f\x85"
# a port 1..65535, leading zeros let pass (as int() reads them)
_PORT = r"0*(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
# a URL's host as urllib.parse.urlsplit reads it (the server's parser): a name without the
# characters that end or split a netloc, or an IPv6 address in brackets (its full form)
_URL_HOST = rf"([^{_SPACE}\x00/?#@:\[\]]+|\[([0-9A-Fa-f]{{1,4}}:){{7}}[0-9A-Fa-f]{{1,4}}\])"
# an announce URL as the server takes it (jobs/trackers.check_url): http, https or udp, a host
# and a port in range if any, no space or NUL inside (around it: trimmed), at most MAX_URL long
TRACKER_URL: Schema = {
    "type": "string", "maxLength": MAX_URL,
    "pattern": rf"^[{_SPACE}]*([Hh][Tt][Tt][Pp][Ss]?|[Uu][Dd][Pp])://([^{_SPACE}\x00/?#@\[\]]*@)?"
               rf"{_URL_HOST}(:({_PORT}|0+)?)?([/?#][^{_SPACE}\x00]*)?[{_SPACE}]*$"}
# a web seed URL as the server takes it (jobs/webseeds.check_web_seed): http or https, a host
# and a port in range if any, no space or NUL inside (around it: trimmed), at most MAX_URL long
_HTTP_URL = (rf"[{_SPACE}]*[Hh][Tt][Tt][Pp][Ss]?://([^{_SPACE}\x00/?#@\[\]]*@)?"
             rf"{_URL_HOST}(:({_PORT}|0+)?)?([/?#][^{_SPACE}\x00]*)?[{_SPACE}]*")
WEB_SEED_URL: Schema = {"type": "string", "maxLength": MAX_URL, "pattern": f"^{_HTTP_URL}$"}
# a magnet link (api/app.parse_source, formats/magnet.parse_magnet): a BEP 9 btih info-hash (40
# hex or 32 base32) or a BEP 52 btmh one (a SHA-256 multihash), or a BEP 46 btpk public key (64
# hex, in ``xs``), other parameters beside it
_MAGNET = (r"magnet:\?([^&#]*&)*([Xx][Tt]=urn(:|%3[Aa])[Bb][Tt]([Ii][Hh](:|%3[Aa])"
           r"([0-9A-Fa-f]{40}|[A-Za-z2-7]{32})|[Mm][Hh](:|%3[Aa])1220[0-9A-Fa-f]{64})"
           r"|[Xx][Ss]=urn(:|%3[Aa])[Bb][Tt][Pp][Kk](:|%3[Aa])[0-9A-Fa-f]{64})(&[^&#=]+=[^&#]*)*")
# a .torrent in base64 (padded; whitespace around it trimmed): that it holds a .torrent no
# pattern says ("format": "torrent-source" is for a generator that knows)
_BASE64 = (rf"[{_SPACE}]*([A-Za-z0-9+/]{{4}})*([A-Za-z0-9+/]{{2}}==|[A-Za-z0-9+/]{{3}}=|[A-Za-z0-9+/]{{4}})"
           rf"[{_SPACE}]*")
# an IPv6 address in any of its textual forms but the ones with an IPv4 address or a zone in it
_H16 = "[0-9A-Fa-f]{1,4}"
_IPV6 = (rf"(({_H16}:){{7}}{_H16}|({_H16}:){{1,7}}:|({_H16}:){{1,6}}:{_H16}|({_H16}:){{1,5}}(:{_H16}){{1,2}}"
         rf"|({_H16}:){{1,4}}(:{_H16}){{1,3}}|({_H16}:){{1,3}}(:{_H16}){{1,4}}|({_H16}:){{1,2}}(:{_H16}){{1,5}}"
         rf"|{_H16}:(:{_H16}){{1,6}}|:((:{_H16}){{1,7}}|:))")
# a peer as api/app.parse_peer takes it (formats/endpoint.split_host_port): HOST:PORT, the host a
# name or an IPv4 address (no colon, no bracket) or an IPv6 address in brackets
PEER: Schema = {"type": "string", "pattern": rf"^([^\x00:\[\]]+|\[{_IPV6}\]):{_PORT}$",
                "description": "HOST:PORT (an IPv6 host in brackets)"}
# the same in a list separated by spaces or commas (a multipart upload's): none in the host
_LISTED_PEER = rf"([^{_SPACE},\x00:\[\]]+|\[{_IPV6}\]):{_PORT}"
# a tag (jobs/features.check_tag): something besides spaces, no comma, no NUL, 255 at most
TAG: Schema = {"type": "string", "maxLength": MAX_NAME, "pattern": rf"^[^,\x00]*[^,{_SPACE}\x00][^,\x00]*$"}
# a category (jobs/features.check_category): "" (none) or words joined by single "/", no "\",
# no NUL, no space at either end, 255 at most
_CATEGORY_EDGE = rf"[^{_SPACE}/\\\x00]"
CATEGORY: Schema = {"type": "string", "maxLength": MAX_NAME,
                    "pattern": rf"^({_CATEGORY_EDGE}((/?[^/\\\x00])*/?{_CATEGORY_EDGE})?)?$",
                    "description": "\"\" = none; words joined by \"/\""}
# a path the server confines to the download root (jobs/paths.confine): no NUL in it
PATH: Schema = {"type": "string", "pattern": r"^[^\x00]*$"}
STRING: Schema = {"type": "string"}
NUMBER: Schema = {"type": "number"}
COUNT: Schema = {"type": "integer", "minimum": 0}
BOOL: Schema = {"type": "boolean"}
RATE_LIMIT: Schema = {"type": "integer", "minimum": 0, "maximum": MAX_RATE_LIMIT,
                      "description": "bytes per second, 0 = none"}
SHARE_LIMIT: Schema = {"anyOf": [{"type": "null"}, {"const": -1}, {"type": "number", "minimum": 0}],
                       "description": "null = the service's default, -1 = none, otherwise >= 0"}
EXAMPLE_MAGNET = "magnet:?xt=urn:btih:" + "0123456789abcdef" * 2 + "01234567&dn=example"
CATEGORY_PATH: Schema = {"type": ["string", "null"],
                         "description": "inside the download root; \"\", null or none = the root"}
CONTENT_LAYOUTS = ["original", "subfolder", "no_subfolder"]

_FEED_PATH: Schema = {"type": "string", "description": "names joined by \\ (a feed or folder in folders)"}
_FEEDS_UNDER: Schema = {"type": "string", "description": "the feeds at or below this path (not given: all)"}
_FEED_INTERVAL: Schema = {"type": "number", "description": "seconds between its readings: 0 (the settings') "
                                                           "or at least 60"}
_FEED_RULE: dict[str, Schema] = {
    "name": STRING, "enabled": BOOL,
    "priority": {"type": "integer", "description": "rules are tried lowest first, then by name"},
    "use_regex": BOOL,
    "must_contain": {"type": "string", "description": "a regular expression (use_regex), or wildcard "
                                                      "words (* and ?, all found) separated by |"},
    "must_not_contain": STRING,
    "episode_filter": {"type": "string", "description": "SEASONxEPISODES; (e.g. 1x2;8-15;20-;)"},
    "smart_filter": BOOL,
    "feeds": {"type": "array", "items": STRING, "description": "the feed URLs it reads"},
    "ignore_days": {"type": "integer", "minimum": 0, "maximum": 36_500},
    "previously_matched": {"type": "array", "items": STRING},
    "last_match": _null({"type": "number", "minimum": 0, "maximum": LAST_DATE}),
    "save_path": STRING, "category": STRING, "tags": {"type": "array", "items": STRING},
    "add_paused": _null(BOOL), "content_layout": _null({"type": "string", "enum": CONTENT_LAYOUTS}),
}

_FEATURE_PROPERTIES: dict[str, Schema] = {
    "category": CATEGORY,
    "tags": {"type": "array", "items": TAG},
    "ratio_limit": SHARE_LIMIT,
    "seeding_time_limit": SHARE_LIMIT,
    "idle_seeding_limit": SHARE_LIMIT,
    "force_start": BOOL,
    "first_last_piece": BOOL,
    "content_layout": {"type": "string", "enum": CONTENT_LAYOUTS},
    "rename": {"type": "string", "maxLength": 4 * MAX_NAME, "pattern": r"^[^\x00]*$",
               "description": "the name shown (\"\" = the torrent's own)"},
    "comment": {"type": ["string", "null"], "maxLength": MAX_COMMENT, "pattern": r"^[^\x00]*$",
                "description": "the comment shown (null = the metainfo's own)"},
    "share_limit_action": {"type": ["string", "null"],
                           "enum": ["stop", "remove", "remove_with_files", "super_seed", None],
                           "description": "what a reached share limit does (null = the service's "
                                          "share_limit_action)"},
    "auto_managed": {"type": "boolean", "description": "saved where its category says (its save path, "
                     "else a folder of its name in the download root; none: the root), moved when "
                     "that changes"},
}

_JOB_PROPERTIES: dict[str, Schema] = {
    "id": STRING, "info_hash": STRING, "name": STRING,
    "source": {"type": "string", "description": "the magnet link, or \"torrent\""},
    "options": _ref("JobOptions"),
    "state": _ref("JobState"),
    "created_at": NUMBER, "updated_at": NUMBER, "completed_at": _null(NUMBER),
    "progress": {"type": "number", "minimum": 0, "maximum": 1},
    "total_size": COUNT, "done_size": COUNT, "downloaded": COUNT, "uploaded": COUNT,
    "wasted": {**COUNT, "description": "bytes among those downloaded that were not needed (endgame "
                                       "duplicates, pieces given back)"},
    "corrupt": {**COUNT, "description": "bytes among those downloaded in pieces that failed their "
                                        "hash check (each failure its piece's length)"},
    "run_downloaded": {**COUNT, "description": "bytes of downloaded received in this run of the "
                                               "service (since its start, or the job's add)"},
    "run_uploaded": {**COUNT, "description": "bytes of uploaded sent in this run of the service"},
    "started_at": {**NUMBER, "description": "when the job last began to run (downloading, seeding or "
                   "fetching its metadata) in this run of the service, epoch seconds; 0: not since"},
    "torrent_size": _null({"type": "integer", "minimum": 0,
                           "description": "every file of the torrent together, pad files left out "
                                          "(total_size: the wanted files'); null before the metadata"}),
    "download_rate": NUMBER, "upload_rate": NUMBER, "peers": COUNT, "seeds": COUNT,
    "eta": _null(NUMBER), "error": _null(STRING), "result": _null(_ref("JobResult")),
    "stall": _null(_ref("JobStall")), "features": _ref("JobFeatures"),
    "queue_position": COUNT, "seeding_time": NUMBER, "ratio": NUMBER, "number": COUNT,
    "idle_seeding_time": {"type": "number", "minimum": 0,
                          "description": "seconds of seeding_time since it last sent or received a byte "
                                         "(what an idle_seeding_limit is judged by)"},
    "active_at": _null({"type": "number", "description": "when it last sent or received a byte (Unix "
                                                         "time); null: never yet"}),
    "seen_complete_at": _null({"type": "number", "description": "when a connected peer last had every "
                                                                "piece (Unix time; libtorrent's "
                                                                "last_seen_complete); null: never"}),
    "downloading_time": {"type": "number", "minimum": 0,
                         "description": "seconds spent downloading (its metadata too), all runs together "
                                        "(not paused, queued or checking)"},
    "time_active": {"type": "number", "minimum": 0,
                    "description": "seconds it ran: downloading_time + seeding_time (qBittorrent's "
                                   "time_active)"},
    "availability": _null({"type": "number", "minimum": 0,
                           "description": "distributed copies: how many whole copies of the torrent "
                                          "its connected peers and we hold (the rarest piece's count, plus "
                                          "the share of pieces above it); null while it does not run "
                                          "(paused, queued, checking) or has no metadata"}),
    "missing_files": {"type": "array", "items": STRING,
                      "description": "state error: files that held verified data, found gone"},
    "seed_mode": {"type": "boolean",
                  "description": "seeding data added as complete: every piece counts as had (progress 1), "
                                 "each verified the first time it is served"},
    "verified_pieces": _null({**COUNT, "description": "pieces verified (in seed mode: hashed so far); "
                                                      "null while the job has no session or metadata"}),
    "num_pieces": _null(COUNT),
    "dedup_bytes": {**COUNT, "description": "bytes of its files taken at the add from files held whole "
                                            "(another job's, an indexed folder's) with the same v2 pieces "
                                            "root, or of the same length with its own pieces verifying "
                                            "against them, verified by its check and not downloaded"},
    "tracker_hosts": {"type": "array", "items": STRING,
                      "description": "the hosts of its trackers, once each, in tier order "
                                     "(none: trackerless)"},
    "tracker_issues": {"type": "array", "items": {"type": "string", "enum": list(TRACKER_ISSUES)},
                       "description": "what went wrong with its last announces: a working tracker's "
                                      "warning, a tracker that refused (its failure reason), one with "
                                      "no usable answer or not asked (empty: nothing)"},
    "moving": {"type": "boolean",
               "description": "its files are being moved to another folder (its session stopped meanwhile)"},
}
_JOB_DETAIL: dict[str, Schema] = {
    "files": {"type": "array", "items": _ref("JobFile")},
    "peer_list": {"type": "array", "items": _ref("JobPeer")},
    "trackers": {"type": "array", "items": _ref("JobTracker")},
    "last_program": _null(_ref("ProgramRun")),
}
_COMMAND: Schema = {"type": "string", "description": "a command line, split into arguments as a shell "
                    "would (no shell runs it); placeholders %N %L %G %F %R %D %C %Z %T %I %J %K, %% for %"}
_PROGRAM_SETTINGS: dict[str, Schema] = {
    "run_on_added": _COMMAND, "run_on_added_enabled": BOOL,
    "run_on_completed": _COMMAND, "run_on_completed_enabled": BOOL,
    "run_on_seeding_done": _COMMAND, "run_on_seeding_done_enabled": BOOL,
    "run_timeout": {"type": "number", "minimum": 1},
    "watch_folders": {"type": "object", "additionalProperties": _null(STRING),
                      "description": "absolute folder -> save path (null: the default one)"},
    "watch_enabled": BOOL, "watch_interval": {"type": "number", "minimum": 0.1},
    "watch_delete_added": {"type": "boolean", "description": "a watched file once added is deleted, "
                           "not renamed .added"},
}
_PROXY_SETTINGS: dict[str, Schema] = {
    "proxy_url": {"type": "string", "description": "\"\" (none), or socks5://, socks5h://, socks4://, "
                  "socks4a://, http:// with user:password@ optional (docs/proxy.md)"},
    "proxy_peer_connections": BOOL, "proxy_torrents_only": BOOL,
    "proxy_only": {"type": "boolean", "description": "nothing sent outside the proxy (needs proxy_url)"},
}
_IP_FILTER_SETTINGS: dict[str, Schema] = {
    "ip_filter_enabled": BOOL,
    "ip_filter_path": {"type": "string", "description": "an absolute path to a list file (eMule .dat, "
                       "PeerGuardian .p2p, CIDR lines; gzip or not), \"\" for none"},
    "ip_filter_url": {"type": "string", "description": "an http(s) URL of a list, \"\" for none"},
    "ip_filter_trackers": BOOL,
    "banned_ips": {"type": "array", "items": STRING, "description": "IP addresses, always refused"},
}
_ALT_SPEED_SETTINGS: dict[str, Schema] = {
    "alt_download_limit": RATE_LIMIT, "alt_upload_limit": RATE_LIMIT, "alt_speed_enabled": BOOL,
    "alt_schedule_enabled": BOOL,
    "alt_schedule_from": {"type": "integer", "minimum": 0, "maximum": 1439,
                          "description": "minutes after midnight, local time"},
    "alt_schedule_to": {"type": "integer", "minimum": 0, "maximum": 1439},
    "alt_schedule_days": {"type": "integer", "minimum": 0, "maximum": 127,
                          "description": "a mask: Sunday 1, Monday 2 … Saturday 64"},
}
_PEER_LIMIT: Schema = {"type": "integer", "minimum": -1, "description": "-1: no limit (0 is refused)"}
_PEER_LIMIT_SETTINGS: dict[str, Schema] = {
    "max_connections": _PEER_LIMIT, "max_connections_per_torrent": _PEER_LIMIT,
    "max_uploads": _PEER_LIMIT, "max_uploads_per_torrent": _PEER_LIMIT,
    "connection_speed": {**_PEER_LIMIT, "description": "outgoing connection attempts a second over every "
                         "torrent, the torrents with the fewest peers first; -1: no limit; 0: no outgoing "
                         "connection (incoming peers only)"},
    "block_privileged_ports": {"type": "boolean", "description": "no peer on a privileged port (below "
                               "1024) is dialed; peers connected are kept"},
    "multiple_connections_per_ip": {"type": "boolean", "description": "whether a torrent may hold several "
                                    "connections with one IP address (off: one, the others refused)"},
    "seeding_choker": {"type": "string", "enum": ["round_robin", "fastest_upload", "anti_leech"],
                       "description": "whom a seeding torrent uploads to: each in turn, the fastest, or "
                                      "first those that have just begun or nearly finished"},
    "announce_ip": {"type": "string", "maxLength": 253,
                    "description": "the address trackers are told to hand out for this host (an IP "
                                   "address, or a host name for HTTP trackers; \"\": the one they see)"},
    "stop_tracker_timeout": {"type": "number", "minimum": 0, "maximum": MAX_STOP_TRACKER_TIMEOUT,
                             "description": "seconds a stopping torrent gives its trackers' stopped "
                                            "announces; 0: none is sent"},
    "max_concurrent_http_announces": {"type": "integer", "minimum": 1, "maximum": MAX_HTTP_ANNOUNCES,
                                      "description": "HTTP(S) tracker announces in flight at once over "
                                                     "every torrent"},
    "recheck_on_completion": {"type": "boolean", "description": "a download that completes has its files "
                              "hashed again before it counts as complete (what is missing is downloaded)"},
    "partial_file_suffix": {"type": "string", "pattern": f"^{PARTIAL_SUFFIX.pattern}$",
                            "description": "a suffix each incomplete file carries on disk until its last "
                                           "piece is verified (\".!qB\", \".part\"); \"\": none"},
    "resume_save_interval": {"type": "number", "minimum": 0,
                             "description": "seconds between saves of a running torrent's resume data "
                                            "when it changed; 0: only at a stop, a pause, a completion"},
    "peer_turnover": {"type": "integer", "minimum": 0, "maximum": 100,
                      "description": "percent of a torrent's peers dropped, its worst first, at each "
                                     "peer_turnover_interval while it is at peer_turnover_cutoff percent "
                                     "of its connection limit and has other addresses to try; 0: never"},
    "peer_turnover_cutoff": {"type": "integer", "minimum": 0, "maximum": 100,
                             "description": "percent of its connection limit a torrent reaches before "
                                            "peer turnover drops any of its peers"},
    "peer_turnover_interval": {"type": "number", "minimum": 1,
                               "description": "seconds between peer turnover's looks at a torrent"},
    "ssrf_mitigation": {"type": "boolean", "description": "tracker URLs holding announce arguments refused; "
                        "trackers on this host asked only at /announce (/scrape); web seeds on the local "
                        "network without a query string, and none redirected there from the internet"},
    "reannounce_when_address_changed": {"type": "boolean", "description": "every torrent announces to its "
                                        "trackers at once when the gateway (port mapping) or the DHT's votes "
                                        "say another external address than before"},
}
_MAX_PEERS: Schema = {"type": "integer", "minimum": 0, "maximum": MAX_JOB_PEERS,
                      "description": "the job's connections at most; 0: max_connections_per_torrent"}
_SUPER_SEEDING: Schema = {"type": "boolean", "description": "BEP 16 while the job seeds: peers that "
                          "connect are told of one rare piece at a time (a downloading job ignores it)"}
_GROUP_NAME: Schema = {"type": "string", "minLength": 1, "maxLength": MAX_GROUP_NAME}
_JOB_GROUP: Schema = {"type": "string", "maxLength": MAX_GROUP_NAME,
                      "description": "the bandwidth group the job names (\"\": none of its own; its "
                                     "category's or tags' group may take it); an unknown group is a 409"}
_GROUP_FIELDS: dict[str, Schema] = {
    "weight": {"type": "integer", "minimum": 1, "maximum": MAX_WEIGHT,
               "description": "its share of the global limits while they bind, against the other "
                              "groups' that want more (the jobs of no group: weight 1)"},
    "download_limit": RATE_LIMIT, "upload_limit": RATE_LIMIT,
    "honors_global": {"type": "boolean", "description": "its traffic passes the global limits (else "
                      "only its own, and it takes no share of them)"},
    "categories": {"type": "array", "items": CATEGORY, "description": "the jobs of these categories "
                   "are in the group (unless they name a group)"},
    "tags": {"type": "array", "items": TAG, "description": "the jobs with one of these tags are in "
             "the group (unless they name one, or their category's group takes them)"},
}
_IP_LIST = _obj({"source": STRING, "ranges": COUNT, "rules": COUNT, "bad_lines": COUNT,
                 "first_bad": {"type": "array", "items": _obj({"line": COUNT, "reason": STRING},
                                                              ["line", "reason"])},
                 "read_at": _null(NUMBER), "error": _null(STRING)},
                ["source", "ranges", "rules", "bad_lines", "first_bad", "read_at", "error"])
_BIND_SETTINGS: dict[str, Schema] = {
    "bind_interface": {"type": "string", "description": "\"\" (any), or the one network interface every "
                       "socket is bound to (Linux; docs/daemon.md)"},
    "bind_address": {"type": "string", "description": "\"\" (any of the interface's), or one of its "
                     "addresses as the source and listen address"},
}
_STOP_CONDITION: Schema = {
    "type": "string", "enum": list(STOP_CONDITIONS),
    "description": "when a new job stops (pauses) by itself: none, once its metainfo is known "
                   "(metadata_received: a .torrent is added paused), or once its data was checked "
                   "(files_checked); at an add, null or absent: the stop_condition setting"}

_PEER_NETWORK_SETTINGS: dict[str, Schema] = {
    "listen_port": {"type": "integer", "minimum": 0, "maximum": 65535,
                    "description": "the port peers connect to (TCP and uTP), kept across starts; 0 asks "
                                   "for a free one, chosen then (the answer says which); a port that "
                                   "cannot be listened on is a 400 naming it"},
    "random_port": {"type": "boolean",
                    "description": "a new free port chosen at each start (listen_port says which)"},
    "dht_enabled": BOOL, "pex_enabled": BOOL, "lsd_enabled": BOOL,
    "encryption": {"type": "string", "enum": ["prefer", "require", "disable"],
                   "description": "MSE/PE for new connections, in and out"},
    "transport": {"type": "string", "enum": list(TRANSPORTS),
                  "description": "the protocols of new connections, in and out: any (uTP and TCP, uTP "
                                 "dialed first), tcp or utp alone"},
    "default_trackers": {"type": "array", "items": {"type": "array", "items": STRING},
                         "description": "tiers of tracker URLs (http, https, udp) every new torrent that "
                                        "is not private announces to after its own, kept in its trackers, "
                                        "while default_trackers_enabled"},
    "default_trackers_enabled": BOOL,
    "excluded_file_names": {"type": "array", "maxItems": 1000,
                            "items": {"type": "string", "minLength": 1, "maxLength": 1000},
                            "description": "file name patterns (* any characters, ? one, [...] one of a "
                                           "set; any case; no '/') whose files new torrents do not "
                                           "download: a file's name or a folder of it matching one, "
                                           "at an add that chooses no files, while "
                                           "excluded_file_names_enabled"},
    "excluded_file_names_enabled": BOOL,
    "stop_condition": _STOP_CONDITION,
    "add_paused": {"type": "boolean", "description": "new jobs are added paused unless their add says"},
    "add_to_top_of_queue": {"type": "boolean", "description": "new jobs take the first place in the queue "
                            "unless their add says (queue_top)"},
    "merge_trackers": {"type": "boolean", "description": "a torrent added again gives the job the trackers "
                       "and web seeds it lacks (not a private one's)"},
    "auto_managed_adds": {"type": "boolean", "description": "a qBittorrent add that does not say (autoTMM) "
                          "is managed automatically: saved where its category says"},
    "relocate_on_category_change": {"type": "boolean", "description": "a job managed automatically whose "
                                    "category changes moves to the new one's folder (else it is managed "
                                    "by hand from then on, where it is)"},
    "relocate_on_category_path_change": {"type": "boolean", "description": "the jobs managed automatically "
                                         "of a category whose save path changes move there (else they are "
                                         "managed by hand from then on, where they are)"},
    "torrent_export_dir": {"type": "string",
                           "description": "a folder inside the download root (\"\": none) where a copy "
                                          "of each new job's .torrent is written, its metainfo known"},
    "finished_torrent_export_dir": {"type": "string",
                                    "description": "a folder inside the download root (\"\": none) where a "
                                                   "copy of each finished download's .torrent is written"},
    "login_max_failures": {"type": "integer", "minimum": 0, "maximum": MAX_LOGIN_FAILURES,
                           "description": "failed logins from one address, each within login_ban_time "
                                          "of the next, that have it refused (0: never)"},
    "login_ban_time": {"type": "number", "minimum": 1,
                       "description": "seconds an address is refused from its last failed login"},
    "disk_reserve": {"type": "integer", "minimum": 0, "maximum": MAX_DISK_RESERVE,
                     "description": "bytes a download leaves free on its disk (0: none): below, it "
                                    "stops until there is room again"},
    "torrent_file_size_limit": {"type": "integer", "minimum": TORRENT_FILE_LIMIT_LEAST,
                                "maximum": TORRENT_FILE_LIMIT_MOST,
                                "description": "bytes of the largest .torrent added, at every door"},
    "rss_processing_enabled": {"type": "boolean", "description": "the feeds are read (qBittorrent's rss/*)"},
    "rss_refresh_interval": {"type": "number", "minimum": 60,
                             "description": "seconds between two readings of a feed (its own interval "
                                            "aside)"},
    "rss_fetch_delay": {"type": "integer", "minimum": 0, "maximum": MAX_FEED_FETCH_DELAY,
                        "description": "whole seconds between two fetches of feeds from one host (and port), "
                                       "fetched one at a time"},
    "rss_max_articles_per_feed": {"type": "integer", "minimum": 1, "maximum": MAX_FEED_ARTICLES,
                                  "description": "articles each feed keeps, the newest"},
    "rss_auto_downloading_enabled": {"type": "boolean",
                                     "description": "new articles are offered to the download rules"},
    "rss_smart_episode_filters": {"type": "array", "minItems": 1, "maxItems": MAX_PATTERNS,
                                  "items": {"type": "string", "minLength": 1, "maxLength": 500},
                                  "description": "regular expressions whose groups name a title's episode, "
                                                 "for the rules' smart filter"},
    "rss_download_repack_proper_episodes": {"type": "boolean",
                                            "description": "the smart filter takes a REPACK or PROPER of "
                                                           "an episode taken, once"},
    "limit_lan_peers": {"type": "boolean", "description": "the global limits (and the bandwidth groups') "
                        "apply to peers on the local network too (loopback, private, link-local "
                        "addresses); off, those pass their torrent's own limit alone"},
    "mail_enabled": {"type": "boolean", "description": "a mail is sent when a download completes (needs "
                                                       "mail_server, mail_from and mail_to)"},
    "mail_from": {"type": "string", "maxLength": 254, "description": "the sender's address (\"\": none)"},
    "mail_to": {"type": "string", "description": "the recipients' addresses, separated by commas"},
    "mail_server": {"type": "string", "maxLength": 256,
                    "description": "the SMTP server: host, or host:port (465 with mail_ssl, else 25)"},
    "mail_ssl": {"type": "boolean", "description": "TLS from the first byte (else STARTTLS when the "
                                                   "server offers it); its certificate verified"},
    "mail_auth_enabled": {"type": "boolean", "description": "log in with mail_username and mail_password"},
    "mail_username": {"type": "string", "maxLength": 256},
    "mail_password": {"type": "string", "maxLength": 256,
                      "description": "shown to an admin alone (\"***\" to others when one is set)"},
}

_CREATION_VERSION: Schema = {"type": "string", "enum": list(VERSIONS),
                             "description": "BEP 3, BEP 52, or both (hybrid, as not given)"}
_PIECE_LENGTHS = [1 << n for n in range(MIN_PIECE_LENGTH.bit_length() - 1, LARGEST_PIECE.bit_length())]
_TIERS: Schema = {"type": "array", "items": {"type": "array", "items": STRING},
                  "description": "BEP 12 tiers, each a list of http(s) or udp URLs with a host (blank ones "
                                 "and empty tiers left out)"}

SCHEMAS: dict[str, Schema] = {
    "Error": _obj({"error": STRING, "field": {"type": "string", "description": "the offending input"}},
                  ["error"]),
    "JobState": {"type": "string", "enum": [s.value for s in JobState]},
    "Job": _obj({**_JOB_PROPERTIES, **_JOB_DETAIL}, _JOB_PROPERTIES,
                description="A job (the detail fields only in a single job's answers)"),
    "JobDetail": {"allOf": [_ref("Job"), {"required": sorted(_JOB_DETAIL)}]},
    "JobList": _obj({"jobs": {"type": "array", "items": _ref("Job")}}, ["jobs"]),
    "JobPage": _obj({
        "jobs": {"type": "array", "items": _ref("Job"),
                 "description": "the jobs (with since: those changed after it), newest first"},
        "cursor": {"type": "integer", "minimum": 0,
                   "description": "the change log's cursor of this answer: ask ?since= it next time"},
        "removed": {"type": "array", "items": STRING,
                    "description": "with since: the ids of the jobs removed after it"},
        "full": {"type": "boolean", "description": "with since: true when the cursor was not known (too "
                 "old, or of an earlier run) and jobs is every job: drop any other job held"}},
        ["jobs", "cursor"]),
    "JobOptions": _obj({
        "save_path": STRING, "files": _null({"type": "array", "items": COUNT}),
        "sequential": BOOL, "paused": BOOL, "peers": {"type": "array", "items": STRING},
        "client": _null(STRING), "download_limit": RATE_LIMIT, "upload_limit": RATE_LIMIT,
        "seed_mode": BOOL,
        "download_path": _null({"type": "string", "description": "the incomplete folder the data is in while "
                                "the job downloads (moved to save_path once complete); null: at save_path"}),
        "max_peers": _MAX_PEERS, "super_seeding": _SUPER_SEEDING, "group": _JOB_GROUP,
        "owner": {"type": "string", "description": "the user who added the job (\"\": the admin's)"},
    }, ["save_path", "files", "sequential", "paused", "peers", "client", "download_limit",
        "upload_limit", "seed_mode", "download_path", "max_peers", "super_seeding", "group", "owner"]),
    "JobFeatures": _obj(_FEATURE_PROPERTIES, _FEATURE_PROPERTIES),
    "JobResult": _obj({"downloaded": COUNT, "uploaded": COUNT, "duration": NUMBER,
                       "average_rate": NUMBER, "error": _null(STRING)},
                      ["downloaded", "uploaded", "duration", "average_rate", "error"]),
    "JobStall": _obj({"reason": STRING, "message": STRING, "since": NUMBER},
                     ["reason", "message", "since"]),
    "JobFile": _obj({"index": COUNT, "path": STRING, "size": COUNT,
                     "progress": {"type": "number", "minimum": 0, "maximum": 1},
                     "priority": {"type": "integer", "minimum": 0, "maximum": 7}, "selected": BOOL},
                    ["index", "path", "size", "progress", "priority", "selected"]),
    "JobPeer": _obj({"address": STRING, "client": STRING, "download_rate": NUMBER,
                     "upload_rate": NUMBER, "progress": NUMBER,
                     "transport": {"type": "string", "enum": ["tcp", "utp"]},
                     "sources": {"type": "array", "items": {"type": "string", "enum": list(PEER_SOURCES)},
                                 "description": "where the peer was heard of (incoming: it dialed us)"},
                     "downloaded": {**COUNT, "description": "payload bytes received from it over this "
                                    "connection"},
                     "uploaded": {**COUNT, "description": "payload bytes sent to it over this connection"},
                     "relevance": {"type": "number", "minimum": 0, "maximum": 1,
                                   "description": "the share of the pieces we lack that it has "
                                   "(0: we lack none)"},
                     "files": {"type": "array", "items": STRING,
                               "description": "the files of the piece being downloaded from it (none: "
                               "nothing is asked of it)"},
                     "peer_id": {"type": "string", "pattern": "^([0-9a-f]{40})?$",
                                 "description": "the peer id of its handshake, in hex (\"\": not known)"},
                     "wire": {"type": "array", "items": {"type": "string", "enum": list(WIRE_STATES)},
                              "description": "its connection's state now: we want its pieces "
                              "(am_interested), it chokes us, it wants ours, we choke it, unchoked "
                              "as our optimistic unchoke, snubbed, RC4 payload, MSE handshake"}},
                    ["address", "client", "download_rate", "upload_rate", "progress", "transport",
                     "wire", "sources", "downloaded", "uploaded", "relevance", "files", "peer_id"]),
    "JobTracker": _obj({"url": STRING, "status": {"type": "string", "enum": ["working", "failed", "unknown"]},
                        "message": STRING, "peers": COUNT,
                        "tier": {**COUNT, "description": "its BEP 12 tier (0 first)"},
                        "seeds": _null({**COUNT, "description": "the swarm's seeders, as its last answer "
                                                                "said"}),
                        "leechers": _null({**COUNT, "description": "the swarm's leechers, as its last "
                                                                   "answer said"}),
                        "downloaded": _null({**COUNT, "description": "times the torrent was downloaded "
                                                                     "whole, as the tracker's last scrape "
                                                                     "said (null: not scraped yet)"}),
                        "scrape_error": _null({**STRING, "description": "why its last scrape failed "
                                                                        "(null: it did not)"}),
                        "announced_at": _null({"type": "number", "description": "epoch seconds its last "
                                               "announce ended (null: none yet)"}),
                        "next_announce_at": _null({"type": "number", "description": "epoch seconds of its "
                                                   "next announce as scheduled, after a failure its retry "
                                                   "(null: not known, or never again)"}),
                        "min_announce_at": _null({"type": "number", "description": "epoch seconds before "
                                                  "which its min interval asks for no announce "
                                                  "(null: none)"}),
                        "failure": {"type": ["string", "null"], "enum": ["refused", "skipped", "error", None],
                                    "description": "how its last announce failed: the tracker's failure "
                                                   "reason, not asked (the settings forbid it), no usable "
                                                   "answer (null: it did not fail)"},
                        "warning": {**STRING, "description": "the warning message the tracker gave with "
                                    "its last answer when it worked, kept through announces it gave no "
                                    "answer to (\"\": none)"},
                        "refusal": {**STRING, "description": "the failure reason of its last answer when "
                                    "it refused the announce, kept through announces it gave no answer "
                                    "to (\"\": none)"},
                        "updating": {"type": "boolean", "description": "an announce to it waits for its "
                                     "answer now (GET /api/jobs/{id} alone)"}},
                       ["url", "status", "message", "peers", "tier", "seeds", "leechers", "downloaded",
                        "scrape_error", "announced_at", "next_announce_at", "min_announce_at", "failure",
                        "warning", "refusal"]),
    "AddJob": _obj({
        "source": {"type": "string", "minLength": 1, "format": "torrent-source",
                   "pattern": f"^({_MAGNET}|{_HTTP_URL}|{_BASE64})$",  # (the URL: as a web seed's)
                   "description": "a magnet link (btih or btmh; or a BEP 46 btpk link, resolved over the "
                                  "DHT), an http(s) URL of a .torrent (fetched by the add), or a .torrent "
                                  "encoded in base64",
                   "examples": [EXAMPLE_MAGNET]},
        "save_path": {**PATH, "minLength": 1,
                      "description": "relative to the download root, or absolute inside it"},
        "files": {"type": "array", "items": COUNT, "minItems": 1,
                  "description": "the file indices to download (leave it out for every file)"},
        "sequential": BOOL,
        "paused": {"type": "boolean", "description": "added paused; absent: the add_paused setting"},
        "peers": {"type": "array", "items": PEER, "examples": [["127.0.0.1:6881"]]},
        "client": {"type": "string", "description": "a lease id"},
        "download_limit": _null(RATE_LIMIT), "upload_limit": _null(RATE_LIMIT),
        "seed_mode": {"type": "boolean", "default": False,
                      "description": "the data is complete in the save path already (a cross-seed): seed at "
                                     "once without checking it; each piece is verified the first time it is "
                                     "served, and one that fails has the whole torrent checked"},
        "download_path": {**PATH,
                          "description": "the folder the data goes to while it downloads, moved to the "
                                         "save path once complete (\"\": none; absent: the incomplete_dir "
                                         "setting)"},
        "file_priorities": {"type": "object", "additionalProperties": False,
                            "patternProperties": {"^[0-9]+$": {"type": "integer", "minimum": 0,
                                                               "maximum": 7}},
                            "description": "{file index: priority} over the selection's (a .torrent's "
                                           "files only), 0 = skip the file"},
        "queue_top": {"type": "boolean", "description": "first in the queue rather than last; absent: "
                      "the setting add_to_top_of_queue"},
        "max_peers": _null(_MAX_PEERS),
        "stop_condition": _null(_STOP_CONDITION),
        **_FEATURE_PROPERTIES,
    }, ["source"], closed=False),
    # (a magnet's files are not known at the add: no file priorities, the original layout only)
    "AddJobMagnet": {"if": {"properties": {"source": {"pattern": "^magnet:"}}},
                     "then": {"properties": {"content_layout": {"const": "original"},
                                             "file_priorities": {"maxProperties": 0}}}},
    # (a job managed automatically is saved where its category says: it takes no save path)
    "AddJobManaged": {"not": {"properties": {"auto_managed": {"const": True}},
                              "required": ["auto_managed", "save_path"]}},
    "AddJobUpload": _obj({
        "torrent": {"type": "string", "contentMediaType": "application/x-bittorrent", "minLength": 1},
        "save_path": PATH, "sequential": STRING, "client": STRING,
        "paused": {"type": "string", "description": "true: added paused; absent: the add_paused setting"},
        "seed_mode": STRING, "download_path": PATH,
        "peers": {"type": "string", "pattern": f"^[{_SPACE},]*({_LISTED_PEER}([{_SPACE},]+{_LISTED_PEER})*)?"
                                               f"[{_SPACE},]*$",
                  "description": "HOST:PORT, separated by spaces or commas"},
    }, ["torrent"], closed=False),
    "UpdateJob": _obj({
        "file_priorities": _null({"type": "object", "additionalProperties": False,
                                  "patternProperties": {"^[0-9]+$": {"type": "integer", "minimum": 0,
                                                                     "maximum": 7}},
                                  "description": "{file index: priority}, 0 = skip the file (409 "
                                                 "while a magnet's metadata has not come)"}),
        "sequential": _null(BOOL), "download_limit": _null(RATE_LIMIT),
        "upload_limit": _null(RATE_LIMIT), "max_peers": _null(_MAX_PEERS),
        "super_seeding": _null(_SUPER_SEEDING), "group": _null(_JOB_GROUP), **_FEATURE_PROPERTIES,
        "category": {**CATEGORY, "description": "\"\" = none, or a category that exists (409 otherwise)"},
        "content_layout": {"type": "string", "enum": CONTENT_LAYOUTS,
                           "description": "the job's own only: the layout is chosen at the add (409)"},
    }),
    "Removed": _obj({"removed": COUNT}, ["removed"]),
    "BulkAction": _obj({
        "action": {"type": "string",
                   "enum": ["pause", "resume", "recheck", "reannounce", "cancel", "forget", "update"],
                   "description": "what each route does to one job; forget: a finished job "
                                  "leaves the history; update: PATCH /api/jobs/{id} with changes"},
        "ids": {"type": "array", "items": STRING, "minItems": 1},
        "delete_files": _null(BOOL),
        "changes": _null(_ref("UpdateJob"))}, ["action", "ids"], closed=False),
    "BulkDone": _obj({
        "action": STRING,
        "done": {"type": "array", "items": STRING, "description": "the jobs it was done to"},
        "removed": {"type": "array", "items": STRING, "description": "of those, the ones now gone"},
        "failed": {"type": "array", "items": _obj({"id": STRING, "status": COUNT, "error": STRING},
                                                  ["id", "status", "error"])},
        "jobs": {"type": "array", "items": _ref("Job"), "description": "the done jobs, as they are now"}},
        ["action", "done", "removed", "failed", "jobs"]),
    "Ticket": _obj({"ticket": STRING, "expires_in": NUMBER}, ["ticket", "expires_in"]),
    "Login": _obj({"name": STRING, "password": STRING}, ["name", "password"]),
    "Session": _obj({"token": {"type": "string", "description": "sent as Authorization: Bearer"},
                     "name": STRING, "role": {"type": "string", "enum": ["admin", "user", "viewer"]},
                     "scopes": {"type": "array", "items": STRING}}, ["token", "name", "role", "scopes"]),
    "LoggedOut": _obj({"logged_out": BOOL}, ["logged_out"]),
    "Stopping": _obj({"status": {"type": "string", "enum": ["stopping"]}}, ["status"]),
    "ApiKey": _obj({"id": STRING, "prefix": STRING, "scopes": {"type": "array", "items": STRING},
                    "created_at": NUMBER}, ["id", "prefix", "scopes", "created_at"]),
    "NewApiKey": _obj({"id": STRING, "prefix": STRING, "scopes": {"type": "array", "items": STRING},
                       "created_at": NUMBER,
                       "key": {"type": "string", "description": "the key, shown this once"}},
                      ["id", "prefix", "scopes", "created_at", "key"]),
    "User": _obj({"name": STRING, "role": {"type": "string", "enum": ["admin", "user", "viewer"]},
                  "max_torrents": COUNT, "max_bytes": COUNT,
                  "keys": {"type": "array", "items": _ref("ApiKey")},
                  "categories": {"type": "array", "items": STRING},
                  "tags": {"type": "array", "items": STRING},
                  "created_at": NUMBER},
                 ["name", "role", "max_torrents", "max_bytes", "keys", "categories", "tags", "created_at"]),
    "UserList": _obj({"users": {"type": "array", "items": _ref("User")}}, ["users"]),
    "NewUser": _obj({"name": STRING, "role": {"type": "string", "enum": ["admin", "user", "viewer"]},
                     "password": STRING, "max_torrents": COUNT, "max_bytes": COUNT},
                    ["name", "role", "password"]),
    "EditUser": _obj({"password": STRING, "role": {"type": "string", "enum": ["admin", "user", "viewer"]},
                      "max_torrents": COUNT, "max_bytes": COUNT}),
    "NewKey": _obj({"scopes": {"type": "array", "items": {"type": "string",
                                                          "enum": ["read", "add", "control", "admin"]}}},
                   ["scopes"]),
    "UserRemoved": _obj({"removed": STRING}, ["removed"]),
    "KeyRevoked": _obj({"revoked": STRING}, ["revoked"]),
    "Me": _obj({"name": {"type": "string", "description": "the user (\"\": the API token, an admin)"},
                "role": {"type": "string", "enum": ["admin", "user", "viewer"]},
                "scopes": {"type": "array", "items": STRING},
                "users": {"type": "boolean", "description": "whether the daemon has users"}},
               ["name", "role", "scopes", "users"]),
    "StreamToken": _obj({"token": STRING, "files": {"type": "array", "items": _obj(
        {"index": COUNT, "path": STRING, "url": STRING}, ["index", "path", "url"])}}, ["token", "files"]),
    "OpenLease": _obj({"ttl": {"type": "number", "minimum": 1, "maximum": 86400, "default": 60},
                       "replaces": _null(STRING)}, closed=False),
    "Lease": _obj({"id": STRING, "ttl": NUMBER, "expires_at": NUMBER}, ["id", "ttl", "expires_at"]),
    "LeaseEnded": _obj({"ended": STRING}, ["ended"]),
    "Health": _obj({"status": {"type": "string", "enum": ["ok", "starting"]}, "version": STRING,
                    "lost_jobs": {"type": "array", "items": _obj({"record": STRING, "reason": STRING},
                                                                 ["record", "reason"])}},
                   ["status", "version", "lost_jobs"]),
    "Stats": _obj({"download_rate": NUMBER, "upload_rate": NUMBER, "downloaded": COUNT,
                   "uploaded": COUNT, "listen_port": COUNT, "dht_nodes": COUNT,
                   "jobs": {"type": "object", "additionalProperties": COUNT,
                            "description": "the number of jobs in each state"},
                   "peers": COUNT, "port_mapping": _null(_ref("PortMapping")),
                   "transfer": _obj({"session": _ref("TransferCounts"), "all_time": _ref("TransferCounts")},
                                    ["session", "all_time"]),
                   "queued_announces": {**COUNT, "description": "tracker announces and scrapes waiting "
                                        "for a slot (active_tracker_limit, max_concurrent_http_announces)"},
                   "request_latency": {**COUNT, "description": "microseconds a piece a peer asked for "
                                       "takes to be read from disk, each read weighing 5 % (libtorrent's "
                                       "disk.request_latency)"},
                   "incoming_connections": {"type": "boolean", "description": "a peer connected from "
                                            "outside this host and its local network since the port "
                                            "opened: it is reachable (qBittorrent's connected, else "
                                            "firewalled; libtorrent's has_incoming_connections)"},
                   "free_space": _null({"type": "integer", "minimum": 0, "description":
                                        "bytes free where the downloads go (GET /api/stats only; "
                                        "null: the folder cannot be read)"})},
                  ["download_rate", "upload_rate", "downloaded", "uploaded", "listen_port",
                   "dht_nodes", "jobs", "peers", "port_mapping", "transfer", "queued_announces",
                   "request_latency", "incoming_connections"]),
    "TransferCounts": _obj({
        "downloaded": {**COUNT, "description": "payload bytes received (a job that left keeps its part)"},
        "uploaded": {**COUNT, "description": "payload bytes sent"},
        "added": {**COUNT, "description": "torrents added"},
        "seconds_active": {**COUNT, "description": "seconds the service ran"},
        "session_count": {**COUNT, "description": "times it started (this run: 1)"},
        "wasted": {**COUNT, "description": "bytes among those downloaded not needed or in pieces "
                                           "that failed their hash check"}},
        ["downloaded", "uploaded", "added", "seconds_active", "session_count", "wasted"]),
    "StatsHistory": _obj({
        "interval": NUMBER,
        "samples": {"type": "array", "items": _obj(
            {"time": NUMBER, "download_rate": NUMBER, "upload_rate": NUMBER, "peers": COUNT},
            ["time", "download_rate", "upload_rate", "peers"])}},
        ["interval", "samples"]),
    "PortMapping": _obj({
        "method": {"type": "string", "enum": ["", "natpmp", "upnp"],
                   "description": "what the gateway answered to (\"\": none yet)"},
        "external_ip": _null(STRING), "error": _null(STRING),
        "mappings": {"type": "array", "items": _obj(
            {"protocol": {"type": "string", "enum": ["tcp", "udp"]}, "internal_port": COUNT,
             "external_port": COUNT, "lifetime": COUNT},
            ["protocol", "internal_port", "external_port", "lifetime"])}},
        ["method", "external_ip", "error", "mappings"]),
    "ProgramRun": _obj({
        "event": {"type": "string", "enum": ["added", "completed", "seeding_done"]},
        "argv": {"type": "array", "items": STRING}, "started_at": NUMBER, "duration": NUMBER,
        "exit_code": _null({"type": "integer",
                            "description": "null: not started, or killed at the time limit"}),
        "timed_out": BOOL, "error": _null(STRING),
        "output": {"type": "string", "description": "the tail of its stdout and stderr"}},
        ["event", "argv", "started_at", "duration", "exit_code", "timed_out", "error", "output"]),
    "Category": _obj({"name": STRING, "save_path": STRING}, ["name", "save_path"]),
    "CategoryList": _obj({"categories": {"type": "array", "items": _ref("Category")}}, ["categories"]),
    "NewCategory": _obj({"name": {"type": "string", "minLength": 1}, "save_path": CATEGORY_PATH},
                        ["name"], closed=False),
    "EditCategory": _obj({"save_path": CATEGORY_PATH}, closed=False),
    "CategoriesRemoved": _obj({"removed": {"type": "array", "items": STRING}}, ["removed"]),
    "TagList": _obj({"tags": {"type": "array", "items": STRING}}, ["tags"]),
    "BandwidthGroup": _obj({"name": _GROUP_NAME, **_GROUP_FIELDS,
                            "jobs": {**COUNT, "description": "how many unfinished jobs are in it now"}},
                           ["name", *_GROUP_FIELDS, "jobs"]),
    "BandwidthGroupList": _obj({"groups": {"type": "array", "items": _ref("BandwidthGroup")}}, ["groups"]),
    "NewBandwidthGroup": _obj({"name": _GROUP_NAME, **_GROUP_FIELDS}, ["name"]),
    "EditBandwidthGroup": _obj(_GROUP_FIELDS),
    "BandwidthGroupRemoved": _obj({"removed": _GROUP_NAME}, ["removed"]),
    "JobGroup": _obj({"group": _JOB_GROUP,
                      "in": {"type": "string", "description": "the group the job is in now: its own, else "
                             "its category's, else its tags' (\"\": none)"}}, ["group", "in"]),
    "SetJobGroup": _obj({"group": _JOB_GROUP}, ["group"]),
    # (a request's body: other fields are passed over, as every body of the API's)
    "NewTags": _obj({"tags": {"type": "array", "items": STRING}}, ["tags"], closed=False),
    "Settings": _obj({
        "ratio_limit": NUMBER, "seeding_time_limit": NUMBER,
        "idle_seeding_limit": {"type": "number", "description": "seconds seeding without sending or "
                               "receiving a byte; -1: none"},
        "share_limit_action": {"type": "string",
                               "enum": ["stop", "remove", "remove_with_files", "super_seed"]},
        "queueing": BOOL, "max_active_downloads": {"type": "integer", "minimum": -1},
        "max_active_uploads": {"type": "integer", "minimum": -1},
        "max_active_torrents": {"type": "integer", "minimum": -1},
        "dont_count_slow_torrents": {"type": "boolean", "description": "a running job slower than both "
                                     "slow rates for slow_torrent_inactive_time counts in no maximum"},
        "slow_torrent_download_rate": {"type": "integer", "minimum": 0, "description": "bytes per second"},
        "slow_torrent_upload_rate": {"type": "integer", "minimum": 0, "description": "bytes per second"},
        "slow_torrent_inactive_time": {"type": "number", "minimum": 1, "description": "seconds"},
        "max_active_checking": {"type": "integer", "minimum": -1, "not": {"const": 0},
                                "description": "torrents hashing their data at once; -1: no limit"},
        "download_limit": RATE_LIMIT, "upload_limit": RATE_LIMIT,
        "kept_limits": {"type": "object", "additionalProperties": NUMBER, "description": "the value each "
                        "of download_limit, upload_limit, ratio_limit, idle_seeding_limit had when last "
                        "turned off, while it is off (a client shows it beside the limit's switch)"},
        "dedup": {"type": "string", "enum": list(DEDUP_MODES), "description": "how a "
                  "new job's file held whole already (a complete job's, an indexed folder's) is taken "
                  "(reflink and hardlink fall back to a copy); off: none is"},
        "dedup_folders": {"type": "array", "items": STRING, "description": "absolute folders whose files "
                          "are held too (walked every 15 minutes and when changed)"},
        "incomplete_dir_enabled": BOOL,
        "incomplete_dir": {"type": "string", "description": "inside the download root (\"\": its folder "
                           "incomplete); new jobs download there, then move to their save path"},
        **_PROGRAM_SETTINGS, **_PROXY_SETTINGS, **_IP_FILTER_SETTINGS, **_ALT_SPEED_SETTINGS,
        **_PEER_LIMIT_SETTINGS, **_BIND_SETTINGS, **_PEER_NETWORK_SETTINGS,
    }, ["ratio_limit", "seeding_time_limit", "idle_seeding_limit", "share_limit_action", "queueing",
        "max_active_downloads", "max_active_uploads", "max_active_torrents", "max_active_checking",
        "dont_count_slow_torrents", "slow_torrent_download_rate", "slow_torrent_upload_rate",
        "slow_torrent_inactive_time", "download_limit", "upload_limit", "kept_limits", "dedup",
        "dedup_folders", "incomplete_dir_enabled", "incomplete_dir", *_PROGRAM_SETTINGS, *_PROXY_SETTINGS,
        *_IP_FILTER_SETTINGS, *_ALT_SPEED_SETTINGS, *_PEER_LIMIT_SETTINGS, *_BIND_SETTINGS,
        *_PEER_NETWORK_SETTINGS]),
    "IpFilterStatus": _obj({"enabled": BOOL, "trackers": BOOL, "ranges": COUNT, "list_ranges": COUNT,
                            "banned": COUNT, "file": _null(_IP_LIST), "url": _null(_IP_LIST)},
                           ["enabled", "trackers", "ranges", "list_ranges", "banned", "file", "url"]),
    "WatchStatus": _obj({
        "enabled": BOOL, "interval": NUMBER,
        "folders": {"type": "array", "items": _obj(
            {"folder": STRING, "save_path": _null(STRING),
             "error": _null({"type": "string", "description": "why it cannot be read now"})},
            ["folder", "save_path", "error"])},
        "recent": {"type": "array", "description": "the files handled lately, newest first",
                   "items": _obj({"time": NUMBER, "file": STRING, "added": BOOL, "job_id": _null(STRING),
                                  "reason": _null({"type": "string", "description": "why it was refused "
                                                                                     "(renamed .invalid)"})},
                                 ["time", "file", "added", "job_id", "reason"])}},
        ["enabled", "interval", "folders", "recent"]),
    "TestMail": _obj({"sent": {"type": "boolean", "const": True}, "to": STRING, "server": STRING},
                     ["sent", "to", "server"]),
    "UrlCookies": _obj({"cookies": {"type": "array", "maxItems": 512, "items": _obj({
        "name": {"type": "string", "minLength": 1, "description": "a token (RFC 6265)"},
        "value": {"type": "string", "description": "printable ASCII, no ';'"},
        "domain": {"type": "string", "minLength": 1,
                   "description": "the host it goes to; with a leading '.', its sub-domains too"},
        "path": {"type": "string", "description": "\"\" (every path) or a path starting with '/'"},
        "expires": {"type": ["integer", "null"],
                    "description": "epoch seconds; null: until the daemon stops"},
    }, ["name", "value", "domain"])}}, ["cookies"]),
    "Reannounce": _obj({"trackers": {"type": "array", "minItems": 1, "items": STRING,
                                     "description": "these of the job's trackers alone (not given: "
                                                    "all)"}}, []),
    "LogLines": _obj({"lines": {"type": "array", "items": _obj({
        "id": {"type": "integer", "minimum": 0, "description": "counts from 0 in the order written"},
        "time": {"type": "number", "description": "epoch seconds"},
        "level": {"type": "string", "enum": ["normal", "info", "warning", "critical"],
                  "description": "normal: what happened to a job; info: what the engine does; warning: what "
                                 "went wrong and is retried or left; critical: what stopped something"},
        "message": STRING,
    }, ["id", "time", "level", "message"])}}, ["lines"]),
    "LogPeers": _obj({"peers": {"type": "array", "items": _obj({
        "id": {"type": "integer", "minimum": 0}, "time": {"type": "number", "description": "epoch seconds"},
        "ip": STRING, "blocked": {"type": "boolean", "description": "true: refused; false: banned"},
        "reason": STRING,
    }, ["id", "time", "ip", "blocked", "reason"])}}, ["peers"]),
    "FeedArticle": _obj({
        "id": STRING, "title": STRING, "torrent_url": {"type": "string", "description": "\"\": none"},
        "link": STRING, "date": _null(NUMBER), "author": STRING, "description": STRING, "read": BOOL,
    }, ["id", "title", "torrent_url", "link", "date", "author", "description", "read"]),
    "Feed": _obj({
        "path": _FEED_PATH, "uid": STRING, "url": STRING, "title": STRING,
        "refresh_interval": {"type": "number", "minimum": 0, "description": "seconds; 0: the settings'"},
        "refreshed_at": _null(NUMBER), "last_build_date": STRING,
        "loading": {"type": "boolean", "description": "being read now"},
        "error": {"type": "string", "description": "why its last reading failed (\"\": it did not)"},
        "unread": COUNT, "articles": {"type": "array", "items": _ref("FeedArticle")},
    }, ["path", "uid", "url", "title", "refresh_interval", "refreshed_at", "last_build_date", "loading",
        "error", "unread", "articles"]),
    "FeedList": _obj({"folders": {"type": "array", "items": _FEED_PATH},
                      "feeds": {"type": "array", "items": _ref("Feed")}}, ["folders", "feeds"]),
    "FeedFolders": _obj({"folders": {"type": "array", "items": _FEED_PATH}}, ["folders"]),
    "NewFeed": _obj({"url": {"type": "string", "description": "an http(s) URL"},
                     "path": {"type": "string", "description": "names joined by \\ (not given: its URL)"},
                     "refresh_interval": _FEED_INTERVAL}, ["url"]),
    "FeedChange": _obj({"path": _FEED_PATH, "url": {"type": "string", "description": "read from here now"},
                        "refresh_interval": _FEED_INTERVAL,
                        "to": {"type": "string",
                               "description": "moved (renamed) to this path; alone, without url or "
                                              "refresh_interval"}}, ["path"]),
    "FeedChanged": {"anyOf": [_ref("Feed"), _ref("FeedFolders")]},
    "NewFeedFolder": _obj({"path": _FEED_PATH}, ["path"]),
    "FeedRefresh": _obj({"path": _FEEDS_UNDER}),
    "FeedsRefreshing": _obj({"refreshing": STRING}, ["refreshing"]),
    "FeedMarkRead": _obj({"path": _FEEDS_UNDER,
                          "article": {"type": "string", "description": "this article of the feed alone"}}),
    "FeedsRead": _obj({"read": STRING}, ["read"]),
    "FeedRemoved": _obj({"removed": STRING}, ["removed"]),
    "FeedRule": _obj(_FEED_RULE, _FEED_RULE),
    "FeedRuleSet": _obj(_FEED_RULE, ["name"], description="the rule whole: a field not given is as a "
                        "new rule has it, but last_match and previously_matched, kept from the rule of that "
                        "name"),
    "FeedRules": _obj({"rules": {"type": "array", "items": _ref("FeedRule")}}, ["rules"]),
    "FeedRuleRename": _obj({"name": STRING, "to": STRING}, ["name", "to"]),
    "FeedRuleMatches": _obj({"matches": {"type": "object", "additionalProperties": {
        "type": "array", "items": STRING}, "description": "by feed name, the titles the rule takes"}},
        ["matches"]),
    "Creation": _obj({
        "id": STRING,
        "status": {"type": "string", "enum": list(get_args(CreationStatus)),
                   "description": "queued: waiting for the one hashing at a time; running: being hashed"},
        "progress": {"type": "integer", "minimum": 0, "maximum": 100, "description": "percent hashed"},
        "error": _null(STRING), "name": {"type": "string", "description": "the torrent's (the source's name "
                                                                          "until made)"},
        "source_path": STRING, "torrent_file_path": _null(STRING), "version": _CREATION_VERSION,
        "piece_length": {"type": "integer", "minimum": 0,
                         "description": "the torrent's once made; before, the one asked (0: automatic)"},
        "private": BOOL, "skip_hidden": BOOL, "start_seeding": BOOL, "comment": STRING, "source": STRING,
        "trackers": _TIERS, "web_seeds": {"type": "array", "items": STRING},
        "added": NUMBER, "started": _null(NUMBER), "finished": _null(NUMBER),
        "size": _null({**COUNT, "description": "bytes of the files shared, once made"}),
        "info_hash": _null({"type": "string", "description": "hex, once made (v2: truncated)"}),
        "job_id": _null({"type": "string", "description": "the job seeding it (start_seeding)"}),
    }, ["id", "status", "progress", "error", "name", "source_path", "torrent_file_path", "version",
        "piece_length", "private", "skip_hidden", "start_seeding", "comment", "source", "trackers",
        "web_seeds", "added", "started", "finished", "size", "info_hash", "job_id"],
        description="times are epoch seconds"),
    "FolderEntry": _obj({
        "name": STRING, "path": {"type": "string", "description": "absolute"},
        "type": {"type": "string", "enum": ["dir", "file"]},
        "size": {**COUNT, "description": "bytes (files alone)"},
        "modified": {"type": "integer", "description": "when last changed (seconds since the epoch)"},
    }, ["name", "path", "type", "modified"]),
    "FolderListing": _obj({
        "path": {"type": "string", "description": "the folder listed (absolute, links resolved)"},
        "root": {"type": "string", "description": "the folder paths are taken from: the download folder, "
                                                  "or a user's own"},
        "parent": _null({"type": "string", "description": "the folder above (null at the root)"}),
        "entries": {"type": "array", "items": _ref("FolderEntry"),
                    "description": "sorted by name, hidden ones left out"},
        "truncated": {"type": "boolean", "description": "more were there than the limit"},
        "free_bytes": {"type": "integer", "minimum": -1,
                       "description": "bytes free there (or at the nearest folder that exists); -1: unknown"},
    }, ["path", "root", "parent", "entries", "truncated", "free_bytes"]),
    "CreationList": _obj({"creations": {"type": "array", "items": _ref("Creation")}}, ["creations"]),
    "NewCreation": _obj({
        "source_path": {**PATH, "minLength": 1, "description": "a file or folder in the download folder "
                                                               "(relative to it, or absolute)"},
        "torrent_file_path": {**PATH, "description": "where in the download folder to write the .torrent "
                                                     "too (nothing there yet); not given: kept here alone"},
        "version": _CREATION_VERSION,
        "piece_length": {"type": "integer", "enum": [0, *_PIECE_LENGTHS],
                         "description": "0, as not given: chosen from the size"},
        "private": {**BOOL, "description": "BEP 27: peers from its trackers alone"},
        "skip_hidden": {**BOOL, "description": "files and folders whose names start with a dot are "
                                               "left out (as not given)"},
        "start_seeding": {**BOOL, "description": "add it as a job seeding the source once made (not "
                                                 "given: when no torrent_file_path is given)"},
        "comment": STRING, "source": {"type": "string", "description": "the info's source field"},
        "trackers": _TIERS, "web_seeds": {"type": "array", "items": STRING,
                                          "description": "BEP 19: http(s) URLs with a host"},
    }, ["source_path"]),
    "CreationDeleted": _obj({"deleted": STRING}, ["deleted"]),
    "MetadataSource": _obj({"source": {"type": "string", "description": "a magnet link"}}, ["source"]),
    "DedupSource": _obj({"source": {"type": "string", "description": "a .torrent, base64"}}, ["source"]),
    "DedupStatus": _obj({
        "mode": {"type": "string", "enum": list(DEDUP_MODES)},
        "jobs": {**COUNT, "description": "the complete jobs whose files are known"},
        "folders": {"type": "array", "items": _obj(
            {"folder": STRING, "error": _null({"type": "string", "description": "why the last walk "
                                                "could not read it"})}, ["folder", "error"])},
        "files": {**COUNT, "description": "the indexed folders' files known by their sizes"},
        "hashed": {**COUNT, "description": "those known by their pieces roots too"},
        "walking": BOOL,
        "hashing": _null(_obj({"done": COUNT, "total": COUNT}, ["done", "total"])),
        "walked_at": _null({"type": "number", "description": "when the last walk ended (Unix time)"}),
        "truncated": {"type": "boolean", "description": "the last walk stopped at 100 000 files"},
    }, ["mode", "jobs", "folders", "files", "hashed", "walking", "hashing", "walked_at", "truncated"]),
    "DedupMatch": _obj({
        "info_hash": STRING,
        "mode": {"type": "string", "enum": ["off", "reflink", "hardlink", "copy"],
                 "description": "how an add places a file held (off: nothing is looked up)"},
        "held_bytes": {**COUNT, "description": "the bytes of the files held"},
        "total_bytes": {**COUNT, "description": "the torrent's bytes (pad files left out)"},
        "length_from": {**COUNT, "description": "a file with no pieces root known is looked for by its "
                                                "length from this size"},
        "pieces_sampled": {**COUNT, "description": "the pieces of a file found by length verified"},
        "files": {"type": "array", "items": _obj({
            "index": COUNT, "path": STRING, "length": COUNT,
            "held": _null(_obj({
                "path": {"type": "string", "description": "the file held, on the daemon's disk"},
                "job_id": _null({"type": "string", "description": "the complete job it is of (null: an "
                                                                  "indexed folder's)"}),
                "by": {"type": "string", "enum": ["pieces root", "length and pieces"]},
            }, ["path", "job_id", "by"])),
            "why": {"type": "string", "description": "why it is not held (with held null)"},
        }, ["index", "path", "length", "held"]), "description": "each file but pad files, in order"},
    }, ["info_hash", "mode", "held_bytes", "total_bytes", "length_from", "pieces_sampled", "files"]),
    "Metadata": _obj({
        "info_hash": STRING,
        "state": {"type": "string", "enum": ["fetching", "fetched"]},
        "name": STRING, "size": COUNT,
        "files": {"type": "array", "items": _obj(
            {"index": COUNT, "path": STRING, "length": COUNT,
             "pad": {"type": "boolean", "description": "a BEP 47 pad file: never one to choose"}},
            ["index", "path", "length", "pad"])},
        "torrent": {"type": "string", "description": "the .torrent, base64 (an add's source)"},
    }, ["info_hash", "state"], description="202 while fetched (info_hash and state alone); 200 once fetched"),
    "Queue": _obj({"queue": {"type": "array", "items": STRING}}, ["queue"]),
    "MoveJob": _obj({"save_path": {"type": "string", "minLength": 1},
                     "move": {"type": "boolean", "description": "default true; false: nothing moves, "
                              "the job's data is looked for (and verified) at save_path"}},
                    ["save_path"], closed=False),
    "QueueMove": _obj({"move": {"type": "string", "enum": ["top", "bottom", "up", "down"]}}, ["move"],
                      closed=False),
    "RenamePath": _obj({
        "old_path": {"type": "string", "minLength": 1,
                     "description": "a file or folder of the job, as its file list shows it"},
        "new_path": {"type": "string", "minLength": 1,
                     "description": "relative to the job's save path (no \"..\", not absolute)"},
        "kind": {"type": "string", "enum": ["file", "folder", "any"], "description": "default: any"},
    }, ["old_path", "new_path"]),
    "TrackerTiers": _obj({"tiers": {"type": "array", "items": {"type": "array", "items": TRACKER_URL},
                                    "description": "BEP 12 tiers of announce URLs (http, https, udp)"}},
                         ["tiers"]),
    "WebSeeds": _obj({"urls": {"type": "array", "items": WEB_SEED_URL,
                               "description": "BEP 19 web seed URLs (http, https)"}}, ["urls"]),
    "PieceMap": _obj({
        "num_pieces": _null({**COUNT, "description": "null before a magnet's metadata"}),
        "have": {"type": "string", "contentEncoding": "base64",
                 "description": "the verified pieces, a BEP 3 bitfield (piece 0: the first byte's high bit)"},
        "downloading": {"type": "string", "contentEncoding": "base64",
                        "description": "the pieces being downloaded, a bitfield as have"},
        "availability": _null({"type": "number", "minimum": 0, "description": "distributed copies among "
                               "the connected peers and us (null: not known, or every piece had)"})},
        ["num_pieces", "have", "downloading", "availability"]),
    "TorrentFacts": _obj({
        "has_metadata": BOOL, "info_hash_v1": _null(STRING), "info_hash_v2": _null(STRING),
        "piece_length": _null(COUNT), "num_pieces": _null(COUNT), "total_length": _null(COUNT),
        "private": _null(BOOL), "created_by": _null(STRING), "creation_date": _null(NUMBER),
        "comment": _null(STRING)},
        ["has_metadata", "info_hash_v1", "info_hash_v2", "piece_length", "num_pieces", "total_length",
         "private", "created_by", "creation_date", "comment"],
        description="what the job's metainfo says (null but the job's info-hash before the metadata)"),
    "BanPeers": _obj({"peers": {"type": "array", "minItems": 1, "maxItems": 1000,
                                "items": {"type": "string", "description": "HOST:PORT or an IP address"}}},
                     ["peers"]),
    "BannedIps": _obj({"banned_ips": {"type": "array", "items": STRING,
                                      "description": "every banned address (the banned_ips setting)"}},
                      ["banned_ips"]),
}
# PATCH /api/settings takes any of the settings (the same names and kinds as their answer).
SCHEMAS["SettingsChange"] = {**SCHEMAS["Settings"], "required": []}


def _sse_event(names: Sequence[str], data: str, description: str) -> Schema:
    """One server-sent event as an SSE parser hands it over (``event``, ``data``, ``id``,
    ``retry``), named one of ``names``, its ``data`` JSON of schema ``data``."""
    return _obj({"event": {"type": "string", "enum": list(names)},
                 "data": {"type": "string", "contentMediaType": "application/json",
                          "contentSchema": _ref(data)},
                 "id": {"type": "string", "pattern": "^[0-9]+$",
                        "description": "the event's number (send it back as Last-Event-ID)"},
                 "retry": COUNT}, ["event", "data"], description=description)


_TIME = {"type": "number", "description": "when it happened (seconds since the epoch)"}
SCHEMAS.update({
    # The data of each event, by name (docs/api.md, "Live events").
    "SnapshotEvent": _obj({"jobs": {"type": "array", "items": _ref("Job")}, "time": _TIME},
                          ["jobs", "time"]),
    "JobEvent": _obj({"job": _ref("Job"), "time": _TIME}, ["job", "time"]),
    "JobStateEvent": _obj({"job": _ref("Job"), "old": _ref("JobState"), "new": _ref("JobState"),
                           "time": _TIME}, ["job", "old", "new", "time"]),
    "JobRemovedEvent": _obj({"job_id": STRING, "time": _TIME}, ["job_id", "time"]),
    "StatsEvent": _obj({"stats": _ref("Stats"), "time": _TIME}, ["stats", "time"]),
    # One event of a stream: the schema of a ``text/event-stream`` answer describes each event
    # (as OpenAPI 3.1 tools, schemathesis among them, read it; 3.2 calls this ``itemSchema``).
    "ServerSentEvent": {"oneOf": [
        _sse_event(["snapshot"], "SnapshotEvent", "every job (the first event, or after a gap)"),
        _sse_event(["job.added", "job.progress", "job.updated"], "JobEvent", "a job as it is now"),
        _sse_event(["job.state"], "JobStateEvent", "a job that changed state"),
        _sse_event(["job.removed"], "JobRemovedEvent", "a job forgotten"),
        _sse_event(["service.stats"], "StatsEvent", "the service's totals (each second; /api/events only)"),
    ]},
})

_ERRORS = {
    400: "bad input (`field` names it)",
    401: "no token, or a wrong one",
    403: "the Host header is not allowed, or the user may not do it (the scope it needs is named)",
    404: "no such job, lease, category, bandwidth group or route (another user's job: none)",
    409: "not possible in the job's (or the service's) present state, or past a user's quota "
         "(`field`: max_torrents or max_bytes)",
    429: "too many failed logins from this address: Retry-After",
    413: "the body is too large",
    415: "neither JSON nor multipart",
    502: "the mail server could not be reached, or did not take the mail (the reason)",
    503: "the process's file descriptor limit is (nearly) reached: the reason, and Retry-After",
}


def _json(schema: Schema) -> dict[str, JSON]:
    return {"content": {"application/json": {"schema": schema}}}


_LOG_AFTER: Schema = {"type": "integer", "minimum": -1, "maximum": 10**18 - 1}


def _op(summary: str, answer: str | None, *, status: int = 200, errors: Sequence[int] = (),
        body: str | None = None, body_required: bool = False, query: Sequence[Schema] = (),
        sse: bool = False, tag: str) -> dict[str, JSON]:
    """One operation: its summary, query parameters, body, answer and the errors it may give."""
    op: dict[str, JSON] = {"summary": summary, "tags": [tag]}
    if query:
        op["parameters"] = list(query)
    if body is not None:
        op["requestBody"] = {"required": body_required, **_json(_ref(body))}
    responses: dict[str, JSON] = {}
    if sse:
        responses[str(status)] = {"description": summary,
                                  "content": {"text/event-stream": {"schema": _ref("ServerSentEvent")}}}
        op["security"] = [{"bearer": []}, {"apiToken": []}, {"ticket": []}]
        last = {"type": "string", "pattern": "^(-?[0-9]+)?$"}
        op["parameters"] = [
            {"name": "Last-Event-ID", "in": "header", "required": False, "schema": last,
             "description": "resume after this event (a browser's EventSource sends it by itself); "
                            "empty, as not given: from now"},
            _query("last_event_id", last, "the same, for a client that cannot send the header"),
        ]
    elif answer is not None:
        responses[str(status)] = {"description": summary, **_json(_ref(answer))}
    else:
        raise ValueError(f"{summary!r}: an operation answers JSON or an event stream")
    for code in sorted({400, 401, 403, *errors}):
        responses[str(code)] = {"$ref": f"#/components/responses/E{code}"}
    op["responses"] = responses
    return op


def _mapping(value: JSON) -> Mapping[str, JSON]:
    if not isinstance(value, Mapping):
        raise TypeError(f"an OpenAPI object was expected, not {value!r}")
    return value


def _query(name: str, schema: Schema, description: str, *, required: bool = False) -> Schema:
    return {"name": name, "in": "query", "required": required, "schema": schema,
            "description": description}


_FLAG = {"type": "string", "enum": ["true", "false", "1", "0", "yes", "no"]}
_BODY_ERRORS = (413, 415)
_RULE_NAME = _query("name", STRING, "the rule", required=True)

# (method, path as in the route table) -> the operation. A key here must name a route, and every
# route under /api (but qBittorrent's /api/v2) must have a key: see ``undescribed``/``unrouted``.
OPERATIONS: dict[tuple[str, str], dict[str, JSON]] = {
    ("GET", "/api/openapi.json"): {
        "summary": "This document", "tags": ["service"],
        "responses": {"200": {"description": "the OpenAPI document",
                              "content": {"application/json": {"schema": {"type": "object"}}}},
                      **{str(c): {"$ref": f"#/components/responses/E{c}"} for c in (400, 401, 403)}}},
    ("GET", "/api/health"): {
        **_op("Status, version and the job records that could not be loaded", "Health", tag="service"),
        "responses": {"200": {"description": "started", **_json(_ref("Health"))},
                      "503": {"description": "starting: the torrents are being loaded (a change waits "
                                             "for the start, up to a minute); ask again after Retry-After",
                              **_json(_ref("Health"))},
                      **{str(c): {"$ref": f"#/components/responses/E{c}"} for c in (400, 401, 403)}}},
    ("GET", "/api/stats"): _op("The service's totals and rates", "Stats", tag="service"),
    ("POST", "/api/shutdown"): _op("Stop the daemon as its SIGTERM does, every job saved (an admin's; "
                                   "answered first; 409: no daemon serves this API)", "Stopping",
                                   status=202, errors=(409,), tag="service"),
    ("GET", "/api/stats/history"): _op("The last hour of rates and peers, a sample every 10 s (oldest first)",
                                       "StatsHistory", tag="service"),
    ("GET", "/api/jobs"): _op("Every job, or those in one state; or those changed since a cursor",
                              "JobPage", tag="jobs", query=[
        _query("since", {"type": "integer", "minimum": 0, "maximum": 10**18 - 1},
               "only the jobs changed after this cursor (an earlier answer's), and the ids removed; "
               "not with state, limit or offset"),
        _query("state", _ref("JobState"), "only the jobs in this state"),
        _query("limit", {"type": "integer", "minimum": 0, "maximum": 10**18 - 1},
               "at most this many jobs (newest first; default: all)"),
        _query("offset", {"type": "integer", "minimum": 0, "maximum": 10**18 - 1},
               "skip this many jobs first (default 0)")]),
    ("POST", "/api/jobs"): {
        **_op("Add a job (201), or answer the job already there for its info-hash (200)", "JobDetail",
              status=201, errors=(404, 409, *_BODY_ERRORS, 503), tag="jobs"),
        "requestBody": {"required": True, "content": {
            "application/json": {"schema": {"allOf": [_ref("AddJob"), _ref("AddJobMagnet"),
                                                      _ref("AddJobManaged")]}},
            "multipart/form-data": {"schema": _ref("AddJobUpload")}}},
    },
    ("DELETE", "/api/jobs"): _op("Forget finished jobs", "Removed", tag="jobs", query=[
        _query("finished", _FLAG, "must be true", required=True),
        _query("older_than", NUMBER, "only those finished more than this many seconds ago")]),
    ("GET", "/api/jobs/active"): _op("The jobs that are not finished", "JobList", tag="jobs"),
    ("POST", "/api/jobs/bulk"): _op(
        "One action on many jobs; those it does not fit are listed in failed", "BulkDone",
        errors=(*_BODY_ERRORS, 503), body="BulkAction", body_required=True, tag="jobs"),
    ("GET", "/api/jobs/{job_id}"): _op(
        "One job in detail", "JobDetail", errors=(404,), tag="jobs",
        query=[_query("scrape", _FLAG, "scrape its trackers for their download counts, in the background "
                                       "(at most every 15 minutes per job; the next look shows them)")]),
    ("PATCH", "/api/jobs/{job_id}"): _op(
        "Change file priorities, order, rate limits or features", "JobDetail",
        errors=(404, 409, *_BODY_ERRORS), body="UpdateJob", tag="jobs"),
    ("DELETE", "/api/jobs/{job_id}"): _op("Cancel the job", "JobDetail", errors=(404, 409), tag="jobs",
                                          query=[_query("delete_files", _FLAG, "remove its files too")]),
    ("POST", "/api/jobs/{job_id}/pause"): _op("Pause", "JobDetail", errors=(404, 409), tag="jobs"),
    ("POST", "/api/jobs/{job_id}/resume"): _op("Resume", "JobDetail", errors=(404, 409), tag="jobs"),
    ("POST", "/api/jobs/{job_id}/recheck"): _op("Verify the job's data again", "JobDetail",
                                                errors=(404, 409), tag="jobs"),
    ("POST", "/api/jobs/{job_id}/reannounce"): _op("Announce the job to its trackers now, or to some",
                                                   "JobDetail", errors=(404, 409, *_BODY_ERRORS),
                                                   body="Reannounce", tag="jobs"),
    ("POST", "/api/jobs/{job_id}/move"): _op("Move the job's files (inside the download root)",
                                             "JobDetail", errors=(404, 409, *_BODY_ERRORS),
                                             body="MoveJob", body_required=True, tag="jobs"),
    ("POST", "/api/jobs/{job_id}/queue"): _op("Move the job in the queue (409: queueing is off)",
                                              "Queue", errors=(404, 409, *_BODY_ERRORS),
                                              body="QueueMove", body_required=True, tag="queue"),
    ("POST", "/api/jobs/{job_id}/rename"): _op("Rename a file or folder of the job (its files move on disk)",
                                               "JobDetail", errors=(404, 409, *_BODY_ERRORS),
                                               body="RenamePath", body_required=True, tag="jobs"),
    ("GET", "/api/jobs/{job_id}/trackers"): _op("The job's trackers, tier by tier", "TrackerTiers",
                                                errors=(404,), tag="jobs"),
    ("PUT", "/api/jobs/{job_id}/trackers"): _op("Set the job's trackers (announced to at once)", "JobDetail",
                                                errors=(404, 409, *_BODY_ERRORS), body="TrackerTiers",
                                                body_required=True, tag="jobs"),
    ("GET", "/api/jobs/{job_id}/webseeds"): _op("The job's web seeds (BEP 19)", "WebSeeds",
                                                errors=(404,), tag="jobs"),
    ("PUT", "/api/jobs/{job_id}/webseeds"): _op("Set the job's web seeds (used at once)", "JobDetail",
                                                errors=(404, 409, *_BODY_ERRORS), body="WebSeeds",
                                                body_required=True, tag="jobs"),
    ("GET", "/api/jobs/{job_id}/pieces"): _op("The job's piece map and availability", "PieceMap",
                                              errors=(404,), tag="jobs"),
    ("GET", "/api/jobs/{job_id}/torrent"): _op("What the job's metainfo says: hashes, pieces, creator, "
                                               "comment", "TorrentFacts", errors=(404,), tag="jobs"),
    ("POST", "/api/peers/ban"): _op("Ban peers' addresses (added to banned_ips; connected ones dropped)",
                                    "BannedIps", errors=_BODY_ERRORS, body="BanPeers", body_required=True,
                                    tag="settings"),
    ("GET", "/api/jobs/{job_id}/events"): _op("One job's events (server-sent events)", None,
                                              errors=(404,), sse=True, tag="events"),
    ("GET", "/api/events"): _op("Every job's events and the service's stats (server-sent events)",
                                None, sse=True, tag="events"),
    ("POST", "/api/login"): {**_op("Log a user in by name and password: a session token", "Session",
                                   errors=(429,), body="Login", body_required=True, tag="users"),
                             "security": []},
    ("POST", "/api/logout"): _op("End this request's session token", "LoggedOut", tag="users"),
    ("GET", "/api/me"): _op("Who this request acts for", "Me", tag="users"),
    ("GET", "/api/users"): _op("Every user (an admin's)", "UserList", tag="users"),
    ("POST", "/api/users"): _op("Add a user (an admin's)", "User", status=201, errors=(409, *_BODY_ERRORS),
                                body="NewUser", body_required=True, tag="users"),
    ("GET", "/api/users/{name}"): _op("One user (an admin's)", "User", errors=(404,), tag="users"),
    ("PATCH", "/api/users/{name}"): _op("Change a user's password, role or quotas (an admin's)", "User",
                                        errors=(404, *_BODY_ERRORS), body="EditUser", body_required=True,
                                        tag="users"),
    ("DELETE", "/api/users/{name}"): _op("Remove a user and their keys (an admin's)", "UserRemoved",
                                         errors=(404,), tag="users"),
    ("POST", "/api/users/{name}/keys"): _op("Make a user's API key, shown this once (an admin's)",
                                            "NewApiKey",
                                            status=201, errors=(404, *_BODY_ERRORS), body="NewKey",
                                            body_required=True, tag="users"),
    ("DELETE", "/api/users/{name}/keys/{key_id}"): _op("Revoke a user's API key (an admin's)", "KeyRevoked",
                                                       errors=(404,), tag="users"),
    ("POST", "/api/events/ticket"): _op("A one-use ticket for an EventSource (?ticket=)", "Ticket",
                                        status=201, tag="events"),
    ("POST", "/api/clients"): _op("Open a client lease", "Lease", status=201,
                                  errors=(404, *_BODY_ERRORS), body="OpenLease", tag="leases"),
    ("POST", "/api/clients/{lease_id}/heartbeat"): _op("Keep a lease alive", "Lease", errors=(404,),
                                                       tag="leases"),
    ("DELETE", "/api/clients/{lease_id}"): _op("End a lease (its unfinished jobs are cancelled)",
                                               "LeaseEnded", errors=(404,), tag="leases"),
    ("GET", "/api/categories"): _op("Every category", "CategoryList", tag="categories"),
    ("POST", "/api/categories"): _op("Create a category", "Category", status=201,
                                     errors=(409, *_BODY_ERRORS), body="NewCategory",
                                     body_required=True, tag="categories"),
    ("PATCH", "/api/categories/{name}"): _op("Change a category's save path", "Category",
                                             errors=(404, 409, *_BODY_ERRORS), body="EditCategory",
                                             tag="categories"),
    ("DELETE", "/api/categories/{name}"): _op("Remove a category and its subcategories",
                                              "CategoriesRemoved", errors=(404, 409), tag="categories"),
    ("GET", "/api/groups"): _op("Every bandwidth group", "BandwidthGroupList", tag="groups"),
    ("POST", "/api/groups"): _op("Create a bandwidth group", "BandwidthGroup", status=201,
                                 errors=(409, *_BODY_ERRORS), body="NewBandwidthGroup",
                                 body_required=True, tag="groups"),
    ("GET", "/api/groups/{name}"): _op("One bandwidth group", "BandwidthGroup", errors=(404,), tag="groups"),
    ("PATCH", "/api/groups/{name}"): _op("Change a bandwidth group", "BandwidthGroup",
                                         errors=(404, *_BODY_ERRORS), body="EditBandwidthGroup",
                                         tag="groups"),
    ("DELETE", "/api/groups/{name}"): _op("Delete a bandwidth group (the jobs naming it name none)",
                                          "BandwidthGroupRemoved", errors=(404,), tag="groups"),
    ("GET", "/api/jobs/{job_id}/group"): _op("The bandwidth group the job names, and the one it is in",
                                             "JobGroup", errors=(404,), tag="groups"),
    ("PUT", "/api/jobs/{job_id}/group"): _op("Put the job in a bandwidth group", "JobGroup",
                                             errors=(404, 409, *_BODY_ERRORS), body="SetJobGroup",
                                             body_required=True, tag="groups"),
    ("GET", "/api/tags"): _op("Every known tag", "TagList", tag="tags"),
    ("POST", "/api/tags"): _op("Make tags known", "TagList", status=201, errors=_BODY_ERRORS,
                               body="NewTags", tag="tags"),
    ("DELETE", "/api/tags/{tag}"): _op("Forget a tag (and take it off every job)", "TagList",
                                       errors=(404,), tag="tags"),
    ("GET", "/api/settings"): _op("The run-time settings", "Settings", tag="settings"),
    ("PATCH", "/api/settings"): _op("Change some settings", "Settings", errors=_BODY_ERRORS,
                                    body="SettingsChange", tag="settings"),
    ("POST", "/api/settings/test-mail"): _op("Send a test mail with the mail settings as they are",
                                             "TestMail", errors=(502,), tag="settings"),
    ("GET", "/api/watch"): _op("The watched folders and the files they held lately", "WatchStatus",
                               tag="settings"),
    ("GET", "/api/cookies"): _op("The cookies sent with the .torrent URLs and feeds fetched", "UrlCookies",
                                 tag="settings"),
    ("PUT", "/api/cookies"): _op("Replace the cookies sent with .torrent URLs and feeds", "UrlCookies",
                                 errors=_BODY_ERRORS, body="UrlCookies", body_required=True, tag="settings"),
    ("GET", "/api/folders"): _op(
        "The folders (and files) in a folder of the download folder, to pick a path from (a viewer's "
        "refused; a user's own folder alone)", "FolderListing", errors=(404,), tag="settings", query=(
            _query("path", PATH, "the folder: absolute, or relative to the download folder (a user's: "
                                 "to their own); not given: that folder"),
            _query("prefix", {"type": "string", "maxLength": MAX_PREFIX, "pattern": r"^[^/\x00]*$"},
                   "only the names beginning with this (any case)"),
            _query("files", _FLAG, "files too (default false)"),
            _query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                   f"at most this many entries (default {DEFAULT_LIMIT})"))),
    ("GET", "/api/creations"): _op("The torrents being made and made (until deleted)", "CreationList",
                                   tag="creations"),
    ("POST", "/api/creations"): _op("Make a torrent of files in the download folder (an admin's)", "Creation",
                                    status=201, errors=(409, *_BODY_ERRORS), body="NewCreation",
                                    body_required=True, tag="creations"),
    ("GET", "/api/creations/{task_id}"): _op("One torrent being made or made", "Creation", errors=(404,),
                                             tag="creations"),
    ("DELETE", "/api/creations/{task_id}"): _op(
        "Forget a creation (one not finished is stopped, nothing of it left)", "CreationDeleted",
        errors=(404,), tag="creations"),
    ("GET", "/api/dedup"): _op("What the deduplication holds and does now: its mode, the jobs it knows, the "
                               "indexed folders and their walk", "DedupStatus", tag="settings"),
    ("POST", "/api/dedup/match"): _op(
        "Which of a torrent's files are held whole here, as an add would take them (an admin's; nothing "
        "added or written)", "DedupMatch", errors=_BODY_ERRORS, body="DedupSource", body_required=True,
        tag="jobs"),
    ("POST", "/api/metadata"): _op("A magnet's files before it is added (fetched without a job)", "Metadata",
                                   errors=(409, *_BODY_ERRORS, 503), body="MetadataSource",
                                   body_required=True, tag="jobs"),
    ("GET", "/api/log"): _op("The daemon's log lines (an admin's)", "LogLines", tag="service", query=(
        _query("after", _LOG_AFTER, "the lines after this id (-1, as not given: every line kept)"),
        _query("level", {"type": "string", "pattern": "^[A-Za-z]+(,[A-Za-z]+)*$"},
               "levels, separated by commas: normal, info, warning, critical (not given: all)"))),
    ("GET", "/api/log/peers"): _op("Peers refused or banned (an admin's)", "LogPeers", tag="service", query=(
        _query("after", _LOG_AFTER, "the events after this id (-1, as not given: every one kept)"),)),
    ("GET", "/api/feeds"): _op("The feeds read and their articles (an admin's)", "FeedList",
                               errors=(409,), tag="feeds"),
    ("POST", "/api/feeds"): _op("Read a feed", "Feed", status=201, errors=(409, *_BODY_ERRORS),
                                body="NewFeed", body_required=True, tag="feeds"),
    ("PATCH", "/api/feeds"): _op("Change a feed's URL or interval, or move (rename) an item", "FeedChanged",
                                 errors=(404, 409, *_BODY_ERRORS), body="FeedChange", body_required=True,
                                 tag="feeds"),
    ("DELETE", "/api/feeds"): _op("Stop reading a feed, or remove a folder and all it holds", "FeedRemoved",
                                  errors=(404, 409), tag="feeds", query=(
                                      _query("path", _FEED_PATH, "the feed or folder", required=True),)),
    ("POST", "/api/feeds/folders"): _op("Make a folder of feeds", "FeedFolders", status=201,
                                        errors=(409, *_BODY_ERRORS), body="NewFeedFolder", body_required=True,
                                        tag="feeds"),
    ("POST", "/api/feeds/refresh"): _op("Read feeds now", "FeedsRefreshing", status=202,
                                        errors=(404, 409, *_BODY_ERRORS), body="FeedRefresh", tag="feeds"),
    ("POST", "/api/feeds/read"): _op("Mark articles read", "FeedsRead", errors=(404, 409, *_BODY_ERRORS),
                                     body="FeedMarkRead", tag="feeds"),
    ("GET", "/api/feeds/rules"): _op("The download rules, in the order they are tried", "FeedRules",
                                     errors=(409,), tag="feeds"),
    ("PUT", "/api/feeds/rules"): _op("Make or replace a download rule", "FeedRule",
                                     errors=(409, *_BODY_ERRORS), body="FeedRuleSet", body_required=True,
                                     tag="feeds"),
    ("DELETE", "/api/feeds/rules"): _op("Remove a download rule", "FeedRemoved", errors=(404, 409),
                                        tag="feeds", query=(_RULE_NAME,)),
    ("POST", "/api/feeds/rules/rename"): _op("Rename a download rule", "FeedRule",
                                             errors=(404, 409, *_BODY_ERRORS), body="FeedRuleRename",
                                             body_required=True, tag="feeds"),
    ("GET", "/api/feeds/rules/matches"): _op("The articles a rule takes as it stands", "FeedRuleMatches",
                                             errors=(404, 409), tag="feeds",
                                             query=(_RULE_NAME,)),
    ("GET", "/api/queue"): _op("The unfinished jobs in queue order", "Queue", tag="queue"),
    ("GET", "/api/ipfilter"): _op("The IP filter in force and what its lists gave", "IpFilterStatus",
                                  tag="settings"),
    ("POST", "/api/ipfilter/update"): _op("Fetch the IP filter's list URL now", "IpFilterStatus",
                                          errors=(409,), tag="settings"),
}

def _stream_op(summary: str) -> dict[str, JSON]:
    """A file's bytes: the whole (200) or a range (206); the stream token works in ?token=."""
    binary = {"*/*": {"schema": {"type": "string", "format": "binary"}}}
    ranges = {"Accept-Ranges": {"schema": STRING}, "Content-Range": {"schema": STRING}}
    return {
        "summary": summary, "tags": ["streaming"],
        "parameters": [
            {"name": "Range", "in": "header", "required": False, "schema": STRING,
             "description": "bytes=A-B, bytes=A- or bytes=-N (one range)"},
            _query("token", STRING, "the job's read-only stream token (GET /api/jobs/{id}/stream-token)"),
        ],
        "security": [{"bearer": []}, {"apiToken": []}, {"streamToken": []}],
        "responses": {
            "200": {"description": "the whole file", "headers": ranges, "content": binary},
            "206": {"description": "the range asked for", "headers": ranges, "content": binary},
            "416": {"description": "a range past the end (Content-Range: bytes */SIZE)", "headers": ranges},
            **{str(c): {"$ref": f"#/components/responses/E{c}"} for c in (400, 401, 403, 404, 409)},
            "503": {"description": "a magnet whose metadata has not come in time: why, and when to ask again",
                    "headers": {"Retry-After": {"schema": {"type": "integer"}}},
                    **_json(_obj({"error": STRING, "retry_after": {"type": "integer"}}, ["error"],
                                 closed=False))},
        },
    }


OPERATIONS[("GET", "/api/jobs/{job_id}/stream-token")] = _op(
    "The job's read-only stream token and each file's stream URL", "StreamToken", errors=(404,),
    tag="streaming")
OPERATIONS[("GET", "/api/jobs/{job_id}/files/{index}/stream")] = _stream_op(
    "A file's bytes as its pieces pass their hash check (ranges; starts a queued or paused job)")

def _torrent_file_op(summary: str, tag: str) -> dict[str, JSON]:
    """A route answering a .torrent file (or an error)."""
    binary = {"application/x-bittorrent": {"schema": {"type": "string", "format": "binary"}}}
    errors = {str(c): {"$ref": f"#/components/responses/E{c}"} for c in (400, 401, 403, 404, 409)}
    return {"summary": summary, "tags": [tag],
            "responses": {"200": {"description": "the .torrent file", "content": binary}, **errors}}


OPERATIONS[("GET", "/api/creations/{task_id}/torrent")] = _torrent_file_op("The .torrent made", "creations")
OPERATIONS[("GET", "/api/jobs/{job_id}/torrent/file")] = _torrent_file_op(
    "The job's .torrent, to save (409 before a magnet's metadata)", "jobs")

_FETCH = OPERATIONS[("POST", "/api/metadata")]
_FETCH["responses"] = {**_mapping(_FETCH["responses"]), "202": {
    "description": "being fetched: ask again", **_json(_ref("Metadata"))}}
_ADD = OPERATIONS[("POST", "/api/jobs")]
_ADD["responses"] = {**_mapping(_ADD["responses"]), "200": {
    "description": "the job already there for this info-hash", **_json(_ref("JobDetail"))}}

_PATH_PARAMS = {
    "job_id": "a job's id",
    "lease_id": "a client lease's id",
    "name": "a category's name (a subcategory's holds \"/\"), a bandwidth group's, or a user's",
    "key_id": "a user's API key's id (as listed)",
    "tag": "a tag",
    "index": "a file's index, as the job's files number them",
    "task_id": "a torrent creation's id",
}


def openapi_path(route_path: str) -> str:
    """A Starlette path as OpenAPI writes it (``/api/categories/{name:path}`` -> ``.../{name}``)."""
    return _PARAM.sub(r"{\1}", route_path)


def own_operations(routes: Iterable[BaseRoute]) -> list[tuple[str, str]]:
    """(method, OpenAPI path) of every route of our API in ``routes`` (HEAD, the UI and the
    compatibility dialects left out)."""
    out: list[tuple[str, str]] = []
    for route in routes:
        if not isinstance(route, Route) or not route.path.startswith(OWN_PREFIX) \
                or route.path.startswith(FOREIGN_PREFIXES) or route.name == METHOD_NOT_ALLOWED:
            continue
        for method in sorted((route.methods or set()) - {"HEAD"}):
            out.append((method, openapi_path(route.path)))
    return out


def undescribed(routes: Iterable[BaseRoute]) -> list[tuple[str, str]]:
    """The routes of our API that ``OPERATIONS`` does not describe."""
    return [key for key in own_operations(routes) if key not in OPERATIONS]


def unrouted(routes: Iterable[BaseRoute]) -> list[tuple[str, str]]:
    """The operations ``OPERATIONS`` describes that no route serves."""
    present = set(own_operations(routes))
    return [key for key in OPERATIONS if key not in present]


def openapi_document(routes: Iterable[BaseRoute]) -> dict[str, JSON]:
    """The OpenAPI 3.1 document of the operations ``routes`` serve and ``OPERATIONS`` describes."""
    paths: dict[str, dict[str, JSON]] = {}
    for method, path in own_operations(routes):
        described = OPERATIONS.get((method, path))
        if described is None:
            continue  # (not described: ``undescribed`` names it)
        op = dict(described)
        params = [{"name": name, "in": "path", "required": True, "schema": STRING,
                   "description": _PATH_PARAMS.get(name, name)} for name in _PARAM.findall(path)]
        if params:
            more = op.get("parameters", [])
            op["parameters"] = [*params, *(more if isinstance(more, list) else ())]
        op["operationId"] = f"{method.lower()}{re.sub(r'[^A-Za-z0-9]+', '_', path)}".rstrip("_")
        paths.setdefault(path, {})[method.lower()] = op
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "torrent_engine API", "version": __version__,
                 "description": "The job service's HTTP API (see docs/api.md). Every error is "
                                "{\"error\", \"field\"?}."},
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "responses": {f"E{code}": {"description": what, **_json(_ref("Error"))}
                          for code, what in _ERRORS.items()},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "the API token"},
                "apiToken": {"type": "apiKey", "in": "header", "name": "X-Api-Token"},
                "ticket": {"type": "apiKey", "in": "query", "name": "ticket",
                           "description": "a ticket from POST /api/events/ticket (event streams only)"},
                "streamToken": {"type": "apiKey", "in": "query", "name": "token",
                                "description": "a job's stream token (its stream URLs only)"},
            },
        },
        "security": [{"bearer": []}, {"apiToken": []}],
    }


async def openapi_json(request: Request) -> Response:
    """``GET /api/openapi.json``: this API's OpenAPI 3.1 document, built from the app's routes."""
    return JSONResponse(openapi_document(request.app.routes))
